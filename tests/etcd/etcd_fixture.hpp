#pragma once
// Real etcd 3.4 members for the integration tests: a single node or a static
// cluster, each member on free 127.0.0.1 ports with a temporary data
// directory, started and killed through seckill::detail::child_process. With
// `etcd_tls`, the members serve clients on https:// (their peers stay plain).

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/etcd/client.hpp>

#include <support/net.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace seckill::test {

/// Runs `fn(client)` to completion on a private io_context: for fixtures and checks.
template <class F>
auto run_sync(F&& fn) {
  boost::asio::io_context io;
  auto fut = std::forward<F>(fn)(io);
  io.run();
  return fut.get();
}

/// The TLS side of an `etcd_cluster`: the members' certificate and key, the
/// CA they check client certificates against, `--client-cert-auth`, and the
/// settings the fixture's own clients use.
struct etcd_tls {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool client_cert_auth = false;
  tls_options client;
};

class etcd_cluster {
 public:
  struct member {
    std::string name;
    unsigned short client_port = 0;
    unsigned short peer_port = 0;
    std::filesystem::path data_dir;
    std::filesystem::path log;
    detail::child_process process;  ///< dies with the test binary (die_with_parent)
  };

  /// Serving clients over TLS.
  explicit etcd_cluster(etcd_tls tls, int members = 1) : tls_(std::move(tls)) {
    start_all(members, "seckill-tls");
  }

  explicit etcd_cluster(int members = 1, std::string token_prefix = "seckill-test") {
    start_all(members, std::move(token_prefix));
  }

  /// With more etcd flags on every member (`--auth-token-ttl 2`, say).
  etcd_cluster(int members, std::string token_prefix, std::vector<std::string> extra_args)
      : extra_args_(std::move(extra_args)) {
    start_all(members, std::move(token_prefix));
  }

 private:
  void start_all(int members, std::string token_prefix) {
    static int counter = 0;
    token_ = token_prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    for (int i = 0; i < members; ++i) {
      auto& m = members_.emplace_back();
      m.name = "m" + std::to_string(i);
      m.data_dir = dir_.path() / m.name;
      m.log = dir_.path() / (m.name + ".log");
    }
    // A free port may be taken by another test between the pick and etcd's
    // bind: then the cluster starts again on new ports, from empty data.
    for (int attempt = 1;; ++attempt) {
      for (auto& m : members_) {
        m.client_port = free_loopback_port();
        m.peer_port = free_loopback_port();
      }
      try {
        for (std::size_t i = 0; i < members_.size(); ++i) start(i);
        wait_ready();
        return;
      } catch (...) {
        for (auto& m : members_) kill_member(m);
        if (attempt == 5 || !port_taken()) throw;
        for (auto& m : members_) {
          std::filesystem::remove_all(m.data_dir);
          std::filesystem::remove(m.log);
        }
      }
    }
  }

 public:
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;
  ~etcd_cluster() {
    for (auto& m : members_) kill_member(m);
  }

  [[nodiscard]] std::size_t size() const { return members_.size(); }
  member& at(std::size_t i) { return members_.at(i); }

  void start(std::size_t i) {
    auto& m = members_.at(i);
    std::string initial;
    for (const auto& o : members_) {
      if (!initial.empty()) initial += ",";
      initial += o.name + "=http://127.0.0.1:" + std::to_string(o.peer_port);
    }
    const std::string client_url =
        client_scheme() + "://127.0.0.1:" + std::to_string(m.client_port);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> tls_args;
    if (tls_) {
      tls_args = {"--cert-file", tls_->cert_file, "--key-file", tls_->key_file};
      // (etcd 3.4 asks every client for a certificate once it has a trusted CA)
      if (tls_->client_cert_auth)
        tls_args.insert(tls_args.end(), {"--trusted-ca-file", tls_->ca_file, "--client-cert-auth"});
    }
    std::vector<std::string> argv{"/usr/bin/etcd",
                                  "--name",
                                  m.name,
                                  "--data-dir",
                                  m.data_dir.string(),
                                  "--listen-client-urls",
                                  client_url,
                                  "--advertise-client-urls",
                                  client_url,
                                  "--listen-peer-urls",
                                  peer_url,
                                  "--initial-advertise-peer-urls",
                                  peer_url,
                                  "--initial-cluster",
                                  initial,
                                  "--initial-cluster-token",
                                  token_,
                                  "--initial-cluster-state",
                                  "new",
                                  "--heartbeat-interval",
                                  "50",
                                  "--election-timeout",
                                  "500",
                                  "--log-level",
                                  "warn"};
    argv.insert(argv.end(), tls_args.begin(), tls_args.end());
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    m.process.start({argv, m.log.string(), {}, true});
  }

  /// kill -9 of one member.
  void kill(std::size_t i) { kill_member(members_.at(i)); }
  /// kill -STOP / -CONT of one member: alive for the kernel, silent for its peers and clients.
  void freeze(std::size_t i) { members_.at(i).process.signal(SIGSTOP); }
  void thaw(std::size_t i) { members_.at(i).process.signal(SIGCONT); }

  void restart(std::size_t i) {
    kill(i);
    start(i);
    if (!wait_until_accepting(members_.at(i).client_port, std::chrono::seconds(10))) {
      throw std::runtime_error("etcd member " + members_.at(i).name +
                               " did not come back: " + log_tail(i));
    }
  }

