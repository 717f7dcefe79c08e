#pragma once
// Debian's Prometheus and Alertmanager, started by the obs integration tests on
// free 127.0.0.1 ports with their own config and data directory, and killed
// with the test (even a crashed one).

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include "obs/http_client.hpp"
#include "support/net.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace seckill::test {

/// The whole content of a text file ("" when it cannot be read).
inline std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
inline std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Polls GET `path` on 127.0.0.1:port until it answers 200; false after `timeout`.
/// Prometheus and Alertmanager accept connections before they are ready.
inline bool wait_until_ready(unsigned short port, const std::string& path,
                             std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    try {
      if (http_request(port, path).status == 200) return true;
    } catch (const std::exception&) {
      // not listening yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

/// A Prometheus (/usr/bin/prometheus) on 127.0.0.1: scrapes the given targets
/// every second, evaluates the given rule file every second and sends its
/// alerts to an Alertmanager when given one. Not thread-safe; one owner.
class prometheus_process {
 public:
  struct target {
    std::string job;
    unsigned short port = 0;
  };
  struct options {
    std::vector<target> targets;
    std::filesystem::path rules;           ///< empty: no rules
    unsigned short alertmanager_port = 0;  ///< 0: alerts go nowhere
  };

  prometheus_process(const options& opts, const seckill::detail::temp_dir& dir)
      : port_(free_loopback_port()) {
    config_ = dir.path() / "prometheus.yml";
    data_ = dir.path() / "prometheus-data";
    log_ = dir.path() / "prometheus.log";
    std::ofstream config(config_);
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
    if (!opts.rules.empty()) config << "rule_files:\n  - " << opts.rules.string() << "\n";
    if (opts.alertmanager_port != 0) {
      config << "alerting:\n  alertmanagers:\n    - static_configs:\n"
             << "        - targets: ['127.0.0.1:" << opts.alertmanager_port << "']\n";
    }
    config << "scrape_configs:\n";
    for (const auto& t : opts.targets) {
      config << "  - job_name: " << t.job << "\n    static_configs:\n"
             << "      - targets: ['127.0.0.1:" << t.port << "']\n";
    }
    config.close();
    process_.start({{"/usr/bin/prometheus", "--config.file=" + config_.string(),
                     "--storage.tsdb.path=" + data_.string(),
                     "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                    log_.string(),
                    {},
                    true});  // dies with the test process, even a crashed one
  }
  prometheus_process(const prometheus_process&) = delete;
  prometheus_process& operator=(const prometheus_process&) = delete;
  ~prometheus_process() { process_.terminate(); }

  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] std::string log() const { return read_text_file(log_); }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return data_; }
  bool running() { return process_.running(); }
  bool wait_until_ready(std::chrono::milliseconds timeout) {
    return seckill::test::wait_until_ready(port_, "/-/ready", timeout);
  }

  /// The instant query API; the parsed answer (status "success" or "error").
  nlohmann::json query(const std::string& expr) {
    const auto a = http_request(port_, "/api/v1/query", boost::beast::http::verb::post,
                                "query=" + url_encode(expr), "application/x-www-form-urlencoded");
    return nlohmann::json::parse(a.body);
  }

  /// Polls `expr` until it returns at least one series; the last answer.
  nlohmann::json wait_for_series(const std::string& expr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    nlohmann::json last;
    while (std::chrono::steady_clock::now() < until) {
      last = query(expr);
      if (last.value("status", "") == "success" && !last.at("data").at("result").empty())
        return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return last;
  }

 private:
  unsigned short port_;
  std::filesystem::path config_, data_, log_;
  seckill::detail::child_process process_;
};

/// An Alertmanager (/usr/bin/prometheus-alertmanager, Debian's
/// prometheus-alertmanager) on 127.0.0.1 with the given configuration, its own
/// data directory and clustering off. Not thread-safe; one owner.
class alertmanager_process {
 public:
  alertmanager_process(const std::string& config_yaml, const seckill::detail::temp_dir& dir)
      : port_(free_loopback_port()) {
    config_ = dir.path() / "alertmanager.yml";
    data_ = dir.path() / "alertmanager-data";
    log_ = dir.path() / "alertmanager.log";
    std::filesystem::create_directories(data_);
    std::ofstream(config_) << config_yaml;
    process_.start({{"/usr/bin/prometheus-alertmanager", "--config.file=" + config_.string(),
                     "--storage.path=" + data_.string(),
                     "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                     "--cluster.listen-address=", "--log.level=debug"},
                    log_.string(),
                    {},
                    true});
  }
  alertmanager_process(const alertmanager_process&) = delete;
  alertmanager_process& operator=(const alertmanager_process&) = delete;
  ~alertmanager_process() { process_.terminate(); }

  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] std::string log() const { return read_text_file(log_); }
  bool running() { return process_.running(); }
  bool wait_until_ready(std::chrono::milliseconds timeout) {
    return seckill::test::wait_until_ready(port_, "/-/ready", timeout);
  }

 private:
  unsigned short port_;
  std::filesystem::path config_, data_, log_;
  seckill::detail::child_process process_;
};

}  // namespace seckill::test
