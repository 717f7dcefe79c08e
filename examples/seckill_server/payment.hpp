#pragma once
// payment_provider: the server's Payment policy. Either the simulated one
// (examples/common/simulated_payment.hpp: --payment-latency, --payment-failure,
// --payment-hang) or a real HTTP call (--payment-url): POST
// {"order_id": "...", "sku": ..., "quantity": N} with the purchase's
// traceparent; a 2xx answer is paid, anything else (another status, a
// refused connection, a reset) failed. The call honours cancellation, so the
// purchase deadline bounds it. Connections are HTTP/1.1 keep-alive, kept in a
// pool (payment_connections) between payments.
//
// Thread-safety: async_pay from any thread. Cost: simulated, a timer; HTTP,
// a coroutine and one request on a pooled connection (a connect only when
// none is idle), the pool's mutex held to take or give back one.

#include "common/simulated_payment.hpp"

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/purchase/request.hpp>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill_server {

/// An http://host:port/path URL, split. Empty `why` on success.
struct http_url {
  std::string host;
  std::string port = "80";
  std::string path = "/";
};

inline std::string parse_http_url(std::string_view url, http_url& out) {
  if (!url.starts_with("http://")) return "expected http://host[:port][/path]";
  url.remove_prefix(7);
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  http_url u;
  if (slash != std::string_view::npos) u.path = std::string(url.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    return "credentials in the URL are not supported";
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return "an unclosed [ in the host";
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority[0] != ':') return "expected :port after ]";
      u.port = std::string(authority.substr(1));
    }
  } else {
    const auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return "the host is empty";
  if (u.port.empty() || u.port.size() > 5 ||
      u.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(u.port) > 65535 ||
      std::stoi(u.port) == 0)
    return "the port must be in [1, 65535]";
  out = std::move(u);
  return {};
}

/// Idle keep-alive connections to one payment provider, for reuse.
///
/// A payment takes one (or connects when none is idle: payments in flight
/// are never made to wait for a connection, the deadline is theirs) and
/// gives it back after a complete answer the server did not end with
/// `Connection: close`; at most `max_idle` are kept, the others closed.
/// A connection whose payment was cancelled or failed is closed, never
/// given back. Thread-safety: any thread (one mutex, held to pop or push).
/// Cost: a socket per idle connection.
class payment_connections {
 public:
  explicit payment_connections(std::size_t max_idle) : max_idle_(max_idle) {}

  std::unique_ptr<boost::beast::tcp_stream> take() {
    std::lock_guard lock(mutex_);
    if (idle_.empty()) return nullptr;
    auto s = std::move(idle_.back());
    idle_.pop_back();
    return s;
  }
  void give_back(std::unique_ptr<boost::beast::tcp_stream> s) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(s));
  }
  [[nodiscard]] std::size_t idle() const {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }

 private:
  const std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<boost::beast::tcp_stream>> idle_;
};

class payment_provider {
 public:
  /// Simulated payments.
  payment_provider(boost::asio::any_io_executor ex, seckill_examples::payment_simulation sim)
      : ex_(ex), simulated_(std::in_place, ex, sim) {}
  /// Payments over HTTP to `url`, keeping up to `idle_connections` for reuse.
  payment_provider(boost::asio::any_io_executor ex, http_url url, std::size_t idle_connections)
      : ex_(std::move(ex)),
        url_(std::move(url)),
        pool_(std::make_unique<payment_connections>(idle_connections)) {}

  template <class Token>
  auto async_pay(const seckill::payment_request& r, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, const seckill::payment_request& p) {
          if (simulated_) {
            simulated_->async_pay(p, std::move(handler));
            return;
          }
          seckill::detail::async_spawn<void(std::error_code)>(
              ex_, call(p.order_id, std::string(p.sku), p.quantity, std::string(p.traceparent)),
              std::move(handler));
        },
        token, r);
  }

 private:
  // One payment. A pooled connection the provider closed while it was idle
  // shows as a failed write, or as EOF or a reset before any byte of the
  // answer: the request is then sent once more on a new connection. That is
  // the usual rule of HTTP clients for idle connections, and safe here: the
  // provider got nothing it answered, and a provider dedupes payments by
  // their order id anyway. Any other failure is a failed payment; a
  // cancelled one (the deadline) ends as operation_aborted.
  boost::asio::awaitable<std::error_code> call(std::int64_t order_id, std::string sku,
                                               std::int64_t quantity, std::string traceparent) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    const auto failed = make_error_code(seckill::errc::payment_failed);
    http::request<http::string_body> req{http::verb::post, url_.path, 11};
    req.set(http::field::host, url_.host);
    req.set(http::field::content_type, "application/json");
    if (!traceparent.empty()) req.set("traceparent", traceparent);
    req.body() =
        nlohmann::json{{"order_id", std::to_string(order_id)}, {"sku", sku}, {"quantity", quantity}}
            .dump();
    req.prepare_payload();
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto stream = attempt == 0 ? pool_->take() : nullptr;
      const bool reused = stream != nullptr;
      if (!stream) {
        asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
        auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, url_.port, tuple);
        if (rec == asio::error::operation_aborted)
          co_return make_error_code(seckill::errc::operation_aborted);
        if (rec) co_return failed;
        stream = std::make_unique<beast::tcp_stream>(co_await asio::this_coro::executor);
        auto [cec, ep] = co_await stream->async_connect(endpoints, tuple);
        (void)ep;
        if (cec == asio::error::operation_aborted)
          co_return make_error_code(seckill::errc::operation_aborted);
        if (cec) co_return failed;
      }
      auto [wec, wn] = co_await http::async_write(*stream, req, tuple);
      (void)wn;
      if (wec == asio::error::operation_aborted)
        co_return make_error_code(seckill::errc::operation_aborted);
      if (wec && reused) continue;
      if (wec) co_return failed;
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      auto [ec, n] = co_await http::async_read(*stream, buffer, parser, tuple);
      (void)n;
      if (ec == asio::error::operation_aborted)
        co_return make_error_code(seckill::errc::operation_aborted);
      const bool nothing_came = !parser.got_some() && buffer.size() == 0;
      if (ec && reused && nothing_came &&
          (ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset))
        continue;
      if (ec) co_return failed;
      const auto status = parser.get().result_int();
      if (parser.get().keep_alive()) pool_->give_back(std::move(stream));
      co_return status >= 200 && status < 300 ? std::error_code() : failed;
    }
    co_return failed;
  }

  boost::asio::any_io_executor ex_;
  std::optional<seckill_examples::simulated_payment> simulated_;
  http_url url_;
  std::unique_ptr<payment_connections> pool_;  // HTTP only; stable for the coroutines
};

}  // namespace seckill_server
