// Stock from the network, without a browser: the profile keys that name the
// responses and the JSON paths, their refusals, URL patterns, and what a
// response body says (read_stock), including bodies that say nothing.
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/stock_response.hpp>
#include <seckill/browser/strategy.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

namespace unit_stock_response {

namespace sb = seckill::browser;

std::string read_api_example(const std::string& name) {
  std::ifstream in(std::string(SECKILL_SOURCE_DIR) + "/examples/grocery_grabber/" + name);
  REQUIRE_MESSAGE(in.good(), name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

sb::site_profile api_profile() {
  return sb::parse_profile(
      "stock_response = /api/stock\n"
      "stock_offers = $.skus[*]\n"
      "stock_offer.sku = sku\n"
      "stock_offer.stock = stock\n"
      "stock_offer.price = price\n");
}

}  // namespace unit_stock_response

using namespace unit_stock_response;

TEST_SUITE("unit") {
  TEST_CASE("stock keys: every key is read - paths into steps") {
    const sb::site_profile p = sb::parse_profile(
        "stock_response    = https://shop.example/api/*/stock*\n"
        "stock_json        = $.data.items[*].available\n"
        "stock_offers      = data.items[0]\n"
        "stock_offer.sku   = id\n"
        "stock_offer.stock = inv.count\n"
        "stock_offer.price = price\n"
        "stock_confirm     = page\n");
    CHECK(p.stock_from_network());
    CHECK(p.stock_response == "https://shop.example/api/*/stock*");
    REQUIRE(p.stock_json.steps.size() == 4);
    CHECK(p.stock_json.steps[0] == sb::json_step{sb::json_step::kind::member, "data", 0});
    CHECK(p.stock_json.steps[2].k == sb::json_step::kind::each);
    CHECK(p.stock_json.text == "$.data.items[*].available");
    REQUIRE(p.stock_offers.steps.size() == 3);
    CHECK(p.stock_offers.steps[2] == sb::json_step{sb::json_step::kind::index, "", 0});
    CHECK(p.offer_stock_path.steps.size() == 2);
    CHECK(p.stock_confirm == sb::site_profile::stock_check::page);
    CHECK(sb::site_profile{}.stock_confirm == sb::site_profile::stock_check::response);
    CHECK_FALSE(sb::site_profile{}.stock_from_network());
    const auto t = sb::parse_profile("stock_response = /s\nstock_text = \"ok\":true | 有货\n");
    CHECK(t.stock_text == std::vector<std::string>{"\"ok\":true", "有货"});
  }

  TEST_CASE("stock keys: bad values and missing partners are refused naming the line") {
    struct bad {
      const char* text;
      const char* message;
    };
    for (const bad& b : {
             bad{"stock_response = /s\nstock_json = $.a..b\n",
                 "profile line 2: stock_json must be a JSON path like $.items[*].stock or "
                 "data.sku.available (an empty member name), got '$.a..b'"},
             bad{"stock_response = /s\nstock_json = a[1\n",
                 "line 2: stock_json must be a JSON "
                 "path"},
             bad{"stock_response = /s\nstock_json = a[x]\n",
                 "(an index is a whole number or *), got 'a[x]'"},
             bad{"stock_response = /s\nstock_json = a.\n", "(an empty member name), got 'a.'"},
             bad{"stock_response = /s\nstock_json = a b\n", "(' ' where . or [ was expected)"},
             bad{"stock_response = /s\nstock_json = $$\n", "('$' where . or [ was expected)"},
             bad{"stock_json = a\n",
                 "profile line 1: stock_json needs stock_response (which responses carry the "
                 "stock)"},
             bad{"stock_confirm = page\n", "line 1: stock_confirm needs stock_response"},
             bad{"stock_response = /s\n",
                 "profile line 1: stock_response needs stock_json, stock_text or stock_offers"},
             bad{"stock_response = /s\nstock_confirm = dom\n",
                 "profile line 2: stock_confirm must be response or page, got 'dom'"},
             bad{"stock_response = /s\nstock_offers = $.x[*]\n",
                 "profile line 2: stock_offers needs stock_offer.sku"},
             bad{"stock_response = /s\nstock_json = a\nstock_offer.sku = id\n",
                 "profile line 3: stock_offer.sku needs stock_offers"},
             bad{"stock_response = /s\nstock_text = a | \n", "line 2: stock_text is texts"},
             bad{"stock_response = /s\nstock_offers = x\nstock_offer.sku = a[\n",
                 "line 3: stock_offer.sku must be a JSON path"},
         }) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(sb::parse_profile(b.text), doctest::Contains(b.message), seckill::error);
    }
  }

  TEST_CASE("stock keys: the shipped JSON profile parses - and reads the demo's body") {
    const sb::site_profile p = sb::parse_profile(read_api_example("profiles/api.profile"));
    CHECK(p.stock_response == "/api/stock");
    const auto cfg = sb::parse_strategy(read_api_example("strategy-api.txt"));
    CHECK(cfg.profile_file == "profiles/api.profile");
    const auto r = sb::read_stock(
        p,
        R"({"skus":[{"sku":"apples-1kg","price":3.2,"stock":0},{"sku":"veg-box","price":18.5,"stock":3}]})");
    CHECK(r.readable);
    CHECK(r.in_stock);
    CHECK(r.summary == "in stock (apples-1kg 0, veg-box 3)");
  }

  TEST_CASE("response URLs: a substring - or a glob over the whole URL") {
    CHECK(sb::response_url_matches("/api/stock", "http://127.0.0.1:80/api/stock?t=1"));
    CHECK_FALSE(sb::response_url_matches("/api/stock", "http://127.0.0.1/api/order"));
    CHECK(sb::response_url_matches("*/api/*/stock", "https://s.example/api/v2/stock"));
    CHECK_FALSE(sb::response_url_matches("*/api/*/stock", "https://s.example/api/v2/stock?x"));
    CHECK(sb::response_url_matches("https://s.example/*", "https://s.example/a"));
    CHECK_FALSE(sb::response_url_matches("https://s.example/*", "http://s.example/a"));
    CHECK_FALSE(sb::response_url_matches("", "http://x/"));
  }

  TEST_CASE("read_stock: a flag - counts - texts - in stock by the profile") {
    sb::site_profile flag =
        sb::parse_profile("stock_response = /s\nstock_json = data.sku.available\n");
    CHECK(sb::read_stock(flag, R"({"data":{"sku":{"available":true}}})").in_stock);
    CHECK_FALSE(sb::read_stock(flag, R"({"data":{"sku":{"available":false}}})").in_stock);
    CHECK(sb::read_stock(flag, R"({"data":{"sku":{"available":2}}})").in_stock);
    CHECK_FALSE(sb::read_stock(flag, R"({"data":{"sku":{"available":0}}})").in_stock);
    CHECK(sb::read_stock(flag, R"({"data":{"sku":{"available":"In stock"}}})").in_stock);
    CHECK_FALSE(sb::read_stock(flag, R"({"data":{"sku":{"available":"Out of stock"}}})").in_stock);
    const sb::site_profile each =
        sb::parse_profile("stock_response = /s\nstock_json = $.items[*].stock\n");
    CHECK(sb::read_stock(each, R"({"items":[{"stock":0},{"stock":4}]})").in_stock);
    CHECK_FALSE(sb::read_stock(each, R"({"items":[{"stock":0},{"stock":0}]})").in_stock);
    CHECK(sb::read_stock(each, R"({"items":[]})").problem ==
          "stock_json '$.items[*].stock' selects nothing in the body");
    const sb::site_profile text =
        sb::parse_profile("stock_response = /s\nstock_text = \"available\":true\n");
    CHECK(sb::read_stock(text, R"({"available":true})").in_stock);
    CHECK_FALSE(sb::read_stock(text, R"({"available":false})").in_stock);
    CHECK(sb::read_stock(text, "not json at all").readable);  // a text needs no JSON
  }

  TEST_CASE("read_stock: offers with SKU - count and price - the cap sees an unknown price") {
    const auto p = api_profile();
    const auto r = sb::read_stock(
        p,
        R"({"skus":[{"sku":"a","stock":2,"price":1.5},{"sku":"b","stock":"x"},{"sku":7},{"x":1}]})");
    REQUIRE(r.readable);
    CHECK(r.has_offers);
    REQUIRE(r.offers.size() == 3);  // the one without a SKU is skipped
    CHECK(r.offers[0].sku == "a");
    CHECK(r.offers[0].stock == 2);
    CHECK(r.offers[0].price == doctest::Approx(1.5));
    CHECK(r.offers[1].stock == 0);  // not a number: none
    CHECK(std::isnan(r.offers[1].price));
    CHECK(r.offers[2].sku == "7");
    CHECK(r.in_stock);
  }

  TEST_CASE("read_stock: a body that says nothing gives a reason - never throws") {
    const auto p = api_profile();
    for (const char* body : {"", "<html>busy</html>", "{\"skus\":", "[1,2]", "null"}) {
      CAPTURE(body);
      const auto r = sb::read_stock(p, body);
      CHECK_FALSE(r.readable);
      CHECK_FALSE(r.in_stock);
      CHECK_FALSE(r.problem.empty());
    }
    CHECK(sb::read_stock(p, "<html>").problem == "the body is not JSON");
    CHECK(sb::read_stock(p, R"({"items":[]})").problem ==
          "stock_offers '$.skus[*]' selects nothing in the body");
    CHECK(sb::read_stock(p, R"({"skus":[{"id":"a"}]})").problem ==
          "stock_offer.sku 'sku' selects no SKU in any offer");
  }
}
