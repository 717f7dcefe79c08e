// The strategy file parser and priority_strategy's decisions.
#include <seckill/browser/grabber.hpp>
#include <seckill/clock.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

namespace unit_strategy {

using seckill::browser::parse_strategy;
using seckill::browser::priority_strategy;
using seckill::browser::shop_snapshot;
using seckill::browser::strategy_config;
using seckill::browser::wanted_item;

shop_snapshot shelf() {
  shop_snapshot s;
  s.status = "In stock";
  s.offers = {{"apples-1kg", "Apples", "fruit", 3.20, 5},
              {"pears-1kg", "Pears", "fruit", 2.90, 0},
              {"plums-1kg", "Plums", "fruit", 4.00, 2},
              {"veg-box", "Vegetable box", "vegetables", 18.50, 1},
              {"eggs-12", "Eggs", "dairy", 4.10, 9}};
  return s;
}

}  // namespace unit_strategy

using namespace unit_strategy;

TEST_SUITE("unit") {
  TEST_CASE("parse_strategy reads every key - comments and blank lines") {
    const auto cfg = parse_strategy(
        "# weekly shop\n"
        "\n"
        "want = sku:veg-box, category:fruit ,sku:eggs-12   # in this order\n"
        "max_price=20.5\n"
        "quantity = 3\r\n"
        "deadline = 90s\n"
        "pace = 2.5/s\n"
        "burst = 4\n");
    REQUIRE(cfg.want.size() == 3);
    CHECK(cfg.want[0] == wanted_item{wanted_item::kind::sku, "veg-box"});
    CHECK(cfg.want[1] == wanted_item{wanted_item::kind::category, "fruit"});
    CHECK(cfg.want[2] == wanted_item{wanted_item::kind::sku, "eggs-12"});
    REQUIRE(cfg.max_price.has_value());
    CHECK(*cfg.max_price == doctest::Approx(20.5));
    CHECK(cfg.quantity == 3);
    CHECK(cfg.deadline == std::chrono::seconds(90));
    CHECK(cfg.actions_per_second == doctest::Approx(2.5));
    CHECK(cfg.burst == doctest::Approx(4));

    const auto minimal = parse_strategy("want = category:dairy");
    CHECK_FALSE(minimal.max_price.has_value());
    CHECK(minimal.quantity == 1);
    CHECK(parse_strategy("want=sku:a\ndeadline=250ms").deadline == std::chrono::milliseconds(250));
    CHECK(parse_strategy("want=sku:a\ndeadline=2m").deadline == std::chrono::minutes(2));
    CHECK(parse_strategy("want=sku:a\ndeadline=1h").deadline == std::chrono::hours(1));
    CHECK(parse_strategy("want=sku:a\npace=4").actions_per_second == doctest::Approx(4));
    CHECK(minimal.retries == 1);
    CHECK(parse_strategy("want=sku:a\nretries=0").retries == 0);
    CHECK(parse_strategy("want=sku:a\nretries = 10").retries == 10);
  }

  TEST_CASE("parse_strategy names the line - the key and the value that is wrong") {
    struct bad {
      const char* text;
      const char* message;
    };
    for (const bad& b : {
             bad{"", "no 'want' line"},
             bad{"# only a comment\n", "no 'want' line"},
             bad{"want sku:a\n", "line 1: expected 'key = value', got 'want sku:a'"},
             bad{"want = sku:a\nprice = 3\n", "line 2: unknown key 'price'"},
             bad{"want = sku:a\nwant = sku:b\n", "line 2: 'want' given twice"},
             bad{"want =\n", "line 1: 'want' has no value"},
             bad{"want = apples\n", "want entries are sku:<id> or category:<name>, got 'apples'"},
             bad{"want = sku:a, brand:x\n", "got 'brand:x'"},
             bad{"want = sku:\n", "got 'sku:'"},
             bad{"want = sku:a,,sku:b\n", "got ''"},
             bad{"want = sku:a\nmax_price = cheap\n",
                 "line 2: max_price must be a number, got 'cheap'"},
             bad{"want = sku:a\nmax_price = -3\n", "max_price must be > 0, got -3"},
             bad{"want = sku:a\nquantity = 0\n",
                 "quantity must be a whole number in [1, 1000], got 0"},
             bad{"want = sku:a\nquantity = 1.5\n", "got 1.5"},
             bad{"want = sku:a\nquantity = 2x\n", "quantity must be a number, got '2x'"},
             bad{"want = sku:a\ndeadline = 10\n", "deadline must be a positive duration"},
             bad{"want = sku:a\ndeadline = 10 days\n", "got '10 days'"},
             bad{"want = sku:a\ndeadline = s\n", "got 's'"},
             bad{"want = sku:a\npace = 0/s\n",
                 "pace must be in (0, 50] actions per second, got 0/s"},
             bad{"want = sku:a\npace = 100\n", "got 100"},
             bad{"want = sku:a\nburst = 0\n", "burst must be in [1, 100], got 0"},
             bad{"want = sku:a\nretries = 11\n",
                 "line 2: retries must be a whole number in [0, 10], got 11"},
             bad{"want = sku:a\nretries = -1\n", "got -1"},
             bad{"want = sku:a\nretries = 0.5\n", "got 0.5"},
             bad{"want = sku:a\nretries = many\n", "retries must be a number, got 'many'"},
         }) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(parse_strategy(b.text), doctest::Contains(b.message), seckill::error);
    }
    try {
      parse_strategy("want = sku:a\nbogus = 1\n");
      FAIL("no throw");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
    }
  }

  TEST_CASE(
      "parse_strategy refuses numbers at the edges of their range - NaN and inf and overflowing "
      "durations") {
    struct bad {
      std::string text;
      const char* message;
    };
    for (const bad& b : {
             // durations whose milliseconds (or the grabber's nanoseconds) overflow 64 bits
             bad{"want = sku:a\ndeadline = 9223372036854775807s\n",
                 "line 2: deadline must be at most 31536000000 ms (365 days), got "
                 "'9223372036854775807s'"},
             bad{"want = sku:a\ndeadline = 9223372036854775807ms\n", "got '9223372036854775807ms'"},
             bad{"want = sku:a\ndeadline = 9300000000000ms\n", "got '9300000000000ms'"},
             bad{"want = sku:a\ndeadline = 18446744073709551616h\n", "got '18446744073709551616h'"},
             bad{"want = sku:a\ndeadline = 8761h\n",
                 "at most 31536000000 ms (365 days), got '8761h'"},
             bad{"want = sku:a\n# a\ndeadline = 1" + std::string(400, '0') + "ms\n",
                 "line 3: deadline is out of range, got '1000"},
             bad{"want = sku:a\ndeadline = 0.5ms\n", "deadline must be at least 1 ms, got '0.5ms'"},
             bad{"want = sku:a\ndeadline = 0s\n", "deadline must be a positive duration"},
             bad{"want = sku:a\ndeadline = nan s\n", "got 'nan s'"},
             bad{"want = sku:a\ndeadline = infms\n", "got 'infms'"},
             bad{"want = sku:a\ndeadline = -5s\n", "got '-5s'"},
             // quantities: NaN, infinities, negative, fractions, beyond the bound
             bad{"want = sku:a\nquantity = nan\n",
                 "line 2: quantity must be a whole number in [1, 1000], got nan"},
             bad{"want = sku:a\nquantity = -nan\n", "got -nan"},
             bad{"want = sku:a\nquantity = inf\n",
                 "quantity must be a whole number in [1, 1000], got inf"},
             bad{"want = sku:a\nquantity = -infinity\n", "got -infinity"},
             bad{"want = sku:a\nquantity = -2\n", "got -2"},
             bad{"want = sku:a\nquantity = 2.5\n", "got 2.5"},
             bad{"want = sku:a\nquantity = 1001\n", "got 1001"},
             bad{"want = sku:a\nquantity = 1e300\n", "got 1e300"},
             bad{"want = sku:a\nquantity = 1e999\n",
                 "line 2: quantity is out of range, got '1e999'"},
             bad{"want = sku:a\nquantity = 2147483648\n", "got 2147483648"},
             // prices
             bad{"want = sku:a\nmax_price = nan\n",
                 "line 2: max_price must be a finite number, got nan"},
             bad{"want = sku:a\nmax_price = inf\n", "max_price must be a finite number, got inf"},
             bad{"want = sku:a\nmax_price = -inf\n", "got -inf"},
             bad{"want = sku:a\nmax_price = 1e999\n", "max_price is out of range, got '1e999'"},
             bad{"want = sku:a\nmax_price = 0\n", "max_price must be > 0, got 0"},
             // pace and burst
             bad{"want = sku:a\npace = nan/s\n",
                 "pace must be in (0, 50] actions per second, got nan/s"},
             bad{"want = sku:a\npace = inf\n", "got inf"},
             bad{"want = sku:a\nburst = nan\n", "line 2: burst must be in [1, 100], got nan"},
             bad{"want = sku:a\nburst = inf\n", "burst must be in [1, 100], got inf"},
             bad{"want = sku:a\nburst = -1\n", "got -1"},
         }) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(parse_strategy(b.text), doctest::Contains(b.message), seckill::error);
    }
    // The bounds themselves are accepted.
    CHECK(parse_strategy("want = sku:a\ndeadline = 8760h\n").deadline ==
          seckill::browser::max_strategy_deadline);
    CHECK(parse_strategy("want = sku:a\ndeadline = 31536000000ms\n").deadline ==
          std::chrono::hours(24 * 365));
    CHECK(parse_strategy("want = sku:a\ndeadline = 1ms\n").deadline ==
          std::chrono::milliseconds(1));
    CHECK(parse_strategy("want = sku:a\ndeadline = 1.5s\n").deadline ==
          std::chrono::milliseconds(1500));
    CHECK(parse_strategy("want = sku:a\nquantity = 1000\n").quantity == 1000);
    CHECK(parse_strategy("want = sku:a\nquantity = 1e3\n").quantity == 1000);
    CHECK(parse_strategy("want = sku:a\nquantity = 7.0\n").quantity == 7);
    CHECK(*parse_strategy("want = sku:a\nmax_price = 1.7976931348623157e308\n").max_price ==
          std::numeric_limits<double>::max());
    CHECK(parse_strategy("want = sku:a\nburst = 100\n").burst == doctest::Approx(100));
  }

  TEST_CASE("priority_strategy takes the first wanted entry that is in stock and within the cap") {
    auto cfg = parse_strategy("want = sku:pears-1kg, category:fruit, sku:eggs-12\nquantity = 3\n");
    priority_strategy s(cfg);
    auto d = s.decide(shelf());
    REQUIRE(d.has_value());
    // Pears are out of stock; the cheapest fruit in stock is apples; 3 of 5 wanted.
    CHECK(d->sku == "apples-1kg");
    CHECK(d->quantity == 3);
    CHECK(d->price == doctest::Approx(3.20));

    cfg.max_price = 3.0;  // apples and plums too dear: eggs too (4.10)
    CHECK_FALSE(priority_strategy(cfg).decide(shelf()).has_value());

    cfg.max_price = 4.5;
    cfg.want = {{wanted_item::kind::category, "fruit"}};
    cfg.quantity = 10;
    auto fruit = priority_strategy(cfg).decide(shelf());
    REQUIRE(fruit);
    CHECK(fruit->sku == "apples-1kg");
    CHECK(fruit->quantity == 5);  // no more than the page offers

    cfg.want = {{wanted_item::kind::sku, "veg-box"}, {wanted_item::kind::sku, "eggs-12"}};
    cfg.max_price.reset();
    CHECK(priority_strategy(cfg).decide(shelf())->sku == "veg-box");

    auto empty = shelf();
    for (auto& o : empty.offers) o.stock = 0;
    CHECK_FALSE(priority_strategy(cfg).decide(empty).has_value());
    CHECK_FALSE(priority_strategy(cfg).decide(shop_snapshot{}).has_value());
  }

  TEST_CASE("the grabber's pieces: snapshot parsing and the limiter concept") {
    using json = nlohmann::json;
    const json v = {
        {"status", "In stock"},
        {"offers",
         json::array(
             {json{{"sku", "a"}, {"name", "A"}, {"category", "c"}, {"price", 1.5}, {"stock", 2}},
              json{{"sku", "b"}, {"price", nullptr}, {"stock", "x"}}})}};
    const auto snap = seckill::browser::detail::to_snapshot(v);
    CHECK(snap.status == "In stock");
    REQUIRE(snap.offers.size() == 2);
    CHECK(snap.offers[0].price == doctest::Approx(1.5));
    CHECK(snap.offers[0].stock == 2);
    CHECK(snap.offers[1].stock == 0);  // malformed: treated as unavailable
    CHECK(seckill::browser::detail::to_snapshot(json("garbage")).offers.empty());
    CHECK(seckill::browser::detail::contains_nocase("Now IN STOCK!", "in stock"));
    CHECK_FALSE(seckill::browser::detail::contains_nocase("Out of stock", "in stock"));
    static_assert(seckill::browser::action_limiter<seckill::token_bucket<seckill::manual_clock>>);
    static_assert(seckill::browser::grab_strategy<priority_strategy>);
  }

  TEST_CASE("a snapshot says what the page has chosen and its quantity - only when it can") {
    using json = nlohmann::json;
    namespace d = seckill::browser::detail;
    const auto chosen =
        d::to_snapshot(json{{"status", ""}, {"chosen", "veg-box"}, {"quantity", 2}});
    CHECK(chosen.chosen == std::optional<std::string>("veg-box"));
    CHECK(chosen.quantity == std::optional<int>(2));
    const auto none =
        d::to_snapshot(json{{"status", ""}, {"chosen", nullptr}, {"quantity", nullptr}});
    CHECK_FALSE(none.chosen.has_value());
    CHECK_FALSE(none.quantity.has_value());
    // Anything else is not read as a choice: the grabber then chooses again.
    for (const json& bad : {json(""), json(7), json::array({"veg-box"})}) {
      CAPTURE(bad.dump());
      CHECK_FALSE(d::to_snapshot(json{{"chosen", bad}}).chosen.has_value());
    }
    for (const json& bad : {json(-1), json(2.5), json("2"), json(1e12), json(true)}) {
      CAPTURE(bad.dump());
      CHECK_FALSE(d::to_snapshot(json{{"quantity", bad}}).quantity.has_value());
    }
    CHECK(d::to_snapshot(json{{"quantity", 0}}).quantity == std::optional<int>(0));
  }

  TEST_CASE(
      "an offer whose price is unknown is above any cap - and a huge stock does not overflow") {
    using json = nlohmann::json;
    const json v = {
        {"status", "In stock"},
        {"offers",
         json::array(
             {json{{"sku", "veg-box"},
                   {"category", "vegetables"},
                   {"price", nullptr},
                   {"stock", 1e300}},
              "not an offer",
              json{{"sku", "veg-box"}, {"category", "vegetables"}, {"price", 30}, {"stock", -2}},
              json{{"sku", 7}, {"stock", true}}})}};
    const auto snap = seckill::browser::detail::to_snapshot(v);
    REQUIRE(snap.offers.size() == 3);
    CHECK(std::isnan(snap.offers[0].price));
    CHECK(snap.offers[0].stock == std::numeric_limits<int>::max());
    CHECK(snap.offers[1].stock == 0);
    CHECK(snap.offers[2].sku.empty());
    CHECK(snap.offers[2].stock == 0);

    strategy_config cfg;
    cfg.want = {{wanted_item::kind::sku, "veg-box"}};
    cfg.quantity = 2;
    cfg.max_price = 20;
    CHECK_FALSE(
        priority_strategy(cfg).decide(snap).has_value());  // the price is not known to be within 20
    cfg.max_price.reset();
    const auto d = priority_strategy(cfg).decide(snap);
    REQUIRE(d.has_value());
    CHECK(d->quantity == 2);

    // without a cap, an unknown price ranks after every known one in the same category
    seckill::browser::shop_snapshot mixed;
    mixed.offers = {
        {"mystery", "Mystery box", "vegetables", std::numeric_limits<double>::quiet_NaN(), 5},
        {"carrots", "Carrots", "vegetables", 9.5, 5},
        {"leeks", "Leeks", "vegetables", 4.0, 5}};
    cfg.want = {{wanted_item::kind::category, "vegetables"}};
    const auto cheapest = priority_strategy(cfg).decide(mixed);
    REQUIRE(cheapest.has_value());
    CHECK(cheapest->sku == "leeks");
    mixed.offers.resize(1);
    const auto only = priority_strategy(cfg).decide(mixed);
    REQUIRE(only.has_value());
    CHECK(only->sku == "mystery");  // the only one: still bought, as no cap was set
  }

  TEST_CASE("less in stock than asked: the intent says so - and partial = no skips the offer") {
    auto cfg = parse_strategy("want = sku:veg-box, sku:eggs-12\nquantity = 3\n");
    CHECK(cfg.partial);
    const auto fewer = priority_strategy(cfg).decide(shelf());  // veg-box: 1 in stock
    REQUIRE(fewer.has_value());
    CHECK(fewer->sku == "veg-box");
    CHECK(fewer->quantity == 1);
    CHECK(fewer->requested == 3);
    CHECK(seckill::browser::detail::describe_intent(*fewer) ==
          "1 x veg-box at 18.50 (fewer than the 3 asked: 1 in stock)");

    cfg = parse_strategy("want = sku:veg-box, sku:eggs-12\nquantity = 3\npartial = no\n");
    CHECK_FALSE(cfg.partial);
    const auto whole = priority_strategy(cfg).decide(shelf());  // eggs: 9 in stock
    REQUIRE(whole.has_value());
    CHECK(whole->sku == "eggs-12");
    CHECK(whole->quantity == 3);
    CHECK(whole->requested == 3);
    CHECK(seckill::browser::detail::describe_intent(*whole) == "3 x eggs-12 at 4.10");
    cfg.quantity = 10;
    CHECK_FALSE(priority_strategy(cfg).decide(shelf()).has_value());  // nothing has 10

    CHECK(parse_strategy("want = sku:a\npartial = yes\n").partial);
    CHECK_THROWS_WITH_AS(parse_strategy("want = sku:a\npartial = maybe\n"),
                         doctest::Contains("line 2: partial must be yes or no, got 'maybe'"),
                         seckill::error);
  }
}
