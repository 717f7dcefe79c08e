#pragma once
/// @file
/// @brief `object_pool<T, Reset>`: preallocated objects handed out as
///        pointer-sized `pooled<T>` handles, with a per-thread cache in front of
///        a lock-free free list, so the hot path allocates nothing and shares no
///        written cache line between threads.

#include <seckill/detail/cache_line.hpp>
#include <seckill/error.hpp>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill {

/// @brief Reset policy: calls `T::reset()` on every object given back to the pool.
struct call_reset {
  template <class T>
  void operator()(T& value) const noexcept(noexcept(value.reset())) {
    value.reset();
  }
};

/// @brief Reset policy: objects come back as they were left.
struct no_reset {
  template <class T>
  void operator()(T&) const noexcept {}
};

/// @brief How an `object_pool` grows when every object is in use: by `step`
///        objects at a time up to `max_capacity`, or not at all (`fixed()`, the default).
struct growth_policy {
  std::size_t step = 0;          ///< objects added per growth; 0: the pool never grows
  std::size_t max_capacity = 0;  ///< the pool never holds more objects than this

  static constexpr growth_policy fixed() noexcept { return {}; }
  static constexpr growth_policy by(std::size_t step, std::size_t max_capacity) noexcept {
    return {step, max_capacity};
  }
};

/// @brief Options of an `object_pool`.
struct pool_options {
  /// Objects each thread keeps for itself (rounded up to a power of two; 0: no
  /// thread cache, every acquire and release goes to the shared free list).
  std::size_t thread_cache = 32;
  growth_policy growth = growth_policy::fixed();
};

template <class T>
class pooled;

namespace detail {

template <class T>
class pool_core;

/// One pooled object and its bookkeeping, a cache line apart from its neighbours.
template <class T>
struct alignas(detail::cache_line_size) pool_slot {
  T value{};
  pool_core<T>* owner = nullptr;
  std::uint32_t index = 0;
  std::atomic<std::uint32_t> next{0};  // free-list link (an index)
};

/// One thread's cache of one pool's free objects: a bounded Chase-Lev deque. The
/// owning thread pushes and takes at the bottom without contention; when the
/// shared free list is empty, other threads steal from the top, so an object
/// cached by one thread is never lost to the others.
struct alignas(detail::cache_line_size) pool_cache {
  explicit pool_cache(std::size_t size)
      : mask(static_cast<std::int64_t>(size) - 1), items(new std::atomic<void*>[size]) {
    for (std::size_t i = 0; i < size; ++i) items[i].store(nullptr, std::memory_order_relaxed);
  }

  // Owner only. False when full.
  bool push(void* x) noexcept {
    const auto b = bottom.load(std::memory_order_relaxed);
    const auto t = top.load(std::memory_order_acquire);
    if (b - t > mask) return false;
    items[static_cast<std::size_t>(b & mask)].store(x, std::memory_order_relaxed);
    bottom.store(b + 1, std::memory_order_release);
    return true;
  }

  // Owner only. Null when empty (or when a thief took the last one).
  void* take() noexcept {
    const auto b = bottom.load(std::memory_order_relaxed) - 1;
    // a seq_cst exchange rather than a seq_cst store: the same store-load
    // ordering against steal(), as one locked instruction instead of a
    // store and a full fence (cheaper on x86)
    (void)bottom.exchange(b, std::memory_order_seq_cst);
    auto t = top.load(std::memory_order_seq_cst);
    if (t > b) {
      bottom.store(b + 1, std::memory_order_release);
      return nullptr;
    }
    void* x = items[static_cast<std::size_t>(b & mask)].load(std::memory_order_relaxed);
    if (t == b) {
      if (!top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        x = nullptr;
      }
      bottom.store(b + 1, std::memory_order_release);
    }
    return x;
  }

