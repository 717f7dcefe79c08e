// The sandbox decision for each mode and the flags it gives Chromium; the
// SingletonLock and log-line readers chromium::launch uses to explain a
// refusal.
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/sandbox.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace unit_sandbox {

namespace sb = seckill::browser;

bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

}  // namespace unit_sandbox

using namespace unit_sandbox;

TEST_SUITE("unit") {
  TEST_CASE("sandbox automatic is off only as root - on and off force it") {
    const auto as_root = sb::choose_sandbox(sb::sandbox_mode::automatic, true);
    CHECK_FALSE(as_root.on);
    CHECK(as_root.reason == "running as root (euid 0), where Chromium's sandbox cannot run");
    const auto as_user = sb::choose_sandbox(sb::sandbox_mode::automatic, false);
    CHECK(as_user.on);
    CHECK(as_user.reason == "not running as root");
    for (const bool root : {true, false}) {
      CAPTURE(root);
      CHECK(sb::choose_sandbox(sb::sandbox_mode::on, root).on);
      CHECK(sb::choose_sandbox(sb::sandbox_mode::on, root).reason == "forced by sandbox = on");
      CHECK_FALSE(sb::choose_sandbox(sb::sandbox_mode::off, root).on);
      CHECK(sb::choose_sandbox(sb::sandbox_mode::off, root).reason == "forced by sandbox = off");
    }
    CHECK(sb::chromium_options{}.sandbox == sb::sandbox_mode::automatic);
  }

  TEST_CASE("sandbox modes are named auto - on and off and read back") {
    for (const auto m : {sb::sandbox_mode::automatic, sb::sandbox_mode::on, sb::sandbox_mode::off})
      CHECK(sb::parse_sandbox_mode(sb::to_string(m)) == m);
    CHECK(sb::to_string(sb::sandbox_mode::automatic) == "auto");
    CHECK_FALSE(sb::parse_sandbox_mode("automatic").has_value());
    CHECK_FALSE(sb::parse_sandbox_mode("ON").has_value());
    CHECK_FALSE(sb::parse_sandbox_mode("").has_value());
  }

  TEST_CASE("chromium_arguments passes --no-sandbox exactly when the sandbox is off") {
    sb::chromium_options opts;
    CHECK(has_flag(sb::chromium_arguments(opts, "/tmp/p", false), "--no-sandbox"));
    const auto sandboxed = sb::chromium_arguments(opts, "/tmp/p", true);
    CHECK_FALSE(has_flag(sandboxed, "--no-sandbox"));
    CHECK(has_flag(sandboxed, "--headless"));
    CHECK(has_flag(sandboxed, "--user-data-dir=/tmp/p"));
    // The two-argument form decides for this process as choose_sandbox does.
    const bool root = ::geteuid() == 0;
    opts.sandbox = sb::sandbox_mode::automatic;
    CHECK(has_flag(sb::chromium_arguments(opts, "/tmp/p"), "--no-sandbox") == root);
    opts.sandbox = sb::sandbox_mode::on;
    CHECK_FALSE(has_flag(sb::chromium_arguments(opts, "/tmp/p"), "--no-sandbox"));
    opts.sandbox = sb::sandbox_mode::off;
    CHECK(has_flag(sb::chromium_arguments(opts, "/tmp/p"), "--no-sandbox"));
    // A persistent profile is passed as it is.
    CHECK(has_flag(sb::chromium_arguments(opts, "/home/u/.shop-profile", true),
                   "--user-data-dir=/home/u/.shop-profile"));
  }

  TEST_CASE("a SingletonLock link names the host and pid that hold a profile") {
    const auto h = sb::detail::parse_singleton_lock("vm-4242");
    REQUIRE(h.has_value());
    CHECK(h->host == "vm");
    CHECK(h->pid == 4242);
    const auto dashed = sb::detail::parse_singleton_lock("build-host-7-31337");
    REQUIRE(dashed.has_value());
    CHECK(dashed->host == "build-host-7");
    CHECK(dashed->pid == 31337);
    CHECK_FALSE(sb::detail::parse_singleton_lock("vm").has_value());
    CHECK_FALSE(sb::detail::parse_singleton_lock("vm-").has_value());
    CHECK_FALSE(sb::detail::parse_singleton_lock("-12").has_value());
    CHECK_FALSE(sb::detail::parse_singleton_lock("vm-12x").has_value());
    CHECK_FALSE(sb::detail::parse_singleton_lock("vm-0").has_value());
  }

  TEST_CASE("log_line_with finds Chromium's own words without their prefix") {
    const std::string log =
        "/usr/bin/chromium: 9: [: x: unexpected operator\n"
        "[29143:29143:1204/135813.152254:ERROR:content/browser/zygote_host/"
        "zygote_host_impl_linux.cc:103] Running as root without --no-sandbox is not supported. "
        "See https://crbug.com/638180.\n";
    CHECK(sb::detail::log_line_with(log, "without --no-sandbox") ==
          "Running as root without --no-sandbox is not supported. See https://crbug.com/638180.");
    CHECK(sb::detail::log_line_with(log, "unexpected operator") ==
          "/usr/bin/chromium: 9: [: x: unexpected operator");
    CHECK(sb::detail::log_line_with(log, "ProcessSingleton").empty());
  }
}
