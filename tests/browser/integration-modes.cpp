// Dry run and monitor on the demo shop in a real headless Chromium: the shop
// (served on 127.0.0.1 by this test) records every POST /order it receives.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <vector>

namespace integration_modes {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;

struct modes_fixture : browser_support::browser_fixture, browser_support::grab_log {
  shop::shop_server shop;
  std::mutex told_mutex;
  std::vector<sb::notice> told;

  modes_fixture() {
    auto [ec, r] = get(page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == 1);  // the page's event stream is open
  }

  sb::grabber_options options_for(const sb::strategy_config& cfg) {
    sb::grabber_options o = options();
    sb::apply_strategy(o, cfg, sb::site_profile{});
    o.notify = [this](sb::notice n) {
      std::lock_guard lock(told_mutex);
      told.push_back(std::move(n));
    };
    return o;
  }

  std::string eval_string(const std::string& expression) {
    auto [ec, v] = get(page.async_evaluate(expression, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    return v.is_string() ? v.get<std::string>() : v.dump();
  }
};

}  // namespace integration_modes

using namespace integration_modes;

TEST_SUITE("integration") {
  TEST_CASE("dry run on the demo shop: chosen and quantity set - no order recorded - logged") {
    modes_fixture f;
    const auto cfg = sb::parse_strategy("want = sku:veg-box\nquantity = 2\nmode = dry-run\n");
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.page, sb::priority_strategy(cfg), pace, f.options_for(cfg));
    auto run = g.async_run(60s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("veg-box", 5);
    auto [ec, res] = get(run, 70s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK_FALSE(res.ordered);
    CHECK(res.would_order);
    CHECK(res.attempts == 0);
    CHECK(f.logged("grabber: would-press: dry run: would press #buy for 2 x veg-box at 18.50"));
    // The page is left as it would have been pressed.
    CHECK(f.eval_string("document.querySelector('#sku').value") == "veg-box");
    CHECK(f.eval_string("document.querySelector('#quantity').value") == "2");
    std::this_thread::sleep_for(500ms);
    CHECK(f.shop.orders().empty());
    CHECK(f.shop.stock("veg-box") == 5);
    std::lock_guard lock(f.told_mutex);
    CHECK(f.told.empty());
  }

  TEST_CASE("monitor on the demo shop: stock there - nothing chosen - no order - each flip told") {
    modes_fixture f;
    const auto cfg = sb::parse_strategy("want = sku:veg-box\nmode = monitor\n");
    seckill::token_bucket<> pace(5, 3);
    sb::grabber g(f.page, sb::priority_strategy(cfg), pace, f.options_for(cfg));
    const std::string before = f.eval_string("document.querySelector('#sku').value");
    auto run = g.async_run(2500ms, asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("veg-box", 5);
    std::this_thread::sleep_for(600ms);
    f.shop.sell_out();
    std::this_thread::sleep_for(600ms);
    f.shop.set_stock("veg-box", 3);
    auto [ec, res] = get(run, 30s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK_FALSE(res.ordered);
    CHECK(res.attempts == 0);
    CHECK(f.shop.orders().empty());
    CHECK(f.shop.stock("veg-box") == 3);
    CHECK(f.eval_string("document.querySelector('#sku').value") == before);  // not chosen
    CHECK_FALSE(f.logged("grabber: decided"));
    CHECK(f.count("grabber: stock-changed") >= 3);
    CHECK(f.logged("grabber: watched: monitor"));
    std::lock_guard lock(f.told_mutex);
    REQUIRE(f.told.size() == 3);
    CHECK(f.told[0].kind == sb::notice_kind::stock);
    CHECK(f.told[0].text.starts_with("in stock"));
    CHECK(f.told[1].text.starts_with("out of stock"));
    CHECK(f.told[2].text.starts_with("in stock"));
  }
}
