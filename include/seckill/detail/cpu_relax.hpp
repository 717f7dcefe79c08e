#pragma once
/// @file
/// @brief `detail::cpu_relax()`: one pause of a spin-wait loop.

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#endif

namespace seckill::detail {

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

}  // namespace seckill::detail
