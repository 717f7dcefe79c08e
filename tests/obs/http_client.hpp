#pragma once
// A blocking HTTP/1.1 client for the obs integration tests (127.0.0.1 only).

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <string>

namespace seckill::test {

struct http_answer {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  std::string content_length;
  std::string allow;
};

/// One request on a fresh connection; throws boost::system::system_error on network errors.
/// A non-empty `bearer_token` is sent as `Authorization: Bearer <token>`.
inline http_answer http_request(unsigned short port, const std::string& target,
                                boost::beast::http::verb method = boost::beast::http::verb::get,
                                const std::string& body = {}, const std::string& content_type = {},
                                const std::string& bearer_token = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  if (!bearer_token.empty()) req.set(http::field::authorization, "Bearer " + bearer_token);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(false);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (method == http::verb::head) parser.skip(true);
  http::read(stream, buffer, parser);
  const auto& res = parser.get();
  http_answer a;
  a.status = res.result_int();
  a.content_type = std::string(res[http::field::content_type]);
  a.content_length = std::string(res[http::field::content_length]);
  a.allow = std::string(res[http::field::allow]);
  a.body = res.body();
  return a;
}

}  // namespace seckill::test
