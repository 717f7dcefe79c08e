#pragma once
/// @file
/// @brief Snowflake ids: 64-bit, time-ordered, unique per (datacenter, worker),
///        generated lock-free with one CAS per id, with a choice of what to do
///        when the clock goes backwards.
///
/// An id is `0 | timestamp | datacenter | worker | sequence` from the most to the
/// least significant bit (Twitter's 1/41/5/5/12 by default): milliseconds since a
/// custom epoch, the generator's datacenter and worker ids, and a counter within
/// the millisecond. Ids from one generator strictly increase, in every thread.

#include <seckill/detail/cache_line.hpp>
#include <seckill/detail/cpu_relax.hpp>
#include <seckill/error.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ratio>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

namespace seckill {

/// @brief The bit layout of a snowflake id: timestamp, datacenter, worker and
///        sequence widths, which together with the sign bit make 64.
///
/// Checked at compile time: the widths add up to 63, the timestamp and the
/// sequence have at least one bit, node ids fit an `unsigned`.
template <unsigned TimestampBits, unsigned DatacenterBits, unsigned WorkerBits,
          unsigned SequenceBits>
struct snowflake_layout {
  static_assert(TimestampBits + DatacenterBits + WorkerBits + SequenceBits == 63,
                "a snowflake layout's fields must add up to 63 bits (the sign bit stays 0)");
  static_assert(TimestampBits >= 1, "a snowflake layout needs at least one timestamp bit");
  static_assert(SequenceBits >= 1, "a snowflake layout needs at least one sequence bit");
  static_assert(DatacenterBits <= 31 && WorkerBits <= 31,
                "datacenter and worker ids must fit an unsigned");

  static constexpr unsigned timestamp_bits = TimestampBits;
  static constexpr unsigned datacenter_bits = DatacenterBits;
  static constexpr unsigned worker_bits = WorkerBits;
  static constexpr unsigned sequence_bits = SequenceBits;

  static constexpr unsigned worker_shift = SequenceBits;
  static constexpr unsigned datacenter_shift = SequenceBits + WorkerBits;
  static constexpr unsigned timestamp_shift = SequenceBits + WorkerBits + DatacenterBits;

  static constexpr std::int64_t max_timestamp = (std::int64_t{1} << TimestampBits) - 1;
  static constexpr std::uint32_t max_datacenter = (std::uint32_t{1} << DatacenterBits) - 1;
  static constexpr std::uint32_t max_worker = (std::uint32_t{1} << WorkerBits) - 1;
  static constexpr std::uint64_t max_sequence = (std::uint64_t{1} << SequenceBits) - 1;
};

/// @brief Twitter's layout: 41 bits of milliseconds (69 years), 5 of datacenter,
///        5 of worker, 12 of sequence (4096 ids per millisecond per worker).
using twitter_layout = snowflake_layout<41, 5, 5, 12>;

/// @brief The default clock of a snowflake: the system clock read in whole
///        milliseconds since the Unix epoch.
///
/// Thread-safety: stateless. Cost: one `clock_gettime(CLOCK_REALTIME)` (vDSO).
struct system_millis {
  using rep = std::int64_t;
  using period = std::milli;
  using duration = std::chrono::milliseconds;
  using time_point = std::chrono::time_point<std::chrono::system_clock, duration>;
  static constexpr bool is_steady = false;

