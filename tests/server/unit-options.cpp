// seckill_server's command line: every flag parses, every bad value is
// refused with a message naming the flag, the listen address and URL parsers.
#include "seckill_server/options.hpp"
#include "seckill_server/payment.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <variant>
#include <vector>

namespace unit_options {

seckill_server::parse_result parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"seckill_server"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return seckill_server::parse_options(static_cast<int>(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  const auto r = parse(std::move(args));
  const auto* e = std::get_if<seckill_server::usage_error>(&r);
  return e == nullptr ? "(accepted)" : e->message;
}

}  // namespace unit_options

using namespace unit_options;

TEST_SUITE("unit") {
  TEST_CASE("seckill_server options: the defaults and every flag sets what it names") {
    const auto d = std::get<seckill_server::options>(parse({}));
    CHECK(d.listen.host == "127.0.0.1");
    CHECK(d.listen.port == 8080);
    CHECK(d.store == "memory://");
    CHECK(d.per_user == 1);
    CHECK(d.admission_rate == 0);
    CHECK(d.deadline == std::chrono::milliseconds(800));
    CHECK(d.payment_latency == std::chrono::microseconds(0));
    CHECK(d.threads == 2);
    CHECK(d.payment_connections == 64);
    const auto o = std::get<seckill_server::options>(parse({"--listen",
                                                            "[::1]:0",
                                                            "--store=redis://127.0.0.1:6379",
                                                            "--node",
                                                            "n1",
                                                            "--admin-token",
                                                            "t",
                                                            "--per-user",
                                                            "0",
                                                            "--admission-rate",
                                                            "500",
                                                            "--admission-burst",
                                                            "50",
                                                            "--deadline",
                                                            "1.5s",
                                                            "--hold",
                                                            "10s",
                                                            "--payment-latency",
                                                            "20ms",
                                                            "--payment-failure",
                                                            "0.1",
                                                            "--payment-hang",
                                                            "0.01",
                                                            "--threads",
                                                            "4",
                                                            "--otlp",
                                                            "http://127.0.0.1:4318",
                                                            "--max-connections",
                                                            "7",
                                                            "--weight",
                                                            "30",
                                                            "--service",
                                                            "shop",
                                                            "--advertise",
                                                            "http://10.0.0.1:80",
                                                            "--worker-id",
                                                            "33",
                                                            "--seed",
                                                            "9",
                                                            "--header-timeout",
                                                            "200ms",
                                                            "--idle-timeout",
                                                            "1s",
                                                            "--request-timeout",
                                                            "3s",
                                                            "--reaper-period",
                                                            "250ms"}));
    CHECK(o.listen.host == "::1");
    CHECK(o.listen.port == 0);
    CHECK(o.store == "redis://127.0.0.1:6379");
    CHECK(o.node == "n1");
    CHECK(o.admin_token == "t");
    CHECK(o.per_user == 0);
    CHECK(o.admission_rate == 500);
    CHECK(o.admission_burst == 50);
    CHECK(o.deadline == std::chrono::milliseconds(1500));
    CHECK(o.hold == std::chrono::seconds(10));
    CHECK(o.payment_latency == std::chrono::milliseconds(20));
    CHECK(o.payment_failure == doctest::Approx(0.1));
    CHECK(o.threads == 4);
    CHECK(o.max_connections == 7);
    CHECK(o.weight == 30);
    CHECK(o.service == "shop");
    CHECK(o.worker_id == 33);
    CHECK(o.seed == 9);
    CHECK(o.header_timeout == std::chrono::milliseconds(200));
    CHECK(o.idle_timeout == std::chrono::seconds(1));
    CHECK(o.reaper_period == std::chrono::milliseconds(250));
    CHECK(std::holds_alternative<seckill_server::help_requested>(parse({"--help"})));
    CHECK(std::holds_alternative<seckill_server::help_requested>(parse({"-h"})));
  }

  TEST_CASE("seckill_server options: a bad value is refused naming the flag and the value") {
    CHECK(error_of({"--bogus"}) == "unknown option '--bogus' (see --help)");
    CHECK(error_of({"--listen"}) == "--listen needs a value");
    CHECK(error_of({"--listen", "8080"}) == "--listen '8080': expected HOST:PORT");
    CHECK(error_of({"--listen", "127.0.0.1:99999"}) ==
          "--listen '127.0.0.1:99999': port '99999' is not in [0, 65535]");
    CHECK(error_of({"--listen", "::1:80"}) ==
          "--listen '::1:80': an IPv6 host goes in brackets: [::1]:PORT");
    CHECK(error_of({"--listen", ":80"}) == "--listen ':80': the host is empty");
    CHECK(error_of({"--listen", "[::1:80"}) == "--listen '[::1:80': expected [IPv6]:PORT");
    CHECK(error_of({"--per-user", "-1"}) ==
          "--per-user: expected an integer in [0, 1000000000], saw '-1'");
    CHECK(error_of({"--threads", "0"}) == "--threads: expected an integer in [1, 64], saw '0'");
    CHECK(error_of({"--threads", "65"}) == "--threads: expected an integer in [1, 64], saw '65'");
    CHECK(error_of({"--deadline", "0"}) ==
          "--deadline: expected a duration in [1000us, 3600000000us] like 250ms, 1.5s or 300us, "
          "saw '0'");
    CHECK(error_of({"--deadline", "1.5ms"}) ==
          "--deadline: expected a whole number of milliseconds, saw '1.5ms'");
    CHECK(error_of({"--payment-failure", "2"}) ==
          "--payment-failure: expected a number in [0, 1], saw '2'");
    CHECK(error_of({"--payment-failure", "0.7", "--payment-hang", "0.5"}) ==
          "--payment-failure 0.7 plus --payment-hang 0.5 exceed 1");
    CHECK(error_of({"--payment-url", "ftp://x"}) ==
          "--payment-url: expected an http:// URL, saw 'ftp://x'");
    {
      const auto pooled =
          parse({"--payment-url", "http://127.0.0.1:9/pay", "--payment-connections", "8"});
      REQUIRE(std::holds_alternative<seckill_server::options>(pooled));
      CHECK(std::get<seckill_server::options>(pooled).payment_connections == 8);
    }
    CHECK(error_of({"--payment-connections", "8"}) ==
          "--payment-connections is for --payment-url: the simulated payment makes no "
          "connections");
    CHECK(error_of({"--payment-url", "http://127.0.0.1:9/pay", "--payment-connections", "0"}) ==
          "--payment-connections: expected an integer in [1, 10000], saw '0'");
    CHECK(error_of({"--payment-url", "http://127.0.0.1:9/pay", "--payment-latency", "5ms"}) ==
          "--payment-url calls a real provider: it takes no --payment-latency, --payment-failure "
          "or --payment-hang");
    CHECK(error_of({"--hold", "500ms"}) ==
          "--hold 500ms must exceed --deadline 800ms: a paid order must still find its units");
    CHECK(error_of({"--request-timeout", "0"}) ==
          "--request-timeout: expected a duration in [1000us, 3600000000us] like 250ms, 1.5s or "
          "300us, saw '0'");
    CHECK(error_of({"--admin-token", ""}) == "--admin-token: the token is empty");
    CHECK(error_of({"--node", "a/b"}) ==
          "--node: expected a name of 1 to 64 characters without '/', saw 'a/b'");
    CHECK(error_of({"--weight", "0"}) == "--weight: expected an integer in [1, 10000], saw '0'");
    CHECK(error_of({"--worker-id", "1024"}) ==
          "--worker-id: expected an integer in [0, 1023], saw '1024'");
    CHECK(error_of({"--worker-id", "1", "--etcd", "127.0.0.1:2379"}) ==
          "--worker-id and --etcd: with --etcd the worker id is leased, not given");
    CHECK(error_of({"--advertise", "10.0.0.1:80"}) ==
          "--advertise: expected a URL like http://host:port, saw '10.0.0.1:80'");
    CHECK(error_of({"--max-connections", "0"}) ==
          "--max-connections: expected an integer in [1, 1000000], saw '0'");
  }

  TEST_CASE("seckill_server options: a URL with a password is shown redacted in an error") {
    const auto message = error_of({"--otlp", "ftp://user:hunter2@host:1"});
    CHECK(message.find("hunter2") == std::string::npos);
    CHECK(message.find("***") != std::string::npos);
  }

  TEST_CASE("seckill_server options: http URLs split into host and port and path") {
    seckill_server::http_url u;
    CHECK(seckill_server::parse_http_url("http://127.0.0.1:8081/pay", u).empty());
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == "8081");
    CHECK(u.path == "/pay");
    CHECK(seckill_server::parse_http_url("http://[::1]:9/", u).empty());
    CHECK(u.host == "::1");
    CHECK(seckill_server::parse_http_url("http://example", u).empty());
    CHECK(u.port == "80");
    CHECK(u.path == "/");
    CHECK(seckill_server::parse_http_url("https://x", u) == "expected http://host[:port][/path]");
    CHECK(seckill_server::parse_http_url("http://:80/", u) == "the host is empty");
    CHECK(seckill_server::parse_http_url("http://h:0/", u) == "the port must be in [1, 65535]");
    CHECK(seckill_server::parse_http_url("http://h:70000/", u) == "the port must be in [1, 65535]");
    CHECK(seckill_server::parse_http_url("http://h:8x/", u) == "the port must be in [1, 65535]");
    CHECK(seckill_server::parse_http_url("http://u:p@h/", u) ==
          "credentials in the URL are not supported");
    CHECK(seckill_server::parse_http_url("http://[::1/", u) == "an unclosed [ in the host");
  }

