#pragma once
// The fenced half of the reaper's contract (store/store.hpp,
// `async_reap_expired(sku, limit, fence)`): the highest fence wins, a lower
// one is refused and takes nothing, and racing reapers return each unit once.
// Included by store_conformance.hpp, whose helpers it uses; its cases are
// part of SECKILL_STORE_CONFORMANCE_TESTS.

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace seckill::test::conformance {

template <class Fx>
std::tuple<std::error_code, std::size_t> fenced_reap(Fx& fx, std::string_view sku,
                                                     std::size_t limit, std::int64_t fence) {
  return wait<std::error_code, std::size_t>(
      fx, [&](auto h) { fx.store().async_reap_expired(sku, limit, fence, h); });
}

/// Reserves one unit for each of `orders` and lets their holds pass.
template <class Fx>
void expired_holds(Fx& fx, std::string_view sku, std::initializer_list<std::int64_t> orders) {
  for (const auto id : orders) {
    CAPTURE(id);
    REQUIRE(reserve_ok(fx, sku, 1, id).status == reserve_status::reserved);
  }
  fx.let_time_pass(fx.hold() * 2);
}

template <class Fx>
void fence_orders_reapers() {
  Fx fx;
  const auto sku = fx.sku("fence");
  const std::int64_t total = 10;
  REQUIRE(set_stock(fx, sku, total) == no_error);
  expired_holds(fx, sku, {1, 2, 3});
  // A first fence is accepted and reaps.
  auto [e1, n1] = fenced_reap(fx, sku, 1, 5);
  CHECK(e1 == no_error);
  CHECK(n1 == 1u);
  // A lower fence is refused and takes nothing.
  auto [e2, n2] = fenced_reap(fx, sku, 10, 3);
  CHECK(e2 == errc::fenced_out);
  CHECK(n2 == 0u);
  check_level(stock_ok(fx, sku), total - 2, 2, 0);
  // The same fence again is accepted.
  auto [e3, n3] = fenced_reap(fx, sku, 10, 5);
  CHECK(e3 == no_error);
  CHECK(n3 == 2u);
  check_level(stock_ok(fx, sku), total, 0, 0);
  // A higher one raises the record: the former fence is refused from then on.
  expired_holds(fx, sku, {4, 5});
  auto [e4, n4] = fenced_reap(fx, sku, 10, 7);
  CHECK(e4 == no_error);
  CHECK(n4 == 2u);
  expired_holds(fx, sku, {6});
  auto [e5, n5] = fenced_reap(fx, sku, 10, 5);
  CHECK(e5 == errc::fenced_out);
  CHECK(n5 == 0u);
  check_level(stock_ok(fx, sku), total - 1, 1, 0);
  // A reap without a fence is never refused and leaves the record as it was.
  auto [e6, n6] = reap(fx, sku, 10);
  CHECK(e6 == no_error);
  CHECK(n6 == 1u);
  check_level(stock_ok(fx, sku), total, 0, 0);
  CHECK(std::get<0>(fenced_reap(fx, sku, 10, 6)) == errc::fenced_out);
  CHECK(std::get<0>(fenced_reap(fx, sku, 10, 7)) == no_error);
  // Every refused order stayed given back once: a commit says so.
  for (std::int64_t id : {1, 2, 3, 4, 5, 6}) {
    CAPTURE(id);
    CHECK(std::get<0>(commit(fx, sku, id)) == errc::order_rolled_back);
  }
  check_level(stock_ok(fx, sku), total, 0, 0);
}

template <class Fx>
void fence_per_sku() {
  Fx fx;
  const auto a = fx.sku("fence-a");
  const auto b = fx.sku("fence-b");
  REQUIRE(set_stock(fx, a, 3) == no_error);
  REQUIRE(set_stock(fx, b, 3) == no_error);
  CHECK(std::get<0>(fenced_reap(fx, a, 10, 9)) == no_error);
  expired_holds(fx, b, {1});
  // SKU a's fence says nothing about SKU b.
  auto [eb, nb] = fenced_reap(fx, b, 10, 2);
  CHECK(eb == no_error);
  CHECK(nb == 1u);
  // A SKU never set records the fence too, so a later sale of it is fenced.
  const auto never = fx.sku("fence-never-set");
  auto [en, nn] = fenced_reap(fx, never, 10, 4);
  CHECK(en == no_error);
  CHECK(nn == 0u);
  CHECK(std::get<0>(fenced_reap(fx, never, 10, 3)) == errc::fenced_out);
  REQUIRE(set_stock(fx, never, 1) == no_error);
  expired_holds(fx, never, {1});
  CHECK(std::get<0>(fenced_reap(fx, never, 10, 3)) == errc::fenced_out);
  check_level(stock_ok(fx, never), 0, 1, 0);
  CHECK(std::get<1>(fenced_reap(fx, never, 10, 4)) == 1u);
  check_level(stock_ok(fx, never), 1, 0, 0);
}

template <class Fx>
void fence_out_of_range() {
  Fx fx;
  const auto sku = fx.sku("fence-range");
  REQUIRE(set_stock(fx, sku, 2) == no_error);
  expired_holds(fx, sku, {1});
  for (const std::int64_t fence : {std::int64_t{0}, std::int64_t{-1}, max_units + 1}) {
    CAPTURE(fence);
    auto [ec, n] = fenced_reap(fx, sku, 10, fence);
    CHECK(ec == errc::invalid_argument);
    CHECK(n == 0u);
  }
  check_level(stock_ok(fx, sku), 1, 1, 0);
  // A refused fence recorded nothing: fence 1 still reaps.
  CHECK(std::get<1>(fenced_reap(fx, sku, 10, 1)) == 1u);
  CHECK(std::get<1>(fenced_reap(fx, sku, 10, max_units)) == 0u);
}

/// Reapers racing over the same expired holds (two leaders' overlapping
/// terms, one fence each, and one without): every hold comes back once.
template <class Fx>
void fence_racing_reapers() {
  Fx fx;
  const auto sku = fx.sku("fence-race");
  const std::int64_t holds = 24;
  REQUIRE(set_stock(fx, sku, holds + 1) == no_error);
  for (std::int64_t id = 1; id <= holds; ++id) {
    CAPTURE(id);
    REQUIRE(reserve_ok(fx, sku, 1, id).status == reserve_status::reserved);
  }
  fx.let_time_pass(fx.hold() * 2);
  std::size_t reaped = 0;
  int done = 0;
  const int reapers = 6;
  for (int r = 0; r < reapers; ++r) {
    auto count = [&](std::error_code ec, std::size_t n) {
      CHECK_MESSAGE((!ec || ec == errc::fenced_out), ec.message());
      reaped += n;
      ++done;
    };
    if (r % 3 == 2)
      fx.store().async_reap_expired(sku, 5, count);
    else
      fx.store().async_reap_expired(sku, 5, std::int64_t{1} + r % 3, count);
  }
  auto& io = fx.io();
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (done < reapers) {
    if (std::chrono::steady_clock::now() > give_up) FAIL("the racing reaps did not complete");
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  // Whatever the lower fence managed before the higher one acted, and the
  // rest by a last reap: each hold exactly once.
  auto [ec, rest] = fenced_reap(fx, sku, SIZE_MAX, 2);
  CHECK(ec == no_error);
  CHECK(reaped + rest == static_cast<std::size_t>(holds));
  check_level(stock_ok(fx, sku), holds + 1, 0, 0);
  CHECK(std::get<0>(fenced_reap(fx, sku, 1, 1)) == errc::fenced_out);
}

}  // namespace seckill::test::conformance

#define SECKILL_STORE_CONFORMANCE_FENCE_TESTS(Fixture, name)                                \
  TEST_CASE(name " store: a fenced reap with a lower fence is refused and takes nothing") { \
    ::seckill::test::conformance::fence_orders_reapers<Fixture>();                          \
  }                                                                                         \
  TEST_CASE(name " store: the fence is kept per SKU and for a SKU never set") {             \
    ::seckill::test::conformance::fence_per_sku<Fixture>();                                 \
  }                                                                                         \
  TEST_CASE(name " store: a fence out of range is refused with invalid_argument") {         \
    ::seckill::test::conformance::fence_out_of_range<Fixture>();                            \
  }                                                                                         \
  TEST_CASE(name " store: racing fenced and unfenced reapers give each hold back once") {   \
    ::seckill::test::conformance::fence_racing_reapers<Fixture>();                          \
  }
