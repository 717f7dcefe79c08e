// The extension backend in real headless Chromium: the unpacked extension
// (extension/) loaded with --load-extension, seckill_native_host registered
// in the test's temporary profile (NativeMessagingHosts/), the demo shop
// served on 127.0.0.1.
//
// End to end: the extension starts seckill_native_host, which runs the C++
// grabber over the extension's messages and buys on the shop. The
// conformance cases (browser/driver_conformance.hpp) run the same tests
// over page_driver (CDP) and over extension_driver; for the latter the host
// runs as a relay (its configuration's "relay": a loopback port this test
// listens on) and forwards the extension's frames unchanged, so the test
// process drives the extension through the real native-messaging path.
#include "browser/driver_conformance.hpp"
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/extension_driver.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>

// Built with the examples only: SECKILL_NATIVE_HOST_BINARY names the built
// seckill_native_host, SECKILL_EXTENSION_DIR the source tree's extension/.
#if defined(SECKILL_NATIVE_HOST_BINARY) && defined(SECKILL_EXTENSION_DIR)

namespace integration_extension {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace sb = seckill::browser;
using browser_support::get;
using tcp = asio::ip::tcp;

constexpr const char* extension_id = "ikcgffofaaglogflfhnkhingdndchoai";

void write(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  REQUIRE(out.good());
}

// A temporary profile with seckill_native_host registered in it, and the
// host's configuration (`config`, a JSON object's text) named by the
// environment Chromium passes on to the host.
std::filesystem::path prepare_profile(const std::filesystem::path& dir, const std::string& config) {
  const auto profile = dir / "profile";
  std::filesystem::create_directories(profile / "NativeMessagingHosts");
  write(profile / "NativeMessagingHosts" / "com.seckill.native_host.json",
        std::string(R"({"name": "com.seckill.native_host", "description": "seckill",)") +
            R"( "path": ")" + SECKILL_NATIVE_HOST_BINARY + R"(", "type": "stdio",)" +
            R"( "allowed_origins": ["chrome-extension://)" + extension_id + R"(/"]})");
  write(dir / "host.json", config);
  ::setenv("SECKILL_NATIVE_HOST_CONFIG", (dir / "host.json").c_str(), 1);
  return profile;
}

sb::chromium launch_with_extension(asio::io_context& io, const std::filesystem::path& profile) {
  sb::chromium_options o;
  o.user_data_dir = profile;
  o.extensions = {SECKILL_EXTENSION_DIR};
  o.close_timeout = 3s;
  return sb::chromium::launch(io.get_executor(), o);
}

// The CDP backend: page_driver on a tab showing the shop.
using shop_setup = std::function<void(shop::shop_server&)>;

struct cdp_backend {
  shop::shop_server shop;
  browser_support::browser_fixture f;
  sb::page_driver driver;

  static sb::page_driver_options options() {
    sb::page_driver_options o;
    o.click.timeout = 1s;
    return o;
  }
  explicit cdp_backend(sb::site_profile p = {}, const shop_setup& setup = {},
                       const std::string& page = "")
      : driver(f.page, std::move(p), options()) {
    if (setup) setup(shop);
    auto [ec, r] = get(f.page.async_navigate(shop.url() + page, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
  }
  void end_browser() { f.browser.shutdown(); }
};

// The extension backend: extension_driver over the relay's socket; the
// extension opens the shop's tab when the driver starts watching.
struct extension_backend {
  shop::shop_server shop;
  browser_support::io_thread io;
  seckill::detail::temp_dir tmp{"seckill-extension-test"};
  tcp::acceptor acceptor{io.io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::optional<sb::chromium> browser;
  std::string page;  // the shop's page, under its root
  sb::extension_driver<tcp::socket> driver;

  explicit extension_backend(sb::site_profile p = {}, const shop_setup& setup = {},
                             std::string page_path = "")
      : page(std::move(page_path)), driver(connect(setup), std::move(p), options()) {}

  sb::extension_driver_options options() const {
    sb::extension_driver_options o;
    o.url = shop.url() + page;
    o.click.timeout = 1s;
    return o;
  }
  tcp::socket connect(const shop_setup& setup) {
    if (setup) setup(shop);
    const auto profile =
        prepare_profile(tmp.path(), R"({"relay": "127.0.0.1:)" +
                                        std::to_string(acceptor.local_endpoint().port()) + R"("})");
    auto accepted = acceptor.async_accept(asio::use_future);
    browser.emplace(launch_with_extension(io.io, profile));
    return get(accepted, 30s);
  }
  ~extension_backend() {
    auto closed = asio::post(io.io, asio::use_future([d = driver]() mutable { d.close(); }));
    closed.wait_for(5s);
  }
  void end_browser() { browser->shutdown(); }
};

}  // namespace integration_extension

using namespace integration_extension;

TEST_SUITE("integration") {
  SECKILL_DRIVER_CONFORMANCE("cdp driver", cdp_backend)
  SECKILL_DRIVER_CONFORMANCE("extension driver", extension_backend)

  TEST_CASE("extension driver: the actions at once buy one order - a failure names its action") {
    extension_backend b;
    b.shop.set_stock("veg-box", 5);
    driver_conformance::watch(b.driver);
    driver_conformance::wait_in_stock(b.driver);
    sb::order_actions unknown;
    unknown.sku = "no-such-sku";
    unknown.quantity = 2;
    auto [e1, at1] = get(b.driver.async_order(unknown, asio::use_future), 30s);
    CHECK(e1 == sb::errc::element_not_found);
    CHECK(at1 == sb::order_action::choose);
    sb::order_actions all;
    all.sku = "veg-box";
    all.quantity = 2;
    auto [e2, at2] = get(b.driver.async_order(all, asio::use_future), 30s);
    REQUIRE_MESSAGE(!e2, e2.message());
    driver_conformance::one_order_confirmed(b, "veg-box", 2, 3);  // the failed one left nothing
    b.shop.sell_out();  // the button disabled: the press is the step that fails
    REQUIRE(driver_conformance::wait_event(
        b.driver,
        [](const sb::shop_event& e) {
          return e.kind == sb::shop_event_kind::status && !e.in_stock;
        },
        5s));
    sb::order_actions press_only;
    auto [e3, at3] = get(b.driver.async_order(press_only, asio::use_future), 30s);
    CHECK(e3 == sb::errc::element_not_actionable);
    CHECK(at3 == sb::order_action::press);
    CHECK(b.shop.orders().size() == 1);
  }

  TEST_CASE(
      "extension driver: the actions at once on the grid shop - clicks and + - buy one order") {
    extension_backend b(browser_support::grid_profile(), {}, "grid");
    b.shop.set_stock("eggs-12", 5);
    driver_conformance::watch(b.driver);
    driver_conformance::wait_in_stock(b.driver);
    sb::order_actions all;
    all.sku = "eggs-12";
    all.quantity = 3;
    auto [e, at] = get(b.driver.async_order(all, asio::use_future), 30s);
    REQUIRE_MESSAGE(!e, e.message() << " at action " << static_cast<int>(at));
    driver_conformance::one_order_confirmed(b, "eggs-12", 3, 2);
  }

  TEST_CASE("the extension starts seckill_native_host - whose grabber buys on the demo shop") {
    shop::shop_server shop;
    browser_support::io_thread io;
    seckill::detail::temp_dir tmp("seckill-extension-test");
    write(tmp.path() / "strategy.txt",
          "want = sku:veg-box\nquantity = 1\ndeadline = 60s\npace = 20/s\nburst = 5\n");
    const auto log = tmp.path() / "host.log";
    const auto profile = prepare_profile(
        tmp.path(), R"({"url": ")" + shop.url() + R"(", "strategy": "strategy.txt", "log": ")" +
                        log.string() + R"("})");
    auto browser = launch_with_extension(io.io, profile);
    const auto logged = [&](const std::string& what) {
      return browser_support::read_file(log).find(what) != std::string::npos;
    };
    for (int i = 0; i < 300 && !logged("grabber: stock-changed"); ++i)
      std::this_thread::sleep_for(100ms);
    REQUIRE_MESSAGE(logged("grabber: stock-changed"), browser_support::read_file(log));
    CHECK(shop.orders().empty());      // nothing in stock: nothing bought
    shop.set_stock("apples-1kg", 10);  // not wanted
    shop.set_stock("veg-box", 5);
    for (int i = 0; i < 200 && !logged("ordered 1 x veg-box"); ++i)
      std::this_thread::sleep_for(100ms);
    CHECK_MESSAGE(logged("grabber: confirmed"), browser_support::read_file(log));
    CHECK(logged("ordered 1 x veg-box"));
    std::this_thread::sleep_for(300ms);
    browser_support::check_one_order(shop, "veg-box", 1, 4);
  }

  TEST_CASE("seckill_native_host refuses a relay that is not on loopback") {
    seckill::detail::temp_dir tmp("seckill-extension-test");
    write(tmp.path() / "host.json",
          R"({"relay": "10.1.2.3:80", "log": ")" + (tmp.path() / "host.log").string() + R"("})");
    const std::string cmd = std::string("SECKILL_NATIVE_HOST_CONFIG=") +
                            (tmp.path() / "host.json").string() + " " + SECKILL_NATIVE_HOST_BINARY +
                            " </dev/null >/dev/null";
    const int rc = std::system(cmd.c_str());
    CHECK(WIFEXITED(rc));
    CHECK(WEXITSTATUS(rc) == 2);
    CHECK(browser_support::read_file(tmp.path() / "host.log").find("not a loopback") !=
          std::string::npos);
  }
}

#endif  // SECKILL_NATIVE_HOST_BINARY && SECKILL_EXTENSION_DIR
