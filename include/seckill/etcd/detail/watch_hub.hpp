#pragma once
/// @file
/// @brief The connection hub behind `watcher`: one gateway WebSocket
///        (`GET /v3/watch` upgraded) shared by every watch of a watcher, the
///        watches' state, and the loop that reconnects to the next member and
///        re-creates every watch from its last delivered revision + 1.
///
/// Thread-safety: on the client's executor only. Cost: one socket, one JSON
/// parse per message.

#include <seckill/backoff.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/http_stream.hpp>
#include <seckill/etcd/detail/json_codec.hpp>
#include <seckill/etcd/detail/watch_post_stream.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/types.hpp>

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
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace seckill::etcd::detail {

/// One watch as the hub keeps it: what it watches, where it resumes, and the
/// responses its stream has not taken yet.
struct watch_state {
  explicit watch_state(const boost::asio::any_io_executor& ex) : notify(ex) {
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
  boost::asio::steady_timer notify;
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

/// One socket of the hub and its queue of messages to send.
struct watch_connection {
  explicit watch_connection(const boost::asio::any_io_executor& ex) : ws(ex), out_notify(ex) {
    out_notify.expires_at(std::chrono::steady_clock::time_point::max());
  }
  boost::beast::websocket::stream<http_stream> ws;  // over TLS for an https:// member
  std::deque<std::string> outbox;
  boost::asio::steady_timer out_notify;
  bool open = false;
  bool streaming = false;  // a POST stream (a client that logs in): see watch_post_stream.hpp
  bool reopen = false;     // the stream's watches changed: open it again at once
  void send(std::string msg) {
    if (streaming) {  // a POST stream takes no more messages: open it again with the new set
      reopen = true;
      boost::beast::error_code ignored;
      boost::beast::get_lowest_layer(ws).socket().close(ignored);
      return;
    }
    outbox.push_back(std::move(msg));
    out_notify.cancel();
    out_notify.expires_at(std::chrono::steady_clock::time_point::max());
  }
};

/// The shared state of a `watcher`: its watches by id and its socket.
struct watch_hub : std::enable_shared_from_this<watch_hub> {
  watch_hub(client& c, watcher_options o) : etcd(c), opts(o), wake_timer(etcd.get_executor()) {
    wake_timer.expires_at(std::chrono::steady_clock::time_point::max());
  }
  client& etcd;
  watcher_options opts;
  std::map<std::int64_t, std::shared_ptr<watch_state>> watches;
  std::int64_t next_id = 1;
  std::shared_ptr<watch_connection> conn;
  bool running = false;
  bool stopped = false;
  unsigned failures = 0;                         // connection attempts that failed in a row
  std::minstd_rand rng{std::random_device{}()};  // the jitter of the retry pauses
  std::uint64_t connections = 0;
  boost::asio::steady_timer wake_timer;  // wakes the run loop's pause when a watch is added
  boost::asio::cancellation_signal stop_signal;

  /// The pause before retry `attempt` (0 for the first): the shared jittered,
  /// capped backoff.
  std::chrono::milliseconds retry_delay(unsigned attempt) {
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    return backoff_delay(attempt, opts.reconnect_interval, opts.reconnect_max_interval,
                         jitter(rng));
  }

  void stop() {
    stopped = true;
    stop_signal.emit(boost::asio::cancellation_type::terminal);
    if (conn) {
      boost::beast::error_code ignored;
      boost::beast::get_lowest_layer(conn->ws).socket().close(ignored);
    }
    for (auto& [id, w] : watches) {
      w->final_error = seckill::errc::operation_aborted;
      w->final_message = "watcher destroyed";
      w->wake();
    }
    watches.clear();
  }

  void add(const std::shared_ptr<watch_state>& w) {
    watches[w->id] = w;
    if (conn && conn->open) conn->send(w->create_message());
    if (!running) {
      running = true;
      boost::asio::co_spawn(
          etcd.get_executor(), run(this->shared_from_this()),
          boost::asio::bind_cancellation_slot(stop_signal.slot(), boost::asio::detached));
    }
  }

  void cancel(const std::shared_ptr<watch_state>& w) {
    if (w->user_cancelled) return;
    w->user_cancelled = true;
    if (!w->final_error) {
      w->final_error = seckill::errc::operation_aborted;
      w->final_message = "watch cancelled";
    }
    w->wake();
    if (conn && conn->open && w->created) {
      conn->send(w->cancel_message());  // erased when etcd confirms
    } else {
      watches.erase(w->id);
    }
  }

  static boost::asio::awaitable<void> run(std::shared_ptr<watch_hub> h) {
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    while (!h->stopped && !h->watches.empty()) {
      const std::size_t idx = h->etcd.current_endpoint();
      const endpoint ep = h->etcd.options().endpoints[idx];
      auto conn = std::make_shared<watch_connection>(h->etcd.get_executor());
      boost::system::error_code ec;
      {
        std::string why;  // (the watcher retries; the client's calls report such failures)
        const std::error_code cec = co_await connect_http_stream(
            conn->ws.next_layer(), ep, h->etcd.tls(),
            std::chrono::steady_clock::now() + h->etcd.options().connect_timeout, why);
        if (cec) ec = boost::asio::error::connection_refused;
      }
      if (!ec && !h->etcd.options().auth.empty()) {  // logged in: a POST stream
        conn->streaming = true;
        const bool again = co_await run_watch_post_stream(h, conn, ep);
        conn->open = false;
        beast::error_code ignored;
        beast::get_lowest_layer(conn->ws).socket().close(ignored);
        if (h->conn == conn) h->conn.reset();
        if (h->stopped) co_return;
        if (again) continue;
        ec =
            boost::asio::error::connection_reset;  // the member failed: the next one, after a pause
      }
      if (!ec) {
        beast::get_lowest_layer(conn->ws).expires_never();
        websocket::stream_base::timeout t{};
        t.handshake_timeout = h->opts.handshake_timeout;
        t.idle_timeout = h->opts.idle_timeout;
        t.keep_alive_pings = true;
        conn->ws.set_option(t);
        const bool require_leader = h->etcd.options().require_leader;
        conn->ws.set_option(
            websocket::stream_base::decorator([require_leader](websocket::request_type& req) {
              if (require_leader) req.set("Grpc-Metadata-hasleader", "true");
            }));
        conn->ws.read_message_max(h->etcd.options().max_response_bytes);
        conn->ws.text(true);
        const std::string host = ep.to_string();
        const std::string target = "/v3/watch";
        auto [hec] = co_await conn->ws.async_handshake(
            host, target, boost::asio::as_tuple(boost::asio::use_awaitable));
        ec = hec;
      }
      if (h->stopped) co_return;
      if (!ec) {
        ++h->connections;
        h->failures = 0;
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
        boost::asio::co_spawn(h->etcd.get_executor(), writer(h, conn), boost::asio::detached);
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
      h->etcd.rotate_endpoint(idx);
      boost::asio::steady_timer pause(h->etcd.get_executor(), h->retry_delay(h->failures++));
      auto [pec] = co_await pause.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (pec && h->stopped) co_return;
    }
    h->running = false;
  }

  static boost::asio::awaitable<void> writer(std::shared_ptr<watch_hub> h,
                                             std::shared_ptr<watch_connection> conn) {
    while (conn->open && !h->stopped) {
      if (conn->outbox.empty()) {
        co_await conn->out_notify.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        continue;
      }
      auto [ec, n] =
          co_await conn->ws.async_write(boost::asio::buffer(conn->outbox.front()),
                                        boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)n;
      if (ec) {
        boost::beast::error_code ignored;
        boost::beast::get_lowest_layer(conn->ws).socket().close(ignored);
        co_return;
      }
      conn->outbox.pop_front();
    }
  }

  static boost::asio::awaitable<void> reader(std::shared_ptr<watch_hub> h,
                                             std::shared_ptr<watch_connection> conn) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      buffer.clear();
      auto [ec, n] =
          co_await conn->ws.async_read(buffer, boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)n;
      if (ec || h->stopped) co_return;
      const auto data = buffer.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      const json doc = json::parse(text, nullptr, false);
      watch_message m;
      std::string message;
      if (doc.is_discarded()) co_return;  // not the gateway: reconnect elsewhere
      if (auto perr = parse_watch_message(doc, m, message))
        co_return;  // stream error (no leader...)
      h->dispatch(m);
      if (h->watches.empty()) {
        // nothing left to watch: close the socket politely
        co_await conn->ws.async_close(boost::beast::websocket::close_code::normal,
                                      boost::asio::as_tuple(boost::asio::use_awaitable));
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
          boost::asio::co_spawn(etcd.get_executor(),
                                resync(this->shared_from_this(), w, m.compact_revision),
                                boost::asio::detached);
        } else {
          watch_response r;
          r.revision = m.header.revision;
          r.compact_revision = m.compact_revision;
          w->queue.push_back(std::move(r));
          w->final_error = errc::compacted;
          w->final_message = "watch of revision " + std::to_string(w->next_rev) +
                             " failed: compacted up to revision " +
                             std::to_string(m.compact_revision);
          watches.erase(it);
          w->wake();
        }
        return;
      }
      w->final_error = seckill::errc::server_error;
      w->final_message =
          "etcd cancelled the watch: " +
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

  static boost::asio::awaitable<void> resync(std::shared_ptr<watch_hub> h,
                                             std::shared_ptr<watch_state> w,
                                             std::int64_t compact_revision) {
    for (unsigned attempt = 0;; ++attempt) {
      if (h->stopped || w->user_cancelled) co_return;
      range_options o;
      o.range_end = w->range_end;
      auto [ec, r] = co_await h->etcd.async_range(
          w->key, o, boost::asio::as_tuple(boost::asio::use_awaitable));
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
      boost::asio::steady_timer pause(h->etcd.get_executor(), h->retry_delay(attempt));
      co_await pause.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }
};

}  // namespace seckill::etcd::detail
