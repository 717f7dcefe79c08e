#pragma once
/// @file
/// @brief An asynchronous Redis connection on Boost.Asio (auto-pipelining,
///        timeouts, cancellation, reconnection) and a small pool of them.
///
/// The connection life cycle:
///
/// - `async_connect` resolves and connects (bounded by `connect_timeout`),
///   then performs the handshake: `HELLO 3 [AUTH user password] [SETNAME
///   name]`, falling back to RESP2 (`AUTH`) when the server does not know
///   HELLO or refuses protocol 3, then `SELECT db` and the `setup` commands
///   (the store's `SCRIPT LOAD`). It completes with the first attempt's
///   result: `errc::connection_refused`, `errc::timed_out`,
///   `errc::auth_failed`, `errc::protocol_error` (not a Redis server on the
///   port) or `errc::server_error`; `last_error()` has the details.
/// - Every `async_exec` after that is queued; whatever is queued when the
///   socket is free goes out in one write (auto-pipelining), and replies are
///   matched to requests in order. Each request has a timeout
///   (`request_timeout` or its own) and honours per-operation cancellation:
///   a request still queued is dropped and never sent; a request already
///   written completes at once and its reply is discarded when it arrives.
///   Either way its memory goes at once: a request not yet written leaves
///   the write queue, one already written leaves only a placeholder of a
///   few bytes that counts the replies to drop (`pending()` shows them).
/// - A server that keeps the socket open but stops answering (a frozen
///   host, a lost route) is taken for dead after `dead_peer_timeout` of
///   silence while a reply is due; an idle connection PINGs after
///   `health_check_interval` so that this is found before a request needs
///   it. The connection then closes the socket and reconnects as below.
/// - When the connection is lost, every request written and not answered
///   fails with `errc::not_connected` and is never sent again (the server may
///   or may not have executed it: only the caller can tell whether a retry is
///   safe). Requests not yet written fail too, unless
///   `queue_while_reconnecting` is set. The connection then reconnects by
///   itself with capped exponential backoff and jitter, repeating the whole
///   handshake (so scripts are loaded again), until `close()`.
///
/// RESP3 push messages are counted and, unless `on_push` was given a
/// handler (what `redis::subscriber` does), dropped.
///
/// Messages (`last_error()`) never hold the configured password: every
/// occurrence is replaced by `***`, and the arguments a server echoes in an
/// error reply to the handshake are left out.

#include <seckill/backoff.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/detail/connection_impl.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>
#include <seckill/redis/url.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill::redis {

/// The reconnect pause: the library's one backoff policy (backoff.hpp).
using seckill::backoff_delay;

