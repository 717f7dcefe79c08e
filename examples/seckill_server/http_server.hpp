#pragma once
// http_server: an HTTP/1.1 server for a public endpoint, on Beast coroutines.
// Keep-alive; limits on header and body size (431, 413: answered, then a
// lingering close so the client reads the answer); a header timeout and a
// request timeout from the request's first byte (slowloris), the latter also
// bounding the write of each answer (a client that does not read); an idle timeout
// between requests; a cap on open connections (beyond it a new connection is
// closed at once and counted); a graceful stop (no new connections, requests
// being answered finish, idle connections close, then `wait_drained`).
//
// The application is a Handler: `awaitable<answer>(const request&)`, called
// once per request on the connection's strand (connections run in parallel
// on the io_context's threads). `observe` reports every answer with its
// route and duration, for the metrics.
//
// Thread-safety: `start`, `stop`, `wait_drained`, `port` and the counters
// from any thread. Cost per connection: a socket, a strand, a buffer (at
// most max_header_bytes + max_body_bytes) and a coroutine frame.

#include <seckill/error.hpp>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace seckill_server {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// What a Handler returns: the response and the route it belongs to (a
/// metrics label from a fixed set, never the raw path).
struct answer {
  response res;
  std::string_view route = "other";
};

struct http_server_options {
  std::string address = "127.0.0.1";
  unsigned short port = 0;  ///< 0: a free port, see port()
  std::size_t max_connections = 10'000;
  std::chrono::milliseconds idle_timeout{30'000};   ///< between requests on a keep-alive connection
  std::chrono::milliseconds header_timeout{5'000};  ///< first byte to the end of the headers
  /// A request's first byte to its body's end; and the time to write an answer.
  std::chrono::milliseconds request_timeout{10'000};
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 16 * 1024;
};

template <class Handler>
class http_server {
 public:
  /// Called once per answer: route, HTTP status, seconds from the request's first byte.
  using observer = std::function<void(std::string_view, unsigned, double)>;

  http_server(boost::asio::any_io_executor ex, http_server_options opts, Handler handler,
              observer observe = {})
      : state_(std::make_shared<state>(std::move(ex), std::move(opts), std::move(handler),
                                       std::move(observe))) {}
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  ~http_server() { stop(); }

  /// Binds and listens (connections wait in the backlog until start()); the
  /// port is known from here on. Throws seckill::error (invalid_argument)
  /// when the address does not parse or cannot be bound.
  void listen() {
    namespace asio = boost::asio;
    auto& st = *state_;
    if (st.acceptor.is_open()) return;
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(st.opts.address, ec);
    if (ec)
      throw seckill::error(
          seckill::errc::invalid_argument,
          fmt::format("cannot listen on '{}': not an IP address", st.opts.address));
    const asio::ip::tcp::endpoint ep(addr, st.opts.port);
    st.acceptor.open(ep.protocol(), ec);
    if (!ec) st.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) st.acceptor.bind(ep, ec);
    if (!ec) st.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)  // taken, or not this machine's: a start failure, not a usage error
      throw std::runtime_error(
          fmt::format("cannot listen on {}: {}", endpoint_text(ep), ec.message()));
    port_ = st.acceptor.local_endpoint().port();
  }

  /// Listens (if listen() was not called) and accepts on the executor.
  void start() {
    listen();
    boost::asio::co_spawn(state_->acceptor.get_executor(), accept_loop(state_),
                          boost::asio::detached);
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  /// Connections open now.
  [[nodiscard]] std::size_t connections() const noexcept { return state_->open.load(); }
  /// Connections closed at once because max_connections were open.
  [[nodiscard]] std::uint64_t refused() const noexcept { return state_->refused.load(); }

  /// Stops accepting; requests being answered finish (their connection then
  /// closes), idle connections close now. Idempotent.
  void stop() {
    auto st = state_;
    if (st->stopping.exchange(true)) return;
    boost::asio::post(st->acceptor.get_executor(), [st] {
      boost::system::error_code ignored;
      st->acceptor.close(ignored);
    });
    std::lock_guard lock(st->mutex);
    for (auto& c : st->list) {
      boost::asio::post(c->strand, [c] {
        if (!c->answering) c->close();
      });
    }
  }

  /// After stop(): waits until every connection closed, at most `limit`; false on timeout.
  bool wait_drained(std::chrono::milliseconds limit) {
    std::unique_lock lock(state_->mutex);
    return state_->drained.wait_for(lock, limit, [&] { return state_->list.empty(); });
  }

 private:
  struct connection {
    connection(boost::asio::ip::tcp::socket s) : strand(s.get_executor()), stream(std::move(s)) {}
    void close() {
      if (closed) return;
      closed = true;
      boost::system::error_code ignored;
      stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
    boost::asio::any_io_executor strand;
    boost::beast::tcp_stream stream;
    bool answering = false;  // on the strand only
    bool closed = false;     // on the strand only
  };
  using connection_ptr = std::shared_ptr<connection>;

  struct state {
    state(boost::asio::any_io_executor ex, http_server_options o, Handler h, observer obs)
        : io(ex),
          acceptor(boost::asio::make_strand(ex)),
          opts(std::move(o)),
          handler(std::move(h)),
          observe(std::move(obs)) {}
    boost::asio::any_io_executor io;
    boost::asio::ip::tcp::acceptor acceptor;
    http_server_options opts;
    Handler handler;
    observer observe;
    std::mutex mutex;  // list
    std::condition_variable drained;
    std::list<connection_ptr> list;
    std::atomic<std::size_t> open{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<bool> stopping{false};
  };

  static std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
    const auto a = ep.address();
    return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), ep.port())
                     : fmt::format("{}:{}", a.to_string(), ep.port());
  }

  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    namespace asio = boost::asio;
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::make_strand(st->io),
                                                             asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. reset before accept, or out of descriptors: keep serving
      if (st->open.load() >= st->opts.max_connections || st->stopping.load()) {
        ++st->refused;
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto c = std::make_shared<connection>(std::move(socket));
      typename std::list<connection_ptr>::iterator self;
      {
        std::lock_guard lock(st->mutex);
        self = st->list.insert(st->list.end(), c);
      }
      ++st->open;
      asio::co_spawn(c->strand, session(st, c, self), asio::detached);
    }
  }

