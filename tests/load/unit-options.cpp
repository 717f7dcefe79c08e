// seckill_load's command line: every flag is read into its option, every bad
// value is refused with a message naming the flag, what it expects and what
// it saw; the admin token never appears in a message.
#include "seckill_load/options.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

namespace unit_options {

using namespace seckill_load;

parse_result parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"seckill_load"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

options parsed(std::initializer_list<const char*> args) {
  auto r = parse(args);
  if (const auto* e = std::get_if<usage_error>(&r)) FAIL("unexpected usage error: " << e->message);
  REQUIRE(std::holds_alternative<options>(r));
  return std::get<options>(r);
}

std::string error(std::initializer_list<const char*> args) {
  auto r = parse(args);
  REQUIRE(std::holds_alternative<usage_error>(r));
  return std::get<usage_error>(r).message;
}

}  // namespace unit_options

using namespace unit_options;

TEST_SUITE("unit") {
  TEST_CASE("options: the defaults") {
    const auto o = parsed({"--target", "http://127.0.0.1:8080"});
    REQUIRE(o.targets.size() == 1u);
    CHECK(o.targets[0].host == "127.0.0.1");
    CHECK(o.targets[0].port == 8080);
    CHECK(o.targets[0].url() == "http://127.0.0.1:8080");
    CHECK(o.etcd.empty());
    CHECK(o.service == "seckill");
    CHECK(o.registry_prefix == "services/");
    CHECK(o.arrival == arrival_kind::fixed);
    CHECK(o.rate == 1000);
    CHECK(o.duration == std::chrono::seconds(10));
    CHECK(o.requests == 0);
    CHECK(o.connections == 16);
    CHECK(o.threads == 2);
    CHECK(o.users == 1'000'000);
    CHECK(o.repeat_share == 0);
    CHECK(o.skus == 1);
    CHECK(o.quantity == 1);
    CHECK_FALSE(o.setup_stock);
    CHECK(o.admin_token.empty());
    CHECK_FALSE(o.verify);
    CHECK(o.timeout == std::chrono::seconds(10));
    CHECK(o.seed == 1u);
    CHECK(o.run_id.empty());
    CHECK_FALSE(o.json);
    CHECK_FALSE(o.progress);
  }

  TEST_CASE("options: every flag is read") {
    const auto o = parsed({"--target",
                           "http://a.example:81",
                           "--target=http://[::1]:9000/",
                           "--rate",
                           "2500.5",
                           "--arrival",
                           "poisson",
                           "--duration",
                           "1.5s",
                           "--connections",
                           "64",
                           "--threads=4",
                           "--timeout",
                           "250ms",
                           "--seed",
                           "99",
                           "--users",
                           "10",
                           "--skus",
                           "3",
                           "--quantity",
                           "2",
                           "--repeat-share",
                           "0.25",
                           "--run-id",
                           "Run7",
                           "--setup-stock",
                           "100",
                           "--admin-token",
                           "t0k3n",
                           "--verify",
                           "--json",
                           "--progress",
                           "--service",
                           "shop",
                           "--registry-prefix",
                           "svc/"});
    REQUIRE(o.targets.size() == 2u);
    CHECK(o.targets[0].url() == "http://a.example:81");
    CHECK(o.targets[1].host == "::1");
    CHECK(o.targets[1].url() == "http://[::1]:9000");
    CHECK(o.rate == 2500.5);
    CHECK(o.arrival == arrival_kind::poisson);
    CHECK(o.duration == std::chrono::milliseconds(1500));
    CHECK(o.connections == 64);
    CHECK(o.threads == 4);
    CHECK(o.timeout == std::chrono::milliseconds(250));
    CHECK(o.seed == 99u);
    CHECK(o.users == 10);
    CHECK(o.skus == 3);
    CHECK(o.quantity == 2);
    CHECK(o.repeat_share == 0.25);
    CHECK(o.run_id == "Run7");
    CHECK(o.setup_stock == 100);
    CHECK(o.admin_token == "t0k3n");
    CHECK(o.verify);
    CHECK(o.json);
    CHECK(o.progress == true);
    CHECK(o.service == "shop");
    CHECK(o.registry_prefix == "svc/");

    const auto e = parsed({"--etcd", "127.0.0.1:2379,127.0.0.1:2380", "--requests", "500",
                           "--no-progress", "--arrival", "fixed"});
    CHECK(e.etcd == "127.0.0.1:2379,127.0.0.1:2380");
    CHECK(e.targets.empty());
    CHECK(e.requests == 500);
    CHECK(e.progress == false);
    CHECK(e.arrival == arrival_kind::fixed);

    CHECK(parsed({"--target", "http://localhost"}).targets[0].port == 80);
    CHECK(std::holds_alternative<help_requested>(parse({"--help"})));
    CHECK(std::holds_alternative<help_requested>(parse({"--rate", "5", "-h"})));
  }

  TEST_CASE("options: the help names every flag") {
    const auto text = help_text("seckill_load");
    for (const char* flag : {"--target",      "--etcd",        "--service",     "--registry-prefix",
                             "--rate",        "--arrival",     "--duration",    "--requests",
                             "--connections", "--threads",     "--timeout",     "--seed",
                             "--users",       "--skus",        "--quantity",    "--repeat-share",
                             "--run-id",      "--setup-stock", "--admin-token", "--verify",
                             "--json",        "--progress",    "--no-progress", "--help"}) {
      CAPTURE(flag);
      CHECK(text.find(flag) != std::string::npos);
    }
  }

  TEST_CASE("options: bad numbers and durations say what was expected and what was seen") {
    const char* t = "--target=http://127.0.0.1:1";
    CHECK(error({t, "--rate", "0"}) == "--rate: expected a number in [0.001, 10000000], saw '0'");
    CHECK(error({t, "--rate", "fast"}) ==
          "--rate: expected a number in [0.001, 10000000], saw 'fast'");
    CHECK(error({t, "--rate", "nan"}) ==
          "--rate: expected a number in [0.001, 10000000], saw 'nan'");
    CHECK(error({t, "--rate"}) == "--rate needs a value");
    CHECK(error({t, "--arrival", "bursty"}) ==
          "--arrival: expected fixed or poisson, saw 'bursty'");
    CHECK(error({t, "--duration", "0"}) ==
          "--duration: expected a duration in [1000us, 86400000000us] like 250ms, 1.5s or 300us, "
          "saw '0'");
    CHECK(error({t, "--duration", "5 minutes"}) ==
          "--duration: expected a duration in [1000us, 86400000000us] like 250ms, 1.5s or 300us, "
          "saw '5 minutes'");
    CHECK(error({t, "--requests", "0"}) ==
          "--requests: expected an integer in [1, 1000000000], saw '0'");
    CHECK(error({t, "--requests", "1e3"}) ==
          "--requests: expected an integer in [1, 1000000000], saw '1e3'");
    CHECK(error({t, "--connections", "0"}) ==
          "--connections: expected an integer in [1, 10000], saw '0'");
    CHECK(error({t, "--connections", "10001"}) ==
          "--connections: expected an integer in [1, 10000], saw '10001'");
    CHECK(error({t, "--threads", "65"}) == "--threads: expected an integer in [1, 64], saw '65'");
    CHECK(error({t, "--timeout", "0ms"}) ==
          "--timeout: expected a duration in [1000us, 600000000us] like 250ms, 1.5s or 300us, "
          "saw '0ms'");
    CHECK(error({t, "--seed", "-1"}) ==
          "--seed: expected an integer in [0, 9223372036854775807], saw '-1'");
    CHECK(error({t, "--users", "0"}) == "--users: expected an integer in [1, 1000000000], saw '0'");
    CHECK(error({t, "--skus", "100001"}) ==
          "--skus: expected an integer in [1, 100000], saw '100001'");
    CHECK(error({t, "--quantity", "1001"}) ==
          "--quantity: expected an integer in [1, 1000], saw '1001'");
    CHECK(error({t, "--repeat-share", "1"}) ==
          "--repeat-share: expected a number in [0, 0.99], saw '1'");
    CHECK(error({t, "--repeat-share", "-0.1"}) ==
          "--repeat-share: expected a number in [0, 0.99], saw '-0.1'");
    CHECK(error({t, "--setup-stock", "-5", "--admin-token", "x"}) ==
          "--setup-stock: expected an integer in [0, 1000000000000], saw '-5'");
    CHECK(error({t, "--run-id", "has space"}) ==
          "--run-id: expected 1 to 24 characters of A-Z a-z 0-9, saw 'has space'");
    CHECK(error({t, "--run-id", "abcdefghijklmnopqrstuvwxy"}) ==
          "--run-id: expected 1 to 24 characters of A-Z a-z 0-9, saw 'abcdefghijklmnopqrstuvwxy'");
    CHECK(error({t, "--run-id="}) ==
          "--run-id: expected 1 to 24 characters of A-Z a-z 0-9, saw ''");
    CHECK(error({t, "--service", "a/b"}) == "--service: expected a name without '/', saw 'a/b'");
    CHECK(error({t, "--service="}) == "--service: expected a name without '/', saw ''");
    CHECK(error({t, "--registry-prefix", "/services/"}) ==
          "--registry-prefix: expected a key prefix not starting with '/', saw '/services/'");
    CHECK(error({t, "--verify=yes"}) == "--verify takes no value (saw 'yes')");
    CHECK(error({t, "--json=1"}) == "--json takes no value (saw '1')");
    CHECK(error({t, "--progress=0"}) == "--progress takes no value (saw '0')");
    CHECK(error({t, "--no-progress=1"}) == "--no-progress takes no value (saw '1')");
    CHECK(error({t, "--bogus"}) == "unknown option '--bogus' (see --help)");
    CHECK(error({t, "-x"}) == "unknown option '-x' (see --help)");
  }

  TEST_CASE("options: bad targets and etcd endpoints say why") {
    CHECK(error({"--target", "127.0.0.1:8080"}) ==
          "--target '127.0.0.1:8080' is not a URL like http://host:port");
    CHECK(error({"--target", "https://shop:443"}) ==
          "--target 'https://shop:443': https is not supported; use http://host:port");
    CHECK(error({"--target", "ftp://shop"}) ==
          "--target 'ftp://shop': the scheme must be http (a URL like http://host:port)");
    CHECK(error({"--target", "http://shop:8080/purchase"}) ==
          "--target 'http://shop:8080/purchase' has a path, query or fragment; expected "
          "http://host:port");
    CHECK(error({"--target", "http://shop:8080?x=1"}) ==
          "--target 'http://shop:8080?x=1' has a path, query or fragment; expected "
          "http://host:port");
    CHECK(error({"--target", "http://:8080"}) == "--target 'http://:8080' has no host");
    CHECK(error({"--target", "http://shop:"}) == "--target 'http://shop:' has an empty port");
    CHECK(error({"--target", "http://shop:0"}) ==
          "--target 'http://shop:0' has a bad port '0' (expected 1..65535)");
    CHECK(error({"--target", "http://shop:70000"}) ==
          "--target 'http://shop:70000' has a bad port '70000' (expected 1..65535)");
    CHECK(error({"--target", "http://shop:http"}) ==
          "--target 'http://shop:http' has a bad port 'http' (expected 1..65535)");
    CHECK(error({"--target", "http://::1:80"}) ==
          "--target 'http://::1:80' is not http://host:port (an IPv6 address is written [::1])");
    CHECK(error({"--target", "http://[::1"}) ==
          "--target 'http://[::1' has a bad IPv6 address (written [::1])");
    CHECK(error({"--target", "http://[::1]x"}) ==
          "--target 'http://[::1]x' is not http://host:port");
    CHECK(error({"--target", "http://sh op:1"}) == "--target 'http://sh op:1' has a bad host");
    CHECK(error({"--target", "http://a:1", "--target", "http://a:1/"}) ==
          "--target http://a:1 is given twice");
    CHECK(error({"--target"}) == "--target needs a value");
    // credentials are refused and not shown
    const auto cred = error({"--target", "http://admin:hunter2@shop:80"});
    CHECK(cred.find("hunter2") == std::string::npos);
    CHECK(cred.find("carries credentials; targets take none") != std::string::npos);

    CHECK(error({"--etcd", ""}) == "--etcd: etcd endpoint list is empty");
    CHECK(error({"--etcd", "127.0.0.1:0"}) ==
          "--etcd: etcd endpoint '127.0.0.1:0' has a bad port '0' (expected 1..65535)");
    const auto etcd_cred = error({"--etcd", "user:pa55word@127.0.0.1:2379"});
    CHECK(etcd_cred.find("pa55word") == std::string::npos);
  }

  TEST_CASE("options: flags that need or exclude others") {
    CHECK(error({}) == "give at least one --target URL, or --etcd HOST:PORT to find the nodes");
    CHECK(error({"--rate", "5"}) ==
          "give at least one --target URL, or --etcd HOST:PORT to find the nodes");
    CHECK(error({"--target", "http://a:1", "--etcd", "b:2379"}) ==
          "--target and --etcd exclude each other: give the nodes, or where to find them");
    CHECK(error({"--target", "http://a:1", "--duration", "5s", "--requests", "9"}) ==
          "--duration and --requests exclude each other: run for a time, or a count");
    CHECK(error({"--target", "http://a:1", "--setup-stock", "10"}) ==
          "--setup-stock needs --admin-token (the admin API's bearer token)");
  }

  TEST_CASE(
      "options: the admin token may come from SECKILL_ADMIN_TOKEN and the flag overrides it") {
    ::setenv("SECKILL_ADMIN_TOKEN", "from-env", 1);
    const auto from_env = parse({"--target", "http://a:1", "--setup-stock", "10"});
    const auto from_flag =
        parse({"--target", "http://a:1", "--setup-stock", "10", "--admin-token", "from-flag"});
    ::unsetenv("SECKILL_ADMIN_TOKEN");
    REQUIRE(std::holds_alternative<seckill_load::options>(from_env));
    CHECK(std::get<seckill_load::options>(from_env).admin_token == "from-env");
    REQUIRE(std::holds_alternative<seckill_load::options>(from_flag));
    CHECK(std::get<seckill_load::options>(from_flag).admin_token == "from-flag");
  }

  TEST_CASE("options: the admin token never appears in a message") {
    const std::string secret = "s3cr3t-T0KEN";
    const auto check_hidden = [&](const std::string& message) {
      CAPTURE(message);
      CHECK(message.find(secret) == std::string::npos);
    };
    check_hidden(error({"--target", "http://a:1", "--admin-token", "s3cr3t-T0KEN", "--bogus"}));
    check_hidden(error({"--target", "http://a:1", "--admin-tokn=s3cr3t-T0KEN"}));
    check_hidden(error({"--target", "http://a:1", "--admin-token=s3cr3t-T0KEN", "--rate", "0"}));
    CHECK(error({"--target", "http://a:1", "--admin-token="}) ==
          "--admin-token: the token is empty");
    CHECK(error({"--target", "http://a:1", "--admin-token", "two words"}) ==
          "--admin-token: the token has white space or a line break");
    CHECK(error({"--target", "http://a:1", "--admin-token"}) == "--admin-token needs a value");
  }
}
