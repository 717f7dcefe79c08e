// Chromium's lifecycle and the DevTools connection, in a real headless Chromium.
#include "browser/support.hpp"
#include "support/net.hpp"

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/page.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace integration_chromium {

using namespace std::chrono_literals;
using browser_support::get;
using browser_support::io_thread;
using seckill::errc;
using json = nlohmann::json;
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

// A DevTools endpoint on 127.0.0.1 that answers each call by its method:
// Test.badError gets a reply whose error is a string, Test.afterGarbage gets a
// frame that is not JSON and then a good reply, Test.events gets two events
// and a good reply, Test.loneSurrogate a reply JSON cannot hold; anything else
// gets {"echo": method}. handshake() is the upgrade request's target and Host.
class fake_devtools {
 public:
  fake_devtools() : acceptor_(io_, {boost::asio::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  fake_devtools(const fake_devtools&) = delete;
  fake_devtools& operator=(const fake_devtools&) = delete;
  ~fake_devtools() { thread_.join(); }  // ends when the client closes
  [[nodiscard]] std::string port() const {
    return std::to_string(acceptor_.local_endpoint().port());
  }
  [[nodiscard]] std::string url() const {
    return "ws://127.0.0.1:" + port() + "/devtools/browser/fake";
  }
  struct request_seen {
    std::string target, host;
  };
  std::future<request_seen> handshake() { return seen_.get_future(); }

 private:
  void serve() {
    namespace http = boost::beast::http;
    namespace websocket = boost::beast::websocket;
    boost::asio::ip::tcp::socket socket(io_);
    acceptor_.accept(socket);
    boost::beast::flat_buffer upgrade_buffer;
    http::request<http::empty_body> upgrade;
    http::read(socket, upgrade_buffer, upgrade);
    seen_.set_value({std::string(upgrade.target()), std::string(upgrade[http::field::host])});
    websocket::stream<boost::asio::ip::tcp::socket> ws(std::move(socket));
    ws.accept(upgrade);
    ws.text(true);
    boost::beast::flat_buffer buffer;
    auto send = [&](const std::string& text) { ws.write(boost::asio::buffer(text)); };
    for (;;) {
      boost::system::error_code ec;
      ws.read(buffer, ec);
      if (ec) return;
      const json call = json::parse(boost::beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      const std::string id = std::to_string(call["id"].get<std::uint64_t>());
      const std::string method = call["method"].get<std::string>();
      try {
        if (method == "Test.badError") {
          send(R"({"id":)" + id + R"(,"error":"boom"})");
        } else if (method == "Test.afterGarbage") {
          send("<html>not a DevTools frame</html>");
          send(R"({"id":)" + id + R"(,"result":{"after":"garbage"}})");
        } else if (method == "Test.events") {
          send(R"({"method":"Test.fired","params":{"n":1}})");
          send(R"({"method":"Test.fired","params":{"n":2}})");
          send(R"({"id":)" + id + R"(,"result":{}})");
        } else if (method == "Test.loneSurrogate") {
          send(R"({"id":)" + id + R"(,"result":{"result":{"type":"string","value":"\ud800"}}})");
        } else {
          send(json{{"id", call["id"]}, {"result", {{"echo", method}}}}.dump());
        }
      } catch (const boost::system::system_error&) {
        return;
      }
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::promise<request_seen> seen_;
  std::thread thread_;
};

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
      auto [ec, version] = get(browser.connection()->async_call(
          "Browser.getVersion", json::object(), "", asio::use_future));
      REQUIRE(!ec);
      CHECK(version.value("product", "").find("Chrome") != std::string::npos);
    }
    CHECK(processes_mentioning(profile.string()).empty());
    CHECK_FALSE(std::filesystem::exists(profile));
    CHECK_FALSE(std::filesystem::exists(profile.parent_path()));
    CHECK(::kill(pid, 0) != 0);
  }

  TEST_CASE("chromium dies with the thread that launched it unless told otherwise") {
    io_thread io;
    std::optional<seckill::browser::chromium> kept, killed;
    std::thread launcher([&] {
      seckill::browser::chromium_options outlive;
      outlive.die_with_launching_thread = false;
      kept.emplace(seckill::browser::chromium::launch(io.io.get_executor(), outlive));
      killed.emplace(seckill::browser::chromium::launch(io.io.get_executor()));
    });
    launcher.join();  // as if the program had crashed: no destructor ran
    REQUIRE(kept);
    REQUIRE(killed);
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {
      std::ifstream stat("/proc/" + std::to_string(killed->pid()) + "/stat");
      std::string pid, comm, state;
      stat >> pid >> comm >> state;
      gone = !stat || state == "Z";  // a zombie until reaped: dead all the same
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(gone);
    auto [ec, v] = get(
        kept->connection()->async_call("Browser.getVersion", json::object(), "", asio::use_future));
    CHECK(!ec);  // the other one still answers
  }

  TEST_CASE("chromium::connect attaches to a running browser by ws:// and http:// URL") {
    io_thread io;
    auto owner = seckill::browser::chromium::launch(io.io.get_executor());
    const std::string ws = owner.ws_url();
    const std::string port = ws.substr(15, ws.find('/', 15) - 15);
    {
      auto by_ws = seckill::browser::chromium::connect(io.io.get_executor(), ws);
      auto by_http =
          seckill::browser::chromium::connect(io.io.get_executor(), "http://127.0.0.1:" + port);
      CHECK(by_http.ws_url() == ws);
      // The scheme is case-insensitive; a path in an http:// URL is not what is asked.
      auto by_upper = seckill::browser::chromium::connect(
          io.io.get_executor(), "HTTP://127.0.0.1:" + port + "/json/list?x=1#top");
      CHECK(by_upper.ws_url() == ws);
      CHECK(by_ws.pid() == -1);
      auto [ec, targets] = get(by_http.connection()->async_call("Target.getTargets", json::object(),
                                                                "", asio::use_future));
      REQUIRE(!ec);
      CHECK(targets["targetInfos"].is_array());
    }
    // Dropping a connection does not stop a browser it did not start.
    auto [ec, v] = get(
        owner.connection()->async_call("Browser.getVersion", json::object(), "", asio::use_future));
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
    CHECK_THROWS_AS(
        seckill::browser::chromium::connect(io.io.get_executor(), "ws://127.0.0.1:" + dead + "/x"),
        seckill::error);
    CHECK_THROWS_AS(
        seckill::browser::chromium::connect(io.io.get_executor(), "http://127.0.0.1:" + dead),
        seckill::error);
    CHECK_THROWS_WITH_AS(
        seckill::browser::chromium::connect(io.io.get_executor(), "wss://127.0.0.1:1/x"),
        doctest::Contains("TLS not supported (wss://)"), seckill::error);
    CHECK_THROWS_WITH_AS(
        seckill::browser::chromium::connect(io.io.get_executor(), "https://127.0.0.1:1"),
        doctest::Contains("TLS not supported (https://)"), seckill::error);
    // A token in the URL is not repeated in the error.
    const std::string token = "s3cr3t-t0k3n";
    for (const std::string& url : {"ws://127.0.0.1:" + dead + "/devtools/browser/x?token=" + token,
                                   "http://127.0.0.1:" + dead + "/?token=" + token}) {
      CAPTURE(url);
      try {
        (void)seckill::browser::chromium::connect(io.io.get_executor(), url);
        FAIL("no exception");
      } catch (const seckill::error& e) {
        const std::string what = e.what();
        CHECK(e.code() == errc::connection_refused);
        CHECK_MESSAGE(what.find(token) == std::string::npos, what);
        CHECK_MESSAGE(what.find("token=***") != std::string::npos, what);
      }
    }
  }

  TEST_CASE("the DevTools handshake asks for the URL's path and query with host:port as Host") {
    fake_devtools server;
    io_thread io;
    auto seen = server.handshake();
    auto conn = seckill::browser::cdp::connection::connect(io.io.get_executor(),
                                                           server.url() + "?token=t0k&x=%20y");
    REQUIRE(seen.wait_for(5s) == std::future_status::ready);
    const auto request = seen.get();
    CHECK(request.target == "/devtools/browser/fake?token=t0k&x=%20y");
    CHECK(request.host == "127.0.0.1:" + server.port());
    CHECK(conn->url() == server.url() + "?token=t0k&x=%20y");
    auto [ec, v] = get(conn->async_call("Test.echo", json::object(), "", 10s, asio::use_future));
    CHECK(!ec);
    CHECK(v == json{{"echo", "Test.echo"}});
    conn->close();
  }

  TEST_CASE("a protocol error and a JavaScript exception are distinct errors") {
    browser_support::browser_fixture f;
    auto [ec1, err] = get(f.browser.connection()->async_call("Nonexistent.method", json::object(),
                                                             "", asio::use_future));
    CHECK(ec1 == seckill::browser::errc::cdp_error);
    CHECK(err.value("message", "").find("Nonexistent.method") != std::string::npos);

    auto [ec2, details] =
        get(f.page.async_evaluate("(() => { throw new Error('boom-42'); })()", asio::use_future));
    CHECK(ec2 == seckill::browser::errc::javascript_exception);
    CHECK(details.dump().find("boom-42") != std::string::npos);

    auto [ec3, rejected] =
        get(f.page.async_evaluate("Promise.reject(new Error('nope-7'))", asio::use_future));
    CHECK(ec3 == seckill::browser::errc::javascript_exception);
    CHECK(rejected.dump().find("nope-7") != std::string::npos);

    auto [ec4, syntax] = get(f.page.async_evaluate("1 +* 2", asio::use_future));
    CHECK(ec4 == seckill::browser::errc::javascript_exception);

    // A bad parameter is the protocol's error, not the page's.
    auto [ec5, bad] = get(f.browser.connection()->async_call(
        "Runtime.evaluate", json{{"expression", 5}}, f.page.session_id(), asio::use_future));
    CHECK(ec5 == seckill::browser::errc::cdp_error);

    auto [ec6, ok] = get(f.page.async_evaluate(
        "new Promise(r => setTimeout(() => r({a: [1, 'x']}), 10))", asio::use_future));
    CHECK(!ec6);
    CHECK(ok == json{{"a", json::array({1, "x"})}});
  }

  TEST_CASE("a hundred concurrent evaluates each get their own answer") {
    browser_support::browser_fixture f;
    std::vector<std::future<std::tuple<std::error_code, json>>> futures;
    for (int i = 0; i < 100; ++i) {
      // Later ones resolve sooner: replies come back out of order.
      futures.push_back(f.page.async_evaluate("new Promise(r => setTimeout(() => r(" +
                                                  std::to_string(i) + " * 3), " +
                                                  std::to_string((100 - i) % 17) + "))",
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
      CHECK(ec == seckill::browser::errc::browser_closed);
    }
    auto [ec_wait, box] = get(waiting, 5s);
    CHECK(ec_wait == seckill::browser::errc::browser_closed);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    // Later calls fail immediately too.
    auto [ec_late, v_late] = get(f.page.async_evaluate("1", asio::use_future), 2s);
    CHECK(ec_late == seckill::browser::errc::browser_closed);
  }

  TEST_CASE("malformed frames get a clear error at once and lose no other call or event") {
    fake_devtools server;
    io_thread io;
    auto conn = seckill::browser::cdp::connection::connect(io.io.get_executor(), server.url());
    std::mutex m;
    std::vector<std::string> problems;
    std::vector<int> fired;
    conn->on_protocol_error([&](const std::string& what) {
      std::lock_guard lock(m);
      problems.push_back(what);
    });
    auto sub = conn->subscribe("", "Test.fired", [&](const json& p) {
      const int n = p.value("n", 0);
      {
        std::lock_guard lock(m);
        fired.push_back(n);
      }
      if (n == 1) throw std::runtime_error("handler trouble");
    });

    // A reply with a malformed error completes its call now, not at its timeout.
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec1, v1] =
        get(conn->async_call("Test.badError", json::object(), "", 10s, asio::use_future));
    CHECK(ec1 == errc::protocol_error);
    CHECK(v1.value("message", "").find("error is not {code: integer, message: string}") !=
          std::string::npos);
    auto [ec2, v2] =
        get(conn->async_call("Test.loneSurrogate", json::object(), "", 10s, asio::use_future));
    CHECK(ec2 == errc::protocol_error);
    CHECK(v2.value("message", "").find("is not JSON") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);

    // A frame that is not CDP is reported; the reply after it still arrives.
    auto [ec3, v3] =
        get(conn->async_call("Test.afterGarbage", json::object(), "", 10s, asio::use_future));
    CHECK(!ec3);
    CHECK(v3 == json{{"after", "garbage"}});

    // A handler that throws is reported; the next event is still delivered.
    auto [ec4, v4] =
        get(conn->async_call("Test.events", json::object(), "", 10s, asio::use_future));
    CHECK(!ec4);
    auto [ec5, v5] = get(conn->async_call("Test.echo", json::object(), "", 10s, asio::use_future));
    CHECK(!ec5);
    CHECK(v5 == json{{"echo", "Test.echo"}});
    CHECK(conn->is_open());
    {
      std::lock_guard lock(m);
      CHECK(fired == std::vector<int>{1, 2});
      REQUIRE(problems.size() == 4);
      CHECK(problems[0].find("reply 1's error is not") != std::string::npos);
      CHECK(problems[1].find("reply 2 is not JSON") != std::string::npos);
      CHECK(problems[2].find("not JSON: '<html>not a DevTools frame</html>'") != std::string::npos);
      CHECK(problems[3] == "handler of Test.fired threw: handler trouble");
    }
    CHECK(conn->protocol_errors() == 4);
    conn->close();
  }
}
