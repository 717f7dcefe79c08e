#pragma once
/// @file
/// @brief What runs a `redis::connection` (connection.hpp tells the life
///        cycle): the handshake, the write queue and auto-pipelining, the
///        replies matched to requests in order, timeouts, cancellation, the
///        health check and reconnection. Users include connection.hpp.

#include <seckill/backoff.hpp>
#include <seckill/detail/tls_stream.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/detail/handshake.hpp>
#include <seckill/redis/error.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::redis::detail {

namespace asio = boost::asio;
using exec_signature = void(std::error_code, std::vector<value>);

// Memory for the requests whose handlers bring no allocator of their own:
// blocks of `block_size` bytes, up to `keep` of them kept for reuse, so that
// a steady flow of requests allocates nothing. Thread-safe (a mutex): a
// block is taken on the caller's thread and given back wherever the last
// reference to its request goes.
class request_blocks {
 public:
  static constexpr std::size_t block_size = 2048;
  static constexpr std::size_t keep = 64;

  request_blocks() { free_.reserve(keep); }
  request_blocks(const request_blocks&) = delete;
  request_blocks& operator=(const request_blocks&) = delete;
  ~request_blocks() {
    for (void* p : free_) ::operator delete(p);
  }

  void* take(std::size_t n) {
    if (n > block_size) return ::operator new(n);
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        void* const p = free_.back();
        free_.pop_back();
        return p;
      }
    }
    return ::operator new(block_size);
  }
  void give(void* p, std::size_t n) noexcept {
    if (n <= block_size) {
      std::lock_guard lock(mutex_);
      if (free_.size() < keep) {
        free_.push_back(p);  // (reserved: never allocates)
        return;
      }
    }
    ::operator delete(p);
  }

 private:
  std::mutex mutex_;
  std::vector<void*> free_;
};

// The allocator over a connection's request_blocks.
template <class T>
class request_allocator {
 public:
  using value_type = T;
  explicit request_allocator(std::shared_ptr<request_blocks> blocks) noexcept
      : blocks_(std::move(blocks)) {}
  template <class U>
  request_allocator(const request_allocator<U>& other) noexcept : blocks_(other.blocks()) {}

  T* allocate(std::size_t n) {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)  // (an over-aligned handler)
      return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignof(T)}));
    else
      return static_cast<T*>(blocks_->take(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      ::operator delete (p, std::align_val_t{alignof(T)});
    else
      blocks_->give(p, n * sizeof(T));
  }
  [[nodiscard]] const std::shared_ptr<request_blocks>& blocks() const noexcept { return blocks_; }
  template <class U>
  bool operator==(const request_allocator<U>& other) const noexcept {
    return blocks_ == other.blocks();
  }

 private:
  std::shared_ptr<request_blocks> blocks_;
};

// A request and what completes it. Written to by the strand only, once
// enqueued; `exec_op_for` holds the handler.
struct exec_op {
  request req;  // given back (release()) once written
  std::size_t expected = 0;
  std::vector<value> replies;
  asio::cancellation_slot slot;  // the caller's: cleared when the handler is called
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::uint64_t seq =
      0;  // its place among the requests written (see connection_impl::inflight_base_)
  bool written = false;
  bool finished = false;  // the handler was called; replies still due are discarded

  exec_op() = default;
  exec_op(const exec_op&) = delete;
  exec_op& operator=(const exec_op&) = delete;
  virtual ~exec_op() = default;
  // Calls the handler, once, on its associated executor: posted when `defer`,
  // else dispatched (inline when already there).
  virtual void complete(std::error_code ec, std::vector<value> replies, bool defer) = 0;
};

// The request of a handler of type `Handler`, whose type is kept (no
// type-erased handler or executor, which would allocate), with the work
// guard of its executor (`Fallback` when it has none) so that the executor's
// context keeps running until the handler is called.
template <class Handler, class Fallback>
class exec_op_for final : public exec_op {
 public:
  exec_op_for(Handler handler, const Fallback& fallback)
      : handler_(std::move(handler)), work_(asio::get_associated_executor(*handler_, fallback)) {}

  void complete(std::error_code ec, std::vector<value> replies, bool defer) override {
    if (!handler_) return;
    Handler h(std::move(*handler_));
    handler_.reset();
    const auto ex = work_.get_executor();
    if (defer)
      asio::post(ex, asio::append(std::move(h), ec, std::move(replies)));
    else
      asio::dispatch(ex, asio::append(std::move(h), ec, std::move(replies)));
    work_.reset();  // the completion is queued or done
  }

 private:
  std::optional<Handler> handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler, Fallback>> work_;
};

// A request written whose replies are (partly) due. `op` is null once its
// caller is gone (timed out, cancelled) and for the connection's own PING:
// then only the count of replies to drop is kept.
struct inflight_entry {
  std::shared_ptr<exec_op> op;
  std::size_t replies_due = 0;
  std::chrono::steady_clock::time_point written_at = std::chrono::steady_clock::time_point::max();
  bool unblock = false;  // its caller cancelled it: unblock the server once it is the oldest
};

class connection_impl : public std::enable_shared_from_this<connection_impl> {
 public:
  using clock = std::chrono::steady_clock;
  using strand_type = asio::strand<asio::any_io_executor>;
  /// Sends `CLIENT UNBLOCK <client id>` for the connection on a connection of
  /// its own, then calls `unblock_done()` on the strand (connection.hpp).
  using unblocker = void (*)(std::shared_ptr<connection_impl>, std::int64_t client_id);