  TEST_CASE("seckill_server options: the shared rate limits in Redis") {
    const auto d = std::get<seckill_server::options>(parse({}));
    CHECK(d.gcra_rate == 0);
    CHECK(d.gcra_user_rate == 0);
    CHECK_FALSE(d.gcra_fail_open);
    CHECK(d.gcra_timeout == std::chrono::milliseconds(250));
    const auto o = std::get<seckill_server::options>(
        parse({"--store", "redis://127.0.0.1:6379", "--gcra-rate", "500", "--gcra-burst", "50",
               "--gcra-user-rate", "0.5", "--gcra-user-burst", "2", "--gcra-fail-open",
               "--gcra-timeout", "100ms"}));
    CHECK(o.gcra_rate == 500);
    CHECK(o.gcra_burst == 50);
    CHECK(o.gcra_user_rate == 0.5);
    CHECK(o.gcra_user_burst == 2);
    CHECK(o.gcra_fail_open);
    CHECK(o.gcra_timeout == std::chrono::milliseconds(100));
    // any store, with a Redis of their own
    const auto m = std::get<seckill_server::options>(
        parse({"--gcra-user-rate", "1", "--gcra-redis", "redis://127.0.0.1:7000"}));
    CHECK(m.gcra_redis == "redis://127.0.0.1:7000");
    CHECK(error_of({"--gcra-rate", "5"})
              .starts_with("--gcra-rate and --gcra-user-rate keep their buckets in Redis: give "
                           "--gcra-redis"));
    CHECK(error_of({"--gcra-redis", "http://x"}) ==
          "--gcra-redis: expected a redis://, rediss://, redis+cluster:// or rediss+cluster:// "
          "URL, saw 'http://x'");
    const auto on_cluster = std::get<seckill_server::options>(
        parse({"--gcra-rate", "5", "--store", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"}));
    CHECK(on_cluster.gcra_redis.empty());  // the store's cluster
    CHECK(std::get<seckill_server::options>(
              parse({"--gcra-rate", "5", "--gcra-redis", "rediss+cluster://u:pw@127.0.0.1:7000"}))
              .gcra_redis == "rediss+cluster://u:pw@127.0.0.1:7000");
    CHECK(error_of({"--gcra-rate", "2e6"}).starts_with("--gcra-rate: expected a number in"));
    CHECK(error_of({"--gcra-fail-open=yes"}) == "--gcra-fail-open takes no value (saw 'yes')");
  }
}
