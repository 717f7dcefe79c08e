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
// `of_ceiling` is a client's reserves per second over the -P 16 ceiling;
// `allocs_per_reserve` counts heap allocations of the whole process.
#include "support/alloc_counter.hpp"

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
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
  double ceiling_pipelined = 0;  // filled by the ceiling benchmark

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

// One batch: `inflight` coroutines, each reserving `reserves_per_coroutine` times.
template <class Store>
void run_batch(asio::io_context& io, Store& store, const std::string& sku, int threads,
               std::atomic<std::int64_t>& failures) {
  std::atomic<int> left{inflight};
  for (int c = 0; c < inflight; ++c) {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      for (int i = 0; i < reserves_per_coroutine; ++i) {
        auto [ec, r] = co_await store.async_reserve(sku, 1, next_order++, hold,
                                                    asio::as_tuple(asio::use_awaitable));
        if (ec || r.status != seckill::reserve_status::reserved) ++failures;
      }
    }, [&](std::exception_ptr) {
      if (--left == 0) io.stop();
    });
  }
  std::vector<std::thread> extra;
  for (int t = 1; t < threads; ++t) extra.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  io.restart();
}

template <class Store>
void reserve_bench(benchmark::State& state, int threads, Store& store, asio::io_context& io,
                   const std::string& sku) {
  std::atomic<std::int64_t> failures{0};
  run_batch(io, store, sku, threads, failures);  // warm-up
  const auto allocs_before = seckill::bench::allocations();
  std::int64_t reserves = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    run_batch(io, store, sku, threads, failures);
    reserves += inflight * reserves_per_coroutine;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const auto allocs = seckill::bench::allocations() - allocs_before;
  state.SetItemsProcessed(reserves);
  state.counters["allocs_per_reserve"] = static_cast<double>(allocs) / static_cast<double>(reserves);
  state.counters["failures"] = static_cast<double>(failures.load());
  const double rate = static_cast<double>(reserves) / elapsed.count();
  state.counters["reserves_per_s"] = rate;
  if (server_env::get().ceiling_pipelined > 0)
    state.counters["of_ceiling"] = rate / server_env::get().ceiling_pipelined;
  if (failures.load() != 0) state.SkipWithError("some reserves failed");
}

void BM_reserve_one_connection(benchmark::State& state) {
  auto& env = server_env::get();
  asio::io_context io(1);
  seckill::redis::redis_store store(io.get_executor(), env.config());
  const std::string sku = "bench-one";
  connect_and_stock(io, store, sku);
  reserve_bench(state, 1, store, io, sku);
  store.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
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
  store.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
}

// redis-benchmark running the store's reserve: the server's own ceiling.
void BM_redis_benchmark_ceiling(benchmark::State& state) {
  auto& env = server_env::get();
  const auto pipeline = state.range(0);
  const int requests = pipeline > 1 ? 200000 : 100000;
  const std::string sku = "bench-ceiling";
  // Load the script and stock the SKU through a store, as a shop would.
  {
    asio::io_context io(1);
    seckill::redis::redis_store store(io.get_executor(), env.config());
    connect_and_stock(io, store, sku);
    store.close();
    io.restart();
    io.run_for(std::chrono::seconds(2));
  }
  const seckill::redis::script lua{std::string(seckill::redis::store_lua)};
  using store_t = seckill::redis::redis_store;
  seckill::detail::temp_dir dir("seckill-bench");
  const auto out = (dir.path() / "redis-benchmark.log").string();
  for (auto _ : state) {
    seckill::detail::child_process p({{"/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p",
                                       std::to_string(env.port), "-c", "50", "-n",
                                       std::to_string(requests), "-P", std::to_string(pipeline),
                                       "-r", "1000000000", "-q", "EVALSHA", lua.sha1(), "3",
                                       store_t::stock_key(sku),
                                       "seckill:{" + sku + "}:order:__rand_int__",
                                       store_t::holds_key(sku), "reserve", "__rand_int__", "1",
                                       std::to_string(std::chrono::milliseconds(hold).count()),
                                       "86400000"},
                                      out, {}});
    if (!p.wait_for(std::chrono::minutes(5)) || !WIFEXITED(p.wait_status()) ||
        WEXITSTATUS(p.wait_status()) != 0) {
      state.SkipWithError("redis-benchmark failed (is redis-tools installed?)");
      return;
    }
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const auto at = s.rfind(" requests per second");
    if (at == std::string::npos) {
      state.SkipWithError(("cannot read redis-benchmark's output: " + s).c_str());
      return;
    }
    const auto begin = s.rfind(' ', at - 1);
    const double rps = std::stod(s.substr(begin + 1, at - begin - 1));
    state.SetIterationTime(requests / rps);
    state.counters["reserves_per_s"] = rps;
    if (pipeline > 1) env.ceiling_pipelined = rps;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(requests) * state.iterations());
}

}  // namespace

BENCHMARK(BM_redis_benchmark_ceiling)
    ->Name("ceiling/redis-benchmark")->ArgName("P")->Arg(1)->Arg(16)
    ->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_one_connection)
    ->Name("reserve/one_connection/inflight:64")->MinTime(2.0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_pool_2_threads)
    ->Name("reserve/pool_2_threads/inflight:64")->MinTime(2.0)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
