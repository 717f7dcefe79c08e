#pragma once
// grocery_grabber's command line: the shop (a URL, or demo / demo-grid), the
// strategy file, and the flags. Every bad argument is refused with a message
// naming it, what it expects and what it saw; a URL's user info is never
// echoed.

#include "common/cli.hpp"

#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace grocery_grabber {

using seckill_examples::help_requested;
using seckill_examples::usage_error;

/// What the command line asks for.
struct options {
  std::string shop;           ///< an http(s) URL, "demo" or "demo-grid"
  std::string strategy_file;  ///< the strategy file
  std::string chromium;       ///< --chromium: the browser to launch (empty: the default)
  std::string site_profile;   ///< --site-profile: a profile file that replaces the strategy's
};

using parse_result = std::variant<options, help_requested, usage_error>;

inline std::string usage(std::string_view program) {
  return fmt::format(
      "usage: {} <shop-url | demo | demo-grid> <strategy-file> [--chromium PATH]\n"
      "          [--site-profile FILE]\n"
      "  demo, demo-grid    start the demo shop here (its select page, or its button grid)\n"
      "  --chromium PATH    the Chromium to launch (default: /usr/bin/chromium)\n"
      "  --site-profile F   the shop page's profile file; replaces the strategy's profile\n",
      program);
}

/// What is wrong with `text` as a shop URL (an absolute http:// or https://
/// URL with a host), parsed with Boost.URL; empty when nothing is. Never
/// echoes the user info.
inline std::string shop_url_problem(std::string_view text) {
  namespace urls = boost::urls;
  const auto r = urls::parse_uri(text);
  if (!r) {
    return "not an absolute URL like http://127.0.0.1:8080/ (RFC 3986; spaces and the like must be "
           "percent-encoded)";
  }
  const urls::url_view& u = *r;
  if (!urls::grammar::ci_is_equal(u.scheme(), "http") &&
      !urls::grammar::ci_is_equal(u.scheme(), "https")) {
    // (a scheme has no ':' or '@': it never holds a password)
    return "unsupported scheme '" + std::string(u.scheme()) + "' (expected http:// or https://)";
  }
  const std::string_view path = u.encoded_path();
  if (!path.empty() && path.front() != '/') {
    // Boost.URL reads "h:abc" as host h, path "abc"; and "u:p#ss@h" (an
    // unencoded '#' in a password) as host u, path "p": nothing is echoed.
    return "a bad port or unexpected text after the host (a password's @ : / ? # must be "
           "percent-encoded as %40 %3A %2F %3F %23)";
  }
  if (!u.has_authority() || u.host_address().empty()) return "no host";
  if (u.has_port()) {
    const std::string_view port = u.port();
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || n == 0 ||
        n > 65535)
      return "port '" + std::string(port) + "' is not in [1, 65535]";
  }
  return {};
}

inline parse_result parse_options(int argc, const char* const* argv) {
  options o;
  std::vector<std::string> positional;
  seckill_examples::flag_cursor c(argc, argv);
  while (c.next()) {
    const auto flag = c.flag();
    std::optional<usage_error> err;
    if (flag == "-h" || flag == "--help") return help_requested{};
    if (flag == "--chromium") {
      if ((err = c.text(o.chromium))) return *err;
      if (o.chromium.empty()) return c.bad(o.chromium, "the path of a Chromium executable");
    } else if (flag == "--site-profile") {
      if ((err = c.text(o.site_profile))) return *err;
      if (o.site_profile.empty()) return c.bad(o.site_profile, "the path of a profile file");
    } else if (flag.starts_with("-") && flag.size() > 1) {
      return c.unknown();
    } else {
      positional.emplace_back(c.argument());
    }
  }
  if (positional.size() < 2) {
    return usage_error{
        "needs the shop (a URL, demo or demo-grid) and the strategy file (see --help)"};
  }
  if (positional.size() > 2) {
    return usage_error{fmt::format("unexpected argument '{}' (see --help)", positional[2])};
  }
  o.shop = positional[0];
  o.strategy_file = positional[1];
  if (o.shop != "demo" && o.shop != "demo-grid") {
    if (const std::string why = shop_url_problem(o.shop); !why.empty()) {
      return usage_error{fmt::format("bad shop url: {}", why)};
    }
  }
  return o;
}

}  // namespace grocery_grabber
