// The service's API without the network: request bodies decode into what the
// engine takes (or say what is wrong), each way a purchase ends maps to one
// status and error, the admin token is compared whole.
#include "seckill_server/api.hpp"

#include <seckill/error.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

namespace unit_api {

std::string purchase_error(const std::string& body) {
  seckill_server::purchase_input in;
  return seckill_server::decode_purchase(body, in);
}

seckill_server::reply mapped(std::error_code ec, seckill::purchase_state state,
                             std::int64_t order_id = 0, bool replayed = false,
                             bool compensated = false) {
  seckill::purchase_result r;
  r.final_state = state;
  r.order_id = order_id;
  r.replayed = replayed;
  r.compensated = compensated;
  return seckill_server::purchase_reply(ec, r, std::chrono::milliseconds(30'000));
}

}  // namespace unit_api

using namespace unit_api;
using seckill::errc;
using seckill::purchase_state;

TEST_SUITE("unit") {
  TEST_CASE("seckill_server api: a purchase body decodes with its defaults") {
    seckill_server::purchase_input in;
    REQUIRE(seckill_server::decode_purchase(R"({"sku":"sku-1","user":"alice"})", in).empty());
    CHECK(in.sku == "sku-1");
    CHECK(in.user == "alice");
    CHECK(in.quantity == 1);
    CHECK(in.request_id.empty());
    REQUIRE(
        seckill_server::decode_purchase(
            R"({"sku":"a.b:c@d-e_f","user":"u","request_id":"r-1","quantity":3,"note":"x"})", in)
            .empty());
    CHECK(in.sku == "a.b:c@d-e_f");
    CHECK(in.quantity == 3);
    CHECK(in.request_id == "r-1");
    REQUIRE(
        seckill_server::decode_purchase(R"({"sku":"s","user":"u","request_id":null})", in).empty());
    CHECK(in.request_id.empty());
  }

  TEST_CASE("seckill_server api: a bad purchase body says what is wrong and decodes nothing") {
    CHECK(purchase_error("") == "the body is not valid JSON");
    CHECK(purchase_error(R"({"sku":"s",)") == "the body is not valid JSON");
    CHECK(purchase_error(R"(["sku"])") == "the body must be a JSON object");
    CHECK(purchase_error(R"("sku")") == "the body must be a JSON object");
    CHECK(purchase_error(R"({"user":"u"})") == "missing \"sku\"");
    CHECK(purchase_error(R"({"sku":"s"})") == "missing \"user\"");
    CHECK(purchase_error(R"({"sku":5,"user":"u"})") == "\"sku\" must be a string");
    CHECK(purchase_error(R"({"sku":"a b","user":"u"})") ==
          "\"sku\" 'a b' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
    CHECK(purchase_error(R"({"sku":"{x}","user":"u"})") ==
          "\"sku\" '{x}' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
    CHECK(purchase_error(R"({"sku":"","user":"u"})") ==
          "\"sku\" '' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
    CHECK(purchase_error(R"({"sku":"s","user":")" + std::string(65, 'u') + R"("})") ==
          "\"user\" '" + std::string(64, 'u') +
              "...' must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -");
    CHECK(purchase_error(R"({"sku":"s","user":"u","request_id":7})") ==
          "\"request_id\" must be a string");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":0})") ==
          "\"quantity\" 0 is not in [1, 1000]");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":-2})") ==
          "\"quantity\" -2 is not in [1, 1000]");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":1001})") ==
          "\"quantity\" 1001 is not in [1, 1000]");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":18446744073709551615})") ==
          "\"quantity\" 18446744073709551615 is not in [1, 1000]");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":1.5})") ==
          "\"quantity\" must be an integer in [1, 1000]");
    CHECK(purchase_error(R"({"sku":"s","user":"u","quantity":"2"})") ==
          "\"quantity\" must be an integer in [1, 1000]");
  }

  TEST_CASE("seckill_server api: an admin stock body decodes or says what is wrong") {
    seckill_server::stock_input in;
    REQUIRE(seckill_server::decode_stock(R"({"stock":100})", in).empty());
    CHECK(in.stock == 100);
    CHECK(!in.per_user);
    REQUIRE(seckill_server::decode_stock(R"({"stock":0,"per_user":2})", in).empty());
    CHECK(in.stock == 0);
    CHECK(in.per_user == 2);
    CHECK(seckill_server::decode_stock("{}", in) == "missing \"stock\"");
    CHECK(seckill_server::decode_stock(R"({"stock":-1})", in) ==
          "\"stock\" -1 is not in [0, 9007199254740992]");
    CHECK(seckill_server::decode_stock(R"({"stock":9007199254740993})", in) ==
          "\"stock\" 9007199254740993 is not in [0, 9007199254740992]");
    CHECK(seckill_server::decode_stock(R"({"stock":5,"per_user":-1})", in) ==
          "\"per_user\" -1 is not in [0, 9007199254740992]");
    CHECK(seckill_server::decode_stock("nope", in) == "the body is not valid JSON");
  }

  TEST_CASE("seckill_server api: the admin token must match whole with the Bearer scheme") {
    CHECK(seckill_server::bearer_matches("Bearer s3cret", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("Bearer s3cre", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("Bearer s3cret2", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("Bearer S3cret", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("Basic s3cret", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("bearer s3cret", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("s3cret", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("", "s3cret"));
    CHECK_FALSE(seckill_server::bearer_matches("Bearer ", ""));  // no token: nobody is admin
  }

  TEST_CASE("seckill_server api: order ids are positive decimal integers below 2^63") {
    CHECK(seckill_server::parse_order_id("1") == 1);
    CHECK(seckill_server::parse_order_id("9223372036854775807") == INT64_MAX);
    CHECK(!seckill_server::parse_order_id("9223372036854775808"));
    CHECK(!seckill_server::parse_order_id("0"));
    CHECK(!seckill_server::parse_order_id("-1"));
    CHECK(!seckill_server::parse_order_id(""));
    CHECK(!seckill_server::parse_order_id("12a"));
    CHECK(!seckill_server::parse_order_id("+1"));
    CHECK(!seckill_server::parse_order_id("00000000000000000001"));
  }

  TEST_CASE("seckill_server api: each way a purchase ends has one status and error") {
    auto ok = mapped({}, purchase_state::succeeded, 42);
    CHECK(ok.status == 200);
    CHECK(ok.body.dump() == R"({"order_id":"42","state":"succeeded"})");
    auto replay = mapped({}, purchase_state::succeeded, 42, true);
    CHECK(replay.status == 200);
    CHECK(replay.body["order_id"] == "42");
    CHECK(replay.body["replayed"] == true);

    struct row {
      std::error_code ec;
      purchase_state state;
      unsigned status;
      const char* error;
      bool retry_after;
    };
    const row rows[] = {
        {errc::invalid_argument, purchase_state::idle, 400, "invalid_argument", false},
        {errc::unknown_sku, purchase_state::failed, 404, "unknown_sku", false},
        {errc::sold_out, purchase_state::failed, 409, "sold_out", false},
        {errc::sale_not_started, purchase_state::failed, 409, "sale_not_started", false},
        {errc::sale_ended, purchase_state::failed, 409, "sale_ended", false},
        {errc::purchase_in_progress, purchase_state::idle, 409, "in_progress", true},
        {errc::rate_limited, purchase_state::idle, 429, "rate_limited", true},
        {errc::purchase_limited, purchase_state::failed, 429, "user_limit", true},
        {errc::circuit_open, purchase_state::idle, 503, "circuit_open", true},
        {errc::read_only, purchase_state::idle, 503, "read_only", true},
        {errc::payment_failed, purchase_state::rolled_back, 402, "payment_failed", false},
        {errc::timed_out, purchase_state::timed_out, 504, "timed_out", false},
        {errc::operation_aborted, purchase_state::timed_out, 504, "timed_out", false},
        {errc::store_unavailable, purchase_state::failed, 503, "store_unavailable", true},
        {errc::timed_out, purchase_state::failed, 503, "store_unavailable", true},
        {errc::clock_rollback, purchase_state::idle, 503, "unavailable", true},
        {errc::invalid_transition, purchase_state::failed, 500, "internal", false},
    };
    for (const auto& r : rows) {
      CAPTURE(r.ec.message());
      const auto m = mapped(r.ec, r.state, 7);
      CHECK(m.status == r.status);
      CHECK(m.body["error"] == r.error);
      CHECK(m.retry_after.has_value() == r.retry_after);
    }
    CHECK(mapped(errc::sold_out, purchase_state::failed, 7).body.dump() ==
          R"({"error":"sold_out"})");
    CHECK(mapped(errc::purchase_limited, purchase_state::failed).retry_after == 30);
    const auto rolled = mapped(errc::order_rolled_back, purchase_state::failed, 9, true);
    CHECK(rolled.status == 409);
    CHECK(rolled.body["error"] == "rolled_back");
    CHECK(rolled.body["order_id"] == "9");
    const auto in_progress = mapped(errc::purchase_in_progress, purchase_state::idle, 9, true);
    CHECK(in_progress.body["order_id"] == "9");
    const auto comp = mapped(errc::order_rolled_back, purchase_state::failed, 9, false, true);
    CHECK(comp.status == 500);
    CHECK(comp.body["error"] == "not_committed");
    CHECK(comp.body["compensated"] == true);
    CHECK(mapped(errc::timed_out, purchase_state::timed_out, 5).body["order_id"] == "5");
  }

  TEST_CASE("seckill_server api: a request target maps to one of a fixed set of routes") {
    CHECK(seckill_server::route_of("/purchase") == "purchase");
    CHECK(seckill_server::route_of("/purchase?x=1") == "purchase");
    CHECK(seckill_server::route_of("/purchases") == "other");
    CHECK(seckill_server::route_of("/admin/stock/a") == "admin_stock");
    CHECK(seckill_server::route_of("/stock/a") == "stock");
    CHECK(seckill_server::route_of("/orders/1?sku=a") == "order");
    CHECK(seckill_server::route_of("/metrics") == "metrics");
    CHECK(seckill_server::route_of("/health") == "health");
    CHECK(seckill_server::route_of("/ready") == "ready");
    CHECK(seckill_server::route_of("/../etc/passwd") == "other");
  }
}
