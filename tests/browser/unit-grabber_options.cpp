// grocery_grabber's command line: the shop and the strategy file, each flag
// read into its option, every bad argument refused with a message naming it;
// a shop URL's user info never appears in a message.
#include "grocery_grabber/options.hpp"
#include "grocery_grabber/tabs.hpp"

#include <seckill/browser/sandbox.hpp>

#include <doctest/doctest.h>

#include <chrono>
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
    REQUIRE(o.tabs.size() == 1);
    CHECK(o.tabs[0].shop == "demo");
    CHECK(o.tabs[0].strategy_file == "strategy.txt");
    CHECK(o.chromium.empty());
    CHECK(o.site_profile.empty());
    CHECK(o.log_file.empty());
    CHECK(o.screenshots.empty());
    CHECK(parsed({"demo-grid", "s.txt"}).tabs[0].shop == "demo-grid");
    CHECK(parsed({"demo-api", "s.txt"}).tabs[0].shop == "demo-api");
    CHECK(error({"demo-json", "s.txt"}).find("bad shop url") == 0);  // no such demo
    CHECK(parsed({"demo-api", "a.txt", "demo-api", "b.txt"}).tabs.size() == 2);
    const auto url =
        parsed({"--chromium", "/opt/c", "https://shop.example:8443/sale?x=1", "s.txt"});
    CHECK(url.tabs[0].shop == "https://shop.example:8443/sale?x=1");
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
          "needs the shop (a URL, demo, demo-grid or demo-api) and the strategy file (see "
          "--help)");
    CHECK(error({"demo"}).find("needs the shop") == 0);
    CHECK(error({"demo", "s.txt", "more"}) ==
          "tab 2 has the shop 'more' but no strategy file: give <shop> <strategy-file> pairs "
          "(see --help)");
    CHECK(error({"demo", "s.txt", "--profiles", "x"}) ==
          "unknown option '--profiles' (see --help)");
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
    // With several tabs, the message names the tab.
    CHECK(error({"demo", "a.txt", "ftp://h/", "b.txt"}) ==
          "tab 2: bad shop url: unsupported scheme 'ftp' (expected http:// or https://)");
    // A last shop without its strategy file is echoed without its password.
    const std::string odd = error({"demo", "a.txt", "http://user:s3cret@h/"});
    CHECK(odd.find("tab 2 has the shop 'http://user:***@h/' but no strategy file") == 0);
    CHECK(odd.find("s3cret") == std::string::npos);
  }

  TEST_CASE("grocery_grabber options: several shop and strategy pairs are several tabs") {
    const auto o = parsed({"demo", "a.txt", "--chromium", "/opt/c", "demo-grid", "b.txt",
                           "https://shop.example/sale", "c.txt"});
    REQUIRE(o.tabs.size() == 3);
    CHECK(o.tabs[0].shop == "demo");
    CHECK(o.tabs[0].strategy_file == "a.txt");
    CHECK(o.tabs[1].shop == "demo-grid");
    CHECK(o.tabs[1].strategy_file == "b.txt");
    CHECK(o.tabs[2].shop == "https://shop.example/sale");
    CHECK(o.tabs[2].strategy_file == "c.txt");
    CHECK(o.chromium == "/opt/c");
    // One shop with two strategies, or one strategy on two shops: two tabs.
    CHECK(parsed({"demo", "a.txt", "demo", "b.txt"}).tabs.size() == 2);
    CHECK(parsed({"demo", "a.txt", "demo-grid", "a.txt"}).tabs.size() == 2);
    CHECK(usage("gg").find("<shop> <strategy-file> [<shop> <strategy-file> ...]") !=
          std::string::npos);
  }

  TEST_CASE("grocery_grabber options: conflicting tabs and flags are refused with the reason") {
    CHECK(error({"demo", "a.txt", "demo", "a.txt"}) ==
          "tab 2 repeats tab 1: the same shop and strategy file would buy twice");
    CHECK(error({"demo", "a.txt", "demo-grid", "b.txt", "demo", "./a.txt"}) ==
          "tab 3 repeats tab 1: the same shop and strategy file would buy twice");
    CHECK(error({"demo", "a.txt", "demo-grid", "b.txt", "--site-profile", "g.profile"}) ==
          "--site-profile replaces the profile of a single tab; with 2 tabs, name each tab's "
          "profile in its strategy file (profile = FILE)");
    CHECK(error({"demo", "a.txt", "--log", "run.log", "--screenshots", "shots"}) ==
          "--log and --screenshots cannot both be given: with --log, the screenshots go beside "
          "the log file");
    CHECK(error({"demo", "a.txt", "demo-grid", "dir/b.txt", "--log", "dir/./b.txt"}) ==
          "--log 'dir/./b.txt' is the strategy file of tab 2: the log would be appended to it");
    const std::vector<std::string> files{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"};
    std::vector<const char*> many{"grocery_grabber"};
    for (const auto& f : files) {
      many.push_back("demo");
      many.push_back(f.c_str());
    }
    const auto r = parse_options(static_cast<int>(many.size()), many.data());
    REQUIRE(std::holds_alternative<usage_error>(r));
    CHECK(std::get<usage_error>(r).message == "at most 8 tabs, saw 9 <shop> <strategy-file> pairs");
  }

  TEST_CASE("grocery_grabber options: --log takes a file - --screenshots a directory") {
    const auto o = parsed({"demo", "s.txt", "--log", "logs/run.log"});
    CHECK(o.log_file == "logs/run.log");
    CHECK(screenshot_directory(o) == "logs");
    CHECK(screenshot_directory(parsed({"demo", "s.txt", "--log=run.log"})) == ".");
    CHECK(screenshot_directory(parsed({"demo", "s.txt", "--screenshots", "shots"})) == "shots");
    CHECK(screenshot_directory(parsed({"demo", "s.txt"})) == ".");
    CHECK(error({"demo", "s.txt", "--log"}) == "--log needs a value");
    CHECK(error({"demo", "s.txt", "--log="}) ==
          "--log: expected the path of a file to append the log to, saw ''");
    CHECK(error({"demo", "s.txt", "--log", "logs/"}) ==
          "--log: expected the path of a file to append the log to, saw 'logs/'");
    CHECK(error({"demo", "s.txt", "--screenshots"}) == "--screenshots needs a value");
    CHECK(error({"demo", "s.txt", "--screenshots="}) ==
          "--screenshots: expected a directory, saw ''");
  }

  TEST_CASE("grocery_grabber screenshots: named by UTC time - tab - a file-safe SKU and outcome") {
    using namespace std::chrono;
    // 2026-12-04T14:05:12.345Z
    const system_clock::time_point at =
        sys_days{year{2026} / 12 / 4} + hours{14} + minutes{5} + seconds{12} + milliseconds{345};
    CHECK(utc_stamp(at) == "2026-12-04T14:05:12.345Z");
    CHECK(utc_stamp(at, true) == "20261204T140512.345Z");
    CHECK(screenshot_name(at, 2, "veg-box", true) ==
          "20261204T140512.345Z-tab2-veg-box-ordered.png");
    CHECK(screenshot_name(at, 1, "", false) == "20261204T140512.345Z-tab1-no-sku-no-order.png");
    CHECK(screenshot_name(at, 3, "../a b/c:d", false) ==
          "20261204T140512.345Z-tab3-_.._a_b_c_d-no-order.png");
    CHECK(screenshot_name(at, 1, std::string(100, 'x'), true) ==
          "20261204T140512.345Z-tab1-" + std::string(64, 'x') + "-ordered.png");
  }

  TEST_CASE("grocery_grabber summary: one line per tab - what it bought or why not") {
    tab_plan plan;
    plan.number = 2;
    tab_outcome bought;
    bought.result.ordered = true;
    bought.result.sku = "veg-box";
    bought.result.quantity = 1;
    bought.result.requested = 2;
    bought.result.confirmation = "Order confirmed #1: 1 x veg-box";
    CHECK(summary(plan, bought) ==
          "tab 2: bought 1 x veg-box (2 asked): Order confirmed #1: 1 x veg-box");
    tab_outcome late;
    late.ec = seckill::errc::timed_out;
    CHECK(summary(plan, late) == "tab 2: no order: the deadline passed");
    tab_outcome closed;
    closed.ec = seckill::browser::errc::browser_closed;
    CHECK(summary(plan, closed) == "tab 2: no order: " + closed.ec.message());
  }
}

