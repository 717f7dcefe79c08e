// stock_cache and cached_store over memory_store: sold out is refused
// locally without a request id, a retry by request id still learns what the
// store holds, restocks and returned units re-open the SKU, a stale entry
// stops being trusted, and what each buyer is told matches the store.

#include <seckill/error.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/purchase/policies.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/stock_cache.hpp>

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace unit_stock_cache {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using seckill::reserve_status;
using cached = seckill::cached_store<seckill::memory_store<>>;

struct node {
  seckill::stock_cache cache;
  cached store;
  node(seckill::memory_store<>& shared, seckill::stock_cache_options o = {})
      : cache(o), store(shared, cache) {}
};

struct fixture {
  asio::io_context io;
  seckill::memory_store<> shared{io.get_executor()};

  void drain() {
    io.restart();
    io.run();
  }
  template <class Store>
  void stock(Store& s, const std::string& sku, std::int64_t units) {
    std::optional<std::error_code> got;
    s.async_set_stock(sku, units, [&](std::error_code ec) { got = ec; });
    drain();
    REQUIRE(got == std::error_code{});
  }
  template <class Store>
  seckill::reserve_result reserve(Store& s, const std::string& sku, seckill::reserve_request r) {
    std::optional<seckill::reserve_result> got;
    s.async_reserve(sku, r, [&](std::error_code ec, seckill::reserve_result res) {
      REQUIRE_FALSE(ec);
      got = res;
    });
    drain();
    REQUIRE(got.has_value());
    return *got;
  }
  template <class Store>
  seckill::reserve_result buy(Store& s, const std::string& sku, std::int64_t order) {
    seckill::reserve_request r;
    r.order_id = order;
    return reserve(s, sku, r);
  }
  seckill::stock_level level(const std::string& sku) {
    std::optional<seckill::stock_level> got;
    shared.async_stock(sku, [&](std::error_code ec, seckill::stock_level l) {
      REQUIRE_FALSE(ec);
      got = l;
    });
    drain();
    REQUIRE(got.has_value());
    return *got;
  }
};

static_assert(seckill::stock_store<cached>);

TEST_SUITE("unit") {
  TEST_CASE("stock_cache: an entry is sold out at 0 while fresh and the feed is live") {
    // a trust period no scheduling stall on a loaded machine reaches between two lines
    seckill::stock_cache cache({.trust_sold_out_for = 1s});
    CHECK_FALSE(cache.sold_out("a"));
    CHECK_FALSE(cache.find("a").has_value());
    CHECK(cache.update("a", 3));
    CHECK_FALSE(cache.sold_out("a"));
    CHECK(cache.find("a")->remaining == 3);
    CHECK(cache.update("a", 0));
    CHECK(cache.sold_out("a"));
    cache.set_live(false);
    CHECK_FALSE(cache.sold_out("a"));
    cache.set_live(true);
    CHECK(cache.sold_out("a"));
    std::this_thread::sleep_for(cache.options().trust_sold_out_for + 20ms);
    CHECK_FALSE(cache.sold_out("a"));  // too old to refuse a sale on
    CHECK(cache.find("a")->remaining == 0);
    cache.update("a", 0);
    CHECK(cache.sold_out("a"));
    cache.invalidate("a");
    CHECK_FALSE(cache.sold_out("a"));
    CHECK(cache.find("a")->remaining == -1);
    CHECK(cache.size() == 1u);
    CHECK(cache.skus() == std::vector<std::string>{"a"});
  }

  TEST_CASE("stock_cache: an update older than the entry's version is ignored") {
    seckill::stock_cache cache;
    CHECK(cache.update("a", 5, 10));
    CHECK_FALSE(cache.update("a", 0, 9));
    CHECK(cache.find("a")->remaining == 5);
    CHECK(cache.find("a")->version == 10);
    CHECK(cache.update("a", 0, 11));
    CHECK(cache.sold_out("a"));
    CHECK(cache.update("a", 2));  // unversioned: always applied
    CHECK_FALSE(cache.sold_out("a"));
    std::vector<std::int64_t> seen;
    cache.set_observer([&](const std::string&, std::int64_t r) { seen.push_back(r); });
    cache.update("a", 7, 12);
    cache.update("a", 1, 3);
    CHECK(seen == std::vector<std::int64_t>{7});
  }

  TEST_CASE("cached_store: once sold out a reserve without request id is refused locally") {
    fixture fx;
    node n(fx.shared);
    fx.stock(n.store, "sku", 2);
    CHECK(n.cache.find("sku")->remaining == 2);
    CHECK(fx.buy(n.store, "sku", 1).status == reserve_status::reserved);
    CHECK(fx.buy(n.store, "sku", 2).status == reserve_status::reserved);
    CHECK(n.cache.sold_out("sku"));
    CHECK(n.store.local_refusals() == 0u);
    const auto refused = fx.buy(n.store, "sku", 3);
    CHECK(refused.status == reserve_status::sold_out);
    CHECK(refused.remaining == 0);
    CHECK(refused.order_id == 0);
    CHECK(refused.state == seckill::order_state::refused);
    CHECK(n.store.local_refusals() == 1u);
    // The store never saw order 3: a reserve of it there is a fresh attempt.
    const auto direct = fx.buy(fx.shared, "sku", 3);
    CHECK(direct.status == reserve_status::sold_out);
    CHECK_FALSE(direct.replayed);
    CHECK(fx.level("sku").reserved == 2);
  }

  TEST_CASE("cached_store: a closed sale window is answered ended - never a cached sold_out") {
    fixture fx;
    node n(fx.shared);
    fx.stock(fx.shared, "sku", 0);  // sold out, but this node's cache has not heard it
    seckill::sku_policy closed;
    closed.sale_start = seckill::sale_time{1ms};
    closed.sale_end = seckill::sale_time{2ms};  // long past on the system clock
    std::optional<std::error_code> set;
    fx.shared.async_set_policy("sku", closed, [&](std::error_code ec) { set = ec; });
    fx.drain();
    REQUIRE(set == std::error_code{});
    for (std::int64_t order = 1; order <= 3; ++order) {
      const auto answer = fx.buy(n.store, "sku", order);
      CHECK(answer.status == reserve_status::ended);
    }
    CHECK_FALSE(n.cache.sold_out("sku"));
    CHECK(n.store.local_refusals() == 0u);
  }

  TEST_CASE("cached_store: a retry by request id whose first attempt took the last unit replays") {
    fixture fx;
    node n(fx.shared);
    fx.stock(n.store, "sku", 1);
    seckill::reserve_request first;
    first.order_id = 11;
    first.user = "alice";
    first.request_id = "r-1";
    const auto took = fx.reserve(n.store, "sku", first);
    REQUIRE(took.status == reserve_status::reserved);
    REQUIRE(n.cache.sold_out("sku"));
    // The buyer never saw that answer (a timeout) and retries with a new order id.
    seckill::reserve_request retry = first;
    retry.order_id = 12;
    const auto again = fx.reserve(n.store, "sku", retry);
    CHECK(again.status == reserve_status::reserved);
    CHECK(again.replayed);
    CHECK(again.order_id == 11);
    CHECK(again.state == seckill::order_state::held);
    CHECK(n.store.local_refusals() == 0u);
    std::optional<std::error_code> committed;
    n.store.async_commit("sku", 11,
                         [&](std::error_code ec, seckill::settle_result) { committed = ec; });
    fx.drain();
    REQUIRE(committed == std::error_code{});
    retry.order_id = 13;
    const auto late = fx.reserve(n.store, "sku", retry);
    CHECK(late.replayed);
    CHECK(late.order_id == 11);
    CHECK(late.state == seckill::order_state::committed);
    // Another buyer's request is a fresh attempt: the store says sold out.
    seckill::reserve_request other;
    other.order_id = 14;
    other.user = "bob";
    other.request_id = "r-1";
    CHECK(fx.reserve(n.store, "sku", other).status == reserve_status::sold_out);
    CHECK(n.store.local_refusals() == 0u);
    CHECK(fx.level("sku").committed == 1);
  }

  TEST_CASE(
      "cached_store: a repeated order id without request id is refused locally and given back") {
    fixture fx;
    node n(fx.shared);
    fx.stock(n.store, "sku", 1);
    CHECK(fx.buy(n.store, "sku", 1).status == reserve_status::reserved);
    // The caller lost that answer and repeats order 1 with no request id:
    // the cache answers, so it hears sold out, while the store holds order 1.
    const auto again = fx.buy(n.store, "sku", 1);
    CHECK(again.status == reserve_status::sold_out);
    CHECK_FALSE(again.replayed);
    CHECK(n.store.local_refusals() == 1u);
    CHECK(fx.level("sku").reserved == 1);
    // Its rollback (what the engine sends after any reserve without a
    // definite answer) gives the unit back and re-opens the SKU.
    std::optional<std::error_code> rolled;
    n.store.async_rollback("sku", 1,
                           [&](std::error_code ec, seckill::settle_result) { rolled = ec; });
    fx.drain();
    REQUIRE(rolled == std::error_code{});
    CHECK(fx.level("sku").reserved == 0);
    CHECK(fx.level("sku").remaining == 1);
    CHECK_FALSE(n.cache.sold_out("sku"));
  }

  TEST_CASE("cached_store: a restock and a rollback re-open the SKU") {
    fixture fx;
    node n(fx.shared);
    fx.stock(n.store, "sku", 1);
    CHECK(fx.buy(n.store, "sku", 1).status == reserve_status::reserved);
    CHECK(n.cache.sold_out("sku"));
    std::optional<std::error_code> rolled;
    n.store.async_rollback("sku", 1,
                           [&](std::error_code ec, seckill::settle_result) { rolled = ec; });
    fx.drain();
    REQUIRE(rolled == std::error_code{});
    CHECK_FALSE(n.cache.sold_out("sku"));
    CHECK(fx.buy(n.store, "sku", 2).status == reserve_status::reserved);
    CHECK(n.cache.sold_out("sku"));
    fx.stock(n.store, "sku", 4);
    CHECK_FALSE(n.cache.sold_out("sku"));
    CHECK(fx.buy(n.store, "sku", 3).status == reserve_status::reserved);
    CHECK(n.cache.find("sku")->remaining == 3);
    CHECK(n.store.local_refusals() == 0u);
  }

  TEST_CASE("cached_store: a reap that gave units back re-opens the SKU") {
    fixture fx;
    node n(fx.shared);
    fx.stock(n.store, "sku", 1);
    seckill::reserve_request r;
    r.order_id = 1;
    r.hold = 1ms;
    CHECK(fx.reserve(n.store, "sku", r).status == reserve_status::reserved);
    CHECK(n.cache.sold_out("sku"));
    std::this_thread::sleep_for(5ms);
    std::optional<std::size_t> reaped;
    n.store.async_reap_expired("sku", 10, [&](std::error_code ec, std::size_t count) {
      REQUIRE_FALSE(ec);
      reaped = count;
    });
    fx.drain();
    REQUIRE(reaped == 1u);
    CHECK_FALSE(n.cache.sold_out("sku"));
    CHECK(fx.buy(n.store, "sku", 2).status == reserve_status::reserved);
  }

  TEST_CASE("cached_store: another node learns sold out from its first store answer") {
    fixture fx;
    node a(fx.shared);
    node b(fx.shared);
    fx.stock(a.store, "sku", 1);
    CHECK(fx.buy(a.store, "sku", 1).status == reserve_status::reserved);
    CHECK_FALSE(b.cache.sold_out("sku"));  // nothing fed b yet
    CHECK(fx.buy(b.store, "sku", 2).status == reserve_status::sold_out);
    CHECK(b.store.local_refusals() == 0u);
    CHECK(b.cache.sold_out("sku"));
    CHECK(fx.buy(b.store, "sku", 3).status == reserve_status::sold_out);
    CHECK(b.store.local_refusals() == 1u);
  }

  TEST_CASE("cached_store: a sold-out entry past its trust period goes to the store again") {
    fixture fx;
    node n(fx.shared, {.trust_sold_out_for = 1s});  // no stall reaches it between two lines
    fx.stock(n.store, "sku", 1);
    CHECK(fx.buy(n.store, "sku", 1).status == reserve_status::reserved);
    // Units come back behind this node's back (another node's rollback, no feed).
    std::optional<std::error_code> rolled;
    fx.shared.async_rollback("sku", 1,
                             [&](std::error_code ec, seckill::settle_result) { rolled = ec; });
    fx.drain();
    REQUIRE(rolled == std::error_code{});
    CHECK(fx.buy(n.store, "sku", 2).status == reserve_status::sold_out);  // stale, refused locally
    CHECK(n.store.local_refusals() == 1u);
    std::this_thread::sleep_for(n.cache.options().trust_sold_out_for + 20ms);
    CHECK(fx.buy(n.store, "sku", 3).status == reserve_status::reserved);
    CHECK(n.store.local_refusals() == 1u);
  }

  TEST_CASE("cached_store: unknown SKUs and bad requests add nothing and go to the store") {
    fixture fx;
    node n(fx.shared);
    CHECK(fx.buy(n.store, "nothing-here", 1).status == reserve_status::unknown_sku);
    CHECK(n.cache.size() == 0u);
    fx.stock(n.store, "sku", 1);
    CHECK(fx.buy(n.store, "sku", 1).status == reserve_status::reserved);
    REQUIRE(n.cache.sold_out("sku"));
    std::optional<std::error_code> got;
    seckill::reserve_request bad;
    bad.order_id = 0;  // invalid: the store names it, the cache does not hide it
    n.store.async_reserve("sku", bad,
                          [&](std::error_code ec, seckill::reserve_result) { got = ec; });
    fx.drain();
    CHECK(got == seckill::errc::invalid_argument);
    CHECK(n.store.local_refusals() == 0u);
  }

  TEST_CASE("cached_store: every buyer's answer matches the store after a sell-out race") {
    fixture fx;
    node a(fx.shared);
    node b(fx.shared);
    const std::int64_t units = 7;
    fx.stock(a.store, "sku", units);
    std::vector<seckill::reserve_result> answers;
    for (std::int64_t i = 1; i <= 40; ++i) {
      cached& via = (i % 2 == 0) ? a.store : b.store;
      via.async_reserve("sku", 1, i, 30s, [&](std::error_code ec, seckill::reserve_result r) {
        REQUIRE_FALSE(ec);
        answers.push_back(r);
      });
    }
    fx.drain();
    REQUIRE(answers.size() == 40u);
    std::int64_t told_reserved = 0;
    for (const auto& r : answers) {
      if (r.status == reserve_status::reserved) ++told_reserved;
    }
    const auto l = fx.level("sku");
    CHECK(told_reserved == units);
    CHECK(l.reserved == told_reserved);
    CHECK(l.remaining == 0);
    // Each refusal holds nothing in the store.
    for (std::int64_t i = 1; i <= 40; ++i) {
      const auto r = answers[static_cast<std::size_t>(i - 1)];
      if (r.status != reserve_status::reserved) CHECK(r.order_id == 0);
    }
  }

  TEST_CASE("cached_store: purchase_engine runs over the decorator unchanged") {
    asio::io_context io;
    seckill::memory_store<> shared{io.get_executor()};
    seckill::stock_cache cache;
    cached store{shared, cache};
    struct ids {
      std::int64_t last = 100;
      std::int64_t next(std::error_code& ec) noexcept {
        ec = {};
        return ++last;
      }
    };
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    ids id;
    seckill::no_payment payment;
    seckill::memory_orders orders;
    seckill::purchase_engine engine{store, limiter, breaker, id, payment, orders};
    store.async_set_stock("sku", 1, [](std::error_code) {});
    io.run();
    std::vector<std::error_code> got;
    for (int i = 0; i < 3; ++i) {
      engine.async_purchase(
          {.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result) { got.push_back(ec); });
      io.restart();
      io.run();
    }
    REQUIRE(got.size() == 3u);
    CHECK(got[0] == std::error_code{});
    CHECK(got[1] == seckill::errc::sold_out);
    CHECK(got[2] == seckill::errc::sold_out);
    CHECK(store.local_refusals() == 2u);
    CHECK(orders.size() == 1u);
  }
}

}  // namespace unit_stock_cache
