// purchase_engine throughput on memory_store, in process: purchases per second
// with admission on (token_bucket + circuit_breaker) and off (unlimited +
// no_breaker), on 1 and 2 threads, and heap allocations per purchase after
// warm-up. Payment is no_payment and the sink memory_orders (reserved), so the
// figures are the engine's own cost: admission, a Snowflake id, the deadline
// race, reserve, commit and persist.
//
// Two layouts of the threads, both measured in the same run:
// - shared_context: one io_context run by every thread (the baseline: the
//   threads contend on its queue and wake each other);
// - context_per_thread: one io_context per thread, each thread starting its
//   own purchases with `async_purchase(its executor, ...)` (shard per core:
//   a purchase never leaves its thread; the threads share the store's shard
//   locks, the id source, the sink and the admission policies).
// And two spreads of the purchases: one hot SKU, or 1,024 SKUs.
//
//   build/release/bench/seckill_bench_purchase
#include "support/alloc_counter.hpp"

#include <seckill/id/snowflake.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/purchase/state_machine.hpp>
#include <seckill/store/memory_store.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;

constexpr int batch = 1000;      // purchases in flight per thread per iteration
constexpr int iterations = 100;  // fixed, so every order fits the pre-sized tables
constexpr int warmup_batches = 5;

struct admission_on {
  seckill::token_bucket<> limiter{1e9, 1e9};  // admits everything, but pays for its CAS
  seckill::circuit_breaker<> breaker{seckill::breaker_options{}};
};
struct admission_off {
  seckill::unlimited limiter;
  seckill::no_breaker breaker;
};

enum class layout { shared_context, context_per_thread, sku_owner, nothing_shared };

// One io_context and the purchases started on it in the current batch, on
// cache lines of its own (its thread writes `done` once per purchase).
struct alignas(64) lane {
  explicit lane(int concurrency) : io(concurrency) {}
  asio::io_context io;
  std::atomic<int> done{0};
};

