// Unit tests without a server: health grading, and the leader duties' audit verdict.
#include <seckill/clock.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/leader_duties.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/purchase/policies.hpp>

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
    m.lease_lost();  // already read-only: offline waits for the silence threshold
    CHECK(m.state() == health_state::read_only);
    clock.advance(m.thresholds().offline_after());
    m.poll();
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
    CHECK(m.transitions() == expected.size());
  }

  TEST_CASE("the default thresholds are the design's - 2 failures 4 failures ttl plus 5 s") {
    seckill::manual_clock clock;
    monitor m({}, clock);
    const health_thresholds design{};
    CHECK(design.degraded_after_failures == 2);
    CHECK(design.read_only_after_failures == 4);
    CHECK(design.offline_grace == 5s);
    CHECK(design.degraded_weight_factor == doctest::Approx(0.3));
    for (unsigned i = 1; i < design.degraded_after_failures; ++i) m.keepalive_failed();
    CHECK(m.state() == health_state::healthy);
    m.keepalive_failed();
    CHECK(m.state() == health_state::degraded);
    CHECK(m.weight_factor() == doctest::Approx(design.degraded_weight_factor));
    while (m.consecutive_failures() + 1 < design.read_only_after_failures) {
      m.keepalive_failed();
      CHECK(m.state() == health_state::degraded);
    }
    m.keepalive_failed();
    CHECK(m.state() == health_state::read_only);
    CHECK_FALSE(m.writable());
    // offline exactly at lease ttl + grace after the last success, not a millisecond before
    m.set_lease_ttl(2s);
    CHECK(m.thresholds().offline_after() == 2s + design.offline_grace);
    clock.advance(m.thresholds().offline_after() - 1ms);
    m.poll();
    CHECK(m.state() == health_state::read_only);
    clock.advance(1ms);
    m.poll();
    CHECK(m.state() == health_state::offline);
    CHECK_FALSE(m.writable());
    CHECK(m.weight_factor() == 0.0);
  }

  TEST_CASE("a lost lease makes a healthy node read-only at once and offline after the grace") {
    seckill::manual_clock clock;
    monitor m({}, clock);
    clock.advance(1s);
    m.keepalive_succeeded();
    m.lease_lost();
    CHECK(m.state() == health_state::read_only);
    clock.advance(m.thresholds().offline_after() - 1ms);
    m.keepalive_failed();  // a failed grant or keepalive re-grades too
    CHECK(m.state() == health_state::read_only);
    clock.advance(1ms);
    m.keepalive_failed();
    CHECK(m.state() == health_state::offline);
    m.lease_renewed();
    CHECK(m.state() == health_state::read_only);
    CHECK(m.consecutive_failures() == 0u);
    // a renewal restarts the silence: no relapse to offline right away
    m.poll();
    CHECK(m.state() == health_state::read_only);
  }

  TEST_CASE("a degraded node that stays silent goes straight to offline") {
    seckill::manual_clock clock;
    monitor m({}, clock);
    std::vector<health_state> to;
    m.on_transition([&](const monitor::transition& t) { to.push_back(t.to); });
    m.keepalive_failed();
    m.keepalive_failed();
    clock.advance(m.thresholds().offline_after());
    m.poll();
    CHECK(to == std::vector<health_state>{health_state::degraded, health_state::offline});
  }

  TEST_CASE("the health gate admits while healthy or degraded and refuses otherwise") {
    seckill::manual_clock clock;
    monitor m({}, clock);
    const health_gate<monitor> gate(m);
    static_assert(seckill::purchase_gate<health_gate<monitor>>);
    CHECK(gate.admits());
    m.keepalive_failed();
    m.keepalive_failed();
    CHECK(gate.state() == health_state::degraded);
    CHECK(gate.admits());
    m.keepalive_failed();
    m.keepalive_failed();
    CHECK(gate.state() == health_state::read_only);
    CHECK_FALSE(gate.admits());
    clock.advance(m.thresholds().offline_after());
    m.poll();
    CHECK(gate.state() == health_state::offline);
    CHECK_FALSE(gate.admits());
    m.lease_renewed();
    m.keepalive_succeeded();
    CHECK(gate.admits());
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
    CHECK_THROWS_WITH_AS(monitor({.degraded_after_failures = 3, .read_only_after_failures = 2}),
                         doctest::Contains("degraded after 3 and read-only after 2"),
                         seckill::error);
    CHECK_THROWS_WITH_AS(monitor({.degraded_weight_factor = 1.5}), doctest::Contains("1.5"),
                         seckill::error);
    CHECK_THROWS_AS(monitor({.degraded_weight_factor = 0.0}), seckill::error);
    CHECK_THROWS_WITH_AS(monitor({.lease_ttl = 500ms}), doctest::Contains("lease ttl 500 ms"),
                         seckill::error);
    CHECK_THROWS_WITH_AS(monitor({.offline_grace = -1ms}), doctest::Contains("grace -1 ms"),
                         seckill::error);
    CHECK_THROWS_WITH_AS(
        monitor({.read_only_after_silence = 15s, .lease_ttl = 10s, .offline_grace = 5s}),
        doctest::Contains("read-only after 15000 ms of silence, offline after 15000 ms"),
        seckill::error);
    CHECK_THROWS_WITH_AS(monitor({.recover_after_successes = 0}),
                         doctest::Contains("recover after 0"), seckill::error);
    monitor m;
    const auto before = m.thresholds().lease_ttl;
    CHECK_THROWS_WITH_AS(m.set_lease_ttl(0ms), doctest::Contains("lease ttl 0 ms"), seckill::error);
    CHECK(m.thresholds().lease_ttl == before);
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

TEST_SUITE("unit") {
  TEST_CASE("leader_duties - an audit of a SKU never stocked is no fault - a store error is") {
    seckill::etcd::audit_result r;
    r.error = make_error_code(seckill::errc::unknown_sku);
    CHECK_FALSE(r.failed());
    CHECK_FALSE(r.ok());
    r.error = make_error_code(seckill::errc::store_unavailable);
    CHECK(r.failed());
    r.error = {};
    r.report.committed_units = 2;
    r.report.recorded_units = 1;
    CHECK(r.failed());
    r.settled = false;  // a commit landed during the audit
    CHECK_FALSE(r.failed());
  }
}
