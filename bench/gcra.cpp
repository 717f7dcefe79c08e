// redis::gcra_limiter: the cost of an admission decided by Redis (the
// remote path, one EVALSHA) and of a refusal by the local pre-filter (no
// round trip), against a redis-server the bench starts on a free 127.0.0.1
// port (no persistence), as bench/redis.cpp does.
//
//   build/release/bench/seckill_bench_gcra
//
// Benchmarks:
//   remote/inflight:1    one call at a time: the round trip, µs per admission
//   remote/inflight:64   64 coroutines on one connection, one thread:
//                        admissions/s, client CPU µs and heap allocations per admission
//   local/prefilter      refusals of a bucket the pre-filter knows empty, through
//                        async_acquire with a callback on one io_context: ns,
//                        allocations per refusal, and how many reached the server (none)
//   local/refuses_locally the same refusal asked synchronously (what the engine
//                        asks before starting a purchase): ns per refusal
#include "support/alloc_counter.hpp"

#include <seckill/redis/gcra_limiter.hpp>

#include "redis/redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

namespace asio = boost::asio;
using seckill::redis::connection_config;
using seckill::redis::gcra_limiter;

seckill::test::redis_server& server() {
  static seckill::test::redis_server s;
  return s;
}

connection_config config() {
  connection_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = server().port_string();
  cfg.request_timeout = std::chrono::seconds(30);
  return cfg;
}

void connect(asio::io_context& io, gcra_limiter& limiter) {
  std::optional<std::error_code> done;
  limiter.async_connect([&](std::error_code ec) { done = ec; });
  while (!done) io.run_one();
  if (*done) throw std::runtime_error("cannot connect: " + done->message());
  io.restart();
}

void close_and_drain(asio::io_context& io, gcra_limiter& limiter) {
  limiter.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
}

double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Every call admitted: a rate far above what one client reaches, each
// coroutine on a SKU of its own.
void remote(benchmark::State& state) {
  const int inflight = static_cast<int>(state.range(0));
  const int per_coroutine = inflight == 1 ? 2000 : 100;
  asio::io_context io(1);
  gcra_limiter limiter(io.get_executor(), config(),
                       {.sku_rate = 1e6, .sku_burst = 1e6, .user_rate = 1e6, .user_burst = 1e6});
  connect(io, limiter);
  std::atomic<std::int64_t> refused{0}, failed{0};
  // (the connection's health check keeps `io` busy: run until the batch is done)
  auto batch = [&] {
    int running = inflight;
    for (int c = 0; c < inflight; ++c) {
      asio::co_spawn(
          io,
          [&, c]() -> asio::awaitable<void> {
            const std::string sku = "bench-remote-" + std::to_string(c);
            for (int i = 0; i < per_coroutine; ++i) {
              auto [ec, ok] = co_await limiter.async_acquire(sku, "user-1", 1,
                                                             asio::as_tuple(asio::use_awaitable));
              if (ec) ++failed;
              if (!ok) ++refused;
            }
          },
          [&](std::exception_ptr) { --running; });
    }
    while (running > 0) io.run_one();
  };
  batch();  // warm-up
  std::size_t allocs = 0;
  double cpu = 0, wall = 0;
  std::int64_t calls = 0;
  for (auto _ : state) {
    const auto a0 = seckill::bench::allocations();
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    batch();
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu += process_cpu_seconds() - c0;
    allocs += seckill::bench::allocations() - a0;
    calls += static_cast<std::int64_t>(inflight) * per_coroutine;
  }
  state.counters["admissions_per_s"] = static_cast<double>(calls) / wall;
  state.counters["us_per_admission"] = wall * 1e6 / static_cast<double>(calls);
  state.counters["client_cpu_us_per_admission"] = cpu * 1e6 / static_cast<double>(calls);
  state.counters["allocs_per_admission"] = static_cast<double>(allocs) / static_cast<double>(calls);
  state.counters["refused"] = static_cast<double>(refused.load());
  state.counters["failed"] = static_cast<double>(failed.load());
  close_and_drain(io, limiter);
}

// A bucket emptied once through Redis, then refused locally: the caller's
// whole cost, a post of the completion included, per refusal.
void local_prefilter(benchmark::State& state) {
  asio::io_context io(1);
  gcra_limiter limiter(io.get_executor(), config(), {.sku_rate = 0.001, .sku_burst = 1});
  connect(io, limiter);
  const std::string sku =
      "bench-local-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  bool admitted = true;
  for (int i = 0; i < 2; ++i) {  // the one token, then the refusal that fills the pre-filter
    bool done = false;
    limiter.async_acquire(sku, "", 1, [&](std::error_code, bool ok) {
      admitted = ok;
      done = true;
    });
    while (!done) io.run_one();
  }
  if (admitted) throw std::runtime_error("the bucket did not empty");
  const auto remote_before = limiter.counters().refused_remote + limiter.counters().admitted;
  constexpr int per_iteration = 1000;
  std::size_t allocs = 0;
  std::int64_t refusals = 0;
  double wall = 0;
  for (auto _ : state) {
    const auto a0 = seckill::bench::allocations();
    const auto t0 = std::chrono::steady_clock::now();
    std::int64_t answered = 0;
    for (int i = 0; i < per_iteration; ++i)
      limiter.async_acquire(sku, "", 1, [&](std::error_code, bool ok) {
        refusals += ok ? 0 : 1;
        ++answered;
      });
    while (answered < per_iteration) io.run_one();
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    allocs += seckill::bench::allocations() - a0;
  }
  const auto c = limiter.counters();
  state.SetItemsProcessed(state.iterations() * per_iteration);
  state.counters["ns_per_refusal"] =
      wall * 1e9 / static_cast<double>(state.iterations() * per_iteration);
  state.counters["allocs_per_refusal"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations() * per_iteration);
  state.counters["local_refusals"] = static_cast<double>(c.refused_local);
  state.counters["server_calls"] =
      static_cast<double>(c.refused_remote + c.admitted - remote_before);
  state.counters["refusals_seen"] = static_cast<double>(refusals);
  close_and_drain(io, limiter);
}

// The same refusal asked synchronously (`refuses_locally`, what the engine
// asks before it starts a purchase's coroutine): no completion, no post.
void local_refuses_locally(benchmark::State& state) {
  asio::io_context io(1);
  gcra_limiter limiter(io.get_executor(), config(), {.sku_rate = 0.001, .sku_burst = 1});
  connect(io, limiter);
  const std::string sku =
      "bench-sync-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int i = 0; i < 2; ++i) {
    bool done = false;
    limiter.async_acquire(sku, "", 1, [&](std::error_code, bool) { done = true; });
    while (!done) io.run_one();
  }
  const auto a0 = seckill::bench::allocations();
  std::int64_t refused = 0;
  for (auto _ : state) refused += limiter.refuses_locally(sku, "user-1", 1) ? 1 : 0;
  state.counters["allocs_per_refusal"] = static_cast<double>(seckill::bench::allocations() - a0) /
                                         static_cast<double>(state.iterations());
  state.counters["refused"] =
      static_cast<double>(refused) / static_cast<double>(state.iterations());
  close_and_drain(io, limiter);
}

}  // namespace

BENCHMARK(remote)
    ->Name("remote")
    ->ArgName("inflight")
    ->Arg(1)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(local_prefilter)->Name("local/prefilter")->UseRealTime();
BENCHMARK(local_refuses_locally)->Name("local/refuses_locally");

BENCHMARK_MAIN();
