#pragma once
// Helpers for the browser tests: an io_context on a background thread, a
// headless Chromium launched on it, bounded waits on futures, a PNG's
// size read from its header, and a grabber's log kept for searching.

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/site_profile.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

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

/// A PNG's width and height from its IHDR chunk, which must follow the
/// signature; nullopt when `bytes` does not start like a PNG file.
struct png_header {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
};
inline std::optional<png_header> read_png_header(std::string_view bytes) {
  constexpr std::string_view signature{"\x89PNG\r\n\x1a\n", 8};
  if (bytes.size() < 33 || !bytes.starts_with(signature)) return std::nullopt;
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  if (be32(8) != 13 || bytes.substr(12, 4) != "IHDR") return std::nullopt;
  return png_header{be32(16), be32(20)};
}

/// The whole content of `file` (empty when it cannot be read).
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The grid shop's profile (the demo shop's /grid page):
// examples/grocery_grabber/profiles/grid.profile.
inline seckill::browser::site_profile grid_profile() {
  return seckill::browser::parse_profile(read_file(
      std::string(SECKILL_SOURCE_DIR) + "/examples/grocery_grabber/profiles/grid.profile"));
}

/// The shop recorded exactly one order, accepted, of `quantity` x `sku`, and
/// holds `left` of it. Shop is the demo shop (orders(), stock()).
template <class Shop>
void check_one_order(const Shop& shop, const std::string& sku, int quantity, int left) {
  const auto orders = shop.orders();
  REQUIRE(orders.size() == 1);
  CHECK(orders[0].sku == sku);
  CHECK(orders[0].quantity == quantity);
  CHECK(orders[0].accepted);
  CHECK(shop.stock(sku) == left);
}

/// A grabber's log lines, kept for the test to search. Thread-safe: the
/// grabber writes from its executor while the test reads.
struct grab_log {
  std::mutex log_mutex;
  std::vector<std::string> log;

  /// Grabber options whose log goes here.
  seckill::browser::grabber_options options() {
    seckill::browser::grabber_options o;
    o.log = [this](std::string_view line) {
      std::lock_guard lock(log_mutex);
      log.emplace_back(line);
    };
    return o;
  }

  /// How many lines contain `needle`.
  int count(const std::string& needle) {
    std::lock_guard lock(log_mutex);
    int n = 0;
    for (const auto& l : log) n += l.find(needle) != std::string::npos;
    return n;
  }

  bool logged(const std::string& needle) { return count(needle) > 0; }
};

}  // namespace browser_support
