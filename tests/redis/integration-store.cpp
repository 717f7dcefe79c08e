#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"
#include "store_conformance.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

using seckill::errc;
using seckill::reserve_status;
using seckill::settle_status;
using seckill::redis::connection_config;
using seckill::redis::connection_state;
using seckill::redis::redis_store;
using seckill::redis::redis_store_options;
using seckill::test::redis_server;
using seckill::test::sleep_for;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_store {

// The conformance suite's fixture: a server and a connected store per test case.
class redis_fixture : public seckill::test::real_time_fixture {
 public:
  redis_fixture() : redis_fixture([](connection_config&) {}) {}
  explicit redis_fixture(const std::function<void(connection_config&)>& tweak)
      : store_(io_.get_executor(), tweaked(server_, tweak)) {
    std::optional<std::error_code> connected;
    store_.async_connect([&](std::error_code ec) { connected = ec; });
    while (!connected) io_.run_one_for(10ms);
    REQUIRE_MESSAGE(!*connected, store_.connection().last_error());
  }
  redis_fixture(const redis_fixture&) = delete;
  redis_fixture& operator=(const redis_fixture&) = delete;
  ~redis_fixture() {
    store_.close();
    io_.restart();
    io_.run_for(5s);  // the connection's loops end; nothing is left on io_
  }

  redis_store& store() { return store_; }
  asio::io_context& io() { return io_; }
  std::string sku(std::string_view name) {
    return std::string(name) + "-" + std::to_string(::getpid());
  }
  redis_server& server() { return server_; }

 private:
  static connection_config tweaked(const redis_server& server,
                                   const std::function<void(connection_config&)>& tweak) {
    auto cfg = seckill::test::config_for<connection_config>(server);
    tweak(cfg);
    return cfg;
  }

  redis_server server_;
  asio::io_context io_;
  redis_store store_;
};

// What the server holds for `sku`, read with the admin client.
struct server_view {
  std::int64_t remaining = 0, reserved = 0, committed = 0;
  std::int64_t held_qty = 0, committed_qty = 0;  // summed over the order records
  std::size_t orders = 0;
};

server_view inspect(const redis_server& server, const std::string& sku) {
  auto admin = server.admin();
  server_view v;
  auto stock =
      admin.command("HMGET", redis_store::stock_key(sku), "remaining", "reserved", "committed");
  auto num = [](const seckill::redis::value& x) { return x.is_null() ? 0 : std::stoll(x.text); };
  v.remaining = num(stock.elements.at(0));
  v.reserved = num(stock.elements.at(1));
  v.committed = num(stock.elements.at(2));
  auto keys = admin.command("KEYS", "seckill:{" + sku + "}:order:*");
  for (const auto& k : keys.elements) {
    auto o = admin.command("HMGET", k.text, "state", "qty");
    ++v.orders;
    if (o.elements.at(0).text == "held") v.held_qty += num(o.elements.at(1));
    if (o.elements.at(0).text == "committed") v.committed_qty += num(o.elements.at(1));
  }
  return v;
}

void check_invariant(const redis_server& server, const std::string& sku, std::int64_t initial) {
  const auto v = inspect(server, sku);
  CAPTURE(v.remaining);
  CAPTURE(v.reserved);
  CAPTURE(v.committed);
  CHECK(v.remaining >= 0);
  CHECK(v.reserved >= 0);
  CHECK(v.remaining + v.reserved + v.committed == initial);
  // each order deducted at most once: the counters are exactly the sums of the records
  CHECK(v.reserved == v.held_qty);
  CHECK(v.committed == v.committed_qty);
}

struct sale_stats {
  std::int64_t reserved = 0, sold_out = 0, committed = 0, rolled_back = 0;
  std::int64_t unavailable = 0, timed_out = 0;  // uncertain outcomes
  std::int64_t other_errors = 0;
  std::vector<std::int64_t> uncertain;  // order ids whose reserve may or may not have run
  std::string first_other;
};

// 32 buyers reserve (1..2 units), then commit two in three and roll back the
// rest, until `duration` passed; `fault` runs meanwhile on the same io_context.
void run_sale(redis_fixture& fx, const std::string& sku, std::int64_t initial,
              std::chrono::milliseconds duration, sale_stats& stats,
              std::function<asio::awaitable<void>()> fault) {
  auto& io = fx.io();
  io.restart();
  auto& store = fx.store();
  REQUIRE(seckill::test::conformance::set_stock(fx, sku, initial) == std::error_code{});
  io.restart();
  const auto until = std::chrono::steady_clock::now() + duration;
  std::atomic<std::int64_t> next_order{1};
  int running = 0;
  auto note = [&](std::error_code ec) {
    if (ec == errc::store_unavailable) {
      ++stats.unavailable;
    } else if (ec == errc::timed_out) {
      ++stats.timed_out;
    } else {
      ++stats.other_errors;
      if (stats.first_other.empty()) stats.first_other = ec.message();
    }
  };
  auto buyer = [&]() -> asio::awaitable<void> {
    while (std::chrono::steady_clock::now() < until) {
      const auto order = next_order++;
      const auto qty = 1 + order % 2;
      auto [ec, r] = co_await store.async_reserve(sku, qty, order, 60s, tuple_awaitable);
      if (ec) {
        note(ec);
        stats.uncertain.push_back(order);
        co_await sleep_for(5ms);
        continue;
      }
      if (r.status == reserve_status::sold_out) {
        ++stats.sold_out;
        continue;
      }
      ++stats.reserved;
      if (order % 3 != 0) {
        auto [ec2, s] = co_await store.async_commit(sku, order, tuple_awaitable);
        if (ec2)
          note(ec2);
        else
          ++stats.committed;
      } else {
        auto [ec2, s] = co_await store.async_rollback(sku, order, tuple_awaitable);
        if (ec2)
          note(ec2);
        else
          ++stats.rolled_back;
      }
    }
  };
  for (int i = 0; i < 32; ++i) {
    ++running;
    asio::co_spawn(io, buyer(), [&](std::exception_ptr) { --running; });
  }
  bool fault_done = false;
  asio::co_spawn(io, fault(), [&](std::exception_ptr) { fault_done = true; });
  const auto give_up = std::chrono::steady_clock::now() + duration + 60s;
  while ((running > 0 || !fault_done) && std::chrono::steady_clock::now() < give_up)
    io.run_one_for(10ms);
  REQUIRE(running == 0);
  REQUIRE(fault_done);
}

// Waits until the store answers again (the connection recovered by itself).
void wait_recovered(redis_fixture& fx, const std::string& sku) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    auto [ec, level] = seckill::test::conformance::stock(fx, sku);
    if (!ec) return;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up,
                    "the store did not recover: ", ec.message());
    std::this_thread::sleep_for(20ms);
  }
}

