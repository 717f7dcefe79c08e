// Notifications over the network: a webhook receiver this test runs on
// 127.0.0.1 (Beast, plain or TLS with the test CA's certificate) takes what
// browser::notifier sends: each event with its fields, templates, retries
// after a 500 and none after a 400, timeouts, a multipart screenshot that
// arrives byte for byte, secrets that never show. End to end, a grabber on
// the demo shop in Chromium sends exactly one "ordered" notice, and a
// receiver that never answers does not delay it. The desktop: a Notify call
// on a session bus this test runs (dbus-daemon, watched with dbus-monitor)
// under Xvfb, when the machine has them.
#include "browser/desktop.hpp"
#include "browser/support.hpp"
#include "shop/shop_server.hpp"
#include "support/error_message.hpp"
#include "support/net.hpp"
#include "support/tls_certs.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/browser/notifier.hpp>
#include <seckill/detail/base64.hpp>
#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace integration_notify {

using namespace std::chrono_literals;
using browser_support::get;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace sb = seckill::browser;
using tcp = asio::ip::tcp;

/// One request the receiver took.
struct received {
  std::string method, target, content_type, authorization, body;
};

/// A webhook receiver on 127.0.0.1: records every request and answers with
/// the statuses queued (then 200), or, silent, never answers at all.
class webhook_receiver {
 public:
  explicit webhook_receiver(bool tls = false) : tls_(tls), acceptor_(io_) {
    if (tls_) {
      const auto& pki = seckill::test::test_pki::get();
      ssl_.use_certificate_chain_file(pki.server_cert());
      ssl_.use_private_key_file(pki.server_key(), asio::ssl::context::pem);
    }
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;
  ~webhook_receiver() {
    io_.stop();
    thread_.join();
  }

  [[nodiscard]] std::string url(const std::string& path = "/hook") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] unsigned short port() const { return port_; }

  void answer_with(std::vector<unsigned> statuses) {
    std::lock_guard lock(m_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  void set_silent(bool s) {
    std::lock_guard lock(m_);
    silent_ = s;
  }
  [[nodiscard]] std::vector<received> requests() {
    std::lock_guard lock(m_);
    return got_;
  }
  /// Waits until `n` requests came, at most `bound`.
  bool wait_for(std::size_t n, std::chrono::milliseconds bound = 20s) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, bound, [&] { return got_.size() >= n; });
  }

 private:
  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      if (tls_) {
        auto s = std::make_shared<asio::ssl::stream<beast::tcp_stream>>(
            beast::tcp_stream(std::move(sock)), ssl_);
        asio::co_spawn(io_, serve_tls(s), asio::detached);
      } else {
        auto s = std::make_shared<beast::tcp_stream>(std::move(sock));
        asio::co_spawn(io_, serve(s), asio::detached);
      }
    }
  }

  asio::awaitable<void> serve_tls(std::shared_ptr<asio::ssl::stream<beast::tcp_stream>> s) {
    auto [hec] = co_await s->async_handshake(asio::ssl::stream_base::server,
                                             asio::as_tuple(asio::use_awaitable));
    if (hec) co_return;
    co_await serve(s);
  }

  template <class Stream>
  asio::awaitable<void> serve(std::shared_ptr<Stream> s) {
    beast::flat_buffer buf;
    http::request_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    auto [rec, n] = co_await http::async_read(*s, buf, parser, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;
    const auto& req = parser.get();
    unsigned status = 200;
    bool silent = false;
    {
      std::lock_guard lock(m_);
      got_.push_back({std::string(req.method_string()), std::string(req.target()),
                      std::string(req[http::field::content_type]),
                      std::string(req[http::field::authorization]), req.body()});
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      silent = silent_;
    }
    cv_.notify_all();
    if (silent) {  // hold the connection, never answer
      asio::steady_timer t(io_, 1h);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok";
    res.prepare_payload();
    co_await http::async_write(*s, res, asio::as_tuple(asio::use_awaitable));
  }

  bool tls_;
  asio::io_context io_;
  asio::ssl::context ssl_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<unsigned> statuses_;
  bool silent_ = false;
  std::vector<received> got_;
};

/// A notifier's log, kept for searching.
struct notify_log {
  std::mutex m;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view l) {
      std::lock_guard lock(m);
      lines.emplace_back(l);
    };
  }
  int count(const std::string& needle) {
    std::lock_guard lock(m);
    return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(needle) != std::string::npos;
    }));
  }
  std::string all() {
    std::lock_guard lock(m);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

/// Options for webhooks only (no desktop), with short pauses for the tests.
sb::notifier_options webhook_only(std::vector<sb::webhook> hooks, notify_log& log) {
  sb::notifier_options o;
  o.webhooks = std::move(hooks);
  o.desktop = false;
  o.backoff = 20ms;
  o.backoff_max = 100ms;
  o.timeout = 5s;
  o.log = log.sink();
  return o;
}

sb::notice notice_of(sb::notice_kind k, std::string text = "why") {
  sb::notice n;
  n.kind = k;
  n.sku = "veg-box";
  n.quantity = 2;
  n.text = std::move(text);
  n.tab = "1";
  n.at = std::chrono::system_clock::now();
  return n;
}

/// The bytes of the multipart part named `name` in `body` (content type `type`).
std::optional<std::string> part_of(const std::string& body, const std::string& type,
                                   const std::string& name) {
  const auto b = type.find("boundary=");
  if (b == std::string::npos) return std::nullopt;
  const std::string delim = "--" + type.substr(b + 9);
  const std::string head = "name=\"" + name + "\"";
  for (std::size_t at = body.find(delim); at != std::string::npos;) {
    const auto next = body.find("\r\n" + delim, at + delim.size());
    if (next == std::string::npos) break;
    const std::string part = body.substr(at + delim.size(), next - at - delim.size());
    const auto blank = part.find("\r\n\r\n");
    if (blank != std::string::npos && part.substr(0, blank).find(head) != std::string::npos)
      return part.substr(blank + 4);
    at = next + 2;
  }
  return std::nullopt;
}

}  // namespace integration_notify