  connection_impl(const asio::any_io_executor& ex, connection_config cfg)
      : strand_(asio::make_strand(ex)),
        executor_(strand_),
        cfg_(std::move(cfg)),
        socket_(strand_.get_inner_executor()),
        resolver_(strand_.get_inner_executor()),
        wake_(strand_.get_inner_executor()),
        deadline_timer_(strand_.get_inner_executor()),
        backoff_timer_(strand_.get_inner_executor()),
        parser_(cfg_.limits),
        rng_(std::random_device{}()) {
    rbuf_.resize(64u << 10);
#if SECKILL_HAS_TLS
    if (cfg_.tls) tls_ctx_ = seckill::detail::make_tls_client_context(*cfg_.tls);
#endif
  }

  [[nodiscard]] const strand_type& strand() const noexcept { return strand_; }
  /// The strand, type-erased once: copying it only counts a reference,
  /// where erasing the strand anew would allocate.
  [[nodiscard]] const asio::any_io_executor& executor() const noexcept { return executor_; }
  /// Where the requests of handlers without an allocator of their own live.
  [[nodiscard]] const std::shared_ptr<request_blocks>& blocks() const noexcept { return blocks_; }
  [[nodiscard]] const connection_config& config() const noexcept { return cfg_; }
  [[nodiscard]] connection_state state() const noexcept {
    return state_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t connects() const noexcept {
    return connects_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t pushes() const noexcept {
    return pushes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool resp3() const noexcept { return resp3_.load(std::memory_order_relaxed); }
  [[nodiscard]] server_version version() const {
    std::lock_guard lock(message_mutex_);
    return server_version_;
  }
  [[nodiscard]] std::uint64_t dead_peers() const noexcept {
    return dead_peers_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] pending_requests pending() const noexcept {
    pending_requests p;
    p.queued = queued_count_.load(std::memory_order_relaxed);
    p.queued_bytes = queued_bytes_pub_.load(std::memory_order_relaxed);
    p.in_flight = inflight_count_.load(std::memory_order_relaxed);
    p.discarding = discarding_pub_.load(std::memory_order_relaxed);
    return p;
  }
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(message_mutex_);
    return last_error_;
  }
  [[nodiscard]] std::uint64_t unblocks() const noexcept {
    return unblocks_.load(std::memory_order_relaxed);
  }
  void set_unblocker(unblocker u) noexcept { unblocker_ = u; }
  // For a subscriber: set before connecting; both run on the strand.
  void set_push_hook(std::function<void(const value&)> h) { push_hook_ = std::move(h); }
  void set_state_hook(std::function<void(connection_state)> h) { state_hook_ = std::move(h); }

  // ---- everything below runs on the strand

  void start_connect(asio::any_completion_handler<void(std::error_code)> h) {
    const auto s = state();
    if (s == connection_state::ready) {
      complete_connect(std::move(h), {}, true);
      return;
    }
    if (s != connection_state::idle) {
      set_error("async_connect while " + std::string(to_string(s)));
      complete_connect(
          std::move(h),
          make_error_code(s == connection_state::closed ? seckill::errc::not_connected
                                                        : seckill::errc::invalid_argument),
          true);
      return;
    }
    set_state(connection_state::connecting);
    connect_cancelled_ = false;
    // the type-erased handler's own slot, fed by the caller's
    if (auto slot = h.get_cancellation_slot(); slot.is_connected()) {
      slot.assign([w = weak_from_this()](asio::cancellation_type) {
        // post, never inline: completing clears the slot whose handler this is
        if (auto self = w.lock())
          asio::post(self->strand_, asio::append(&connection_impl::cancel_connect_of, self));
      });
    }
    connect_handler_.swap(h);  // (Asio 1.81's move assignment recurses: swap instead)
    asio::co_spawn(strand_, run(shared_from_this()), asio::detached);
  }

  // The first connect's cancellation: what it waits on is closed, so that
  // it completes with operation_aborted and the connection is idle again.
  static void cancel_connect_of(const std::shared_ptr<connection_impl>& self) {
    self->cancel_connect();
  }
  void cancel_connect() {
    if (!connect_handler_ || state() != connection_state::connecting) return;
    connect_cancelled_ = true;
    shutdown_socket();
    resolver_.cancel();
  }

  // The side connection that unblocked the server is done.
  void unblock_done() {
    unblocking_ = false;
    maybe_unblock();
  }

  void enqueue(std::shared_ptr<exec_op> op, std::chrono::milliseconds timeout) {
    if (op->finished) return;  // cancelled on its way here
    const auto s = state();
    if (s == connection_state::idle || s == connection_state::closed ||
        (s == connection_state::reconnecting && !cfg_.queue_while_reconnecting)) {
      finish(op, make_error_code(seckill::errc::not_connected), true);
      return;
    }
    if (timeout.count() > 0) {
      op->deadline = deadline_after(timeout);
      if (op->deadline != clock::time_point::max()) arm_deadline(op->deadline);
    }
    queued_bytes_ += op->req.payload().size();
    queued_.push_back(std::move(op));
    publish();
    if (writer_idle_ && s == connection_state::ready) {
      writer_idle_ = false;
      wake_.cancel();
    }
  }

  void cancel_op(const std::shared_ptr<exec_op>& op) {
    if (op->finished) return;
    forget(op, true);
    finish(op, make_error_code(seckill::errc::operation_aborted), false);
    publish();
    maybe_unblock();
  }

  void close() {
    if (state() == connection_state::closed) return;
    closed_ = true;
    set_state(connection_state::closed);
    shutdown_socket();
    resolver_.cancel();
    wake_.cancel();
    deadline_timer_.cancel();
    backoff_timer_.cancel();
    if (connect_timer_) connect_timer_->cancel();
    fail_all(make_error_code(seckill::errc::operation_aborted));
    if (connect_handler_) {
      auto h = std::move(connect_handler_);
      complete_connect(std::move(h), make_error_code(seckill::errc::operation_aborted), true);
    }
  }

 private:
  void set_state(connection_state s) noexcept {
    state_.store(s, std::memory_order_release);
    if (state_hook_) state_hook_(s);
  }

  // Every message goes through here, so none holds the password.
  void set_error(std::string message) {
    redact(message);
    std::lock_guard lock(message_mutex_);
    last_error_ = std::move(message);
  }

  void redact(std::string& text) const {
    const std::string& secret = cfg_.password;
    if (secret.empty()) return;
    constexpr std::string_view mask = "***";
    for (auto at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + mask.size()))
      text.replace(at, secret.size(), mask);
  }

  // A server's error text for a message. Redis echoes the arguments of a
  // command it does not know ("with args beginning with: ..."), cut at 128
  // bytes, which may cut a password short of what redact() recognises:
  // during the handshake, whose commands carry the password, they are left
  // out.
  std::string server_text(const value& v) const {
    std::string text = v.text;
    if (!cfg_.password.empty()) {
      constexpr std::string_view echo = "with args beginning with:";
      if (const auto at = text.find(echo); at != std::string::npos)
        text = text.substr(0, at) + "with arguments (not shown)";
    }
    return text;
  }

  static clock::time_point deadline_after(std::chrono::milliseconds timeout) {
    const auto now = clock::now();
    if (timeout >=
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now))
      return clock::time_point::max();  // as good as none
    return now + timeout;
  }

