// The store with split SKUs (redis/sharded_store.hpp) on the shared Redis
// Cluster (3 masters, 3 replicas, started once per process): the whole
// conformance suite with every SKU split over 3 shards, a sale that empties
// every shard, the per-user limit under a crowd, rebalancing, a transfer
// lost halfway and completed by the reaper, a sale with buyers who remember
// what they were told, flash_sale_sim with --shards, and bad options. Every
// case is in the "cluster" suite.

#include <seckill/redis/cluster_slots.hpp>
#include <seckill/redis/sharded_store.hpp>

#include "redis/cluster_sale.hpp"
#include "redis/redis_cluster.hpp"
#include "redis/test_support.hpp"
#include "store_conformance.hpp"
#include "store_conformance_fence.hpp"
#include "store_conformance_window.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using seckill::errc;
using seckill::reserve_status;
using seckill::redis::sharded_redis_cluster_store;
using seckill::redis::split_options;
using seckill::test::shared_cluster;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace conformance = seckill::test::conformance;

namespace integration_sharded {

// The conformance suite's fixture: the shared cluster, a store per test
// case, every SKU split over `default_shards` shards.
class sharded_fixture : public seckill::test::real_time_fixture {
 public:
  static constexpr bool split_stock = true;

  sharded_fixture() : sharded_fixture(split_options{.default_shards = 3, .shards = {}}) {}
  explicit sharded_fixture(split_options split)
      : store_(io_.get_executor(), shared_cluster().config(), std::move(split)) {
    std::optional<std::error_code> connected;
    store_.async_connect([&](std::error_code ec) { connected = ec; });
    while (!connected) io_.run_one_for(10ms);
    REQUIRE_MESSAGE(!*connected, store_.store().connection().last_error());
  }
  sharded_fixture(const sharded_fixture&) = delete;
  sharded_fixture& operator=(const sharded_fixture&) = delete;
  ~sharded_fixture() {
    store_.close();
    io_.restart();
    io_.run_for(5s);
  }

  sharded_redis_cluster_store& store() { return store_; }
  std::string transport_error() { return store_.store().connection().last_error(); }
  asio::io_context& io() { return io_; }
  std::string sku(std::string_view name) {
    return std::string(name) + "-" + std::to_string(::getpid()) + "-" + std::to_string(id_);
  }

 private:
  static inline std::atomic<int> next_id_{0};
  int id_ = next_id_++;
  asio::io_context io_;
  sharded_redis_cluster_store store_;
};

// One shard's stock, read through the shards' own store.
seckill::stock_level shard_level(sharded_fixture& fx, const std::string& sku, int shard,
                                 int shards) {
  auto [ec, level] = conformance::wait<std::error_code, seckill::stock_level>(fx, [&](auto h) {
    fx.store().store().async_stock(sharded_redis_cluster_store::shard_sku(sku, shard, shards), h);
  });
  REQUIRE_MESSAGE(!ec, ec.message());
  return level;
}

// (not named `buy`: argument-dependent lookup would offer it to the
// conformance suite's own `buy` calls with this fixture)
seckill::reserve_result reserve_for(sharded_fixture& fx, const std::string& sku, std::int64_t order,
                                    const std::string& user, std::int64_t qty = 1) {
  auto [ec, r] = conformance::wait<std::error_code, seckill::reserve_result>(fx, [&](auto h) {
    fx.store().async_reserve(
        sku,
        seckill::reserve_request{.order_id = order, .quantity = qty, .hold = 60s, .user = user}, h);
  });
  REQUIRE_MESSAGE(!ec, ec.message(), ": ", fx.store().last_error());
  return r;
}

}  // namespace integration_sharded

using namespace integration_sharded;

