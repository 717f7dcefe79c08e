#include <seckill/error.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <set>
#include <string>

TEST_SUITE("unit") {
  TEST_CASE("errc converts to std::error_code in the seckill category") {
    std::error_code ec = seckill::errc::sold_out;
    CHECK(ec == seckill::errc::sold_out);
    CHECK(ec != seckill::errc::unknown_sku);
    CHECK(std::string(ec.category().name()) == "seckill");
    CHECK(ec.message() == "sold out");
    CHECK(bool(ec));
  }

  TEST_CASE("every errc has its own message") {
    std::set<std::string> seen;
    for (int v = 1; v <= static_cast<int>(seckill::errc::element_not_actionable); ++v) {
      const auto msg = seckill::seckill_category().message(v);
      CHECK_MESSAGE(msg.find("unknown seckill error") == std::string::npos, "code ", v);
      CHECK_MESSAGE(seen.insert(msg).second, "duplicate message '", msg, "'");
    }
    CHECK(seckill::seckill_category().message(9999) == "unknown seckill error 9999");
  }

  TEST_CASE("seckill::error carries the code and says what was seen") {
    try {
      throw seckill::error(seckill::errc::invalid_argument, "worker_id 40 out of range [0, 31]");
    } catch (const std::system_error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find("worker_id 40 out of range [0, 31]") != std::string::npos);
    }
    CHECK_NOTHROW(seckill::throw_if({}, "nothing"));
    CHECK_THROWS_AS(seckill::throw_if(seckill::errc::timed_out, "reserve"), seckill::error);
  }
}
