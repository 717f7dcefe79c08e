// Screenshots of a real headless Chromium showing the demo shop: the PNG the
// page returns, and the file async_save_screenshot writes (or the error it
// gives when it cannot).
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/page.hpp>
#include <seckill/browser/screenshot.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <system_error>

namespace integration_screenshot {

using browser_support::get;
namespace asio = boost::asio;
namespace sb = seckill::browser;

struct shop_page : browser_support::browser_fixture {
  shop::shop_server shop;
  shop_page() {
    auto [ec, r] = get(page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
  }
};

}  // namespace integration_screenshot

using namespace integration_screenshot;

TEST_SUITE("integration") {
  TEST_CASE("a screenshot of the demo shop is a PNG exactly the size of the viewport") {
    shop_page f;
    auto [ev, size] = get(f.page.async_evaluate(
        "[Math.round(innerWidth * devicePixelRatio), Math.round(innerHeight * devicePixelRatio)]",
        asio::use_future));
    REQUIRE_MESSAGE(!ev, ev.message());
    REQUIRE(size.is_array());
    auto [ec, png] = get(f.page.async_screenshot(asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    const auto header = browser_support::read_png_header(png);
    REQUIRE(header.has_value());
    CHECK(header->width == size[0].get<std::uint32_t>());
    CHECK(header->height == size[1].get<std::uint32_t>());
    CHECK(header->width > 100);
    CHECK(png.find("IEND") != std::string::npos);  // the image's last chunk is there
  }

  TEST_CASE("async_save_screenshot writes the whole PNG - a missing directory is an error") {
    shop_page f;
    seckill::detail::temp_dir dir("seckill-shot");
    const auto file = dir.path() / "shop.png";
    const std::error_code ec = get(sb::async_save_screenshot(f.page, file, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    const std::string written = browser_support::read_file(file);
    CHECK(browser_support::read_png_header(written).has_value());
    CHECK(written.find("IEND") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "shop.png.part"));

    const auto nowhere = dir.path() / "missing" / "shop.png";
    const std::error_code e2 = get(sb::async_save_screenshot(f.page, nowhere, asio::use_future));
    CHECK(e2 == std::errc::no_such_file_or_directory);
    CHECK_FALSE(std::filesystem::exists(nowhere));
    // The page is still usable after the failed save.
    auto [e3, again] = get(f.page.async_screenshot(asio::use_future));
    CHECK_MESSAGE(!e3, e3.message());
    CHECK(browser_support::read_png_header(again).has_value());
  }
}
