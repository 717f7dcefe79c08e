// Watches shop pages in headless Chromium and buys what each strategy wants
// the moment it is in stock: one tab per <shop> <strategy-file> pair, all at
// once in one browser.
//
//   seckill_example_grocery_grabber <shop> <strategy-file> [<shop> <strategy-file> ...]
//                                   [--chromium PATH] [--site-profile FILE]
//                                   [--log FILE | --screenshots DIR]
//                                   [--sandbox auto|on|off] [--profile DIR [--login]]
//                                   [--connect URL] [--notify [PRESET:]URL ...]
//                                   [--notify-on EVENTS] [--no-desktop-notify] [--visible]
//                                   [--dry-run | --monitor] [--clock-offset MS]
//
// A shop is a URL, or "demo" / "demo-grid" / "demo-api": the demo shop
// started in this process (restocked after a second), its select page, its
// button grid (strategy-grid.txt names the profile for it) or its page that
// shows the stock only through polled JSON (strategy-api.txt). Each tab's page is described
// by a site profile: --site-profile FILE (one tab only), else the file its
// strategy names (`profile = <file>`, relative to the strategy file), else the
// strategy's own profile keys, else the demo shop's defaults. Every log line
// names its tab; when a tab ends, a screenshot of its page is saved beside the
// log file (--log), else in --screenshots DIR, else in the current directory;
// then one summary line per tab. The exit status is 0 only if every tab
// bought (--dry-run: reached the press without pressing; --monitor: watched
// until its deadline). The browser is launched (its sandbox as --sandbox says, a temporary
// profile or --profile DIR) or, with --connect, one the user runs, where only
// the tabs opened here are closed at the end. --login opens the one shop in a
// visible window and waits until the profile's logged_in element shows.
// Notices (ordered, failed, sold-out, hand-off) go to the webhooks of
// --notify and of each strategy's `notify`, and to the desktop where there
// is one; the program waits for them (at most 30 s) before it exits. When
// the shop shows a verification, the grabber waits for a person to solve it:
// in the window of --visible (or of the browser --connect drives); headless,
// the log says nobody can reach it.
// With --account NAME=DIR[:STRATEGY] (two or more), each account runs every
// tab in a Chromium of its own on its profile directory (its own cookies and
// session), each grabber with its own pace and back-off, so a shop that
// throttles or stops one account leaves the others running; the log names
// the account and the tab, and one table sums every account and tab up.
// options.hpp reads the command line, tabs.hpp runs a tab, browser_session.hpp
// launches or connects and waits for a login.
#include "grocery_grabber/browser_session.hpp"
#include "grocery_grabber/options.hpp"
#include "grocery_grabber/tabs.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/notifier.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/url.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace asio = boost::asio;
namespace sb = seckill::browser;
namespace gg = grocery_grabber;

