#pragma once
/// @file
/// @brief `seckill::circuit_breaker`: stops calling a dependency that fails or
///        slows down, and probes it again after a while.
///
/// States closed, open, half_open, plus the manual forced_open and disabled;
/// the window over which failure and slow-call rates are measured is a policy:
/// `count_window<N>` (the last N calls) or `time_window<Buckets>` (calls in
/// the last `breaker_options::window_duration`). Needs only the standard library.

#include <seckill/clock.hpp>
#include <seckill/detail/cache_line.hpp>
#include <seckill/detail/thread_stripe.hpp>
#include <seckill/error.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill {

/// @brief Where a circuit breaker stands.
enum class breaker_state : std::uint8_t {
  closed,       ///< calls pass; outcomes are recorded in the window
  open,         ///< calls are rejected until `open_duration` has passed
  half_open,    ///< `half_open_permits` trial calls decide: closed again or open
  forced_open,  ///< rejects every call until a manual transition
  disabled,     ///< admits every call and records nothing, until a manual transition
};

/// The state's name: "closed", "open", "half_open", "forced_open", "disabled".
constexpr std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
    case breaker_state::forced_open:
      return "forced_open";
    case breaker_state::disabled:
      return "disabled";
  }
  return "unknown";
}

/// @brief A circuit breaker's settings; `circuit_breaker`'s constructor checks
///        every one and throws `seckill::error` (`errc::invalid_argument`)
///        naming the option and the value seen.
struct breaker_options {
  /// Open when at least this share of the window's calls failed, in (0, 1].
  double failure_rate_threshold = 0.5;
  /// Open when at least this share of the window's calls were slow, in (0, 1].
  double slow_call_rate_threshold = 1.0;
  /// A call that took at least this long is slow (> 0).
  std::chrono::nanoseconds slow_call_duration = std::chrono::seconds(60);
  /// No decision before the window holds this many calls (>= 1; at most N
  /// for `count_window<N>`).
  std::uint32_t minimum_calls = 20;
  /// How long the breaker stays open before it lets trial calls through (> 0).
  std::chrono::nanoseconds open_duration = std::chrono::seconds(60);
  /// Each reopening from half_open multiplies the open duration by this
  /// (>= 1; 1 means no backoff). Back to `open_duration` once closed.
  double open_backoff_multiplier = 1.0;
  /// Cap on the backed-off open duration; zero means no cap (>= open_duration
  /// or zero).
  std::chrono::nanoseconds max_open_duration = std::chrono::nanoseconds::zero();
  /// Trial calls admitted in half_open; their outcomes decide (>= 1).
  std::uint32_t half_open_permits = 5;
  /// Reopen when half_open lasts longer than this (trial calls that never
  /// report); zero means wait for the trial outcomes however long (>= 0).
  std::chrono::nanoseconds max_half_open_duration = std::chrono::nanoseconds::zero();
  /// The span a `time_window` covers (>= one nanosecond per bucket).
  std::chrono::nanoseconds window_duration = std::chrono::seconds(10);
  /// Called on every state change with (from, to), under the breaker's lock:
  /// keep it short; it may read `state()` but must not call the breaker's
  /// other members.
  std::function<void(breaker_state from, breaker_state to)> on_state_change;
};

/// @brief Calls, failures and slow calls in a breaker's window.
struct window_counts {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  std::uint64_t slow = 0;
};

/// @brief What recording one outcome did to a window: whether it may have
///        taken the rates over a threshold, and then the counts after (valid
///        only when `changed`).
struct window_update {
  bool changed = false;
  window_counts counts;
};

