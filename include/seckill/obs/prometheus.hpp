#pragma once
/// @file
/// @brief The Prometheus text exposition format 0.0.4 for a `seckill::obs::registry`,
///        and a small HTTP server (Boost.Beast) answering `/metrics` and `/health`.
///
/// @code
/// seckill::obs::registry reg;
/// boost::asio::io_context io;
/// seckill::obs::metrics_server server(io.get_executor(), reg, {.port = 9464},
///     [] { return seckill::obs::health_report{{{"memory", true, ""}}}; });
/// server.start();   // then io.run() somewhere
/// @endcode

#include <seckill/error.hpp>
#include <seckill/obs/metrics.hpp>

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
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::obs {

/// @brief The Content-Type of the text exposition format 0.0.4.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace detail {

/// A sample value as Prometheus parses it: +Inf, -Inf, NaN, or the shortest
/// decimal that reads back to the same double.
inline void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

inline void append_value(std::string& out, std::uint64_t v) {
  fmt::format_to(std::back_inserter(out), "{}", v);
}

/// HELP text: backslash and line feed are escaped.
inline void append_help_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

/// Label values: backslash, double quote and line feed are escaped.
inline void append_label_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

/// `{a="x",b="y"}` (nothing when there is no label), with `le` appended when given.
inline void append_labels(std::string& out, const std::vector<std::string>& names,
                          const std::vector<std::string>& values, const char* le = nullptr,
                          double le_value = 0) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_label_escaped(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += le;
    out += "=\"";
    append_value(out, le_value);
    out += '"';
  }
  out += '}';
}

}  // namespace detail

/// @brief Appends the text exposition (format 0.0.4) of `families` to `out`:
///        `# HELP` and `# TYPE` per family, one line per sample; histograms as
///        cumulative `_bucket{le=...}` lines ending with `le="+Inf"`, then
///        `_sum` and `_count`. A family without children prints only its
///        HELP and TYPE lines. Cost: proportional to the number of samples.
inline void write_text(const std::vector<family_snapshot>& families, std::string& out) {
  for (const auto& f : families) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    detail::append_help_escaped(out, f.help);
    out += "\n# TYPE ";
    out += f.name;
    out += f.type == metric_type::counter ? " counter\n"
           : f.type == metric_type::gauge ? " gauge\n"
                                          : " histogram\n";
    for (const auto& c : f.children) {
      if (f.type != metric_type::histogram) {
        out += f.name;
        detail::append_labels(out, f.label_names, c.label_values);
        out += ' ';
        detail::append_value(out, c.value);
        out += '\n';
        continue;
      }
      for (std::size_t i = 0; i < c.cumulative.size(); ++i) {
        out += f.name;
        out += "_bucket";
        const double le = i < f.bounds.size() ? f.bounds[i] : std::numeric_limits<double>::infinity();
        detail::append_labels(out, f.label_names, c.label_values, "le", le);
        out += ' ';
        detail::append_value(out, c.cumulative[i]);
        out += '\n';
      }
      out += f.name;
      out += "_sum";
      detail::append_labels(out, f.label_names, c.label_values);
      out += ' ';
      detail::append_value(out, c.sum);
      out += '\n';
      out += f.name;
      out += "_count";
      detail::append_labels(out, f.label_names, c.label_values);
      out += ' ';
      detail::append_value(out, c.cumulative.empty() ? std::uint64_t{0} : c.cumulative.back());
      out += '\n';
    }
  }
}

/// @brief The text exposition of everything in `reg` (a scrape).
inline std::string to_text(const registry& reg) {
  std::string out;
  write_text(reg.collect(), out);
  return out;
}

/// @brief Reachability of one backend, as `/health` reports it.
struct store_health {
  std::string name;        ///< e.g. "redis://127.0.0.1:6379"
  bool reachable = false;
  std::string detail;      ///< why not, when not (empty otherwise)
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
    nlohmann::json j{{"name", s.name}, {"reachable", s.reachable}};
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
///        methods get 405, other paths 404. Keep-alive, bounded request sizes,
///        an idle timeout per connection.
///
/// Thread-safety: `start()`, `stop()` and `port()` from any thread; all the
/// serving runs on a strand of the given executor, so the health callback is
/// never called concurrently with itself. The callback must not block (report
/// state the application already knows). The registry must outlive the server.
/// Cost: one scrape collects every family (a mutex per family, no lock on the
/// increment path) and formats it into one string.
class metrics_server {
 public:
  using health_callback = std::function<health_report()>;

  struct options {
    std::string address = "127.0.0.1";  ///< where to listen
    unsigned short port = 0;             ///< 0: a free port, see port()
    std::chrono::milliseconds idle_timeout{30000};  ///< closes quiet connections
    std::size_t max_connections = 64;    ///< beyond this, new connections are closed at once
  };

  metrics_server(boost::asio::any_io_executor ex, const registry& reg, options opts,
                 health_callback health = {})
      : state_(std::make_shared<state>(boost::asio::make_strand(ex), reg, std::move(opts),
                                       std::move(health))) {}
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  ~metrics_server() { stop(); }

  /// Binds and listens, then serves on the executor. Throws seckill::error
  /// (invalid_argument) when the address does not parse or the port cannot be bound.
  void start() {
    namespace asio = boost::asio;
    auto& st = *state_;
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(st.opts.address, ec);
    if (ec) throw error(errc::invalid_argument, "metrics_server: bad address '" + st.opts.address + "'");
    const asio::ip::tcp::endpoint ep(addr, st.opts.port);
    st.acceptor.open(ep.protocol(), ec);
    if (!ec) st.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) st.acceptor.bind(ep, ec);
    if (!ec) st.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw error(errc::invalid_argument, "metrics_server: cannot listen on " + st.opts.address + ":" +
                                              std::to_string(st.opts.port) + ": " + ec.message());
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
      for (auto* s : st->connections) s->socket().close(ignored);
    });
  }

 private:
  struct state {
    state(boost::asio::strand<boost::asio::any_io_executor> s, const registry& r, options o,
          health_callback h)
        : strand(std::move(s)), acceptor(strand), reg(&r), opts(std::move(o)), health(std::move(h)) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    boost::asio::ip::tcp::acceptor acceptor;
    const registry* reg;
    options opts;
    health_callback health;
    std::list<boost::beast::tcp_stream*> connections;
  };

  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<state> st) {
    namespace asio = boost::asio;
    for (;;) {
      auto [ec, socket] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !st->acceptor.is_open()) co_return;
      if (ec) continue;  // e.g. a connection reset before accept; keep serving
      if (st->connections.size() >= st->opts.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(st->strand, session(st, std::move(socket)), asio::detached);
    }
  }

  static boost::asio::awaitable<void> session(std::shared_ptr<state> st,
                                              boost::asio::ip::tcp::socket socket) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    beast::tcp_stream stream(std::move(socket));
    const auto self = st->connections.insert(st->connections.end(), &stream);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(8 * 1024);
      stream.expires_after(st->opts.idle_timeout);
      auto [rec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (rec) break;  // end of stream, timeout, oversize or malformed: close
      auto req = parser.release();
      auto res = handle(*st, req);
      stream.expires_after(st->opts.idle_timeout);
      auto [wec, m] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      (void)m;
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    st->connections.erase(self);
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
