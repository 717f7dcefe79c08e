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

#include <seckill/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#endif

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

/// @brief Rollback policy: wait out a clock that went back by at most `Ms`
///        milliseconds (spin, then yield, until it catches up); fail with
///        `errc::clock_rollback` beyond that.
template <std::int64_t Ms>
struct wait_up_to {
  static_assert(Ms >= 0, "wait_up_to needs a non-negative number of milliseconds");
  static constexpr std::chrono::milliseconds max_wait{Ms};
};

/// @brief Rollback policy: any backwards step of the clock fails with
///        `errc::clock_rollback` until the clock is back where it was.
struct fail_on_rollback {};

/// @brief Rollback policy: time never goes back. Ids keep the last timestamp when
///        the clock is behind it, and borrow the next millisecond when the
///        sequence runs out, so `next()` never waits; an id whose timestamp would
///        be more than `MaxDriftMs` ahead of the clock fails with
///        `errc::clock_drift_exceeded`.
template <std::int64_t MaxDriftMs = 1000>
struct logical_clock {
  static_assert(MaxDriftMs >= 1, "logical_clock needs a maximum drift of at least 1 ms");
  static constexpr std::chrono::milliseconds max_drift{MaxDriftMs};
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

template <class P>
struct is_wait_up_to : std::false_type {};
template <std::int64_t Ms>
struct is_wait_up_to<wait_up_to<Ms>> : std::true_type {};

template <class P>
struct is_logical_clock : std::false_type {};
template <std::int64_t Ms>
struct is_logical_clock<logical_clock<Ms>> : std::true_type {};

template <class P>
inline constexpr bool is_rollback_policy =
    is_wait_up_to<P>::value || is_logical_clock<P>::value || std::is_same_v<P, fail_on_rollback>;

/// One pause of a spin-wait loop: the CPU's spin hint, nothing where there is none.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_pause();
#endif
}

