#include <seckill/clock.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/registry.hpp>

#include <doctest/doctest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace unit_health {
using namespace seckill::etcd;
using namespace std::chrono_literals;
using monitor = health_monitor<seckill::manual_clock>;

service_instance inst(std::string id, double weight, health_state h = health_state::healthy,
                      double effective = -1) {
  service_instance s;
  s.id = std::move(id);
  s.endpoint = "127.0.0.1:1";
  s.weight = weight;
  s.health = h;
  s.effective_weight = effective < 0 ? weight : effective;
  return s;
}
}  // namespace unit_health

TEST_SUITE("unit") {
  using namespace unit_health;
  TEST_CASE("health grades down with keepalive failures and up with successes") {
    seckill::manual_clock clock;
    monitor m({.degraded_after_failures = 1, .read_only_after_failures = 3}, clock);
    std::vector<std::pair<health_state, health_state>> seen;
    m.on_transition([&](const monitor::transition& t) {
      seen.emplace_back(t.from, t.to);
      CHECK(t.at == clock.now());
    });
    CHECK(m.state() == health_state::healthy);
    CHECK(m.weight_factor() == 1.0);
    m.keepalive_failed();
    CHECK(m.state() == health_state::degraded);
    CHECK(m.weight_factor() == doctest::Approx(0.3));
    CHECK(m.writable());
    m.keepalive_failed();
    CHECK(m.state() == health_state::degraded);
    m.keepalive_failed();
    CHECK(m.state() == health_state::read_only);
    CHECK_FALSE(m.writable());
    CHECK(m.weight_factor() == 0.0);
    m.lease_lost();
    CHECK(m.state() == health_state::offline);
    m.keepalive_succeeded();  // offline only leaves through a new lease
    CHECK(m.state() == health_state::offline);
    m.lease_renewed();
    CHECK(m.state() == health_state::read_only);
    m.keepalive_succeeded();
    CHECK(m.state() == health_state::degraded);
    m.keepalive_succeeded();
    CHECK(m.state() == health_state::healthy);
    const std::vector<std::pair<health_state, health_state>> expected{
        {health_state::healthy, health_state::degraded},
        {health_state::degraded, health_state::read_only},
        {health_state::read_only, health_state::offline},
        {health_state::offline, health_state::read_only},
        {health_state::read_only, health_state::degraded},
        {health_state::degraded, health_state::healthy}};
    CHECK(seen == expected);
    CHECK(m.transitions() == 6);
  }

  TEST_CASE("health thresholds are configurable - weight factor silence recovery streak") {
    seckill::manual_clock clock;
    monitor m({.degraded_after_failures = 2,
               .read_only_after_failures = 4,
               .read_only_after_silence = 5s,
               .degraded_weight_factor = 0.5,
               .recover_after_successes = 2},
              clock);
    m.keepalive_failed();
    CHECK(m.state() == health_state::healthy);
    m.keepalive_failed();
    CHECK(m.state() == health_state::degraded);
    CHECK(m.weight_factor() == 0.5);
    m.keepalive_succeeded();
    CHECK(m.state() == health_state::degraded);  // needs 2 in a row
    m.keepalive_succeeded();
    CHECK(m.state() == health_state::healthy);
    clock.advance(4999ms);
    m.poll();
    CHECK(m.state() == health_state::healthy);
    clock.advance(1ms);
    m.poll();
    CHECK(m.state() == health_state::read_only);  // silence alone
  }

  TEST_CASE("bad health thresholds are refused naming the values") {
    CHECK_THROWS_WITH_AS(monitor({.degraded_after_failures = 0}),
                         doctest::Contains("degraded after 0"), seckill::error);
    CHECK_THROWS_AS(monitor({.degraded_after_failures = 3, .read_only_after_failures = 2}),
                    seckill::error);
    CHECK_THROWS_WITH_AS(monitor({.degraded_weight_factor = 1.5}), doctest::Contains("1.5"),
                         seckill::error);
    CHECK_THROWS_AS(monitor({.degraded_weight_factor = 0.0}), seckill::error);
  }

  TEST_CASE("smooth weighted round robin spreads picks by effective weight") {
    weighted_picker p;
    std::map<std::string, service_instance> all{
        {"a", inst("a", 5)}, {"b", inst("b", 1)}, {"c", inst("c", 1)}};
    p.update(all);
    std::string order;
    for (int i = 0; i < 7; ++i) order += p.pick()->id;
    CHECK(order == "aabacaa");  // nginx's sequence for 5:1:1
    std::map<std::string, int> counts;
    for (int i = 0; i < 700; ++i) ++counts[p.pick()->id];
    CHECK(counts["a"] == 500);
    CHECK(counts["b"] == 100);
    CHECK(counts["c"] == 100);
  }

  TEST_CASE("the picker honours health - degraded weight read-only for reads only offline never") {
    weighted_picker p;
    std::map<std::string, service_instance> all{{"a", inst("a", 1, health_state::degraded, 0.3)},
                                                {"b", inst("b", 1, health_state::healthy)},
                                                {"r", inst("r", 1, health_state::read_only, 0)},
                                                {"o", inst("o", 1, health_state::offline, 0)}};
    p.update(all);
    std::map<std::string, int> writes;
    for (int i = 0; i < 1300; ++i) ++writes[p.pick(true)->id];
    CHECK(writes["a"] == 300);
    CHECK(writes["b"] == 1000);
    CHECK(writes.count("r") == 0);
    CHECK(writes.count("o") == 0);
    std::map<std::string, int> reads;
    for (int i = 0; i < 2300; ++i) ++reads[p.pick(false)->id];
    CHECK(reads["r"] == 1000);
    CHECK(reads.count("o") == 0);
    weighted_picker none;
    none.update({{"r", inst("r", 1, health_state::read_only, 0)}});
    CHECK(none.pick(true) == nullptr);
    CHECK(none.pick(false) != nullptr);
  }

  TEST_CASE("registry records round-trip and malformed ones are refused with a reason") {
    service_instance s = inst("x", 2.5, health_state::degraded, 0.75);
    s.metadata = {{"zone", "a"}, {"version", "1.2"}};
    service_instance back;
    std::string why;
    REQUIRE(detail::decode_instance(detail::encode_instance(s), back, why));
    back.id = s.id;
    CHECK(back == s);
    for (const char* bad :
         {"not json", "[]", R"({"weight":1})", R"({"endpoint":""})",
          R"({"endpoint":"a","weight":-1})", R"({"endpoint":"a","weight":"heavy"})",
          R"({"endpoint":"a","health":"sick"})", R"({"endpoint":"a","metadata":[1]})",
          R"({"endpoint":"a","metadata":{"k":1}})"}) {
      CAPTURE(bad);
      why.clear();
      CHECK_FALSE(detail::decode_instance(bad, back, why));
      CHECK_FALSE(why.empty());
    }
  }
}
