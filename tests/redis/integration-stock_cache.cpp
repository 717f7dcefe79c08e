// stock_cache fed by redis::stock_feed: a second node (its own connections)
// learns a sold-out and a re-open from the script's PUBLISH within a bound,
// refuses locally meanwhile, and after the server drops the subscription
// (CLIENT KILL) reconnects, subscribes again and reads what it missed.

#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/stock_feed.hpp>
#include <seckill/redis/subscriber.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/stock_cache.hpp>

#include "redis/redis_server.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

using seckill::reserve_status;
using seckill::redis::connection_config;
using seckill::redis::redis_store;
using seckill::test::redis_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_stock_cache_redis {

using feed_type = seckill::redis::stock_feed<redis_store>;

// One server for every case of this file.
redis_server& shared_server() {
  static redis_server server;
  return server;
}

std::string fresh_sku() {
  static std::atomic<int> n{0};
  return "cache-sku-" + std::to_string(++n);
}

// The bound a change must reach the other node within, on loopback.
constexpr auto propagation_bound = 2s;

// Node a writes through its own store; node b has a store, a cache, the
// decorator and the feed, each on its own connection.
struct two_nodes {
  asio::io_context io;
  redis_store a{io.get_executor(), seckill::test::config_for<connection_config>(shared_server())};
  redis_store b{io.get_executor(), seckill::test::config_for<connection_config>(shared_server())};
  seckill::stock_cache cache;
  seckill::cached_store<redis_store> cached{b, cache};
  feed_type feed{io.get_executor(), b, cache,
                 seckill::test::config_for<connection_config>(shared_server())};

  two_nodes() {
    for (redis_store* s : {&a, &b}) {
      std::optional<std::error_code> connected;
      s->async_connect([&](std::error_code ec) { connected = ec; });
      wait([&] { return connected.has_value(); }, 5s);
      REQUIRE_MESSAGE(!*connected, s->connection().last_error());
    }
    std::optional<std::error_code> started;
    feed.async_start([&](std::error_code ec) { started = ec; });
    wait([&] { return started.has_value(); }, 5s);
    REQUIRE_MESSAGE(!*started, feed.source().last_error());
    wait([&] { return cache.live(); }, 5s);
    REQUIRE(cache.live());
  }
  two_nodes(const two_nodes&) = delete;
  two_nodes& operator=(const two_nodes&) = delete;
  ~two_nodes() {
    feed.close();
    a.close();
    b.close();
    io.restart();
    io.run_for(2s);
  }

  /// Runs the io_context until `done()` or `limit`; returns whether done.
  bool wait(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < until) {
      io.restart();
      io.run_for(2ms);
    }
    return done();
  }

  void set_stock(const std::string& sku, std::int64_t units) {
    std::optional<std::error_code> got;
    a.async_set_stock(sku, units, [&](std::error_code ec) { got = ec; });
    REQUIRE(wait([&] { return got.has_value(); }, 5s));
    REQUIRE_MESSAGE(!*got, a.last_error());
  }
  template <class Store>
  seckill::reserve_result reserve(Store& s, const std::string& sku, std::int64_t order) {
    std::optional<std::pair<std::error_code, seckill::reserve_result>> got;
    s.async_reserve(sku, 1, order, 60s,
                    [&](std::error_code ec, seckill::reserve_result r) { got.emplace(ec, r); });
    REQUIRE(wait([&] { return got.has_value(); }, 5s));
    REQUIRE_FALSE(got->first);
    return got->second;
  }
  void rollback(const std::string& sku, std::int64_t order) {
    std::optional<std::error_code> got;
    a.async_rollback(sku, order, [&](std::error_code ec, seckill::settle_result) { got = ec; });
    REQUIRE(wait([&] { return got.has_value(); }, 5s));
    REQUIRE_FALSE(*got);
  }
  std::int64_t remaining_seen(const std::string& sku) {
    const auto v = cache.find(sku);
    return v ? v->remaining : -2;
  }
};

