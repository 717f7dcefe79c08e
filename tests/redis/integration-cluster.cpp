// The store on a real Redis Cluster (3 masters, 3 replicas on loopback,
// started once per process): the whole conformance suite, routing and
// redirections, a live slot migration during a sale, a master's kill -9
// during a sale, a cluster down then up, and the GCRA limiter shared by two
// nodes. Every case is in the "cluster" suite: CTest runs them as one test,
// "redis/cluster".

#include <seckill/redis/acl.hpp>
#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/gcra_limiter.hpp>
#include <seckill/redis/redis_store.hpp>

#include "redis/cluster_sale.hpp"
#include "redis/redis_cluster.hpp"
#include "redis/test_support.hpp"
#include "server/server_process.hpp"
#include "store_conformance.hpp"
#include "support/flash_sale_run.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using seckill::errc;
using seckill::reserve_status;
using seckill::redis::cluster_client;
using seckill::redis::cluster_config;
using seckill::redis::redis_cluster_store;
using seckill::redis::redis_store_options;
using seckill::redis::request;
using seckill::test::redis_cluster;
using seckill::test::run_sale;
using seckill::test::sale;
using seckill::test::settle_uncertain;
using seckill::test::shared_cluster;
using seckill::test::sleep_for;
using seckill::test::told;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_cluster {

// The conformance suite's fixture: the shared cluster, a store per test case.
class cluster_fixture : public seckill::test::real_time_fixture {
 public:
  cluster_fixture() : cluster_fixture(redis_store_options{}, [](cluster_config&) {}) {}
  cluster_fixture(redis_store_options options, const std::function<void(cluster_config&)>& tweak)
      : store_(io_.get_executor(), tweaked(tweak), options) {
    std::optional<std::error_code> connected;
    store_.async_connect([&](std::error_code ec) { connected = ec; });
    while (!connected) io_.run_one_for(10ms);
    REQUIRE_MESSAGE(!*connected, store_.connection().last_error());
  }
  cluster_fixture(const cluster_fixture&) = delete;
  cluster_fixture& operator=(const cluster_fixture&) = delete;
  ~cluster_fixture() {
    store_.close();
    io_.restart();
    io_.run_for(5s);
  }

  redis_cluster_store& store() { return store_; }
  std::string transport_error() { return store_.connection().last_error(); }
  asio::io_context& io() { return io_; }
  // The cases share the cluster: a SKU unique to this case of this process.
  std::string sku(std::string_view name) {
    return std::string(name) + "-" + std::to_string(::getpid()) + "-" + std::to_string(id_);
  }

 private:
  static cluster_config tweaked(const std::function<void(cluster_config&)>& tweak) {
    cluster_config cfg = shared_cluster().config();
    tweak(cfg);
    return cfg;
  }

  static inline std::atomic<int> next_id_{0};
  int id_ = next_id_++;
  asio::io_context io_;
  redis_cluster_store store_;
};

// What the master of `sku`'s slot holds for it, read with an admin client.
struct server_view {
  std::int64_t remaining = 0, reserved = 0, committed = 0;
  std::int64_t held_qty = 0, committed_qty = 0;
  std::map<std::int64_t, std::string> states;  // order id -> state
};

server_view inspect(redis_cluster& cluster, const std::string& sku) {
  const int master = cluster.master_of_slot(seckill::redis::key_slot(sku));
  REQUIRE(master >= 0);
  auto admin = cluster.node(master).admin();
  server_view v;
  auto stock = admin.command("HMGET", redis_cluster_store::stock_key(sku), "remaining", "reserved",
                             "committed");
  auto num = [](const seckill::redis::value& x) { return x.is_null() ? 0 : std::stoll(x.text); };
  v.remaining = num(stock.elements.at(0));
  v.reserved = num(stock.elements.at(1));
  v.committed = num(stock.elements.at(2));
  const std::string prefix = "seckill:{" + sku + "}:order:";
  auto keys = admin.command("KEYS", prefix + "*");
  for (const auto& k : keys.elements) {
    auto o = admin.command("HMGET", k.text, "state", "qty");
    const std::string state = o.elements.at(0).text;
    v.states[std::stoll(k.text.substr(prefix.size()))] = state;
    if (state == "held") v.held_qty += num(o.elements.at(1));
    if (state == "committed") v.committed_qty += num(o.elements.at(1));
  }
  return v;
}

// The buyers' view and the store's agree: paid means committed on the
// server, nothing else is kept, and the units add up.
void check_buyers(redis_cluster& cluster, const std::string& sku, std::int64_t initial,
                  const sale& s) {
  const auto v = inspect(cluster, sku);
  CAPTURE(v.remaining);
  CAPTURE(v.reserved);
  CAPTURE(v.committed);
  CHECK(v.remaining >= 0);
  CHECK(v.reserved == v.held_qty);
  CHECK(v.committed == v.committed_qty);
  CHECK(v.remaining + v.reserved + v.committed == initial);
  std::int64_t paid_units = 0;
  for (const auto& [order, outcome] : s.outcomes) {
    const auto it = v.states.find(order);
    const std::string state = it == v.states.end() ? "" : it->second;
    CAPTURE(order);
    if (outcome == told::paid) {
      CHECK(state == "committed");
      paid_units += 1 + order % 2;
    } else {
      CHECK(state != "committed");
      CHECK(state != "held");
    }
  }
  CHECK(paid_units == v.committed);
}

// Runs `body(client)` on a connected cluster_client of its own.
template <class Body>
void with_client(Body body, const std::function<void(cluster_config&)>& tweak = {}) {
  asio::io_context io;
  cluster_config cfg = shared_cluster().config();
  if (tweak) tweak(cfg);
  seckill::test::run_test(io, [&]() -> asio::awaitable<void> {
    cluster_client client(io.get_executor(), cfg);
    auto [ec] = co_await client.async_connect(tuple_awaitable);
    REQUIRE_MESSAGE(!ec, client.last_error());
    co_await body(client);
    client.close();
  });
}

asio::awaitable<seckill::redis::value> exec1(cluster_client& client, request req) {
  auto [ec, replies] = co_await client.async_exec(std::move(req), tuple_awaitable);
  REQUIRE_MESSAGE(!ec, ec.message(), ": ", client.last_error());
  REQUIRE(replies.size() >= 1);
  co_return replies.back();
}

// Moves `slot` from node `from` to node `to` by hand, the way redis-cli
// --cluster reshard does, MIGRATE-ing keys `batch` at a time with a pause
// between batches (so that requests meet the slot half moved).
asio::awaitable<void> migrate_slot(redis_cluster& cluster, std::uint16_t slot, int from, int to,
                                   std::chrono::milliseconds pause) {
  auto src = cluster.node(from).admin();
  auto dst = cluster.node(to).admin();
  const std::string src_id = src.command("CLUSTER", "MYID").text;
  const std::string dst_id = dst.command("CLUSTER", "MYID").text;
  const long s = slot;
  REQUIRE(!dst.command("CLUSTER", "SETSLOT", s, "IMPORTING", src_id).is_error());
  REQUIRE(!src.command("CLUSTER", "SETSLOT", s, "MIGRATING", dst_id).is_error());
  for (;;) {
    auto keys = src.command("CLUSTER", "GETKEYSINSLOT", s, 200);
    REQUIRE(!keys.is_error());
    if (keys.elements.empty()) break;
    // MIGRATE host port "" 0 timeout KEYS k1 k2 ...
    std::vector<std::string> args{"127.0.0.1", std::to_string(cluster.port(to)), "", "0", "5000",
                                  "KEYS"};
    for (const auto& k : keys.elements) args.push_back(k.text);
    request migrate;
    migrate.push_range("MIGRATE", args);
    src.send(migrate.payload());
    const auto r = src.read();
    REQUIRE_MESSAGE(!r.is_error(), r.text);
    co_await sleep_for(pause);
  }
  for (int i = 0; i < cluster.size(); ++i)
    if (cluster.alive(i))
      (void)cluster.node(i).admin().command("CLUSTER", "SETSLOT", s, "NODE", dst_id);
}

}  // namespace integration_cluster

