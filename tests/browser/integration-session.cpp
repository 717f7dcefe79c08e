// Sessions and safety in a real Chromium against the demo shop on 127.0.0.1:
// the sandbox per mode, a persistent profile that keeps a login (driven with
// trusted input) across a graceful shutdown, a profile another Chromium
// holds, and a grabber working in a tab of a browser someone else runs. The
// browser is obtained the way the grocery_grabber example does it
// (browser_session.hpp). No session cookie value ever shows in a log line or
// an error.
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

#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

namespace integration_session {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;
using json = nlohmann::json;

/// Every line the browser, the example's helpers and the grabber told, and
/// every error message a test saw: searched for secrets at the end.
struct session_log {
  std::mutex mutex;
  std::vector<std::string> lines;

  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) { add(std::string(line)); };
  }
  void add(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
  }
  bool has(std::string_view needle) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  /// No line holds any of `secrets`.
  void check_free_of(const std::vector<std::string>& secrets) {
    std::lock_guard lock(mutex);
    for (const auto& secret : secrets) {
      REQUIRE(secret.size() >= 16);
      for (const auto& l : lines) CHECK_MESSAGE(l.find(secret) == std::string::npos, l);
    }
  }
};

/// The command line's browser options for a launched browser.
grocery_grabber::options launched(const std::filesystem::path& profile = {}) {
  grocery_grabber::options o;
  o.tabs.push_back({"demo", "unused"});
  o.profile_dir = profile.string();
  return o;
}

