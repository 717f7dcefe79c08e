// Parsers of the DevTools endpoint (ws:// URLs, DevToolsActivePort, the log
// line) and of the frames that come over it, with the decoders the page applies.
#include <seckill/browser/cdp.hpp>
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/detail/base64.hpp>
#include <seckill/url.hpp>

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>

TEST_SUITE("unit") {
  TEST_CASE("parse_ws_url splits host - port and path") {
    const auto ep = seckill::browser::cdp::parse_ws_url("ws://127.0.0.1:9222/devtools/browser/abc");
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.port == "9222");
    CHECK(ep.target == "/devtools/browser/abc");
    CHECK(seckill::browser::cdp::parse_ws_url("ws://localhost:1").target == "/");
  }

  TEST_CASE("DevTools ws and http URLs are read with their port - IPv6 host - path and query") {
    using seckill::browser::cdp::parse_ws_url;
    using seckill::browser::detail::parse_http_url;
    struct good {
      std::string url, host, port, target, host_header;
    };
    for (const auto& g : {
             good{"ws://127.0.0.1:9222/devtools/browser/abc", "127.0.0.1", "9222",
                  "/devtools/browser/abc", "127.0.0.1:9222"},
             good{"ws://localhost:1", "localhost", "1", "/", "localhost:1"},
             good{"ws://127.0.0.1/devtools/page/F00", "127.0.0.1", "80", "/devtools/page/F00",
                  "127.0.0.1:80"},
             good{"ws://[::1]:9222/devtools/browser/abc", "::1", "9222", "/devtools/browser/abc",
                  "[::1]:9222"},
             good{"ws://[::1]/x", "::1", "80", "/x", "[::1]:80"},
             good{"ws://[::ffff:127.0.0.1]:65535/", "::ffff:127.0.0.1", "65535", "/",
                  "[::ffff:127.0.0.1]:65535"},
             good{"ws://localhost:3000?token=abc", "localhost", "3000", "/?token=abc",
                  "localhost:3000"},
             good{"ws://chrome.internal:9222/a/b?x=1&y=2", "chrome.internal", "9222",
                  "/a/b?x=1&y=2", "chrome.internal:9222"},
             good{"WS://Chrome-1:9222/a%20b", "Chrome-1", "9222", "/a%20b", "Chrome-1:9222"},
         }) {
      CAPTURE(g.url);
      std::error_code ec;
      std::string message;
      const auto ep = parse_ws_url(g.url, ec, &message);
      REQUIRE_MESSAGE(!ec, message);
      CHECK(message.empty());
      CHECK(ep.host == g.host);
      CHECK(ep.port == g.port);
      CHECK(ep.target == g.target);
      CHECK(ep.host_header() == g.host_header);
      CHECK(parse_ws_url(g.url).target == g.target);  // the throwing overload agrees
    }
    for (const auto& g : {
             good{"http://127.0.0.1:9222", "127.0.0.1", "9222", "/", "127.0.0.1:9222"},
             good{"http://127.0.0.1", "127.0.0.1", "80", "/", "127.0.0.1:80"},
             good{"http://[::1]:9222/json/version", "::1", "9222", "/json/version", "[::1]:9222"},
             good{"HTTP://localhost:9222/?a=b#top", "localhost", "9222", "/?a=b", "localhost:9222"},
         }) {
      CAPTURE(g.url);
      std::error_code ec;
      std::string message;
      const auto ep = parse_http_url(g.url, ec, &message);
      REQUIRE_MESSAGE(!ec, message);
      CHECK(ep.host == g.host);
      CHECK(ep.port == g.port);
      CHECK(ep.target == g.target);
      CHECK(ep.host_header() == g.host_header);
    }
  }

  TEST_CASE("parse_ws_url and parse_http_url say what is wrong with a URL they cannot use") {
    using seckill::browser::cdp::parse_ws_url;
    using seckill::browser::detail::parse_http_url;
    const std::string ws_form =
        "expected ws://host[:port]/path, as in ws://127.0.0.1:9222/devtools/browser/<id>";
    const std::string http_form = "expected http://host[:port], as in http://127.0.0.1:9222";
    struct bad {
      std::string url, message;
    };
    for (const auto& b : {
             bad{"wss://127.0.0.1:9222/devtools/browser/abc",
                 "TLS not supported (wss://); use ws://"},
             bad{"WSS://[::1/x", "TLS not supported (wss://); use ws://"},
             bad{"http://127.0.0.1:9222/x", "unsupported scheme 'http'; " + ws_form},
             bad{"", ws_form},
             bad{"garbage", ws_form},
             bad{"127.0.0.1:9222", ws_form},
             bad{"ws:/devtools/browser/abc", ws_form},
             bad{"ws://:9222/x", "no host; " + ws_form},
             bad{"ws:///devtools/browser/abc", "no host; " + ws_form},
             bad{"ws://h:0/x", "port '0' is not a number in [1, 65535]"},
             bad{"ws://h:65536/x", "port '65536' is not a number in [1, 65535]"},
             bad{"ws://h:99999999999999999999/x",
                 "port '99999999999999999999' is not a number in [1, 65535]"},
             bad{"ws://h:abc/x", "port 'abc' is not a number in [1, 65535]"},
             bad{"ws://h:92a2/x", "port '92a2' is not a number in [1, 65535]"},
             bad{"ws://h:1:2/x", "port '1:2' is not a number in [1, 65535]"},
             bad{"ws://h:/x", "empty port after ':'"},
             bad{"ws://::1:9222/x",
                 "an IPv6 address must be written in brackets, as in ws://[::1]:9222/"},
             bad{"ws://[::1/x", "unterminated '[' in the host (an IPv6 address is written [::1])"},
             bad{"ws://[v1.x]:9222/", "IPvFuture addresses are not supported"},
             bad{"ws://h%0A:9222/", "host 'h%0A' is not a host name or an IP address"},
             bad{"ws://a b:9222/", "not a valid URL (RFC 3986); " + ws_form},
             bad{"ws://h:9222/x#frag", "a fragment ('#...') is not allowed; " + ws_form},
             bad{"ws://alice@h:9222/x", "user info ('...@') is not supported; " + ws_form},
         }) {
      CAPTURE(b.url);
      std::error_code ec;
      std::string message;
      const auto ep = parse_ws_url(b.url, ec, &message);
      CHECK(ec == seckill::errc::invalid_argument);
      CHECK(ep.host.empty());
      const std::string whole =
          "bad DevTools WebSocket URL '" + seckill::redact_url(b.url) + "': " + b.message;
      CHECK(message == whole);
      CHECK_THROWS_WITH_AS(parse_ws_url(b.url), doctest::Contains(whole.c_str()), seckill::error);
      try {
        (void)parse_ws_url(b.url);
      } catch (const seckill::error& e) {
        CHECK(e.code() == seckill::errc::invalid_argument);
      }
    }
    for (const auto& b : {
             bad{"https://127.0.0.1:9222", "TLS not supported (https://); use http://"},
             bad{"ws://127.0.0.1:9222/x", "unsupported scheme 'ws'; " + http_form},
             bad{"http://:9222", "no host; " + http_form},
             bad{"http://127.0.0.1:0", "port '0' is not a number in [1, 65535]"},
             bad{"http://127.0.0.1:65536", "port '65536' is not a number in [1, 65535]"},
             bad{"http://127.0.0.1:abc", "port 'abc' is not a number in [1, 65535]"},
             bad{"http:/127.0.0.1:9222", http_form},
             bad{"http://[::1:9222",
                 "unterminated '[' in the host (an IPv6 address is written [::1])"},
         }) {
      CAPTURE(b.url);
      std::error_code ec;
      std::string message;
      (void)parse_http_url(b.url, ec, &message);
      CHECK(ec == seckill::errc::invalid_argument);
      CHECK(message == "bad browser URL '" + seckill::redact_url(b.url) + "': " + b.message);
    }
  }

  TEST_CASE("a token in a DevTools URL never shows in the error about it") {
    using seckill::browser::cdp::parse_ws_url;
    using seckill::browser::detail::parse_http_url;
    const std::string token = "s3cr3t-t0k3n";
    for (const std::string& url : {
             "wss://127.0.0.1:9222/devtools/browser/abc?token=" + token,
             "ws://127.0.0.1:0/devtools/browser/abc?token=" + token,
             "ws://127.0.0.1:abc/?token=" + token,
             "ws://:9222/?apikey=" + token,
             "ws://h:9222/x?token=" + token + "#frag",
             "ws://user:" + token + "@127.0.0.1:9222/x",
             "ws://" + token + "@127.0.0.1:9222/x",
             "ws://user:" + token + "@[::1/x",
             "ftp://127.0.0.1/?token=" + token,
         }) {
      CAPTURE(url);
      std::error_code ec;
      std::string message;
      (void)parse_ws_url(url, ec, &message);
      CHECK(ec == seckill::errc::invalid_argument);
      CHECK(message.find(token) == std::string::npos);
      CHECK(message.find("***") != std::string::npos);
      try {
        (void)parse_ws_url(url);
        FAIL("no exception");
      } catch (const seckill::error& e) {
        CHECK(std::string(e.what()).find(token) == std::string::npos);
      }
    }
    for (const std::string& url :
         {"https://127.0.0.1:9222/?token=" + token, "http://u:" + token + "@127.0.0.1:9222",
          "http://127.0.0.1:0/?access_token=" + token}) {
      CAPTURE(url);
      std::error_code ec;
      std::string message;
      (void)parse_http_url(url, ec, &message);
      CHECK(ec == seckill::errc::invalid_argument);
      CHECK(message.find(token) == std::string::npos);
    }
    // chromium::connect refuses these before it opens any socket.
    boost::asio::io_context io;
    for (const std::string& url :
         {"wss://127.0.0.1:9222/devtools/browser/abc?token=" + token,
          "https://127.0.0.1:9222/?token=" + token, "ftp://127.0.0.1/?token=" + token,
          "ws://127.0.0.1:65536/x?token=" + token, "127.0.0.1:9222?token=" + token}) {
      CAPTURE(url);
      try {
        (void)seckill::browser::chromium::connect(io.get_executor(), url);
        FAIL("no exception");
      } catch (const seckill::error& e) {
        CHECK(e.code() == seckill::errc::invalid_argument);
        const std::string what = e.what();
        CHECK_MESSAGE(what.find(token) == std::string::npos, what);
        CHECK_MESSAGE(what.find("bad ") != std::string::npos, what);
      }
    }
    CHECK_THROWS_WITH_AS(
        seckill::browser::chromium::connect(io.get_executor(), "ftp://127.0.0.1/"),
        doctest::Contains("bad browser URL 'ftp://127.0.0.1/': unsupported scheme 'ftp'; expected "
                          "ws://host[:port]/path or http://host[:port]"),
        seckill::error);
    CHECK_THROWS_WITH_AS(
        seckill::browser::chromium::connect(io.get_executor(), "https://127.0.0.1:9222"),
        doctest::Contains("TLS not supported (https://)"), seckill::error);
    CHECK_THROWS_WITH_AS(
        seckill::browser::chromium::connect(io.get_executor(), "wss://127.0.0.1:9222/x"),
        doctest::Contains("TLS not supported (wss://)"), seckill::error);
  }

  TEST_CASE("DevToolsActivePort and the 'DevTools listening on' line give the endpoint") {
    using seckill::browser::detail::endpoint_from_active_port;
    using seckill::browser::detail::endpoint_from_log;
    CHECK(endpoint_from_active_port("40941\n/devtools/browser/2d0c\n") ==
          "ws://127.0.0.1:40941/devtools/browser/2d0c");
    CHECK(endpoint_from_active_port("40941\n/devtools/browser/2d0c") ==
          "ws://127.0.0.1:40941/devtools/browser/2d0c");
    CHECK(endpoint_from_active_port("").empty());
    CHECK(endpoint_from_active_port("40941\n").empty());  // half written
    CHECK(endpoint_from_active_port("4a941\n/devtools/x\n").empty());
    CHECK(endpoint_from_active_port("\n/devtools/x\n").empty());
    CHECK(endpoint_from_log("[1:2:ERROR:bus.cc] noise\n\nDevTools listening on "
                            "ws://127.0.0.1:5/devtools/browser/q\n") ==
          "ws://127.0.0.1:5/devtools/browser/q");
    CHECK(endpoint_from_log("DevTools listening on ws://127.0.0.1:5/devtools/brow")
              .empty());  // line incomplete
    CHECK(endpoint_from_log("nothing here\n").empty());
  }

  TEST_CASE("chromium_arguments carries the flags a sandbox-less root machine needs") {
    seckill::browser::chromium_options opts;
    opts.extra_args = {"--window-size=800,600"};
    const auto args = seckill::browser::chromium_arguments(opts, "/tmp/p", false);
    auto has = [&](const std::string& a) {
      return std::find(args.begin(), args.end(), a) != args.end();
    };
    CHECK(args.front() == "/usr/bin/chromium");
    for (const char* flag :
         {"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--disable-background-networking", "--disable-component-update", "--no-first-run",
          "--remote-debugging-port=0", "--user-data-dir=/tmp/p", "--window-size=800,600"}) {
      CHECK_MESSAGE(has(flag), flag);
    }
    opts.headless = false;
    const auto windowed = seckill::browser::chromium_arguments(opts, "/tmp/p", false);
    CHECK(std::find(windowed.begin(), windowed.end(), std::string("--headless")) == windowed.end());
  }

  TEST_CASE("parse_message routes replies - error replies and events with their session") {
    using seckill::browser::cdp::message;
    using seckill::browser::cdp::parse_message;
    using json = nlohmann::json;
    const auto ok = parse_message(R"({"id":12,"result":{"frameId":"F"},"sessionId":"S1"})");
    CHECK(ok.what == message::kind::reply);
    CHECK(ok.id == 12);
    CHECK_FALSE(ok.ec);
    CHECK(ok.value == json{{"frameId", "F"}});
    CHECK(ok.session_id == "S1");
    CHECK(ok.error.empty());

    const auto err =
        parse_message(R"({"id":3,"error":{"code":-32601,"message":"'X.y' wasn't found"}})");
    CHECK(err.what == message::kind::reply);
    CHECK(err.ec == seckill::browser::errc::cdp_error);
    CHECK(err.value["code"] == -32601);
    CHECK(err.value["message"] == "'X.y' wasn't found");
    CHECK(err.error.empty());

    const auto ev = parse_message(
        R"({"method":"Runtime.exceptionThrown","params":{"timestamp":1.5,"exceptionDetails":{"exceptionId":2,)"
        R"("text":"Uncaught","lineNumber":12,"columnNumber":9}},"sessionId":"S2"})");
    CHECK(ev.what == message::kind::event);
    CHECK(ev.method == "Runtime.exceptionThrown");
    CHECK(ev.session_id == "S2");
    CHECK(ev.value["exceptionDetails"]["lineNumber"] == 12);

    const auto bare = parse_message(R"({"method":"Page.frameResized"})");
    CHECK(bare.what == message::kind::event);
    CHECK(bare.value == json::object());
    CHECK(bare.session_id.empty());
  }

  TEST_CASE("parse_message names what is wrong with a frame it cannot route") {
    using seckill::browser::cdp::message;
    using seckill::browser::cdp::parse_message;
    struct bad {
      std::string frame;
      std::string says;
    };
    const std::string deep = std::string(600, '[') + std::string(600, ']');
    for (const auto& b :
         {bad{"", "empty DevTools frame"}, bad{"{\"method\":", "not JSON: '{\"method\":'"},
          bad{"hello", "not JSON: 'hello'"}, bad{R"([{"id":1}])", "is a JSON array, not an object"},
          bad{"42", "is a JSON number, not an object"},
          bad{R"({"id":"1","result":{}})", "reply id is not a positive integer"},
          bad{R"({"id":-4,"result":{}})", "reply id is not a positive integer"},
          bad{R"({"id":0,"result":{}})", "reply id is not a positive integer"},
          bad{R"({"id":1.5,"result":{}})", "reply id is not a positive integer"},
          bad{R"({"method":"Page.x","sessionId":7})", "sessionId is a number, not a string"},
          bad{R"({"params":{}})", "neither a reply (id) nor an event (method)"},
          bad{R"({"method":""})", "neither a reply (id) nor an event (method)"},
          bad{R"({"method":["Page.x"]})", "neither a reply (id) nor an event (method)"},
          bad{R"({"method":"Page.x","params":[1]})",
              "event Page.x's params is a array, not an object"},
          bad{deep, "nested 600 deep (limit 512)"}}) {
      CAPTURE(b.frame);
      const message m = parse_message(b.frame);
      CHECK(m.what == message::kind::invalid);
      CHECK(m.ec == seckill::errc::protocol_error);
      CHECK_MESSAGE(m.error.find(b.says) != std::string::npos, m.error);
    }
    // Control bytes and long frames are not copied whole into the message.
    const message m = parse_message(std::string("\x01\x02") + std::string(500, 'x'));
    CHECK(m.error.find("'??xxx") != std::string::npos);
    CHECK(m.error.find("...") != std::string::npos);
    CHECK(m.error.size() < 150);
  }

  TEST_CASE("a malformed reply still completes its call - with a protocol error that says why") {
    using seckill::browser::cdp::message;
    using seckill::browser::cdp::parse_message;
    using json = nlohmann::json;
    struct bad {
      std::string frame;
      std::uint64_t id;
      std::string says;
    };
    for (const auto& b :
         {bad{R"({"id":5,"result":{},"error":{"code":1,"message":"m"}})", 5,
              "reply 5 has both result and error"},
          bad{R"({"id":6,"error":"boom"})", 6,
              "reply 6's error is not {code: integer, message: string}"},
          bad{R"({"id":6,"error":{"message":"no code"}})", 6,
              "reply 6's error is not {code: integer"},
          bad{R"({"id":6,"error":{"code":"1","message":"m"}})", 6,
              "reply 6's error is not {code: integer"},
          bad{R"({"id":6,"error":{"code":1}})", 6,
              "reply 6's error is not {code: integer, message: string}"},
          bad{R"({"id":8,"result":[1,2]})", 8, "reply 8's result is a array, not an object"},
          bad{R"({"id":9})", 9, "reply 9 has neither result nor error"},
          bad{R"({"id":1,"result":{},"sessionId":7})", 1,
              "reply 1: DevTools frame's sessionId is a number"},
          bad{R"({"id":10,"result":{"result":{"type":"string","value":"\ud800"}}})", 10,
              "reply 10 is not JSON"},
          bad{R"({"id":11})"
              "\xff",
              11, "reply 11 is not JSON"}}) {
      CAPTURE(b.frame);
      const message m = parse_message(b.frame);
      CHECK(m.what == message::kind::reply);
      CHECK(m.id == b.id);
      CHECK(m.ec == seckill::errc::protocol_error);
      CHECK_MESSAGE(m.error.find(b.says) != std::string::npos, m.error);
      CHECK(m.value == json{{"message", m.error}});
    }
    // Only a frame that starts like a reply is taken for one.
    CHECK(parse_message(R"( {"id":10,"result":"\ud800"})").what == message::kind::invalid);
    CHECK(parse_message(R"({"id":1x,)").what == message::kind::invalid);
    CHECK(parse_message(R"({"id":99999999999999999999999,)").what == message::kind::invalid);
  }

  TEST_CASE("the page's decoders read what Runtime sends and ignore what it does not") {
    namespace d = seckill::browser::detail;
    using json = nlohmann::json;
    // Runtime.evaluate: a value, undefined, a throw, and replies without a RemoteObject.
    auto [e1, v1] = d::evaluation_result(json::parse(R"({"result":{"type":"number","value":2}})"));
    CHECK_FALSE(e1);
    CHECK(v1 == 2);
    auto [e2, v2] = d::evaluation_result(json::parse(R"({"result":{"type":"undefined"}})"));
    CHECK_FALSE(e2);
    CHECK(v2.is_null());
    auto [e3, v3] = d::evaluation_result(json::parse(
        R"({"result":{"type":"object","subtype":"error"},"exceptionDetails":{"text":"Uncaught","lineNumber":0}})"));
    CHECK(e3 == seckill::browser::errc::javascript_exception);
    CHECK(v3["text"] == "Uncaught");
    for (const char* bad : {R"({})", R"({"result":3})", R"({"exceptionDetails":"x"})", "[]"}) {
      CAPTURE(bad);
      auto [e, v] = d::evaluation_result(json::parse(bad));
      CHECK(e == seckill::errc::protocol_error);
      CHECK(v["message"].get<std::string>().find("Runtime.evaluate") != std::string::npos);
    }

    // Runtime.bindingCalled: the observer's report, or nothing.
    const auto r = d::binding_report(
        json{{"name", "w_report"},
             {"payload", R"({"id":3,"present":true,"text":"In stock","initial":true})"}},
        "w_report");
    REQUIRE(r.has_value());
    CHECK(r->first == 3);
    CHECK(r->second.present);
    CHECK(r->second.text == "In stock");
    CHECK(r->second.initial);
    CHECK_FALSE(d::binding_report(json{{"name", "other"}, {"payload", R"({"id":3})"}}, "w_report"));
    CHECK_FALSE(d::binding_report(json{{"name", "w_report"}, {"payload", "not json"}}, "w_report"));
    CHECK_FALSE(
        d::binding_report(json{{"name", "w_report"}, {"payload", R"({"id":"3"})"}}, "w_report"));
    CHECK_FALSE(d::binding_report(json{{"name", 1}, {"payload", 2}}, "w_report"));
    const auto odd = d::binding_report(
        json{{"name", "w_report"}, {"payload", R"({"id":4,"present":"yes","text":5})"}},
        "w_report");
    REQUIRE(odd.has_value());
    CHECK_FALSE(odd->second.present);
    CHECK(odd->second.text.empty());

    // Runtime.executionContextCreated: the isolated world of the main frame only.
    const json ctx = json::parse(R"({"context":{"id":4,"name":"w","auxData":{"frameId":"F"}}})");
    CHECK(d::created_context(ctx, "w", "F") == 4);
    CHECK(d::created_context(ctx, "w", "G") == 0);
    CHECK(d::created_context(ctx, "v", "F") == 0);
    CHECK(d::created_context(
              json::parse(R"({"context":{"id":"4","name":"w","auxData":{"frameId":"F"}}})"), "w",
              "F") == 0);
    CHECK(d::created_context(json::parse(R"({"context":[]})"), "w", "F") == 0);
    CHECK(d::created_context(json::object(), "w", "F") == 0);
    CHECK(d::int_member(json{{"executionContextId", "x"}}, "executionContextId", -1) == -1);
    CHECK(d::int_member(json{{"executionContextId", 18446744073709551615ull}}, "executionContextId",
                        -1) == -1);

    // The page's own world: the frame's default context, whatever its name.
    const json main_ctx =
        json::parse(R"({"context":{"id":3,"name":"","auxData":{"frameId":"F","isDefault":true}}})");
    CHECK(d::created_context(main_ctx, "", "F") == 3);
    CHECK(d::created_context(main_ctx, "w", "F") == 0);
    CHECK(d::created_context(ctx, "", "F") == 0);

    // Runtime.callFunctionOn's reply says which method replied when it is malformed.
    auto [ef, vf] = d::evaluation_result(json::array(), "Runtime.callFunctionOn");
    CHECK(ef == seckill::errc::protocol_error);
    CHECK(vf["message"].get<std::string>().find("Runtime.callFunctionOn") != std::string::npos);
  }

  TEST_CASE("a screenshot reply is decoded to PNG bytes - anything else is a protocol error") {
    namespace d = seckill::browser::detail;
    using json = nlohmann::json;
    const std::string png = std::string(d::png_signature) + "IHDR-and-the-rest";
    auto [ec, bytes] = d::screenshot_png(json{{"data", seckill::detail::base64_encode(png)}});
    CHECK_FALSE(ec);
    CHECK(bytes == png);
    for (const json& bad : {json::object(), json{{"data", 3}}, json{{"data", "not base64!"}},
                            json{{"data", seckill::detail::base64_encode("GIF89a, not a PNG")}},
                            json{{"data", ""}}, json::array()}) {
      CAPTURE(bad.dump());
      auto [e, b] = d::screenshot_png(bad);
      CHECK(e == seckill::errc::protocol_error);
      CHECK(b.empty());
    }
  }

  TEST_CASE("the actionability answer is read only when it has the expected shape") {
    namespace d = seckill::browser::detail;
    using json = nlohmann::json;
    d::actionability a;
    CHECK_FALSE(d::read_actionability(
        json::parse(R"({"state":"ok","x":10,"y":20.5,"width":4,"height":2})"), a));
    CHECK(a.state == "ok");
    CHECK(a.box.center_x == 10);
    CHECK(a.box.center_y == 20.5);
    CHECK(a.box.width == 4);
    CHECK_FALSE(d::read_actionability(json::parse(R"({"state":"covered","by":"div#overlay"})"), a));
    CHECK(a.state == "covered");
    for (const char* bad : {R"("ok")", R"(null)", R"({})", R"({"state":1})",
                            R"({"state":"ok","x":1,"y":2,"width":3})",
                            R"({"state":"ok","x":"1","y":2,"width":3,"height":4})"}) {
      CAPTURE(bad);
      CHECK(d::read_actionability(json::parse(bad), a) == seckill::errc::protocol_error);
    }
  }
}
