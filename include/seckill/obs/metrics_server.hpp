#pragma once
/// @file
/// @brief `metrics_server`: a small HTTP server (Boost.Beast) answering
///        `/metrics` (the text exposition, obs/exposition.hpp) and `/health`
///        (JSON from a callback the application supplies).
///
/// @code
/// seckill::obs::registry reg;
/// boost::asio::io_context io;
/// seckill::obs::metrics_server server(io.get_executor(), reg, {.port = 9464},
///     [] { return seckill::obs::health_report{{{"memory", true, ""}}}; });
/// server.start();   // then io.run() somewhere
/// @endcode

#include <seckill/error.hpp>
#include <seckill/obs/exposition.hpp>
#include <seckill/obs/metrics.hpp>
#include <seckill/url.hpp>

#include <fmt/format.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace seckill::obs {

/// @brief Reachability of one backend, as `/health` reports it.
struct store_health {
  std::string name;  ///< e.g. "redis://127.0.0.1:6379"; shown through redact_url
  bool reachable = false;
  std::string detail;  ///< why not, when not (empty otherwise)
};

/// @brief What the application's health callback returns.
struct health_report {
  std::vector<store_health> stores;
  [[nodiscard]] bool ok() const noexcept {
    for (const auto& s : stores)
      if (!s.reachable) return false;
    return true;
  }
};

