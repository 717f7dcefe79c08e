#pragma once
// The buyer half of the stock_store conformance suite (store/store.hpp,
// "Buyers"): per-user limits, request idempotency, recorded orders and the
// reconciliation. Included by store_conformance.hpp, whose helpers it uses;
// its cases are part of SECKILL_STORE_CONFORMANCE_TESTS.

#include <seckill/store/reconcile.hpp>

#include <map>

namespace seckill::test::conformance {

template <class Fx>
std::tuple<std::error_code, reserve_result> reserve_as(Fx& fx, std::string_view sku,
                                                       reserve_request r) {
  return wait<std::error_code, reserve_result>(
      fx, [&](auto h) { fx.store().async_reserve(sku, r, h); });
}
/// A reserve by `user` (and `request`, when not empty) with the fixture's hold.
template <class Fx>
reserve_result buy(Fx& fx, std::string_view sku, std::int64_t order, std::string_view user,
                   std::int64_t qty = 1, std::string_view request = {}) {
  reserve_request r;
  r.order_id = order;
  r.quantity = qty;
  r.hold = fx.hold();
  r.user = user;
  r.request_id = request;
  auto [ec, result] = reserve_as(fx, sku, r);
  REQUIRE_MESSAGE(!ec, ec.message());
  return result;
}
template <class Fx>
std::error_code set_policy(Fx& fx, std::string_view sku, std::int64_t per_user) {
  sku_policy p;
  p.per_user_limit = per_user;
  return std::get<0>(
      wait<std::error_code>(fx, [&](auto h) { fx.store().async_set_policy(sku, p, h); }));
}
template <class Fx>
std::tuple<std::error_code, sku_policy> get_policy(Fx& fx, std::string_view sku) {
  return wait<std::error_code, sku_policy>(fx,
                                           [&](auto h) { fx.store().async_get_policy(sku, h); });
}
template <class Fx>
std::tuple<std::error_code, order_entry> get_order(Fx& fx, std::string_view sku,
                                                   std::int64_t order) {
  return wait<std::error_code, order_entry>(
      fx, [&](auto h) { fx.store().async_get_order(sku, order, h); });
}
template <class Fx>
std::tuple<std::error_code, order_page> list_orders(Fx& fx, std::string_view sku,
                                                    std::int64_t after, std::size_t limit) {
  return wait<std::error_code, order_page>(
      fx, [&](auto h) { fx.store().async_list_orders(sku, after, limit, h); });
}
/// Every committed order of `sku`, read in pages of `page`.
template <class Fx>
std::vector<order_entry> all_orders(Fx& fx, std::string_view sku, std::size_t page = 3) {
  std::vector<order_entry> out;
  std::int64_t after = 0;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto [ec, p] = list_orders(fx, sku, after, page);
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(p.orders.size() <= page);
    for (auto& o : p.orders) {
      CHECK(o.order_id > after);  // increasing, past the cursor
      after = o.order_id;
      out.push_back(std::move(o));
    }
    if (p.next == 0) return out;
    CHECK(p.next == after);
  }
  FAIL("list_orders never reached its last page");
  return out;
}
template <class Fx>
std::tuple<std::error_code, reconcile_report> reconcile(Fx& fx, std::string_view sku) {
  return wait<std::error_code, reconcile_report>(
      fx, [&](auto h) { async_reconcile(fx.store(), sku, h); });
}

