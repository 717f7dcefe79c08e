#include <seckill/redis/connection.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/script.hpp>

#include "support/error_message.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <ostream>
#include <string>
#include <vector>

using seckill::errc;
using seckill::redis::backoff_delay;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::redis::max_config_duration;
using seckill::redis::parse_url;
using seckill::redis::redis_store;
using seckill::redis::request;
using seckill::redis::script;
using seckill::redis::validate;
using namespace std::chrono_literals;

TEST_SUITE("unit") {
  TEST_CASE("parse_url reads user password host port and database") {
    connection_config cfg;
    REQUIRE(!parse_url("redis://alice:s3cret@127.0.0.1:7000/3", cfg));
    CHECK(cfg.username == "alice");
    CHECK(cfg.password == "s3cret");
    CHECK(cfg.host == "127.0.0.1");
    CHECK(cfg.port == "7000");
    CHECK(cfg.database == 3);
    REQUIRE(!parse_url("redis://localhost", cfg));
    CHECK(cfg.host == "localhost");
    CHECK(cfg.port == "6379");
    CHECK(cfg.username.empty());
    CHECK(cfg.password.empty());
    CHECK(cfg.database == 0);
    REQUIRE(!parse_url("redis://:pw@h:1/", cfg));
    CHECK(cfg.username.empty());
    CHECK(cfg.password == "pw");
    CHECK(cfg.port == "1");
    REQUIRE(!parse_url("redis://u:p:with:colons@[::1]:6380", cfg));
    CHECK(cfg.password == "p:with:colons");
    CHECK(cfg.host == "::1");
    CHECK(cfg.port == "6380");
  }

  TEST_CASE("parse_url refuses malformed urls and says why") {
    for (const char* bad :
         {"http://h:1", "redis:/h", "redis://", "redis://h:", "redis://h:0", "redis://h:65536",
          "redis://h:12x", "redis://h:1/x", "redis://h:1/-1", "redis://u:@h:1", "redis://@h",
          "redis://[::1", "redis://[::1]x", "redis://:1"}) {
      CAPTURE(bad);
      connection_config cfg;
      cfg.host = "unchanged";
      std::string why;
      CHECK(parse_url(bad, cfg, &why) == seckill::errc::invalid_argument);
      CHECK(why.find(bad) != std::string::npos);
      CHECK(cfg.host == "unchanged");
    }
  }

  TEST_CASE("backoff_delay doubles up to the cap with half of it jitter") {
    CHECK(backoff_delay(0, 100ms, 2000ms, 0.0) == 50ms);
    CHECK(backoff_delay(0, 100ms, 2000ms, 1.0) == 100ms);
    CHECK(backoff_delay(1, 100ms, 2000ms, 1.0) == 200ms);
    CHECK(backoff_delay(3, 100ms, 2000ms, 0.5) == 600ms);
    CHECK(backoff_delay(4, 100ms, 2000ms, 1.0) == 1600ms);
    CHECK(backoff_delay(5, 100ms, 2000ms, 1.0) == 2000ms);
    CHECK(backoff_delay(5, 100ms, 2000ms, 0.0) == 1000ms);
    CHECK(backoff_delay(1000, 100ms, 2000ms, 1.0) == 2000ms);  // no overflow
    CHECK(backoff_delay(2, 0ms, 2000ms, 1.0) == 0ms);
    CHECK(backoff_delay(0, 100ms, 2000ms, 7.0) == 100ms);  // jitter clamped
  }

  TEST_CASE(
      "connection_config durations are validated and a refusal names the field and its value") {
    connection_config defaults;
    CHECK(!validate(defaults));
    CHECK(defaults.dead_peer_timeout == 5000ms);
    CHECK(defaults.health_check_interval == 1000ms);
    struct bad_case {
      const char* field;
      void (*spoil)(connection_config&);
      const char* value;
    };
    const bad_case cases[] = {
        {"dead_peer_timeout", [](connection_config& c) { c.dead_peer_timeout = -1ms; }, "-1 ms"},
        {"health_check_interval", [](connection_config& c) { c.health_check_interval = -5ms; },
         "-5 ms"},
        {"request_timeout",
         [](connection_config& c) { c.request_timeout = std::chrono::milliseconds::max(); },
         "9223372036854775807 ms"},
        {"dead_peer_timeout",
         [](connection_config& c) { c.dead_peer_timeout = max_config_duration + 1ms; },
         "31622400001 ms"},
        {"connect_timeout", [](connection_config& c) { c.connect_timeout = 0ms; }, "0 ms"},
        {"reconnect_max_delay", [](connection_config& c) { c.reconnect_max_delay = -2ms; },
         "-2 ms"},
    };
    for (const auto& c : cases) {
      const std::string field = c.field;
      CAPTURE(field);
      connection_config cfg;
      c.spoil(cfg);
      std::string why;
      CHECK(validate(cfg, &why) == seckill::errc::invalid_argument);
      CHECK(why.find(std::string(c.field) + " " + c.value) != std::string::npos);
      boost::asio::io_context io;
      CHECK(seckill::test::message_of([&] { connection conn(io.get_executor(), cfg); }).find(why) ==
            0);
    }
    // 0 turns the checks off and the year is allowed
    connection_config off;
    off.dead_peer_timeout = 0ms;
    off.health_check_interval = 0ms;
    off.request_timeout = max_config_duration;
    CHECK(!validate(off));
  }

  TEST_CASE("sha1_hex matches the FIPS 180 test vectors") {
    using seckill::redis::detail::sha1_hex;
    CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(sha1_hex(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    // lengths around the padding boundary
    CHECK(sha1_hex(std::string(55, 'x')) != sha1_hex(std::string(56, 'x')));
    CHECK(sha1_hex(std::string(64, 'a')) == "0098ba824b5c16427bd7a1122a5a442a25ec644d");
  }

  TEST_CASE("script builds EVALSHA with its sha and loads itself on connect") {
    const script s("return 1");
    CHECK(s.sha1() == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    request r;
    s.evalsha(r, 1, "k", "arg");
    CHECK(r.payload() ==
          "*5\r\n$7\r\nEVALSHA\r\n$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n$1\r\n1\r\n$"
          "1\r\nk\r\n$3\r\narg\r\n");
    connection_config cfg;
    s.load_into(cfg);
    CHECK(cfg.setup.size() == 1);
    CHECK(cfg.setup.payload().find("SCRIPT") != std::string_view::npos);
  }

  TEST_CASE("request blocks are reused up to keep and larger requests are not kept") {
    using seckill::redis::detail::request_blocks;
    request_blocks blocks;
    void* const a = blocks.take(100);
    void* const b = blocks.take(request_blocks::block_size);
    CHECK(a != b);
    blocks.give(a, 100);
    void* const reused = blocks.take(request_blocks::block_size);
    CHECK(reused == a);  // any size up to a block fits one
    blocks.give(reused, request_blocks::block_size);
    // larger ones go back to the heap (the sanitizers see them freed)
    blocks.give(blocks.take(request_blocks::block_size + 1), request_blocks::block_size + 1);
    std::vector<void*> many;
    for (std::size_t i = 0; i < request_blocks::keep + 8; ++i) many.push_back(blocks.take(64));
    for (void* p : many) blocks.give(p, 64);  // keep of them kept, the rest freed
    std::vector<void*> again;
    for (std::size_t i = 0; i < request_blocks::keep; ++i) again.push_back(blocks.take(64));
    std::sort(many.begin(), many.end());
    for (void* p : again) CHECK(std::binary_search(many.begin(), many.end(), p));
    for (void* p : again) blocks.give(p, 64);
    blocks.give(b, request_blocks::block_size);
  }

  TEST_CASE("redis_store keys are hash-tagged per SKU") {
    CHECK(redis_store::stock_key("tea") == "seckill:{tea}:stock");
    CHECK(redis_store::holds_key("tea") == "seckill:{tea}:holds");
    CHECK(redis_store::order_key("tea", 42) == "seckill:{tea}:order:42");
  }
}
