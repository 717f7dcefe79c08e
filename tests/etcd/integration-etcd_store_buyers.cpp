// etcd_store's buyer guarantees beyond the conformance suite, on a real etcd:
// two nodes with their own clients racing one user's limit and one request
// id; the reconciliation catching a tampered committed counter; a commit
// whose answer was lost recorded once; the key layout; the reaper giving
// back many users' holds in batches etcd accepts.
#include "etcd_store_fixtures.hpp"

#include <seckill/store/reconcile.hpp>

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace integration_etcd_store_buyers {
using namespace std::chrono_literals;
using namespace integration_etcd_store;

inline seckill::reserve_result buy(store_fixture& fx, const std::string& sku, std::int64_t id,
                                   const std::string& user, const std::string& request = {}) {
  return cf::buy(fx, sku, id, user, 1, request);
}

/// A raw put, as an operator (or a bug) would write behind the store's back.
inline void raw_put(const seckill::etcd::client_options& o, const std::string& key,
                    const std::string& value) {
  seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    seckill::etcd::client c(io.get_executor(), o);
    auto [ec, r] = co_await c.async_put(key, value, seckill::test::tuple_awaitable);
    REQUIRE_MESSAGE(!ec, r.error_message);
  });
}

/// What one node saw of its reserves.
struct node_answers {
  std::mutex m;
  std::map<std::string, int> fresh;          // user -> reserves that took units
  std::vector<std::int64_t> request_orders;  // the order each request reserve answered with
  std::vector<std::int64_t> taken_ids;       // order ids that took units
  int request_fresh = 0;                     // request reserves not replayed
  std::atomic<int> errors{0}, limited{0};
};

}  // namespace integration_etcd_store_buyers

