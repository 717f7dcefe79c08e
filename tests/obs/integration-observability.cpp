// examples/observability against the real tools: promtool checks and unit-tests
// the alert rules, a real Prometheus (Debian's /usr/bin/prometheus) scrapes a
// running program on 127.0.0.1, its query API returns the expected series, and
// it accepts every expression of the Grafana dashboard.
#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include "obs/http_client.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
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

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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
  return {WEXITSTATUS(p.wait_status()), read_file(log)};
}

std::string url_encode(std::string_view s) {
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

/// Prometheus's instant query API; the parsed answer (status "success" or "error").
json instant_query(unsigned short port, const std::string& expr) {
  const auto a =
      seckill::test::http_request(port, "/api/v1/query", boost::beast::http::verb::post,
                                  "query=" + url_encode(expr), "application/x-www-form-urlencoded");
  return json::parse(a.body);
}

/// A Prometheus started on 127.0.0.1 with its own config and data directory.
class prometheus {
 public:
  prometheus(unsigned short target_port, const seckill::detail::temp_dir& dir)
      : port_(seckill::test::free_loopback_port()) {
    config_ = dir.path() / "prometheus.yml";
    data_ = dir.path() / "data";
    log_ = dir.path() / "prometheus.log";
    std::ofstream(config_) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                           << "rule_files:\n  - " << (examples / "alerts.yml").string() << "\n"
                           << "scrape_configs:\n  - job_name: seckill\n    static_configs:\n"
                           << "      - targets: ['127.0.0.1:" << target_port << "']\n";
    process_.start({{"/usr/bin/prometheus", "--config.file=" + config_.string(),
                     "--storage.tsdb.path=" + data_.string(),
                     "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                    log_.string(),
                    {},
                    true});  // dies with the test process, even a crashed one
  }
  ~prometheus() { process_.terminate(); }

  [[nodiscard]] unsigned short port() const { return port_; }
  [[nodiscard]] std::string log() const { return read_file(log_); }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return data_; }
  bool running() { return process_.running(); }

  /// Polls `expr` until it returns at least one series; the last answer.
  json wait_for_series(const std::string& expr, std::chrono::seconds timeout = 30s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < until) {
      last = instant_query(port_, expr);
      if (last.value("status", "") == "success" && !last.at("data").at("result").empty())
        return last;
      std::this_thread::sleep_for(250ms);
    }
    return last;
  }

 private:
  unsigned short port_;
  std::filesystem::path config_, data_, log_;
  child_process process_;
};

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

}  // namespace integration_observability

