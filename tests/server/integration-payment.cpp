// seckill_server with --payment-url: a payment receiver run by the test on
// 127.0.0.1 answers as told (pay, pay then close the connection, refuse with
// 500, never answer). Checked: connections are kept alive and reused; a
// connection the provider closed while idle costs a reconnect, never a
// failed or doubled payment; a refused or hung payment gives its units back
// and the hung connection is not reused; every 200 is a payment the provider
// received, and every payment received is an order the store holds.
#include "server/server_process.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifdef SECKILL_SERVER

namespace integration_payment {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using seckill::test::http_connection;
using seckill::test::server_process;
using seckill::test::stock_of;

const std::string token = "payment-admin-token";

/// An HTTP payment provider on 127.0.0.1: counts connections and requests,
/// keeps each request's body and traceparent, answers as `mode` says.
class payment_receiver {
 public:
  enum class mode { pay, pay_then_close, refuse, hang };

  payment_receiver() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  payment_receiver(const payment_receiver&) = delete;
  payment_receiver& operator=(const payment_receiver&) = delete;
  ~payment_receiver() {
    io_.stop();
    thread_.join();
  }

  [[nodiscard]] std::string url() const {
    return fmt::format("http://127.0.0.1:{}/pay", acceptor_.local_endpoint().port());
  }
  void set_mode(mode m) { mode_ = m; }
  [[nodiscard]] int connections() const { return connections_; }
  [[nodiscard]] int requests() const { return requests_; }
  /// The order ids of the payments received.
  [[nodiscard]] std::vector<std::string> order_ids() const {
    std::lock_guard lock(mutex_);
    return order_ids_;
  }
  [[nodiscard]] std::vector<std::string> traceparents() const {
    std::lock_guard lock(mutex_);
    return traceparents_;
  }

