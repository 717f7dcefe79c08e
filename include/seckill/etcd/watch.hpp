#pragma once
/// @file
/// @brief Watches over etcd's gateway WebSocket (`GET /v3/watch` upgraded):
///        several watches share one socket, each resumes from its last
///        revision + 1 after a disconnect or a member failure, compaction is
///        detected and resynchronised (range, then watch again), and the
///        has-leader requirement is sent so a member cut off from its leader
///        ends the stream instead of stalling it. Also a watch-driven local
///        cache of a prefix (`prefix_cache`).

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/codec.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief What to watch and from where.
struct watch_options {
  std::string range_end{};  ///< empty: the single key (or the prefix when `prefix`)
  bool prefix = false;
  std::int64_t start_revision = 0;  ///< 0: changes after the watch is created
  bool prev_kv = false;
  bool progress_notify = false;
  /// After a compaction of the revision the watch needs: range the key (or
  /// prefix) at the newest revision, deliver it as a `resynced` snapshot and
  /// watch on from there. Otherwise the watch ends with `errc::compacted`.
  bool resync_on_compaction = true;
};

/// @brief One delivery of a watch: events in revision order, or a snapshot
///        after a resynchronisation.
struct watch_response {
  std::int64_t revision = 0;  ///< the header revision of the message
  std::vector<event> events;
  bool resynced = false;            ///< `snapshot` replaces everything seen so far
  std::int64_t compact_revision = 0;  ///< set when a compaction was detected
  std::vector<key_value> snapshot;  ///< the watched keys at `revision` (resynced only)
};

/// @brief Settings of a `watcher`.
struct watcher_options {
  std::chrono::milliseconds reconnect_interval{100};  ///< pause between reconnection attempts
  /// No frame for this long (pings included) ends the socket: Beast pings at
  /// half of it, the gateway answers pongs.
  std::chrono::milliseconds idle_timeout{3000};
  std::chrono::milliseconds handshake_timeout{2000};
};

namespace detail {

struct watch_state {
  explicit watch_state(const asio::any_io_executor& ex) : notify(ex) {
    notify.expires_at(std::chrono::steady_clock::time_point::max());
  }
  std::int64_t id = 0;
  std::string key;
  std::string range_end;
  watch_options opts;
  std::int64_t next_rev = 0;
  bool created = false;
  bool resyncing = false;
  bool user_cancelled = false;
  std::error_code final_error;
  std::string final_message;
  std::deque<watch_response> queue;
  asio::steady_timer notify;
  void wake() {
    notify.cancel();
    notify.expires_at(std::chrono::steady_clock::time_point::max());
  }
  [[nodiscard]] std::string create_message() const {
    json req = json::object();
    json& c = req["create_request"] = json::object();
    c["key"] = base64_encode(key);
    if (!range_end.empty()) c["range_end"] = base64_encode(range_end);
    if (next_rev > 0) c["start_revision"] = std::to_string(next_rev);
    if (opts.prev_kv) c["prev_kv"] = true;
    if (opts.progress_notify) c["progress_notify"] = true;
    c["watch_id"] = std::to_string(id);
    return req.dump();
  }
  [[nodiscard]] std::string cancel_message() const {
    json req = json::object();
    req["cancel_request"]["watch_id"] = std::to_string(id);
    return req.dump();
  }
};

}  // namespace detail

