#pragma once
/// @file
/// @brief `detail::cache_line_size`: the bytes that keep two independently
///        written objects off each other's cache line (false sharing).
///
/// 64 on the x86-64 and most AArch64 parts seckill runs on. Not
/// `std::hardware_destructive_interference_size`: that value may change with
/// compiler flags (GCC warns against it in headers), which would change the
/// layout of seckill's types between translation units.

#include <cstddef>

namespace seckill::detail {

inline constexpr std::size_t cache_line_size = 64;

}  // namespace seckill::detail