// The default policy: one unit per user; users are independent; no user, no limit.
template <class Fx>
void per_user_limit_default() {
  Fx fx;
  const auto sku = fx.sku("limit-default");
  REQUIRE(set_stock(fx, sku, 10) == no_error);
  auto [pec, policy] = get_policy(fx, sku);
  CHECK(pec == no_error);
  CHECK(policy.per_user_limit == 1);
  auto first = buy(fx, sku, 1, "alice");
  CHECK(first.status == reserve_status::reserved);
  CHECK(first.order_id == 1);
  CHECK(first.state == order_state::held);
  CHECK_FALSE(first.replayed);
  auto second = buy(fx, sku, 2, "alice");
  CHECK(second.status == reserve_status::limited);
  CHECK_FALSE(second.replayed);
  check_remaining<Fx>(second.remaining, 9);  // nothing taken
  CHECK(buy(fx, sku, 3, "alice", 2).status == reserve_status::limited);
  check_level(stock_ok(fx, sku), 9, 1, 0);
  CHECK(buy(fx, sku, 4, "bob").status == reserve_status::reserved);
  CHECK(buy(fx, sku, 5, "bob").status == reserve_status::limited);
  // Without a user nothing limits the quantity.
  CHECK(reserve_ok(fx, sku, 5, 6).status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 3, 7, 0);
  // A limited order id was refused: it holds nothing to settle.
  CHECK(std::get<0>(commit(fx, sku, 2)) == errc::unknown_order);
  // A committed unit still counts against the user.
  REQUIRE(std::get<0>(commit(fx, sku, 1)) == no_error);
  CHECK(buy(fx, sku, 7, "alice").status == reserve_status::limited);
  // The limit is per SKU.
  const auto other = fx.sku("limit-default-other");
  REQUIRE(set_stock(fx, other, 1) == no_error);
  CHECK(buy(fx, other, 1, "alice").status == reserve_status::reserved);
  // The stock is checked first: sold out, whether or not the user has room.
  CHECK(buy(fx, other, 2, "carol").status == reserve_status::sold_out);
  CHECK(buy(fx, other, 3, "alice").status == reserve_status::sold_out);
}

// A policy set on the SKU: N units, 0 for none, lowered below what is held.
template <class Fx>
void per_user_limit_policy() {
  Fx fx;
  const auto sku = fx.sku("limit-policy");
  CHECK(set_policy(fx, sku, 3) == no_error);  // before the stock exists
  REQUIRE(set_stock(fx, sku, 20) == no_error);
  CHECK(std::get<1>(get_policy(fx, sku)).per_user_limit == 3);
  CHECK(buy(fx, sku, 1, "alice", 2).status == reserve_status::reserved);
  CHECK(buy(fx, sku, 2, "alice", 2).status == reserve_status::limited);
  CHECK(buy(fx, sku, 3, "alice", 1).status == reserve_status::reserved);
  CHECK(buy(fx, sku, 4, "alice", 1).status == reserve_status::limited);
  // Lowered: nothing taken back, and nothing more until below it.
  CHECK(set_policy(fx, sku, 1) == no_error);
  check_level(stock_ok(fx, sku), 17, 3, 0);
  CHECK(buy(fx, sku, 5, "alice").status == reserve_status::limited);
  // Zero: unlimited.
  CHECK(set_policy(fx, sku, 0) == no_error);
  CHECK(std::get<1>(get_policy(fx, sku)).per_user_limit == 0);
  CHECK(buy(fx, sku, 6, "alice", 10).status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 7, 13, 0);
  // Bad policies change nothing.
  CHECK(set_policy(fx, sku, -1) == errc::invalid_argument);
  CHECK(set_policy(fx, sku, max_units + 1) == errc::invalid_argument);
  CHECK(set_policy(fx, "", 1) == errc::invalid_argument);
  CHECK(std::get<1>(get_policy(fx, sku)).per_user_limit == 0);
}

// A rollback, an expired hold refused at commit and the reaper each give the
// user's allowance back with the units.
template <class Fx>
void per_user_limit_released() {
  Fx fx;
  const auto sku = fx.sku("limit-released");
  REQUIRE(set_stock(fx, sku, 10) == no_error);
  REQUIRE(buy(fx, sku, 1, "alice").status == reserve_status::reserved);
  REQUIRE(std::get<0>(rollback(fx, sku, 1)) == no_error);
  CHECK(buy(fx, sku, 2, "alice").status == reserve_status::reserved);
  REQUIRE(buy(fx, sku, 3, "bob").status == reserve_status::reserved);
  REQUIRE(buy(fx, sku, 4, "carol").status == reserve_status::reserved);
  fx.let_time_pass(fx.hold() * 2);
  CHECK(std::get<0>(commit(fx, sku, 2)) == errc::order_rolled_back);  // alice: refused, given back
  CHECK(std::get<1>(reap(fx, sku, 10)) == 2u);                        // bob and carol
  check_level(stock_ok(fx, sku), 10, 0, 0);
  CHECK(buy(fx, sku, 5, "alice").status == reserve_status::reserved);
  CHECK(buy(fx, sku, 6, "bob").status == reserve_status::reserved);
  CHECK(buy(fx, sku, 7, "carol").status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 7, 3, 0);
}