TEST_SUITE("unit") {
  TEST_CASE("grocery_grabber options: --sandbox takes auto - on or off") {
    namespace sb = seckill::browser;
    const auto plain = parsed({"demo", "s.txt"});
    CHECK(plain.sandbox == sb::sandbox_mode::automatic);
    CHECK_FALSE(plain.sandbox_given);
    CHECK(parsed({"demo", "s.txt", "--sandbox", "auto"}).sandbox == sb::sandbox_mode::automatic);
    CHECK(parsed({"demo", "s.txt", "--sandbox", "auto"}).sandbox_given);
    CHECK(parsed({"demo", "s.txt", "--sandbox=on"}).sandbox == sb::sandbox_mode::on);
    CHECK(parsed({"--sandbox", "off", "demo", "s.txt"}).sandbox == sb::sandbox_mode::off);
    CHECK(error({"demo", "s.txt", "--sandbox"}) == "--sandbox needs a value");
    CHECK(error({"demo", "s.txt", "--sandbox", "yes"}) ==
          "--sandbox: expected auto, on or off, saw 'yes'");
    CHECK(error({"demo", "s.txt", "--sandbox=automatic"}) ==
          "--sandbox: expected auto, on or off, saw 'automatic'");
    CHECK(usage("gg").find("--sandbox MODE") != std::string::npos);
  }

  TEST_CASE("grocery_grabber options: --profile takes a directory and --login needs it") {
    const auto o = parsed({"demo", "s.txt", "--profile", "/var/lib/shop-profile"});
    CHECK(o.profile_dir == "/var/lib/shop-profile");
    CHECK_FALSE(o.login);
    CHECK(parsed({"demo", "s.txt"}).profile_dir.empty());
    CHECK(error({"demo", "s.txt", "--profile"}) == "--profile needs a value");
    CHECK(error({"demo", "s.txt", "--profile="}) ==
          "--profile: expected the path of a profile directory, saw ''");
    const auto login = parsed({"http://127.0.0.1:8080/members", "s.txt", "--login", "--profile=p"});
    CHECK(login.login);
    CHECK(login.profile_dir == "p");
    CHECK(error({"demo", "s.txt", "--login"}) ==
          "--login needs --profile DIR: the login is kept in that profile for later runs");
    CHECK(error({"demo", "s.txt", "--login=yes", "--profile", "p"}) ==
          "--login takes no value (saw 'yes')");
    CHECK(error({"demo", "a.txt", "demo-grid", "b.txt", "--login", "--profile", "p"}) ==
          "--login logs in on one shop in one window: give one <shop> <strategy-file> pair, not 2");
    CHECK(usage("gg").find("--login") != std::string::npos);
  }

  TEST_CASE("grocery_grabber options: --login needs a display") {
    CHECK(login_display_problem(":0", nullptr).empty());
    CHECK(login_display_problem(nullptr, "wayland-0").empty());
    CHECK(login_display_problem("", "wayland-0").empty());
    const std::string none = login_display_problem(nullptr, nullptr);
    CHECK(none.find("--login opens a visible browser window, and there is no display") == 0);
    CHECK(none.find("DISPLAY and WAYLAND_DISPLAY are unset") != std::string::npos);
    CHECK(login_display_problem("", "") == none);
  }

  TEST_CASE("grocery_grabber options: --connect takes a browser's http or ws URL") {
    CHECK(parsed({"demo", "s.txt", "--connect", "http://127.0.0.1:9222"}).connect ==
          "http://127.0.0.1:9222");
    CHECK(parsed({"demo", "s.txt", "--connect=ws://127.0.0.1:9222/devtools/browser/abc"}).connect ==
          "ws://127.0.0.1:9222/devtools/browser/abc");
    CHECK(parsed({"demo", "s.txt", "--connect", "http://[::1]:9222"}).connect ==
          "http://[::1]:9222");
    CHECK(error({"demo", "s.txt", "--connect"}) == "--connect needs a value");
    CHECK(error({"demo", "s.txt", "--connect", "127.0.0.1:9222"}) ==
          "--connect: expected http://host:port (as in http://127.0.0.1:9222) or "
          "ws://host:port/path, saw '127.0.0.1:9222'");
    CHECK(error({"demo", "s.txt", "--connect="}).find("--connect: expected http://host:port") == 0);
    CHECK(error({"demo", "s.txt", "--connect", "https://127.0.0.1:9222"})
              .find("TLS not supported (https://)") != std::string::npos);
    CHECK(error({"demo", "s.txt", "--connect", "http://127.0.0.1:99999"}).find("--connect: ") == 0);
    // A token in the URL is never echoed.
    const std::string m = error({"demo", "s.txt", "--connect", "ftp://u:s3cret@h:1/?token=t0k3n"});
    CHECK(m.find("--connect: ") == 0);
    CHECK(m.find("s3cret") == std::string::npos);
    CHECK(m.find("t0k3n") == std::string::npos);
    const std::string m2 = error({"demo", "s.txt", "--connect", "http://u:s3cret@127.0.0.1:9222"});
    CHECK(m2.find("--connect: ") == 0);
    CHECK(m2.find("s3cret") == std::string::npos);
  }

  TEST_CASE("grocery_grabber options: --connect with a flag for a launched browser is refused") {
    const std::string tail = " is for a browser this program launches: use one or the other";
    const std::string head = "--connect drives a browser that is already running; ";
    CHECK(error({"demo", "s.txt", "--connect", "http://127.0.0.1:9222", "--profile", "p"}) ==
          head + "--profile" + tail);
    CHECK(error({"demo", "s.txt", "--login", "--profile", "p", "--connect",
                 "http://127.0.0.1:9222"}) == head + "--profile" + tail);
    CHECK(error({"demo", "s.txt", "--connect", "http://127.0.0.1:9222", "--login"}) ==
          head + "--login" + tail);
    CHECK(error({"demo", "s.txt", "--sandbox", "auto", "--connect", "http://127.0.0.1:9222"}) ==
          head + "--sandbox" + tail);
    CHECK(error({"demo", "s.txt", "--connect", "http://127.0.0.1:9222", "--chromium", "/c"}) ==
          head + "--chromium" + tail);
    CHECK(parsed({"demo", "s.txt", "--connect", "http://127.0.0.1:9222", "--site-profile", "g"})
              .connect == "http://127.0.0.1:9222");
  }
}

