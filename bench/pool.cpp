// object_pool: acquire + release of a 1.2 KB request object, against new/delete
// and std::make_unique of the same object, on 1 and 2 threads (the 2-thread
// rows share one pool). Each row reports `allocs`, heap allocations per pair,
// counted by replacing the global operator new in this binary.
//
// Run: build/release/bench/seckill_bench_pool
#include "support/alloc_counter.hpp"

#include <seckill/pool/object_pool.hpp>
#include <seckill/pool/wire_record.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace {

struct request {
  std::uint64_t order_id = 0;
  std::uint32_t sku = 0;
  std::uint32_t quantity = 0;
  std::array<char, 1184> body{};
  void reset() noexcept {
    order_id = 0;
    quantity = 0;
  }
};
static_assert(sizeof(request) == 1200);

// Allocations made by this thread during its loop, per pair. `before` is read
// in the first iteration, after the thread made its cache (a thread's first
// use of a pool allocates it).
void report_allocs(benchmark::State& state, std::size_t before) {
  state.counters["allocs"] =
      benchmark::Counter(static_cast<double>(seckill::bench::thread_allocations() - before),
                         benchmark::Counter::kAvgIterations);
}

seckill::object_pool<request> shared_pool(1024);

void pool_acquire_release(benchmark::State& state) {
  { auto warm = shared_pool.acquire(); }  // this thread's cache is made on first use
  std::size_t before = 0;
  bool first = true;
  for (auto _ : state) {
    if (first) before = seckill::bench::thread_allocations(), first = false;
    auto r = shared_pool.acquire();
    r->order_id = 1;
    benchmark::DoNotOptimize(r.get());
  }
  report_allocs(state, before);
}
BENCHMARK(pool_acquire_release)->Threads(1)->Threads(2);

void new_delete(benchmark::State& state) {
  std::size_t before = 0;
  bool first = true;
  for (auto _ : state) {
    if (first) before = seckill::bench::thread_allocations(), first = false;
    auto* r = new request;
    r->order_id = 1;
    benchmark::DoNotOptimize(r);
    delete r;
  }
  report_allocs(state, before);
}
BENCHMARK(new_delete)->Threads(1)->Threads(2);

void make_unique(benchmark::State& state) {
  std::size_t before = 0;
  bool first = true;
  for (auto _ : state) {
    if (first) before = seckill::bench::thread_allocations(), first = false;
    auto r = std::make_unique<request>();
    r->order_id = 1;
    benchmark::DoNotOptimize(r.get());
  }
  report_allocs(state, before);
}
BENCHMARK(make_unique)->Threads(1)->Threads(2);

// The same pair with the thread cache switched off: every acquire and release
// is a CAS on the shared free list's head (what the per-thread cache saves).
seckill::object_pool<request> uncached_pool(1024, {.thread_cache = 0});

void pool_without_thread_cache(benchmark::State& state) {
  std::size_t before = 0;
  bool first = true;
  for (auto _ : state) {
    if (first) before = seckill::bench::thread_allocations(), first = false;
    auto r = uncached_pool.acquire();
    r->order_id = 1;
    benchmark::DoNotOptimize(r.get());
  }
  report_allocs(state, before);
}
BENCHMARK(pool_without_thread_cache)->Threads(1)->Threads(2);

// Reading a 1.2 KB wire record into a pooled request: one memcpy, no allocation.
void pool_acquire_read_release(benchmark::State& state) {
  using record = seckill::wire_record<request>;
  std::array<std::byte, record::size> frame{};
  record::write(request{42, 7, 1, {}}, frame);
  { auto warm = shared_pool.acquire(); }
  std::size_t before = 0;
  bool first = true;
  for (auto _ : state) {
    if (first) before = seckill::bench::thread_allocations(), first = false;
    auto r = shared_pool.acquire();
    std::error_code ec;
    record::read_into(frame, *r, ec);
    benchmark::DoNotOptimize(r->order_id);
  }
  report_allocs(state, before);
}
BENCHMARK(pool_acquire_read_release);

}  // namespace

BENCHMARK_MAIN();
