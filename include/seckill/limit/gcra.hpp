#pragma once
/// @file
/// @brief GCRA (the generic cell rate algorithm, a token bucket kept as one
///        instant) in integer microseconds: the arithmetic that
///        `redis::gcra_limiter`'s Lua script runs on the server, as plain C++
///        (the reference its tests check the script against), and
///        `gcra_prefilter`, the client's memory of buckets known to be empty.
///
/// Needs only the standard library.
///
/// A bucket of rate `r` per second and burst `b` is two integers: `per`,
/// the microseconds one token takes to come back (`1e6 / r`, rounded), and
/// `span`, the microseconds a full bucket holds (`b * per`, rounded). Its
/// whole state is `empty_at`, the instant at which it was (or will be)
/// empty; a bucket with no state is full. A request for `cost`
/// microseconds' worth of tokens (`tokens * per`) at `now`:
///
/// ```
/// e    = max(empty_at, now - span)       (no state: now - span)
/// next = e + cost
/// admitted when next <= now; then empty_at = next
/// refused otherwise, writing nothing; it would be admitted at next: retry after next - now
/// ```
///
/// Starting full at `t0` and asked without pause, a bucket admits
/// `floor(span / per) + floor((t - t0) / per)` single tokens by `t` (the
/// burst, then one per `per`): it never lets more through, at any instant.

#include <seckill/detail/cache_line.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

namespace seckill {

/// @brief A GCRA bucket's parameters in integer microseconds. Plain data.
struct gcra_rule {
  std::int64_t per_us = 0;   ///< one token's worth of time
  std::int64_t span_us = 0;  ///< the burst's worth of time

  /// The rule for `rate_per_second` in (0, 1e6] and `burst` >= 1 (finite);
  /// a rule with `per_us == 0` (invalid) otherwise, or when the burst would
  /// span more than 2^50 us (35 years: what the script's doubles add exactly).
  static gcra_rule of(double rate_per_second, double burst) noexcept {
    if (!(rate_per_second > 0) || !std::isfinite(rate_per_second) || rate_per_second > 1e6)
      return {};
    if (!(burst >= 1) || !std::isfinite(burst)) return {};
    const double per = std::round(1e6 / rate_per_second);
    const double span = std::round(burst * per);
    if (span > static_cast<double>(max_span_us)) return {};
    return {static_cast<std::int64_t>(per), static_cast<std::int64_t>(span)};
  }

  [[nodiscard]] bool valid() const noexcept {
    return per_us > 0 && span_us >= per_us && span_us <= max_span_us;
  }

  /// The price of `tokens` in microseconds; -1 when it can never be paid
  /// (negative, NaN, or above the burst).
  [[nodiscard]] std::int64_t cost(double tokens) const noexcept {
    if (tokens == 1.0) return per_us;
    if (!(tokens >= 0)) return -1;
    const double c = std::round(tokens * static_cast<double>(per_us));
    if (c > static_cast<double>(span_us)) return -1;
    return static_cast<std::int64_t>(c);
  }

  /// 2^50 us: every sum of a Unix time in microseconds (about 2^51 today)
  /// and a span stays below 2^53, what a double (a Lua number) holds exactly.
  static constexpr std::int64_t max_span_us = std::int64_t{1} << 50;

  friend bool operator==(const gcra_rule&, const gcra_rule&) = default;
};

/// @brief One bucket's part of a GCRA decision: its state before (`empty_at`,
///        `has_state` false for a bucket never used or expired) and its cost.
struct gcra_input {
  bool has_state = false;
  std::int64_t empty_at = 0;
  std::int64_t cost = 0;
  std::int64_t span = 0;
};

/// @brief What `gcra_decide` answers.
struct gcra_outcome {
  bool admitted = false;
  /// The first bucket (0-based) that refused; -1 when admitted.
  int refused_by = -1;
  /// How long until the refusing bucket would admit the same cost (0 when admitted).
  std::int64_t retry_after = 0;
};

/// Decides a request against every bucket of `in` at once, all or nothing:
/// admitted only when each admits, and then `empty_at_out[i]` is each
/// bucket's new state; refused when any refuses, and then `empty_at_out[i]`
/// is each bucket's state unchanged (`max(empty_at, now - span)`), nothing
/// taken from any. The arithmetic of the script, line for line.
inline gcra_outcome gcra_decide(std::span<const gcra_input> in, std::int64_t now,
                                std::span<std::int64_t> empty_at_out) noexcept {
  gcra_outcome out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::int64_t floor = now - in[i].span;
    const std::int64_t e = in[i].has_state ? std::max(in[i].empty_at, floor) : floor;
    empty_at_out[i] = e;
    const std::int64_t next = e + in[i].cost;
    if (next > now && out.refused_by < 0) {
      out.refused_by = static_cast<int>(i);
      out.retry_after = next - now;
    }
  }
  if (out.refused_by >= 0) return out;
  out.admitted = true;
  for (std::size_t i = 0; i < in.size(); ++i) empty_at_out[i] += in[i].cost;
  return out;
}

