#pragma once
/// @file
/// @brief `seckill::hot_param_limiter`: a token bucket per value of one
///        parameter (a user id, a SKU, a client address) for the most active
///        values only, in a bounded table, as Sentinel's hot parameter flow control.
///
/// Needs only the standard library.

#include <seckill/clock.hpp>
#include <seckill/detail/cache_line.hpp>
#include <seckill/detail/thread_stripe.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill {

/// A value with its own rate and burst (a VIP user, a known bot).
struct hot_param_exception {
  std::string value;
  double rate_per_second = 0;
  double burst = 0;
};

/// What a `hot_param_limiter` admits and how much it remembers.
struct hot_param_options {
  /// Every tracked value's bucket: tokens per second and the most at once.
  double rate_per_second = 0;
  double burst = 0;
  /// Values tracked at once, in [4, 2^24]; the table is allocated once.
  std::size_t capacity = 4096;
  /// The longest value, in bytes, in [1, 1024]; longer ones are refused.
  std::size_t max_value_size = 64;
  /// Exceptions the limiter can hold at once, in [0, 1024], at least as many as given.
  std::size_t max_exceptions = 16;
  /// Values with their own rate and burst; never evicted.
  std::vector<hot_param_exception> exceptions;
};

/// The limiter's counts since construction (each read relaxed: a snapshot, not a transaction).
struct hot_param_stats {
  std::uint64_t admitted = 0;   ///< calls that took their tokens
  std::uint64_t throttled = 0;  ///< calls refused because the value's bucket was short
  std::uint64_t evicted = 0;    ///< tracked values dropped to make room for another
  std::uint64_t invalid = 0;    ///< calls refused for a bad argument (value too long, bad count)
};

/// A tracked value as `hot_param_limiter::hottest()` reports it.
struct hot_param_entry {
  std::string value;
  double available = 0;              ///< tokens in its bucket at the time of the call
  std::chrono::nanoseconds idle{0};  ///< since its last use (kept to `lru_resolution`)
};

namespace detail {

/// Bytes [p, p + n) as one little-endian word, n in [0, 8], zero-padded.
/// Fixed-size loads only: a variable-length memcpy into a local is a library
/// call, or byte stores that the next 8-byte load cannot forward from (a
/// stall of a dozen cycles).
inline std::uint64_t hot_load(const char* p, std::size_t n) noexcept {
  const auto byte = [p](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(p[i])}; };
  if constexpr (std::endian::native != std::endian::little) {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < n && i < 8; ++i) w |= byte(i) << (8 * i);
    return w;
  } else {
    if (n >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      return w;
    }
    if (n >= 4) {  // two overlapping 4-byte loads; the shared bytes agree
      std::uint32_t lo;
      std::uint32_t hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);
      return std::uint64_t{lo} | (std::uint64_t{hi} << (8 * (n - 4)));
    }
    if (n == 0) return 0;
    return byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
  }
}

/// 64-bit hash of a value, 8 bytes at a time, finished with murmur3's fmix64.
/// Deterministic (no seed): it picks slots, identity is the full value.
inline std::uint64_t hot_hash(std::string_view v) noexcept {
  std::uint64_t h = 0x9e3779b97f4a7c15u ^ (v.size() * 0xff51afd7ed558ccdu);
  std::size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    h = (h ^ hot_load(v.data() + i, 8)) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 29;
  }
  if (i < v.size()) h = (h ^ hot_load(v.data() + i, v.size() - i)) * 0xc4ceb9fe1a85ec53u;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdu;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53u;
  h ^= h >> 33;
  return h;
}

/// Word `k` of a value, zero-padded.
inline std::uint64_t hot_word(std::string_view v, std::size_t k) noexcept {
  const std::size_t at = k * 8;
  return at < v.size() ? hot_load(v.data() + at, v.size() - at) : 0;
}

}  // namespace detail

