#pragma once
/// @file
/// @brief `stock_cache`: one node's view of which SKUs are sold out, and
///        about how many units each has left, so that a sold-out SKU is
///        refused without a store round trip.

#include <seckill/detail/cache_line.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace seckill {

/// @brief Tuning of a `stock_cache`.
struct stock_cache_options {
  /// How long a sold-out entry is believed after the update that said so.
  /// Past it, `sold_out` answers false until a fresh update (the next
  /// reserve goes to the store, whose answer renews the entry). This bounds
  /// how long a lost or reordered update can refuse sales wrongly; the cost
  /// is one store round trip per sold-out SKU, per node, per period.
  std::chrono::milliseconds trust_sold_out_for{1000};
};

/// @brief Per SKU, the last known remaining count (sold out = 0), updated by
///        a feeder (a store's watch or pub/sub, `cached_store`'s own
///        answers) and read on the purchase hot path.
///
/// An entry carries the update's version (an etcd revision; 0 when the
/// source has none): an update older than the entry's version is ignored,
/// so a late watch event never undoes a newer one. While the feed is down
/// (`set_live(false)`) no entry counts as sold out: the store stays the
/// judge, so a lost feed costs round trips, never a wrong refusal or an
/// oversell.
///
/// Thread-safety: every member may be called from any thread at once.
/// Cost: a read (`sold_out`, `find`) is a shared lock of one of 16 shards,
/// a hash lookup and a clock read; an update of a known SKU is the same
/// plus a few atomic stores (no allocation). Memory: one entry (the SKU's
/// text and about 64 bytes) per SKU ever seen, kept for the cache's
/// lifetime (`size()`); SKUs are a catalogue, not a stream, so this is the
/// bound.
class stock_cache {
 public:
  using clock = std::chrono::steady_clock;

  /// What the cache knows of a SKU.
  struct view {
    std::int64_t remaining = -1;  ///< -1: unknown (never fed, or invalidated)
    clock::time_point updated{};  ///< when the last update arrived
    std::int64_t version = 0;     ///< the last update's version (0: none)
  };

  /// One SKU's entry. Stable for the cache's lifetime: a caller may keep
  /// the pointer `entry()` returns and update through it.
  class slot {
   public:
    /// Records `remaining` (>= 0, or -1 to forget what was known) at
    /// `version` (0: unversioned, always applied). Returns false when a
    /// newer version was already recorded.
    bool update(std::int64_t remaining, std::int64_t version = 0) noexcept {
      if (version > 0) {
        std::int64_t seen = version_.load(std::memory_order_relaxed);
        do {
          if (seen > version) return false;
        } while (!version_.compare_exchange_weak(seen, version, std::memory_order_relaxed));
      }
      remaining_.store(remaining, std::memory_order_relaxed);
      updated_ns_.store(clock::now().time_since_epoch().count(), std::memory_order_release);
      if (owner_ != nullptr) owner_->notify(name_, remaining);
      return true;
    }

    [[nodiscard]] view get() const noexcept {
      view v;
      v.updated = clock::time_point(clock::duration(updated_ns_.load(std::memory_order_acquire)));
      v.remaining = remaining_.load(std::memory_order_relaxed);
      v.version = version_.load(std::memory_order_relaxed);
      return v;
    }

    [[nodiscard]] const std::string& sku() const noexcept { return name_; }

   private:
    friend class stock_cache;
    slot(const stock_cache* owner, std::string name) : owner_(owner), name_(std::move(name)) {}

    const stock_cache* owner_;
    std::string name_;
    std::atomic<std::int64_t> remaining_{-1};
    std::atomic<clock::rep> updated_ns_{0};
    std::atomic<std::int64_t> version_{0};
  };

  /// Called after each applied update, on the updating thread: tests and
  /// benchmarks observe propagation with it. Set before feeding starts.
  using observer = std::function<void(const std::string& sku, std::int64_t remaining)>;

