// seckill_server as a cluster: three nodes with --etcd over one Redis and a
// 3-member etcd, all real processes on 127.0.0.1, started once for this file.
// Faults: kill -9 of a node mid-sale, SIGSTOP and SIGCONT, an etcd member
// killed; retries on another node and the per-user limit across nodes.
// After each, the buyers are checked against the store: nothing oversold, no
// order id twice, every 200 a committed order, nothing left held.
#include "etcd/etcd_fixture.hpp"
#include "redis/redis_server.hpp"
#include "server/server_process.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <csignal>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifdef SECKILL_SERVER

namespace integration_cluster {

using seckill::test::http_connection;
using seckill::test::metric_value;
using seckill::test::server_answer;
using seckill::test::server_process;
using seckill::test::stock_of;
namespace http = boost::beast::http;

const std::string token = "cluster-admin-t0ken";

// The cluster, started on first use and kept for every case of this file.
struct cluster {
  seckill::test::etcd_cluster etcd{3};
  // Durable (every write fsynced), so that a restart keeps what was sold.
  seckill::test::redis_server redis{
      std::vector<std::string>{"--appendonly", "yes", "--appendfsync", "always"}};
  std::vector<std::unique_ptr<server_process>> nodes;

  cluster() {
    for (int i = 0; i < 3; ++i) nodes.push_back(start_node(i));
  }