// A store with its SKUs stocked, the policies and an engine over them.
template <class Admission>
struct world {
  world(asio::io_context& io, std::size_t orders_total, const std::vector<std::string>& skus)
      : store{io.get_executor(), {.orders_per_sku = orders_total / skus.size() + 64}},
        orders{orders_total} {
    for (const auto& sku : skus) store.async_set_stock(sku, 1'000'000'000, [](std::error_code) {});
    io.run();
    io.restart();
  }
  seckill::memory_store<> store;
  Admission admission;
  seckill::snowflake<> ids{0, 1};
  seckill::no_payment payment;
  seckill::memory_orders orders;
  seckill::purchase_engine<seckill::memory_store<>, decltype(admission.limiter),
                           decltype(admission.breaker)>
      engine{store, admission.limiter, admission.breaker, ids, payment, orders};
};

template <class Admission, layout Layout>
void bm_purchase(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const auto sku_count = static_cast<std::size_t>(state.range(1));
  const int lanes_count = Layout == layout::shared_context ? 1 : threads;
  const std::size_t total =
      static_cast<std::size_t>(batch) * (iterations + warmup_batches + 8) * threads;

  std::deque<lane> lanes;  // stable addresses
  for (int i = 0; i < lanes_count; ++i) lanes.emplace_back(lanes_count == 1 ? threads : 1);
  std::vector<std::string> skus;
  for (std::size_t i = 0; i < sku_count; ++i) skus.push_back("sku-" + std::to_string(i));
  std::deque<world<Admission>> worlds;
  for (auto& l : lanes) {
    worlds.emplace_back(l.io, total, skus);
    if (Layout != layout::nothing_shared) break;
  }

  std::atomic<int> failures{0};
  // Starts `lane`'s batch (on its own thread) with handlers on its executor.
  // Each purchase's SKU is drawn at random (a fixed sequence per lane and
  // round), as buyers pick theirs: two lanes rarely hit the same SKU at once.
  auto start_batch = [&](std::size_t index, std::uint64_t seed) {
    lane& l = lanes[index];
    auto& engine = worlds[Layout == layout::nothing_shared ? index : 0].engine;
    l.done.store(0, std::memory_order_relaxed);
    for (int i = 0; i < batch; ++i) {
      const auto& sku =
          skus[seckill::detail::mix64(seed + static_cast<std::uint64_t>(i)) % sku_count];
      auto handler = [&](std::error_code ec, seckill::purchase_result) {
        if (ec) failures.fetch_add(1, std::memory_order_relaxed);
        l.done.fetch_add(1, std::memory_order_release);
      };
      if constexpr (Layout == layout::sku_owner) {
        auto& owner = lanes[std::hash<std::string_view>{}(sku) % lanes.size()];
        engine.async_purchase(owner.io.get_executor(), {.sku = sku},
                              asio::bind_executor(l.io, handler));
      } else {
        engine.async_purchase(l.io.get_executor(), {.sku = sku}, handler);
      }
    }
  };

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> helpers;
  for (auto& l : lanes) guards.push_back(asio::make_work_guard(l.io));
  if (Layout == layout::shared_context) {
    for (int t = 1; t < threads; ++t) helpers.emplace_back([&] { lanes.front().io.run(); });
  } else {
    for (std::size_t i = 1; i < lanes.size(); ++i)
      helpers.emplace_back([&l = lanes[i]] { l.io.run(); });
  }

  std::uint64_t round = 0;
  auto run_batch = [&] {
    // Every lane but the first is started on its own thread; the first here.
    for (std::size_t i = 1; i < lanes.size(); ++i)
      asio::post(lanes[i].io, [&, i, seed = (round << 32) + i * batch] { start_batch(i, seed); });
    start_batch(0, round << 32);
    ++round;
    auto& mine = lanes.front();
    while (mine.done.load(std::memory_order_acquire) < batch)
      mine.io.run_one_for(std::chrono::milliseconds(1));
    for (std::size_t i = 1; i < lanes.size(); ++i)
      while (lanes[i].done.load(std::memory_order_acquire) < batch) {
        if constexpr (Layout == layout::sku_owner)
          mine.io.poll();  // purchases owned by the first lane keep coming
        else
          std::this_thread::yield();
      }
  };
  for (int i = 0; i < warmup_batches; ++i) run_batch();

  const auto allocs_before = seckill::bench::allocations();
  for (auto _ : state) run_batch();
  const auto allocs = seckill::bench::allocations() - allocs_before;

  guards.clear();
  for (auto& l : lanes) l.io.stop();
  for (auto& h : helpers) h.join();
  if (failures.load() != 0) state.SkipWithError("a purchase failed");
  const auto purchases = state.iterations() * batch * lanes_count;
  state.SetItemsProcessed(purchases);
  state.counters["allocs_per_purchase"] =
      static_cast<double>(allocs) / static_cast<double>(purchases);
}

// The state machine alone: one purchase's four static transitions.
void bm_state_machine_happy_path(benchmark::State& state) {
  for (auto _ : state) {
    seckill::purchase_machine<> m;
    auto s =
        m.fire(m.fire(m.fire(m.start(), seckill::events::reserve_ok), seckill::events::payment_ok),
               seckill::events::persist_ok);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(m);
  }
}

// The same through the run-time API (table scan per event).
void bm_state_machine_process(benchmark::State& state) {
  for (auto _ : state) {
    seckill::purchase_machine<> m;
    auto e1 = m.process(seckill::purchase_event::reserve_ok);
    auto e2 = m.process(seckill::purchase_event::payment_ok);
    auto e3 = m.process(seckill::purchase_event::persist_ok);
    benchmark::DoNotOptimize(e1);
    benchmark::DoNotOptimize(e2);
    benchmark::DoNotOptimize(e3);
    benchmark::DoNotOptimize(m);
  }
}

}  // namespace

// Args: threads, SKUs.
#define SECKILL_PURCHASE_BENCH(admission, layout, name) \
  BENCHMARK(bm_purchase<admission, layout>)             \
      ->Name(name)                                      \
      ->ArgsProduct({{1, 2}, {1, 1024}})                \
      ->ArgNames({"threads", "skus"})                   \
      ->Iterations(iterations)                          \
      ->Unit(benchmark::kMicrosecond)                   \
      ->UseRealTime()

SECKILL_PURCHASE_BENCH(admission_off, layout::context_per_thread, "purchase/admission_off");
SECKILL_PURCHASE_BENCH(admission_on, layout::context_per_thread, "purchase/admission_on");
SECKILL_PURCHASE_BENCH(admission_off, layout::shared_context,
                       "purchase/admission_off/shared_context");
SECKILL_PURCHASE_BENCH(admission_off, layout::sku_owner, "purchase/admission_off/sku_owner");
SECKILL_PURCHASE_BENCH(admission_off, layout::nothing_shared,
                       "purchase/admission_off/nothing_shared");
BENCHMARK(bm_state_machine_happy_path);
BENCHMARK(bm_state_machine_process);

BENCHMARK_MAIN();
