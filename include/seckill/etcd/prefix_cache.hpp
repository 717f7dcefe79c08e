#pragma once
/// @file
/// @brief `prefix_cache`: a local copy of every key under a prefix, kept
///        current by a watch.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/etcd/watcher.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace seckill::etcd {

/// @brief A local copy of every key under a prefix, kept current by a watch
///        (the inventory hot update: read stock settings without a round trip).
///
/// `async_start` ranges the prefix and watches from the next revision; a
/// compaction that the watch cannot bridge is resynchronised (the whole copy
/// replaced by a fresh range). Reads are local. Thread-safety: use on the
/// client's executor. Cost: the keys and values in memory; one watch.
class prefix_cache {
 public:
  using executor_type = watcher::executor_type;
  using change_handler = std::function<void(const event&)>;

  prefix_cache(watcher& w, std::string prefix)
      : st_(std::make_shared<state>(w, std::move(prefix))) {}
  prefix_cache(const prefix_cache&) = delete;
  prefix_cache& operator=(const prefix_cache&) = delete;
  ~prefix_cache() { stop(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return st_->source.get_executor(); }

  /// Loads the prefix and starts following it. -> (ec, revision loaded)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_start(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::start(st_), token);
  }

  /// Completes once the copy has caught up with `revision`. -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_revision(std::int64_t revision, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::wait_revision(st_, revision), token);
  }

  [[nodiscard]] std::optional<key_value> get(const std::string& key) const {
    const auto it = st_->items.find(key);
    if (it == st_->items.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] const std::map<std::string, key_value>& items() const noexcept {
    return st_->items;
  }
  /// The revision of the newest change applied (or of the last full load).
  [[nodiscard]] std::int64_t revision() const noexcept { return st_->revision; }
  [[nodiscard]] std::uint64_t resyncs() const noexcept { return st_->resyncs; }
  void on_change(change_handler h) { st_->on_change = std::move(h); }
  void on_resync(std::function<void()> h) { st_->on_resync = std::move(h); }

  void stop() {
    st_->stopped = true;
    st_->stream.cancel();
    st_->wake();
  }

 private:
  struct state {
    state(watcher& w, std::string p) : source(w), prefix(std::move(p)), notify(w.get_executor()) {
      notify.expires_at(std::chrono::steady_clock::time_point::max());
    }
    watcher& source;
    std::string prefix;
    std::map<std::string, key_value> items;
    std::int64_t revision = 0;
    std::uint64_t resyncs = 0;
    bool stopped = false;
    watch_stream stream;
    boost::asio::steady_timer notify;
    change_handler on_change;
    std::function<void()> on_resync;

    void wake() {
      notify.cancel();
      notify.expires_at(std::chrono::steady_clock::time_point::max());
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> start(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      range_options o;
      o.prefix = true;
      auto [ec, r] = co_await s->source.get_client().async_range(
          s->prefix, o, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return std::pair{ec, std::int64_t{0}};
      s->items.clear();
      for (auto& kv : r.kvs) s->items[kv.key] = std::move(kv);
      s->revision = r.header.revision;
      watch_options wo;
      wo.prefix = true;
      wo.start_revision = r.header.revision + 1;
      auto [wec, stream] = co_await s->source.async_watch(
          s->prefix, wo, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (wec) co_return std::pair{wec, std::int64_t{0}};
      s->stream = std::move(stream);
      boost::asio::co_spawn(s->source.get_executor(), follow(s), boost::asio::detached);
      s->wake();
      co_return std::pair{std::error_code{}, s->revision};
    }

    static boost::asio::awaitable<void> follow(std::shared_ptr<state> s) {
      while (!s->stopped) {
        auto [ec, r] =
            co_await s->stream.async_next(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec || s->stopped) co_return;
        if (r.resynced) {
          s->items.clear();
          for (auto& kv : r.snapshot) s->items[kv.key] = std::move(kv);
          s->revision = r.revision;
          ++s->resyncs;
          if (s->on_resync) s->on_resync();
        } else {
          for (const auto& e : r.events) {
            if (e.type == event::kind::put) {
              s->items[e.kv.key] = e.kv;
            } else {
              s->items.erase(e.kv.key);
            }
            s->revision = std::max(s->revision, e.kv.mod_revision);
            if (s->on_change) s->on_change(e);
          }
        }
        s->wake();
      }
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> wait_revision(
        std::shared_ptr<state> s, std::int64_t rev) {
      co_await detail::honour_any_cancellation();
      while (s->revision < rev) {
        if (s->stopped)
          co_return std::pair{make_error_code(seckill::errc::operation_aborted), s->revision};
        co_await s->notify.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        const boost::asio::cancellation_state cs =
            co_await boost::asio::this_coro::cancellation_state;
        if (detail::is_cancelled(cs)) {
          co_return std::pair{make_error_code(seckill::errc::operation_aborted), s->revision};
        }
      }
      co_return std::pair{std::error_code{}, s->revision};
    }
  };

  std::shared_ptr<state> st_;
};

}  // namespace seckill::etcd
