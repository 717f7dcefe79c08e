// Every async operation of the store, the reaper, the engine and the clock
// timer completes through any completion token (a callback, use_awaitable,
// deferred, use_future), runs its handler on the handler's associated
// executor, and honours per-operation cancellation where it documents it.

#include <seckill/clock.hpp>
#include <seckill/clock_timer.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/reaper.hpp>

#include <doctest/doctest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace unit_completion_tokens {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using seckill::errc;

struct engine_fixture {
  asio::io_context io;
  seckill::memory_store<> store{io.get_executor()};
  seckill::unlimited limiter;
  seckill::no_breaker breaker;
  struct ids {
    std::int64_t last = 0;
    std::int64_t next(std::error_code& ec) noexcept {
      ec.clear();
      return ++last;
    }
  } order_ids;
  seckill::no_payment payment;
  seckill::memory_orders orders;
  seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited, seckill::no_breaker, ids,
                           seckill::no_payment, seckill::memory_orders>
      engine{store, limiter, breaker, order_ids, payment, orders};

  engine_fixture() {
    store.async_set_stock("sku", 10, [](std::error_code ec) { REQUIRE_FALSE(ec); });
    io.run();
    io.restart();
  }
};

TEST_SUITE("unit") {
  TEST_CASE("memory_store completes through a callback use_awaitable deferred and use_future") {
    asio::io_context io;
    seckill::memory_store<> store(io.get_executor());
    std::optional<std::error_code> set;
    store.async_set_stock("sku", 5, [&](std::error_code ec) { set = ec; });
    io.run();
    REQUIRE(set.has_value());
    CHECK_FALSE(*set);

    std::optional<seckill::reserve_result> by_coroutine;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, r] =
              co_await store.async_reserve("sku", 1, 1, 10s, asio::as_tuple(asio::use_awaitable));
          CHECK_FALSE(ec);
          by_coroutine = r;
        },
        asio::detached);
    io.restart();
    io.run();
    REQUIRE(by_coroutine.has_value());
    CHECK(by_coroutine->status == seckill::reserve_status::reserved);

    auto deferred_reserve = store.async_reserve("sku", 1, 2, 10s, asio::deferred);
    std::optional<seckill::reserve_result> by_deferred;
    std::move(deferred_reserve)([&](std::error_code ec, seckill::reserve_result r) {
      CHECK_FALSE(ec);
      by_deferred = r;
    });
    io.restart();
    io.run();
    REQUIRE(by_deferred.has_value());
    CHECK(by_deferred->status == seckill::reserve_status::reserved);

    auto future = store.async_stock("sku", asio::use_future);
    io.restart();
    io.run();
    const auto [ec, level] = future.get();
    CHECK_FALSE(ec);
    CHECK(level.remaining == 3);
    CHECK(level.reserved == 2);
  }

  TEST_CASE("memory_store runs the handler on the handler's associated executor") {
    asio::io_context io;
    seckill::memory_store<> store(io.get_executor());
    auto strand = asio::make_strand(io);
    bool on_strand = false;
    store.async_set_stock("sku", 1, asio::bind_executor(strand, [&](std::error_code) {
                            on_strand = strand.running_in_this_thread();
                          }));
    io.run();
    CHECK(on_strand);
  }

  TEST_CASE("memory_store completes a coroutine's handler on its executor without the store's") {
    // The store's io_context never runs: a handler whose executor is another
    // context's (an any_io_executor, as a coroutine's is) completes there.
    asio::io_context store_io;
    asio::io_context caller_io;
    seckill::memory_store<> store(store_io.get_executor());
    std::optional<std::error_code> set;
    std::optional<seckill::stock_level> level;
    asio::co_spawn(
        caller_io,
        [&]() -> asio::awaitable<void> {
          auto [ec] = co_await store.async_set_stock("sku", 7, asio::as_tuple(asio::use_awaitable));
          set = ec;
          auto [sec, l] = co_await store.async_stock("sku", asio::as_tuple(asio::use_awaitable));
          CHECK_FALSE(sec);
          level = l;
        },
        asio::detached);
    caller_io.run();
    REQUIRE(set.has_value());
    CHECK_FALSE(*set);
    REQUIRE(level.has_value());
    CHECK(level->remaining == 7);
    CHECK(store_io.poll() == 0);  // nothing went through the store's context
  }

  TEST_CASE("purchase_engine runs a purchase on the executor it is given") {
    engine_fixture fx;  // the store's executor: fx.io, which does not run here
    asio::io_context lane;
    std::optional<seckill::purchase_result> result;
    bool on_lane = false;
    fx.engine.async_purchase(lane.get_executor(), {.sku = "sku", .quantity = 2},
                             [&](std::error_code ec, seckill::purchase_result r) {
                               CHECK_FALSE(ec);
                               on_lane = lane.get_executor().running_in_this_thread();
                               result = r;
                             });
    lane.run();
    REQUIRE(result.has_value());
    CHECK(on_lane);
    CHECK(result->final_state == seckill::purchase_state::succeeded);
    CHECK(fx.orders.size() == 1);
    CHECK(fx.io.poll() == 0);  // reserve, commit and persist all completed on the lane
    // A refusal at admission completes on the given executor too.
    std::optional<std::error_code> refused;
    fx.engine.async_purchase(lane.get_executor(), {.sku = ""},
                             [&](std::error_code ec, seckill::purchase_result) { refused = ec; });
    lane.restart();
    lane.run();
    REQUIRE(refused.has_value());
    CHECK(*refused == errc::invalid_argument);
  }

  TEST_CASE("purchase_engine completes through a callback use_awaitable deferred and use_future") {
    engine_fixture fx;
    const seckill::purchase_request request{.sku = "sku"};

    std::optional<std::error_code> by_callback;
    fx.engine.async_purchase(
        request, [&](std::error_code ec, seckill::purchase_result) { by_callback = ec; });
    fx.io.run();
    REQUIRE(by_callback.has_value());
    CHECK_FALSE(*by_callback);

    std::optional<seckill::purchase_result> by_coroutine;
    asio::co_spawn(
        fx.io,
        [&]() -> asio::awaitable<void> {
          auto [ec, r] =
              co_await fx.engine.async_purchase(request, asio::as_tuple(asio::use_awaitable));
          CHECK_FALSE(ec);
          by_coroutine = r;
        },
        asio::detached);
    fx.io.restart();
    fx.io.run();
    REQUIRE(by_coroutine.has_value());
    CHECK(by_coroutine->final_state == seckill::purchase_state::succeeded);

    auto deferred_purchase = fx.engine.async_purchase(request, asio::deferred);
    std::optional<std::error_code> by_deferred;
    std::move(deferred_purchase)(
        [&](std::error_code ec, seckill::purchase_result) { by_deferred = ec; });
    fx.io.restart();
    fx.io.run();
    REQUIRE(by_deferred.has_value());
    CHECK_FALSE(*by_deferred);

    auto future = fx.engine.async_purchase(request, asio::use_future);
    fx.io.restart();
    fx.io.run();
    const auto [ec, r] = future.get();
    CHECK_FALSE(ec);
    CHECK(r.final_state == seckill::purchase_state::succeeded);
    CHECK(fx.orders.size() == 4);
  }

  TEST_CASE("purchase_engine runs the handler on the handler's associated executor") {
    engine_fixture fx;
    auto strand = asio::make_strand(fx.io);
    bool on_strand = false;
    const seckill::purchase_request request{.sku = "sku"};
    fx.engine.async_purchase(
        request, asio::bind_executor(strand, [&](std::error_code, seckill::purchase_result) {
          on_strand = strand.running_in_this_thread();
        }));
    fx.io.run();
    CHECK(on_strand);
  }

  TEST_CASE("hold_reaper completes through every token and its run ends on cancellation") {
    asio::io_context io;
    seckill::memory_store<> store(io.get_executor());
    seckill::hold_reaper<seckill::memory_store<>> reaper(store, {"sku"}, {.period = 10ms});
    store.async_set_stock("sku", 5, [](std::error_code ec) { REQUIRE_FALSE(ec); });
    io.run();
    io.restart();

    std::optional<std::error_code> by_callback;
    reaper.async_reap_once([&](std::error_code ec, std::uint64_t) { by_callback = ec; });
    io.run();
    REQUIRE(by_callback.has_value());
    CHECK_FALSE(*by_callback);

    auto deferred_pass = reaper.async_reap_once(asio::deferred);
    std::optional<std::error_code> by_deferred;
    std::move(deferred_pass)([&](std::error_code ec, std::uint64_t) { by_deferred = ec; });
    io.restart();
    io.run();
    REQUIRE(by_deferred.has_value());

    auto future = reaper.async_reap_once(asio::use_future);
    io.restart();
    io.run();
    CHECK(std::get<1>(future.get()) == 0);

    asio::cancellation_signal stop;
    std::optional<std::error_code> ended;
    reaper.async_run(
        asio::bind_cancellation_slot(stop.slot(), [&](std::error_code ec) { ended = ec; }));
    io.restart();
    io.run_for(50ms);
    REQUIRE_FALSE(ended.has_value());
    stop.emit(asio::cancellation_type::terminal);
    io.run_for(1s);
    REQUIRE(ended.has_value());
    CHECK(*ended == seckill::condition::aborted);
  }

  TEST_CASE("clock_timer completes through every token and cancels per operation") {
    asio::io_context io;
    seckill::manual_clock clock;
    seckill::clock_timer<seckill::manual_clock> timer(io.get_executor(), clock);

    timer.expires_after(0ms);
    auto future = timer.async_wait(asio::use_future);
    io.run();
    CHECK_FALSE(future.get());  // void(std::error_code): a future of the code itself

    timer.expires_after(0ms);
    auto deferred_wait = timer.async_wait(asio::deferred);
    std::optional<std::error_code> by_deferred;
    std::move(deferred_wait)([&](std::error_code ec) { by_deferred = ec; });
    io.restart();
    io.run();
    REQUIRE(by_deferred.has_value());
    CHECK_FALSE(*by_deferred);

    timer.expires_after(1h);
    asio::cancellation_signal cancel;
    std::optional<std::error_code> cancelled;
    timer.async_wait(
        asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) { cancelled = ec; }));
    io.restart();
    io.run_for(10ms);
    REQUIRE_FALSE(cancelled.has_value());
    cancel.emit(asio::cancellation_type::terminal);
    io.run_for(1s);
    REQUIRE(cancelled.has_value());
    CHECK(*cancelled == seckill::condition::aborted);
  }
}

}  // namespace unit_completion_tokens