TEST_SUITE("integration") {
  TEST_CASE("promtool: alert rules and prometheus.yml check / rule unit tests pass") {
    using namespace integration_observability;
    auto r = run({"promtool", "check", "rules", (examples / "alerts.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("SUCCESS: 5 rules found") != std::string::npos);
    r = run({"promtool", "test", "rules", (examples / "alerts_test.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
    r = run({"promtool", "check", "config", (examples / "prometheus.yml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
  }

  TEST_CASE("promtool: every alert is tested both firing and silent - a wrong expectation fails") {
    using namespace integration_observability;
    const std::string rules = read_file(examples / "alerts.yml");
    const std::string tests = read_file(examples / "alerts_test.yml");
    for (const std::string alert :
         {"SeckillPurchaseFailureRateHigh", "SeckillPurchaseLatencyP99High", "SeckillStockLow",
          "SeckillCircuitBreakerOpen", "SeckillPaidOrdersCompensated"}) {
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

  TEST_CASE("the Grafana dashboard parses and has the panels operators need") {
    using namespace integration_observability;
    const json d = json::parse(read_file(examples / "grafana-dashboard.json"));
    CHECK(d.at("title").is_string());
    CHECK(d.at("uid") == "seckill-flash-sale");
    CHECK(d.at("schemaVersion").is_number_integer());
    std::set<std::string> titles;
    std::set<int> ids;
    for (const auto& p : d.at("panels")) {
      titles.insert(p.at("title").get<std::string>());
      ids.insert(p.at("id").get<int>());
      CHECK(p.at("gridPos").at("w").get<int>() > 0);
      CHECK(p.at("datasource").at("uid") == "${datasource}");
      for (const auto& t : p.at("targets")) CHECK(t.at("refId").is_string());
    }
    CHECK(ids.size() == d.at("panels").size());  // unique panel ids
    for (const std::string want :
         {"Purchases per second (QPS)", "Failure rate", "Purchase latency p50 / p99",
          "Stock per SKU", "Circuit breaker state"})
      CHECK_MESSAGE(titles.count(want) == 1, want);
    // the datasource variable makes it importable without editing
    CHECK(d.at("templating").at("list").at(0).at("type") == "datasource");
    CHECK(d.at("templating").at("list").at(0).at("query") == "prometheus");
    const auto exprs = dashboard_expressions(d);
    CHECK(exprs.size() >= 6);
    for (const auto& e : exprs) CHECK(e.find('$') == std::string::npos);
  }
}

TEST_SUITE("integration") {
  TEST_CASE(
      "a real Prometheus scrapes the running simulation - the series and every dashboard query "
      "answer") {
    using namespace integration_observability;
    seckill::detail::temp_dir dir("seckill-prometheus");
    const auto target_port = seckill::test::free_loopback_port();
    auto sim = start_simulation(target_port, dir.path() / "sim.log");
    REQUIRE_MESSAGE(seckill::test::wait_until_accepting(target_port, 20s),
                    read_file(dir.path() / "sim.log"));
    const auto own = seckill::test::http_request(target_port, "/metrics");
    REQUIRE(own.status == 200);
    REQUIRE(own.body.find("seckill_purchases_total") != std::string::npos);

    prometheus prom(target_port, dir);
    REQUIRE_MESSAGE(seckill::test::wait_until_accepting(prom.port(), 30s), prom.log());
    bool ready = false;  // it accepts connections before it is ready (503 until then)
    for (int i = 0; i < 120 && !ready; ++i) {
      ready = seckill::test::http_request(prom.port(), "/-/ready").status == 200;
      if (!ready) std::this_thread::sleep_for(250ms);
    }
    REQUIRE_MESSAGE(ready, prom.log());
    // The Prometheus answering is the one started here: its data directory is ours.
    const auto flags =
        json::parse(seckill::test::http_request(prom.port(), "/api/v1/status/flags").body);
    REQUIRE(flags.at("data").at("storage.tsdb.path") == prom.data_dir().string());

    const auto up = prom.wait_for_series("up{job=\"seckill\"} == 1");
    INFO(prom.log());
    REQUIRE(up.at("data").at("result").size() == 1);
    CHECK(up.at("data").at("result").at(0).at("metric").at("instance") ==
          "127.0.0.1:" + std::to_string(target_port));

    const auto purchases = prom.wait_for_series("seckill_purchases_total");
    const auto results = label_values(purchases, "result");
    for (const std::string r : {"succeeded", "sold_out", "rate_limited", "circuit_open",
                                "timed_out", "rolled_back", "failed"})
      CHECK_MESSAGE(results.count(r) == 1, r);
    const auto succeeded =
        prom.wait_for_series("seckill_purchases_total{result=\"succeeded\"} > 0");
    CHECK(succeeded.at("data").at("result").size() == 1);
    const auto stock = prom.wait_for_series("seckill_stock_units");
    CHECK(label_values(stock, "sku").size() == 3);
    const auto buckets =
        prom.wait_for_series("seckill_purchase_duration_seconds_bucket{le=\"+Inf\"} > 0");
    CHECK(buckets.at("data").at("result").size() == 1);
    const auto breaker = prom.wait_for_series("seckill_breaker_state");
    CHECK(label_values(breaker, "state").count("open") == 1);
    CHECK(prom.wait_for_series("sum(seckill_breaker_state) == 1").at("data").at("result").size() ==
          1);
    CHECK_FALSE(prom.wait_for_series("seckill_store_errors_total").at("data").at("result").empty());
    CHECK_FALSE(prom.wait_for_series("seckill_rate_limited_total").at("data").at("result").empty());

    // Two scrapes at least, so that rate() has points; then every dashboard query.
    REQUIRE_FALSE(prom.wait_for_series("sum(rate(seckill_purchases_total[1m]))")
                      .at("data")
                      .at("result")
                      .empty());
    const json dashboard = json::parse(read_file(examples / "grafana-dashboard.json"));
    for (const auto& expr : dashboard_expressions(dashboard)) {
      const auto answer = instant_query(prom.port(), expr);
      INFO(expr);
      INFO(answer.dump());
      CHECK(answer.at("status") == "success");
      CHECK_FALSE(answer.at("data").at("result").empty());
    }
    // Prometheus rejects a broken expression: the check above can fail.
    CHECK(instant_query(prom.port(), "sum(rate(seckill_purchases_total[1m])").at("status") ==
          "error");

    // The alert rules loaded and evaluate.
    const auto rules = json::parse(seckill::test::http_request(prom.port(), "/api/v1/rules").body);
    std::size_t alerts = 0;
    for (const auto& g : rules.at("data").at("groups"))
      for (const auto& r : g.at("rules"))
        if (r.at("type") == "alerting") ++alerts;
    CHECK(alerts == 5);
    CHECK(prom.running());
    sim.terminate();
  }
}
