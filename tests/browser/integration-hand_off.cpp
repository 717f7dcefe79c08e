// A person in the loop, in Chromium on the demo shop: the shop shows "verify
// you are human" mid-sale; while it shows the grabber presses nothing and
// sends no request (the shop counts every request), it tells a hand-off
// once, and when the test, acting as the person, ticks "I am human" with a
// trusted click, the grab resumes and buys. Once headless, once in a
// visible window under Xvfb when the machine has it.
#include "browser/desktop.hpp"
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace integration_hand_off {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;

/// The notices a grabber tells, kept for the test.
struct told_notices {
  std::mutex m;
  std::vector<sb::notice> all;
  int count(sb::notice_kind k) {
    std::lock_guard lock(m);
    int n = 0;
    for (const auto& x : all) n += x.kind == k;
    return n;
  }
};

/// The scenario on `page` (already showing `shop`): the verification shows,
/// stock comes behind it, nothing happens; the person solves it; one order.
void solve_and_buy(sb::page& page, shop::shop_server& shop) {
  browser_support::grab_log log;
  told_notices told;
  seckill::token_bucket<> pace(5, 3);
  auto opts = log.options();
  opts.notify = [&told](sb::notice n) {
    std::lock_guard lock(told.m);
    told.all.push_back(std::move(n));
  };
  sb::grabber g(page, sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")), pace,
                std::move(opts));
  auto run = g.async_run(90s, asio::use_future);
  std::this_thread::sleep_for(300ms);
  shop.set_challenge(true);
  REQUIRE(browser_desktop::wait_until([&] { return log.logged("grabber: hand-off"); }, 20s));
  CHECK(log.logged("verify you are human"));  // seen by the common texts
  const int before = shop.requests();
  shop.set_stock("veg-box", 5);  // the stock is there, behind the verification
  REQUIRE(browser_desktop::wait_until([&] { return log.logged("'In stock'"); }, 20s));
  std::this_thread::sleep_for(1500ms);
  CHECK(shop.orders().empty());
  CHECK(shop.requests() == before);  // no press, no reload, no request at all
  CHECK(told.count(sb::notice_kind::hand_off) == 1);
  // The person ticks the box (a trusted click: the page ignores a script's).
  const std::error_code ec = get(page.async_click("#human", sb::click_options{}, asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  auto [er, res] = get(run, 100s);
  CHECK_MESSAGE(!er, er.message());
  CHECK(res.ordered);
  CHECK_FALSE(shop.challenge());
  REQUIRE(shop.orders().size() == 1);
  CHECK(shop.orders()[0].accepted);
  CHECK(log.count("grabber: hand-off") == 1);
  CHECK(log.logged("grabber: resumed: the verification is gone"));
  CHECK(told.count(sb::notice_kind::hand_off) == 1);
  CHECK(told.count(sb::notice_kind::ordered) == 1);
}

void open_shop(sb::page& page, shop::shop_server& shop) {
  auto [ec, r] = get(page.async_navigate(shop.url(), asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(shop.listeners() == 1);
}

}  // namespace integration_hand_off

using namespace integration_hand_off;

TEST_SUITE("integration") {
  TEST_CASE(
      "hand-off: a verification mid-sale stops every action - solved by the person the grab buys") {
    browser_support::browser_fixture f;
    shop::shop_server shop;
    open_shop(f.page, shop);
    solve_and_buy(f.page, shop);
  }

  TEST_CASE("hand-off: a script cannot tick the demo shop's box - only a trusted click") {
    browser_support::browser_fixture f;
    shop::shop_server shop;
    open_shop(f.page, shop);
    shop.set_challenge(true);
    REQUIRE(browser_desktop::wait_until([&] {
      auto [e, v] = get(
          f.page.async_evaluate("document.querySelector('.human-check').hidden", asio::use_future));
      return !e && v == false;
    }));
    auto [e, v] =
        get(f.page.async_evaluate("document.getElementById('human').click(); 1", asio::use_future));
    CHECK_FALSE(e);
    std::this_thread::sleep_for(500ms);
    CHECK(shop.challenge());  // still there
  }

  TEST_CASE("hand-off: in a visible window under Xvfb the person solves it the same way") {
    if (const std::string m = browser_desktop::missing_program({"Xvfb"}); !m.empty()) {
      MESSAGE("skipped: " << m << " is not installed (Debian: xvfb)");
      return;
    }
    browser_desktop::desktop d;
    REQUIRE_MESSAGE(d.ready(), "Xvfb did not start");
    // Chromium finds the display in its environment.
    const char* old = std::getenv("DISPLAY");
    const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
    ::setenv("DISPLAY", d.display.c_str(), 1);
    browser_support::io_thread io;
    sb::chromium_options o;
    o.headless = false;
    o.extra_args = {"--ozone-platform=x11"};
    auto browser = sb::chromium::launch(io.io.get_executor(), o);
    if (saved)
      ::setenv("DISPLAY", saved->c_str(), 1);
    else
      ::unsetenv("DISPLAY");
    auto page = browser_support::browser_fixture::open_page(browser);
    shop::shop_server shop;
    open_shop(page, shop);
    auto [e, headless] = get(page.async_evaluate("navigator.userAgent", asio::use_future));
    REQUIRE_FALSE(e);
    CHECK(headless.get<std::string>().find("Headless") == std::string::npos);  // a real window
    solve_and_buy(page, shop);
  }
}