namespace detail {

/// One call's outcome in a window: bit 0 a call, bit 1 failed, bit 2 slow.
enum : std::uint8_t { outcome_call = 1, outcome_failure = 2, outcome_slow = 4 };

/// Three 21-bit counters in one word, so one fetch_add moves all three and
/// one load reads a consistent triple. Fields are read as signed (a racing
/// writer may leave one briefly negative) and clamped at zero.
inline constexpr unsigned breaker_field_bits = 21;

constexpr std::uint64_t breaker_pack(std::uint8_t outcome) noexcept {
  return std::uint64_t{outcome & 1u} | (std::uint64_t{(outcome >> 1) & 1u} << breaker_field_bits) |
         (std::uint64_t{(outcome >> 2) & 1u} << (2 * breaker_field_bits));
}

constexpr std::uint32_t breaker_field(std::uint64_t word, unsigned index) noexcept {
  constexpr std::uint64_t mask = (std::uint64_t{1} << breaker_field_bits) - 1;
  const std::uint64_t raw = (word >> (index * breaker_field_bits)) & mask;
  // Sign bit of the 21-bit field set: a transient negative, read as zero.
  return (raw >> (breaker_field_bits - 1)) != 0 ? 0u : static_cast<std::uint32_t>(raw);
}

constexpr window_counts breaker_unpack(std::uint64_t word) noexcept {
  return {breaker_field(word, 0), breaker_field(word, 1), breaker_field(word, 2)};
}

inline std::string breaker_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

inline std::string breaker_ns(std::chrono::nanoseconds d) {
  return std::to_string(d.count()) + " ns";
}

}  // namespace detail

/// @brief What a `circuit_breaker` needs of its window (`count_window`,
///        `time_window`, or a type of your own).
///
/// - `W::capacity`: the most calls it holds (0 when bounded by time), and
///   `W::uses_clock`: whether `record` and `counts` read the `now_ns` passed;
/// - `configure(options)`: called once, before any other call;
/// - `record(outcome, now_ns)`: adds one call's outcome (bit 0 a call, bit 1
///   failed, bit 2 slow) and returns a `window_update`: `changed` with the
///   counts after whenever the record may have taken the window over a
///   threshold. A window may answer `changed == false` for a success once it
///   holds `minimum_calls` calls: such a success can only lower the rates,
///   which is what lets the closed path skip reading the whole window;
/// - `counts(now_ns)`: the calls, failures and slow calls in the window;
/// - `clear()`: forgets every call (the breaker closing again).
///
/// Every member is `noexcept` and safe from any number of threads at once:
/// the breaker calls them on its lock-free path.
template <class W>
concept breaker_window = std::default_initializable<W> &&
    requires(W& window, const W& const_window, const breaker_options& options, std::uint8_t outcome,
             std::int64_t now_ns) {
  { W::capacity } -> std::convertible_to<std::size_t>;
  { W::uses_clock } -> std::convertible_to<bool>;
  { window.configure(options) }
  noexcept;
  { window.record(outcome, now_ns) }
  noexcept->std::same_as<window_update>;
  { const_window.counts(now_ns) }
  noexcept->std::same_as<window_counts>;
  { window.clear() }
  noexcept;
};

/// @brief The last N calls of each thread stripe (resilience4j's COUNT_BASED
///        window, striped as LongAdder and Sentinel stripe their counters).
///
/// Each of `Stripes` stripes is a ring of the last N outcomes with its packed
/// counters, on cache lines of its own; a thread records into the stripe
/// `detail::thread_stripe()` gives it, so threads on different stripes never
/// write a shared line. The counts are the sum of the stripes: one thread
/// sees exactly its last N calls; T threads on T stripes see the last N calls
/// of each (between N and Stripes * N calls in all), so the rates are those of
/// every thread's recent calls. `Stripes = 1` is the unstriped window: exactly
/// the last N calls of the process, one shared ring.
///
/// Lock-free: a record is a fetch_add on its stripe's slot index, an exchange
/// of the slot and, when the outcome differs from the one it replaces, a
/// fetch_add on the stripe's counters. Only a failure, a slow call, or a
/// success while the window holds fewer than `minimum_calls` calls reads the
/// other stripes (O(Stripes)). Memory: about Stripes * (N + 16) bytes, so keep
/// Stripes small for a large N. N <= 2^20.
template <std::size_t N, std::size_t Stripes = 8>
class count_window {
  static_assert(N >= 1 && N < (std::size_t{1} << 20), "count_window<N>: N in [1, 2^20)");
  static_assert(Stripes >= 1 && Stripes <= 256, "count_window<N, Stripes>: Stripes in [1, 256]");