/// @brief Throttles each value of one parameter to its own token bucket, for
///        the values seen most recently, in a table whose size is fixed.
///
/// `try_acquire(value, n)` finds the value's slot among `probes` (4) slots
/// picked by its hash and takes `n` tokens from that slot's bucket, which is
/// the `token_bucket` state (one atomic "instant the bucket was empty",
/// integer nanoseconds) with the same arithmetic: while a value stays
/// tracked, it is admitted exactly as a `token_bucket` of the same rate and
/// burst would admit it. A value not tracked takes the stalest of its
/// candidate slots (approximated LRU, as Redis samples keys: last use is kept
/// to `lru_resolution`) and starts with a full bucket. Eviction forgets the
/// evicted value's debt: that value was the least recently used of its
/// candidates, so it is not the one hammering; if it comes back it gets one
/// fresh burst, which bounds what forgetting can cost. Values are compared in
/// full (up to `max_value_size` bytes); the hash only chooses slots. The
/// hash has no secret seed: a client can craft values that share candidate
/// slots and evict one another, which gains it no more than sending many
/// distinct values does (a fresh burst each); a global `token_bucket` in
/// front bounds both.
/// Exceptions (a rate and burst for a named value) live in a table of their
/// own, are never evicted, and are exact while they exist; `set_exception`
/// gives the value a fresh bucket at the new rate.
///
/// Thread-safety: every member may be called from any number of threads at
/// once. `try_acquire` takes no lock: a hit is seqlock reads of the slot's
/// key and one CAS on its bucket; a miss claims the victim slot with a CAS
/// on its sequence number (never a global lock) and may wait for another
/// thread's few-store write of a candidate slot. `set_exception` and
/// `erase_exception` serialize with each other on a mutex that
/// `try_acquire` never takes. Two threads inserting the same value at once
/// end with one slot (see `find_or_insert`).
///
/// Cost: a hit is one clock read, a hash of the value, loads of up to 4
/// slots (one cache line each) and of the value's words, one CAS on
/// admission, and one relaxed store per `lru_resolution` for the LRU; a
/// rejection writes only its counter. Counters are striped per thread
/// (relaxed adds on a line of their own). With exceptions configured, each
/// call compares its hash with each exception's first. Memory:
/// `capacity * (64 + max_value_size rounded up to 8)` bytes plus the
/// exception table, allocated at construction; nothing is allocated after.
///
/// Observability: `stats()` (admitted, throttled, evicted, invalid) and
/// `hottest(n)`, the tracked values with the fewest tokens left.
///
/// Use a steady clock: if `Clock` goes back, tracked values are admitted
/// nothing until it has caught up again.
template <class Clock = std::chrono::steady_clock>
class hot_param_limiter {
 public:
  using clock_type = Clock;

  /// Slots a value may occupy, probed from the one its hash picks.
  static constexpr std::size_t probes = 4;
  /// How finely last use is kept: a hit stores it at most once per this span.
  static constexpr std::chrono::nanoseconds lru_resolution{1'000'000};

