#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <doctest/doctest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
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
  auto [ec, info] = co_await e.async_campaign(
      value, asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
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

/// A helper process campaigning in the election; it dies with the test binary
/// (die_with_parent: started from the test's thread).
struct candidate {
  std::string name;
  std::string log;
  std::unique_ptr<seckill::detail::child_process> proc;
};

/// The next response of `s`, or errc::timed_out when none came within `timeout`.
asio::awaitable<std::pair<std::error_code, watch_response>> next_within(
    watch_stream& s, std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto r = co_await (s.async_next(tuple_awaitable) || timer.async_wait(tuple_awaitable));
  std::pair<std::error_code, watch_response> out;
  if (r.index() == 1) {
    out.first = seckill::errc::timed_out;
  } else {
    out.first = std::get<0>(std::get<0>(r));
    out.second = std::move(std::get<1>(std::get<0>(r)));
  }
  co_return out;
}

/// "<token> <name> <seq>", the value the helper writes to the guard key.
struct action {
  std::int64_t token = 0;
  std::string name;
};
action parse_action(const std::string& value) {
  action a;
  std::istringstream in(value);
  in >> a.token >> a.name;
  return a;
}
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
      CHECK(pbe == seckill::etcd::errc::not_leader);

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

  TEST_CASE(
      "each candidate waits for its predecessor only - a cancelled campaign deletes its key") {
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

  TEST_CASE(
      "leadership ends with the session - a revoked lease deposes the leader and the next one "
      "leads") {
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
      CHECK(pe == seckill::etcd::errc::not_leader);
      auto [ce, again] = co_await a.async_campaign("a", tuple_awaitable);
      CHECK(ce == seckill::etcd::errc::session_lost);
      co_await sb.async_close(tuple_awaitable);
    });
  }

  TEST_CASE(
      "3 members - kill -9 the leading helper 20 times - a new leader within TTL + 1 s and never "
      "two acting at once") {
    seckill::test::etcd_cluster etcd(3);
    seckill::detail::temp_dir logs("seckill-election");
    constexpr int rounds = 20;
    constexpr auto ttl = 2s;
    std::map<std::string, candidate> candidates;
    int spawned = 0;
    // each helper campaigns through its own member first, writes "<token> <name> <seq>" to
    // "guard" every 20 ms in a transaction fenced by its leader key, and logs "ACT <token> OK"
    auto spawn = [&] {
      const int n = spawned++;
      const std::string name = "c" + std::to_string(n);
      std::string endpoints;
      for (std::size_t i = 0; i < etcd.size(); ++i) {
        endpoints += (i == 0 ? "" : ",") + etcd.endpoint_of((n + i) % etcd.size()).to_string();
      }
      const std::string log = (logs.path() / (name + ".log")).string();
      const seckill::detail::child_process::options args{
          {SECKILL_ETCD_HELPER, "elect", endpoints, "lead", std::to_string(ttl.count()), "guard",
           name},
          log,
          {},
          true};
      candidates.emplace(
          name, candidate{name, log, std::make_unique<seckill::detail::child_process>(args)});
    };
    for (int i = 0; i < 3; ++i) spawn();

    std::vector<event> history;  // every change of "guard" and "lead/...", in revision order
    std::vector<std::chrono::steady_clock::duration> handovers;
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      watcher w(c);
      watch_options o;
      o.range_end = "lead0";  // ["guard", "lead0"): the guard key and the candidates' keys
      o.start_revision = 1;
      auto [ec, s] = co_await w.async_watch("guard", o, tuple_awaitable);
      REQUIRE_FALSE(ec);
      std::int64_t last_token = 0;
      auto killed_at = std::chrono::steady_clock::now();
      for (int round = 0; round <= rounds; ++round) {
        CAPTURE(round);
        // wait for the first action under a new token: the next leader acting
        action next;
        while (next.token <= last_token) {
          auto [nec, r] = co_await next_within(s, 15s);
          REQUIRE_FALSE(nec);
          for (auto& e : r.events) {
            if (e.kv.key == "guard" && e.type == event::kind::put) {
              const auto a = parse_action(e.kv.value);
              if (a.token > last_token && next.token <= last_token) next = a;
            }
            history.push_back(std::move(e));
          }
        }
        if (round > 0) handovers.push_back(std::chrono::steady_clock::now() - killed_at);
        if (round == rounds) break;
        REQUIRE(candidates.count(next.name) == 1);
        candidates.at(next.name).proc->kill_and_wait();
        killed_at = std::chrono::steady_clock::now();
        last_token = next.token;
        spawn();
      }
      // stop everyone, then take the history up to now
      for (auto& [name, cand] : candidates) cand.proc->kill_and_wait();
      auto [gec, g] = co_await c.async_get("guard", tuple_awaitable);
      REQUIRE_FALSE(gec);
      while (history.empty() || history.back().kv.mod_revision < g.header.revision) {
        auto [nec, r] = co_await next_within(s, 5s);
        if (nec) break;  // nothing after the last action
        for (auto& e : r.events) history.push_back(std::move(e));
      }
    });

    REQUIRE(handovers.size() == static_cast<std::size_t>(rounds));
    const auto slowest = *std::max_element(handovers.begin(), handovers.end());
    MESSAGE("slowest of " << rounds << " handovers after kill -9: "
                          << std::chrono::duration<double>(slowest).count() << " s (TTL 2 s)");
    for (const auto& h : handovers) CHECK(h <= ttl + 1s);

    // Replay the history: at every guard write the writer's token is the create
    // revision of the lowest live candidate key, i.e. the one valid leadership.
    std::map<std::string, std::int64_t> live;  // candidate key -> create revision
    std::map<std::int64_t, int> acted;         // token -> guard writes
    std::int64_t previous = 0;
    bool in_order = true, fenced = true;
    for (const auto& e : history) {
      in_order = in_order && e.kv.mod_revision > previous;
      previous = e.kv.mod_revision;
      if (e.kv.key.rfind("lead/", 0) == 0) {
        if (e.type == event::kind::put) {
          live[e.kv.key] = e.kv.create_revision;
        } else {
          live.erase(e.kv.key);
        }
        continue;
      }
      if (e.type != event::kind::put) continue;
      const auto a = parse_action(e.kv.value);
      std::int64_t lowest = 0;
      for (const auto& [key, rev] : live) lowest = lowest == 0 ? rev : std::min(lowest, rev);
      if (a.token != lowest) {
        fenced = false;
        MESSAGE("guard write at revision " << e.kv.mod_revision << " by token " << a.token
                                           << " while the leader's token was " << lowest);
      }
      ++acted[a.token];
    }
    CHECK(in_order);
    CHECK(fenced);
    CHECK(acted.size() ==
          static_cast<std::size_t>(rounds + 1));  // one leadership per round, each acted

    // every action a helper saw succeed is in the history (a killed one may not have logged its
    // last)
    std::map<std::int64_t, int> logged;
    for (const auto& [name, cand] : candidates) {
      std::istringstream in(seckill::test::read_file(cand.log));
      std::string word, result;
      std::int64_t token = 0;
      for (std::string line; std::getline(in, line);) {
        std::istringstream l(line);
        if (l >> word >> token >> result && word == "ACT" && result == "OK") ++logged[token];
      }
    }
    // (a leader killed right after its first action may have logged none)
    CHECK(logged.size() >= 2);
    for (const auto& [token, n] : logged) {
      CAPTURE(token);
      CHECK(acted[token] >= n);
      CHECK(acted[token] <= n + 1);
    }
  }
}
