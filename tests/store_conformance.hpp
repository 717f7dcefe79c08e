#pragma once
// The stock_store conformance suite: every line of the contract in
// include/seckill/store/store.hpp, run against any backend.
//
// Use it by placing the macro inside the TEST_SUITE your backend's tests
// belong to; each check becomes a TEST_CASE named "<name> store: ..." (no
// commas or parentheses in the names: CTest labels survive them badly):
//
//   TEST_SUITE("concurrent") { SECKILL_STORE_CONFORMANCE_TESTS(memory_fixture, "memory") }
//   TEST_SUITE("integration") { SECKILL_STORE_CONFORMANCE_TESTS(redis_fixture, "redis") }
//
// The Fixture is default-constructible and owns everything the store needs
// (its server, temp directory, io_context); every TEST_CASE makes a fresh one.
//
//   struct Fixture {
//     Fixture();                                       // starts/creates the store
//     Store& store();                                  // models seckill::stock_store
//     boost::asio::io_context& io();                   // the suite runs it (from 2 threads in
//                                                      //   the concurrent test); the store's
//                                                      //   completions must arrive through it
//     void let_time_pass(std::chrono::milliseconds d); // manual clock advance, or a real sleep
//     std::chrono::milliseconds hold();                // the hold used in expiry tests; the suite
//                                                      //   lets 2 * hold() pass to expire one
//     std::string sku(std::string_view name);          // a key unique to this run
//   };
//
// The suite never waits on io() unbounded: it runs it until the operation at
// hand completes (30 s at most), and the concurrent tests stop it once their
// coroutines are done (120 s at most), so a store may keep reads pending on it.
// Order ids are small positive integers, unique per SKU within a test.

#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include <doctest/doctest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