  /// Throws `seckill::error` (`errc::invalid_argument`, the value seen in the
  /// message) when an option is out of its range, an exception's rate or
  /// burst is one `token_bucket` refuses, an exception's value is too long or
  /// appears twice, or there are more exceptions than `max_exceptions`.
  explicit hot_param_limiter(hot_param_options options, Clock clock = {})
      : clock_(std::move(clock)) {
    if (!detail::limit_params(options.rate_per_second, options.burst, per_, span_))
      throw error(errc::invalid_argument,
                  detail::limit_invalid_message("hot_param_limiter", options.rate_per_second,
                                                options.burst));
    if (options.capacity < probes || options.capacity > (std::size_t{1} << 24))
      throw error(errc::invalid_argument, "hot_param_limiter capacity " +
                                              std::to_string(options.capacity) +
                                              " out of range [4, 16777216]");
    if (options.max_value_size < 1 || options.max_value_size > 1024)
      throw error(errc::invalid_argument, "hot_param_limiter max_value_size " +
                                              std::to_string(options.max_value_size) +
                                              " out of range [1, 1024]");
    if (options.max_exceptions > 1024 || options.exceptions.size() > options.max_exceptions)
      throw error(errc::invalid_argument,
                  "hot_param_limiter max_exceptions " + std::to_string(options.max_exceptions) +
                      " with " + std::to_string(options.exceptions.size()) +
                      " exceptions given: must be in [0, 1024] and hold them all");
    capacity_ = options.capacity;
    max_value_size_ = options.max_value_size;
    words_ = (max_value_size_ + 7) / 8;
    for (std::size_t i = 0; i < options.exceptions.size(); ++i) {
      const auto& e = options.exceptions[i];
      std::int64_t per = 0;
      std::int64_t span = 0;
      check_exception(e.value, e.rate_per_second, e.burst, per, span);
      for (std::size_t j = 0; j < i; ++j)
        if (options.exceptions[j].value == e.value)
          throw error(errc::invalid_argument,
                      "hot_param_limiter exception value '" + e.value + "' given twice");
    }
    slots_ = std::make_unique<slot[]>(capacity_);
    keys_ = std::make_unique<std::atomic<std::uint64_t>[]>(capacity_ * words_);
    max_exceptions_ = options.max_exceptions;
    if (max_exceptions_ > 0) {
      exceptions_ = std::make_unique<exception_entry[]>(max_exceptions_);
      exception_keys_ = std::make_unique<std::atomic<std::uint64_t>[]>(max_exceptions_ * words_);
    }
    for (const auto& e : options.exceptions) set_exception(e.value, e.rate_per_second, e.burst);
  }

  hot_param_limiter(const hot_param_limiter&) = delete;
  hot_param_limiter& operator=(const hot_param_limiter&) = delete;

  /// Takes `tokens` (fractional is fine) from `value`'s bucket if they are
  /// all there now. False when they are not, and also for a value longer
  /// than `max_value_size` or a count that is negative, NaN or above the
  /// bucket's burst: the `error_code` overload tells those apart.
  [[nodiscard]] bool try_acquire(std::string_view value, double tokens = 1) noexcept {
    std::error_code ec;
    return try_acquire(value, tokens, ec);
  }

  /// As `try_acquire(value, tokens)`, and says why not: `errc::rate_limited`
  /// when the value's bucket is short, `errc::invalid_argument` for a value
  /// longer than `max_value_size` or a count that could never be admitted.
  [[nodiscard]] bool try_acquire(std::string_view value, double tokens,
                                 std::error_code& ec) noexcept {
    auto& c = counters_[detail::thread_stripe() % stripes];
    if (value.size() > max_value_size_) [[unlikely]] {
      c.invalid.fetch_add(1, std::memory_order_relaxed);
      ec = errc::invalid_argument;
      return false;
    }
    const std::int64_t now = now_ns();
    const std::uint64_t h = detail::hot_hash(value);
    take_result r = take_result::invalid;
    bool found = false;
    if (exception_high_.load(std::memory_order_acquire) != 0) [[unlikely]]
      found = take_exception(value, h, tokens, now, r);
    if (!found) {
      std::int64_t cost = per_;
      if (tokens != 1.0 && !detail::limit_cost(tokens, per_, span_, cost)) [[unlikely]] {
        c.invalid.fetch_add(1, std::memory_order_relaxed);  // before it could evict anything
        ec = errc::invalid_argument;
        return false;
      }
      slot& s = slots_[find_or_insert(value, h, now)];
      // If another thread evicts this value between the lookup and the CAS
      // below, the CAS lands on the new value's fresh bucket only if its
      // instant equals the one read here, and then moves it forward: it
      // takes tokens from the new value, never gives any. The evicted value
      // would have started full anyway.
      r = take(s.empty_at, per_, span_, tokens, now);
      // LRU: at most one store per lru_resolution, so a hammering value
      // does not write its line on every call. Relaxed: an LRU hint only.
      if (now - s.last_used.load(std::memory_order_relaxed) >= lru_resolution.count())
        s.last_used.store(now, std::memory_order_relaxed);
    }
    switch (r) {
      case take_result::admitted:
        c.admitted.fetch_add(1, std::memory_order_relaxed);
        ec.clear();
        return true;
      case take_result::throttled:
        c.throttled.fetch_add(1, std::memory_order_relaxed);
        ec = errc::rate_limited;
        return false;
      case take_result::invalid:
        break;
    }
    c.invalid.fetch_add(1, std::memory_order_relaxed);
    ec = errc::invalid_argument;
    return false;
  }

