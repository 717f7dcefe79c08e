// examples/observability/alerts.yml end to end with the real tools: a real
// Alertmanager (Debian's prometheus-alertmanager) routes alerts to a webhook
// receiver this test runs, both for an alert posted to its API v2 and for one
// that a real Prometheus raises from the rules while scraping a metrics_server
// the test serves with a seckill_server node's series.
#include <seckill/detail/temp_dir.hpp>
#include <seckill/obs/metrics_server.hpp>

#include "obs/http_client.hpp"
#include "obs/monitoring.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;

namespace integration_alertmanager {

namespace http = boost::beast::http;

const std::filesystem::path examples =
    std::filesystem::path(SECKILL_SOURCE_DIR) / "examples" / "observability";

/// An Alertmanager webhook receiver on 127.0.0.1: keeps every POST /alerts
/// body (and anything else it was sent, as a problem). One request per connection.
class webhook_receiver {
 public:
  webhook_receiver() : acceptor_(io_) {
    const boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;
  ~webhook_receiver() {
    stop_ = true;
    seckill::test::accepts_connections(port_);  // wakes the accept
    thread_.join();
  }

  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/alerts";
  }
  std::vector<json> notifications() {
    std::lock_guard lock(mutex_);
    return notifications_;
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mutex_);
    return problems_;
  }

