#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/obs/prometheus.hpp>

#include "obs/http_client.hpp"
#include "support/net.hpp"

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace http = boost::beast::http;

namespace integration_metrics_server {

/// A registry with every kind of metric, a server on a free port, and a thread running it.
struct fixture {
  seckill::obs::registry reg;
  boost::asio::io_context io;
  std::atomic<bool> store_up{true};
  seckill::obs::metrics_server server{
      io.get_executor(), reg, {}, [this] {
        return seckill::obs::health_report{{{"memory://", true, ""},
                                            {"redis://127.0.0.1:6379", store_up.load(),
                                             store_up.load() ? "" : "connection refused"}}};
      }};
  std::thread runner;

  fixture() {
    auto& purchases = reg.add_counter_family("seckill_purchases_total",
                                             "Purchases by result.\nFinal state.", {"result"});
    purchases.with({"succeeded"}).inc(7);
    purchases.with({"sold_out"}).inc(2);
    purchases.with({"quote\"back\\slash"}).inc();
    auto& lat = reg.add_histogram_family("seckill_purchase_duration_seconds", "Purchase latency.",
                                         {"result"});
    for (double v : {0.0004, 0.003, 0.02, 0.2, 3.0, 20.0}) lat.with({"succeeded"}).observe(v);
    reg.add_gauge_family("seckill_stock_units", "Stock left per SKU.", {"sku"})
        .with({"sku-1"})
        .set(95);
    server.start();
    runner = std::thread([this] { io.run(); });
  }
  ~fixture() {
    server.stop();
    runner.join();
  }
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check_metrics(const std::string& text) {
  seckill::detail::temp_dir dir("seckill-obs");
  const auto in = dir.path() / "scrape.txt";
  const auto log = dir.path() / "promtool.log";
  std::ofstream(in) << text;
  seckill::detail::child_process p(
      {{"sh", "-c", "exec promtool check metrics < '" + in.string() + "'"}, log.string(), {}});
  REQUIRE(p.wait_for(30s));
  REQUIRE(WIFEXITED(p.wait_status()));
  return {WEXITSTATUS(p.wait_status()), read_file(log)};
}

using clock = std::chrono::steady_clock;

/// A status, body and whether the server closed the connection after it.
struct raw_answer {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  bool closed_after = false;
};

/// Writes `request` as is on a fresh connection, reads one answer, then
/// whether the server closes the connection (within 5 s).
raw_answer raw_exchange(unsigned short port, const std::string& request) {
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.expires_after(10s);
  stream.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(stream.socket(), boost::asio::buffer(request));
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  raw_answer a{res.result_int(), std::string(res[http::field::content_type]), res.body()};
  if (!res.keep_alive()) {
    boost::system::error_code ec;
    http::response<http::string_body> more;
    stream.expires_after(5s);
    http::read(stream, buffer, more, ec);
    a.closed_after = ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
                     ec == boost::asio::error::connection_reset;
  }
  return a;
}

/// A client that connects and sends nothing, or (dribbling) sends `text` a
/// byte at a time when told to, after its first `at_once` bytes; by default
/// the start of a request that never ends its headers. closed_at is when it
/// saw the server close the connection, received what the server sent.
struct slow_client {
  slow_client(unsigned short port, bool dribble, std::string what = {}, std::size_t at_once = 1)
      : dribbling(dribble),
        text(what.empty() ? "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " +
                                std::string(256, 's')
                          : std::move(what)) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    if (dribbling) {
      REQUIRE(::send(fd, text.data(), at_once, MSG_NOSIGNAL) == static_cast<ssize_t>(at_once));
      sent = at_once;
    }
  }
  slow_client(slow_client&& o) noexcept
      : fd(std::exchange(o.fd, -1)),
        dribbling(o.dribbling),
        text(std::move(o.text)),
        sent(o.sent),
        received(o.received),
        closed_at(o.closed_at) {}
  slow_client& operator=(slow_client&&) = delete;
  ~slow_client() {
    if (fd >= 0) ::close(fd);
  }

  /// Sends the next byte of the text.
  void step() {
    if (closed_at || sent >= text.size()) return;
    if (::send(fd, text.data() + sent, 1, MSG_NOSIGNAL) == 1) ++sent;
  }

