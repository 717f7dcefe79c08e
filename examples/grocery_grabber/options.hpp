#pragma once
// grocery_grabber's command line: one or more tabs, each a shop (a URL, or
// demo / demo-grid / demo-api) and its strategy file, and the flags. Every bad argument
// is refused with a message naming it, what it expects and what it saw; a
// URL's user info is never echoed.

#include "common/cli.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/sandbox.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/webhook.hpp>
#include <seckill/url.hpp>

#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace grocery_grabber {

using seckill_examples::help_requested;
using seckill_examples::usage_error;

/// One tab of the browser: a shop page and the strategy that buys there.
struct tab_options {
  std::string shop;           ///< an http(s) URL, "demo", "demo-grid" or "demo-api"
  std::string strategy_file;  ///< the strategy file
};

/// The most tabs one run opens: each is a grabber acting at a person's pace
/// in one browser.
inline constexpr std::size_t max_tabs = 8;

/// One account (--account NAME=PROFILE_DIR[:STRATEGY]): its own browser
/// (a Chromium of its own on its profile directory: its own cookies and
/// session), its own grabber per tab, pace and back-off.
struct account_options {
  std::string name;           ///< the log's and the summary's name for it
  std::string profile_dir;    ///< its persistent browser profile (logged in with --login)
  std::string strategy_file;  ///< replaces every tab's strategy file; empty: the tabs'
};

/// The most accounts one run drives (each a Chromium of its own).
inline constexpr std::size_t max_accounts = 8;

/// What the command line asks for.
struct options {
  std::vector<tab_options> tabs;  ///< one grabber per tab, all at once, in one browser
  std::string chromium;           ///< --chromium: the browser to launch (empty: the default)
  std::string site_profile;       ///< --site-profile: a profile file that replaces the strategy's
  std::string log_file;     ///< --log: the log is appended there too; screenshots go beside it
  std::string screenshots;  ///< --screenshots: where screenshots go without --log
  /// --sandbox auto|on|off: Chromium's sandbox (auto: off only as root).
  seckill::browser::sandbox_mode sandbox = seckill::browser::sandbox_mode::automatic;
  bool sandbox_given = false;  ///< --sandbox was on the command line
  std::string profile_dir;     ///< --profile: a persistent browser profile (empty: a temporary one)
  bool login = false;          ///< --login: log in by hand in a visible window, then exit
  std::string connect;         ///< --connect: a running browser's http:// or ws:// DevTools URL
  std::vector<seckill::browser::webhook> notify;  ///< --notify: webhooks every tab's notices go to
  std::optional<seckill::browser::notice_filter> notify_on;  ///< --notify-on: replaces notify_on
  bool desktop_notify = true;  ///< --no-desktop-notify: none on the desktop
  bool visible = false;  ///< --visible: a visible window, where a person can solve a verification
  /// --dry-run / --monitor: replaces every strategy's `mode`
  std::optional<seckill::browser::grab_mode> mode;
  std::vector<account_options> accounts;  ///< --account: several accounts at once
  /// --clock-offset MS: the shop clock's offset by hand; replaces every strategy's `clock_offset`
  std::optional<std::chrono::milliseconds> clock_offset;
};

using parse_result = std::variant<options, help_requested, usage_error>;

