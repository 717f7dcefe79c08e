// Stock from the network end to end: a real headless Chromium on the demo
// shop's /api-shop page, which shows the stock only through the JSON its
// script polls (GET /api/stock). The grabber reads those responses as the
// page receives them, re-checks a restock, and buys on the page; the shop
// records every order and every poll.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace integration_network {

using namespace std::chrono_literals;
using browser_support::get;
using seckill::errc;
namespace asio = boost::asio;
namespace sb = seckill::browser;

const char* const api_profile_text =
    "stock_response    = /api/stock\n"
    "stock_offers      = $.skus[*]\n"
    "stock_offer.sku   = sku\n"
    "stock_offer.stock = stock\n"
    "stock_offer.price = price\n";

struct api_fixture : browser_support::browser_fixture, browser_support::grab_log {
  shop::shop_server shop;

  api_fixture() {
    auto [ec, r] = get(page.async_navigate(shop.api_url(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    const int polls = shop.stock_polls();
    for (int i = 0; i < 500 && shop.stock_polls() < polls + 2; ++i)
      std::this_thread::sleep_for(10ms);
    REQUIRE(shop.stock_polls() >= polls + 2);  // the page polls
  }

  // A driver by the JSON profile whose log goes with the grabber's.
  sb::page_driver driver(std::size_t max_body = std::size_t{1} << 20) {
    sb::page_driver_options o;
    o.max_response_body = max_body;
    o.log = options().log;
    return sb::page_driver(page, sb::parse_profile(api_profile_text), std::move(o));
  }
};

}  // namespace integration_network

using namespace integration_network;

TEST_SUITE("integration") {
  TEST_CASE("network stock: a restock seen only in polled JSON gives exactly one order") {
    api_fixture f;
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.driver(),
                  sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\nquantity = 2\n")),
                  pace, f.options());
    auto run = g.async_run(60s, asio::use_future);
    std::this_thread::sleep_for(600ms);
    CHECK(f.shop.orders().empty());      // nothing in stock: nothing bought
    f.shop.set_stock("apples-1kg", 10);  // not wanted
    f.shop.set_stock("veg-box", 5);
    auto [ec, res] = get(run, 70s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(res.sku == "veg-box");
    CHECK(res.quantity == 2);
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(f.shop, "veg-box", 2, 3);
    CHECK(f.logged("waiting for a newer response to confirm it"));
    CHECK(f.logged("confirmed by a newer one)"));
    CHECK(f.logged("grabber: decided: 2 x veg-box at 18.50"));  // the price from the JSON
  }

  TEST_CASE("network stock: a stale cached body saying in stock is never acted on") {
    api_fixture f;
    // Sold out; the endpoint serves an old "in stock" body, cacheable, with an Age.
    f.shop.serve_stale_stock(R"({"skus":[{"sku":"veg-box","price":18.5,"stock":4}]})");
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.driver(), sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")),
                  pace, f.options());
    auto [ec, res] = get(g.async_run(2500ms, asio::use_future), 30s);
    CHECK(ec == errc::timed_out);
    CHECK_FALSE(res.ordered);
    CHECK(res.attempts == 0);
    CHECK(f.shop.orders().empty());
    CHECK(f.logged("came from a cache: stale, not acted on"));
    CHECK(f.count("grabber: unconfirmed") == 1);  // said once, not per poll
  }

  TEST_CASE(
      "network stock: bodies that are not JSON - too large - or lack the path are said once") {
    api_fixture f;
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.driver(4096), sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")),
                  pace, f.options());
    auto run = g.async_run(60s, asio::use_future);
    f.shop.serve_stock_body("<html>busy, try later</html>", "text/html");
    std::this_thread::sleep_for(1200ms);
    f.shop.serve_stock_body(R"({"skus":[)" + std::string(8000, ' ') + "]}");
    std::this_thread::sleep_for(1200ms);
    f.shop.serve_stock_body(R"({"items":[{"sku":"veg-box","stock":3}]})");
    std::this_thread::sleep_for(1200ms);
    CHECK(f.count("says nothing of the stock: the body is not JSON") == 1);
    CHECK(f.count("was not read: too large: ") == 1);
    CHECK(f.logged("(limit 4096)"));
    CHECK(f.count("says nothing of the stock: stock_offers '$.skus[*]' selects nothing") == 1);
    CHECK(f.shop.orders().empty());
    // The driver still reads the next good body: a restock is bought.
    f.shop.serve_stock_body(std::nullopt);
    f.shop.set_stock("veg-box", 2);
    auto [ec, res] = get(run, 70s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(f.shop.orders().size() == 1);
  }

  TEST_CASE(
      "network stock: watching leaves the page's polls unchanged - their number and headers") {
    api_fixture f;
    const auto measure = [&f] {
      const int before = f.shop.stock_polls();
      std::this_thread::sleep_for(1500ms);
      return std::make_pair(f.shop.stock_polls() - before, f.shop.last_poll_fields());
    };
    const auto [plain, plain_fields] = measure();
    sb::page_driver d = f.driver();
    const std::error_code ew = get(d.async_watch(asio::use_future));
    REQUIRE_MESSAGE(!ew, ew.message());
    const auto [watched, watched_fields] = measure();
    // The page polls every 200 ms after each answer: about 7 in 1.5 s either way.
    CHECK(plain >= 4);
    CHECK(std::abs(watched - plain) <= 2);
    CHECK(watched_fields == plain_fields);
    // And the watcher did read them.
    int events = 0;
    for (;;) {
      const auto [e, ev] = get(d.async_next_event(0ns, asio::use_future));
      if (e || !ev) break;
      events += ev->source == sb::event_source::network;
    }
    CHECK(events >= 4);
  }

  TEST_CASE("network stock: server-sent events carry the stock - the page's status confirms it") {
    browser_support::browser_fixture b;
    browser_support::grab_log log;
    shop::shop_server shop;
    sb::page_driver_options o;
    o.log = log.options().log;
    sb::page_driver d(b.page,
                      sb::parse_profile("stock_response    = /events\n"
                                        "stock_offers      = $.skus[*]\n"
                                        "stock_offer.sku   = sku\n"
                                        "stock_offer.stock = stock\n"
                                        "stock_offer.price = price\n"
                                        "stock_confirm     = page\n"),
                      std::move(o));
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(d,
                  sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\nquantity = 2\n")),
                  pace, log.options());
    auto run = g.async_run(60s, asio::use_future);
    // The stream must open after the watch: the page is loaded now.
    for (int i = 0; i < 200 && !log.logged("grabber: watching"); ++i)
      std::this_thread::sleep_for(10ms);
    auto [ec_nav, r] = get(b.page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!ec_nav, ec_nav.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == 1);
    std::this_thread::sleep_for(300ms);
    CHECK(shop.orders().empty());
    shop.set_stock("veg-box", 5);  // one message: the page's status confirms it
    auto [ec, res] = get(run, 70s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    std::this_thread::sleep_for(300ms);
    const auto orders = shop.orders();
    REQUIRE(orders.size() == 1);
    CHECK(orders[0].sku == "veg-box");
    CHECK(orders[0].quantity == 2);
    CHECK(log.logged(", the page agrees)"));
  }
}
