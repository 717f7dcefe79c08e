// etcd coordination benches, against a real etcd 3.4 started here on free
// loopback ports with a temporary data directory:
//   watch_latency        put -> watch event, p50/p99 (microseconds)
//   election_handoff     leader resigns -> the waiting candidate leads
//   election_crash       leader's process stops keeping its lease alive -> the next leads (TTL 1 s)
//   store_reserve/1      etcd_store reserves, one caller waiting for each answer
//   store_reserve/16     16 reserves in flight on 16 SKUs
// Run: build/release/bench/seckill_bench_etcd   (or scripts/bench etcd)
#include "support/alloc_counter.hpp"

#include "etcd/etcd_fixture.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace {
namespace asio = boost::asio;
using namespace seckill::etcd;
using namespace std::chrono_literals;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

seckill::test::etcd_cluster& cluster() {
  static seckill::test::etcd_cluster etcd(1);
  return etcd;
}

template <class F>
void run(F&& make) {
  asio::io_context io;
  std::exception_ptr failure;
  asio::co_spawn(io, make(io), [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void set_latency_counters(benchmark::State& state, const std::vector<double>& us) {
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
  state.counters["max_us"] = percentile(us, 1.0);
}

asio::awaitable<void> watch_latency(asio::io_context& io, benchmark::State& state) {
  client c(io.get_executor(), cluster().options());
  watcher w(c);
  watch_options o;
  o.prefix = true;
  auto [ec, s] = co_await w.async_watch("bench/watch/", o, tuple_awaitable);
  if (ec) {
    state.SkipWithError("watch failed");
    co_return;
  }
  std::vector<double> us;
  std::size_t allocs = 0;
  for (auto _ : state) {
    const auto a0 = seckill::bench::allocations();
    const auto t0 = std::chrono::steady_clock::now();
    co_await c.async_put("bench/watch/k", "v", tuple_awaitable);
    auto [nec, r] = co_await s.async_next(tuple_awaitable);
    const auto t1 = std::chrono::steady_clock::now();
    allocs += seckill::bench::allocations() - a0;
    if (nec || r.events.empty()) {
      state.SkipWithError("no event");
      break;
    }
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  set_latency_counters(state, us);
  state.counters["allocs_per_op"] =
      static_cast<double>(allocs) / static_cast<double>(std::max<std::size_t>(1, us.size()));
}

void BM_watch_latency(benchmark::State& state) {
  run([&](asio::io_context& io) { return watch_latency(io, state); });
}
BENCHMARK(BM_watch_latency)->Iterations(2000)->UseRealTime()->Unit(benchmark::kMicrosecond);

asio::awaitable<void> handoff(asio::io_context& io, benchmark::State& state, bool crash) {
  client c(io.get_executor(), cluster().options());
  std::vector<double> ms;
  int round = 0;
  for (auto _ : state) {
    const std::string prefix =
        "bench/elect/" + std::to_string(crash) + "/" + std::to_string(round++);
    auto sa = std::make_unique<session>(c, session_options{.ttl = 1s, .renew_after_loss = false});
    session sb(c, {.ttl = 5s});
    co_await sa->async_start(tuple_awaitable);
    co_await sb.async_start(tuple_awaitable);
    election a(*sa, prefix), b(sb, prefix);
    co_await a.async_campaign("a", tuple_awaitable);
    bool b_leads = false;
    std::chrono::steady_clock::time_point led;
    asio::co_spawn(
        io,
        [](election& e, bool& flag,
           std::chrono::steady_clock::time_point& at) -> asio::awaitable<void> {
          auto [ec, info] = co_await e.async_campaign("b", tuple_awaitable);
          flag = !ec;
          at = std::chrono::steady_clock::now();
        }(b, b_leads, led),
        asio::detached);
    {
      asio::steady_timer settle(io, 100ms);  // b is waiting on a's key by now
      co_await settle.async_wait(tuple_awaitable);
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (crash) {
      sa.reset();  // keepalives stop, the lease is not revoked: a crash as etcd sees it
    } else {
      co_await a.async_resign(tuple_awaitable);
    }
    while (!b_leads) {
      asio::steady_timer t(io, 1ms);
      co_await t.async_wait(tuple_awaitable);
      if (std::chrono::steady_clock::now() - t0 > 10s) break;
    }
    if (!b_leads) {
      state.SkipWithError("no new leader within 10 s");
      break;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(led - t0).count());
    co_await sb.async_close(tuple_awaitable);
  }
  state.counters["p50_ms"] = percentile(ms, 0.5);
  state.counters["max_ms"] = percentile(ms, 1.0);
}

void BM_election_handoff(benchmark::State& state) {
  run([&](asio::io_context& io) { return handoff(io, state, false); });
}
BENCHMARK(BM_election_handoff)->Iterations(50)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_election_crash(benchmark::State& state) {
  run([&](asio::io_context& io) { return handoff(io, state, true); });
}
BENCHMARK(BM_election_crash)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_store_reserve(benchmark::State& state) {
  const auto in_flight = static_cast<int>(state.range(0));
  asio::io_context io;
  etcd_store<> store(io.get_executor(), cluster().options(), {.prefix = "bench/store/"});
  static int generation = 0;
  const std::string run_tag = std::to_string(++generation);
  for (int s = 0; s < in_flight; ++s) {
    store.async_set_stock("sku" + run_tag + "-" + std::to_string(s), 1'000'000,
                          [](std::error_code) {});
  }
  io.run();
  io.restart();
  std::int64_t order = 0;
  std::int64_t done = 0;
  int errors = 0;
  for (auto _ : state) {
    // one batch: `in_flight` reserves at once, one per SKU
    for (int s = 0; s < in_flight; ++s) {
      store.async_reserve("sku" + run_tag + "-" + std::to_string(s), 1, ++order, 60s,
                          [&](std::error_code ec, seckill::reserve_result) {
                            if (ec) ++errors;
                            ++done;
                          });
    }
    io.run();
    io.restart();
  }
  if (errors) state.SkipWithError("reserve failed");
  state.SetItemsProcessed(done);
}
BENCHMARK(BM_store_reserve)
    ->Arg(1)
    ->Arg(16)
    ->MinTime(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
