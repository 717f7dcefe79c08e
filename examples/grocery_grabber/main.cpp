// Watches a shop page in headless Chromium and buys what the strategy wants the
// moment it is in stock.
//
//   seckill_example_grocery_grabber <shop-url | demo | demo-grid> <strategy-file>
//                                   [--chromium PATH] [--site-profile FILE]
//
// "demo" starts the demo shop in this process and restocks it after a second;
// "demo-grid" does the same and opens its button-grid page (strategy-grid.txt
// names the profile for it). The shop's page is described by a site profile:
// --site-profile FILE, else the file the strategy names (`profile = <file>`,
// relative to the strategy file), else the strategy's own profile keys, else
// the demo shop's defaults. options.hpp reads the command line.
#include "grocery_grabber/options.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/url.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>

namespace asio = boost::asio;
namespace sb = seckill::browser;

int main(int argc, char** argv) {
  const grocery_grabber::parse_result parsed = grocery_grabber::parse_options(argc, argv);
  if (std::holds_alternative<grocery_grabber::help_requested>(parsed)) {
    std::printf("%s", grocery_grabber::usage(argv[0]).c_str());
    return 0;
  }
  if (const auto* e = std::get_if<grocery_grabber::usage_error>(&parsed)) {
    std::fprintf(stderr, "%s\n%s", e->message.c_str(), grocery_grabber::usage(argv[0]).c_str());
    return 2;
  }
  const auto& args = std::get<grocery_grabber::options>(parsed);
  std::ifstream in(args.strategy_file);
  if (!in) {
    std::fprintf(stderr, "cannot read strategy file '%s'\n", args.strategy_file.c_str());
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  sb::strategy_config cfg;
  try {
    cfg = sb::parse_strategy(text.str());
  } catch (const seckill::error& e) {
    std::fprintf(stderr, "%s: %s\n", args.strategy_file.c_str(), e.what());
    return 2;
  }
  // The page's profile: --site-profile, else the file the strategy names
  // (relative to the strategy), else the strategy's own keys, else the defaults.
  sb::site_profile profile = cfg.profile.value_or(sb::site_profile{});
  std::filesystem::path profile_file;
  if (!args.site_profile.empty())
    profile_file = args.site_profile;
  else if (!cfg.profile_file.empty())
    profile_file = std::filesystem::path(args.strategy_file).parent_path() / cfg.profile_file;
  if (!profile_file.empty()) {
    std::ifstream pin(profile_file);
    if (!pin) {
      std::fprintf(stderr, "cannot read profile file '%s'\n", profile_file.c_str());
      return 2;
    }
    std::stringstream ptext;
    ptext << pin.rdbuf();
    try {
      profile = sb::parse_profile(ptext.str());
    } catch (const seckill::error& e) {
      std::fprintf(stderr, "%s: %s\n", profile_file.c_str(), e.what());
      return 2;
    }
  }

  std::optional<shop::shop_server> demo;
  std::string url = args.shop;
  if (url == "demo" || url == "demo-grid") {
    demo.emplace();
    url = url == "demo" ? demo->url() : demo->grid_url();
    std::printf("demo shop at %s\n", url.c_str());
  }
  const std::string shown = seckill::redact_url(url);  // what is printed: no password, no token

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  int status = 1;
  try {
    sb::chromium_options copts;
    if (!args.chromium.empty()) copts.executable = args.chromium;
    auto browser = sb::chromium::launch(io.get_executor(), copts);
    auto [eo, page] = sb::page::async_open(browser.connection(), asio::use_future).get();
    if (eo) throw seckill::error(eo, "opening a tab");
    auto [en, nav] = page.async_navigate(url, asio::use_future).get();
    if (en)
      throw seckill::error(en, "loading " + shown + ": " + nav.value("errorText", std::string()));
    std::printf("watching %s\n", shown.c_str());
    std::fflush(stdout);

    seckill::token_bucket<> pace(cfg.actions_per_second, cfg.burst);
    sb::grabber_options opts;
    opts.retries = cfg.retries;
    opts.log = [](std::string_view line) {
      std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(stdout);
    };
    sb::grabber grab(sb::page_driver(page, profile), sb::priority_strategy(cfg), pace, opts);
    auto run = grab.async_run(cfg.deadline, asio::use_future);
    if (demo) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      demo->set_stock("apples-1kg", 4);
      demo->set_stock("veg-box", 1);
    }
    auto [ec, res] = run.get();
    if (res.ordered) {
      std::printf("bought %d x %s%s: %s\n", res.quantity, res.sku.c_str(),
                  res.requested > res.quantity
                      ? (" (" + std::to_string(res.requested) + " asked)").c_str()
                      : "",
                  res.confirmation.c_str());
      status = 0;
    } else {
      std::printf("no order: %s\n", ec.message().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  work.reset();
  io.stop();
  runner.join();
  return status;
}
