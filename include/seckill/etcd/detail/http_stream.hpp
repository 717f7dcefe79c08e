#pragma once
/// @file
/// @brief The stream the etcd client's HTTP calls and the watcher's WebSocket
///        run on: Beast's `tcp_stream`, under TLS for an `https://` endpoint
///        (`seckill::detail::maybe_tls_stream`), and the one function that
///        connects it (resolve, TCP, then the TLS handshake with SNI and the
///        host name check). Users never include it.

#include <seckill/detail/tls_stream.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/tls.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#if SECKILL_HAS_TLS
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/websocket/ssl.hpp>
#endif

namespace seckill::detail {

// A WebSocket over a maybe-TLS stream closes through the stream it runs on
// (found by argument-dependent lookup from Beast's websocket::stream).
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role,
                    maybe_tls_stream<boost::beast::tcp_stream>& stream, TeardownHandler&& handler) {
#if SECKILL_HAS_TLS
  if (auto* tls = stream.tls()) {
    boost::beast::async_teardown(role, *tls, std::forward<TeardownHandler>(handler));
    return;
  }
#endif
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

inline void teardown(boost::beast::role_type role,
                     maybe_tls_stream<boost::beast::tcp_stream>& stream,
                     boost::beast::error_code& ec) {
#if SECKILL_HAS_TLS
  if (auto* tls = stream.tls()) {
    boost::beast::teardown(role, *tls, ec);
    return;
  }
#endif
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

}  // namespace seckill::detail

namespace seckill::etcd::detail {

/// An HTTP or WebSocket connection to one member.
using http_stream = seckill::detail::maybe_tls_stream<boost::beast::tcp_stream>;

/// What a client needs to reach its `https://` members: the options and,
/// with TLS built in, the context made once from them.
struct tls_setup {
  tls_options options;
#if SECKILL_HAS_TLS
  std::shared_ptr<boost::asio::ssl::context> context;  // null: no https endpoint
#endif
};

/// Resolves `ep` and connects `stream` to it before `deadline`; for an
/// `https://` endpoint, then the TLS handshake (SNI, the name check, the
/// certificate verification). Completes with `errc::connection_refused`,
/// `errc::timed_out` or a `tls_errc`, and `message` saying what failed
/// (never a secret). The stream's expiry is left at `deadline`.
inline boost::asio::awaitable<std::error_code> connect_http_stream(
    http_stream& stream, const endpoint& ep, [[maybe_unused]] const tls_setup& tls,
    std::chrono::steady_clock::time_point deadline, std::string& message) {
  namespace asio = boost::asio;
  constexpr auto use = asio::as_tuple(asio::use_awaitable);
  stream.use_plain();
  asio::ip::tcp::resolver resolver(stream.get_executor());
  auto [rec, results] = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use);
  if (!rec) {
    stream.next_layer().expires_at(deadline);
    auto [cec, e] = co_await stream.next_layer().async_connect(results, use);
    (void)e;
    rec = cec;
  }
  if (rec) {
    message = "cannot connect to etcd at " + ep.to_string() + ": " + rec.message();
    co_return rec == boost::beast::error::timeout
        ? make_error_code(seckill::errc::timed_out)
        : make_error_code(seckill::errc::connection_refused);
  }
  if (!ep.tls) co_return std::error_code{};
#if SECKILL_HAS_TLS
  auto& session = stream.start_tls(*tls.context);
  if (!seckill::detail::prepare_tls_client(session.native_handle(), tls.options, ep.host)) {
    ERR_clear_error();
    message = "TLS to etcd at " + ep.to_string() + ": OpenSSL refused the server name '" +
              seckill::detail::tls_expected_name(tls.options, ep.host) + "'";
    co_return make_error_code(tls_errc::handshake_failed);
  }
  auto [hec] = co_await session.async_handshake(asio::ssl::stream_base::client, use);
  if (!hec) co_return std::error_code{};
  if (hec == boost::beast::error::timeout) {
    message = "TLS handshake with etcd at " + ep.to_string() + " timed out";
    co_return make_error_code(seckill::errc::timed_out);
  }
  if (hec == asio::error::operation_aborted) {
    message = "TLS handshake with etcd at " + ep.to_string() + " cancelled";
    co_return make_error_code(seckill::errc::operation_aborted);
  }
  co_return seckill::detail::tls_failure(hec, session.native_handle(), tls.options, ep.host,
                                         "etcd at " + ep.to_string(), message);
#else
  message = "etcd endpoint " + ep.to_string() +
            " is https but this program was built without TLS (link seckill::tls)";
  co_return make_error_code(seckill::errc::invalid_argument);
#endif
}

/// The TLS error of a new TLS connection's first exchange (a member that
/// refuses the client certificate says so then, in TLS 1.3, or closes the
/// connection); empty for a plain connection and for errors that are not
/// TLS's or a closed connection's. Not for a reused connection, which a
/// member may close while idle. A close without a TLS alert counts only
/// when `plain_close_counts` (a call that may be sent again: a member that
/// applied a write and died closes the same way).
inline std::error_code tls_exchange_error([[maybe_unused]] http_stream& stream,
                                          [[maybe_unused]] const boost::beast::error_code& ec,
                                          [[maybe_unused]] const endpoint& ep,
                                          [[maybe_unused]] const tls_setup& tls,
                                          [[maybe_unused]] std::string& message,
                                          [[maybe_unused]] bool plain_close_counts) {
#if SECKILL_HAS_TLS
  auto* session = stream.tls();
  if (session == nullptr) return {};
  const bool alert = ec.category() == boost::asio::error::get_ssl_category();
  const bool closed = ec == boost::asio::ssl::error::stream_truncated ||
                      ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
                      ec == boost::asio::error::broken_pipe;
  // A plain close may also be a member that applied the call and died: only
  // a caller that may send the call again takes it for a refusal.
  if (!alert && !(closed && plain_close_counts)) return {};
  return seckill::detail::tls_failure(ec, session->native_handle(), tls.options, ep.host,
                                      "etcd at " + ep.to_string(), message, true);
#else
  return {};
#endif
}

}  // namespace seckill::etcd::detail
