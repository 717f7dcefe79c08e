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
  std::vector<gg::tab_plan> plans(args.tabs.size());
  for (std::size_t i = 0; i < args.tabs.size(); ++i) {
    plans[i].number = static_cast<int>(i) + 1;
    if (const std::string why = gg::load_tab_plan(args.tabs[i], args.site_profile, plans[i]);
        !why.empty()) {
      std::fprintf(stderr, "%s\n", why.c_str());
      return 2;
    }
    if (args.mode) plans[i].strategy.mode = *args.mode;
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
    auto browser = gg::open_browser(args, io.get_executor(), say);
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
      auto [eo, page] = sb::page::async_open(browser.connection(), asio::use_future).get();
      if (eo) {
        unopened[i] = fmt::format("opening a tab: {}", eo.message());
      } else if (auto [en, nav] = page.async_navigate(plans[i].url, asio::use_future).get(); en) {
        unopened[i] = fmt::format("loading {}: {} {}", shown, en.message(),
                                  nav.value("errorText", std::string()));
      } else {
        pages[i] = std::move(page);
        log.line(plans[i].number, fmt::format("watching {}", shown));
        continue;
      }
      log.line(plans[i].number, *unopened[i]);
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
      no.log = [&log, n = plans[i].number](std::string_view line) { log.line(n, line); };
      if (!no.webhooks.empty() || desktop)
        notifiers[i] = std::make_unique<sb::notifier>(io.get_executor(), std::move(no));
    }
    // Each tab at its own strategy's pace: the tabs do not wait for each other.
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
    for (std::size_t i = 0; i < plans.size(); ++i) {
      if (!pages[i]) {
        summaries.push_back(fmt::format("tab {}: no order: {}", plans[i].number, *unopened[i]));
        all_bought = false;
        continue;
      }
      const gg::tab_outcome outcome = runs[i].get();
      all_bought = all_bought && gg::succeeded(plans[i], outcome);
      summaries.push_back(gg::summary(plans[i], outcome));
    }
    for (const auto& s : summaries) log.line(0, s);
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
