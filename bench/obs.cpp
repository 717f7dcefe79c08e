// Metrics hot path: counter increment and histogram observe, on 1 and 2
// threads, each thread on its own cached handle of the same child (the shared
// case that striping exists for). Allocations per operation are counted.
//   build/release/bench/seckill_bench_obs
#include <seckill/obs/metrics.hpp>
#include <seckill/obs/trace.hpp>

#include "support/alloc_counter.hpp"

#include <benchmark/benchmark.h>

#include <array>

namespace {

seckill::obs::registry& shared_registry() {
  static seckill::obs::registry reg;
  return reg;
}

// Counted on the 1-thread runs only: with 2 threads the other thread's start-up
// and reporting allocate while this one runs, and the count is process-wide.
void report_allocations(benchmark::State& state, std::size_t before) {
  if (state.threads() != 1) return;
  state.counters["allocs/op"] =
      benchmark::Counter(static_cast<double>(seckill::bench::allocations() - before) /
                             static_cast<double>(state.iterations()),
                         benchmark::Counter::kDefaults);
}

void counter_inc(benchmark::State& state) {
  auto c = shared_registry().add_counter_family("bench_counter_total", "c", {"k"}).with({"v"});
  c.inc();  // takes this thread's slot outside the timed loop
  const auto before = seckill::bench::allocations();
  for (auto _ : state) c.inc();
  report_allocations(state, before);
  benchmark::DoNotOptimize(c.value());
}
BENCHMARK(counter_inc)->Threads(1)->Threads(2)->UseRealTime();

void histogram_observe(benchmark::State& state) {
  auto h = shared_registry()
               .add_histogram_family("bench_latency_seconds", "h", {"k"})
               .with({"v"});  // default buckets: 13 bounds + +Inf
  constexpr std::array<double, 8> values{0.0007, 0.003, 0.02, 0.04, 0.09, 0.3, 0.8, 4.0};
  h.observe(values[0]);
  std::size_t i = 0;
  const auto before = seckill::bench::allocations();
  for (auto _ : state) {
    h.observe(values[i++ & 7]);
  }
  report_allocations(state, before);
  benchmark::DoNotOptimize(h.sum());
}
BENCHMARK(histogram_observe)->Threads(1)->Threads(2)->UseRealTime();

// The baseline striping avoids: every thread on one shared atomic.
void shared_atomic_fetch_add(benchmark::State& state) {
  static std::atomic<std::uint64_t> shared{0};
  for (auto _ : state) shared.fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(shared.load());
}
BENCHMARK(shared_atomic_fetch_add)->Threads(1)->Threads(2)->UseRealTime();

void traceparent_parse(benchmark::State& state) {
  constexpr std::string_view header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (auto _ : state) {
    auto ctx = seckill::obs::parse_traceparent(header);
    benchmark::DoNotOptimize(ctx);
  }
}
BENCHMARK(traceparent_parse);

}  // namespace

BENCHMARK_MAIN();
