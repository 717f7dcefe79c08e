// seckill_server with the rate limits shared in Redis (--gcra-rate,
// --gcra-user-rate): two nodes draw from the same buckets, the refusals are
// 429 (most from the pre-filter, counted in /metrics), and with that Redis
// down a node refuses (503, the default) or admits (--gcra-fail-open).
#include "redis/redis_server.hpp"
#include "server/server_process.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef SECKILL_SERVER

namespace integration_gcra {

namespace http = boost::beast::http;
using seckill::test::http_connection;
using seckill::test::metric_value;
using seckill::test::server_answer;
using seckill::test::server_process;
using seckill::test::stock_of;

const std::string token = "admin-t0ken-gcra";

server_answer put_stock(unsigned short port, const std::string& sku, std::int64_t stock) {
  http_connection c(port);
  const nlohmann::json body{{"stock", stock}, {"per_user", 0}};
  return c.send(http::verb::put, "/admin/stock/" + sku, body.dump(),
                {{"Authorization", "Bearer " + token}});
}

server_answer buy(http_connection& c, const std::string& sku, const std::string& user) {
  return c.post("/purchase", nlohmann::json{{"sku", sku}, {"user", user}}.dump());
}

std::string outcome(const std::string& name) {
  return fmt::format("seckill_gcra_decisions_total{{outcome=\"{}\"}}", name);
}

TEST_SUITE("integration") {
  TEST_CASE(
      "seckill_server on Redis: two nodes share the --gcra-rate and --gcra-user-rate buckets") {
    seckill::test::redis_server redis;
    const auto url = fmt::format("redis://127.0.0.1:{}", redis.port());
    // about nothing comes back during the test: the burst is what there is
    const std::vector<std::string> limits{"--gcra-rate",      "0.001", "--gcra-burst",      "3",
                                          "--gcra-user-rate", "0.001", "--gcra-user-burst", "1"};
    auto args = [&](const char* worker) {
      std::vector<std::string> a{"--store", url, "--admin-token", token, "--worker-id", worker};
      a.insert(a.end(), limits.begin(), limits.end());
      return a;
    };
    server_process a(SECKILL_SERVER, args("1"));
    server_process b(SECKILL_SERVER, args("2"));
    REQUIRE(put_stock(a.port(), "sku-g", 100).status == 200);
    http_connection ca(a.port());
    http_connection cb(b.port());
    CHECK(buy(ca, "sku-g", "ann").status == 200);
    // ann's bucket is shared: refused on the other node
    const auto again = buy(cb, "sku-g", "ann");
    CHECK(again.status == 429);
    CHECK(again.json()["error"] == "rate_limited");
    CHECK(buy(cb, "sku-g", "bob").status == 200);
    CHECK(buy(ca, "sku-g", "cy").status == 200);  // the SKU's third token, on the first node
    // the SKU's bucket is empty for both nodes
    CHECK(buy(cb, "sku-g", "dee").status == 429);
    CHECK(buy(ca, "sku-g", "eve").status == 429);
    // b learnt that from Redis once; from then on it refuses without a round trip
    CHECK(buy(cb, "sku-g", "fay").status == 429);
    CHECK(buy(cb, "sku-g", "gus").status == 429);
    CHECK(stock_of(a.port(), "sku-g")["sold"] == 3);
    CHECK(metric_value(b.port(), outcome("admitted")) == 1);
    CHECK(metric_value(b.port(), outcome("refused_local")) >= 2);
    CHECK(metric_value(b.port(), outcome("refused_remote")) >= 1);
    CHECK(metric_value(b.port(), "seckill_gcra_failures_total") == 0);
    CHECK(metric_value(a.port(), outcome("admitted")) == 2);
  }

  TEST_CASE(
      "seckill_server: the --gcra-rate Redis down fails purchases closed or with --gcra-fail-open "
      "admits them") {
    server_process::expect_exit(SECKILL_SERVER, {"--gcra-rate", "5"}, 2, "--gcra-redis");
    seckill::test::redis_server redis;
    const auto url = fmt::format("redis://127.0.0.1:{}", redis.port());
    const std::vector<std::string> common{"--admin-token", token,  "--gcra-redis",   url,
                                          "--gcra-rate",   "1000", "--gcra-timeout", "200ms"};
    server_process closed(SECKILL_SERVER, common);
    auto open_args = common;
    open_args.push_back("--gcra-fail-open");
    server_process open(SECKILL_SERVER, open_args);
    REQUIRE(put_stock(closed.port(), "sku-h", 100).status == 200);
    REQUIRE(put_stock(open.port(), "sku-h", 100).status == 200);
    http_connection cc(closed.port());
    http_connection co(open.port());
    CHECK(buy(cc, "sku-h", "ann").status == 200);
    CHECK(buy(co, "sku-h", "ann").status == 200);
    redis.kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto refused = buy(cc, "sku-h", "bob");
    CHECK(refused.status == 503);
    CHECK(refused.json()["error"] == "unavailable");
    CHECK(buy(co, "sku-h", "bob").status == 200);
    CHECK(metric_value(closed.port(), "seckill_gcra_failures_total") == 1);
    CHECK(metric_value(open.port(), outcome("failed_open")) == 1);
    CHECK(stock_of(closed.port(), "sku-h")["sold"] == 1);
    CHECK(stock_of(open.port(), "sku-h")["sold"] == 2);
  }
}

}  // namespace integration_gcra

#endif  // SECKILL_SERVER