  static time_point now() noexcept {
    return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
  }
};

/// The default epoch of a snowflake: 2024-01-01T00:00:00Z, as time since the Unix epoch.
inline constexpr std::chrono::milliseconds default_epoch{1'704'067'200'000};

/// @brief What a rollback policy tells a `snowflake` to do.
enum class rollback_action {
  wait_for_clock,  ///< spin, then yield, until the clock passes the last id's timestamp
  issue_ahead,  ///< issue the id at the last timestamp (the next one once its sequence is used up)
  fail,         ///< issue no id: `next()` fails with the decision's error
};

/// @brief A rollback policy's answer: an action, and the error when it is `fail`.
struct rollback_decision {
  rollback_action action = rollback_action::wait_for_clock;
  errc error = errc::clock_rollback;
};

/// @brief The policy a `snowflake` asks when it cannot simply issue an id at
///        the clock's millisecond: the clock reads behind the last id's
///        timestamp (`now < last`), or that millisecond's sequence is used up
///        (`exhausted`, with `now <= last`). Only this slow path asks it, so it
///        costs nothing on the fast path.
///
/// `P::on_clock_behind(last, now, exhausted)` (milliseconds since the epoch,
/// noexcept, called from any thread at once: a stateless static function)
/// returns the decision; `P::describe()` says in a few words what the policy
/// does, for the messages of the errors it causes. Any type that meets this
/// works: seckill's `wait_up_to`, `fail_on_rollback` and `logical_clock`, or
/// your own.
template <class P>
concept rollback_policy = requires(std::int64_t ms, bool exhausted) {
  { P::on_clock_behind(ms, ms, exhausted) }
  noexcept->std::same_as<rollback_decision>;
  { P::describe() } -> std::convertible_to<std::string>;
};

/// @brief Rollback policy: wait out a clock that went back by at most `Ms`
///        milliseconds (spin, then yield, until it catches up); fail with
///        `errc::clock_rollback` beyond that.
template <std::int64_t Ms>
struct wait_up_to {
  static_assert(Ms >= 0, "wait_up_to needs a non-negative number of milliseconds");
  static constexpr std::chrono::milliseconds max_wait{Ms};

  static constexpr rollback_decision on_clock_behind(std::int64_t last, std::int64_t now,
                                                     bool) noexcept {
    if (last - now > Ms) return {rollback_action::fail, errc::clock_rollback};
    return {rollback_action::wait_for_clock, errc::clock_rollback};
  }
  static std::string describe() {
    return "wait_up_to waits out at most " + std::to_string(Ms) + " ms";
  }
};

/// @brief Rollback policy: any backwards step of the clock fails with
///        `errc::clock_rollback` until the clock is back where it was.
struct fail_on_rollback {
  static constexpr rollback_decision on_clock_behind(std::int64_t last, std::int64_t now,
                                                     bool) noexcept {
    if (now < last) return {rollback_action::fail, errc::clock_rollback};
    return {rollback_action::wait_for_clock,
            errc::clock_rollback};  // the sequence ran out: the next ms
  }
  static std::string describe() {
    return "fail_on_rollback issues no id until the clock catches up";
  }
};

/// @brief Rollback policy: time never goes back. Ids keep the last timestamp when
///        the clock is behind it, and borrow the next millisecond when the
///        sequence runs out, so `next()` never waits; an id whose timestamp would
///        be more than `MaxDriftMs` ahead of the clock fails with
///        `errc::clock_drift_exceeded`.
template <std::int64_t MaxDriftMs = 1000>
struct logical_clock {
  static_assert(MaxDriftMs >= 1, "logical_clock needs a maximum drift of at least 1 ms");
  static constexpr std::chrono::milliseconds max_drift{MaxDriftMs};

  static constexpr rollback_decision on_clock_behind(std::int64_t last, std::int64_t now,
                                                     bool exhausted) noexcept {
    const std::int64_t issued_at = exhausted ? last + 1 : last;
    if (issued_at - now > MaxDriftMs) return {rollback_action::fail, errc::clock_drift_exceeded};
    return {rollback_action::issue_ahead, errc::clock_drift_exceeded};
  }
  static std::string describe() { return "maximum drift " + std::to_string(MaxDriftMs) + " ms"; }
};

/// @brief The fields of a snowflake id.
struct snowflake_parts {
  std::chrono::milliseconds timestamp{};  ///< since the generator's epoch
  std::uint32_t datacenter = 0;
  std::uint32_t worker = 0;
  std::uint32_t sequence = 0;