/// @brief One watch of a `watcher`: a pull stream of responses. Move-only;
///        destroying it cancels the watch.
///
/// Thread-safety: use on the watcher's executor. Cost: a queue of the
/// responses not yet taken.
class watch_stream;

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

  explicit watcher(client& c, watcher_options opts = {}) : hub_(std::make_shared<hub>(c, opts)) {}
  watcher(const watcher&) = delete;
  watcher& operator=(const watcher&) = delete;
  ~watcher() { hub_->stop(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return hub_->c.get_executor(); }
  [[nodiscard]] client& get_client() const noexcept { return hub_->c; }
  /// How many sockets were opened so far (1 + reconnections).
  [[nodiscard]] std::uint64_t connections() const noexcept { return hub_->connections; }
  /// How many watches are active on the socket.
  [[nodiscard]] std::size_t active() const noexcept { return hub_->watches.size(); }

  /// Creates a watch and completes once etcd confirmed it (or after the
  /// client's call timeout, `errc::timed_out`). -> (ec, watch_stream)
  template <class Token>
  auto async_watch(std::string key, watch_options opts, Token&& token);

 private:
  friend class watch_stream;
  using json = detail::json;
  using ws_type = boost::beast::websocket::stream<boost::beast::tcp_stream>;

  struct connection {
    explicit connection(const asio::any_io_executor& ex) : ws(ex), out_notify(ex) {
      out_notify.expires_at(std::chrono::steady_clock::time_point::max());
    }
    ws_type ws;
    std::deque<std::string> outbox;
    asio::steady_timer out_notify;
    bool open = false;
    void send(std::string msg) {
      outbox.push_back(std::move(msg));
      out_notify.cancel();
      out_notify.expires_at(std::chrono::steady_clock::time_point::max());
    }
  };

  struct hub : std::enable_shared_from_this<hub> {
    hub(client& cl, watcher_options o) : c(cl), opts(o), wake_timer(cl.get_executor()) {
      wake_timer.expires_at(std::chrono::steady_clock::time_point::max());
    }
    client& c;
    watcher_options opts;
    std::map<std::int64_t, std::shared_ptr<detail::watch_state>> watches;
    std::int64_t next_id = 1;
    std::shared_ptr<connection> conn;
    bool running = false;
    bool stopped = false;
    std::uint64_t connections = 0;
    asio::steady_timer wake_timer;  // wakes the run loop's pause when a watch is added
    asio::cancellation_signal stop_signal;

    void stop() {
      stopped = true;
      stop_signal.emit(asio::cancellation_type::terminal);
      if (conn) {
        boost::beast::error_code ignored;
        boost::beast::get_lowest_layer(conn->ws).socket().close(ignored);
      }
      for (auto& [id, w] : watches) {
        w->final_error = errc::operation_aborted;
        w->final_message = "watcher destroyed";
        w->wake();
      }
      watches.clear();
    }

    void add(const std::shared_ptr<detail::watch_state>& w) {
      watches[w->id] = w;
      if (conn && conn->open) conn->send(w->create_message());
      if (!running) {
        running = true;
        asio::co_spawn(c.get_executor(), run(this->shared_from_this()),
                       asio::bind_cancellation_slot(stop_signal.slot(), asio::detached));
      }
    }

    void cancel(const std::shared_ptr<detail::watch_state>& w) {
      if (w->user_cancelled) return;
      w->user_cancelled = true;
      if (!w->final_error) {
        w->final_error = errc::operation_aborted;
        w->final_message = "watch cancelled";
      }
      w->wake();
      if (conn && conn->open && w->created) {
        conn->send(w->cancel_message());  // erased when etcd confirms
      } else {
        watches.erase(w->id);
      }
    }

    static asio::awaitable<void> run(std::shared_ptr<hub> h) {
      namespace beast = boost::beast;
      namespace websocket = beast::websocket;
      while (!h->stopped && !h->watches.empty()) {
        const std::size_t idx = h->c.current_endpoint();
        const endpoint ep = h->c.options().endpoints[idx];
        auto conn = std::make_shared<connection>(h->c.get_executor());
        boost::system::error_code ec;
        {
          asio::ip::tcp::resolver resolver(h->c.get_executor());
          const std::string port = std::to_string(ep.port);
          auto [rec, results] = co_await resolver.async_resolve(ep.host, port,
                                                                asio::as_tuple(asio::use_awaitable));
          ec = rec;
          if (!ec) {
            beast::get_lowest_layer(conn->ws).expires_after(h->c.options().connect_timeout);
            auto [cec, e] = co_await beast::get_lowest_layer(conn->ws).async_connect(
                results, asio::as_tuple(asio::use_awaitable));
            ec = cec;
          }
        }
        if (!ec) {
          beast::get_lowest_layer(conn->ws).expires_never();
          websocket::stream_base::timeout t{};
          t.handshake_timeout = h->opts.handshake_timeout;
          t.idle_timeout = h->opts.idle_timeout;
          t.keep_alive_pings = true;
          conn->ws.set_option(t);
          const bool require_leader = h->c.options().require_leader;
          conn->ws.set_option(websocket::stream_base::decorator([require_leader](websocket::request_type& req) {
            if (require_leader) req.set("Grpc-Metadata-hasleader", "true");
          }));
          conn->ws.read_message_max(h->c.options().max_response_bytes);
          conn->ws.text(true);
          const std::string host = ep.to_string();
          auto [hec] = co_await conn->ws.async_handshake(host, "/v3/watch",
                                                         asio::as_tuple(asio::use_awaitable));
          ec = hec;
        }
        if (h->stopped) co_return;
        if (!ec) {
          ++h->connections;
          conn->open = true;
          h->conn = conn;
          for (auto it = h->watches.begin(); it != h->watches.end();) {
            auto& w = it->second;
            if (w->user_cancelled) {
              it = h->watches.erase(it);
              continue;
            }
            w->created = false;
            if (!w->resyncing) conn->send(w->create_message());
            ++it;
          }
          asio::co_spawn(h->c.get_executor(), writer(h, conn), asio::detached);
          co_await reader(h, conn);
          conn->open = false;
          conn->out_notify.cancel();
          beast::error_code ignored;
          beast::get_lowest_layer(conn->ws).socket().close(ignored);
          if (h->conn == conn) h->conn.reset();
          if (h->stopped) co_return;
        }
        if (h->watches.empty()) break;
        // the member failed, refused or broke the stream: try the next one
        h->c.rotate_endpoint(idx);
        asio::steady_timer pause(h->c.get_executor(), h->opts.reconnect_interval);
        auto [pec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        if (pec && h->stopped) co_return;
      }
      h->running = false;
    }

    static asio::awaitable<void> writer(std::shared_ptr<hub> h, std::shared_ptr<connection> conn) {
      while (conn->open && !h->stopped) {
        if (conn->outbox.empty()) {
          co_await conn->out_notify.async_wait(asio::as_tuple(asio::use_awaitable));
          continue;
        }
        auto [ec, n] = co_await conn->ws.async_write(asio::buffer(conn->outbox.front()),
                                                     asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec) {
          boost::beast::error_code ignored;
          boost::beast::get_lowest_layer(conn->ws).socket().close(ignored);
          co_return;
        }
        conn->outbox.pop_front();
      }
    }

    static asio::awaitable<void> reader(std::shared_ptr<hub> h, std::shared_ptr<connection> conn) {
      boost::beast::flat_buffer buffer;
      for (;;) {
        buffer.clear();
        auto [ec, n] = co_await conn->ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec || h->stopped) co_return;
        const auto data = buffer.cdata();
        const std::string_view text(static_cast<const char*>(data.data()), data.size());
        const json doc = json::parse(text, nullptr, false);
        watch_message m;
        std::string message;
        if (doc.is_discarded()) co_return;  // not the gateway: reconnect elsewhere
        if (auto perr = detail::parse_watch_message(doc, m, message)) co_return;  // stream error (no leader...)
        h->dispatch(m);
        if (h->watches.empty()) {
          // nothing left to watch: close the socket politely
          co_await conn->ws.async_close(boost::beast::websocket::close_code::normal,
                                        asio::as_tuple(asio::use_awaitable));
          co_return;
        }
      }
    }

    void dispatch(watch_message& m) {
      const auto it = watches.find(m.watch_id);
      if (it == watches.end()) return;
      auto w = it->second;
      if (m.created) {
        w->created = true;
        if (w->next_rev == 0) w->next_rev = m.header.revision + 1;
        w->wake();
      }
      if (m.canceled) {
        w->created = false;
        if (w->user_cancelled) {
          watches.erase(it);
          return;
        }
        if (m.compact_revision > 0) {
          if (w->opts.resync_on_compaction) {
            // etcd 3.4 keeps a watch id it cancelled for compaction on the
            // stream and refuses to create it again (duplicate id, answered
            // with watch_id -1): free it, and go on under a new id
            if (conn && conn->open) conn->send(w->cancel_message());
            watches.erase(it);
            w->id = next_id++;
            watches[w->id] = w;
            w->resyncing = true;
            asio::co_spawn(c.get_executor(), resync(this->shared_from_this(), w, m.compact_revision),
                           asio::detached);
          } else {
            watch_response r;
            r.revision = m.header.revision;
            r.compact_revision = m.compact_revision;
            w->queue.push_back(std::move(r));
            w->final_error = errc::compacted;
            w->final_message = "watch of revision " + std::to_string(w->next_rev) +
                               " failed: compacted up to revision " + std::to_string(m.compact_revision);
            watches.erase(it);
            w->wake();
          }
          return;
        }
        w->final_error = errc::server_error;
        w->final_message = "etcd cancelled the watch: " +
                           (m.cancel_reason.empty() ? std::string("no reason given") : m.cancel_reason);
        watches.erase(it);
        w->wake();
        return;
      }
      if (!m.events.empty()) {
        watch_response r;
        r.revision = m.header.revision;
        r.events.reserve(m.events.size());
        for (auto& e : m.events) {
          if (e.kv.mod_revision < w->next_rev) continue;  // already delivered
          r.events.push_back(std::move(e));
        }
        if (r.events.empty()) return;
        w->next_rev = r.events.back().kv.mod_revision + 1;
        w->queue.push_back(std::move(r));
        w->wake();
      } else if (!m.created && w->created && m.header.revision + 1 > w->next_rev) {
        w->next_rev = m.header.revision + 1;  // progress notification: synced up to here
      }
    }

    static asio::awaitable<void> resync(std::shared_ptr<hub> h, std::shared_ptr<detail::watch_state> w,
                                        std::int64_t compact_revision) {
      for (;;) {
        if (h->stopped || w->user_cancelled) co_return;
        range_options o;
        o.range_end = w->range_end;
        auto [ec, r] = co_await h->c.async_range(w->key, o, asio::as_tuple(asio::use_awaitable));
        if (h->stopped || w->user_cancelled) co_return;
        if (!ec) {
          watch_response resp;
          resp.revision = r.header.revision;
          resp.resynced = true;
          resp.compact_revision = compact_revision;
          resp.snapshot = std::move(r.kvs);
          w->next_rev = r.header.revision + 1;
          w->resyncing = false;
          w->queue.push_back(std::move(resp));
          w->wake();
          if (h->conn && h->conn->open) h->conn->send(w->create_message());
          co_return;
        }
        asio::steady_timer pause(h->c.get_executor(), h->opts.reconnect_interval);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      }
    }
  };

  static asio::awaitable<std::pair<std::error_code, watch_stream>> do_watch(
      std::shared_ptr<hub> h, std::string key, watch_options opts);

  std::shared_ptr<hub> hub_;
};

