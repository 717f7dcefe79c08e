// memory_store against the stock_store conformance suite, plus what only the
// in-memory store promises (its clock, its sharding, its growth).
#include <seckill/clock.hpp>
#include <seckill/store/memory_store.hpp>

#include "store_conformance.hpp"

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

namespace concurrent_memory_store {

using namespace std::chrono_literals;

/// The conformance fixture for memory_store: holds expire by a manual clock.
struct memory_fixture {
  boost::asio::io_context context;
  seckill::manual_clock clock;
  seckill::memory_store<seckill::manual_clock> store_{
      context.get_executor(), {.orders_per_sku = 4}, clock};

  seckill::memory_store<seckill::manual_clock>& store() { return store_; }
  boost::asio::io_context& io() { return context; }
  void let_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds hold() { return 30s; }
  std::string sku(std::string_view name) { return "sku:" + std::string(name); }
  // the manual clock judges the sale window too, to the millisecond
  seckill::sale_time sale_now() {
    return seckill::sale_time{
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch())};
  }
  void let_sale_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds sale_slack() { return 0ms; }
};

/// A store that forgets settled orders one second after they settle.
struct retention_fixture : memory_fixture {
  seckill::memory_store<seckill::manual_clock> short_memory{
      context.get_executor(), {.orders_per_sku = 4, .order_retention = 1s}, clock};
  seckill::memory_store<seckill::manual_clock>& store() { return short_memory; }
};

}  // namespace concurrent_memory_store

TEST_SUITE("concurrent") {
  SECKILL_STORE_CONFORMANCE_TESTS(concurrent_memory_store::memory_fixture, "memory")
}

using namespace std::chrono_literals;