namespace seckill::test::conformance {

using namespace std::chrono_literals;
namespace asio = boost::asio;

/// Starts an operation with a callback and runs the fixture's io_context until
/// the callback has run (30 s at most); returns the completion's arguments.
template <class... Ts, class Fx, class Start>
std::tuple<Ts...> wait(Fx& fx, Start start) {
  std::optional<std::tuple<Ts...>> out;
  start([&out](Ts... values) { out.emplace(std::move(values)...); });
  auto& io = fx.io();
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!out) {
    if (std::chrono::steady_clock::now() > give_up)
      FAIL("the store's operation did not complete within 30 s");
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return std::move(*out);
}

template <class Fx>
std::error_code set_stock(Fx& fx, std::string_view sku, std::int64_t qty) {
  return std::get<0>(
      wait<std::error_code>(fx, [&](auto h) { fx.store().async_set_stock(sku, qty, h); }));
}
template <class Fx>
std::tuple<std::error_code, stock_level> stock(Fx& fx, std::string_view sku) {
  return wait<std::error_code, stock_level>(fx, [&](auto h) { fx.store().async_stock(sku, h); });
}
template <class Fx>
stock_level stock_ok(Fx& fx, std::string_view sku) {
  auto [ec, level] = stock(fx, sku);
  REQUIRE_MESSAGE(!ec, ec.message());
  return level;
}
template <class Fx>
std::tuple<std::error_code, reserve_result> reserve(Fx& fx, std::string_view sku, std::int64_t qty,
                                                    std::int64_t order,
                                                    std::chrono::milliseconds hold) {
  return wait<std::error_code, reserve_result>(
      fx, [&](auto h) { fx.store().async_reserve(sku, qty, order, hold, h); });
}
template <class Fx>
reserve_result reserve_ok(Fx& fx, std::string_view sku, std::int64_t qty, std::int64_t order) {
  auto [ec, r] = reserve(fx, sku, qty, order, fx.hold());
  REQUIRE_MESSAGE(!ec, ec.message());
  return r;
}
template <class Fx>
std::tuple<std::error_code, settle_result> commit(Fx& fx, std::string_view sku,
                                                  std::int64_t order) {
  return wait<std::error_code, settle_result>(
      fx, [&](auto h) { fx.store().async_commit(sku, order, h); });
}
template <class Fx>
std::tuple<std::error_code, settle_result> rollback(Fx& fx, std::string_view sku,
                                                    std::int64_t order) {
  return wait<std::error_code, settle_result>(
      fx, [&](auto h) { fx.store().async_rollback(sku, order, h); });
}
template <class Fx>
std::tuple<std::error_code, std::size_t> reap(Fx& fx, std::string_view sku, std::size_t limit) {
  return wait<std::error_code, std::size_t>(
      fx, [&](auto h) { fx.store().async_reap_expired(sku, limit, h); });
}

inline void check_level(const stock_level& l, std::int64_t remaining, std::int64_t reserved,
                        std::int64_t committed) {
  CHECK(l.remaining == remaining);
  CHECK(l.reserved == reserved);
  CHECK(l.committed == committed);
}

inline const std::error_code no_error{};

/// Whether the fixture's store splits SKUs over shards (`static constexpr
/// bool split_stock = true;` in the fixture): its reserve answers what the
/// buyer's shard has left, at most what the SKU has (store/store.hpp).
template <class Fx>
constexpr bool split_stock() {
  if constexpr (requires { Fx::split_stock; })
    return Fx::split_stock;
  else
    return false;
}

/// A fresh reserve's `remaining`: what the SKU has left, or for a split
/// store at most that.
template <class Fx>
void check_remaining(std::int64_t got, std::int64_t expected) {
  if constexpr (split_stock<Fx>()) {
    CHECK(got >= 0);
    CHECK(got <= expected);
  } else {
    CHECK(got == expected);
  }
}

template <class Fx>
void set_and_stock() {
  Fx fx;
  const auto sku = fx.sku("set-and-stock");
  CHECK(std::get<0>(stock(fx, sku)) == errc::unknown_sku);
  CHECK(set_stock(fx, sku, 10) == no_error);
  check_level(stock_ok(fx, sku), 10, 0, 0);
  CHECK(set_stock(fx, sku, 7) == no_error);
  check_level(stock_ok(fx, sku), 7, 0, 0);
  CHECK(set_stock(fx, sku, 0) == no_error);
  check_level(stock_ok(fx, sku), 0, 0, 0);
  // Another SKU is independent.
  const auto other = fx.sku("set-and-stock-other");
  CHECK(std::get<0>(stock(fx, other)) == errc::unknown_sku);
  CHECK(set_stock(fx, other, 3) == no_error);
  check_level(stock_ok(fx, other), 3, 0, 0);
  check_level(stock_ok(fx, sku), 0, 0, 0);
}

template <class Fx>
void set_keeps_holds_and_commits() {
  Fx fx;
  const auto sku = fx.sku("set-keeps");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  REQUIRE(reserve_ok(fx, sku, 2, 1).status == reserve_status::reserved);
  REQUIRE(std::get<0>(commit(fx, sku, 1)) == no_error);
  REQUIRE(reserve_ok(fx, sku, 1, 2).status == reserve_status::reserved);
  CHECK(set_stock(fx, sku, 10) == no_error);
  check_level(stock_ok(fx, sku), 10, 1, 2);
  CHECK(std::get<0>(rollback(fx, sku, 2)) == no_error);
  check_level(stock_ok(fx, sku), 11, 0, 2);
  CHECK(std::get<0>(commit(fx, sku, 1)) == no_error);  // still committed: "already"
  CHECK(std::get<1>(commit(fx, sku, 1)).status == settle_status::already);
}

template <class Fx>
void reserve_unknown_sku() {
  Fx fx;
  const auto sku = fx.sku("never-set");
  auto r = reserve_ok(fx, sku, 1, 1);
  CHECK(r.status == reserve_status::unknown_sku);
  CHECK_FALSE(r.replayed);
  CHECK(std::get<0>(stock(fx, sku)) == errc::unknown_sku);  // reserving did not create it
}

template <class Fx>
void reserve_all_or_nothing() {
  Fx fx;
  const auto sku = fx.sku("all-or-nothing");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  auto r = reserve_ok(fx, sku, 3, 1);
  CHECK(r.status == reserve_status::reserved);
  check_remaining<Fx>(r.remaining, 2);
  CHECK_FALSE(r.replayed);
  r = reserve_ok(fx, sku, 3, 2);  // 3 asked, 2 left: nothing taken
  CHECK(r.status == reserve_status::sold_out);
  check_remaining<Fx>(r.remaining, 2);
  check_level(stock_ok(fx, sku), 2, 3, 0);
  r = reserve_ok(fx, sku, 2, 3);
  CHECK(r.status == reserve_status::reserved);
  CHECK(r.remaining == 0);
  r = reserve_ok(fx, sku, 1, 4);
  CHECK(r.status == reserve_status::sold_out);
  CHECK(r.remaining == 0);
  check_level(stock_ok(fx, sku), 0, 5, 0);
}

template <class Fx>
void reserve_is_idempotent() {
  Fx fx;
  const auto sku = fx.sku("idempotent");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  auto first = reserve_ok(fx, sku, 2, 1);
  REQUIRE(first.status == reserve_status::reserved);
  check_remaining<Fx>(first.remaining, 3);
  CHECK_FALSE(first.replayed);
  for (std::int64_t qty :
       {2, 4, 1}) {  // the same order id, whatever the quantity: the first answer
    auto again = reserve_ok(fx, sku, qty, 1);
    CHECK(again.status == reserve_status::reserved);
    CHECK(again.remaining == first.remaining);
    CHECK(again.replayed);
  }
  check_level(stock_ok(fx, sku), 3, 2, 0);  // deducted once
  // Another order moves the stock; the replay still answers what it answered first.
  check_remaining<Fx>(reserve_ok(fx, sku, 1, 2).remaining, 2);
  CHECK(reserve_ok(fx, sku, 2, 1).remaining == first.remaining);
  // A refusal is an answer too: replayed as sold out even once stock would allow it.
  auto refused = reserve_ok(fx, sku, 10, 3);
  CHECK(refused.status == reserve_status::sold_out);
  CHECK_FALSE(refused.replayed);
  auto refused_again = reserve_ok(fx, sku, 1, 3);
  CHECK(refused_again.status == reserve_status::sold_out);
  CHECK(refused_again.replayed);
  check_level(stock_ok(fx, sku), 2, 3, 0);
  // After a rollback, a replayed reserve does not take the units again.
  REQUIRE(std::get<0>(rollback(fx, sku, 1)) == no_error);
  check_level(stock_ok(fx, sku), 4, 1, 0);
  auto after = reserve_ok(fx, sku, 2, 1);
  CHECK(after.replayed);
  CHECK(after.status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 4, 1, 0);
}

template <class Fx>
void commit_then_refusals() {
  Fx fx;
  const auto sku = fx.sku("commit");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  REQUIRE(reserve_ok(fx, sku, 2, 1).status == reserve_status::reserved);
  auto [ec, r] = commit(fx, sku, 1);
  CHECK(ec == no_error);
  CHECK(r.status == settle_status::done);
  check_level(stock_ok(fx, sku), 3, 0, 2);
  auto [ec2, r2] = commit(fx, sku, 1);
  CHECK(ec2 == no_error);
  CHECK(r2.status == settle_status::already);
  check_level(stock_ok(fx, sku), 3, 0, 2);
  CHECK(std::get<0>(rollback(fx, sku, 1)) == errc::order_committed);
  check_level(stock_ok(fx, sku), 3, 0, 2);
}

template <class Fx>
void rollback_then_refusals() {
  Fx fx;
  const auto sku = fx.sku("rollback");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  REQUIRE(reserve_ok(fx, sku, 2, 1).status == reserve_status::reserved);
  auto [ec, r] = rollback(fx, sku, 1);
  CHECK(ec == no_error);
  CHECK(r.status == settle_status::done);
  check_level(stock_ok(fx, sku), 5, 0, 0);
  auto [ec2, r2] = rollback(fx, sku, 1);
  CHECK(ec2 == no_error);
  CHECK(r2.status == settle_status::already);
  check_level(stock_ok(fx, sku), 5, 0, 0);
  CHECK(std::get<0>(commit(fx, sku, 1)) == errc::order_rolled_back);
  check_level(stock_ok(fx, sku), 5, 0, 0);
}

template <class Fx>
void unknown_orders() {
  Fx fx;
  const auto sku = fx.sku("unknown-order");
  REQUIRE(set_stock(fx, sku, 1) == no_error);
  CHECK(std::get<0>(commit(fx, sku, 42)) == errc::unknown_order);
  CHECK(std::get<0>(rollback(fx, sku, 42)) == errc::unknown_order);
  // An order refused as sold out was never reserved.
  REQUIRE(reserve_ok(fx, sku, 2, 7).status == reserve_status::sold_out);
  CHECK(std::get<0>(commit(fx, sku, 7)) == errc::unknown_order);
  CHECK(std::get<0>(rollback(fx, sku, 7)) == errc::unknown_order);
  // An order on a SKU never set was never reserved either.
  const auto never = fx.sku("unknown-order-never-set");
  CHECK(std::get<0>(commit(fx, never, 1)) == errc::unknown_order);
  CHECK(std::get<0>(rollback(fx, never, 1)) == errc::unknown_order);
  check_level(stock_ok(fx, sku), 1, 0, 0);
}

template <class Fx>
void commit_after_hold_refused() {
  Fx fx;
  const auto sku = fx.sku("late-commit");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  REQUIRE(reserve_ok(fx, sku, 3, 1).status == reserve_status::reserved);
  REQUIRE(reserve_ok(fx, sku, 1, 2).status == reserve_status::reserved);
  REQUIRE(std::get<0>(commit(fx, sku, 2)) == no_error);
  fx.let_time_pass(fx.hold() * 2);
  CHECK(std::get<0>(commit(fx, sku, 1)) == errc::order_rolled_back);
  check_level(stock_ok(fx, sku), 4, 0, 1);  // the units went back, the committed order stayed
  auto [ec, r] = rollback(fx, sku, 1);
  CHECK(ec == no_error);
  CHECK(r.status == settle_status::already);
  CHECK(std::get<1>(reap(fx, sku, 10)) == 0u);  // nothing left for the reaper
  check_level(stock_ok(fx, sku), 4, 0, 1);
}

template <class Fx>
void rollback_after_hold_gives_back_once() {
  Fx fx;
  const auto sku = fx.sku("late-rollback");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  REQUIRE(reserve_ok(fx, sku, 2, 1).status == reserve_status::reserved);
  fx.let_time_pass(fx.hold() * 2);
  auto [ec, r] = rollback(fx, sku, 1);
  CHECK(ec == no_error);
  CHECK(std::get<1>(reap(fx, sku, 10)) == 0u);
  check_level(stock_ok(fx, sku), 5, 0, 0);  // given back exactly once
  auto [ec2, r2] = rollback(fx, sku, 1);
  CHECK(ec2 == no_error);
  CHECK(r2.status == settle_status::already);
  check_level(stock_ok(fx, sku), 5, 0, 0);
}

template <class Fx>
void reaper_with_limit() {
  Fx fx;
  const auto sku = fx.sku("reaper");
  REQUIRE(set_stock(fx, sku, 20) == no_error);
  CHECK(std::get<1>(reap(fx, sku, 10)) == 0u);  // nothing held
  REQUIRE(reserve_ok(fx, sku, 1, 1).status == reserve_status::reserved);
  REQUIRE(reserve_ok(fx, sku, 2, 2).status == reserve_status::reserved);
  REQUIRE(reserve_ok(fx, sku, 3, 3).status == reserve_status::reserved);
  REQUIRE(reserve_ok(fx, sku, 4, 4).status == reserve_status::reserved);
  REQUIRE(std::get<0>(commit(fx, sku, 4)) == no_error);
  REQUIRE(reserve_ok(fx, sku, 5, 5).status == reserve_status::reserved);
  REQUIRE(std::get<0>(rollback(fx, sku, 5)) == no_error);
  CHECK(std::get<1>(reap(fx, sku, 10)) == 0u);  // holds not yet passed
  check_level(stock_ok(fx, sku), 10, 6, 4);
  fx.let_time_pass(fx.hold() * 2);
  REQUIRE(reserve_ok(fx, sku, 6, 6).status == reserve_status::reserved);  // a fresh hold
  check_level(stock_ok(fx, sku), 4, 12, 4);
  auto [ec, n] = reap(fx, sku, 2);
  CHECK(ec == no_error);
  CHECK(n == 2u);
  auto [ec2, n2] = reap(fx, sku, 10);
  CHECK(ec2 == no_error);
  CHECK(n2 == 1u);  // the third expired hold; the fresh one stays
  CHECK(std::get<1>(reap(fx, sku, 10)) == 0u);
  check_level(stock_ok(fx, sku), 10, 6, 4);
  for (std::int64_t id : {1, 2, 3}) {
    CAPTURE(id);
    CHECK(std::get<0>(commit(fx, sku, id)) == errc::order_rolled_back);
  }
  CHECK(std::get<0>(commit(fx, sku, 6)) == no_error);
  check_level(stock_ok(fx, sku), 10, 0, 10);
  // Reaping a SKU never set reaps nothing.
  auto [ec3, n3] = reap(fx, fx.sku("reaper-never-set"), 10);
  CHECK(ec3 == no_error);
  CHECK(n3 == 0u);
}

template <class Fx>
void bad_arguments() {
  Fx fx;
  const auto sku = fx.sku("bad-arguments");
  REQUIRE(set_stock(fx, sku, 5) == no_error);
  CHECK(set_stock(fx, sku, -1) == errc::invalid_argument);
  CHECK(set_stock(fx, "", 5) == errc::invalid_argument);
  CHECK(std::get<0>(reserve(fx, sku, 0, 1, fx.hold())) == errc::invalid_argument);
  CHECK(std::get<0>(reserve(fx, sku, -2, 2, fx.hold())) == errc::invalid_argument);
  CHECK(std::get<0>(reserve(fx, sku, 1, 3, 0ms)) == errc::invalid_argument);
  CHECK(std::get<0>(reserve(fx, sku, 1, 4, -5ms)) == errc::invalid_argument);
  CHECK(std::get<0>(reserve(fx, "", 1, 5, fx.hold())) == errc::invalid_argument);
  check_level(stock_ok(fx, sku), 5, 0, 0);
  // A refused call records nothing: the same order ids still work.
  CHECK(reserve_ok(fx, sku, 1, 1).status == reserve_status::reserved);
  CHECK(reserve_ok(fx, sku, 1, 3).status == reserve_status::reserved);
  check_level(stock_ok(fx, sku), 3, 2, 0);
}

// K coroutines on 2 threads race for the units of several SKUs.
template <class Fx>
void concurrent_no_oversell() {
  Fx fx;
  constexpr int coroutines = 64;
  constexpr int attempts_each = 8;
  const std::vector<std::int64_t> initial{10, 50, 128,
                                          200};  // below, at and above the 128 attempts per SKU
  const auto skus_n = static_cast<int>(initial.size());
  std::vector<std::string> skus;
  for (int i = 0; i < skus_n; ++i) skus.push_back(fx.sku("race-" + std::to_string(i)));
  for (int i = 0; i < skus_n; ++i) REQUIRE(set_stock(fx, skus[i], initial[i]) == no_error);

  struct tally {
    std::atomic<std::int64_t> attempts{0}, reserved{0}, sold_out{0}, committed{0}, rolled_back{0};
  };
  std::vector<tally> tallies(initial.size());
  std::atomic<int> negative{0}, errors{0}, snapshots_bad{0}, finished{0};
  std::mutex failure_mutex;
  std::string failure;
  auto note = [&](std::string what) {
    std::lock_guard lock(failure_mutex);
    if (failure.empty()) failure = std::move(what);
  };

  auto& io = fx.io();
  io.restart();
  auto buyer = [&](int k) -> asio::awaitable<void> {
    for (int a = 0; a < attempts_each; ++a) {
      const int s = (k + a) % skus_n;
      const std::int64_t order = 1 + k * attempts_each + a;
      tallies[s].attempts.fetch_add(1);
      auto [ec, r] = co_await fx.store().async_reserve(skus[s], 1, order, 60s,
                                                       asio::as_tuple(asio::use_awaitable));
      if (ec) {
        errors.fetch_add(1);
        note("reserve: " + ec.message());
        continue;
      }
      if (r.remaining < 0) negative.fetch_add(1);
      if (r.status == reserve_status::sold_out) {
        tallies[s].sold_out.fetch_add(1);
        continue;
      }
      if (r.status != reserve_status::reserved) {
        errors.fetch_add(1);
        note("unexpected reserve status");
        continue;
      }
      tallies[s].reserved.fetch_add(1);
      if (order % 3 == 0) {
        auto [ec2, st] =
            co_await fx.store().async_rollback(skus[s], order, asio::as_tuple(asio::use_awaitable));
        if (ec2 || st.status != settle_status::done) {
          errors.fetch_add(1);
          note("rollback: " + ec2.message());
        } else {
          tallies[s].rolled_back.fetch_add(1);
        }
      } else if (order % 3 == 1) {
        auto [ec2, st] =
            co_await fx.store().async_commit(skus[s], order, asio::as_tuple(asio::use_awaitable));
        if (ec2 || st.status != settle_status::done) {
          errors.fetch_add(1);
          note("commit: " + ec2.message());
        } else {
          tallies[s].committed.fetch_add(1);
        }
      }  // else: left held
      // A snapshot taken mid-race is consistent. Rolled-back units may be re-reserved,
      // so only the invariant is checked, not the counts.
      auto [ec3, level] =
          co_await fx.store().async_stock(skus[s], asio::as_tuple(asio::use_awaitable));
      if (ec3 || level.remaining < 0 || level.reserved < 0 ||
          level.remaining + level.reserved + level.committed !=
              initial[static_cast<std::size_t>(s)])
        snapshots_bad.fetch_add(1);
    }
  };
  for (int k = 0; k < coroutines; ++k) {
    asio::co_spawn(io, buyer(k), [&](std::exception_ptr e) {
      if (e) {
        errors.fetch_add(1);
        note("a buyer threw");
      }
      if (finished.fetch_add(1) + 1 == coroutines) io.stop();
    });
  }
  auto runner = [&] {
    try {
      io.run();
    } catch (...) {
      errors.fetch_add(1);
      note("io_context::run threw");
      io.stop();
    }
  };
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  std::thread t1(runner), t2(runner);
  // A watchdog: a backend that never answers fails the test instead of hanging it.
  while (finished.load() < coroutines && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(5ms);
  io.stop();
  t1.join();
  t2.join();
  INFO(failure);
  REQUIRE(finished.load() == coroutines);
  CHECK(errors.load() == 0);
  CHECK(negative.load() == 0);
  CHECK(snapshots_bad.load() == 0);

  for (int s = 0; s < skus_n; ++s) {
    CAPTURE(s);
    const auto& t = tallies[static_cast<std::size_t>(s)];
    const auto init = initial[static_cast<std::size_t>(s)];
    CHECK(t.attempts.load() == coroutines * attempts_each / skus_n);
    CHECK(t.reserved.load() + t.sold_out.load() == t.attempts.load());
    // Every successful reservation took one unit; units rolled back were free to be taken again.
    CHECK(t.reserved.load() - t.rolled_back.load() <= init);
    CHECK(t.reserved.load() >= std::min(init, t.attempts.load()));
    const auto level = stock_ok(fx, skus[static_cast<std::size_t>(s)]);
    CHECK(level.remaining >= 0);
    CHECK(level.committed == t.committed.load());
    CHECK(level.reserved == t.reserved.load() - t.committed.load() - t.rolled_back.load());
    CHECK(level.committed + level.reserved + level.remaining == init);
  }
}

// A race without settling: exactly min(S, attempts) reservations per SKU.
template <class Fx>
void concurrent_exact_reservations() {
  Fx fx;
  constexpr int coroutines = 32;
  constexpr int attempts_each = 8;
  const std::vector<std::int64_t> initial{5, 64, 100};  // 86, 85 and 85 attempts
  const int skus_n = static_cast<int>(initial.size());
  std::vector<std::string> skus;
  for (int i = 0; i < skus_n; ++i) skus.push_back(fx.sku("exact-" + std::to_string(i)));
  for (int i = 0; i < skus_n; ++i) REQUIRE(set_stock(fx, skus[i], initial[i]) == no_error);
  std::vector<std::atomic<std::int64_t>> reserved(initial.size()), attempts(initial.size());
  std::atomic<int> errors{0}, finished{0};
  auto& io = fx.io();
  io.restart();
  auto buyer = [&](int k) -> asio::awaitable<void> {
    for (int a = 0; a < attempts_each; ++a) {
      const int s = (k * attempts_each + a) % skus_n;
      attempts[static_cast<std::size_t>(s)].fetch_add(1);
      auto [ec, r] = co_await fx.store().async_reserve(skus[static_cast<std::size_t>(s)], 1,
                                                       1 + k * attempts_each + a, 60s,
                                                       asio::as_tuple(asio::use_awaitable));
      if (ec || r.remaining < 0)
        errors.fetch_add(1);
      else if (r.status == reserve_status::reserved)
        reserved[static_cast<std::size_t>(s)].fetch_add(1);
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
  for (std::size_t s = 0; s < initial.size(); ++s) {
    CAPTURE(s);
    CHECK(reserved[s].load() == std::min(initial[s], attempts[s].load()));
    const auto level = stock_ok(fx, skus[s]);
    check_level(level, initial[s] - reserved[s].load(), reserved[s].load(), 0);
  }
}

}  // namespace seckill::test::conformance

#include "store_conformance_buyers.hpp"  // IWYU pragma: export
#include "store_conformance_fence.hpp"   // IWYU pragma: export

/// Expands to the conformance TEST_CASEs for `Fixture`, named "<name> store: ...".
#define SECKILL_STORE_CONFORMANCE_TESTS(Fixture, name)                                         \
  TEST_CASE(name " store: set_stock and stock and an unknown sku") {                           \
    ::seckill::test::conformance::set_and_stock<Fixture>();                                    \
  }                                                                                            \
  TEST_CASE(name " store: set_stock keeps holds and committed orders") {                       \
    ::seckill::test::conformance::set_keeps_holds_and_commits<Fixture>();                      \
  }                                                                                            \
  TEST_CASE(name " store: reserve on an unknown sku") {                                        \
    ::seckill::test::conformance::reserve_unknown_sku<Fixture>();                              \
  }                                                                                            \
  TEST_CASE(name " store: reserve is all or nothing") {                                        \
    ::seckill::test::conformance::reserve_all_or_nothing<Fixture>();                           \
  }                                                                                            \
  TEST_CASE(name " store: reserve is idempotent per order id") {                               \
    ::seckill::test::conformance::reserve_is_idempotent<Fixture>();                            \
  }                                                                                            \
  TEST_CASE(name " store: commit then a repeated commit then a rollback after commit") {       \
    ::seckill::test::conformance::commit_then_refusals<Fixture>();                             \
  }                                                                                            \
  TEST_CASE(name " store: rollback then a repeated rollback then a commit after rollback") {   \
    ::seckill::test::conformance::rollback_then_refusals<Fixture>();                           \
  }                                                                                            \
  TEST_CASE(name " store: commit and rollback of unknown orders") {                            \
    ::seckill::test::conformance::unknown_orders<Fixture>();                                   \
  }                                                                                            \
  TEST_CASE(name " store: commit after the hold passed is refused and the units return") {     \
    ::seckill::test::conformance::commit_after_hold_refused<Fixture>();                        \
  }                                                                                            \
  TEST_CASE(name " store: rollback after the hold passed gives back once") {                   \
    ::seckill::test::conformance::rollback_after_hold_gives_back_once<Fixture>();              \
  }                                                                                            \
  TEST_CASE(name " store: the reaper gives back expired holds at most limit at a time") {      \
    ::seckill::test::conformance::reaper_with_limit<Fixture>();                                \
  }                                                                                            \
  TEST_CASE(name " store: bad arguments are refused with invalid_argument") {                  \
    ::seckill::test::conformance::bad_arguments<Fixture>();                                    \
  }                                                                                            \
  TEST_CASE(                                                                                   \
      name                                                                                     \
      " store: K coroutines on 2 threads reserve exactly the minimum of stock and attempts") { \
    ::seckill::test::conformance::concurrent_exact_reservations<Fixture>();                    \
  }                                                                                            \
  TEST_CASE(name " store: a race with commits and rollbacks never oversells") {                \
    ::seckill::test::conformance::concurrent_no_oversell<Fixture>();                           \
  }                                                                                            \
  SECKILL_STORE_CONFORMANCE_BUYER_TESTS(Fixture, name)                                         \
  SECKILL_STORE_CONFORMANCE_FENCE_TESTS(Fixture, name)