  // Any thread. Null when empty or on a lost race.
  void* steal() noexcept {
    auto t = top.load(std::memory_order_seq_cst);
    const auto b = bottom.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    void* x = items[static_cast<std::size_t>(t & mask)].load(std::memory_order_relaxed);
    if (!top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      return nullptr;
    }
    return x;
  }

  std::int64_t size() const noexcept {
    const auto n = bottom.load(std::memory_order_acquire) - top.load(std::memory_order_acquire);
    return n < 0 ? 0 : n;
  }

  std::atomic<std::int64_t> top{0};
  std::atomic<std::int64_t> bottom{0};
  std::atomic<bool> owned{true};
  pool_cache* next_cache = nullptr;  // in the hub's list; set before publication
  const std::int64_t mask;
  std::unique_ptr<std::atomic<void*>[]> items;
};

/// The part of a pool that threads' caches refer to. Reference-counted by the
/// pool and by every thread that cached from it, so a thread that exits after
/// the pool was destroyed (or a pool destroyed while threads still hold cache
/// entries for it) touches only memory that is still alive.
struct pool_hub {
  explicit pool_hub(std::size_t cache_size) : cache_size(cache_size) {}
  ~pool_hub() {
    for (pool_cache* c = caches.load(std::memory_order_acquire); c != nullptr;) {
      pool_cache* next = c->next_cache;
      delete c;
      c = next;
    }
  }

  void unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // A cache for the calling thread: one left behind by an exited thread
  // (adopted with the objects in it), or a new one. Allocates.
  pool_cache* adopt_or_create() {
    for (pool_cache* c = caches.load(std::memory_order_acquire); c != nullptr; c = c->next_cache) {
      bool expected = false;
      if (!c->owned.load(std::memory_order_relaxed) &&
          c->owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        return c;
      }
    }
    auto* c = new pool_cache(cache_size);
    c->next_cache = caches.load(std::memory_order_relaxed);
    while (!caches.compare_exchange_weak(c->next_cache, c, std::memory_order_release,
                                         std::memory_order_relaxed)) {
    }
    return c;
  }

  std::atomic<std::size_t> refs{1};
  std::atomic<bool> alive{true};
  std::atomic<pool_cache*> caches{nullptr};
  const std::size_t cache_size;
};

// Trivially constructed and destroyed thread-locals, read without a TLS
// wrapper call: the cache this thread used last (the hot path's lookup), and
// whether the thread's caches are gone (thread exit: a pooled object released
// later on the thread goes to the shared free list).
struct pool_last_used {
  const pool_hub* hub;
  pool_cache* cache;
};
inline thread_local pool_last_used pool_last_cache{nullptr, nullptr};
inline thread_local bool pool_thread_caches_gone = false;

/// The calling thread's caches, one per pool it used.
struct pool_thread_caches {
  struct entry {
    pool_hub* hub;
    pool_cache* cache;
  };

  pool_thread_caches() = default;
  pool_thread_caches(const pool_thread_caches&) = delete;
  pool_thread_caches& operator=(const pool_thread_caches&) = delete;
  ~pool_thread_caches();

  pool_cache* find(const pool_hub* hub) const noexcept {
    for (const auto& e : entries) {
      if (e.hub == hub) return e.cache;
    }
    return nullptr;
  }

  pool_cache* attach(pool_hub* hub) {
    // Forget the pools that were destroyed since.
    std::erase_if(entries, [](const entry& e) {
      if (e.hub->alive.load(std::memory_order_acquire)) return false;
      if (pool_last_cache.hub == e.hub) pool_last_cache = {nullptr, nullptr};
      e.cache->owned.store(false, std::memory_order_release);
      e.hub->unref();
      return true;
    });
    entries.reserve(entries.size() + 1);
    pool_cache* c = hub->adopt_or_create();
    hub->refs.fetch_add(1, std::memory_order_relaxed);
    entries.push_back({hub, c});
    return c;
  }