sb::page open_tab(sb::chromium& browser) {
  auto [ec, p] = get(sb::page::async_open(browser.connection(), asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  return std::move(p);
}

void go(sb::page& page, const std::string& url) {
  auto [ec, r] = get(page.async_navigate(url, asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
}

std::string text_of(sb::page& page, const std::string& selector) {
  auto [ec, v] = get(page.async_call_function(
      "(sel) => { const e = document.querySelector(sel); return e ? e.textContent : null; }",
      json::array({selector}), asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  return v.is_string() ? v.get<std::string>() : std::string("<none>");
}

/// Waits (on the condition, bounded) until the shop's pages listen for stock.
void wait_for_listeners(shop::shop_server& shop, std::size_t n) {
  for (int i = 0; i < 1000 && shop.listeners() < n; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(shop.listeners() >= n);
}

/// Runs a grabber for veg-box on `page` by `profile`; restocks once it watches.
std::tuple<std::error_code, sb::grab_result> grab_veg_box(sb::page& page, sb::site_profile profile,
                                                          shop::shop_server& shop,
                                                          session_log& log) {
  seckill::token_bucket<> pace(5, 3);
  sb::grabber_options opts;
  opts.log = log.sink();
  sb::grabber g(sb::page_driver(page, std::move(profile)),
                sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")), pace, opts);
  auto run = g.async_run(60s, asio::use_future);
  for (int i = 0; i < 2000 && !log.has("grabber: watching") && !log.has("not logged in"); ++i) {
    if (run.wait_for(0s) == std::future_status::ready) break;
    std::this_thread::sleep_for(10ms);
  }
  shop.set_stock("veg-box", 3);
  return get(run, 90s);
}

/// The example's profile for the members' page: the select page's defaults
/// and `logged_in = .account`.
sb::site_profile members_profile() {
  std::ifstream in(std::string(SECKILL_SOURCE_DIR) +
                   "/examples/grocery_grabber/profiles/members.profile");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  sb::site_profile p = sb::parse_profile(text.str());
  sb::site_profile expected;
  expected.logged_in = ".account";
  REQUIRE(p == expected);
  return p;
}

/// Logs in on the login form with trusted input only.
void log_in(sb::page& page, const std::string& user, const std::string& password) {
  const std::error_code e1 = get(page.async_fill("#user", user, 20s, asio::use_future));
  REQUIRE_MESSAGE(!e1, e1.message());
  const std::error_code e2 = get(page.async_fill("#password", password, 20s, asio::use_future));
  REQUIRE_MESSAGE(!e2, e2.message());
  const std::error_code e3 = get(page.async_click("#login", asio::use_future));
  REQUIRE_MESSAGE(!e3, e3.message());
}

}  // namespace integration_session

using namespace integration_session;

TEST_SUITE("integration") {
  TEST_CASE("sandbox automatic turns it off as root and says why - off forces --no-sandbox") {
    browser_support::io_thread io;
    session_log log;
    sb::chromium_options opts;
    opts.log = log.sink();
    const bool root = ::geteuid() == 0;
    {
      auto browser = sb::chromium::launch(io.io.get_executor(), opts);
      CHECK(browser.sandboxed() == !root);
      CHECK(browser.sandbox_reason() ==
            sb::choose_sandbox(sb::sandbox_mode::automatic, root).reason);
      CHECK(log.has(root ? "chromium: sandbox off: running as root (euid 0), where Chromium's "
                           "sandbox cannot run"
                         : "chromium: sandbox on: not running as root"));
      std::ifstream cmdline("/proc/" + std::to_string(browser.pid()) + "/cmdline");
      std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
      CHECK((args.find("--no-sandbox") != std::string::npos) == root);
    }
    opts.sandbox = sb::sandbox_mode::off;
    auto forced_off = sb::chromium::launch(io.io.get_executor(), opts);
    CHECK_FALSE(forced_off.sandboxed());
    CHECK(log.has("chromium: sandbox off: forced by sandbox = off"));
    auto [ec, v] = get(forced_off.connection()->async_call("Browser.getVersion", json::object(), "",
                                                           asio::use_future));
    CHECK(!ec);
  }

  TEST_CASE("sandbox forced on as root fails at once with Chromium's own words") {
    if (::geteuid() != 0) {
      MESSAGE("skipped: this process does not run as root, where Chromium runs sandboxed");
      return;
    }
    browser_support::io_thread io;
    session_log log;
    sb::chromium_options opts;
    opts.sandbox = sb::sandbox_mode::on;
    opts.log = log.sink();
    try {
      auto browser = sb::chromium::launch(io.io.get_executor(), opts);
      FAIL("chromium started with its sandbox on as root");
    } catch (const seckill::error& e) {
      const std::string what = e.what();
      CHECK(e.code() == sb::errc::browser_closed);
      CHECK_MESSAGE(what.find("chromium refused to start with its sandbox on while running as "
                              "root: \"Running as root without --no-sandbox is not supported") == 0,
                    what);
      CHECK_MESSAGE(what.find("forced by sandbox = on") != std::string::npos, what);
    }
    CHECK(log.has("chromium: sandbox on: forced by sandbox = on"));
  }

  TEST_CASE(
      "a persistent profile keeps a login across a graceful shutdown - a fresh one has none") {
    browser_support::io_thread io;
    shop::shop_server shop;
    session_log log;
    seckill::detail::temp_dir tmp("seckill-session-test");
    const auto dir = tmp.path() / "shop-profile";  // missing: launch creates it
    REQUIRE_FALSE(std::filesystem::exists(dir));
    {
      auto browser = grocery_grabber::open_browser(launched(dir), io.io.get_executor(), log.sink());
      CHECK(std::filesystem::is_directory(dir));
      CHECK(browser.profile_dir() == dir);
      CHECK(browser.persistent_profile());
      auto page = open_tab(browser);
      go(page, shop.login_url());
      // What --login does while the user logs in: wait for the logged-in sign.
      auto waiting = std::async(std::launch::async, [&] {
        return grocery_grabber::wait_for_login(page, ".account", 60s, log.sink());
      });
      log_in(page, shop::demo_user, "not-the-password");
      auto [ew, box] = get(page.async_wait_for(".login-error", 20s, asio::use_future));
      REQUIRE_MESSAGE(!ew, ew.message());
      CHECK(text_of(page, ".login-error") == "Wrong user or password.");
      CHECK(shop.refused_logins() == 1);
      CHECK(shop.session_tokens().empty());
      CHECK(waiting.wait_for(0s) != std::future_status::ready);
      log_in(page, shop::demo_user, shop::demo_password);
      REQUIRE(waiting.wait_for(60s) == std::future_status::ready);
      CHECK(waiting.get() == 0);
      CHECK(log.has("logged in: '.account' shows"));
      CHECK(text_of(page, ".account") == std::string("Signed in as ") + shop::demo_user);
      REQUIRE(shop.session_tokens().size() == 1);
      // The shop's cookie: HttpOnly, and persistent (Max-Age), so it can reach the disk.
      auto [ec, cookies] = get(browser.connection()->async_call(
          "Storage.getCookies", json::object(), "", asio::use_future));
      REQUIRE_MESSAGE(!ec, ec.message());
      bool found = false;
      for (const auto& c : cookies["cookies"]) {
        if (c.value("name", "") != shop::session_cookie_name) continue;
        found = true;
        CHECK(c.value("httpOnly", false));
        CHECK_FALSE(c.value("session", true));
      }
      CHECK(found);
    }  // shutdown: Browser.close, the cookie written, the directory kept
    CHECK(std::filesystem::is_directory(dir));
    CHECK(std::filesystem::exists(dir / "Default"));
    CHECK_FALSE(log.has("could not send Browser.close"));
    CHECK_FALSE(log.has("terminating it"));
    {
      // Headless again with the same directory: the session is there, and a grab buys.
      auto browser = grocery_grabber::open_browser(launched(dir), io.io.get_executor(), log.sink());
      auto page = open_tab(browser);
      go(page, shop.members_url());
      wait_for_listeners(shop, 1);
      auto [ec, res] = grab_veg_box(page, members_profile(), shop, log);
      CHECK_MESSAGE(!ec, ec.message());
      CHECK(res.ordered);
      CHECK(res.sku == "veg-box");
      REQUIRE(shop.wait_for_orders(1, 20s));
      const auto orders = shop.orders();
      REQUIRE(orders.size() == 1);
      CHECK(orders[0].accepted);
      CHECK(shop.unauthorized_orders() == 0);
    }
    CHECK(std::filesystem::is_directory(dir));
    shop.clear_orders();
    shop.sell_out();
    {
      // A fresh temporary profile has no session: the run ends before any order.
      std::filesystem::path temporary;
      {
        auto browser = grocery_grabber::open_browser(launched(), io.io.get_executor(), log.sink());
        temporary = browser.profile_dir();
        CHECK_FALSE(browser.persistent_profile());
        auto page = open_tab(browser);
        go(page, shop.members_url());
        wait_for_listeners(shop, 1);
        auto [ec, res] = grab_veg_box(page, members_profile(), shop, log);
        CHECK(ec == sb::errc::not_logged_in);
        log.add(ec.message());
        CHECK_FALSE(res.ordered);
        CHECK(shop.orders().empty());
        CHECK(text_of(page, ".login-needed") == "Please log in to buy.");
        // A person pressing buy there is refused by the shop: 401, no order.
        auto [eb, bbox] = get(page.async_wait_for("#buy", 20s, asio::use_future));
        REQUIRE_MESSAGE(!eb, eb.message());
        const std::error_code ek = get(page.async_click("#buy", asio::use_future));
        REQUIRE_MESSAGE(!ek, ek.message());
        for (int i = 0; i < 1000 && text_of(page, ".order-result").empty(); ++i)
          std::this_thread::sleep_for(10ms);
        CHECK(text_of(page, ".order-result") == "Order rejected: please log in");
        CHECK(shop.unauthorized_orders() == 1);
        CHECK(shop.orders().empty());
      }
      CHECK_FALSE(std::filesystem::exists(temporary));  // the temporary profile is removed
    }
    log.check_free_of(shop.session_tokens());
  }

  TEST_CASE("a profile another running Chromium holds gets a clear error - not a hang") {
    browser_support::io_thread io;
    shop::shop_server shop;
    session_log log;
    seckill::detail::temp_dir tmp("seckill-session-test");
    const auto dir = tmp.path() / "held";
    auto holder = grocery_grabber::open_browser(launched(dir), io.io.get_executor(), log.sink());
    auto page = open_tab(holder);
    go(page, shop.login_url());
    log_in(page, shop::demo_user, shop::demo_password);
    auto [ew, box] = get(page.async_wait_for(".account", 30s, asio::use_future));
    REQUIRE_MESSAGE(!ew, ew.message());
    try {
      auto second = grocery_grabber::open_browser(launched(dir), io.io.get_executor(), log.sink());
      FAIL("a second browser launched on a held profile");
    } catch (const seckill::error& e) {
      const std::string what = e.what();
      log.add(what);
      CHECK(e.code() == sb::errc::profile_in_use);
      CHECK_MESSAGE(what.find("browser profile directory '" + dir.string() +
                              "' is in use by another Chromium (pid ") == 0,
                    what);
    }
    // The holder goes on unharmed.
    auto [ec, v] = get(holder.connection()->async_call("Browser.getVersion", json::object(), "",
                                                       asio::use_future));
    CHECK(!ec);
    CHECK(text_of(page, ".account") == std::string("Signed in as ") + shop::demo_user);
    log.check_free_of(shop.session_tokens());
  }

  TEST_CASE("a grabber connected by URL buys in a tab of its own and leaves the browser alone") {
    browser_support::io_thread io;
    shop::shop_server shop;
    session_log log;
    // The user's browser, with a tab of their own on the shop.
    auto users = sb::chromium::launch(io.io.get_executor());
    auto their_tab = open_tab(users);
    go(their_tab, shop.url());
    const std::string ws = users.ws_url();
    const std::string port = ws.substr(15, ws.find('/', 15) - 15);
    std::string our_target;
    {
      grocery_grabber::options args = launched();
      args.connect = "http://127.0.0.1:" + port;
      auto browser = grocery_grabber::open_browser(args, io.io.get_executor(), log.sink());
      CHECK(log.has("connected to the browser at http://127.0.0.1:" + port));
      CHECK(browser.pid() == -1);
      CHECK_FALSE(browser.sandboxed());
      auto page = open_tab(browser);
      our_target = page.target_id();
      CHECK(our_target != their_tab.target_id());
      go(page, shop.url());
      wait_for_listeners(shop, 2);
      auto [ec, res] = grab_veg_box(page, sb::site_profile{}, shop, log);
      CHECK_MESSAGE(!ec, ec.message());
      CHECK(res.ordered);
      REQUIRE(shop.wait_for_orders(1, 20s));
      CHECK(shop.orders().size() == 1);
      CHECK(shop.orders()[0].accepted);
      auto [ecl, closed] = get(page.async_close(asio::use_future));
      CHECK_MESSAGE(!ecl, ecl.message());
    }  // the connection dropped: the user's browser is not closed
    CHECK(::kill(users.pid(), 0) == 0);
    // Target.closeTarget answers before the tab is gone: wait for that, bounded.
    bool theirs = false, ours = true;
    for (int i = 0; i < 200 && ours; ++i) {
      if (i > 0) std::this_thread::sleep_for(50ms);
      auto [ec, targets] = get(users.connection()->async_call("Target.getTargets", json::object(),
                                                              "", asio::use_future));
      REQUIRE_MESSAGE(!ec, ec.message());
      theirs = ours = false;
      for (const auto& t : targets["targetInfos"]) {
        const std::string id = t.value("targetId", "");
        if (id == their_tab.target_id()) {
          theirs = true;
          CHECK(t.value("url", "") == shop.url());
        }
        ours = ours || id == our_target;
      }
    }
    CHECK(theirs);
    CHECK_FALSE(ours);
    // Their tab is untouched: no order from it, and it still follows the shop.
    CHECK(text_of(their_tab, ".order-result").empty());
    CHECK(text_of(their_tab, "#sku").find("Vegetable box") != std::string::npos);
  }
}
