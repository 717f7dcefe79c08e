// redis_cluster_store on a real Redis Cluster (3 masters, 3 replicas on
// 127.0.0.1, started by the bench) against the cluster's own ceiling:
// redis-benchmark running the store's reserve script by EVALSHA, one process
// per master at once, each on a SKU whose slot that master serves (the sum of
// their rates). redis-benchmark --cluster is not used: its {tag} substitution
// picks key tags of its own, whose SKUs could not be stocked beforehand, and
// a reserve on a SKU without stock is a cheaper script than a real one.
//
//   reserve/cluster/inflight:N         the store, one client thread, N reserves
//                                      in flight spread over 3 SKUs (one per
//                                      master): 64 as the one-server bench,
//                                      192 for 64 per master
//   reserve/cluster_wait_1/inflight:N  the same with replicas_to_wait = 1
//                                      (every reserve also waits for its
//                                      master's replica)
//
// Each round alternates the ceiling (untimed) and the client (timed) with as
// many reserves; `of_ceiling` is the median of the rounds' ratios.
//
//   reserve/hot_sku/inflight:192       one hot SKU, every reserve on it, kept
//                                      by sharded_redis_cluster_store whole
//                                      (K = 1) and split over K = 2 and 4
//                                      shards (each split SKU's shards on
//                                      different masters), the three timed in
//                                      turn in every iteration: `k<K>_per_s`
//                                      the median rates, `k<K>_over_k1` the
//                                      medians of the iterations' ratios.
//
//   build/release/bench/seckill_bench_redis_cluster

#include "support/alloc_counter.hpp"
#include "support/redis_ceiling.hpp"

#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/sharded_store.hpp>

#include "redis/redis_cluster.hpp"

#include <benchmark/benchmark.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using seckill::redis::redis_cluster_store;

constexpr int round_reserves = 24576;  // per round and side (64 x 384, 192 x 128)
constexpr std::chrono::seconds hold{600};

seckill::test::redis_cluster& cluster() {
  static seckill::test::redis_cluster c(3, 1);
  return c;
}

// One SKU name per master, with `prefix`: SKUs whose slots the masters serve.
std::vector<std::string> skus_per_master(const std::string& prefix) {
  auto& c = cluster();
  std::vector<std::string> out;
  std::vector<int> masters;
  for (int i = 0; out.size() < static_cast<std::size_t>(c.masters()); ++i) {
    const std::string sku = prefix + std::to_string(i);
    const int m = c.master_of_slot(seckill::redis::key_slot(sku));
    if (m < 0 || std::find(masters.begin(), masters.end(), m) != masters.end()) continue;
    masters.push_back(m);
    out.push_back(sku);
  }
  return out;
}

seckill::redis::cluster_config config() {
  auto cfg = cluster().config();
  cfg.node.request_timeout = std::chrono::seconds(30);
  return cfg;
}

template <class Body>
void run_until(asio::io_context& io, Body&& done) {
  while (!done()) io.run_one();
  io.restart();
}

void connect_and_stock(asio::io_context& io, redis_cluster_store& store,
                       const std::vector<std::string>& skus) {
  std::optional<std::error_code> done;
  store.async_connect([&](std::error_code ec) { done = ec; });
  run_until(io, [&] { return done.has_value(); });
  if (*done) throw std::runtime_error("cannot connect: " + store.connection().last_error());
  for (const auto& sku : skus) {
    done.reset();
    store.async_set_stock(sku, std::int64_t{1} << 50, [&](std::error_code ec) { done = ec; });
    run_until(io, [&] { return done.has_value(); });
    if (*done) throw std::runtime_error("set_stock failed: " + done->message());
  }
}

void close_and_drain(asio::io_context& io, redis_cluster_store& store) {
  store.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
}

std::atomic<std::int64_t> next_order{1};

