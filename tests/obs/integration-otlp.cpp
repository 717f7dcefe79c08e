#include <seckill/obs/trace.hpp>

#include "support/net.hpp"

#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace http = boost::beast::http;
using nlohmann::json;

namespace integration_otlp {

bool is_hex(const json& v, std::size_t n) {
  if (!v.is_string()) return false;
  const auto s = v.get<std::string>();
  if (s.size() != n || s == std::string(n, '0')) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_decimal(const json& v) {
  if (!v.is_string()) return false;
  const auto s = v.get<std::string>();
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

/// Checks an ExportTraceServiceRequest in OTLP/JSON; returns the problems found.
std::vector<std::string> check_otlp(const json& body) {
  std::vector<std::string> problems;
  const auto bad = [&](const std::string& what) { problems.push_back(what); };
  if (!body.contains("resourceSpans") || !body["resourceSpans"].is_array() ||
      body["resourceSpans"].empty()) {
    bad("no resourceSpans array");
    return problems;
  }
  for (const auto& rs : body["resourceSpans"]) {
    bool has_service = false;
    for (const auto& a : rs.value("/resource/attributes"_json_pointer, json::array())) {
      if (a.value("key", "") == "service.name" && a.contains("value") &&
          a["value"].contains("stringValue") && a["value"]["stringValue"].is_string())
        has_service = true;
    }
    if (!has_service) bad("resource without service.name");
    if (!rs.contains("scopeSpans") || !rs["scopeSpans"].is_array()) bad("no scopeSpans");
    for (const auto& ss : rs.value("scopeSpans", json::array())) {
      if (!ss.contains("scope") || !ss["scope"].value("name", json()).is_string())
        bad("scope without name");
      for (const auto& sp : ss.value("spans", json::array())) {
        if (!is_hex(sp.value("traceId", json()), 32))
          bad("bad traceId " + sp.value("traceId", json()).dump());
        if (!is_hex(sp.value("spanId", json()), 16)) bad("bad spanId");
        if (sp.contains("parentSpanId") && !is_hex(sp["parentSpanId"], 16)) bad("bad parentSpanId");
        if (!sp.value("name", json()).is_string() || sp["name"].get<std::string>().empty())
          bad("no name");
        const auto kind = sp.value("kind", json());
        if (!kind.is_number_integer() || kind.get<int>() < 0 || kind.get<int>() > 5)
          bad("bad kind");
        const auto start = sp.value("startTimeUnixNano", json());
        const auto end = sp.value("endTimeUnixNano", json());
        if (!is_decimal(start) || !is_decimal(end)) {
          bad("times are not decimal strings");
        } else if (std::stoull(end.get<std::string>()) < std::stoull(start.get<std::string>())) {
          bad("ends before it starts");
        }
        for (const auto& a : sp.value("attributes", json::array())) {
          if (!a.value("key", json()).is_string() || !a.contains("value") ||
              a["value"].size() != 1) {
            bad("malformed attribute " + a.dump());
            continue;
          }
          const auto& v = a["value"];
          const bool ok = (v.contains("stringValue") && v["stringValue"].is_string()) ||
                          (v.contains("boolValue") && v["boolValue"].is_boolean()) ||
                          (v.contains("intValue") && v["intValue"].is_string()) ||
                          (v.contains("doubleValue") && v["doubleValue"].is_number());
          if (!ok) bad("attribute value of no OTLP type: " + v.dump());
        }
        const auto code = sp.value("/status/code"_json_pointer, json());
        if (!code.is_number_integer() || code.get<int>() < 0 || code.get<int>() > 2)
          bad("bad status code");
      }
    }
  }
  return problems;
}

/// An OTLP/HTTP receiver on 127.0.0.1: checks each POST /v1/traces and keeps the bodies.
class receiver {
 public:
  enum class mode { accept, fail_500, never_answer };
  explicit receiver(mode m = mode::accept) : mode_(m), acceptor_(io_) {
    const boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~receiver() {
    stop_ = true;
    boost::system::error_code ec;
    seckill::test::accepts_connections(port_);  // wakes the accept
    thread_.join();
  }
  [[nodiscard]] unsigned short port() const { return port_; }
  std::vector<json> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mutex_);
    return problems_;
  }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code ec;
      auto socket = acceptor_.accept(ec);
      if (ec || stop_) continue;
      boost::beast::tcp_stream stream(std::move(socket));
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(stream, buffer, req, ec);
      if (ec) continue;
      std::vector<std::string> found;
      if (req.method() != http::verb::post)
        found.push_back("method " + std::string(req.method_string()));
      if (req.target() != "/v1/traces") found.push_back("target " + std::string(req.target()));
      if (req[http::field::content_type] != "application/json") found.push_back("content type");
      json body;
      try {
        body = json::parse(req.body());
        for (auto& p : check_otlp(body)) found.push_back(p);
      } catch (const std::exception& e) {
        found.push_back(std::string("unparsable JSON: ") + e.what());
      }
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(body);
        problems_.insert(problems_.end(), found.begin(), found.end());
      }
      if (mode_ == mode::never_answer) {
        std::this_thread::sleep_for(1500ms);
        continue;
      }
      http::response<http::string_body> res{mode_ == mode::fail_500
                                                ? http::status::internal_server_error
                                            : found.empty() ? http::status::ok
                                                            : http::status::bad_request,
                                            11};
      res.set(http::field::content_type, "application/json");
      res.body() = "{}";
      res.prepare_payload();
      http::write(stream, res, ec);
    }
  }

  mode mode_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<json> bodies_;
  std::vector<std::string> problems_;
};