// Retries every uncertain reserve: the answer tells whether it had run, and never deducts twice.
void settle_uncertain(redis_fixture& fx, const std::string& sku, const sale_stats& stats) {
  for (auto order : stats.uncertain) {
    auto [ec, r] = seckill::test::conformance::reserve(fx, sku, 1 + order % 2, order, 60s);
    REQUIRE_MESSAGE(!ec, ec.message());
    if (r.status == reserve_status::reserved) {
      auto [ec2, s] = seckill::test::conformance::rollback(fx, sku, order);
      CHECK((!ec2 || ec2 == errc::order_committed));
    }
  }
}

}  // namespace integration_store

using namespace integration_store;

TEST_SUITE("integration") {
  SECKILL_STORE_CONFORMANCE_TESTS(integration_store::redis_fixture, "redis")

  TEST_CASE("redis store keeps the documented keys and order record TTLs") {
    redis_fixture fx;
    const std::string sku = "tea";
    REQUIRE(seckill::test::conformance::set_stock(fx, sku, 10) == std::error_code{});
    REQUIRE(seckill::test::conformance::reserve_ok(fx, sku, 2, 41).status ==
            reserve_status::reserved);
    REQUIRE(seckill::test::conformance::reserve_ok(fx, sku, 2, 42).status ==
            reserve_status::reserved);
    REQUIRE(seckill::test::conformance::reserve_ok(fx, sku, 99, 43).status ==
            reserve_status::sold_out);
    auto admin = fx.server().admin();
    CHECK(admin.command("TYPE", "seckill:{tea}:stock").text == "hash");
    CHECK(admin.command("TYPE", "seckill:{tea}:holds").text == "zset");
    CHECK(admin.command("TYPE", "seckill:{tea}:order:41").text == "hash");
    CHECK(admin.command("HGET", "seckill:{tea}:stock", "remaining").text == "6");
    CHECK(admin.command("HGET", "seckill:{tea}:stock", "reserved").text == "4");
    CHECK(admin.command("HGET", "seckill:{tea}:order:41", "state").text == "held");
    // a held record has no TTL; its hold is scored by the server's clock
    CHECK(admin.command("PTTL", "seckill:{tea}:order:41").integer == -1);
    const auto time = admin.command("TIME");
    const auto now_ms =
        std::stoll(time.elements.at(0).text) * 1000 + std::stoll(time.elements.at(1).text) / 1000;
    const auto expires = std::stoll(admin.command("ZSCORE", "seckill:{tea}:holds", "41").text);
    CHECK(expires > now_ms);
    CHECK(expires <= now_ms + fx.hold().count());
    // rolled back or refused: kept for order_retention (24 h by default); committed: kept
    REQUIRE(!std::get<0>(seckill::test::conformance::commit(fx, sku, 41)));
    REQUIRE(!std::get<0>(seckill::test::conformance::rollback(fx, sku, 42)));
    CHECK(admin.command("PTTL", "seckill:{tea}:order:41").integer == -1);
    CHECK(admin.command("TYPE", "seckill:{tea}:sold").text == "zset");
    CHECK(admin.command("ZRANGE", "seckill:{tea}:sold", "0", "-1").elements.at(0).text ==
          "0000000000000000041");
    CHECK(admin.command("TYPE", "seckill:{tea}:orders").text == "stream");
    CHECK(admin.command("XLEN", "seckill:{tea}:orders").integer == 1);
    const std::int64_t day = 24 * 3600 * 1000;
    for (const char* key : {"seckill:{tea}:order:42", "seckill:{tea}:order:43"}) {
      CAPTURE(key);
      const auto pttl = admin.command("PTTL", key).integer;
      CHECK(pttl > day - 60'000);
      CHECK(pttl <= day);
    }
    CHECK(admin.command("ZCARD", "seckill:{tea}:holds").integer == 0);
    CHECK(admin.command("HGET", "seckill:{tea}:order:41", "state").text == "committed");
    CHECK(admin.command("HGET", "seckill:{tea}:order:42", "state").text == "rolled_back");
    CHECK(admin.command("HGET", "seckill:{tea}:order:43", "state").text == "refused");
    // the SHA-1 computed here is the one the server cached on connect
    auto exists = admin.command("SCRIPT", "EXISTS", fx.store().lua().sha1());
    CHECK(exists.elements.at(0).integer == 1);
  }

  TEST_CASE("redis store refuses skus that would break the hash tag") {
    redis_fixture fx;
    CHECK(seckill::test::conformance::set_stock(fx, "a}b", 1) == errc::invalid_argument);
    CHECK(std::get<0>(seckill::test::conformance::reserve(fx, "{x", 1, 1, 1s)) ==
          errc::invalid_argument);
    CHECK(std::get<0>(seckill::test::conformance::commit(fx, "", 1)) == errc::invalid_argument);
    redis_store_options bad;
    bad.order_retention = 10ms;
    asio::io_context io;
    CHECK_THROWS_AS(redis_store(io.get_executor(), connection_config{}, bad), seckill::error);
  }

  TEST_CASE("redis store with no server to reach fails every operation with store_unavailable") {
    asio::io_context io;
    connection_config cfg;
    cfg.port = std::to_string(seckill::test::free_loopback_port());
    cfg.connect_timeout = 300ms;
    redis_store store(io.get_executor(), cfg);
    seckill::test::run_test(io, [&]() -> asio::awaitable<void> {
      auto [e1] = co_await store.async_connect(tuple_awaitable);
      CHECK(e1 == errc::connection_refused);  // the connection's own word, with the port
      auto [e2, r] = co_await store.async_reserve("tea", 1, 1, 1s, tuple_awaitable);
      CHECK(e2 == errc::store_unavailable);
      auto [e3, level] = co_await store.async_stock("tea", tuple_awaitable);
      CHECK(e3 == errc::store_unavailable);
      auto [e4, settled] = co_await store.async_commit("tea", 1, tuple_awaitable);
      CHECK(e4 == errc::store_unavailable);
      store.close();
    });
  }

  TEST_CASE("redis store survives SCRIPT FLUSH by loading its script and retrying once") {
    redis_fixture fx;
    const std::string sku = "flush";
    REQUIRE(seckill::test::conformance::set_stock(fx, sku, 5) == std::error_code{});
    auto admin = fx.server().admin();
    admin.command("SCRIPT", "FLUSH");
    auto r = seckill::test::conformance::reserve_ok(fx, sku, 1, 1);
    CHECK(r.status == reserve_status::reserved);
    CHECK(r.remaining == 4);
    CHECK(admin.command("SCRIPT", "EXISTS", fx.store().lua().sha1()).elements.at(0).integer == 1);
    // and a lost connection loads it again in the handshake
    admin.command("SCRIPT", "FLUSH");
    admin.command("CLIENT", "KILL", "TYPE", "normal");
    wait_recovered(fx, sku);
    CHECK(admin.command("SCRIPT", "EXISTS", fx.store().lua().sha1()).elements.at(0).integer == 1);
    CHECK(fx.store().connection().connect_count() == 2);
    check_invariant(fx.server(), sku, 5);
  }

  TEST_CASE("redis store under CLIENT KILL mid-run never oversells and recovers by itself") {
    redis_fixture fx;
    const std::string sku = "kill";
    const std::int64_t initial = 300;
    sale_stats stats;
    run_sale(fx, sku, initial, 1500ms, stats, [&]() -> asio::awaitable<void> {
      for (int i = 0; i < 3; ++i) {
        co_await sleep_for(300ms);
        fx.server().admin().command("CLIENT", "KILL", "TYPE", "normal");
      }
    });
    INFO(stats.first_other);
    CHECK(stats.other_errors == 0);
    CHECK(stats.unavailable > 0);
    CHECK(stats.reserved > 0);
    wait_recovered(fx, sku);
    CHECK(fx.store().connection().connect_count() >= 4);
    check_invariant(fx.server(), sku, initial);
    settle_uncertain(fx, sku, stats);
    check_invariant(fx.server(), sku, initial);
  }

  TEST_CASE("redis store across a server restart mid-run never oversells and recovers by itself") {
    // persistence on, so that stock survives the restart (SHUTDOWN NOSAVE skips only the RDB)
    redis_fixture fx;
    redis_server* server = &fx.server();
    const std::string sku = "restart";
    const std::int64_t initial = 400;
    auto admin = server->admin();
    REQUIRE(admin.command("CONFIG", "SET", "appendonly", "yes").text == "OK");
    REQUIRE(admin.command("CONFIG", "SET", "appendfsync", "always").text == "OK");
    sale_stats stats;
    run_sale(fx, sku, initial, 2000ms, stats, [&]() -> asio::awaitable<void> {
      co_await sleep_for(500ms);
      try {
        server->admin().command("SHUTDOWN", "NOSAVE");
      } catch (const std::exception&) {  // no reply: the server is gone
      }
      REQUIRE(server->wait_exit(10s));
      co_await sleep_for(300ms);
      server->restart_with({"--appendonly", "yes", "--appendfsync", "always"});
    });
    INFO(stats.first_other);
    CHECK(stats.other_errors == 0);
    CHECK(stats.unavailable > 0);
    CHECK(stats.reserved > 0);
    wait_recovered(fx, sku);
    CHECK(fx.store().connection().connect_count() >= 2);
    check_invariant(*server, sku, initial);
    settle_uncertain(fx, sku, stats);
    check_invariant(*server, sku, initial);
  }

  TEST_CASE("redis store with a server that stops answering times out and recovers by itself") {
    redis_fixture fx([](connection_config& cfg) { cfg.request_timeout = 200ms; });
    const std::string sku = "sleep";
    const std::int64_t initial = 300;
    sale_stats stats;
    auto sleeper = fx.server().admin();
    run_sale(fx, sku, initial, 2500ms, stats, [&]() -> asio::awaitable<void> {
      co_await sleep_for(300ms);
      sleeper.send(seckill::redis::request().push("DEBUG", "SLEEP", "1").payload());
      co_return;
    });
    INFO(stats.first_other);
    CHECK(stats.other_errors == 0);
    CHECK(stats.timed_out > 0);
    CHECK(stats.unavailable == 0);
    CHECK(stats.reserved > 0);
    wait_recovered(fx, sku);
    CHECK(fx.store().connection().connect_count() == 1);  // slow is not lost
    CHECK(fx.store().connection().state() == connection_state::ready);
    check_invariant(fx.server(), sku, initial);
    settle_uncertain(fx, sku, stats);
    check_invariant(fx.server(), sku, initial);
    CHECK(sleeper.read().text == "OK");
  }
}
