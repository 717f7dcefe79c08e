#pragma once
/// @file
/// @brief Clocks that seckill's policies take as a template parameter:
///        `manual_clock` for tests and simulations, `coarse_steady_clock` for hot paths.
///
/// A Clock has `rep`, `period`, `duration`, `time_point` and `now()` like the
/// `std::chrono` clocks. Policies hold a Clock object and call `now()` on it, so a
/// clock may carry state (manual_clock does) and tests never sleep.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>

namespace seckill {

/// @brief A clock that moves only when told to.
///
/// Copies share one time source: a test keeps a copy, hands another to the
/// policy under test and calls `advance()` / `set()`. Time starts at a
/// configurable point, by default 2025-01-01T00:00:00Z counted from the Unix
/// epoch, so `time_since_epoch()` reads like the system clock's (Snowflake
/// epochs work unchanged).
///
/// Thread-safety: `now()`, `advance()` and `set()` may be called from any
/// threads at once (one relaxed atomic). Cost: `now()` is one atomic load.
class manual_clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<manual_clock, duration>;
  static constexpr bool is_steady = false;

  /// 2025-01-01T00:00:00Z as time since the Unix epoch.
  static constexpr duration default_start = std::chrono::seconds{1735689600};

  manual_clock() : manual_clock(time_point{default_start}) {}
  explicit manual_clock(time_point start)
      : now_(std::make_shared<std::atomic<rep>>(start.time_since_epoch().count())) {}

  [[nodiscard]] time_point now() const noexcept {
    return time_point{duration{now_->load(std::memory_order_acquire)}};
  }

  /// Moves time forward by `d` (or back, when `d` is negative: tests of clock rollback).
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) const noexcept {
    now_->fetch_add(std::chrono::duration_cast<duration>(d).count(), std::memory_order_acq_rel);
  }

  /// Sets the time to `tp`, forwards or backwards.
  void set(time_point tp) const noexcept {
    now_->store(tp.time_since_epoch().count(), std::memory_order_release);
  }

  /// True when both copies share one time source.
  [[nodiscard]] bool shares_source_with(const manual_clock& other) const noexcept {
    return now_ == other.now_;
  }

 private:
  std::shared_ptr<std::atomic<rep>> now_;
};

/// @brief A steady clock read from CLOCK_MONOTONIC_COARSE.
///
/// `now()` costs a few nanoseconds (a vDSO read of the tick's timestamp, no
/// TSC read) against ~25 ns for `std::chrono::steady_clock::now()` on a
/// virtual machine, in exchange for resolution: it moves once per kernel
/// tick, typically every 1 to 4 ms (`resolution()` tells the value on this
/// machine). Good for token buckets at rates where a few milliseconds of
/// granularity do not matter; not for measuring latencies.
///
/// Thread-safety: stateless. Falls back to steady_clock where the coarse
/// clock does not exist.
struct coarse_steady_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<coarse_steady_clock, duration>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point{duration{static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec}};
#else
    return time_point{
        std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch())};
#endif
  }

  /// The clock's granularity on this machine (clock_getres).
  static duration resolution() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
    timespec ts{};
    ::clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
    return duration{static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec};
#else
    return duration{1};
#endif
  }
};

}  // namespace seckill