TEST_SUITE("unit") {
  TEST_CASE("grocery_grabber options: --notify - --notify-on and --no-desktop-notify") {
    const auto o =
        parsed({"demo", "s.txt", "--notify", "ntfy:https://ntfy.sh/t", "--notify", "https://h/x",
                "--notify-on", "ordered, hand-off", "--no-desktop-notify"});
    REQUIRE(o.notify.size() == 2);
    CHECK(o.notify[0].type == seckill::browser::webhook::kind::ntfy);
    CHECK(o.notify[1].type == seckill::browser::webhook::kind::json);
    REQUIRE(o.notify_on);
    CHECK(o.notify_on->has(seckill::browser::notice_kind::hand_off));
    CHECK_FALSE(o.notify_on->has(seckill::browser::notice_kind::failed));
    CHECK_FALSE(o.desktop_notify);
    CHECK(parsed({"demo", "s.txt"}).desktop_notify);
    const std::string bad =
        error({"demo", "s.txt", "--notify", "https://u:s3cret@h/bot1:TOKEN?token=s3cret&x={what}"});
    CHECK(bad.find("--notify: the URL has an unknown placeholder {what}") == 0);
    CHECK(bad.find("s3cret") == std::string::npos);
    CHECK(bad.find("TOKEN") == std::string::npos);
    CHECK(error({"demo", "s.txt", "--notify", "ftp://h/x"})
              .find("--notify: the URL has the scheme 'ftp'") == 0);
    CHECK(error({"demo", "s.txt", "--notify-on", "soon"}) ==
          "--notify-on: unknown event 'soon' (known: ordered, failed, sold-out, hand-off, stock, "
          "stopped, all)");
  }
}