TEST_SUITE("cluster") {
  SECKILL_STORE_CONFORMANCE_TESTS(integration_sharded::sharded_fixture, "sharded cluster")
  SECKILL_STORE_CONFORMANCE_WINDOW_TESTS(integration_sharded::sharded_fixture, "sharded cluster")
  SECKILL_STORE_CONFORMANCE_FENCE_TESTS(integration_sharded::sharded_fixture, "sharded cluster")

  TEST_CASE(
      "sharded cluster: a split sku's shards sit on several masters and a sale empties each") {
    const int shards = 4;
    sharded_fixture fx(split_options{.default_shards = 1, .shards = {}});
    const std::string sku = fx.sku("split-four");
    // (a store given this sku's split; the fixture's own splits none)
    sharded_fixture split(split_options{.default_shards = 1, .shards = {{sku, shards}}});
    std::set<int> masters;
    for (int i = 0; i < shards; ++i)
      masters.insert(shared_cluster().master_of_slot(seckill::redis::key_slot(
          "{" + sharded_redis_cluster_store::shard_sku(sku, i, shards) + "}")));
    CHECK(masters.size() >= 2);

    REQUIRE(conformance::set_stock(split, sku, 40) == std::error_code{});
    for (int i = 0; i < shards; ++i) CHECK(shard_level(split, sku, i, shards).remaining == 10);
    // The sku is unknown to a store that keeps it whole: its keys are the shards'.
    CHECK(std::get<0>(conformance::stock(fx, sku)) == errc::unknown_sku);

    // 60 buyers, one unit each: 40 get one, wherever their home shard is.
    int reserved = 0, sold_out = 0;
    for (int b = 1; b <= 60; ++b) {
      const auto r = reserve_for(split, sku, b, "buyer-" + std::to_string(b));
      if (r.status == reserve_status::reserved) ++reserved;
      if (r.status == reserve_status::sold_out) ++sold_out;
    }
    CHECK(reserved == 40);
    CHECK(sold_out == 20);
    conformance::check_level(conformance::stock_ok(split, sku), 0, 40, 0);
    for (int i = 0; i < shards; ++i) CHECK(shard_level(split, sku, i, shards).remaining == 0);
    // Every order is found, whichever shard holds it.
    for (int b = 1; b <= 40; ++b)
      CHECK(std::get<0>(conformance::commit(split, sku, b)) == std::error_code{});
    conformance::check_level(conformance::stock_ok(split, sku), 0, 0, 40);
    CHECK(conformance::all_orders(split, sku).size() == 40);
  }

  TEST_CASE("sharded cluster: a crowd of one user gets exactly the per-user limit") {
    sharded_fixture fx(split_options{.default_shards = 4, .shards = {}});
    const std::string sku = fx.sku("limit");
    REQUIRE(conformance::set_stock(fx, sku, 100) == std::error_code{});
    REQUIRE(conformance::set_policy(fx, sku, 3) == std::error_code{});
    std::map<std::string, int> got;
    int running = 0;
    std::int64_t next_order = 1;
    auto buyer = [&](std::string user) -> asio::awaitable<void> {
      for (int i = 0; i < 10; ++i) {
        const std::int64_t order = next_order++;
        auto [ec, r] = co_await fx.store().async_reserve(
            sku,
            seckill::reserve_request{.order_id = order, .quantity = 1, .hold = 60s, .user = user},
            tuple_awaitable);
        REQUIRE_MESSAGE(!ec, ec.message());
        if (r.status == reserve_status::reserved) ++got[user];
      }
    };
    for (const char* user : {"alice", "alice", "alice", "bob", "bob", "carol"}) {
      ++running;
      asio::co_spawn(fx.io(), buyer(user), [&](std::exception_ptr e) {
        --running;
        if (e) std::rethrow_exception(e);
      });
    }
    fx.io().restart();
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (running > 0 && std::chrono::steady_clock::now() < give_up) fx.io().run_one_for(10ms);
    REQUIRE(running == 0);
    CHECK(got["alice"] == 3);
    CHECK(got["bob"] == 3);
    CHECK(got["carol"] == 3);
    conformance::check_level(conformance::stock_ok(fx, sku), 91, 9, 0);
  }

  TEST_CASE("sharded cluster: rebalance evens out the shards a crowd of one user left uneven") {
    const int shards = 4;
    sharded_fixture fx(split_options{.default_shards = shards, .shards = {}});
    const std::string sku = fx.sku("rebalance");
    REQUIRE(conformance::set_stock(fx, sku, 40) == std::error_code{});
    REQUIRE(conformance::set_policy(fx, sku, 0) == std::error_code{});  // no per-user limit
    for (int order = 1; order <= 15; ++order)
      REQUIRE(reserve_for(fx, sku, order, "alice").status == reserve_status::reserved);
    const int home = sharded_redis_cluster_store::home_shard("alice", 0, shards);
    CHECK(shard_level(fx, sku, home, shards).reserved == 15);  // every order on alice's shard
    const auto rebalance = [&](const std::string& which) {
      return std::get<0>(conformance::wait<std::error_code>(
          fx, [&](auto h) { fx.store().async_rebalance(which, h); }));
    };
    REQUIRE(rebalance(sku) == std::error_code{});
    std::int64_t total = 0;
    for (int i = 0; i < shards; ++i) {
      const auto r = shard_level(fx, sku, i, shards).remaining;
      CAPTURE(i);
      CHECK(r >= 6);
      CHECK(r <= 7);
      total += r;
    }
    CHECK(total == 25);
    conformance::check_level(conformance::stock_ok(fx, sku), 25, 15, 0);
    // A whole SKU has nothing to even out; a bad one is refused.
    sharded_fixture whole(split_options{});
    CHECK(std::get<0>(conformance::wait<std::error_code>(whole, [&](auto h) {
            whole.store().async_rebalance("anything", h);
          })) == std::error_code{});
    CHECK(rebalance("bad#sku") == errc::invalid_argument);
  }

  TEST_CASE(
      "sharded cluster: a transfer lost halfway counts as stock and the reaper completes it") {
    const int shards = 2;
    sharded_fixture fx(split_options{.default_shards = shards, .shards = {}});
    const std::string sku = fx.sku("lost-transfer");
    REQUIRE(conformance::set_stock(fx, sku, 10) == std::error_code{});
    // Shard 1 gave 3 units to shard 0 and the giver died before shard 0 took
    // them: what `give` leaves, written by hand on shard 1's master.
    const std::string giver = sharded_redis_cluster_store::shard_sku(sku, 1, shards);
    auto admin =
        shared_cluster()
            .node(shared_cluster().master_of_slot(seckill::redis::key_slot("{" + giver + "}")))
            .admin();
    const std::string stock_key = seckill::redis::redis_cluster_store::stock_key(giver);
    admin.command("HINCRBY", stock_key, "remaining", -3);
    admin.command("HINCRBY", stock_key, "sent", 3);
    admin.command("HSET", "seckill:{" + giver + "}:transfers", "lost.1", "3 0");
    // In transit: still part of the stock, and of no shard.
    conformance::check_level(conformance::stock_ok(fx, sku), 10, 0, 0);
    CHECK(shard_level(fx, sku, 0, shards).remaining == 5);
    CHECK(shard_level(fx, sku, 1, shards).remaining == 2);
    // (holds of a minute: the reaper below must find none expired)
    const auto reserve = [&](std::int64_t order) {
      auto [ec, r] = conformance::reserve(fx, sku, 1, order, 60s);
      REQUIRE_MESSAGE(!ec, ec.message());
      return r.status == reserve_status::reserved ? 1 : 0;
    };
    int reserved = 0;
    for (int order = 1; order <= 12; ++order) reserved += reserve(order);
    CHECK(reserved == 7);
    conformance::check_level(conformance::stock_ok(fx, sku), 3, 7, 0);
    // The reaper completes it (twice: the second finds nothing kept).
    for (int i = 0; i < 2; ++i) {
      auto [ec, n] = conformance::reap(fx, sku, 100);
      CHECK(ec == std::error_code{});
      CHECK(n == 0);
    }
    CHECK(shard_level(fx, sku, 0, shards).remaining == 3);
    CHECK(admin.command("HLEN", "seckill:{" + giver + "}:transfers").integer == 0);
    conformance::check_level(conformance::stock_ok(fx, sku), 3, 7, 0);
    for (int order = 13; order <= 20; ++order) reserved += reserve(order);
    CHECK(reserved == 10);
    conformance::check_level(conformance::stock_ok(fx, sku), 0, 10, 0);
  }

  TEST_CASE("sharded cluster: what every buyer was told matches the store after a busy sale") {
    sharded_fixture fx(split_options{.default_shards = 3, .shards = {}});
    const std::string sku = fx.sku("buyers");
    seckill::test::sale s;
    seckill::test::run_sale(fx, sku, 60, 3s, s, []() -> asio::awaitable<void> { co_return; });
    CHECK_MESSAGE(s.errors == 0, s.first_error);
    seckill::test::settle_uncertain(fx, sku, s);
    const auto level = conformance::stock_ok(fx, sku);
    CHECK(level.remaining >= 0);
    CHECK(level.reserved == 0);
    CHECK(level.remaining + level.reserved + level.committed == 60);
    std::set<std::int64_t> recorded;
    std::int64_t recorded_units = 0;
    for (const auto& o : conformance::all_orders(fx, sku)) {
      recorded.insert(o.order_id);
      recorded_units += o.quantity;
    }
    std::int64_t paid_units = 0;
    for (const auto& [order, outcome] : s.outcomes) {
      CAPTURE(order);
      if (outcome == seckill::test::told::paid) {
        CHECK(recorded.count(order) == 1);
        paid_units += 1 + order % 2;
      } else {
        CHECK(recorded.count(order) == 0);
      }
    }
    CHECK(paid_units == level.committed);
    CHECK(recorded_units == level.committed);
    CHECK(s.outcomes.size() > 30);
  }

#ifdef SECKILL_FLASH_SALE_SIM
  TEST_CASE(
      "sharded cluster: flash_sale_sim with --shards sells and every buyer's answer is kept") {
    const std::string url = "redis+cluster://127.0.0.1:" + shared_cluster().node(0).port_string();
    seckill::test::flash_sale_on_cluster(
        url, {"--shards", "3", "--buyers", "2000", "--skus", "2", "--stock", "300", "--users",
              "400", "--per-user", "2"});
  }
#endif

  TEST_CASE("sharded cluster: bad split options and skus naming a shard are refused") {
    asio::io_context io;
    const auto make = [&](split_options o) {
      sharded_redis_cluster_store store(io.get_executor(), shared_cluster().config(), std::move(o));
    };
    const auto refused = [&](split_options o, const std::string& words) {
      try {
        make(std::move(o));
        FAIL("accepted");
      } catch (const seckill::error& e) {
        CHECK(e.code() == errc::invalid_argument);
        CHECK_MESSAGE(std::string(e.what()).find(words) != std::string::npos, e.what());
      }
    };
    refused(split_options{.default_shards = 0, .shards = {}},
            "default_shards 0 out of range [1, 64]");
    refused(split_options{.default_shards = 65, .shards = {}}, "default_shards 65");
    refused(split_options{.default_shards = 1, .shards = {{"hot", 70}}}, "shards of sku 'hot': 70");
    refused(split_options{.default_shards = 1, .shards = {{"a#1", 2}}}, "contains '{', '}' or '#'");
    refused(split_options{.default_shards = 1, .shards = {{"", 2}}}, "an empty sku");

    sharded_fixture fx;
    auto [ec, level] = conformance::stock(fx, "shard#1");
    CHECK(ec == errc::invalid_argument);
    CHECK(fx.store().last_error().find("contains '#'") != std::string::npos);
    CHECK(std::get<0>(conformance::reserve(fx, "x#0", 1, 1, 1s)) == errc::invalid_argument);
    CHECK(std::get<0>(conformance::commit(fx, "x#0", 1)) == errc::invalid_argument);
  }
}
