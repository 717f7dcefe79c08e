#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <doctest/doctest.h>

#include <ostream>

namespace integration_registry {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
}  // namespace integration_registry

TEST_SUITE("integration") {
  using namespace integration_registry;
  TEST_CASE("register resolve grade and deregister instances - malformed records are skipped") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session s(c, {.ttl = 5s});
      co_await s.async_start(tuple_awaitable);
      watcher w(c);
      resolver res(w, "services/shop");
      auto [ec, rev0] = co_await res.async_start(tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK(res.instances().empty());
      registration a(
          s, "services/shop",
          {.id = "a", .endpoint = "127.0.0.1:8001", .weight = 2, .metadata = {{"zone", "east"}}});
      registration b(s, "services/shop", {.id = "b", .endpoint = "127.0.0.1:8002"});
      auto [ra, reva] = co_await a.async_register(tuple_awaitable);
      REQUIRE_FALSE(ra);
      auto [rb, revb] = co_await b.async_register(tuple_awaitable);
      REQUIRE_FALSE(rb);
      auto [pe, junk] = co_await c.async_put("services/shop/junk", "{not json", tuple_awaitable);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return res.revision() >= junk.header.revision; }, 5000ms));
      REQUIRE(res.instances().size() == 2);
      const auto& ia = res.instances().at("a");
      CHECK(ia.endpoint == "127.0.0.1:8001");
      CHECK(ia.weight == 2);
      CHECK(ia.metadata.at("zone") == "east");
      CHECK(ia.lease == s.lease());
      CHECK(res.malformed() == 1u);
      CHECK(res.last_error().find("not a JSON object") != std::string::npos);

      weighted_picker picker;
      picker.update(res.instances());
      int to_a = 0;
      for (int i = 0; i < 30; ++i) to_a += picker.pick()->id == "a" ? 1 : 0;
      CHECK(to_a == 20);  // 2:1

      auto [he, hrev] = co_await a.async_set_health(health_state::degraded, 0.3, tuple_awaitable);
      REQUIRE_FALSE(he);
      REQUIRE(co_await seckill::test::eventually([&] { return res.revision() >= hrev; }, 5000ms));
      CHECK(res.instances().at("a").health == health_state::degraded);
      CHECK(res.instances().at("a").effective_weight == doctest::Approx(0.6));
      std::tie(he, hrev) =
          co_await b.async_set_health(health_state::read_only, 0.3, tuple_awaitable);
      REQUIRE(co_await seckill::test::eventually([&] { return res.revision() >= hrev; }, 5000ms));
      picker.update(res.instances());
      for (int i = 0; i < 10; ++i) CHECK(picker.pick(true)->id == "a");

      auto [de, drev] = co_await a.async_deregister(tuple_awaitable);
      REQUIRE_FALSE(de);
      REQUIRE(co_await seckill::test::eventually([&] { return res.revision() >= drev; }, 5000ms));
      CHECK(res.instances().count("a") == 0);
      CHECK(res.instances().count("b") == 1);
      co_await s.async_close(tuple_awaitable);
    });
  }

  TEST_CASE("3 members - a registrant killed with -9 disappears from the resolver within its TTL") {
    seckill::test::etcd_cluster etcd(3);
    seckill::detail::temp_dir logs("seckill-registry");
    const std::string log = (logs.path() / "registrant.log").string();
    // dies with the test binary, a crash included (die_with_parent, from this thread)
    seckill::detail::child_process registrant(
        {{SECKILL_ETCD_HELPER, "register", etcd.endpoint_list(), "services/pay", "2", "pay-1",
          "127.0.0.1:9001"},
         log,
         {},
         true});
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      watcher w(c);
      resolver res(w, "services/pay/");
      co_await res.async_start(tuple_awaitable);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return res.instances().count("pay-1") == 1; }, 5000ms));
      CHECK(res.instances().at("pay-1").endpoint == "127.0.0.1:9001");
      co_await seckill::test::sleep_for(1000ms);  // it keeps its lease alive meanwhile
      CHECK(res.instances().count("pay-1") == 1);
      registrant.kill_and_wait();
      const auto t0 = std::chrono::steady_clock::now();
      REQUIRE(co_await seckill::test::eventually([&] { return res.instances().empty(); }, 6000ms));
      const auto gone_after = std::chrono::steady_clock::now() - t0;
      MESSAGE("endpoint gone " << std::chrono::duration<double>(gone_after).count()
                               << " s after kill -9 (TTL 2 s)");
      // the lease expires at most TTL after the last keepalive; etcd sweeps expired leases every
      // 500 ms
      CHECK(gone_after <= 2500ms);
    });
    CHECK(seckill::test::read_file(log).find("REGISTERED") != std::string::npos);
  }

  TEST_CASE("health follows the session and the registry publishes each grade") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session s(c, {.ttl = 2s});
      co_await s.async_start(tuple_awaitable);
      health_monitor<> monitor;
      std::vector<health_state> grades{health_state::healthy};
      registration reg(s, "services/api", {.id = "n1", .endpoint = "127.0.0.1:7000"});
      reg.follow(monitor);
      health_link link = attach_health(s, monitor, [&](health_state h) {
        if (grades.empty() || grades.back() != h) grades.push_back(h);
      });
      co_await reg.async_register(tuple_awaitable);
      watcher w(c);
      resolver res(w, "services/api");
      co_await res.async_start(tuple_awaitable);
      const auto first_lease = s.lease();
      co_await c.async_lease_revoke(first_lease, tuple_awaitable);  // the record goes with it
      // lost -> read_only (offline only after ttl + grace without a renewal), renewed (record
      // written again), keepalives -> degraded -> healthy
      REQUIRE(co_await seckill::test::eventually(
          [&] { return monitor.state() == health_state::healthy && s.lease() != first_lease; },
          5000ms));
      REQUIRE(co_await seckill::test::eventually(
          [&] {
            return res.instances().count("n1") == 1 &&
                   res.instances().at("n1").health == health_state::healthy &&
                   res.instances().at("n1").lease == s.lease();
          },
          5000ms));
      const std::vector<health_state> expected{health_state::healthy, health_state::read_only,
                                               health_state::degraded, health_state::healthy};
      CHECK(grades == expected);
      CHECK(monitor.transitions() == 3u);
      co_await s.async_close(tuple_awaitable);
    });
  }
}
