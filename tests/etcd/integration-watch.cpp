#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/watch.hpp>

#include <doctest/doctest.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace integration_watch {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

/// Takes responses until `n` events arrived (or `timeout`).
asio::awaitable<std::vector<event>> take(watch_stream& s, std::size_t n,
                                         std::chrono::milliseconds timeout = 5s) {
  using namespace asio::experimental::awaitable_operators;
  std::vector<event> out;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  while (out.size() < n) {
    auto r = co_await (s.async_next(tuple_awaitable) || timer.async_wait(tuple_awaitable));
    if (r.index() == 1) break;  // timed out
    auto& [ec, resp] = std::get<0>(r);
    if (ec) break;
    for (auto& e : resp.events) out.push_back(std::move(e));
  }
  co_return out;
}

// What both failover tests share: a prefix watch on the client's current
// member; a writer that talks to the other members first and puts 60 keys,
// with `fault(member)` done to the watch's member after a third of them. The
// watch must resume on another member with every confirmed revision exactly
// once and in order. Returns the member the fault was done to.
asio::awaitable<std::size_t> watch_through_member_fault(
    seckill::test::etcd_cluster& etcd, asio::io_context& io, const std::string& prefix_key,
    const std::function<void(std::size_t)>& fault) {
  client c(io.get_executor(), etcd.options());
  watcher w(c);
  watch_options prefix;
  prefix.prefix = true;
  auto [ec, s] = co_await w.async_watch(prefix_key, prefix, tuple_awaitable);
  REQUIRE_FALSE(ec);
  const std::size_t victim = c.current_endpoint();
  // the writer talks to the other members first
  client_options wo = etcd.options();
  wo.endpoints.clear();
  for (std::size_t i = 1; i <= 3; ++i) wo.endpoints.push_back(etcd.endpoint_of((victim + i) % 3));
  client writer(io.get_executor(), wo);

  constexpr int total = 60;
  std::vector<std::int64_t> written;  // revisions of the puts etcd confirmed
  std::int64_t last_rev = 0;
  bool writer_done = false;
  // a named closure: the coroutine refers to its captures, which must outlive it
  auto write_all = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < total; ++i) {
      if (i == total / 3) fault(victim);
      const std::string key = prefix_key + std::to_string(i);
      const std::string value = std::to_string(i);
      const auto until = std::chrono::steady_clock::now() + 20s;
      for (;;) {
        auto [pe, r] = co_await writer.async_put(key, value, tuple_awaitable);
        if (!pe) {
          written.push_back(r.header.revision);
          last_rev = r.header.revision;
          break;
        }
        if (std::chrono::steady_clock::now() > until) co_return;
        co_await seckill::test::sleep_for(50ms);
      }
      co_await seckill::test::sleep_for(10ms);
    }
    writer_done = true;
  };
  asio::co_spawn(io, write_all(), asio::detached);

  using namespace asio::experimental::awaitable_operators;
  std::vector<std::int64_t> seen;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (writer_done && !seen.empty() && seen.back() >= last_rev) break;
    asio::steady_timer tick(io, 250ms);  // rechecks the writer and the deadline
    auto r = co_await (s.async_next(tuple_awaitable) || tick.async_wait(tuple_awaitable));
    if (r.index() == 1) continue;
    auto& [nec, resp] = std::get<0>(r);
    REQUIRE_FALSE(nec);
    for (const auto& e : resp.events) seen.push_back(e.kv.mod_revision);
  }
  REQUIRE(writer_done);
  INFO("watch connections: " << w.connections() << ", seen " << seen.size() << " of "
                             << written.size());
  REQUIRE(!seen.empty());
  CHECK(seen.back() == last_rev);
  CHECK(w.connections() >= 2u);
  bool contiguous = true;
  for (std::size_t i = 1; i < seen.size(); ++i)
    contiguous = contiguous && seen[i] == seen[i - 1] + 1;
  CHECK(contiguous);  // strictly increasing, no gap, no repeat (only this test writes)
  CHECK(seen.front() <= written.front());
  for (const auto rev : written) CHECK(std::binary_search(seen.begin(), seen.end(), rev));
  CHECK(c.current_endpoint() != victim);
  co_return victim;
}

}  // namespace integration_watch

