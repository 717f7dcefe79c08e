#pragma once
/// @file
/// @brief `seckill::token_bucket`: a lock-free token bucket whose whole state is
///        one atomic of integer nanoseconds, "the time the bucket was empty".
///
/// Needs only the standard library. The Asio wait lives in
/// `<seckill/limit/async_acquire.hpp>`.

#include <seckill/clock.hpp>
#include <seckill/detail/cache_line.hpp>
#include <seckill/error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace seckill {

namespace detail {

/// Formats a double the way error messages show it ("0.5", "nan", "1e-12").
inline std::string limit_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

/// The largest span, in nanoseconds, that a bucket's burst may cover (2^62 ns,
/// about 146 years): keeps every sum of two clock readings and spans in range.
inline constexpr std::int64_t limit_max_span_ns = std::int64_t{1} << 62;

/// A bucket's parameters in integer nanoseconds: `per` a token, `span` the
/// burst. False when the rate is not in (0, 1e9], the burst is below 1, either
/// is NaN or infinite, or a span exceeds 2^62 ns.
inline bool limit_params(double rate, double burst, std::int64_t& per,
                         std::int64_t& span) noexcept {
  if (!(rate > 0) || !std::isfinite(rate) || rate > 1e9) return false;
  const double per_d = std::round(1e9 / rate);
  if (per_d > static_cast<double>(limit_max_span_ns)) return false;
  if (!(burst >= 1) || !std::isfinite(burst)) return false;
  const double span_d = std::round(burst * per_d);
  if (span_d > static_cast<double>(limit_max_span_ns)) return false;
  per = static_cast<std::int64_t>(per_d);
  span = static_cast<std::int64_t>(span_d);
  return true;
}

/// The price of `tokens` in nanoseconds; false when it can never be paid
/// (negative, NaN, or above the burst).
inline bool limit_cost(double tokens, std::int64_t per, std::int64_t burst,
                       std::int64_t& cost) noexcept {
  if (tokens == 1.0) {
    cost = per;
    return per <= burst;
  }
  if (!(tokens >= 0)) return false;  // negative or NaN
  const double c = std::round(tokens * static_cast<double>(per));
  if (c > static_cast<double>(burst)) return false;
  cost = static_cast<std::int64_t>(c);
  return true;
}

/// Why `limit_params` refused `rate` and `burst`, naming `who` and the values seen.
inline std::string limit_invalid_message(const std::string& who, double rate, double burst) {
  if (!(rate > 0) || !std::isfinite(rate))
    return who + " rate_per_second " + limit_number(rate) + " must be a finite number > 0";
  if (rate > 1e9)
    return who + " rate_per_second " + limit_number(rate) + " above 1e9 (one token per nanosecond)";
  if (1e9 / rate > static_cast<double>(limit_max_span_ns))
    return who + " rate_per_second " + limit_number(rate) +
           " below one token per 2^62 ns (146 years)";
  if (!(burst >= 1) || !std::isfinite(burst))
    return who + " burst " + limit_number(burst) + " must be a finite number >= 1";
  return who + " burst " + limit_number(burst) + " at rate " + limit_number(rate) +
         " per second spans more than 2^62 ns (146 years)";
}

/// Waits a moment for another thread to finish a few-nanosecond update:
/// spins with a pause instruction, then yields if that thread was preempted.
inline void limit_pause(int& spins) noexcept {
  if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

}  // namespace detail

/// @brief A token bucket: admits `rate_per_second` tokens per second on
///        average and up to `burst` at once.
///
/// State: one atomic `int64` of nanoseconds on `Clock`'s time line, the
/// instant at which the bucket was (or will be) empty; tokens available at
/// `now` are `(now - empty_at) / ns_per_token`, capped at the burst. An
/// admission moves that instant forward with one compare-and-swap; a
/// rejection reads and writes nothing else. All arithmetic is on integer
/// nanoseconds, so there is no drift: the rate is kept as a whole number of
/// nanoseconds per token (`1e9 / rate`, rounded), which is exact for every
/// rate that divides a second or is slower than one per second in whole
/// nanoseconds (1 token per hour is 3'600'000'000'000 ns per token). Rates
/// from one token per 146 years up to 1e9 per second are accepted.
///
/// Thread-safety: every member may be called from any number of threads at
/// once, `reset()` included. Cost: `try_acquire()` is one clock read, three
/// relaxed loads and, on admission, one CAS; the object is one cache line
/// (`alignas(detail::cache_line_size)`, static_asserted) so neighbours never share it.
///
/// Use a steady clock: if `Clock` goes back, the bucket admits nothing until
/// it has caught up again.
template <class Clock = std::chrono::steady_clock>
class alignas(detail::cache_line_size) token_bucket {
 public:
  using clock_type = Clock;
  using duration = typename Clock::duration;
  using time_point = typename Clock::time_point;