  /// Gives `value` its own rate and burst, or new ones (its bucket then
  /// starts full at the new rate). Throws `seckill::error`
  /// (`errc::invalid_argument`) for a value longer than `max_value_size`,
  /// values `token_bucket` refuses, or when `max_exceptions` are held
  /// already; changes nothing then.
  void set_exception(std::string_view value, double rate_per_second, double burst) {
    std::int64_t per = 0;
    std::int64_t span = 0;
    check_exception(value, rate_per_second, burst, per, span);
    std::lock_guard lock(writers_);
    const std::uint64_t h = detail::hot_hash(value);
    const std::size_t high = exception_high_.load(std::memory_order_relaxed);
    std::size_t at = max_exceptions_;
    for (std::size_t i = 0; i < high; ++i) {
      if (exceptions_[i].len.load(std::memory_order_relaxed) == free_len) {
        if (at == max_exceptions_) at = i;
      } else if (exceptions_[i].hash.load(std::memory_order_relaxed) == h &&
                 equals(exception_keys_.get() + i * words_,
                        exceptions_[i].len.load(std::memory_order_relaxed), value)) {
        at = i;
        break;
      }
    }
    if (at == max_exceptions_) {
      if (high == max_exceptions_)
        throw error(errc::invalid_argument,
                    "hot_param_limiter holds max_exceptions " + std::to_string(max_exceptions_) +
                        " exceptions already; cannot add '" + std::string(value) + "'");
      at = high;
    }
    auto& e = exceptions_[at];
    write_begin(e.seq);
    write_key(exception_keys_.get() + at * words_, value);
    e.hash.store(h, std::memory_order_release);
    e.len.store(static_cast<std::uint32_t>(value.size()), std::memory_order_release);
    e.per.store(per, std::memory_order_release);
    e.span.store(span, std::memory_order_release);
    e.empty_at.store(now_ns() - span, std::memory_order_relaxed);
    write_end(e.seq);
    // Release: a reader that sees the new high-water mark sees the entry's
    // first publication (its sequence number) too.
    if (at == high) exception_high_.store(high + 1, std::memory_order_release);
  }

