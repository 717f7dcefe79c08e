#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/session.hpp>

#include <doctest/doctest.h>

#include <ostream>

namespace integration_session {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
}  // namespace integration_session

TEST_SUITE("integration") {
  using namespace integration_session;
  TEST_CASE("a session keeps its lease alive past its TTL and revokes it on close") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session s(c, {.ttl = 1s});
      int keepalives = 0;
      s.on_keepalive([&](bool ok, unsigned) { keepalives += ok ? 1 : 0; });
      auto [ec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK(lease != 0);
      CHECK(s.alive());
      co_await seckill::test::sleep_for(2500ms);
      auto [tec, ttl] = co_await c.async_lease_time_to_live(lease, false, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK(ttl.ttl >= 0);  // still there after 2.5 TTLs
      CHECK(ttl.granted_ttl >= 1);
      CHECK(keepalives >= 5);  // every TTL/3
      CHECK(s.alive());
      CHECK(s.generation() == 1u);
      auto [cec, closed] = co_await s.async_close(tuple_awaitable);
      CHECK_FALSE(cec);
      CHECK(closed == lease);
      std::tie(tec, ttl) = co_await c.async_lease_time_to_live(lease, false, tuple_awaitable);
      CHECK(ttl.ttl == -1);
    });
  }

  TEST_CASE("a revoked lease is reported lost by callback and awaitable then renewed") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session s(c, {.ttl = 2s});
      std::int64_t lost_lease = 0, renewed_lease = 0;
      std::error_code lost_why;
      s.on_lost([&](std::error_code why, std::int64_t old) {
        lost_why = why;
        lost_lease = old;
      });
      s.on_renewed([&](std::int64_t id) { renewed_lease = id; });
      auto [ec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(ec);
      co_await c.async_lease_revoke(lease, tuple_awaitable);
      const auto t0 = std::chrono::steady_clock::now();
      auto [wec, which] = co_await s.async_wait_lost(tuple_awaitable);
      CHECK(wec == seckill::etcd::errc::session_lost);
      CHECK(which == lease);
      CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);  // the next keepalive (TTL/3) says so
      CHECK(lost_lease == lease);
      CHECK(lost_why == seckill::etcd::errc::lease_not_found);
      auto [aec, fresh] = co_await s.async_wait_alive(tuple_awaitable);
      REQUIRE_FALSE(aec);
      CHECK(fresh != lease);
      CHECK(renewed_lease == fresh);
      CHECK(s.generation() == 2u);
      auto [tec, ttl] = co_await c.async_lease_time_to_live(fresh, false, tuple_awaitable);
      CHECK(ttl.ttl > 0);
      co_await s.async_close(tuple_awaitable);
    });
  }

  TEST_CASE("an etcd restart - the session reports lost within its TTL then recovers") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      auto o = etcd.options();
      o.call_timeout = 800ms;
      client c(io.get_executor(), o);
      session s(c, {.ttl = 2s});
      auto [ec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(ec);
      etcd.kill(0);
      const auto t0 = std::chrono::steady_clock::now();
      auto [wec, which] = co_await s.async_wait_lost(tuple_awaitable);
      const auto lost_after = std::chrono::steady_clock::now() - t0;
      CHECK(wec == seckill::etcd::errc::session_lost);
      // no later than etcd would expire the lease (TTL after the last keepalive,
      // which was just before the kill), give or take a timer's wake-up on a busy machine
      CHECK(lost_after <= 2s + 300ms);
      CHECK_FALSE(s.alive());
      CHECK(s.state_now() == session_state::lost);
      etcd.restart(0);
      auto [aec, fresh] = co_await s.async_wait_alive(tuple_awaitable);
      REQUIRE_FALSE(aec);
      CHECK(s.alive());
      CHECK(fresh != lease);
      CHECK(s.generation() == 2u);
      auto [tec, ttl] = co_await c.async_lease_time_to_live(fresh, false, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK(ttl.ttl > 0);
      std::tie(tec, ttl) = co_await c.async_lease_time_to_live(lease, false, tuple_awaitable);
      CHECK(ttl.ttl == -1);  // the lost lease was revoked on recovery
      co_await s.async_close(tuple_awaitable);
    });
  }

  TEST_CASE("a session cannot start against unreachable etcd and refuses a TTL below 1 s") {
    const auto dead = seckill::test::free_loopback_port();
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client_options o;
      o.endpoints = {{"127.0.0.1", dead}};
      o.call_timeout = 500ms;
      client c(io.get_executor(), o);
      session s(c, {.ttl = 2s});
      auto [ec, lease] = co_await s.async_start(tuple_awaitable);
      CHECK(ec == seckill::errc::connection_refused);
      CHECK(lease == 0);
      CHECK_FALSE(s.alive());
      CHECK_THROWS_AS(session(c, {.ttl = 0s}), seckill::error);
    });
  }
}
