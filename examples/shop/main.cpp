// The demo grocery shop: serves the page on 127.0.0.1 and restocks on a schedule.
//
//   seckill_example_shop [--port N] [--restock-every SECONDS] [--for SECONDS]
//                        [--clock-skew MS] [--clock-jitter MS] [--processing-delay MS]
//
// --clock-skew runs the shop's clock MS ahead of this host's (behind when
// negative); --clock-jitter waits a random 0..MS before each request is
// handled (and its Date stamped), --processing-delay MS more before it is
// answered: a shop whose clock a grabber must estimate.
// Every restock puts 3 units of one SKU (in turn) on the shelf for two seconds.
// Restock by hand with: curl -X POST 'http://127.0.0.1:N/restock?sku=veg-box&qty=5'
#include "shop_server.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

namespace {
volatile std::sig_atomic_t stop = 0;

int parse_int(const char* flag, const char* v, int lo, int hi) {
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < lo || n > hi) {
    std::fprintf(stderr, "%s must be a whole number in [%d, %d], got '%s'\n", flag, lo, hi, v);
    std::exit(2);
  }
  return static_cast<int>(n);
}
}  // namespace

int main(int argc, char** argv) {
  int port = 0, every = 10, run_for = 0, skew = 0, jitter = 0, processing = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr,
                   "usage: %s [--port N] [--restock-every SECONDS] [--for SECONDS]\n"
                   "          [--clock-skew MS] [--clock-jitter MS] [--processing-delay MS]\n",
                   argv[0]);
      return 2;
    }
    if (a == "--port")
      port = parse_int("--port", argv[++i], 0, 65535);
    else if (a == "--restock-every")
      every = parse_int("--restock-every", argv[++i], 1, 3600);
    else if (a == "--for")
      run_for = parse_int("--for", argv[++i], 1, 86400);
    else if (a == "--clock-skew")
      skew = parse_int("--clock-skew", argv[++i], -86'400'000, 86'400'000);
    else if (a == "--clock-jitter")
      jitter = parse_int("--clock-jitter", argv[++i], 0, 10'000);
    else if (a == "--processing-delay")
      processing = parse_int("--processing-delay", argv[++i], 0, 10'000);
    else {
      std::fprintf(stderr, "unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  std::signal(SIGINT, [](int) { stop = 1; });
  std::signal(SIGTERM, [](int) { stop = 1; });
  shop::shop_server server(shop::default_catalogue(), static_cast<unsigned short>(port));
  server.set_clock_skew(std::chrono::milliseconds(skew));
  server.set_clock_jitter(std::chrono::milliseconds(jitter), std::chrono::milliseconds(processing));
  std::printf("Fresh Market open at %s (restock every %d s)\n", server.url().c_str(), every);
  std::printf("members' page %s, log in at %s (user %s)\n", server.members_url().c_str(),
              server.login_url().c_str(), shop::demo_user);
  std::fflush(stdout);
  const auto catalogue = shop::default_catalogue();
  const auto start = std::chrono::steady_clock::now();
  std::size_t next = 0;
  auto restock_at = start + std::chrono::seconds(every);
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    if (run_for > 0 && now - start >= std::chrono::seconds(run_for)) break;
    if (now >= restock_at) {
      const auto& s = catalogue[next++ % catalogue.size()];
      server.set_stock(s.id, 3);
      std::printf("restocked 3 x %s\n", s.id.c_str());
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      server.sell_out();
      restock_at = std::chrono::steady_clock::now() + std::chrono::seconds(every);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("%zu orders received\n", server.orders().size());
  return 0;
}