inline std::string usage(std::string_view program) {
  return fmt::format(
      "usage: {} <shop> <strategy-file> [<shop> <strategy-file> ...] [--chromium PATH]\n"
      "          [--site-profile FILE] [--log FILE | --screenshots DIR]\n"
      "          [--sandbox auto|on|off] [--profile DIR [--login]] [--connect URL]\n"
      "          [--notify [PRESET:]URL ...] [--notify-on EVENTS] [--no-desktop-notify]\n"
      "          [--visible] [--dry-run | --monitor] [--account NAME=DIR[:STRATEGY] ...]\n"
      "          [--clock-offset MS]\n"
      "  <shop>             an http(s) URL, or demo / demo-grid / demo-api: the demo shop\n"
      "                     started here (its select page, its button grid, or its page\n"
      "                     that shows the stock only through polled JSON)\n"
      "  each <shop> <strategy-file> pair is a tab: one grabber per tab, all at once in\n"
      "  one browser (at most {}); the exit status is 0 only if every tab bought (with\n"
      "  --dry-run: reached the press; with --monitor: watched until its deadline)\n"
      "  --chromium PATH    the Chromium to launch (default: /usr/bin/chromium)\n"
      "  --site-profile F   the shop page's profile file; replaces the strategy's profile\n"
      "                     (one tab only: with several, each strategy names its profile)\n"
      "  --log FILE         append the log to FILE as well as printing it; the\n"
      "                     screenshots taken when a tab ends go beside it\n"
      "  --screenshots DIR  where the screenshots go when there is no --log\n"
      "                     (default: the current directory)\n"
      "  --sandbox MODE     Chromium's sandbox: auto (default: off only when running as\n"
      "                     root, where it cannot run), on or off\n"
      "  --profile DIR      keep the browser profile (cookies, logins) in DIR, created if\n"
      "                     missing and never deleted\n"
      "  --login            open the shop (one tab) in a visible window with --profile DIR,\n"
      "                     wait until you have logged in (the profile's logged_in element\n"
      "                     shows), then close the browser and exit; later headless runs\n"
      "                     with the same --profile DIR have the session. Needs a display.\n"
      "  --connect URL      drive your own running browser (started with\n"
      "                     --remote-debugging-port=9222) in tabs of its own:\n"
      "                     http://127.0.0.1:9222 or its ws://.../devtools/browser/<id> URL;\n"
      "                     the browser is left running, only those tabs are closed\n"
      "  --notify SPEC      send notices (ordered, failed, sold-out, hand-off) to a webhook:\n"
      "                     a URL (a JSON POST) or ntfy:URL, bark:URL, serverchan:URL,\n"
      "                     telegram:URL?chat_id=N, get:URL-with-{{placeholders}}; repeatable,\n"
      "                     added to each strategy's own notify\n"
      "  --notify-on LIST   which notices: ordered, failed, sold-out, hand-off, stock,\n"
      "                     stopped (an account stopped after refusals) or all\n"
      "  --no-desktop-notify  no desktop notification (by default there is one where a\n"
      "                     desktop and its session bus are)\n"
      "  --visible          run the browser in a visible window (needs a display), so a\n"
      "                     person can solve a verification the shop shows (captcha,\n"
      "                     slider, SMS code): the grabber waits while it shows\n"
      "  --dry-run          go all the way up to the buy button (choose, quantity, check\n"
      "                     the button can be pressed) and stop there: nothing is ordered;\n"
      "                     the log says what would have been pressed (strategy: mode)\n"
      "  --monitor          only watch: nothing is chosen or pressed; each stock change is\n"
      "                     logged and told (the `stock` notice) until the deadline\n"
      "  --account NAME=DIR[:STRATEGY]  several accounts at once (2 to {}): each runs every\n"
      "                     tab in a Chromium of its own on the profile directory DIR (log\n"
      "                     it in first with --profile DIR --login), with its own pace and\n"
      "                     back-off; STRATEGY replaces the tabs' strategy file for it.\n"
      "                     NAME: letters, digits, - and _. One summary table at the end.\n"
      "                     Exit status with accounts: 0 when every account did what it was\n"
      "                     run for in every tab, 1 when one did not (no order, a deadline, a\n"
      "                     stop after repeated refusals), 2 for a bad command line or file\n"
      "  --clock-offset MS  the shop's clock by hand: the local clock minus the shop's, in\n"
      "                     whole milliseconds (-1250: the shop is 1.25 s ahead); the\n"
      "                     shop's clock is then not read (strategy: clock_offset)\n",
      program, max_tabs, max_accounts);
}

