#pragma once
// The sale window half of the stock_store conformance suite (store/store.hpp,
// "The sale window"): refusals before the start and from the end, judged by
// the store's clock, that take and record nothing; replays answered first.
// Included by store_conformance_buyers.hpp; its cases are part of
// SECKILL_STORE_CONFORMANCE_TESTS.
//
// The fixture adds, for the store's clock that judges the window:
//
//   seckill::sale_time sale_now();                      // that clock's now, as the test reads it
//   void let_sale_time_pass(std::chrono::milliseconds); // manual clock advance, or a real sleep
//   std::chrono::milliseconds sale_slack();             // how late the store may open or
//                                                       //   close the sale (0 when exact)

#include <seckill/store/store.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>

namespace seckill::test::conformance {

template <class Fx>
std::error_code set_window(Fx& fx, std::string_view sku, std::int64_t per_user, sale_time start,
                           sale_time end) {
  sku_policy p;
  p.per_user_limit = per_user;
  p.sale_start = start;
  p.sale_end = end;
  return std::get<0>(
      wait<std::error_code>(fx, [&](auto h) { fx.store().async_set_policy(sku, p, h); }));
}

/// A reserve by `user` with `request` and a hold of a minute (longer than
/// any window test waits, on every store).
template <class Fx>
reserve_result buy_in_window(Fx& fx, std::string_view sku, std::int64_t order,
                             std::string_view user, std::string_view request = {}) {
  reserve_request r;
  r.order_id = order;
  r.hold = std::chrono::minutes(1);
  r.user = user;
  r.request_id = request;
  auto [ec, result] = reserve_as(fx, sku, r);
  REQUIRE_MESSAGE(!ec, ec.message());
  return result;
}

/// Waits until the store's sale clock reads `at` or later.
template <class Fx>
void let_sale_time_reach(Fx& fx, sale_time at) {
  const auto now = fx.sale_now();
  if (now < at) fx.let_sale_time_pass(at - now);
}

// Before the start: refused, nothing taken or recorded; inside: sold, and the
// early click's order id and request are fresh; from the end: refused, while
// the replays of the sale inside the window still answer committed.
template <class Fx>
void sale_window() {
  Fx fx;
  const auto sku = fx.sku("window");
  const auto slack = fx.sale_slack();
  const sale_time start = fx.sale_now() + std::chrono::seconds(1) + slack;
  const sale_time end = start + std::chrono::seconds(2) + 2 * slack;
  REQUIRE(set_stock(fx, sku, 10) == no_error);
  REQUIRE(set_window(fx, sku, 1, start, end) == no_error);
  auto [pec, policy] = get_policy(fx, sku);
  CHECK(pec == no_error);
  CHECK(policy.per_user_limit == 1);
  CHECK(policy.sale_start == start);
  CHECK(policy.sale_end == end);

  auto early = buy_in_window(fx, sku, 1, "alice", "r-1");
  CHECK(early.status == reserve_status::not_started);
  CHECK_FALSE(early.replayed);
  CHECK(early.order_id == 0);
  check_remaining<Fx>(early.remaining, 10);
  auto [aec, anonymous] = reserve(fx, sku, 1, 2, std::chrono::minutes(1));
  CHECK(aec == no_error);
  CHECK(anonymous.status == reserve_status::not_started);
  check_level(stock_ok(fx, sku), 10, 0, 0);
  CHECK(std::get<0>(commit(fx, sku, 1)) == errc::unknown_order);  // no record of the order id
  CHECK(all_orders(fx, sku).empty());

  let_sale_time_reach(fx, start + slack);
  // The early click took nothing: alice's one unit, her request id and order
  // id 1 are all fresh.
  auto inside = buy_in_window(fx, sku, 1, "alice", "r-1");
  CHECK(inside.status == reserve_status::reserved);
  CHECK_FALSE(inside.replayed);
  CHECK(inside.order_id == 1);
  check_remaining<Fx>(inside.remaining, 9);
  REQUIRE(std::get<0>(commit(fx, sku, 1)) == no_error);
  CHECK(buy_in_window(fx, sku, 3, "bob").status == reserve_status::reserved);  // stays held
  CHECK(buy_in_window(fx, sku, 4, "alice").status == reserve_status::limited);
  check_level(stock_ok(fx, sku), 8, 1, 1);

  let_sale_time_reach(fx, end + slack);
  auto late = buy_in_window(fx, sku, 5, "carol", "r-5");
  CHECK(late.status == reserve_status::ended);
  CHECK_FALSE(late.replayed);
  check_remaining<Fx>(late.remaining, 8);
  auto [lec, late_anonymous] = reserve(fx, sku, 1, 6, std::chrono::minutes(1));
  CHECK(lec == no_error);
  CHECK(late_anonymous.status == reserve_status::ended);
  // Replays are answered before the window: by request and by order id.
  auto by_request = buy_in_window(fx, sku, 7, "alice", "r-1");
  CHECK(by_request.status == reserve_status::reserved);
  CHECK(by_request.replayed);
  CHECK(by_request.order_id == 1);
  CHECK(by_request.state == order_state::committed);
  auto by_order = buy_in_window(fx, sku, 1, "alice", "r-1");
  CHECK(by_order.replayed);
  CHECK(by_order.state == order_state::committed);
  // The sale held inside the window may still be settled after it.
  CHECK(std::get<0>(commit(fx, sku, 3)) == no_error);
  check_level(stock_ok(fx, sku), 8, 0, 2);
  CHECK(all_orders(fx, sku).size() == 2u);
}

// A later policy replaces the window: reopened, closed again, or removed.
template <class Fx>
void sale_window_replaced() {
  Fx fx;
  const auto sku = fx.sku("window-replaced");
  REQUIRE(set_stock(fx, sku, 10) == no_error);
  const sale_time now = fx.sale_now();
  const sale_time later = now + std::chrono::hours(1);
  REQUIRE(set_window(fx, sku, 0, later, later + std::chrono::hours(1)) == no_error);
  CHECK(buy_in_window(fx, sku, 1, "alice").status == reserve_status::not_started);
  // Opened now, for an hour.
  REQUIRE(set_window(fx, sku, 0, sale_time{}, later) == no_error);
  CHECK(buy_in_window(fx, sku, 2, "alice").status == reserve_status::reserved);
  // Ended an hour ago.
  REQUIRE(set_window(fx, sku, 0, now - std::chrono::hours(2), now - std::chrono::hours(1)) ==
          no_error);
  CHECK(buy_in_window(fx, sku, 3, "alice").status == reserve_status::ended);
  // No window at all: the default bounds.
  REQUIRE(set_window(fx, sku, 0, sale_time{}, max_sale_time) == no_error);
  CHECK(buy_in_window(fx, sku, 4, "alice").status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 8, 2, 0);
}

// Windows out of range, or ending before they start, are refused and change nothing.
template <class Fx>
void sale_window_bad() {
  Fx fx;
  const auto sku = fx.sku("window-bad");
  auto [dec, defaults] = get_policy(fx, sku);
  CHECK(dec == no_error);
  CHECK(defaults.sale_start == sale_time{});
  CHECK(defaults.sale_end == max_sale_time);
  const sale_time now = fx.sale_now();
  const sale_time start = now + std::chrono::hours(1);
  REQUIRE(set_window(fx, sku, 2, start, start + std::chrono::hours(1)) == no_error);
  using std::chrono::milliseconds;
  CHECK(set_window(fx, sku, 2, start, start) == errc::invalid_argument);  // empty
  CHECK(set_window(fx, sku, 2, start, start - milliseconds(1)) == errc::invalid_argument);
  CHECK(set_window(fx, sku, 2, sale_time{milliseconds(-1)}, start) == errc::invalid_argument);
  CHECK(set_window(fx, sku, 2, start, max_sale_time + milliseconds(1)) == errc::invalid_argument);
  CHECK(set_window(fx, sku, 2, sale_time{}, sale_time{}) == errc::invalid_argument);
  CHECK(sku_policy_problem(sku_policy{.per_user_limit = 1, .sale_start = start, .sale_end = start})
            .find(std::to_string(start.time_since_epoch().count())) != std::string::npos);
  auto [pec, kept] = get_policy(fx, sku);
  CHECK(pec == no_error);
  CHECK(kept.per_user_limit == 2);
  CHECK(kept.sale_start == start);
  CHECK(kept.sale_end == start + std::chrono::hours(1));
}

}  // namespace seckill::test::conformance

/// The sale window cases, expanded by SECKILL_STORE_CONFORMANCE_TESTS.
#define SECKILL_STORE_CONFORMANCE_WINDOW_TESTS(Fixture, name)                                   \
  TEST_CASE(name " store: the sale window refuses early and late reserves and takes nothing") { \
    ::seckill::test::conformance::sale_window<Fixture>();                                       \
  }                                                                                             \
  TEST_CASE(name " store: a later policy replaces the sale window") {                           \
    ::seckill::test::conformance::sale_window_replaced<Fixture>();                              \
  }                                                                                             \
  TEST_CASE(name " store: bad sale windows are refused and change nothing") {                   \
    ::seckill::test::conformance::sale_window_bad<Fixture>();                                   \
  }