  /// Polls until a notification with `status` ("firing" or "resolved") holds an
  /// alert named `alertname`; that alert, or null after `timeout`.
  json wait_for(const std::string& alertname, const std::string& status,
                std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      for (const auto& n : notifications()) {
        for (const auto& a : n.value("alerts", json::array())) {
          if (a.value("status", "") == status &&
              a.value("/labels/alertname"_json_pointer, std::string()) == alertname)
            return a;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    return nullptr;
  }

  /// Every alert name seen in any notification.
  std::set<std::string> alertnames() {
    std::set<std::string> out;
    for (const auto& n : notifications())
      for (const auto& a : n.value("alerts", json::array()))
        out.insert(a.value("/labels/alertname"_json_pointer, std::string()));
    return out;
  }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code ec;
      auto socket = acceptor_.accept(ec);
      if (ec || stop_) continue;
      boost::beast::tcp_stream stream(std::move(socket));
      stream.expires_after(5s);
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) continue;
      std::string problem;
      json body;
      if (req.method() != http::verb::post || req.target() != "/alerts") {
        problem = std::string(req.method_string()) + " " + std::string(req.target());
      } else {
        try {
          body = json::parse(req.body());
        } catch (const std::exception& e) {
          problem = std::string("unparsable JSON: ") + e.what();
        }
      }
      {
        std::lock_guard lock(mutex_);
        if (problem.empty()) {
          notifications_.push_back(std::move(body));
        } else {
          problems_.push_back(std::move(problem));
        }
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.keep_alive(false);
      res.prepare_payload();
      http::write(stream, res, ec);
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<json> notifications_;
  std::vector<std::string> problems_;
};

/// Everything to the webhook, grouped per alert and instance, sent at once.
std::string alertmanager_config(const webhook_receiver& hook) {
  return "route:\n"
         "  receiver: test\n"
         "  group_by: ['alertname', 'instance']\n"
         "  group_wait: 1s\n"
         "  group_interval: 1s\n"
         "  repeat_interval: 1h\n"
         "receivers:\n"
         "  - name: test\n"
         "    webhook_configs:\n"
         "      - url: '" +
         hook.url() +
         "'\n"
         "        send_resolved: true\n";
}

/// A seckill_server node's series, served by the library's metrics_server on a
/// thread of its own; the test sets them.
struct node_metrics {
  seckill::obs::registry reg;
  boost::asio::io_context io;
  seckill::obs::metrics_server server{io.get_executor(), reg, {}};
  seckill::obs::gauge store_connected =
      reg.add_gauge_family("seckill_store_connected", "1 while the stock store answers.").get();
  std::thread runner;

  node_metrics() {
    auto& grade = reg.add_gauge_family("seckill_node_health_grade",
                                       "1 for this node's current health grade.", {"grade"});
    grade.with({"healthy"}).set(1);
    for (const auto g : {"degraded", "read_only", "unavailable"}) grade.with({g}).set(0);
    reg.add_gauge("seckill_node_leader", "1 while this node runs the leader duties.").set(1);
    reg.add_gauge("seckill_etcd_connected", "1 while etcd answers.").set(1);
    reg.add_gauge("seckill_stock_cache_lag_seconds", "Age of the sold-out cache's view.").set(0.1);
    reg.add_gauge("seckill_http_connections", "HTTP connections open.").set(3);
    reg.add_counter_family("seckill_http_requests_total", "HTTP requests answered.",
                           {"route", "status"})
        .with({"purchase", "200"})
        .inc(10);
    store_connected.set(1);
    server.start();
    runner = std::thread([this] { io.run(); });
  }
  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;
  ~node_metrics() {
    server.stop();
    io.stop();
    runner.join();
  }
};

}  // namespace integration_alertmanager

TEST_SUITE("integration") {
  TEST_CASE(
      "Alertmanager delivers an alert posted to its API v2 to the webhook - labels and "
      "annotations intact") {
    using namespace integration_alertmanager;
    seckill::detail::temp_dir dir("seckill-alertmanager");
    webhook_receiver hook;
    seckill::test::alertmanager_process am(alertmanager_config(hook), dir);
    REQUIRE_MESSAGE(am.wait_until_ready(30s), am.log());

    const json alerts =
        json::array({{{"labels",
                       {{"alertname", "SeckillStoreDisconnected"},
                        {"severity", "page"},
                        {"instance", "node-1:8080"}}},
                      {"annotations",
                       {{"summary", "Node node-1:8080 cannot reach the stock store"},
                        {"description", "posted by the test"}}}}});
    const auto posted =
        seckill::test::http_request(am.port(), "/api/v2/alerts", boost::beast::http::verb::post,
                                    alerts.dump(), "application/json");
    INFO(posted.body);
    REQUIRE(posted.status == 200);
    // The API can refuse: an alert without labels is a client error (422 here).
    const auto refused = seckill::test::http_request(
        am.port(), "/api/v2/alerts", boost::beast::http::verb::post,
        R"([{"annotations": {"summary": "no labels"}}])", "application/json");
    INFO(refused.body);
    CHECK(refused.status >= 400);
    CHECK(refused.status < 500);

    const json got = hook.wait_for("SeckillStoreDisconnected", "firing", 30s);
    INFO(am.log());
    REQUIRE_FALSE(got.is_null());
    CHECK(got.at("labels").at("severity") == "page");
    CHECK(got.at("labels").at("instance") == "node-1:8080");
    CHECK(got.at("annotations").at("summary") == "Node node-1:8080 cannot reach the stock store");
    CHECK(got.at("annotations").at("description") == "posted by the test");
    const auto notifications = hook.notifications();
    REQUIRE_FALSE(notifications.empty());
    CHECK(notifications.front().at("version") == "4");
    CHECK(notifications.front().at("receiver") == "test");
    CHECK(notifications.front().at("groupLabels").at("alertname") == "SeckillStoreDisconnected");
    CHECK(hook.problems().empty());
    CHECK(hook.alertnames() == std::set<std::string>{"SeckillStoreDisconnected"});
    CHECK(am.running());
  }

  TEST_CASE(
      "Prometheus raises SeckillStoreDisconnected from alerts.yml and Alertmanager delivers "
      "it - then its resolution") {
    using namespace integration_alertmanager;
    seckill::detail::temp_dir dir("seckill-alertmanager");
    webhook_receiver hook;
    seckill::test::alertmanager_process am(alertmanager_config(hook), dir);
    REQUIRE_MESSAGE(am.wait_until_ready(30s), am.log());
    node_metrics node;
    seckill::test::prometheus_process prom(
        {{{"seckill", node.server.port()}}, examples / "alerts.yml", am.port()}, dir);
    REQUIRE_MESSAGE(prom.wait_until_ready(60s), prom.log());
    REQUIRE_FALSE(
        prom.wait_for_series("seckill_store_connected == 1").at("data").at("result").empty());

    // The node loses its store: the alert is pending for its 30 seconds, then fires.
    node.store_connected.set(0);
    const json fired = hook.wait_for("SeckillStoreDisconnected", "firing", 90s);
    INFO(prom.log());
    INFO(am.log());
    REQUIRE_FALSE(fired.is_null());
    const std::string instance = "127.0.0.1:" + std::to_string(node.server.port());
    CHECK(fired.at("labels").at("severity") == "page");
    CHECK(fired.at("labels").at("instance") == instance);
    CHECK(fired.at("labels").at("job") == "seckill");
    CHECK(fired.at("annotations").at("summary") ==
          "Node " + instance + " cannot reach the stock store");
    CHECK(fired.at("annotations").at("description") ==
          "The stock store has not answered " + instance +
              " for 30 seconds: its purchases fail (503 store_unavailable).");
    CHECK(fired.at("generatorURL").get<std::string>().find(std::to_string(prom.port())) !=
          std::string::npos);

    // The store is back: Alertmanager sends the resolution.
    node.store_connected.set(1);
    const json resolved = hook.wait_for("SeckillStoreDisconnected", "resolved", 60s);
    REQUIRE_FALSE(resolved.is_null());
    CHECK(resolved.at("labels").at("instance") == instance);
    // A healthy node's other series raised nothing.
    CHECK(hook.alertnames() == std::set<std::string>{"SeckillStoreDisconnected"});
    CHECK(hook.problems().empty());
    CHECK(prom.running());
    CHECK(am.running());
  }
}