seckill::obs::otlp_http_exporter::options options_for(unsigned short port) {
  seckill::obs::otlp_http_exporter::options o;
  o.port = std::to_string(port);
  o.service_name = "flash-sale";
  return o;
}

}  // namespace integration_otlp

TEST_SUITE("integration") {
  TEST_CASE("OTLP/HTTP exporter posts valid JSON batches to /v1/traces") {
    integration_otlp::receiver rx;
    boost::asio::io_context io;
    auto opts = integration_otlp::options_for(rx.port());
    opts.max_batch = 2;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(), opts);
    seckill::obs::tracer tracer(exporter);
    std::string root_trace;
    {
      auto root = tracer.start_span("purchase", seckill::obs::span_kind::server);
      root_trace = seckill::obs::to_hex(root.context().trace);
      root.set_attribute("sku", "sku-7");
      auto reserve = tracer.start_span("reserve", seckill::obs::span_kind::client, root.context());
      reserve.set_attribute("qty", 1);
      reserve.set_attribute("ratio", 0.25);
      reserve.set_attribute("retry", false);
      reserve.set_status(seckill::obs::span_status::error, "sold out");
      reserve.end();
      auto pay = tracer.start_span("payment", seckill::obs::span_kind::internal, root.context());
    }
    CHECK(exporter.queued() == 3);
    auto done = exporter.async_flush(boost::asio::use_future);
    io.run();
    CHECK_FALSE(done.get());
    CHECK(exporter.exported() == 3);
    CHECK(exporter.dropped() == 0);
    CHECK(exporter.queued() == 0);
    const auto problems = rx.problems();
    for (const auto& p : problems) INFO(p);
    CHECK(problems.empty());
    const auto bodies = rx.bodies();
    REQUIRE(bodies.size() == 2);  // batches of 2: 2 + 1
    std::vector<json> spans;
    for (const auto& b : bodies) {
      CHECK(b["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"] ==
            "flash-sale");
      for (const auto& s : b["resourceSpans"][0]["scopeSpans"][0]["spans"]) spans.push_back(s);
    }
    REQUIRE(spans.size() == 3);
    CHECK(spans[0]["name"] == "reserve");
    CHECK(spans[0]["status"]["code"] == 2);
    CHECK(spans[0]["status"]["message"] == "sold out");
    CHECK(spans[1]["name"] == "payment");
    CHECK(spans[2]["name"] == "purchase");
    CHECK(spans[2]["kind"] == 2);
    CHECK_FALSE(spans[2].contains("parentSpanId"));
    for (const auto& s : spans) CHECK(s["traceId"] == root_trace);
    CHECK(spans[0]["parentSpanId"] == spans[2]["spanId"]);
  }

  TEST_CASE("OTLP receiver's checks reject what is not OTLP (the check can fail)") {
    CHECK_FALSE(integration_otlp::check_otlp(json::parse(R"({"spans":[]})")).empty());
    auto good = seckill::obs::to_otlp_json({seckill::obs::span_data{}}, "x");
    CHECK_FALSE(integration_otlp::check_otlp(good).empty());  // a default span has zero ids
    seckill::obs::in_memory_exporter mem;
    seckill::obs::tracer t(mem);
    t.start_span("ok").end();
    good = seckill::obs::to_otlp_json(mem.take(), "x");
    CHECK(integration_otlp::check_otlp(good).empty());
    auto upper = good;
    auto& sp = upper["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    sp["traceId"] = std::string(32, 'A');
    CHECK_FALSE(integration_otlp::check_otlp(upper).empty());
    auto numeric_time = good;
    numeric_time["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = 5;
    CHECK_FALSE(integration_otlp::check_otlp(numeric_time).empty());
  }

  TEST_CASE("OTLP exporter: a 500 answer is errc::server_error and the batch is counted dropped") {
    integration_otlp::receiver rx(integration_otlp::receiver::mode::fail_500);
    boost::asio::io_context io;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(),
                                              integration_otlp::options_for(rx.port()));
    seckill::obs::tracer tracer(exporter);
    tracer.start_span("a").end();
    auto done = exporter.async_flush(boost::asio::use_future);
    io.run();
    CHECK(done.get() == seckill::errc::server_error);
    CHECK(exporter.dropped() == 1);
    CHECK(exporter.exported() == 0);
  }

  TEST_CASE("OTLP exporter: nobody listening is errc::connection_refused") {
    boost::asio::io_context io;
    seckill::obs::otlp_http_exporter exporter(
        io.get_executor(), integration_otlp::options_for(seckill::test::free_loopback_port()));
    seckill::obs::tracer tracer(exporter);
    tracer.start_span("a").end();
    auto done = exporter.async_flush(boost::asio::use_future);
    io.run();
    CHECK(done.get() == seckill::errc::connection_refused);
  }

  TEST_CASE("OTLP exporter: a receiver that never answers times out - cancellation aborts") {
    integration_otlp::receiver rx(integration_otlp::receiver::mode::never_answer);
    boost::asio::io_context io;
    auto opts = integration_otlp::options_for(rx.port());
    opts.timeout = 300ms;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(), opts);
    seckill::obs::tracer tracer(exporter);
    tracer.start_span("a").end();
    auto done = exporter.async_flush(boost::asio::use_future);
    io.run();
    CHECK(done.get() == seckill::errc::timed_out);

    opts.timeout = 10s;
    seckill::obs::otlp_http_exporter slow(io.get_executor(), opts);
    seckill::obs::tracer tracer2(slow);
    tracer2.start_span("b").end();
    boost::asio::cancellation_signal cancel;
    std::error_code result;
    bool completed = false;
    slow.async_flush(boost::asio::bind_cancellation_slot(cancel.slot(), [&](std::error_code ec) {
      result = ec;
      completed = true;
    }));
    io.restart();
    io.run_for(100ms);
    CHECK_FALSE(completed);
    cancel.emit(boost::asio::cancellation_type::terminal);
    io.run_for(2s);
    CHECK(completed);
    CHECK(result == seckill::errc::operation_aborted);
    CHECK(slow.dropped() == 1);
  }

  TEST_CASE("OTLP exporter: async_flush completes through a callback use_awaitable and deferred") {
    integration_otlp::receiver rx;
    boost::asio::io_context io;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(),
                                              integration_otlp::options_for(rx.port()));
    seckill::obs::tracer tracer(exporter);
    tracer.start_span("by-callback").end();
    std::error_code by_callback = seckill::errc::not_connected;
    exporter.async_flush([&](std::error_code ec) { by_callback = ec; });
    io.run();
    CHECK_FALSE(by_callback);
    CHECK(exporter.exported() == 1);

    tracer.start_span("by-awaitable").end();
    std::error_code awaited = seckill::errc::not_connected;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          awaited = co_await exporter.async_flush(boost::asio::use_awaitable);
        },
        boost::asio::detached);
    io.restart();
    io.run();
    CHECK_FALSE(awaited);
    CHECK(exporter.exported() == 2);

    tracer.start_span("by-deferred").end();
    auto later = exporter.async_flush(boost::asio::deferred);
    io.restart();
    io.run();
    CHECK(exporter.queued() == 1);  // not launched: nothing sent
    std::error_code deferred_result = seckill::errc::not_connected;
    std::move(later)([&](std::error_code ec) { deferred_result = ec; });
    io.restart();
    io.run();
    CHECK_FALSE(deferred_result);
    CHECK(exporter.exported() == 3);
    CHECK(rx.bodies().size() == 3);
  }

  TEST_CASE(
      "OTLP exporter: after a cancelled flush the spans queued meanwhile stay for the next flush") {
    integration_otlp::receiver rx(integration_otlp::receiver::mode::never_answer);
    boost::asio::io_context io;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(),
                                              integration_otlp::options_for(rx.port()));
    seckill::obs::tracer tracer(exporter);
    tracer.start_span("lost").end();
    boost::asio::cancellation_signal cancel;
    std::error_code result;
    exporter.async_flush(boost::asio::bind_cancellation_slot(
        cancel.slot(), [&](std::error_code ec) { result = ec; }));
    io.run_for(100ms);
    tracer.start_span("kept").end();
    cancel.emit(boost::asio::cancellation_type::terminal);
    io.run_for(1s);
    CHECK(result == seckill::errc::operation_aborted);
    CHECK(exporter.dropped() == 1);
    CHECK(exporter.queued() == 1);
  }

  TEST_CASE("OTLP exporter: a full queue drops and counts") {
    boost::asio::io_context io;
    auto opts = integration_otlp::options_for(1);
    opts.max_queue = 2;
    seckill::obs::otlp_http_exporter exporter(io.get_executor(), opts);
    seckill::obs::tracer tracer(exporter);
    for (int i = 0; i < 5; ++i) tracer.start_span("s").end();
    CHECK(exporter.queued() == 2);
    CHECK(exporter.dropped() == 3);
    opts.max_batch = 0;
    CHECK_THROWS_AS(seckill::obs::otlp_http_exporter(io.get_executor(), opts), seckill::error);
  }
}
