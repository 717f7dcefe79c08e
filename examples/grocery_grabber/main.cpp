// Watches a shop page in headless Chromium and buys what the strategy wants the
// moment it is in stock.
//
//   seckill_example_grocery_grabber <shop-url | demo> <strategy-file> [--chromium PATH]
//
// "demo" starts the demo shop in this process and restocks it after a second.
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace asio = boost::asio;
namespace sb = seckill::browser;

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--chromium")) {
    std::fprintf(stderr, "usage: %s <shop-url | demo> <strategy-file> [--chromium PATH]\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[2]);
  if (!in) {
    std::fprintf(stderr, "cannot read strategy file '%s'\n", argv[2]);
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  sb::strategy_config cfg;
  try {
    cfg = sb::parse_strategy(text.str());
  } catch (const seckill::error& e) {
    std::fprintf(stderr, "%s: %s\n", argv[2], e.what());
    return 2;
  }

  std::optional<shop::shop_server> demo;
  std::string url = argv[1];
  if (url == "demo") {
    demo.emplace();
    url = demo->url();
    std::printf("demo shop at %s\n", url.c_str());
  }

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  int status = 1;
  try {
    sb::chromium_options copts;
    if (argc == 5) copts.executable = argv[4];
    auto browser = sb::chromium::launch(io.get_executor(), copts);
    auto [eo, page] = sb::page::async_open(browser.connection(), asio::use_future).get();
    if (eo) throw seckill::error(eo, "opening a tab");
    auto [en, nav] = page.async_navigate(url, asio::use_future).get();
    if (en) throw seckill::error(en, "loading " + url + ": " + nav.value("errorText", std::string()));
    std::printf("watching %s\n", url.c_str());
    std::fflush(stdout);

    seckill::token_bucket<> pace(cfg.actions_per_second, cfg.burst);
    sb::grabber_options opts;
    opts.log = [](std::string_view line) {
      std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(stdout);
    };
    sb::grabber grab(page, sb::priority_strategy(cfg), pace, opts);
    auto run = grab.async_run(cfg.deadline, asio::use_future);
    if (demo) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      demo->set_stock("apples-1kg", 4);
      demo->set_stock("veg-box", 1);
    }
    auto [ec, res] = run.get();
    if (res.ordered) {
      std::printf("bought %d x %s%s: %s\n", res.quantity, res.sku.c_str(),
                  res.requested > res.quantity ? (" (" + std::to_string(res.requested) + " asked)").c_str() : "",
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
