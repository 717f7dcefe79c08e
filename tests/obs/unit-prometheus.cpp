#include <seckill/obs/prometheus.hpp>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <limits>
#include <ostream>
#include <string>

using seckill::obs::registry;
using seckill::obs::to_text;

TEST_SUITE("unit") {
  TEST_CASE("content type is the 0.0.4 text format's") {
    CHECK(seckill::obs::text_content_type == "text/plain; version=0.0.4; charset=utf-8");
  }

  TEST_CASE("counter and gauge exposition with HELP / TYPE and sorted families") {
    registry reg;
    reg.add_gauge("b_stock", "Stock left").set(42);
    reg.add_counter("a_requests_total", "Requests served").inc(3);
    CHECK(to_text(reg) ==
          "# HELP a_requests_total Requests served\n"
          "# TYPE a_requests_total counter\n"
          "a_requests_total 3\n"
          "# HELP b_stock Stock left\n"
          "# TYPE b_stock gauge\n"
          "b_stock 42\n");
  }

  TEST_CASE("HELP escapes backslash and newline - label values also escape quotes") {
    registry reg;
    auto& fam = reg.add_counter_family("esc_total", "a \\ b\nc \"q\"", {"path", "n"});
    fam.with({"C:\\dir\n\"x\"", "plain"}).inc();
    CHECK(to_text(reg) ==
          "# HELP esc_total a \\\\ b\\nc \"q\"\n"
          "# TYPE esc_total counter\n"
          "esc_total{path=\"C:\\\\dir\\n\\\"x\\\"\",n=\"plain\"} 1\n");
  }

  TEST_CASE("UTF-8 label values pass through unescaped") {
    registry reg;
    reg.add_gauge_family("g", "h", {"sku"}).with({"\xe7\xa7\x92\xe6\x9d\x80"}).set(1);
    CHECK(to_text(reg).find("g{sku=\"\xe7\xa7\x92\xe6\x9d\x80\"} 1\n") != std::string::npos);
  }

  TEST_CASE("histogram: cumulative buckets / le labels / +Inf / _sum and _count") {
    registry reg;
    auto& fam = reg.add_histogram_family("lat_seconds", "Latency", {"op"}, {0.005, 0.5, 1});
    auto h = fam.with({"buy"});
    for (double v : {0.001, 0.3, 0.3, 2.0}) h.observe(v);
    CHECK(to_text(reg) ==
          "# HELP lat_seconds Latency\n"
          "# TYPE lat_seconds histogram\n"
          "lat_seconds_bucket{op=\"buy\",le=\"0.005\"} 1\n"
          "lat_seconds_bucket{op=\"buy\",le=\"0.5\"} 3\n"
          "lat_seconds_bucket{op=\"buy\",le=\"1\"} 3\n"
          "lat_seconds_bucket{op=\"buy\",le=\"+Inf\"} 4\n"
          "lat_seconds_sum{op=\"buy\"} 2.601\n"
          "lat_seconds_count{op=\"buy\"} 4\n");
  }

  TEST_CASE("unlabelled histogram has only le - an empty one prints zeros") {
    registry reg;
    reg.add_histogram("h_seconds", "H", {1});
    CHECK(to_text(reg) ==
          "# HELP h_seconds H\n"
          "# TYPE h_seconds histogram\n"
          "h_seconds_bucket{le=\"1\"} 0\n"
          "h_seconds_bucket{le=\"+Inf\"} 0\n"
          "h_seconds_sum 0\n"
          "h_seconds_count 0\n");
  }

  TEST_CASE("special values: +Inf / -Inf / NaN / large and small numbers") {
    registry reg;
    auto& fam = reg.add_gauge_family("v", "values", {"k"});
    fam.with({"a"}).set(std::numeric_limits<double>::infinity());
    fam.with({"b"}).set(-std::numeric_limits<double>::infinity());
    fam.with({"c"}).set(std::numeric_limits<double>::quiet_NaN());
    fam.with({"d"}).set(1e20);
    fam.with({"e"}).set(2.5e-7);
    fam.with({"f"}).set(-0.125);
    CHECK(to_text(reg) ==
          "# HELP v values\n"
          "# TYPE v gauge\n"
          "v{k=\"a\"} +Inf\n"
          "v{k=\"b\"} -Inf\n"
          "v{k=\"c\"} NaN\n"
          "v{k=\"d\"} 1e+20\n"
          "v{k=\"e\"} 2.5e-07\n"
          "v{k=\"f\"} -0.125\n");
  }

  TEST_CASE("a family without children prints HELP and TYPE only") {
    registry reg;
    reg.add_counter_family("none_total", "Nothing yet", {"x"});
    CHECK(to_text(reg) == "# HELP none_total Nothing yet\n# TYPE none_total counter\n");
  }

  TEST_CASE("health JSON: ok with 200 / unavailable with 503 and the reason") {
    seckill::obs::health_report ok{{{"memory://", true, ""}}};
    auto [s1, b1] = seckill::obs::health_json(ok);
    CHECK(s1 == 200);
    CHECK(b1 == R"({"status":"ok","stores":[{"name":"memory://","reachable":true}]})");
    seckill::obs::health_report bad{
        {{"memory://", true, ""}, {"redis://127.0.0.1:1", false, "connection refused"}}};
    auto [s2, b2] = seckill::obs::health_json(bad);
    CHECK(s2 == 503);
    CHECK(b2 ==
          R"({"status":"unavailable","stores":[{"name":"memory://","reachable":true},)"
          R"({"detail":"connection refused","name":"redis://127.0.0.1:1","reachable":false}]})");
    auto [s3, b3] = seckill::obs::health_json({});
    CHECK(s3 == 200);
    CHECK(b3 == R"({"status":"ok","stores":[]})");
  }

  TEST_CASE(
      "metrics_server options: slow-client guards by default - bad values refused with the value "
      "seen") {
    using options = seckill::obs::metrics_server::options;
    const options o;
    CHECK(o.header_timeout == std::chrono::seconds(5));
    CHECK(o.request_timeout == std::chrono::seconds(10));
    CHECK(o.idle_timeout == std::chrono::seconds(30));
    CHECK(o.max_connections == 64);
    CHECK(o.max_header_bytes == 8 * 1024);
    CHECK(o.max_body_bytes == 8 * 1024);
    CHECK(seckill::obs::metrics_server::linger_time == std::chrono::seconds(1));

    registry reg;
    boost::asio::io_context io;
    const auto refused = [&](options bad) -> std::string {
      seckill::obs::metrics_server server(io.get_executor(), reg, std::move(bad));
      try {
        server.start();
      } catch (const seckill::error& e) {
        CHECK(e.code() == seckill::errc::invalid_argument);
        return e.what();
      }
      return "(started)";
    };
    CHECK(refused({.header_timeout = std::chrono::milliseconds(0)})
              .find("metrics_server: header_timeout 0 ms out of range [1, 31622400000] ms") == 0);
    CHECK(refused({.request_timeout = std::chrono::milliseconds(-5)})
              .find("request_timeout -5 ms out of range [1, 31622400000] ms") != std::string::npos);
    CHECK(refused({.idle_timeout = std::chrono::milliseconds::min()})
              .find("idle_timeout -9223372036854775808 ms out of range") != std::string::npos);
    CHECK(refused({.request_timeout = std::chrono::milliseconds::max()})
              .find("request_timeout 9223372036854775807 ms out of range [1, 31622400000] ms") !=
          std::string::npos);
    CHECK(refused({.max_connections = 0}).find("max_connections 0: want at least 1") !=
          std::string::npos);
    CHECK(
        refused({.max_header_bytes = 0}).find("max_header_bytes 0 out of range [1, 4294967295]") !=
        std::string::npos);
    CHECK(refused({.max_body_bytes = std::size_t{1} << 40})
              .find("max_body_bytes 1099511627776 out of range [1, 4294967295]") !=
          std::string::npos);
  }
}