/// @brief One Redis connection: auto-pipelined requests, timeouts,
///        cancellation, reconnection (see the file comment).
///
/// Thread-safety: every member function may be called from any thread; the
/// connection's work runs on a strand of the executor it was given.
/// Completions run on the handler's associated executor (the strand when it
/// has none).
///
/// Cost: per `async_exec`, one block holding the request and its handler,
/// from the handler's associated allocator or, when it has none, from
/// blocks the connection keeps for reuse (a mutex, no allocation once warm);
/// the request's bytes copied (moved from a `request&&`; on the heap only
/// above `request::inline_bytes`); the replies' vector; no type-erased
/// handler or executor. Requests queued
/// while a write is under way share the next write, and the replies share
/// reads; a clock read per read and per write call, and a timer wake-up
/// every quarter of the shorter of `dead_peer_timeout` and
/// `health_check_interval` for the health check. A request that timed out
/// or was cancelled holds nothing once it completed but, when it was
/// written, a placeholder of about 32 bytes until its replies came (or the
/// connection was made again). The connection closes on destruction
/// (pending requests complete with `errc::operation_aborted`).
class connection {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws `seckill::error` (invalid_argument) when `validate(cfg)` refuses `cfg`.
  connection(const executor_type& ex, connection_config cfg)
      : impl_(std::make_shared<detail::connection_impl>(ex, checked(std::move(cfg)))) {
    impl_->set_unblocker(&connection::unblock);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { close(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return impl_->executor(); }
  [[nodiscard]] const connection_config& config() const noexcept { return impl_->config(); }
  [[nodiscard]] connection_state state() const noexcept { return impl_->state(); }
  /// Successful handshakes so far (1 after connect, +1 per reconnection).
  [[nodiscard]] std::uint64_t connect_count() const noexcept { return impl_->connects(); }
  /// The server's version as the last handshake read it (HELLO's
  /// `version`, or `INFO server` on RESP2 when `min_server_version` is set);
  /// 0.0.0 when unknown.
  [[nodiscard]] redis::server_version server_version() const { return impl_->version(); }
  /// True when the handshake settled on RESP3.
  [[nodiscard]] bool resp3() const noexcept { return impl_->resp3(); }
  /// Hands every RESP3 push (a subscription's message) to `h`, and every
  /// state change to `on_state`'s handler, on the connection's strand. Set
  /// both before `async_connect`; the handlers must not throw. For
  /// `redis::subscriber`, which puts its SUBSCRIBE in `connection_config::setup`.
  void on_push(std::function<void(const value&)> h) { impl_->set_push_hook(std::move(h)); }
  void on_state(std::function<void(connection_state)> h) { impl_->set_state_hook(std::move(h)); }
  /// RESP3 push messages received.
  [[nodiscard]] std::uint64_t push_count() const noexcept { return impl_->pushes(); }
  /// Times the server was taken for dead (`connection_config::dead_peer_timeout`).
  [[nodiscard]] std::uint64_t dead_peer_count() const noexcept { return impl_->dead_peers(); }
  /// What the connection holds for requests now (a snapshot of relaxed
  /// counters, each exact on its own): the write queue and the replies due.
  [[nodiscard]] pending_requests pending() const noexcept { return impl_->pending(); }
  /// The last failure, in words, with the value seen (server text, parser message).
  [[nodiscard]] std::string last_error() const { return impl_->last_error(); }

  /// Times the connection unblocked the server after a cancelled request
  /// (see `async_exec`).
  [[nodiscard]] std::uint64_t unblock_count() const noexcept { return impl_->unblocks(); }

  /// Connects and handshakes once; `void(std::error_code)`. After success the
  /// connection reconnects by itself when lost. Honours per-operation
  /// cancellation: the attempt stops, the operation completes with
  /// `errc::operation_aborted` and the connection is idle again (it may be
  /// connected anew).
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        initiate_connect{impl_}, token);
  }