  // The figures pending() reads, from the strand's own counts.
  void publish() noexcept {
    queued_count_.store(queued_.size(), std::memory_order_relaxed);
    queued_bytes_pub_.store(queued_bytes_, std::memory_order_relaxed);
    inflight_count_.store(inflight_.size(), std::memory_order_relaxed);
    discarding_pub_.store(discarding_, std::memory_order_relaxed);
  }

  // Lets go of what the connection keeps for `op`, whose caller is gone
  // (call before finish(), which drops the payload): a request not written
  // leaves the write queue; one written becomes a placeholder that only
  // drops its replies. O(1) when written, a search of the queue otherwise.
  // `unblock`: the caller cancelled it, so the server is unblocked once it
  // is the oldest request in flight (maybe_unblock).
  void forget(const std::shared_ptr<exec_op>& op, bool unblock = false) {
    if (!op->written) {
      const auto it = std::find(queued_.begin(), queued_.end(), op);
      if (it == queued_.end()) return;  // still on its way to enqueue()
      queued_bytes_ -= op->req.payload().size();
      queued_.erase(it);
      return;
    }
    if (op->seq < inflight_base_ || op->seq - inflight_base_ >= inflight_.size()) return;
    auto& entry = inflight_[static_cast<std::size_t>(op->seq - inflight_base_)];
    if (entry.op != op) return;
    entry.op.reset();
    entry.unblock = unblock;
    ++discarding_;
  }

  // A blocking command (BLPOP, XREAD BLOCK, WAIT ...) whose caller cancelled
  // it would hold the connection until the server answers it, which may be
  // never: once it is the oldest request in flight and fully written, the
  // connection sends `CLIENT UNBLOCK <its id>` from a connection of its own
  // (the server then answers it as if it had timed out, and the reply is
  // dropped). One at a time; a no-op on the server for a command that does
  // not block. Needs the client id the handshake read (HELLO 3, CLIENT ID).
  void maybe_unblock() {
    if (unblocking_ || unblocker_ == nullptr || inflight_.empty() ||
        state() != connection_state::ready)
      return;
    inflight_entry& front = inflight_.front();
    if (front.op || !front.unblock || front.written_at == clock::time_point::max()) return;
    front.unblock = false;
    const std::int64_t id = client_id_.load(std::memory_order_relaxed);
    if (id <= 0) return;
    unblocking_ = true;
    unblocks_.fetch_add(1, std::memory_order_relaxed);
    unblocker_(shared_from_this(), id);
  }

  std::string endpoint_text() const { return cfg_.host + ":" + cfg_.port; }

  void complete_connect(asio::any_completion_handler<void(std::error_code)> h, std::error_code ec,
                        bool defer) {
    if (auto slot = h.get_cancellation_slot(); slot.is_connected()) slot.clear();
    // post/dispatch through the strand run the handler on its associated executor
    if (defer)
      asio::post(strand_, asio::append(std::move(h), ec));
    else
      asio::dispatch(strand_, asio::append(std::move(h), ec));
  }

  // Completes `op` and drops everything it held but the few fields that
  // name it.
  void finish(const std::shared_ptr<exec_op>& op, std::error_code ec, bool defer) {
    const bool first = !op->finished;
    op->finished = true;
    op->req.release();
    std::vector<value> replies;
    if (first && !ec) replies = std::move(op->replies);
    std::vector<value>().swap(op->replies);
    if (!first) return;
    if (op->slot.is_connected()) op->slot.clear();
    op->complete(ec, std::move(replies), defer);
  }

