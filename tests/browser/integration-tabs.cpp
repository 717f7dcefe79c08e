// Several tabs at once in one real headless Chromium against the demo shop
// served on 127.0.0.1: two grabbers on one io_context buying two SKUs through
// two pages of different shapes, paced by one shared token bucket; and
// grocery_grabber's run of a tab (examples/grocery_grabber/tabs.hpp), which
// leaves a screenshot beside the log whether the tab bought or not.
#include "browser/support.hpp"
#include "grocery_grabber/tabs.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/co_spawn.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace integration_tabs {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;
namespace gg = grocery_grabber;

const std::string grid_profile_file =
    std::string(SECKILL_SOURCE_DIR) + "/examples/grocery_grabber/profiles/grid.profile";

/// A Limiter that takes its tokens from a bucket shared by reference and
/// records when each of its grabber's actions got one.
struct recorded_limiter {
  struct grant {
    int tab;
    std::chrono::steady_clock::time_point at;
  };
  seckill::token_bucket<>& bucket;
  std::mutex& mutex;
  std::vector<grant>& grants;
  int tab;

  bool try_acquire(double n) {
    if (!bucket.try_acquire(n)) return false;
    std::lock_guard lock(mutex);
    grants.push_back({tab, std::chrono::steady_clock::now()});
    return true;
  }
  [[nodiscard]] auto time_until(double n) const { return bucket.time_until(n); }
};

/// Chromium and the demo shop; tabs open on demand.
struct tabs_fixture {
  browser_support::io_thread io;
  seckill::browser::chromium browser = seckill::browser::chromium::launch(io.io.get_executor());
  shop::shop_server shop;