TEST_SUITE("integration") {
  using namespace integration_watch;
  TEST_CASE(
      "prefix watches deliver puts and deletes in order - several share one socket - cancel stops "
      "one") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      watcher w(c);
      watch_options prefix;
      prefix.prefix = true;
      prefix.prev_kv = true;
      auto [ec, a] = co_await w.async_watch("inv/", prefix, tuple_awaitable);
      REQUIRE_FALSE(ec);
      const watch_options
          single_key;  // a named local: GCC 12 destroys a braced temporary in co_await twice
      auto [ec2, b] = co_await w.async_watch("cfg", single_key, tuple_awaitable);
      REQUIRE_FALSE(ec2);
      CHECK(w.connections() == 1u);
      CHECK(w.active() == 2u);
      co_await c.async_put("inv/1", "10", tuple_awaitable);
      co_await c.async_put("other", "x", tuple_awaitable);
      co_await c.async_put("cfg", "on", tuple_awaitable);
      co_await c.async_put("inv/1", "9", tuple_awaitable);
      const delete_options one;
      co_await c.async_delete("inv/1", one, tuple_awaitable);
      auto ev = co_await take(a, 3);
      REQUIRE(ev.size() == 3);
      CHECK(ev[0].type == event::kind::put);
      CHECK(ev[0].kv.value == "10");
      CHECK(ev[1].kv.value == "9");
      REQUIRE(ev[1].prev_kv.has_value());
      CHECK(ev[1].prev_kv->value == "10");
      CHECK(ev[2].type == event::kind::del);
      CHECK(ev[0].kv.mod_revision < ev[1].kv.mod_revision);
      CHECK(ev[1].kv.mod_revision < ev[2].kv.mod_revision);
      auto evb = co_await take(b, 1);
      REQUIRE(evb.size() == 1);
      CHECK(evb[0].kv.key == "cfg");
      b.cancel();
      auto [nec, none] = co_await b.async_next(tuple_awaitable);
      CHECK(nec == seckill::errc::operation_aborted);
      CHECK(co_await seckill::test::eventually([&] { return w.active() == 1u; }, 2000ms));
      co_await c.async_put("inv/2", "5", tuple_awaitable);
      ev = co_await take(a, 1);
      REQUIRE(ev.size() == 1);
      CHECK(ev[0].kv.key == "inv/2");
      CHECK(w.connections() == 1u);
    });
  }

  TEST_CASE(
      "a watch from a compacted revision is resynchronised - a snapshot then the changes after "
      "it") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      auto [e1, first] = co_await c.async_put("inv/a", "1", tuple_awaitable);
      co_await c.async_put("inv/b", "2", tuple_awaitable);
      auto [e3, last] = co_await c.async_put("inv/a", "3", tuple_awaitable);
      co_await c.async_compact(last.header.revision, true, tuple_awaitable);
      watcher w(c);
      watch_options o;
      o.prefix = true;
      o.start_revision = first.header.revision;
      auto [ec, s] = co_await w.async_watch("inv/", o, tuple_awaitable);
      REQUIRE_FALSE(ec);
      auto [nec, r] = co_await s.async_next(tuple_awaitable);
      REQUIRE_FALSE(nec);
      CHECK(r.resynced);
      CHECK(r.compact_revision == last.header.revision);
      REQUIRE(r.snapshot.size() == 2);
      CHECK(r.snapshot[0].value == "3");
      CHECK(r.snapshot[1].value == "2");
      auto [pe, next] = co_await c.async_put("inv/c", "4", tuple_awaitable);
      auto ev = co_await take(s, 1);
      REQUIRE(ev.size() == 1);
      CHECK(ev[0].kv.mod_revision == next.header.revision);

      // without resync the watch ends with errc::compacted
      o.resync_on_compaction = false;
      auto [ec2, s2] = co_await w.async_watch("inv/", o, tuple_awaitable);
      if (!ec2) {
        auto [n2, r2] = co_await s2.async_next(tuple_awaitable);
        CHECK_FALSE(n2);
        CHECK(r2.compact_revision == last.header.revision);
        std::tie(n2, r2) = co_await s2.async_next(tuple_awaitable);
        CHECK(n2 == seckill::etcd::errc::compacted);
      } else {
        CHECK(ec2 == seckill::etcd::errc::compacted);
      }
    });
  }

  TEST_CASE("prefix_cache follows a prefix - initial load puts deletes") {
    seckill::test::etcd_cluster etcd(1);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      co_await c.async_put("stock/apple", "10", tuple_awaitable);
      co_await c.async_put("stock/pear", "4", tuple_awaitable);
      co_await c.async_put("stocking", "not mine", tuple_awaitable);
      watcher w(c);
      prefix_cache cache(w, "stock/");
      int changes = 0;
      cache.on_change([&](const event&) { ++changes; });
      auto [ec, rev] = co_await cache.async_start(tuple_awaitable);
      REQUIRE_FALSE(ec);
      CHECK(cache.items().size() == 2);
      CHECK(cache.get("stock/apple")->value == "10");
      auto [pe, p] = co_await c.async_put("stock/apple", "9", tuple_awaitable);
      const delete_options one;
      auto [de, d] = co_await c.async_delete("stock/pear", one, tuple_awaitable);
      auto [we, seen] = co_await cache.async_wait_revision(d.header.revision, tuple_awaitable);
      REQUIRE_FALSE(we);
      CHECK(cache.get("stock/apple")->value == "9");
      CHECK_FALSE(cache.get("stock/pear").has_value());
      CHECK_FALSE(cache.get("stocking").has_value());
      CHECK(changes == 2);
      CHECK(cache.revision() == d.header.revision);
    });
  }

  TEST_CASE(
      "watcher - an HTTP server that is not etcd refuses the upgrade and async_watch times out") {
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
      const auto port = acceptor.local_endpoint().port();
      asio::co_spawn(
          io,
          [](asio::ip::tcp::acceptor& acc) -> asio::awaitable<void> {
            for (;;) {
              auto [ec, sock] = co_await acc.async_accept(tuple_awaitable);
              if (ec) co_return;
              const std::string reply =
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
              co_await asio::async_write(sock, asio::buffer(reply), tuple_awaitable);
            }
          }(acceptor),
          asio::detached);
      client_options o;
      o.endpoints = {{"127.0.0.1", port}};
      o.call_timeout = 700ms;
      client c(io.get_executor(), o);
      watcher w(c);
      const watch_options single_key;
      auto [ec, s] = co_await w.async_watch("k", single_key, tuple_awaitable);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(w.connections() == 0u);
      acceptor.close();
    });
  }

  TEST_CASE(
      "3 members - kill -9 the member a watch uses - the watch resumes on another member and every "
      "revision arrives once in order") {
    seckill::test::etcd_cluster etcd(3);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      const std::string prefix_key = "kill9/";
      const std::function<void(std::size_t)> kill = [&](std::size_t member) { etcd.kill(member); };
      co_await watch_through_member_fault(etcd, io, prefix_key, kill);
    });
  }

  TEST_CASE(
      "3 members - kill -STOP the member a watch uses - the silent socket is given up and every "
      "revision arrives once in order") {
    seckill::test::etcd_cluster etcd(3);
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      const std::string prefix_key = "stop9/";
      const std::function<void(std::size_t)> freeze = [&](std::size_t member) {
        etcd.freeze(member);
      };
      const std::size_t frozen = co_await watch_through_member_fault(etcd, io, prefix_key, freeze);
      etcd.thaw(frozen);
    });
  }
}