  /// The cache line a bucket occupies on its own.
  static constexpr std::size_t cache_line = 64;

  /// @brief Tokens taken ahead of time by `reserve()`: the caller waits
  ///        `delay()` before acting, or gives them back with `cancel()`.
  ///
  /// Move-only; destroying it neither waits nor refunds. Not thread-safe on
  /// its own (one owner), but `cancel()` races safely with the bucket's users.
  class reservation {
   public:
    reservation() = default;
    reservation(reservation&& other) noexcept
        : bucket_(std::exchange(other.bucket_, nullptr)),
          cost_ns_(std::exchange(other.cost_ns_, 0)),
          ready_ns_(other.ready_ns_),
          delay_(other.delay_),
          error_(other.error_) {}
    reservation& operator=(reservation&& other) noexcept {
      if (this != &other) {
        bucket_ = std::exchange(other.bucket_, nullptr);
        cost_ns_ = std::exchange(other.cost_ns_, 0);
        ready_ns_ = other.ready_ns_;
        delay_ = other.delay_;
        error_ = other.error_;
      }
      return *this;
    }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;
    ~reservation() = default;

    /// True when the tokens were taken.
    [[nodiscard]] bool ok() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return ok(); }
    /// Why the tokens were not taken: `errc::invalid_argument` (a count that
    /// is negative, NaN or above the burst) or `errc::rate_limited` (the wait
    /// would have exceeded `max_wait`).
    [[nodiscard]] std::error_code error() const noexcept { return error_; }
    /// How long the caller must wait, from the moment of `reserve()`, before
    /// the tokens are its own. Zero when they were available at once.
    [[nodiscard]] duration delay() const noexcept { return delay_; }
    /// The instant on the bucket's clock when the tokens are the caller's.
    [[nodiscard]] time_point ready_at() const noexcept {
      return time_point{std::chrono::duration_cast<duration>(std::chrono::nanoseconds{ready_ns_})};
    }
    /// Gives the tokens back if their time has not come yet (x/time/rate's
    /// Cancel): returns true when it refunded. Later reservations keep their
    /// (now pessimistic) delays; new callers see the refunded tokens.
    /// Refunds at most once.
    bool cancel() noexcept {
      if (bucket_ == nullptr || cost_ns_ == 0) return false;
      auto* bucket = std::exchange(bucket_, nullptr);
      const auto cost = std::exchange(cost_ns_, 0);
      if (bucket->now_ns() >= ready_ns_) return false;
      std::int64_t empty = bucket->empty_at_.load(std::memory_order_relaxed);
      for (int spins = 0;;) {
        if (empty == resetting) {
          detail::limit_pause(spins);
          empty = bucket->empty_at_.load(std::memory_order_relaxed);
        } else if (bucket->empty_at_.compare_exchange_weak(
                       empty, empty - cost, std::memory_order_relaxed, std::memory_order_relaxed)) {
          return true;
        }
      }
    }

   private:
    friend class token_bucket;
    reservation(token_bucket* bucket, std::int64_t cost_ns, std::int64_t ready_ns, duration delay)
        : bucket_(bucket), cost_ns_(cost_ns), ready_ns_(ready_ns), delay_(delay) {}
    explicit reservation(std::error_code ec) : error_(ec) {}

    token_bucket* bucket_ = nullptr;
    std::int64_t cost_ns_ = 0;
    std::int64_t ready_ns_ = 0;
    duration delay_{};
    std::error_code error_{};
  };

  /// Starts full. Throws `seckill::error` (`errc::invalid_argument`) when the
  /// rate is not in (0, 1e9], the burst is below 1, either is NaN or infinite,
  /// or the burst spans more than 2^62 ns at this rate.
  token_bucket(double rate_per_second, double burst, Clock clock = {}) : clock_(std::move(clock)) {
    const auto params = checked(rate_per_second, burst);
    ns_per_token_.store(params.first, std::memory_order_relaxed);
    burst_ns_.store(params.second, std::memory_order_relaxed);
    empty_at_.store(now_ns() - params.second, std::memory_order_relaxed);
  }

  token_bucket(const token_bucket&) = delete;
  token_bucket& operator=(const token_bucket&) = delete;

