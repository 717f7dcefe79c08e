// Sold-out propagation across 3 processes: one writer sells a SKU out and
// restocks it, two watcher processes (this binary re-executed with --watch)
// each keep a stock_cache fed by the store's feed (Redis pub/sub, etcd
// watch). The delay is from the moment the writer has its store's answer to
// the moment a watcher's cache applied the change; both read
// CLOCK_MONOTONIC (steady_clock), shared by the processes of one Linux host.
// The bench starts its own redis-server and etcd on loopback.

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/stock_feed.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/stock_feed.hpp>
#include <seckill/store/stock_cache.hpp>

#include "etcd/etcd_fixture.hpp"
#include "redis/redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/io_context.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

constexpr int rounds = 200;              // each: a restock to 1, then a sell-out
constexpr std::int64_t last_word = 777;  // the stock the writer sets last: watchers exit
constexpr auto watcher_lifetime = std::chrono::seconds(120);  // a watcher stops by itself
constexpr auto line_timeout_ms = 5000;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

std::string self_path() {
  std::array<char, 4096> buf{};
  const auto n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

// ---- the watcher process: prints "ready", then "<remaining> <ns>" per update of the SKU.

void report(const std::string& sku, const std::string& watched, std::int64_t remaining,
            bool& done) {
  if (sku != watched) return;
  std::printf("%lld %lld\n", static_cast<long long>(remaining), static_cast<long long>(now_ns()));
  std::fflush(stdout);
  if (remaining == last_word) done = true;
}

int watch_redis(unsigned short port, const std::string& sku) {
  asio::io_context io;
  seckill::redis::connection_config cfg;
  cfg.port = std::to_string(port);
  seckill::redis::redis_store store(io.get_executor(), cfg);
  seckill::stock_cache cache;
  bool done = false;
  cache.set_observer(
      [&](const std::string& s, std::int64_t remaining) { report(s, sku, remaining, done); });
  seckill::redis::stock_feed<seckill::redis::redis_store> feed(io.get_executor(), store, cache,
                                                               cfg);
  std::optional<std::error_code> started;
  store.async_connect([&](std::error_code ec) {
    if (ec) {
      started = ec;
      return;
    }
    feed.async_start([&](std::error_code fec) { started = fec; });
  });
  const auto until = clock_type::now() + watcher_lifetime;
  while (!(started && (*started || cache.live())) && clock_type::now() < until)
    io.run_one_for(std::chrono::milliseconds(10));
  if (!started || *started || !cache.live()) return 2;
  std::printf("ready\n");
  std::fflush(stdout);
  while (!done && clock_type::now() < until) io.run_one_for(std::chrono::milliseconds(10));
  feed.close();
  store.close();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
  return done ? 0 : 3;
}

int watch_etcd(const std::string& endpoints, const std::string& prefix, const std::string& sku) {
  asio::io_context io;
  seckill::etcd::client_options o;
  o.endpoints = seckill::etcd::parse_endpoints(endpoints);
  seckill::etcd::client c(io.get_executor(), o);
  seckill::etcd::watcher w(c);
  seckill::stock_cache cache;
  bool done = false;
  cache.set_observer(
      [&](const std::string& s, std::int64_t remaining) { report(s, sku, remaining, done); });
  seckill::etcd::stock_feed feed(w, prefix, cache);
  std::optional<std::error_code> started;
  feed.async_start([&](std::error_code ec) { started = ec; });
  const auto until = clock_type::now() + watcher_lifetime;
  while (!started && clock_type::now() < until) io.run_one_for(std::chrono::milliseconds(10));
  if (!started || *started) return 2;
  std::printf("ready\n");
  std::fflush(stdout);
  while (!done && clock_type::now() < until) io.run_one_for(std::chrono::milliseconds(10));
  feed.stop();
  return done ? 0 : 3;
}

// ---- the writer's side

// A watcher process and its stdout.
class watcher_process {
 public:
  explicit watcher_process(const std::string& args) {
    const std::string command = self_path() + " --watch " + args;
    pipe_ = ::popen(command.c_str(), "r");
    if (pipe_ == nullptr) throw std::runtime_error("cannot start: " + command);
  }
  watcher_process(const watcher_process&) = delete;
  watcher_process& operator=(const watcher_process&) = delete;
  ~watcher_process() {
    if (pipe_ != nullptr) ::pclose(pipe_);
  }

  // The next line, or throws after line_timeout_ms. Reads the pipe's
  // descriptor itself (no stdio buffer hiding bytes from poll).
  std::string line() {
    for (;;) {
      const auto nl = buffered_.find('\n');
      if (nl != std::string::npos) {
        std::string out = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return out;
      }
      pollfd p{::fileno(pipe_), POLLIN, 0};
      if (::poll(&p, 1, line_timeout_ms) <= 0)
        throw std::runtime_error("a watcher said nothing for " + std::to_string(line_timeout_ms) +
                                 " ms (after '" + buffered_ + "')");
      std::array<char, 4096> chunk{};
      const auto n = ::read(::fileno(pipe_), chunk.data(), chunk.size());
      if (n <= 0) throw std::runtime_error("a watcher ended (after '" + buffered_ + "')");
      buffered_.append(chunk.data(), static_cast<std::size_t>(n));
    }
  }
  // The time the watcher's cache took `remaining`, skipping other updates.
  std::int64_t seen(std::int64_t remaining) {
    for (;;) {
      const std::string l = line();
      long long r = 0;
      long long ns = 0;
      if (std::sscanf(l.c_str(), "%lld %lld", &r, &ns) != 2)
        throw std::runtime_error("a watcher wrote '" + l + "'");
      if (r == remaining) return ns;
    }
  }

 private:
  FILE* pipe_ = nullptr;
  std::string buffered_;
};

template <class Op>
void await_done(asio::io_context& io, Op&& start) {
  std::optional<std::error_code> got;
  start([&](std::error_code ec, auto&&...) { got = ec; });
  while (!got) io.run_one();
  io.restart();
  if (*got) throw std::runtime_error("writer: " + got->message());
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v.at(i);
}

// The writer's rounds against `store` with two watchers; fills the counters.
template <class Store>
void run_rounds(benchmark::State& state, asio::io_context& io, Store& store, const std::string& sku,
                const std::string& watcher_args) {
  watcher_process w1(watcher_args);
  watcher_process w2(watcher_args);
  for (auto* w : {&w1, &w2}) {
    if (w->line() != "ready") throw std::runtime_error("a watcher did not start");
  }
  std::vector<double> delays_us;
  std::int64_t order = 1;
  for (auto _ : state) {
    for (int r = 0; r < rounds; ++r) {
      await_done(io, [&](auto h) { store.async_set_stock(sku, 1, h); });
      std::int64_t answered = now_ns();
      for (auto* w : {&w1, &w2})
        delays_us.push_back(static_cast<double>(w->seen(1) - answered) / 1000.0);
      await_done(
          io, [&](auto h) { store.async_reserve(sku, 1, order++, std::chrono::seconds(600), h); });
      answered = now_ns();
      for (auto* w : {&w1, &w2})
        delays_us.push_back(static_cast<double>(w->seen(0) - answered) / 1000.0);
    }
  }
  await_done(io, [&](auto h) { store.async_set_stock(sku, last_word, h); });
  state.counters["p50_us"] = percentile(delays_us, 0.50);
  state.counters["p99_us"] = percentile(delays_us, 0.99);
  state.counters["max_us"] = percentile(delays_us, 1.0);
  state.counters["samples"] = static_cast<double>(delays_us.size());
}

void bm_propagation_redis(benchmark::State& state) {
  seckill::test::redis_server server;
  asio::io_context io;
  seckill::redis::connection_config cfg;
  cfg.port = server.port_string();
  seckill::redis::redis_store store(io.get_executor(), cfg);
  await_done(io, [&](auto h) { store.async_connect(h); });
  const std::string sku = "bench-sku";
  run_rounds(state, io, store, sku, "redis " + server.port_string() + " " + sku);
  store.close();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
}

void bm_propagation_etcd(benchmark::State& state) {
  seckill::test::etcd_cluster etcd(1);
  asio::io_context io;
  seckill::etcd::etcd_store_options o;
  o.prefix = "bench-cache/";
  seckill::etcd::etcd_store<> store(io.get_executor(), etcd.options(), o);
  const std::string sku = "bench-sku";
  run_rounds(state, io, store, sku, "etcd " + etcd.endpoint_list() + " " + o.prefix + " " + sku);
}

BENCHMARK(bm_propagation_redis)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_propagation_etcd)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--watch") == 0) {
    try {
      if (argc == 5 && std::strcmp(argv[2], "redis") == 0)
        return watch_redis(static_cast<unsigned short>(std::stoi(argv[3])), argv[4]);
      if (argc == 6 && std::strcmp(argv[2], "etcd") == 0)
        return watch_etcd(argv[3], argv[4], argv[5]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "watcher: %s\n", e.what());
      return 2;
    }
    std::fprintf(stderr, "usage: %s --watch redis PORT SKU | --watch etcd ENDPOINTS PREFIX SKU\n",
                 argv[0]);
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
