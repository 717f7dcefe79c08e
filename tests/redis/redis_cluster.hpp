#pragma once
// A real Redis Cluster for the cluster tests: `masters` redis-server
// processes serving the 16384 slots in equal ranges, each with `replicas`
// replicas, all on free 127.0.0.1 ports (cluster bus included) with
// temporary directories. Built by hand (CLUSTER ADDSLOTSRANGE, MEET,
// REPLICATE), so that which node is whose replica is known. Started once per
// test process: `shared_cluster()`.

#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/cluster_slots.hpp>

#include "redis/redis_server.hpp"
#include "support/net.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace seckill::test {

class redis_cluster {
 public:
  /// Milliseconds a master may be silent before its replica takes over.
  static constexpr int node_timeout_ms = 1500;

  explicit redis_cluster(int masters = 3, int replicas = 1) : masters_(masters) {
    const int total = masters * (1 + replicas);
    for (int i = 0; i < total; ++i) {
      nodes_.push_back(std::make_unique<redis_server>(
          redis_server::cluster_node{},
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                   "nodes.conf", "--cluster-node-timeout",
                                   std::to_string(node_timeout_ms),
                                   "--cluster-replica-validity-factor", "0"}));
    }
    for (int m = 0; m < masters; ++m) {
      const auto first = static_cast<long>(cluster_slots_per(m));
      const auto last = static_cast<long>(cluster_slots_per(m + 1)) - 1;
      expect_ok(node(m).admin().command("CLUSTER", "ADDSLOTSRANGE", first, last), "ADDSLOTSRANGE");
    }
    for (int i = 1; i < total; ++i)
      expect_ok(node(0).admin().command("CLUSTER", "MEET", "127.0.0.1", static_cast<long>(port(i)),
                                        static_cast<long>(node(i).bus_port())),
                "MEET");
    wait_for("every node to know every other", [&] {
      for (int i = 0; i < total; ++i)
        if (info_field(i, "cluster_known_nodes") != std::to_string(total)) return false;
      return true;
    });
    for (int i = masters; i < total; ++i) {
      const int master = (i - masters) % masters;
      const std::string id = node(master).admin().command("CLUSTER", "MYID").text;
      wait_for("a replica to see its master",
               [&] { return !node(i).admin().command("CLUSTER", "REPLICATE", id).is_error(); });
    }
    wait_healthy();
    for (int i = masters; i < total; ++i)
      wait_for("a replica's link to its master",
               [&] { return info_field(i, "master_link_status", "replication") == "up"; });
  }

  [[nodiscard]] int size() const noexcept { return static_cast<int>(nodes_.size()); }
  [[nodiscard]] int masters() const noexcept { return masters_; }
  redis_server& node(int i) { return *nodes_.at(static_cast<std::size_t>(i)); }
  [[nodiscard]] unsigned short port(int i) const {
    return nodes_.at(static_cast<std::size_t>(i))->port();
  }

  /// The node serving `slot` now as its master, as node `asked` sees it.
  int master_of_slot(std::uint16_t slot, int asked = -1) {
    for (int i = 0; i < size(); ++i) {
      if (asked >= 0 && i != asked) continue;
      if (!alive(i)) continue;
      auto r = node(i).admin().command("CLUSTER", "SHARDS");
      std::error_code ec;
      const auto map = redis::parse_cluster_shards(r, "127.0.0.1", ec);
      if (ec) continue;
      for (const auto& shard : map.shards)
        for (const auto& [a, b] : shard.ranges)
          if (slot >= a && slot <= b) return index_of(shard.port);
    }
    return -1;
  }

  /// A master other than node `master`: the master of another range.
  int another_master(int master) {
    for (int r = 0; r < masters_; ++r) {
      const int m = master_of_slot(static_cast<std::uint16_t>(cluster_slots_per(r)));
      if (m >= 0 && m != master) return m;
    }
    return -1;
  }

  /// The replicas of node `master` (as the master itself sees them).
  std::vector<int> replicas_of(int master) {
    std::vector<int> out;
    const std::string id = node(master).admin().command("CLUSTER", "MYID").text;
    for (int i = 0; i < size(); ++i) {
      if (i == master || !alive(i)) continue;
      const std::string role = info_field(i, "role", "replication");
      if (role != "slave") continue;
      if (info_field(i, "master_port", "replication") == std::to_string(port(master)))
        out.push_back(i);
    }
    return out;
  }

  /// The seeds a client starts from: every node.
  std::vector<redis::cluster_endpoint> seeds() const {
    std::vector<redis::cluster_endpoint> out;
    for (const auto& n : nodes_) out.push_back({"127.0.0.1", n->port_string()});
    return out;
  }

  /// A client configuration for this cluster with test-friendly timeouts.
  redis::cluster_config config() const {
    redis::cluster_config cfg;
    cfg.node = config_for<redis::connection_config>(*nodes_.front());
    cfg.seeds = seeds();
    // a failover takes the node timeout, then an election
    cfg.retry_window = std::chrono::milliseconds(4 * node_timeout_ms + 4000);
    return cfg;
  }

  /// kill -9 of node `i`.
  void kill(int i) {
    node(i).kill();
    dead_.push_back(i);
  }
  /// Starts node `i` again on its ports, with its cluster config file.
  void restart(int i) {
    node(i).restart();
    dead_.erase(std::remove(dead_.begin(), dead_.end(), i), dead_.end());
  }
  [[nodiscard]] bool alive(int i) const {
    return std::find(dead_.begin(), dead_.end(), i) == dead_.end();
  }

  /// Waits until every live node says cluster_state:ok and every slot has a master.
  void wait_healthy(std::chrono::seconds limit = std::chrono::seconds(30)) {
    wait_for(
        "cluster_state:ok on every live node",
        [&] {
          for (int i = 0; i < size(); ++i) {
            if (!alive(i)) continue;
            if (info_field(i, "cluster_state") != "ok") return false;
            if (info_field(i, "cluster_slots_ok") != "16384") return false;
          }
          return true;
        },
        limit);
  }

  /// `field` of node `i`'s CLUSTER INFO (or INFO `section`), empty when absent.
  std::string info_field(int i, const std::string& field, const std::string& section = {}) {
    try {
      const auto r = section.empty() ? node(i).admin().command("CLUSTER", "INFO")
                                     : node(i).admin().command("INFO", section);
      const std::string key = field + ":";
      const auto at = r.text.find(key);
      if (at == std::string::npos) return {};
      const auto end = r.text.find('\r', at);
      return r.text.substr(at + key.size(), end - at - key.size());
    } catch (const std::exception&) {
      return {};
    }
  }

  template <class Pred>
  static void wait_for(const std::string& what, Pred pred,
                       std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > until)
        throw std::runtime_error("redis_cluster: timed out waiting for " + what);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  [[nodiscard]] std::size_t cluster_slots_per(int m) const {
    return redis::cluster_slot_count * static_cast<std::size_t>(m) /
           static_cast<std::size_t>(masters_);
  }
  int index_of(const std::string& p) const {
    for (int i = 0; i < size(); ++i)
      if (nodes_[static_cast<std::size_t>(i)]->port_string() == p) return i;
    return -1;
  }
  static void expect_ok(const redis::value& r, const char* what) {
    if (r.is_error())
      throw std::runtime_error(std::string("redis_cluster: ") + what + ": " + r.text);
  }

  int masters_;
  std::vector<std::unique_ptr<redis_server>> nodes_;
  std::vector<int> dead_;
};

/// The cluster every cluster test of this process shares (3 masters, 3 replicas).
inline redis_cluster& shared_cluster() {
  static redis_cluster cluster(3, 1);
  return cluster;
}

}  // namespace seckill::test