class watch_stream {
 public:
  watch_stream() = default;
  watch_stream(watch_stream&&) noexcept = default;
  watch_stream& operator=(watch_stream&& other) noexcept {
    if (this != &other) {
      cancel();
      hub_ = std::move(other.hub_);
      w_ = std::move(other.w_);
    }
    return *this;
  }
  ~watch_stream() { cancel(); }

  [[nodiscard]] bool valid() const noexcept { return w_ != nullptr; }
  /// The revision the watch resumes from after a reconnection.
  [[nodiscard]] std::int64_t next_revision() const noexcept { return w_ ? w_->next_rev : 0; }
  /// The watch id etcd knows it by now (0 when invalid). It changes when the
  /// watch is created again: after a reconnect and after a compaction resync
  /// (etcd 3.4 refuses to reuse a cancelled id).
  [[nodiscard]] std::int64_t id() const noexcept { return w_ ? w_->id : 0; }

  /// The next response, waiting for it. Errors: `errc::operation_aborted`
  /// (cancelled), `errc::compacted` (without resync), `errc::server_error`
  /// (etcd cancelled the watch). -> (ec, watch_response)
  template <class Token>
  auto async_next(Token&& token) {
    auto ex = w_ ? w_->notify.get_executor() : asio::any_io_executor{};
    return detail::async_run<watch_response>(
        ex, [w = w_]() { return next(w); }, std::forward<Token>(token));
  }

