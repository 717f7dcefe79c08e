#pragma once
/// @file
/// @brief `watch_stream`: one watch of a `watcher`, pulled one response at a
///        time.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/watch_hub.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/types.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <memory>
#include <system_error>
#include <utility>

namespace seckill::etcd {

class watcher;

/// @brief One watch of a `watcher`: a pull stream of responses. Move-only;
///        destroying it cancels the watch.
///
/// Thread-safety: use on the watcher's executor. Cost: a queue of the
/// responses not yet taken.
class watch_stream {
 public:
  using executor_type = boost::asio::any_io_executor;

  watch_stream() = default;
  watch_stream(watch_stream&&) noexcept = default;
  watch_stream& operator=(watch_stream&& other) noexcept {
    if (this != &other) {
      cancel();
      hub_ = std::move(other.hub_);
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~watch_stream() { cancel(); }

  /// The watcher's executor (an empty one when the stream is not valid).
  [[nodiscard]] executor_type get_executor() const noexcept {
    return state_ ? state_->notify.get_executor() : executor_type{};
  }
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// The revision the watch resumes from after a reconnection.
  [[nodiscard]] std::int64_t next_revision() const noexcept {
    return state_ ? state_->next_rev : 0;
  }
  /// The watch id etcd knows it by now (0 when invalid). It changes when the
  /// watch is created again: after a reconnect and after a compaction resync
  /// (etcd 3.4 refuses to reuse a cancelled id).
  [[nodiscard]] std::int64_t id() const noexcept { return state_ ? state_->id : 0; }

  /// The next response, waiting for it. Errors: `errc::operation_aborted`
  /// (cancelled), `errc::compacted` (without resync), `errc::server_error`
  /// (etcd cancelled the watch). -> (ec, watch_response)
  template <boost::asio::completion_token_for<void(std::error_code, watch_response)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, watch_response)>(get_executor(),
                                                                               next(state_), token);
  }

  /// Stops the watch; a pending async_next completes with operation_aborted.
  void cancel() {
    if (!state_) return;
    if (auto h = hub_.lock()) h->cancel(state_);
    state_->user_cancelled = true;
    state_->wake();
  }

 private:
  friend class watcher;
  watch_stream(std::weak_ptr<detail::watch_hub> h, std::shared_ptr<detail::watch_state> w)
      : hub_(std::move(h)), state_(std::move(w)) {}

  static boost::asio::awaitable<std::pair<std::error_code, watch_response>> next(
      std::shared_ptr<detail::watch_state> w) {
    co_await detail::honour_any_cancellation();
    if (!w) co_return std::pair{make_error_code(seckill::errc::invalid_argument), watch_response{}};
    while (w->queue.empty()) {
      if (w->final_error || w->user_cancelled) {
        co_return std::pair{
            w->final_error ? w->final_error : make_error_code(seckill::errc::operation_aborted),
            watch_response{}};
      }
      co_await w->notify.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      const boost::asio::cancellation_state cs =
          co_await boost::asio::this_coro::cancellation_state;
      if (detail::is_cancelled(cs)) {
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), watch_response{}};
      }
    }
    auto r = std::move(w->queue.front());
    w->queue.pop_front();
    co_return std::pair{std::error_code{}, std::move(r)};
  }

  std::weak_ptr<detail::watch_hub> hub_;
  std::shared_ptr<detail::watch_state> state_;
};

}  // namespace seckill::etcd
