// The extension's standalone half in a real headless Chromium with the
// unpacked extension loaded: the options page checks what is typed with the
// C++ parsers' very messages (computed here by parse_strategy /
// parse_profile), saves to chrome.storage.local only what passes, and shows
// it again; the popup shows the state and log of chrome.storage.session; and
// a standalone run, the extension alone, buys exactly one order at the demo
// shop when its stock comes.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"
#include "support/error_message.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/strategy.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>

namespace integration_extension_standalone {

using namespace std::chrono_literals;
using browser_support::get;
using browser_support::io_thread;
using json = nlohmann::json;
namespace asio = boost::asio;
namespace br = seckill::browser;

// The id the manifest's key fixes (docs/browser.md, "The extension").
constexpr const char* extension_url = "chrome-extension://ikcgffofaaglogflfhnkhingdndchoai/";

// A parser's message proper: what() without ": invalid argument".
std::string message_proper(std::string what) {
  const std::string suffix = ": invalid argument";
  REQUIRE(what.size() > suffix.size());
  REQUIRE(what.substr(what.size() - suffix.size()) == suffix);
  what.resize(what.size() - suffix.size());
  return what;
}

struct extension_browser {
  io_thread io;
  br::chromium browser = br::chromium::launch(io.io.get_executor(), [] {
    br::chromium_options o;
    o.extensions = {std::string(SECKILL_SOURCE_DIR) + "/extension"};
    return o;
  }());
  br::page page = browser_support::browser_fixture::open_page(browser);