  std::vector<std::string> node_args(int i, std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{
        "--store",         fmt::format("redis://127.0.0.1:{}", redis.port()),
        "--etcd",          etcd.endpoint_list(),
        "--node",          fmt::format("node-{}", i),
        "--admin-token",   token,
        "--reaper-period", "250ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::unique_ptr<server_process> start_node(int i, std::vector<std::string> extra = {}) const {
    return std::make_unique<server_process>(SECKILL_SERVER, node_args(i, std::move(extra)));
  }
  unsigned short port(std::size_t i) const { return nodes.at(i)->port(); }
};

cluster& shared() {
  static cluster c;
  return c;
}

std::string purchase_body(const std::string& sku, const std::string& user,
                          const std::string& request_id) {
  return nlohmann::json{{"sku", sku}, {"user", user}, {"request_id", request_id}}.dump();
}

void put_stock(unsigned short port, const std::string& sku, std::int64_t stock) {
  http_connection c(port);
  const auto a =
      c.send(http::verb::put, "/admin/stock/" + sku, nlohmann::json{{"stock", stock}}.dump(),
             {{"Authorization", "Bearer " + token}});
  REQUIRE(a.status == 200);
}

// Waits (at most `limit`) until `ok()`.
template <class F>
bool eventually(F ok, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ok();
}

// The instances registered under services/seckill/.
std::set<std::string> registered(const seckill::test::etcd_cluster& etcd) {
  boost::asio::io_context io;
  seckill::etcd::client client(io.get_executor(), etcd.options());
  seckill::etcd::range_options ro;
  ro.prefix = true;
  ro.keys_only = true;
  std::set<std::string> out;
  std::error_code error;
  client.async_range("services/seckill/", ro,
                     [&](std::error_code ec, seckill::etcd::range_result r) {
                       error = ec;
                       for (const auto& kv : r.kvs) out.insert(kv.key.substr(17));
                     });
  io.run();
  if (error) return {"(etcd error: " + error.message() + ")"};
  return out;
}

// What the buyers were told, checked against the store: every 200 is a
// committed order with its own id, and sold counts exactly their units.
struct ledger {
  std::mutex m;
  std::set<std::string> ids;
  std::int64_t units = 0;
  bool duplicate = false;
  void paid(const std::string& id) {
    std::lock_guard lock(m);
    duplicate = duplicate || !ids.insert(id).second;
    ++units;
  }
};

void check_against_store(unsigned short port, const std::string& sku, std::int64_t stock,
                         ledger& told) {
  CHECK_FALSE(told.duplicate);
  REQUIRE(
      eventually([&] { return stock_of(port, sku)["reserved"] == 0; }, std::chrono::seconds(20)));
  const auto level = stock_of(port, sku);
  CHECK(level["sold"] == told.units);
  CHECK(level["available"].get<std::int64_t>() + level["sold"].get<std::int64_t>() == stock);
  http_connection c(port);
  for (const auto& id : told.ids) {
    const auto a = c.get("/orders/" + id + "?sku=" + sku);
    CHECK(a.status == 200);
    CHECK(a.json()["state"] == "committed");
  }
}

}  // namespace integration_cluster

TEST_SUITE("integration") {
  using namespace integration_cluster;  // inside the suite: other files of this unity build have
                                        // helpers of the same names

  // One test case, so that one process starts the cluster once for every part.
  TEST_CASE("seckill_server cluster: faults and retries across three nodes") {
    SUBCASE(
        "three nodes register with their url and one leads and a sale across them sells "
        "exactly the stock") {
      auto& c = shared();
      CHECK(eventually([&] { return registered(c.etcd).size() == 3; }, std::chrono::seconds(10)));
      CHECK(registered(c.etcd) == std::set<std::string>{"node-0", "node-1", "node-2"});
      CHECK(eventually(
          [&] {
            double leaders = 0;
            for (std::size_t i = 0; i < 3; ++i)
              leaders += metric_value(c.port(i), "seckill_node_leader");
            return leaders == 1;
          },
          std::chrono::seconds(15)));
      for (std::size_t i = 0; i < 3; ++i)
        CHECK(metric_value(c.port(i), "seckill_etcd_connected") == 1);

      put_stock(c.port(0), "c-sale", 60);
      ledger told;
      std::vector<std::thread> buyers;
      for (int t = 0; t < 6; ++t)
        buyers.emplace_back([&, t] {
          http_connection conn(c.port(static_cast<std::size_t>(t % 3)));
          for (int i = t; i < 150; i += 6) {
            const auto a = conn.post(
                "/purchase", purchase_body("c-sale", fmt::format("u{}", i), fmt::format("r{}", i)));
            if (a.status == 200) told.paid(a.json()["order_id"].get<std::string>());
          }
        });
      for (auto& b : buyers) b.join();
      CHECK(told.units == 60);
      check_against_store(c.port(1), "c-sale", 60, told);
    }

    SUBCASE(
        "a retry on another node gets the same order and the per-user limit holds across "
        "nodes") {
      auto& c = shared();
      put_stock(c.port(0), "c-limit", 10);
      http_connection a(c.port(0)), b(c.port(1)), d(c.port(2));
      const auto first = a.post("/purchase", purchase_body("c-limit", "dora", "once"));
      REQUIRE(first.status == 200);
      const auto retry = b.post("/purchase", purchase_body("c-limit", "dora", "once"));
      CHECK(retry.status == 200);
      CHECK(retry.json()["order_id"] == first.json()["order_id"]);
      const auto second = d.post("/purchase", purchase_body("c-limit", "dora", "twice"));
      CHECK(second.status == 429);
      CHECK(second.json()["error"] == "user_limit");
      CHECK(stock_of(c.port(2), "c-limit")["sold"] == 1);
    }

    SUBCASE(
        "kill -9 of a node mid-sale: its holds come back through the leader and retries "
        "elsewhere take nothing twice") {
      auto& c = shared();
      put_stock(c.port(0), "c-kill", 20);
      // A fourth node with slow payments: its purchases are held when it dies.
      auto doomed = c.start_node(3, {"--payment-latency", "3s", "--deadline", "5s", "--hold", "6s",
                                     "--request-timeout", "20s"});
      ledger told;
      std::vector<std::thread> buyers;
      std::vector<unsigned> retried(5, 0);
      for (int i = 0; i < 5; ++i)
        buyers.emplace_back([&, i] {
          const auto body = purchase_body("c-kill", fmt::format("k{}", i), "r");
          try {
            http_connection conn(doomed->port());
            const auto a = conn.post("/purchase", body);
            if (a.status == 200) told.paid(a.json()["order_id"].get<std::string>());
            return;
          } catch (const std::exception&) {
            // the node died with the purchase held: retry the same request elsewhere
          }
          http_connection other(c.port(static_cast<std::size_t>(i % 3)));
          const auto a = other.post("/purchase", body);
          retried[static_cast<std::size_t>(i)] = a.status;
          if (a.status == 200) told.paid(a.json()["order_id"].get<std::string>());
        });
      std::this_thread::sleep_for(std::chrono::milliseconds(800));
      doomed->signal(SIGKILL);
      for (auto& b : buyers) b.join();
      // Each retry found its request bound to the dead node's held order: in progress.
      for (const auto s : retried) CHECK(s == 409);
      check_against_store(c.port(0), "c-kill", 20, told);  // waits for the leader to reap
      CHECK(stock_of(c.port(0), "c-kill")["available"] == 20);
      // The units are back: others can buy them.
      http_connection conn(c.port(1));
      CHECK(conn.post("/purchase", purchase_body("c-kill", "later", "r")).status == 200);
      // The dead node's registration goes with its lease.
      CHECK(eventually([&] { return registered(c.etcd).count("node-3") == 0; },
                       std::chrono::seconds(15)));
    }

    SUBCASE(
        "SIGSTOP takes a node out of the registry when its lease lapses and SIGCONT brings "
        "it back") {
      auto& c = shared();
      c.nodes[2]->signal(SIGSTOP);
      CHECK(eventually([&] { return registered(c.etcd).count("node-2") == 0; },
                       std::chrono::seconds(20)));
      // The others still sell.
      put_stock(c.port(0), "c-stop", 5);
      http_connection a(c.port(0));
      CHECK(a.post("/purchase", purchase_body("c-stop", "sam", "r")).status == 200);
      c.nodes[2]->signal(SIGCONT);
      CHECK(eventually([&] { return registered(c.etcd).count("node-2") == 1; },
                       std::chrono::seconds(20)));
      CHECK(eventually([&] { return http_connection(c.port(2)).get("/ready").status == 200; },
                       std::chrono::seconds(20)));
      http_connection b(c.port(2));
      CHECK(b.post("/purchase", purchase_body("c-stop", "tom", "r")).status == 200);
      CHECK(stock_of(c.port(2), "c-stop")["sold"] == 2);
    }

    SUBCASE(
        "the etcd member the nodes talk to first is killed and they keep selling with a "
        "leader") {
      auto& c = shared();
      c.etcd.kill(0);
      put_stock(c.port(1), "c-etcd", 30);
      ledger told;
      for (std::size_t n = 0; n < 3; ++n) {
        http_connection conn(c.port(n));
        for (int i = 0; i < 10; ++i) {
          const auto a =
              conn.post("/purchase", purchase_body("c-etcd", fmt::format("e{}-{}", n, i), "r"));
          CHECK(a.status == 200);
          if (a.status == 200) told.paid(a.json()["order_id"].get<std::string>());
        }
      }
      CHECK(eventually(
          [&] {
            double leaders = 0;
            for (std::size_t i = 0; i < 3; ++i)
              leaders += metric_value(c.port(i), "seckill_node_leader");
            return leaders == 1;
          },
          std::chrono::seconds(20)));
      check_against_store(c.port(2), "c-etcd", 30, told);
      c.etcd.restart(0);
    }

    SUBCASE(
        "redis restarts mid-sale: buyers told 200 keep their orders and those told 503 "
        "hold nothing") {
      auto& c = shared();
      put_stock(c.port(0), "c-redis", 200);
      ledger told;
      std::atomic<int> unavailable{0};
      std::vector<std::thread> buyers;
      for (int t = 0; t < 3; ++t)
        buyers.emplace_back([&, t] {
          for (int i = 0; i < 60; ++i) {
            try {
              http_connection conn(c.port(static_cast<std::size_t>(t)));
              const auto a = conn.post("/purchase",
                                       purchase_body("c-redis", fmt::format("x{}-{}", t, i), "r"));
              if (a.status == 200) told.paid(a.json()["order_id"].get<std::string>());
              if (a.status == 503) ++unavailable;
            } catch (const std::exception&) {
              ++unavailable;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
        });
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      c.redis.restart();
      for (auto& b : buyers) b.join();
      MESSAGE(fmt::format("{} paid, {} told the store was unavailable", told.units,
                          unavailable.load()));
      CHECK(told.units > 0);
      // Every node reaches the store again.
      for (std::size_t i = 0; i < 3; ++i)
        CHECK(eventually([&] { return http_connection(c.port(i)).get("/ready").status == 200; },
                         std::chrono::seconds(20)));
      check_against_store(c.port(0), "c-redis", 200, told);
    }
  }
}

#endif  // SECKILL_SERVER