TEST_SUITE("integration") {
  TEST_CASE("redis stock_cache: another node learns the sold-out and the re-open in time") {
    two_nodes n;
    const std::string sku = fresh_sku();
    n.set_stock(sku, 1);
    CHECK(n.wait([&] { return n.remaining_seen(sku) == 1; }, propagation_bound));
    CHECK(n.reserve(n.a, sku, 1).status == reserve_status::reserved);
    CHECK(n.wait([&] { return n.cache.sold_out(sku); }, propagation_bound));
    // b refuses locally: no round trip, and the store never saw order 2.
    CHECK(n.reserve(n.cached, sku, 2).status == reserve_status::sold_out);
    CHECK(n.cached.local_refusals() == 1u);
    // a gives its unit back: b re-opens.
    n.rollback(sku, 1);
    CHECK(n.wait([&] { return n.remaining_seen(sku) == 1; }, propagation_bound));
    CHECK_FALSE(n.cache.sold_out(sku));
    CHECK(n.reserve(n.cached, sku, 2).status == reserve_status::reserved);
    CHECK(n.wait([&] { return n.cache.sold_out(sku); }, propagation_bound));
    // A restock re-opens with its count.
    n.set_stock(sku, 5);
    CHECK(n.wait([&] { return n.remaining_seen(sku) == 5; }, propagation_bound));
    CHECK(n.feed.bad_messages() == 0u);
    CHECK(n.cached.local_refusals() == 1u);
  }

  TEST_CASE("redis stock_feed: a killed subscription reconnects subscribes again and resyncs") {
    two_nodes n;
    const std::string sku = fresh_sku();
    n.set_stock(sku, 1);
    CHECK(n.reserve(n.a, sku, 1).status == reserve_status::reserved);
    REQUIRE(n.wait([&] { return n.cache.sold_out(sku); }, propagation_bound));
    REQUIRE(n.feed.resyncs() == 1u);
    const auto killed = shared_server().admin().command("CLIENT", "KILL", "TYPE", "pubsub");
    CHECK(killed.integer >= 1);
    // While the feed is down nothing is refused locally, and what happens
    // then (a rollback whose message may be lost) is read back on reconnect.
    n.rollback(sku, 1);
    CHECK(
        n.wait([&] { return n.feed.source().connect_count() >= 2 && n.feed.resyncs() >= 2; }, 5s));
    CHECK(n.wait([&] { return n.cache.live() && n.remaining_seen(sku) == 1; }, propagation_bound));
    CHECK_FALSE(n.cache.sold_out(sku));
    // The new subscription delivers.
    CHECK(n.reserve(n.a, sku, 3).status == reserve_status::reserved);
    CHECK(n.wait([&] { return n.cache.sold_out(sku); }, propagation_bound));
  }

  TEST_CASE("redis stock_feed: a resync read that fails is tried again until the store answers") {
    // The feed subscribes on the shared server; its store reads from another
    // one, down when the subscription comes up: the resync cannot read, the
    // cache stays not live (nothing refused locally), and once the store's
    // server is back the resync completes without a new subscription.
    asio::io_context io;
    redis_server other;
    redis_store store(io.get_executor(), seckill::test::config_for<connection_config>(other));
    std::optional<std::error_code> connected;
    store.async_connect([&](std::error_code ec) { connected = ec; });
    const auto run_until = [&](const std::function<bool()>& done, std::chrono::milliseconds limit) {
      const auto until = std::chrono::steady_clock::now() + limit;
      while (!done() && std::chrono::steady_clock::now() < until) {
        io.restart();
        io.run_for(2ms);
      }
      return done();
    };
    REQUIRE(run_until([&] { return connected.has_value(); }, 5s));
    REQUIRE_FALSE(*connected);
    seckill::stock_cache cache;
    const std::string sku = fresh_sku();
    cache.update(sku, 0);
    other.kill();
    feed_type feed(io.get_executor(), store, cache,
                   seckill::test::config_for<connection_config>(shared_server()));
    std::optional<std::error_code> started;
    feed.async_start([&](std::error_code ec) { started = ec; });
    REQUIRE(run_until([&] { return started.has_value(); }, 5s));
    REQUIRE_FALSE(*started);
    CHECK(run_until([&] { return feed.bad_messages() >= 2u; }, 5s));  // tried more than once
    CHECK(feed.last_error().find("resync read of sku '" + sku + "'") != std::string::npos);
    CHECK_FALSE(cache.live());
    CHECK_FALSE(cache.sold_out(sku));
    other.restart();
    CHECK(run_until([&] { return cache.live(); }, 15s));
    CHECK(feed.resyncs() == 1u);
    CHECK(feed.source().connect_count() == 1u);
    CHECK(cache.find(sku)->remaining == -1);  // the restarted server does not know it
    feed.close();
    store.close();
    io.restart();
    io.run_for(1s);
  }

  TEST_CASE("redis stock_feed: a message that is not a count is counted named and ignored") {
    two_nodes n;
    const std::string sku = fresh_sku();
    n.set_stock(sku, 2);
    REQUIRE(n.wait([&] { return n.remaining_seen(sku) == 2; }, propagation_bound));
    const std::string channel = "seckill:{" + sku + "}:stock";
    shared_server().admin().command("PUBLISH", channel, "many");
    CHECK(n.wait([&] { return n.feed.bad_messages() == 1u; }, propagation_bound));
    CHECK(n.feed.last_error().find("'many'") != std::string::npos);
    CHECK(n.remaining_seen(sku) == 2);
    shared_server().admin().command("PUBLISH", channel, "0");
    CHECK(n.wait([&] { return n.cache.sold_out(sku); }, propagation_bound));
  }

  TEST_CASE("redis subscriber: no pattern or RESP2 is refused with the value seen") {
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(shared_server());
    CHECK_THROWS_WITH_AS(seckill::redis::subscriber(io.get_executor(), cfg, {}, {}),
                         doctest::Contains("no channel pattern"), seckill::error);
    cfg.protocol = 2;
    CHECK_THROWS_WITH_AS(seckill::redis::subscriber(io.get_executor(), cfg, {"x*"}, {}),
                         doctest::Contains("protocol 2"), seckill::error);
    CHECK(feed_type::sku_of("seckill:{abc}:stock") == "abc");
    CHECK(feed_type::sku_of("seckill:{}:stock").empty());
    CHECK(feed_type::sku_of("other:{abc}:stock").empty());
  }
}

}  // namespace integration_stock_cache_redis
