// seckill_load's request mix: unique request ids, users in turn, seeded SKUs,
// and the share of requests that resend an earlier one.
#include "seckill_load/workload.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace unit_workload {
using seckill_load::workload;
}  // namespace unit_workload

using namespace unit_workload;

TEST_SUITE("unit") {
  TEST_CASE("workload: each new request has its own request id and the next user") {
    workload w(
        {.users = 3, .skus = 1, .quantity = 2, .repeat_share = 0, .run_id = "r1", .seed = 1});
    const auto a = w.next();
    CHECK_FALSE(a.replay);
    CHECK(a.key == 0u);
    CHECK(a.body == R"({"sku":"sku-0","quantity":2,"user":"user-0","request_id":"r1-0"})");
    const auto b = w.next();
    const auto c = w.next();
    const auto d = w.next();
    CHECK(b.user == 1u);
    CHECK(c.user == 2u);
    CHECK(d.user == 0u);  // around again, with a new request id
    CHECK(nlohmann::json::parse(d.body)["request_id"] == "r1-3");
    CHECK(w.keys() == 4u);
    CHECK(w.replays() == 0u);
  }

  TEST_CASE("workload: SKUs are spread by key and seed - a replay resends the same body") {
    workload w(
        {.users = 1000, .skus = 5, .quantity = 1, .repeat_share = 0.3, .run_id = "x", .seed = 9});
    std::vector<std::string> bodies;
    std::vector<int> per_sku(5, 0);
    int replays = 0;
    for (int i = 0; i < 20'000; ++i) {
      const auto r = w.next();
      if (r.replay) {
        ++replays;
        REQUIRE(r.key < bodies.size());
        CHECK(r.body == bodies[r.key]);  // the same user, request id, SKU and quantity
      } else {
        REQUIRE(r.key == bodies.size());
        bodies.push_back(r.body);
        ++per_sku[r.sku];
      }
      CHECK(r.sku == w.sku_of(r.key));
    }
    CHECK(static_cast<double>(replays) / 20'000 == doctest::Approx(0.3).epsilon(0.05));
    CHECK(w.replays() == static_cast<std::uint64_t>(replays));
    for (int n : per_sku)
      CHECK(static_cast<double>(n) == doctest::Approx(bodies.size() / 5.0).epsilon(0.1));
    std::set<std::string> ids;
    for (const auto& b : bodies)
      ids.insert(nlohmann::json::parse(b)["request_id"].get<std::string>());
    CHECK(ids.size() == bodies.size());

    // the same settings give the same requests
    workload one({.users = 10, .skus = 7, .repeat_share = 0.5, .run_id = "y", .seed = 3});
    workload two(one.config());
    for (int i = 0; i < 1000; ++i) {
      const auto p = one.next();
      const auto q = two.next();
      CHECK(p.body == q.body);
      CHECK(p.replay == q.replay);
    }
  }

  TEST_CASE("workload: bad settings are refused") {
    CHECK_THROWS_AS(workload({.users = 0}), std::invalid_argument);
    CHECK_THROWS_AS(workload({.skus = 0}), std::invalid_argument);
    CHECK_THROWS_AS(workload({.quantity = 0}), std::invalid_argument);
    CHECK_THROWS_AS(workload({.repeat_share = 1.0}), std::invalid_argument);
  }
}
