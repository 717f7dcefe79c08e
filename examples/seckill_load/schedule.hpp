#pragma once
// seckill_load's open-loop arrivals: when each request is meant to be sent,
// at a fixed rate or as a Poisson process, from a seed; and the timing of
// one request, whose latency counts from that intended time (the
// correction for coordinated omission).

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>

namespace seckill_load {

enum class arrival_kind { fixed, poisson };

/// @brief The intended send times of an open-loop run, as offsets from its
///        start: request k (from 0) at k / rate for a fixed rate, or after
///        exponentially distributed gaps of mean 1 / rate for Poisson
///        arrivals (the same seed gives the same times on every platform:
///        the generator is std::mt19937_64 and the gaps are drawn by
///        inversion, not by a library distribution).
///
/// The times never depend on when answers come back: a slow server makes
/// requests wait, it does not slow the schedule (the open loop).
///
/// Thread-safety: none (one owner). Cost: a multiplication per fixed
/// arrival; a random draw and a logarithm per Poisson arrival; no
/// allocation.
class arrival_schedule {
 public:
  using duration = std::chrono::nanoseconds;

  arrival_schedule(arrival_kind kind, double rate_per_second, std::uint64_t seed = 1)
      : kind_(kind), rate_(rate_per_second), rng_(seed) {
    if (!(rate_per_second > 0) || !std::isfinite(rate_per_second))
      throw std::invalid_argument(
          fmt::format("arrival rate {} per second is not a positive number", rate_per_second));
  }

  /// The offset of the next request from the start of the run.
  duration next() noexcept {
    const auto k = sent_++;
    if (kind_ == arrival_kind::fixed) {
      // computed from k, not summed: no rounding drift over millions of requests
      return duration(
          static_cast<std::int64_t>(std::llround(static_cast<double>(k) * 1e9 / rate_)));
    }
    if (k > 0) poisson_at_ += exponential_gap();
    return duration(static_cast<std::int64_t>(std::llround(poisson_at_)));
  }

  /// How many offsets next() has given.
  [[nodiscard]] std::uint64_t issued() const noexcept { return sent_; }
  [[nodiscard]] double rate() const noexcept { return rate_; }
  [[nodiscard]] arrival_kind kind() const noexcept { return kind_; }

 private:
  // An exponential gap of mean 1e9 / rate nanoseconds, drawn by inversion
  // from a uniform in (0, 1] made of 53 random bits.
  double exponential_gap() noexcept {
    const double u = static_cast<double>((rng_() >> 11) + 1) * 0x1.0p-53;
    return -std::log(u) * 1e9 / rate_;
  }

  arrival_kind kind_;
  double rate_;
  std::mt19937_64 rng_;
  std::uint64_t sent_ = 0;
  double poisson_at_ = 0;  // nanoseconds
};

/// @brief The three moments of one request: when the schedule meant it to
///        be sent, when a connection actually sent it, and when its answer
///        (or its failure) came back.
///
/// latency() counts from the intended time: a request that waited for a
/// free connection, or behind a stalled server, has that wait in its
/// latency, as its user would. Counting from the actual send instead
/// (service()) is the coordinated-omission mistake: the stall hides in the
/// requests that were never sent during it.
///
/// Thread-safety: a value. Cost: three time points.
struct request_timing {
  using time_point = std::chrono::steady_clock::time_point;
  time_point intended{};
  time_point sent{};
  time_point done{};

  /// The latency a user sees: from the intended send to the answer.
  [[nodiscard]] std::chrono::nanoseconds latency() const noexcept { return done - intended; }
  /// What the server took once the request was on the wire.
  [[nodiscard]] std::chrono::nanoseconds service() const noexcept { return done - sent; }
  /// How long it waited for its connection (0 when sent on time).
  [[nodiscard]] std::chrono::nanoseconds queued() const noexcept {
    return sent > intended ? sent - intended : std::chrono::nanoseconds::zero();
  }
};

}  // namespace seckill_load