// One round: `inflight` coroutines, each reserving its share of
// `round_reserves`, on the SKUs in turn.
template <class Store>
void run_round(asio::io_context& io, Store& store, const std::vector<std::string>& skus,
               int inflight, std::atomic<std::int64_t>& failures) {
  const int reserves_per_coroutine = round_reserves / inflight;
  int left = inflight;
  for (int c = 0; c < inflight; ++c) {
    asio::co_spawn(
        io,
        [&, c]() -> asio::awaitable<void> {
          for (int i = 0; i < reserves_per_coroutine; ++i) {
            const auto& sku = skus[static_cast<std::size_t>(c + i) % skus.size()];
            auto [ec, r] = co_await store.async_reserve(sku, 1, next_order++, hold,
                                                        asio::as_tuple(asio::use_awaitable));
            if (ec || r.status != seckill::reserve_status::reserved) ++failures;
          }
        },
        [&](std::exception_ptr) {
          if (--left == 0) io.stop();
        });
  }
  io.run();
  io.restart();
}

// The cluster's ceiling: redis-benchmark -P 16 on every master at once, each
// on its own stocked SKU; the sum of their requests per second.
double ceiling(const std::vector<std::string>& skus) {
  auto& c = cluster();
  std::vector<std::future<double>> runs;
  for (const auto& sku : skus) {
    const int master = c.master_of_slot(seckill::redis::key_slot(sku));
    runs.push_back(std::async(std::launch::async, [&c, master, sku] {
      return seckill::bench::redis_benchmark_reserve({.port = c.port(master),
                                                      .sku = sku,
                                                      .clients = 50,
                                                      .pipeline = 16,
                                                      .requests = round_reserves / 3,
                                                      .hold = hold});
    }));
  }
  double sum = 0;
  for (auto& r : runs) sum += r.get();
  return sum;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void reserve_bench(benchmark::State& state, int replicas_to_wait) {
  const auto inflight = static_cast<int>(state.range(0));
  asio::io_context io(1);
  seckill::redis::redis_store_options options;
  options.replicas_to_wait = replicas_to_wait;
  redis_cluster_store store(io.get_executor(), config(), options);
  const std::string tag = replicas_to_wait > 0 ? "w" : "p";
  const auto skus = skus_per_master("bench-cluster-" + tag + "-");
  const auto ceiling_skus = skus_per_master("bench-ceiling-" + tag + "-");
  try {
    connect_and_stock(io, store, skus);
    // the ceiling's SKUs are stocked, and the script loaded, through the store too
    connect_and_stock(io, store, ceiling_skus);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::atomic<std::int64_t> failures{0};
  run_round(io, store, skus, inflight, failures);  // warm-up
  std::vector<double> client, top, ratio;
  std::size_t allocs = 0;
  for (auto _ : state) {
    double c = 0;
    try {
      c = ceiling(ceiling_skus);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      break;
    }
    const auto allocs_before = seckill::bench::allocations();
    const auto start = std::chrono::steady_clock::now();
    run_round(io, store, skus, inflight, failures);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    allocs += seckill::bench::allocations() - allocs_before;
    state.SetIterationTime(elapsed.count());
    const double rate = round_reserves / elapsed.count();
    client.push_back(rate);
    top.push_back(c);
    ratio.push_back(rate / c);
  }
  const double reserves =
      static_cast<double>(round_reserves) * static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(reserves));
  state.counters["allocs_per_reserve"] = static_cast<double>(allocs) / reserves;
  state.counters["failures"] = static_cast<double>(failures.load());
  state.counters["reserves_per_s"] = median(client);
  state.counters["ceiling_per_s"] = median(top);
  state.counters["of_ceiling"] = median(ratio);
  state.counters["moved"] = static_cast<double>(store.connection().moved_count());
  if (failures.load() != 0) state.SkipWithError("some reserves failed");
  close_and_drain(io, store);
}

// A SKU name with `prefix` whose `shards` shards sit on min(shards, masters)
// different masters.
std::string spread_sku(const std::string& prefix, int shards) {
  auto& c = cluster();
  const auto wanted = static_cast<std::size_t>(std::min(shards, c.masters()));
  for (int i = 0;; ++i) {
    const std::string sku = prefix + std::to_string(i);
    std::vector<int> masters;
    for (int s = 0; s < shards; ++s) {
      const auto shard = seckill::redis::sharded_redis_cluster_store::shard_sku(sku, s, shards);
      const int m = c.master_of_slot(seckill::redis::key_slot("{" + shard + "}"));
      if (std::find(masters.begin(), masters.end(), m) == masters.end()) masters.push_back(m);
    }
    if (masters.size() == wanted) return sku;
  }
}

void hot_sku_bench(benchmark::State& state) {
  using seckill::redis::sharded_redis_cluster_store;
  const auto inflight = static_cast<int>(state.range(0));
  const std::vector<int> splits{1, 2, 4};
  std::vector<std::string> skus;
  seckill::redis::split_options split;
  for (const int k : splits) {
    skus.push_back(spread_sku("bench-hot-" + std::to_string(k) + "-", k));
    split.shards[skus.back()] = k;
  }
  asio::io_context io(1);
  sharded_redis_cluster_store store(io.get_executor(), config(), split);
  std::optional<std::error_code> done;
  store.async_connect([&](std::error_code ec) { done = ec; });
  run_until(io, [&] { return done.has_value(); });
  for (const auto& sku : skus) {
    if (*done) break;
    done.reset();
    store.async_set_stock(sku, std::int64_t{1} << 50, [&](std::error_code ec) { done = ec; });
    run_until(io, [&] { return done.has_value(); });
  }
  if (*done) {
    state.SkipWithError(("cannot stock the hot SKUs: " + store.last_error() + " " +
                         store.store().connection().last_error())
                            .c_str());
    return;
  }
  std::atomic<std::int64_t> failures{0};
  // One round on one SKU, timed: reserves per second.
  const auto round = [&](const std::string& sku) {
    const auto start = std::chrono::steady_clock::now();
    run_round(io, store, {sku}, inflight, failures);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return round_reserves / elapsed.count();
  };
  for (const auto& sku : skus) round(sku);  // warm-up: scripts, connections
  std::vector<std::vector<double>> rates(splits.size()), ratios(splits.size());
  for (auto _ : state) {
    double total_time = 0;
    std::vector<double> now;
    for (std::size_t k = 0; k < splits.size(); ++k) {
      now.push_back(round(skus[k]));
      total_time += round_reserves / now.back();
      rates[k].push_back(now.back());
      ratios[k].push_back(now.back() / now.front());
    }
    state.SetIterationTime(total_time);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(round_reserves) * 3 * state.iterations());
  for (std::size_t k = 0; k < splits.size(); ++k) {
    const std::string name = "k" + std::to_string(splits[k]);
    state.counters[name + "_per_s"] = median(rates[k]);
    if (k > 0) state.counters[name + "_over_k1"] = median(ratios[k]);
  }
  state.counters["failures"] = static_cast<double>(failures.load());
  if (failures.load() != 0) state.SkipWithError("some reserves failed");
  store.close();
  io.restart();
  io.run_for(std::chrono::seconds(2));
}

void BM_reserve_cluster(benchmark::State& state) { reserve_bench(state, 0); }
void BM_reserve_cluster_wait_1(benchmark::State& state) { reserve_bench(state, 1); }

}  // namespace

BENCHMARK(BM_reserve_cluster)
    ->Name("reserve/cluster")
    ->ArgName("inflight")
    ->Arg(64)
    ->Arg(192)
    ->Iterations(7)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_reserve_cluster_wait_1)
    ->Name("reserve/cluster_wait_1")
    ->ArgName("inflight")
    ->Arg(192)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(hot_sku_bench)
    ->Name("reserve/hot_sku")
    ->ArgName("inflight")
    ->Arg(192)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
