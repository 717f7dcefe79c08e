#pragma once
// A small seckill_server stand-in for seckill_load's integration tests: a
// Beast HTTP/1.1 keep-alive server on 127.0.0.1 running on a thread of its
// own, with PUT /admin/stock/{sku}, POST /purchase (a stock counter and an
// idempotency map per (user, request_id)), GET /stock/{sku} and GET /health.
// It can be told to misbehave: sell beyond its stock, or forget the
// idempotency map.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace seckill::test {

/// How a fake_shop behaves (and misbehaves).
struct fake_shop_behaviour {
  std::string admin_token = "t0k3n";
  bool oversell = false;         ///< sells whatever the stock
  bool forget_requests = false;  ///< a resent request gets a new order
  std::int64_t first_order = 1000;
  std::chrono::microseconds service_time{0};  ///< how long a purchase takes
};

class fake_shop {
 public:
  using behaviour = fake_shop_behaviour;

  explicit fake_shop(behaviour b = {}) : b_(std::move(b)), next_order_(b_.first_order) {
    namespace asio = boost::asio;
    const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  fake_shop(const fake_shop&) = delete;
  fake_shop& operator=(const fake_shop&) = delete;
  ~fake_shop() {
    io_.stop();
    thread_.join();
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// POST /purchase requests received.
  [[nodiscard]] std::uint64_t purchases() const noexcept { return purchases_.load(); }
  [[nodiscard]] std::uint64_t admin_calls() const noexcept { return admin_calls_.load(); }
  [[nodiscard]] std::uint64_t refused_tokens() const noexcept { return refused_tokens_.load(); }
  [[nodiscard]] std::uint64_t connections() const noexcept { return connections_.load(); }
  [[nodiscard]] std::int64_t sold(const std::string& sku) {
    std::lock_guard lock(mutex_);
    return stock_[sku].sold;
  }

 private:
  using json = nlohmann::json;
  struct level {
    std::int64_t available = 0;
    std::int64_t sold = 0;
  };

  boost::asio::awaitable<void> accept_loop() {
    namespace asio = boost::asio;
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    boost::beast::tcp_stream stream(std::move(socket));
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(stream, buffer, req, tuple);
      if (rec) co_return;
      if (b_.service_time.count() > 0 && req.target() == "/purchase") {
        asio::steady_timer pause(stream.get_executor(), b_.service_time);
        auto [pec] = co_await pause.async_wait(tuple);
        (void)pec;
      }
      auto res = handle(req);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, m] = co_await http::async_write(stream, res, tuple);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  static boost::beast::http::response<boost::beast::http::string_body> answer(unsigned status,
                                                                              const json& body) {
    boost::beast::http::response<boost::beast::http::string_body> res;
    res.version(11);
    res.result(status);
    res.set(boost::beast::http::field::content_type, "application/json");
    res.body() = body.dump();
    return res;
  }

  boost::beast::http::response<boost::beast::http::string_body> handle(
      const boost::beast::http::request<boost::beast::http::string_body>& req) {
    namespace http = boost::beast::http;
    const std::string target(req.target());
    const auto body = json::parse(req.body(), nullptr, false);
    std::lock_guard lock(mutex_);
    if (target == "/health") return answer(200, {{"status", "alive"}});
    if (req.method() == http::verb::put && target.rfind("/admin/stock/", 0) == 0) {
      ++admin_calls_;
      if (req[http::field::authorization] != "Bearer " + b_.admin_token) {
        ++refused_tokens_;
        return answer(401, {{"error", "unauthorized"}});
      }
      const auto sku = target.substr(13);
      stock_[sku].available = body.value("stock", std::int64_t{0});
      return answer(200, {{"sku", sku}, {"available", stock_[sku].available}});
    }
    if (req.method() == http::verb::get && target.rfind("/stock/", 0) == 0) {
      const auto it = stock_.find(target.substr(7));
      if (it == stock_.end()) return answer(404, {{"error", "unknown_sku"}});
      return answer(200, {{"sku", it->first},
                          {"available", it->second.available},
                          {"reserved", 0},
                          {"sold", it->second.sold}});
    }
    if (req.method() == http::verb::post && target == "/purchase") {
      ++purchases_;
      if (!body.is_object() || !body.contains("sku") || !body.contains("user"))
        return answer(400, {{"error", "invalid_argument"}, {"message", "bad body"}});
      const auto sku = body["sku"].get<std::string>();
      const auto q = body.value("quantity", std::int64_t{1});
      const auto key = body["user"].get<std::string>() + "/" + body.value("request_id", "");
      if (!b_.forget_requests) {
        if (const auto it = orders_.find(key); it != orders_.end())
          return answer(200, {{"order_id", std::to_string(it->second)},
                              {"state", "succeeded"},
                              {"replayed", true}});
      }
      auto it = stock_.find(sku);
      if (it == stock_.end()) return answer(404, {{"error", "unknown_sku"}});
      if (it->second.available < q && !b_.oversell) return answer(409, {{"error", "sold_out"}});
      it->second.available = std::max<std::int64_t>(0, it->second.available - q);
      it->second.sold += q;
      const auto id = next_order_++;
      orders_[key] = id;
      return answer(200, {{"order_id", std::to_string(id)}, {"state", "succeeded"}});
    }
    return answer(404, {{"error", "not_found"}});
  }

  behaviour b_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  unsigned short port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::map<std::string, level> stock_;
  std::map<std::string, std::int64_t> orders_;
  std::int64_t next_order_;
  std::atomic<std::uint64_t> purchases_{0}, admin_calls_{0}, refused_tokens_{0}, connections_{0};
};

}  // namespace seckill::test