  /// Stops the watch; a pending async_next completes with operation_aborted.
  void cancel() {
    if (!w_) return;
    if (auto h = hub_.lock()) h->cancel(w_);
    w_->user_cancelled = true;
    w_->wake();
  }

 private:
  friend class watcher;
  watch_stream(std::weak_ptr<watcher::hub> h, std::shared_ptr<detail::watch_state> w)
      : hub_(std::move(h)), w_(std::move(w)) {}

  static asio::awaitable<std::pair<std::error_code, watch_response>> next(
      std::shared_ptr<detail::watch_state> w) {
    while (w->queue.empty()) {
      if (w->final_error || w->user_cancelled) {
        co_return std::pair{w->final_error ? w->final_error : make_error_code(errc::operation_aborted),
                            watch_response{}};
      }
      co_await w->notify.async_wait(asio::as_tuple(asio::use_awaitable));
      const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
      if (detail::is_cancelled(cs)) {
        co_return std::pair{make_error_code(errc::operation_aborted), watch_response{}};
      }
    }
    auto r = std::move(w->queue.front());
    w->queue.pop_front();
    co_return std::pair{std::error_code{}, std::move(r)};
  }

  std::weak_ptr<watcher::hub> hub_;
  std::shared_ptr<detail::watch_state> w_;
};