  friend bool operator==(const snowflake_parts&, const snowflake_parts&) = default;
};

namespace detail {

/// `a + b` into `out`; false (and `out` unspecified) when it does not fit 64 bits.
inline bool checked_add(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return !__builtin_add_overflow(a, b, &out);
#else
  if ((b > 0 && a > std::numeric_limits<std::int64_t>::max() - b) ||
      (b < 0 && a < std::numeric_limits<std::int64_t>::min() - b)) {
    return false;
  }
  out = a + b;
  return true;
#endif
}

/// `a - b` into `out`; false when it does not fit 64 bits.
inline bool checked_sub(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return !__builtin_sub_overflow(a, b, &out);
#else
  if ((b < 0 && a > std::numeric_limits<std::int64_t>::max() + b) ||
      (b > 0 && a < std::numeric_limits<std::int64_t>::min() + b)) {
    return false;
  }
  out = a - b;
  return true;
#endif
}

/// `a * b` into `out`, for `b > 0`; false when it does not fit 64 bits.
inline bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  return !__builtin_mul_overflow(a, b, &out);
#else
  if (a > std::numeric_limits<std::int64_t>::max() / b ||
      a < std::numeric_limits<std::int64_t>::min() / b) {
    return false;
  }
  out = a * b;
  return true;
#endif
}

/// `d` in whole milliseconds, floored (as `std::chrono::floor` does), into
/// `out`; false when that does not fit 64 bits (a clock counting seconds near
/// its range's end, a floating-point clock reading NaN or beyond 2^63 ms).
/// Costs one division for clocks at millisecond resolution or finer.
template <class Rep, class Period>
bool floor_millis(std::chrono::duration<Rep, Period> d, std::int64_t& out) noexcept {
  using per_tick = std::ratio_divide<Period, std::milli>;  // ms per tick: num / den
  constexpr std::int64_t num = per_tick::num;
  constexpr std::int64_t den = per_tick::den;
  if constexpr (std::is_floating_point_v<Rep>) {
    const long double ms = std::floor(static_cast<long double>(d.count()) * num / den);
    if (!(ms >= -0x1p63L && ms < 0x1p63L)) return false;  // NaN fails too
    out = static_cast<std::int64_t>(ms);
    return true;
  } else if constexpr (std::is_integral_v<Rep>) {
    if (!std::in_range<std::int64_t>(d.count())) return false;
    const auto c = static_cast<std::int64_t>(d.count());
    std::int64_t q = c / den;  // floor(c / den) and the remainder in [0, den)
    std::int64_t r = c % den;
    if (r < 0) {
      --q;
      r += den;
    }
    if constexpr (num == 1) {
      out = q;
      return true;
    } else {
      std::int64_t whole = 0, part = 0;
      return checked_mul(q, num, whole) && checked_mul(r, num, part) &&
             checked_add(whole, part / den, out);
    }
  } else {
    out = std::chrono::floor<std::chrono::milliseconds>(d).count();
    return true;
  }
}

/// `ms` milliseconds as a `Duration` (truncated towards zero, as
/// `std::chrono::duration_cast` does) into `out`; false when it does not fit
/// the duration's representation.
template <class Duration>
bool millis_to(std::int64_t ms, Duration& out) noexcept {
  using rep = typename Duration::rep;
  using per_ms = std::ratio_divide<std::milli, typename Duration::period>;  // ticks per ms
  constexpr std::int64_t num = per_ms::num;
  constexpr std::int64_t den = per_ms::den;
  if constexpr (std::is_floating_point_v<rep>) {
    out = Duration{static_cast<rep>(static_cast<long double>(ms) * num / den)};
    return true;
  } else if constexpr (std::is_integral_v<rep>) {
    std::int64_t ticks = 0;
    if constexpr (den == 1) {
      if (!checked_mul(ms, num, ticks)) return false;
    } else if constexpr (num == 1) {
      ticks = ms / den;
    } else {
      std::int64_t whole = 0, part = 0;
      if (!checked_mul(ms / den, num, whole) || !checked_mul(ms % den, num, part) ||
          !checked_add(whole, part / den, ticks)) {
        return false;
      }
    }
    if (!std::in_range<rep>(ticks)) return false;
    out = Duration{static_cast<rep>(ticks)};
    return true;
  } else {
    out = std::chrono::duration_cast<Duration>(std::chrono::milliseconds{ms});
    return true;
  }
}

/// What a failed `next()` saw, for the throwing overload's message.
struct snowflake_failure {
  std::error_code ec;
  std::int64_t last = 0;   // the last id's timestamp (ms since the epoch), or the wanted one
  std::int64_t now = 0;    // the clock (ms since the epoch)
  bool exhausted = false;  // the last timestamp's sequence was used up
};

}  // namespace detail

