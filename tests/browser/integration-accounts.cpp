// Several accounts in real Chromium against the demo shop on 127.0.0.1: two
// shoppers log in, each in a Chromium of its own on its own profile
// directory (the way grocery_grabber's --account launches them), and each
// runs a grabber with its own pace and back-off. The shop throttles one
// shopper's session only: that account backs off (its next order no
// earlier than the shop's Retry-After) or stops after its refusals, while
// the other buys on schedule; the shop's records match what each reported.
#include "browser/support.hpp"
#include "grocery_grabber/browser_session.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace integration_accounts {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;

constexpr const char* second_user = "neighbour";
constexpr const char* second_password = "second-shopper-password";

/// One account: its own Chromium on its own profile directory, logged in on
/// the members' page, its own log.
struct account {
  seckill::detail::temp_dir dir{"seckill-accounts-test"};
  sb::chromium browser;
  sb::page page;
  browser_support::grab_log log;

  account(browser_support::io_thread& io, shop::shop_server& shop, const std::string& user,
          const std::string& password)
      : browser(launch(io, dir)), page(browser_support::browser_fixture::open_page(browser)) {
    auto [en, nav] = get(page.async_navigate(shop.login_url(), asio::use_future));
    REQUIRE_MESSAGE(!en, en.message());
    for (const auto& [selector, text] :
         {std::pair{"#user", user}, std::pair{"#password", password}}) {
      const std::error_code e = get(page.async_fill(selector, text, 20s, asio::use_future));
      REQUIRE_MESSAGE(!e, e.message());
    }
    const std::error_code ec = get(page.async_click("#login", asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    auto [ew, box] = get(page.async_wait_for(".account", 20s, asio::use_future), 30s);
    REQUIRE_MESSAGE(!ew, ew.message());
  }

  static sb::chromium launch(browser_support::io_thread& io, const seckill::detail::temp_dir& d) {
    grocery_grabber::options o;
    o.profile_dir = d.path().string();
    return grocery_grabber::open_browser(o, io.io.get_executor(), [](std::string_view) {});
  }
};

/// The members' page as the example's members.profile reads it, with the
/// throttling keys: the result's text and, with `by_response`, the order's
/// 429 / 503 (order_response).
sb::site_profile members_profile(bool by_response) {
  std::string text =
      "logged_in = .account\n"
      "throttled_text = too many requests\n";
  if (by_response) text += "order_response = /members/order\n";
  return sb::parse_profile(text);
}

using outcome = std::tuple<std::error_code, sb::grab_result>;

/// Both accounts' grabbers at once, each with its own bucket; the shop
/// restocks once both watch.
std::pair<outcome, outcome> run_both(account& a, account& b, const sb::site_profile& profile,
                                     const std::string& strategy, shop::shop_server& shop) {
  const auto cfg = sb::parse_strategy(strategy);
  seckill::token_bucket<> pace_a(cfg.actions_per_second, cfg.burst);
  seckill::token_bucket<> pace_b(cfg.actions_per_second, cfg.burst);
  sb::grabber_options oa = a.log.options(), ob = b.log.options();
  sb::apply_strategy(oa, cfg, profile);
  sb::apply_strategy(ob, cfg, profile);
  sb::grabber ga(sb::page_driver(a.page, profile), sb::priority_strategy(cfg), pace_a, oa);
  sb::grabber gb(sb::page_driver(b.page, profile), sb::priority_strategy(cfg), pace_b, ob);
  auto ra = ga.async_run(60s, asio::use_future);
  auto rb = gb.async_run(60s, asio::use_future);
  for (int i = 0;
       i < 2000 && !(a.log.logged("grabber: watching") && b.log.logged("grabber: watching")); ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(a.log.logged("grabber: watching"));
  REQUIRE(b.log.logged("grabber: watching"));
  shop.set_stock("veg-box", 5);
  outcome oa_ = get(ra, 90s);
  outcome ob_ = get(rb, 90s);
  return {std::move(oa_), std::move(ob_)};
}

std::vector<shop::order_record> orders_of(const shop::shop_server& shop, const std::string& user) {
  std::vector<shop::order_record> out;
  for (auto& o : shop.orders())
    if (o.user == user) out.push_back(o);
  return out;
}

}  // namespace integration_accounts

using namespace integration_accounts;

TEST_SUITE("integration") {
  TEST_CASE(
      "accounts: the throttled one waits out Retry-After then buys - the other buys on schedule") {
    shop::shop_server shop;
    shop.add_account(second_user, second_password);
    browser_support::io_thread io;
    account first(io, shop, shop::demo_user, shop::demo_password);
    account second(io, shop, second_user, second_password);
    shop::shop_server::throttling t;
    t.times = 1;
    t.status = 429;
    t.retry_after = "2";
    shop.throttle_user(second_user, t);
    for (auto* a : {&first, &second}) {
      auto [e, nav] = get(a->page.async_navigate(shop.members_url(), asio::use_future));
      REQUIRE_MESSAGE(!e, e.message());
    }
    const auto [ra, rb] =
        run_both(first, second, members_profile(true),
                 "want = sku:veg-box\nbackoff = 200ms..5s\nmax_refusals = 3\n", shop);
    const auto& [ea, resa] = ra;
    const auto& [eb, resb] = rb;
    CHECK_MESSAGE(!ea, ea.message());
    CHECK_MESSAGE(!eb, eb.message());
    CHECK(resa.ordered);
    CHECK(resa.throttled == 0);
    CHECK(resb.ordered);
    CHECK(resb.throttled == 1);
    CHECK(second.log.logged("grabber: throttled: HTTP 429"));
    CHECK(second.log.logged("the shop's Retry-After 2000 ms"));
    CHECK_FALSE(first.log.logged("grabber: throttled"));
    // The shop's records: the first shopper's one order kept; the second's
    // refused one (429, nothing kept), then its order no earlier than 2 s after.
    const auto mine = orders_of(shop, shop::demo_user);
    const auto theirs = orders_of(shop, second_user);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].accepted);
    CHECK(mine[0].status == 200);
    REQUIRE(theirs.size() == 2);
    CHECK_FALSE(theirs[0].accepted);
    CHECK(theirs[0].status == 429);
    CHECK(theirs[1].accepted);
    const auto waited = theirs[1].received - theirs[0].received;
    MESSAGE("the throttled account's next order came ",
            std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
            " ms after the 429");
    CHECK(waited >= 2s);
    // The other was not held up by it: its order went before the back-off ended.
    CHECK(mine[0].received < theirs[0].received + 2s);
    CHECK(shop.stock("veg-box") == 3);
    for (const auto& token : shop.session_tokens()) {
      CHECK_FALSE(first.log.logged(token));
      CHECK_FALSE(second.log.logged(token));
    }
  }

