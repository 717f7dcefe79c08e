// examples/observability against the real tools: promtool checks and unit-tests
// the alert rules, a real Prometheus (Debian's /usr/bin/prometheus) scrapes the
// flash-sale simulation and a seckill_server node on 127.0.0.1, its query API
// returns the expected series, and every expression of the Grafana dashboard
// answers. The dashboard and the rules name only metrics the programs export.
#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include "etcd/etcd_fixture.hpp"
#include "obs/http_client.hpp"
#include "obs/monitoring.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;
using seckill::detail::child_process;

namespace integration_observability {

const std::filesystem::path examples =
    std::filesystem::path(SECKILL_SOURCE_DIR) / "examples" / "observability";

using seckill::test::read_text_file;

struct outcome {
  int status = -1;
  std::string output;
};

/// Runs a command to completion (30 s at most) and returns its exit status and output.
outcome run(const std::vector<std::string>& argv) {
  seckill::detail::temp_dir dir("seckill-obs");
  const auto log = dir.path() / "out.log";
  child_process p({argv, log.string(), {}});
  REQUIRE(p.wait_for(30s));
  REQUIRE(WIFEXITED(p.wait_status()));
  return {WEXITSTATUS(p.wait_status()), read_text_file(log)};
}

/// Every `expr` of the dashboard's panels, with Grafana's interval variables replaced.
std::vector<std::string> dashboard_expressions(const json& dashboard) {
  std::vector<std::string> exprs;
  for (const auto& panel : dashboard.at("panels")) {
    for (const auto& target : panel.value("targets", json::array())) {
      std::string e = target.at("expr").get<std::string>();
      for (const std::string var : {"$__rate_interval", "$__interval", "$__range"}) {
        for (auto pos = e.find(var); pos != std::string::npos; pos = e.find(var))
          e.replace(pos, var.size(), "1m");
      }
      exprs.push_back(e);
    }
  }
  return exprs;
}

/// Every metric the programs export (docs/observability.md): the purchase
/// engine's and seckill_server's. Histograms are named without their suffixes.
const std::set<std::string> engine_metrics = {
    "seckill_purchases_total",   "seckill_purchase_duration_seconds", "seckill_stock_units",
    "seckill_breaker_state",     "seckill_compensations_total",       "seckill_rate_limited_total",
    "seckill_store_errors_total"};
const std::set<std::string> server_metrics = {
    "seckill_http_requests_total",     "seckill_http_request_duration_seconds",
    "seckill_http_connections",        "seckill_http_connections_refused_total",
    "seckill_node_health_grade",       "seckill_node_leader",
    "seckill_store_connected",         "seckill_etcd_connected",
    "seckill_stock_cache_lag_seconds", "seckill_stock_cache_refusals_total"};
const std::set<std::string> histograms = {"seckill_purchase_duration_seconds",
                                          "seckill_http_request_duration_seconds"};

/// The seckill_* metric names `text` refers to, histogram suffixes removed
/// where the rest names a histogram.
std::set<std::string> metric_names(const std::string& text) {
  static const std::regex name("seckill_[a-z0-9_]*[a-z0-9]");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string n = it->str();
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (n.size() > suffix.size() && n.ends_with(suffix) &&
          histograms.count(n.substr(0, n.size() - suffix.size())) == 1)
        n.resize(n.size() - suffix.size());
    }
    out.insert(n);
  }
  return out;
}

/// The `expr:` values of a rule file, multi-line ones included.
std::string rule_expressions(const std::string& yaml) {
  std::istringstream in(yaml);
  std::string line, out;
  std::size_t expr_indent = std::string::npos;
  while (std::getline(in, line)) {
    const auto indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    if (line.compare(indent, 5, "expr:") == 0) {
      expr_indent = indent;
      out += line.substr(indent + 5) + "\n";
    } else if (expr_indent != std::string::npos && indent > expr_indent) {
      out += line + "\n";
    } else {
      expr_indent = std::string::npos;
    }
  }
  return out;
}

bool known_metric(const std::string& n) {
  return engine_metrics.count(n) == 1 || server_metrics.count(n) == 1;
}

std::set<std::string> label_values(const json& answer, const std::string& label) {
  std::set<std::string> out;
  for (const auto& r : answer.at("data").at("result")) out.insert(r.at("metric").value(label, ""));
  return out;
}

/// The flash-sale simulation serving its metrics on `port` and staying up after its run.
child_process start_simulation(unsigned short port, const std::filesystem::path& log) {
#ifdef SECKILL_FLASH_SALE_SIM
  const std::string program = SECKILL_FLASH_SALE_SIM;
#else
  const std::string program;
  FAIL("built without examples: no flash_sale_sim to scrape");
#endif
  return child_process(
      {{program, "--metrics-port", std::to_string(port), "--linger", "120s", "--buyers", "3000",
        "--skus", "3", "--stock", "100", "--arrival", "poisson", "--arrival-rate", "1000",
        "--payment-latency", "2ms", "--no-progress"},
       log.string(),
       {},
       true});
}

