// memory_store against the stock_store conformance suite, plus what only the
// in-memory store promises (its clock, its sharding, its growth).
#include <seckill/clock.hpp>
#include <seckill/store/memory_store.hpp>

#include "store_conformance.hpp"

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

namespace concurrent_memory_store {

using namespace std::chrono_literals;

/// The conformance fixture for memory_store: holds expire by a manual clock.
struct memory_fixture {
  boost::asio::io_context context;
  seckill::manual_clock clock;
  seckill::memory_store<seckill::manual_clock> store_{context.get_executor(), {.orders_per_sku = 4}, clock};

  seckill::memory_store<seckill::manual_clock>& store() { return store_; }
  boost::asio::io_context& io() { return context; }
  void let_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds hold() { return 30s; }
  std::string sku(std::string_view name) { return "sku:" + std::string(name); }
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
    REQUIRE(std::get<1>(c::reserve(fx, "edge", 1, 1, 100ms)).status == seckill::reserve_status::reserved);
    REQUIRE(std::get<1>(c::reserve(fx, "edge", 1, 2, 100ms)).status == seckill::reserve_status::reserved);
    fx.clock.advance(99ms);
    CHECK(std::get<1>(c::reap(fx, "edge", 10)) == 0u);
    CHECK(std::get<0>(c::commit(fx, "edge", 1)) == c::no_error);  // still inside its hold
    fx.clock.advance(1ms);
    CHECK(std::get<0>(c::commit(fx, "edge", 2)) == seckill::errc::order_rolled_back);
    c::check_level(c::stock_ok(fx, "edge"), 2, 0, 1);
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
}