  std::vector<entry> entries;
};

inline thread_local pool_thread_caches pool_thread_caches_instance;

inline pool_thread_caches::~pool_thread_caches() {
  pool_thread_caches_gone = true;
  pool_last_cache = {nullptr, nullptr};
  for (const auto& e : entries) {
    e.cache->owned.store(false, std::memory_order_release);
    e.hub->unref();
  }
}

/// Everything of an object_pool that does not depend on the Reset policy.
template <class T>
class pool_core {
 public:
  using slot = pool_slot<T>;

  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  // Gives an object back: reset, then this thread's cache, else the shared list.
  void release(slot* s) noexcept {
    do_reset(s->value);
    if (pool_cache* c = my_cache()) {
      if (c->push(s)) return;
    }
    push_shared(s);
  }

  slot* take() noexcept {
    if (pool_cache* c = my_cache()) {
      if (void* p = c->take()) return static_cast<slot*>(p);
    }
    // Two passes over the shared list and the other threads' caches: an object
    // released while the first pass ran may have landed behind it.
    for (int pass = 0; pass < 2; ++pass) {
      if (slot* s = pop_shared()) return s;
      if (slot* s = steal()) return s;
    }
    return grow();
  }

  std::size_t capacity() const noexcept { return capacity_.load(std::memory_order_acquire); }
  std::size_t max_capacity() const noexcept { return max_capacity_; }

 protected:
  pool_core(std::size_t capacity, const pool_options& options) {
    const growth_policy& g = options.growth;
    max_capacity_ = g.step == 0 ? capacity : g.max_capacity;
    if (g.step != 0 && g.max_capacity < capacity) {
      throw error(errc::invalid_argument, "growth max_capacity " + std::to_string(g.max_capacity) +
                                              " is below the capacity " + std::to_string(capacity));
    }
    if (max_capacity_ == 0 || max_capacity_ >= empty_index) {
      throw error(errc::invalid_argument, "object_pool capacity " + std::to_string(max_capacity_) +
                                              " out of range [1, " +
                                              std::to_string(empty_index - 1) + "]");
    }
    step_ = g.step;
    std::size_t cache_size = 0;
    if (options.thread_cache != 0) {
      cache_size = 1;
      while (cache_size < options.thread_cache) cache_size <<= 1;
    }
    table_.assign(max_capacity_, nullptr);
    if (capacity != 0) add_chunk(capacity, false);
    if (cache_size != 0) hub_ = new pool_hub(cache_size);
  }

  ~pool_core() {
    assert(free_objects() == capacity() && "object_pool destroyed while pooled objects are in use");
    if (hub_ != nullptr) {
      hub_->alive.store(false, std::memory_order_release);
      hub_->unref();
    }
  }

  virtual void do_reset(T& value) noexcept = 0;

 private:
  static constexpr std::uint64_t empty_index = 0xFFFF'FFFFu;

  static std::uint64_t pack(std::uint64_t tag, std::uint64_t index) noexcept {
    return (tag << 32) | index;
  }

  pool_cache* my_cache() noexcept {
    if (pool_last_cache.hub == hub_ && hub_ != nullptr) return pool_last_cache.cache;
    return my_cache_slow();
  }

  pool_cache* my_cache_slow() noexcept {
    if (hub_ == nullptr || pool_thread_caches_gone) return nullptr;
    auto& caches = pool_thread_caches_instance;
    pool_cache* c = caches.find(hub_);
    if (c == nullptr) {
      try {
        c = caches.attach(hub_);
      } catch (...) {  // out of memory: do without a cache
        return nullptr;
      }
    }
    pool_last_cache = {hub_, c};
    return c;
  }

