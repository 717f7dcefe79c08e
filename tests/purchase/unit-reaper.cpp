// hold_reaper over memory_store with manual_clock: expired holds come back
// within a period, batches drain, faults are counted and survived.

#include <seckill/clock.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/reaper.hpp>

#include <doctest/doctest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace unit_reaper {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using store_type = seckill::memory_store<seckill::manual_clock>;

struct reaper_fixture {
  asio::io_context io;
  seckill::manual_clock clock;
  store_type store{io.get_executor(), {}, clock};

  void drain() {
    io.restart();
    io.run();
  }
  void stock(const std::string& sku, std::int64_t units) {
    store.async_set_stock(sku, units, [](std::error_code ec) { REQUIRE_FALSE(ec); });
    drain();
  }
  void hold(const std::string& sku, std::int64_t order, std::chrono::milliseconds ttl) {
    store.async_reserve(sku, 1, order, ttl, [](std::error_code ec, seckill::reserve_result r) {
      REQUIRE_FALSE(ec);
      REQUIRE(r.status == seckill::reserve_status::reserved);
    });
    drain();
  }
  // Works while a reaper keeps the io_context busy: runs it only until the answer came.
  seckill::stock_level level(const std::string& sku) {
    std::optional<seckill::stock_level> out;
    store.async_stock(sku, [&](std::error_code ec, seckill::stock_level l) {
      REQUIRE_FALSE(ec);
      out = l;
    });
    for (int i = 0; i < 1000 && !out; ++i) {
      io.restart();
      io.run_for(1ms);
    }
    REQUIRE(out.has_value());
    return *out;
  }
};

// A store whose reap fails `failures` times, then works.
struct flaky_store : store_type {
  using store_type::store_type;
  int failures = 0;
  template <class Token>
  auto async_reap_expired(std::string_view sku, std::size_t limit, Token&& token) {
    if (failures > 0) {
      --failures;
      return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
          [this](auto handler) {
            asio::post(get_executor(),
                       asio::append(std::move(handler),
                                    std::error_code(seckill::errc::store_unavailable), 0u));
          },
          token);
    }
    return store_type::async_reap_expired(sku, limit, std::forward<Token>(token));
  }
};

}  // namespace unit_reaper

using namespace unit_reaper;

