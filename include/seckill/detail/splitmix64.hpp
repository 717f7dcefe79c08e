#pragma once
/// @file
/// @brief splitmix64: the small seeded generator behind seckill's jitter and
///        random pauses (the same seed gives the same sequence on every
///        platform, unlike the standard distributions). A pure function of
///        its state: no allocation, no lock; each caller owns its state.

#include <cstdint>

namespace seckill::detail {

/// Advances `state` and returns the next 64 random bits.
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Advances `state` and returns a fraction in [0, 1) (53 random bits).
constexpr double splitmix64_fraction(std::uint64_t& state) noexcept {
  return static_cast<double>(splitmix64_next(state) >> 11) / static_cast<double>(1ULL << 53);
}

}  // namespace seckill::detail
