#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/worker_claim.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace integration_worker_claim {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

/// "CLAIMED <dc> <worker>" in a helper's log, if it is there yet.
bool claimed_in(const std::string& log, worker_pair& out) {
  const auto text = seckill::test::read_file(log);
  const auto at = text.find("CLAIMED ");
  if (at == std::string::npos) return false;
  std::istringstream in(text.substr(at + 8));
  return static_cast<bool>(in >> out.datacenter >> out.worker);
}

/// Claims until it succeeds or `timeout` passes; the last error otherwise.
asio::awaitable<std::error_code> claim_within(worker_claim& w, std::chrono::milliseconds timeout) {
  const auto until = steady::now() + timeout;
  for (;;) {
    auto [ec, p] = co_await w.async_claim(tuple_awaitable);
    if (!ec || steady::now() > until) co_return ec;
    co_await seckill::test::sleep_for(50ms);
  }
}
}  // namespace integration_worker_claim

TEST_SUITE("integration") {
  using namespace integration_worker_claim;

  TEST_CASE(
      "worker claim - 32 helper processes at once get 32 distinct pairs - the next one gets "
      "no_free_worker naming 32 - a killed helper's pair is free after the TTL") {
    auto& etcd = seckill::test::shared_single_node();
    seckill::detail::temp_dir logs("seckill-worker-claim");
    constexpr int nodes = 32;
    constexpr auto ttl = 2s;
    std::vector<std::unique_ptr<seckill::detail::child_process>> helpers;
    std::vector<std::string> log_of;
    for (int i = 0; i < nodes; ++i) {
      const std::string name = "node-" + std::to_string(i);
      log_of.push_back((logs.path() / (name + ".log")).string());
      // dies with the test binary, a crash included (die_with_parent, from this thread)
      helpers.push_back(
          std::make_unique<seckill::detail::child_process>(seckill::detail::child_process::options{
              {SECKILL_ETCD_HELPER, "claim", etcd.endpoint_list(), "wc32",
               std::to_string(ttl.count()), name, "3"},
              log_of.back(),
              {},
              true}));
    }
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      std::vector<worker_pair> got(nodes);
      const bool all = co_await seckill::test::eventually(
          [&] {
            for (int i = 0; i < nodes; ++i) {
              if (!claimed_in(log_of[i], got[i])) return false;
            }
            return true;
          },
          30000ms);
      if (!all) {
        for (int i = 0; i < nodes; ++i) MESSAGE(i << ": " << seckill::test::read_file(log_of[i]));
      }
      REQUIRE(all);
      const std::set<worker_pair> distinct(got.begin(), got.end());
      CHECK(distinct.size() == nodes);
      for (const auto& p : got) {
        CHECK(p.datacenter == 3);
        CHECK(p.worker <= 31);
      }
      client c(io.get_executor(), etcd.options());
      // etcd holds each pair under its winner's name
      range_options listing;
      listing.prefix = true;
      auto [rec, r] = co_await c.async_range("wc32/workers/", listing, tuple_awaitable);
      REQUIRE_FALSE(rec);
      REQUIRE(r.kvs.size() == nodes);
      for (int i = 0; i < nodes; ++i) {
        const std::string k = "wc32/workers/3/" + std::to_string(got[i].worker);
        bool found = false;
        for (const auto& kv : r.kvs) {
          if (kv.key == k) {
            found = true;
            CHECK(kv.value == "node-" + std::to_string(i));
            CHECK(kv.lease != 0);
          }
        }
        CHECK(found);
      }

      session s(c, {.ttl = ttl});
      auto [sec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      worker_claim_options o;
      o.prefix = "wc32";
      o.node_name = "late";
      o.datacenter = 3;
      o.safety_margin = 500ms;
      worker_claim late(s, o);
      auto [ec, p] = co_await late.async_claim(tuple_awaitable);
      CHECK(ec == errc::no_free_worker);
      CHECK(ec == seckill::condition::unavailable);
      CHECK(late.last_error() ==
            "all 32 (datacenter, worker) pairs of datacenter 3, workers 0-31 are taken under "
            "'wc32/workers/'");
      CHECK_FALSE(late.pair().has_value());

      // kill -9 one: its pair is free once etcd expires its lease, not before
      constexpr int victim = 7;
      helpers[victim]->kill_and_wait();
      const auto killed = steady::now();
      const auto cec = co_await claim_within(late, 8000ms);
      const auto after = steady::now() - killed;
      REQUIRE_FALSE(cec);
      MESSAGE("pair free " << std::chrono::duration<double>(after).count()
                           << " s after kill -9 (TTL 2 s)");
      REQUIRE(late.pair().has_value());
      CHECK(*late.pair() == got[victim]);
      // the lease lives at least TTL after the victim's last keepalive (every TTL / 3), and
      // etcd sweeps expired leases every 500 ms
      CHECK(after >= std::chrono::milliseconds(ttl) * 2 / 3 - 100ms);
      CHECK(after <= ttl + 1500ms);

      // the new owner issues ids on it, and its release stores the last timestamp
      leased_snowflake<> ids(late);
      const auto id = ids.next();
      CHECK(leased_snowflake<>::snowflake_type::decompose(id).worker == got[victim].worker);
      CHECK(leased_snowflake<>::snowflake_type::decompose(id).datacenter == 3);
      auto [lec, rev] = co_await late.async_release(ids.last_used_ms(), tuple_awaitable);
      CHECK_FALSE(lec);
      CHECK_FALSE(late.valid());
      std::error_code nec;
      CHECK(ids.next(nec) == -1);
      CHECK(nec == errc::worker_lost);
      const std::string released_key = "wc32/released/3/" + std::to_string(got[victim].worker);
      auto [gec, g] = co_await c.async_get(released_key, tuple_awaitable);
      REQUIRE_FALSE(gec);
      REQUIRE(g.kvs.size() == 1);
      CHECK(g.kvs.front().value == std::to_string(ids.last_used_ms()));
      const std::string worker_key = "wc32/workers/3/" + std::to_string(got[victim].worker);
      auto [wec, gone] = co_await c.async_get(worker_key, tuple_awaitable);
      CHECK_FALSE(wec);
      CHECK(gone.kvs.empty());

      // the next owner of that pair starts after the stored timestamp
      worker_claim again(s, o);
      auto [aec, ap] = co_await again.async_claim(tuple_awaitable);
      REQUIRE_FALSE(aec);
      CHECK(ap == got[victim]);
      CHECK(again.released_at_ms() == ids.last_used_ms());
      leased_snowflake<> next_ids(again);
      CHECK(next_ids.next() > id);
      co_await again.async_release(next_ids.last_used_ms(), tuple_awaitable);
      co_await s.async_close(tuple_awaitable);
    });
    for (int i = 0; i < nodes; ++i) {
      CHECK(seckill::test::read_file(log_of[i]).find("ERROR") == std::string::npos);
    }
  }

  TEST_CASE(
      "worker claim - frozen renewals - the owner stops issuing ids before etcd expires its "
      "lease and another claimer then gets the pair") {
    seckill::test::etcd_cluster etcd(1);  // its own: the test stops it
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      auto copts = etcd.options();
      copts.call_timeout = 500ms;
      client ca(io.get_executor(), copts), cb(io.get_executor(), copts);
      constexpr auto ttl = 3s;
      session sa(ca, {.ttl = ttl, .renew_after_loss = false});
      session sb(cb, {.ttl = ttl});
      auto [saec, sal] = co_await sa.async_start(tuple_awaitable);
      REQUIRE_FALSE(saec);
      auto [sbec, sbl] = co_await sb.async_start(tuple_awaitable);
      REQUIRE_FALSE(sbec);
      worker_claim_options o;
      o.prefix = "frozen";
      o.datacenter = 1;
      o.first_worker = 5;
      o.last_worker = 5;  // one pair: both want it
      o.safety_margin = 1000ms;
      o.node_name = "a";
      worker_claim a(sa, o);
      o.node_name = "b";
      worker_claim b(sb, o);
      auto [aec, ap] = co_await a.async_claim(tuple_awaitable);
      REQUIRE_FALSE(aec);
      CHECK(ap == worker_pair{1, 5});
      auto [bec, bp] = co_await b.async_claim(tuple_awaitable);
      CHECK(bec == errc::no_free_worker);
      CHECK(b.last_error().rfind("all 1 (datacenter, worker) pairs of datacenter 1, workers 5-5",
                                 0) == 0);
      leased_snowflake<> ids(a);
      std::error_code ec;
      const auto first = ids.next(ec);
      REQUIRE_FALSE(ec);
      // it stays valid across keepalives
      co_await seckill::test::sleep_for(ttl);
      CHECK(a.valid());

      // stop etcd: no keepalive succeeds any more
      etcd.freeze(0);
      const auto frozen = steady::now();
      const auto until = a.valid_until();
      const auto last_renewal = sa.last_renewal();
      CHECK(until == last_renewal + ttl - o.safety_margin);
      std::int64_t last_id = first;
      auto last_ok = frozen;
      std::error_code fail;
      while (!fail) {
        const auto id = ids.next(fail);
        if (!fail) {
          last_id = id;
          last_ok = steady::now();
        }
        co_await seckill::test::sleep_for(2ms);
        REQUIRE(steady::now() - frozen < ttl + 1000ms);
      }
      const auto stopped = steady::now();
      CHECK(fail == errc::worker_lost);
      CHECK(last_ok < until);
      CHECK(stopped - until < 200ms);  // it stopped as the window closed
      CHECK_FALSE(a.pair().has_value());
      // etcd cannot expire the lease before TTL after the last keepalive it saw, which
      // was sent at last_renewal or later: the margin separates the two
      CHECK(last_renewal + ttl - stopped >= o.safety_margin - 200ms);
      MESSAGE(
          "stopped issuing " << std::chrono::duration<double>(last_renewal + ttl - stopped).count()
                             << " s before the lease could expire");
      // the owner's session reports the loss by itself, then etcd resumes and expires the lease
      REQUIRE(co_await seckill::test::eventually([&] { return !sa.alive(); }, 5000ms));
      etcd.thaw(0);
      const auto cec = co_await claim_within(b, 10000ms);
      REQUIRE_FALSE(cec);
      const auto won = steady::now();
      // won while b's lease was known alive; it stays so with b's keepalives (etcd has just
      // resumed: b's may still be catching up)
      REQUIRE(co_await seckill::test::eventually([&] { return b.valid(); }, 3000ms));
      CHECK(*b.pair() == worker_pair{1, 5});
      CHECK(won - stopped >= o.safety_margin);
      CHECK_FALSE(a.valid());
      leased_snowflake<> ids_b(b);
      const auto id_b = ids_b.next();
      CHECK(id_b > last_id);
      CHECK(ids.next(ec) == -1);
      CHECK(ec == errc::worker_lost);
      // a's release finds the pair gone from it, and leaves b's key alone
      auto [rec, rev] = co_await a.async_release(ids.last_used_ms(), tuple_awaitable);
      CHECK(rec == errc::worker_lost);
      CHECK(b.valid());
      auto [gec, g] = co_await cb.async_get("frozen/workers/1/5", tuple_awaitable);
      REQUIRE_FALSE(gec);
      REQUIRE(g.kvs.size() == 1);
      CHECK(g.kvs.front().value == "b");
      co_await b.async_release(ids_b.last_used_ms(), tuple_awaitable);
      co_await sb.async_close(tuple_awaitable);
    });
  }

  TEST_CASE(
      "worker claim - a lease not renewed within TTL minus the margin claims nothing until a "
      "keepalive succeeds") {
    seckill::test::etcd_cluster etcd(1);  // its own: the test stops it
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      auto copts = etcd.options();
      copts.call_timeout = 500ms;
      client c(io.get_executor(), copts);
      session s(c, {.ttl = 3s});
      auto [sec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      worker_claim_options o;
      o.prefix = "stale";
      o.node_name = "n";
      o.safety_margin = 1000ms;
      worker_claim w(s, o);
      etcd.freeze(0);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return steady::now() - s.last_renewal() > 2050ms; }, 3000ms));
      CHECK(s.alive());  // the session is not lost yet: that comes at the TTL
      auto [ec, p] = co_await w.async_claim(tuple_awaitable);
      CHECK(ec == errc::worker_lost);
      CHECK(w.last_error().rfind("worker claim before claiming: the session's last renewal was ",
                                 0) == 0);
      CHECK(w.last_error().find("ms ago, not within TTL - margin (2000 ms)") != std::string::npos);
      CHECK_FALSE(w.pair().has_value());
      etcd.thaw(0);
      const auto cec = co_await claim_within(w, 5000ms);
      REQUIRE_FALSE(cec);
      CHECK(w.valid());
      CHECK(s.lease() == lease);  // the same lease, renewed in time
      co_await s.async_close(tuple_awaitable);
    });
  }
}