/// A seckill_server node on the memory store, serving on `port`, joined to
/// the etcd at `etcd` (so that its coordination series exist too).
child_process start_server(unsigned short port, const std::string& etcd,
                           const std::filesystem::path& log) {
#ifdef SECKILL_SERVER
  const std::string program = SECKILL_SERVER;
#else
  const std::string program;
  FAIL("built without examples: no seckill_server to scrape");
#endif
  return child_process({{program, "--listen", "127.0.0.1:" + std::to_string(port), "--store",
                         "memory://", "--etcd", etcd, "--admin-token", "obs-test-token"},
                        log.string(),
                        {},
                        true});
}

}  // namespace integration_observability

TEST_SUITE("integration") {
  TEST_CASE("promtool: alert rules and prometheus.yml check / rule unit tests pass") {
    using namespace integration_observability;
    auto r = run({"promtool", "check", "rules", (examples / "alerts.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("SUCCESS: 13 rules found") != std::string::npos);
    r = run({"promtool", "test", "rules", (examples / "alerts_test.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
    r = run({"promtool", "check", "config", (examples / "prometheus.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
  }

  TEST_CASE("promtool: every alert is tested both firing and silent - a wrong expectation fails") {
    using namespace integration_observability;
    const std::string rules = read_text_file(examples / "alerts.yml");
    const std::string tests = read_text_file(examples / "alerts_test.yml");
    for (const std::string alert :
         {"SeckillPurchaseFailureRateHigh", "SeckillPurchaseLatencyP99High", "SeckillStockLow",
          "SeckillCircuitBreakerOpen", "SeckillPaidOrdersCompensated", "SeckillTrafficHigh",
          "SeckillTrafficStopped", "SeckillHttp5xxHigh", "SeckillNodeNotReady", "SeckillNoLeader",
          "SeckillStoreDisconnected", "SeckillEtcdDisconnected", "SeckillStockCacheLagging"}) {
      CHECK(rules.find("alert: " + alert) != std::string::npos);
      // each alert appears in the tests at least once with exp_alerts: [] and once with alerts
      std::size_t silent = 0, firing = 0;
      for (auto pos = tests.find("alertname: " + alert); pos != std::string::npos;
           pos = tests.find("alertname: " + alert, pos + 1)) {
        const auto next = tests.find_first_not_of(' ', tests.find('\n', pos) + 1);
        (tests.compare(next, 14, "exp_alerts: []") == 0 ? silent : firing) += 1;
      }
      CHECK_MESSAGE(silent >= 1, alert);
      CHECK_MESSAGE(firing >= 1, alert);
    }
    // The rule tests can fail: expecting silence where the alert fires is reported.
    seckill::detail::temp_dir dir("seckill-obs");
    std::filesystem::copy_file(examples / "alerts.yml", dir.path() / "alerts.yml");
    std::ofstream(dir.path() / "wrong_test.yml")
        << "rule_files: [alerts.yml]\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n"
           "    input_series:\n      - series: 'seckill_stock_units{sku=\"s\"}'\n        values: "
           "'1x10'\n"
           "    alert_rule_test:\n      - eval_time: 2m\n        alertname: SeckillStockLow\n"
           "        exp_alerts: []\n";
    auto r = run({"promtool", "test", "rules", (dir.path() / "wrong_test.yml").string()});
    INFO(r.output);
    CHECK(r.status != 0);
    std::ofstream(dir.path() / "broken.yml")
        << "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: rate(x[\n";
    r = run({"promtool", "check", "rules", (dir.path() / "broken.yml").string()});
    CHECK(r.status != 0);
  }

  TEST_CASE("the alert rules name only metrics the programs export") {
    using namespace integration_observability;
    const auto exprs = rule_expressions(read_text_file(examples / "alerts.yml"));
    CHECK(exprs.find("seckill_http_requests_total{route=\"purchase\"}[2m]") != std::string::npos);
    const auto names = metric_names(exprs);
    for (const auto& n : names) CHECK_MESSAGE(known_metric(n), n);
    for (const std::string n :
         {"seckill_http_requests_total", "seckill_node_health_grade", "seckill_node_leader",
          "seckill_store_connected", "seckill_etcd_connected", "seckill_stock_cache_lag_seconds"})
      CHECK_MESSAGE(names.count(n) == 1, n);
    // The check can fail: a misspelt or suffixed name is not a known metric.
    CHECK(metric_names("rate(seckill_purchase_duration_seconds_bucket[1m])") ==
          std::set<std::string>{"seckill_purchase_duration_seconds"});
    CHECK_FALSE(known_metric(*metric_names("seckill_http_request_total").begin()));
    CHECK_FALSE(known_metric(*metric_names("seckill_node_leader_bucket").begin()));
  }

  TEST_CASE("the Grafana dashboard parses and has the panels operators need") {
    using namespace integration_observability;
    const json d = json::parse(read_text_file(examples / "grafana-dashboard.json"));
    CHECK(d.at("title").is_string());
    CHECK(d.at("uid") == "seckill-flash-sale");
    CHECK(d.at("schemaVersion").is_number_integer());
    std::set<std::string> titles;
    std::set<int> ids;
    for (const auto& p : d.at("panels")) {
      titles.insert(p.at("title").get<std::string>());
      ids.insert(p.at("id").get<int>());
      CHECK(p.at("gridPos").at("w").get<int>() > 0);
      CHECK(p.at("gridPos").at("x").get<int>() + p.at("gridPos").at("w").get<int>() <= 24);
      CHECK(p.at("datasource").at("uid") == "${datasource}");
      CHECK_FALSE(p.at("targets").empty());
      std::set<std::string> refs;
      for (const auto& t : p.at("targets")) {
        CHECK(t.at("refId").is_string());
        refs.insert(t.at("refId").get<std::string>());
      }
      CHECK(refs.size() == p.at("targets").size());  // unique refIds within a panel
    }
    CHECK(ids.size() == d.at("panels").size());  // unique panel ids
    for (const std::string want :
         {"Purchases per second (QPS)", "Failure rate", "Purchase latency p50 / p99",
          "Stock per SKU", "Circuit breaker state", "HTTP requests by route and status",
          "HTTP 5xx share", "HTTP latency p50 / p99 by route", "HTTP connections",
          "Node health grade", "Leader", "Store and etcd connection", "Stock cache lag"})
      CHECK_MESSAGE(titles.count(want) == 1, want);
    // the datasource variable makes it importable without editing
    CHECK(d.at("templating").at("list").at(0).at("type") == "datasource");
    CHECK(d.at("templating").at("list").at(0).at("query") == "prometheus");
    const auto exprs = dashboard_expressions(d);
    CHECK(exprs.size() >= 18);
    std::set<std::string> used;
    for (const auto& e : exprs) {
      CHECK(e.find('$') == std::string::npos);
      const auto names = metric_names(e);
      CHECK_MESSAGE(!names.empty(), e);
      for (const auto& n : names) {
        CHECK_MESSAGE(known_metric(n), (n + " in " + e));
        used.insert(n);
      }
    }
    // every metric seckill_server adds has a panel
    for (const auto& n : server_metrics) CHECK_MESSAGE(used.count(n) == 1, n);
  }
}

TEST_SUITE("integration") {
  TEST_CASE(
      "a real Prometheus scrapes the running simulation and a seckill_server node - the series "
      "and every dashboard query answer") {
    using namespace integration_observability;
    seckill::detail::temp_dir dir("seckill-prometheus");
    const auto target_port = seckill::test::free_loopback_port();
    auto sim = start_simulation(target_port, dir.path() / "sim.log");
    const auto server_port = seckill::test::free_loopback_port();
    auto server = start_server(server_port, seckill::test::shared_single_node().endpoint_list(),
                               dir.path() / "server.log");
    REQUIRE_MESSAGE(seckill::test::wait_until_accepting(target_port, 20s),
                    read_text_file(dir.path() / "sim.log"));
    REQUIRE_MESSAGE(seckill::test::wait_until_accepting(server_port, 20s),
                    read_text_file(dir.path() / "server.log"));
    const auto own = seckill::test::http_request(target_port, "/metrics");
    REQUIRE(own.status == 200);
    REQUIRE(own.body.find("seckill_purchases_total") != std::string::npos);
    // The node sells something, so that its purchase route has traffic.
    namespace http = boost::beast::http;
    const auto stocked =
        seckill::test::http_request(server_port, "/admin/stock/sku-obs", http::verb::put,
                                    R"({"stock": 100})", "application/json", "obs-test-token");
    REQUIRE_MESSAGE(stocked.status == 200, stocked.body);
    const auto bought = seckill::test::http_request(
        server_port, "/purchase", http::verb::post,
        R"({"sku": "sku-obs", "user": "u-1", "request_id": "r-1"})", "application/json");
    REQUIRE_MESSAGE(bought.status == 200, bought.body);

    seckill::test::prometheus_process prom(
        {{{"flash_sale_sim", target_port}, {"seckill_server", server_port}},
         examples / "alerts.yml"},
        dir);
    REQUIRE_MESSAGE(prom.wait_until_ready(30s), prom.log());
    // The Prometheus answering is the one started here: its data directory is ours.
    const auto flags =
        json::parse(seckill::test::http_request(prom.port(), "/api/v1/status/flags").body);
    REQUIRE(flags.at("data").at("storage.tsdb.path") == prom.data_dir().string());

    const auto up = prom.wait_for_series("up{job=\"flash_sale_sim\"} == 1");
    INFO(prom.log());
    REQUIRE(up.at("data").at("result").size() == 1);
    CHECK(up.at("data").at("result").at(0).at("metric").at("instance") ==
          "127.0.0.1:" + std::to_string(target_port));
    const auto server_up = prom.wait_for_series("up{job=\"seckill_server\"} == 1");
    REQUIRE(server_up.at("data").at("result").size() == 1);

    const std::string sim_only = "{job=\"flash_sale_sim\"}";
    const auto purchases = prom.wait_for_series("seckill_purchases_total" + sim_only);
    const auto results = label_values(purchases, "result");
    for (const std::string r : {"succeeded", "sold_out", "rate_limited", "circuit_open",
                                "timed_out", "rolled_back", "failed"})
      CHECK_MESSAGE(results.count(r) == 1, r);
    const auto succeeded = prom.wait_for_series(
        "seckill_purchases_total{job=\"flash_sale_sim\",result=\"succeeded\"} > 0");
    CHECK(succeeded.at("data").at("result").size() == 1);
    const auto stock = prom.wait_for_series("seckill_stock_units" + sim_only);
    CHECK(label_values(stock, "sku").size() == 3);
    const auto buckets = prom.wait_for_series(
        "seckill_purchase_duration_seconds_bucket{job=\"flash_sale_sim\",le=\"+Inf\"} > 0");
    CHECK(buckets.at("data").at("result").size() == 1);
    const auto breaker = prom.wait_for_series("seckill_breaker_state" + sim_only);
    CHECK(label_values(breaker, "state").count("open") == 1);
    CHECK(prom.wait_for_series("sum(seckill_breaker_state" + sim_only + ") == 1")
              .at("data")
              .at("result")
              .size() == 1);
    CHECK_FALSE(prom.wait_for_series("seckill_store_errors_total").at("data").at("result").empty());
    CHECK_FALSE(prom.wait_for_series("seckill_rate_limited_total").at("data").at("result").empty());

    // The node's own series, as the dashboard and the alerts read them.
    const auto routes =
        label_values(prom.wait_for_series("seckill_http_request_duration_seconds_count"), "route");
    for (const std::string r :
         {"purchase", "admin_stock", "stock", "order", "metrics", "health", "ready", "other"})
      CHECK_MESSAGE(routes.count(r) == 1, r);
    CHECK_FALSE(
        prom.wait_for_series("seckill_http_requests_total{route=\"purchase\",status=\"200\"} == 1")
            .at("data")
            .at("result")
            .empty());
    CHECK(label_values(prom.wait_for_series("seckill_node_health_grade == 1"), "grade") ==
          std::set<std::string>{"healthy"});
    CHECK_FALSE(
        prom.wait_for_series("seckill_store_connected == 1").at("data").at("result").empty());
    for (const auto& n : server_metrics) {
      const std::string series = histograms.count(n) == 1 ? n + "_count" : n;
      CHECK_MESSAGE(!prom.wait_for_series(series).at("data").at("result").empty(), n);
    }

    // Two scrapes at least, so that rate() has points; then every dashboard query.
    REQUIRE_FALSE(prom.wait_for_series("sum(rate(seckill_purchases_total[1m]))")
                      .at("data")
                      .at("result")
                      .empty());
    REQUIRE_FALSE(prom.wait_for_series("sum(rate(seckill_http_requests_total[1m]))")
                      .at("data")
                      .at("result")
                      .empty());
    const json dashboard = json::parse(read_text_file(examples / "grafana-dashboard.json"));
    for (const auto& expr : dashboard_expressions(dashboard)) {
      const auto answer = prom.query(expr);
      INFO(expr);
      INFO(answer.dump());
      CHECK(answer.at("status") == "success");
      CHECK_FALSE(answer.at("data").at("result").empty());
    }
    // Prometheus rejects a broken expression: the check above can fail.
    CHECK(prom.query("sum(rate(seckill_purchases_total[1m])").at("status") == "error");

    // The alert rules loaded and evaluate.
    const auto rules = json::parse(seckill::test::http_request(prom.port(), "/api/v1/rules").body);
    std::size_t alerts = 0;
    for (const auto& g : rules.at("data").at("groups"))
      for (const auto& r : g.at("rules")) {
        if (r.at("type") == "alerting") ++alerts;
        CHECK_MESSAGE(r.at("health") != "err", r.dump());
      }
    CHECK(alerts == 13);
    CHECK(prom.running());
    sim.terminate();
    server.terminate();
  }
}
