// seckill_server as its users meet it: a real process on 127.0.0.1 over the
// memory store and a real redis-server. Every buyer's answer is checked
// against the store: each 200 is a committed order the store returns, sold
// equals the units of the 200s, and the refused buyers hold nothing.
#include "redis/redis_server.hpp"
#include "server/server_process.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include <csignal>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifdef SECKILL_SERVER

namespace integration_server {

using seckill::test::http_connection;
using seckill::test::metric_value;
using seckill::test::server_answer;
using seckill::test::server_process;
using seckill::test::stock_of;
namespace http = boost::beast::http;

const std::string token = "admin-t0ken-xyz";

server_answer put_stock(unsigned short port, const std::string& sku, std::int64_t stock,
                        const std::string& bearer = token, std::int64_t per_user = -1) {
  http_connection c(port);
  nlohmann::json body{{"stock", stock}};
  if (per_user >= 0) body["per_user"] = per_user;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + bearer);
  return c.send(http::verb::put, "/admin/stock/" + sku, body.dump(), headers);
}

std::string purchase_body(const std::string& sku, const std::string& user,
                          const std::string& request_id, std::int64_t quantity = 1) {
  return nlohmann::json{
      {"sku", sku}, {"user", user}, {"request_id", request_id}, {"quantity", quantity}}
      .dump();
}

struct sale_answers {
  std::map<unsigned, int> by_status;
  std::map<std::string, int> by_error;
  std::vector<std::pair<std::string, std::string>> orders;  // (order id, user)
};

