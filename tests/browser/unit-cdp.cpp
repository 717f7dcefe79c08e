// Parsers of the DevTools endpoint: ws:// URLs, DevToolsActivePort, the log line.
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/cdp.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>
#include <string>

TEST_SUITE("unit") {
  TEST_CASE("parse_ws_url splits host - port and path") {
    const auto ep = seckill::browser::cdp::parse_ws_url("ws://127.0.0.1:9222/devtools/browser/abc");
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.port == "9222");
    CHECK(ep.target == "/devtools/browser/abc");
    CHECK(seckill::browser::cdp::parse_ws_url("ws://localhost:1").target == "/");
  }

  TEST_CASE("parse_ws_url rejects what is not a ws://host:port URL") {
    using seckill::browser::cdp::parse_ws_url;
    CHECK_THROWS_WITH_AS(parse_ws_url("http://127.0.0.1:9222/x"), doctest::Contains("'http://127.0.0.1:9222/x'"),
                         seckill::error);
    CHECK_THROWS_WITH_AS(parse_ws_url("ws://127.0.0.1/x"), doctest::Contains("host:port"), seckill::error);
    CHECK_THROWS_WITH_AS(parse_ws_url("ws://:9222/x"), doctest::Contains("host:port"), seckill::error);
    CHECK_THROWS_WITH_AS(parse_ws_url("ws://h:92a2/x"), doctest::Contains("not a number"), seckill::error);
    CHECK_THROWS_AS(parse_ws_url(""), seckill::error);
  }

  TEST_CASE("DevToolsActivePort and the 'DevTools listening on' line give the endpoint") {
    using seckill::browser::detail::endpoint_from_active_port;
    using seckill::browser::detail::endpoint_from_log;
    CHECK(endpoint_from_active_port("40941\n/devtools/browser/2d0c\n") == "ws://127.0.0.1:40941/devtools/browser/2d0c");
    CHECK(endpoint_from_active_port("40941\n/devtools/browser/2d0c") == "ws://127.0.0.1:40941/devtools/browser/2d0c");
    CHECK(endpoint_from_active_port("").empty());
    CHECK(endpoint_from_active_port("40941\n").empty());  // half written
    CHECK(endpoint_from_active_port("4a941\n/devtools/x\n").empty());
    CHECK(endpoint_from_active_port("\n/devtools/x\n").empty());
    CHECK(endpoint_from_log("[1:2:ERROR:bus.cc] noise\n\nDevTools listening on ws://127.0.0.1:5/devtools/browser/q\n") ==
          "ws://127.0.0.1:5/devtools/browser/q");
    CHECK(endpoint_from_log("DevTools listening on ws://127.0.0.1:5/devtools/brow").empty());  // line incomplete
    CHECK(endpoint_from_log("nothing here\n").empty());
  }

  TEST_CASE("chromium_arguments carries the flags a sandboxed root machine needs") {
    seckill::browser::chromium_options opts;
    opts.extra_args = {"--window-size=800,600"};
    const auto args = seckill::browser::chromium_arguments(opts, "/tmp/p");
    auto has = [&](const std::string& a) { return std::find(args.begin(), args.end(), a) != args.end(); };
    CHECK(args.front() == "/usr/bin/chromium");
    for (const char* flag : {"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--disable-background-networking", "--disable-component-update", "--no-first-run",
                             "--remote-debugging-port=0", "--user-data-dir=/tmp/p", "--window-size=800,600"}) {
      CHECK_MESSAGE(has(flag), flag);
    }
    opts.headless = false;
    const auto windowed = seckill::browser::chromium_arguments(opts, "/tmp/p");
    CHECK(std::find(windowed.begin(), windowed.end(), std::string("--headless")) == windowed.end());
  }
}
