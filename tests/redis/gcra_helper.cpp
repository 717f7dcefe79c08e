// A client process for the multi-process gcra_limiter test: it hammers one
// bucket on a redis-server with several calls in flight for a fixed window
// and reports what it was told, with the server's first and last instants.
//
//   seckill_gcra_helper PORT SKU RATE BURST START_AT_MS WINDOW_MS IN_FLIGHT
//
// Waits until START_AT_MS (system_clock, ms since the epoch), then keeps
// IN_FLIGHT calls of redis::gcra_limiter::async_check (pre-filter off: every
// call reaches the server) going until WINDOW_MS have passed, and prints
// "RESULT <admitted> <refused> <first server us> <last server us>" (the
// least and greatest server TIME among its calls). Exits 0, 1 on a failed
// call (with "ERROR ..."), 2 on bad arguments.
#include <seckill/redis/gcra_limiter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <thread>

namespace {
namespace asio = boost::asio;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

struct tally {
  std::int64_t admitted = 0, refused = 0;
  std::int64_t first = std::numeric_limits<std::int64_t>::max(), last = 0;
  std::string failure;
};

asio::awaitable<void> hammer(seckill::redis::gcra_limiter& limiter, const std::string& sku,
                             std::chrono::steady_clock::time_point until, tally& t) {
  while (std::chrono::steady_clock::now() < until && t.failure.empty()) {
    auto [ec, d] = co_await limiter.async_check(sku, "", 1, tuple_awaitable);
    if (ec) {
      t.failure = ec.message();
      co_return;
    }
    (d.admitted ? t.admitted : t.refused)++;
    t.first = std::min(t.first, d.server_now_us);
    t.last = std::max(t.last, d.server_now_us);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(
        stderr, "usage: seckill_gcra_helper PORT SKU RATE BURST START_AT_MS WINDOW_MS IN_FLIGHT\n");
    return 2;
  }
  seckill::redis::connection_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = argv[1];
  const std::string sku = argv[2];
  seckill::redis::gcra_limiter_options options;
  options.sku_rate = std::atof(argv[3]);
  options.sku_burst = std::atof(argv[4]);
  options.prefilter = false;
  options.timeout = std::chrono::seconds(5);
  const auto start_at =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(std::atoll(argv[5])));
  const auto window = std::chrono::milliseconds(std::atoll(argv[6]));
  const int in_flight = std::atoi(argv[7]);
  if (in_flight < 1 || window.count() <= 0) {
    std::fprintf(stderr, "seckill_gcra_helper: bad window '%s' or in-flight '%s'\n", argv[6],
                 argv[7]);
    return 2;
  }
  asio::io_context io;
  seckill::redis::gcra_limiter limiter(io.get_executor(), cfg, options);
  std::optional<std::error_code> connected;
  limiter.async_connect([&](std::error_code ec) { connected = ec; });
  while (!connected) io.run_one();  // (the connection's health check keeps `io` busy)
  if (const std::error_code connect_ec = *connected) {
    std::printf("ERROR connect %s\n", connect_ec.message().c_str());
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  std::this_thread::sleep_until(start_at);
  const auto until = std::chrono::steady_clock::now() + window;
  tally t;
  int running = in_flight;
  for (int i = 0; i < in_flight; ++i)
    asio::co_spawn(io, hammer(limiter, sku, until, t), [&](std::exception_ptr) {
      if (--running == 0) io.stop();
    });
  io.restart();
  io.run_for(window + std::chrono::seconds(30));
  if (running != 0) t.failure = "the calls did not end within 30 s of the window";
  if (!t.failure.empty()) {
    std::printf("ERROR call %s\n", t.failure.c_str());
    return 1;
  }
  std::printf("RESULT %lld %lld %lld %lld\n", static_cast<long long>(t.admitted),
              static_cast<long long>(t.refused), static_cast<long long>(t.first),
              static_cast<long long>(t.last));
  std::fflush(stdout);
  limiter.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
  return 0;
}
