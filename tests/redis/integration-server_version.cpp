#include <seckill/redis/connection.hpp>
#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using seckill::errc;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::redis::server_version;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_server_version {

// The version the server under test reports in INFO server.
server_version installed_version(const redis_server& server) {
  const auto info = server.admin().command("INFO", "server");
  const auto v = seckill::redis::server_version_from_info(info.text);
  REQUIRE(v.has_value());
  return *v;
}

TEST_SUITE("integration") {
  TEST_CASE("the installed redis-server passes the store's version check on RESP3 and RESP2") {
    redis_server server;
    const server_version installed = installed_version(server);
    CHECK(installed >= seckill::redis::store_min_server_version);
    asio::io_context io;
    for (int protocol : {3, 2}) {
      CAPTURE(protocol);
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.protocol = protocol;
      seckill::redis::redis_store store(io.get_executor(), cfg);
      CHECK(store.connection().config().min_server_version ==
            seckill::redis::store_min_server_version);
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await store.async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, store.connection().last_error());
        CHECK(store.connection().server_version() == installed);
        auto [e1] = co_await store.async_set_stock("tea", 3, tuple_awaitable);
        CHECK(!e1);
        store.close();
      });
      io.restart();
    }
  }

  TEST_CASE(
      "a server older than min_server_version is refused with unsupported_server naming both "
      "versions") {
    redis_server server;
    const server_version installed = installed_version(server);
    asio::io_context io;
    for (int protocol : {3, 2}) {
      CAPTURE(protocol);
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.protocol = protocol;
      cfg.min_server_version = {installed.major + 1, 0, 0};
      cfg.setup.push("SET", "setup-ran", "yes");
      connection conn(io.get_executor(), cfg);
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        CHECK(ec == seckill::redis::errc::unsupported_server);
        CHECK(conn.state() == seckill::redis::connection_state::idle);
        const std::string why = conn.last_error();
        CAPTURE(why);
        CHECK(why.find(to_string(installed)) != std::string::npos);
        CHECK(why.find(to_string(cfg.min_server_version)) != std::string::npos);
        conn.close();
      });
      io.restart();
    }
    CHECK(
        server.admin().command("GET", "setup-ran").is_null());  // refused before the setup commands
  }

  TEST_CASE(
      "a store refuses a server that says it is Redis 4.0 instead of half-running its script") {
    asio::io_context io;
    // answers HELLO 3 as a Redis 4.0.14 speaking RESP3 would, then nothing
    seckill::test::fake_server old(
        io, "%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n4.0.14\r\n");
    run_test(io, [&]() -> asio::awaitable<void> {
      connection_config cfg;
      cfg.port = std::to_string(old.port());
      cfg.connect_timeout = 2s;
      seckill::redis::redis_store store(co_await asio::this_coro::executor, cfg);
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      CHECK(ec == seckill::redis::errc::unsupported_server);
      const std::string why = store.connection().last_error();
      CAPTURE(why);
      CHECK(why.find("4.0.14") != std::string::npos);
      CHECK(why.find("5.0.0") != std::string::npos);
      CHECK(store.connection().server_version() == server_version{4, 0, 14});
      store.close();
      old.close();
    });
  }
}

}  // namespace integration_server_version