TEST_SUITE("integration") {
  using namespace integration_etcd_store_buyers;

  TEST_CASE("etcd store buyers - two nodes racing one user's limit and one request id") {
    const auto copts = seckill::test::shared_single_node().options();
    const std::string sku = "buyers-race";
    constexpr std::int64_t limit = 2;
    constexpr int users = 4, tries = 5, request_tries = 4;
    {
      store_fixture setup(copts, {});
      REQUIRE(cf::set_stock(setup, sku, 1000) == cf::no_error);
      REQUIRE(cf::set_policy(setup, sku, limit) == cf::no_error);
    }
    node_answers seen;
    std::atomic<std::uint64_t> conflicts{0};
    auto node = [&](int index) {
      asio::io_context io;
      store_type s(io.get_executor(), copts);  // its own client, as another node's
      std::int64_t next_id = 1 + index * 100'000;
      auto on = [&](const std::string& user, std::int64_t id, bool request) {
        return [&seen, user, id, request](std::error_code ec, seckill::reserve_result r) {
          if (ec) {
            seen.errors.fetch_add(1);
            return;
          }
          std::lock_guard lock(seen.m);
          if (r.status == seckill::reserve_status::limited) {
            seen.limited.fetch_add(1);
          } else if (r.status != seckill::reserve_status::reserved) {
            seen.errors.fetch_add(1);
          } else if (request) {
            seen.request_orders.push_back(r.order_id);
            if (!r.replayed) {
              ++seen.request_fresh;
              seen.taken_ids.push_back(id);
              ++seen.fresh["retrier"];
            }
          } else if (!r.replayed) {
            ++seen.fresh[user];
            seen.taken_ids.push_back(id);
          }
        };
      };
      for (int t = 0; t < tries; ++t) {
        for (int u = 0; u < users; ++u) {
          const std::string user = "user-" + std::to_string(u);
          seckill::reserve_request r;
          r.order_id = next_id++;
          r.user = user;
          s.async_reserve(sku, r, on(user, r.order_id, false));
        }
      }
      for (int t = 0; t < request_tries; ++t) {  // a buyer retrying one request on both nodes
        seckill::reserve_request r;
        r.order_id = next_id++;
        r.user = "retrier";
        r.request_id = "checkout-1";
        s.async_reserve(sku, r, on("retrier", r.order_id, true));
      }
      io.run();
      conflicts.fetch_add(s.conflicts());
    };
    std::thread a(node, 0), b(node, 1);
    a.join();
    b.join();
    MESSAGE("compare failures retried: " << conflicts.load());
    CHECK(seen.errors.load() == 0);
    for (int u = 0; u < users; ++u) CHECK(seen.fresh["user-" + std::to_string(u)] == limit);
    CHECK(seen.limited.load() == 2 * users * tries - users * limit);
    CHECK(seen.request_fresh == 1);  // one order for the request, whichever node won
    REQUIRE(seen.request_orders.size() == 2u * request_tries);
    for (auto id : seen.request_orders) CHECK(id == seen.request_orders.front());
    const std::int64_t taken = users * limit + 1;
    store_fixture fx(copts, {});
    cf::check_level(cf::stock_ok(fx, sku), 1000 - taken, taken, 0);

    // Everything bought: the orders add up, nobody over the limit.
    for (auto id : seen.taken_ids) REQUIRE(std::get<0>(cf::commit(fx, sku, id)) == cf::no_error);
    auto [ec, report] = cf::reconcile(fx, sku);
    REQUIRE(ec == cf::no_error);
    CHECK(report.ok());
    CHECK(report.committed_units == taken);
    CHECK(report.recorded_units == taken);
    CHECK(report.orders == static_cast<std::size_t>(taken));
    CHECK(report.per_user_limit == limit);

    // A committed counter changed behind the store's back no longer adds up.
    const auto level = cf::stock_ok(fx, sku);
    const std::string tampered = R"({"remaining":)" + std::to_string(level.remaining) +
                                 R"(,"reserved":0,"committed":)" +
                                 std::to_string(level.committed + 1) + "}";
    raw_put(copts, "seckill/" + sku + "/stock", tampered);
    auto [ec2, bad] = cf::reconcile(fx, sku);
    REQUIRE(ec2 == cf::no_error);
    CHECK_FALSE(bad.ok());
    CHECK(bad.committed_units == taken + 1);
    CHECK(bad.recorded_units == taken);
  }

  TEST_CASE("etcd store buyers - a reserve and a commit whose answers were lost record one order") {
    const auto& etcd = seckill::test::shared_single_node();
    answer_dropping_proxy proxy(etcd.endpoint_of(0));
    store_fixture fx(proxy.options(), {});
    store_fixture direct(etcd.options(), {});  // sees what etcd holds
    const std::string sku = "buyers-lost";
    REQUIRE(cf::set_stock(fx, sku, 10) == cf::no_error);

    // The reserve ran, its answer was lost: the buyer retries under a new
    // order id (a restarted node) and hears of the first.
    proxy.drop_next_write_answers(1);
    seckill::reserve_request r;
    r.order_id = 1;
    r.user = "alice";
    r.request_id = "pay-1";
    CHECK(std::get<0>(cf::reserve_as(fx, sku, r)) == seckill::errc::store_unavailable);
    cf::check_level(cf::stock_ok(direct, sku), 9, 1, 0);
    auto retry = buy(fx, sku, 2, "alice", "pay-1");
    CHECK(retry.replayed);
    CHECK(retry.order_id == 1);
    CHECK(retry.state == seckill::order_state::held);

    // The commit ran, its answer was lost: the retry answers already and
    // the order is recorded once.
    proxy.drop_next_write_answers(1);
    CHECK(std::get<0>(cf::commit(fx, sku, 1)) == seckill::errc::store_unavailable);
    cf::check_level(cf::stock_ok(direct, sku), 9, 0, 1);
    for (int i = 0; i < 3; ++i) {
      auto [ec, c] = cf::commit(fx, sku, 1);
      CHECK(ec == cf::no_error);
      CHECK(c.status == seckill::settle_status::already);
    }
    CHECK(proxy.dropped() == 2);
    const auto orders = cf::all_orders(direct, sku);
    REQUIRE(orders.size() == 1u);
    CHECK(orders.front().order_id == 1);
    CHECK(orders.front().quantity == 1);
    CHECK(orders.front().user == "alice");
    CHECK(orders.front().request_id == "pay-1");
    CHECK(keys_under(etcd.options(), "seckill/" + sku + "/orders/").size() == 1u);
    auto again = buy(fx, sku, 3, "alice", "pay-1");
    CHECK(again.replayed);
    CHECK(again.order_id == 1);
    CHECK(again.state == seckill::order_state::committed);
    auto [ec, report] = cf::reconcile(direct, sku);
    CHECK(ec == cf::no_error);
    CHECK(report.ok());
    CHECK(report.recorded_units == 1);
  }

  TEST_CASE("etcd store buyers - the key layout and what each step leaves behind") {
    const auto& etcd = seckill::test::shared_single_node();
    store_fixture fx(etcd.options(), {});
    const std::string sku = "buyers/layout";  // '/' is percent-encoded
    const std::string base = "seckill/buyers%2Flayout/";
    REQUIRE(cf::set_stock(fx, sku, 5) == cf::no_error);
    auto keys = [&] {
      std::map<std::string, std::int64_t> out;  // key -> lease
      for (const auto& kv : keys_under(etcd.options(), base)) out[kv.key] = kv.lease;
      return out;
    };
    CHECK(keys().size() == 1u);  // the stock alone: the default policy is not written
    REQUIRE(buy(fx, sku, 7, "bob", "r-7").status == seckill::reserve_status::reserved);
    auto held = keys();
    CHECK(held.count(base + "order/7") == 1u);
    CHECK(held.count(base + "user/bob") == 1u);
    CHECK(held.count(base + "request/bob/r-7") == 1u);
    CHECK(held[base + "request/bob/r-7"] == 0);  // no lease while held
    REQUIRE(std::get<0>(cf::commit(fx, sku, 7)) == cf::no_error);
    auto sold = keys();
    CHECK(sold.count(base + "orders/0000000000000000007") == 1u);
    CHECK(sold[base + "orders/0000000000000000007"] == 0);  // recorded orders never expire
    CHECK(sold[base + "order/7"] != 0);  // the order record has the retention lease
    CHECK(sold.count(base + "request/bob/r-7") == 1u);
    CHECK(sold[base + "request/bob/r-7"] == 0);  // a sold order's binding is kept for good
    CHECK(sold.count(base + "user/bob") == 1u);  // bought units count for good
    // A rollback gives the user's units back: the counter goes at 0.
    REQUIRE(buy(fx, sku, 8, "carol").status == seckill::reserve_status::reserved);
    CHECK(keys().count(base + "user/carol") == 1u);
    REQUIRE(std::get<0>(cf::rollback(fx, sku, 8)) == cf::no_error);
    CHECK(keys().count(base + "user/carol") == 0u);
    REQUIRE(cf::set_policy(fx, sku, 4) == cf::no_error);
    CHECK(keys().count(base + "policy") == 1u);
    auto [pec, p] = cf::get_policy(fx, sku);
    CHECK(pec == cf::no_error);
    CHECK(p.per_user_limit == 4);
    // A limited reserve is answered limited again on a replay of its order id.
    REQUIRE(buy(fx, sku, 9, "bob").status == seckill::reserve_status::reserved);
    auto [lec, limited] = [&] {
      seckill::reserve_request r;
      r.order_id = 10;
      r.quantity = 3;
      r.hold = fx.hold();
      r.user = "bob";
      return cf::reserve_as(fx, sku, r);
    }();
    REQUIRE(lec == cf::no_error);
    CHECK(limited.status == seckill::reserve_status::limited);
    auto replay = buy(fx, sku, 10, "bob");
    CHECK(replay.replayed);
    CHECK(replay.status == seckill::reserve_status::limited);
    CHECK(replay.order_id == 0);
    CHECK(replay.state == seckill::order_state::refused);
    CHECK(std::get<0>(cf::commit(fx, sku, 10)) == seckill::errc::unknown_order);
    CHECK(fx.store().last_error().find("the reserve was refused (limited)") != std::string::npos);
  }

  TEST_CASE("etcd store buyers - the reaper gives back many users' holds in batches etcd takes") {
    const auto& etcd = seckill::test::shared_single_node();
    etcd_store_options opts;
    opts.reap_batch = 40;  // 40 holds with a user and a request each: over etcd's 128 ops
    store_fixture fx(etcd.options(), opts);
    const std::string sku = "buyers-reap";
    constexpr int holds = 45;
    REQUIRE(cf::set_stock(fx, sku, 100) == cf::no_error);
    for (int i = 1; i <= holds; ++i) {
      const std::string user = "u" + std::to_string(i);
      REQUIRE(buy(fx, sku, i, user, "r" + std::to_string(i)).status ==
              seckill::reserve_status::reserved);
    }
    REQUIRE(keys_under(etcd.options(), "seckill/" + sku + "/user/").size() ==
            static_cast<std::size_t>(holds));
    fx.clock.advance(31s);
    auto [ec, reaped] = cf::reap(fx, sku, 1000);
    CHECK_MESSAGE(!ec, fx.store().last_error());
    CHECK(reaped == static_cast<std::size_t>(holds));
    cf::check_level(cf::stock_ok(fx, sku), 100, 0, 0);
    CHECK(keys_under(etcd.options(), "seckill/" + sku + "/user/").empty());
    CHECK(keys_under(etcd.options(), "seckill/" + sku + "/hold/").empty());
    // Every user may buy again; every request still answers as its first order stands.
    CHECK(buy(fx, sku, 100, "u1").status == seckill::reserve_status::reserved);
    auto old = buy(fx, sku, 101, "u2", "r2");
    CHECK(old.replayed);
    CHECK(old.order_id == 2);
    CHECK(old.state == seckill::order_state::rolled_back);
  }

  TEST_CASE(
      "etcd store buyers - a committed order id stays committed after its order record is "
      "forgotten") {
    const auto& etcd = seckill::test::shared_single_node();
    etcd_store_options opts;
    opts.order_retention = 1s;
    opts.retention_buckets = 1;  // records live 1 s to 2 s (+ etcd's minimum TTL and revocation)
    store_fixture fx(etcd.options(), opts);
    const std::string sku = "buyers-forgotten";
    const std::string base = "seckill/" + sku + "/";
    REQUIRE(cf::set_stock(fx, sku, 10) == cf::no_error);
    REQUIRE(cf::set_policy(fx, sku, 0) == cf::no_error);  // no per-user limit in the way
    REQUIRE(buy(fx, sku, 1, "dave", "pay-1").status == seckill::reserve_status::reserved);
    REQUIRE(std::get<0>(cf::commit(fx, sku, 1)) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), 9, 0, 1);
    const auto start = std::chrono::steady_clock::now();
    while (!keys_under(etcd.options(), base + "order/").empty() &&
           std::chrono::steady_clock::now() < start + 15s) {
      std::this_thread::sleep_for(100ms);
    }
    REQUIRE(keys_under(etcd.options(), base + "order/").empty());
    // The sold order's durable record and its request's binding stay for good.
    REQUIRE(keys_under(etcd.options(), base + "orders/").size() == 1u);
    REQUIRE(keys_under(etcd.options(), base + "request/").size() == 1u);
    auto retry = buy(fx, sku, 5, "dave", "pay-1");
    CHECK(retry.replayed);
    CHECK(retry.order_id == 1);
    CHECK(retry.state == seckill::order_state::committed);

    // The same order id again, with or without a buyer: committed, nothing taken.
    auto anonymous = cf::reserve_ok(fx, sku, 1, 1);
    CHECK(anonymous.status == seckill::reserve_status::reserved);
    CHECK(anonymous.replayed);
    CHECK(anonymous.order_id == 1);
    CHECK(anonymous.state == seckill::order_state::committed);
    CHECK(anonymous.remaining == 9);
    auto named = buy(fx, sku, 1, "erin", "pay-9");
    CHECK(named.replayed);
    CHECK(named.order_id == 1);
    CHECK(named.state == seckill::order_state::committed);
    cf::check_level(cf::stock_ok(fx, sku), 9, 0, 1);
    CHECK(keys_under(etcd.options(), base + "order/").empty());  // nothing written
    CHECK(keys_under(etcd.options(), base + "hold/").empty());
    CHECK(keys_under(etcd.options(), base + "user/erin").empty());
    CHECK(keys_under(etcd.options(), base + "request/").size() == 1u);  // dave's, nothing new

    // A commit answers already, a rollback that the order is committed.
    auto [cec, c] = cf::commit(fx, sku, 1);
    CHECK(cec == cf::no_error);
    CHECK(c.status == seckill::settle_status::already);
    CHECK(std::get<0>(cf::rollback(fx, sku, 1)) == seckill::errc::order_committed);
    CHECK(fx.store().last_error().find("the order is committed (recorded at '" + base +
                                       "orders/0000000000000000001'") != std::string::npos);
    cf::check_level(cf::stock_ok(fx, sku), 9, 0, 1);
    const auto orders = cf::all_orders(fx, sku);
    REQUIRE(orders.size() == 1u);
    CHECK(orders.front().user == "dave");
    auto [ec, report] = cf::reconcile(fx, sku);
    REQUIRE(ec == cf::no_error);
    CHECK(report.ok());
    CHECK(report.committed_units == 1);
    CHECK(report.recorded_units == 1);

    // Other order ids are unaffected.
    CHECK_FALSE(cf::reserve_ok(fx, sku, 1, 2).replayed);
    cf::check_level(cf::stock_ok(fx, sku), 8, 1, 1);
  }

  TEST_CASE("etcd store buyers - a replay of an order whose hold passed answers rolled back") {
    const auto& etcd = seckill::test::shared_single_node();
    store_fixture fx(etcd.options(), {});
    const std::string sku = "buyers-passed";
    REQUIRE(cf::set_stock(fx, sku, 5) == cf::no_error);
    auto first = buy(fx, sku, 1, "frank", "pay-1");
    REQUIRE(first.status == seckill::reserve_status::reserved);
    CHECK(first.state == seckill::order_state::held);
    fx.clock.advance(29s);  // the hold is 30 s: still held
    CHECK(buy(fx, sku, 1, "frank").state == seckill::order_state::held);
    CHECK(buy(fx, sku, 2, "frank", "pay-1").state == seckill::order_state::held);
    fx.clock.advance(1s);  // the hold passed; nobody reaped it yet
    auto by_id = buy(fx, sku, 1, "frank");
    CHECK(by_id.replayed);
    CHECK(by_id.status == seckill::reserve_status::reserved);
    CHECK(by_id.order_id == 1);
    CHECK(by_id.state == seckill::order_state::rolled_back);
    auto by_request = buy(fx, sku, 3, "frank", "pay-1");
    CHECK(by_request.replayed);
    CHECK(by_request.order_id == 1);
    CHECK(by_request.state == seckill::order_state::rolled_back);
    // The units are due back: a commit gives them back and says so.
    CHECK(std::get<0>(cf::commit(fx, sku, 1)) == seckill::errc::order_rolled_back);
    cf::check_level(cf::stock_ok(fx, sku), 5, 0, 0);
    CHECK(buy(fx, sku, 1, "frank").state == seckill::order_state::rolled_back);
  }

  TEST_CASE("etcd store buyers - sold out and limited at once answers sold out") {
    const auto& etcd = seckill::test::shared_single_node();
    store_fixture fx(etcd.options(), {});
    const std::string sku = "buyers-sold-out-first";
    REQUIRE(cf::set_stock(fx, sku, 1) == cf::no_error);  // the default limit: 1 per user
    REQUIRE(buy(fx, sku, 1, "grace").status == seckill::reserve_status::reserved);
    auto both = buy(fx, sku, 2, "grace");  // over her limit, and nothing left
    CHECK(both.status == seckill::reserve_status::sold_out);
    CHECK(both.remaining == 0);
    CHECK_FALSE(both.replayed);
    auto replay = buy(fx, sku, 2, "grace");
    CHECK(replay.replayed);
    CHECK(replay.status == seckill::reserve_status::sold_out);
    CHECK(std::get<0>(cf::commit(fx, sku, 2)) == seckill::errc::unknown_order);
    CHECK(fx.store().last_error().find("the reserve was refused (sold out)") != std::string::npos);
    // With stock left, the limit is what refuses.
    REQUIRE(cf::set_stock(fx, sku, 3) == cf::no_error);
    CHECK(buy(fx, sku, 3, "grace").status == seckill::reserve_status::limited);
    cf::check_level(cf::stock_ok(fx, sku), 3, 1, 0);
  }
  TEST_CASE(
      "etcd store buyers - the sale window lives in two leased keys a later policy replaces") {
    const auto& etcd = seckill::test::shared_single_node();
    store_fixture fx(etcd.options(), {});
    const std::string sku = "buyers-window-keys";
    const std::string base = "seckill/" + sku + "/window/";
    auto leases = [&] {
      std::map<std::string, std::int64_t> out;  // key -> lease
      for (const auto& kv : keys_under(etcd.options(), base)) out[kv.key] = kv.lease;
      return out;
    };
    const auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const std::size_t leases_before = lease_count(etcd.options());
    REQUIRE(cf::set_window(fx, sku, 1, now + 1h, now + 2h) == cf::no_error);
    auto first = leases();
    REQUIRE(first.size() == 2u);
    CHECK(first[base + "not_before"] != 0);
    CHECK(first[base + "until"] != 0);
    CHECK(first[base + "not_before"] != first[base + "until"]);
    CHECK(lease_count(etcd.options()) == leases_before + 2);
    // Started already, ends in an hour: no not_before key; until on a new
    // lease; the two replaced leases revoked.
    REQUIRE(cf::set_window(fx, sku, 1, now - 1h, now + 1h) == cf::no_error);
    auto second = leases();
    REQUIRE(second.size() == 1u);
    CHECK(second.count(base + "until") == 1u);
    CHECK(second[base + "until"] != first[base + "until"]);
    CHECK(lease_count(etcd.options()) == leases_before + 1);
    // No window: no keys, no leases.
    REQUIRE(cf::set_window(fx, sku, 1, seckill::sale_time{}, seckill::max_sale_time) ==
            cf::no_error);
    CHECK(leases().empty());
    CHECK(lease_count(etcd.options()) == leases_before);
    // A bad window names the values seen and writes nothing.
    CHECK(cf::set_window(fx, sku, 1, now + 1h, now + 1h) == seckill::errc::invalid_argument);
    CHECK(fx.store().last_error().find("sale_end " +
                                       std::to_string((now + 1h).time_since_epoch().count()) +
                                       " ms is not after sale_start") != std::string::npos);
    CHECK(leases().empty());
  }
}