// (user, request_id) binds to the first order that took units.
template <class Fx>
void request_idempotency() {
  Fx fx;
  const auto sku = fx.sku("requests");
  REQUIRE(set_stock(fx, sku, 10) == no_error);
  REQUIRE(set_policy(fx, sku, 5) == no_error);
  auto first = buy(fx, sku, 1, "alice", 2, "r-1");
  REQUIRE(first.status == reserve_status::reserved);
  CHECK(first.order_id == 1);
  check_remaining<Fx>(first.remaining, 8);
  // A retry under a new order id (another node, a restart) takes nothing.
  auto retry = buy(fx, sku, 2, "alice", 2, "r-1");
  CHECK(retry.status == reserve_status::reserved);
  CHECK(retry.replayed);
  CHECK(retry.order_id == 1);
  CHECK(retry.state == order_state::held);
  CHECK(retry.remaining == first.remaining);  // the first answer
  check_level(stock_ok(fx, sku), 8, 2, 0);
  // The retry's order id was not used: it settles nothing.
  CHECK(std::get<0>(commit(fx, sku, 2)) == errc::unknown_order);
  // Once the first order is committed, a retry says so.
  REQUIRE(std::get<0>(commit(fx, sku, 1)) == no_error);
  auto after_commit = buy(fx, sku, 3, "alice", 2, "r-1");
  CHECK(after_commit.replayed);
  CHECK(after_commit.order_id == 1);
  CHECK(after_commit.state == order_state::committed);
  check_level(stock_ok(fx, sku), 8, 0, 2);
  // Another request id of the same user, and the same id of another user, are new.
  CHECK(buy(fx, sku, 4, "alice", 1, "r-2").status == reserve_status::reserved);
  auto bob = buy(fx, sku, 5, "bob", 1, "r-1");
  CHECK(bob.status == reserve_status::reserved);
  CHECK_FALSE(bob.replayed);
  CHECK(bob.order_id == 5);
  // A rolled-back order stays bound: the retry hears that it failed.
  REQUIRE(std::get<0>(rollback(fx, sku, 5)) == no_error);
  auto bob_retry = buy(fx, sku, 6, "bob", 1, "r-1");
  CHECK(bob_retry.replayed);
  CHECK(bob_retry.order_id == 5);
  CHECK(bob_retry.state == order_state::rolled_back);
  check_level(stock_ok(fx, sku), 7, 1, 2);
  // A refused reserve binds nothing: the retry is a fresh attempt.
  auto limited = buy(fx, sku, 7, "alice", 3, "r-3");  // 3 held or bought, 3 more > 5
  CHECK(limited.status == reserve_status::limited);
  auto smaller = buy(fx, sku, 8, "alice", 2, "r-3");
  CHECK(smaller.status == reserve_status::reserved);
  CHECK_FALSE(smaller.replayed);
  CHECK(smaller.order_id == 8);
  // The same order id replays per order id, with the bound order's state.
  auto same_id = buy(fx, sku, 8, "alice", 2, "r-3");
  CHECK(same_id.replayed);
  CHECK(same_id.order_id == 8);
  check_level(stock_ok(fx, sku), 5, 3, 2);
}

template <class Fx>
void buyer_bad_arguments() {
  Fx fx;
  const auto sku = fx.sku("buyer-bad-arguments");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  auto refused = [&](std::string_view user, std::string_view request) {
    reserve_request r;
    r.order_id = 1;
    r.hold = fx.hold();
    r.user = user;
    r.request_id = request;
    return std::get<0>(reserve_as(fx, sku, r)) == errc::invalid_argument;
  };
  CHECK(refused("al ice", ""));
  CHECK(refused("alice\n", ""));
  CHECK(refused("alice\"", ""));
  CHECK(refused("{alice}", ""));
  CHECK(refused(std::string(max_key_length + 1, 'a'), ""));
  CHECK(refused("", "r-1"));  // a request id needs a user
  CHECK(refused("alice", "r 1"));
  CHECK(refused("alice", std::string(max_key_length + 1, 'r')));
  reserve_request zero;
  zero.order_id = 0;
  zero.hold = fx.hold();
  zero.user = "alice";
  CHECK(std::get<0>(reserve_as(fx, sku, zero)) == errc::invalid_argument);
  CHECK(std::get<0>(get_order(fx, sku, 0)) == errc::invalid_argument);
  CHECK(std::get<0>(list_orders(fx, sku, 0, 0)) == errc::invalid_argument);
  CHECK(std::get<0>(list_orders(fx, sku, 0, max_order_page + 1)) == errc::invalid_argument);
  CHECK(std::get<0>(list_orders(fx, sku, -1, 10)) == errc::invalid_argument);
  check_level(stock_ok(fx, sku), 5, 0, 0);
  // Every allowed character, at the longest length, goes through.
  const std::string longest = std::string("azAZ09._:@-") + std::string(max_key_length - 11, 'x');
  CHECK(buy(fx, sku, 1, longest, 1, longest).status == reserve_status::reserved);
  REQUIRE(std::get<0>(commit(fx, sku, 1)) == no_error);
  auto [ec, entry] = get_order(fx, sku, 1);
  CHECK(ec == no_error);
  CHECK(entry.user == longest);
  CHECK(entry.request_id == longest);
}