  json eval(const std::string& expression) {
    auto [ec, v] = get(page.async_evaluate(expression, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << ": " << v.dump() << " for " << expression);
    return v;
  }
  // Polls `expression` until it is true (10 s at most).
  void wait_until(const std::string& expression) {
    for (int i = 0; i < 200; ++i) {
      if (eval(expression) == json(true)) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL("never true: " << expression);
  }
  void open(const std::string& file) {
    auto [ec, r] = get(page.async_navigate(std::string(extension_url) + file, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << ": " << r.dump());
  }
  void fill(const std::string& selector, const std::string& text) {
    const auto ec = get(page.async_fill(selector, text, 3s, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
  }
  void click(const std::string& selector) {
    const auto ec = get(page.async_click(selector, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
  }
  json problems(const std::string& field) {
    return eval(
        "Array.from(document.querySelectorAll('#" + field +
        "-problems li')).map((li) => ({text: li.textContent, line: li.dataset.line ?? null}))");
  }
  json saved() { return eval("chrome.storage.local.get(['strategy', 'profile'])"); }
  // Stops the extension's service worker, as Chromium stops an idle one; the
  // next event (a content script connecting again) starts it anew.
  void stop_service_worker() {
    const auto& cdp = browser.connection();
    for (const char* method : {"ServiceWorker.enable", "ServiceWorker.stopAllWorkers"}) {
      auto [ec, r] =
          get(cdp->async_call(method, json::object(), page.session_id(), 5s, asio::use_future));
      REQUIRE_MESSAGE(!ec, method << ": " << ec.message() << ": " << r.dump());
    }
  }
  // Saves `strategy` through the options page, then starts a standalone run
  // on a tab the extension opens at `url`; its tab id.
  std::int64_t start_run(const std::string& strategy, const std::string& url) {
    open("options.html");
    wait_until("document.body.dataset.ready === 'yes'");
    fill("#strategy", strategy);
    click("#save");
    wait_until("document.getElementById('status').textContent === 'Saved.'");
    const json answer = eval("chrome.runtime.sendMessage({standalone: 'start', open: true, url: " +
                             json(url).dump() + "})");
    REQUIRE_MESSAGE(answer.value("ok", false), answer.dump());
    REQUIRE(answer.contains("tab"));
    return answer["tab"].get<std::int64_t>();
  }
  bool logged(const std::string& text) {
    return eval("chrome.storage.session.get('log').then((g) => g.log.map((e) => e.text))")
               .dump()
               .find(text) != std::string::npos;
  }
};

}  // namespace integration_extension_standalone

using namespace integration_extension_standalone;

TEST_SUITE("integration") {
  TEST_CASE("extension options page - checks with the C++ messages and saves only what passes") {
    extension_browser b;
    b.open("options.html");
    b.wait_until("document.body.dataset.ready === 'yes'");
    CHECK(b.saved() == json::object());

    // A refused strategy: the page shows parse_strategy's message and its line.
    const std::string bad_strategy = "want = sku:veg-box\nquantity = 0\n";
    const std::string strategy_message =
        message_proper(seckill::test::message_of([&] { (void)br::parse_strategy(bad_strategy); }));
    b.fill("#strategy", bad_strategy);
    b.wait_until("document.querySelectorAll('#strategy-problems li').length === 1");
    CHECK(b.problems("strategy") == json::array({{{"text", strategy_message}, {"line", "2"}}}));

    // A refused profile: parse_profile's message.
    const std::string bad_profile = "# the shop\nwatch = sometimes";
    const std::string profile_message =
        message_proper(seckill::test::message_of([&] { (void)br::parse_profile(bad_profile); }));
    b.fill("#profile", bad_profile);
    b.wait_until("document.querySelectorAll('#profile-problems li').length === 1");
    CHECK(b.problems("profile") == json::array({{{"text", profile_message}, {"line", "2"}}}));

    // Save refuses: nothing is stored.
    b.click("#save");
    b.wait_until("document.getElementById('status').textContent.startsWith('Not saved')");
    CHECK(b.saved() == json::object());

    // Good texts are saved, and shown again when the page opens anew.
    const std::string good_strategy = "want = sku:veg-box, category:fruit\nquantity = 2\n";
    const std::string good_profile = "status = .stock-status\nbuy = #buy\n";
    (void)br::parse_strategy(good_strategy);
    (void)br::parse_profile(good_profile);
    b.fill("#strategy", good_strategy);
    b.fill("#profile", good_profile);
    b.wait_until("document.querySelectorAll('.problems li').length === 0");
    b.click("#save");
    b.wait_until("document.getElementById('status').textContent === 'Saved.'");
    CHECK(b.saved() == json{{"strategy", good_strategy}, {"profile", good_profile}});

    // A refused edit after a save loses nothing.
    b.fill("#strategy", "want = sku:veg-box\npace = 99/s\n");
    b.click("#save");
    b.wait_until("document.getElementById('status').textContent.startsWith('Not saved')");
    CHECK(b.saved() == json{{"strategy", good_strategy}, {"profile", good_profile}});

    b.open("options.html");
    b.wait_until("document.body.dataset.ready === 'yes'");
    CHECK(b.eval("document.getElementById('strategy').value") == json(good_strategy));
    CHECK(b.eval("document.getElementById('profile').value") == json(good_profile));
  }

  TEST_CASE("extension popup - shows the state and the log of chrome.storage.session") {
    extension_browser b;
    b.open("popup.html");
    b.wait_until("document.getElementById('state').textContent === 'idle'");
    b.eval(
        "chrome.storage.session.set({state: 'decided', log: [{at: Date.now(), text: 'standalone: "
        "watching'}, {at: Date.now(), text: 'standalone: decided veg-box x1'}]})");
    b.wait_until("document.getElementById('state').textContent === 'decided'");
    CHECK(b.eval("Array.from(document.querySelectorAll('#log li')).map((li) => "
                 "li.textContent.replace(/^.*?(?=standalone)/, ''))") ==
          json::array({"standalone: watching", "standalone: decided veg-box x1"}));
    b.eval("chrome.storage.session.set({state: 'ordered'})");
    b.wait_until("document.getElementById('state').textContent === 'ordered'");
  }

  TEST_CASE("extension standalone mode - the extension alone buys exactly one order") {
    extension_browser b;
    shop::shop_server shop;
    b.open("options.html");
    b.wait_until("document.body.dataset.ready === 'yes'");
    const std::string strategy = "want = sku:veg-box, category:fruit\nquantity = 2\npace = 20/s\n";
    b.fill("#strategy", strategy);
    b.click("#save");
    b.wait_until("document.getElementById('status').textContent === 'Saved.'");

    // The extension opens the shop in a tab of its own and watches it.
    const json answer =
        b.eval("chrome.runtime.sendMessage({standalone: 'start', open: true, url: " +
               json(shop.url()).dump() + "})");
    REQUIRE_MESSAGE(answer.value("ok", false), answer.dump());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == 1);
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'watching')");
    std::this_thread::sleep_for(500ms);
    CHECK(shop.orders().empty());  // nothing in stock: nothing bought

    shop.set_stock("veg-box", 5);
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'ordered')");
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(shop, "veg-box", 2, 3);
    const json log =
        b.eval("chrome.storage.session.get('log').then((g) => g.log.map((e) => e.text))");
    CHECK(log.dump().find("standalone: decided veg-box x2") != std::string::npos);
    CHECK(log.dump().find("standalone: ordered") != std::string::npos);
  }

  TEST_CASE("extension standalone mode - nothing is bought before the countdown ends") {
    extension_browser b;
    shop::shop_server shop;
    shop.set_stock("veg-box", 5);  // in stock from the start: only the countdown holds the run
    shop.set_sale_start(shop.shop_now() + 8s);
    b.open("options.html");
    b.wait_until("document.body.dataset.ready === 'yes'");
    b.fill("#strategy", "want = sku:veg-box\npace = 20/s\ncountdown = .countdown\n");
    b.click("#save");
    b.wait_until("document.getElementById('status').textContent === 'Saved.'");

    const json answer =
        b.eval("chrome.runtime.sendMessage({standalone: 'start', open: true, url: " +
               json(shop.url()).dump() + "})");
    REQUIRE_MESSAGE(answer.value("ok", false), answer.dump());
    std::this_thread::sleep_for(2s);
    CHECK(shop.orders().empty());  // the countdown still runs
    for (int i = 0; i < 300 && shop.orders().empty(); ++i) std::this_thread::sleep_for(50ms);
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'ordered')");
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(shop, "veg-box", 1, 4);
    const json log =
        b.eval("chrome.storage.session.get('log').then((g) => g.log.map((e) => e.text))");
    CHECK(log.dump().find("standalone: countdown") != std::string::npos);
  }

  TEST_CASE("extension standalone mode - a verification holds the press until it is solved") {
    extension_browser b;
    shop::shop_server shop;
    shop.set_challenge(true);  // "Please verify you are human", one of the common texts
    b.start_run("want = sku:veg-box\npace = 20/s\n", shop.url());
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'waiting')");
    CHECK(b.logged("standalone: a verification shows"));
    shop.set_stock("veg-box", 5);
    std::this_thread::sleep_for(1500ms);
    CHECK(shop.orders().empty());  // in stock, but the person has not solved it
    CHECK_FALSE(b.logged("standalone: pressed"));
    shop.set_challenge(false);  // solved
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'ordered')");
    CHECK(b.logged("standalone: the verification is gone"));
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(shop, "veg-box", 1, 4);
  }