/// @brief The body and status of a `/health` answer: `{"status":"ok"|"unavailable",
///        "stores":[{"name":..,"reachable":..,"detail":..}]}`, 200 or 503.
inline std::pair<unsigned, std::string> health_json(const health_report& r) {
  nlohmann::json stores = nlohmann::json::array();
  for (const auto& s : r.stores) {
    nlohmann::json j{{"name", redact_url(s.name)},
                     {"reachable", s.reachable}};  // a store URL may hold a password
    if (!s.detail.empty()) j["detail"] = s.detail;
    stores.push_back(std::move(j));
  }
  const bool ok = r.ok();
  nlohmann::json body{{"status", ok ? "ok" : "unavailable"}, {"stores", std::move(stores)}};
  return {ok ? 200U : 503U, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

/// @brief A small HTTP/1.1 server for Prometheus and load balancers:
///        `GET /metrics` (the text exposition of a registry) and `GET /health`
///        (JSON from a callback the application supplies; 200 when every
///        store is reachable, 503 otherwise). HEAD works on both; other
///        methods get 405, other paths 404; headers over the limit 431 and a
///        body over it 413 (then the connection closes). Keep-alive.
///
/// Slow clients cannot lock it out (as Beast's own servers guard against):
/// a request's headers must arrive within `header_timeout` and the whole
/// request and its answer within `request_timeout`, both counted from the
/// request's first byte (from the accept, for a connection's first request);
/// a keep-alive connection may wait `idle_timeout` for its next request. At
/// `max_connections`, a new connection closes the least recently active one
/// that is not being answered (a silent or dribbling client, an idle
/// keep-alive), so a scrape gets its answer while any number of slow
/// connections are open; when every connection is being answered, the new
/// one is closed at once.
///
/// Thread-safety: `start()`, `stop()` and `port()` from any thread; all the
/// serving runs on a strand of the given executor, so the health callback is
/// never called concurrently with itself. The callback must not block (report
/// state the application already knows). The registry must outlive the server.
/// Cost: one scrape collects every family (a mutex per family, no lock on the
/// increment path) and formats it into one string; a connection costs a
/// socket, a timer and its buffer (at most max_header_bytes + max_body_bytes).
class metrics_server {
 public:
  using health_callback = std::function<health_report()>;

  struct options {
    std::string address = "127.0.0.1";  ///< where to listen
    unsigned short port = 0;            ///< 0: a free port, see port()
    std::chrono::milliseconds idle_timeout{
        30000};                        ///< keep-alive: the wait for the next request's first byte
    std::size_t max_connections = 64;  ///< at the cap, a new connection closes the least recently
                                       ///< active one not being answered
    std::chrono::milliseconds header_timeout{
        5000};  ///< a request's first byte (or the accept) to its headers' end
    std::chrono::milliseconds request_timeout{
        10000};  ///< a request's first byte (or the accept) to its answer's end
    std::size_t max_header_bytes =
        8 * 1024;  ///< beyond: 431 Request Header Fields Too Large, then close
    std::size_t max_body_bytes = 8 * 1024;  ///< beyond: 413 Payload Too Large, then close
  };

  /// After a 431 or 413, how long the server reads (and drops) what the client
  /// still sends before closing, so that the client reads the answer instead
  /// of a reset (a lingering close); at most linger_bytes are read.
  static constexpr std::chrono::milliseconds linger_time{1000};
  static constexpr std::size_t linger_bytes = 1024 * 1024;

  metrics_server(boost::asio::any_io_executor ex, const registry& reg, options opts,
                 health_callback health = {})
      : state_(std::make_shared<state>(boost::asio::make_strand(ex), reg, std::move(opts),
                                       std::move(health))) {}
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  ~metrics_server() { stop(); }

  /// Binds and listens, then serves on the executor. Throws seckill::error
  /// (invalid_argument) when the address does not parse, the port cannot be
  /// bound, a timeout is not positive or a size limit is 0 or above 4 GiB.
  void start() {
    namespace asio = boost::asio;
    auto& st = *state_;
    check_options(st.opts);
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(st.opts.address, ec);
    if (ec)
      throw error(errc::invalid_argument, "metrics_server: bad address '" + st.opts.address + "'");
    const asio::ip::tcp::endpoint ep(addr, st.opts.port);
    st.acceptor.open(ep.protocol(), ec);
    if (!ec) st.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) st.acceptor.bind(ep, ec);
    if (!ec) st.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw error(errc::invalid_argument, "metrics_server: cannot listen on " + st.opts.address +
                                              ":" + std::to_string(st.opts.port) + ": " +
                                              ec.message());
    }
    port_ = st.acceptor.local_endpoint().port();
    asio::co_spawn(st.strand, accept_loop(state_), asio::detached);
  }

  /// The port listened on (the kernel's choice when options::port was 0).
  [[nodiscard]] unsigned short port() const noexcept { return port_; }

  /// Stops accepting and closes every open connection (asynchronously, on the strand).
  void stop() {
    auto st = state_;
    boost::asio::post(st->strand, [st] {
      boost::system::error_code ignored;
      st->acceptor.close(ignored);
      for (auto& c : st->connections) close_connection(*st, c);
    });
  }

 private:
  struct connection {
    explicit connection(boost::asio::ip::tcp::socket s) : stream(std::move(s)) {}
    boost::beast::tcp_stream stream;
    bool answering = false;  // writing an answer: never closed to make room
    bool closed = false;     // its socket is closed (made room, stopped, or done)
  };
  using connection_list = std::list<connection>;  // least recently active first

  struct state {
    state(boost::asio::strand<boost::asio::any_io_executor> s, const registry& r, options o,
          health_callback h)
        : strand(std::move(s)),
          acceptor(strand),
          reg(&r),
          opts(std::move(o)),
          health(std::move(h)) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    boost::asio::ip::tcp::acceptor acceptor;
    const registry* reg;
    options opts;
    health_callback health;
    connection_list connections;
    std::size_t open = 0;  // connections not closed
  };

  static void check_options(const options& o) {
    // at most a year: added to a nanosecond clock's now without overflow
    constexpr std::chrono::milliseconds longest = std::chrono::hours(24 * 366);
    const auto positive = [&](const char* what, std::chrono::milliseconds v) {
      if (v.count() <= 0 || v > longest) {
        throw error(errc::invalid_argument,
                    fmt::format("metrics_server: {} {} ms out of range [1, {}] ms", what, v.count(),
                                longest.count()));
      }
    };
    positive("idle_timeout", o.idle_timeout);
    positive("header_timeout", o.header_timeout);
    positive("request_timeout", o.request_timeout);
    const auto size = [](const char* what, std::size_t v) {
      if (v == 0 || v > std::numeric_limits<std::uint32_t>::max()) {
        throw error(errc::invalid_argument,
                    fmt::format("metrics_server: {} {} out of range [1, {}]", what, v,
                                std::numeric_limits<std::uint32_t>::max()));
      }
    };
    size("max_header_bytes", o.max_header_bytes);
    size("max_body_bytes", o.max_body_bytes);
    if (o.max_connections == 0)
      throw error(errc::invalid_argument, "metrics_server: max_connections 0: want at least 1");
  }

  static void close_connection(state& st, connection& c) {
    if (c.closed) return;
    c.closed = true;
    --st.open;
    boost::system::error_code ignored;
    c.stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    c.stream.socket().close(ignored);  // its pending read or write completes with an error
  }

  // Closes the least recently active connection not being answered; false when there is none.
  static bool make_room(state& st) {
    for (auto& c : st.connections) {
      if (!c.closed && !c.answering) {
        close_connection(st, c);
        return true;
      }
    }
    return false;
  }

  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    namespace asio = boost::asio;
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. a connection reset before accept; keep serving
      if (st->open >= st->opts.max_connections && !make_room(*st)) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      // Counted now, not when its session starts: a burst of accepts stays within the cap.
      const auto self = st->connections.emplace(st->connections.end(), std::move(socket));
      ++st->open;
      asio::co_spawn(st->strand, session(st, self), asio::detached);
    }
  }

  static boost::asio::awaitable<void> session(std::shared_ptr<state> st,
                                              connection_list::iterator self) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    using clock = std::chrono::steady_clock;
    auto& stream = self->stream;
    const auto& o = st->opts;
    beast::flat_buffer buffer;
    auto start = clock::now();  // the accept stands for the first request's first byte
    for (bool first = true; !self->closed; first = false) {
      if (!first) {
        if (buffer.size() == 0) {  // keep-alive: wait for the next request's first byte
          stream.expires_after(o.idle_timeout);
          auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024),
                                                         asio::as_tuple(asio::use_awaitable));
          if (ec) break;
          buffer.commit(n);
        }
        start = clock::now();
        st->connections.splice(st->connections.end(), st->connections,
                               self);  // the most recently active
      }
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(o.max_header_bytes));
      parser.body_limit(o.max_body_bytes);
      stream.expires_at(start + std::min(o.header_timeout, o.request_timeout));
      auto [rec, n] = co_await http::async_read_header(stream, buffer, parser,
                                                       asio::as_tuple(asio::use_awaitable));
      if (!rec) {
        stream.expires_at(start + o.request_timeout);
        std::tie(rec, n) =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      }
      if (self->closed) break;
      if (rec == http::error::header_limit || rec == http::error::body_limit) {
        co_await refuse_too_large(*st, self, parser, rec == http::error::header_limit, start);
        break;
      }
      if (rec) break;  // end of stream, timeout, or malformed: close
      self->answering = true;
      auto res = handle(*st, parser.get());
      stream.expires_at(start + o.request_timeout);
      auto [wec, m] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      (void)m;
      self->answering = false;
      if (wec || !res.keep_alive()) break;
    }
    close_connection(*st, *self);
    st->connections.erase(self);
  }

  // Answers 431 (headers) or 413 (body) with a short text, then reads and
  // drops what the client still sends for at most linger_time, so that it
  // sees the answer rather than a reset.
  static boost::asio::awaitable<void> refuse_too_large(
      state& st, connection_list::iterator self,
      const boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
      bool headers, std::chrono::steady_clock::time_point start) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    auto& stream = self->stream;
    http::response<http::string_body> res;
    res.version(parser.get().version() == 10 ? 10 : 11);  // 11 too when the request line never came
    res.keep_alive(false);
    res.set(http::field::server, "seckill");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (headers) {
      res.result(http::status::request_header_fields_too_large);
      res.body() =
          fmt::format("request header fields too large: over {} bytes\n", st.opts.max_header_bytes);
    } else {
      res.result(http::status::payload_too_large);
      // The parser refuses a Content-Length over the limit before the header is
      // done (so content_length() may not be asked); the field is there, checked.
      const std::string_view length = parser.get()[http::field::content_length];
      res.body() = !length.empty() && length.size() <= 20
                       ? fmt::format("payload too large: {} bytes, the limit is {}\n", length,
                                     st.opts.max_body_bytes)
                       : fmt::format("payload too large: over {} bytes\n", st.opts.max_body_bytes);
    }
    res.prepare_payload();
    self->answering = true;
    stream.expires_at(start + st.opts.request_timeout);
    auto [wec, m] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)m;
    self->answering = false;
    if (wec || self->closed) co_return;
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream.expires_after(linger_time);
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < linger_bytes && !self->closed;) {
      auto [rec, n] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (rec) break;  // the client closed (eof), or linger_time passed
      drained += n;
    }
  }

  static boost::beast::http::response<boost::beast::http::string_body> handle(
      state& st, const boost::beast::http::request<boost::beast::http::string_body>& req) {
    namespace http = boost::beast::http;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "seckill");
    std::string_view target = req.target();
    if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool head = req.method() == http::verb::head;
    if (target != "/metrics" && target != "/health") {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "not found: " + std::string(target) + " (try /metrics or /health)\n";
    } else if (req.method() != http::verb::get && !head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "method not allowed: " + std::string(req.method_string()) + "\n";
    } else if (target == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, text_content_type);
      res.body() = to_text(*st.reg);
    } else {
      health_report report;
      std::pair<unsigned, std::string> answer;
      try {
        if (st.health) report = st.health();
        answer = health_json(report);
      } catch (const std::exception& e) {
        answer = {500U, nlohmann::json{{"status", "error"}, {"error", e.what()}}.dump(
                            -1, ' ', false, nlohmann::json::error_handler_t::replace)};
      }
      res.result(static_cast<http::status>(answer.first));
      res.set(http::field::content_type, "application/json");
      res.set(http::field::cache_control, "no-store");
      res.body() = std::move(answer.second);
    }
    res.prepare_payload();
    if (head) res.body().clear();  // Content-Length stays that of the GET answer
    return res;
  }

  std::shared_ptr<state> state_;
  unsigned short port_ = 0;
};

}  // namespace seckill::obs
