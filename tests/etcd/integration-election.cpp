#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <vector>

namespace integration_election {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

struct campaign_result {
  bool done = false;
  std::error_code ec;
  leader_info info;
};

asio::awaitable<void> campaign(election& e, std::string value, campaign_result& out) {
  auto [ec, info] = co_await e.async_campaign(value, tuple_awaitable);
  out.ec = ec;
  out.info = info;
  out.done = true;
}

asio::awaitable<void> campaign_cancellable(election& e, std::string value, campaign_result& out,
                                           asio::cancellation_signal& cancel) {
  auto [ec, info] = co_await e.async_campaign(value, asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
  out.ec = ec;
  out.info = info;
  out.done = true;
}

asio::awaitable<void> record(watch_stream& s, std::vector<std::string>& values) {
  for (;;) {
    auto [ec, r] = co_await s.async_next(tuple_awaitable);
    if (ec) co_return;
    for (const auto& e : r.events) values.push_back(e.kv.value);
  }
}

/// A helper process campaigning in the election.
struct candidate {
  std::string name;
  std::string log;
  seckill::detail::child_process proc;
};
}  // namespace integration_election


TEST_SUITE("integration") {
  using namespace integration_election;
  TEST_CASE("campaign proclaim leader observe and resign with fencing tokens") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session sa(c, {.ttl = 5s}), sb(c, {.ttl = 5s});
      co_await sa.async_start(tuple_awaitable);
      co_await sb.async_start(tuple_awaitable);
      election a(sa, "elect/shop"), b(sb, "elect/shop");
      watcher w(c);
      election_observer obs(w, "elect/shop");

      auto [oe, none] = co_await obs.async_next(tuple_awaitable);
      REQUIRE_FALSE(oe);
      CHECK_FALSE(none.has_value());
      auto [aec, ai] = co_await a.async_campaign("node-a", tuple_awaitable);
      REQUIRE_FALSE(aec);
      CHECK(a.is_leader());
      CHECK(a.key() == "elect/shop/" + seckill::etcd::detail::lease_hex(sa.lease()));
      CHECK(a.fencing_token() == ai.create_revision);
      CHECK(ai.value == "node-a");
      auto [oe1, l1] = co_await obs.async_next(tuple_awaitable);
      REQUIRE(l1.has_value());
      CHECK(l1->value == "node-a");

      campaign_result br;
      asio::co_spawn(io, campaign(b, "node-b", br), asio::detached);
      co_await seckill::test::sleep_for(300ms);
      CHECK_FALSE(br.done);  // b waits for a
      CHECK_FALSE(b.is_leader());
      auto [pbe, pb] = co_await b.async_proclaim("b-now", tuple_awaitable);
      CHECK(pbe == seckill::errc::not_leader);

      auto [pae, pa] = co_await a.async_proclaim("node-a v2", tuple_awaitable);
      CHECK_FALSE(pae);
      auto [oe2, l2] = co_await obs.async_next(tuple_awaitable);
      REQUIRE(l2.has_value());
      CHECK(l2->value == "node-a v2");
      CHECK(l2->create_revision == ai.create_revision);  // same leadership, same token
      auto [le, cur] = co_await a.async_leader(tuple_awaitable);
      REQUIRE(cur.has_value());
      CHECK(cur->value == "node-a v2");

      const auto fence_a = a.fence();
      auto [re, rr] = co_await a.async_resign(tuple_awaitable);
      CHECK_FALSE(re);
      CHECK_FALSE(a.is_leader());
      CHECK(co_await seckill::test::eventually([&] { return br.done; }, 3000ms));
      REQUIRE_FALSE(br.ec);
      CHECK(b.is_leader());
      CHECK(br.info.create_revision > ai.create_revision);  // fencing tokens grow
      auto [oe3, l3] = co_await obs.async_next(tuple_awaitable);
      REQUIRE(l3.has_value());
      CHECK(l3->value == "node-b");
      // a write fenced by the old leadership fails; b's succeeds
      txn_request old;
      old.compares = {fence_a};
      old.success = {put_request{"guarded", "from a", {}}};
      auto [te, tr] = co_await c.async_txn(old, tuple_awaitable);
      REQUIRE_FALSE(te);
      CHECK_FALSE(tr.succeeded);
      txn_request fresh;
      fresh.compares = {b.fence()};
      fresh.success = {put_request{"guarded", "from b", {}}};
      std::tie(te, tr) = co_await c.async_txn(fresh, tuple_awaitable);
      CHECK(tr.succeeded);
      co_await sa.async_close(tuple_awaitable);
      co_await sb.async_close(tuple_awaitable);
    });
  }

  TEST_CASE("each candidate waits for its predecessor only - a cancelled campaign deletes its key") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session s1(c, {.ttl = 5s}), s2(c, {.ttl = 5s}), s3(c, {.ttl = 5s});
      for (auto* s : {&s1, &s2, &s3}) co_await s->async_start(tuple_awaitable);
      election e1(s1, "el"), e2(s2, "el"), e3(s3, "el");
      auto [ec, first] = co_await e1.async_campaign("1", tuple_awaitable);
      REQUIRE_FALSE(ec);
      campaign_result r2, r3;
      asio::cancellation_signal cancel2, cancel3;
      asio::co_spawn(io, campaign_cancellable(e2, "2", r2, cancel2), asio::detached);
      co_await seckill::test::sleep_for(100ms);
      asio::co_spawn(io, campaign_cancellable(e3, "3", r3, cancel3), asio::detached);
      co_await seckill::test::sleep_for(200ms);
      range_options all;
      all.prefix = true;
      auto [re, keys] = co_await c.async_range("el/", all, tuple_awaitable);
      CHECK(keys.kvs.size() == 3);
      // the middle candidate gives up: the last one now waits for the first, and does not lead
      cancel2.emit(asio::cancellation_type::terminal);
      CHECK(co_await seckill::test::eventually([&] { return r2.done; }, 2000ms));
      CHECK(r2.ec == seckill::errc::operation_aborted);
      std::tie(re, keys) = co_await c.async_range("el/", all, tuple_awaitable);
      CHECK(keys.kvs.size() == 2);
      co_await seckill::test::sleep_for(300ms);
      CHECK_FALSE(r3.done);
      CHECK(e1.is_leader());
      co_await e1.async_resign(tuple_awaitable);
      CHECK(co_await seckill::test::eventually([&] { return r3.done; }, 2000ms));
      CHECK_FALSE(r3.ec);
      CHECK(e3.is_leader());
      CHECK(r3.info.create_revision > first.create_revision);
      for (auto* s : {&s1, &s2, &s3}) co_await s->async_close(tuple_awaitable);
    });
  }

  TEST_CASE("leadership ends with the session - a revoked lease deposes the leader and the next one leads") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      session sa(c, {.ttl = 2s, .renew_after_loss = false}), sb(c, {.ttl = 2s});
      co_await sa.async_start(tuple_awaitable);
      co_await sb.async_start(tuple_awaitable);
      election a(sa, "lead"), b(sb, "lead");
      auto [ec, ai] = co_await a.async_campaign("a", tuple_awaitable);
      REQUIRE_FALSE(ec);
      campaign_result br;
      asio::co_spawn(io, campaign(b, "b", br), asio::detached);
      co_await c.async_lease_revoke(sa.lease(), tuple_awaitable);
      CHECK(co_await seckill::test::eventually([&] { return br.done; }, 3000ms));
      CHECK_FALSE(br.ec);
      CHECK(co_await seckill::test::eventually([&] { return !a.is_leader(); }, 2000ms));
      CHECK(a.fencing_token() == 0);
      auto [pe, p] = co_await a.async_proclaim("still me?", tuple_awaitable);
      CHECK(pe == seckill::errc::not_leader);
      auto [ce, again] = co_await a.async_campaign("a", tuple_awaitable);
      CHECK(ce == seckill::errc::session_lost);
      co_await sb.async_close(tuple_awaitable);
    });
  }
}