  TEST_CASE("extension standalone mode - a run goes on after the service worker stops") {
    extension_browser b;
    shop::shop_server shop;
    b.start_run("want = sku:veg-box\nquantity = 2\npace = 20/s\n", shop.url());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'watching')");
    b.stop_service_worker();
    // The content script connects again, which starts the worker, which
    // takes the run up from its record.
    for (int i = 0; i < 200 && !b.logged("standalone: resumed"); ++i)
      std::this_thread::sleep_for(50ms);
    REQUIRE(b.logged("standalone: resumed on tab"));
    CHECK(shop.orders().empty());
    shop.set_stock("veg-box", 5);
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'ordered')");
    std::this_thread::sleep_for(500ms);
    browser_support::check_one_order(shop, "veg-box", 2, 3);
  }

  TEST_CASE("extension standalone mode - a press that may have left is not made again") {
    extension_browser b;
    shop::shop_server shop;
    const auto tab = b.start_run("want = sku:veg-box\npace = 20/s\n", shop.url());
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'watching')");
    // The worker stops as if during a press: the record says a press began
    // and no answer came.
    const std::string key = "'standalone:" + std::to_string(tab) + "'";
    b.eval("chrome.storage.session.get(" + key + ").then((g) => chrome.storage.session.set({[" +
           key + "]: {...g[" + key + "], state: 'decided', tries: 1, pressing: 1}}))");
    b.stop_service_worker();
    b.wait_until("chrome.storage.session.get('state').then((g) => g.state === 'failed')");
    CHECK(b.logged("the shop's answer was not seen"));
    shop.set_stock("veg-box", 5);  // in stock now: still nothing is pressed
    std::this_thread::sleep_for(1500ms);
    CHECK(shop.orders().empty());
  }
}
