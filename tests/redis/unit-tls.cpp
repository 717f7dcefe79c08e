// TLS settings without a server: rediss:// URLs and their query keys, etcd
// https:// endpoint lists, validate(tls_options) and the tls_errc codes.

#include <seckill/etcd/endpoint.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/tls.hpp>

#include <doctest/doctest.h>

#include <string>
#include <system_error>

namespace unit_tls {

using seckill::tls_errc;
using seckill::tls_options;
using seckill::redis::connection_config;
using seckill::redis::parse_url;

TEST_SUITE("unit") {
  TEST_CASE("tls: rediss URLs set the TLS options from their query") {
    connection_config cfg;
    REQUIRE(!parse_url("rediss://alice:pw@cache:6380/2", cfg));
    REQUIRE(cfg.tls.has_value());
    CHECK(*cfg.tls == tls_options{});
    CHECK(cfg.host == "cache");
    CHECK(cfg.port == "6380");
    CHECK(cfg.database == 2);
    CHECK(cfg.password == "pw");
    std::string why;
    REQUIRE(
        !parse_url("rediss://h/0?ca_file=/etc/ca%20dir/ca.pem&cert_file=/c.pem&key_file=/c.key"
                   "&server_name=cache.example&verify=false",
                   cfg, &why));
    REQUIRE(cfg.tls.has_value());
    CHECK(cfg.tls->ca_file == "/etc/ca dir/ca.pem");
    CHECK(cfg.tls->cert_file == "/c.pem");
    CHECK(cfg.tls->key_file == "/c.key");
    CHECK(cfg.tls->server_name == "cache.example");
    CHECK(!cfg.tls->verify);
    REQUIRE(!parse_url("redis://h", cfg));
    CHECK(!cfg.tls.has_value());  // plain again
  }

  TEST_CASE("tls: rediss query keys that are refused") {
    connection_config cfg;
    std::string why;
    CHECK(parse_url("redis://h?ca_file=/x", cfg, &why) == seckill::errc::invalid_argument);
    CHECK(why.find("taken by rediss:// only") != std::string::npos);
    CHECK(parse_url("rediss://h?ca=/x", cfg, &why) == seckill::errc::invalid_argument);
    CHECK(why.find("unknown query key 'ca' (known: ca_file") != std::string::npos);
    CHECK(parse_url("rediss://h?verify=perhaps", cfg, &why) == seckill::errc::invalid_argument);
    CHECK(why.find("verify='perhaps'") != std::string::npos);
    CHECK(parse_url("rediss://h?ca_file=/a&ca_file=/b", cfg, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why.find("given twice") != std::string::npos);
    CHECK(parse_url("rediss://h?key_password=hunter2", cfg, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why.find("hunter2") == std::string::npos);
    CHECK(!cfg.tls.has_value());
  }

  TEST_CASE("tls: validate names the missing file and the setting") {
    std::string why;
    CHECK(!seckill::validate(tls_options{}, &why));
    CHECK(seckill::validate(tls_options{.ca_file = "/nonexistent/ca.pem"}, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why == "tls_options: ca_file '/nonexistent/ca.pem' does not exist");
    CHECK(seckill::validate(tls_options{.cert_file = "/"}, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why == "tls_options: cert_file '/' is not a regular file");
    CHECK(seckill::validate(tls_options{.key_file = "/k"}, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why.find("without cert_file") != std::string::npos);
    CHECK(seckill::validate(tls_options{.key_password = "hunter2"}, &why) ==
          seckill::errc::invalid_argument);
    CHECK(why.find("hunter2") == std::string::npos);
    connection_config cfg;
    cfg.tls = tls_options{.ca_file = "/nonexistent/ca.pem"};
    CHECK(validate(cfg, &why) == seckill::errc::invalid_argument);
    CHECK(why.find("ca_file '/nonexistent/ca.pem'") != std::string::npos);
  }

  TEST_CASE("tls: the error codes and their conditions") {
    for (const auto e :
         {tls_errc::unknown_ca, tls_errc::certificate_expired, tls_errc::host_name_mismatch,
          tls_errc::certificate_invalid, tls_errc::certificate_refused}) {
      const std::error_code ec = e;
      CHECK(ec == seckill::condition::server);
      CHECK(std::string(ec.category().name()) == "seckill.tls");
      CHECK(ec.message().find("TLS") == 0);
    }
    CHECK(std::error_code(tls_errc::handshake_failed) == seckill::condition::protocol);
  }

  TEST_CASE("tls: https endpoint lists") {
    using seckill::etcd::endpoint;
    using seckill::etcd::parse_endpoints;
    const auto eps = parse_endpoints("https://a:2379,b:2380");
    REQUIRE(eps.size() == 2);
    CHECK(eps[0] == endpoint{"a", 2379, true});
    CHECK(eps[1] == endpoint{"b", 2380, true});  // the scheme before it
    CHECK(!parse_endpoints("http://a:1,b:2")[1].tls);
    std::error_code ec;
    std::string why;
    tls_options tls;
    const auto with =
        parse_endpoints("https://a:1,https://b:2?ca_file=/ca.pem&verify=no", ec, &why, &tls);
    REQUIRE_MESSAGE(!ec, why);
    CHECK(with.size() == 2);
    CHECK(tls.ca_file == "/ca.pem");
    CHECK(!tls.verify);
    CHECK(parse_endpoints("https://a:1?ca_file=/x", ec, &why).empty());
    CHECK(why.find("only https:// entries take one") != std::string::npos);
    CHECK(parse_endpoints("http://a:1?ca_file=/x", ec, &why, &tls).empty());
    CHECK(parse_endpoints("https://a:1?ca_file=/x,b:2?ca_file=/y", ec, &why, &tls).empty());
    CHECK(why.find("on one entry") != std::string::npos);
    CHECK(parse_endpoints("https://a:1,http://b:2", ec, &why, &tls).empty());
    CHECK(why.find("mixes https://") != std::string::npos);
  }
}

}  // namespace unit_tls
