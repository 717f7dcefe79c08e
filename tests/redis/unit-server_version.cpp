#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/detail/handshake.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/server_version.hpp>

#include <doctest/doctest.h>

#include <optional>
#include <string>

using seckill::redis::parse_server_version;
using seckill::redis::server_version;
using seckill::redis::server_version_from_info;

TEST_SUITE("unit") {
  TEST_CASE("parse_server_version reads major.minor.patch as Redis reports it") {
    CHECK(parse_server_version("7.0.15") == server_version{7, 0, 15});
    CHECK(parse_server_version("5.0.0") == server_version{5, 0, 0});
    CHECK(parse_server_version("7.2") == server_version{7, 2, 0});
    CHECK(parse_server_version("7.4.0-rc1") == server_version{7, 4, 0});
    CHECK(parse_server_version("6.9.240+build") == server_version{6, 9, 240});
    CHECK(parse_server_version("99999.0.1") == server_version{99999, 0, 1});
    static_assert(parse_server_version("6.2.14") == server_version{6, 2, 14});
  }

  TEST_CASE("parse_server_version refuses what is not a version") {
    for (const char* bad :
         {"", "7", "7.", ".7", "7..0", "7.0.", "7.0.15.1", "x.y.z", "7.a.1", "v7.0.15", " 7.0.15",
          "7.0.15 ", "7.0.15\r", "-7.0.15", "123456.0.0", "7.0.1234567", "7,0,15"}) {
      CAPTURE(std::string(bad));
      CHECK(!parse_server_version(bad).has_value());
    }
  }

  TEST_CASE("server versions compare part by part and print as major.minor.patch") {
    CHECK(server_version{4, 0, 14} < server_version{5, 0, 0});
    CHECK(server_version{5, 0, 0} <= server_version{5, 0, 0});
    CHECK(server_version{7, 0, 15} > server_version{7, 0, 9});
    CHECK(server_version{6, 10, 0} > server_version{6, 9, 240});
    CHECK(to_string(server_version{7, 0, 15}) == "7.0.15");
    CHECK(!server_version{}.known());
    CHECK(server_version{0, 0, 1}.known());
  }

  TEST_CASE("server_version_from_info finds redis_version at the start of a line") {
    const std::string info =
        "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n";
    CHECK(server_version_from_info(info) == server_version{7, 0, 15});
    CHECK(server_version_from_info("redis_version:5.0.7") == server_version{5, 0, 7});
    // a field that merely ends with the name does not count
    CHECK(
        server_version_from_info("# Server\r\nmy_redis_version:9.9.9\r\nredis_version:6.2.1\r\n") ==
        server_version{6, 2, 1});
    CHECK(!server_version_from_info("").has_value());
    CHECK(!server_version_from_info("# Server\r\nredis_mode:standalone\r\n").has_value());
    CHECK(!server_version_from_info("# Server\r\nredis_version:\r\n").has_value());
    CHECK(!server_version_from_info("# Server\r\nredis_version:seven\r\n").has_value());
  }

  TEST_CASE("check_server_version refuses an older server naming both versions") {
    using seckill::redis::detail::check_server_version;
    std::string message;
    const auto ec = check_server_version({4, 0, 14}, {5, 0, 0}, "127.0.0.1:6379", message);
    CHECK(ec == seckill::redis::errc::unsupported_server);
    CHECK(message.find("4.0.14") != std::string::npos);
    CHECK(message.find("5.0.0") != std::string::npos);
    CHECK(message.find("127.0.0.1:6379") != std::string::npos);
    message.clear();
    CHECK(!check_server_version({5, 0, 0}, {5, 0, 0}, "h:1", message));
    CHECK(!check_server_version({7, 0, 15}, {5, 0, 0}, "h:1", message));
    CHECK(!check_server_version({}, {5, 0, 0}, "h:1", message));  // a server that does not tell
    CHECK(!check_server_version({2, 8, 0}, {}, "h:1", message));  // nothing needed
    CHECK(message.empty());
  }

  TEST_CASE("HELLO's answer gives the protocol the version and the client id") {
    using seckill::redis::resp_type;
    using seckill::redis::value;
    using seckill::redis::detail::hello_answer;
    using seckill::redis::detail::read_hello;
    const auto text = [](resp_type t, std::string s) {
      value v;
      v.type = t;
      v.text = std::move(s);
      return v;
    };
    value map;
    map.type = resp_type::map;
    map.elements.push_back(text(resp_type::bulk_string, "server"));
    map.elements.push_back(text(resp_type::bulk_string, "redis"));
    map.elements.push_back(text(resp_type::bulk_string, "version"));
    map.elements.push_back(text(resp_type::bulk_string, "7.0.15"));
    map.elements.push_back(text(resp_type::bulk_string, "id"));
    value id;
    id.type = resp_type::integer;
    id.integer = 42;
    map.elements.push_back(id);
    const auto a = read_hello(map);
    CHECK(a.outcome == hello_answer::kind::resp3);
    CHECK(a.version == server_version{7, 0, 15});
    CHECK(a.client_id == 42);
    map.elements[3] = text(resp_type::bulk_string, "not a version");
    CHECK(read_hello(map).version == server_version{});
    CHECK(read_hello(text(resp_type::simple_error, "ERR unknown command 'HELLO'")).outcome ==
          hello_answer::kind::fallback);
    CHECK(
        read_hello(text(resp_type::simple_error, "NOPROTO unsupported protocol version")).outcome ==
        hello_answer::kind::fallback);
    CHECK(read_hello(text(resp_type::simple_error, "WRONGPASS invalid username-password pair"))
              .outcome == hello_answer::kind::refused);
    CHECK(read_hello(text(resp_type::simple_string, "OK")).outcome ==
          hello_answer::kind::unexpected);
  }

  TEST_CASE("connection states and RESP types have constexpr names") {
    static_assert(to_string(seckill::redis::connection_state::reconnecting) == "reconnecting");
    static_assert(to_string(seckill::redis::resp_type::bulk_string) == "bulk string");
    CHECK(to_string(seckill::redis::connection_state::ready) == "ready");
  }

  TEST_CASE("the store needs Redis 5.0 and asks its connection for it") {
    CHECK(seckill::redis::store_min_server_version == server_version{5, 0, 0});
  }
}