 public:
  static constexpr std::size_t capacity = N;
  static constexpr bool uses_clock = false;

  using recorded = window_update;

  void configure(const breaker_options& o) noexcept { minimum_calls_ = o.minimum_calls; }

  recorded record(std::uint8_t outcome, std::int64_t /*now_ns*/) noexcept {
    stripe& s = stripes_[detail::thread_stripe() % Stripes];
    const std::size_t i = s.next.fetch_add(1, std::memory_order_relaxed) % N;
    const std::uint8_t old = s.slots[i].exchange(outcome, std::memory_order_relaxed);
    if (old == outcome) return {false, {}};
    const std::uint64_t delta = detail::breaker_pack(outcome) - detail::breaker_pack(old);
    s.counts.fetch_add(delta, std::memory_order_relaxed);
    const bool marked = (outcome & (detail::outcome_failure | detail::outcome_slow)) != 0;
    // A success in a window that holds minimum_calls can only lower the rates.
    if (!marked && filled_.load(std::memory_order_relaxed)) return {false, {}};
    const window_counts after = counts(0);
    if (after.calls >= minimum_calls_ && !filled_.load(std::memory_order_relaxed))
      filled_.store(true, std::memory_order_relaxed);
    return {true, after};
  }

  window_counts counts(std::int64_t /*now_ns*/) const noexcept {
    window_counts total;
    for (const auto& s : stripes_) {
      const window_counts c = detail::breaker_unpack(s.counts.load(std::memory_order_relaxed));
      total.calls += c.calls;
      total.failures += c.failures;
      total.slow += c.slow;
    }
    return total;
  }

  void clear() noexcept {
    filled_.store(false, std::memory_order_relaxed);
    for (auto& s : stripes_) {
      for (auto& slot : s.slots) {
        const std::uint8_t old = slot.exchange(0, std::memory_order_relaxed);
        if (old != 0) s.counts.fetch_sub(detail::breaker_pack(old), std::memory_order_relaxed);
      }
    }
  }

 private:
  struct alignas(detail::cache_line_size) stripe {
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> counts{0};
    std::array<std::atomic<std::uint8_t>, N> slots{};
  };
  // Read on every success, written when the window first holds minimum_calls
  // and when it is cleared.
  alignas(detail::cache_line_size) std::atomic<bool> filled_{false};
  std::uint32_t minimum_calls_ = 1;
  std::array<stripe, Stripes> stripes_{};
};

/// @brief Calls in the last `breaker_options::window_duration`, kept in
///        `Buckets` buckets per thread stripe (resilience4j's TIME_BASED
///        window, striped as Sentinel's LeapArray of LongAdders).
///
/// Each of `Stripes` stripes has its own buckets on cache lines of its own; a
/// thread records into the stripe `detail::thread_stripe()` gives it, and the
/// counts are the sum over every stripe's live buckets, so nothing is lost or
/// approximated: only who writes which line changes. `Stripes = 1` is the
/// unstriped window.
///
/// Lock-free: a record is a load of the bucket's index, a fetch_add on its
/// call counter (one more for a failure or a slow call) and, once per bucket
/// period and stripe, a CAS that recycles the bucket. Reading the counts sums
/// the live buckets (O(Stripes * Buckets)); a record does so only for a
/// failure, a slow call, or the first success of a bucket period until the
/// window is seen to hold `minimum_calls` calls in that period. The counters
/// are 64-bit: no rate of calls overflows them. Clock readings must be >= 0.
template <std::size_t Buckets = 10, std::size_t Stripes = 8>
class time_window {
  static_assert(Buckets >= 1 && Buckets <= 1024, "time_window<Buckets>: Buckets in [1, 1024]");
  static_assert(Stripes >= 1 && Stripes <= 256,
                "time_window<Buckets, Stripes>: Stripes in [1, 256]");

