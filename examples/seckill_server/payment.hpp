#pragma once
// payment_provider: the server's Payment policy. Either the simulated one
// (examples/common/simulated_payment.hpp: --payment-latency, --payment-failure,
// --payment-hang) or a real HTTP call (--payment-url): POST
// {"order_id": "...", "sku": ..., "quantity": N} with the purchase's
// traceparent; a 2xx answer is paid, anything else (another status, a
// refused connection, a reset) failed. The call honours cancellation, so the
// purchase deadline bounds it.
//
// Thread-safety: async_pay from any thread. Cost: simulated, a timer; HTTP,
// one connection per payment (connect, one request, close) and a coroutine.

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

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

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

class payment_provider {
 public:
  /// Simulated payments.
  payment_provider(boost::asio::any_io_executor ex, seckill_examples::payment_simulation sim)
      : ex_(ex), simulated_(std::in_place, ex, sim) {}
  /// Payments over HTTP to `url`.
  payment_provider(boost::asio::any_io_executor ex, http_url url)
      : ex_(std::move(ex)), url_(std::move(url)) {}

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
  boost::asio::awaitable<std::error_code> call(std::int64_t order_id, std::string sku,
                                               std::int64_t quantity, std::string traceparent) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
    auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, url_.port, tuple);
    if (rec) co_return make_error_code(seckill::errc::payment_failed);
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    auto [cec, ep] = co_await stream.async_connect(endpoints, tuple);
    (void)ep;
    if (cec) co_return make_error_code(seckill::errc::payment_failed);
    http::request<http::string_body> req{http::verb::post, url_.path, 11};
    req.set(http::field::host, url_.host);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    if (!traceparent.empty()) req.set("traceparent", traceparent);
    req.body() =
        nlohmann::json{{"order_id", std::to_string(order_id)}, {"sku", sku}, {"quantity", quantity}}
            .dump();
    req.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, req, tuple);
    (void)wn;
    if (wec) co_return make_error_code(seckill::errc::payment_failed);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple);
    (void)n;
    if (ec == asio::error::operation_aborted)
      co_return make_error_code(seckill::errc::operation_aborted);
    if (ec) co_return make_error_code(seckill::errc::payment_failed);
    const auto status = parser.get().result_int();
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return status >= 200 && status < 300 ? std::error_code()
                                            : make_error_code(seckill::errc::payment_failed);
  }

  boost::asio::any_io_executor ex_;
  std::optional<seckill_examples::simulated_payment> simulated_;
  http_url url_;
};

}  // namespace seckill_server
