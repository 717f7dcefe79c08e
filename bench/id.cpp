// Snowflake id generation.
//
//   system_clock/threads:N   ids per second with the real clock, 1 and 2 threads
//                            sharing one generator, against the 4,096,000 ids/s a
//                            12-bit sequence allows (counter `of_ceiling`)
//   manual_clock             the per-call cost when the sequence never runs out:
//                            the clock moves 1 ms every 4096 ids, inside the loop
//   logical_clock            the per-call cost on the real clock when the sequence
//                            never blocks: exhausted milliseconds are borrowed
//   mutex_*                  the textbook generator behind a std::mutex, same cases
//
// Run: build/release/bench/seckill_bench_id
#include <seckill/clock.hpp>
#include <seckill/id/snowflake.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace {

using namespace std::chrono_literals;
constexpr double ceiling_per_second = 4'096'000.0;

// The baseline: last millisecond and sequence behind a mutex, waiting by
// spinning on the clock when the sequence is exhausted.
template <class Clock>
class mutex_snowflake {
 public:
  explicit mutex_snowflake(unsigned node, Clock clock = {}) : node_(node), clock_(clock) {}

  std::int64_t next() {
    std::lock_guard lock(mutex_);
    std::int64_t now = tick();
    if (now < last_) throw std::runtime_error("clock moved backwards");
    if (now == last_) {
      if (++sequence_ > 4095) {
        while ((now = tick()) <= last_) {
        }
        sequence_ = 0;
      }
    } else {
      sequence_ = 0;
    }
    last_ = now;
    return (now << 22) | (std::int64_t{node_} << 12) | sequence_;
  }

 private:
  std::int64_t tick() const {
    return std::chrono::floor<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count() -
           seckill::default_epoch.count();
  }

  std::mutex mutex_;
  std::int64_t last_ = -1;
  std::int64_t sequence_ = 0;
  unsigned node_;
  Clock clock_;
};

// items_per_second, and `of_ceiling`: this thread's ids per wall-clock second
// over the ceiling, summed over the threads (so 2 threads report their total).
void report_rate(benchmark::State& state, std::chrono::steady_clock::time_point start) {
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - start;
  state.SetItemsProcessed(state.iterations());
  state.counters["of_ceiling"] =
      static_cast<double>(state.iterations()) / wall.count() / ceiling_per_second;
}

// --- real clock, bound by the sequence ---------------------------------------

seckill::snowflake<> shared_generator(1, 1);

void snowflake_system_clock(benchmark::State& state) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(shared_generator.next());
  report_rate(state, start);
}
BENCHMARK(snowflake_system_clock)->Threads(1)->Threads(2)->UseRealTime()->MinTime(1.0);

mutex_snowflake<seckill::system_millis> shared_mutex_generator(33);

void mutex_system_clock(benchmark::State& state) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(shared_mutex_generator.next());
  report_rate(state, start);
}
BENCHMARK(mutex_system_clock)->Threads(1)->Threads(2)->UseRealTime()->MinTime(1.0);

// --- per-call cost, not bound by the sequence --------------------------------

void snowflake_manual_clock(benchmark::State& state) {
  seckill::manual_clock clock;
  seckill::snowflake<seckill::twitter_layout, seckill::manual_clock> gen(
      1, 1, seckill::default_epoch, clock);
  std::uint32_t n = 0;
  for (auto _ : state) {
    if ((++n & 4095) == 0) clock.advance(1ms);
    benchmark::DoNotOptimize(gen.next());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(snowflake_manual_clock);

void mutex_manual_clock(benchmark::State& state) {
  seckill::manual_clock clock;
  mutex_snowflake<seckill::manual_clock> gen(1, clock);
  std::uint32_t n = 0;
  for (auto _ : state) {
    if ((++n & 4095) == 0) clock.advance(1ms);
    benchmark::DoNotOptimize(gen.next());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(mutex_manual_clock);

void snowflake_logical_clock(benchmark::State& state) {
  // One hour of drift allowed: the bench borrows ~10 s of milliseconds per second.
  seckill::snowflake<seckill::twitter_layout, seckill::system_millis,
                     seckill::logical_clock<3'600'000>>
      gen(1, 1);
  for (auto _ : state) benchmark::DoNotOptimize(gen.next());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(snowflake_logical_clock);

// What a clock read costs here, for reading the rows above.
void system_millis_now(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(seckill::system_millis::now());
}
BENCHMARK(system_millis_now);

}  // namespace

BENCHMARK_MAIN();