 private:
  asio::awaitable<void> accept_loop() {
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(tuple);
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket s) {
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(s, buffer, req, tuple);
      (void)n;
      if (ec) co_return;
      {
        std::lock_guard lock(mutex_);
        const auto body = nlohmann::json::parse(req.body(), nullptr, false);
        order_ids_.push_back(body.is_object() ? body.value("order_id", "") : "(not json)");
        traceparents_.emplace_back(req["traceparent"]);
      }
      ++requests_;
      const mode m = mode_;
      if (m == mode::hang) {
        asio::steady_timer forever(s.get_executor(), std::chrono::hours(1));
        co_await forever.async_wait(tuple);
        co_return;
      }
      http::response<http::string_body> res{
          m == mode::refuse ? http::status::internal_server_error : http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = m == mode::refuse ? R"({"error": "declined"})" : R"({"paid": true})";
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(s, res, tuple);
      (void)wn;
      if (wec) co_return;
      if (m == mode::pay_then_close) {
        // closed without a word: the client learns it on its next use
        boost::system::error_code ignored;
        s.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        s.close(ignored);
        co_return;
      }
    }
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<mode> mode_{mode::pay};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> order_ids_;
  std::vector<std::string> traceparents_;
};

void put_stock(unsigned short port, const std::string& sku, std::int64_t stock) {
  http_connection c(port);
  const auto a =
      c.send(http::verb::put, "/admin/stock/" + sku, nlohmann::json{{"stock", stock}}.dump(),
             {{"Authorization", "Bearer " + token}});
  REQUIRE_MESSAGE(a.status == 200, a.body);
}

std::string purchase(const std::string& sku, int i) {
  return nlohmann::json{
      {"sku", sku}, {"user", fmt::format("user-{}", i)}, {"request_id", fmt::format("r-{}", i)}}
      .dump();
}

}  // namespace integration_payment

TEST_SUITE("integration") {
  TEST_CASE(
      "seckill_server --payment-url: connections are reused and every 200 is a payment the "
      "provider received") {
    using namespace integration_payment;
    payment_receiver provider;
    server_process server(SECKILL_SERVER,
                          {"--admin-token", token, "--payment-url", provider.url()});
    const auto port = server.port();
    put_stock(port, "sku-p", 30);
    http_connection c(port);
    std::set<std::string> told;
    const std::string trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (int i = 0; i < 30; ++i) {
      const auto a =
          c.send(http::verb::post, "/purchase", purchase("sku-p", i), {{"traceparent", trace}});
      REQUIRE_MESSAGE(a.status == 200, a.body);
      told.insert(a.json()["order_id"].get<std::string>());
    }
    CHECK(provider.requests() == 30);
    CHECK(provider.connections() <= 2);  // one, kept alive (two if a payment raced its return)
    const auto ids = provider.order_ids();
    CHECK(std::set<std::string>(ids.begin(), ids.end()) == told);
    for (const auto& t : provider.traceparents())
      CHECK(t.substr(0, 35) == trace.substr(0, 35));  // the buyer's trace
    const auto level = stock_of(port, "sku-p");
    CHECK(level["sold"] == 30);
    CHECK(level["reserved"] == 0);
  }

  TEST_CASE(
      "seckill_server --payment-url: a provider closing idle connections costs a reconnect - "
      "never a failed or doubled payment") {
    using namespace integration_payment;
    payment_receiver provider;
    provider.set_mode(payment_receiver::mode::pay_then_close);
    server_process server(SECKILL_SERVER,
                          {"--admin-token", token, "--payment-url", provider.url()});
    const auto port = server.port();
    put_stock(port, "sku-q", 20);
    http_connection c(port);
    for (int i = 0; i < 20; ++i) {
      const auto a = c.post("/purchase", purchase("sku-q", i));
      REQUIRE_MESSAGE(a.status == 200, a.body);
      // let the close reach the node first: the next payment finds it closed
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(provider.requests() == 20);  // each payment sent once to a listening provider
    CHECK(provider.connections() == 20);
    const auto level = stock_of(port, "sku-q");
    CHECK(level["sold"] == 20);
    CHECK(level["reserved"] == 0);
  }

  TEST_CASE(
      "seckill_server --payment-url: a refused or hung payment gives its units back and a hung "
      "connection is not reused") {
    using namespace integration_payment;
    payment_receiver provider;
    // (a deadline far above a payment's round trip on a loaded debug build:
    // only the hung payment may reach it)
    server_process server(SECKILL_SERVER, {"--admin-token", token, "--payment-url", provider.url(),
                                           "--deadline", "1s"});
    const auto port = server.port();
    put_stock(port, "sku-r", 5);
    http_connection c(port);
    provider.set_mode(payment_receiver::mode::refuse);
    const auto refused = c.post("/purchase", purchase("sku-r", 1));
    CHECK(refused.status == 402);
    CHECK(refused.json()["error"] == "payment_failed");
    auto level = stock_of(port, "sku-r");
    CHECK(level["available"] == 5);
    CHECK(level["reserved"] == 0);
    CHECK(level["sold"] == 0);
    const int before_hang = provider.connections();
    CHECK(before_hang == 1);  // the 500 came on a kept-alive connection: it stays pooled

    provider.set_mode(payment_receiver::mode::hang);
    const auto hung = c.post("/purchase", purchase("sku-r", 2));
    CHECK(hung.status == 504);
    CHECK(hung.json()["error"] == "timed_out");
    level = stock_of(port, "sku-r");
    CHECK(level["available"] == 5);
    CHECK(level["reserved"] == 0);

    provider.set_mode(payment_receiver::mode::pay);
    const auto paid = c.post("/purchase", purchase("sku-r", 3));
    CHECK(paid.status == 200);
    CHECK(provider.connections() == 2);  // the hung connection was closed, a new one made
    level = stock_of(port, "sku-r");
    CHECK(level["sold"] == 1);
    CHECK(level["available"] == 4);
    const auto ids = provider.order_ids();
    REQUIRE(ids.size() == 3);
    CHECK(ids.back() == paid.json()["order_id"]);
  }
}

#endif  // SECKILL_SERVER