TEST_SUITE("unit") {
  TEST_CASE("hold_reaper: a pass gives back expired holds only and drains full batches") {
    reaper_fixture fx;
    fx.stock("a", 10);
    fx.stock("b", 10);
    for (int i = 1; i <= 5; ++i) fx.hold("a", i, 1s);
    fx.hold("b", 100, 1s);
    fx.hold("b", 101, 60s);
    seckill::hold_reaper<store_type, seckill::manual_clock> reaper(
        fx.store, {"a", "b"}, {.period = 100ms, .batch = 2}, fx.clock);
    std::optional<std::uint64_t> n;
    reaper.async_reap_once([&](std::error_code ec, std::uint64_t k) {
      CHECK_FALSE(ec);
      n = k;
    });
    fx.drain();
    CHECK(n == 0u);  // nothing expired yet
    fx.clock.advance(2s);
    reaper.async_reap_once([&](std::error_code, std::uint64_t k) { n = k; });
    fx.drain();
    CHECK(n == 6u);  // five of a in batches of 2, one of b
    CHECK(reaper.reaped() == 6u);
    CHECK(reaper.passes() == 2u);
    CHECK(fx.level("a").reserved == 0);
    CHECK(fx.level("a").remaining == 10);
    CHECK(fx.level("b").reserved == 1);  // the 60 s hold stays
  }

  TEST_CASE("hold_reaper: run reaps every period until cancelled") {
    reaper_fixture fx;
    fx.stock("sku", 10);
    fx.hold("sku", 1, 1s);
    seckill::hold_reaper<store_type, seckill::manual_clock> reaper(fx.store, {}, {.period = 500ms},
                                                                   fx.clock);
    reaper.add_sku("sku");
    reaper.add_sku("sku");  // known already
    asio::cancellation_signal stop;
    std::optional<std::error_code> done;
    reaper.async_run(
        asio::bind_cancellation_slot(stop.slot(), [&](std::error_code ec) { done = ec; }));
    for (int i = 0; i < 2000 && reaper.passes() == 0; ++i) {
      fx.io.restart();
      fx.io.run_for(1ms);
    }
    CHECK(reaper.passes() == 1u);
    CHECK(fx.level("sku").reserved == 1);
    fx.clock.advance(1500ms);  // the hold passed, and a period
    for (int i = 0; i < 2000 && reaper.reaped() == 0; ++i) {
      fx.io.restart();
      fx.io.run_for(1ms);
    }
    CHECK(reaper.reaped() == 1u);
    CHECK(fx.level("sku").reserved == 0);
    stop.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 2000 && !done; ++i) {
      fx.io.restart();
      fx.io.run_for(1ms);
    }
    REQUIRE(done.has_value());
    CHECK(*done == seckill::errc::operation_aborted);
  }

  TEST_CASE("hold_reaper: a failing store is counted and tried again on the next pass") {
    asio::io_context io;
    seckill::manual_clock clock;
    flaky_store store{io.get_executor(), {}, clock};
    store.async_set_stock("sku", 3, [](std::error_code) {});
    store.async_reserve("sku", 1, 7, 1s, [](std::error_code, seckill::reserve_result) {});
    io.run();
    clock.advance(2s);
    store.failures = 1;
    seckill::hold_reaper<flaky_store, seckill::manual_clock> reaper(store, {"sku"}, {}, clock);
    std::optional<std::uint64_t> n;
    reaper.async_reap_once([&](std::error_code, std::uint64_t k) { n = k; });
    io.restart();
    io.run();
    CHECK(n == 0u);
    CHECK(reaper.errors() == 1u);
    CHECK(reaper.last_error() == seckill::errc::store_unavailable);
    reaper.async_reap_once([&](std::error_code, std::uint64_t k) { n = k; });
    io.restart();
    io.run();
    CHECK(n == 1u);
  }

  TEST_CASE("hold_reaper: a cancelled pass ends early with operation_aborted and counts no error") {
    reaper_fixture fx;
    fx.stock("sku", 10);
    for (int i = 1; i <= 4; ++i) fx.hold("sku", i, 1s);
    fx.clock.advance(2s);
    seckill::hold_reaper<store_type, seckill::manual_clock> reaper(fx.store, {"sku"}, {.batch = 1},
                                                                   fx.clock);
    asio::cancellation_signal stop;
    std::optional<std::pair<std::error_code, std::uint64_t>> got;
    reaper.async_reap_once(asio::bind_cancellation_slot(
        stop.slot(), [&](std::error_code ec, std::uint64_t n) { got.emplace(ec, n); }));
    stop.emit(asio::cancellation_type::terminal);  // before the first batch comes back
    fx.drain();
    REQUIRE(got.has_value());
    CHECK(got->first == seckill::errc::operation_aborted);
    CHECK(got->second < 4u);
    CHECK(reaper.errors() == 0u);
  }

  TEST_CASE("hold_reaper: a fenced reaper stops at once when a higher fence has reaped") {
    reaper_fixture fx;
    fx.stock("a", 10);
    fx.stock("b", 10);
    fx.hold("a", 1, 1s);
    fx.hold("b", 2, 1s);
    using reaper_type = seckill::hold_reaper<store_type, seckill::manual_clock>;
    reaper_type old_leader(fx.store, {"a", "b"}, {.period = 100ms}, fx.clock);
    reaper_type new_leader(fx.store, {"a"}, {.period = 100ms}, fx.clock);
    old_leader.set_fence(1);
    new_leader.set_fence(2);
    CHECK(old_leader.fence() == 1);
    fx.clock.advance(2s);
    std::optional<std::pair<std::error_code, std::uint64_t>> got;
    new_leader.async_reap_once([&](std::error_code ec, std::uint64_t n) { got.emplace(ec, n); });
    fx.drain();
    REQUIRE(got.has_value());
    CHECK_FALSE(got->first);
    CHECK(got->second == 1u);
    // The deposed one is refused on "a" and does not go on to "b".
    std::optional<std::error_code> done;
    old_leader.async_run([&](std::error_code ec) { done = ec; });
    for (int i = 0; i < 2000 && !done; ++i) {
      fx.io.restart();
      fx.io.run_for(1ms);
    }
    REQUIRE(done.has_value());
    CHECK(*done == seckill::errc::fenced_out);
    CHECK(old_leader.last_error() == seckill::errc::fenced_out);
    CHECK(old_leader.reaped() == 0u);
    CHECK(fx.level("b").reserved == 1);
    // Unfenced again (0), it reaps as a reaper outside any election.
    old_leader.set_fence(0);
    old_leader.async_reap_once([&](std::error_code ec, std::uint64_t n) { got.emplace(ec, n); });
    fx.drain();
    CHECK_FALSE(got->first);
    CHECK(got->second == 1u);
    CHECK(fx.level("b").reserved == 0);
  }

  TEST_CASE("hold_reaper: bad options are refused with the value seen") {
    reaper_fixture fx;
    using reaper_type = seckill::hold_reaper<store_type, seckill::manual_clock>;
    CHECK_THROWS_WITH_AS(reaper_type(fx.store, {}, {.period = 0ms}),
                         "reaper period 0 ms out of (0, 31622400000] ms: invalid argument",
                         seckill::error);
    CHECK_THROWS_WITH_AS(reaper_type(fx.store, {}, {.batch = 0}),
                         "reaper batch 0: want at least 1: invalid argument", seckill::error);
  }
}
