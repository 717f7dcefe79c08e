#include <seckill/clock.hpp>
#include <seckill/clock_timer.hpp>

#include <doctest/doctest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <ostream>
#include <system_error>

namespace unit_deadline {
using namespace std::chrono_literals;
namespace asio = boost::asio;
}  // namespace unit_deadline

using namespace unit_deadline;

TEST_SUITE("unit") {
  TEST_CASE("clock_timer: fires when the manual clock reaches the expiry and not before") {
    asio::io_context io;
    seckill::manual_clock clock;
    seckill::clock_timer<seckill::manual_clock> timer(io.get_executor(), clock);
    timer.expires_after(800ms);
    CHECK(timer.remaining() == 800ms);
    std::optional<std::error_code> result;
    timer.async_wait([&](std::error_code ec) { result = ec; });
    io.run_for(20ms);  // polls the clock every millisecond: nothing yet
    CHECK_FALSE(result.has_value());
    clock.advance(799ms);
    io.run_for(20ms);
    CHECK_FALSE(result.has_value());
    CHECK(timer.remaining() == 1ms);
    clock.advance(1ms);
    io.run();
    REQUIRE(result.has_value());
    CHECK_FALSE(*result);
    CHECK(timer.expired());
    CHECK(timer.remaining() == 0ns);
  }

  TEST_CASE("clock_timer: an expired deadline completes but never inside async_wait") {
    asio::io_context io;
    seckill::manual_clock clock;
    seckill::clock_timer<seckill::manual_clock> timer(io.get_executor(), clock);
    timer.expires_at(clock.now() - 1s);
    bool done = false;
    timer.async_wait([&](std::error_code ec) {
      CHECK_FALSE(ec);
      done = true;
    });
    CHECK_FALSE(done);
    io.run();
    CHECK(done);
  }

  TEST_CASE("clock_timer: cancel and per-operation cancellation abort the wait") {
    asio::io_context io;
    seckill::manual_clock clock;
    seckill::clock_timer<seckill::manual_clock> timer(io.get_executor(), clock);
    timer.expires_after(1h);
    std::optional<std::error_code> first;
    timer.async_wait([&](std::error_code ec) { first = ec; });
    io.run_for(5ms);
    timer.cancel();
    io.run();
    REQUIRE(first.has_value());
    CHECK(*first == std::error_code(boost::system::error_code(asio::error::operation_aborted)));

    io.restart();
    asio::cancellation_signal signal;
    std::optional<std::error_code> second;
    timer.async_wait(
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { second = ec; }));
    io.run_for(5ms);
    CHECK_FALSE(second.has_value());
    signal.emit(asio::cancellation_type::terminal);
    io.run();
    REQUIRE(second.has_value());
    CHECK(*second == std::error_code(boost::system::error_code(asio::error::operation_aborted)));
  }

  TEST_CASE("clock_timer: the steady clock waits in one slice") {
    asio::io_context io;
    seckill::clock_timer<> timer(io.get_executor());
    timer.expires_after(2ms);
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<std::error_code> result;
    timer.async_wait([&](std::error_code ec) { result = ec; });
    io.run();
    REQUIRE(result.has_value());
    CHECK_FALSE(*result);
    CHECK(std::chrono::steady_clock::now() - t0 >= 2ms);
  }
}
