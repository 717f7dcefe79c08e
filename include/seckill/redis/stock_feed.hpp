#pragma once
/// @file
/// @brief `redis::stock_feed`: keeps a `stock_cache` current from the
///        remaining counts `redis_store`'s script publishes.

#include <seckill/error.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/subscriber.hpp>
#include <seckill/store/stock_cache.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief Feeds a `stock_cache` from Redis: `redis_store`'s script publishes
///        a SKU's remaining on its stock key's channel (`seckill:{<sku>}:stock`)
///        when it is set, reaches 0 or leaves 0 (a restock, a rollback, a
///        reap), and this feed's `subscriber` PSUBSCRIBEs `seckill:{*}:stock`.
///
/// While the subscription is down the cache is not live (`set_live(false)`:
/// nothing is refused locally); once it is back, every SKU the cache knows
/// is read again from `Store` (messages sent meanwhile were lost) and only
/// then is the cache live again. A message that does not parse is counted
/// and named in `last_error()`, and changes nothing.
///
/// Thread-safety: construct, start and close from one thread; the counters
/// may be read from any. After `close()` (or destruction) returns, no
/// handler touches the cache again; a resync read already started in the
/// store completes there, so the store must outlive the work on its
/// executor, as for any Asio operation.
/// Cost: one Redis connection; a hash lookup and a few atomic stores per
/// message; after each reconnection one `async_stock` per SKU known.
template <stock_store Store>
class stock_feed {
 public:
  using executor_type = typename subscriber::executor_type;

  /// The channel pattern `redis_store`'s script publishes on.
  static constexpr std::string_view pattern = "seckill:{*}:stock";

  /// The SKU of a stock channel (`seckill:{<sku>}:stock`); empty when
  /// `channel` is not one.
  static std::string_view sku_of(std::string_view channel) noexcept {
    constexpr std::string_view head = "seckill:{";
    constexpr std::string_view tail = "}:stock";
    if (channel.size() <= head.size() + tail.size() || !channel.starts_with(head) ||
        !channel.ends_with(tail))
      return {};
    return channel.substr(head.size(), channel.size() - head.size() - tail.size());
  }

  /// `cfg` addresses the store's server (its own connection is opened).
  stock_feed(const executor_type& ex, Store& store, stock_cache& cache, connection_config cfg)
      : st_(std::make_shared<state>(store, cache)) {
    cache.set_live(false);
    std::vector<std::string> patterns{std::string(pattern)};
    sub_ = std::make_unique<subscriber>(
        ex, std::move(cfg), std::move(patterns),
        [st = st_](std::string_view channel, std::string_view payload) {
          st->on_message(channel, payload);
        },
        [st = st_](connection_state s) { st->on_state(s); });
  }
  stock_feed(const stock_feed&) = delete;
  stock_feed& operator=(const stock_feed&) = delete;
  ~stock_feed() { close(); }