TEST_SUITE("unit") {
  TEST_CASE("grocery_grabber options: --visible - not with --connect - and it needs a display") {
    CHECK(parsed({"demo", "s.txt", "--visible"}).visible);
    CHECK_FALSE(parsed({"demo", "s.txt"}).visible);
    CHECK(error({"demo", "s.txt", "--visible", "--connect", "http://127.0.0.1:9222"}) ==
          "--connect drives a browser that is already running; --visible is for a browser this "
          "program launches: use one or the other");
    CHECK(error({"demo", "s.txt", "--visible=yes"}).find("--visible") != std::string::npos);
    CHECK(visible_display_problem(nullptr, nullptr).find("--visible opens a browser window") == 0);
    CHECK(visible_display_problem(":0", nullptr).empty());
    CHECK(visible_display_problem(nullptr, "wayland-0").empty());
  }
}

TEST_SUITE("unit") {
  TEST_CASE("grocery_grabber options: --dry-run and --monitor - one or the other") {
    CHECK_FALSE(parsed({"demo", "s.txt"}).mode);
    CHECK(parsed({"demo", "s.txt", "--dry-run"}).mode == seckill::browser::grab_mode::dry_run);
    CHECK(parsed({"--monitor", "demo", "s.txt"}).mode == seckill::browser::grab_mode::monitor);
    CHECK(error({"demo", "s.txt", "--dry-run", "--monitor"}) ==
          "--dry-run and --monitor exclude each other: give one");
    CHECK(error({"demo", "s.txt", "--monitor=yes"}).find("--monitor") != std::string::npos);
  }

  TEST_CASE("grocery_grabber options: --clock-offset takes whole signed milliseconds") {
    CHECK_FALSE(parsed({"demo", "s.txt"}).clock_offset);
    CHECK(parsed({"demo", "s.txt", "--clock-offset", "-1250"}).clock_offset ==
          std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(-1250)));
    CHECK(parsed({"--clock-offset=300", "demo", "s.txt"}).clock_offset ==
          std::optional<std::chrono::milliseconds>(std::chrono::milliseconds(300)));
    CHECK(error({"demo", "s.txt", "--clock-offset", "1.5"}).find("--clock-offset") !=
          std::string::npos);
    CHECK(error({"demo", "s.txt", "--clock-offset", "1.5"}).find("'1.5'") != std::string::npos);
    CHECK(error({"demo", "s.txt", "--clock-offset", "86400001"}).find("[-86400000, 86400000]") !=
          std::string::npos);
    CHECK_FALSE(error({"demo", "s.txt", "--clock-offset"}).empty());
  }
}

