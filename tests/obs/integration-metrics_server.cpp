#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/obs/prometheus.hpp>

#include "obs/http_client.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace integration_metrics_server {

/// A registry with every kind of metric, a server on a free port, and a thread running it.
struct fixture {
  seckill::obs::registry reg;
  boost::asio::io_context io;
  std::atomic<bool> store_up{true};
  seckill::obs::metrics_server server{io.get_executor(), reg, {}, [this] {
                                        return seckill::obs::health_report{
                                            {{"memory://", true, ""},
                                             {"redis://127.0.0.1:6379", store_up.load(),
                                              store_up.load() ? "" : "connection refused"}}};
                                      }};
  std::thread runner;

  fixture() {
    auto& purchases = reg.add_counter_family("seckill_purchases_total", "Purchases by result.\nFinal state.", {"result"});
    purchases.with({"succeeded"}).inc(7);
    purchases.with({"sold_out"}).inc(2);
    purchases.with({"quote\"back\\slash"}).inc();
    auto& lat = reg.add_histogram_family("seckill_purchase_duration_seconds", "Purchase latency.", {"result"});
    for (double v : {0.0004, 0.003, 0.02, 0.2, 3.0, 20.0}) lat.with({"succeeded"}).observe(v);
    reg.add_gauge_family("seckill_stock_units", "Stock left per SKU.", {"sku"}).with({"sku-1"}).set(95);
    server.start();
    runner = std::thread([this] { io.run(); });
  }
  ~fixture() {
    server.stop();
    runner.join();
  }
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check_metrics(const std::string& text) {
  seckill::detail::temp_dir dir("seckill-obs");
  const auto in = dir.path() / "scrape.txt";
  const auto log = dir.path() / "promtool.log";
  std::ofstream(in) << text;
  seckill::detail::child_process p(
      {{"sh", "-c", "exec promtool check metrics < '" + in.string() + "'"}, log.string(), {}});
  REQUIRE(p.wait_for(30s));
  REQUIRE(WIFEXITED(p.wait_status()));
  return {WEXITSTATUS(p.wait_status()), read_file(log)};
}

}  // namespace integration_metrics_server

