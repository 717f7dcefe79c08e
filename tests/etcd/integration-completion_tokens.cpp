// Every kind of completion token reaches the etcd operations the same way
// (callback, use_awaitable, deferred, use_future), the handler's associated
// executor runs its completion, and per-operation cancellation bound to the
// handler reaches each cancellable operation and leaves its object usable.
#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <tuple>

namespace integration_completion_tokens {
namespace asio = boost::asio;
using namespace seckill::etcd;
using namespace std::chrono_literals;
using seckill::test::tuple_awaitable;

/// A gateway that answers every request with an empty range result, but only
/// after `delay`: long enough for a test to cancel the call first.
struct slow_gateway {
  asio::ip::tcp::acceptor acceptor;
  std::chrono::milliseconds delay;
  slow_gateway(asio::io_context& io, std::chrono::milliseconds d)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}), delay(d) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  [[nodiscard]] unsigned short port() const { return acceptor.local_endpoint().port(); }
  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
      if (ec) co_return;
      asio::co_spawn(acceptor.get_executor(), answer(std::move(sock), delay), asio::detached);
    }
  }
  static asio::awaitable<void> answer(asio::ip::tcp::socket sock, std::chrono::milliseconds delay) {
    const std::string body = R"({"header":{"revision":"7"},"count":"0"})";
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    const std::string end_of_head = "\r\n\r\n";
    for (;;) {
      asio::streambuf buf;
      auto [ec, n] = co_await asio::async_read_until(sock, buf, end_of_head, tuple_awaitable);
      if (ec) co_return;
      // the request body follows the head: read what Content-Length says
      std::string head(static_cast<const char*>(buf.data().data()), n);
      buf.consume(n);
      std::size_t length = 0;
      if (const auto at = head.find("Content-Length: "); at != std::string::npos) {
        length = std::stoul(head.substr(at + 16));
      }
      if (buf.size() < length) {
        auto [rec, rn] = co_await asio::async_read(
            sock, buf, asio::transfer_exactly(length - buf.size()), tuple_awaitable);
        if (rec) co_return;
      }
      co_await seckill::test::sleep_for(delay);
      auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(reply), tuple_awaitable);
      if (wec) co_return;
    }
  }
};

/// Runs `io` until `done()` holds (or `timeout` passes; the checks then fail).
template <class Pred>
void run_until(asio::io_context& io, Pred done, std::chrono::milliseconds timeout = 5s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < until) io.run_one_for(10ms);
}

client_options shared_options() {
  auto o = seckill::test::shared_single_node().options();
  return o;
}

}  // namespace integration_completion_tokens