 public:
  static constexpr std::size_t capacity = 0;  // bounded by time, not by count
  static constexpr bool uses_clock = true;

  using recorded = window_update;

  void configure(const breaker_options& o) noexcept {
    width_ns_ =
        std::max<std::int64_t>(1, o.window_duration.count() / static_cast<std::int64_t>(Buckets));
    minimum_calls_ = o.minimum_calls;
  }

  recorded record(std::uint8_t outcome, std::int64_t now_ns) noexcept {
    const std::int64_t index = now_ns / width_ns_;
    auto& b = stripes_[detail::thread_stripe() % Stripes]
                  .buckets[static_cast<std::size_t>(index) % Buckets];
    std::int64_t seen = b.index.load(std::memory_order_acquire);
    if (seen != index) {
      // Recycle a bucket from an earlier period; drop the sample if another
      // thread is recycling it right now or time went back past it.
      if (seen > index || seen == recycling) return {false, {}};
      if (!b.index.compare_exchange_strong(seen, recycling, std::memory_order_acquire,
                                           std::memory_order_relaxed))
        return {false, {}};
      // A seqlock's write side: a reader that sees one of the resets below
      // also sees the index change and skips the bucket.
      std::atomic_thread_fence(std::memory_order_release);
      b.calls.store(0, std::memory_order_relaxed);
      b.failures.store(0, std::memory_order_relaxed);
      b.slow.store(0, std::memory_order_relaxed);
      b.index.store(index, std::memory_order_release);
    }
    // The call first; a failure or slow mark after it with release, so a
    // reader that sees the mark (acquire) sees its call too: a rate read
    // while calls land is never above the true one.
    b.calls.fetch_add(1, std::memory_order_relaxed);
    const bool marked = (outcome & (detail::outcome_failure | detail::outcome_slow)) != 0;
    if (outcome & detail::outcome_failure) b.failures.fetch_add(1, std::memory_order_release);
    if (outcome & detail::outcome_slow) b.slow.fetch_add(1, std::memory_order_release);
    // The buckets read in this period stay live until it ends: once they held
    // minimum_calls, a success in the same period can only lower the rates.
    if (!marked && full_period_.load(std::memory_order_relaxed) == index) return {false, {}};
    const window_counts after = counts(now_ns);
    if (after.calls >= minimum_calls_ && full_period_.load(std::memory_order_relaxed) != index)
      full_period_.store(index, std::memory_order_relaxed);
    return {true, after};
  }

  window_counts counts(std::int64_t now_ns) const noexcept {
    const std::int64_t current = now_ns / width_ns_;
    window_counts total;
    for (const auto& s : stripes_) {
      for (const auto& b : s.buckets) {
        const std::int64_t i = b.index.load(std::memory_order_acquire);
        if (i < 0 || i > current || i <= current - static_cast<std::int64_t>(Buckets)) continue;
        const std::uint64_t failures = b.failures.load(std::memory_order_acquire);
        const std::uint64_t slow = b.slow.load(std::memory_order_acquire);
        const std::uint64_t calls = b.calls.load(std::memory_order_relaxed);
        // A seqlock's read side: recycled while being read, the bucket is
        // skipped, so no count from before a reset meets one from after it.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (b.index.load(std::memory_order_relaxed) != i) continue;
        total.calls += calls;
        total.failures += std::min(failures, calls);
        total.slow += std::min(slow, calls);
      }
    }
    return total;
  }