  [[nodiscard]] etcd::endpoint endpoint_of(std::size_t i) const {
    return {"127.0.0.1", members_.at(i).client_port, tls_.has_value()};
  }
  /// "https" when the members serve clients over TLS, else "http".
  [[nodiscard]] std::string client_scheme() const { return tls_ ? "https" : "http"; }
  [[nodiscard]] std::vector<etcd::endpoint> endpoints() const {
    std::vector<etcd::endpoint> out;
    for (std::size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint_of(i));
    return out;
  }
  [[nodiscard]] std::string endpoint_list() const {
    std::string out;
    for (const auto& e : endpoints()) out += (out.empty() ? "" : ",") + e.to_string();
    return out;
  }
  [[nodiscard]] etcd::client_options options() const {
    etcd::client_options o;
    o.endpoints = endpoints();
    o.call_timeout = std::chrono::seconds(5);
    if (tls_) o.tls = tls_->client;
    return o;
  }

  std::string log_tail(std::size_t i) const {
    std::ifstream in(members_.at(i).log);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
  }

  /// Waits until every running member accepts connections, reports version
  /// 3.4.x, belongs to this cluster (its member list names our members on our
  /// ports) and sees a leader.
  void wait_ready(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i].process.running()) continue;
      if (!wait_accepting_while_running(members_[i], until)) {
        throw std::runtime_error("etcd member " + members_[i].name +
                                 " does not accept: " + log_tail(i));
      }
      for (;;) {
        etcd::client_options o;
        o.endpoints = {endpoint_of(i)};
        o.call_timeout = std::chrono::seconds(2);
        if (tls_) o.tls = tls_->client;
        const auto status = run_sync([&](boost::asio::io_context& io) {
          auto c = std::make_shared<etcd::client>(io.get_executor(), o);
          return c->async_status(
              boost::asio::use_future([c](std::error_code ec, etcd::status_result r) {
                return std::pair{ec, r};
              }));
        });
        if (!status.first && status.second.leader != 0) {
          if (status.second.version.rfind("3.4.", 0) != 0) {
            throw std::runtime_error("the server on port " +
                                     std::to_string(members_[i].client_port) + " is etcd " +
                                     status.second.version + ", expected 3.4.x");
          }
          check_membership(i);
          break;
        }
        if (std::chrono::steady_clock::now() > until) {
          throw std::runtime_error("etcd member " + members_[i].name + " has no leader: " +
                                   status.second.error_message + "\n" + log_tail(i));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

 private:
  static void kill_member(member& m) noexcept { m.process.kill_and_wait(); }

  // Whether a member's log says its port was taken.
  bool port_taken() const {
    for (std::size_t i = 0; i < members_.size(); ++i)
      if (log_tail(i).find("address already in use") != std::string::npos) return true;
    return false;
  }

  // Waits until `m` accepts connections; false at `until` or as soon as it exited.
  static bool wait_accepting_while_running(member& m, std::chrono::steady_clock::time_point until) {
    while (std::chrono::steady_clock::now() < until) {
      if (wait_until_accepting(m.client_port, std::chrono::milliseconds(200))) return true;
      if (!m.process.running()) return false;
    }
    return false;
  }

  static boost::asio::awaitable<void> member_list(std::shared_ptr<etcd::client> c,
                                                  std::shared_ptr<std::promise<nlohmann::json>> p) {
    nlohmann::json out;
    std::string message;
    auto ec =
        co_await c->call("/v3/cluster/member/list", nlohmann::json::object(), true, out, message);
    if (ec) out = nlohmann::json{{"failed", message}};
    p->set_value(out);
  }

  void check_membership(std::size_t i) {
    etcd::client_options o;
    o.endpoints = {endpoint_of(i)};
    if (tls_) o.tls = tls_->client;
    const auto doc = run_sync([&](boost::asio::io_context& io) {
      auto c = std::make_shared<etcd::client>(io.get_executor(), o);
      auto p = std::make_shared<std::promise<nlohmann::json>>();
      auto fut = p->get_future();
      boost::asio::co_spawn(io, member_list(c, p), boost::asio::detached);
      return fut;
    });
    const std::string expected =
        client_scheme() + "://127.0.0.1:" + std::to_string(members_[i].client_port);
    if (doc.contains("members")) {
      for (const auto& m : doc["members"]) {
        if (m.value("name", "") == members_[i].name && m.contains("clientURLs") &&
            m["clientURLs"].dump().find(expected) != std::string::npos) {
          return;
        }
      }
    }
    throw std::runtime_error("the server on port " + std::to_string(members_[i].client_port) +
                             " is not the etcd member we started: " + doc.dump());
  }

  std::optional<etcd_tls> tls_;
  detail::temp_dir dir_{"seckill-etcd"};
  std::string token_;
  std::vector<std::string> extra_args_;
  std::vector<member> members_;
};

/// One single-member etcd for the whole test binary, started on first use
/// and killed at exit: for tests that only need a server and keep to their
/// own key prefix.
inline etcd_cluster& shared_single_node() {
  static etcd_cluster node(1, "seckill-shared");
  return node;
}

}  // namespace seckill::test