  // The shared free list: a Treiber stack of slot indices, tagged against ABA.
  void push_shared(slot* s) noexcept {
    auto old = head_.load(std::memory_order_relaxed);
    for (;;) {
      s->next.store(static_cast<std::uint32_t>(old & empty_index), std::memory_order_relaxed);
      if (head_.compare_exchange_weak(old, pack((old >> 32) + 1, s->index),
                                      std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
  }

  slot* pop_shared() noexcept {
    auto old = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto index = old & empty_index;
      if (index == empty_index) return nullptr;
      slot* s = table_[index];
      const std::uint64_t next = s->next.load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(old, pack((old >> 32) + 1, next), std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return s;
      }
    }
  }

  slot* steal() noexcept {
    if (hub_ == nullptr) return nullptr;
    for (pool_cache* c = hub_->caches.load(std::memory_order_acquire); c != nullptr;
         c = c->next_cache) {
      // A lost race means someone else got an object: try the same cache again.
      while (c->size() > 0) {
        if (void* p = c->steal()) return static_cast<slot*>(p);
      }
    }
    return nullptr;
  }

  slot* grow() {
    if (step_ == 0) return nullptr;
    std::lock_guard lock(grow_mutex_);
    if (slot* s = pop_shared()) return s;  // another thread grew meanwhile
    const std::size_t cap = capacity_.load(std::memory_order_relaxed);
    if (cap >= max_capacity_) return nullptr;
    try {
      return add_chunk(std::min(step_, max_capacity_ - cap), true);
    } catch (...) {  // T's constructor or the allocation failed: report exhaustion
      return nullptr;
    }
  }

  // Constructs `n` more objects and puts them on the free list, all of them or
  // (when growing for a caller) all but the first, which is returned.
  slot* add_chunk(std::size_t n, bool keep_first) {
    std::unique_ptr<slot[]> chunk(new slot[n]);
    const std::size_t base = capacity_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      chunk[i].owner = this;
      chunk[i].index = static_cast<std::uint32_t>(base + i);
      table_[base + i] = &chunk[i];
    }
    slot* first = &chunk[0];
    chunks_.push_back(std::move(chunk));
    capacity_.store(base + n, std::memory_order_release);
    for (std::size_t i = n; i-- > (keep_first ? 1 : 0);) push_shared(table_[base + i]);
    return keep_first ? first : nullptr;
  }

  std::size_t free_objects() const noexcept {
    std::size_t n = 0;
    for (auto i = head_.load(std::memory_order_acquire) & empty_index; i != empty_index;
         i = table_[i]->next.load(std::memory_order_relaxed)) {
      ++n;
    }
    if (hub_ != nullptr) {
      for (pool_cache* c = hub_->caches.load(std::memory_order_acquire); c != nullptr;
           c = c->next_cache) {
        n += static_cast<std::size_t>(c->size());
      }
    }
    return n;
  }

  // Hot and shared: the free list's head, alone on its cache line.
  alignas(detail::cache_line_size) std::atomic<std::uint64_t> head_{empty_index};
  // Read-mostly.
  alignas(detail::cache_line_size) pool_hub* hub_ = nullptr;
  std::vector<slot*> table_;  // index -> slot; sized once, filled as the pool grows
  std::atomic<std::size_t> capacity_{0};
  std::size_t max_capacity_ = 0;
  std::size_t step_ = 0;
  std::mutex grow_mutex_;
  std::vector<std::unique_ptr<slot[]>> chunks_;
};

}  // namespace detail

/// @brief A pooled object: a move-only, pointer-sized handle that gives the
///        object back to its pool (after the pool's Reset) when destroyed.
///
/// Thread-safety: like `std::unique_ptr`; the handle may be moved to and
/// destroyed on another thread than the one that acquired it.
template <class T>
class pooled {
 public:
  pooled() noexcept = default;
  pooled(pooled&& other) noexcept : slot_(std::exchange(other.slot_, nullptr)) {}
  pooled& operator=(pooled&& other) noexcept {
    if (this != &other) {
      reset();
      slot_ = std::exchange(other.slot_, nullptr);
    }
    return *this;
  }
  pooled(const pooled&) = delete;
  pooled& operator=(const pooled&) = delete;
  ~pooled() { reset(); }