  /// Sends every command of `req` and completes with their replies, in
  /// order: `void(std::error_code, std::vector<value>)`. Error replies are
  /// values (check `value::is_error()`); the error code is for transport
  /// failures: not_connected, timed_out, operation_aborted, protocol_error,
  /// message_too_large, nesting_too_deep. The request's bytes are copied
  /// before this returns; a `request&&` is kept instead.
  ///
  /// Per-operation cancellation (any type): a request not written yet is
  /// dropped unsent; one written completes at once and its reply is dropped
  /// when it comes. A blocking command that was written (BLPOP, XREAD BLOCK,
  /// WAIT ...) would keep the server from answering anything else on this
  /// connection, so once it is the oldest request in flight the connection
  /// sends `CLIENT UNBLOCK <id>` for itself on a short-lived connection of
  /// its own (same address and credentials; the user needs the permission),
  /// and the requests behind it go on. A timeout does not unblock: give a
  /// blocking command a `timeout` longer than its own.
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, CompletionToken&& token = CompletionToken()) {
    return async_exec(req, impl_->config().request_timeout, std::forward<CompletionToken>(token));
  }

  /// As above with this request's own timeout (0: none).
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        initiate_exec{impl_}, token, request(req), timeout);
  }

  /// As above, keeping the request's bytes instead of copying them.
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request&& req, CompletionToken&& token = CompletionToken()) {
    return async_exec(std::move(req), impl_->config().request_timeout,
                      std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request&& req, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        initiate_exec{impl_}, token, std::move(req), timeout);
  }

  /// Stops reconnecting, closes the socket and fails every pending request
  /// with `errc::operation_aborted`. Final.
  void close() { boost::asio::dispatch(impl_->strand(), boost::asio::append(&close_impl, impl_)); }

 private:
  using impl_ptr = std::shared_ptr<detail::connection_impl>;

  static void close_impl(const impl_ptr& impl) { impl->close(); }

  // On the strand: the handler, still of its own type, becomes the pending connect's.
  template <class Handler>
  static void start_connect(const impl_ptr& impl, Handler handler) {
    impl->start_connect(
        boost::asio::any_completion_handler<void(std::error_code)>(std::move(handler)));
  }

  static void enqueue(const impl_ptr& impl, std::shared_ptr<detail::exec_op> op,
                      std::chrono::milliseconds timeout) {
    impl->enqueue(std::move(op), timeout);
  }

  struct initiate_connect {
    impl_ptr impl;

    template <class Handler>
    void operator()(Handler&& handler) const {
      // The handler crosses to the strand as it is (appended, with everything
      // associated with it), and is type-erased there.
      boost::asio::dispatch(impl->strand(),
                            boost::asio::append(&connection::start_connect<std::decay_t<Handler>>,
                                                impl, std::forward<Handler>(handler)));
    }
  };

  // Where a request's block comes from: the handler's associated allocator
  // or, when it has none (or std::allocator, which composed operations
  // report for none), the connection's blocks kept for reuse.
  template <class Handler>
  static auto block_allocator(const Handler& handler, const impl_ptr& impl) {
    using reused = detail::request_allocator<void>;
    if constexpr (std::is_same_v<boost::asio::associated_allocator_t<Handler, reused>,
                                 std::allocator<void>>)
      return reused(impl->blocks());
    else
      return boost::asio::get_associated_allocator(handler, reused(impl->blocks()));
  }

  struct initiate_exec {
    impl_ptr impl;

    template <class Handler>
    void operator()(Handler&& handler, request req, std::chrono::milliseconds timeout) const {
      namespace asio = boost::asio;
      using handler_type = std::decay_t<Handler>;
      if (req.empty()) {
        asio::post(impl->executor(), asio::append(std::forward<Handler>(handler),
                                                  make_error_code(seckill::errc::invalid_argument),
                                                  std::vector<value>{}));
        return;
      }
      // The request and the handler in one block (see block_allocator).
      using op_type = detail::exec_op_for<handler_type, executor_type>;
      const auto alloc = block_allocator(handler, impl);
      using op_allocator = typename std::allocator_traits<
          std::decay_t<decltype(alloc)>>::template rebind_alloc<op_type>;
      auto slot = asio::get_associated_cancellation_slot(handler);
      std::shared_ptr<detail::exec_op> op = std::allocate_shared<op_type>(
          op_allocator(alloc), handler_type(std::forward<Handler>(handler)), impl->executor());
      op->expected = req.size();
      op->req = std::move(req);
      op->slot = slot;
      if (slot.is_connected()) {
        slot.assign([w = std::weak_ptr<detail::exec_op>(op),
                     wi = std::weak_ptr<detail::connection_impl>(impl)](asio::cancellation_type) {
          auto i = wi.lock();
          if (!i) return;
          // post, never inline: finishing clears the slot whose handler this is
          asio::post(i->strand(), [i, w] {
            if (auto o = w.lock()) i->cancel_op(o);
          });
        });
      }
      // Already on the strand (a completion that sends the next request):
      // enqueue at once. asio::dispatch would do the same, after asking the
      // type-erased executor under the strand whether it may block, an
      // answer Asio allocates.
      if (impl->strand().running_in_this_thread())
        connection::enqueue(impl, std::move(op), timeout);
      else
        asio::dispatch(impl->strand(),
                       asio::append(&connection::enqueue, impl, std::move(op), timeout));
    }
  };

  // The connection's unblocker (detail::connection_impl::maybe_unblock): a
  // connection of its own, same address and credentials, no setup.
  static void unblock(std::shared_ptr<detail::connection_impl> impl, std::int64_t client_id) {
    connection_config side = impl->config();
    side.setup = request();
    side.min_server_version = {};
    side.client_name.clear();
    side.reconnect = false;
    side.health_check_interval = std::chrono::milliseconds(0);
    boost::asio::co_spawn(impl->strand(), send_unblock(std::move(side), client_id, impl),
                          boost::asio::detached);
  }

  static boost::asio::awaitable<void> send_unblock(connection_config side, std::int64_t client_id,
                                                   std::weak_ptr<detail::connection_impl> owner) {
    constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    request req;
    req.push("CLIENT", "UNBLOCK", client_id);
    const auto ex = co_await boost::asio::this_coro::executor;
    {
      connection helper(ex, std::move(side));
      auto [ec] = co_await helper.async_connect(tuple);
      if (!ec) {
        auto [exec_ec, replies] = co_await helper.async_exec(req, tuple);
        (void)exec_ec;
        (void)replies;
      }
    }
    if (auto impl = owner.lock()) impl->unblock_done();  // (on its strand: spawned there)
  }

  static connection_config checked(connection_config cfg) {
    std::string message;
    if (validate(cfg, &message)) throw error(seckill::errc::invalid_argument, message);
    return cfg;
  }

  std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace seckill::redis

// The pool was declared here before it had a header of its own.
#include <seckill/redis/connection_pool.hpp>
