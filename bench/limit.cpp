// Admission policies: token_bucket against a std::mutex token bucket written
// here as the baseline (same workloads, same binary), the circuit breaker's
// closed path and the bulkhead's acquire/release, with steady_clock and
// coarse_steady_clock, on 1 and 2 threads; the hot-parameter limiter
// against a std::mutex-guarded std::unordered_map of per-value buckets, for a
// few hot values and for more values than the limiter's capacity.
//
// Every benchmark reports `allocs/op`, the heap allocations per operation
// counted by a global operator new (support/alloc_counter.hpp), and uses real
// time, so `items_per_second` of a 2-thread run is the aggregate throughput.
//
//   build/release/bench/seckill_bench_limit --benchmark_min_time=0.5

#include <seckill/clock.hpp>
#include <seckill/limit/bulkhead.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/hot_param_limiter.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <support/alloc_counter.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

/// The textbook token bucket (Guava, Go's x/time/rate): a token count and the
/// time of the last update, both behind a mutex. The clock is read outside
/// the lock, as a careful implementation would.
template <class Clock>
class mutex_token_bucket {
 public:
  mutex_token_bucket(double rate_per_second, double burst)
      : rate_(rate_per_second), burst_(burst), tokens_(burst), last_(Clock::now()) {}

  bool try_acquire(double n = 1) {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    if (now > last_) {
      tokens_ =
          std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
      last_ = now;
    }
    if (tokens_ < n) return false;
    tokens_ -= n;
    return true;
  }

 private:
  std::mutex mutex_;
  double rate_;
  double burst_;
  double tokens_;
  typename Clock::time_point last_;
};

/// The obvious per-value limiter: a map from value to the textbook bucket
/// (tokens and last update, as mutex_token_bucket), behind one mutex. It
/// remembers every value it has seen (memory grows with them).
template <class Clock>
class mutex_map_limiter {
 public:
  mutex_map_limiter(double rate_per_second, double burst, std::size_t /*capacity*/)
      : rate_(rate_per_second), burst_(burst) {}

  bool try_acquire(std::string_view value, double n = 1) {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    auto [it, fresh] = map_.try_emplace(std::string(value), state{burst_, now});
    state& s = it->second;
    if (!fresh && now > s.last) {
      s.tokens =
          std::min(burst_, s.tokens + std::chrono::duration<double>(now - s.last).count() * rate_);
      s.last = now;
    }
    if (s.tokens < n) return false;
    s.tokens -= n;
    return true;
  }

 private:
  struct state {
    double tokens;
    typename Clock::time_point last;
  };
  std::mutex mutex_;
  double rate_;
  double burst_;
  std::unordered_map<std::string, state> map_;
};

template <class Clock>
struct seckill_hot_limiter : seckill::hot_param_limiter<Clock> {
  seckill_hot_limiter(double rate_per_second, double burst, std::size_t capacity)
      : seckill::hot_param_limiter<Clock>([&] {
          seckill::hot_param_options o;
          o.rate_per_second = rate_per_second;
          o.burst = burst;
          o.capacity = capacity;
          return o;
        }()) {}
};

// Lines up the threads of one benchmark run (a sense-reversing barrier).
void line_up(const benchmark::State& state) {
  static std::atomic<int> arrived{0};
  static std::atomic<int> generation{0};
  const int gen = generation.load();
  if (arrived.fetch_add(1) + 1 == state.threads()) {
    arrived.store(0);
    generation.fetch_add(1);
  } else {
    while (generation.load() == gen) std::this_thread::yield();
  }
}

// Allocation accounting for a (possibly multi-threaded) benchmark: every
// thread has finished its setup when thread 0 reads the global counter, and
// none has started its reporting when thread 0 reads it again after the
// loop, so only allocations made by the measured operations are counted.
class alloc_probe {
 public:
  explicit alloc_probe(benchmark::State& state) : state_(state) {
    line_up(state_);
    if (state.thread_index() == 0) before_ = seckill::bench::allocations();
  }
  void finish() {
    if (state_.thread_index() == 0) {
      const auto allocs = seckill::bench::allocations() - before_;
      const auto ops = static_cast<double>(state_.iterations()) * state_.threads();
      allocs_per_op_ = static_cast<double>(allocs) / std::max(1.0, ops);
    }
    line_up(state_);
    if (state_.thread_index() == 0)
      state_.counters["allocs/op"] = benchmark::Counter(allocs_per_op_);
  }