  explicit stock_cache(stock_cache_options options = {}) : options_(options) {}
  stock_cache(const stock_cache&) = delete;
  stock_cache& operator=(const stock_cache&) = delete;

  /// The entry of `sku`, created (unknown) on first use.
  slot& entry(std::string_view sku) {
    auto& sh = shard_of(sku);
    {
      std::shared_lock lock(sh.mutex);
      const auto it = sh.slots.find(sku);
      if (it != sh.slots.end()) return *it->second;
    }
    std::unique_lock lock(sh.mutex);
    auto it = sh.slots.find(sku);
    if (it == sh.slots.end()) {
      std::string name(sku);
      it = sh.slots.emplace(name, std::unique_ptr<slot>(new slot(this, name))).first;
      size_.fetch_add(1, std::memory_order_relaxed);
    }
    return *it->second;
  }

  /// The entry of `sku`, or nullptr for a SKU never seen (creates nothing).
  [[nodiscard]] slot* find_slot(std::string_view sku) const {
    return const_cast<slot*>(lookup(sku));
  }

  /// Records `remaining` for `sku` (see `slot::update`).
  bool update(std::string_view sku, std::int64_t remaining, std::int64_t version = 0) {
    return entry(sku).update(remaining, version);
  }

  /// Forgets what is known of `sku`'s count (units came back by a path
  /// that does not say how many): it is no longer sold out.
  void invalidate(std::string_view sku) { update(sku, -1); }

  /// What is known of `sku`; nullopt for a SKU never seen.
  [[nodiscard]] std::optional<view> find(std::string_view sku) const {
    const slot* s = lookup(sku);
    if (s == nullptr) return std::nullopt;
    return s->get();
  }

  /// Whether a reserve of `sku` may be refused locally: its last update
  /// said 0 left, less than `trust_sold_out_for` ago, and the feed is live.
  [[nodiscard]] bool sold_out(std::string_view sku) const {
    if (!live_.load(std::memory_order_acquire)) return false;
    const slot* s = lookup(sku);
    if (s == nullptr) return false;
    const view v = s->get();
    return v.remaining == 0 && clock::now() - v.updated < options_.trust_sold_out_for;
  }

  /// The feeder's word on its feed: false while disconnected (nothing is
  /// trusted as sold out), true once it is back and resynchronised.
  void set_live(bool live) noexcept { live_.store(live, std::memory_order_release); }
  [[nodiscard]] bool live() const noexcept { return live_.load(std::memory_order_acquire); }

  /// Every SKU seen, for a resynchronisation after a lost feed.
  [[nodiscard]] std::vector<std::string> skus() const {
    std::vector<std::string> out;
    for (const auto& sh : shards_) {
      std::shared_lock lock(sh.mutex);
      for (const auto& [name, s] : sh.slots) out.push_back(name);
    }
    return out;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  [[nodiscard]] const stock_cache_options& options() const noexcept { return options_; }

  /// See `observer`. Not thread-safe against updates: set it first.
  void set_observer(observer o) { observer_ = std::move(o); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  struct alignas(detail::cache_line_size) shard {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<slot>, string_hash, std::equal_to<>> slots;
  };

  static constexpr std::size_t shard_count = 16;

  shard& shard_of(std::string_view sku) noexcept {
    return shards_[string_hash{}(sku) % shard_count];
  }
  const shard& shard_of(std::string_view sku) const noexcept {
    return shards_[string_hash{}(sku) % shard_count];
  }

  const slot* lookup(std::string_view sku) const {
    const auto& sh = shard_of(sku);
    std::shared_lock lock(sh.mutex);
    const auto it = sh.slots.find(sku);
    return it == sh.slots.end() ? nullptr : it->second.get();
  }

  void notify(const std::string& sku, std::int64_t remaining) const {
    if (observer_) observer_(sku, remaining);
  }

  stock_cache_options options_;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> size_{0};
  std::atomic<bool> live_{true};
  observer observer_;
};

}  // namespace seckill