/// Why --login cannot open a window with these values of DISPLAY and
/// WAYLAND_DISPLAY (null when unset); empty when it can.
inline std::string login_display_problem(const char* display, const char* wayland_display) {
  const auto set = [](const char* v) { return v != nullptr && *v != '\0'; };
  if (set(display) || set(wayland_display)) return {};
  return "--login opens a visible browser window, and there is no display (DISPLAY and "
         "WAYLAND_DISPLAY are unset): log in where there is one, or run with --connect URL "
         "against a browser you logged in with";
}

/// Why --visible cannot open a window with these values of DISPLAY and
/// WAYLAND_DISPLAY (null when unset); empty when it can.
inline std::string visible_display_problem(const char* display, const char* wayland_display) {
  const auto set = [](const char* v) { return v != nullptr && *v != '\0'; };
  if (set(display) || set(wayland_display)) return {};
  return "--visible opens a browser window, and there is no display (DISPLAY and "
         "WAYLAND_DISPLAY are unset): run it where there is one, or with --connect URL against "
         "a browser running on a display";
}

/// What is wrong with `text` as --connect's URL (http://host:port, or a
/// ws://host:port/... DevTools URL); empty when nothing is. Never echoes a
/// password or token.
inline std::string browser_url_problem(const std::string& text) {
  namespace sb = seckill::browser;
  std::error_code ec;
  std::string message;
  const std::string_view scheme = sb::cdp::detail::url_scheme(text);
  if (boost::urls::grammar::ci_is_equal(scheme, "ws") ||
      boost::urls::grammar::ci_is_equal(scheme, "wss")) {
    (void)sb::cdp::parse_ws_url(text, ec, &message);
  } else if (boost::urls::grammar::ci_is_equal(scheme, "http") ||
             boost::urls::grammar::ci_is_equal(scheme, "https")) {
    (void)sb::detail::parse_http_url(text, ec, &message);
  } else {
    return "expected http://host:port (as in http://127.0.0.1:9222) or ws://host:port/path, saw "
           "'" +
           seckill::redact_url(text) + "'";
  }
  return ec ? message : std::string();
}

