#include <seckill/etcd/client.hpp>

#include <doctest/doctest.h>

#include <string>
#include <system_error>
#include <vector>

namespace {

/// parse_endpoints' message for `list`, checked to be an invalid_argument
/// with no endpoints.
std::string endpoints_refusal(const char* list) {
  std::error_code ec;
  std::string message;
  const auto eps = seckill::etcd::parse_endpoints(list, ec, &message);
  CHECK(ec == seckill::errc::invalid_argument);
  CHECK(eps.empty());
  CHECK(!message.empty());
  return message;
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("parse_endpoints takes host:port and etcd:// and http:// entries") {
    using seckill::etcd::endpoint;
    using seckill::etcd::parse_endpoints;
    CHECK(parse_endpoints("127.0.0.1:2379") == std::vector<endpoint>{{"127.0.0.1", 2379}});
    CHECK(parse_endpoints("etcd://a:1,b:2,http://c:3/") ==
          std::vector<endpoint>{{"a", 1}, {"b", 2}, {"c", 3}});
    CHECK(parse_endpoints("ETCD://Node-1.local:2379,HTTP://node-2:2380") ==
          std::vector<endpoint>{{"Node-1.local", 2379}, {"node-2", 2380}});
    CHECK(parse_endpoints("http://h:65535//") == std::vector<endpoint>{{"h", 65535}});
    CHECK(parse_endpoints("etcd:2379") ==
          std::vector<endpoint>{{"etcd", 2379}});  // a host named etcd
  }

  TEST_CASE("parse_endpoints takes IPv6 literals in brackets") {
    using seckill::etcd::endpoint;
    using seckill::etcd::parse_endpoints;
    const auto eps = parse_endpoints("[::1]:2379,etcd://[2001:db8::7]:2380,http://[fe80::1]:1");
    REQUIRE(eps.size() == 3);
    CHECK(eps[0] == endpoint{"::1", 2379});
    CHECK(eps[1] == endpoint{"2001:db8::7", 2380});
    CHECK(eps[2] == endpoint{"fe80::1", 1});
    CHECK(eps[0].to_string() == "[::1]:2379");
    CHECK(eps[0].uri_host() == "[::1]");
    CHECK(endpoint{"127.0.0.1", 2379}.to_string() == "127.0.0.1:2379");
    CHECK(endpoint{"localhost", 2379}.uri_host() == "localhost");
  }

  TEST_CASE("parse_endpoints refuses unsupported schemes") {
    CHECK(endpoints_refusal("a:1,https://h:2379").find("mixes https://") != std::string::npos);
    CHECK(endpoints_refusal("a:1,https://h:2379").find("'https://h:2379'") != std::string::npos);
    CHECK(endpoints_refusal("redis://h:2379").find("unsupported scheme 'redis'") !=
          std::string::npos);
    CHECK(endpoints_refusal("grpc://h:2379").find("unsupported scheme 'grpc'") !=
          std::string::npos);
  }

  TEST_CASE("parse_endpoints refuses missing hosts and bad ports and extra parts") {
    CHECK(endpoints_refusal("").find("empty") != std::string::npos);
    CHECK(endpoints_refusal("a:1,,b:2").find("empty entry") != std::string::npos);
    CHECK(endpoints_refusal("a:1,").find("empty entry") != std::string::npos);
    CHECK(endpoints_refusal(":80").find("no host") != std::string::npos);
    CHECK(endpoints_refusal("etcd://:80").find("no host") != std::string::npos);
    CHECK(endpoints_refusal("127.0.0.1").find("no port") != std::string::npos);
    CHECK(endpoints_refusal("http://h").find("no port") != std::string::npos);
    CHECK(endpoints_refusal("h:0").find("bad port '0'") != std::string::npos);
    CHECK(endpoints_refusal("h:65536").find("bad port '65536'") != std::string::npos);
    CHECK(endpoints_refusal("h:abc").find("bad port 'abc'") != std::string::npos);
    CHECK(endpoints_refusal("h:").find("bad port ''") != std::string::npos);
    CHECK(endpoints_refusal("h:1/v3").find("has a path") != std::string::npos);
    CHECK(endpoints_refusal("h:1?x=1").find("query") != std::string::npos);
    CHECK(endpoints_refusal("h:1#x").find("fragment") != std::string::npos);
    CHECK(endpoints_refusal("[::1").find("[::1]:2379") != std::string::npos);
    CHECK(endpoints_refusal("::1:2379").find("[::1]:2379") != std::string::npos);
    CHECK(endpoints_refusal("a b:1").find("'a b:1'") != std::string::npos);
    CHECK_THROWS_AS(seckill::etcd::parse_endpoints(":80"), seckill::error);
  }

  TEST_CASE("parse_endpoints refuses credentials and never echoes them") {
    for (const char* list :
         {"etcd://root:hunter2@h:2379", "http://hunter2@h:2379", "root:hunter2@h:2379",
          "a:1,http://root:hunter2@h:2379", "http://root:hun@ter2@h:1", "https://root:hunter2@h:1",
          "x+y://root:hunter2@h:1", "etcd://root:hunter2@h:0"}) {
      CAPTURE(list);
      const std::string message = endpoints_refusal(list);
      CAPTURE(message);
      CHECK(message.find("hunter2") == std::string::npos);
      CHECK(message.find("ter2") == std::string::npos);
    }
    CHECK(endpoints_refusal("etcd://root:pw@h:2379").find("etcd://root:***@h:2379") !=
          std::string::npos);
  }
}
