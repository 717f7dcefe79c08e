// leader_duties on the shared etcd with an etcd_store: one leader reaps and
// audits, a deposed leader is fenced out, and a leader killed -9 with held
// reservations is replaced and its holds come back exactly once.
#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/leader_duties.hpp>
#include <seckill/store/reconcile.hpp>

#include <doctest/doctest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace integration_leader_duties {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using store_type = etcd_store<>;
using duties_type = leader_duties<store_type>;

/// A prefix no other test of this binary uses.
std::string unique(const std::string& name) {
  static int counter = 0;
  return "duties-test/" + name + "-" + std::to_string(++counter) + "/";
}

/// Fast periods, so a test sees a few passes in a second.
leader_duties_options fast(const std::string& election, const std::string& name) {
  leader_duties_options o;
  o.election = election;
  o.name = name;
  o.ttl = 2s;
  o.reap_period = 100ms;
  o.audit_period = 200ms;
  o.retry_interval = 100ms;
  return o;
}

/// A `leader_duties` running until stopped, with what its run completed with.
struct runner {
  duties_type& duties;
  asio::cancellation_signal stop_signal;
  std::optional<std::error_code> done;
  explicit runner(duties_type& d) : duties(d) {
    duties.async_run(asio::bind_cancellation_slot(stop_signal.slot(),
                                                  [this](std::error_code ec) { done = ec; }));
  }
  void stop() { stop_signal.emit(asio::cancellation_type::terminal); }
};

asio::awaitable<void> must_reserve(store_type& store, const std::string& sku, std::int64_t order,
                                   std::chrono::milliseconds hold, const std::string& user) {
  seckill::reserve_request r;
  r.order_id = order;
  r.hold = hold;
  r.user = user;
  auto [ec, res] = co_await store.async_reserve(sku, r, tuple_awaitable);
  REQUIRE_MESSAGE(!ec, store.last_error());
  REQUIRE(res.status == seckill::reserve_status::reserved);
}

asio::awaitable<seckill::stock_level> level_of(store_type& store, const std::string& sku) {
  auto [ec, level] = co_await store.async_stock(sku, tuple_awaitable);
  REQUIRE_MESSAGE(!ec, store.last_error());
  co_return level;
}

/// The lines of a helper's log that start with `word`, split into words.
std::vector<std::vector<std::string>> lines_of(const std::string& log, const std::string& word) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(seckill::test::read_file(log));
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::vector<std::string> words;
    for (std::string w; l >> w;) words.push_back(w);
    if (!words.empty() && words[0] == word) out.push_back(std::move(words));
  }
  return out;
}

/// A helper process running leader_duties; it dies with the test binary.
struct duty_helper {
  std::string name;
  std::string log;
  std::unique_ptr<seckill::detail::child_process> proc;
  bool killed = false;
  /// The highest token it announced as leader (0: none yet).
  std::int64_t leader_token() const {
    std::int64_t t = 0;
    for (const auto& w : lines_of(log, "LEADER"))
      if (w.size() > 1) t = std::max<std::int64_t>(t, std::stoll(w[1]));
    return t;
  }
  /// Holds it said it reaped under `token`.
  std::int64_t reaped_under(std::int64_t token) const {
    std::int64_t n = 0;
    for (const auto& w : lines_of(log, "REAPED"))
      if (w.size() > 2 && std::stoll(w[2]) == token) n += std::stoll(w[1]);
    return n;
  }
};
}  // namespace integration_leader_duties

