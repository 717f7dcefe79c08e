// A Redis that stops answering but keeps its socket open (a frozen host, a
// lost route): the connection must let go of timed-out requests at once,
// take the server for dead within dead_peer_timeout, and come back through
// its reconnect path. A fake server here answers the handshake and then goes
// silent on command; a real redis-server is frozen with SIGSTOP.
#include <seckill/redis/connection.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <doctest/doctest.h>

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

using seckill::errc;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::redis::connection_state;
using seckill::redis::request;
using seckill::redis::value;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::sleep_for;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_silent_peer {

/// How a fake server's connections behave once told to go silent.
enum class silence {
  swallow,  ///< reads everything and answers nothing (a wedged server)
  stall,    ///< stops reading too: socket buffers fill, writes stall (a frozen host)
};

/// A fake Redis on 127.0.0.1: answers HELLO with a RESP3 map, PING with
/// PONG, anything else with OK, until `go_silent` silences the connections
/// it has at that moment; connections made later answer again.
class fake_redis {
 public:
  explicit fake_redis(asio::io_context& io)
      : io_(io), acceptor_(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io_, accept_loop(), asio::detached);
  }

  [[nodiscard]] unsigned short port() const { return acceptor_.local_endpoint().port(); }
  [[nodiscard]] std::size_t accepted() const { return sessions_.size(); }

  void go_silent(silence how) {
    for (auto& s : sessions_) {
      if (s->silent) continue;
      s->silent = true;
      s->how = how;
    }
  }

  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& s : sessions_) {
      s->socket.close(ignored);
      s->parked.cancel();
    }
  }

 private:
  struct session {
    explicit session(asio::ip::tcp::socket s)
        : socket(std::move(s)),
          parked(socket.get_executor(), std::chrono::steady_clock::time_point::max()) {}
    asio::ip::tcp::socket socket;
    asio::steady_timer parked;  // a stalled session waits here, reading nothing
    bool silent = false;
    silence how = silence::swallow;
  };

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(tuple_awaitable);
      if (ec) co_return;
      auto sess = std::make_shared<session>(std::move(s));
      sessions_.push_back(sess);
      asio::co_spawn(io_, serve(sess), asio::detached);
    }
  }

  static std::string answer(const value& command) {
    if (command.elements.empty()) return "-ERR empty command\r\n";
    std::string name = command.elements.front().text;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    if (name == "HELLO") return "%2\r\n+server\r\n+fake\r\n+proto\r\n:3\r\n";
    if (name == "PING") return "+PONG\r\n";
    return "+OK\r\n";
  }

  static asio::awaitable<void> serve(std::shared_ptr<session> s) {
    seckill::redis::parser commands;
    std::array<char, 64 * 1024> buf;
    for (;;) {
      if (s->silent && s->how == silence::stall) {
        co_await s->parked.async_wait(tuple_awaitable);  // until close()
        co_return;
      }
      auto [ec, n] = co_await s->socket.async_read_some(asio::buffer(buf), tuple_awaitable);
      if (ec) co_return;
      if (s->silent) continue;  // swallowed
      std::string out;
      std::string_view in(buf.data(), n);
      while (!in.empty()) {
        std::error_code perr;
        in.remove_prefix(commands.consume(in, perr));
        if (perr) co_return;
        if (commands.done()) out += answer(commands.take());
      }
      if (out.empty()) continue;
      auto [wec, wn] = co_await asio::async_write(s->socket, asio::buffer(out), tuple_awaitable);
      if (wec) co_return;
    }
  }

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<session>> sessions_;
};

request set_of(std::size_t bytes) {
  request r;
  r.push("SET", "k", std::string(bytes, 'v'));
  return r;
}

/// Bytes malloc has handed out and not had back (heap and mmap'd blocks).
std::size_t heap_in_use() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

/// Waits until `done()` or `limit` passed; returns how long it took (or
/// `limit`).
template <class Predicate>
asio::awaitable<std::chrono::milliseconds> wait_until(Predicate done,
                                                      std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  while (!done() && std::chrono::steady_clock::now() - start < limit) co_await sleep_for(10ms);
  co_return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
}