  /// Drops `value`'s exception: it is limited like any other value again
  /// (starting with a full bucket). Returns false when it had none.
  bool erase_exception(std::string_view value) {
    if (value.size() > max_value_size_) return false;
    std::lock_guard lock(writers_);
    const std::uint64_t h = detail::hot_hash(value);
    const std::size_t high = exception_high_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < high; ++i) {
      auto& e = exceptions_[i];
      const auto len = e.len.load(std::memory_order_relaxed);
      if (len == free_len || e.hash.load(std::memory_order_relaxed) != h ||
          !equals(exception_keys_.get() + i * words_, len, value))
        continue;
      write_begin(e.seq);
      e.len.store(free_len, std::memory_order_release);
      write_end(e.seq);
      return true;
    }
    return false;
  }

  /// The counts since construction, summed over the per-thread stripes.
  [[nodiscard]] hot_param_stats stats() const noexcept {
    hot_param_stats s;
    for (const auto& c : counters_) {
      s.admitted += c.admitted.load(std::memory_order_relaxed);
      s.throttled += c.throttled.load(std::memory_order_relaxed);
      s.evicted += c.evicted.load(std::memory_order_relaxed);
      s.invalid += c.invalid.load(std::memory_order_relaxed);
    }
    return s;
  }

  /// True when `value` holds a slot (or an exception) now; a snapshot.
  /// Costs what a hit costs, writes nothing.
  [[nodiscard]] bool tracked(std::string_view value) const noexcept {
    if (value.size() > max_value_size_) return false;
    const std::uint64_t h = detail::hot_hash(value);
    const std::size_t high = exception_high_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < high; ++i) {
      std::int64_t per = 0;
      std::int64_t span = 0;
      if (read_exception(i, value, h, per, span)) return true;
    }
    const std::size_t home = home_of(h);
    for (std::size_t j = 0; j < probes; ++j) {
      std::uint64_t seq = 0;
      if (read_slot(slot_at(home, j), value, h, seq) == match::yes) return true;
    }
    return false;
  }

  /// Up to `n` tracked values (exceptions aside) with the fewest tokens
  /// left, the most drained first (ties: the most recently used first): the
  /// values consuming their rate, approximately the hottest. A snapshot
  /// taken slot by slot while others go on. Costs a pass over the table and
  /// allocates the result: for dashboards and logs, not the request path.
  [[nodiscard]] std::vector<hot_param_entry> hottest(std::size_t n) const {
    const std::int64_t now = now_ns();
    struct seen {
      std::int64_t have;
      std::int64_t used;
      std::size_t slot;
    };
    std::vector<seen> all;
    for (std::size_t i = 0; i < capacity_; ++i) {
      const slot& s = slots_[i];
      if (s.len.load(std::memory_order_relaxed) == free_len) continue;
      all.push_back({std::min(now - s.empty_at.load(std::memory_order_relaxed), span_),
                     s.last_used.load(std::memory_order_relaxed), i});
    }
    const auto before = [](const seen& a, const seen& b) {
      return a.have != b.have ? a.have < b.have : a.used > b.used;
    };
    const std::size_t k = std::min(n, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), before);
    std::vector<hot_param_entry> out;
    out.reserve(k);
    for (std::size_t j = 0; j < k; ++j) {
      std::string value;
      if (!read_value(all[j].slot, value)) continue;  // evicted meanwhile
      out.push_back({std::move(value), static_cast<double>(all[j].have) / static_cast<double>(per_),
                     std::chrono::nanoseconds{std::max<std::int64_t>(0, now - all[j].used)}});
    }
    return out;
  }

  /// Values tracked at once.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// The longest value accepted, in bytes.
  [[nodiscard]] std::size_t max_value_size() const noexcept { return max_value_size_; }
  /// The rate of a tracked value without an exception (after rounding to whole ns per token).
  [[nodiscard]] double rate() const noexcept { return 1e9 / static_cast<double>(per_); }
  /// The burst of a tracked value without an exception, in tokens.
  [[nodiscard]] double burst() const noexcept {
    return static_cast<double>(span_) / static_cast<double>(per_);
  }
  /// The clock the limiter reads.
  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }

 private:
  enum class take_result { admitted, throttled, invalid };
  enum class match { yes, no, changed };

  static constexpr std::uint32_t free_len = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::size_t stripes = 16;

  /// One tracked value. `seq` is a seqlock over `hash`, `len` and the key
  /// words: even when stable, odd while one thread rewrites them. The
  /// bucket (`empty_at`) and `last_used` are not under it: they are updated
  /// by CAS / store on their own (see `try_acquire`).
  struct alignas(detail::cache_line_size) slot {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<std::uint64_t> hash{0};
    std::atomic<std::uint32_t> len{free_len};
    std::atomic<std::int64_t> empty_at{0};
    /// Empty slots are the stalest of all.
    std::atomic<std::int64_t> last_used{std::numeric_limits<std::int64_t>::min()};
  };

  /// One exception: as a slot, with its own parameters under the seqlock.
  struct alignas(detail::cache_line_size) exception_entry {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<std::uint64_t> hash{0};
    std::atomic<std::uint32_t> len{free_len};
    std::atomic<std::int64_t> per{1};
    std::atomic<std::int64_t> span{1};
    std::atomic<std::int64_t> empty_at{0};
  };

  struct alignas(detail::cache_line_size) counter_stripe {
    std::atomic<std::uint64_t> admitted{0};
    std::atomic<std::uint64_t> throttled{0};
    std::atomic<std::uint64_t> evicted{0};
    std::atomic<std::uint64_t> invalid{0};
  };

  void check_exception(std::string_view value, double rate, double burst, std::int64_t& per,
                       std::int64_t& span) const {
    if (value.size() > max_value_size_)
      throw error(errc::invalid_argument,
                  "hot_param_limiter exception value of " + std::to_string(value.size()) +
                      " bytes is longer than max_value_size " + std::to_string(max_value_size_));
    if (!detail::limit_params(rate, burst, per, span))
      throw error(errc::invalid_argument,
                  detail::limit_invalid_message(
                      "hot_param_limiter exception '" + std::string(value) + "'", rate, burst));
  }

  /// The token_bucket step on a bucket's state: one CAS moving the empty
  /// instant forward by the cost, or nothing written. Relaxed: the bucket is
  /// a single atomic, and the modification order of its RMWs is what makes
  /// the count exact; no other data is published through it.
  static take_result take(std::atomic<std::int64_t>& empty_at, std::int64_t per, std::int64_t span,
                          double tokens, std::int64_t now) noexcept {
    std::int64_t cost = per;
    if (tokens != 1.0 || per > span) [[unlikely]] {
      if (!detail::limit_cost(tokens, per, span, cost)) return take_result::invalid;
      if (cost == 0) return take_result::admitted;
    }
    std::int64_t empty = empty_at.load(std::memory_order_relaxed);
    for (;;) {
      const std::int64_t next = std::max(empty, now - span) + cost;
      if (next > now) return take_result::throttled;
      if (empty_at.compare_exchange_weak(empty, next, std::memory_order_relaxed,
                                         std::memory_order_relaxed))
        return take_result::admitted;
    }
  }

  bool take_exception(std::string_view value, std::uint64_t h, double tokens, std::int64_t now,
                      take_result& r) noexcept {
    const std::size_t high = exception_high_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < high; ++i) {
      std::int64_t per = 0;
      std::int64_t span = 0;
      if (!read_exception(i, value, h, per, span)) continue;
      // A set_exception racing between the read above and this CAS can
      // only have its fresh bucket's instant moved forward (a token taken
      // from it), never tokens given: the limiter errs toward throttling.
      r = take(exceptions_[i].empty_at, per, span, tokens, now);
      return true;
    }
    return false;
  }

  /// Seqlock read of exception `i`: true, with its parameters, when it holds `value`.
  bool read_exception(std::size_t i, std::string_view value, std::uint64_t h, std::int64_t& per,
                      std::int64_t& span) const noexcept {
    const auto& e = exceptions_[i];
    for (int spins = 0;;) {
      const std::uint64_t v1 = e.seq.load(std::memory_order_acquire);
      if (v1 & 1) {
        detail::limit_pause(spins);
        continue;
      }
      // Acquire loads of the data, release stores by the writer (no fences:
      // GCC's ThreadSanitizer does not model them). A load that sees a
      // writer's new data synchronizes with that store, so the writer's odd
      // seq, stored before it, is visible to the second read of seq below,
      // which the acquire loads also keep after them: an unchanged seq means
      // no writer overlapped the reads.
      const auto len = e.len.load(std::memory_order_acquire);
      bool same = len != free_len && e.hash.load(std::memory_order_acquire) == h &&
                  equals(exception_keys_.get() + i * words_, len, value);
      per = e.per.load(std::memory_order_acquire);
      span = e.span.load(std::memory_order_acquire);
      if (e.seq.load(std::memory_order_relaxed) == v1) return same;
    }
  }

  /// Seqlock copy of the value slot `i` holds; false when it holds none.
  bool read_value(std::size_t i, std::string& out) const {
    const slot& s = slots_[i];
    for (int spins = 0;; detail::limit_pause(spins)) {
      const std::uint64_t v1 = s.seq.load(std::memory_order_acquire);
      if (v1 & 1) continue;
      const auto len = s.len.load(std::memory_order_acquire);  // orders: as in read_exception
      if (len == free_len) return false;
      out.assign(len, '\0');
      const auto* words = keys_.get() + i * words_;
      for (std::size_t k = 0; k * 8 < len; ++k) {
        const std::uint64_t w = words[k].load(std::memory_order_acquire);
        std::memcpy(out.data() + k * 8, &w, std::min<std::size_t>(8, len - k * 8));
      }
      if (s.seq.load(std::memory_order_relaxed) == v1) return true;
    }
  }

  /// Seqlock read of a slot: does it hold `value`? `seq` receives the even
  /// sequence number the answer is valid for. Waits while a writer holds it,
  /// unless `wait` is false: then a held slot is `match::changed`.
  match read_slot(std::size_t i, std::string_view value, std::uint64_t h, std::uint64_t& seq,
                  bool wait = true) const noexcept {
    const slot& s = slots_[i];
    int spins = 0;
    std::uint64_t v1 = s.seq.load(std::memory_order_acquire);
    while (v1 & 1) {
      if (!wait) return match::changed;
      detail::limit_pause(spins);
      v1 = s.seq.load(std::memory_order_acquire);
    }
    const auto len = s.len.load(std::memory_order_acquire);  // orders: as in read_exception
    const bool same = len != free_len && s.hash.load(std::memory_order_acquire) == h &&
                      equals(keys_.get() + i * words_, len, value);
    if (s.seq.load(std::memory_order_relaxed) != v1) return match::changed;
    seq = v1;
    return same ? match::yes : match::no;
  }

  /// The slot holding `value`, inserting it into the stalest candidate when
  /// none does. Never two slots for one value: a thread that claimed a victim
  /// (its seq made odd by a CAS) looks at the other candidates again before
  /// writing; it gives the claim back if one holds the value now, or if a
  /// lower-numbered one is claimed too (that claimer may be inserting the
  /// same value), and waits only for higher-numbered claims, so claimers
  /// never wait in a cycle. The claim CAS and those reads are seq_cst: of two
  /// threads claiming at once, at least one sees the other's claim (a store
  /// buffer litmus; free on x86, where the CAS is a full barrier anyway).
  std::size_t find_or_insert(std::string_view value, std::uint64_t h, std::int64_t now) noexcept {
    const std::size_t home = home_of(h);
    for (int spins = 0;; detail::limit_pause(spins)) {
      std::size_t victim = capacity_;
      std::uint64_t victim_seq = 0;
      std::int64_t victim_used = std::numeric_limits<std::int64_t>::max();
      bool changed = false;
      for (std::size_t j = 0; j < probes; ++j) {
        const std::size_t i = slot_at(home, j);
        std::uint64_t seq = 0;
        const match m = read_slot(i, value, h, seq);
        if (m == match::yes) return i;
        if (m == match::changed) {
          changed = true;
          break;
        }
        const std::int64_t used = slots_[i].last_used.load(std::memory_order_relaxed);
        if (victim == capacity_ || used < victim_used) {
          victim = i;
          victim_seq = seq;
          victim_used = used;
        }
      }
      if (changed) continue;
      slot& v = slots_[victim];
      std::uint64_t expected = victim_seq;
      if (!v.seq.compare_exchange_strong(expected, victim_seq + 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed))
        continue;  // someone else rewrote it: look again
      bool give_back = false;
      std::size_t found = capacity_;
      for (std::size_t j = 0; j < probes && !give_back && found == capacity_; ++j) {
        const std::size_t i = slot_at(home, j);
        if (i == victim) continue;
        for (int inner = 0;;) {
          const std::uint64_t seq = slots_[i].seq.load(std::memory_order_seq_cst);
          if (seq & 1) {
            if (i < victim) {
              give_back = true;
              break;
            }
            detail::limit_pause(inner);  // its claimer gives it back or publishes
            continue;
          }
          std::uint64_t seen = 0;
          // Never wait inside: a lower claimer may be waiting for ours.
          const match m = read_slot(i, value, h, seen, false);
          if (m == match::changed) continue;
          if (m == match::yes) found = i;
          break;
        }
      }
      if (give_back || found != capacity_) {
        // Nothing was written under the claim: the old even seq is valid again.
        v.seq.store(victim_seq, std::memory_order_release);
        if (found != capacity_) return found;
        continue;
      }
      // Seqlock writer: the odd seq (the claim), the key data as release
      // stores, the even seq (release). A reader's acquire load that sees
      // any of the new data then sees seq odd or moved on (read_exception).
      const bool occupied = v.len.load(std::memory_order_relaxed) != free_len;
      write_key(keys_.get() + victim * words_, value);
      v.hash.store(h, std::memory_order_release);
      v.len.store(static_cast<std::uint32_t>(value.size()), std::memory_order_release);
      v.empty_at.store(now - span_, std::memory_order_relaxed);
      v.last_used.store(now, std::memory_order_relaxed);
      // Release: a reader that sees the new even seq sees all of the above.
      v.seq.store(victim_seq + 2, std::memory_order_release);
      if (occupied)
        counters_[detail::thread_stripe() % stripes].evicted.fetch_add(1,
                                                                       std::memory_order_relaxed);
      return victim;
    }
  }

  /// Makes `seq` odd (only writers of exceptions call it, under `writers_`);
  /// the release stores of the data that follow keep it before them.
  static void write_begin(std::atomic<std::uint64_t>& seq) noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  static void write_end(std::atomic<std::uint64_t>& seq) noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  void write_key(std::atomic<std::uint64_t>* words, std::string_view value) const noexcept {
    for (std::size_t k = 0; k < words_; ++k)
      words[k].store(detail::hot_word(value, k), std::memory_order_release);
  }

  bool equals(const std::atomic<std::uint64_t>* words, std::uint32_t len,
              std::string_view value) const noexcept {
    if (len != value.size()) return false;
    const std::size_t n = (value.size() + 7) / 8;
    for (std::size_t k = 0; k < n; ++k)
      if (words[k].load(std::memory_order_acquire) != detail::hot_word(value, k)) return false;
    return true;
  }

  /// The slot a hash picks, spread over any capacity (multiply-high, no modulo).
  std::size_t home_of(std::uint64_t h) const noexcept {
    return static_cast<std::size_t>(((h >> 32) * capacity_) >> 32);  // capacity_ <= 2^24
  }
  std::size_t slot_at(std::size_t home, std::size_t j) const noexcept {
    const std::size_t i = home + j;
    return i < capacity_ ? i : i - capacity_;
  }

  std::int64_t now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
        .count();
  }

  std::int64_t per_ = 1;
  std::int64_t span_ = 1;
  std::size_t capacity_ = 0;
  std::size_t max_value_size_ = 0;
  std::size_t words_ = 0;
  std::size_t max_exceptions_ = 0;
  std::unique_ptr<slot[]> slots_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> keys_;
  std::unique_ptr<exception_entry[]> exceptions_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> exception_keys_;
  /// Exception entries ever used: readers scan [0, high).
  std::atomic<std::size_t> exception_high_{0};
  std::mutex writers_;
  counter_stripe counters_[stripes];
  [[no_unique_address]] Clock clock_;
};

}  // namespace seckill
