#pragma once
// Counts heap allocations made by this process: include it in exactly one
// translation unit of a bench binary (it replaces the global operator new).
// A benchmark reads `seckill::bench::allocations()` (the whole process) or
// `seckill::bench::thread_allocations()` (the calling thread only: what a
// multi-threaded row wants, since the framework's other threads allocate too)
// before and after its loop and reports the difference per iteration.

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace seckill::bench {

inline std::atomic<std::size_t>& allocation_count() noexcept {
  static std::atomic<std::size_t> count{0};
  return count;
}

inline std::size_t allocations() noexcept {
  return allocation_count().load(std::memory_order_relaxed);
}

inline thread_local std::size_t thread_allocation_count = 0;

inline std::size_t thread_allocations() noexcept { return thread_allocation_count; }

inline void count_allocation() noexcept {
  allocation_count().fetch_add(1, std::memory_order_relaxed);
  ++thread_allocation_count;
}

}  // namespace seckill::bench

void* operator new(std::size_t size) {
  seckill::bench::count_allocation();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  seckill::bench::count_allocation();
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc{};
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