// Committed orders are recorded with the stock; nothing else is listed.
template <class Fx>
void orders_recorded() {
  Fx fx;
  const auto sku = fx.sku("orders");
  REQUIRE(set_stock(fx, sku, 50) == no_error);
  REQUIRE(set_policy(fx, sku, 0) == no_error);
  CHECK(std::get<0>(get_order(fx, sku, 1)) == errc::unknown_order);
  auto [ec0, empty] = list_orders(fx, sku, 0, 10);
  CHECK(ec0 == no_error);
  CHECK(empty.orders.empty());
  CHECK(empty.next == 0);
  // Ids out of order, some committed, some held, rolled back or refused.
  std::int64_t committed_units = 0;
  std::map<std::int64_t, std::int64_t> expected;  // id -> quantity
  for (std::int64_t id : {17, 3, 250, 9, 1000000007, 41, 5, 12, 88, 2}) {
    const std::int64_t qty = 1 + id % 3;
    const std::string user = "user-" + std::to_string(id % 4);
    const std::string request = "req-" + std::to_string(id);
    REQUIRE(buy(fx, sku, id, user, qty, request).status == reserve_status::reserved);
    if (id % 5 == 0) {
      REQUIRE(std::get<0>(rollback(fx, sku, id)) == no_error);
    } else if (id != 41) {  // 41 stays held
      REQUIRE(std::get<0>(commit(fx, sku, id)) == no_error);
      expected[id] = qty;
      committed_units += qty;
    }
  }
  REQUIRE(buy(fx, sku, 99, "big", 1000).status == reserve_status::sold_out);
  CHECK(std::get<0>(get_order(fx, sku, 41)) == errc::unknown_order);   // held
  CHECK(std::get<0>(get_order(fx, sku, 250)) == errc::unknown_order);  // rolled back
  CHECK(std::get<0>(get_order(fx, sku, 99)) == errc::unknown_order);   // refused
  auto [ec, one] = get_order(fx, sku, 17);
  CHECK(ec == no_error);
  CHECK(one.order_id == 17);
  CHECK(one.quantity == 3);
  CHECK(one.user == "user-1");
  CHECK(one.request_id == "req-17");
  // Without a user or a request id, the record says so.
  REQUIRE(reserve_ok(fx, sku, 2, 7).status == reserve_status::reserved);
  REQUIRE(std::get<0>(commit(fx, sku, 7)) == no_error);
  expected[7] = 2;
  committed_units += 2;
  auto [ec7, seven] = get_order(fx, sku, 7);
  CHECK(ec7 == no_error);
  CHECK(seven.user.empty());
  CHECK(seven.request_id.empty());
  // Pages of 3 and one page of everything agree, in increasing id order.
  for (std::size_t page : {std::size_t{3}, max_order_page}) {
    CAPTURE(page);
    const auto orders = all_orders(fx, sku, page);
    REQUIRE(orders.size() == expected.size());
    auto it = expected.begin();
    std::int64_t sum = 0;
    for (const auto& o : orders) {
      CHECK(o.order_id == it->first);
      CHECK(o.quantity == it->second);
      sum += o.quantity;
      ++it;
    }
    CHECK(sum == committed_units);
  }
  CHECK(stock_ok(fx, sku).committed == committed_units);
  // A cursor past the last order ends at once.
  auto [ec_end, end] = list_orders(fx, sku, 1000000007, 10);
  CHECK(ec_end == no_error);
  CHECK(end.orders.empty());
  CHECK(end.next == 0);
  // The reconciliation agrees.
  auto [rec, report] = reconcile(fx, sku);
  CHECK(rec == no_error);
  CHECK(report.ok());
  CHECK(report.committed_units == committed_units);
  CHECK(report.recorded_units == committed_units);
  CHECK(report.orders == expected.size());
  CHECK(report.users_over_limit.empty());
}

