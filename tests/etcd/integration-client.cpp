#include "etcd_fixture.hpp"

#include <seckill/etcd/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <string>

namespace integration_client {
namespace asio = boost::asio;
using namespace seckill::etcd;
using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

/// Runs a test coroutine to completion; rethrows what it threw.
template <class F>
void run(F&& f) {
  asio::io_context io;
  std::exception_ptr failure;
  asio::co_spawn(io, std::forward<F>(f)(io), [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) std::rethrow_exception(failure);
}

/// A TCP server on a free loopback port that answers every request with `reply`
/// (or never answers when `reply` is empty).
struct fake_http {
  asio::ip::tcp::acceptor acceptor;
  unsigned short port;
  fake_http(asio::io_context& io, std::string reply)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}),
        port(acceptor.local_endpoint().port()) {
    asio::co_spawn(io, serve(std::move(reply)), asio::detached);
  }
  asio::awaitable<void> serve(std::string reply) {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
      if (ec) co_return;
      asio::co_spawn(acceptor.get_executor(), answer(std::move(sock), reply), asio::detached);
    }
  }
  static asio::awaitable<void> answer(asio::ip::tcp::socket sock, std::string reply) {
    asio::streambuf buf;
    auto [ec, n] = co_await asio::async_read_until(sock, buf, "\r\n\r\n", tuple_awaitable);
    if (ec) co_return;
    if (reply.empty()) {
      // Silent for longer than any bound a test checks (2 s), then gone: a
      // client that waited for the answer instead would fail those checks.
      asio::steady_timer t(sock.get_executor(), std::chrono::seconds(3));
      co_await t.async_wait(tuple_awaitable);
      co_return;
    }
    co_await asio::async_write(sock, asio::buffer(reply), tuple_awaitable);
    sock.shutdown(asio::ip::tcp::socket::shutdown_both);
  }
  void close() { acceptor.close(); }
};

