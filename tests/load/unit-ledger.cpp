// seckill_load's ledger and --verify verdict: what answers say was sold
// against the stock the nodes report.
#include "seckill_load/ledger.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace unit_ledger {

using seckill_load::ledger;
using seckill_load::stock_level;

const std::vector<std::string> names{"sku-0", "sku-1"};

stock_level level(std::int64_t available, std::int64_t sold, std::int64_t reserved = 0) {
  return {available, reserved, sold, true};
}

}  // namespace unit_ledger

using namespace unit_ledger;

TEST_SUITE("unit") {
  TEST_CASE("ledger: answer bodies give their order id and error") {
    auto a = seckill_load::read_answer(R"({"order_id":"123456789012345678","state":"succeeded"})");
    CHECK(a.order_id == 123456789012345678);
    CHECK(a.error.empty());
    a = seckill_load::read_answer(R"({"error":"in_progress","order_id":"77"})");
    CHECK(a.order_id == 77);
    CHECK(a.error == "in_progress");
    a = seckill_load::read_answer(R"({"order_id":42})");
    CHECK(a.order_id == 42);
    CHECK_FALSE(seckill_load::read_answer(R"({"order_id":"12x"})").order_id);
    CHECK_FALSE(seckill_load::read_answer(R"({"order_id":"99999999999999999999"})").order_id);
    CHECK_FALSE(seckill_load::read_answer("<html>busy</html>").order_id);
    CHECK(seckill_load::read_answer("[1,2]").error.empty());
    CHECK(
        seckill_load::read_answer(R"({"error":")" + std::string(100, 'e') + R"("})").error.size() ==
        40u);
  }

  TEST_CASE("ledger: distinct 200 orders add up - replays with the same id count once") {
    ledger l(2, 3);  // quantity 3
    l.add_key(0);
    l.add_key(1);
    l.add_key(0);
    l.on_answer(0, false, 200, 1001);
    l.on_answer(0, true, 200, 1001);  // a replay: same order
    l.on_answer(1, false, 200, 1002);
    l.on_answer(2, false, 409, std::nullopt);  // sold out
    CHECK(l.units(0) == 3);
    CHECK(l.orders(0) == 1);
    CHECK(l.units(1) == 3);
    CHECK(l.replays() == 1u);
    CHECK(l.idempotency_violations() == 0u);
    const auto v = l.check(names, {level(5, 0), level(1, 10, 2)}, {level(2, 3), level(0, 13)});
    CHECK(v.ok);
    CHECK(v.problems.empty());
    REQUIRE(v.skus.size() == 2u);
    CHECK(v.skus[0].initial == 5);
    CHECK(v.skus[0].sold == 3);
    CHECK(v.skus[1].initial == 3);  // available + reserved at the start
    CHECK(v.skus[1].sold == 3);
  }

  TEST_CASE("ledger: a sale the answers do not show and an oversale both fail") {
    ledger l(2, 1);
    l.add_key(0);
    l.add_key(1);
    l.on_answer(0, false, 200, 1);
    l.on_answer(1, false, 200, 2);
    auto v = l.check(names, {level(10, 0), level(1, 0)}, {level(8, 2), level(0, 1)});
    CHECK_FALSE(v.ok);
    REQUIRE(v.problems.size() == 1u);
    CHECK(v.problems[0] == "sku-0: sold 2 != 1 units in 1 orders answered 200");
    CHECK_FALSE(v.skus[0].ok);
    CHECK(v.skus[1].ok);

    v = l.check(names, {level(0, 0), level(1, 0)}, {level(0, 1), level(0, 1)});
    CHECK_FALSE(v.ok);
    REQUIRE(v.problems.size() == 1u);
    CHECK(v.problems[0] == "sku-0: oversold: sold 1 > 0 at the start");

    v = l.check(names, {level(1, 0), level(1, 0)}, {level(-1, 1), level(0, 1)});
    CHECK_FALSE(v.ok);
    CHECK(v.problems.at(0) == "sku-0: negative stock: available -1");

    ledger unknown(2, 1);
    unknown.add_key(0);
    unknown.on_answer(0, false, 200, 5);
    v = unknown.check(names, {stock_level{}, stock_level{}}, {stock_level{}, stock_level{}});
    CHECK_FALSE(v.ok);
    CHECK(v.problems.at(0) ==
          "sku-0: 1 units answered as sold, but the node does not know the SKU");
  }

  TEST_CASE("ledger: requests without an answer widen the check to a range") {
    ledger l(2, 2);
    l.add_key(0);
    l.add_key(0);
    l.on_answer(0, false, 200, 1);
    l.on_no_answer(1, false);  // it may have sold 2 units, or not
    CHECK(l.unanswered(0) == 2);
    CHECK(l.check(names, {level(10, 0), level(0, 0)}, {level(8, 2), level(0, 0)}).ok);
    CHECK(l.check(names, {level(10, 0), level(0, 0)}, {level(6, 4), level(0, 0)}).ok);
    const auto v = l.check(names, {level(10, 0), level(0, 0)}, {level(4, 6), level(0, 0)});
    CHECK_FALSE(v.ok);
    CHECK(v.problems.at(0) ==
          "sku-0: sold 6 is outside [2, 4] (units answered 200, plus 2 units never answered)");
  }

  TEST_CASE("ledger: another order id for a resend and one id for two requests are counted") {
    ledger l(2, 1);
    l.add_key(0);
    l.add_key(1);
    l.on_answer(0, false, 200, 10);
    l.on_answer(0, true, 200, 11);   // the resend got a new order: not idempotent
    l.on_answer(1, false, 200, 10);  // another request got order 10
    CHECK(l.idempotency_violations() == 1u);
    CHECK(l.duplicate_order_ids() == 1u);
    const auto v = l.check(names, {level(10, 0), level(10, 0)}, {level(8, 2), level(10, 0)});
    CHECK_FALSE(v.ok);
    CHECK(v.problems.size() == 2u);
    CHECK(v.problems[0] == "1 order ids were answered to two different requests");
    CHECK(v.problems[1] == "1 resent requests were answered with another order id than the first");
    // an in_progress answer names the held order: the same id is no violation
    ledger held(1, 1);
    held.add_key(0);
    held.on_answer(0, true, 409, 50);
    held.on_answer(0, false, 200, 50);
    CHECK(held.idempotency_violations() == 0u);
    CHECK(held.units(0) == 1);
  }
}