// Many buyers, a few users, two threads: no user ever holds more than the limit.
template <class Fx>
void concurrent_per_user_limit() {
  Fx fx;
  constexpr int coroutines = 24;
  constexpr int attempts_each = 6;
  constexpr int users = 8;
  constexpr std::int64_t limit = 2;
  const auto sku = fx.sku("limit-race");
  REQUIRE(set_stock(fx, sku, 1000) == no_error);
  REQUIRE(set_policy(fx, sku, limit) == no_error);
  std::vector<std::atomic<std::int64_t>> held(users);
  std::atomic<int> errors{0}, finished{0};
  auto& io = fx.io();
  io.restart();
  auto buyer = [&](int k) -> asio::awaitable<void> {
    for (int a = 0; a < attempts_each; ++a) {
      const int u = (k + a) % users;
      const std::string user = "user-" + std::to_string(u);
      reserve_request r;
      r.order_id = 1 + k * attempts_each + a;
      r.hold = 60s;
      r.user = user;
      auto [ec, result] =
          co_await fx.store().async_reserve(sku, r, asio::as_tuple(asio::use_awaitable));
      if (ec) {
        errors.fetch_add(1);
      } else if (result.status == reserve_status::reserved) {
        held[static_cast<std::size_t>(u)].fetch_add(1);
        if (a % 2 == 0) {  // half are bought, half stay held
          auto [cec, c] = co_await fx.store().async_commit(sku, r.order_id,
                                                           asio::as_tuple(asio::use_awaitable));
          if (cec) errors.fetch_add(1);
        }
      } else if (result.status != reserve_status::limited) {
        errors.fetch_add(1);
      }
    }
  };
  for (int k = 0; k < coroutines; ++k)
    asio::co_spawn(io, buyer(k), [&](std::exception_ptr e) {
      if (e) errors.fetch_add(1);
      if (finished.fetch_add(1) + 1 == coroutines) io.stop();
    });
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (finished.load() < coroutines && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(5ms);
  io.stop();
  t1.join();
  t2.join();
  REQUIRE(finished.load() == coroutines);
  CHECK(errors.load() == 0);
  std::int64_t total = 0;
  for (int u = 0; u < users; ++u) {
    CAPTURE(u);
    CHECK(held[static_cast<std::size_t>(u)].load() == limit);  // each user tried 18 times
    total += held[static_cast<std::size_t>(u)].load();
  }
  const auto level = stock_ok(fx, sku);
  CHECK(level.reserved + level.committed == total);
  CHECK(level.remaining == 1000 - total);
  auto [rec, report] = reconcile(fx, sku);
  CHECK(rec == no_error);
  CHECK(report.ok());
}

}  // namespace seckill::test::conformance

#include "store_conformance_window.hpp"  // IWYU pragma: export

/// The buyer cases, expanded by SECKILL_STORE_CONFORMANCE_TESTS.
#define SECKILL_STORE_CONFORMANCE_BUYER_TESTS(Fixture, name)                             \
  TEST_CASE(name " store: one unit per user by default and users are independent") {     \
    ::seckill::test::conformance::per_user_limit_default<Fixture>();                     \
  }                                                                                      \
  TEST_CASE(name " store: a per-user limit set on the sku and zero for none") {          \
    ::seckill::test::conformance::per_user_limit_policy<Fixture>();                      \
  }                                                                                      \
  TEST_CASE(name " store: rollback and expiry and the reaper give the allowance back") { \
    ::seckill::test::conformance::per_user_limit_released<Fixture>();                    \
  }                                                                                      \
  TEST_CASE(name " store: a request id binds to the first order that took units") {      \
    ::seckill::test::conformance::request_idempotency<Fixture>();                        \
  }                                                                                      \
  TEST_CASE(name " store: bad users and request ids and pages are refused") {            \
    ::seckill::test::conformance::buyer_bad_arguments<Fixture>();                        \
  }                                                                                      \
  TEST_CASE(name " store: committed orders are recorded and listed in pages") {          \
    ::seckill::test::conformance::orders_recorded<Fixture>();                            \
  }                                                                                      \
  TEST_CASE(name " store: racing buyers never exceed the per-user limit") {              \
    ::seckill::test::conformance::concurrent_per_user_limit<Fixture>();                  \
  }                                                                                      \
  SECKILL_STORE_CONFORMANCE_WINDOW_TESTS(Fixture, name)