inline asio::awaitable<std::pair<std::error_code, watch_stream>> watcher::do_watch(
    std::shared_ptr<hub> h, std::string key, watch_options opts) {
  if (h->stopped) co_return std::pair{make_error_code(errc::operation_aborted), watch_stream{}};
  auto w = std::make_shared<detail::watch_state>(h->c.get_executor());
  w->id = h->next_id++;
  w->range_end = opts.prefix ? prefix_end(key) : opts.range_end;
  w->key = std::move(key);
  w->next_rev = opts.start_revision;
  w->opts = std::move(opts);
  h->add(w);
  watch_stream stream(h, w);
  const auto deadline = std::chrono::steady_clock::now() + h->c.options().call_timeout;
  asio::steady_timer timeout(h->c.get_executor(), deadline);
  timeout.async_wait([w](boost::system::error_code ec) {
    if (!ec) w->wake();
  });
  while (!w->created && !w->final_error && !w->user_cancelled) {
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return std::pair{make_error_code(errc::timed_out), watch_stream{}};
    }
    co_await w->notify.async_wait(asio::as_tuple(asio::use_awaitable));
    const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
    if (detail::is_cancelled(cs)) {
      co_return std::pair{make_error_code(errc::operation_aborted), watch_stream{}};
    }
  }
  if (w->final_error) co_return std::pair{w->final_error, watch_stream{}};
  co_return std::pair{std::error_code{}, std::move(stream)};
}

template <class Token>
auto watcher::async_watch(std::string key, watch_options opts, Token&& token) {
  return detail::async_run<watch_stream>(
      hub_->c.get_executor(),
      [h = hub_, key = std::move(key), opts = std::move(opts)]() { return do_watch(h, key, opts); },
      std::forward<Token>(token));
}

