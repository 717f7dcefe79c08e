// What obs/ shows of a URL it is given: never a password.
#include <seckill/obs/prometheus.hpp>

#include <doctest/doctest.h>

#include <string>

TEST_SUITE("unit") {
  TEST_CASE("health JSON shows store URLs with their passwords redacted") {
    const seckill::obs::health_report report{
        {{"redis://alice:hunter2@127.0.0.1:6379/0", false, "timed out"},
         {"redis://:hunter2@[::1]:6380", true, ""},
         {"redis://127.0.0.1:6379", true, ""}}};
    const auto [status, body] = seckill::obs::health_json(report);
    CHECK(status == 503);
    CHECK(body.find("hunter2") == std::string::npos);
    CHECK(body.find(R"("name":"redis://alice:***@127.0.0.1:6379/0")") != std::string::npos);
    CHECK(body.find(R"("name":"redis://:***@[::1]:6380")") != std::string::npos);
    CHECK(body.find(R"("name":"redis://127.0.0.1:6379")") != std::string::npos);
  }
}