int main(int argc, char** argv) {
  const gg::parse_result parsed = gg::parse_options(argc, argv);
  if (std::holds_alternative<gg::help_requested>(parsed)) {
    std::printf("%s", gg::usage(argv[0]).c_str());
    return 0;
  }
  if (const auto* e = std::get_if<gg::usage_error>(&parsed)) {
    std::fprintf(stderr, "%s\n%s", e->message.c_str(), gg::usage(argv[0]).c_str());
    return 2;
  }
  const auto& args = std::get<gg::options>(parsed);
  if (args.visible) {
    const std::string why =
        gg::visible_display_problem(std::getenv("DISPLAY"), std::getenv("WAYLAND_DISPLAY"));
    if (!why.empty()) {
      std::fprintf(stderr, "%s\n", why.c_str());
      return 2;
    }
  }
  if (args.login) {
    const std::string why =
        gg::login_display_problem(std::getenv("DISPLAY"), std::getenv("WAYLAND_DISPLAY"));
    if (!why.empty()) {
      std::fprintf(stderr, "%s\n", why.c_str());
      return 2;
    }
  }
  // One plan per tab, or per account and tab; browser_of: which browser runs it.
  const std::size_t accounts = std::max<std::size_t>(1, args.accounts.size());
  std::vector<gg::tab_plan> plans(args.tabs.size() * accounts);
  std::vector<std::size_t> browser_of(plans.size());
  for (std::size_t a = 0; a < accounts; ++a) {
    for (std::size_t i = 0; i < args.tabs.size(); ++i) {
      const std::size_t k = a * args.tabs.size() + i;
      gg::tab_options tab = args.tabs[i];
      if (!args.accounts.empty()) {
        plans[k].account = args.accounts[a].name;
        if (!args.accounts[a].strategy_file.empty())
          tab.strategy_file = args.accounts[a].strategy_file;
      }
      plans[k].number = static_cast<int>(i) + 1;
      browser_of[k] = a;
      if (const std::string why = gg::load_tab_plan(tab, args.site_profile, plans[k]);
          !why.empty()) {
        std::fprintf(stderr, "%s%s\n",
                     plans[k].account.empty() ? "" : ("account " + plans[k].account + ": ").c_str(),
                     why.c_str());
        return 2;
      }
      if (args.mode) plans[k].strategy.mode = *args.mode;
      if (args.clock_offset) plans[k].strategy.clock_offset = *args.clock_offset;
    }
  }
  if (args.login && plans.front().profile.logged_in.empty()) {
    std::fprintf(stderr,
                 "--login waits for the site profile's logged_in element, and this profile has "
                 "no logged_in key\n");
    return 2;
  }
  gg::tab_log log;
  if (!args.log_file.empty() && !log.open(args.log_file)) {
    std::fprintf(stderr, "--log: cannot append to '%s': %s\n", args.log_file.c_str(),
                 std::strerror(errno));
    return 2;
  }
  const std::filesystem::path screenshots = gg::screenshot_directory(args);

  std::optional<shop::shop_server> demo;
  for (auto& plan : plans) {
    if (plan.url != "demo" && plan.url != "demo-grid" && plan.url != "demo-api") continue;
    if (!demo) {
      demo.emplace();
      log.line(0, fmt::format("demo shop at {}", demo->url()));
    }
    plan.url = plan.url == "demo"        ? demo->url()
               : plan.url == "demo-grid" ? demo->grid_url()
                                         : demo->api_url();
  }

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  int status = 1;
  try {
    const auto say = [&log](std::string_view line) { log.line(0, line); };
    // One browser, or one per account on its own profile directory (its own
    // Chromium: cookies are per profile).
    std::vector<sb::chromium> browsers;
    if (args.accounts.empty()) {
      browsers.push_back(gg::open_browser(args, io.get_executor(), say));
    } else {
      for (const auto& account : args.accounts) {
        gg::options one = args;
        one.profile_dir = account.profile_dir;
        browsers.push_back(gg::open_browser(
            one, io.get_executor(),
            [&log, name = account.name](std::string_view l) { log.line(name, l); }));
      }
    }
    auto& browser = browsers.front();
    // Every tab's page first, then every grabber at once. A tab that cannot
    // load its page ends at once; the others still run.
    std::vector<std::optional<sb::page>> pages(plans.size());
    // With --connect only these tabs are ours: they are closed, the browser is not.
    struct close_tabs {
      std::vector<std::optional<sb::page>>& tabs;
      bool connected;
      ~close_tabs() {
        for (auto& t : tabs)
          if (connected && t)
            (void)t->async_close(asio::use_future).wait_for(std::chrono::seconds(5));
      }
    } closing{pages, !args.connect.empty()};
    std::vector<std::optional<std::string>> unopened(plans.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const std::string shown = seckill::redact_url(plans[i].url);  // no password, no token
      auto [eo, page] =
          sb::page::async_open(browsers[browser_of[i]].connection(), asio::use_future).get();
      if (eo) {
        unopened[i] = fmt::format("opening a tab: {}", eo.message());
      } else if (auto [en, nav] = page.async_navigate(plans[i].url, asio::use_future).get(); en) {
        unopened[i] = fmt::format("loading {}: {} {}", shown, en.message(),
                                  nav.value("errorText", std::string()));
      } else {
        pages[i] = std::move(page);
        log.line(gg::who(plans[i]), fmt::format("watching {}", shown));
        continue;
      }
      log.line(gg::who(plans[i]), *unopened[i]);
    }
    if (args.login) {
      if (pages.front()) {
        log.line(1, fmt::format("log in to {} in the browser window; waiting up to {} minutes "
                                "for '{}' (close the window to give up)",
                                seckill::redact_url(plans.front().url), gg::login_timeout.count(),
                                plans.front().profile.logged_in));
        status = gg::wait_for_login(*pages.front(), plans.front().profile.logged_in,
                                    gg::login_timeout, say);
      }
      browser.shutdown();  // Browser.close: the session cookie reaches the profile on disk
      pages.clear();
      work.reset();
      io.stop();
      runner.join();
      return status;
    }
    // Each tab's notices: the --notify webhooks and its strategy's, and the
    // desktop where there is one (said once when there is none).
    const auto env = sb::desktop_environment::from_process();
    const bool desktop = args.desktop_notify && env.missing().empty();
    if (args.desktop_notify && !desktop)
      log.line(0, fmt::format("notify: {}: no desktop notifications", env.missing()));
    std::vector<std::unique_ptr<sb::notifier>> notifiers(plans.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      sb::notifier_options no;
      no.webhooks = args.notify;
      if (plans[i].strategy.notify) no.webhooks.push_back(*plans[i].strategy.notify);
      no.on = args.notify_on.value_or(plans[i].strategy.notify_on);
      no.desktop = desktop;
      no.env = env;
      no.log = [&log, n = gg::who(plans[i])](std::string_view line) { log.line(n, line); };
      if (!no.webhooks.empty() || desktop)
        notifiers[i] = std::make_unique<sb::notifier>(io.get_executor(), std::move(no));
    }
    // Each tab (each account's) at its own strategy's pace, with its own
    // back-off: the tabs and the accounts do not wait for each other.
    std::vector<std::unique_ptr<seckill::token_bucket<>>> paces;
    std::vector<std::future<gg::tab_outcome>> runs(plans.size());
    for (std::size_t i = 0; i < plans.size(); ++i) {
      if (!pages[i]) continue;
      paces.push_back(std::make_unique<seckill::token_bucket<>>(
          plans[i].strategy.actions_per_second, plans[i].strategy.burst));
      runs[i] = asio::co_spawn(
          pages[i]->get_executor(),
          gg::run_tab(*pages[i], plans[i], *paces.back(), log, screenshots, notifiers[i].get()),
          asio::use_future);
    }
    if (demo) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      demo->set_stock("apples-1kg", 4);
      demo->set_stock("veg-box", 1);
    }
    bool all_bought = true;
    std::vector<std::string> summaries;
    std::vector<gg::summary_row> rows;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const std::string account = plans[i].account.empty() ? std::string() : plans[i].account + " ";
      if (!pages[i]) {
        summaries.push_back(
            fmt::format("{}tab {}: no order: {}", account, plans[i].number, *unopened[i]));
        rows.push_back({plans[i].account, plans[i].number, "no order: " + *unopened[i]});
        all_bought = false;
        continue;
      }
      const gg::tab_outcome outcome = runs[i].get();
      all_bought = all_bought && gg::succeeded(plans[i], outcome);
      summaries.push_back(account + gg::summary(plans[i], outcome));
      rows.push_back(gg::summary_row_of(plans[i], outcome));
    }
    if (args.accounts.empty()) {
      for (const auto& s : summaries) log.line(0, s);
    } else {
      for (const auto& s : gg::summary_table(rows)) log.line(0, s);
    }
    for (auto& n : notifiers) {  // the last notices, each within its retries, 30 s at most
      if (n && n->async_flush(asio::use_future).wait_for(std::chrono::seconds(30)) !=
                   std::future_status::ready)
        log.line(0, "notify: some notices were still being sent after 30 s: not waiting longer");
    }
    status = all_bought ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  work.reset();
  io.stop();
  runner.join();
  return status;
}
