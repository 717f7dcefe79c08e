#pragma once
/// @file
/// @brief `watcher`: watches over etcd's gateway WebSocket (`GET /v3/watch`
///        upgraded). Several watches share one socket, each resumes from its
///        last revision + 1 after a disconnect or a member failure, compaction
///        is detected and resynchronised (range, then watch again), and the
///        has-leader requirement is sent so a member cut off from its leader
///        ends the stream instead of stalling it.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/watch_hub.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/etcd/watch_stream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace seckill::etcd {

/// @brief Owns one gateway WebSocket and the watches multiplexed over it.
///
/// Connects lazily to the client's current member, moves to the next one when
/// the socket breaks (the member died, was cut off from its leader, or stopped
/// answering pings), and re-creates every watch from its last delivered
/// revision + 1, so each revision reaches a watch exactly once, in order.
///
/// Thread-safety: like the client (one executor, no concurrent handlers);
/// destroy it on that executor. The client must outlive it. Cost: one socket,
/// one JSON parse per message.
class watcher {
 public:
  using executor_type = client::executor_type;

  explicit watcher(client& c, watcher_options opts = {})
      : hub_(std::make_shared<detail::watch_hub>(c, opts)) {}
  watcher(const watcher&) = delete;
  watcher& operator=(const watcher&) = delete;
  ~watcher() { hub_->stop(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return hub_->etcd.get_executor(); }
  [[nodiscard]] client& get_client() const noexcept { return hub_->etcd; }
  /// How many sockets were opened so far (1 + reconnections).
  [[nodiscard]] std::uint64_t connections() const noexcept { return hub_->connections; }
  /// How many watches are active on the socket.
  [[nodiscard]] std::size_t active() const noexcept { return hub_->watches.size(); }

  /// Creates a watch and completes once etcd confirmed it (or after the
  /// client's call timeout, `errc::timed_out`). -> (ec, watch_stream)
  template <boost::asio::completion_token_for<void(std::error_code, watch_stream)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_watch(std::string key, watch_options options,
                   CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, watch_stream)>(
        get_executor(), do_watch(hub_, std::move(key), std::move(options)), token);
  }

 private:
  friend class watch_stream;

  static boost::asio::awaitable<std::pair<std::error_code, watch_stream>> do_watch(
      std::shared_ptr<detail::watch_hub> h, std::string key, watch_options opts);

  std::shared_ptr<detail::watch_hub> hub_;
};

inline boost::asio::awaitable<std::pair<std::error_code, watch_stream>> watcher::do_watch(
    std::shared_ptr<detail::watch_hub> h, std::string key, watch_options opts) {
  co_await detail::honour_any_cancellation();
  if (h->stopped)
    co_return std::pair{make_error_code(seckill::errc::operation_aborted), watch_stream{}};
  auto w = std::make_shared<detail::watch_state>(h->etcd.get_executor());
  w->id = h->next_id++;
  w->range_end = opts.prefix ? prefix_end(key) : opts.range_end;
  w->key = std::move(key);
  w->next_rev = opts.start_revision;
  w->opts = std::move(opts);
  h->add(w);
  watch_stream stream(h, w);
  const auto deadline = std::chrono::steady_clock::now() + h->etcd.options().call_timeout;
  boost::asio::steady_timer timeout(h->etcd.get_executor(), deadline);
  timeout.async_wait([w](boost::system::error_code ec) {
    if (!ec) w->wake();
  });
  while (!w->created && !w->final_error && !w->user_cancelled) {
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return std::pair{make_error_code(seckill::errc::timed_out), watch_stream{}};
    }
    co_await w->notify.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    if (detail::is_cancelled(cs)) {
      co_return std::pair{make_error_code(seckill::errc::operation_aborted), watch_stream{}};
    }
  }
  if (w->final_error) co_return std::pair{w->final_error, watch_stream{}};
  co_return std::pair{std::error_code{}, std::move(stream)};
}

}  // namespace seckill::etcd