  int fd = -1;
  bool dribbling = false;
  std::string text;
  std::size_t sent = 0;
  std::size_t received = 0;
  std::optional<clock::time_point> closed_at;
};

/// Polls the clients until every one saw its connection closed, or `until`;
/// the dribbling ones send a byte every 100 ms meanwhile.
void wait_closed(std::vector<slow_client>& clients, clock::time_point until) {
  auto next_byte = clock::now() + 100ms;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<slow_client*> open;
    for (auto& c : clients) {
      if (c.closed_at) continue;
      fds.push_back({c.fd, POLLIN, 0});
      open.push_back(&c);
    }
    const auto now = clock::now();
    if (fds.empty() || now >= until) return;
    if (now >= next_byte) {
      for (auto* c : open) {
        if (c->dribbling) c->step();
      }
      next_byte = now + 100ms;
    }
    const auto wait = std::min(next_byte, until) - now;
    ::poll(
        fds.data(), fds.size(),
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + 1);
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      char byte = 0;
      const auto n = ::recv(fds[i].fd, &byte, 1, MSG_DONTWAIT);
      if (n > 0) ++open[i]->received;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        open[i]->closed_at = clock::now();
    }
  }
}

}  // namespace integration_metrics_server

TEST_SUITE("integration") {
  TEST_CASE("a real scrape of /metrics passes promtool check metrics") {
    integration_metrics_server::fixture f;
    const auto a = seckill::test::http_request(f.server.port(), "/metrics");
    CHECK(a.status == 200);
    CHECK(a.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(a.body == seckill::obs::to_text(f.reg));
    CHECK(a.body.find(
              "seckill_purchase_duration_seconds_bucket{result=\"succeeded\",le=\"+Inf\"} 6\n") !=
          std::string::npos);
    const auto [status, output] = integration_metrics_server::promtool_check_metrics(a.body);
    INFO(output);
    CHECK(status == 0);
    // The check can fail: promtool rejects a counter not named *_total and a broken line.
    const auto [bad_status, bad_output] = integration_metrics_server::promtool_check_metrics(
        "# HELP purchases Purchases\n# TYPE purchases counter\npurchases 1\n");
    INFO(bad_output);
    CHECK(bad_status != 0);
    const auto [broken_status, broken_output] =
        integration_metrics_server::promtool_check_metrics("# TYPE x gauge\nx{a=\"1} 1\n");
    INFO(broken_output);
    CHECK(broken_status != 0);
  }

  TEST_CASE("/health reports store reachability from the application's callback") {
    integration_metrics_server::fixture f;
    auto a = seckill::test::http_request(f.server.port(), "/health");
    CHECK(a.status == 200);
    CHECK(a.content_type == "application/json");
    auto j = nlohmann::json::parse(a.body);
    CHECK(j.at("status") == "ok");
    CHECK(j.at("stores").size() == 2);
    CHECK(j.at("stores").at(1).at("reachable") == true);
    f.store_up = false;
    a = seckill::test::http_request(f.server.port(), "/health?verbose=1");
    CHECK(a.status == 503);
    j = nlohmann::json::parse(a.body);
    CHECK(j.at("status") == "unavailable");
    CHECK(j.at("stores").at(1).at("name") == "redis://127.0.0.1:6379");
    CHECK(j.at("stores").at(1).at("detail") == "connection refused");
  }

  TEST_CASE("a health callback that throws gives 500 with the message") {
    seckill::obs::registry reg;
    boost::asio::io_context io;
    seckill::obs::metrics_server server(
        io.get_executor(), reg, {},
        []() -> seckill::obs::health_report { throw std::runtime_error("probe broke"); });
    server.start();
    std::thread t([&] { io.run(); });
    const auto a = seckill::test::http_request(server.port(), "/health");
    server.stop();
    t.join();
    CHECK(a.status == 500);
    CHECK(nlohmann::json::parse(a.body).at("error") == "probe broke");
  }

  TEST_CASE("unknown paths get 404 / other methods 405 / HEAD the headers only") {
    integration_metrics_server::fixture f;
    CHECK(seckill::test::http_request(f.server.port(), "/nothing").status == 404);
    const auto post = seckill::test::http_request(f.server.port(), "/metrics", http::verb::post,
                                                  "x", "text/plain");
    CHECK(post.status == 405);
    CHECK(post.allow == "GET, HEAD");
    const auto get = seckill::test::http_request(f.server.port(), "/metrics");
    const auto head = seckill::test::http_request(f.server.port(), "/metrics", http::verb::head);
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(head.content_length == std::to_string(get.body.size()));
  }

  TEST_CASE("keep-alive serves several requests on one connection - garbage closes it") {
    integration_metrics_server::fixture f;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), f.server.port()});
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < 3; ++i) {
      http::request<http::empty_body> req{http::verb::get, i == 1 ? "/health" : "/metrics", 11};
      req.set(http::field::host, "127.0.0.1");
      http::write(stream, req);
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      CHECK(res.result_int() == 200);
      CHECK(res.keep_alive());
    }
    const std::string garbage = "NOT HTTP AT ALL\r\n\r\n";
    boost::asio::write(stream.socket(), boost::asio::buffer(garbage));
    http::response<http::string_body> res;
    boost::system::error_code ec;
    http::read(stream, buffer, res, ec);
    CHECK(ec);  // the server closed the connection without an answer
  }

  TEST_CASE("a body over the limit gets 413 Payload Too Large - then the connection closes") {
    integration_metrics_server::fixture f;
    // Content-Length over the limit: refused before the body is read, and the
    // answer still reaches a client that sends all of it first.
    const auto big = seckill::test::http_request(f.server.port(), "/metrics", http::verb::post,
                                                 std::string(64 * 1024, 'x'), "text/plain");
    CHECK(big.status == 413);
    CHECK(big.content_type == "text/plain; charset=utf-8");
    CHECK(big.body == "payload too large: 65536 bytes, the limit is 8192\n");
    // A chunked body that grows past the limit.
    const auto chunked = integration_metrics_server::raw_exchange(
        f.server.port(),
        "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2328\r\n" +
            std::string(9000, 'y') + "\r\n0\r\n\r\n");
    CHECK(chunked.status == 413);
    CHECK(chunked.body == "payload too large: over 8192 bytes\n");
    CHECK(chunked.closed_after);
    // Just under the limit: an answer (405, as /metrics takes no POST), and the connection stays.
    const auto fits = seckill::test::http_request(f.server.port(), "/metrics", http::verb::post,
                                                  std::string(8 * 1024, 'x'), "text/plain");
    CHECK(fits.status == 405);
  }

  TEST_CASE(
      "headers over the limit get 431 Request Header Fields Too Large - then the connection "
      "closes") {
    integration_metrics_server::fixture f;
    const auto filler = integration_metrics_server::raw_exchange(
        f.server.port(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " +
                             std::string(16 * 1024, 'a') + "\r\n\r\n");
    CHECK(filler.status == 431);
    CHECK(filler.content_type == "text/plain; charset=utf-8");
    CHECK(filler.body == "request header fields too large: over 8192 bytes\n");
    CHECK(filler.closed_after);
    std::string many = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < 200; ++i)
      many += "X-Header-" + std::to_string(i) + ": " + std::string(60, 'b') + "\r\n";
    CHECK(integration_metrics_server::raw_exchange(f.server.port(), many + "\r\n").status == 431);
    const auto long_target = integration_metrics_server::raw_exchange(
        f.server.port(),
        "GET /metrics?" + std::string(10 * 1024, 'q') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    CHECK(long_target.status == 431);
    // Just under the limit: served.
    const auto fits = integration_metrics_server::raw_exchange(
        f.server.port(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " +
                             std::string(7 * 1024, 'a') + "\r\nConnection: close\r\n\r\n");
    CHECK(fits.status == 200);
    CHECK(fits.body == seckill::obs::to_text(f.reg));
  }

  TEST_CASE(
      "100 slow connections do not lock out a scrape - they are closed after the header timeout") {
    using integration_metrics_server::clock;
    seckill::obs::registry reg;
    reg.add_counter("scrapes_total", "Scrapes.").inc(3);
    boost::asio::io_context io;
    // The default cap (64); a short header timeout so that the test is quick.
    seckill::obs::metrics_server server(io.get_executor(), reg, {.header_timeout = 1000ms});
    server.start();
    std::thread runner([&] { io.run(); });
    const auto port = server.port();

    // 84 clients that connect and send nothing, then 16 that send their headers a byte every 100
    // ms.
    const auto opened = clock::now();
    std::vector<integration_metrics_server::slow_client> slow;
    for (int i = 0; i < 100; ++i) slow.emplace_back(port, i >= 84);
    std::this_thread::sleep_for(200ms);  // the server has accepted them: at its cap

    const auto asked = clock::now();
    seckill::test::http_answer scrape;
    std::string failure;
    try {
      scrape = seckill::test::http_request(port, "/metrics");
    } catch (const std::exception& e) {
      failure = e.what();
    }
    const auto waited = clock::now() - asked;
    MESSAGE("scrape with 100 slow connections open: ", failure.empty() ? "answered" : failure,
            " after ", std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
            " ms");
    CHECK(failure.empty());
    CHECK(scrape.status == 200);
    CHECK(scrape.body == seckill::obs::to_text(reg));
    CHECK(waited < 3s);

    // Every slow client is closed: those beyond the cap at once, the rest at the header timeout.
    integration_metrics_server::wait_closed(slow, opened + 10s);
    int closed = 0, early = 0;
    clock::duration last{};
    for (const auto& c : slow) {
      if (!c.closed_at) continue;
      ++closed;
      const auto after = *c.closed_at - opened;
      if (after < 900ms) ++early;
      last = std::max(last, after);
      if (c.dribbling)
        CHECK(after >= 900ms);  // dribbling does not reset the header timeout, nor close earlier
      CHECK(c.received == 0);   // closed without an answer
    }
    MESSAGE(closed, " of 100 slow connections closed, ", early, " before 900 ms, the last after ",
            std::chrono::duration_cast<std::chrono::milliseconds>(last).count(), " ms");
    CHECK(closed == 100);
    CHECK(early >= 36);  // the cap made room for the later ones and the scrape
    CHECK(last < 4s);    // the 1 s header timeout, with room for a noisy machine
    CHECK(seckill::test::http_request(port, "/health").status == 200);
    server.stop();
    runner.join();
  }

  TEST_CASE("a body dribbled past the request timeout closes the connection") {
    using integration_metrics_server::clock;
    seckill::obs::registry reg;
    boost::asio::io_context io;
    seckill::obs::metrics_server server(io.get_executor(), reg,
                                        {.header_timeout = 1000ms, .request_timeout = 1500ms});
    server.start();
    std::thread runner([&] { io.run(); });
    const std::string head =
        "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n";
    const auto opened = clock::now();
    std::vector<integration_metrics_server::slow_client> slow;
    slow.emplace_back(server.port(), true, head + std::string(1000, 'z'),
                      head.size());  // then a byte every 100 ms
    integration_metrics_server::wait_closed(slow, opened + 10s);
    REQUIRE(slow[0].closed_at.has_value());
    const auto after = *slow[0].closed_at - opened;
    MESSAGE("dribbled body closed after ",
            std::chrono::duration_cast<std::chrono::milliseconds>(after).count(), " ms, ",
            slow[0].sent - head.size(), " body bytes sent");
    CHECK(after >= 1400ms);  // the headers came in time: the request timeout, not the header one
    CHECK(after < 4s);
    CHECK(slow[0].received == 0);
    server.stop();
    runner.join();
  }

  TEST_CASE("at the connection cap a new connection closes the least recently active idle one") {
    using integration_metrics_server::clock;
    seckill::obs::registry reg;
    boost::asio::io_context io;
    seckill::obs::metrics_server server(io.get_executor(), reg,
                                        {.max_connections = 2, .header_timeout = 30000ms});
    server.start();
    std::thread runner([&] { io.run(); });
    std::vector<integration_metrics_server::slow_client> slow;
    slow.emplace_back(server.port(), false);
    std::this_thread::sleep_for(50ms);
    slow.emplace_back(server.port(), false);
    std::this_thread::sleep_for(50ms);
    const auto asked = clock::now();
    CHECK(seckill::test::http_request(server.port(), "/metrics").status == 200);
    integration_metrics_server::wait_closed(slow, asked + 2s);
    CHECK(slow[0].closed_at.has_value());        // the oldest made room at once
    CHECK_FALSE(slow[1].closed_at.has_value());  // the other waits for its 30 s header timeout
    server.stop();
    runner.join();
  }

  TEST_CASE("a port in use is reported - stop() closes open connections") {
    integration_metrics_server::fixture f;
    seckill::obs::registry reg;
    boost::asio::io_context io2;
    seckill::obs::metrics_server clash(io2.get_executor(), reg, {.port = f.server.port()});
    try {
      clash.start();
      FAIL("bound a port that is in use");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find(std::to_string(f.server.port())) != std::string::npos);
    }
    seckill::obs::metrics_server bad_address(io2.get_executor(), reg, {.address = "not-an-ip"});
    CHECK_THROWS_AS(bad_address.start(), seckill::error);

    boost::asio::io_context io;
    boost::beast::tcp_stream idle(io);
    idle.connect({boost::asio::ip::make_address("127.0.0.1"), f.server.port()});
    std::this_thread::sleep_for(50ms);  // let the server accept it
    f.server.stop();
    timeval tv{5, 0};
    ::setsockopt(idle.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte = 0;
    boost::system::error_code ec;
    idle.socket().read_some(boost::asio::buffer(&byte, 1), ec);
    // closed by the server (eof), or reset when stop() came before the accept
    CHECK((ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset));
    CHECK_FALSE(seckill::test::wait_until_accepting(f.server.port(), 200ms));
  }
}