 private:
  benchmark::State& state_;
  std::size_t before_ = 0;
  double allocs_per_op_ = 0;
};

// One object per benchmark instantiation, shared by its threads and
// constructed before any of them runs.
template <class T, int Which, class... Args>
T& shared(Args... args) {
  static T instance(args...);
  return instance;
}

enum which { admit_path, reject_path };

template <class Bucket>
void prepare_reject(Bucket& b) {
  while (b.try_acquire()) {
  }
}

// Admit path: a refill of 1e9 tokens/s with a burst of 1e9 never runs dry.
template <class Bucket>
void bm_admit(benchmark::State& state) {
  auto& bucket = shared<Bucket, admit_path>(1e9, 1e9);
  alloc_probe probe(state);
  std::size_t admitted = 0;
  for (auto _ : state) {
    const bool ok = bucket.try_acquire();
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
  }
  probe.finish();
  state.SetItemsProcessed(state.iterations());
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted) / static_cast<double>(state.iterations()),
                         benchmark::Counter::kAvgThreads);
}

// Reject path: one token per hour, drained: every call is refused.
template <class Bucket>
void bm_reject(benchmark::State& state) {
  auto& bucket = shared<Bucket, reject_path>(1.0 / 3600, 1.0);
  if (state.thread_index() == 0) prepare_reject(bucket);
  alloc_probe probe(state);
  std::size_t admitted = 0;
  for (auto _ : state) {
    const bool ok = bucket.try_acquire();
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
  }
  probe.finish();
  state.SetItemsProcessed(state.iterations());
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted), benchmark::Counter::kAvgThreads);
}

enum which_mix { hot_mix, wide_mix };

/// Values of one parameter, as a service sees them: 8 hot values ("a few
/// users hammering"), or 65,536 values cycled through (more than the
/// limiter's 4,096 slots: almost every call is a miss that evicts).
const std::vector<std::string>& mix_values(which_mix mix) {
  static const auto make = [](std::size_t n, const char* prefix) {
    std::vector<std::string> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
    return v;
  };
  static const std::vector<std::string> hot = make(8, "hot-user-");
  static const std::vector<std::string> wide = make(65'536, "user-");
  return mix == hot_mix ? hot : wide;
}

// Each call takes one token for the next value of the mix (threads start at
// different places). 1,000 tokens/s and a burst of 100 per value: the hot
// values are throttled almost always (the hammering case), the wide mix's
// values almost always admitted (each comes back every 65,536 calls).
template <class Limiter, which_mix Mix>
void bm_hot_param(benchmark::State& state) {
  auto& limiter = shared<Limiter, Mix>(1000.0, 100.0, std::size_t{4096});
  const auto& values = mix_values(Mix);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  alloc_probe probe(state);
  std::size_t admitted = 0;
  for (auto _ : state) {
    const bool ok = limiter.try_acquire(values[i % values.size()]);
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
    ++i;
  }
  probe.finish();
  state.SetItemsProcessed(state.iterations());
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted) / static_cast<double>(state.iterations()),
                         benchmark::Counter::kAvgThreads);
}

// Breaker closed path: try_acquire + on_success with the permit. With a
// count window (the last 100 calls) and with a time window (the last 10 s:
// every outcome reads the clock); each striped (the default: threads write
// cache lines of their own) and with one stripe, the unstriped layout every
// thread writes, as the baseline of the 2-thread scaling.
template <class Clock>
using count_breaker = seckill::circuit_breaker<seckill::count_window<100>, Clock>;
template <class Clock>
using time_breaker = seckill::circuit_breaker<seckill::time_window<10>, Clock>;
template <class Clock>
using unstriped_count_breaker = seckill::circuit_breaker<seckill::count_window<100, 1>, Clock>;
template <class Clock>
using unstriped_time_breaker = seckill::circuit_breaker<seckill::time_window<10, 1>, Clock>;

template <class Breaker>
void bm_breaker_closed(benchmark::State& state) {
  static Breaker b{seckill::breaker_options{}};
  alloc_probe probe(state);
  for (auto _ : state) {
    auto permit = b.try_acquire();
    benchmark::DoNotOptimize(permit);
    b.on_success(permit, std::chrono::microseconds(50));
  }
  probe.finish();
  state.SetItemsProcessed(state.iterations());
  if (b.state() != seckill::breaker_state::closed)
    state.SkipWithError("breaker left the closed state");
}