  void clear() noexcept {
    full_period_.store(empty, std::memory_order_relaxed);
    for (auto& s : stripes_) {
      for (auto& b : s.buckets) {
        b.index.store(empty, std::memory_order_relaxed);
        b.calls.store(0, std::memory_order_relaxed);
        b.failures.store(0, std::memory_order_relaxed);
        b.slow.store(0, std::memory_order_relaxed);
      }
    }
  }

 private:
  static constexpr std::int64_t empty = -1;
  static constexpr std::int64_t recycling = -2;
  struct bucket {
    std::atomic<std::int64_t> index{empty};
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<std::uint64_t> slow{0};
  };
  struct alignas(detail::cache_line_size) stripe {
    std::array<bucket, Buckets> buckets{};
  };
  std::int64_t width_ns_ = 1;
  std::uint32_t minimum_calls_ = 1;
  // The bucket period in which the window was seen to hold minimum_calls.
  alignas(detail::cache_line_size) std::atomic<std::int64_t> full_period_{empty};
  std::array<stripe, Stripes> stripes_{};
};

/// @brief What `circuit_breaker::try_acquire()` returns: true when the call
///        may proceed. Hand it back to `on_success` / `on_failure` so an
///        outcome that arrives after the breaker changed state does not count
///        against the new state (gobreaker's generation). Eight bytes; converts
///        to bool, so `bool ok = breaker.try_acquire();` reads as before.
class breaker_permit {
 public:
  constexpr breaker_permit() noexcept = default;
  constexpr operator bool() const noexcept {
    return word_ != 0;
  }  // NOLINT(google-explicit-constructor)

 private:
  template <breaker_window, class>
  friend class circuit_breaker;
  constexpr explicit breaker_permit(std::uint64_t word) noexcept : word_(word) {}
  std::uint64_t word_ = 0;
};

/// @brief A circuit breaker (resilience4j's model): failure-rate and
///        slow-call-rate thresholds over a window, open duration with optional
///        exponential backoff, half-open trial permits, a bound on half-open,
///        manual forced_open / disabled states and a state-change callback.
///
/// Thread-safety: every member may be called from any threads at once. The
/// closed-state path (try_acquire + on_success / on_failure) is lock-free: a
/// load of the state word, then the window's atomics; a rejection while open
/// (or half-open with every trial permit out) is a load and a clock read.
/// Transitions, half-open admissions and outcomes, and the callback take a
/// mutex. Cost in closed state: a few nanoseconds plus, for
/// `time_window`, one clock read per outcome; with the default striped
/// windows, threads on different stripes write no shared cache line there.
///
/// `state()` reports the stored state: an open breaker whose open duration
/// has passed reads `open` until the next `try_acquire()` moves it to half_open.
template <breaker_window Window = count_window<100>, class Clock = std::chrono::steady_clock>
class circuit_breaker {
 public:
  using clock_type = Clock;
  using duration = typename Clock::duration;
  using window_type = Window;

  /// Throws `seckill::error` (`errc::invalid_argument`) naming the first bad option.
  explicit circuit_breaker(breaker_options options, Clock clock = {})
      : options_(std::move(options)), clock_(std::move(clock)) {
    validate(options_);
    window_.configure(options_);
  }

  circuit_breaker(const circuit_breaker&) = delete;
  circuit_breaker& operator=(const circuit_breaker&) = delete;

  /// True (a non-empty permit) when the call may proceed; false means reject
  /// fast (`errc::circuit_open`). Moves open to half_open once the open
  /// duration has passed, and half_open to open once `max_half_open_duration`
  /// has.
  [[nodiscard]] breaker_permit try_acquire() noexcept {
    const std::uint64_t w = word_.load(std::memory_order_acquire);
    const auto s = state_of(w);
    if (s == breaker_state::closed || s == breaker_state::disabled) [[likely]]
      return breaker_permit{w};
    if (s == breaker_state::forced_open) return {};
    if (s == breaker_state::open && now_ns() < open_until_ns_.load(std::memory_order_acquire))
      return {};
    // Half-open with every trial permit out: reject without the lock until
    // the half-open bound (if any) passes.
    if (s == breaker_state::half_open &&
        trials_out_.load(std::memory_order_acquire) >= options_.half_open_permits &&
        now_ns() < half_open_until_ns_.load(std::memory_order_acquire))
      return {};
    return acquire_slow();
  }