TEST_SUITE("integration") {
  TEST_CASE("a real scrape of /metrics passes promtool check metrics") {
    integration_metrics_server::fixture f;
    const auto a = seckill::test::http_request(f.server.port(), "/metrics");
    CHECK(a.status == 200);
    CHECK(a.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(a.body == seckill::obs::to_text(f.reg));
    CHECK(a.body.find("seckill_purchase_duration_seconds_bucket{result=\"succeeded\",le=\"+Inf\"} 6\n") !=
          std::string::npos);
    const auto [status, output] = integration_metrics_server::promtool_check_metrics(a.body);
    INFO(output);
    CHECK(status == 0);
    // The check can fail: promtool rejects a counter not named *_total and a broken line.
    const auto [bad_status, bad_output] = integration_metrics_server::promtool_check_metrics(
        "# HELP purchases Purchases\n# TYPE purchases counter\npurchases 1\n");
    INFO(bad_output);
    CHECK(bad_status != 0);
    const auto [broken_status, broken_output] =
        integration_metrics_server::promtool_check_metrics("# TYPE x gauge\nx{a=\"1} 1\n");
    INFO(broken_output);
    CHECK(broken_status != 0);
  }

  TEST_CASE("/health reports store reachability from the application's callback") {
    integration_metrics_server::fixture f;
    auto a = seckill::test::http_request(f.server.port(), "/health");
    CHECK(a.status == 200);
    CHECK(a.content_type == "application/json");
    auto j = nlohmann::json::parse(a.body);
    CHECK(j.at("status") == "ok");
    CHECK(j.at("stores").size() == 2);
    CHECK(j.at("stores").at(1).at("reachable") == true);
    f.store_up = false;
    a = seckill::test::http_request(f.server.port(), "/health?verbose=1");
    CHECK(a.status == 503);
    j = nlohmann::json::parse(a.body);
    CHECK(j.at("status") == "unavailable");
    CHECK(j.at("stores").at(1).at("name") == "redis://127.0.0.1:6379");
    CHECK(j.at("stores").at(1).at("detail") == "connection refused");
  }

  TEST_CASE("a health callback that throws gives 500 with the message") {
    seckill::obs::registry reg;
    boost::asio::io_context io;
    seckill::obs::metrics_server server(io.get_executor(), reg, {},
                                        []() -> seckill::obs::health_report { throw std::runtime_error("probe broke"); });
    server.start();
    std::thread t([&] { io.run(); });
    const auto a = seckill::test::http_request(server.port(), "/health");
    server.stop();
    t.join();
    CHECK(a.status == 500);
    CHECK(nlohmann::json::parse(a.body).at("error") == "probe broke");
  }

  TEST_CASE("unknown paths get 404 / other methods 405 / HEAD the headers only") {
    integration_metrics_server::fixture f;
    CHECK(seckill::test::http_request(f.server.port(), "/nothing").status == 404);
    const auto post = seckill::test::http_request(f.server.port(), "/metrics", http::verb::post, "x", "text/plain");
    CHECK(post.status == 405);
    CHECK(post.allow == "GET, HEAD");
    const auto get = seckill::test::http_request(f.server.port(), "/metrics");
    const auto head = seckill::test::http_request(f.server.port(), "/metrics", http::verb::head);
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.content_length == std::to_string(get.body.size()));
  }

  TEST_CASE("keep-alive serves several requests on one connection - garbage closes it") {
    integration_metrics_server::fixture f;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), f.server.port()});
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < 3; ++i) {
      http::request<http::empty_body> req{http::verb::get, i == 1 ? "/health" : "/metrics", 11};
      req.set(http::field::host, "127.0.0.1");
      http::write(stream, req);
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      CHECK(res.result_int() == 200);
      CHECK(res.keep_alive());
    }
    const std::string garbage = "NOT HTTP AT ALL\r\n\r\n";
    boost::asio::write(stream.socket(), boost::asio::buffer(garbage));
    http::response<http::string_body> res;
    boost::system::error_code ec;
    http::read(stream, buffer, res, ec);
    CHECK(ec);  // the server closed the connection without an answer
  }

  TEST_CASE("an oversized request is refused by closing the connection") {
    integration_metrics_server::fixture f;
    boost::system::error_code ec;
    try {
      (void)seckill::test::http_request(f.server.port(), "/metrics", http::verb::get,
                                        std::string(64 * 1024, 'x'), "text/plain");
      FAIL("the server answered an oversized request");
    } catch (const boost::system::system_error& e) {
      ec = e.code();
    }
    CHECK(ec);
  }

  TEST_CASE("a port in use is reported - stop() closes open connections") {
    integration_metrics_server::fixture f;
    seckill::obs::registry reg;
    boost::asio::io_context io2;
    seckill::obs::metrics_server clash(io2.get_executor(), reg, {.port = f.server.port()});
    try {
      clash.start();
      FAIL("bound a port that is in use");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find(std::to_string(f.server.port())) != std::string::npos);
    }
    seckill::obs::metrics_server bad_address(io2.get_executor(), reg, {.address = "not-an-ip"});
    CHECK_THROWS_AS(bad_address.start(), seckill::error);

    boost::asio::io_context io;
    boost::beast::tcp_stream idle(io);
    idle.connect({boost::asio::ip::make_address("127.0.0.1"), f.server.port()});
    std::this_thread::sleep_for(50ms);  // let the server accept it
    f.server.stop();
    timeval tv{5, 0};
    ::setsockopt(idle.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte = 0;
    boost::system::error_code ec;
    idle.socket().read_some(boost::asio::buffer(&byte, 1), ec);
    // closed by the server (eof), or reset when stop() came before the accept
    CHECK((ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset));
    CHECK_FALSE(seckill::test::wait_until_accepting(f.server.port(), 200ms));
  }
}
