#include <seckill/clock.hpp>
#include <seckill/obs/trace.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <set>
#include <string>

using seckill::obs::parse_traceparent;
using seckill::obs::traceparent_fault;

namespace unit_trace {

constexpr const char* valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

traceparent_fault fault_of(std::string_view s) {
  traceparent_fault f{};
  const auto ctx = parse_traceparent(s, f);
  CHECK(ctx.has_value() == (f == traceparent_fault::none));
  return f;
}

}  // namespace unit_trace

TEST_SUITE("unit") {
  TEST_CASE("traceparent: a valid value parses and formats back") {
    traceparent_fault f{};
    const auto ctx = parse_traceparent(unit_trace::valid, f);
    REQUIRE(ctx.has_value());
    CHECK(f == traceparent_fault::none);
    CHECK(ctx->version == 0);
    CHECK(seckill::obs::to_hex(ctx->trace) == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(seckill::obs::to_hex(ctx->span) == "00f067aa0ba902b7");
    CHECK(ctx->flags == 1);
    CHECK(ctx->sampled());
    CHECK(seckill::obs::format_traceparent(*ctx) == unit_trace::valid);
    const auto unsampled =
        parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    REQUIRE(unsampled);
    CHECK_FALSE(unsampled->sampled());
  }

  TEST_CASE("traceparent: every rejection with its reason") {
    using unit_trace::fault_of;
    CHECK(fault_of("") == traceparent_fault::bad_length);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0") ==
          traceparent_fault::bad_length);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-") ==
          traceparent_fault::bad_length);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ") ==
          traceparent_fault::bad_length);
    CHECK(fault_of("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
          traceparent_fault::version_ff);
    CHECK(fault_of("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01") ==
          traceparent_fault::uppercase_hex);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01") ==
          traceparent_fault::uppercase_hex);
    CHECK(fault_of("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
          traceparent_fault::uppercase_hex);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A") ==
          traceparent_fault::uppercase_hex);
    CHECK(fault_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01") ==
          traceparent_fault::zero_trace_id);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01") ==
          traceparent_fault::zero_parent_id);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01") ==
          traceparent_fault::not_hex);
    CHECK(fault_of("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
          traceparent_fault::not_hex);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz") ==
          traceparent_fault::not_hex);
    CHECK(fault_of("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
          traceparent_fault::bad_delimiter);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01") ==
          traceparent_fault::bad_delimiter);
    CHECK(fault_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01") ==
          traceparent_fault::bad_delimiter);
    // a later version may carry more fields, after a '-' only
    CHECK(fault_of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x") ==
          traceparent_fault::bad_delimiter);
    CHECK(
        fault_of("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds") ==
        traceparent_fault::none);
    CHECK(fault_of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09") ==
          traceparent_fault::none);
  }

  TEST_CASE("traceparent: a later version is parsed and sent back as version 00") {
    const auto ctx =
        parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-extra");
    REQUIRE(ctx);
    CHECK(ctx->version == 0xcc);
    CHECK(ctx->flags == 3);
    CHECK(seckill::obs::format_traceparent(*ctx) ==
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  }

  TEST_CASE("traceparent: the throwing parser names the fault and the value") {
    try {
      (void)seckill::obs::parse_traceparent_or_throw(
          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
      FAIL("no exception");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find("version ff") != std::string::npos);
      CHECK(std::string(e.what()).find("'ff-4bf9") != std::string::npos);
    }
  }

  TEST_CASE("tracer: root and child spans / times from the clock / attributes and status") {
    seckill::manual_clock clock;
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::basic_tracer<seckill::manual_clock> tracer(exporter, 1.0, clock);
    seckill::obs::trace_context root_ctx;
    {
      auto root = tracer.start_span("purchase", seckill::obs::span_kind::server);
      root_ctx = root.context();
      CHECK(root_ctx.valid());
      CHECK(root_ctx.sampled());
      clock.advance(std::chrono::milliseconds(3));
      {
        auto child = tracer.start_span("reserve", seckill::obs::span_kind::client, root.context());
        CHECK(child.context().trace == root_ctx.trace);
        CHECK(child.context().span != root_ctx.span);
        child.set_attribute("sku", "sku-1");
        child.set_attribute("qty", 2);
        child.set_attribute("qty", 3);  // replaces
        child.set_attribute("hot", true);
        child.set_status(seckill::obs::span_status::error, "sold out");
        clock.advance(std::chrono::milliseconds(2));
      }  // ends on destruction
      root.set_status(seckill::obs::span_status::ok, "ignored for ok");
      root.end();
      root.end();  // once only
    }
    const auto spans = exporter.take();
    REQUIRE(spans.size() == 2);
    const auto& child = spans[0];
    const auto& root = spans[1];
    CHECK(child.name == "reserve");
    REQUIRE(child.parent.has_value());
    CHECK(*child.parent == root_ctx.span);
    CHECK(child.end_unix_nanos - child.start_unix_nanos == 2'000'000);
    CHECK(child.start_unix_nanos == 1735689600'003'000'000ULL);
    REQUIRE(child.attributes.size() == 3);
    CHECK(std::get<std::int64_t>(child.attributes[1].second) == 3);
    CHECK(child.status == seckill::obs::span_status::error);
    CHECK(child.status_message == "sold out");
    CHECK_FALSE(root.parent.has_value());
    CHECK(root.status_message.empty());
    CHECK(root.end_unix_nanos - root.start_unix_nanos == 5'000'000);
  }

  TEST_CASE("tracer: a remote parent's trace id and sampled flag are kept") {
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::tracer tracer(exporter);
    const auto remote =
        parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    {
      auto s = tracer.start_span("handle", seckill::obs::span_kind::server, remote);
      CHECK(seckill::obs::to_hex(s.context().trace) == "4bf92f3577b34da6a3ce929d0e0e4736");
      CHECK_FALSE(s.context().sampled());
      CHECK_FALSE(s.recording());
    }
    CHECK(exporter.take().empty());  // not sampled upstream: nothing exported
  }

  TEST_CASE("tracer: sample ratio 0 exports nothing / ratio out of range throws") {
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::tracer never(exporter, 0.0);
    for (int i = 0; i < 100; ++i) {
      auto s = never.start_span("x");
      CHECK(s.context().valid());
    }
    CHECK(exporter.take().empty());
    CHECK_THROWS_AS(seckill::obs::tracer(exporter, 1.5), seckill::error);
    CHECK_THROWS_AS(seckill::obs::tracer(exporter, -0.1), seckill::error);
  }

  TEST_CASE("tracer: ids are distinct and never zero") {
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::tracer tracer(exporter);
    std::set<std::string> ids;
    for (int i = 0; i < 1000; ++i) {
      auto s = tracer.start_span("x");
      ids.insert(seckill::obs::to_hex(s.context().span));
      CHECK(s.context().valid());
    }
    CHECK(ids.size() == 1000);
  }

  TEST_CASE(
      "OTLP JSON: resource / scope / ids in hex / times as strings / kinds and statuses as "
      "numbers") {
    seckill::obs::span_data s;
    s.name = "purchase";
    s.context = *parse_traceparent(unit_trace::valid);
    s.parent = seckill::obs::span_id{1, 2, 3, 4, 5, 6, 7, 8};
    s.kind = seckill::obs::span_kind::server;
    s.start_unix_nanos = 1735689600000000001ULL;
    s.end_unix_nanos = 1735689600000000002ULL;
    s.attributes = {
        {"sku", std::string("s1")}, {"qty", std::int64_t{2}}, {"ok", true}, {"ratio", 0.5}};
    s.status = seckill::obs::span_status::error;
    s.status_message = "sold out";
    const auto j = seckill::obs::to_otlp_json({s}, "shop");
    const auto& rs = j.at("resourceSpans").at(0);
    CHECK(rs.at("resource").at("attributes").at(0).at("key") == "service.name");
    CHECK(rs.at("resource").at("attributes").at(0).at("value").at("stringValue") == "shop");
    const auto& ss = rs.at("scopeSpans").at(0);
    CHECK(ss.at("scope").at("name") == "seckill");
    const auto& sp = ss.at("spans").at(0);
    CHECK(sp.at("traceId") == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(sp.at("spanId") == "00f067aa0ba902b7");
    CHECK(sp.at("parentSpanId") == "0102030405060708");
    CHECK(sp.at("kind") == 2);
    CHECK(sp.at("startTimeUnixNano") == "1735689600000000001");
    CHECK(sp.at("endTimeUnixNano") == "1735689600000000002");
    CHECK(sp.at("attributes").at(1).at("value").at("intValue") == "2");
    CHECK(sp.at("attributes").at(2).at("value").at("boolValue") == true);
    CHECK(sp.at("attributes").at(3).at("value").at("doubleValue") == 0.5);
    CHECK(sp.at("status").at("code") == 2);
    CHECK(sp.at("status").at("message") == "sold out");
  }

  TEST_CASE("enum names are constexpr string_views") {
    static_assert(seckill::obs::to_string(seckill::obs::traceparent_fault::version_ff) ==
                  "version ff is invalid");
    static_assert(seckill::obs::to_string(seckill::obs::span_kind::server) == "server");
    static_assert(seckill::obs::to_string(seckill::obs::span_status::error) == "error");
    CHECK(seckill::obs::to_string(seckill::obs::traceparent_fault::none) == "valid");
  }
}