  sb::page open(const std::string& url) {
    sb::page p = browser_support::browser_fixture::open_page(browser);
    auto [ec, r] = get(p.async_navigate(url, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    return p;
  }
  void wait_listeners(std::size_t n) {
    for (int i = 0; i < 1000 && shop.listeners() < n; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(shop.listeners() == n);  // every page's event stream is open
  }
};

std::string visibility(sb::page& p) {
  auto [ec, v] = get(p.async_evaluate("document.visibilityState", asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  return v.get<std::string>();
}

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  REQUIRE(out.good());
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace integration_tabs

using namespace integration_tabs;

TEST_SUITE("integration") {
  TEST_CASE("two grabbers in two tabs of one Chromium buy two SKUs at once through one bucket") {
    tabs_fixture f;
    sb::page select_page = f.open(f.shop.url());
    sb::page grid_page = f.open(f.shop.grid_url());
    // Each tab in a window of its own: both shown, neither throttled.
    CHECK(visibility(select_page) == "visible");
    CHECK(visibility(grid_page) == "visible");
    f.wait_listeners(2);

    // 2 tokens at once, then 2 a second, for both grabbers together.
    const double rate = 2, burst = 2;
    seckill::token_bucket<> shared(rate, burst);
    std::mutex mutex;
    std::vector<recorded_limiter::grant> grants;
    recorded_limiter pace1{shared, mutex, grants, 1}, pace2{shared, mutex, grants, 2};
    std::ifstream grid_in(grid_profile_file);
    std::stringstream grid_text;
    grid_text << grid_in.rdbuf();
    sb::grabber g1(sb::page_driver(select_page),
                   sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\nquantity = 2\n")),
                   pace1);
    sb::grabber g2(sb::page_driver(grid_page, sb::parse_profile(grid_text.str())),
                   sb::priority_strategy(sb::parse_strategy("want = sku:eggs-12\n")), pace2);
    auto run1 = g1.async_run(90s, asio::use_future);
    auto run2 = g2.async_run(90s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    CHECK(f.shop.orders().empty());
    f.shop.set_stock("veg-box", 5);
    f.shop.set_stock("eggs-12", 5);
    auto [e1, r1] = get(run1, 100s);
    auto [e2, r2] = get(run2, 100s);
    CHECK_MESSAGE(!e1, e1.message());
    CHECK_MESSAGE(!e2, e2.message());
    CHECK(r1.ordered);
    CHECK(r1.sku == "veg-box");
    CHECK(r1.quantity == 2);
    CHECK(r2.ordered);
    CHECK(r2.sku == "eggs-12");
    CHECK(r2.quantity == 1);

    std::this_thread::sleep_for(500ms);  // nothing more arrives
    auto orders = f.shop.orders();
    REQUIRE(orders.size() == 2);
    std::sort(orders.begin(), orders.end(),
              [](const auto& a, const auto& b) { return a.sku < b.sku; });
    CHECK(orders[0].sku == "eggs-12");
    CHECK(orders[0].quantity == 1);
    CHECK(orders[0].accepted);
    CHECK(orders[1].sku == "veg-box");
    CHECK(orders[1].quantity == 2);
    CHECK(orders[1].accepted);
    CHECK(f.shop.stock("veg-box") == 3);
    CHECK(f.shop.stock("eggs-12") == 4);

    // Every action of both grabbers (choose, quantity, press: at least three
    // each, more when a change of the shop dropped a try) took a token of the
    // one bucket: two were there at once, the others came at two a second,
    // so the k-th token (from 0) came at least (k + 1 - 2) / 2 s after the first.
    std::lock_guard lock(mutex);
    REQUIRE(grants.size() >= 6);
    CHECK(std::count_if(grants.begin(), grants.end(), [](const auto& g) { return g.tab == 1; }) >=
          3);
    CHECK(std::count_if(grants.begin(), grants.end(), [](const auto& g) { return g.tab == 2; }) >=
          3);
    std::sort(grants.begin(), grants.end(),
              [](const auto& a, const auto& b) { return a.at < b.at; });
    for (std::size_t k = 2; k < grants.size(); ++k) {
      CAPTURE(k);
      const double least = (static_cast<double>(k) + 1 - burst) / rate;
      CHECK(grants[k].at - grants.front().at >= std::chrono::duration<double>(least) - 1ms);
    }
    const auto paced = std::count_if(r1.events.begin(), r1.events.end(),
                                     [](const auto& e) { return e.step == sb::grab_step::paced; }) +
                       std::count_if(r2.events.begin(), r2.events.end(),
                                     [](const auto& e) { return e.step == sb::grab_step::paced; });
    CHECK(paced >= 2);
  }

  TEST_CASE("grocery_grabber's tabs leave a screenshot beside the log - bought or not") {
    tabs_fixture f;
    seckill::detail::temp_dir dir("seckill-tabs");
    const auto log_file = dir.path() / "run.log";
    write_text(dir.path() / "buy.txt", "want = sku:veg-box\ndeadline = 60s\n");
    write_text(dir.path() / "cap.txt",
               "want = sku:rice-5kg\nmax_price = 10\ndeadline = 3s\n"
               "profile = " +
                   grid_profile_file + "\n");
    gg::tab_plan buy, cap;
    buy.number = 1;
    cap.number = 2;
    REQUIRE(gg::load_tab_plan({f.shop.url(), (dir.path() / "buy.txt").string()}, "", buy).empty());
    REQUIRE(
        gg::load_tab_plan({f.shop.grid_url(), (dir.path() / "cap.txt").string()}, "", cap).empty());
    CHECK(cap.profile.buy == "#submit");  // the grid's profile, named by the strategy

    gg::options cli;
    cli.log_file = log_file.string();
    gg::tab_log log(nullptr);
    REQUIRE(log.open(log_file));
    sb::page p1 = f.open(buy.url);
    sb::page p2 = f.open(cap.url);
    f.wait_listeners(2);
    seckill::token_bucket<> pace1(buy.strategy.actions_per_second, buy.strategy.burst);
    seckill::token_bucket<> pace2(cap.strategy.actions_per_second, cap.strategy.burst);
    const auto shots = gg::screenshot_directory(cli);
    CHECK(shots == dir.path());
    auto run1 = asio::co_spawn(p1.get_executor(), gg::run_tab(p1, buy, pace1, log, shots),
                               asio::use_future);
    auto run2 = asio::co_spawn(p2.get_executor(), gg::run_tab(p2, cap, pace2, log, shots),
                               asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("veg-box", 2);
    f.shop.set_stock("rice-5kg", 3);  // 12.90: above tab 2's cap
    const gg::tab_outcome bought = get(run1, 100s);
    const gg::tab_outcome missed = get(run2, 100s);

    CHECK(bought.result.ordered);
    CHECK(bought.result.sku == "veg-box");
    CHECK(gg::summary(buy, bought).find("tab 1: bought 1 x veg-box: Order confirmed") == 0);
    CHECK_FALSE(missed.result.ordered);
    CHECK(missed.ec == seckill::errc::timed_out);
    CHECK(gg::summary(cap, missed) == "tab 2: no order: the deadline passed");
    CHECK(f.shop.orders().size() == 1);

    // Both screenshots are whole PNGs of the pages, beside the log, named
    // with the time, the tab, the SKU and how the tab ended.
    REQUIRE_FALSE(bought.screenshot.empty());
    REQUIRE_FALSE(missed.screenshot.empty());
    CHECK(bought.screenshot.parent_path() == dir.path());
    CHECK(missed.screenshot.parent_path() == dir.path());
    const std::string ok_name = bought.screenshot.filename().string();
    const std::string no_name = missed.screenshot.filename().string();
    CHECK(ok_name.ends_with("Z-tab1-veg-box-ordered.png"));
    CHECK(no_name.ends_with("Z-tab2-no-sku-no-order.png"));
    CHECK(ok_name.size() == std::string("20261204T140512.345Z-tab1-veg-box-ordered.png").size());
    for (const auto& shot : {bought.screenshot, missed.screenshot}) {
      CAPTURE(shot.string());
      const std::string png = browser_support::read_file(shot);
      const auto header = browser_support::read_png_header(png);
      REQUIRE(header.has_value());
      CHECK(header->width > 100);
      CHECK(header->height > 100);
    }
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      files += e.path().extension() == ".png";
      CHECK(e.path().extension() != ".part");
    }
    CHECK(files == 2);

    // The log file has every tab's lines, each with its tab.
    const std::string text = browser_support::read_file(log_file);
    CHECK(contains(text, "Z [tab 1] grabber: confirmed: Order confirmed"));
    CHECK(contains(text, "Z [tab 2] grabber: skipped:"));
    CHECK(contains(text, "Z [tab 2] grabber: gave-up: deadline of 3000 ms passed"));
    CHECK(contains(text, "Z [tab 1] screenshot: " + bought.screenshot.string()));
    CHECK(contains(text, "Z [tab 2] screenshot: " + missed.screenshot.string()));
    CHECK_FALSE(contains(text, "[tab 1] grabber: gave-up"));
  }

  TEST_CASE("a screenshot that cannot be written is logged - the tab's purchase stands") {
    tabs_fixture f;
    seckill::detail::temp_dir dir("seckill-tabs");
    gg::tab_plan plan;
    plan.url = f.shop.url();
    plan.strategy = sb::parse_strategy("want = sku:eggs-12\ndeadline = 60s\n");
    gg::tab_log log(nullptr);
    REQUIRE(log.open(dir.path() / "run.log"));
    sb::page p = f.open(plan.url);
    f.wait_listeners(1);
    seckill::token_bucket<> pace(plan.strategy.actions_per_second, plan.strategy.burst);
    const auto nowhere = dir.path() / "no-such-dir";
    auto run = asio::co_spawn(p.get_executor(), gg::run_tab(p, plan, pace, log, nowhere),
                              asio::use_future);
    std::this_thread::sleep_for(300ms);
    f.shop.set_stock("eggs-12", 1);
    const gg::tab_outcome out = get(run, 100s);
    CHECK_MESSAGE(!out.ec, out.ec.message());
    CHECK(out.result.ordered);
    CHECK(out.screenshot.empty());
    CHECK_FALSE(std::filesystem::exists(nowhere));
    const std::string text = browser_support::read_file(dir.path() / "run.log");
    CHECK(contains(text, "[tab 1] grabber: confirmed"));
    CHECK(contains(
        text, "[tab 1] screenshot failed: No such file or directory (" + nowhere.string() + "/"));
    CHECK(f.shop.orders().size() == 1);
  }
}
