// Chromium's lifecycle and the DevTools connection, in a real headless Chromium.
#include "browser/support.hpp"
#include "support/net.hpp"

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/page.hpp>

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace integration_chromium {

using namespace std::chrono_literals;
using browser_support::get;
using browser_support::io_thread;
using seckill::errc;
using seckill::browser::json;
namespace asio = boost::asio;

// Live (non-zombie) processes whose command line mentions `needle`.
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd(entry.path() / "cmdline", std::ios::binary);
    std::stringstream ss;
    ss << cmd.rdbuf();
    if (ss.str().find(needle) == std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state;
    stat >> pid >> comm >> state;
    if (state != "Z") found.push_back(std::stoi(name));
  }
  return found;
}

}  // namespace integration_chromium

using namespace integration_chromium;

TEST_SUITE("integration") {
  TEST_CASE("chromium launches headless and leaves no process and no profile behind") {
    io_thread io;
    std::filesystem::path profile;
    int pid = -1;
    {
      auto browser = seckill::browser::chromium::launch(io.io.get_executor());
      profile = browser.profile_dir();
      pid = browser.pid();
      REQUIRE(pid > 0);
      CHECK(std::filesystem::is_directory(profile));
      CHECK(std::filesystem::exists(profile / "DevToolsActivePort"));
      CHECK(browser.ws_url().rfind("ws://127.0.0.1:", 0) == 0);
      CHECK(processes_mentioning(profile.string()).size() >= 2);  // browser and its helpers
      // The browser answering is the one we started: its version over DevTools.
      auto [ec, version] =
          get(browser.connection()->async_call("Browser.getVersion", json::object(), "", asio::use_future));
      REQUIRE(!ec);
      CHECK(version.value("product", "").find("Chrome") != std::string::npos);
    }
    CHECK(processes_mentioning(profile.string()).empty());
    CHECK_FALSE(std::filesystem::exists(profile));
    CHECK_FALSE(std::filesystem::exists(profile.parent_path()));
    CHECK(::kill(pid, 0) != 0);
  }

  TEST_CASE("chromium::connect attaches to a running browser by ws:// and http:// URL") {
    io_thread io;
    auto owner = seckill::browser::chromium::launch(io.io.get_executor());
    const std::string ws = owner.ws_url();
    const std::string port = ws.substr(15, ws.find('/', 15) - 15);
    {
      auto by_ws = seckill::browser::chromium::connect(io.io.get_executor(), ws);
      auto by_http = seckill::browser::chromium::connect(io.io.get_executor(), "http://127.0.0.1:" + port);
      CHECK(by_http.ws_url() == ws);
      CHECK(by_ws.pid() == -1);
      auto [ec, targets] =
          get(by_http.connection()->async_call("Target.getTargets", json::object(), "", asio::use_future));
      REQUIRE(!ec);
      CHECK(targets["targetInfos"].is_array());
    }
    // Dropping a connection does not stop a browser it did not start.
    auto [ec, v] = get(owner.connection()->async_call("Browser.getVersion", json::object(), "", asio::use_future));
    CHECK(!ec);
  }

  TEST_CASE("chromium reports bad executables and unreachable endpoints") {
    io_thread io;
    seckill::browser::chromium_options opts;
    opts.executable = "/nonexistent/chromium-seckill";
    CHECK_THROWS_AS(seckill::browser::chromium::launch(io.io.get_executor(), opts), seckill::error);
    opts.executable = "/bin/false";  // starts, exits before listening
    CHECK_THROWS_WITH_AS(seckill::browser::chromium::launch(io.io.get_executor(), opts),
                         doctest::Contains("exited before it listened"), seckill::error);
    const auto dead = std::to_string(seckill::test::free_loopback_port());
    CHECK_THROWS_AS(seckill::browser::chromium::connect(io.io.get_executor(), "ws://127.0.0.1:" + dead + "/x"),
                    seckill::error);
    CHECK_THROWS_AS(seckill::browser::chromium::connect(io.io.get_executor(), "http://127.0.0.1:" + dead),
                    seckill::error);
    CHECK_THROWS_AS(seckill::browser::chromium::connect(io.io.get_executor(), "wss://127.0.0.1:1/x"),
                    seckill::error);
  }

  TEST_CASE("a protocol error and a JavaScript exception are distinct errors") {
    browser_support::browser_fixture f;
    auto [ec1, err] = get(f.browser.connection()->async_call("Nonexistent.method", json::object(), "",
                                                             asio::use_future));
    CHECK(ec1 == errc::cdp_error);
    CHECK(err.value("message", "").find("Nonexistent.method") != std::string::npos);

    auto [ec2, details] = get(f.page.async_evaluate("(() => { throw new Error('boom-42'); })()", asio::use_future));
    CHECK(ec2 == errc::javascript_exception);
    CHECK(details.dump().find("boom-42") != std::string::npos);

    auto [ec3, rejected] = get(f.page.async_evaluate("Promise.reject(new Error('nope-7'))", asio::use_future));
    CHECK(ec3 == errc::javascript_exception);
    CHECK(rejected.dump().find("nope-7") != std::string::npos);

    auto [ec4, syntax] = get(f.page.async_evaluate("1 +* 2", asio::use_future));
    CHECK(ec4 == errc::javascript_exception);

    // A bad parameter is the protocol's error, not the page's.
    auto [ec5, bad] = get(f.browser.connection()->async_call("Runtime.evaluate", json{{"expression", 5}},
                                                             f.page.session_id(), asio::use_future));
    CHECK(ec5 == errc::cdp_error);

    auto [ec6, ok] = get(f.page.async_evaluate("new Promise(r => setTimeout(() => r({a: [1, 'x']}), 10))",
                                               asio::use_future));
    CHECK(!ec6);
    CHECK(ok == json{{"a", json::array({1, "x"})}});
  }

  TEST_CASE("a hundred concurrent evaluates each get their own answer") {
    browser_support::browser_fixture f;
    std::vector<std::future<std::tuple<std::error_code, json>>> futures;
    for (int i = 0; i < 100; ++i) {
      // Later ones resolve sooner: replies come back out of order.
      futures.push_back(f.page.async_evaluate(
          "new Promise(r => setTimeout(() => r(" + std::to_string(i) + " * 3), " + std::to_string((100 - i) % 17) +
              "))",
          asio::use_future));
    }
    int right = 0;
    for (int i = 0; i < 100; ++i) {
      auto [ec, v] = get(futures[static_cast<std::size_t>(i)]);
      if (!ec && v == i * 3) ++right;
    }
    CHECK(right == 100);
  }

  TEST_CASE("a call times out on time and a cancelled call completes at once") {
    browser_support::browser_fixture f;
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, v] = get(f.browser.connection()->async_call(
        "Runtime.evaluate", json{{"expression", "new Promise(() => {})"}, {"awaitPromise", true}},
        f.page.session_id(), 300ms, asio::use_future));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(ec == errc::timed_out);
    CHECK(took >= 300ms);
    CHECK(took < 1500ms);

    asio::cancellation_signal signal;
    auto fut = f.browser.connection()->async_call(
        "Runtime.evaluate", json{{"expression", "new Promise(() => {})"}, {"awaitPromise", true}},
        f.page.session_id(), 10s, asio::bind_cancellation_slot(signal.slot(), asio::use_future));
    std::this_thread::sleep_for(50ms);
    asio::post(f.io.io, [&] { signal.emit(asio::cancellation_type::terminal); });
    auto [ec2, v2] = get(fut, 2s);
    CHECK(ec2 == errc::operation_aborted);
    // The connection still works.
    auto [ec3, v3] = get(f.page.async_evaluate("6 * 7", asio::use_future));
    CHECK(!ec3);
    CHECK(v3 == 42);
  }

  TEST_CASE("when chromium is killed every pending call fails at once") {
    browser_support::browser_fixture f;
    std::vector<std::future<std::tuple<std::error_code, json>>> pending;
    for (int i = 0; i < 10; ++i) {
      pending.push_back(f.browser.connection()->async_call(
          "Runtime.evaluate", json{{"expression", "new Promise(() => {})"}, {"awaitPromise", true}},
          f.page.session_id(), 60s, asio::use_future));
    }
    auto waiting = f.page.async_wait_for("#never-there", 60s, asio::use_future);
    std::this_thread::sleep_for(100ms);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(-f.browser.pid(), SIGKILL);
    for (auto& p : pending) {
      auto [ec, v] = get(p, 5s);
      CHECK(ec == errc::browser_closed);
    }
    auto [ec_wait, box] = get(waiting, 5s);
    CHECK(ec_wait == errc::browser_closed);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    // Later calls fail immediately too.
    auto [ec_late, v_late] = get(f.page.async_evaluate("1", asio::use_future), 2s);
    CHECK(ec_late == errc::browser_closed);
  }
}
