// redis_store reserve throughput against a real redis-server, and the
// ceiling: redis-benchmark (the server's own C client) running the very same
// EVALSHA in the same run, 50 clients, unpipelined and with -P 16.
//
//   build/release/bench/seckill_bench_redis
//   SECKILL_BENCH_REDIS_PORT=6379 build/release/bench/seckill_bench_redis   # an existing
//                                    # server on 127.0.0.1 (no password); its data is kept
//
// Without SECKILL_BENCH_REDIS_PORT the bench starts its own redis-server on
// a free 127.0.0.1 port with a temporary directory and no persistence.
// Benchmarks, in order:
//   ceiling/redis-benchmark/P:1 and P:16   reserve by EVALSHA, requests per second
//   reserve/one_connection/inflight:64     one redis_store connection, one thread,
//                                          64 coroutines each with one reserve in flight
//   reserve/pool_2_threads/inflight:64     pooled_redis_store (2 connections), 2 threads
//   reserve/one_connection_tls/inflight:64 as one_connection, over TLS to a second
//                                          redis-server of the bench's own (tls-port,
//                                          certificates made by the openssl CLI); its
//                                          ceiling is the plain server's. Skipped with
//                                          SECKILL_BENCH_REDIS_PORT
// The two client benchmarks alternate with redis-benchmark -P 16, round by
// round (25,600 reserves a side each): `reserves_per_s` and `ceiling_per_s`
// are the medians of the two sides and `of_ceiling` the median of the
// rounds' ratios. `allocs_per_reserve` counts heap allocations of the whole
// process during the client's rounds, `client_cpu_us_per_reserve` its CPU
// time (every thread) per reserve over the same rounds.
#include "support/alloc_counter.hpp"
#include "support/redis_ceiling.hpp"

#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "support/tls_certs.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using seckill::redis::connection_config;

constexpr int inflight = 64;
constexpr int reserves_per_coroutine = 100;  // per iteration: 6400 reserves
constexpr std::chrono::seconds hold{600};

// The server: ours, or the one SECKILL_BENCH_REDIS_PORT names.
struct server_env {
  std::unique_ptr<seckill::test::redis_server> own;
  unsigned short port = 0;

  static server_env& get() {
    static server_env env = [] {
      server_env e;
      if (const char* p = std::getenv("SECKILL_BENCH_REDIS_PORT")) {
        e.port = static_cast<unsigned short>(std::stoi(p));
      } else {
        e.own = std::make_unique<seckill::test::redis_server>();
        e.port = e.own->port();
      }
      return e;
    }();
    return env;
  }

  connection_config config() const {
    connection_config cfg;
    cfg.host = "127.0.0.1";
    cfg.port = std::to_string(port);
    cfg.request_timeout = std::chrono::seconds(30);
    return cfg;
  }
};

// A second redis-server of the bench's own, with a TLS port, for the TLS row.
struct tls_server_env {
  std::unique_ptr<seckill::test::redis_server> own;

  static tls_server_env& get() {
    static tls_server_env env = [] {
      const auto& pki = seckill::test::test_pki::get();
      tls_server_env e;
      e.own = std::make_unique<seckill::test::redis_server>(
          seckill::test::redis_tls{pki.server_cert(), pki.server_key(), pki.ca()});
      return e;
    }();
    return env;
  }

  connection_config config() const {
    connection_config cfg = server_env::get().config();
    cfg.port = std::to_string(own->tls_port());
    cfg.tls = seckill::tls_options{.ca_file = seckill::test::test_pki::get().ca()};
    return cfg;
  }
};

std::atomic<std::int64_t> next_order{1};

template <class Store>
void connect_and_stock(asio::io_context& io, Store& store, const std::string& sku) {
  std::optional<std::error_code> done;
  store.async_connect([&](std::error_code ec) { done = ec; });
  while (!done) io.run_one();
  if (*done) throw std::runtime_error("cannot connect: " + done->message());
  done.reset();
  store.async_set_stock(sku, std::int64_t{1} << 50, [&](std::error_code ec) { done = ec; });
  while (!done) io.run_one();
  if (*done) throw std::runtime_error("set_stock failed: " + done->message());
  io.restart();
}

// Closes the store and runs what its close left on `io`.
template <class Store>
void close_and_drain(asio::io_context& io, Store& store) {
  store.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
}

// One batch: `inflight` coroutines, each reserving `reserves_per_coroutine` times.
template <class Store>
void run_batch(asio::io_context& io, Store& store, const std::string& sku, int threads,
               std::atomic<std::int64_t>& failures) {
  std::atomic<int> left{inflight};
  for (int c = 0; c < inflight; ++c) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < reserves_per_coroutine; ++i) {
            auto [ec, r] = co_await store.async_reserve(sku, 1, next_order++, hold,
                                                        asio::as_tuple(asio::use_awaitable));
            if (ec || r.status != seckill::reserve_status::reserved) ++failures;
          }
        },
        [&](std::exception_ptr) {
          if (--left == 0) io.stop();
        });
  }
  std::vector<std::thread> extra;
  for (int t = 1; t < threads; ++t) extra.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  io.restart();
}