/// @brief A local copy of every key under a prefix, kept current by a watch
///        (the inventory hot update: read stock settings without a round trip).
///
/// `async_start` ranges the prefix and watches from the next revision; a
/// compaction that the watch cannot bridge is resynchronised (the whole copy
/// replaced by a fresh range). Reads are local. Thread-safety: use on the
/// client's executor. Cost: the keys and values in memory; one watch.
class prefix_cache {
 public:
  using change_handler = std::function<void(const event&)>;

  prefix_cache(watcher& w, std::string prefix) : st_(std::make_shared<state>(w, std::move(prefix))) {}
  prefix_cache(const prefix_cache&) = delete;
  prefix_cache& operator=(const prefix_cache&) = delete;
  ~prefix_cache() { stop(); }

  /// Loads the prefix and starts following it. -> (ec, revision loaded)
  template <class Token>
  auto async_start(Token&& token) {
    return detail::async_run<std::int64_t>(
        st_->w.get_executor(), [s = st_]() { return state::start(s); }, std::forward<Token>(token));
  }

  /// Completes once the copy has caught up with `revision`. -> (ec, revision)
  template <class Token>
  auto async_wait_revision(std::int64_t revision, Token&& token) {
    return detail::async_run<std::int64_t>(
        st_->w.get_executor(), [s = st_, revision]() { return state::wait_revision(s, revision); },
        std::forward<Token>(token));
  }

  [[nodiscard]] std::optional<key_value> get(const std::string& key) const {
    const auto it = st_->items.find(key);
    if (it == st_->items.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] const std::map<std::string, key_value>& items() const noexcept { return st_->items; }
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
    state(watcher& wa, std::string p) : w(wa), prefix(std::move(p)), notify(wa.get_executor()) {
      notify.expires_at(std::chrono::steady_clock::time_point::max());
    }
    watcher& w;
    std::string prefix;
    std::map<std::string, key_value> items;
    std::int64_t revision = 0;
    std::uint64_t resyncs = 0;
    bool stopped = false;
    watch_stream stream;
    asio::steady_timer notify;
    change_handler on_change;
    std::function<void()> on_resync;

    void wake() {
      notify.cancel();
      notify.expires_at(std::chrono::steady_clock::time_point::max());
    }

    static asio::awaitable<std::pair<std::error_code, std::int64_t>> start(std::shared_ptr<state> s) {
      range_options o;
      o.prefix = true;
      auto [ec, r] = co_await s->w.get_client().async_range(s->prefix, o, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{ec, std::int64_t{0}};
      s->items.clear();
      for (auto& kv : r.kvs) s->items[kv.key] = std::move(kv);
      s->revision = r.header.revision;
      watch_options wo;
      wo.prefix = true;
      wo.start_revision = r.header.revision + 1;
      auto [wec, stream] = co_await s->w.async_watch(s->prefix, wo, asio::as_tuple(asio::use_awaitable));
      if (wec) co_return std::pair{wec, std::int64_t{0}};
      s->stream = std::move(stream);
      asio::co_spawn(s->w.get_executor(), follow(s), asio::detached);
      s->wake();
      co_return std::pair{std::error_code{}, s->revision};
    }

    static asio::awaitable<void> follow(std::shared_ptr<state> s) {
      while (!s->stopped) {
        auto [ec, r] = co_await s->stream.async_next(asio::as_tuple(asio::use_awaitable));
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

    static asio::awaitable<std::pair<std::error_code, std::int64_t>> wait_revision(std::shared_ptr<state> s,
                                                                                  std::int64_t rev) {
      while (s->revision < rev) {
        if (s->stopped) co_return std::pair{make_error_code(errc::operation_aborted), s->revision};
        co_await s->notify.async_wait(asio::as_tuple(asio::use_awaitable));
        const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
        if (detail::is_cancelled(cs)) {
          co_return std::pair{make_error_code(errc::operation_aborted), s->revision};
        }
      }
      co_return std::pair{std::error_code{}, s->revision};
    }
  };

  std::shared_ptr<state> st_;
};

}  // namespace seckill::etcd