/// @brief The client side's memory of GCRA buckets it saw empty: for a
///        bucket key, a lower bound of the instant the bucket is empty until,
///        on the local `Clock`; a request it would refuse needs no round trip.
///
/// Sound by construction: the server's answer to a call sent at local time
/// `s` says `empty_at - now` for each bucket; the script ran at or after `s`,
/// so `s + (empty_at - now)` is at or before the true instant on the local
/// clock (clocks tick at the same rate; their offsets do not matter), and
/// other clients only move `empty_at` later. A request the pre-filter
/// refuses would have been refused by the server. It forgets a bucket whose
/// key was evicted from Redis (a FLUSHALL, a restart without persistence)
/// only when the noted instant passes.
///
/// A fixed table of `slots` (a power of two) entries indexed by a 64-bit
/// hash of the key; a colliding key evicts the other (only a lost chance
/// to refuse locally). Thread-safety: `note` and `refuses` from any threads
/// at once (each slot a seqlock: a reader that races a writer sees a miss
/// and goes to the server). Cost: `refuses` is one clock read and three
/// atomic loads; `note` one CAS and two stores. Memory: 32 bytes per slot.
template <class Clock = std::chrono::steady_clock>
class gcra_prefilter {
 public:
  explicit gcra_prefilter(std::size_t slots = 4096, Clock clock = {})
      : mask_(round_up(slots) - 1),
        slots_(std::make_unique<slot[]>(mask_ + 1)),
        clock_(std::move(clock)) {}

  /// The local clock in microseconds (what `note` and `refuses` take).
  [[nodiscard]] std::int64_t now_us() const noexcept {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock_.now().time_since_epoch())
        .count();
  }

  /// The key of a bucket: a 64-bit hash of its parts, never 0.
  static std::uint64_t key_of(std::string_view a, std::string_view b = {}) noexcept {
    const std::uint64_t ha = std::hash<std::string_view>{}(a);
    const std::uint64_t hb = b.empty() ? 0x51ed270b27f5a3c1ULL : std::hash<std::string_view>{}(b);
    std::uint64_t x = ha ^ (hb + 0x9e3779b97f4a7c15ULL + (ha << 6) + (ha >> 2));
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (x ^ (x >> 31)) | 1;
  }

  /// Remembers that bucket `key` is empty until `empty_at_us` (local clock,
  /// a lower bound). A slot being written by another thread is left alone.
  void note(std::uint64_t key, std::int64_t empty_at_us) noexcept {
    slot& s = slots_[key & mask_];
    std::uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if ((seq & 1) != 0 || !s.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acquire,
                                                         std::memory_order_relaxed))
      return;
    std::atomic_thread_fence(std::memory_order_release);
    s.key.store(key, std::memory_order_relaxed);
    s.empty_at.store(empty_at_us, std::memory_order_relaxed);
    s.seq.store(seq + 2, std::memory_order_release);
  }

  /// True when bucket `key` is known not to admit `cost_us` at `now_us`
  /// (`empty_at + cost > now`); false when unknown or it may.
  [[nodiscard]] bool refuses(std::uint64_t key, std::int64_t cost_us,
                             std::int64_t now_us) const noexcept {
    const slot& s = slots_[key & mask_];
    const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    if ((seq & 1) != 0) return false;
    const std::uint64_t k = s.key.load(std::memory_order_relaxed);
    const std::int64_t e = s.empty_at.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != seq || k != key) return false;
    return e + cost_us > now_us;
  }

  /// When bucket `key` could admit `cost_us` as far as it knows (local
  /// microseconds; 0 when unknown).
  [[nodiscard]] std::int64_t ready_at(std::uint64_t key, std::int64_t cost_us) const noexcept {
    const slot& s = slots_[key & mask_];
    const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
    if ((seq & 1) != 0) return 0;
    const std::uint64_t k = s.key.load(std::memory_order_relaxed);
    const std::int64_t e = s.empty_at.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != seq || k != key) return 0;
    return e + cost_us;
  }

  [[nodiscard]] std::size_t slots() const noexcept { return mask_ + 1; }

 private:
  struct slot {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<std::uint64_t> key{0};
    std::atomic<std::int64_t> empty_at{0};
    std::int64_t pad = 0;
  };
  static_assert(sizeof(slot) == 32);

  static std::size_t round_up(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p < n && p < (std::size_t{1} << 30)) p <<= 1;
    return p;
  }

  std::size_t mask_;
  std::unique_ptr<slot[]> slots_;
  [[no_unique_address]] Clock clock_;
};

}  // namespace seckill