  TEST_CASE("accounts: refused on every order one stops after max_refusals - the other buys") {
    shop::shop_server shop;
    shop.add_account(second_user, second_password);
    browser_support::io_thread io;
    account first(io, shop, shop::demo_user, shop::demo_password);
    account second(io, shop, second_user, second_password);
    shop::shop_server::throttling t;
    t.times = 100;
    t.status = 503;
    t.retry_after = "";  // the account's own back-off applies
    shop.throttle_user(second_user, t);
    for (auto* a : {&first, &second}) {
      auto [e, nav] = get(a->page.async_navigate(shop.members_url(), asio::use_future));
      REQUIRE_MESSAGE(!e, e.message());
    }
    // Every refusal is seen on its response (the page's text repeats
    // unchanged, which its observer reports once).
    const auto [ra, rb] =
        run_both(first, second, members_profile(true),
                 "want = sku:veg-box\nbackoff = 300ms..1s\nmax_refusals = 2\n", shop);
    const auto& [ea, resa] = ra;
    const auto& [eb, resb] = rb;
    CHECK_MESSAGE(!ea, ea.message());
    CHECK(resa.ordered);
    CHECK(eb == sb::errc::stopped_refused);
    CHECK(resb.stopped);
    CHECK_FALSE(resb.ordered);
    CHECK(resb.throttled == 2);
    CHECK(second.log.logged("grabber: stopped-refused: 2 refusals in a row"));
    const auto mine = orders_of(shop, shop::demo_user);
    const auto theirs = orders_of(shop, second_user);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].accepted);
    REQUIRE(theirs.size() == 2);  // stopped: no third order
    for (const auto& o : theirs) {
      CHECK_FALSE(o.accepted);  // failed means nothing kept
      CHECK(o.status == 503);
    }
    // The back-off (at least half of 300 ms) lay between the two.
    CHECK(theirs[1].received - theirs[0].received >= 150ms);
    CHECK(shop.stock("veg-box") == 4);
  }
}
