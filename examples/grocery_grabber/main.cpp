// Watches a shop page in headless Chromium and buys what the strategy wants the
// moment it is in stock.
//
//   seckill_example_grocery_grabber <shop-url | demo | demo-grid> <strategy-file>
//                                   [--chromium PATH]
//
// "demo" starts the demo shop in this process and restocks it after a second;
// "demo-grid" does the same and opens its button-grid page (strategy-grid.txt
// names the profile for it). A strategy file describes the shop's page with a
// site profile's keys, or names a profile file (`profile = <file>`, relative
// to the strategy file).
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
#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
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

namespace asio = boost::asio;
namespace sb = seckill::browser;

namespace {

/// What is wrong with `text` as a shop URL (an absolute http:// or https://
/// URL with a host), parsed with Boost.URL; empty when nothing is. Never
/// echoes the user info.
std::string shop_url_problem(std::string_view text) {
  namespace urls = boost::urls;
  const auto r = urls::parse_uri(text);
  if (!r) {
    return "not an absolute URL like http://127.0.0.1:8080/ (RFC 3986; spaces and the like must be "
           "percent-encoded)";
  }
  const urls::url_view& u = *r;
  if (!urls::grammar::ci_is_equal(u.scheme(), "http") &&
      !urls::grammar::ci_is_equal(u.scheme(), "https")) {
    // (a scheme has no ':' or '@': it never holds a password)
    return "unsupported scheme '" + std::string(u.scheme()) + "' (expected http:// or https://)";
  }
  const std::string_view path = u.encoded_path();
  if (!path.empty() && path.front() != '/') {
    // Boost.URL reads "h:abc" as host h, path "abc"; and "u:p#ss@h" (an
    // unencoded '#' in a password) as host u, path "p": nothing is echoed.
    return "a bad port or unexpected text after the host (a password's @ : / ? # must be "
           "percent-encoded as %40 %3A %2F %3F %23)";
  }
  if (!u.has_authority() || u.host_address().empty()) return "no host";
  if (u.has_port()) {
    const std::string_view port = u.port();
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || n == 0 ||
        n > 65535)
      return "port '" + std::string(port) + "' is not in [1, 65535]";
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--chromium")) {
    std::fprintf(stderr,
                 "usage: %s <shop-url | demo | demo-grid> <strategy-file> [--chromium PATH]\n",
                 argv[0]);
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
  sb::site_profile profile = cfg.profile.value_or(sb::site_profile{});
  if (!cfg.profile_file.empty()) {
    const std::filesystem::path file =
        std::filesystem::path(argv[2]).parent_path() / cfg.profile_file;
    std::ifstream pin(file);
    if (!pin) {
      std::fprintf(stderr, "%s: cannot read profile file '%s'\n", argv[2], file.c_str());
      return 2;
    }
    std::stringstream ptext;
    ptext << pin.rdbuf();
    try {
      profile = sb::parse_profile(ptext.str());
    } catch (const seckill::error& e) {
      std::fprintf(stderr, "%s: %s\n", file.c_str(), e.what());
      return 2;
    }
  }

  std::optional<shop::shop_server> demo;
  std::string url = argv[1];
  if (url == "demo" || url == "demo-grid") {
    demo.emplace();
    url = url == "demo" ? demo->url() : demo->grid_url();
    std::printf("demo shop at %s\n", url.c_str());
  } else if (const std::string why = shop_url_problem(url); !why.empty()) {
    std::fprintf(stderr, "bad shop url '%s': %s\n", seckill::redact_url(url).c_str(), why.c_str());
    return 2;
  }
  const std::string shown = seckill::redact_url(url);  // what is printed: no password, no token

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