  /// As `try_acquire()`, setting `ec` to `errc::circuit_open` on rejection.
  [[nodiscard]] breaker_permit try_acquire(std::error_code& ec) noexcept {
    auto p = try_acquire();
    if (p)
      ec.clear();
    else
      ec = errc::circuit_open;
    return p;
  }

  /// Records a success of the call `permit` admitted; ignored when the
  /// breaker changed state since (or the permit is empty).
  void on_success(breaker_permit permit, duration elapsed = {}) noexcept {
    if (permit) record(permit.word_, outcome_of(false, elapsed));
  }
  /// Records a failure of the call `permit` admitted; ignored when the
  /// breaker changed state since (or the permit is empty).
  void on_failure(breaker_permit permit, duration elapsed = {}) noexcept {
    if (permit) record(permit.word_, outcome_of(true, elapsed));
  }
  /// Records a success against the current state (no generation check).
  void on_success(duration elapsed = {}) noexcept {
    record(word_.load(std::memory_order_acquire), outcome_of(false, elapsed));
  }
  /// Records a failure against the current state (no generation check).
  void on_failure(duration elapsed = {}) noexcept {
    record(word_.load(std::memory_order_acquire), outcome_of(true, elapsed));
  }

  /// The stored state (one atomic load).
  [[nodiscard]] breaker_state state() const noexcept {
    return state_of(word_.load(std::memory_order_acquire));
  }

  /// Moves to `to` by hand (resilience4j's transitionTo...State): forced_open
  /// and disabled stay until the next manual transition; open starts a fresh
  /// open duration; closed starts an empty window. No-op when already in `to`.
  void transition_to(breaker_state to) {
    std::lock_guard lock(mutex_);
    const std::uint64_t w = word_.load(std::memory_order_relaxed);
    if (state_of(w) == to) return;
    if (to == breaker_state::open) opens_in_a_row_ = 0;
    transition_locked(w, to, now_ns());
  }

  /// Back to closed with an empty window and no backoff; permits issued
  /// before no longer count.
  void reset() {
    std::lock_guard lock(mutex_);
    opens_in_a_row_ = 0;
    transition_locked(word_.load(std::memory_order_relaxed), breaker_state::closed, now_ns());
  }

  /// The closed-state window's counts now.
  [[nodiscard]] window_counts counts() const noexcept {
    return window_.counts(Window::uses_clock ? now_ns() : 0);
  }

  /// The open duration the next opening from half_open would use (backoff included).
  [[nodiscard]] std::chrono::nanoseconds next_open_duration() const {
    std::lock_guard lock(mutex_);
    return std::chrono::nanoseconds{open_span_ns(opens_in_a_row_)};
  }

  [[nodiscard]] const breaker_options& options() const noexcept { return options_; }

 private:
  static constexpr unsigned state_bits = 3;

  static breaker_state state_of(std::uint64_t w) noexcept {
    return static_cast<breaker_state>(w & ((1u << state_bits) - 1));
  }

