// grocery_grabber's command line: the shop and the strategy file, each flag
// read into its option, every bad argument refused with a message naming it;
// a shop URL's user info never appears in a message.
#include "grocery_grabber/options.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace unit_grabber_options {

using namespace grocery_grabber;

parse_result parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"grocery_grabber"};
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

}  // namespace unit_grabber_options

using namespace unit_grabber_options;

TEST_SUITE("unit") {
  TEST_CASE("grocery_grabber options: the shop and the strategy file in either order of flags") {
    const auto o = parsed({"demo", "strategy.txt"});
    CHECK(o.shop == "demo");
    CHECK(o.strategy_file == "strategy.txt");
    CHECK(o.chromium.empty());
    CHECK(o.site_profile.empty());
    CHECK(parsed({"demo-grid", "s.txt"}).shop == "demo-grid");
    const auto url =
        parsed({"--chromium", "/opt/c", "https://shop.example:8443/sale?x=1", "s.txt"});
    CHECK(url.shop == "https://shop.example:8443/sale?x=1");
    CHECK(url.chromium == "/opt/c");
    CHECK(std::holds_alternative<help_requested>(parse({"--help"})));
    CHECK(std::holds_alternative<help_requested>(parse({"demo", "-h"})));
    CHECK(usage("gg").find("--site-profile") != std::string::npos);
  }

  TEST_CASE("grocery_grabber options: --chromium takes a path") {
    CHECK(parsed({"demo", "s.txt", "--chromium=/usr/bin/chromium"}).chromium ==
          "/usr/bin/chromium");
    CHECK(error({"demo", "s.txt", "--chromium"}) == "--chromium needs a value");
    CHECK(error({"demo", "s.txt", "--chromium="}) ==
          "--chromium: expected the path of a Chromium executable, saw ''");
  }

  TEST_CASE("grocery_grabber options: --site-profile takes a profile file") {
    CHECK(parsed({"demo", "s.txt", "--site-profile", "shops/grid.profile"}).site_profile ==
          "shops/grid.profile");
    CHECK(parsed({"--site-profile=g.profile", "demo", "s.txt"}).site_profile == "g.profile");
    CHECK(error({"demo", "s.txt", "--site-profile"}) == "--site-profile needs a value");
    CHECK(error({"demo", "s.txt", "--site-profile="}) ==
          "--site-profile: expected the path of a profile file, saw ''");
  }

  TEST_CASE("grocery_grabber options: missing - extra and unknown arguments are refused") {
    CHECK(error({}) ==
          "needs the shop (a URL, demo or demo-grid) and the strategy file (see --help)");
    CHECK(error({"demo"}).find("needs the shop") == 0);
    CHECK(error({"demo", "s.txt", "more"}) == "unexpected argument 'more' (see --help)");
    CHECK(error({"demo", "s.txt", "--profile", "x"}) == "unknown option '--profile' (see --help)");
    CHECK(error({"demo", "s.txt", "-x"}) == "unknown option '-x' (see --help)");
  }

  TEST_CASE("grocery_grabber options: a bad shop URL is named - never its password") {
    CHECK(error({"ftp://h/", "s.txt"}) ==
          "bad shop url: unsupported scheme 'ftp' (expected http:// or https://)");
    CHECK(error({"shop", "s.txt"}).find("bad shop url: not an absolute URL") == 0);
    CHECK(error({"http://h:0/", "s.txt"}) == "bad shop url: port '0' is not in [1, 65535]");
    CHECK(error({"http://:80/", "s.txt"}) == "bad shop url: no host");
    const std::string m = error({"http://user:s3cret@h:99999/", "s.txt"});
    CHECK(m.find("bad shop url") == 0);
    CHECK(m.find("s3cret") == std::string::npos);
  }
}