TEST_SUITE("integration") {
  using namespace integration_leader_duties;

  TEST_CASE("leader_duties - bad options are refused with the value seen") {
    auto& etcd = seckill::test::shared_single_node();
    asio::io_context io;
    client c(io.get_executor(), etcd.options());
    store_type store(io.get_executor(), etcd.options(), {.prefix = unique("options")});
    auto refused = [&](leader_duties_options o, const std::string& message) {
      CAPTURE(message);
      CHECK_THROWS_WITH_AS(duties_type(c, store, {}, o), (message + ": invalid argument").c_str(),
                           seckill::error);
    };
    const auto good = fast("duties-test/options", "n");
    auto o = good;
    o.name.clear();
    refused(o, "leader_duties: name is empty");
    o = good;
    o.election.clear();
    refused(o, "leader_duties: election prefix is empty");
    o = good;
    o.ttl = 0s;
    refused(o, "leader_duties: ttl 0 s out of [1, 3600] s");
    o.ttl = 3601s;
    refused(o, "leader_duties: ttl 3601 s out of [1, 3600] s");
    o = good;
    o.reap_period = 0ms;
    refused(o, "leader_duties: reap_period 0 ms out of (0, 31622400000] ms");
    o = good;
    o.audit_period = -5ms;
    refused(o, "leader_duties: audit_period -5 ms out of (0, 31622400000] ms");
    o = good;
    o.retry_interval = seckill::max_hold + 1ms;
    refused(o, "leader_duties: retry_interval 31622400001 ms out of (0, 31622400000] ms");
    o = good;
    o.reap_batch = 0;
    refused(o, "leader_duties: reap_batch 0: want at least 1");
    o = good;
    o.audit_attempts = 0;
    refused(o, "leader_duties: audit_attempts 0: want at least 1");
    CHECK_NOTHROW(duties_type(c, store, {}, good));
  }

  TEST_CASE(
      "leader_duties - one of two candidates leads - reaps with its token and audits - a stopped "
      "leader hands over and its token is fenced out") {
    auto& etcd = seckill::test::shared_single_node();
    const std::string election = unique("election");
    const std::string sku = "tea";
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      store_type store(io.get_executor(), etcd.options(), {.prefix = unique("store")});
      auto [sec] = co_await store.async_set_stock(sku, 10, tuple_awaitable);
      REQUIRE_FALSE(sec);
      duties_type a(c, store, {sku}, fast(election, "a"));
      duties_type b(c, store, {sku}, fast(election, "b"));
      std::vector<std::string> terms;
      a.on_term([&](std::int64_t, bool leading, std::error_code) {
        terms.push_back(leading ? "a leads" : "a ends");
      });
      runner ra(a);
      CHECK(co_await seckill::test::eventually([&] { return a.is_leader(); }, 5000ms));
      runner rb(b);  // b campaigns after a: it follows
      co_await seckill::test::sleep_for(300ms);
      CHECK_FALSE(b.is_leader());
      const std::int64_t first = a.fencing_token();
      CHECK(first > 0);
      CHECK(a.reaper().fence() == first);

      // a sale: one sold, two held for 300 ms and abandoned
      co_await must_reserve(store, sku, 1, 300ms, "ann");
      co_await must_reserve(store, sku, 2, 300ms, "bob");
      co_await must_reserve(store, sku, 3, 60s, "cid");
      auto [cec, settled] = co_await store.async_commit(sku, 3, tuple_awaitable);
      REQUIRE_FALSE(cec);
      CHECK(co_await seckill::test::eventually([&] { return a.reaper().reaped() == 2u; }, 3000ms));
      const auto level = co_await level_of(store, sku);
      CHECK(level.remaining == 9);
      CHECK(level.reserved == 0);
      CHECK(level.committed == 1);
      CHECK(b.reaper().reaped() == 0u);  // the follower never reaps
      CHECK(b.reaper().passes() == 0u);
      // a audits; b does not
      CHECK(co_await seckill::test::eventually(
          [&] { return a.last_audit(sku) && a.last_audit(sku)->report.committed_units == 1; },
          3000ms));
      CHECK(a.last_audit(sku)->ok());
      CHECK(a.last_audit(sku)->token == first);
      CHECK(a.failed_audits() == 0u);
      CHECK_FALSE(b.last_audit(sku).has_value());

      // a stops: it resigns, b leads at once with a higher token and reaps
      ra.stop();
      CHECK(co_await seckill::test::eventually([&] { return ra.done.has_value(); }, 3000ms));
      CHECK(*ra.done == seckill::errc::operation_aborted);
      CHECK_FALSE(a.is_leader());
      CHECK(co_await seckill::test::eventually([&] { return b.is_leader(); }, 1500ms));
      CHECK(b.fencing_token() > first);
      const auto passes = b.reaper().passes();
      CHECK(
          co_await seckill::test::eventually([&] { return b.reaper().passes() > passes; }, 3000ms));
      // the old token is refused now, and takes nothing
      co_await must_reserve(store, sku, 4, 1ms, "dan");
      co_await seckill::test::sleep_for(5ms);
      auto [fec, n] = co_await store.async_reap_expired(sku, 10, first, tuple_awaitable);
      CHECK(fec == seckill::errc::fenced_out);
      CHECK(n == 0u);
      CHECK(store.last_error().find("fence " + std::to_string(b.fencing_token())) !=
            std::string::npos);
      CHECK(co_await seckill::test::eventually([&] { return b.reaper().reaped() == 1u; },
                                               3000ms));  // b's, not the refused one
      CHECK(terms == std::vector<std::string>{"a leads", "a ends"});
      rb.stop();
      CHECK(co_await seckill::test::eventually([&] { return rb.done.has_value(); }, 3000ms));
    });
  }

  TEST_CASE(
      "leader_duties - a leader whose reap is fenced out stops at once and campaigns again - a "
      "failed audit reaches the hook") {
    auto& etcd = seckill::test::shared_single_node();
    const std::string election = unique("election");
    const std::string store_prefix = unique("store");
    const std::string sku = "cup";
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      store_type store(io.get_executor(), etcd.options(), {.prefix = store_prefix});
      auto [sec] = co_await store.async_set_stock(sku, 5, tuple_awaitable);
      REQUIRE_FALSE(sec);
      duties_type a(c, store, {sku}, fast(election, "a"));
      std::vector<std::pair<std::string, seckill::reconcile_report>> failed;
      a.on_audit_failed(
          [&](const std::string& s, const audit_result& r) { failed.emplace_back(s, r.report); });
      std::vector<std::error_code> ended;
      a.on_term([&](std::int64_t, bool leading, std::error_code why) {
        if (!leading) ended.push_back(why);
      });
      runner ra(a);
      CHECK(co_await seckill::test::eventually([&] { return a.reaper().passes() > 0; }, 5000ms));
      const std::int64_t first = a.fencing_token();
      REQUIRE(first > 0);
      // A newer leadership's reap (a token above a's; etcd's revision has
      // passed it, so a's next campaign gets a higher one still).
      auto [gec, now] = co_await c.async_get(election, tuple_awaitable);
      REQUIRE_FALSE(gec);
      const std::int64_t newer = now.header.revision;
      REQUIRE(newer > first);
      auto [fec, n] = co_await store.async_reap_expired(sku, 10, newer, tuple_awaitable);
      REQUIRE_FALSE(fec);
      CHECK(co_await seckill::test::eventually([&] { return a.fenced_outs() == 1u; }, 3000ms));
      CHECK(a.last_error().find("fenced out") != std::string::npos);
      CHECK(co_await seckill::test::eventually([&] { return a.terms() == 2u; }, 3000ms));
      CHECK(a.fencing_token() > newer);
      REQUIRE(ended.size() == 1u);
      CHECK(ended[0] == seckill::errc::fenced_out);
      const auto passes = a.reaper().passes();
      CHECK(
          co_await seckill::test::eventually([&] { return a.reaper().passes() > passes; }, 3000ms));
      CHECK(a.reaper().last_error() == seckill::errc::fenced_out);  // the refused one, not later

      // A unit committed without its order (written over the stock record):
      // the audit fails, twice read, and the hook hears of it.
      auto level = co_await level_of(store, sku);
      const std::string stock_key = store_prefix + sku + "/stock";
      const std::string bad = R"({"remaining":)" + std::to_string(level.remaining - 1) +
                              R"(,"reserved":)" + std::to_string(level.reserved) +
                              R"(,"committed":)" + std::to_string(level.committed + 1) + "}";
      auto [pec, put] = co_await c.async_put(stock_key, bad, tuple_awaitable);
      REQUIRE_FALSE(pec);
      CHECK(co_await seckill::test::eventually([&] { return !failed.empty(); }, 3000ms));
      REQUIRE_FALSE(failed.empty());
      CHECK(failed.front().first == sku);
      CHECK(failed.front().second.committed_units == 1);
      CHECK(failed.front().second.recorded_units == 0);
      CHECK(a.failed_audits() >= 1u);
      CHECK_FALSE(a.last_audit(sku)->ok());
      CHECK(a.last_audit(sku)->settled);
      CHECK(a.last_audit(sku)->failed());
      ra.stop();
      CHECK(co_await seckill::test::eventually([&] { return ra.done.has_value(); }, 3000ms));
    });
  }

  TEST_CASE(
      "leader_duties - kill -9 the leading helper during a sale with held reservations - the next "
      "leader reaps them within hold + TTL + 1 s - every unit back exactly once") {
    auto& etcd = seckill::test::shared_single_node();
    seckill::detail::temp_dir logs("seckill-duties");
    const std::string election = unique("kill-election");
    const std::string store_prefix = unique("kill-store");
    constexpr auto ttl = 2s;
    constexpr auto hold = 1000ms;
    constexpr int rounds = 3;
    constexpr std::int64_t total = 40;
    constexpr int buyers = 6;  // per round; every third buys, the rest abandon their hold
    const std::vector<std::string> skus{"pen", "ink"};
    std::map<std::string, duty_helper> helpers;
    int spawned = 0;
    auto spawn = [&] {
      const std::string name = "h" + std::to_string(spawned++);
      const std::string log = (logs.path() / (name + ".log")).string();
      std::vector<std::string> argv{SECKILL_ETCD_HELPER,
                                    "duties",
                                    etcd.endpoint_of(0).to_string(),
                                    election,
                                    std::to_string(ttl.count()),
                                    store_prefix,
                                    name};
      argv.insert(argv.end(), skus.begin(), skus.end());
      const seckill::detail::child_process::options args{argv, log, {}, true};
      helpers.emplace(
          name, duty_helper{name, log, std::make_unique<seckill::detail::child_process>(args)});
    };
    for (int i = 0; i < 3; ++i) spawn();

    std::vector<steady::duration> recoveries;
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      store_type store(io.get_executor(), etcd.options(), {.prefix = store_prefix});
      for (const auto& sku : skus) {
        auto [sec] = co_await store.async_set_stock(sku, total, tuple_awaitable);
        REQUIRE_FALSE(sec);
      }
      std::map<std::string, std::int64_t> committed;  // per SKU, as the buyers were told
      std::map<std::string, std::vector<std::int64_t>> abandoned;
      std::int64_t last_token = 0;
      std::int64_t order = 0;
      for (int round = 0; round < rounds; ++round) {
        CAPTURE(round);
        // the current leader: the helper announcing the highest token
        std::string leader;
        std::int64_t token = 0;
        const auto until = steady::now() + 15s;
        while (token <= last_token && steady::now() < until) {
          for (const auto& [name, h] : helpers) {
            if (h.killed) continue;
            const auto t = h.leader_token();
            if (t > token) {
              token = t;
              leader = name;
            }
          }
          if (token <= last_token) co_await seckill::test::sleep_for(20ms);
        }
        REQUIRE_MESSAGE(token > last_token, "no new leader within 15 s");
        // a sale: each buyer holds one unit of each SKU; every third pays
        for (int b = 0; b < buyers; ++b) {
          ++order;
          const std::string user = "u" + std::to_string(order);
          for (const auto& sku : skus) {
            co_await must_reserve(store, sku, order, hold, user);
            if (b % 3 == 0) {
              auto [cec, r] = co_await store.async_commit(sku, order, tuple_awaitable);
              REQUIRE_MESSAGE(!cec, store.last_error());
              ++committed[sku];
            } else {
              abandoned[sku].push_back(order);
            }
          }
        }
        // kill -9 the leader while the holds are still held
        auto& victim = helpers.at(leader);
        for (const auto& sku : skus) {
          const auto held = co_await level_of(store, sku);
          CHECK(held.reserved > 0);
        }
        victim.proc->kill_and_wait();
        victim.killed = true;
        const auto killed_at = steady::now();
        last_token = token;
        spawn();
        // the next leader gives every abandoned hold back
        bool all_back = false;
        while (!all_back && steady::now() - killed_at < hold + ttl + 5s) {
          all_back = true;
          for (const auto& sku : skus) {
            const auto level = co_await level_of(store, sku);
            all_back = all_back && level.reserved == 0;
          }
          if (!all_back) co_await seckill::test::sleep_for(20ms);
        }
        REQUIRE(all_back);
        recoveries.push_back(steady::now() - killed_at);
        CHECK(recoveries.back() <= hold + ttl + 1s);
        // by a leadership after the killed one, which says so (it polls its counter)
        auto reaped_by_next = [&] {
          std::int64_t n = 0;
          for (const auto& [name, h] : helpers) {
            if (h.killed) continue;
            const auto t = h.leader_token();
            if (t > token) n += h.reaped_under(t);
          }
          return n;
        };
        CHECK(co_await seckill::test::eventually([&] { return reaped_by_next() > 0; }, 2000ms));
        // exact stock: every abandoned unit back once, every sold one sold
        for (const auto& sku : skus) {
          CAPTURE(sku);
          const auto level = co_await level_of(store, sku);
          CHECK(level.committed == committed[sku]);
          CHECK(level.remaining == total - committed[sku]);
          CHECK(level.remaining + level.reserved + level.committed == total);
        }
      }
      // What each buyer was told against what the store holds: the paid
      // orders are recorded, the abandoned ones rolled back (a late commit is
      // refused), and the audit balances.
      for (const auto& sku : skus) {
        CAPTURE(sku);
        for (const auto id : abandoned[sku]) {
          CAPTURE(id);
          auto [ec, r] = co_await store.async_commit(sku, id, tuple_awaitable);
          CHECK(ec == seckill::errc::order_rolled_back);
        }
        auto [rec, report] = co_await seckill::async_reconcile(store, sku, tuple_awaitable);
        REQUIRE_FALSE(rec);
        CHECK(report.ok());
        CHECK(report.committed_units == committed[sku]);
        CHECK(report.orders == static_cast<std::size_t>(committed[sku]));
        const auto level = co_await level_of(store, sku);
        CHECK(level.remaining == total - committed[sku]);
      }
    });
    for (auto& [name, h] : helpers) h.proc->kill_and_wait();
    // no helper's audit failed, and no leadership reaped under a stale token
    for (const auto& [name, h] : helpers) {
      CAPTURE(name);
      const auto audits = lines_of(h.log, "AUDIT");
      std::string said;
      for (const auto& words : audits)
        for (const auto& w : words) said += w + " ";
      CHECK_MESSAGE(audits.empty(), said);
    }
    REQUIRE(recoveries.size() == static_cast<std::size_t>(rounds));
    const auto slowest = *std::max_element(recoveries.begin(), recoveries.end());
    MESSAGE("slowest of " << rounds << " recoveries after kill -9: "
                          << std::chrono::duration<double>(slowest).count()
                          << " s (hold 1 s + TTL 2 s + 1 s allowed)");
  }

  TEST_CASE(
      "leader_duties - a candidate stopped while it campaigns never leads and its run ends - "
      "whether the leader before it stays or resigns") {
    auto& etcd = seckill::test::shared_single_node();
    const std::string sku = "tea";
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      store_type store(io.get_executor(), etcd.options(), {.prefix = unique("store")});
      // The stop lands at every point of b's campaign: its session start,
      // its key's transaction, the read of its predecessor, the watch.
      for (const bool leader_resigns : {false, true}) {
        for (const auto delay : {0ms, 1ms, 2ms, 3ms, 4ms, 6ms, 8ms, 12ms, 20ms, 50ms}) {
          CAPTURE(leader_resigns);
          CAPTURE(delay.count());
          const std::string election = unique("stopped-campaign");
          duties_type a(c, store, {sku}, fast(election, "a"));
          duties_type b(c, store, {sku}, fast(election, "b"));
          runner ra(a);
          REQUIRE(co_await seckill::test::eventually([&] { return a.is_leader(); }, 5000ms));
          runner rb(b);
          co_await seckill::test::sleep_for(delay);
          rb.stop();
          if (leader_resigns) ra.stop();
          CHECK(co_await seckill::test::eventually([&] { return rb.done.has_value(); }, 5000ms));
          if (rb.done) CHECK(*rb.done == seckill::errc::operation_aborted);
          CHECK(b.terms() == 0u);
          CHECK_FALSE(b.is_leader());
          if (!leader_resigns) {
            CHECK(a.is_leader());
            ra.stop();
          }
          CHECK(co_await seckill::test::eventually([&] { return ra.done.has_value(); }, 5000ms));
          // nobody is left in the election: b gave its key up
          range_options all;
          all.prefix = true;
          auto [rec, r] = co_await c.async_range(election, all, tuple_awaitable);
          REQUIRE_FALSE(rec);
          std::string left;
          for (const auto& kv : r.kvs) left += " " + kv.key + "=" + kv.value;
          CHECK_MESSAGE(r.kvs.empty(), "keys left in the election:" << left);
          if (!rb.done) rb.stop();  // (a failed case: end it before b goes)
          co_await seckill::test::eventually([&] { return rb.done.has_value(); }, 5000ms);
        }
      }
    });
  }
}
