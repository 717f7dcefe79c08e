#pragma once
/// @file
/// @brief `etcd::stock_feed`: keeps a `stock_cache` current from a watch on
///        the stock records of an `etcd_store`'s prefix.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/etcd_store_records.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/etcd/watch_stream.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/store/stock_cache.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill::etcd {

/// @brief Feeds a `stock_cache` from etcd: one watch on the store's prefix
///        (`etcd_store_options::prefix`); every change of a
///        `<prefix><sku>/stock` record updates the SKU's entry with its
///        `remaining`, versioned by the change's revision (a late event never
///        undoes a newer one); a deleted record forgets the entry.
///
/// Nothing is lost across a disconnection: the `watcher` resumes from the
/// last revision delivered; a compaction it cannot bridge comes back as a
/// snapshot of the prefix, which replaces every stock entry. While the
/// socket is down the entries only age, and `stock_cache_options::
/// trust_sold_out_for` stops a sold-out entry refusing sales past that.
/// A stock record that does not parse is counted and named in
/// `last_error()`, and changes nothing.
///
/// Thread-safety: use on the watcher's executor (like the watcher); the
/// cache may be read from any thread. The watcher and the cache must outlive
/// the feed. Cost: the watch delivers every write under the prefix (a
/// reserve's transaction, orders included, is one message): one JSON parse
/// per message and one per stock record changed.
class stock_feed {
 public:
  using executor_type = watcher::executor_type;

  stock_feed(watcher& w, std::string prefix, stock_cache& cache)
      : st_(std::make_shared<state>(w, std::move(prefix), cache)) {}
  stock_feed(const stock_feed&) = delete;
  stock_feed& operator=(const stock_feed&) = delete;
  ~stock_feed() { stop(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return st_->source.get_executor(); }

  /// The SKU of a stock record's key under `prefix` (etcd_store's encoding
  /// undone); nullopt for any other key.
  static std::optional<std::string> sku_of(std::string_view prefix, std::string_view key) {
    constexpr std::string_view tail = "/stock";
    if (key.size() <= prefix.size() + tail.size() || !key.starts_with(prefix) ||
        !key.ends_with(tail))
      return std::nullopt;
    const std::string_view encoded =
        key.substr(prefix.size(), key.size() - prefix.size() - tail.size());
    if (encoded.find('/') != std::string_view::npos) return std::nullopt;  // a deeper key
    std::string sku;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      if (encoded[i] != '%') {
        sku += encoded[i];
        continue;
      }
      if (i + 2 >= encoded.size()) return std::nullopt;
      const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int hi = hex(encoded[i + 1]);
      const int lo = hex(encoded[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      sku += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    return sku;
  }

  /// Creates the watch (from now on: entries the cache lacks are learnt from
  /// the next change, or from a `cached_store`'s own answers). -> (ec)
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_start(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), state::start(st_),
                                                               token);
  }

  void stop() {
    st_->stopped = true;
    st_->stream.cancel();
  }

  /// Changes of stock records applied.
  [[nodiscard]] std::uint64_t updates() const noexcept { return st_->updates; }
  /// Snapshots applied after a compaction.
  [[nodiscard]] std::uint64_t resyncs() const noexcept { return st_->resyncs; }
  /// Stock records that did not parse.
  [[nodiscard]] std::uint64_t bad_records() const noexcept { return st_->bad; }
  [[nodiscard]] const std::string& last_error() const noexcept { return st_->last_error; }

 private:
  struct state {
    state(watcher& w, std::string p, stock_cache& c) : source(w), prefix(std::move(p)), cache(c) {}
    watcher& source;
    std::string prefix;
    stock_cache& cache;
    watch_stream stream;
    bool stopped = false;
    std::uint64_t updates = 0;
    std::uint64_t resyncs = 0;
    std::uint64_t bad = 0;
    std::string last_error;

    void apply(const key_value& kv) {
      const auto sku = sku_of(prefix, kv.key);
      if (!sku) return;
      stock_level level;
      std::string message;
      if (!detail::decode_stock(kv.value, level, message)) {
        ++bad;
        last_error = "stock_feed: at '" + kv.key + "': " + message;
        return;
      }
      cache.update(*sku, level.remaining, kv.mod_revision);
      ++updates;
    }

    static boost::asio::awaitable<std::error_code> start(std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      watch_options wo;
      wo.prefix = true;
      auto [ec, stream] = co_await s->source.async_watch(
          s->prefix, wo, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return ec;
      s->stream = std::move(stream);
      boost::asio::co_spawn(s->source.get_executor(), follow(s), boost::asio::detached);
      co_return std::error_code{};
    }

    static boost::asio::awaitable<void> follow(std::shared_ptr<state> s) {
      while (!s->stopped) {
        auto [ec, r] =
            co_await s->stream.async_next(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec || s->stopped) co_return;
        if (r.resynced) {
          for (const auto& sku : s->cache.skus()) s->cache.invalidate(sku);
          for (const auto& kv : r.snapshot) s->apply(kv);
          ++s->resyncs;
          continue;
        }
        for (const auto& e : r.events) {
          if (e.type == event::kind::put) {
            s->apply(e.kv);
          } else if (const auto sku = sku_of(s->prefix, e.kv.key)) {
            s->cache.update(*sku, -1, e.kv.mod_revision);
          }
        }
      }
    }
  };

  std::shared_ptr<state> st_;
};

}  // namespace seckill::etcd