  static void validate(const breaker_options& o) {
    using namespace std::chrono_literals;
    auto fail = [](const std::string& what) {
      throw error(errc::invalid_argument, "breaker_options: " + what);
    };
    auto rate = [&](const char* name, double v) {
      if (!(v > 0.0 && v <= 1.0))
        fail(std::string(name) + " " + detail::breaker_number(v) + " out of range (0, 1]");
    };
    rate("failure_rate_threshold", o.failure_rate_threshold);
    rate("slow_call_rate_threshold", o.slow_call_rate_threshold);
    if (o.slow_call_duration <= 0ns)
      fail("slow_call_duration " + detail::breaker_ns(o.slow_call_duration) + " must be > 0");
    if (o.minimum_calls < 1) fail("minimum_calls 0 must be >= 1");
    if constexpr (Window::capacity != 0) {
      if (o.minimum_calls > Window::capacity)
        fail("minimum_calls " + std::to_string(o.minimum_calls) + " exceeds the window's " +
             std::to_string(Window::capacity) + " calls: the breaker could never open");
    }
    if (o.open_duration <= 0ns)
      fail("open_duration " + detail::breaker_ns(o.open_duration) + " must be > 0");
    if (!(o.open_backoff_multiplier >= 1.0) || !std::isfinite(o.open_backoff_multiplier))
      fail("open_backoff_multiplier " + detail::breaker_number(o.open_backoff_multiplier) +
           " must be a finite number >= 1");
    if (o.max_open_duration != 0ns && o.max_open_duration < o.open_duration)
      fail("max_open_duration " + detail::breaker_ns(o.max_open_duration) +
           " below open_duration " + detail::breaker_ns(o.open_duration) + " (0 means no cap)");
    if (o.half_open_permits < 1) fail("half_open_permits 0 must be >= 1");
    if (o.half_open_permits >= (1u << 20))
      fail("half_open_permits " + std::to_string(o.half_open_permits) + " must be < 2^20");
    if (o.max_half_open_duration < 0ns)
      fail("max_half_open_duration " + detail::breaker_ns(o.max_half_open_duration) +
           " must be >= 0 (0 means unbounded)");
    if constexpr (Window::uses_clock) {
      if (o.window_duration <= 0ns)
        fail("window_duration " + detail::breaker_ns(o.window_duration) + " must be > 0");
    }
  }