TEST_SUITE("integration") {
  using namespace integration_completion_tokens;

  TEST_CASE("client calls complete through a callback - use_awaitable - deferred and use_future") {
    asio::io_context io;
    client c(io.get_executor(), shared_options());
    const std::string key = "tokens/client/k";

    // a callback, bound to a strand: the completion runs there
    auto strand = asio::make_strand(io);
    std::optional<std::error_code> put_ec;
    bool on_strand = false;
    c.async_put(key, "v1", asio::bind_executor(strand, [&](std::error_code ec, put_result) {
                  on_strand = strand.running_in_this_thread();
                  put_ec = ec;
                }));
    io.run();
    io.restart();
    REQUIRE(put_ec.has_value());
    CHECK_FALSE(*put_ec);
    CHECK(on_strand);

    // use_awaitable (std::error_code comes back as the tuple's first element)
    std::string seen;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const range_options just_the_key;
          auto [ec, r] = co_await c.async_range(key, just_the_key, asio::use_awaitable);
          CHECK_FALSE(ec);
          if (!r.kvs.empty()) seen = r.kvs.front().value;
        },
        asio::detached);
    io.run();
    io.restart();
    CHECK(seen == "v1");

    // deferred: nothing is sent before the operation is launched
    auto put_later = c.async_put(key, "v2", asio::deferred);
    auto before = c.async_get(key, asio::use_future);
    io.run();
    io.restart();
    auto [bec, br] = before.get();
    CHECK_FALSE(bec);
    REQUIRE(br.kvs.size() == 1);
    CHECK(br.kvs.front().value == "v1");
    std::optional<std::error_code> deferred_ec;
    std::move(put_later)([&](std::error_code ec, put_result) { deferred_ec = ec; });
    io.run();
    io.restart();
    REQUIRE(deferred_ec.has_value());
    CHECK_FALSE(*deferred_ec);

    // use_future
    auto after = c.async_range(key, range_options{}, asio::use_future);
    io.run();
    auto [aec, ar] = after.get();
    CHECK_FALSE(aec);
    REQUIRE(ar.kvs.size() == 1);
    CHECK(ar.kvs.front().value == "v2");
  }

  TEST_CASE(
      "session and election calls complete through a callback - use_awaitable - deferred and "
      "use_future") {
    asio::io_context io;
    client c(io.get_executor(), shared_options());
    session s(c, {.ttl = 5s});

    std::optional<std::error_code> start_ec;
    std::int64_t lease = 0;
    s.async_start([&](std::error_code ec, std::int64_t id) {
      start_ec = ec;
      lease = id;
    });
    run_until(io, [&] { return start_ec.has_value(); });
    REQUIRE(start_ec.has_value());
    REQUIRE_FALSE(*start_ec);
    CHECK(lease == s.lease());

    election e(s, "tokens/election");
    auto campaign = e.async_campaign("node-a", asio::use_future);
    run_until(io, [&] { return campaign.wait_for(0s) == std::future_status::ready; });
    auto [cec, me] = campaign.get();
    REQUIRE_FALSE(cec);
    CHECK(e.is_leader());
    CHECK(me.value == "node-a");

    auto who = e.async_leader(asio::deferred);
    std::optional<leader_info> leader;
    std::move(who)([&](std::error_code ec, std::optional<leader_info> l) {
      CHECK_FALSE(ec);
      leader = l;
    });
    run_until(io, [&] { return leader.has_value(); });
    REQUIRE(leader.has_value());
    CHECK(leader->create_revision == me.create_revision);

    std::int64_t proclaimed = 0;
    bool resigned = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [pec, rev] = co_await e.async_proclaim("node-a2", asio::use_awaitable);
          CHECK_FALSE(pec);
          proclaimed = rev;
          auto [rec, rrev] = co_await e.async_resign(asio::use_awaitable);
          CHECK_FALSE(rec);
          CHECK(rrev > rev);
          resigned = true;
        },
        asio::detached);
    run_until(io, [&] { return resigned; });
    CHECK(proclaimed > me.create_revision);
    CHECK_FALSE(e.is_leader());

    auto closed = s.async_close(asio::use_future);
    run_until(io, [&] { return closed.wait_for(0s) == std::future_status::ready; });
    auto [clec, closed_lease] = closed.get();
    CHECK_FALSE(clec);
    CHECK(closed_lease == lease);
  }

  TEST_CASE(
      "etcd_store calls complete through a callback - use_awaitable - deferred and use_future") {
    asio::io_context io;
    etcd_store_options o;
    o.prefix = "tokens/store/";
    etcd_store<> store(io.get_executor(), shared_options(), o);
    const std::string sku = "apple";

    // the callback of async_set_stock keeps its associated executor
    auto strand = asio::make_strand(io);
    std::optional<std::error_code> set_ec;
    bool on_strand = false;
    store.async_set_stock(sku, 5, asio::bind_executor(strand, [&](std::error_code ec) {
                            on_strand = strand.running_in_this_thread();
                            set_ec = ec;
                          }));
    io.run();
    io.restart();
    REQUIRE(set_ec.has_value());
    CHECK_FALSE(*set_ec);
    CHECK(on_strand);

    std::int64_t remaining = -1;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto [ec, level] = co_await store.async_stock(sku, asio::use_awaitable);
          CHECK_FALSE(ec);
          remaining = level.remaining;
        },
        asio::detached);
    io.run();
    io.restart();
    CHECK(remaining == 5);

    auto reserve = store.async_reserve(sku, 2, 41, 30s, asio::deferred);
    std::optional<seckill::reserve_result> reserved;
    std::move(reserve)([&](std::error_code ec, seckill::reserve_result r) {
      CHECK_FALSE(ec);
      reserved = r;
    });
    io.run();
    io.restart();
    REQUIRE(reserved.has_value());
    CHECK(reserved->status == seckill::reserve_status::reserved);
    CHECK(reserved->remaining == 3);

    auto commit = store.async_commit(sku, 41, asio::use_future);
    auto set_again = store.async_set_stock(sku, 9, asio::use_future);
    io.run();
    auto [cec, settled] = commit.get();
    CHECK_FALSE(cec);
    CHECK(settled.status == seckill::settle_status::done);
    CHECK_FALSE(set_again.get());
  }

  TEST_CASE("a cancelled client call completes at once and the client serves the next call") {
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      slow_gateway gateway(io, 600ms);
      client_options o;
      o.endpoints = {{"127.0.0.1", gateway.port()}};
      o.call_timeout = 5s;
      client c(io.get_executor(), o);
      asio::cancellation_signal cancel;
      asio::steady_timer t(io, 50ms);
      t.async_wait([&](auto) { cancel.emit(asio::cancellation_type::terminal); });
      const auto began = std::chrono::steady_clock::now();
      const std::string key = "k";
      const range_options just_the_key;
      auto [ec, r] = co_await c.async_range(
          key, just_the_key, asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
      CHECK(ec == seckill::errc::operation_aborted);
      CHECK(std::chrono::steady_clock::now() - began < 400ms);
      CHECK_FALSE(r.error_message.empty());
      auto [again, r2] = co_await c.async_range(key, just_the_key, tuple_awaitable);
      CHECK_FALSE(again);
      CHECK(r2.header.revision == 7);
      gateway.acceptor.close();
    });
  }

  TEST_CASE("a cancelled watch wait completes and the stream delivers the next change") {
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shared_options());
      watcher w(c);
      const std::string key = "tokens/watch/k";
      const watch_options changes;
      auto [wec, stream] = co_await w.async_watch(key, changes, tuple_awaitable);
      REQUIRE_FALSE(wec);
      asio::cancellation_signal cancel;
      asio::steady_timer t(io, 100ms);
      t.async_wait([&](auto) { cancel.emit(asio::cancellation_type::total); });
      auto [nec, nothing] =
          co_await stream.async_next(asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
      CHECK(nec == seckill::errc::operation_aborted);
      CHECK(nothing.events.empty());
      CHECK(stream.valid());
      auto [pec, put] = co_await c.async_put(key, "after", tuple_awaitable);
      REQUIRE_FALSE(pec);
      auto [ec, resp] = co_await stream.async_next(tuple_awaitable);
      CHECK_FALSE(ec);
      REQUIRE(resp.events.size() == 1);
      CHECK(resp.events.front().kv.value == "after");
      CHECK(resp.events.front().kv.mod_revision == put.header.revision);
    });
  }

  TEST_CASE("a cancelled campaign behind a leader gives up and the candidate can campaign again") {
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shared_options());
      session s1(c, {.ttl = 5s}), s2(c, {.ttl = 5s});
      co_await s1.async_start(tuple_awaitable);
      co_await s2.async_start(tuple_awaitable);
      election first(s1, "tokens/campaign"), second(s2, "tokens/campaign");
      auto [ec, leader] = co_await first.async_campaign("first", tuple_awaitable);
      REQUIRE_FALSE(ec);

      asio::cancellation_signal cancel;
      asio::steady_timer t(io, 200ms);
      t.async_wait([&](auto) { cancel.emit(asio::cancellation_type::terminal); });
      const std::string value = "second";
      auto [cec, none] = co_await second.async_campaign(
          value, asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
      CHECK(cec == seckill::errc::operation_aborted);
      CHECK_FALSE(second.is_leader());
      CHECK(first.is_leader());
      range_options all;
      all.prefix = true;
      const std::string prefix = "tokens/campaign/";
      auto [rec, keys] = co_await c.async_range(prefix, all, tuple_awaitable);
      CHECK(keys.kvs.size() == 1);  // the cancelled campaign deleted its key

      // still usable: once the leader resigns, the second candidate leads
      co_await first.async_resign(tuple_awaitable);
      auto [again, me] = co_await second.async_campaign(value, tuple_awaitable);
      CHECK_FALSE(again);
      CHECK(second.is_leader());
      CHECK(me.create_revision > leader.create_revision);
      co_await second.async_resign(tuple_awaitable);
      co_await s1.async_close(tuple_awaitable);
      co_await s2.async_close(tuple_awaitable);
    });
  }

  TEST_CASE("a cancelled wait for a session loss completes and the session stays alive") {
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shared_options());
      session s(c, {.ttl = 5s});
      auto [sec, lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      asio::cancellation_signal cancel;
      asio::steady_timer t(io, 100ms);
      t.async_wait([&](auto) { cancel.emit(asio::cancellation_type::total); });
      auto [lec, lost] =
          co_await s.async_wait_lost(asio::bind_cancellation_slot(cancel.slot(), tuple_awaitable));
      CHECK(lec == seckill::errc::operation_aborted);
      CHECK(lost == lease);
      CHECK(s.alive());
      auto [aec, alive] = co_await s.async_wait_alive(tuple_awaitable);
      CHECK_FALSE(aec);
      CHECK(alive == lease);
      co_await s.async_close(tuple_awaitable);
    });
  }
}
