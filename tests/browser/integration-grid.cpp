// The grabber on a shop of another shape: the demo shop's button grid
// ("/grid": one button per SKU, Chinese texts, - / + for the quantity, trusted
// clicks only), driven in a real headless Chromium by the profile the
// grocery_grabber example ships for it.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

namespace integration_grid {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;

/// Starts an operation completing with (error_code) and waits for its code.
template <class Start>
std::error_code code_of(Start start) {
  std::promise<std::error_code> done;
  auto f = done.get_future();
  start([&done](std::error_code ec) { done.set_value(ec); });
  return get(f);
}

using browser_support::grid_profile;

struct grid_fixture : browser_support::browser_fixture, browser_support::grab_log {
  shop::shop_server shop;
  sb::page_driver driver{page, grid_profile()};

  grid_fixture() {
    auto [ec, r] = get(page.async_navigate(shop.grid_url(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == 1);  // the page's event stream is open
  }

  nlohmann::json eval(const std::string& expression) {
    auto [ec, v] = get(page.async_evaluate(expression, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    return v;
  }
};

}  // namespace integration_grid

using namespace integration_grid;

TEST_SUITE("integration") {
  TEST_CASE("grid shop: the profile reads every offer - sold out ones included") {
    grid_fixture f;
    f.shop.set_stock("veg-box", 5);
    for (int i = 0;
         i < 200 && f.eval("document.getElementById('stock-flag').textContent") != "有货"; ++i)
      std::this_thread::sleep_for(10ms);
    auto [ec, snap] = get(f.driver.async_snapshot(asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(snap.status == "有货");
    REQUIRE(snap.offers.size() == 4);
    CHECK(snap.offers[0].sku == "apples-1kg");
    CHECK(snap.offers[0].name == "Apples, 1 kg");
    CHECK(snap.offers[0].category == "fruit");
    CHECK(snap.offers[0].price == doctest::Approx(3.20));
    CHECK(snap.offers[0].stock == 0);
    CHECK(snap.offers[1].sku == "veg-box");
    CHECK(snap.offers[1].price == doctest::Approx(18.50));
    CHECK(snap.offers[1].stock == 5);
  }

  TEST_CASE("grid shop: a script's click does nothing - the page heeds trusted input only") {
    grid_fixture f;
    f.shop.set_stock("eggs-12", 2);
    for (int i = 0; i < 200 && f.eval("document.getElementById('submit').disabled") != false; ++i)
      std::this_thread::sleep_for(10ms);
    f.eval(
        "document.querySelector('[data-sku=\"eggs-12\"]').click(); "
        "document.querySelector('.qty .plus').click(); "
        "document.getElementById('submit').click(); true");
    std::this_thread::sleep_for(300ms);
    CHECK(f.eval("document.querySelectorAll('.sku.selected').length") == 0);
    CHECK(f.eval("document.querySelector('.qty .count').textContent") == "1");
    CHECK(f.eval("document.getElementById('msg').textContent") == "");
    CHECK(f.shop.orders().empty());
  }

  TEST_CASE("grid shop: a restock leads to one order with the quantity reached by + clicks") {
    grid_fixture f;
    seckill::token_bucket<> pace(10, 3);
    sb::grabber g(f.driver,
                  sb::priority_strategy(sb::parse_strategy(
                      "want = sku:rice-5kg, category:vegetables\nquantity = 3\n")),
                  pace, f.options());
    auto run = g.async_run(90s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    CHECK(f.shop.orders().empty());      // 售罄: nothing bought
    f.shop.set_stock("apples-1kg", 10);  // not wanted
    f.shop.set_stock("veg-box", 5);
    auto [ec, res] = get(run, 100s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(res.sku == "veg-box");
    CHECK(res.quantity == 3);
    CHECK(res.confirmation.find("下单成功") != std::string::npos);
    std::this_thread::sleep_for(300ms);
    browser_support::check_one_order(f.shop, "veg-box", 3, 2);
    CHECK(f.logged("grabber: stock-changed: #2 '有货'"));
    CHECK(f.logged("grabber: confirmed: 下单成功"));
  }

  TEST_CASE("grid shop: a wanted SKU restocked while the status already says 有货 is bought") {
    grid_fixture f;
    seckill::token_bucket<> pace(10, 3);
    sb::grabber g(f.driver, sb::priority_strategy(sb::parse_strategy("want = sku:eggs-12\n")), pace,
                  f.options());
    auto run = g.async_run(90s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("rice-5kg", 4);  // 有货, but nothing wanted
    for (int i = 0; i < 500 && !f.logged("grabber: skipped"); ++i)
      std::this_thread::sleep_for(10ms);
    REQUIRE(f.logged("grabber: skipped"));
    f.shop.set_stock("eggs-12", 2);  // the status text stays 有货: only the offers change
    auto [ec, res] = get(run, 100s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(res.sku == "eggs-12");
    CHECK(f.logged("the offers changed"));
    std::this_thread::sleep_for(300ms);
    const auto orders = f.shop.orders();
    REQUIRE(orders.size() == 1);
    CHECK(orders[0].sku == "eggs-12");
    CHECK(orders[0].accepted);
  }

  TEST_CASE("grid shop: a profile's logged-in sign that the page lacks ends the run at once") {
    grid_fixture f;
    sb::site_profile needs_login = grid_profile();
    needs_login.logged_in = "header .user-name";  // the demo grid has no login
    seckill::token_bucket<> pace(10, 3);
    sb::grabber g(sb::page_driver(f.page, needs_login),
                  sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")), pace,
                  f.options());
    auto [ec, res] = get(g.async_run(90s, asio::use_future), 30s);
    CHECK(ec == sb::errc::not_logged_in);
    CHECK(ec.message() == "not logged in to the shop");
    CHECK(res.events.empty());
    sb::site_profile shown = grid_profile();
    shown.logged_in = "h1";  // a sign the page does show
    sb::page_driver ok(f.page, shown);
    CHECK_FALSE(code_of([&](auto h) { ok.async_watch(h); }));
  }

  TEST_CASE("grid shop: the order's own response can be its answer - success_response") {
    grid_fixture f;
    sb::site_profile by_response = grid_profile();
    by_response.success_response = "/order";
    sb::page_driver d(f.page, by_response);
    f.shop.set_stock("veg-box", 3);
    for (int i = 0; i < 200 && f.eval("document.getElementById('submit').disabled") != false; ++i)
      std::this_thread::sleep_for(10ms);
    REQUIRE_FALSE(code_of([&](auto h) { d.async_watch(h); }));
    REQUIRE_FALSE(code_of([&](auto h) { d.async_choose("veg-box", h); }));
    REQUIRE_FALSE(code_of([&](auto h) { d.async_press_buy(h); }));  // accepted: HTTP 200
    REQUIRE(f.shop.wait_for_orders(1, 10s));
    // Veg-box sells out while eggs come in: buy stays enabled, veg-box stays chosen.
    f.shop.set_stock("eggs-12", 1);
    f.shop.set_stock("veg-box", 0);
    for (int i = 0;
         i < 200 && f.eval("document.querySelector('[data-sku=\"veg-box\"]').disabled") != true;
         ++i)
      std::this_thread::sleep_for(10ms);
    REQUIRE_FALSE(code_of([&](auto h) { d.async_press_buy(h); }));  // refused: HTTP 409
    std::vector<sb::shop_event> outcomes;
    for (int i = 0; i < 40 && outcomes.size() < 4; ++i) {
      auto [en, ev] = get(d.async_next_event(1s, asio::use_future));
      REQUIRE_MESSAGE(!en, en.message());
      if (ev && ev->kind == sb::shop_event_kind::outcome) outcomes.push_back(*ev);
    }
    // Each order answered twice: by its response and by the #msg text.
    int ok = 0, refused = 0;
    for (const auto& o : outcomes) {
      if (o.text.rfind("HTTP 200 ", 0) == 0 && o.confirmed) ++ok;
      if (o.text.rfind("HTTP 409 ", 0) == 0 && !o.confirmed) ++refused;
    }
    CHECK(ok == 1);
    CHECK(refused == 1);
    CHECK(f.shop.orders().size() == 2);
  }

  TEST_CASE("grid shop: + and - clicks reach a count - and buy without a choice is refused") {
    grid_fixture f;
    f.shop.set_stock("eggs-12", 3);
    for (int i = 0;
         i < 200 && f.eval("document.getElementById('stock-flag').textContent") != "有货"; ++i)
      std::this_thread::sleep_for(10ms);
    const std::error_code eq = code_of([&](auto h) { f.driver.async_set_quantity(3, h); });
    REQUIRE_MESSAGE(!eq, eq.message());
    CHECK(f.eval("document.querySelector('.qty .count').textContent") == "3");
    const std::error_code eq2 = code_of([&](auto h) { f.driver.async_set_quantity(2, h); });
    REQUIRE_MESSAGE(!eq2, eq2.message());
    CHECK(f.eval("document.querySelector('.qty .count').textContent") == "2");
    const std::error_code ec3 = code_of([&](auto h) { f.driver.async_choose("no-such-sku", h); });
    CHECK(ec3 == sb::errc::element_not_found);
    // Press buy with no offer chosen: the shop's page refuses it.
    const std::error_code ew = code_of([&](auto h) { f.driver.async_watch(h); });
    REQUIRE_MESSAGE(!ew, ew.message());
    const std::error_code ep = code_of([&](auto h) { f.driver.async_press_buy(h); });
    REQUIRE_MESSAGE(!ep, ep.message());
    std::optional<sb::shop_event> outcome;
    for (int i = 0; i < 10 && !outcome; ++i) {
      auto [en, ev] = get(f.driver.async_next_event(2s, asio::use_future));
      REQUIRE_MESSAGE(!en, en.message());
      if (ev && ev->kind == sb::shop_event_kind::outcome) outcome = ev;
    }
    REQUIRE(outcome.has_value());
    CHECK_FALSE(outcome->confirmed);
    CHECK(outcome->text.find("下单失败") != std::string::npos);
    CHECK(f.shop.orders().empty());
  }
}
