#include <seckill/redis/connection.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

using seckill::errc;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::redis::connection_pool;
using seckill::redis::connection_state;
using seckill::redis::request;
using seckill::redis::resp_type;
using seckill::redis::value;
using seckill::test::admin_client;
using seckill::test::exec1;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::sleep_for;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_connection {

request cmd(auto... args) {
  request r;
  r.push(args...);
  return r;
}

// PINGs every 20 ms until the connection answers PONG (it reconnects by
// itself); false if it has not within `limit`.
asio::awaitable<bool> answers_ping_within(connection& conn, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    co_await sleep_for(20ms);
    auto [ec, pong] = co_await exec1(conn, cmd("PING"));
    if (!ec && pong.text == "PONG") co_return true;
  }
  co_return false;
}

std::int64_t counter(const redis_server& server, const char* key) {
  auto v = server.admin().command("GET", key);
  if (v.is_null()) return 0;
  return std::stoll(v.text);
}

// Connections of "normal" clients the server has right now (the admin's included).
int normal_clients(const redis_server& server) {
  const auto list = server.admin().command("CLIENT", "LIST", "TYPE", "normal");
  int lines = 0;
  for (char c : list.text) lines += c == '\n';
  return lines;
}

}  // namespace integration_connection

using namespace integration_connection;