std::string json_reply(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace integration_client

TEST_SUITE("integration") {
  using namespace integration_client;
  TEST_CASE("put range prefix delete and txn against a real etcd") {
    seckill::test::etcd_cluster etcd(1);
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      auto [ec, put] = co_await c.async_put("app/a", std::string("v\0a", 3), tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK(put.header.revision > 0);
      std::tie(ec, put) =
          co_await c.async_put("app/b", "vb", put_options{.prev_kv = true}, tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK_FALSE(put.prev_kv.has_value());
      std::tie(ec, put) =
          co_await c.async_put("app/b", "vb2", put_options{.prev_kv = true}, tuple_awaitable);
      REQUIRE(put.prev_kv.has_value());
      CHECK(put.prev_kv->value == "vb");
      co_await c.async_put("apq", "outside", tuple_awaitable);

      auto [rec, one] = co_await c.async_get("app/a", tuple_awaitable);
      REQUIRE_FALSE(rec);
      REQUIRE(one.kvs.size() == 1);
      CHECK(one.kvs[0].value == std::string("v\0a", 3));
      CHECK(one.kvs[0].version == 1);

      range_options prefix;
      prefix.prefix = true;
      auto [pec, all] = co_await c.async_range("app/", prefix, tuple_awaitable);
      REQUIRE_FALSE(pec);
      REQUIRE(all.kvs.size() == 2);
      CHECK(all.kvs[0].key == "app/a");
      CHECK(all.kvs[1].key == "app/b");
      CHECK(all.kvs[1].version == 2);

      // compare on VERSION, CREATE, MOD, VALUE and LEASE
      const auto b = all.kvs[1];
      txn_request t;
      t.compares = {compare::version("app/b", compare::result::equal, 2),
                    compare::create_revision("app/b", compare::result::equal, b.create_revision),
                    compare::mod_revision("app/b", compare::result::equal, b.mod_revision),
                    compare::value_of("app/b", compare::result::equal, "vb2"),
                    compare::lease_id("app/b", compare::result::equal, 0)};
      t.success = {put_request{"app/c", "vc", {}}, range_request{"app/b", {}}};
      t.failure = {delete_request{"app/a", {}}};
      auto [tec, tr] = co_await c.async_txn(t, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK(tr.succeeded);
      REQUIRE(tr.responses.size() == 2);
      CHECK(std::get<range_result>(tr.responses[1]).kvs.at(0).value == "vb2");
      // the same guard now fails (app/b unchanged, but compare on the value of c)
      t.compares = {compare::value_of("app/c", compare::result::not_equal, "vc")};
      std::tie(tec, tr) = co_await c.async_txn(t, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK_FALSE(tr.succeeded);
      REQUIRE(tr.responses.size() == 1);
      CHECK(std::get<delete_result>(tr.responses[0]).deleted == 1);

      // (a named options object: g++ 12 mishandles some class temporaries in co_await expressions)
      const delete_options whole_prefix{.prefix = true, .prev_kv = true};
      auto [dec, del] = co_await c.async_delete("app/", whole_prefix, tuple_awaitable);
      REQUIRE_FALSE(dec);
      CHECK(del.deleted == 2);
      CHECK(del.prev_kvs.size() == 2);
      std::tie(rec, one) = co_await c.async_get("apq", tuple_awaitable);
      CHECK(one.kvs.size() == 1);
    });
  }

  TEST_CASE("leases - grant keepalive time-to-live revoke and the errors of a missing lease") {
    seckill::test::etcd_cluster etcd(1);
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      auto [ec, g] = co_await c.async_lease_grant(5, tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK(g.ttl == 5);
      co_await c.async_put("leased", "x", put_options{.lease = g.id}, tuple_awaitable);
      auto [kec, k] = co_await c.async_lease_keepalive(g.id, tuple_awaitable);
      REQUIRE_FALSE(kec);
      CHECK(k.ttl == 5);
      auto [tec, ttl] = co_await c.async_lease_time_to_live(g.id, true, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK(ttl.granted_ttl == 5);
      CHECK(ttl.ttl > 0);
      REQUIRE(ttl.keys.size() == 1);
      CHECK(ttl.keys[0] == "leased");
      auto [rec, rv] = co_await c.async_lease_revoke(g.id, tuple_awaitable);
      REQUIRE_FALSE(rec);
      auto [gec, got] = co_await c.async_get("leased", tuple_awaitable);
      CHECK(got.kvs.empty());
      std::tie(rec, rv) = co_await c.async_lease_revoke(g.id, tuple_awaitable);
      CHECK(rec == seckill::etcd::errc::lease_not_found);
      CHECK(rv.error_message.find("lease not found") != std::string::npos);
      std::tie(kec, k) = co_await c.async_lease_keepalive(g.id, tuple_awaitable);
      CHECK(kec == seckill::etcd::errc::lease_not_found);
      std::tie(tec, ttl) = co_await c.async_lease_time_to_live(g.id, false, tuple_awaitable);
      REQUIRE_FALSE(tec);
      CHECK(ttl.ttl == -1);
      auto [pec, p] = co_await c.async_put("k", "v", put_options{.lease = 12345}, tuple_awaitable);
      CHECK(pec == seckill::etcd::errc::lease_not_found);
      CHECK(p.error_message.find("lease not found") != std::string::npos);
    });
  }

  TEST_CASE("compacted and future revisions are reported with etcd's message") {
    seckill::test::etcd_cluster etcd(1);
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      co_await c.async_put("k", "1", tuple_awaitable);
      co_await c.async_put("k", "2", tuple_awaitable);
      auto [ec, p] = co_await c.async_put("k", "3", tuple_awaitable);
      auto [cec, cr] = co_await c.async_compact(p.header.revision, false, tuple_awaitable);
      REQUIRE_FALSE(cec);
      range_options old;
      old.revision = p.header.revision - 1;
      auto [rec, r] = co_await c.async_range("k", old, tuple_awaitable);
      CHECK(rec == seckill::etcd::errc::compacted);
      CHECK(r.error_message.find("compacted") != std::string::npos);
      old.revision = p.header.revision + 100;
      std::tie(rec, r) = co_await c.async_range("k", old, tuple_awaitable);
      CHECK(rec == seckill::errc::invalid_argument);
      CHECK(r.error_message.find("future revision") != std::string::npos);
    });
  }

  TEST_CASE(
      "unreachable endpoints fail with connection_refused - a live one after dead ones is used") {
    seckill::test::etcd_cluster etcd(1);
    const auto dead1 = seckill::test::free_loopback_port();
    const auto dead2 = seckill::test::free_loopback_port();
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      client_options o;
      o.endpoints = {{"127.0.0.1", dead1}, {"127.0.0.1", dead2}};
      o.call_timeout = std::chrono::seconds(3);
      client none(io.get_executor(), o);
      auto [ec, r] = co_await none.async_get("k", tuple_awaitable);
      CHECK(ec == seckill::errc::connection_refused);
      CHECK(r.error_message.find(std::to_string(dead1)) != std::string::npos);
      CHECK(r.error_message.find(std::to_string(dead2)) != std::string::npos);

      o.endpoints.push_back(etcd.endpoint_of(0));
      client some(io.get_executor(), o);
      auto [pec, p] = co_await some.async_put("k", "v", tuple_awaitable);
      CHECK_FALSE(pec);
      CHECK(some.current_endpoint() == 2);
      auto [gec, g] = co_await some.async_get("k", tuple_awaitable);
      REQUIRE_FALSE(gec);
      CHECK(g.kvs.at(0).value == "v");
    });
  }

  TEST_CASE("an HTTP server that is not etcd and malformed JSON are protocol errors") {
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      fake_http html(io,
                     "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 21\r\n"
                     "Connection: close\r\n\r\n<html>nothing</html>\n");
      fake_http truncated(io, json_reply(R"({"header":{"revision":"1")"));
      fake_http wrong_types(io, json_reply(R"({"kvs":[{"key":12}]})"));
      fake_http not_http(io, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
      for (auto* server : {&html, &truncated, &wrong_types, &not_http}) {
        client_options o;
        o.endpoints = {{"127.0.0.1", server->port}};
        o.call_timeout = std::chrono::seconds(3);
        client c(io.get_executor(), o);
        auto [ec, r] = co_await c.async_get("k", tuple_awaitable);
        CAPTURE(r.error_message);
        CHECK(ec == seckill::errc::protocol_error);
        CHECK_FALSE(r.error_message.empty());
      }
      html.close();
      truncated.close();
      wrong_types.close();
      not_http.close();
    });
  }

  TEST_CASE("a call to a member that never answers times out and can be cancelled") {
    run([&](asio::io_context& io) -> asio::awaitable<void> {
      fake_http silent(io, "");
      client_options o;
      o.endpoints = {{"127.0.0.1", silent.port}};
      o.call_timeout = std::chrono::milliseconds(300);
      client c(io.get_executor(), o);
      const auto t0 = std::chrono::steady_clock::now();
      auto [ec, r] = co_await c.async_get("k", tuple_awaitable);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));

      o.call_timeout = std::chrono::seconds(20);
      client slow(io.get_executor(), o);
      asio::cancellation_signal cancel;
      asio::steady_timer timer(io, std::chrono::milliseconds(100));
      timer.async_wait([&](auto) { cancel.emit(asio::cancellation_type::terminal); });
      const auto t1 = std::chrono::steady_clock::now();
      std::tie(ec, r) = co_await slow.async_get(
          "k", asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
      CHECK(ec == seckill::errc::operation_aborted);
      CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(2));
      silent.close();
    });
  }
}