/// @brief A Snowflake id generator: unique, strictly increasing 64-bit ids for
///        one (datacenter, worker) pair.
///
/// The whole state (last millisecond and sequence) is one 64-bit atomic on its
/// own cache line; `next()` reads the clock once and publishes an id with one
/// compare-and-swap, so any number of threads may share a generator. When a
/// millisecond's sequence is exhausted, `next()` waits for the next millisecond
/// (spinning, then yielding), except under `logical_clock`, which borrows it.
/// A clock that goes backwards is handled by `OnRollback`, any
/// `rollback_policy`: `wait_up_to<Ms>`, `fail_on_rollback`,
/// `logical_clock<MaxDriftMs>` or a type of your own. Never a duplicate.
///
/// `Clock` is any clock with `now()`; its `time_since_epoch()`, floored to
/// milliseconds, minus `epoch` is the id's timestamp. `seckill::manual_clock`
/// drives it in tests.
///
/// Thread-safety: `next()` from any number of threads. Cost: one clock read and
/// one CAS per id (about 10 ns uncontended plus the clock); at most
/// 2^sequence_bits ids per millisecond (4,096,000 per second by default).
template <class Layout = twitter_layout, class Clock = system_millis,
          rollback_policy OnRollback = wait_up_to<15>>
class snowflake {
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                "snowflake needs a lock-free 64-bit atomic");

 public:
  using layout_type = Layout;
  using clock_type = Clock;
  using rollback_policy = OnRollback;

  /// The most ids one generator issues per millisecond.
  static constexpr std::int64_t ids_per_millisecond = std::int64_t{1} << Layout::sequence_bits;

  /// @param datacenter_id in [0, Layout::max_datacenter]
  /// @param worker_id     in [0, Layout::max_worker]
  /// @param epoch         the ids' time zero, as time since the clock's epoch
  /// @throws seckill::error (`errc::invalid_argument`) when an id is out of range,
  ///         or the clock now reads before `epoch` or beyond the timestamp range
  ///         (an epoch so far off, such as `milliseconds::min()`, that the
  ///         clock's reading minus it does not fit 64 bits included), or the
  ///         clock's reading does not fit 64-bit milliseconds. The message has
  ///         the values seen.
  snowflake(unsigned datacenter_id, unsigned worker_id,
            std::chrono::milliseconds epoch = default_epoch, Clock clock = {})
      : epoch_ms_(epoch.count()),
        clock_(std::move(clock)),
        datacenter_(datacenter_id),
        worker_(worker_id) {
    static_assert(sizeof(state_) == sizeof(std::uint64_t),
                  "a snowflake's state is one 64-bit atomic");
    check_range("datacenter_id", datacenter_id, Layout::max_datacenter);
    check_range("worker_id", worker_id, Layout::max_worker);
    node_bits_ = (std::uint64_t{datacenter_id} << Layout::datacenter_shift) |
                 (std::uint64_t{worker_id} << Layout::worker_shift);
    const std::string range = "the " + std::to_string(Layout::timestamp_bits) +
                              "-bit timestamp range [0, " + std::to_string(Layout::max_timestamp) +
                              "]";
    std::int64_t clock_ms = 0;
    if (!detail::floor_millis(clock_.now().time_since_epoch(), clock_ms)) {
      throw error(errc::invalid_argument,
                  "snowflake epoch " + std::to_string(epoch_ms_) +
                      " ms: the clock's reading does not fit 64-bit milliseconds");
    }
    std::int64_t now = 0;
    if (!detail::checked_sub(clock_ms, epoch_ms_, now)) {
      throw error(errc::invalid_argument, "snowflake epoch " + std::to_string(epoch_ms_) +
                                              " ms: the clock reads " + std::to_string(clock_ms) +
                                              " ms since its own epoch, and the time between " +
                                              "the two does not fit 64 bits, far outside " + range);
    }
    if (now < 0 || now > Layout::max_timestamp) {
      throw error(errc::invalid_argument, "snowflake epoch " + std::to_string(epoch_ms_) +
                                              " ms: the clock reads " + std::to_string(now) +
                                              " ms since it, outside " + range);
    }
  }

  snowflake(const snowflake&) = delete;
  snowflake& operator=(const snowflake&) = delete;

  /// The next id. @throws seckill::error with `errc::clock_rollback`,
  /// `errc::clock_drift_exceeded` or `errc::timestamp_out_of_range`, and a message
  /// with the values seen.
  [[nodiscard]] std::int64_t next() {
    detail::snowflake_failure failure;
    const std::int64_t id = generate(failure);
    if (id < 0) throw error(failure.ec, describe(failure));
    return id;
  }

  /// The next id, or -1 with `ec` set (same codes as `next()`); `ec` is cleared on success.
  [[nodiscard]] std::int64_t next(std::error_code& ec) noexcept {
    detail::snowflake_failure failure;
    const std::int64_t id = generate(failure);
    ec = failure.ec;
    return id;
  }

  /// Splits an id into its fields. @throws seckill::error (`errc::invalid_argument`)
  /// for a negative id, which no snowflake issues.
  [[nodiscard]] static snowflake_parts decompose(std::int64_t id) {
    if (id < 0) {
      throw error(errc::invalid_argument,
                  "snowflake id " + std::to_string(id) + " is negative: not a snowflake id");
    }
    const auto u = static_cast<std::uint64_t>(id);
    snowflake_parts p;
    p.timestamp =
        std::chrono::milliseconds{static_cast<std::int64_t>(u >> Layout::timestamp_shift)};
    p.datacenter =
        static_cast<std::uint32_t>((u >> Layout::datacenter_shift) & Layout::max_datacenter);
    p.worker = static_cast<std::uint32_t>((u >> Layout::worker_shift) & Layout::max_worker);
    p.sequence = static_cast<std::uint32_t>(u & Layout::max_sequence);
    return p;
  }

  /// Builds an id from its fields (the inverse of `decompose`).
  /// @throws seckill::error (`errc::invalid_argument`) when a field is out of range.
  [[nodiscard]] static std::int64_t compose(const snowflake_parts& p) {
    if (p.timestamp.count() < 0 || p.timestamp.count() > Layout::max_timestamp) {
      throw error(errc::invalid_argument, "timestamp " + std::to_string(p.timestamp.count()) +
                                              " out of range [0, " +
                                              std::to_string(Layout::max_timestamp) + "]");
    }
    check_range("datacenter", p.datacenter, Layout::max_datacenter);
    check_range("worker", p.worker, Layout::max_worker);
    check_range("sequence", p.sequence, Layout::max_sequence);
    return static_cast<std::int64_t>(
        (static_cast<std::uint64_t>(p.timestamp.count()) << Layout::timestamp_shift) |
        (std::uint64_t{p.datacenter} << Layout::datacenter_shift) |
        (std::uint64_t{p.worker} << Layout::worker_shift) | std::uint64_t{p.sequence});
  }

  /// The time an id was issued at, on this generator's clock (its epoch added back).
  /// @throws seckill::error (`errc::invalid_argument`) for a negative id, or an
  ///         id whose time does not fit the clock's duration (an id from another
  ///         layout or epoch, decoded far past the clock's range).
  [[nodiscard]] typename Clock::time_point time_of(std::int64_t id) const {
    const std::int64_t ts = decompose(id).timestamp.count();
    std::int64_t since_clock_epoch = 0;
    typename Clock::duration d{};
    if (!detail::checked_add(ts, epoch_ms_, since_clock_epoch) ||
        !detail::millis_to(since_clock_epoch, d)) {
      throw error(errc::invalid_argument, "snowflake id " + std::to_string(id) + ": its time, " +
                                              std::to_string(ts) + " ms after the epoch at " +
                                              std::to_string(epoch_ms_) +
                                              " ms, does not fit the clock's duration");
    }
    return typename Clock::time_point{d};
  }

  /// The timestamp (ms since the epoch) of the last id issued, or the one set
  /// by `resume_after`; 0 before either.
  [[nodiscard]] std::chrono::milliseconds last_timestamp() const noexcept {
    return std::chrono::milliseconds{
        static_cast<std::int64_t>(state_.load(std::memory_order_acquire) >> seq_bits)};
  }

  /// Makes every later id's timestamp greater than `timestamp` (ms since the
  /// epoch): for a generator taking over a (datacenter, worker) pair that
  /// another one used up to `timestamp`. While the clock reads at or before
  /// it, `OnRollback` decides, as after a clock rollback (`wait_up_to` waits
  /// out a few ms and fails beyond, `logical_clock` issues ahead). A timestamp
  /// at or below the last one changes nothing. Thread-safe.
  /// @throws seckill::error (`errc::invalid_argument`) when `timestamp` is
  ///         outside the layout's timestamp range.
  void resume_after(std::chrono::milliseconds timestamp) {
    if (timestamp.count() < 0 || timestamp.count() > Layout::max_timestamp) {
      throw error(errc::invalid_argument,
                  "snowflake resume_after timestamp " + std::to_string(timestamp.count()) +
                      " ms out of range [0, " + std::to_string(Layout::max_timestamp) + "]");
    }
    // that millisecond with its sequence used up: the next id is in a later one
    const std::uint64_t floor =
        (static_cast<std::uint64_t>(timestamp.count()) << seq_bits) | seq_mask;
    std::uint64_t cur = state_.load(std::memory_order_acquire);
    while (cur < floor && !state_.compare_exchange_weak(cur, floor, std::memory_order_acq_rel,
                                                        std::memory_order_acquire)) {
    }
  }

  [[nodiscard]] unsigned datacenter_id() const noexcept { return datacenter_; }
  [[nodiscard]] unsigned worker_id() const noexcept { return worker_; }
  [[nodiscard]] std::chrono::milliseconds epoch() const noexcept {
    return std::chrono::milliseconds{epoch_ms_};
  }
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }

 private:
  static constexpr unsigned seq_bits = Layout::sequence_bits;
  static constexpr std::uint64_t seq_mask = Layout::max_sequence;
  // Busy-wait iterations (a clock read and a pause each, some 50 us in all)
  // before a waiting next() yields its CPU at every further iteration: short
  // waits stay off the scheduler, long ones leave the CPU to threads that can
  // make progress.
  static constexpr unsigned spin_limit = 1024;

  template <class V>
  static void check_range(const char* what, V value, std::uint64_t max) {
    if (static_cast<std::uint64_t>(value) > max) {
      throw error(errc::invalid_argument, std::string(what) + " " + std::to_string(value) +
                                              " out of range [0, " + std::to_string(max) + "]");
    }
  }

  // What tick() returns when the clock's reading minus the epoch does not fit
  // 64 bits: out of every layout's timestamp range, so next() fails with
  // timestamp_out_of_range.
  static constexpr std::int64_t tick_overflow = std::numeric_limits<std::int64_t>::min();

  // The clock, in whole milliseconds since the epoch (floored, so negative
  // sub-millisecond offsets stay before the epoch), or tick_overflow.
  std::int64_t tick() const noexcept {
    std::int64_t clock_ms = 0, since_epoch = 0;
    if (!detail::floor_millis(clock_.now().time_since_epoch(), clock_ms) ||
        !detail::checked_sub(clock_ms, epoch_ms_, since_epoch)) {
      return tick_overflow;
    }
    return since_epoch;
  }

  std::int64_t make_id(std::uint64_t state) const noexcept {
    // state = timestamp << seq_bits | sequence; the node bits go between them.
    return static_cast<std::int64_t>(
        ((state & ~seq_mask) << (Layout::datacenter_bits + Layout::worker_bits)) | node_bits_ |
        (state & seq_mask));
  }

  static std::int64_t fail(detail::snowflake_failure& f, errc e, std::int64_t last,
                           std::int64_t now, bool exhausted = false) noexcept {
    f.ec = make_error_code(e);
    f.last = last;
    f.now = now;
    f.exhausted = exhausted;
    return -1;
  }

  static void backoff(unsigned& spins) noexcept {
    if (spins < spin_limit) {
      ++spins;
      detail::cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }

  std::int64_t generate(detail::snowflake_failure& f) noexcept {
    std::uint64_t cur = state_.load(std::memory_order_acquire);
    std::int64_t now = tick();
    bool fresh = true;  // `now` was read after `cur` was loaded
    unsigned spins = 0;
    for (;;) {
      if (now < 0 || now > Layout::max_timestamp) {
        return fail(f, errc::timestamp_out_of_range, static_cast<std::int64_t>(cur >> seq_bits),
                    now);
      }
      const auto last = static_cast<std::int64_t>(cur >> seq_bits);
      const std::uint64_t seq = cur & seq_mask;
      std::uint64_t desired;
      if (now > last) {
        desired = static_cast<std::uint64_t>(now) << seq_bits;
      } else if (now == last && seq < seq_mask) {
        desired = cur + 1;
      } else if (now < last && !fresh) {
        // Another thread may have published a timestamp read after our clock
        // read: read the clock again before calling this a rollback.
        now = tick();
        fresh = true;
        continue;
      } else {
        // Behind the last id, or this millisecond is used up: the policy decides.
        const bool exhausted = seq >= seq_mask;
        const rollback_decision decision = OnRollback::on_clock_behind(last, now, exhausted);
        if (decision.action == rollback_action::fail)
          return fail(f, decision.error, last, now, exhausted);
        if (decision.action == rollback_action::wait_for_clock) {
          // Wait for the clock to pass `last` (sequence exhausted) or to catch
          // up with it, re-reading the state other threads move.
          backoff(spins);
          cur = state_.load(std::memory_order_acquire);
          now = tick();
          fresh = true;
          continue;
        }
        const std::int64_t issued_at = exhausted ? last + 1 : last;
        if (issued_at > Layout::max_timestamp) {
          return fail(f, errc::timestamp_out_of_range, issued_at, now, false);
        }
        desired = exhausted ? static_cast<std::uint64_t>(issued_at) << seq_bits : cur + 1;
      }
      if (state_.compare_exchange_weak(cur, desired, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return make_id(desired);
      }
      fresh = false;
    }
  }

  std::string describe(const detail::snowflake_failure& f) const {
    const auto ms = [](std::int64_t v) { return std::to_string(v) + " ms"; };
    if (f.ec == errc::clock_drift_exceeded) {
      const std::int64_t issued_at = f.exhausted ? f.last + 1 : f.last;
      return "logical clock would issue an id at " + ms(issued_at) + " since the epoch, " +
             ms(issued_at - f.now) + " ahead of the clock at " + ms(f.now) + " (" +
             OnRollback::describe() + ")";
    }
    if (f.ec != errc::timestamp_out_of_range) {  // clock_rollback, or a code of the policy's own
      std::string s =
          f.now < f.last
              ? "clock moved backwards by " + ms(f.last - f.now) + " (last id at " + ms(f.last) +
                    " since the epoch, clock at " + ms(f.now) + ")"
              : "no id at " + ms(f.now) + " since the epoch (last id at " + ms(f.last) + ")";
      return s + "; " + OnRollback::describe();
    }
    if (f.now == tick_overflow) {
      return "the clock's reading minus the epoch at " + ms(epoch_ms_) +
             " does not fit 64 bits, outside the " + std::to_string(Layout::timestamp_bits) +
             "-bit timestamp range [0, " + std::to_string(Layout::max_timestamp) + "]";
    }
    return "clock at " + ms(f.now) + " since the epoch (or the id timestamp " + ms(f.last) +
           ") is outside the " + std::to_string(Layout::timestamp_bits) +
           "-bit timestamp range [0, " + std::to_string(Layout::max_timestamp) + "]";
  }

  // Hot: written by every next(), alone on its cache line.
  alignas(detail::cache_line_size) std::atomic<std::uint64_t> state_{0};
  // Read-only after construction, on a line of their own.
  alignas(detail::cache_line_size) std::uint64_t node_bits_ = 0;
  std::int64_t epoch_ms_;
  Clock clock_;
  unsigned datacenter_;
  unsigned worker_;
};

}  // namespace seckill