TEST_SUITE("unit") {
  TEST_CASE("memory_store: a hold expires exactly when it has passed by the store clock") {
    concurrent_memory_store::memory_fixture fx;
    namespace c = seckill::test::conformance;
    REQUIRE(c::set_stock(fx, "edge", 3) == c::no_error);
    REQUIRE(std::get<1>(c::reserve(fx, "edge", 1, 1, 100ms)).status ==
            seckill::reserve_status::reserved);
    REQUIRE(std::get<1>(c::reserve(fx, "edge", 1, 2, 100ms)).status ==
            seckill::reserve_status::reserved);
    fx.clock.advance(99ms);
    CHECK(std::get<1>(c::reap(fx, "edge", 10)) == 0u);
    CHECK(std::get<0>(c::commit(fx, "edge", 1)) == c::no_error);  // still inside its hold
    fx.clock.advance(1ms);
    CHECK(std::get<0>(c::commit(fx, "edge", 2)) == seckill::errc::order_rolled_back);
    c::check_level(c::stock_ok(fx, "edge"), 2, 0, 1);
  }

  TEST_CASE("memory_store: the sale window opens at its start and closes at its end exactly") {
    concurrent_memory_store::memory_fixture fx;
    namespace c = seckill::test::conformance;
    const auto start = fx.sale_now() + 10s;
    const auto end = start + 5s;
    REQUIRE(c::set_stock(fx, "edges", 10) == c::no_error);
    REQUIRE(c::set_window(fx, "edges", 0, start, end) == c::no_error);
    fx.clock.advance(10s - 1ms);
    CHECK(c::buy_in_window(fx, "edges", 1, "alice").status == seckill::reserve_status::not_started);
    fx.clock.advance(1ms);
    CHECK(c::buy_in_window(fx, "edges", 2, "alice").status == seckill::reserve_status::reserved);
    fx.clock.advance(5s - 1ms);
    CHECK(c::buy_in_window(fx, "edges", 3, "alice").status == seckill::reserve_status::reserved);
    fx.clock.advance(1ms);
    CHECK(c::buy_in_window(fx, "edges", 4, "alice").status == seckill::reserve_status::ended);
    CHECK(fx.store().recorded_orders("edges") == 2u);  // the refusals recorded nothing
    c::check_level(c::stock_ok(fx, "edges"), 8, 2, 0);
  }

  TEST_CASE("memory_store: with a steady clock the system clock judges the sale window") {
    boost::asio::io_context io;
    seckill::memory_store<> store(io.get_executor());
    static_assert(
        std::is_same_v<seckill::memory_store<>::sale_clock_type, std::chrono::system_clock>);
    const auto now =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    std::optional<seckill::reserve_result> early, late;
    store.async_set_stock("s", 5, [](std::error_code) {});
    store.async_set_policy("s", {.per_user_limit = 1, .sale_start = now + 1h, .sale_end = now + 2h},
                           [](std::error_code) {});
    store.async_reserve("s", 1, 1, 30s,
                        [&](std::error_code, seckill::reserve_result r) { early = r; });
    store.async_set_policy("s", {.per_user_limit = 1, .sale_start = now - 2h, .sale_end = now - 1h},
                           [](std::error_code) {});
    store.async_reserve("s", 1, 2, 30s,
                        [&](std::error_code, seckill::reserve_result r) { late = r; });
    io.run();
    REQUIRE(early.has_value());
    REQUIRE(late.has_value());
    CHECK(early->status == seckill::reserve_status::not_started);
    CHECK(late->status == seckill::reserve_status::ended);
  }

  TEST_CASE("memory_store: order tables grow past their initial size and keep every answer") {
    concurrent_memory_store::memory_fixture fx;  // sized for 4 orders per SKU
    namespace c = seckill::test::conformance;
    REQUIRE(c::set_stock(fx, "grow", 1000) == c::no_error);
    for (std::int64_t id = 1; id <= 600; ++id)
      REQUIRE(c::reserve_ok(fx, "grow", 1, id * 7919).status == seckill::reserve_status::reserved);
    for (std::int64_t id = 1; id <= 600; ++id) {
      const auto r = c::reserve_ok(fx, "grow", 1, id * 7919);
      REQUIRE(r.replayed);
      REQUIRE(r.remaining == 1000 - id);
    }
    c::check_level(c::stock_ok(fx, "grow"), 400, 600, 0);
  }

  TEST_CASE("memory_store: completions never run inside the initiating call") {
    concurrent_memory_store::memory_fixture fx;
    bool ran = false;
    fx.store().async_set_stock("inline", 1, [&](std::error_code) { ran = true; });
    CHECK_FALSE(ran);
    fx.io().run();
    CHECK(ran);
  }

  TEST_CASE("memory_store: settled and refused orders are forgotten after order_retention") {
    concurrent_memory_store::retention_fixture fx;
    namespace c = seckill::test::conformance;
    using seckill::reserve_status;
    REQUIRE(c::set_stock(fx, "tea", 10) == c::no_error);
    REQUIRE(c::reserve_ok(fx, "tea", 2, 1).status == reserve_status::reserved);
    REQUIRE(c::reserve_ok(fx, "tea", 100, 2).status == reserve_status::sold_out);
    REQUIRE(c::reserve_ok(fx, "tea", 1, 3).status == reserve_status::reserved);  // stays held
    REQUIRE(std::get<0>(c::commit(fx, "tea", 1)) == c::no_error);
    CHECK(fx.store().recorded_orders("tea") == 3);
    fx.clock.advance(999ms);
    auto replay = c::reserve_ok(fx, "tea", 2, 1);
    CHECK(replay.replayed);  // still within the retention: the first answer
    CHECK(c::reserve_ok(fx, "tea", 100, 2).replayed);
    fx.clock.advance(1ms);
    CHECK(std::get<1>(c::reap(fx, "tea", 10)) == 0u);  // any operation forgets what is due
    CHECK(fx.store().recorded_orders("tea") == 1);     // order 3 is held: never forgotten
    // The refused id is new again.
    CHECK_FALSE(c::reserve_ok(fx, "tea", 100, 2).replayed);
    // The committed one is sold for good: its record is gone, its sale answers.
    auto [ec1, s1] = c::commit(fx, "tea", 1);
    CHECK(ec1 == c::no_error);
    CHECK(s1.status == seckill::settle_status::already);
    CHECK(std::get<0>(c::rollback(fx, "tea", 1)) == seckill::errc::order_committed);
    const auto again = c::reserve_ok(fx, "tea", 2, 1);
    CHECK(again.replayed);
    CHECK(again.state == seckill::order_state::committed);
    CHECK(std::get<0>(c::commit(fx, "tea", 3)) ==
          c::no_error);  // held past the retention, still good
    c::check_level(c::stock_ok(fx, "tea"), 7, 0, 3);
    CHECK(fx.store().recorded_orders("tea") == 2);  // 2 (refused again) and 3
  }

  TEST_CASE("memory_store: memory follows the orders of the last retention period") {
    concurrent_memory_store::retention_fixture fx;  // 1 s retention, tables sized for 4
    namespace c = seckill::test::conformance;
    REQUIRE(c::set_stock(fx, "flow", 1'000'000) == c::no_error);
    std::size_t most = 0;
    for (std::int64_t id = 1; id <= 20'000; ++id) {
      REQUIRE(c::reserve_ok(fx, "flow", 1, id).status == seckill::reserve_status::reserved);
      if (id % 2 == 0)
        REQUIRE(std::get<0>(c::commit(fx, "flow", id)) == c::no_error);
      else
        REQUIRE(std::get<0>(c::rollback(fx, "flow", id)) == c::no_error);
      fx.clock.advance(1ms);  // 1000 orders settle per retention period
      if (id > 600 && id % 97 == 0) {
        // an order 500 ms old answers as it did; one 1.5 s old is forgotten
        auto [e1, s1] = c::commit(fx, "flow", id - 500 - (id % 2));
        CHECK(e1 == c::no_error);
        CHECK(s1.status == seckill::settle_status::already);
        // forgotten: a rolled-back id is unknown, a committed one is a sale for good
        if (id > 1600 && (id - 1500) % 2 != 0)
          CHECK(std::get<0>(c::commit(fx, "flow", id - 1500)) == seckill::errc::unknown_order);
        if (id > 1600 && (id - 1500) % 2 == 0)
          CHECK(std::get<1>(c::commit(fx, "flow", id - 1500)).status ==
                seckill::settle_status::already);
      }
      most = std::max(most, fx.store().recorded_orders("flow"));
    }
    CHECK(most <= 1001);
    CHECK(most >= 999);
    c::check_level(c::stock_ok(fx, "flow"), 1'000'000 - 10'000, 0, 10'000);
  }

  TEST_CASE("memory_store: a request binding is forgotten with its order unless it was sold") {
    concurrent_memory_store::retention_fixture fx;  // 1 s retention
    namespace c = seckill::test::conformance;
    using seckill::reserve_status;
    REQUIRE(c::set_stock(fx, "jam", 10) == c::no_error);
    REQUIRE(c::set_policy(fx, "jam", 0) == c::no_error);
    REQUIRE(c::buy(fx, "jam", 1, "alice", 2, "r-1").status == reserve_status::reserved);
    REQUIRE(std::get<0>(c::commit(fx, "jam", 1)) == c::no_error);
    REQUIRE(c::buy(fx, "jam", 2, "bob", 1, "r-1").status == reserve_status::reserved);
    REQUIRE(std::get<0>(c::rollback(fx, "jam", 2)) == c::no_error);
    fx.clock.advance(999ms);
    CHECK(c::buy(fx, "jam", 3, "alice", 2, "r-1").replayed);  // still bound
    CHECK(c::buy(fx, "jam", 4, "bob", 1, "r-1").state == seckill::order_state::rolled_back);
    fx.clock.advance(1ms);
    // The rolled-back order's record is forgotten, and its binding with it:
    // the same request is new.
    const auto again = c::buy(fx, "jam", 5, "bob", 1, "r-1");
    CHECK(again.status == reserve_status::reserved);
    CHECK_FALSE(again.replayed);
    CHECK(again.order_id == 5);
    // The committed order's binding stays: a late retry still hears "committed".
    const auto late = c::buy(fx, "jam", 7, "alice", 2, "r-1");
    CHECK(late.replayed);
    CHECK(late.order_id == 1);
    CHECK(late.state == seckill::order_state::committed);
    CHECK(fx.store().recorded_orders("jam") == 1);
    // The committed order stays recorded, with its buyer, whatever the retention.
    auto [ec, one] = c::get_order(fx, "jam", 1);
    CHECK(ec == c::no_error);
    CHECK(one.user == "alice");
    CHECK(one.request_id == "r-1");
    CHECK(one.quantity == 2);
    // alice's committed units still count.
    REQUIRE(c::set_policy(fx, "jam", 2) == c::no_error);
    CHECK(c::buy(fx, "jam", 6, "alice").status == reserve_status::limited);
    auto [rec, report] = c::reconcile(fx, "jam");
    CHECK(rec == c::no_error);
    CHECK(report.ok());
    CHECK(report.orders == 1u);
  }

  TEST_CASE("memory_store: a replay of an order whose hold passed gives its units back") {
    concurrent_memory_store::memory_fixture fx;
    namespace c = seckill::test::conformance;
    REQUIRE(c::set_stock(fx, "fig", 3) == c::no_error);
    REQUIRE(c::buy(fx, "fig", 1, "alice", 1, "r-1").status == seckill::reserve_status::reserved);
    fx.clock.advance(fx.hold());
    const auto retry = c::buy(fx, "fig", 2, "alice", 1, "r-1");
    CHECK(retry.replayed);
    CHECK(retry.order_id == 1);
    CHECK(retry.state == seckill::order_state::rolled_back);
    c::check_level(c::stock_ok(fx, "fig"), 3, 0, 0);
    CHECK(std::get<0>(c::commit(fx, "fig", 1)) == seckill::errc::order_rolled_back);
    CHECK(c::buy(fx, "fig", 3, "alice").status ==
          seckill::reserve_status::reserved);  // allowance back
    CHECK(std::get<1>(c::reap(fx, "fig", 10)) == 0u);
  }

  TEST_CASE("memory_store: an order_retention out of range is refused") {
    boost::asio::io_context io;
    CHECK_THROWS_WITH_AS(seckill::memory_store<>(io.get_executor(), {.order_retention = -1ms}),
                         doctest::Contains("order_retention -1 ms out of [0, "), seckill::error);
    CHECK_THROWS_AS(seckill::memory_store<>(io.get_executor(),
                                            {.order_retention = std::chrono::milliseconds::max()}),
                    seckill::error);
    CHECK_NOTHROW(seckill::memory_store<>(io.get_executor(),
                                          {.order_retention = std::chrono::hours(24 * 365 * 50)}));
  }
}