// `buyers` named buyers (user-<i>, request r-<i>), `connections` keep-alive
// connections sharing them, all at once.
sale_answers sale(unsigned short port, const std::string& sku, int buyers, int connections) {
  sale_answers out;
  std::mutex m;
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      http_connection conn(port);
      for (int i = c; i < buyers; i += connections) {
        const auto user = fmt::format("user-{}", i);
        const auto a = conn.post("/purchase", purchase_body(sku, user, fmt::format("r-{}", i)));
        const auto j = a.json();
        std::lock_guard lock(m);
        ++out.by_status[a.status];
        if (a.status == 200)
          out.orders.emplace_back(j["order_id"].get<std::string>(), user);
        else
          ++out.by_error[j.value("error", std::string("(none)"))];
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

std::string anonymous_purchase(const std::string& sku, const std::string& user) {
  return nlohmann::json{{"sku", sku}, {"user", user}}.dump();
}

// Sends raw bytes on a fresh connection and reads until the server closes it
// (or `limit` passes); what it answered.
std::string raw_exchange(unsigned short port, const std::string& bytes,
                         std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  boost::asio::io_context io;
  boost::beast::tcp_stream s(io);
  s.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  s.expires_after(limit);
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    const auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

}  // namespace integration_server

TEST_SUITE("integration") {
  using namespace integration_server;  // inside the suite: other files of this unity build have
                                       // helpers of the same names

  TEST_CASE(
      "seckill_server on memory: a sale over keep-alive connections sells exactly the "
      "stock and every 200 is a committed order") {
    server_process server(SECKILL_SERVER,
                          {"--admin-token", token, "--payment-latency", "2ms", "--threads", "2"});
    const auto port = server.port();
    // The admin API: no token, a wrong one, then the right one.
    CHECK(put_stock(port, "sku-a", 50, "").status == 401);
    CHECK(put_stock(port, "sku-a", 50, "wrong").status == 401);
    const auto stocked = put_stock(port, "sku-a", 50);
    REQUIRE(stocked.status == 200);
    CHECK(stocked.json()["available"] == 50);

    const auto answers = sale(port, "sku-a", 200, 8);
    CHECK(answers.by_status.at(200) == 50);
    CHECK(answers.by_status.at(409) == 150);
    CHECK(answers.by_error.at("sold_out") == 150);
    std::set<std::string> ids;
    for (const auto& [id, user] : answers.orders) ids.insert(id);
    CHECK(ids.size() == 50);  // no order id twice
    const auto level = stock_of(port, "sku-a");
    CHECK(level["available"] == 0);
    CHECK(level["reserved"] == 0);
    CHECK(level["sold"] == 50);
    // Every 200 is an order the store returns, as the buyer was told.
    http_connection c(port);
    for (const auto& [id, user] : answers.orders) {
      const auto a = c.get("/orders/" + id);
      REQUIRE(a.status == 200);
      const auto j = a.json();
      CHECK(j["order_id"] == id);
      CHECK(j["sku"] == "sku-a");
      CHECK(j["user"] == user);
      CHECK(j["quantity"] == 1);
      CHECK(j["state"] == "committed");
    }
    CHECK(c.get("/orders/123").status == 404);
    CHECK(c.get("/orders/abc").status == 400);
  }

  TEST_CASE(
      "seckill_server on memory: a retried request gets the same order and takes "
      "nothing; the per-user limit holds") {
    server_process server(SECKILL_SERVER, {"--admin-token", token});
    const auto port = server.port();
    REQUIRE(put_stock(port, "sku-b", 10).status == 200);
    http_connection c(port);
    const auto first = c.post("/purchase", purchase_body("sku-b", "alice", "req-1"));
    REQUIRE(first.status == 200);
    const auto again = c.post("/purchase", purchase_body("sku-b", "alice", "req-1"));
    CHECK(again.status == 200);
    CHECK(again.json()["order_id"] == first.json()["order_id"]);
    CHECK(again.json()["replayed"] == true);
    const auto more = c.post("/purchase", purchase_body("sku-b", "alice", "req-2"));
    CHECK(more.status == 429);
    CHECK(more.json()["error"] == "user_limit");
    CHECK(!more.headers["Retry-After"].empty());
    CHECK(stock_of(port, "sku-b")["sold"] == 1);
    // A SKU stocked with its own per-user limit.
    REQUIRE(put_stock(port, "sku-c", 10, token, 3).status == 200);
    CHECK(c.post("/purchase", purchase_body("sku-c", "bob", "q-1", 2)).status == 200);
    CHECK(c.post("/purchase", purchase_body("sku-c", "bob", "q-2", 2)).status == 429);
    CHECK(c.post("/purchase", purchase_body("sku-c", "bob", "q-3", 1)).status == 200);
    CHECK(stock_of(port, "sku-c")["sold"] == 3);
  }

  TEST_CASE("seckill_server on memory: bad requests get a clear error and take nothing") {
    server_process server(SECKILL_SERVER, {"--admin-token", token});
    const auto port = server.port();
    REQUIRE(put_stock(port, "sku-d", 5).status == 200);
    http_connection c(port);
    const auto not_json = c.post("/purchase", "{\"sku\":");
    CHECK(not_json.status == 400);
    CHECK(not_json.json()["error"] == "invalid_argument");
    CHECK(not_json.json()["message"] == "the body is not valid JSON");
    CHECK(c.post("/purchase", R"({"sku":"sku-d"})").json()["message"] == "missing \"user\"");
    CHECK(c.post("/purchase", R"({"sku":"sku-d","user":"u","quantity":0})").status == 400);
    CHECK(c.post("/purchase", purchase_body("no-such-sku", "u", "r")).status == 404);
    CHECK(c.get("/stock/no-such-sku").status == 404);
    CHECK(c.get("/nowhere").status == 404);
    const auto wrong_method = c.get("/purchase");
    CHECK(wrong_method.status == 405);
    CHECK(wrong_method.headers["Allow"] == "POST");
    CHECK(c.send(http::verb::delete_, "/stock/sku-d").headers["Allow"] == "GET, HEAD");
    CHECK(put_stock(port, "bad sku", 5).status == 400);  // a space in the target: not HTTP
    const auto bad_admin = c.send(http::verb::put, "/admin/stock/sku-d", R"({"stock":-4})",
                                  {{"Authorization", "Bearer " + token}});
    CHECK(bad_admin.status == 400);
    const auto level = stock_of(port, "sku-d");
    CHECK(level["available"] == 5);
    CHECK(level["sold"] == 0);
    CHECK(level["reserved"] == 0);
    CHECK(c.get("/health").status == 200);
    CHECK(c.get("/ready").json()["status"] == "ready");
    // The metrics count the answers by route and status.
    const auto metrics = c.get("/metrics").body;
    CHECK(metrics.find(R"(seckill_http_requests_total{route="purchase",status="400"} 3)") !=
          std::string::npos);
    CHECK(metrics.find(R"(seckill_http_requests_total{route="purchase",status="405"} 1)") !=
          std::string::npos);
    CHECK(metrics.find("seckill_node_health_grade{grade=\"healthy\"} 1") != std::string::npos);
    CHECK(metrics.find("seckill_store_connected 1") != std::string::npos);
    // The token never shows.
    CHECK(server.output().find(token) == std::string::npos);
    CHECK(metrics.find(token) == std::string::npos);
  }

  TEST_CASE(
      "seckill_server on memory: oversized headers and bodies, slow clients and too "
      "many connections are refused") {
    server_process server(SECKILL_SERVER, {"--header-timeout", "300ms", "--idle-timeout", "500ms",
                                           "--max-connections", "3"});
    const auto port = server.port();
    const auto big_header = raw_exchange(
        port, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
    CHECK(big_header.starts_with("HTTP/1.1 431"));
    const auto big_body =
        raw_exchange(port, "POST /purchase HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                               std::string(20000, 'x'));
    CHECK(big_body.starts_with("HTTP/1.1 413"));
    // A slow client (half a request line, then nothing) is closed after the header timeout.
    const auto t0 = std::chrono::steady_clock::now();
    const auto slow = raw_exchange(port, "GET /hea");
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(slow.empty());
    CHECK(waited < std::chrono::seconds(5));
    CHECK(raw_exchange(port, "NOT HTTP\r\n\r\n").starts_with("HTTP/1.1 400"));
    // At the cap a new connection is closed at once and counted. The server
    // counts a connection until it has seen it close: the first one held is
    // taken once it is the only one counted, so the cap meets only ours.
    const auto refused_of = [](const std::string& metrics) {
      const std::string name = "\nseckill_http_connections_refused_total ";  // not its # HELP
      const auto at = metrics.find(name);
      return at == std::string::npos ? -1 : std::stoll(metrics.substr(at + name.size()));
    };
    std::vector<std::unique_ptr<http_connection>> held;
    long long refused_before = -1;
    std::string last_failure;
    const auto settled_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (refused_before < 0 && std::chrono::steady_clock::now() < settled_by) {
      try {
        if (held.empty()) held.push_back(std::make_unique<http_connection>(port));
        // (asked again on the same connection: a new one would be counted too)
        const auto metrics = held[0]->get("/metrics").body;
        if (metrics.find("seckill_http_connections 1\n") != std::string::npos)
          refused_before = refused_of(metrics);
      } catch (const std::exception& e) {  // refused while the stale ones still count
        last_failure = e.what();
        held.clear();
      }
      if (refused_before < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE_MESSAGE(held.size() == 1, last_failure);
    REQUIRE(refused_before >= 0);
    for (int i = 1; i < 3; ++i) {
      held.push_back(std::make_unique<http_connection>(port));
      CHECK(held.back()->get("/health").status == 200);
    }
    CHECK_THROWS(http_connection(port).get("/health"));
    const auto metrics = held[0]->get("/metrics").body;
    CHECK(refused_of(metrics) == refused_before + 1);
    CHECK(metrics.find("seckill_http_connections 3") != std::string::npos);
    held.clear();
  }

  TEST_CASE(
      "seckill_server on memory: SIGTERM lets the purchases in flight finish, then it "
      "exits 0") {
    server_process server(SECKILL_SERVER, {"--admin-token", token, "--payment-latency", "400ms"});
    const auto port = server.port();
    REQUIRE(put_stock(port, "sku-e", 5).status == 200);
    std::vector<std::thread> buyers;
    std::vector<unsigned> statuses(3, 0);
    for (int i = 0; i < 3; ++i)
      buyers.emplace_back([&, i] {
        http_connection c(port);
        statuses[static_cast<std::size_t>(i)] =
            c.post("/purchase", purchase_body("sku-e", fmt::format("u{}", i), "r")).status;
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the payments take 200-600 ms
    server.signal(SIGTERM);
    for (auto& b : buyers) b.join();
    for (const auto s : statuses) CHECK(s == 200);
    CHECK(server.wait(std::chrono::seconds(15)) == 0);
    CHECK_FALSE(seckill::test::accepts_connections(port));
    const auto out = server.output();
    CHECK(out.find("SIGTERM: stopping") != std::string::npos);
    CHECK(out.find("stopped") != std::string::npos);
  }

  TEST_CASE("seckill_server: bad flags and an unreachable store end it with a clear error") {
    server_process::expect_exit(SECKILL_SERVER, {"--threads", "0"}, 2,
                                "seckill_server: --threads: expected an integer in [1, 64], "
                                "saw '0'\n");
    server_process::expect_exit(SECKILL_SERVER, {"--store", "mongodb://x"}, 2, "unknown store");
    const auto port = seckill::test::free_loopback_port();
    server_process::expect_exit(SECKILL_SERVER,
                                {"--store", fmt::format("redis://:hunter2@127.0.0.1:{}", port)}, 1,
                                fmt::format("--store redis://:***@127.0.0.1:{}", port), "hunter2");
    // etcd cannot be reached: exit 1, saying so.
    server_process::expect_exit(SECKILL_SERVER, {"--etcd", fmt::format("127.0.0.1:{}", port)}, 1,
                                "cannot start a session");
    // The port is taken: exit 1, saying so.
    server_process first(SECKILL_SERVER, {});
    server_process::expect_exit(SECKILL_SERVER,
                                {"--listen", fmt::format("127.0.0.1:{}", first.port())}, 1,
                                "cannot listen on 127.0.0.1");
  }

  TEST_CASE(
      "seckill_server on memory: the sold-out cache answers purchases without a request id "
      "and never a retry") {
    server_process server(SECKILL_SERVER, {"--admin-token", token, "--per-user", "0"});
    const auto port = server.port();
    REQUIRE(put_stock(port, "sku-c", 1).status == 200);
    http_connection c(port);
    const auto first = c.post("/purchase", purchase_body("sku-c", "ann", "r-1"));
    REQUIRE(first.status == 200);
    CHECK(metric_value(port, "seckill_stock_cache_refusals_total") == 0);
    // The node saw the last unit go: no round trip for an anonymous purchase.
    const auto refused = c.post("/purchase", anonymous_purchase("sku-c", "bob"));
    CHECK(refused.status == 409);
    CHECK(refused.json()["error"] == "sold_out");
    CHECK(metric_value(port, "seckill_stock_cache_refusals_total") == 1);
    // A retry carrying its request id asks the store: the same order.
    const auto again = c.post("/purchase", purchase_body("sku-c", "ann", "r-1"));
    REQUIRE(again.status == 200);
    CHECK(again.json()["order_id"] == first.json()["order_id"]);
    CHECK(c.post("/purchase", purchase_body("sku-c", "cid", "r-2")).status == 409);
    CHECK(metric_value(port, "seckill_stock_cache_refusals_total") == 1);
    // A restock re-opens at once.
    REQUIRE(put_stock(port, "sku-c", 1).status == 200);
    CHECK(c.post("/purchase", anonymous_purchase("sku-c", "bob")).status == 200);
    const auto level = stock_of(port, "sku-c");
    CHECK(level["sold"] == 2);
    CHECK(level["available"] == 0);
    CHECK(metric_value(port, "seckill_stock_cache_lag_seconds") == 0);
    CHECK(metric_value(port, "seckill_etcd_connected") == -1);  // no --etcd: not exported
  }

  TEST_CASE(
      "seckill_server on Redis: a node learns a sell-out and a restock made on another node "
      "from the store's feed") {
    seckill::test::redis_server redis;
    const auto url = fmt::format("redis://127.0.0.1:{}", redis.port());
    server_process a(SECKILL_SERVER, {"--store", url, "--admin-token", token, "--worker-id", "1",
                                      "--per-user", "0"});
    server_process b(SECKILL_SERVER, {"--store", url, "--admin-token", token, "--worker-id", "2",
                                      "--per-user", "0"});
    REQUIRE(put_stock(a.port(), "sku-f", 1).status == 200);
    http_connection ca(a.port());
    http_connection cb(b.port());
    REQUIRE(ca.post("/purchase", anonymous_purchase("sku-f", "ann")).status == 200);
    // b never asked the store about sku-f: its first purchase is refused
    // from what the feed said (a sold-out entry is believed for 1 s).
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto refused = cb.post("/purchase", anonymous_purchase("sku-f", "bob"));
    CHECK(refused.status == 409);
    CHECK(metric_value(b.port(), "seckill_stock_cache_refusals_total") == 1);
    // A restock through a re-opens b at once (within the 1 s a stale
    // sold-out entry would still be believed).
    REQUIRE(put_stock(a.port(), "sku-f", 1).status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(cb.post("/purchase", anonymous_purchase("sku-f", "bob")).status == 200);
    const auto level = stock_of(b.port(), "sku-f");
    CHECK(level["sold"] == 2);
    CHECK(level["available"] == 0);
    CHECK(metric_value(b.port(), "seckill_stock_cache_refusals_total") == 1);
    // The feed is live: no lag.
    CHECK(metric_value(b.port(), "seckill_stock_cache_lag_seconds") == 0);
  }

  TEST_CASE(
      "seckill_server on Redis: a sale, then the store goes away and comes back: "
      "buyers told 503 hold nothing, /ready follows the store") {
    seckill::test::redis_server redis({"--requirepass", "hunter2"}, "hunter2");
    const auto url = fmt::format("redis://:hunter2@127.0.0.1:{}", redis.port());
    // A reserve lost with the connection is given back before the buyer is
    // told (retried until the store answers or the hold passes): a short hold.
    server_process server(SECKILL_SERVER, {"--store", url, "--admin-token", token,
                                           "--payment-latency", "1ms", "--hold", "3s"});
    const auto port = server.port();
    REQUIRE(put_stock(port, "sku-r", 40).status == 200);
    const auto answers = sale(port, "sku-r", 100, 6);
    CHECK(answers.by_status.at(200) == 40);
    CHECK(answers.by_status.at(409) == 60);
    auto level = stock_of(port, "sku-r");
    CHECK(level["sold"] == 40);
    CHECK(level["available"] == 0);

    REQUIRE(put_stock(port, "sku-s", 20).status == 200);
    redis.kill();
    http_connection c(port);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    unsigned ready = 200;
    while (ready == 200 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ready = c.get("/ready").status;
    }
    CHECK(ready == 503);
    const auto refused = c.post("/purchase", purchase_body("sku-s", "carol", "k-1"));
    CHECK(refused.status == 503);
    CHECK(refused.json()["error"] == "store_unavailable");
    redis.restart();  // no persistence: a fresh, empty store
    const auto back = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (ready != 200 && std::chrono::steady_clock::now() < back) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ready = c.get("/ready").status;
    }
    CHECK(ready == 200);
    // The sold-out cache's feed subscribed again and read back what it knew.
    double lag = -1;
    const auto synced = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (lag != 0 && std::chrono::steady_clock::now() < synced) {
      lag = metric_value(port, "seckill_stock_cache_lag_seconds");
      if (lag != 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    CHECK(lag == 0);
    REQUIRE(put_stock(port, "sku-s", 20).status == 200);
    // carol was told 503: she holds nothing, and buying again works.
    CHECK(c.post("/purchase", purchase_body("sku-s", "carol", "k-1")).status == 200);
    level = stock_of(port, "sku-s");
    CHECK(level["sold"] == 1);
    CHECK(level["reserved"] == 0);
    const auto out = server.output();
    CHECK(out.find("hunter2") == std::string::npos);
    CHECK(out.find(token) == std::string::npos);
  }
}

#endif  // SECKILL_SERVER