/// What a failed `next()` saw, for the throwing overload's message.
struct snowflake_failure {
  std::error_code ec;
  std::int64_t last = 0;  // the last id's timestamp (ms since the epoch), or the wanted one
  std::int64_t now = 0;   // the clock (ms since the epoch)
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
/// A clock that goes backwards is handled by `OnRollback`: `wait_up_to<Ms>`,
/// `fail_on_rollback` or `logical_clock<MaxDriftMs>`. Never a duplicate.
///
/// `Clock` is any clock with `now()`; its `time_since_epoch()`, floored to
/// milliseconds, minus `epoch` is the id's timestamp. `seckill::manual_clock`
/// drives it in tests.
///
/// Thread-safety: `next()` from any number of threads. Cost: one clock read and
/// one CAS per id (about 10 ns uncontended plus the clock); at most
/// 2^sequence_bits ids per millisecond (4,096,000 per second by default).
template <class Layout = twitter_layout, class Clock = system_millis,
          class OnRollback = wait_up_to<15>>
class snowflake {
  static_assert(detail::is_rollback_policy<OnRollback>,
                "OnRollback must be wait_up_to<Ms>, fail_on_rollback or logical_clock<MaxDriftMs>");
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
  /// @throws seckill::error (`errc::invalid_argument`) when an id is out of range
  ///         or the clock now reads before `epoch` or beyond the timestamp range.
  snowflake(unsigned datacenter_id, unsigned worker_id,
            std::chrono::milliseconds epoch = default_epoch, Clock clock = {})
      : epoch_ms_(epoch.count()), clock_(std::move(clock)),
        datacenter_(datacenter_id), worker_(worker_id) {
    static_assert(sizeof(state_) == sizeof(std::uint64_t),
                  "a snowflake's state is one 64-bit atomic");
    check_range("datacenter_id", datacenter_id, Layout::max_datacenter);
    check_range("worker_id", worker_id, Layout::max_worker);
    node_bits_ = (std::uint64_t{datacenter_id} << Layout::datacenter_shift) |
                 (std::uint64_t{worker_id} << Layout::worker_shift);
    const std::int64_t now = tick();
    if (now < 0 || now > Layout::max_timestamp) {
      throw error(errc::invalid_argument,
                  "snowflake epoch " + std::to_string(epoch_ms_) + " ms: the clock reads " +
                      std::to_string(now) + " ms since it, outside the " +
                      std::to_string(Layout::timestamp_bits) + "-bit timestamp range [0, " +
                      std::to_string(Layout::max_timestamp) + "]");
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
    p.timestamp = std::chrono::milliseconds{static_cast<std::int64_t>(u >> Layout::timestamp_shift)};
    p.datacenter = static_cast<std::uint32_t>((u >> Layout::datacenter_shift) & Layout::max_datacenter);
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
  [[nodiscard]] typename Clock::time_point time_of(std::int64_t id) const {
    const auto since_clock_epoch = decompose(id).timestamp + std::chrono::milliseconds{epoch_ms_};
    return typename Clock::time_point{
        std::chrono::duration_cast<typename Clock::duration>(since_clock_epoch)};
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

  // The clock, in whole milliseconds since the epoch (floored, so negative
  // sub-millisecond offsets stay before the epoch).
  std::int64_t tick() const noexcept {
    return std::chrono::floor<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count() -
           epoch_ms_;
  }

  std::int64_t make_id(std::uint64_t state) const noexcept {
    // state = timestamp << seq_bits | sequence; the node bits go between them.
    return static_cast<std::int64_t>(((state & ~seq_mask) << (Layout::datacenter_bits + Layout::worker_bits)) |
                                     node_bits_ | (state & seq_mask));
  }

  static std::int64_t fail(detail::snowflake_failure& f, errc e, std::int64_t last,
                           std::int64_t now) noexcept {
    f.ec = make_error_code(e);
    f.last = last;
    f.now = now;
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
        return fail(f, errc::timestamp_out_of_range, static_cast<std::int64_t>(cur >> seq_bits), now);
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
      } else if constexpr (detail::is_logical_clock<OnRollback>::value) {
        // Behind the last id, or this millisecond is used up: never go back,
        // borrow the next millisecond when the sequence runs out.
        const std::int64_t ts = seq < seq_mask ? last : last + 1;
        if (ts - now > OnRollback::max_drift.count()) {
          return fail(f, errc::clock_drift_exceeded, ts, now);
        }
        if (ts > Layout::max_timestamp) return fail(f, errc::timestamp_out_of_range, ts, now);
        desired = seq < seq_mask ? cur + 1 : static_cast<std::uint64_t>(ts) << seq_bits;
      } else {
        if (now < last) {
          if constexpr (detail::is_wait_up_to<OnRollback>::value) {
            if (last - now > OnRollback::max_wait.count()) {
              return fail(f, errc::clock_rollback, last, now);
            }
          } else {
            return fail(f, errc::clock_rollback, last, now);
          }
        }
        // Wait for the clock to pass `last` (sequence exhausted) or to catch up
        // with it (a small rollback), re-reading the state other threads move.
        backoff(spins);
        cur = state_.load(std::memory_order_acquire);
        now = tick();
        fresh = true;
        continue;
      }
      if (state_.compare_exchange_weak(cur, desired, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return make_id(desired);
      }
      fresh = false;
    }
  }

  static std::string describe(const detail::snowflake_failure& f) {
    const auto ms = [](std::int64_t v) { return std::to_string(v) + " ms"; };
    if (f.ec == errc::clock_rollback) {
      std::string s = "clock moved backwards by " + ms(f.last - f.now) + " (last id at " +
                      ms(f.last) + " since the epoch, clock at " + ms(f.now) + ")";
      if constexpr (detail::is_wait_up_to<OnRollback>::value) {
        s += "; wait_up_to waits out at most " + ms(OnRollback::max_wait.count());
      } else {
        s += "; fail_on_rollback issues no id until the clock catches up";
      }
      return s;
    }
    if (f.ec == errc::clock_drift_exceeded) {
      std::string s = "logical clock would issue an id at " + ms(f.last) + " since the epoch, " +
                      ms(f.last - f.now) + " ahead of the clock at " + ms(f.now);
      if constexpr (detail::is_logical_clock<OnRollback>::value) {
        s += " (maximum drift " + ms(OnRollback::max_drift.count()) + ")";
      }
      return s;
    }
    return "clock at " + ms(f.now) + " since the epoch (or the id timestamp " + ms(f.last) +
           ") is outside the " + std::to_string(Layout::timestamp_bits) +
           "-bit timestamp range [0, " + std::to_string(Layout::max_timestamp) + "]";
  }

  // Hot: written by every next(), alone on its cache line.
  alignas(64) std::atomic<std::uint64_t> state_{0};
  // Read-only after construction, on a line of their own.
  alignas(64) std::uint64_t node_bits_ = 0;
  std::int64_t epoch_ms_;
  Clock clock_;
  unsigned datacenter_;
  unsigned worker_;
};

}  // namespace seckill