TEST_SUITE("unit") {
  TEST_CASE(
      "grocery_grabber options: --account NAME=DIR[:STRATEGY] - two or more - bad ones refused") {
    const auto o = parsed({"demo", "s.txt", "--account", "alice=profiles/alice", "--account",
                           "bob=profiles/bob:bob.txt"});
    REQUIRE(o.accounts.size() == 2);
    CHECK(o.accounts[0].name == "alice");
    CHECK(o.accounts[0].profile_dir == "profiles/alice");
    CHECK(o.accounts[0].strategy_file.empty());
    CHECK(o.accounts[1].name == "bob");
    CHECK(o.accounts[1].profile_dir == "profiles/bob");
    CHECK(o.accounts[1].strategy_file == "bob.txt");
    CHECK(parsed({"demo", "s.txt"}).accounts.empty());
    CHECK(error({"demo", "s.txt", "--account", "alice=a"}) ==
          "--account is for several accounts at once: give two or more (one account: --profile "
          "DIR)");
    CHECK(error({"demo", "s.txt", "--account", "a=x", "--account", "b"}) ==
          "--account: expected NAME=PROFILE_DIR[:STRATEGY_FILE], as in alice=profiles/alice");
    CHECK(error({"demo", "s.txt", "--account", "=x"}).find("expected NAME=PROFILE_DIR") !=
          std::string::npos);
    CHECK(error({"demo", "s.txt", "--account", "al ice=x"}) ==
          "--account: the name must be 1 to 32 letters, digits, - or _");
    CHECK(error({"demo", "s.txt", "--account", "a="}) ==
          "--account: account 'a' has no profile directory after '='");
    CHECK(error({"demo", "s.txt", "--account", "a=dir:"}) ==
          "--account: account 'a' has an empty strategy file after ':'");
    CHECK(error({"demo", "s.txt", "--account", "a=x", "--account", "a=y"}) ==
          "--account: the name 'a' is given twice");
    CHECK(error({"demo", "s.txt", "--account", "a=p/x", "--account", "b=p/./x"}) ==
          "--account: 'a' and 'b' share the profile directory 'p/./x': each account needs its own "
          "(its own cookies and session)");
    CHECK(error({"demo", "s.txt", "--account", "a=x", "--account", "b=y", "--profile", "z"})
              .find("--profile cannot be used with it") != std::string::npos);
    CHECK(error({"demo", "s.txt", "--account", "a=x", "--account", "b=y", "--connect",
                 "http://127.0.0.1:9222"})
              .find("--connect cannot be used with it") != std::string::npos);
    CHECK(error({"demo", "s.txt", "--account"}).find("--account") != std::string::npos);
    std::vector<const char*> many{"demo", "s.txt"};
    std::vector<std::string> specs;
    for (int i = 0; i < 9; ++i) specs.push_back("a" + std::to_string(i) + "=d" + std::to_string(i));
    std::vector<const char*> argv{"grocery_grabber", "demo", "s.txt"};
    for (const auto& s : specs) {
      argv.push_back("--account");
      argv.push_back(s.c_str());
    }
    auto r = parse_options(static_cast<int>(argv.size()), argv.data());
    REQUIRE(std::holds_alternative<usage_error>(r));
    CHECK(std::get<usage_error>(r).message == "at most 8 accounts, saw 9");
    CHECK(usage("g").find("--account NAME=DIR[:STRATEGY]") != std::string::npos);
    CHECK(usage("g").find("Exit status with accounts") != std::string::npos);
  }

  TEST_CASE("grocery_grabber accounts: each line names the account - one summary table") {
    tab_plan a, b;
    a.account = "alice";
    b.account = "bob";
    b.number = 2;
    CHECK(who(a) == "alice tab 1");
    CHECK(who(b) == "bob tab 2");
    CHECK(who(tab_plan{}) == "tab 1");
    tab_outcome bought, stopped;
    bought.result.ordered = true;
    bought.result.sku = "veg-box";
    bought.result.quantity = 2;
    bought.result.attempts = 2;
    bought.result.throttled = 1;
    stopped.ec = seckill::browser::errc::stopped_refused;
    stopped.result.attempts = 3;
    stopped.result.throttled = 3;
    const auto table = summary_table({summary_row_of(a, bought), summary_row_of(b, stopped)});
    REQUIRE(table.size() == 3);
    CHECK(table[0] == "account  tab  outcome             orders  tries  throttled");
    CHECK(table[1] == "alice      1  bought 2 x veg-box       1      2          1");
    CHECK(table[2] == "bob        2  stopped-refused          0      3          3");
    CHECK_FALSE(succeeded(b, stopped));
    CHECK(succeeded(a, bought));
  }
}