  /// Takes `tokens` if they are all there now. Fractional counts are fine.
  /// Returns false, and writes nothing, when they are not; also false for a
  /// count that can never be admitted (negative, NaN, above the burst): the
  /// `error_code` overload, `reserve()` and `time_until()` tell those apart.
  [[nodiscard]] bool try_acquire(double tokens = 1) noexcept {
    const std::int64_t now = now_ns();
    for (;;) {
      std::int64_t empty = empty_at_.load(std::memory_order_acquire);
      if (empty == resetting) [[unlikely]] {
        (void)load();  // a reset() is publishing: two stores away
        continue;
      }
      std::int64_t cost = ns_per_token_.load(std::memory_order_acquire);
      const std::int64_t burst = burst_ns_.load(std::memory_order_acquire);
      if (tokens != 1.0) [[unlikely]] {
        if (!cost_of(tokens, cost, burst, cost)) return false;
        if (cost == 0) return true;
      }
      const std::int64_t next = std::max(empty, now - burst) + cost;
      if (next > now) return false;
      // Fails if anything moved empty_at_ since the load, a reset() included:
      // a reset parks it on `resetting` before it touches the parameters.
      if (empty_at_.compare_exchange_weak(empty, next, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
        return true;
    }
  }

  /// As `try_acquire(tokens)`, and says why not: `errc::rate_limited` when
  /// the tokens are not there yet, `errc::invalid_argument` when `tokens` is
  /// negative, NaN or above the burst (it would never be admitted).
  [[nodiscard]] bool try_acquire(double tokens, std::error_code& ec) noexcept {
    std::int64_t cost = 0;
    if (!cost_of(tokens, ns_per_token_.load(std::memory_order_relaxed),
                 burst_ns_.load(std::memory_order_relaxed), cost)) {
      ec = errc::invalid_argument;
      return false;
    }
    if (try_acquire(tokens)) {
      ec.clear();
      return true;
    }
    ec = errc::rate_limited;
    return false;
  }

  /// Takes `tokens` now even if that borrows from the future, unless the wait
  /// would exceed `max_wait`, and says how long the caller must wait. A
  /// reservation refused for `max_wait` writes nothing.
  [[nodiscard]] reservation reserve(double tokens = 1,
                                    duration max_wait = duration::max()) noexcept {
    const std::int64_t max_wait_ns = to_ns_saturated(max_wait);
    for (;;) {
      const auto s = load();
      std::int64_t cost = 0;
      if (!cost_of(tokens, s.per, s.burst, cost))
        return reservation{make_error_code(errc::invalid_argument)};
      const std::int64_t now = now_ns();
      const std::int64_t next = std::max(s.empty, now - s.burst) + cost;
      const std::int64_t wait = next > now ? next - now : 0;
      if (wait > max_wait_ns) return reservation{make_error_code(errc::rate_limited)};
      if (cost == 0) return reservation{this, 0, now, duration::zero()};
      std::int64_t expected = s.empty;
      if (empty_at_.compare_exchange_weak(expected, next, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
        return reservation{this, cost, next, ceil_duration(wait)};
    }
  }

  /// How long until `tokens` could be taken: zero when they are there now,
  /// `duration::max()` when they never can be (negative, NaN, above the burst).
  [[nodiscard]] duration time_until(double tokens = 1) const noexcept {
    const auto s = load();
    std::int64_t cost = 0;
    if (!cost_of(tokens, s.per, s.burst, cost)) return duration::max();
    const std::int64_t now = now_ns();
    const std::int64_t next = std::max(s.empty, now - s.burst) + cost;
    return next > now ? ceil_duration(next - now) : duration::zero();
  }

  /// Tokens available now, fractional; negative while reservations have
  /// borrowed ahead of the refill.
  [[nodiscard]] double available() const noexcept {
    const auto s = load();
    const std::int64_t have = std::min(now_ns() - s.empty, s.burst);
    return static_cast<double>(have) / static_cast<double>(s.per);
  }

  /// Changes rate and burst while other threads acquire. The tokens in the
  /// bucket are kept (capped at the new burst; a debt stays a debt). While
  /// it publishes (two stores) the other members wait for it. A call that loaded the state before a
  /// reset and lands its CAS after a second reset that republished the very same nanosecond value
  /// (an ABA) is judged by the old parameters: at most a fraction of a token per reset. Reset is
  /// for configuration changes, not a hot path. Throws `seckill::error` on the values the
  /// constructor refuses, changing nothing.
  void reset(double rate_per_second, double burst) {
    std::error_code ec;
    reset(rate_per_second, burst, ec);
    if (ec) throw error(ec, invalid_message(rate_per_second, burst));
  }

  /// As `reset(rate, burst)`; sets `ec` to `errc::invalid_argument` instead of throwing.
  void reset(double rate_per_second, double burst, std::error_code& ec) noexcept {
    std::int64_t per = 0;
    std::int64_t span = 0;
    if (!params_of(rate_per_second, burst, per, span)) {
      ec = errc::invalid_argument;
      return;
    }
    ec.clear();
    // Compute the new state from a consistent snapshot, then park empty_at_
    // on `resetting` (only if it is still that snapshot's value), publish the
    // parameters and release it: no CAS based on the old parameters can
    // succeed after the park, and acquirers wait at most for two stores.
    for (;;) {
      const auto s = load();
      const std::int64_t now = now_ns();
      const std::int64_t have = std::min(now - s.empty, s.burst);
      // The same number of tokens (or of debt), in the new nanoseconds per token.
      const long double tokens = static_cast<long double>(have) / static_cast<long double>(s.per);
      long double kept_ns = tokens * static_cast<long double>(per);
      kept_ns = std::clamp(kept_ns, -static_cast<long double>(detail::limit_max_span_ns),
                           static_cast<long double>(span));
      std::int64_t next = now - static_cast<std::int64_t>(std::llround(kept_ns));
      if (next == s.empty) --next;  // never republish the parked value
      std::int64_t expected = s.empty;
      if (!empty_at_.compare_exchange_strong(expected, resetting, std::memory_order_acquire,
                                             std::memory_order_relaxed))
        continue;
      if (ns_per_token_.load(std::memory_order_relaxed) != s.per ||
          burst_ns_.load(std::memory_order_relaxed) != s.burst) {
        // Another reset published in between and its value came back (ABA):
        // put it back untouched and start again.
        empty_at_.store(s.empty, std::memory_order_release);
        continue;
      }
      ns_per_token_.store(per, std::memory_order_release);
      burst_ns_.store(span, std::memory_order_release);
      empty_at_.store(next, std::memory_order_release);
      return;
    }
  }

  /// The rate in effect, tokens per second (after rounding to whole ns per token).
  [[nodiscard]] double rate() const noexcept {
    return 1e9 / static_cast<double>(ns_per_token_.load(std::memory_order_relaxed));
  }
  /// The burst in effect, in tokens.
  [[nodiscard]] double burst() const noexcept {
    return static_cast<double>(burst_ns_.load(std::memory_order_relaxed)) /
           static_cast<double>(ns_per_token_.load(std::memory_order_relaxed));
  }
  /// The clock the bucket reads.
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }

 private:
  static std::pair<std::int64_t, std::int64_t> checked(double rate, double burst) {
    std::int64_t per = 0;
    std::int64_t span = 0;
    if (!params_of(rate, burst, per, span))
      throw error(errc::invalid_argument, invalid_message(rate, burst));
    return {per, span};
  }

  static std::string invalid_message(double rate, double burst) {
    return detail::limit_invalid_message("token_bucket", rate, burst);
  }

  static bool params_of(double rate, double burst, std::int64_t& per, std::int64_t& span) noexcept {
    return detail::limit_params(rate, burst, per, span);
  }

  static bool cost_of(double tokens, std::int64_t per, std::int64_t burst,
                      std::int64_t& cost) noexcept {
    return detail::limit_cost(tokens, per, burst, cost);
  }

  static std::int64_t to_ns_saturated(duration d) noexcept {
    using ns_rep = std::chrono::nanoseconds::rep;
    const auto ns_max = std::chrono::duration_cast<duration>(
        std::chrono::nanoseconds{std::numeric_limits<ns_rep>::max()} / 2);
    if (d >= ns_max) return std::numeric_limits<std::int64_t>::max();
    if (d <= duration::zero()) return 0;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  static duration ceil_duration(std::int64_t ns) noexcept {
    return std::chrono::ceil<duration>(std::chrono::nanoseconds{ns});
  }

  /// empty_at_ while a reset() rewrites the parameters.
  static constexpr std::int64_t resetting = std::numeric_limits<std::int64_t>::min();

  struct snapshot {
    std::int64_t empty;
    std::int64_t per;
    std::int64_t burst;
  };

  /// A consistent view: empty_at_ (never the parked value) and the parameters
  /// published with it or later.
  snapshot load() const noexcept {
    for (int spins = 0;;) {
      const std::int64_t empty = empty_at_.load(std::memory_order_acquire);
      if (empty != resetting) [[likely]]
        return {empty, ns_per_token_.load(std::memory_order_acquire),
                burst_ns_.load(std::memory_order_acquire)};
      detail::limit_pause(spins);
    }
  }

  std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
        .count();
  }

  std::atomic<std::int64_t> empty_at_{0};
  std::atomic<std::int64_t> ns_per_token_{1};
  std::atomic<std::int64_t> burst_ns_{1};
  [[no_unique_address]] Clock clock_;
};

static_assert(sizeof(token_bucket<std::chrono::steady_clock>) == token_bucket<>::cache_line,
              "a token_bucket is one cache line");
static_assert(sizeof(token_bucket<manual_clock>) == token_bucket<>::cache_line,
              "a token_bucket with a manual_clock is one cache line");
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

}  // namespace seckill
