// Site profiles: parse_profile, the profile keys of a strategy file, the
// profiles the grocery_grabber example ships, and how a status text is read.
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/strategy.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace unit_site_profile {

using seckill::browser::offer_field;
using seckill::browser::parse_profile;
using seckill::browser::parse_strategy;
using seckill::browser::site_profile;

std::string read_example(const std::string& name) {
  std::ifstream in(std::string(SECKILL_SOURCE_DIR) + "/examples/grocery_grabber/" + name);
  REQUIRE_MESSAGE(in.good(), name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace unit_site_profile

using namespace unit_site_profile;

TEST_SUITE("unit") {
  TEST_CASE("parse_profile reads every key - selectors keep their # and texts split at |") {
    const site_profile p = parse_profile(
        "# a button grid\n"
        "status            = #stock-flag   # the element\n"
        "in_stock          = 有货 | available\n"
        "out_of_stock      = 售罄|sold out\n"
        "offers            = list .grid > button.sku\n"
        "offer.sku         = @data-sku\n"
        "offer.name        = text\n"
        "offer.price       = .price\n"
        "offer.stock       = .left @data-n\n"
        "offer.category    = span.cat\n"
        "offer.unavailable = [aria-disabled=\"true\"]\n"
        "offer.click       = .pick\n"
        "quantity.plus     = .qty .plus\n"
        "quantity.minus    = .qty .minus\n"
        "quantity.value    = .qty input#n\n"
        "buy               = #submit\n"
        "result            = #msg\n"
        "success           = 下单成功 | ok\n"
        "success_url       = /order/done\n"
        "success_response  = /api/order\n"
        "logged_in         = header .user-name\n");
    CHECK(p.status == "#stock-flag");
    CHECK(p.in_stock == std::vector<std::string>{"有货", "available"});
    CHECK(p.out_of_stock == std::vector<std::string>{"售罄", "sold out"});
    CHECK(p.offers == site_profile::offer_layout::list);
    CHECK(p.offer_selector == ".grid > button.sku");
    CHECK(p.sku == offer_field{"", "data-sku", true});
    CHECK(p.name == offer_field{"", "", true});
    CHECK(p.price == offer_field{".price", "", true});
    CHECK(p.stock == offer_field{".left", "data-n", true});
    CHECK(p.category == offer_field{"span.cat", "", true});
    CHECK(p.unavailable == "[aria-disabled=\"true\"]");
    CHECK(p.choose_target == ".pick");
    CHECK(p.quantity.empty());  // the buttons replace the default input
    CHECK(p.quantity_by_buttons());
    CHECK(p.quantity_plus == ".qty .plus");
    CHECK(p.quantity_minus == ".qty .minus");
    CHECK(p.quantity_value == ".qty input#n");
    CHECK(p.buy == "#submit");
    CHECK(p.result == "#msg");
    CHECK(p.success == std::vector<std::string>{"下单成功", "ok"});
    CHECK(p.success_url == "/order/done");
    CHECK(p.logged_in == "header .user-name");
    CHECK(p.success_response == "/api/order");
    CHECK(site_profile{}.logged_in.empty());  // no check by default

    CHECK(parse_profile("") == site_profile{});
    CHECK(parse_profile("quantity.input = none\n").quantity.empty());
    const auto deep = parse_profile("status = #shop-frame >>> #host >>> .flag\n");
    CHECK(deep.status == "#shop-frame >>> #host >>> .flag");
    CHECK(parse_profile("quantity.input = input[name=q]\n").quantity == "input[name=q]");
    const auto sel = parse_profile("offers = select  form #sku\n");
    CHECK(sel.offers == site_profile::offer_layout::select);
    CHECK(sel.offer_selector == "form #sku");
  }

  TEST_CASE("the shipped profiles parse - and the select one is the defaults") {
    CHECK(parse_profile(read_example("profiles/fresh_market.profile")) == site_profile{});
    const site_profile grid = parse_profile(read_example("profiles/grid.profile"));
    CHECK(grid.offers == site_profile::offer_layout::list);
    CHECK(grid.in_stock == std::vector<std::string>{"有货"});
    CHECK(grid.quantity_by_buttons());
    const auto cfg = parse_strategy(read_example("strategy-grid.txt"));
    CHECK(cfg.profile_file == "profiles/grid.profile");
    CHECK_FALSE(cfg.profile.has_value());
    CHECK_FALSE(parse_strategy(read_example("strategy.txt")).profile.has_value());
  }

  TEST_CASE("a strategy file holds profile keys - or names a profile file") {
    const auto cfg = parse_strategy(
        "want = sku:a\n"
        "quantity = 2   # the strategy's: units per order\n"
        "quantity.input = #qty\n"
        "status = #flag\n"
        "in_stock = 有货\n"
        "buy = #submit # the red button\n");
    REQUIRE(cfg.profile.has_value());
    CHECK(cfg.quantity == 2);
    CHECK(cfg.profile->quantity == "#qty");
    CHECK(cfg.profile->status == "#flag");
    CHECK(cfg.profile->in_stock == std::vector<std::string>{"有货"});
    CHECK(cfg.profile->buy == "#submit");
    CHECK(cfg.profile->result == site_profile{}.result);  // the others keep their defaults
    CHECK(cfg.profile_file.empty());

    const auto named = parse_strategy("want = sku:a\nprofile = shops/grid.profile\n");
    CHECK(named.profile_file == "shops/grid.profile");
    CHECK_FALSE(named.profile.has_value());
  }

  TEST_CASE("parse_profile names the line and the key of every error") {
    struct bad {
      const char* text;
      const char* message;
    };
    for (const bad& b : {
             bad{"status .x\n", "profile line 1: expected 'key = value', got 'status .x'"},
             bad{"\nstatus =\n", "profile line 2: 'status' has no value"},
             bad{"buy = #a\nbuy = #b\n", "profile line 2: 'buy' given twice"},
             bad{"price = .p\n", "profile line 1: unknown key 'price' (known: status, in_stock"},
             bad{"in_stock = 有货 | | ok\n",
                 "profile line 1: in_stock is texts separated by |, got an empty one in "
                 "'有货 | | ok'"},
             bad{"out_of_stock = sold out |\n", "profile line 1: out_of_stock is texts"},
             bad{"success = | done\n", "profile line 1: success is texts"},
             bad{"offers = grid .sku\n",
                 "profile line 1: offers must be 'select <selector>' or 'list <selector>', got "
                 "'grid .sku'"},
             bad{"offers = list\n", "got 'list'"},
             bad{"offers = list .sku\noffer.sku = @\n",
                 "profile line 2: offer.sku names no attribute after @"},
             bad{"offers = list .sku\noffer.sku = .x @data sku\n",
                 "profile line 2: offer.sku names no attribute after @ (letters, digits, - _ : "
                 ".), got '.x @data sku'"},
             bad{"offers = list .sku\noffer.price = .p @\n", "profile line 2: offer.price names"},
             bad{"\noffers = list .sku\n",
                 "profile line 2: offers = list needs offer.sku (where each offer's SKU is "
                 "read)"},
             bad{"offer.price = .p\n", "profile line 1: offer.price applies to offers = list only"},
             bad{"offers = select #s\n\noffer.click = .b\n",
                 "profile line 3: offer.click applies to offers = list only"},
             bad{"quantity.input = #q\nquantity.plus = .p\nquantity.value = .v\n",
                 "profile line 1: quantity.input (an input) and quantity.plus / quantity.minus "
                 "(buttons) exclude each other"},
             bad{"quantity.minus = .m\n", "profile line 1: quantity.minus needs quantity.plus"},
             bad{"quantity.plus = .p\n",
                 "profile line 1: quantity.plus needs quantity.value (where the count shows)"},
             bad{"quantity.value = .v\n", "profile line 1: quantity.value needs quantity.plus"},
             bad{"status = #frame >>>\n",
                 "profile line 1: status has an empty part around >>> (host >>> inner), got "
                 "'#frame >>>'"},
             bad{"buy = >>> #b\n", "profile line 1: buy has an empty part around >>>"},
             bad{"offers = list #a >>>  >>> .sku\noffer.sku = @id\n",
                 "profile line 1: offers has an empty part around >>>"},
             bad{"quantity.input = #f >>>\n", "profile line 1: quantity.input has an empty part"},
             bad{"logged_in = >>> .u\n", "profile line 1: logged_in has an empty part"},
             bad{"logged_in =\n", "profile line 1: 'logged_in' has no value"},
         }) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(parse_profile(b.text), doctest::Contains(b.message), seckill::error);
    }
  }

  TEST_CASE("profile keys in a strategy file report errors as strategy lines") {
    struct bad {
      const char* text;
      const char* message;
    };
    for (const bad& b : {
             bad{"want = sku:a\noffers = grid .x\n", "strategy line 2: offers must be"},
             bad{"want = sku:a\nin_stock = |\n", "strategy line 2: in_stock is texts"},
             bad{"want = sku:a\noffers = list .x\n",
                 "strategy line 2: offers = list needs offer.sku"},
             bad{"want = sku:a\nstatus = #s\nprofile = grid.profile\n",
                 "strategy line 3: profile names a file, and profile keys stand in this file "
                 "too (line 2): keep them in one place"},
             bad{"want = sku:a\nprofile =\n", "strategy line 2: 'profile' has no value"},
             bad{"want = sku:a\nbuy = #a\nbuy = #b\n", "strategy line 3: 'buy' given twice"},
             bad{"want = sku:a\nstock = .x\n",
                 "strategy line 2: unknown key 'stock' (known: want, max_price"},
         }) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(parse_strategy(b.text), doctest::Contains(b.message), seckill::error);
    }
  }

  TEST_CASE("a status text is read by the profile's texts - out of stock first") {
    namespace d = seckill::browser::detail;
    const site_profile demo;
    CHECK(d::says_in_stock(demo, "In stock"));
    CHECK_FALSE(d::says_in_stock(demo, "Out of stock"));
    CHECK_FALSE(d::says_in_stock(demo, ""));
    site_profile zh;
    zh.in_stock = {"有货"};
    zh.out_of_stock = {"售罄", "无货"};
    CHECK(d::says_in_stock(zh, "有货"));
    CHECK(d::says_in_stock(zh, "库存：有货（剩 3 件）"));
    CHECK_FALSE(d::says_in_stock(zh, "售罄"));
    CHECK_FALSE(d::says_in_stock(zh, "部分有货，部分售罄"));  // out of stock wins
    CHECK_FALSE(d::says_in_stock(zh, "In stock"));
    site_profile any;
    any.in_stock.clear();
    any.out_of_stock = {"not in stock"};
    CHECK(d::says_in_stock(any, "3 left"));
    CHECK_FALSE(d::says_in_stock(any, "NOT IN STOCK"));
  }
}

TEST_SUITE("unit") {
  TEST_CASE("parse_profile: verification and verification_text - or none") {
    const site_profile p = parse_profile(
        "verification      = .captcha-box, #slider >>> .handle\n"
        "verification_text = 请完成验证 | prove it\n");
    CHECK(p.verification == ".captcha-box, #slider >>> .handle");
    CHECK(p.verification_text == std::vector<std::string>{"请完成验证", "prove it"});
    CHECK_FALSE(p.verification_off);
    CHECK(parse_profile("verification = none\n").verification_off);
    CHECK(parse_profile("verification = none\n").verification.empty());
    CHECK_FALSE(site_profile{}.verification_off);  // the common checks by default
    const auto message = [](const std::string& text) {
      try {
        (void)parse_profile(text);
      } catch (const seckill::error& e) {
        return std::string(e.what());
      }
      return std::string("(no exception)");
    };
    CHECK(message("verification = none\nverification_text = x\n")
              .find("profile line 2: verification_text is checked for nothing") !=
          std::string::npos);
    CHECK(
        message("verification = a >>>\n").find("profile line 1: verification has an empty part") !=
        std::string::npos);
    CHECK(message("verification_text = a ||\n").find("profile line 1: verification_text") !=
          std::string::npos);
  }
}
