// The grabber end to end: a real headless Chromium on the demo shop, which this
// test serves on 127.0.0.1; the shop counts every POST /order it receives.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace integration_grabber {

using namespace std::chrono_literals;
using browser_support::get;
using seckill::errc;
namespace asio = boost::asio;
namespace sb = seckill::browser;

struct grabber_fixture : browser_support::browser_fixture, browser_support::grab_log {
  shop::shop_server shop;

  grabber_fixture() {
    auto [ec, r] = get(page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == 1);  // the page's event stream is open
  }
};

}  // namespace integration_grabber

using namespace integration_grabber;

TEST_SUITE("integration") {
  TEST_CASE("a restock leads to exactly one POST /order for the strategy's SKU") {
    grabber_fixture f;
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.page,
                  sb::priority_strategy(
                      sb::parse_strategy("want = sku:veg-box, sku:eggs-12\nquantity = 2\n")),
                  pace, f.options());
    auto run = g.async_run(90s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    CHECK(f.shop.orders().empty());      // nothing in stock: nothing bought
    f.shop.set_stock("apples-1kg", 10);  // first in the list, not wanted
    f.shop.set_stock("veg-box", 5);
    auto [ec, res] = get(run, 100s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(res.sku == "veg-box");
    CHECK(res.quantity == 2);
    CHECK(res.attempts == 1);
    CHECK(res.confirmation.find("Order confirmed") != std::string::npos);
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(f.shop, "veg-box", 2, 3);
    CHECK(f.logged("grabber: ordered"));
    CHECK(f.logged("grabber: confirmed"));
    bool saw_decided = false;
    for (const auto& e : res.events) saw_decided = saw_decided || e.step == sb::grab_step::decided;
    CHECK(saw_decided);
  }

  TEST_CASE("a flapping stock status still gives exactly one order") {
    grabber_fixture f;
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.page, sb::priority_strategy(sb::parse_strategy("want = category:dairy\n")),
                  pace, f.options());
    auto run = g.async_run(90s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 3; ++i) {
      f.shop.set_stock("eggs-12", 4);
      f.shop.sell_out();
    }
    f.shop.set_stock("eggs-12", 4);
    auto [ec, res] = get(run, 100s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    // It keeps flapping after the order: the grabber has stopped.
    for (int i = 0; i < 3; ++i) {
      f.shop.sell_out();
      f.shop.set_stock("eggs-12", 4);
    }
    std::this_thread::sleep_for(700ms);
    const auto orders = f.shop.orders();
    REQUIRE(orders.size() == 1);
    CHECK(orders[0].sku == "eggs-12");
    CHECK(orders[0].quantity == 1);
    CHECK(orders[0].accepted);
    int changes = 0;
    for (const auto& e : res.events) changes += e.step == sb::grab_step::stock_changed;
    CHECK(changes >= 2);  // the page load and at least one flip
  }

  TEST_CASE(
      "nothing wanted within the price cap: no order - and the deadline ends the run on time") {
    grabber_fixture f;
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(
        f.page, sb::priority_strategy(sb::parse_strategy("want = sku:rice-5kg\nmax_price = 10\n")),
        pace, f.options());
    const auto t0 = std::chrono::steady_clock::now();
    auto run = g.async_run(1500ms, asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("rice-5kg", 3);  // 12.90 > 10
    auto [ec, res] = get(run, 30s);
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(ec == errc::timed_out);
    CHECK_FALSE(res.ordered);
    CHECK(took >= 1500ms);
    CHECK(took < 4000ms);  // generous: the machine may be loaded
    CHECK(f.shop.orders().empty());
    CHECK(f.logged("grabber: skipped"));
    CHECK(f.logged("grabber: gave-up"));
  }
}
