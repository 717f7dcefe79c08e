// Every public async operation of the connection and the store completes
// through any completion token (a callback, use_awaitable, deferred,
// use_future) and honours per-operation cancellation, after which the
// connection is still usable.
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_pool.hpp>
#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using seckill::errc;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::redis::connection_state;
using seckill::redis::request;
using seckill::redis::value;
using seckill::test::exec1;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::sleep_for;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_completion_tokens {

request cmd(auto... args) {
  request r;
  r.push(args...);
  return r;
}

// An allocator that counts what goes through it: a caller's arena.
struct arena_counts {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
};
template <class T>
struct counting_allocator {
  using value_type = T;
  arena_counts* counts;
  explicit counting_allocator(arena_counts* c) noexcept : counts(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : counts(other.counts) {}
  T* allocate(std::size_t n) {
    ++counts->allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ++counts->deallocations;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counts == other.counts;
  }
};

// Runs `io` until `done()` (true) or `limit` passes (false): a connected
// connection keeps its io_context busy, so run() would not return.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(10ms);
  }
  return done();
}

TEST_SUITE("integration") {
  TEST_CASE(
      "connection async_connect and async_exec complete through a callback use_awaitable deferred "
      "and use_future") {
    redis_server server;
    asio::io_context io;
    connection conn(io.get_executor(), seckill::test::config_for<connection_config>(server));
    // a callback
    bool connected = false;
    std::error_code connect_result = make_error_code(errc::not_connected);
    conn.async_connect([&](std::error_code ec) {
      connect_result = ec;
      connected = true;
    });
    REQUIRE(run_until(io, [&] { return connected; }));
    REQUIRE_MESSAGE(!connect_result, conn.last_error());
    std::vector<value> by_callback;
    conn.async_exec(cmd("INCR", "n"), [&](std::error_code ec, std::vector<value> r) {
      CHECK(!ec);
      by_callback = std::move(r);
    });
    REQUIRE(run_until(io, [&] { return !by_callback.empty(); }));
    CHECK(by_callback[0].integer == 1);
    // use_awaitable: the error code comes back in a tuple (it is a std::error_code)
    long long awaited = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, r] = co_await conn.async_exec(cmd("INCR", "n"), asio::use_awaitable);
          CHECK(!ec);
          awaited = r.at(0).integer;
        },
        asio::detached);
    REQUIRE(run_until(io, [&] { return awaited != 0; }));
    CHECK(awaited == 2);
    // deferred: nothing is sent before the operation is launched
    auto later = conn.async_exec(cmd("INCR", "n"), asio::deferred);
    run_until(
        io, [] { return false; }, 100ms);
    CHECK(server.admin().command("GET", "n").text == "2");
    long long deferred_result = 0;
    std::move(later)([&](std::error_code ec, std::vector<value> r) {
      CHECK(!ec);
      deferred_result = r.at(0).integer;
    });
    REQUIRE(run_until(io, [&] { return deferred_result != 0; }));
    CHECK(deferred_result == 3);
    // use_future, with the io_context on another thread
    io.restart();
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    std::future<std::tuple<std::error_code, std::vector<value>>> f =
        conn.async_exec(cmd("INCR", "n"), asio::use_future);
    auto [fec, freplies] = f.get();
    CHECK(!fec);
    CHECK(freplies.at(0).integer == 4);
    auto pong = conn.async_exec(cmd("PING"), 2000ms, asio::use_future);
    CHECK(std::get<1>(pong.get()).at(0).text == "PONG");
    conn.close();
    guard.reset();
    runner.join();
  }

  TEST_CASE(
      "redis_store operations complete through a callback use_awaitable deferred and use_future") {
    redis_server server;
    asio::io_context io;
    seckill::redis::redis_store store(io.get_executor(),
                                      seckill::test::config_for<connection_config>(server));
    bool connected = false;
    std::error_code connect_result = make_error_code(errc::not_connected);
    store.async_connect([&](std::error_code ec) {
      connect_result = ec;
      connected = true;
    });
    REQUIRE(run_until(io, [&] { return connected; }));
    REQUIRE_MESSAGE(!connect_result, store.connection().last_error());
    bool set_done = false;
    std::error_code set = make_error_code(errc::not_connected);
    store.async_set_stock("tea", 10, [&](std::error_code ec) {
      set = ec;
      set_done = true;
    });
    REQUIRE(run_until(io, [&] { return set_done; }));
    CHECK(!set);
    seckill::reserve_result awaited{};
    bool awaited_done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, r] = co_await store.async_reserve("tea", 2, 1, std::chrono::seconds(30),
                                                      asio::use_awaitable);
          CHECK(!ec);
          awaited = r;
          awaited_done = true;
        },
        asio::detached);
    REQUIRE(run_until(io, [&] { return awaited_done; }));
    CHECK(awaited.status == seckill::reserve_status::reserved);
    CHECK(awaited.remaining == 8);
    auto later = store.async_reserve("tea", 3, 2, std::chrono::seconds(30), asio::deferred);
    run_until(
        io, [] { return false; }, 100ms);
    CHECK(server.admin().command("HGET", "seckill:{tea}:stock", "remaining").text ==
          "8");  // not launched yet
    seckill::reserve_result deferred_result{};
    bool deferred_done = false;
    std::move(later)([&](std::error_code ec, seckill::reserve_result r) {
      CHECK(!ec);
      deferred_result = r;
      deferred_done = true;
    });
    REQUIRE(run_until(io, [&] { return deferred_done; }));
    CHECK(deferred_result.remaining == 5);
    io.restart();
    auto guard = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    auto level = store.async_stock("tea", asio::use_future).get();
    CHECK(!std::get<0>(level));
    CHECK(std::get<1>(level).remaining == 5);
    CHECK(std::get<1>(level).reserved == 5);
    auto committed = store.async_commit("tea", 1, asio::use_future).get();
    CHECK(!std::get<0>(committed));
    CHECK(std::get<1>(committed).status == seckill::settle_status::done);
    store.close();
    guard.reset();
    runner.join();
  }

  TEST_CASE(
      "connection and redis_store take each request from the handler's associated allocator and "
      "give all of it back - and an over-aligned handler gets an aligned block") {
    redis_server server;
    asio::io_context io;
    seckill::redis::redis_store store(io.get_executor(),
                                      seckill::test::config_for<connection_config>(server));
    std::optional<std::error_code> connected, stocked;
    store.async_connect([&](std::error_code e) { connected = e; });
    REQUIRE(run_until(io, [&] { return connected.has_value(); }));
    REQUIRE_MESSAGE(!*connected, store.connection().last_error());
    store.async_set_stock("tea", 100, [&](std::error_code e) { stocked = e; });
    REQUIRE(run_until(io, [&] { return stocked.has_value(); }));
    REQUIRE(!*stocked);
    arena_counts arena;
    constexpr int n = 20;
    int done = 0;
    int reserved = 0;
    int pinged = 0;
    for (int i = 1; i <= n; ++i) {
      store.async_reserve(
          "tea", 1, i, 60s,
          asio::bind_allocator(counting_allocator<void>(&arena),
                               [&](std::error_code e, seckill::reserve_result r) {
                                 ++done;
                                 if (!e && r.status == seckill::reserve_status::reserved)
                                   ++reserved;
                               }));
      store.connection().async_exec(
          cmd("PING"), asio::bind_allocator(counting_allocator<void>(&arena),
                                            [&](std::error_code e, std::vector<value> r) {
                                              ++done;
                                              if (!e && r.at(0).text == "PONG") ++pinged;
                                            }));
    }
    // a handler holding an over-aligned member: its block is aligned for it
    struct aligned_handler {
      alignas(64) char line[64] = {};
      int* done;
      void operator()(std::error_code e, std::vector<value> r) const {
        if (!e && r.at(0).text == "PONG" &&
            reinterpret_cast<std::uintptr_t>(static_cast<const void*>(line)) % 64 == 0)
          ++*done;
      }
    };
    int aligned_done = 0;
    store.connection().async_exec(cmd("PING"), aligned_handler{.done = &aligned_done});
    REQUIRE(run_until(io, [&] { return done == 2 * n && aligned_done == 1; }));
    CHECK(reserved == n);
    CHECK(pinged == n);
    // one block per request at least (the request and its handler), every one given back
    CHECK(arena.allocations >= 2 * static_cast<std::size_t>(n));
    CHECK(arena.deallocations == arena.allocations);
    store.close();
    run_until(
        io, [] { return false; }, 100ms);
    CHECK(arena.deallocations == arena.allocations);
  }

  TEST_CASE(
      "cancelling a BLPOP that never returns unblocks the server and leaves the connection "
      "usable") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.dead_peer_timeout =
        60s;  // the connection must come back by unblocking, not by reconnecting
    cfg.request_timeout = 60s;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, conn.last_error());
      asio::cancellation_signal cancel;
      std::error_code blpop_result;
      bool blpop_done = false;
      conn.async_exec(
          cmd("BLPOP", "nothing-ever", 0),
          asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e, std::vector<value>) {
            blpop_result = e;
            blpop_done = true;
          }));
      co_await sleep_for(200ms);
      CHECK(!blpop_done);
      const auto start = std::chrono::steady_clock::now();
      cancel.emit(asio::cancellation_type::terminal);
      co_await sleep_for(20ms);
      CHECK(blpop_done);
      CHECK(blpop_result == errc::operation_aborted);
      auto [e1, pong] = co_await exec1(conn, cmd("PING"), 5000ms);
      CHECK(!e1);
      CHECK(pong.text == "PONG");
      CHECK(std::chrono::steady_clock::now() - start < 3s);
      CHECK(conn.connect_count() == 1);  // not reconnected: unblocked
      CHECK(conn.unblock_count() == 1);
      auto [e2, list] = co_await exec1(conn, cmd("LPUSH", "nothing-ever", "x"));
      CHECK(!e2);
      CHECK(list.integer == 1);  // the cancelled BLPOP did not take it
      conn.close();
    });
  }

  TEST_CASE(
      "cancelling a connect to a server that never answers leaves the connection idle and "
      "connectable") {
    asio::io_context io;
    seckill::test::fake_server silent(io, "");
    run_test(io, [&]() -> asio::awaitable<void> {
      connection_config cfg;
      cfg.port = std::to_string(silent.port());
      cfg.connect_timeout = 1s;
      connection conn(co_await asio::this_coro::executor, cfg);
      asio::cancellation_signal cancel;
      std::error_code result = make_error_code(errc::not_connected);
      bool done = false;
      conn.async_connect(asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code e) {
        result = e;
        done = true;
      }));
      co_await sleep_for(100ms);
      CHECK(!done);
      CHECK(conn.state() == connection_state::connecting);
      cancel.emit(asio::cancellation_type::terminal);
      co_await sleep_for(50ms);
      CHECK(done);
      CHECK(result == errc::operation_aborted);
      CHECK(conn.state() == connection_state::idle);
      CHECK(conn.last_error().find("cancelled") != std::string::npos);
      // connectable again: this attempt runs its course (and times out)
      auto [again] = co_await conn.async_connect(tuple_awaitable);
      CHECK(again == errc::timed_out);
      conn.close();
      silent.close();
    });
  }

  TEST_CASE(
      "cancelling a store operation and a pool connect completes them with operation_aborted") {
    redis_server server;
    asio::io_context io;
    seckill::redis::redis_store store(io.get_executor(),
                                      seckill::test::config_for<connection_config>(server));
    seckill::test::admin_client sleeper = server.admin();
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      auto [e0] = co_await store.async_set_stock("tea", 5, tuple_awaitable);
      CHECK(!e0);
      sleeper.send(request().push("DEBUG", "SLEEP", "0.5").payload());
      co_await sleep_for(50ms);
      asio::cancellation_signal cancel;
      std::error_code result;
      bool done = false;
      store.async_stock("tea", asio::bind_cancellation_slot(
                                   cancel.slot(), [&](std::error_code e, seckill::stock_level) {
                                     result = e;
                                     done = true;
                                   }));
      co_await sleep_for(50ms);
      cancel.emit(asio::cancellation_type::terminal);
      co_await sleep_for(20ms);
      CHECK(done);
      CHECK(result == errc::operation_aborted);
      auto [e1, level] = co_await store.async_stock("tea", tuple_awaitable);
      CHECK(!e1);
      CHECK(level.remaining == 5);
      store.close();

      // a pool whose server never answers: the connect under way stops
      seckill::test::fake_server silent(io, "");
      connection_config cfg;
      cfg.port = std::to_string(silent.port());
      cfg.connect_timeout = 5s;
      seckill::redis::connection_pool pool(co_await asio::this_coro::executor, cfg, 2);
      asio::cancellation_signal stop;
      std::error_code pool_result;
      bool pool_done = false;
      pool.async_connect(asio::bind_cancellation_slot(stop.slot(), [&](std::error_code e) {
        pool_result = e;
        pool_done = true;
      }));
      co_await sleep_for(100ms);
      stop.emit(asio::cancellation_type::terminal);
      co_await sleep_for(100ms);
      CHECK(pool_done);
      CHECK(pool_result == errc::operation_aborted);
      pool.close();
      silent.close();
    });
    sleeper.read();
  }
}

}  // namespace integration_completion_tokens
