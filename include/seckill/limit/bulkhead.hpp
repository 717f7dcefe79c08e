#pragma once
/// @file
/// @brief `seckill::bulkhead`: at most N calls in flight (Sentinel's
///        thread-count rule, resilience4j's SemaphoreBulkhead), with RAII permits.
///
/// Needs only the standard library. The asynchronous wait with a timeout,
/// `async_acquire(bulkhead, max_wait, executor, token)`, lives in
/// `<seckill/limit/async_acquire.hpp>`.

#include <seckill/detail/cache_line.hpp>
#include <seckill/error.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

namespace seckill {

class bulkhead;

namespace detail {

/// A caller queued in a bulkhead until a slot frees up (async_acquire.hpp).
/// `on_granted()` runs under the bulkhead's queue lock, on the releasing
/// thread, after a slot was taken for the waiter: it must only hand off.
class bulkhead_waiter {
 public:
  bulkhead_waiter() = default;
  bulkhead_waiter(const bulkhead_waiter&) = delete;
  bulkhead_waiter& operator=(const bulkhead_waiter&) = delete;

  virtual void on_granted() noexcept = 0;

 protected:
  ~bulkhead_waiter() = default;

 private:
  friend class seckill::bulkhead;
  bulkhead_waiter* next_ = nullptr;
  bulkhead_waiter* prev_ = nullptr;
  bool queued_ = false;
};

struct adopt_slot_t {
  explicit adopt_slot_t() = default;
};

}  // namespace detail

/// @brief One slot in a bulkhead, released when destroyed (or by `release()`).
///        Move-only, pointer-sized; empty when the bulkhead was full.
class bulkhead_permit {
 public:
  bulkhead_permit() noexcept = default;
  /// Takes ownership of a slot already counted in `owner`'s in-flight total.
  bulkhead_permit(bulkhead& owner, detail::adopt_slot_t) noexcept : owner_(&owner) {}
  bulkhead_permit(bulkhead_permit&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)) {}
  bulkhead_permit& operator=(bulkhead_permit&& other) noexcept {
    if (this != &other) {
      release();
      owner_ = std::exchange(other.owner_, nullptr);
    }
    return *this;
  }
  bulkhead_permit(const bulkhead_permit&) = delete;
  bulkhead_permit& operator=(const bulkhead_permit&) = delete;
  ~bulkhead_permit() { release(); }

  /// True while it holds a slot.
  explicit operator bool() const noexcept { return owner_ != nullptr; }

  /// Gives the slot back now (to the first queued waiter, if any).
  inline void release() noexcept;

 private:
  bulkhead* owner_ = nullptr;
};

/// @brief A concurrency limiter: at most `max_in_flight` permits exist at
///        once. `try_acquire()` never waits; `async_acquire()` (in
///        async_acquire.hpp) queues FIFO with a timeout.
///
/// Thread-safety: every member may be called from any threads at once; the
/// bulkhead must outlive its permits and waiters. Cost: `try_acquire()` is
/// one CAS on success and one load when full; releasing is one fetch_sub and
/// one load, plus a lock only when callers are queued. Queued waiters are
/// served in order, but a `try_acquire()` arriving as a slot frees may take
/// it first (no fairness against non-waiting callers).
class bulkhead {
 public:
  /// Throws `seckill::error` (`errc::invalid_argument`) when `max_in_flight` is 0.
  explicit bulkhead(std::size_t max_in_flight) : max_(max_in_flight) {
    if (max_in_flight == 0)
      throw error(errc::invalid_argument, "bulkhead max_in_flight 0 must be >= 1");
  }
  bulkhead(const bulkhead&) = delete;
  bulkhead& operator=(const bulkhead&) = delete;

  /// A permit if fewer than `max_in_flight` are out; an empty one otherwise.
  [[nodiscard]] bulkhead_permit try_acquire() noexcept {
    if (take_slot()) return bulkhead_permit{*this, detail::adopt_slot_t{}};
    return {};
  }

  /// As `try_acquire()`, setting `ec` to `errc::bulkhead_full` when full.
  [[nodiscard]] bulkhead_permit try_acquire(std::error_code& ec) noexcept {
    auto p = try_acquire();
    if (p)
      ec.clear();
    else
      ec = errc::bulkhead_full;
    return p;
  }

  [[nodiscard]] std::size_t in_flight() const noexcept {
    return in_flight_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t max_in_flight() const noexcept { return max_; }
  /// Callers queued in `async_acquire()`.
  [[nodiscard]] std::size_t waiting() const noexcept {
    return waiting_.load(std::memory_order_relaxed);
  }

  /// Queues `w`; it is granted (a slot taken for it, then `on_granted()`)
  /// as soon as one is free, possibly before this returns.
  void enqueue(detail::bulkhead_waiter& w) noexcept {
    {
      std::lock_guard lock(mutex_);
      w.prev_ = tail_;
      w.next_ = nullptr;
      if (tail_ != nullptr)
        tail_->next_ = &w;
      else
        head_ = &w;
      tail_ = &w;
      w.queued_ = true;
      waiting_.fetch_add(1, std::memory_order_seq_cst);
    }
    grant_waiters();  // a slot may have freed before we were visible
  }

  /// Takes `w` out of the queue; false when it was already granted (its
  /// `on_granted()` has then returned, and it owns a slot).
  bool remove(detail::bulkhead_waiter& w) noexcept {
    std::lock_guard lock(mutex_);
    if (!w.queued_) return false;
    unlink(w);
    return true;
  }

 private:
  friend class bulkhead_permit;

  bool take_slot() noexcept {
    // seq_cst pairs with release_slot(): a queued waiter and a freed slot
    // never miss each other.
    std::size_t n = in_flight_.load(std::memory_order_seq_cst);
    while (n < max_) {
      if (in_flight_.compare_exchange_weak(n, n + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  void release_slot() noexcept {
    in_flight_.fetch_sub(1, std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_seq_cst) != 0) grant_waiters();
  }

  void grant_waiters() noexcept {
    std::lock_guard lock(mutex_);
    while (head_ != nullptr && take_slot()) {
      detail::bulkhead_waiter& w = *head_;
      unlink(w);
      w.on_granted();
    }
  }

  void unlink(detail::bulkhead_waiter& w) noexcept {
    if (w.prev_ != nullptr)
      w.prev_->next_ = w.next_;
    else
      head_ = w.next_;
    if (w.next_ != nullptr)
      w.next_->prev_ = w.prev_;
    else
      tail_ = w.prev_;
    w.next_ = w.prev_ = nullptr;
    w.queued_ = false;
    waiting_.fetch_sub(1, std::memory_order_relaxed);
  }

  alignas(detail::cache_line_size) std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> waiting_{0};
  const std::size_t max_;
  alignas(detail::cache_line_size) std::mutex mutex_;
  detail::bulkhead_waiter* head_ = nullptr;
  detail::bulkhead_waiter* tail_ = nullptr;
};

inline void bulkhead_permit::release() noexcept {
  if (auto* owner = std::exchange(owner_, nullptr)) owner->release_slot();
}

static_assert(sizeof(bulkhead_permit) == sizeof(void*), "a bulkhead_permit is pointer-sized");

}  // namespace seckill
