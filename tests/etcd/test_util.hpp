#pragma once
// Shared helpers of the etcd integration tests: run a test coroutine to
// completion, wait with a deadline, read a helper process's output.

#include "support/coro.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>

namespace seckill::test {

namespace asio = boost::asio;

/// Runs the coroutine `f(io)` returns to completion (with everything it
/// spawned), rethrowing what it threw.
template <class F>
void run_test(F&& f) {
  asio::io_context io;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(io, std::forward<F>(f)(io), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    io.stop();
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  if (!done) throw std::runtime_error("the test coroutine did not finish");
}

/// Polls `pred()` every 10 ms until it holds or `timeout` passes; returns whether it held.
inline asio::awaitable<bool> eventually(std::function<bool()> pred,
                                        std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    co_await sleep_for(std::chrono::milliseconds(10));
  }
  co_return true;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace seckill::test
