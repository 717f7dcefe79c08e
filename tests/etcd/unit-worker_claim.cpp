#include "test_util.hpp"

#include <seckill/clock.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/worker_claim.hpp>
#include <seckill/id/snowflake.hpp>

#include <support/error_message.hpp>
#include <support/net.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

namespace unit_worker_claim {
using namespace seckill::etcd;
using namespace std::chrono_literals;
using seckill::test::message_of;
using seckill::test::tuple_awaitable;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
}  // namespace unit_worker_claim

TEST_SUITE("unit") {
  using namespace unit_worker_claim;

  TEST_CASE("lease_window: open for TTL minus the margin after each renewal - closed for good") {
    lease_window w(3000ms, 1000ms);
    CHECK(w.span() == 2000ms);
    const steady::time_point t0{std::chrono::hours(1)};
    CHECK_FALSE(w.valid(t0));  // closed until opened
    CHECK(w.valid_until() == steady::time_point::min());
    w.open(t0);
    CHECK(w.valid_until() == t0 + 2000ms);
    CHECK(w.valid(t0 + 1999ms));
    CHECK_FALSE(w.valid(t0 + 2000ms));
    w.renewed(t0 + 1000ms);  // a keepalive sent 1 s later succeeded
    CHECK(w.valid(t0 + 2999ms));
    CHECK_FALSE(w.valid(t0 + 3000ms));
    w.renewed(t0 + 500ms);  // a late answer to an older keepalive moves nothing back
    CHECK(w.valid_until() == t0 + 3000ms);
    w.revoke();
    CHECK_FALSE(w.valid(t0));
    w.renewed(t0 + 2000ms);  // a keepalive after the loss reopens nothing
    CHECK_FALSE(w.valid(t0 + 2000ms));
    w.open(t0 + 5000ms);  // a new claim
    CHECK(w.valid(t0 + 6999ms));
    CHECK_FALSE(w.valid(t0 + 7000ms));
  }

  TEST_CASE("lease_window: a margin the TTL cannot hold is refused with the values") {
    CHECK(message_of([] {
            lease_window w(3000ms, 0ms);
          }).rfind("worker claim safety margin 0 ms is not positive", 0) == 0);
    CHECK(message_of([] { lease_window w(3000ms, 2000ms); })
              .rfind("worker claim safety margin 2000 ms leaves 1000 ms of the 3000 ms lease TTL, "
                     "not more than one keepalive interval (1000 ms)",
                     0) == 0);
    CHECK(message_of([] {
            lease_window w(3000ms, 5000ms);
          }).rfind("worker claim safety margin 5000 ms leaves -2000 ms", 0) == 0);
    CHECK_NOTHROW((void)lease_window(3000ms, 1999ms));
  }

  TEST_CASE("leased_snowflake: ids on the pair while the window is open - worker_lost after") {
    auto w = std::make_shared<lease_window>(3000ms, 1000ms);
    w->open(steady::now());
    seckill::manual_clock clock;
    leased_snowflake<seckill::twitter_layout, seckill::manual_clock> ids(
        w, {3, 17}, 0, seckill::default_epoch, clock);
    using gen_t = decltype(ids)::snowflake_type;
    std::error_code ec;
    const auto a = ids.next(ec);
    REQUIRE_FALSE(ec);
    CHECK(gen_t::decompose(a).datacenter == 3);
    CHECK(gen_t::decompose(a).worker == 17);
    CHECK(ids.last_used_ms() ==
          gen_t::decompose(a).timestamp.count() + seckill::default_epoch.count());
    CHECK(ids.next() > a);
    w->revoke();
    CHECK_FALSE(ids.valid());
    CHECK(ids.next(ec) == -1);
    CHECK(ec == errc::worker_lost);
    CHECK(ec == seckill::condition::unavailable);
    CHECK(message_of([&] {
            (void)ids.next();
          }).rfind("worker 17 of datacenter 3: the claim's lease is no longer known alive", 0) ==
          0);
    // a window that ran out is closed too
    w->open(steady::now() - 2000ms);
    CHECK(ids.next(ec) == -1);
    CHECK(ec == errc::worker_lost);
  }

  TEST_CASE("leased_snowflake: resumes after the previous owner's stored timestamp") {
    auto w = std::make_shared<lease_window>(3000ms, 1000ms);
    w->open(steady::now());
    seckill::manual_clock clock;
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch());
    // the previous owner's clock ran 40 ms ahead of ours: wait_up_to<15> refuses
    const std::int64_t released = now_ms.count() + 40;
    leased_snowflake<seckill::twitter_layout, seckill::manual_clock> ids(
        w, {0, 1}, released, seckill::default_epoch, clock);
    using gen_t = decltype(ids)::snowflake_type;
    std::error_code ec;
    CHECK(ids.next(ec) == -1);
    CHECK(ec == seckill::errc::clock_rollback);
    clock.advance(41ms);
    const auto id = ids.next(ec);
    REQUIRE_FALSE(ec);
    CHECK(gen_t::decompose(id).timestamp.count() + seckill::default_epoch.count() > released);
  }

  TEST_CASE("worker_claim: bad options are refused with the values seen") {
    const auto dead = seckill::test::free_loopback_port();
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client_options co;
      co.endpoints = {{"127.0.0.1", dead}};
      co.call_timeout = 500ms;
      client c(io.get_executor(), co);
      session s(c, {.ttl = 3s});
      auto opts = [] {
        worker_claim_options o;
        o.node_name = "node-a";
        return o;
      };
      {
        auto o = opts();
        o.node_name.clear();
        CHECK(message_of([&] {
                worker_claim w(s, o);
              }).rfind("worker claim node name is empty", 0) == 0);
      }
      {
        auto o = opts();
        o.datacenter = 32;
        CHECK(message_of([&] {
                worker_claim w(s, o);
              }).rfind("worker claim datacenter 32 out of the layout's range [0, 31]", 0) == 0);
        o.any_datacenter = true;  // the datacenter is then not used
        CHECK_NOTHROW((void)worker_claim(s, o));
      }
      {
        auto o = opts();
        o.first_worker = 5;
        o.last_worker = 40;
        CHECK(message_of([&] {
                worker_claim w(s, o);
              }).rfind("worker claim workers [5, 40] not a range within the layout's [0, 31]", 0) ==
              0);
        o.last_worker = 4;
        CHECK(message_of([&] {
                worker_claim w(s, o);
              }).rfind("worker claim workers [5, 4] not a range", 0) == 0);
        o.layout = worker_space::of<seckill::snowflake_layout<41, 0, 10, 12>>();
        o.last_worker = 1023;
        CHECK_NOTHROW((void)worker_claim(s, o));
      }
      {
        auto o = opts();
        o.safety_margin = 2500ms;
        CHECK(message_of([&] {
                worker_claim w(s, o);
              }).rfind("worker claim safety margin 2500 ms leaves 500 ms of the 3000 ms", 0) == 0);
      }
      worker_claim w(s, opts());
      CHECK(w.pair_count() == 32);
      CHECK_FALSE(w.valid());
      CHECK_FALSE(w.pair().has_value());
      // no live session: nothing is claimed, and no generator is made
      auto [ec, p] = co_await w.async_claim(tuple_awaitable);
      CHECK(ec == errc::session_lost);
      CHECK(w.last_error() == "worker claim needs a live session; it is idle");
      CHECK(message_of([&] {
              leased_snowflake<> ids(w);
            }).rfind("leased_snowflake needs a valid worker claim; 'node-a' holds none", 0) == 0);
      CHECK(message_of([&] { leased_snowflake<seckill::snowflake_layout<41, 0, 10, 12>> ids(w); })
                .rfind("worker claim made for datacenters [0, 31] and workers [0, 31], the "
                       "generator's layout has [0, 0] and [0, 1023]",
                       0) == 0);
      worker_claim all(s, [&] {
        auto o = opts();
        o.any_datacenter = true;
        return o;
      }());
      CHECK(all.pair_count() == 32 * 32);
    });
  }
}
