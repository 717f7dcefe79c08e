#include <seckill/redis/url.hpp>
#include <seckill/url.hpp>

#include <doctest/doctest.h>

#include <string>

using seckill::errc;
using seckill::redact_url;
using seckill::redis::connection_config;
using seckill::redis::parse_url;

namespace {

/// parse_url's message for `url`, checked to be an invalid_argument that
/// leaves the config alone.
std::string refusal(const char* url) {
  connection_config cfg;
  cfg.host = "unchanged";
  cfg.password = "kept";
  std::string why;
  CHECK(parse_url(url, cfg, &why) == errc::invalid_argument);
  CHECK(cfg.host == "unchanged");
  CHECK(cfg.password == "kept");
  CHECK(why.find("bad redis url '") == 0);
  return why;
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("redact_url hides the password and keeps the rest") {
    CHECK(redact_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0");
    CHECK(redact_url("redis://:secret@h") == "redis://:***@h");
    CHECK(redact_url("redis://secret@h") == "redis://***@h");
    CHECK(redact_url("redis://u:p%40ss%3Aword@[::1]:6380/2") == "redis://u:***@[::1]:6380/2");
    CHECK(redact_url("http://u:pw@h:8080/pay?amount=3#top") ==
          "http://u:***@h:8080/pay?amount=3#top");
  }

  TEST_CASE("redact_url leaves a url without credentials unchanged") {
    for (const char* url : {"redis://host:6379/0", "redis://[::1]:6379", "etcd://a:1,b:2",
                            "http://h/x?sku=tea", "memory://", "127.0.0.1:2379", "", "redis://u:@h",
                            "redis://@h", "not a url", "http://h/path?key"}) {
      CAPTURE(url);
      CHECK(redact_url(url) == url);
    }
  }

  TEST_CASE("redact_url hides secret query and fragment parameters") {
    CHECK(redact_url("http://h/v1/traces?token=abc&x=1") == "http://h/v1/traces?token=***&x=1");
    CHECK(redact_url("https://pay.example/cb?order=7&api_key=K&Signature=S") ==
          "https://pay.example/cb?order=7&api_key=***&Signature=***");
    CHECK(redact_url("https://h/#access_token=T&state=s") == "https://h/#access_token=***&state=s");
    CHECK(redact_url("http://u:pw@h/?password=x") == "http://u:***@h/?password=***");
    CHECK(redact_url("http://h/?token=") == "http://h/?token=");
  }

  TEST_CASE("redact_url hides everything up to the last @ when the url is ambiguous or broken") {
    // an unencoded '@', '#', '/' or '[' in the password
    CHECK(redact_url("redis://u:p@ss@h:1") == "redis://***@h:1");
    CHECK(redact_url("redis://u:p#ss@h") == "redis://***@h");
    CHECK(redact_url("redis://u:p/ss@h") == "redis://***@h");
    CHECK(redact_url("redis://u:p[ss@h:1/0") == "redis://***@h:1/0");
    CHECK(redact_url("redis://u:p ss@h") == "redis://***@h");
    CHECK(redact_url("etcd://u:p@a:1,etcd://v:q@b:2") == "etcd://***@b:2");
    CHECK(redact_url("u:secret@host:1") == "***@host:1");  // no scheme
    for (const char* url :
         {"redis://u:p@ss@h:1", "redis://u:p#ss@h", "redis://u:p ss@h", "x://a:p@ss@b"}) {
      CAPTURE(url);
      CHECK(redact_url(url).find("ss") == std::string::npos);
    }
  }

  TEST_CASE("parse_url decodes percent-encoded credentials") {
    connection_config cfg;
    REQUIRE(!parse_url("redis://alice:p%40ss%3Aword@127.0.0.1:7000/3", cfg));
    CHECK(cfg.username == "alice");
    CHECK(cfg.password == "p@ss:word");
    CHECK(cfg.host == "127.0.0.1");
    CHECK(cfg.port == "7000");
    CHECK(cfg.database == 3);
    REQUIRE(!parse_url("redis://b%C3%B6b:%2F%23%3F%25@h", cfg));
    CHECK(cfg.username ==
          "b\xC3\xB6"
          "b");
    CHECK(cfg.password == "/#?%");
    REQUIRE(!parse_url("redis://s%3Acret@h", cfg));  // a lone user info is the password
    CHECK(cfg.username.empty());
    CHECK(cfg.password == "s:cret");
    REQUIRE(!parse_url("redis://:pw@h", cfg));
    CHECK(cfg.username.empty());
    CHECK(cfg.password == "pw");
  }

  TEST_CASE("parse_url reads hosts and IPv6 literals and ports and databases") {
    connection_config cfg;
    cfg.client_name = "kept";
    REQUIRE(!parse_url("redis://[::1]:6380", cfg));
    CHECK(cfg.host == "::1");
    CHECK(cfg.port == "6380");
    CHECK(cfg.client_name == "kept");
    REQUIRE(!parse_url("redis://[2001:db8::7]/5", cfg));
    CHECK(cfg.host == "2001:db8::7");
    CHECK(cfg.port == "6379");
    CHECK(cfg.database == 5);
    REQUIRE(!parse_url("REDIS://Cache.Local:1/", cfg));
    CHECK(cfg.host == "Cache.Local");
    CHECK(cfg.port == "1");
    CHECK(cfg.database == 0);
    REQUIRE(!parse_url("redis://u:p@h:65535/15", cfg));
    CHECK(cfg.port == "65535");
    CHECK(cfg.database == 15);
    REQUIRE(!parse_url("redis://h", cfg));  // credentials and database reset
    CHECK(cfg.username.empty());
    CHECK(cfg.password.empty());
    CHECK(cfg.database == 0);
    CHECK(cfg.port == "6379");
  }

  TEST_CASE("parse_url refuses other schemes and says which") {
    CHECK(refusal("rediss://h:6380?x=1").find("unknown query key 'x'") != std::string::npos);
    CHECK(refusal("RedisS://u:secret@h?key_password=p").find("not taken from a URL") !=
          std::string::npos);
    CHECK(refusal("http://h:1").find("unsupported scheme 'http'") != std::string::npos);
    CHECK(refusal("unix:///tmp/redis.sock").find("unsupported scheme 'unix'") != std::string::npos);
    CHECK(refusal("localhost:6379").find("expected redis://") != std::string::npos);
    CHECK(refusal("redis:/h").find("expected redis://") != std::string::npos);
    CHECK(refusal("").find("expected redis://") != std::string::npos);
  }

  TEST_CASE("parse_url refuses a missing host and bad ports and bad databases") {
    CHECK(refusal("redis://").find("no host") != std::string::npos);
    CHECK(refusal("redis://:6379").find("no host") != std::string::npos);
    CHECK(refusal("redis://u:secret@:6379").find("no host") != std::string::npos);
    CHECK(refusal("redis://h:0").find("port '0' is not in [1, 65535]") != std::string::npos);
    CHECK(refusal("redis://h:65536").find("port '65536'") != std::string::npos);
    CHECK(refusal("redis://h:99999999999999999999").find("is not in [1, 65535]") !=
          std::string::npos);
    CHECK(refusal("redis://h:abc").find("port 'abc'") != std::string::npos);
    CHECK(refusal("redis://h:abc/0").find("port 'abc'") != std::string::npos);
    CHECK(refusal("redis://h:").find("empty port") != std::string::npos);
    CHECK(refusal("redis://h:1/x").find("database 'x' is not a number >= 0") != std::string::npos);
    CHECK(refusal("redis://h:1/-1").find("database '-1'") != std::string::npos);
    CHECK(refusal("redis://h/1x").find("database '1x'") != std::string::npos);
    CHECK(refusal("redis://h/0/extra").find("path '/0/extra'") != std::string::npos);
    CHECK(refusal("redis://h:1:2").find("unexpected ':2'") != std::string::npos);
    CHECK(refusal("redis://[::1").find("unterminated '['") != std::string::npos);
    CHECK(refusal("redis://[::1]x").find("unexpected 'x'") != std::string::npos);
  }

  TEST_CASE("parse_url refuses queries and fragments and empty passwords") {
    CHECK(refusal("redis://h/0?db=1").find("query") != std::string::npos);
    CHECK(refusal("redis://h#frag").find("fragment") != std::string::npos);
    CHECK(refusal("redis://u:@h:1").find("empty password") != std::string::npos);
    CHECK(refusal("redis://@h").find("empty password") != std::string::npos);
  }

  TEST_CASE("parse_url's messages never contain the password") {
    struct probe {
      const char* url;
      const char* secret;
    };
    for (const probe p :
         {probe{"rediss://alice:hunter2@h?verify=maybe", "hunter2"},
          probe{"http://alice:hunter2@h", "hunter2"}, probe{"redis://alice:hunter2@h:0", "hunter2"},
          probe{"redis://alice:hunter2@h:abc", "hunter2"},
          probe{"redis://alice:hunter2@h/x", "hunter2"},
          probe{"redis://alice:hunter2@h/0?x=1", "hunter2"},
          probe{"redis://alice:hunter2@:1", "hunter2"}, probe{"redis://hunter2@h:70000", "hunter2"},
          probe{"redis://:hunter2@h/0/1", "hunter2"},
          probe{"redis://alice:hun%40ter2@h:0", "hun%40ter2"},
          probe{"redis://alice:hun@ter2@h", "ter2"}, probe{"redis://alice:hun#ter2@h", "ter2"},
          probe{"redis://alice:hun/ter2@h", "ter2"}, probe{"redis://alice:hun?ter2@h", "ter2"},
          probe{"redis://alice:hun ter2@h", "ter2"}, probe{"redis://alice:hun[ter2@h", "ter2"},
          probe{"hunter2:x@h://y", "hunter2"}, probe{"redis://alice:hunter2@[::1", "hunter2"}}) {
      CAPTURE(p.url);
      const std::string why = refusal(p.url);
      CAPTURE(why);
      CHECK(why.find(p.secret) == std::string::npos);
    }
  }

  TEST_CASE("parse_url names the percent-encoding when a password holds a delimiter") {
    CHECK(refusal("redis://u:p@ss@h").find("%40") != std::string::npos);
    CHECK(refusal("redis://u:p#ss@h").find("%40") != std::string::npos);
    CHECK(refusal("redis://u:p ss@h").find("percent-encoded") != std::string::npos);
  }
}
