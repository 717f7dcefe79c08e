#pragma once
/// @file
/// @brief `detail::hybrid_mutex`: a mutex for critical sections of a few
///        hundred nanoseconds that threads take at once (a hot SKU's shard):
///        it spins briefly before it sleeps.
///
/// `std::mutex` sleeps in the kernel as soon as it finds the lock taken, so
/// two threads that take a short lock in turn pay a futex wait and a futex
/// wake almost every time. This one first retries for a bounded number of
/// CPU pauses (about a microsecond), which covers a short critical section,
/// and only then sleeps on the word (`std::atomic::wait`, a futex on Linux):
/// Drepper's three-state mutex ("Futexes Are Tricky"), with a spin in front.
/// Meets Lockable, so `std::lock_guard` and `std::unique_lock` take it.
/// Not recursive; not fair.

#include <seckill/detail/cpu_relax.hpp>

#include <atomic>
#include <cstdint>

namespace seckill::detail {

class hybrid_mutex {
 public:
  hybrid_mutex() = default;
  hybrid_mutex(const hybrid_mutex&) = delete;
  hybrid_mutex& operator=(const hybrid_mutex&) = delete;

  void lock() noexcept {
    for (int i = 0; i < spin_limit; ++i) {
      if (state_.load(std::memory_order_relaxed) == unlocked) {
        std::uint32_t expected = unlocked;
        if (state_.compare_exchange_weak(expected, locked, std::memory_order_acquire,
                                         std::memory_order_relaxed))
          return;
      }
      cpu_relax();
    }
    // Sleep until woken; whoever takes it from here marks it contended, so
    // its unlock wakes the next sleeper.
    while (state_.exchange(contended, std::memory_order_acquire) != unlocked)
      state_.wait(contended, std::memory_order_relaxed);
  }

  bool try_lock() noexcept {
    std::uint32_t expected = unlocked;
    return state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    if (state_.exchange(unlocked, std::memory_order_release) == contended) state_.notify_one();
  }

 private:
  static constexpr std::uint32_t unlocked = 0;
  static constexpr std::uint32_t locked = 1;     // held, nobody sleeping
  static constexpr std::uint32_t contended = 2;  // held, maybe sleepers
  static constexpr int spin_limit = 128;
  std::atomic<std::uint32_t> state_{unlocked};
};

}  // namespace seckill::detail