  /// Gives the object back now; the handle becomes empty.
  void reset() noexcept {
    if (slot_ != nullptr) {
      auto* s = std::exchange(slot_, nullptr);
      s->owner->release(s);
    }
  }

  [[nodiscard]] T* get() const noexcept { return slot_ != nullptr ? &slot_->value : nullptr; }
  T& operator*() const noexcept { return slot_->value; }
  T* operator->() const noexcept { return &slot_->value; }
  explicit operator bool() const noexcept { return slot_ != nullptr; }

 private:
  template <class, class>
  friend class object_pool;
  explicit pooled(detail::pool_slot<T>* s) noexcept : slot_(s) {}

  detail::pool_slot<T>* slot_ = nullptr;
};

/// @brief A pool of preallocated `T`s, constructed once and reused.
///
/// `acquire()` hands out a `pooled<T>`; its destruction runs `Reset` on the
/// object (`T::reset()` by default, `no_reset` or any `void(T&)` functor; it
/// must not throw) and gives it back. Each thread keeps up to
/// `pool_options::thread_cache` free objects of its own in front of a shared
/// lock-free free list, so an acquire/release pair on one thread touches no
/// cache line another thread writes; a thread that finds the shared list empty
/// takes objects from other threads' caches, so `capacity` objects are always
/// obtainable. Objects may be released on any thread.
///
/// Thread-safety: `acquire`, `try_acquire` and releases from any number of
/// threads. The pool must outlive its handles. Cost: no allocation after each
/// thread's first use (a thread allocates its cache once per pool); an
/// acquire/release pair costs a few nanoseconds plus `Reset`. Memory: capacity
/// slots of `sizeof(T)` rounded up to 64 bytes.
template <class T, class Reset = call_reset>
class object_pool final : public detail::pool_core<T> {
  static_assert(std::is_default_constructible_v<T>, "object_pool constructs its objects with T()");
  static_assert(std::is_invocable_v<Reset&, T&>,
                "Reset must be callable with T& (the default, call_reset, calls T::reset())");
  static_assert(sizeof(pooled<T>) == sizeof(void*), "pooled<T> is pointer-sized");

 public:
  using value_type = T;
  using reset_type = Reset;

  /// Constructs `capacity` objects up front.
  /// @throws seckill::error (`errc::invalid_argument`) for a capacity of 0 (without
  ///         growth) or above 2^32 - 2, or a growth maximum below `capacity`.
  explicit object_pool(std::size_t capacity, pool_options options = {}, Reset reset = {})
      : detail::pool_core<T>(capacity, options), reset_(std::move(reset)) {}

  ~object_pool() = default;

  /// An object, or an empty handle when every object is in use and the pool may not grow.
  [[nodiscard]] pooled<T> try_acquire() noexcept { return pooled<T>(this->take()); }

  /// An object. @throws seckill::error (`errc::pool_exhausted`) when none is free.
  [[nodiscard]] pooled<T> acquire() {
    pooled<T> p = try_acquire();
    if (!p) {
      throw error(errc::pool_exhausted, "object_pool exhausted: all " +
                                            std::to_string(this->capacity()) +
                                            " objects in use (maximum capacity " +
                                            std::to_string(this->max_capacity()) + ")");
    }
    return p;
  }

  /// An object, or an empty handle with `ec` set to `errc::pool_exhausted`.
  [[nodiscard]] pooled<T> acquire(std::error_code& ec) noexcept {
    pooled<T> p = try_acquire();
    ec = p ? std::error_code{} : make_error_code(errc::pool_exhausted);
    return p;
  }

  using detail::pool_core<T>::capacity;
  using detail::pool_core<T>::max_capacity;

 private:
  void do_reset(T& value) noexcept override { reset_(value); }

  Reset reset_;
};

}  // namespace seckill