  // Fails every request queued or in flight. Collects first: a completion
  // may run inline and enqueue again.
  void fail_all(std::error_code ec) {
    std::vector<std::shared_ptr<exec_op>> ops;
    ops.reserve(queued_.size() + inflight_.size());
    for (auto& e : inflight_)
      if (e.op) ops.push_back(std::move(e.op));
    for (auto& o : queued_) ops.push_back(std::move(o));
    clear_inflight();
    queued_.clear();
    queued_bytes_ = 0;
    publish();
    for (auto& o : ops)
      if (!o->finished) finish(o, ec, false);
  }

  void fail_inflight(std::error_code ec) {
    std::vector<std::shared_ptr<exec_op>> ops;
    ops.reserve(inflight_.size());
    for (auto& e : inflight_)
      if (e.op) ops.push_back(std::move(e.op));
    clear_inflight();
    publish();
    for (auto& o : ops)
      if (!o->finished) finish(o, ec, false);
  }

  void clear_inflight() noexcept {
    inflight_.clear();
    inflight_base_ = next_seq_;
    discarding_ = 0;
  }

  // Removes the front entry and returns its op (null for a placeholder).
  std::shared_ptr<exec_op> pop_inflight() {
    auto op = std::move(inflight_.front().op);
    if (!op) --discarding_;
    inflight_.pop_front();
    ++inflight_base_;
    return op;
  }

  void arm_deadline(clock::time_point deadline) {
    if (deadline >= armed_until_) return;
    armed_until_ = deadline;
    deadline_timer_.expires_at(deadline);
    deadline_timer_.async_wait(
        asio::bind_executor(strand_, [w = weak_from_this()](boost::system::error_code ec) {
          if (ec) return;
          if (auto self = w.lock()) self->on_deadline();
        }));
  }

  // Times out every request whose deadline passed: out of the write queue
  // when not written, down to a placeholder when written.
  void on_deadline() {
    armed_until_ = clock::time_point::max();
    const auto now = clock::now();
    std::vector<std::shared_ptr<exec_op>> expired;
    auto next = clock::time_point::max();
    std::size_t unsent = 0;
    std::erase_if(queued_, [&](const std::shared_ptr<exec_op>& o) {
      if (o->finished || o->deadline <= now) {
        queued_bytes_ -= o->req.payload().size();
        if (!o->finished) {
          expired.push_back(o);
          ++unsent;
        }
        return true;
      }
      next = std::min(next, o->deadline);
      return false;
    });
    for (auto& e : inflight_) {
      if (!e.op) continue;
      if (e.op->finished || e.op->deadline <= now) {
        if (!e.op->finished) expired.push_back(std::move(e.op));
        e.op.reset();
        ++discarding_;
      } else {
        next = std::min(next, e.op->deadline);
      }
    }
    publish();
    if (!expired.empty()) {
      const std::size_t sent = expired.size() - unsent;
      set_error(expired.size() == 1
                    ? "request timed out after " +
                          std::string(sent ? "it was sent" : "waiting to be sent") + " to " +
                          endpoint_text()
                    : std::to_string(expired.size()) + " requests timed out (" +
                          std::to_string(unsent) + " waiting to be sent, " + std::to_string(sent) +
                          " after they were sent) to " + endpoint_text());
    }
    for (auto& o : expired) finish(o, make_error_code(seckill::errc::timed_out), false);
    if (next != clock::time_point::max()) arm_deadline(next);
  }

  void shutdown_socket() {
    boost::system::error_code ignored;
    auto& tcp = socket_.next_layer();
    if (tcp.is_open()) {
      tcp.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      tcp.close(ignored);
    }
  }

  // ---- coroutines

  // The connection's coroutines run on the strand, whose type they keep:
  // an executor type-erased anew for every operation would allocate.
  template <class T>
  using task = asio::awaitable<T, strand_type>;
  using awaitable_ec = task<std::error_code>;
  static constexpr asio::use_awaitable_t<strand_type> use_task{};

