// The native-messaging frame codec and the extension protocol's message
// checks: every malformed input gets a clear error and reads nothing past
// the buffer.
#include <seckill/browser/native_messaging.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace {

namespace nm = seckill::browser::native_messaging;

std::string header_of(std::uint32_t n) {
  std::string h(4, '\0');
  std::memcpy(h.data(), &n, 4);
  return h;
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("native messaging frames round-trip in native byte order") {
    std::string out;
    REQUIRE(!nm::encode_frame(R"({"v":1,"id":7})", nm::to_browser_limit, out));
    CHECK(out.size() == 4 + 14);
    CHECK(out.substr(0, 4) == header_of(14));
    const auto f = nm::decode_frame(out, nm::to_host_limit);
    CHECK(!f.error);
    CHECK(f.complete);
    CHECK(f.consumed == out.size());
    CHECK(f.body == R"({"v":1,"id":7})");
  }

  TEST_CASE("two frames in one buffer decode one after the other") {
    std::string out;
    REQUIRE(!nm::encode_frame("{}", 10, out));
    REQUIRE(!nm::encode_frame("[1]", 10, out));
    auto f = nm::decode_frame(out, 10);
    REQUIRE(f.complete);
    CHECK(f.body == "{}");
    f = nm::decode_frame(std::string_view(out).substr(f.consumed), 10);
    REQUIRE(f.complete);
    CHECK(f.body == "[1]");
  }

  TEST_CASE("a short header or a short body is incomplete - not an error") {
    for (std::size_t n = 0; n < 4; ++n) {
      const auto f = nm::decode_frame(std::string(n, '\x01'), 100);
      CHECK(!f.error);
      CHECK(!f.complete);
    }
    const std::string partial = header_of(5) + "abc";
    const auto f = nm::decode_frame(partial, 100);
    CHECK(!f.error);
    CHECK(!f.complete);
    CHECK(f.consumed == 0);
  }

  TEST_CASE("an empty body is a complete frame whose JSON is refused") {
    const std::string empty = header_of(0);
    const auto f = nm::decode_frame(empty, 100);
    REQUIRE(f.complete);
    CHECK(f.body.empty());
    const auto m = nm::parse_message(f.body);
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("not JSON") != std::string::npos);
  }

  TEST_CASE("an oversize length is message_too_large before any body arrives") {
    const std::string big = header_of(static_cast<std::uint32_t>(nm::to_browser_limit + 1));
    const auto f = nm::decode_frame(big, nm::to_browser_limit);
    CHECK(f.error == seckill::errc::message_too_large);
    CHECK(!f.complete);
    const std::string huge = header_of(0xffffffffU);
    CHECK(nm::decode_frame(huge, nm::to_host_limit).error == seckill::errc::message_too_large);
    // exactly at the limit is fine
    const std::string at = header_of(3) + "abc";
    CHECK(nm::decode_frame(at, 3).complete);
  }

  TEST_CASE("encoding above the limit is refused and writes nothing") {
    std::string out = "x";
    CHECK(nm::encode_frame(std::string(11, 'a'), 10, out) == seckill::errc::message_too_large);
    CHECK(out == "x");
  }

  TEST_CASE("messages that are not JSON objects of version 1 are refused with what was seen") {
    auto m = nm::parse_message("{\"v\":1,");
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("not JSON") != std::string::npos);
    m = nm::parse_message("[1,2]");
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("array") != std::string::npos);
    m = nm::parse_message(R"({"v":2,"id":1})");
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("version 2") != std::string::npos);
    m = nm::parse_message(R"({"id":1})");
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("(none)") != std::string::npos);
    m = nm::parse_message(R"({"v":"1"})");
    CHECK(m.error == seckill::errc::protocol_error);
    m = nm::parse_message(R"({"v":1,"id":3,"ok":true,"result":null})");
    CHECK(!m.error);
    CHECK(m.value["id"] == 3);
  }

  TEST_CASE("a bad message's problem never quotes its body") {
    const auto m = nm::parse_message(R"({"v":1,"cookie":"secret-token-123")");
    CHECK(m.error == seckill::errc::protocol_error);
    CHECK(m.problem.find("secret") == std::string::npos);
  }

  TEST_CASE("error codes map to errc both ways") {
    using be = seckill::browser::errc;
    CHECK(nm::error_from_code("element_not_found") == be::element_not_found);
    CHECK(nm::error_from_code("element_not_actionable") == be::element_not_actionable);
    CHECK(nm::error_from_code("browser_closed") == be::browser_closed);
    CHECK(nm::error_from_code("timed_out") == seckill::errc::timed_out);
    CHECK(nm::error_from_code("what") == seckill::errc::protocol_error);
    for (std::string_view c : {"browser_closed", "javascript_exception", "navigation_failed",
                               "element_not_found", "element_not_actionable", "not_logged_in",
                               "timed_out", "invalid_argument", "operation_aborted"}) {
      CHECK(nm::code_of(nm::error_from_code(c)) == c);
    }
  }

  TEST_CASE("random bytes never decode past the buffer") {
    std::mt19937 gen(42);
    std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
    for (int i = 0; i < 2000; ++i) {
      std::string buf(static_cast<std::size_t>(len(gen)), '\0');
      for (auto& c : buf) c = static_cast<char>(byte(gen));
      if (i % 3 == 0 && buf.size() >= 4) {  // plausible lengths too
        const auto n = static_cast<std::uint32_t>(len(gen));
        std::memcpy(buf.data(), &n, 4);
      }
      const auto f = nm::decode_frame(buf, 32);
      if (f.complete) {
        CHECK(f.consumed <= buf.size());
        CHECK(f.body.data() + f.body.size() <= buf.data() + buf.size());
        (void)nm::parse_message(f.body);
      }
    }
  }
}

#include <seckill/browser/chromium.hpp>

#include <algorithm>

TEST_SUITE("unit") {
  TEST_CASE("chromium_arguments loads the given extensions instead of disabling extensions") {
    seckill::browser::chromium_options opts;
    auto args = seckill::browser::chromium_arguments(opts, "/tmp/p", false);
    const auto has = [&](const std::string& a) {
      return std::find(args.begin(), args.end(), a) != args.end();
    };
    CHECK(has("--disable-extensions"));
    opts.extensions = {"/opt/a", "/opt/b"};
    args = seckill::browser::chromium_arguments(opts, "/tmp/p", false);
    CHECK_FALSE(has("--disable-extensions"));
    CHECK(has("--load-extension=/opt/a,/opt/b"));
  }
}
