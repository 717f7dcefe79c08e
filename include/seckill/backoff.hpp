#pragma once
/// @file
/// @brief `backoff_delay`: the one retry pause of the library (Redis
///        reconnects, the engine's commit and rollback retries): doubling
///        from an initial pause up to a cap, with half of it jitter.
///        The standard library only.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace seckill {

/// @brief The pause before retry number `attempt` (0 for the first):
///        `initial * 2^attempt` capped at `max`, of which the upper half is
///        scaled by `jitter` in [0, 1] (clamped): the pause lies in
///        [d/2, d]. Zero when `initial` is not positive. Free: no state, no
///        allocation, thread-safe.
inline std::chrono::milliseconds backoff_delay(unsigned attempt, std::chrono::milliseconds initial,
                                               std::chrono::milliseconds max,
                                               double jitter) noexcept {
  if (initial.count() <= 0) return std::chrono::milliseconds(0);
  std::int64_t d = initial.count();
  for (unsigned i = 0; i < attempt && d < max.count(); ++i) d *= 2;
  d = std::min<std::int64_t>(d, max.count());
  jitter = std::clamp(jitter, 0.0, 1.0);
  const auto half = d / 2;
  return std::chrono::milliseconds(d - half +
                                   static_cast<std::int64_t>(jitter * static_cast<double>(half)));
}

}  // namespace seckill
