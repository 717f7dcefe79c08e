#pragma once
// Helpers for the browser tests: an io_context on a background thread, a
// headless Chromium launched on it, and bounded waits on futures.

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/page.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>

namespace browser_support {

using namespace std::chrono_literals;
namespace asio = boost::asio;

/// An io_context run by one background thread until destruction.
struct io_thread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  io_thread() = default;
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;
  ~io_thread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

/// Waits for a future with a bound, failing the test instead of hanging.
template <class T>
T get(std::future<T>& f, std::chrono::milliseconds bound = 20s) {
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  return f.get();
}
template <class T>
T get(std::future<T>&& f, std::chrono::milliseconds bound = 20s) {
  return get(f, bound);
}

/// A browser and one open page on a background io thread. Members are
/// destroyed in reverse: the browser stops before the io thread.
struct browser_fixture {
  io_thread io;
  seckill::browser::chromium browser = seckill::browser::chromium::launch(io.io.get_executor());
  seckill::browser::page page = open_page(browser);

  static seckill::browser::page open_page(seckill::browser::chromium& b) {
    auto [ec, p] = get(seckill::browser::page::async_open(b.connection(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    return std::move(p);
  }
};

}  // namespace browser_support