TEST_SUITE("integration") {
  TEST_CASE("HELLO 3 then many concurrent requests pipelined on one connection in order") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.client_name = "seckill-test";
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      CHECK(conn.state() == connection_state::ready);
      CHECK(conn.resp3());
      auto [e1, hello] = co_await exec1(conn, cmd("CLIENT", "GETNAME"));
      CHECK(!e1);
      CHECK(hello.text == "seckill-test");
      // 2000 INCRs started back to back: replies come in request order
      constexpr int n = 2000;
      std::vector<std::int64_t> seen;
      std::atomic<int> left{n};
      asio::steady_timer all_done(co_await asio::this_coro::executor,
                                  std::chrono::steady_clock::time_point::max());
      const auto incr = cmd("INCR", "ordered");
      for (int i = 0; i < n; ++i) {
        conn.async_exec(incr, [&](std::error_code e, std::vector<value> r) {
          if (!e && r.size() == 1) seen.push_back(r[0].integer);
          if (--left == 0) all_done.cancel();
        });
      }
      co_await all_done.async_wait(tuple_awaitable);
      REQUIRE(seen.size() == n);
      bool in_order = true;
      for (int i = 0; i < n; ++i) in_order = in_order && seen[static_cast<std::size_t>(i)] == i + 1;
      CHECK(in_order);
      // one connection carried them all (plus the admin's)
      CHECK(normal_clients(server) == 2);
      // a request of several commands gets one reply per command, errors as values
      request multi;
      multi.push("SET", "k", "v").push("GET", "k").push("HGET", "k", "f").push("GET", "missing");
      auto [e2, replies] = co_await conn.async_exec(multi, tuple_awaitable);
      REQUIRE(!e2);
      REQUIRE(replies.size() == 4);
      CHECK(replies[0].text == "OK");
      CHECK(replies[1].text == "v");
      CHECK(replies[2].is_error());
      CHECK(replies[2].error_code() == "WRONGTYPE");
      CHECK(replies[3].is_null());
      // RESP3 types come through: a map and a double
      auto [e3, cfgmap] = co_await exec1(conn, cmd("CONFIG", "GET", "port"));
      CHECK(!e3);
      CHECK(cfgmap.type == resp_type::map);
      auto [e4, d] = co_await exec1(conn, cmd("INCRBYFLOAT", "f", "1.5"));
      CHECK(!e4);
      CHECK(d.text == "1.5");
      request empty;
      auto [e5, none] = co_await conn.async_exec(empty, tuple_awaitable);
      CHECK(e5 == errc::invalid_argument);
      conn.close();
    });
    CHECK(counter(server, "ordered") == 2000);
  }

  TEST_CASE(
      "requests issued while a read's replies are handled keep their order at every "
      "early_write_threshold") {
    // 64 coroutines, each a chain of INCRs on its own key: every reply wakes
    // a coroutine that issues the next request, so requests are written while
    // the replies of one read are still being handled (early when the
    // threshold allows). Each chain must see 1, 2, 3... and nothing is lost.
    for (const std::size_t threshold : {std::size_t{0}, std::size_t{1}, std::size_t{4}}) {
      CAPTURE(threshold);
      redis_server server;
      asio::io_context io;
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.early_write_threshold = threshold;
      connection conn(io.get_executor(), cfg);
      constexpr int chains = 64, each = 100;
      std::atomic<int> in_order{0};
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        REQUIRE(!ec);
        std::atomic<int> left{chains};
        asio::steady_timer all_done(co_await asio::this_coro::executor,
                                    std::chrono::steady_clock::time_point::max());
        for (int c = 0; c < chains; ++c) {
          asio::co_spawn(
              io,
              [&, c]() -> asio::awaitable<void> {
                const auto incr = cmd("INCR", "chain:" + std::to_string(c));
                bool ok = true;
                for (int i = 1; i <= each; ++i) {
                  auto [e, v] = co_await exec1(conn, incr);
                  ok = ok && !e && v.integer == i;
                }
                if (ok) ++in_order;
              },
              [&](std::exception_ptr) {
                if (--left == 0) all_done.cancel();
              });
        }
        co_await all_done.async_wait(tuple_awaitable);
        conn.close();
      });
      CHECK(in_order == chains);
      CHECK(counter(server, "chain:0") == each);
      CHECK(counter(server, "chain:63") == each);
    }
  }

  TEST_CASE("RESP2 fallback with AUTH when the server does not know HELLO") {
    redis_server server({"--requirepass", "pw", "--rename-command", "HELLO", ""}, "pw");
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.password = "pw";
    cfg.database = 3;
    cfg.client_name = "resp2-client";
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, conn.last_error());
      CHECK(!conn.resp3());
      auto [e1, ok] = co_await exec1(conn, cmd("SET", "in-db-3", "yes"));
      CHECK(!e1);
      CHECK(ok.text == "OK");
      auto [e2, name] = co_await exec1(conn, cmd("CLIENT", "GETNAME"));
      CHECK(name.text == "resp2-client");
      auto [e3, nil] = co_await exec1(conn, cmd("GET", "missing"));
      CHECK(nil.is_null());
      conn.close();
    });
    auto admin = server.admin();
    CHECK(admin.command("GET", "in-db-3").is_null());
    admin.command("SELECT", "3");
    CHECK(admin.command("GET", "in-db-3").text == "yes");
  }

  TEST_CASE("protocol 2 on request and an ACL user with a password") {
    redis_server server(
        {"--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all", "--requirepass", "admin-pw"},
        "admin-pw");
    asio::io_context io;
    for (int protocol : {3, 2}) {
      CAPTURE(protocol);
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.username = "alice";
      cfg.password = "alice-pw";
      cfg.protocol = protocol;
      connection conn(io.get_executor(), cfg);
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, conn.last_error());
        CHECK(conn.resp3() == (protocol == 3));
        auto [e1, who] = co_await exec1(conn, cmd("ACL", "WHOAMI"));
        CHECK(!e1);
        CHECK(who.text == "alice");
        conn.close();
      });
      io.restart();
    }
  }

  TEST_CASE("wrong credentials fail with auth_failed and say why") {
    redis_server server(
        {"--user", "alice", "on", ">alice-pw", "~*", "+@all", "--requirepass", "admin-pw"},
        "admin-pw");
    struct attempt {
      const char* user;
      const char* password;
      int protocol;
    };
    for (const attempt a :
         {attempt{"", "wrong", 3}, attempt{"alice", "wrong", 3}, attempt{"bob", "x", 3},
          attempt{"", "", 3}, attempt{"", "wrong", 2}, attempt{"alice", "wrong", 2}}) {
      CAPTURE(a.user);
      CAPTURE(a.password);
      CAPTURE(a.protocol);
      asio::io_context io;
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.username = a.user;
      cfg.password = a.password;
      cfg.protocol = a.protocol;
      // protocol 2 with no password connects (AUTH is not sent) but the first command is refused
      connection conn(io.get_executor(), cfg);
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        CHECK(ec == errc::auth_failed);
        CHECK(conn.state() == connection_state::idle);
        CHECK(conn.last_error().find("refused") != std::string::npos);
        // requests after a failed connect fail fast
        auto [e1, v] = co_await exec1(conn, cmd("PING"));
        CHECK(e1 == errc::not_connected);
        conn.close();
      });
    }
  }

  TEST_CASE("no password appears in last_error whatever the server answers") {
    const std::string secret = "hunter2-do-not-print";
    auto check_no_secret = [&](connection& conn) {
      const auto text = conn.last_error();
      CAPTURE(text);
      CHECK(!text.empty());
      CHECK(text.find(secret) == std::string::npos);
      CHECK(text.find("hunter2") == std::string::npos);  // not even a part of it
    };
    // 1. a wrong password on a password-protected server, both protocols
    {
      redis_server server({"--requirepass", "right-password"}, "right-password");
      for (int protocol : {3, 2}) {
        CAPTURE(protocol);
        asio::io_context io;
        auto cfg = seckill::test::config_for<connection_config>(server);
        cfg.password = secret;
        cfg.protocol = protocol;
        connection conn(io.get_executor(), cfg);
        run_test(io, [&]() -> asio::awaitable<void> {
          auto [ec] = co_await conn.async_connect(tuple_awaitable);
          CHECK(ec == errc::auth_failed);
          check_no_secret(conn);
          conn.close();
        });
      }
    }
    // 2. a server that does not know HELLO or AUTH: Redis echoes the
    //    arguments of an unknown command ("with args beginning with: ...")
    {
      redis_server server({"--rename-command", "HELLO", "", "--rename-command", "AUTH", ""});
      asio::io_context io;
      auto cfg = seckill::test::config_for<connection_config>(server);
      cfg.password = secret;
      connection conn(io.get_executor(), cfg);
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        CHECK(ec == errc::server_error);
        check_no_secret(conn);
        CHECK(conn.last_error().find("unknown command") != std::string::npos);  // still says why
        conn.close();
      });
    }
    // 3. a server that quotes the password in its own words: masked
    {
      asio::io_context io;
      seckill::test::fake_server quoting(
          io, "-ERR this server does not take HELLO 3 AUTH default " + secret + " here\r\n");
      connection_config cfg;
      cfg.port = std::to_string(quoting.port());
      cfg.connect_timeout = 2s;
      cfg.password = secret;
      run_test(io, [&]() -> asio::awaitable<void> {
        connection conn(co_await asio::this_coro::executor, cfg);
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        CHECK(ec == errc::server_error);
        check_no_secret(conn);
        CHECK(conn.last_error().find("AUTH default *** here") != std::string::npos);
        conn.close();
        quoting.close();
      });
    }
  }

  TEST_CASE(
      "a reply of more values than max_reply_elements fails with message_too_large and the "
      "connection recovers") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.limits.max_reply_elements = 1000;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      // 5000 nulls: 15 KB on the wire, 5000 values in the client
      const auto nulls = [](int n) {
        return cmd("EVAL", "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = false end return t",
                   "0", std::to_string(n));
      };
      const auto req6 = nulls(1000);  // a named local: GCC 12 and temporaries in co_await
      auto [e1, small] = co_await exec1(conn, req6);
      CHECK(!e1);
      CHECK(small.elements.size() == 1000);
      const auto req7 = nulls(5000);  // a named local: GCC 12 and temporaries in co_await
      auto [e2, big] = co_await exec1(conn, req7);
      CHECK(e2 == errc::message_too_large);
      CHECK(conn.last_error().find("max_reply_elements 1000") != std::string::npos);
      CHECK(conn.last_error().find("5000") != std::string::npos);
      CHECK(co_await answers_ping_within(conn, 2s));
      CHECK(conn.connect_count() == 2);
      conn.close();
    });
  }

  TEST_CASE(
      "wrong port gives connection_refused and a server that is not Redis protocol_error or "
      "timed_out") {
    asio::io_context io;
    seckill::test::fake_server http(io, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    seckill::test::fake_server silent(io, "");
    const auto closed_port = seckill::test::free_loopback_port();
    run_test(io, [&]() -> asio::awaitable<void> {
      connection_config cfg;
      cfg.connect_timeout = 500ms;
      cfg.port = std::to_string(closed_port);
      connection refused(co_await asio::this_coro::executor, cfg);
      auto [e1] = co_await refused.async_connect(tuple_awaitable);
      CHECK(e1 == errc::connection_refused);
      CHECK(refused.last_error().find(std::to_string(closed_port)) != std::string::npos);

      cfg.port = std::to_string(http.port());
      connection not_redis(co_await asio::this_coro::executor, cfg);
      auto [e2] = co_await not_redis.async_connect(tuple_awaitable);
      CHECK(e2 == errc::protocol_error);
      CHECK(not_redis.last_error().find("HTTP/1.1") != std::string::npos);

      cfg.port = std::to_string(silent.port());
      connection mute(co_await asio::this_coro::executor, cfg);
      const auto start = std::chrono::steady_clock::now();
      auto [e3] = co_await mute.async_connect(tuple_awaitable);
      CHECK(e3 == errc::timed_out);
      CHECK(std::chrono::steady_clock::now() - start < 3s);

      cfg.host = "no-such-host.invalid";
      connection unresolvable(co_await asio::this_coro::executor, cfg);
      auto [e4] = co_await unresolvable.async_connect(tuple_awaitable);
      CHECK(e4 == errc::connection_refused);
      http.close();
      silent.close();
    });
  }

  TEST_CASE("an oversized reply fails with message_too_large and the connection recovers") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.limits.max_bulk_length = 1024;
    connection conn(io.get_executor(), cfg);
    server.admin().command("SET", "big", std::string(4096, 'x'));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      auto [e1, v] = co_await exec1(conn, cmd("GET", "big"));
      CHECK(e1 == errc::message_too_large);
      CHECK(conn.last_error().find("4096") != std::string::npos);
      // the stream cannot be resynchronised: the connection is replaced by itself
      CHECK(co_await answers_ping_within(conn, 2s));
      CHECK(conn.connect_count() == 2);
      conn.close();
    });
  }

  TEST_CASE("a server that stops answering makes requests time out and later ones succeed") {
    redis_server server;
    asio::io_context io;
    connection conn(io.get_executor(), seckill::test::config_for<connection_config>(server));
    admin_client sleeper = server.admin();
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      co_await exec1(conn, cmd("SET", "k", "before"));
      sleeper.send(request().push("DEBUG", "SLEEP", "1").payload());
      co_await sleep_for(50ms);
      const auto start = std::chrono::steady_clock::now();
      auto [e1, v1] = co_await exec1(conn, cmd("GET", "k"), 200ms);
      CHECK(e1 == errc::timed_out);
      CHECK(std::chrono::steady_clock::now() - start < 700ms);
      CHECK(conn.state() == connection_state::ready);
      // once the server answers again, the late reply is discarded, not given to the next request
      auto [e2, v2] = co_await exec1(conn, cmd("SET", "k", "after"), 3000ms);
      CHECK(!e2);
      CHECK(v2.text == "OK");
      auto [e3, v3] = co_await exec1(conn, cmd("GET", "k"));
      CHECK(v3.text == "after");
      CHECK(conn.connect_count() == 1);
      conn.close();
    });
    CHECK(sleeper.read().text == "OK");
  }

  TEST_CASE("cancellation drops a queued request unsent and completes a written one at once") {
    redis_server server;
    asio::io_context io;
    connection conn(io.get_executor(), seckill::test::config_for<connection_config>(server));
    admin_client sleeper = server.admin();
    run_test(io, [&]() -> asio::awaitable<void> {
      // queued while connecting, cancelled before the connection is ready: never sent
      asio::cancellation_signal before;
      std::error_code queued_result;
      conn.async_connect([](std::error_code) {});
      conn.async_exec(
          cmd("INCR", "never"),
          asio::bind_cancellation_slot(
              before.slot(), [&](std::error_code e, std::vector<value>) { queued_result = e; }));
      before.emit(asio::cancellation_type::terminal);
      co_await sleep_for(300ms);
      CHECK(queued_result == errc::operation_aborted);
      REQUIRE(conn.state() == connection_state::ready);
      // written, then cancelled while the server sleeps: completes now
      sleeper.send(request().push("DEBUG", "SLEEP", "1").payload());
      co_await sleep_for(50ms);
      asio::cancellation_signal during;
      std::error_code written_result;
      bool written_done = false;
      conn.async_exec(
          cmd("INCR", "written"),
          asio::bind_cancellation_slot(during.slot(), [&](std::error_code e, std::vector<value>) {
            written_result = e;
            written_done = true;
          }));
      co_await sleep_for(50ms);
      during.emit(asio::cancellation_type::terminal);
      co_await sleep_for(20ms);
      CHECK(written_done);
      CHECK(written_result == errc::operation_aborted);
      auto [e1, v] = co_await exec1(conn, cmd("GET", "written"), 3000ms);
      CHECK(!e1);
      CHECK(v.text == "1");  // it was sent: the server ran it, its reply was dropped
      conn.close();
    });
    CHECK(counter(server, "never") == 0);
    sleeper.read();
  }

  TEST_CASE(
      "CLIENT KILL mid-run fails in-flight requests with not_connected and the connection "
      "reconnects") {
    redis_server server;
    asio::io_context io;
    connection conn(io.get_executor(), seckill::test::config_for<connection_config>(server));
    std::int64_t ok = 0, lost = 0, other = 0;
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      auto [ei, id] = co_await exec1(conn, cmd("CLIENT", "ID"));
      const auto deadline = std::chrono::steady_clock::now() + 1500ms;
      auto worker = [&]() -> asio::awaitable<void> {
        const auto incr = cmd("INCR", "n");
        while (std::chrono::steady_clock::now() < deadline) {
          auto [e, r] = co_await conn.async_exec(incr, tuple_awaitable);
          if (!e)
            ++ok;
          else if (e == errc::not_connected) {
            ++lost;
            co_await sleep_for(5ms);
          } else
            ++other;
        }
      };
      int running = 16;
      for (int i = 0; i < 16; ++i)
        asio::co_spawn(co_await asio::this_coro::executor, worker(),
                       [&](std::exception_ptr) { --running; });
      co_await sleep_for(300ms);
      auto killed = server.admin().command("CLIENT", "KILL", "ID", std::to_string(id.integer));
      CHECK(killed.integer == 1);
      co_await sleep_for(300ms);
      // and once more, by address
      server.admin().command("CLIENT", "KILL", "TYPE", "normal");
      while (running > 0) co_await sleep_for(20ms);
      CHECK(conn.state() == connection_state::ready);
      auto [e2, v] = co_await exec1(conn, cmd("GET", "n"));
      CHECK(!e2);
      const auto n = std::stoll(v.text);
      // each lost INCR may or may not have run, and none ran twice
      CHECK(n >= ok);
      CHECK(n <= ok + lost);
      conn.close();
    });
    CHECK(lost > 0);
    CHECK(other == 0);
    CHECK(ok > 100);
    CHECK(conn.connect_count() >= 3);
  }

  TEST_CASE(
      "server restart mid-run fails requests fast while it is down and the connection comes back") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.reconnect_max_delay = 100ms;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      auto [e0, v0] = co_await exec1(conn, cmd("SET", "k", "v"));
      REQUIRE(!e0);
      try {
        server.admin().command("SHUTDOWN", "NOSAVE");
      } catch (const std::exception&) {  // the connection closes without a reply
      }
      REQUIRE(server.wait_exit(10s));
      co_await sleep_for(100ms);
      const auto start = std::chrono::steady_clock::now();
      auto [e1, v1] = co_await exec1(conn, cmd("PING"));
      CHECK(e1 == errc::not_connected);
      CHECK(std::chrono::steady_clock::now() - start < 100ms);
      CHECK(conn.state() == connection_state::reconnecting);
      server.restart();
      CHECK(co_await answers_ping_within(conn, 4s));
      CHECK(conn.connect_count() == 2);
      conn.close();
    });
  }

  TEST_CASE("queue_while_reconnecting keeps unsent requests until the connection is back") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.queue_while_reconnecting = true;
    cfg.reconnect_initial_delay = 200ms;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      server.admin().command("CLIENT", "KILL", "TYPE", "normal");
      co_await sleep_for(50ms);
      CHECK(conn.state() == connection_state::reconnecting);
      auto [e1, v1] = co_await exec1(conn, cmd("INCR", "queued"));
      CHECK(!e1);
      CHECK(v1.integer == 1);
      conn.close();
    });
  }

  TEST_CASE("close() fails pending requests with operation_aborted and stops for good") {
    redis_server server;
    asio::io_context io;
    connection conn(io.get_executor(), seckill::test::config_for<connection_config>(server));
    admin_client sleeper = server.admin();
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE(!ec);
      sleeper.send(request().push("DEBUG", "SLEEP", "0.5").payload());
      co_await sleep_for(50ms);
      std::error_code pending;
      conn.async_exec(cmd("PING"), [&](std::error_code e, std::vector<value>) { pending = e; });
      co_await sleep_for(20ms);
      conn.close();
      co_await sleep_for(20ms);
      CHECK(pending == errc::operation_aborted);
      CHECK(conn.state() == connection_state::closed);
      auto [e1, v] = co_await exec1(conn, cmd("PING"));
      CHECK(e1 == errc::not_connected);
      auto [e2] = co_await conn.async_connect(tuple_awaitable);
      CHECK(e2 == errc::not_connected);
    });
    sleeper.read();
  }

  TEST_CASE("a pool on two threads spreads requests over its connections") {
    redis_server server;
    asio::io_context io(2);
    connection_pool pool(io.get_executor(), seckill::test::config_for<connection_config>(server),
                         2);
    std::atomic<int> ok{0};
    std::atomic<int> left{0};
    std::error_code connected = make_error_code(errc::timed_out);
    pool.async_connect([&](std::error_code ec) {
      connected = ec;
      constexpr int coroutines = 32, each = 200;
      left = coroutines;
      for (int c = 0; c < coroutines; ++c) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              const auto incr = cmd("INCR", "pooled");
              for (int i = 0; i < each; ++i) {
                auto [e, r] = co_await pool.async_exec(incr, tuple_awaitable);
                if (!e) ++ok;
              }
            },
            [&](std::exception_ptr) {
              if (--left == 0) pool.close();
            });
      }
    });
    std::thread second([&] { io.run_for(60s); });
    io.run_for(60s);
    second.join();
    CHECK(!connected);
    CHECK(ok == 32 * 200);
    CHECK(counter(server, "pooled") == 32 * 200);
    CHECK(pool.at(0).connect_count() == 1);
    CHECK(pool.at(1).connect_count() == 1);
  }
}
