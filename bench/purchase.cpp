// purchase_engine throughput on memory_store, in process: purchases per second
// with admission on (token_bucket + circuit_breaker) and off (unlimited +
// no_breaker), on 1 and 2 threads, and heap allocations per purchase after
// warm-up. Payment is no_payment and the sink memory_orders (reserved), so the
// figures are the engine's own cost: admission, a Snowflake id, the deadline
// race, reserve, commit and persist.
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
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>

namespace {

namespace asio = boost::asio;

constexpr int batch = 1000;      // purchases in flight per iteration
constexpr int iterations = 100;  // fixed, so every order fits the pre-sized tables
constexpr int warmup_batches = 5;
constexpr std::size_t capacity =
    static_cast<std::size_t>(batch) * (iterations + warmup_batches + 8);

struct admission_on {
  seckill::token_bucket<> limiter{1e9, 1e9};  // admits everything, but pays for its CAS
  seckill::circuit_breaker<> breaker{seckill::breaker_options{}};
};
struct admission_off {
  seckill::unlimited limiter;
  seckill::no_breaker breaker;
};

template <class Admission>
void bm_purchase(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  asio::io_context io{threads};
  seckill::memory_store<> store{io.get_executor(), {.orders_per_sku = capacity}};
  Admission admission;
  seckill::snowflake<> ids{0, 1};
  seckill::no_payment payment;
  seckill::memory_orders orders{capacity};
  seckill::purchase_engine<seckill::memory_store<>, decltype(admission.limiter),
                           decltype(admission.breaker)>
      engine{store, admission.limiter, admission.breaker, ids, payment, orders};
  store.async_set_stock("sku-0001", 1'000'000'000, [](std::error_code) {});
  io.run();
  io.restart();

  auto guard = asio::make_work_guard(io);
  std::optional<std::thread> helper;
  if (threads == 2) helper.emplace([&] { io.run(); });

  std::atomic<int> done{0};
  std::atomic<int> failures{0};
  auto run_batch = [&] {
    done.store(0, std::memory_order_relaxed);
    for (int i = 0; i < batch; ++i) {
      engine.async_purchase({.sku = "sku-0001"}, [&](std::error_code ec, seckill::purchase_result) {
        if (ec) failures.fetch_add(1, std::memory_order_relaxed);
        done.fetch_add(1, std::memory_order_release);
      });
    }
    while (done.load(std::memory_order_acquire) < batch)
      io.run_one_for(std::chrono::milliseconds(1));
  };
  for (int i = 0; i < warmup_batches; ++i) run_batch();

  const auto allocs_before = seckill::bench::allocations();
  for (auto _ : state) run_batch();
  const auto allocs = seckill::bench::allocations() - allocs_before;

  guard.reset();
  io.stop();
  if (helper) helper->join();
  if (failures.load() != 0) state.SkipWithError("a purchase failed");
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["allocs_per_purchase"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations() * batch);
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

BENCHMARK(bm_purchase<admission_off>)
    ->Name("purchase/admission_off")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Iterations(iterations)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(bm_purchase<admission_on>)
    ->Name("purchase/admission_on")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Iterations(iterations)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(bm_state_machine_happy_path);
BENCHMARK(bm_state_machine_process);

BENCHMARK_MAIN();