using namespace integration_cluster;

TEST_SUITE("cluster") {
  SECKILL_STORE_CONFORMANCE_TESTS(integration_cluster::cluster_fixture, "redis cluster")

  TEST_CASE("redis cluster: requests reach every master and need no redirection") {
    with_client([](cluster_client& client) -> asio::awaitable<void> {
      CHECK(client.masters().size() == 3);
      std::map<std::string, int> per_master;
      for (int i = 0; i < 60; ++i) {
        const std::string key = "routing:" + std::to_string(i);
        request set;
        set.push("SET", key, i);
        CHECK((co_await exec1(client, std::move(set))).text == "OK");
        request get;
        get.push("GET", key);
        CHECK((co_await exec1(client, std::move(get))).text == std::to_string(i));
        per_master[client.master_of(key)->port] += 1;
      }
      CHECK(per_master.size() == 3);
      CHECK(client.moved_count() == 0);
      // a request that names no key goes to any master
      request ping;
      ping.push("PING");
      CHECK((co_await exec1(client, std::move(ping))).text == "PONG");
      // keys of two slots in one request: refused, nothing sent
      request spanning;
      spanning.push("GET", "foo").push("GET", "bar");
      auto [ec, replies] = co_await client.async_exec(std::move(spanning), tuple_awaitable);
      CHECK(ec == seckill::redis::errc::cross_slot);
      CHECK(client.last_error().find("different slots") != std::string::npos);
    });
  }

  TEST_CASE("redis cluster: a stale slot map is corrected by MOVED") {
    auto& cluster = shared_cluster();
    const std::string key = "moved-" + std::to_string(::getpid());
    const auto slot = seckill::redis::key_slot(key);
    with_client([&](cluster_client& client) -> asio::awaitable<void> {
      request set;
      set.push("SET", key, "v1");
      CHECK((co_await exec1(client, std::move(set))).text == "OK");
      const int from = cluster.master_of_slot(slot);
      co_await migrate_slot(cluster, slot, from, cluster.another_master(from), 0ms);
      request get;
      get.push("GET", key);
      CHECK((co_await exec1(client, std::move(get))).text == "v1");
      CHECK(client.moved_count() >= 1);
      CHECK(client.master_of(key)->port ==
            std::to_string(cluster.port(cluster.master_of_slot(slot))));
    });
  }

  TEST_CASE("redis cluster: a sale goes on while its slot migrates") {
    auto& cluster = shared_cluster();
    cluster_fixture fx;
    const std::string sku = fx.sku("migrating");
    const auto slot = seckill::redis::key_slot(sku);
    const int from = cluster.master_of_slot(slot);
    const int to = cluster.another_master(from);
    REQUIRE(to >= 0);
    sale s;
    run_sale(fx, sku, 300, 2500ms, s, [&]() -> asio::awaitable<void> {
      co_await sleep_for(300ms);
      co_await migrate_slot(cluster, slot, from, to, 50ms);
    });
    CHECK(cluster.master_of_slot(slot) == to);
    const auto& client = fx.store().connection();
    CHECK(client.moved_count() + client.ask_count() + client.retry_count() >= 1);
    settle_uncertain(fx, sku, s);
    check_buyers(cluster, sku, 300, s);
    MESSAGE("migration: ", s.outcomes.size(), " orders, moved ", client.moved_count(), ", asked ",
            client.ask_count(), ", retried ", client.retry_count(), ", errors ", s.errors,
            " (first: ", s.first_error, ")");
  }

  TEST_CASE("redis cluster: a master killed during a sale loses no paid order") {
    auto& cluster = shared_cluster();
    // every write waits for the master's one replica: what a buyer is told
    // paid survives the failover to it
    redis_store_options options;
    options.replicas_to_wait = 1;
    cluster_fixture fx(options, [](cluster_config&) {});
    const std::string sku = fx.sku("failover");
    const auto slot = seckill::redis::key_slot(sku);
    const int master = cluster.master_of_slot(slot);
    const auto replicas = cluster.replicas_of(master);
    REQUIRE(replicas.size() == 1);
    sale s;
    run_sale(fx, sku, 400, 3000ms + 2 * std::chrono::milliseconds(redis_cluster::node_timeout_ms),
             s, [&]() -> asio::awaitable<void> {
               co_await sleep_for(500ms);
               cluster.kill(master);
               co_return;
             });
    cluster.wait_healthy();
    CHECK(cluster.master_of_slot(slot) == replicas.front());
    // (buyers in flight when the master died were told so: s.errors, below)
    MESSAGE("failover: ", s.outcomes.size(), " orders, ", s.errors,
            " uncertain; first: ", s.first_error);
    // the old master comes back as the new master's replica, so that writes
    // can be copied again; then the uncertain buyers ask again
    cluster.restart(master);
    cluster.wait_healthy();
    redis_cluster::wait_for("the old master to replicate the new one", [&] {
      return cluster.info_field(master, "master_link_status", "replication") == "up";
    });
    settle_uncertain(fx, sku, s);
    check_buyers(cluster, sku, 400, s);
  }

  TEST_CASE("redis cluster: a slot without a master gives a clear error then recovers") {
    auto& cluster = shared_cluster();
    cluster_fixture fx(redis_store_options{},
                       [](cluster_config& cfg) { cfg.retry_window = 1500ms; });
    const std::string sku = fx.sku("down");
    const auto slot = seckill::redis::key_slot(sku);
    REQUIRE(seckill::test::conformance::set_stock(fx, sku, 5) == std::error_code{});
    const int master = cluster.master_of_slot(slot);
    const auto replicas = cluster.replicas_of(master);
    for (int r : replicas) cluster.kill(r);
    cluster.kill(master);
    // the other nodes mark it failed after the node timeout: CLUSTERDOWN
    redis_cluster::wait_for("the cluster to see the master fail", [&] {
      for (int i = 0; i < cluster.size(); ++i)
        if (cluster.alive(i)) return cluster.info_field(i, "cluster_state") == "fail";
      return false;
    });
    // A request in flight when the master died fails as it is (it may have
    // run); the next ones wait for a master within the retry window, then
    // say which slot has none.
    const std::string slot_named = "slot " + std::to_string(slot);
    std::error_code ec;
    std::string why;
    for (int attempt = 0; attempt < 3 && why.find(slot_named) == std::string::npos; ++attempt) {
      auto [e, level] = seckill::test::conformance::stock(fx, sku);
      ec = e;
      why = fx.store().connection().last_error();
    }
    CAPTURE(ec.message());
    CHECK(ec == errc::store_unavailable);
    CHECK(ec == seckill::condition::unavailable);
    CAPTURE(why);
    CHECK(why.find(slot_named) != std::string::npos);
    // back: the master restarts with its cluster config (its slots, no data)
    cluster.restart(master);
    for (int r : replicas) cluster.restart(r);
    cluster.wait_healthy();
    // (the cases after this one write with replicas_to_wait = 1: the
    // replicas must be copying again)
    for (int r : replicas)
      redis_cluster::wait_for("a restarted replica to copy its master again", [&] {
        return cluster.info_field(r, "master_link_status", "replication") == "up";
      });
    REQUIRE(seckill::test::conformance::set_stock(fx, sku, 5) == std::error_code{});
    auto [ec2, level2] = seckill::test::conformance::stock(fx, sku);
    CHECK(!ec2);
    CHECK(level2.remaining == 5);
  }

#ifdef SECKILL_SERVER
  TEST_CASE("redis cluster: two seckill_server nodes on the cluster share its GCRA buckets") {
    namespace http = boost::beast::http;
    using seckill::test::http_connection;
    const std::string url = "redis+cluster://127.0.0.1:" + shared_cluster().node(0).port_string();
    const std::string token = "cluster-gcra-t0ken";
    // nothing comes back during the test: the bursts are what there is
    auto args = [&](const char* worker) {
      return std::vector<std::string>{"--store",           url,    "--admin-token",    token,
                                      "--worker-id",       worker, "--gcra-rate",      "0.001",
                                      "--gcra-burst",      "3",    "--gcra-user-rate", "0.001",
                                      "--gcra-user-burst", "1"};
    };
    seckill::test::server_process a(SECKILL_SERVER, args("1"));
    seckill::test::server_process b(SECKILL_SERVER, args("2"));
    const std::string sku = "gcra-server-" + std::to_string(::getpid());
    {
      http_connection admin(a.port());
      const nlohmann::json body{{"stock", 100}, {"per_user", 0}};
      REQUIRE(admin
                  .send(http::verb::put, "/admin/stock/" + sku, body.dump(),
                        {{"Authorization", "Bearer " + token}})
                  .status == 200);
    }
    http_connection ca(a.port());
    http_connection cb(b.port());
    auto buy_on = [&](http_connection& c, const char* user) {
      return c.post("/purchase", nlohmann::json{{"sku", sku}, {"user", user}}.dump()).status;
    };
    CHECK(buy_on(ca, "ann") == 200);
    CHECK(buy_on(cb, "ann") == 429);  // ann's bucket is shared by both nodes
    CHECK(buy_on(cb, "bob") == 200);
    CHECK(buy_on(ca, "cy") == 200);  // the SKU's third token
    CHECK(buy_on(cb, "dee") == 429);
    CHECK(buy_on(ca, "eve") == 429);
    CHECK(seckill::test::stock_of(a.port(), sku)["sold"] == 3);
  }
#endif

  TEST_CASE("redis cluster: a user with exactly store_cluster_acl_rules runs a sale") {
    auto& cluster = shared_cluster();
    const std::string user = "shop-" + std::to_string(::getpid());
    std::vector<std::string> args{"SETUSER", user, "on", ">cluster-secret"};
    std::istringstream rules{std::string(seckill::redis::store_cluster_acl_rules)};
    for (std::string w; rules >> w;) args.push_back(w);
    request setuser;
    setuser.push_range("ACL", args);
    for (int i = 0; i < cluster.size(); ++i) {  // ACL users are per node
      if (!cluster.alive(i)) continue;
      auto admin = cluster.node(i).admin();
      admin.send(setuser.payload());
      const auto r = admin.read();
      REQUIRE_MESSAGE(!r.is_error(), r.text);
    }
    redis_store_options options;
    options.replicas_to_wait = 1;
    cluster_fixture fx(options, [&](cluster_config& cfg) {
      cfg.node.username = user;
      cfg.node.password = "cluster-secret";
    });
    const std::string sku = fx.sku("acl");
    REQUIRE_MESSAGE(seckill::test::conformance::set_stock(fx, sku, 3) == std::error_code{},
                    fx.store().last_error(), " / ", fx.store().connection().last_error());
    CHECK(seckill::test::conformance::reserve_ok(fx, sku, 2, 1).status == reserve_status::reserved);
    auto [ec, settled] = seckill::test::conformance::commit(fx, sku, 1);
    CHECK_MESSAGE(!ec, ec.message(), ": ", fx.store().last_error());
    CHECK(seckill::test::conformance::reserve_ok(fx, sku, 2, 2).status == reserve_status::sold_out);
    CHECK(seckill::test::conformance::stock_ok(fx, sku).committed == 2);
  }

  TEST_CASE("redis cluster: two limiters on the cluster share its buckets and admit exactly them") {
    // Two nodes' limiters, buckets that refill once in ~17 minutes: the
    // admissions are exactly the bursts, whichever node asked.
    asio::io_context io;
    const seckill::redis::gcra_limiter_options options{
        .sku_rate = 0.001, .sku_burst = 10, .user_rate = 0.001, .user_burst = 3};
    seckill::redis::cluster_gcra_limiter a(io.get_executor(), shared_cluster().config(), options);
    seckill::redis::cluster_gcra_limiter b(io.get_executor(), shared_cluster().config(), options);
    const std::string sku = "gcra-" + std::to_string(::getpid());
    std::map<std::string, int> admitted;
    seckill::test::run_test(io, [&]() -> asio::awaitable<void> {
      for (auto* l : {&a, &b}) {
        auto [ec] = co_await l->async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, l->connection().last_error());
      }
      for (int round = 0; round < 10; ++round)
        for (const char* user : {"alice", "bob", "carol"})
          for (auto* l : {&a, &b}) {
            auto [ec, ok] = co_await l->async_acquire(sku, user, 1.0, tuple_awaitable);
            REQUIRE_MESSAGE(!ec, ec.message());
            if (ok) ++admitted[user];
          }
      for (int i = 0; i < 5; ++i) {
        auto [ec, ok] = co_await (i % 2 ? a : b).async_acquire(sku, "dave", 1.0, tuple_awaitable);
        REQUIRE(!ec);
        if (ok) ++admitted["dave"];
      }
      a.close();
      b.close();
    });
    CHECK(admitted["alice"] == 3);
    CHECK(admitted["bob"] == 3);
    CHECK(admitted["carol"] == 3);
    CHECK(admitted["dave"] == 1);  // what the SKU's burst of 10 had left
    CHECK(a.counters().admitted + b.counters().admitted == 10);
  }

#ifdef SECKILL_FLASH_SALE_SIM
  TEST_CASE(
      "redis cluster: flash_sale_sim sells on the cluster and every buyer's answer is in it") {
    auto& cluster = shared_cluster();
    std::string url = "redis+cluster://";
    for (int i = 0; i < 2; ++i)
      url += (i ? "," : "") + std::string("127.0.0.1:") + cluster.node(i).port_string();
    seckill::test::flash_sale_on_cluster(url,
                                         {"--buyers", "3000", "--skus", "6", "--stock", "300"});
  }

  TEST_CASE("redis cluster: flash_sale_sim refuses a bad cluster URL with the seed named") {
    seckill::test::flash_sale_run sale(SECKILL_FLASH_SALE_SIM,
                                       {"--store", "redis+cluster://:hunter2@127.0.0.1:1,,x"});
    const auto out = sale.wait(std::chrono::seconds(30));
    CHECK(out.exit_code != 0);
    CHECK(out.output.find("seed 2 is empty") != std::string::npos);
    CHECK(out.output.find("hunter2") == std::string::npos);
  }
#endif
}
