#pragma once
/// @file
/// @brief The watcher's transport when the client logs in
///        (`client_options::auth`): one streaming `POST /v3/watch` carrying
///        every watch's create request, its answers read as they come
///        (newline-delimited JSON in a chunked body), with the login's token
///        in `Authorization`.
///
/// Why not the WebSocket: etcd 3.4's gateway (grpc-websocket-proxy) passes
/// no header of the upgrade request on but `Origin` and `Referer`, and
/// turns a token given as `Sec-WebSocket-Protocol: Bearer, <token>` into
/// `Authorization: Bearer <token>`, which etcd 3.4 does not accept
/// ("invalid auth token": etcd issue 19752, fixed in later branches only):
/// a WebSocket watch cannot log in. A POST stream can, but carries only the watches it was
/// opened with (the gateway reads no request body once it answers), so a
/// watch added or cancelled while it runs makes the hub open it again,
/// every watch resuming from its last delivered revision + 1, as after a
/// broken socket. etcd checks the token when a watch is created, not while
/// it streams: a token that expires under an open stream is found, and
/// replaced by one login, the next time the stream is opened.
///
/// Thread-safety: on the client's executor only.

#include <seckill/error.hpp>
#include <seckill/etcd/detail/auth_state.hpp>
#include <seckill/etcd/detail/json_codec.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/types.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill::etcd::detail {

/// Every watch of `h` (not cancelled, not resynchronising) fails with `ec`
/// and `message`: the login cannot succeed (a wrong password).
template <class Hub>
void fail_every_watch(Hub& h, std::error_code ec, const std::string& message) {
  for (auto& [id, w] : h.watches) {
    if (!w->final_error) {
      w->final_error = ec;
      w->final_message = message;
    }
    w->wake();
  }
  h.watches.clear();
}

/// One POST stream of `h`'s watches on `conn` (connected to `ep`). Returns
/// true when the hub should open it again at once (the set of watches
/// changed, or etcd refused the token and a new login succeeded); false
/// when the member failed (the hub moves on after a pause).
template <class Hub, class Connection>
boost::asio::awaitable<bool> run_watch_post_stream(std::shared_ptr<Hub> h,
                                                   std::shared_ptr<Connection> conn,
                                                   const endpoint& ep) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  constexpr auto use = boost::asio::as_tuple(boost::asio::use_awaitable);
  auto& stream = conn->ws.next_layer();
  std::string message;
  if (h->etcd.auth_generation() == 0) {
    if (auto ec = co_await h->etcd.login(0, message)) {
      if (ec == seckill::errc::auth_failed) fail_every_watch(*h, ec, message);
      co_return false;
    }
  }
  std::deque<std::int64_t> pending;  // the watches whose create was sent, in order
  std::string body;
  for (auto it = h->watches.begin(); it != h->watches.end();) {
    auto& w = it->second;
    if (w->user_cancelled) {
      it = h->watches.erase(it);
      continue;
    }
    w->created = false;
    if (!w->resyncing) {
      body += w->create_message();
      body += '\n';
      pending.push_back(w->id);
    }
    ++it;
  }
  if (h->watches.empty()) co_return false;
  const std::uint64_t sent_generation = h->etcd.auth_generation();
  http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
  req.set(http::field::host, ep.uri_host());
  req.set(http::field::content_type, "application/json");
  if (!h->etcd.auth_token().empty()) req.set(http::field::authorization, h->etcd.auth_token());
  if (h->etcd.options().require_leader) req.set("Grpc-Metadata-hasleader", "true");
  req.body() = std::move(body);
  req.prepare_payload();
  beast::get_lowest_layer(conn->ws).expires_after(h->opts.handshake_timeout);
  auto [wec, wn] = co_await http::async_write(stream, req, use);
  (void)wn;
  if (wec) co_return false;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);  // a stream: read lines are taken off the body
  parser.header_limit(64 * 1024);
  auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use);
  (void)hn;
  if (hec) co_return false;
  if (parser.get().result() != http::status::ok) co_return false;
  beast::get_lowest_layer(conn->ws).expires_never();
  ++h->connections;
  h->failures = 0;
  conn->open = true;
  h->conn = conn;
  const std::size_t max_line = h->etcd.options().max_response_bytes;
  for (;;) {
    auto [rec, rn] = co_await http::async_read_some(stream, buffer, parser, use);
    if (h->stopped) co_return false;
    if (rec) co_return conn->reopen;
    std::string& text = parser.get().body();
    std::size_t begin = 0;
    for (std::size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1) {
      const std::string_view line(text.data() + begin, nl - begin);
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      const json doc = json::parse(line, nullptr, false);
      watch_message m;
      if (doc.is_discarded()) co_return false;  // not the gateway: reconnect elsewhere
      if (parse_watch_message(doc, m, message)) co_return false;  // a stream error (no leader...)
      if (m.created && !pending.empty()) {
        const std::int64_t id = pending.front();
        pending.pop_front();
        if (m.canceled && m.watch_id == -1) {  // this create was refused
          if (token_refused(m.cancel_reason)) {
            if (auto ec = co_await h->etcd.login(sent_generation, message)) {
              if (ec == seckill::errc::auth_failed) fail_every_watch(*h, ec, message);
              co_return false;
            }
            conn->reopen = true;  // open again with the new token, from where each watch was
            co_return true;
          }
          const auto found = h->watches.find(id);
          if (found != h->watches.end()) {
            auto w = found->second;
            w->final_error = map_grpc_status(2, m.cancel_reason);
            if (w->final_error == seckill::errc::server_error &&
                m.cancel_reason.find("permission denied") != std::string::npos)
              w->final_error = seckill::errc::permission_denied;
            w->final_message = "etcd refused the watch of '" + w->key + "' for user '" +
                               h->etcd.options().auth.username + "': " + m.cancel_reason;
            h->watches.erase(found);
            w->wake();
          }
          continue;
        }
      }
      h->dispatch(m);
      if (conn->reopen) co_return true;  // dispatch changed the set (a resync)
    }
    text.erase(0, begin);
    if (text.size() > max_line) co_return false;  // a line beyond the client's limit
    if (h->watches.empty()) co_return false;
    if (parser.is_done()) co_return false;
  }
}

}  // namespace seckill::etcd::detail
