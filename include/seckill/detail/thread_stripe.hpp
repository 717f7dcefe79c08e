#pragma once
/// @file
/// @brief `detail::thread_stripe()`: which of a striped counter's cells the
///        calling thread writes, so threads stop sharing one cache line.
///
/// Threads are numbered round-robin at their first call (one relaxed
/// fetch_add per thread, ever); a striped type takes the number modulo its
/// stripe count. After the first call it is one thread-local load.

#include <atomic>
#include <cstddef>

namespace seckill::detail {

/// This thread's number, given in order of first use: 0, 1, 2, ...
inline std::size_t thread_stripe() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine;
}

}  // namespace seckill::detail