using namespace integration_notify;

TEST_SUITE("integration") {
  TEST_CASE("notifier: each event reaches the webhook with its fields") {
    webhook_receiver rx;
    browser_support::io_thread io;
    notify_log log;
    sb::notifier n(io.io.get_executor(), webhook_only({sb::parse_webhook(rx.url())}, log));
    for (const auto k : {sb::notice_kind::ordered, sb::notice_kind::failed,
                         sb::notice_kind::sold_out, sb::notice_kind::hand_off})
      n.notify(notice_of(k, "text of " + std::string(sb::to_string(k))));
    const std::error_code ec = get(n.async_flush(asio::use_future));
    CHECK_FALSE(ec);
    const auto got = rx.requests();
    REQUIRE(got.size() == 4);
    std::vector<std::string> events;
    for (const auto& r : got) {
      CHECK(r.method == "POST");
      CHECK(r.target == "/hook");
      CHECK(r.content_type == "application/json");
      const auto j = nlohmann::json::parse(r.body);
      events.push_back(j.at("event").get<std::string>());
      CHECK(j.at("sku") == "veg-box");
      CHECK(j.at("quantity") == 2);
      CHECK(j.at("tab") == "1");
      CHECK(j.at("text") == "text of " + j.at("event").get<std::string>());
      CHECK(j.at("title").get<std::string>().rfind("seckill: " + j.at("event").get<std::string>(),
                                                   0) == 0);
    }
    std::sort(events.begin(), events.end());
    CHECK(events == std::vector<std::string>{"failed", "hand-off", "ordered", "sold-out"});
    CHECK(n.delivered() == 4);
    CHECK(n.failed() == 0);
    CHECK(log.count(": HTTP 200 (1 attempt)") == 4);
  }

  TEST_CASE("notifier: notify_on drops the other kinds - templates arrive rendered") {
    webhook_receiver rx;
    browser_support::io_thread io;
    notify_log log;
    auto o = webhook_only({sb::parse_webhook("get:" + rx.url("/g/{event}?sku={sku}&t={text}")),
                           sb::parse_webhook(rx.url("/b"), R"({{"say": "{title}: {text}"}})")},
                          log);
    o.on = sb::parse_notice_filter("ordered");
    sb::notifier n(io.io.get_executor(), o);
    n.notify(notice_of(sb::notice_kind::failed));  // not wanted
    n.notify(notice_of(sb::notice_kind::ordered, "a \"quoted\" & / text"));
    const std::error_code ec = get(n.async_flush(asio::use_future));
    CHECK_FALSE(ec);
    auto got = rx.requests();
    REQUIRE(got.size() == 2);
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.target < b.target; });
    CHECK(got[0].method == "POST");
    CHECK(got[0].target == "/b");
    CHECK(nlohmann::json::parse(got[0].body).at("say") ==
          "seckill: ordered 2 x veg-box (tab 1): a \"quoted\" & / text");
    CHECK(got[1].method == "GET");
    CHECK(got[1].target == "/g/ordered?sku=veg-box&t=a%20%22quoted%22%20%26%20%2F%20text");
  }

  TEST_CASE("notifier: a 500 is retried until it succeeds - a 400 is not retried") {
    webhook_receiver rx;
    browser_support::io_thread io;
    notify_log log;
    sb::notifier n(io.io.get_executor(), webhook_only({}, log));
    const auto hook = sb::parse_webhook(rx.url());
    rx.answer_with({500, 503, 200});
    auto [ec, d] = get(n.async_send(hook, notice_of(sb::notice_kind::ordered), asio::use_future));
    CHECK_FALSE(ec);
    CHECK(d.status == 200);
    CHECK(d.attempts == 3);
    CHECK(rx.requests().size() == 3);
    CHECK(log.count("attempt 1: HTTP 500; again in") == 1);
    CHECK(log.count("attempt 2: HTTP 503; again in") == 1);
    rx.answer_with({400, 200});
    auto [e4, d4] = get(n.async_send(hook, notice_of(sb::notice_kind::ordered), asio::use_future));
    CHECK(e4 == seckill::errc::server_error);
    CHECK(d4.status == 400);
    CHECK(d4.attempts == 1);
    CHECK(rx.requests().size() == 4);
    CHECK(d4.message.find("failed after 1 attempt: HTTP 400 (not retried)") != std::string::npos);
    rx.answer_with({500, 500, 500, 500, 500});
    auto o = webhook_only({}, log);
    o.retries = 2;
    sb::notifier two(io.io.get_executor(), o);
    auto [e5, d5] =
        get(two.async_send(hook, notice_of(sb::notice_kind::ordered), asio::use_future));
    CHECK(e5 == seckill::errc::server_error);
    CHECK(d5.attempts == 3);  // the first and two retries
    CHECK(rx.requests().size() == 7);
  }

  TEST_CASE("notifier: a receiver that never answers times out - a closed port is refused") {
    webhook_receiver rx;
    rx.set_silent(true);
    browser_support::io_thread io;
    notify_log log;
    auto o = webhook_only({}, log);
    o.timeout = 300ms;
    o.retries = 1;
    sb::notifier n(io.io.get_executor(), o);
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, d] = get(n.async_send(sb::parse_webhook(rx.url()), notice_of(sb::notice_kind::failed),
                                    asio::use_future));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(ec == seckill::errc::timed_out);
    CHECK(d.attempts == 2);
    CHECK(d.status == 0);
    CHECK(took >= 600ms);
    CHECK(took < 5s);  // generous: the machine may be loaded
    CHECK(d.message.find("no answer within 300 ms") != std::string::npos);
    const auto closed = seckill::test::free_loopback_port();
    auto [e2, d2] =
        get(n.async_send(sb::parse_webhook("http://127.0.0.1:" + std::to_string(closed) + "/x"),
                         notice_of(sb::notice_kind::failed), asio::use_future));
    CHECK(e2 == seckill::errc::connection_refused);
    CHECK(d2.attempts == 2);
  }

  TEST_CASE("notifier: the screenshot arrives byte for byte as a multipart upload") {
    webhook_receiver rx;
    browser_support::io_thread io;
    notify_log log;
    seckill::detail::temp_dir dir("seckill-notify");
    std::string bytes(300000, '\0');
    std::mt19937 rng(7);
    for (auto& c : bytes) c = static_cast<char>(rng());
    const auto file = (dir.path() / "shot.png").string();
    std::ofstream(file, std::ios::binary) << bytes;
    sb::notifier n(io.io.get_executor(),
                   webhook_only({sb::parse_webhook(rx.url("/json")),
                                 sb::parse_webhook("ntfy:" + rx.url("/topic"))},
                                log));
    auto note = notice_of(sb::notice_kind::ordered);
    note.screenshot = file;
    n.notify(note);
    const std::error_code ec = get(n.async_flush(asio::use_future));
    CHECK_FALSE(ec);
    auto got = rx.requests();
    REQUIRE(got.size() == 2);
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.target < b.target; });
    const auto shot = part_of(got[0].body, got[0].content_type, "screenshot");
    REQUIRE(shot);
    CHECK(*shot == bytes);
    const auto payload = part_of(got[0].body, got[0].content_type, "payload");
    REQUIRE(payload);
    CHECK(nlohmann::json::parse(*payload).at("screenshot") == file);
    CHECK(got[1].method == "PUT");  // ntfy: the file is the body
    CHECK(got[1].target.rfind("/topic?title=", 0) == 0);
    CHECK(got[1].body == bytes);
    CHECK(log.count("screenshot attached") == 2);
  }

  TEST_CASE("notifier: https with the CA verified - an unknown CA refused - secrets never shown") {
    webhook_receiver rx(true);
    browser_support::io_thread io;
    notify_log log;
    const std::string secret_url =
        "https://bob:pa55-s3cret@127.0.0.1:" + std::to_string(rx.port()) +
        "/bot123456:AAE-tokSECRET/x?token=qs-s3cret";
    auto o = webhook_only({sb::parse_webhook(secret_url)}, log);
    o.tls.ca_file = seckill::test::test_pki::get().ca();
    sb::notifier n(io.io.get_executor(), o);
    n.notify(notice_of(sb::notice_kind::ordered));
    const std::error_code ec = get(n.async_flush(asio::use_future));
    CHECK_FALSE(ec);
    REQUIRE(rx.requests().size() == 1);
    const auto r = rx.requests()[0];
    CHECK(r.target == "/bot123456:AAE-tokSECRET/x?token=qs-s3cret");
    CHECK(r.authorization == "Basic " + seckill::detail::base64_encode("bob:pa55-s3cret"));
    CHECK(n.delivered() == 1);
    // The system's CA store does not know the test CA.
    auto other = webhook_only({sb::parse_webhook(secret_url)}, log);
    other.tls.ca_file = seckill::test::test_pki::get().other_ca();
    sb::notifier refused(io.io.get_executor(), other);
    auto [e2, d2] = get(refused.async_send(sb::parse_webhook(secret_url),
                                           notice_of(sb::notice_kind::ordered), asio::use_future));
    CHECK(e2 == seckill::tls_errc::unknown_ca);
    CHECK(d2.message.find("not signed by a CA") != std::string::npos);
    CHECK(rx.requests().size() == 1);  // nothing sent to an unverified server
    // Not in any log line or message, nor in a parse error.
    std::string everything = log.all() + d2.message + sb::redact_webhook(secret_url);
    everything +=
        seckill::test::message_of([&] { (void)sb::parse_webhook(secret_url + "&x={oops}"); });
    CHECK(everything.find("127.0.0.1") != std::string::npos);
    for (const char* s : {"pa55-s3cret", "tokSECRET", "qs-s3cret", "bob"})
      CHECK_MESSAGE(everything.find(s) == std::string::npos, everything);
  }

  TEST_CASE("grabber on the demo shop: an order sends exactly one ordered notice with the SKU") {
    browser_support::browser_fixture f;
    shop::shop_server shop;
    webhook_receiver rx;
    notify_log log;
    auto [en, nav] = get(f.page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!en, en.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    sb::notifier n(f.io.io.get_executor(), webhook_only({sb::parse_webhook(rx.url())}, log));
    seckill::token_bucket<> pace(5, 3);
    sb::grabber_options opts;
    opts.notify = [&n](sb::notice x) {
      x.tab = "1";
      n.notify(std::move(x));
    };
    sb::grabber g(f.page,
                  sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\nquantity = 2\n")),
                  pace, std::move(opts));
    auto run = g.async_run(60s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    shop.set_stock("veg-box", 5);
    auto [ec, res] = get(run, 70s);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(res.ordered);
    CHECK(get(n.async_flush(asio::use_future)) == std::error_code{});
    const auto got = rx.requests();
    REQUIRE(got.size() == 1);
    const auto j = nlohmann::json::parse(got[0].body);
    CHECK(j.at("event") == "ordered");
    CHECK(j.at("sku") == "veg-box");
    CHECK(j.at("quantity") == 2);
    CHECK(j.at("tab") == "1");
    CHECK(j.at("text").get<std::string>().find("Order confirmed") != std::string::npos);
    REQUIRE(shop.orders().size() == 1);
  }

  TEST_CASE("grabber on the demo shop: a webhook that never answers does not delay the press") {
    browser_support::browser_fixture f;
    shop::shop_server shop;
    webhook_receiver rx;
    rx.set_silent(true);
    notify_log log;
    auto [en, nav] = get(f.page.async_navigate(shop.url(), asio::use_future));
    REQUIRE_MESSAGE(!en, en.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
    auto o = webhook_only({sb::parse_webhook(rx.url())}, log);
    o.timeout = 120s;  // far longer than the grab may take
    // The notifier shares the grabber's one thread: only waiting asynchronously keeps it free.
    sb::notifier n(f.io.io.get_executor(), o);
    for (int i = 0; i < 4; ++i) n.notify(notice_of(sb::notice_kind::hand_off));
    REQUIRE(rx.wait_for(4));  // four connections held open, unanswered
    seckill::token_bucket<> pace(5, 3);
    sb::grabber_options opts;
    opts.notify = [&n](sb::notice x) { n.notify(std::move(x)); };
    sb::grabber g(f.page, sb::priority_strategy(sb::parse_strategy("want = sku:eggs-12\n")), pace,
                  std::move(opts));
    auto run = g.async_run(60s, asio::use_future);
    std::this_thread::sleep_for(300ms);
    const auto t0 = std::chrono::steady_clock::now();
    shop.set_stock("eggs-12", 3);
    REQUIRE(shop.wait_for_orders(1, 30s));
    const auto took = std::chrono::steady_clock::now() - t0;
    auto [ec, res] = get(run, 30s);
    CHECK(res.ordered);
    CHECK(took < 10s);        // generous for a loaded host; the webhook holds on for 120 s
    REQUIRE(rx.wait_for(5));  // the ordered notice went out too, and is not answered either
    CHECK(nlohmann::json::parse(rx.requests()[4].body).at("event") == "ordered");
    CHECK(n.delivered() == 0);  // nothing answered: every send is still in flight
  }

  TEST_CASE(
      "desktop: a notice is a Notify call on the session bus - with no desktop it says so once") {
    notify_log quiet;
    {
      browser_support::io_thread io;
      sb::notifier_options o;
      o.env = {};  // no display, no bus
      o.log = quiet.sink();
      sb::notifier n(io.io.get_executor(), o);
      CHECK_FALSE(n.desktop());
      for (int i = 0; i < 3; ++i) n.notify(notice_of(sb::notice_kind::ordered));
      CHECK(get(n.async_flush(asio::use_future)) == std::error_code{});
      CHECK(quiet.count("no desktop (DISPLAY and WAYLAND_DISPLAY are unset)") == 1);
      CHECK(n.delivered() + n.failed() == 0);
    }
    if (const std::string m = browser_desktop::desktop::missing(); !m.empty()) {
      MESSAGE("skipped the desktop part: "
              << m << " is not installed (Debian: xvfb, dbus, libglib2.0-bin)");
      return;
    }
    browser_desktop::desktop d;
    REQUIRE_MESSAGE(d.ready(), "Xvfb did not start");
    browser_support::io_thread io;
    notify_log log;
    sb::notifier_options o;
    o.env = {d.display, "", d.bus};
    o.log = log.sink();
    sb::notifier n(io.io.get_executor(), o);
    REQUIRE(n.desktop());
    auto note = notice_of(sb::notice_kind::ordered, "Order confirmed #3");
    note.screenshot = "/tmp/it's here.png";
    n.notify(note);
    CHECK(get(n.async_flush(asio::use_future)) == std::error_code{});
    CHECK(browser_desktop::wait_until(
        [&] { return d.notify_calls().find("member=Notify") != std::string::npos; }));
    const std::string calls = d.notify_calls();
    CHECK(calls.find("string \"seckill: ordered 2 x veg-box (tab 1)\"") != std::string::npos);
    CHECK(calls.find("Order confirmed #3") != std::string::npos);
    CHECK(calls.find("file:///tmp/it's here.png") != std::string::npos);  // the image hint
    // No notification service owns the name on this bus: the call is refused, and said so.
    CHECK(n.failed() == 1);
    CHECK(log.count("is a notification service running?") == 1);
  }
}
