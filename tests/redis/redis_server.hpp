#pragma once
// A real redis-server for one test: started on a free 127.0.0.1 port with a
// temporary directory and no persistence, checked to be the process we
// started (INFO server's process_id and tcp_port), killed at the end. Plus a
// small blocking client for the test's own admin commands (CLIENT KILL,
// SHUTDOWN, DEBUG SLEEP, reading keys). With `redis_tls`, it also listens
// for TLS on a second free port (tls-port), the admin client staying on the
// plain one.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/redis/resp.hpp>

#include "support/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace seckill::test {

/// A blocking RESP client for the tests' admin commands (RESP2, 10 s timeout).
class admin_client {
 public:
  admin_client(unsigned short port, const std::string& user = {},
               const std::string& password = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("admin_client: socket() failed");
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("admin_client: cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    if (!password.empty()) {
      const auto r = user.empty() ? command("AUTH", password) : command("AUTH", user, password);
      if (r.is_error()) throw std::runtime_error("admin_client: AUTH refused: " + r.text);
    }
  }
  admin_client(const admin_client&) = delete;
  admin_client& operator=(const admin_client&) = delete;
  ~admin_client() { ::close(fd_); }

  template <class... Args>
  redis::value command(const Args&... args) {
    redis::request req;
    req.push(args...);
    send(req.payload());
    return read();
  }

  /// Sends raw bytes (no reply read).
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("admin_client: send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  redis::value read() {
    for (;;) {
      if (begin_ < buf_.size()) {
        std::error_code ec;
        begin_ += parser_.consume(std::string_view(buf_).substr(begin_), ec);
        if (ec) throw std::runtime_error("admin_client: bad reply: " + parser_.error_message());
        if (parser_.done()) return parser_.take();
      }
      buf_.clear();
      begin_ = 0;
      char tmp[65536];
      const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) throw std::runtime_error("admin_client: connection closed or timed out");
      buf_.assign(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  redis::parser parser_;
  std::string buf_;
  std::size_t begin_ = 0;
};

/// The TLS side of a `redis_server`: its certificate and key, the CA it
/// checks client certificates against, and `tls-auth-clients` (yes: mutual TLS).
struct redis_tls {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string auth_clients = "no";  // yes | no | optional
};

/// One redis-server process of our own.
class redis_server {
 public:
  /// `extra`: more "--option value" arguments; `admin_user`/`admin_password`:
  /// how the admin client authenticates when the extra arguments require it.
  explicit redis_server(std::vector<std::string> extra = {}, std::string admin_password = {},
                        std::string admin_user = {})
      : extra_(std::move(extra)),
        admin_user_(std::move(admin_user)),
        admin_password_(std::move(admin_password)) {
    start_on_free_ports();
  }

  /// A Redis Cluster node: `extra` plus its cluster bus on `bus_port()`, a
  /// free port picked with the client port (and picked again with it when
  /// either was taken).
  struct cluster_node {};
  redis_server(cluster_node, std::vector<std::string> extra)
      : extra_(std::move(extra)), cluster_bus_(true) {
    start_on_free_ports();
  }

  /// Also listening for TLS on `tls_port()`.
  explicit redis_server(redis_tls tls, std::vector<std::string> extra = {})
      : extra_(std::move(extra)), tls_(std::move(tls)) {
    start_on_free_ports();
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  /// The TLS port (0 without redis_tls).
  [[nodiscard]] unsigned short tls_port() const noexcept { return tls_port_; }
  /// The cluster bus port (0 unless made as a cluster_node).
  [[nodiscard]] unsigned short bus_port() const noexcept { return bus_port_; }
  [[nodiscard]] std::string port_string() const { return std::to_string(port_); }
  [[nodiscard]] pid_t pid() const noexcept { return process_.pid(); }

  admin_client admin() const { return admin_client(port_, admin_user_, admin_password_); }

  /// Starts it again on the same port (after SHUTDOWN or kill()).
  void restart() {
    process_.kill_and_wait();
    for (int i = 0; i < 100; ++i) {
      if (try_start()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("redis_server: restart on port " + port_string() + " failed; log:\n" +
                             log());
  }

  /// Starts it again on the same port with `more` arguments added.
  void restart_with(const std::vector<std::string>& more) {
    extra_.insert(extra_.end(), more.begin(), more.end());
    restart();
  }

  /// Waits for the process to exit (after SHUTDOWN NOSAVE).
  bool wait_exit(std::chrono::milliseconds timeout) { return process_.wait_for(timeout); }
  void kill() { process_.kill_and_wait(); }

  std::string log() const {
    std::ifstream in(dir_.path() / "redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void start_on_free_ports() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      if (tls_) {
        do tls_port_ = free_loopback_port();
        while (tls_port_ == port_);
      }
      if (cluster_bus_) {
        do bus_port_ = free_loopback_port();
        while (bus_port_ == port_ || bus_port_ == tls_port_);
      }
      if (try_start()) return;
    }
    throw std::runtime_error("redis_server: could not start redis-server; log:\n" + log());
  }

  bool try_start() {
    std::vector<std::string> argv{"/usr/bin/redis-server",
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--dir",
                                  dir_.path().string(),
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--enable-debug-command",
                                  "local",
                                  "--logfile",
                                  (dir_.path() / "redis.log").string()};
    if (tls_) {
      argv.insert(argv.end(),
                  {"--tls-port", std::to_string(tls_port_), "--tls-cert-file", tls_->cert_file,
                   "--tls-key-file", tls_->key_file, "--tls-ca-cert-file", tls_->ca_file,
                   "--tls-auth-clients", tls_->auth_clients});
    }
    if (cluster_bus_) argv.insert(argv.end(), {"--cluster-port", std::to_string(bus_port_)});
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    // killed by the kernel if the test process dies: no server outlives a crashed test
    process_.start({argv, (dir_.path() / "stdout.log").string(), {}, true});
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (!process_.running()) return false;  // e.g. the port was taken meanwhile
      if (accepts_connections(port_) && (!tls_ || accepts_connections(tls_port_))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!process_.running()) return false;
    // The server answering must be ours: same pid, same port.
    try {
      auto info = admin().command("INFO", "server");
      const std::string expected_pid = "process_id:" + std::to_string(process_.pid()) + "\r\n";
      const std::string expected_port = "tcp_port:" + std::to_string(port_) + "\r\n";
      if (info.text.find(expected_pid) == std::string::npos ||
          info.text.find(expected_port) == std::string::npos) {
        process_.kill_and_wait();
        return false;
      }
    } catch (const std::exception&) {
      process_.kill_and_wait();
      return false;
    }
    return true;
  }

  std::vector<std::string> extra_;
  std::optional<redis_tls> tls_;
  unsigned short tls_port_ = 0;
  bool cluster_bus_ = false;
  unsigned short bus_port_ = 0;
  std::string admin_user_;
  std::string admin_password_;
  detail::temp_dir dir_{"seckill-redis"};
  detail::child_process process_;
  unsigned short port_ = 0;
};

/// A connection_config for `server` with test-friendly timeouts.
template <class Config>
Config config_for(const redis_server& server) {
  Config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = server.port_string();
  cfg.connect_timeout = std::chrono::seconds(3);
  cfg.request_timeout = std::chrono::seconds(5);
  cfg.reconnect_initial_delay = std::chrono::milliseconds(20);
  cfg.reconnect_max_delay = std::chrono::milliseconds(200);
  return cfg;
}

}  // namespace seckill::test
