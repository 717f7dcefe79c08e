// redis_store at the edges of its range, against a real redis-server: the
// quantities, holds and limits that Lua's numbers (doubles) would not hold
// exactly are refused or clamped before anything is sent, and every refusal
// says what was wrong and which value was seen.
#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"
#include "support/error_message.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

using seckill::errc;
using seckill::max_hold;
using seckill::max_units;
using seckill::reserve_status;
using seckill::redis::connection_config;
using seckill::redis::redis_store;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::sleep_for;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_store_range {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace integration_store_range

using namespace integration_store_range;

TEST_SUITE("integration") {
  TEST_CASE(
      "redis store refuses quantities above max_units and holds outside 1 ms to max_hold and says "
      "which value") {
    redis_server server;
    asio::io_context io;
    redis_store store(io.get_executor(), seckill::test::config_for<connection_config>(server));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      auto [e0] = co_await store.async_set_stock("big", 10, tuple_awaitable);
      REQUIRE(!e0);

      auto [e1, r1] = co_await store.async_reserve("big", max_units + 1, 1, 1s, tuple_awaitable);
      CHECK(e1 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "reserve quantity 9007199254740993"));
      CHECK(contains(store.last_error(), "max_units 9007199254740992"));
      auto [e2, r2] = co_await store.async_reserve("big", std::numeric_limits<std::int64_t>::max(),
                                                   2, 1s, tuple_awaitable);
      CHECK(e2 == errc::invalid_argument);
      CHECK(contains(store.last_error(), std::to_string(std::numeric_limits<std::int64_t>::max())));

      auto [e3] = co_await store.async_set_stock("big", max_units + 1, tuple_awaitable);
      CHECK(e3 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "set_stock quantity 9007199254740993"));
      auto [e4] = co_await store.async_set_stock("big", std::numeric_limits<std::int64_t>::max(),
                                                 tuple_awaitable);
      CHECK(e4 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "9223372036854775807"));

      auto [e5, r5] = co_await store.async_reserve("big", 1, 3, std::chrono::milliseconds::max(),
                                                   tuple_awaitable);
      CHECK(e5 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "hold 9223372036854775807 ms"));
      CHECK(contains(store.last_error(), "max_hold " + std::to_string(max_hold.count())));
      auto [e6, r6] = co_await store.async_reserve("big", 1, 4, max_hold + 1ms, tuple_awaitable);
      CHECK(e6 == errc::invalid_argument);

      // the edges themselves are held exactly
      auto [e7, r7] = co_await store.async_reserve("big", 1, 5, max_hold, tuple_awaitable);
      CHECK(!e7);
      CHECK(r7.status == reserve_status::reserved);
      CHECK(r7.remaining == 9);
      auto [e8, level] = co_await store.async_stock("big", tuple_awaitable);
      CHECK(!e8);
      CHECK(level.remaining == 9);
      CHECK(level.reserved == 1);

      // a refusal is noted only for what was refused: the server was sent nothing
      CHECK(server.admin().command("EXISTS", redis_store::order_key("big", 1)).integer == 0);
      CHECK(server.admin().command("EXISTS", redis_store::order_key("big", 3)).integer == 0);
      auto [e9] = co_await store.async_set_stock("", 1, tuple_awaitable);
      CHECK(e9 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "empty sku"));
      auto [e10, r10] = co_await store.async_reserve("a{b", 1, 1, 1s, tuple_awaitable);
      CHECK(e10 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "'a{b'"));
      store.close();
    });
  }

  TEST_CASE(
      "redis store set_stock refuses what would pass max_units with units reserved and holds 2^53 "
      "exactly") {
    redis_server server;
    asio::io_context io;
    redis_store store(io.get_executor(), seckill::test::config_for<connection_config>(server));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      auto [e0] = co_await store.async_set_stock("edge", 10, tuple_awaitable);
      REQUIRE(!e0);
      auto [e1, r1] = co_await store.async_reserve("edge", 3, 1, 60s, tuple_awaitable);
      REQUIRE(!e1);
      REQUIRE(r1.status == reserve_status::reserved);

      // 2^53 more with 3 reserved would count 2^53 + 3 units: refused by the
      // script, which names what it saw; nothing changes
      auto [e2] = co_await store.async_set_stock("edge", max_units, tuple_awaitable);
      CHECK(e2 == errc::invalid_argument);
      CHECK(contains(store.last_error(), "set_stock quantity 9007199254740992"));
      CHECK(contains(store.last_error(), "3 units reserved and 0 committed"));
      auto [e3, level3] = co_await store.async_stock("edge", tuple_awaitable);
      CHECK(level3.remaining == 7);
      CHECK(level3.reserved == 3);

      // exactly up to 2^53: accepted and kept exactly (no double rounding)
      auto [e4] = co_await store.async_set_stock("edge", max_units - 3, tuple_awaitable);
      CHECK(!e4);
      auto [e5, level5] = co_await store.async_stock("edge", tuple_awaitable);
      CHECK(level5.remaining == max_units - 3);
      CHECK(level5.reserved == 3);
      CHECK(server.admin().command("HGET", redis_store::stock_key("edge"), "remaining").text ==
            std::to_string(max_units - 3));
      // all of it in one reservation, then committed
      auto [e6, r6] = co_await store.async_reserve("edge", max_units - 3, 2, 60s, tuple_awaitable);
      CHECK(!e6);
      CHECK(r6.status == reserve_status::reserved);
      CHECK(r6.remaining == 0);
      auto [e7, s7] = co_await store.async_commit("edge", 2, tuple_awaitable);
      CHECK(!e7);
      auto [e8, level8] = co_await store.async_stock("edge", tuple_awaitable);
      CHECK(level8.remaining == 0);
      CHECK(level8.reserved == 3);
      CHECK(level8.committed == max_units - 3);
      // no room is left: one more unit is refused, none is fine
      auto [e9] = co_await store.async_set_stock("edge", 1, tuple_awaitable);
      CHECK(e9 == errc::invalid_argument);
      CHECK(contains(store.last_error(), std::to_string(max_units - 3) + " committed"));
      auto [e10] = co_await store.async_set_stock("edge", 0, tuple_awaitable);
      CHECK(!e10);
      // and the reserved units go back exactly
      auto [e11, s11] = co_await store.async_rollback("edge", 1, tuple_awaitable);
      CHECK(!e11);
      auto [e12, level12] = co_await store.async_stock("edge", tuple_awaitable);
      CHECK(level12.remaining == 3);
      CHECK(level12.reserved == 0);
      CHECK(level12.remaining + level12.reserved + level12.committed == max_units);
      store.close();
    });
  }

  TEST_CASE("redis store reap_expired with a limit of SIZE_MAX reaps every expired hold") {
    redis_server server;
    asio::io_context io;
    redis_store store(io.get_executor(), seckill::test::config_for<connection_config>(server));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      auto [e0] = co_await store.async_set_stock("reap", 100, tuple_awaitable);
      REQUIRE(!e0);
      for (std::int64_t order = 1; order <= 5; ++order) {
        auto [e, r] = co_await store.async_reserve("reap", 2, order, 1ms, tuple_awaitable);
        REQUIRE(!e);
      }
      co_await sleep_for(50ms);
      auto [e1, reaped] = co_await store.async_reap_expired("reap", SIZE_MAX, tuple_awaitable);
      CHECK_MESSAGE(!e1, store.last_error());
      CHECK(reaped == 5);
      auto [e2, level] = co_await store.async_stock("reap", tuple_awaitable);
      CHECK(level.remaining == 100);
      CHECK(level.reserved == 0);
      auto [e3, none] = co_await store.async_reap_expired("reap", SIZE_MAX, tuple_awaitable);
      CHECK(!e3);
      CHECK(none == 0);
      store.close();
    });
  }

  TEST_CASE("redis store refuses an order_retention the script cannot hold and says which") {
    asio::io_context io;
    seckill::redis::redis_store_options options;
    options.order_retention = std::chrono::milliseconds::max();
    const auto why = seckill::test::message_of(
        [&] { redis_store store(io.get_executor(), connection_config{}, options); });
    CHECK(contains(why, "order_retention 9223372036854775807 ms"));
    CHECK(contains(why, "9007199254740992"));
    options.order_retention = std::chrono::milliseconds(max_units);
    CHECK_NOTHROW(redis_store(io.get_executor(), connection_config{}, options));
  }

  TEST_CASE("redis store notes an error reply from the server in words") {
    redis_server server;
    asio::io_context io;
    redis_store store(io.get_executor(), seckill::test::config_for<connection_config>(server));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      // a stock key of the wrong type: the script's HGET fails on the server
      server.admin().command("SET", redis_store::stock_key("wrongtype"), "x");
      auto [e1, r1] = co_await store.async_reserve("wrongtype", 1, 1, 1s, tuple_awaitable);
      CHECK(e1 == errc::server_error);
      CHECK(contains(store.last_error(), "reserve failed on the server"));
      CHECK(contains(store.last_error(), "WRONGTYPE"));
      store.close();
    });
  }
}