// redis-benchmark (50 clients) reserving on `sku` (stocked and the script
// loaded beforehand): the server's own ceiling, requests per second.
double redis_benchmark(const std::string& sku, int pipeline, int requests) {
  return seckill::bench::redis_benchmark_reserve({.port = server_env::get().port,
                                                  .sku = sku,
                                                  .clients = 50,
                                                  .pipeline = pipeline,
                                                  .requests = requests,
                                                  .hold = hold});
}

// Stocks a SKU for the ceiling and loads the script, through a store as a shop would.
void prepare_ceiling(const std::string& sku) {
  asio::io_context io(1);
  seckill::redis::redis_store store(io.get_executor(), server_env::get().config());
  connect_and_stock(io, store, sku);
  close_and_drain(io, store);
}

// CPU seconds (user + system) of this process, every thread: the client's
// side alone (redis-server and redis-benchmark are other processes).
double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One round per iteration: redis-benchmark -P 16 runs `round_reserves`
// reserves on its own SKU (untimed), then the client runs as many (timed).
// The host's speed drifts over seconds on a shared machine, so the two sides
// alternate round by round and `of_ceiling` is the median of the rounds'
// ratios; `reserves_per_s` and `ceiling_per_s` are the medians of each side.
template <class Store>
void reserve_bench(benchmark::State& state, int threads, Store& store, asio::io_context& io,
                   const std::string& sku) {
  constexpr int batches_per_round = 4;
  constexpr int round_reserves = batches_per_round * inflight * reserves_per_coroutine;
  const std::string ceiling_sku = sku + "-ceiling";
  prepare_ceiling(ceiling_sku);
  std::atomic<std::int64_t> failures{0};
  run_batch(io, store, sku, threads, failures);  // warm-up
  std::vector<double> client, ceiling, ratio;
  std::size_t allocs = 0;
  double cpu = 0;
  for (auto _ : state) {
    double c = 0;
    try {
      c = redis_benchmark(ceiling_sku, 16, round_reserves);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    const auto allocs_before = seckill::bench::allocations();
    const double cpu_before = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    for (int b = 0; b < batches_per_round; ++b) run_batch(io, store, sku, threads, failures);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    cpu += process_cpu_seconds() - cpu_before;
    allocs += seckill::bench::allocations() - allocs_before;
    state.SetIterationTime(elapsed.count());
    const double rate = round_reserves / elapsed.count();
    client.push_back(rate);
    ceiling.push_back(c);
    ratio.push_back(rate / c);
  }
  const double reserves =
      static_cast<double>(round_reserves) * static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(reserves));
  state.counters["allocs_per_reserve"] = static_cast<double>(allocs) / reserves;
  state.counters["client_cpu_us_per_reserve"] = cpu * 1e6 / reserves;
  state.counters["failures"] = static_cast<double>(failures.load());
  state.counters["reserves_per_s"] = median(client);
  state.counters["ceiling_per_s"] = median(ceiling);
  state.counters["of_ceiling"] = median(ratio);
  if (failures.load() != 0) state.SkipWithError("some reserves failed");
}

void BM_reserve_one_connection(benchmark::State& state) {
  auto& env = server_env::get();
  asio::io_context io(1);
  seckill::redis::redis_store store(io.get_executor(), env.config());
  const std::string sku = "bench-one";
  connect_and_stock(io, store, sku);
  reserve_bench(state, 1, store, io, sku);
  close_and_drain(io, store);
}

void BM_reserve_pool_2_threads(benchmark::State& state) {
  auto& env = server_env::get();
  asio::io_context io(2);
  seckill::redis::redis_store_options options;
  options.pool_size = 2;
  seckill::redis::pooled_redis_store store(io.get_executor(), env.config(), options);
  const std::string sku = "bench-pool";
  connect_and_stock(io, store, sku);
  reserve_bench(state, 2, store, io, sku);
  close_and_drain(io, store);
}

void BM_reserve_one_connection_tls(benchmark::State& state) {
  if (std::getenv("SECKILL_BENCH_REDIS_PORT") != nullptr) {
    state.SkipWithError("the TLS row runs on the bench's own servers only");
    return;
  }
  asio::io_context io(1);
  seckill::redis::redis_store store(io.get_executor(), tls_server_env::get().config());
  const std::string sku = "bench-tls";
  connect_and_stock(io, store, sku);
  reserve_bench(state, 1, store, io, sku);
  close_and_drain(io, store);
}

// redis-benchmark alone, unpipelined and with -P 16.
void BM_redis_benchmark_ceiling(benchmark::State& state) {
  const auto pipeline = static_cast<int>(state.range(0));
  const int requests = pipeline > 1 ? 200000 : 100000;
  const std::string sku = "bench-ceiling";
  prepare_ceiling(sku);
  for (auto _ : state) {
    try {
      const double rps = redis_benchmark(sku, pipeline, requests);
      state.SetIterationTime(requests / rps);
      state.counters["reserves_per_s"] = rps;
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(requests) * state.iterations());
}

}  // namespace

BENCHMARK(BM_redis_benchmark_ceiling)
    ->Name("ceiling/redis-benchmark")
    ->ArgName("P")
    ->Arg(1)
    ->Arg(16)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_one_connection)
    ->Name("reserve/one_connection/inflight:64")
    ->Iterations(9)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_pool_2_threads)
    ->Name("reserve/pool_2_threads/inflight:64")
    ->Iterations(9)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_one_connection_tls)
    ->Name("reserve/one_connection_tls/inflight:64")
    ->Iterations(9)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