  static std::error_code io_error(const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted)
      return make_error_code(seckill::errc::operation_aborted);
    return make_error_code(seckill::errc::not_connected);
  }

  // Reads one complete reply during the handshake.
  task<std::pair<std::error_code, value>> read_reply() {
    for (;;) {
      if (rbegin_ < rend_) {
        std::error_code ec;
        rbegin_ += parser_.consume({rbuf_.data() + rbegin_, rend_ - rbegin_}, ec);
        if (ec) {
          set_error(endpoint_text() +
                    " sent a reply that is not valid RESP (is it a Redis server?): " +
                    parser_.error_message());
          co_return std::pair{ec, value{}};
        }
        if (parser_.done()) co_return std::pair{std::error_code{}, parser_.take()};
      }
      rbegin_ = rend_ = 0;
      auto [ec, n] =
          co_await socket_.async_read_some(asio::buffer(rbuf_), asio::as_tuple(use_task));
      if (ec) {
        if (auto tls = tls_error(ec)) co_return std::pair{tls, value{}};
        set_error("connection to " + endpoint_text() +
                  " lost during the handshake: " + ec.message());
        co_return std::pair{io_error(ec), value{}};
      }
      rend_ = n;
    }
  }

  task<std::pair<std::error_code, std::vector<value>>> roundtrip(const request& req) {
    std::vector<value> replies;
    auto [wec, wn] =
        co_await asio::async_write(socket_, asio::buffer(req.payload()), asio::as_tuple(use_task));
    (void)wn;
    if (wec) {
      if (auto tls = tls_error(wec)) co_return std::pair{tls, std::move(replies)};
      set_error("cannot write to " + endpoint_text() + ": " + wec.message());
      co_return std::pair{io_error(wec), std::move(replies)};
    }
    for (std::size_t i = 0; i < req.size(); ++i) {
      auto [ec, v] = co_await read_reply();
      if (ec) co_return std::pair{ec, std::move(replies)};
      replies.push_back(std::move(v));
    }
    co_return std::pair{std::error_code{}, std::move(replies)};
  }

  std::error_code auth_error(const value& v, std::string_view what) {
    if (is_permission_refusal(v)) {  // the ACL lacks a right: say which command
      set_error(std::string(what) + " refused by the ACL of " + endpoint_text() + ": " +
                server_text(v) + " (redis::store_acl_rules lists the store's rights)");
      return make_error_code(seckill::errc::permission_denied);
    }
    if (is_auth_refusal(v)) {
      set_error(std::string(what) + " refused by " + endpoint_text() + ": " + server_text(v));
      return make_error_code(seckill::errc::auth_failed);
    }
    set_error(std::string(what) + " failed on " + endpoint_text() + ": " + server_text(v));
    return make_error_code(seckill::errc::server_error);
  }

  // HELLO 3 (or the RESP2 prelude), the version check, then SELECT and the
  // setup commands (detail/handshake.hpp).
  awaitable_ec handshake() {
    bool resp3 = false;
    server_version version;
    std::int64_t client_id = 0;
    if (cfg_.protocol == 3) {
      const request hello = hello_request(cfg_);
      auto [ec, replies] = co_await roundtrip(hello);
      if (ec) co_return ec;
      const hello_answer answer = read_hello(replies.front());
      switch (answer.outcome) {
        case hello_answer::kind::resp3:
          resp3 = true;
          version = answer.version;
          client_id = answer.client_id;
          break;
        case hello_answer::kind::fallback:
          break;
        case hello_answer::kind::refused:
          co_return auth_error(replies.front(), "HELLO 3");
        case hello_answer::kind::unexpected:
          set_error("unexpected reply to HELLO 3 from " + endpoint_text() + ": " +
                    std::string(to_string(replies.front().type)));
          co_return make_error_code(seckill::errc::protocol_error);
      }
    }
    if (!resp3) {
      const resp2_prelude prelude = make_resp2_prelude(cfg_);
      auto [ec, replies] = co_await roundtrip(prelude.commands);
      if (ec) co_return ec;
      for (std::size_t i = 0; i < replies.size(); ++i) {
        const value& v = replies[i];
        if (i == prelude.client_id_at) {  // informational: an old server or an ACL may refuse it
          if (v.type == resp_type::integer) client_id = v.integer;
        } else if (i == prelude.info_at) {
          if (v.is_string()) {
            if (const auto parsed = server_version_from_info(v.text)) version = *parsed;
          }
        } else if (v.is_error()) {
          co_return auth_error(v, "the handshake's " + command_name(prelude.commands.payload(), i));
        }
      }
    }
    {
      std::lock_guard lock(message_mutex_);
      server_version_ = version;
    }
    client_id_.store(client_id, std::memory_order_relaxed);
    std::string too_old;
    if (auto ec =
            check_server_version(version, cfg_.min_server_version, endpoint_text(), too_old)) {
      set_error(std::move(too_old));
      co_return ec;
    }
    request rest;
    if (cfg_.database != 0) rest.push("SELECT", cfg_.database);
    rest.append(cfg_.setup);
    if (!rest.empty()) {
      auto [ec, replies] = co_await roundtrip(rest);
      if (ec) co_return ec;
      for (std::size_t i = 0; i < replies.size(); ++i) {
        if (replies[i].is_error())
          co_return auth_error(replies[i], "the handshake's " + command_name(rest.payload(), i));
      }
    }
    resp3_.store(resp3, std::memory_order_relaxed);
    co_return std::error_code{};
  }

  // A TLS connection's failure during its handshake or first exchange (the
  // server's refusal of a client certificate comes with the first reply,
  // in TLS 1.3), in words (detail/tls_context.hpp); empty for a plain
  // connection and for errors that are not TLS's.
  std::error_code tls_error([[maybe_unused]] const boost::system::error_code& ec) {
#if SECKILL_HAS_TLS
    auto* tls = socket_.tls();
    if (tls == nullptr || ec == asio::error::operation_aborted) return {};
    const bool alert = ec.category() == asio::error::get_ssl_category();
    const bool closed = ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
                        ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
    // A close without an alert is taken for the refusal of a client
    // certificate only when none was offered; otherwise it is an I/O
    // failure (a server restarting, maxclients), which the caller may retry.
    if (!alert && !(closed && cfg_.tls->cert_file.empty())) return {};
    std::string message;
    const auto e = seckill::detail::tls_failure(ec, tls->native_handle(), *cfg_.tls, cfg_.host,
                                                endpoint_text(), message, true);
    set_error(std::move(message));
    return e;
#else
    return {};
#endif
  }