  std::uint8_t outcome_of(bool failed, duration elapsed) const noexcept {
    std::uint8_t o = detail::outcome_call;
    if (failed) o |= detail::outcome_failure;
    if (std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed) >=
        options_.slow_call_duration)
      o |= detail::outcome_slow;
    return o;
  }

  bool over_threshold(const window_counts& c) const noexcept {
    const double calls = static_cast<double>(c.calls);
    return static_cast<double>(c.failures) >= options_.failure_rate_threshold * calls ||
           static_cast<double>(c.slow) >= options_.slow_call_rate_threshold * calls;
  }

  void record(std::uint64_t w, std::uint8_t outcome) noexcept {
    const auto s = state_of(w);
    if (s == breaker_state::closed) {
      if (word_.load(std::memory_order_acquire) != w) return;  // a later generation
      const auto r = window_.record(outcome, Window::uses_clock ? now_ns() : 0);
      if (r.changed && r.counts.calls >= options_.minimum_calls && over_threshold(r.counts)) {
        std::lock_guard lock(mutex_);
        if (word_.load(std::memory_order_relaxed) != w) return;
        opens_in_a_row_ = 0;
        transition_locked(w, breaker_state::open, now_ns());
      }
    } else if (s == breaker_state::half_open) {
      std::lock_guard lock(mutex_);
      if (word_.load(std::memory_order_relaxed) != w) return;
      ++trial_calls_;
      if (outcome & detail::outcome_failure) ++trial_failures_;
      if (outcome & detail::outcome_slow) ++trial_slow_;
      if (trial_calls_ < options_.half_open_permits) return;
      const bool reopen = over_threshold({trial_calls_, trial_failures_, trial_slow_});
      transition_locked(w, reopen ? breaker_state::open : breaker_state::closed, now_ns());
    }
    // open, forced_open, disabled: outcomes are not recorded.
  }

  breaker_permit acquire_slow() noexcept {
    std::lock_guard lock(mutex_);
    std::uint64_t w = word_.load(std::memory_order_relaxed);
    const std::int64_t now = now_ns();
    switch (state_of(w)) {
      case breaker_state::closed:
      case breaker_state::disabled:
        return breaker_permit{w};
      case breaker_state::forced_open:
        return {};
      case breaker_state::open:
        if (now < open_until_ns_.load(std::memory_order_relaxed)) return {};
        w = transition_locked(w, breaker_state::half_open, now);
        break;
      case breaker_state::half_open:
        if (options_.max_half_open_duration.count() > 0 &&
            now - half_open_since_ns_ >= options_.max_half_open_duration.count()) {
          transition_locked(w, breaker_state::open, now);
          return {};
        }
        break;
    }
    const std::uint32_t out = trials_out_.load(std::memory_order_relaxed);
    if (out >= options_.half_open_permits) return {};
    trials_out_.store(out + 1, std::memory_order_release);
    return breaker_permit{w};
  }

  std::int64_t open_span_ns(std::uint32_t opens_before) const noexcept {
    const double base = static_cast<double>(options_.open_duration.count());
    double span =
        base * std::pow(options_.open_backoff_multiplier, static_cast<double>(opens_before));
    if (options_.max_open_duration.count() > 0)
      span = std::min(span, static_cast<double>(options_.max_open_duration.count()));
    span = std::min(span, static_cast<double>(std::int64_t{1} << 62));
    return static_cast<std::int64_t>(span);
  }

  /// Publishes a new generation in state `to`; returns the new word. Needs mutex_.
  std::uint64_t transition_locked(std::uint64_t w, breaker_state to, std::int64_t now) noexcept {
    const breaker_state from = state_of(w);
    const std::uint64_t next =
        (((w >> state_bits) + 1) << state_bits) | static_cast<std::uint64_t>(to);
    switch (to) {
      case breaker_state::open:
        open_until_ns_.store(now + open_span_ns(opens_in_a_row_), std::memory_order_relaxed);
        if (opens_in_a_row_ < 64) ++opens_in_a_row_;
        break;
      case breaker_state::half_open:
        trial_calls_ = trial_failures_ = trial_slow_ = 0;
        trials_out_.store(0, std::memory_order_relaxed);
        half_open_since_ns_ = now;
        half_open_until_ns_.store(options_.max_half_open_duration.count() > 0
                                      ? now + options_.max_half_open_duration.count()
                                      : std::numeric_limits<std::int64_t>::max(),
                                  std::memory_order_relaxed);
        break;
      case breaker_state::closed:
        window_.clear();
        opens_in_a_row_ = 0;
        break;
      case breaker_state::forced_open:
      case breaker_state::disabled:
        break;
    }
    word_.store(next, std::memory_order_release);
    if (options_.on_state_change && from != to) {
      try {
        options_.on_state_change(from, to);
      } catch (...) {
        // A throwing observer must not leave the breaker half-transitioned.
      }
    }
    return next;
  }

  std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
        .count();
  }

  // Hot: read on every call.
  alignas(detail::cache_line_size) std::atomic<std::uint64_t> word_{
      std::uint64_t{1} << state_bits};  // generation 1, closed
  std::atomic<std::int64_t> open_until_ns_{0};
  std::atomic<std::int64_t> half_open_until_ns_{0};
  std::atomic<std::uint32_t> trials_out_{0};  // written under mutex_, read without it
  breaker_options options_;
  [[no_unique_address]] Clock clock_;
  alignas(detail::cache_line_size) Window window_;
  // Under mutex_.
  mutable std::mutex mutex_;
  std::uint32_t opens_in_a_row_ = 0;
  std::uint32_t trial_calls_ = 0;
  std::uint32_t trial_failures_ = 0;
  std::uint32_t trial_slow_ = 0;
  std::int64_t half_open_since_ns_ = 0;
};

static_assert(sizeof(breaker_permit) == sizeof(std::uint64_t), "a breaker_permit is one word");

}  // namespace seckill