  // One connection: serve() its requests, then close it and forget it,
  // whatever ended it (an exception from the handler is reported on stderr:
  // it is a bug, and the connection closes without an answer).
  static boost::asio::awaitable<void> session(std::shared_ptr<state> st, connection_ptr c,
                                              typename std::list<connection_ptr>::iterator self) {
    std::string failure;
    try {
      co_await serve(st, c);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty())
      std::fprintf(stderr, "http_server: a connection failed: %s\n", failure.c_str());
    c->close();
    --st->open;
    std::lock_guard lock(st->mutex);
    st->list.erase(self);
    if (st->list.empty()) st->drained.notify_all();
  }

  static boost::asio::awaitable<void> serve(std::shared_ptr<state> st, connection_ptr c) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    using clock = std::chrono::steady_clock;
    auto& stream = c->stream;
    const auto& o = st->opts;
    beast::flat_buffer buffer;
    auto start = clock::now();  // the accept stands for the first request's first byte
    for (bool first = true; !c->closed && !st->stopping.load(); first = false) {
      if (!first) {
        if (buffer.size() == 0) {  // keep-alive: wait for the next request's first byte
          stream.expires_after(o.idle_timeout);
          auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024),
                                                         asio::as_tuple(asio::use_awaitable));
          if (ec || st->stopping.load()) break;
          buffer.commit(n);
        }
        start = clock::now();
      }
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(o.max_header_bytes));
      parser.body_limit(o.max_body_bytes);
      stream.expires_at(start + std::min(o.header_timeout, o.request_timeout));
      auto [rec, n] = co_await http::async_read_header(stream, buffer, parser,
                                                       asio::as_tuple(asio::use_awaitable));
      if (!rec && !parser.is_done()) {
        stream.expires_at(start + o.request_timeout);
        std::tie(rec, n) =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      }
      if (c->closed) break;
      if (rec == http::error::header_limit || rec == http::error::body_limit) {
        co_await refuse_too_large(*st, *c, parser, rec == http::error::header_limit, start);
        break;
      }
      if (rec) {
        // Bytes that are not HTTP get a 400 before the close; an end of
        // stream, a message cut short, a timeout or a reset just close.
        const bool malformed =
            rec.category() == http::make_error_code(http::error::bad_target).category() &&
            rec != http::error::end_of_stream && rec != http::error::partial_message;
        if (malformed) co_await refuse_malformed(*st, *c, start, rec.message());
        break;
      }
      c->answering = true;
      answer a = co_await st->handler(parser.get());
      const bool keep = parser.get().keep_alive() && !st->stopping.load();
      a.res.keep_alive(keep);
      a.res.set(http::field::server, "seckill");
      a.res.prepare_payload();
      // The handler's time is its own (a purchase is bounded by its deadline,
      // and when the store fails mid-way by the hold, since the buyer must be
      // told a definite outcome): the answer gets the request timeout to be written.
      stream.expires_after(o.request_timeout);
      auto [wec, m] =
          co_await http::async_write(stream, a.res, asio::as_tuple(asio::use_awaitable));
      (void)m;
      c->answering = false;
      if (st->observe)
        st->observe(a.route, a.res.result_int(),
                    std::chrono::duration<double>(clock::now() - start).count());
      if (wec || !keep) break;
    }
  }

  static boost::asio::awaitable<void> write_and_linger(
      state& st, connection& c, response& res, std::chrono::steady_clock::time_point start) {
    namespace asio = boost::asio;
    auto& stream = c.stream;
    res.keep_alive(false);
    res.set(http::field::server, "seckill");
    res.prepare_payload();
    stream.expires_at(start + st.opts.request_timeout);
    auto [wec, m] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)m;
    if (st.observe)
      st.observe("other", res.result_int(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (wec || c.closed) co_return;
    // A lingering close: read and drop what the client still sends (1 s, 1 MiB
    // at most) so that it reads the answer rather than a reset.
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < 1024 * 1024 && !c.closed;) {
      auto [rec, n] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (rec) break;
      drained += n;
    }
  }

  static boost::asio::awaitable<void> refuse_too_large(
      state& st, connection& c, const http::request_parser<http::string_body>& parser, bool headers,
      std::chrono::steady_clock::time_point start) {
    response res;
    res.version(11);
    res.set(http::field::content_type, "application/json");
    if (headers) {
      res.result(http::status::request_header_fields_too_large);
      res.body() = fmt::format(R"({{"error":"headers_too_large","limit":{}}})"
                               "\n",
                               st.opts.max_header_bytes);
    } else {
      (void)parser;
      res.result(http::status::payload_too_large);
      res.body() = fmt::format(R"({{"error":"body_too_large","limit":{}}})"
                               "\n",
                               st.opts.max_body_bytes);
    }
    co_await write_and_linger(st, c, res, start);
  }

  static boost::asio::awaitable<void> refuse_malformed(state& st, connection& c,
                                                       std::chrono::steady_clock::time_point start,
                                                       std::string why) {
    response res;
    res.version(11);
    res.result(http::status::bad_request);
    res.set(http::field::content_type, "application/json");
    make_json_safe(why);
    res.body() = fmt::format(R"({{"error":"bad_request","message":"malformed HTTP: {}"}})"
                             "\n",
                             why);
    co_await write_and_linger(st, c, res, start);
  }

  // Keeps a Beast error message safe inside a JSON string (letters, digits, spaces).
  static void make_json_safe(std::string& s) {
    for (auto& ch : s)
      if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) ch = ' ';
  }

  std::shared_ptr<state> state_;
  unsigned short port_ = 0;
};

}  // namespace seckill_server