  /// Subscribes; completes as `connection::async_connect`. The cache turns
  /// live once the SKUs it knew were read again.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_start(CompletionToken&& token = CompletionToken()) {
    return sub_->async_connect(std::forward<CompletionToken>(token));
  }

  void close() {
    {
      // waits for a handler using the cache or the store to finish
      std::lock_guard lock(st_->use);
      st_->stopped.store(true, std::memory_order_relaxed);
      st_->cache.set_live(false);
    }
    if (sub_) sub_->close();
  }

  [[nodiscard]] const subscriber& source() const noexcept { return *sub_; }
  /// Resynchronisations done (one per connection made, the first included).
  [[nodiscard]] std::uint64_t resyncs() const noexcept {
    return st_->resyncs.load(std::memory_order_relaxed);
  }
  /// Messages that did not parse (not a stock channel, not a count), and
  /// resync reads that failed (the cache then stays not live, so nothing is
  /// refused locally, until a later read succeeds: the resync tries again
  /// after a pause, 100 ms doubling to 5 s, while the subscription lasts).
  [[nodiscard]] std::uint64_t bad_messages() const noexcept {
    return st_->bad.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(st_->mutex);
    return st_->last_error;
  }

 private:
  struct state : std::enable_shared_from_this<state> {
    state(Store& s, stock_cache& c) : store(s), cache(c) {}
    Store& store;
    stock_cache& cache;
    std::atomic<bool> stopped{false};
    std::atomic<std::uint64_t> generation{0};  // one per state change
    std::atomic<std::uint64_t> resyncs{0};
    std::atomic<std::uint64_t> bad{0};
    // Held by every use of `store` and `cache` from a handler, and by
    // `close()`: handlers run on the subscriber's strand and the store's
    // executor, so without it close() could return while one is past its
    // `stopped` check. Also makes a resync's generation check and its
    // set_live(true) one step against on_state's change.
    std::mutex use;
    mutable std::mutex mutex;  // last_error
    std::string last_error;

    void fail(std::string message) {
      bad.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(mutex);
      last_error = std::move(message);
    }

    void on_message(std::string_view channel, std::string_view payload) {
      std::lock_guard lock(use);
      if (stopped.load(std::memory_order_relaxed)) return;  // the cache may be gone
      const std::string_view sku = sku_of(channel);
      std::int64_t remaining = -1;
      const auto [end, ec] =
          std::from_chars(payload.data(), payload.data() + payload.size(), remaining);
      if (sku.empty() || ec != std::errc() || end != payload.data() + payload.size() ||
          remaining < 0) {
        fail("stock_feed: message '" + std::string(payload.substr(0, 40)) + "' on channel '" +
             std::string(channel.substr(0, 80)) + "' is not a stock count");
        return;
      }
      cache.update(sku, remaining);
    }

    void on_state(connection_state s) {
      std::uint64_t gen = 0;
      {
        std::lock_guard lock(use);
        if (stopped.load(std::memory_order_relaxed)) return;  // the cache may be gone
        gen = generation.fetch_add(1, std::memory_order_acq_rel) + 1;
        if (s != connection_state::ready) {
          cache.set_live(false);
          return;
        }
      }
      // Spawned without the lock: the resync may start at once on this
      // thread, and it takes the lock itself.
      boost::asio::co_spawn(store.get_executor(), resync(this->shared_from_this(), gen),
                            boost::asio::detached);
    }

    // Reads every known SKU again, then turns the cache live, unless the
    // connection changed state meanwhile (a later resync will). A read that
    // fails (the store's own connection may come back after this one) is
    // tried again after a pause (100 ms, doubling to 5 s) while this
    // connection lasts: the cache stays not live meanwhile.
    static boost::asio::awaitable<void> resync(std::shared_ptr<state> st, std::uint64_t gen) {
      const auto current = [&] {
        return !st->stopped.load(std::memory_order_relaxed) &&
               st->generation.load(std::memory_order_acquire) == gen;
      };
      std::chrono::milliseconds pause{100};
      for (;;) {
        if (co_await read_all(st, current)) break;
        if (!current()) co_return;
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, pause);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(5));
        if (!current()) co_return;
      }
      std::lock_guard lock(st->use);
      if (!current()) co_return;
      st->resyncs.fetch_add(1, std::memory_order_relaxed);
      st->cache.set_live(true);
    }

    // One pass over the known SKUs; false when a read failed (counted and
    // named) or the feed moved on.
    template <class Current>
    static boost::asio::awaitable<bool> read_all(std::shared_ptr<state> st, Current& current) {
      std::vector<std::string> skus;
      {
        std::lock_guard lock(st->use);
        if (!current()) co_return false;
        skus = st->cache.skus();
      }
      for (const auto& sku : skus) {
        if (!current()) co_return false;
        auto [ec, level] =
            co_await st->store.async_stock(sku, boost::asio::as_tuple(boost::asio::use_awaitable));
        std::lock_guard lock(st->use);  // never held across a suspension
        if (st->stopped.load(std::memory_order_relaxed)) co_return false;
        if (ec == make_error_code(seckill::errc::unknown_sku)) {
          st->cache.invalidate(sku);
        } else if (ec) {
          st->fail("stock_feed: resync read of sku '" + sku + "' failed: " + ec.message());
          co_return false;
        } else {
          st->cache.update(sku, level.remaining);
        }
      }
      co_return true;
    }
  };

  std::shared_ptr<state> st_;
  std::unique_ptr<subscriber> sub_;
};

}  // namespace seckill::redis
