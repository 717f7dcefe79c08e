// stock_cache fed by etcd::stock_feed: a second node (its own store, client
// and watch) learns a sold-out, a re-open and a restock of the first node's
// SKU within a bound and refuses locally meanwhile; a stock record that does
// not parse is named and ignored.

#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/stock_feed.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/stock_cache.hpp>

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <string>

namespace integration_etcd_stock_cache {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using seckill::reserve_status;
using seckill::test::eventually;
using seckill::test::tuple_awaitable;
using node_store = seckill::etcd::etcd_store<>;

// The bound a change must reach the other node within, on loopback.
constexpr auto propagation_bound = 2000ms;

std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return "stock-cache-" + std::to_string(++n) + "/";
}

std::int64_t seen(const seckill::stock_cache& cache, const std::string& sku) {
  const auto v = cache.find(sku);
  return v ? v->remaining : -2;
}

TEST_SUITE("integration") {
  TEST_CASE("etcd stock_cache: another node learns the sold-out and the re-open in time") {
    auto& etcd = seckill::test::shared_single_node();
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      seckill::etcd::etcd_store_options o;
      o.prefix = fresh_prefix();
      node_store a(io.get_executor(), etcd.options(), o);
      node_store b(io.get_executor(), etcd.options(), o);
      seckill::etcd::client c(io.get_executor(), etcd.options());
      seckill::etcd::watcher w(c);
      seckill::stock_cache cache;
      seckill::cached_store<node_store> cached(b, cache);
      seckill::etcd::stock_feed feed(w, o.prefix, cache);
      auto [sec] = co_await feed.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      const std::string sku = "phone/64";  // a '/' in the SKU: the key encodes it
      auto [e1] = co_await a.async_set_stock(sku, 1, tuple_awaitable);
      REQUIRE_MESSAGE(!e1, a.last_error());
      CHECK(co_await eventually([&] { return seen(cache, sku) == 1; }, propagation_bound));
      auto [e2, took] = co_await a.async_reserve(sku, 1, 1, 60s, tuple_awaitable);
      REQUIRE_FALSE(e2);
      CHECK(took.status == reserve_status::reserved);
      CHECK(co_await eventually([&] { return cache.sold_out(sku); }, propagation_bound));
      auto [e3, refused] = co_await cached.async_reserve(sku, 1, 2, 60s, tuple_awaitable);
      REQUIRE_FALSE(e3);
      CHECK(refused.status == reserve_status::sold_out);
      CHECK(cached.local_refusals() == 1u);
      auto [e4, rolled] = co_await a.async_rollback(sku, 1, tuple_awaitable);
      REQUIRE_FALSE(e4);
      CHECK(co_await eventually([&] { return seen(cache, sku) == 1; }, propagation_bound));
      CHECK_FALSE(cache.sold_out(sku));
      auto [e5, bought] = co_await cached.async_reserve(sku, 1, 3, 60s, tuple_awaitable);
      REQUIRE_FALSE(e5);
      CHECK(bought.status == reserve_status::reserved);
      auto [e6] = co_await a.async_set_stock(sku, 4, tuple_awaitable);
      REQUIRE_FALSE(e6);
      CHECK(co_await eventually([&] { return seen(cache, sku) == 4; }, propagation_bound));
      CHECK(feed.bad_records() == 0u);
      CHECK(cache.find(sku)->version > 0);
      feed.stop();
    });
  }

  TEST_CASE("etcd stock_feed: a stock record that does not parse is named and ignored") {
    auto& etcd = seckill::test::shared_single_node();
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      const std::string prefix = fresh_prefix();
      seckill::etcd::client c(io.get_executor(), etcd.options());
      seckill::etcd::watcher w(c);
      seckill::stock_cache cache;
      seckill::etcd::stock_feed feed(w, prefix, cache);
      auto [sec] = co_await feed.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      const std::string bad_key = prefix + "x/stock";
      const std::string bad_value = "{\"remaining\":\"lots\"}";
      auto [p1, r1] = co_await c.async_put(bad_key, bad_value, tuple_awaitable);
      REQUIRE_FALSE(p1);
      CHECK(co_await eventually([&] { return feed.bad_records() == 1u; }, propagation_bound));
      CHECK(feed.last_error().find("lots") != std::string::npos);
      CHECK(feed.last_error().find(bad_key) != std::string::npos);
      CHECK_FALSE(cache.find("x").has_value());
      const std::string good = "{\"remaining\":0,\"reserved\":0,\"committed\":3}";
      auto [p2, r2] = co_await c.async_put(bad_key, good, tuple_awaitable);
      REQUIRE_FALSE(p2);
      CHECK(co_await eventually([&] { return cache.sold_out("x"); }, propagation_bound));
      feed.stop();
    });
  }

  TEST_CASE("etcd stock_feed: only stock records under the prefix name a SKU") {
    using seckill::etcd::stock_feed;
    CHECK(stock_feed::sku_of("p/", "p/abc/stock") == "abc");
    CHECK(stock_feed::sku_of("p/", "p/a%2Fb/stock") == "a/b");
    CHECK(stock_feed::sku_of("p/", "p/a%25/stock") == "a%");
    CHECK_FALSE(stock_feed::sku_of("p/", "p/abc/order/1").has_value());
    CHECK_FALSE(stock_feed::sku_of("p/", "p/abc/orders/x/stock").has_value());
    CHECK_FALSE(stock_feed::sku_of("p/", "q/abc/stock").has_value());
    CHECK_FALSE(stock_feed::sku_of("p/", "p//stock").has_value());
    CHECK_FALSE(stock_feed::sku_of("p/", "p/a%2/stock").has_value());
  }
}

}  // namespace integration_etcd_stock_cache