#if SECKILL_HAS_TLS
  // The TLS handshake on the connected socket: SNI and the name check, then
  // the certificate verification (detail/tls_context.hpp maps its failures).
  awaitable_ec tls_handshake() {
    auto& tls = socket_.start_tls(*tls_ctx_);
    if (!seckill::detail::prepare_tls_client(tls.native_handle(), *cfg_.tls, cfg_.host)) {
      ERR_clear_error();
      set_error("TLS to " + endpoint_text() + ": OpenSSL refused the server name '" +
                seckill::detail::tls_expected_name(*cfg_.tls, cfg_.host) + "'");
      co_return make_error_code(tls_errc::handshake_failed);
    }
    tls_handshaking_ = true;
    auto [ec] =
        co_await tls.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(use_task));
    if (!ec) {
      tls_handshaking_ = false;  // (kept on failure: the timeout's message reads it)
      co_return std::error_code{};
    }
    if (ec == asio::error::operation_aborted)
      co_return make_error_code(seckill::errc::operation_aborted);
    std::string message;
    const auto e = seckill::detail::tls_failure(ec, tls.native_handle(), *cfg_.tls, cfg_.host,
                                                endpoint_text(), message);
    set_error(std::move(message));
    co_return e;
  }
#endif

  awaitable_ec connect_once() {
    tls_handshaking_ = false;
    shutdown_socket();
    socket_.use_plain();  // (no operation is pending: the loops ended)
    parser_.reset();
    rbegin_ = rend_ = 0;
    auto [rec, endpoints] =
        co_await resolver_.async_resolve(cfg_.host, cfg_.port, asio::as_tuple(use_task));
    if (rec) {
      set_error("cannot resolve " + endpoint_text() + ": " + rec.message());
      co_return make_error_code(seckill::errc::connection_refused);
    }
    auto [cec, ep] =
        co_await asio::async_connect(socket_.next_layer(), endpoints, asio::as_tuple(use_task));
    (void)ep;
    if (cec) {
      set_error("cannot connect to " + endpoint_text() + ": " + cec.message());
      co_return cec == asio::error::operation_aborted
          ? make_error_code(seckill::errc::operation_aborted)
          : make_error_code(seckill::errc::connection_refused);
    }
    boost::system::error_code ignored;
    socket_.next_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
    socket_.next_layer().set_option(asio::socket_base::keep_alive(true), ignored);
#if SECKILL_HAS_TLS
    if (tls_ctx_) {
      if (auto ec = co_await tls_handshake()) co_return ec;
    }
#endif
    co_return co_await handshake();
  }

  awaitable_ec connect_with_timeout() {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(strand_.get_inner_executor());
    connect_timer_ = &timer;
    timer.expires_after(cfg_.connect_timeout);
    auto result = co_await (connect_once() || timer.async_wait(asio::as_tuple(use_task)));
    connect_timer_ = nullptr;
    if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
    if (result.index() == 1) {
      shutdown_socket();
      // (a plain port reads a TLS hello as an unfinished inline command: silence)
      set_error("connecting to " + endpoint_text() + " took longer than connect_timeout " +
                std::to_string(cfg_.connect_timeout.count()) + " ms" +
                (tls_handshaking_ ? " in the TLS handshake (is " + cfg_.port + " a TLS port?)"
                                  : std::string()));
      co_return make_error_code(seckill::errc::timed_out);
    }
    co_return std::get<0>(result);
  }

  std::error_code on_reply(value v) {
    if (v.type == resp_type::push) {
      pushes_.fetch_add(1, std::memory_order_relaxed);
      if (push_hook_) push_hook_(v);
      return {};
    }
    if (inflight_.empty()) {
      set_error(endpoint_text() + " sent a reply to no request");
      return make_error_code(seckill::errc::protocol_error);
    }
    auto& front = inflight_.front();
    if (front.op && !front.op->finished) front.op->replies.push_back(std::move(v));
    if (--front.replies_due == 0) {
      auto op = pop_inflight();
      publish();
      if (op && !op->finished) finish(op, {}, false);
      maybe_unblock();
    }
    return {};
  }

  awaitable_ec read_loop() {
    for (;;) {
      while (rbegin_ < rend_) {
        std::error_code ec;
        rbegin_ += parser_.consume({rbuf_.data() + rbegin_, rend_ - rbegin_}, ec);
        if (ec) {
          set_error(endpoint_text() + " sent an invalid reply: " + parser_.error_message());
          co_return ec;
        }
        if (parser_.done()) {
          if (auto e = on_reply(parser_.take())) co_return e;
          if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
          // Requests issued by the completions just run go out before the
          // rest of this read's replies are handled: the server starts on them
          // instead of idling until the whole batch is done.
          if (cfg_.early_write_threshold != 0 && queued_.size() >= cfg_.early_write_threshold &&
              rbegin_ < rend_) {
            co_await asio::post(strand_, use_task);
            if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
          }
        }
      }
      rbegin_ = rend_ = 0;
      auto [ec, n] =
          co_await socket_.async_read_some(asio::buffer(rbuf_), asio::as_tuple(use_task));
      if (ec) {
        // (aborted: closed, or another loop ended the connection and said why)
        if (ec != asio::error::operation_aborted)
          set_error("connection to " + endpoint_text() + " lost: " + ec.message());
        co_return io_error(ec);
      }
      last_read_ = clock::now();
      rend_ = n;
    }
  }

  awaitable_ec write_loop() {
    static constexpr std::string_view ping = "*1\r\n$4\r\nPING\r\n";
    for (;;) {
      if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
      wbuf_.clear();
      std::size_t batch = 0;
      if (ping_due_) {  // the health check's, answered and dropped like a cancelled request's
        ping_due_ = false;
        wbuf_ += ping;
        inflight_.push_back({nullptr, 1});
        ++next_seq_;
        ++discarding_;
        ++batch;
      }
      while (!queued_.empty() && wbuf_.size() < cfg_.max_write_batch) {
        auto op = std::move(queued_.front());
        queued_.pop_front();
        queued_bytes_ -= op->req.payload().size();
        if (op->finished) continue;
        wbuf_ += op->req.payload();
        op->written = true;
        op->req.release();
        op->seq = next_seq_++;
        const std::size_t due = op->expected;
        inflight_.push_back({std::move(op), due});
        ++batch;
      }
      publish();
      if (wbuf_.empty()) {
        writer_idle_ = true;
        wake_.expires_at(clock::time_point::max());
        co_await wake_.async_wait(asio::as_tuple(use_task));
        writer_idle_ = false;
        const auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
          co_return make_error_code(seckill::errc::operation_aborted);
        continue;
      }
      // written piece by piece, so that the health check sees a write the
      // server does not take (write_progress_)
      writing_ = true;
      write_progress_ = clock::now();
      for (std::size_t done = 0; done < wbuf_.size();) {
        auto [ec, n] = co_await socket_.async_write_some(
            asio::buffer(wbuf_.data() + done, wbuf_.size() - done), asio::as_tuple(use_task));
        if (ec) {
          writing_ = false;
          if (ec != asio::error::operation_aborted)
            set_error("cannot write to " + endpoint_text() + ": " + ec.message());
          co_return io_error(ec);
        }
        done += n;
        write_progress_ = clock::now();
      }
      writing_ = false;
      // the replies of this batch are due from now (some may have come
      // already: the batch's entries still here are the last ones)
      const std::size_t here = std::min(batch, inflight_.size());
      for (auto it = inflight_.end() - static_cast<std::ptrdiff_t>(here); it != inflight_.end();
           ++it)
        it->written_at = write_progress_;
      maybe_unblock();
    }
  }

  // Takes a silent server for dead (see connection_config::dead_peer_timeout)
  // and sends the idle connection's health PING. Wakes at least four times
  // per the shorter of the two periods.
  awaitable_ec health_loop() {
    const auto dead = std::chrono::duration_cast<clock::duration>(cfg_.dead_peer_timeout);
    const auto every = std::chrono::duration_cast<clock::duration>(cfg_.health_check_interval);
    auto tick = clock::duration::max();
    if (dead.count() > 0) tick = dead / 4;
    if (every.count() > 0) tick = std::min(tick, every / 4);
    if (tick != clock::duration::max())
      tick = std::max<clock::duration>(tick, std::chrono::milliseconds(1));
    asio::steady_timer timer(strand_.get_inner_executor());
    for (;;) {
      const auto now = clock::now();
      auto wake = tick == clock::duration::max() ? clock::time_point::max() : now + tick;
      if (dead.count() > 0) {
        if (writing_ && now - write_progress_ >= dead) {
          set_error(endpoint_text() + " took no byte of a write of " +
                    std::to_string(wbuf_.size()) + " bytes for " +
                    std::to_string(to_ms(now - write_progress_)) + " ms (dead_peer_timeout " +
                    std::to_string(cfg_.dead_peer_timeout.count()) +
                    " ms): taken for dead; the connection is made again");
          dead_peers_.fetch_add(1, std::memory_order_relaxed);
          co_return make_error_code(seckill::errc::not_connected);
        }
        if (!inflight_.empty() && inflight_.front().written_at != clock::time_point::max()) {
          const auto since = std::max(last_read_, inflight_.front().written_at);
          if (now - since >= dead) {
            set_error(endpoint_text() + " sent nothing for " + std::to_string(to_ms(now - since)) +
                      " ms with " + std::to_string(inflight_.size()) +
                      " requests awaiting replies (dead_peer_timeout " +
                      std::to_string(cfg_.dead_peer_timeout.count()) +
                      " ms): taken for dead; the connection is made again");
            dead_peers_.fetch_add(1, std::memory_order_relaxed);
            co_return make_error_code(seckill::errc::not_connected);
          }
          wake = std::min(wake, since + dead);
        }
      }
      if (every.count() > 0 && inflight_.empty() && queued_.empty() && !writing_ && !ping_due_) {
        if (now - last_read_ >= every) {
          ping_due_ = true;
          if (writer_idle_) {
            writer_idle_ = false;
            wake_.cancel();
          }
        } else {
          wake = std::min(wake, last_read_ + every);
        }
      }
      timer.expires_at(wake);
      co_await timer.async_wait(asio::as_tuple(use_task));
      if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
      const auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none)
        co_return make_error_code(seckill::errc::operation_aborted);
    }
  }

  static std::int64_t to_ms(clock::duration d) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }

  task<void> run(std::shared_ptr<connection_impl> self) {
    using namespace asio::experimental::awaitable_operators;
    unsigned attempt = 0;
    for (;;) {
      std::error_code ec = make_error_code(seckill::errc::not_connected);
      try {
        ec = co_await connect_with_timeout();
      } catch (const std::exception& e) {
        shutdown_socket();
        set_error(std::string("connect failed: ") + e.what());
      }
      if (closed_) co_return;
      if (connect_handler_) {  // the first attempt: its result is async_connect's
        auto h = std::move(connect_handler_);
        if (connect_cancelled_) {
          connect_cancelled_ = false;
          ec = make_error_code(seckill::errc::operation_aborted);
          set_error("connecting to " + endpoint_text() + " was cancelled");
        }
        if (ec) {
          shutdown_socket();
          set_state(connection_state::idle);
          fail_all(ec);
          complete_connect(std::move(h), ec, false);
          co_return;
        }
        set_state(connection_state::ready);
        connects_.fetch_add(1, std::memory_order_relaxed);
        complete_connect(std::move(h), {}, false);
      } else if (!ec) {
        set_state(connection_state::ready);
        connects_.fetch_add(1, std::memory_order_relaxed);
      }
      if (!ec) {
        attempt = 0;
        writer_idle_ = false;
        writing_ = false;
        ping_due_ = false;
        last_read_ = clock::now();
        std::error_code lost = make_error_code(seckill::errc::not_connected);
        try {
          auto which = co_await (read_loop() || write_loop() || health_loop());
          lost = std::visit([](std::error_code e) { return e; }, which);
        } catch (const std::exception& e) {
          set_error(std::string("connection loop failed: ") + e.what());
        }
        if (closed_) co_return;
        shutdown_socket();
        set_state(connection_state::reconnecting);
        // A reply that could not be parsed fails its request with the parser's
        // error; every other request in flight was merely cut off.
        if (lost == seckill::errc::protocol_error || lost == seckill::errc::message_too_large ||
            lost == errc::nesting_too_deep) {
          if (!inflight_.empty()) {
            auto front = pop_inflight();
            if (front && !front->finished) finish(front, lost, false);
          }
        }
        fail_inflight(make_error_code(seckill::errc::not_connected));
        if (!cfg_.queue_while_reconnecting) fail_all(make_error_code(seckill::errc::not_connected));
        if (!cfg_.reconnect) {
          set_state(connection_state::idle);
          fail_all(make_error_code(seckill::errc::not_connected));
          co_return;
        }
        if (closed_) co_return;
      }
      std::uniform_real_distribution<double> jitter(0.0, 1.0);
      backoff_timer_.expires_after(backoff_delay(attempt++, cfg_.reconnect_initial_delay,
                                                 cfg_.reconnect_max_delay, jitter(rng_)));
      co_await backoff_timer_.async_wait(asio::as_tuple(use_task));
      if (closed_) co_return;
    }
    (void)self;
  }

  strand_type strand_;
  asio::any_io_executor executor_;  // strand_
  std::shared_ptr<request_blocks> blocks_ = std::make_shared<request_blocks>();
  connection_config cfg_;
  // The TCP socket, under TLS when cfg_.tls is set (one branch per read and
  // write; no TLS code at all without SECKILL_HAS_TLS).
  seckill::detail::maybe_tls_stream<asio::ip::tcp::socket> socket_;