/// Sends the process `pid` SIGCONT when destroyed: a test that fails while
/// the server is stopped leaves no stopped server behind.
struct thaw_on_exit {
  pid_t pid;
  ~thaw_on_exit() { ::kill(pid, SIGCONT); }
};

}  // namespace integration_silent_peer

using namespace integration_silent_peer;

TEST_SUITE("integration") {
  TEST_CASE("timed-out requests to a silent server release their memory at once") {
    // Detection off: what is measured is the memory the timed-out requests
    // keep while nothing ends the connection. 16 KB requests at about
    // 1000 per second would hold 16 MB more every second if kept.
    for (const silence how : {silence::swallow, silence::stall}) {
      const std::string mode = how == silence::swallow ? "swallow" : "stall";
      CAPTURE(mode);
      asio::io_context io;
      fake_redis server(io);
      connection_config cfg;
      cfg.port = std::to_string(server.port());
      cfg.request_timeout = 100ms;
      cfg.dead_peer_timeout = 0ms;
      cfg.health_check_interval = 0ms;
      connection conn(io.get_executor(), cfg);
      constexpr std::size_t payload = 16 * 1024;
      std::size_t max_queued = 0, max_queued_bytes = 0, max_live = 0, max_in_flight = 0;
      std::size_t issued = 0, timed_out = 0, other = 0;
      std::ptrdiff_t heap_growth = 0;
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, conn.last_error());
        const request req1 =
            request().push("PING");  // a named local: GCC 12 and temporaries in co_await
        auto [e1, pong] = co_await seckill::test::exec1(conn, req1);
        REQUIRE(pong.text == "PONG");
        server.go_silent(how);
        const auto req = set_of(payload);
        auto on_done = [&](std::error_code e, std::vector<value>) {
          if (e == errc::timed_out)
            ++timed_out;
          else
            ++other;
        };
        // a warm-up second, so that the socket buffers fill (stall) and
        // every container reached its working size
        std::size_t heap_before = 0;
        const auto start = std::chrono::steady_clock::now();
        for (int tick = 0; tick < 400; ++tick) {  // about 4 s, 10 requests every 10 ms
          if (tick == 100) heap_before = heap_in_use();
          for (int i = 0; i < 10; ++i, ++issued) conn.async_exec(req, on_done);
          co_await sleep_for(10ms);
          const auto p = conn.pending();
          max_queued = std::max(max_queued, p.queued);
          max_queued_bytes = std::max(max_queued_bytes, p.queued_bytes);
          max_in_flight = std::max(max_in_flight, p.in_flight);
          max_live = std::max(max_live, p.queued + p.in_flight - p.discarding);
        }
        heap_growth =
            static_cast<std::ptrdiff_t>(heap_in_use()) - static_cast<std::ptrdiff_t>(heap_before);
        const auto elapsed = std::chrono::steady_clock::now() - start;
        co_await sleep_for(300ms);  // the last ones time out too
        MESSAGE("silent (", mode, ") for ",
                std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(),
                " ms: ", issued, " requests of ", payload, " bytes; heap growth over the last 3 s ",
                heap_growth, " bytes; max queued ", max_queued, " (", max_queued_bytes,
                " bytes), max in flight ", max_in_flight, ", max live ", max_live);
        CHECK(conn.state() == connection_state::ready);  // (nothing ends it: detection is off)
        conn.close();
        server.close();
      });
      CHECK(other == 0);
      CHECK(timed_out == issued);
      // Requests time out after 100 ms: about 100 of them are live at once.
      // Generous bounds for a loaded machine, far below what keeping them
      // would hold (4000 requests, 64 MB).
      CHECK(max_live <= 1000);
      CHECK(max_queued <= 1000);
      CHECK(max_queued_bytes <= 1000 * (payload + 64));
      // Over the last 3 s, 3000 requests of 16 KB came and went: kept, they
      // would be 48 MB (stall) or, as placeholders of ~200 bytes, 0.6 MB
      // (swallow); released, the heap stays flat but for the placeholders'
      // 32 bytes each.
      CHECK(heap_growth < 4 * 1024 * 1024);
      if (how == silence::swallow) {
        CHECK(max_in_flight > 1000);  // written, timed out, still owed replies: placeholders
      }
    }
  }

  TEST_CASE(
      "a server silent after the handshake is taken for dead within dead_peer_timeout and the "
      "connection reconnects") {
    for (const silence how : {silence::swallow, silence::stall}) {
      const std::string mode = how == silence::swallow ? "swallow" : "stall";
      CAPTURE(mode);
      asio::io_context io;
      fake_redis server(io);
      connection_config cfg;
      cfg.port = std::to_string(server.port());
      cfg.request_timeout = 200ms;
      cfg.dead_peer_timeout = 500ms;
      cfg.health_check_interval = 0ms;  // the requests alone find it
      cfg.reconnect_initial_delay = 20ms;
      connection conn(io.get_executor(), cfg);
      // Why the connection was lost, read as it is lost: a request timing out
      // later (the trickle goes on) sets the last error again.
      std::string lost_because;
      conn.on_state([&](connection_state st) {
        if (st == connection_state::reconnecting && lost_because.empty())
          lost_because = conn.last_error();
      });
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, conn.last_error());
        REQUIRE(conn.connect_count() == 1);
        server.go_silent(how);
        // a steady trickle of requests, each timing out, until it is found
        bool stop = false;
        std::size_t lost = 0;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              const auto req = set_of(4096);
              while (!stop) {
                conn.async_exec(req, [&](std::error_code e, std::vector<value>) {
                  lost += e == errc::not_connected;
                });
                co_await sleep_for(5ms);
              }
            },
            asio::detached);
        const auto found = co_await wait_until([&] { return conn.dead_peer_count() >= 1; }, 10s);
        const auto back = co_await wait_until([&] { return conn.connect_count() >= 2; }, 10s);
        stop = true;
        MESSAGE("silent (", mode, "): taken for dead after ", found.count(),
                " ms (dead_peer_timeout 500 ms), connected again ", back.count(),
                " ms later; lost because: ", lost_because, "; last_error: ", conn.last_error());
        CHECK(conn.dead_peer_count() == 1);
        CHECK(found <= 500ms + 3s);  // the bound is 500 ms + 125 ms; the machine is noisy
        CHECK(found >= 400ms);       // not before the server was silent that long
        CHECK(conn.connect_count() == 2);
        CHECK(lost_because.find("dead_peer_timeout 500 ms") != std::string::npos);
        // the new connection answers; nothing of the old one is held
        const request req2 =
            request().push("PING");  // a named local: GCC 12 and temporaries in co_await
        auto [e2, pong] = co_await seckill::test::exec1(conn, req2);
        CHECK(!e2);
        CHECK(pong.text == "PONG");
        co_await sleep_for(50ms);
        const auto p = conn.pending();
        CHECK(p.in_flight == 0);
        CHECK(p.discarding == 0);
        CHECK(p.queued == 0);
        CHECK(server.accepted() == 2);
        conn.close();
        server.close();
      });
    }
  }

  TEST_CASE("an idle connection whose server went silent is found by its health PING") {
    asio::io_context io;
    fake_redis server(io);
    connection_config cfg;
    cfg.port = std::to_string(server.port());
    cfg.dead_peer_timeout = 400ms;
    cfg.health_check_interval = 200ms;
    cfg.reconnect_initial_delay = 20ms;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, conn.last_error());
      // idle and answering: PINGs come and go, nothing is taken for dead
      co_await sleep_for(1000ms);
      CHECK(conn.dead_peer_count() == 0);
      CHECK(conn.connect_count() == 1);
      server.go_silent(silence::swallow);
      // no request at all: only the health PING can find it, within
      // health_check_interval + dead_peer_timeout (+ a tick)
      const auto back = co_await wait_until([&] { return conn.connect_count() >= 2; }, 10s);
      MESSAGE("idle: connected again ", back.count(),
              " ms after the server went silent (bound 200 + 400 ms)");
      CHECK(conn.connect_count() == 2);
      CHECK(conn.dead_peer_count() == 1);
      CHECK(back <= 600ms + 3s);
      conn.close();
      server.close();
    });
  }

  TEST_CASE(
      "a redis-server stopped with SIGSTOP is taken for dead and the connection is back after "
      "SIGCONT") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.request_timeout = 300ms;
    cfg.connect_timeout = 500ms;
    cfg.dead_peer_timeout = 1000ms;
    connection conn(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, conn.last_error());
      thaw_on_exit thaw{server.pid()};
      REQUIRE(::kill(server.pid(), SIGSTOP) == 0);
      bool stop = false;
      std::size_t sent = 0;
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            const request incr = request().push("INCR", "n");
            while (!stop) {
              conn.async_exec(incr, [](std::error_code, std::vector<value>) {});
              ++sent;
              co_await sleep_for(10ms);
            }
          },
          asio::detached);
      const auto found = co_await wait_until([&] { return conn.dead_peer_count() >= 1; }, 15s);
      stop = true;
      MESSAGE("SIGSTOP: taken for dead after ", found.count(), " ms (dead_peer_timeout 1000 ms); ",
              sent, " requests sent meanwhile");
      CHECK(conn.dead_peer_count() >= 1);
      CHECK(found <= 1000ms + 4s);
      // while it is stopped the handshake cannot finish: no connection is ready
      co_await sleep_for(200ms);
      CHECK(conn.state() == connection_state::reconnecting);
      const request req3 =
          request().push("PING");  // a named local: GCC 12 and temporaries in co_await
      auto [e1, v1] = co_await seckill::test::exec1(conn, req3);
      CHECK(e1 == errc::not_connected);  // fails fast instead of queueing forever
      REQUIRE(::kill(server.pid(), SIGCONT) == 0);
      const auto back =
          co_await wait_until([&] { return conn.state() == connection_state::ready; }, 15s);
      MESSAGE("SIGCONT: ready again after ", back.count(), " ms");
      const request req4 =
          request().push("PING");  // a named local: GCC 12 and temporaries in co_await
      auto [e2, pong] = co_await seckill::test::exec1(conn, req4, 5000ms);
      CHECK(!e2);
      CHECK(pong.text == "PONG");
      CHECK(conn.connect_count() >= 2);
      conn.close();
    });
  }

  TEST_CASE("a server busy for less than dead_peer_timeout is slow and not lost") {
    redis_server server;
    asio::io_context io;
    auto cfg = seckill::test::config_for<connection_config>(server);
    cfg.request_timeout = 100ms;
    cfg.dead_peer_timeout = 3000ms;
    cfg.health_check_interval = 200ms;
    connection conn(io.get_executor(), cfg);
    seckill::test::admin_client sleeper = server.admin();
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await conn.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, conn.last_error());
      sleeper.send(request().push("DEBUG", "SLEEP", "1").payload());
      std::size_t timed_out = 0;
      const request incr = request().push("INCR", "n");
      for (int i = 0; i < 100; ++i) {  // 1 s of requests, each timing out while the server sleeps
        conn.async_exec(incr, [&](std::error_code e, std::vector<value>) {
          timed_out += e == errc::timed_out;
        });
        co_await sleep_for(10ms);
      }
      const request req5 =
          request().push("GET", "n");  // a named local: GCC 12 and temporaries in co_await
      auto [e1, v] = co_await seckill::test::exec1(conn, req5, 5000ms);
      CHECK(!e1);
      CHECK(timed_out > 0);
      CHECK(conn.dead_peer_count() == 0);
      CHECK(conn.connect_count() == 1);
      const auto p = conn.pending();
      CHECK(p.in_flight == 0);  // the late replies were all read and dropped
      CHECK(p.discarding == 0);
      conn.close();
    });
    CHECK(sleeper.read().text == "OK");
  }
}