/// Where the screenshots go: beside the log file, else in `screenshots`,
/// else in the current directory.
inline std::filesystem::path screenshot_directory(const options& o) {
  if (!o.log_file.empty()) {
    const auto dir = std::filesystem::path(o.log_file).parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
  }
  return o.screenshots.empty() ? std::filesystem::path(".") : std::filesystem::path(o.screenshots);
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

// The same file named twice ("a/s.txt" and "a/./s.txt"): compared as written,
// made lexically normal; links are not followed.
inline bool same_file(std::string_view a, std::string_view b) {
  return std::filesystem::path(a).lexically_normal() == std::filesystem::path(b).lexically_normal();
}

/// --account's value, NAME=DIR[:STRATEGY], or what is wrong with it (never
/// more of the value than the name).
inline std::variant<account_options, std::string> parse_account(std::string_view v) {
  const auto eq = v.find('=');
  const std::string_view name = v.substr(0, eq);
  if (eq == std::string_view::npos || name.empty()) {
    return std::string("expected NAME=PROFILE_DIR[:STRATEGY_FILE], as in alice=profiles/alice");
  }
  if (name.size() > 32 || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
      })) {
    return std::string("the name must be 1 to 32 letters, digits, - or _");
  }
  const std::string_view rest = v.substr(eq + 1);
  const auto colon = rest.find(':');
  account_options a;
  a.name = std::string(name);
  a.profile_dir = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) a.strategy_file = std::string(rest.substr(colon + 1));
  if (a.profile_dir.empty())
    return fmt::format("account '{}' has no profile directory after '='", a.name);
  if (colon != std::string_view::npos && a.strategy_file.empty())
    return fmt::format("account '{}' has an empty strategy file after ':'", a.name);
  return a;
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
    } else if (flag == "--log") {
      if ((err = c.text(o.log_file))) return *err;
      if (o.log_file.empty() || o.log_file.ends_with('/'))
        return c.bad(o.log_file, "the path of a file to append the log to");
    } else if (flag == "--screenshots") {
      if ((err = c.text(o.screenshots))) return *err;
      if (o.screenshots.empty()) return c.bad(o.screenshots, "a directory");
    } else if (flag == "--sandbox") {
      std::string mode;
      if ((err = c.text(mode))) return *err;
      const auto m = seckill::browser::parse_sandbox_mode(mode);
      if (!m) return c.bad(mode, "auto, on or off");
      o.sandbox = *m;
      o.sandbox_given = true;
    } else if (flag == "--profile") {
      if ((err = c.text(o.profile_dir))) return *err;
      if (o.profile_dir.empty()) return c.bad(o.profile_dir, "the path of a profile directory");
    } else if (flag == "--login") {
      if ((err = c.no_value())) return *err;
      o.login = true;
    } else if (flag == "--connect") {
      if ((err = c.text(o.connect))) return *err;
      if (const std::string why = browser_url_problem(o.connect); !why.empty()) {
        return usage_error{fmt::format("--connect: {}", why)};
      }
    } else if (flag == "--notify") {
      std::string spec;
      if ((err = c.text(spec))) return *err;
      std::string why;
      auto w = seckill::browser::try_parse_webhook(spec, {}, &why);
      if (!w) return usage_error{"--" + why};  // (never the URL: it may hold a token)
      o.notify.push_back(std::move(*w));
    } else if (flag == "--notify-on") {
      std::string list;
      if ((err = c.text(list))) return *err;
      std::string why;
      o.notify_on = seckill::browser::try_parse_notice_filter(list, &why);
      if (!o.notify_on) return usage_error{"--notify-on: " + why.substr(why.find(": ") + 2)};
    } else if (flag == "--visible") {
      if ((err = c.no_value())) return *err;
      o.visible = true;
    } else if (flag == "--dry-run" || flag == "--monitor") {
      if ((err = c.no_value())) return *err;
      const auto m = flag == "--dry-run" ? seckill::browser::grab_mode::dry_run
                                         : seckill::browser::grab_mode::monitor;
      if (o.mode && *o.mode != m)
        return usage_error{"--dry-run and --monitor exclude each other: give one"};
      o.mode = m;
    } else if (flag == "--account") {
      std::string spec;
      if ((err = c.text(spec))) return *err;
      auto a = parse_account(spec);
      if (const auto* why = std::get_if<std::string>(&a)) return usage_error{"--account: " + *why};
      auto& acc = std::get<account_options>(a);
      for (const auto& other : o.accounts) {
        if (other.name == acc.name)
          return usage_error{fmt::format("--account: the name '{}' is given twice", acc.name)};
        if (same_file(other.profile_dir, acc.profile_dir)) {
          return usage_error{fmt::format(
              "--account: '{}' and '{}' share the profile directory '{}': each account needs its "
              "own (its own cookies and session)",
              other.name, acc.name, acc.profile_dir)};
        }
      }
      o.accounts.push_back(std::move(acc));
    } else if (flag == "--clock-offset") {
      std::int64_t ms = 0;
      if ((err = c.integer(-86'400'000, 86'400'000, ms))) return *err;
      o.clock_offset = std::chrono::milliseconds(ms);
    } else if (flag == "--no-desktop-notify") {
      if ((err = c.no_value())) return *err;
      o.desktop_notify = false;
    } else if (flag.starts_with("-") && flag.size() > 1) {
      return c.unknown();
    } else {
      positional.emplace_back(c.argument());
    }
  }
  if (!o.connect.empty()) {
    for (const auto& [given, name] :
         {std::pair{!o.profile_dir.empty(), "--profile"}, std::pair{o.login, "--login"},
          std::pair{o.visible, "--visible"}, std::pair{o.sandbox_given, "--sandbox"},
          std::pair{!o.chromium.empty(), "--chromium"}}) {
      if (given) {
        return usage_error{fmt::format(
            "--connect drives a browser that is already running; {} is for a browser this "
            "program launches: use one or the other",
            name)};
      }
    }
  }
  if (!o.accounts.empty()) {
    if (o.accounts.size() < 2) {
      return usage_error{
          "--account is for several accounts at once: give two or more (one account: --profile "
          "DIR)"};
    }
    if (o.accounts.size() > max_accounts) {
      return usage_error{
          fmt::format("at most {} accounts, saw {}", max_accounts, o.accounts.size())};
    }
    for (const auto& [given, name] :
         {std::pair{!o.profile_dir.empty(), "--profile"}, std::pair{o.login, "--login"},
          std::pair{!o.connect.empty(), "--connect"}}) {
      if (given) {
        return usage_error{fmt::format(
            "--account gives each account its own browser and profile directory; {} cannot be "
            "used with it (log each account in first with --profile DIR --login)",
            name)};
      }
    }
  }
  if (o.login && o.profile_dir.empty()) {
    return usage_error{
        "--login needs --profile DIR: the login is kept in that profile for later runs"};
  }
  if (positional.size() < 2) {
    return usage_error{
        "needs the shop (a URL, demo, demo-grid or demo-api) and the strategy file (see "
        "--help)"};
  }
  if (positional.size() % 2 != 0) {
    // The last shop has no strategy file (a URL's password is never echoed).
    return usage_error{fmt::format(
        "tab {} has the shop '{}' but no strategy file: give <shop> <strategy-file> pairs (see "
        "--help)",
        positional.size() / 2 + 1, seckill::redact_url(positional.back()))};
  }
  if (positional.size() / 2 > max_tabs) {
    return usage_error{fmt::format("at most {} tabs, saw {} <shop> <strategy-file> pairs", max_tabs,
                                   positional.size() / 2)};
  }
  const bool several = positional.size() > 2;
  for (std::size_t i = 0; i < positional.size(); i += 2) {
    const std::size_t n = i / 2 + 1;
    const std::string tab = several ? fmt::format("tab {}: ", n) : std::string();
    tab_options t{positional[i], positional[i + 1]};
    if (t.shop != "demo" && t.shop != "demo-grid" && t.shop != "demo-api") {
      if (const std::string why = shop_url_problem(t.shop); !why.empty()) {
        return usage_error{fmt::format("{}bad shop url: {}", tab, why)};
      }
    }
    for (std::size_t j = 0; j < o.tabs.size(); ++j) {
      if (o.tabs[j].shop == t.shop && same_file(o.tabs[j].strategy_file, t.strategy_file)) {
        return usage_error{fmt::format(
            "tab {} repeats tab {}: the same shop and strategy file would buy twice", n, j + 1)};
      }
    }
    o.tabs.push_back(std::move(t));
  }
  if (several && o.login) {
    return usage_error{fmt::format(
        "--login logs in on one shop in one window: give one <shop> <strategy-file> pair, not {}",
        o.tabs.size())};
  }
  if (several && !o.site_profile.empty()) {
    return usage_error{fmt::format(
        "--site-profile replaces the profile of a single tab; with {} tabs, name each tab's "
        "profile in its strategy file (profile = FILE)",
        o.tabs.size())};
  }
  if (!o.log_file.empty() && !o.screenshots.empty()) {
    return usage_error{
        "--log and --screenshots cannot both be given: with --log, the screenshots go beside the "
        "log file"};
  }
  for (std::size_t j = 0; j < o.tabs.size() && !o.log_file.empty(); ++j) {
    if (same_file(o.log_file, o.tabs[j].strategy_file)) {
      return usage_error{
          fmt::format("--log '{}' is the strategy file of tab {}: the log would be appended to it",
                      o.log_file, j + 1)};
    }
  }
  return o;
}

}  // namespace grocery_grabber