void bm_bulkhead(benchmark::State& state) {
  static seckill::bulkhead b{64};
  alloc_probe probe(state);
  for (auto _ : state) {
    auto permit = b.try_acquire();
    benchmark::DoNotOptimize(permit);
  }
  probe.finish();
  state.SetItemsProcessed(state.iterations());
}

// The machine's own scaling: a few nanoseconds of arithmetic per operation on
// each thread's own registers, nothing shared, nothing read from memory. Next
// to it, the clock reads alone and the reject path on a still clock show how
// much of a read-only path's scaling is the machine's (on a shared virtual
// machine, short read-only loops can run faster while the other CPU idles).
void bm_nothing_shared(benchmark::State& state) {
  // four independent xorshift states: bound by the core's throughput, as
  // the reject path is, not by one chain's latency
  std::uint64_t x[4];
  for (std::uint64_t i = 0; i < 4; ++i)
    x[i] = 0x9e3779b97f4a7c15u * (i + 1) + static_cast<std::uint64_t>(state.thread_index());
  for (auto _ : state) {
    for (auto& v : x) {
      v ^= v << 13;
      v ^= v >> 7;
      v ^= v << 17;
    }
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Clock>
void bm_clock_now(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Clock::now());
  state.SetItemsProcessed(state.iterations());
}

using seckill::coarse_steady_clock;
using steady = std::chrono::steady_clock;

// A clock that stands still, read from a cache line of its own (a
// manual_clock's atomic may share a line with whatever the heap put next to
// it): the reject path's own work, without a clock's cost.
struct alignas(64) still_instant {
  std::atomic<std::int64_t> value{std::int64_t{1} << 50};
};

struct still_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<still_clock, duration>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    return time_point{duration{instant.value.load(std::memory_order_relaxed)}};
  }
  static inline still_instant instant{};
};

#define SECKILL_LIMIT_BENCH(...) BENCHMARK(__VA_ARGS__)->Threads(1)->Threads(2)->UseRealTime()

// The clock reads alone, and a loop that shares nothing, so a reject path's
// scaling can be told apart from its clock's and the machine's.
SECKILL_LIMIT_BENCH(bm_nothing_shared);
SECKILL_LIMIT_BENCH(bm_clock_now<steady>);
SECKILL_LIMIT_BENCH(bm_clock_now<coarse_steady_clock>);

SECKILL_LIMIT_BENCH(bm_admit<seckill::token_bucket<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_admit<mutex_token_bucket<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_admit<seckill::token_bucket<steady>>);
SECKILL_LIMIT_BENCH(bm_admit<mutex_token_bucket<steady>>);

SECKILL_LIMIT_BENCH(bm_reject<seckill::token_bucket<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_reject<mutex_token_bucket<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_reject<seckill::token_bucket<steady>>);
SECKILL_LIMIT_BENCH(bm_reject<mutex_token_bucket<steady>>);
// The bucket's own reject work: the clock is one load from a line no one writes.
SECKILL_LIMIT_BENCH(bm_reject<seckill::token_bucket<still_clock>>);

// The hot-parameter limiter against a mutex-guarded map, both sides in this run.
SECKILL_LIMIT_BENCH(bm_hot_param<seckill_hot_limiter<coarse_steady_clock>, hot_mix>);
SECKILL_LIMIT_BENCH(bm_hot_param<mutex_map_limiter<coarse_steady_clock>, hot_mix>);
SECKILL_LIMIT_BENCH(bm_hot_param<seckill_hot_limiter<coarse_steady_clock>, wide_mix>);
SECKILL_LIMIT_BENCH(bm_hot_param<mutex_map_limiter<coarse_steady_clock>, wide_mix>);

SECKILL_LIMIT_BENCH(bm_breaker_closed<count_breaker<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_breaker_closed<unstriped_count_breaker<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_breaker_closed<count_breaker<steady>>);
SECKILL_LIMIT_BENCH(bm_breaker_closed<time_breaker<coarse_steady_clock>>);
SECKILL_LIMIT_BENCH(bm_breaker_closed<unstriped_time_breaker<coarse_steady_clock>>);

SECKILL_LIMIT_BENCH(bm_bulkhead);

}  // namespace

BENCHMARK_MAIN();