#if SECKILL_HAS_TLS
  std::shared_ptr<asio::ssl::context> tls_ctx_;  // made once, from cfg_.tls
#endif
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer wake_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer* connect_timer_ = nullptr;
  clock::time_point armed_until_ = clock::time_point::max();
  parser parser_;
  std::vector<char> rbuf_;
  std::size_t rbegin_ = 0;
  std::size_t rend_ = 0;
  std::string wbuf_;
  std::deque<std::shared_ptr<exec_op>> queued_;
  std::size_t queued_bytes_ = 0;  // payload bytes in queued_
  std::deque<inflight_entry> inflight_;
  std::uint64_t next_seq_ = 0;          // the seq the next request written gets
  std::uint64_t inflight_base_ = 0;     // the seq of inflight_.front()
  std::size_t discarding_ = 0;          // entries of inflight_ without an op
  clock::time_point last_read_{};       // the last read that brought bytes
  clock::time_point write_progress_{};  // the last write that took bytes (or the write's start)
  bool writing_ = false;                // a write is under way
  bool ping_due_ = false;               // the health check wants a PING written
  asio::any_completion_handler<void(std::error_code)> connect_handler_;
  std::minstd_rand rng_;
  bool writer_idle_ = false;
  bool closed_ = false;
  bool connect_cancelled_ = false;  // the first connect's caller cancelled it
  bool tls_handshaking_ = false;    // connect_once waits on the TLS handshake
  bool unblocking_ = false;         // a CLIENT UNBLOCK is under way
  unblocker unblocker_ = nullptr;
  std::function<void(const value&)> push_hook_;
  std::function<void(connection_state)> state_hook_;
  std::atomic<connection_state> state_{connection_state::idle};
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> pushes_{0};
  std::atomic<std::uint64_t> dead_peers_{0};
  std::atomic<std::size_t> queued_count_{0};
  std::atomic<std::size_t> queued_bytes_pub_{0};
  std::atomic<std::size_t> inflight_count_{0};
  std::atomic<std::size_t> discarding_pub_{0};
  std::atomic<bool> resp3_{false};
  server_version server_version_;  // guarded by message_mutex_
  std::atomic<std::int64_t> client_id_{0};
  std::atomic<std::uint64_t> unblocks_{0};
  mutable std::mutex message_mutex_;
  std::string last_error_;
};

}  // namespace seckill::redis::detail
