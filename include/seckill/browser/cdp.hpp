#pragma once
/// @file
/// @brief A Chrome DevTools Protocol client: one WebSocket per browser, flat
///        sessions, replies routed by id, events routed by (sessionId, method).

#include <seckill/browser/error.hpp>
#include <seckill/error.hpp>
#include <seckill/url.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/host_type.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seckill::browser {
namespace cdp {

/// @brief The parts of a `ws://host[:port]/path[?query]` DevTools endpoint
///        (or of an `http://` one: the same shape).
struct ws_endpoint {
  std::string host;    ///< what the resolver takes: an IPv6 address without its brackets
  std::string port;    ///< 1..65535 ("80" when the URL has none)
  std::string target;  ///< path and query, starting with '/' ("/" when the URL has none)

  /// The HTTP Host header's value: `host:port`, an IPv6 address in brackets (`[::1]:9222`).
  [[nodiscard]] std::string host_header() const {
    const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
    return (ipv6 ? "[" + host + "]" : host) + ":" + port;
  }
};

namespace detail {

/// The scheme of `url` (what comes before "://" when it is an RFC 3986
/// scheme), or empty.
inline std::string_view url_scheme(std::string_view url) noexcept {
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos || !seckill::detail::is_scheme(url.substr(0, sep))) return {};
  return url.substr(0, sep);
}

/// What a message may say about a scheme the caller did not expect: its name
/// when it is a short RFC 3986 scheme (anything else may be part of a secret).
inline std::string unexpected_scheme(std::string_view url) {
  const std::string_view scheme = url_scheme(url);
  if (scheme.empty() || scheme.size() > 16) return {};
  return "unsupported scheme '" + std::string(scheme) + "'; ";
}

/// Reads `<scheme>://host[:port][/path][?query][#fragment]` with Boost.URL
/// (RFC 3986) into `out`: the scheme is case-insensitive, the port defaults to
/// 80, an IPv6 host is written in brackets (`[::1]`), the target is the path
/// and query. `tls_scheme` (wss, https) gets its own "TLS not supported"
/// answer; user info, a fragment (unless `fragment_ok`), a host that is not a
/// host name or an IP address, and a port outside [1, 65535] are refused.
/// Otherwise returns errc::invalid_argument, sets `message` (when given) to
/// "bad <what> '<url through redact_url>': <why>" and leaves `out` as it was.
inline std::error_code parse_endpoint_url(std::string_view url, std::string_view scheme,
                                          std::string_view tls_scheme, std::string_view what,
                                          std::string_view form, bool fragment_ok, ws_endpoint& out,
                                          std::string* message) {
  namespace urls = boost::urls;
  auto bad = [&](std::string_view why) {
    if (message != nullptr)
      *message = "bad " + std::string(what) + " '" + redact_url(url) + "': " + std::string(why);
    return make_error_code(seckill::errc::invalid_argument);
  };
  const std::string expected = "expected " + std::string(form);

  // The scheme first, from the text: a TLS scheme deserves its own answer
  // even when the rest would not parse.
  const std::string_view given = url_scheme(url);
  if (urls::grammar::ci_is_equal(given, tls_scheme)) {
    return bad("TLS not supported (" + std::string(tls_scheme) + "://); use " +
               std::string(scheme) + "://");
  }
  if (!urls::grammar::ci_is_equal(given, scheme)) return bad(unexpected_scheme(url) + expected);

  // The authority as written: what follows "://" up to the path, query or fragment.
  const std::string_view rest = url.substr(given.size() + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos)
    return bad("user info ('...@') is not supported; " + expected);
  if (authority.find('[') == std::string_view::npos &&
      authority.find(':') != authority.rfind(':') &&
      authority.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos) {
    return bad("an IPv6 address must be written in brackets, as in " + std::string(scheme) +
               "://[::1]:9222/");
  }

  const auto parsed = urls::parse_uri(url);
  if (!parsed) {
    if (const std::size_t open = authority.find('[');
        open != std::string_view::npos && authority.find(']', open) == std::string_view::npos) {
      return bad("unterminated '[' in the host (an IPv6 address is written [::1])");
    }
    return bad("not a valid URL (RFC 3986); " + expected);
  }
  const urls::url_view& u = *parsed;
  if (u.has_fragment() && !fragment_ok)
    return bad("a fragment ('#...') is not allowed; " + expected);

  std::string_view path = u.encoded_path();
  std::string port = u.has_port() ? std::string(u.port()) : std::string();
  if (!path.empty() && path.front() != '/') {
    // RFC 3986 has no such URL; Boost.URL reads what follows the authority as a path.
    if (!u.has_port())
      return bad("unexpected '" + std::string(path) + "' after the host; " + expected);
    port += std::string(path.substr(0, path.find('/')));  // the port as written
  }

  if (u.host_type() == urls::host_type::ipvfuture)
    return bad("IPvFuture addresses are not supported");
  std::string host = u.host_address();  // decoded; an IPv6 address without its brackets
  if (host.empty()) return bad("no host; " + expected);
  if (u.host_type() == urls::host_type::name && !std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
      })) {
    return bad("host '" + std::string(u.encoded_host()) + "' is not a host name or an IP address");
  }

  if (!u.has_port()) {
    port = "80";
  } else if (port.empty()) {
    return bad("empty port after ':'");
  } else {
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc{} || end != port.data() + port.size() || n == 0 || n > 65535)
      return bad("port '" + port + "' is not a number in [1, 65535]");
  }

  std::string target = u.has_query() ? std::string(u.encoded_target()) : std::string(path);
  if (target.empty() || target.front() != '/') target.insert(0, "/");
  out.host = std::move(host);
  out.port = std::move(port);
  out.target = std::move(target);
  return {};
}

}  // namespace detail

/// @brief Splits a DevTools WebSocket URL, `ws://host[:port]/path[?query]`
///        (`ws://127.0.0.1:9222/devtools/browser/<id>`, `ws://[::1]:9222/...`),
///        with Boost.URL. The scheme is case-insensitive and the port defaults
///        to 80. On anything else (wss://: TLS is not supported; user info, a
///        fragment, no host, a port outside [1, 65535], not a URL) returns
///        errc::invalid_argument and sets `message` to what was wrong, with
///        the URL shown through `seckill::redact_url`.
inline ws_endpoint parse_ws_url(std::string_view url, std::error_code& ec,
                                std::string* message = nullptr) {
  ws_endpoint ep;
  ec = detail::parse_endpoint_url(
      url, "ws", "wss", "DevTools WebSocket URL",
      "ws://host[:port]/path, as in ws://127.0.0.1:9222/devtools/browser/<id>", false, ep, message);
  return ep;
}

/// Throwing overload of parse_ws_url: throws seckill::error (errc::invalid_argument).
inline ws_endpoint parse_ws_url(std::string_view url) {
  std::error_code ec;
  std::string message;
  ws_endpoint ep = parse_ws_url(url, ec, &message);
  if (ec) throw error(ec, message);
  return ep;
}

/// @brief One incoming DevTools frame, classified: a reply to call `id`, an
///        event, or a frame that is not a CDP message.
///
/// A plain value (thread-safety: that of its members). Cost: what
/// `parse_message` spends on it, one JSON parse of the frame.
struct message {
  enum class kind {
    reply,   ///< {id, result} or {id, error}; `ec` and `value` are what the call completes with
    event,   ///< {method, params?, sessionId?}; `value` is params ({} when absent)
    invalid  ///< neither: `error` says what was wrong and what was seen
  };
  kind what = kind::invalid;
  std::uint64_t id = 0;  ///< reply: the call's id
  std::error_code ec;    ///< reply: {} | errc::cdp_error | seckill::errc::protocol_error; invalid:
                         ///< seckill::errc::protocol_error
  nlohmann::json value;  ///< reply: result, error object, or {"message": error}; event: params
  std::string method;    ///< event
  std::string session_id;  ///< the flat session ("" for the browser)
  std::string error;       ///< why the frame (or the reply) is malformed; empty when well formed
};

/// The name of a message kind: "reply", "event" or "invalid".
constexpr std::string_view to_string(message::kind k) noexcept {
  switch (k) {
    case message::kind::reply:
      return "reply";
    case message::kind::event:
      return "event";
    case message::kind::invalid:
      return "invalid";
  }
  return "unknown";
}

namespace detail {

/// At most this deep: every JSON value's copy, comparison and dump recurses.
inline constexpr std::size_t max_message_depth = 512;

// The deepest nesting of [ and { outside strings (a pre-scan, so that json::parse
// never builds what later recursion could not walk).
inline std::size_t nesting_depth(std::string_view text) noexcept {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

inline std::string excerpt(std::string_view text) {
  constexpr std::size_t max = 80;
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
  if (text.size() > max) out += "...";
  return out;
}

// The id of a frame that starts like Chrome's replies, `{"id":<digits>,`, read
// without parsing the rest; 0 when it does not.
inline std::uint64_t leading_id(std::string_view text) noexcept {
  constexpr std::string_view prefix = "{\"id\":";
  if (text.substr(0, prefix.size()) != prefix) return 0;
  std::uint64_t id = 0;
  std::size_t i = prefix.size();
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (id > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return 0;
    id = id * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (i == prefix.size() || i == text.size() || (text[i] != ',' && text[i] != '}')) return 0;
  return id;
}

inline message invalid_message(std::string why) {
  message m;
  m.ec = make_error_code(seckill::errc::protocol_error);
  m.error = std::move(why);
  return m;
}

}  // namespace detail

/// @brief Classifies one WebSocket text frame from the browser. Never throws.
///
/// A reply whose id is usable but whose body is not (an `error` that is not an
/// object with an integer `code` and a string `message`, a `result` that is not
/// an object, both or neither) is still a reply: the call completes with
/// errc::protocol_error and {"message": why} instead of waiting for its timeout.
/// Anything that cannot be routed (not JSON, not an object, an id that is not
/// an unsigned integer, an event without a string method, a sessionId that is
/// not a string, params that are not an object, nesting deeper than
/// detail::max_message_depth) is kind::invalid with `error` saying why.
/// Cost: one JSON parse.
inline message parse_message(std::string_view text) noexcept {
  try {
    if (text.empty()) return detail::invalid_message("empty DevTools frame");
    if (const auto d = detail::nesting_depth(text); d > detail::max_message_depth) {
      return detail::invalid_message("DevTools frame nested " + std::to_string(d) +
                                     " deep (limit " + std::to_string(detail::max_message_depth) +
                                     ")");
    }
    nlohmann::json msg = nlohmann::json::parse(text, nullptr, false);
    if (msg.is_discarded()) {
      message m =
          detail::invalid_message("DevTools frame is not JSON: '" + detail::excerpt(text) + "'");
      if (const std::uint64_t id = detail::leading_id(text); id != 0) {
        // A reply JSON cannot hold (a lone surrogate from a page string, say):
        // its call fails now rather than at its timeout.
        m.what = message::kind::reply;
        m.id = id;
        m.error = "reply " + std::to_string(id) + " is not JSON: '" + detail::excerpt(text) + "'";
        m.value = nlohmann::json{{"message", m.error}};
      }
      return m;
    }
    if (!msg.is_object()) {
      return detail::invalid_message(std::string("DevTools frame is a JSON ") + msg.type_name() +
                                     ", not an object: '" + detail::excerpt(text) + "'");
    }
    message m;
    std::string bad_session;  // a reply with it still completes its call, with the reason
    if (auto s = msg.find("sessionId"); s != msg.end()) {
      if (s->is_string()) {
        m.session_id = s->get<std::string>();
      } else {
        bad_session = std::string("DevTools frame's sessionId is a ") + s->type_name() +
                      ", not a string: '" + detail::excerpt(text) + "'";
      }
    }
    if (auto id = msg.find("id"); id != msg.end()) {
      if (!id->is_number_unsigned() || id->get<std::uint64_t>() == 0) {
        return detail::invalid_message("DevTools reply id is not a positive integer: '" +
                                       detail::excerpt(text) + "'");
      }
      m.what = message::kind::reply;
      m.id = id->get<std::uint64_t>();
      const auto err = msg.find("error");
      const auto res = msg.find("result");
      if (!bad_session.empty()) {
        m.error = "reply " + std::to_string(m.id) + ": " + bad_session;
      } else if (err != msg.end() && res != msg.end()) {
        m.error = "reply " + std::to_string(m.id) + " has both result and error";
      } else if (err != msg.end()) {
        const auto code = err->is_object() ? err->find("code") : err->end();
        const auto text_it = err->is_object() ? err->find("message") : err->end();
        if (!err->is_object() || code == err->end() || !code->is_number_integer() ||
            text_it == err->end() || !text_it->is_string()) {
          m.error = "reply " + std::to_string(m.id) +
                    "'s error is not {code: integer, message: string}: '" + detail::excerpt(text) +
                    "'";
        } else {
          m.ec = make_error_code(errc::cdp_error);
          m.value = std::move(*err);
        }
      } else if (res != msg.end()) {
        if (!res->is_object()) {
          m.error = std::string("reply ") + std::to_string(m.id) + "'s result is a " +
                    res->type_name() + ", not an object";
        } else {
          m.value = std::move(*res);
        }
      } else {
        m.error = "reply " + std::to_string(m.id) + " has neither result nor error";
      }
      if (!m.error.empty()) {
        m.ec = make_error_code(seckill::errc::protocol_error);
        m.value = nlohmann::json{{"message", m.error}};
      }
      return m;
    }
    if (!bad_session.empty()) return detail::invalid_message(std::move(bad_session));
    const auto method = msg.find("method");
    if (method == msg.end() || !method->is_string() ||
        method->get_ref<const std::string&>().empty()) {
      return detail::invalid_message(
          "DevTools frame is neither a reply (id) nor an event (method): '" +
          detail::excerpt(text) + "'");
    }
    m.method = method->get<std::string>();
    if (auto params = msg.find("params"); params != msg.end()) {
      if (!params->is_object()) {
        return detail::invalid_message("event " + m.method + "'s params is a " +
                                       params->type_name() + ", not an object");
      }
      m.value = std::move(*params);
    } else {
      m.value = nlohmann::json::object();
    }
    m.what = message::kind::event;
    return m;
  } catch (const std::exception& e) {  // allocation failure
    return detail::invalid_message(std::string("DevTools frame could not be read: ") + e.what());
  }
}

class connection;

/// @brief Keeps an event handler registered; unregisters on destruction or reset().
///
/// Thread-safety: reset() may be called from any thread; handlers run on the
/// connection's strand, so a reset() made on that strand (inside any handler or
/// page operation) guarantees no further call. Cost: one map entry.
class subscription {
 public:
  subscription() = default;
  subscription(std::weak_ptr<connection> conn, std::uint64_t id)
      : conn_(std::move(conn)), id_(id) {}
  subscription(subscription&& o) noexcept
      : conn_(std::move(o.conn_)), id_(std::exchange(o.id_, 0)) {}
  subscription& operator=(subscription&& o) noexcept {
    if (this != &o) {
      reset();
      conn_ = std::move(o.conn_);
      id_ = std::exchange(o.id_, 0);
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { reset(); }
  inline void reset() noexcept;
  [[nodiscard]] bool active() const noexcept { return id_ != 0; }

 private:
  std::weak_ptr<connection> conn_;
  std::uint64_t id_ = 0;
};

/// @brief One WebSocket to a browser's DevTools endpoint, shared by every page.
///
/// Commands carry an id and, for a page, the flat `sessionId` from
/// Target.attachToTarget (flatten: true); replies are routed back by id, events
/// by (sessionId, method). Writes go through one queue (a WebSocket allows one
/// outstanding write). Every call has a timeout. A reply with an `error` member
/// completes with errc::cdp_error and that member as the value; when the socket
/// closes (the browser died or close() was called) every pending call completes
/// at once with errc::browser_closed, and later calls fail immediately.
///
/// Thread-safety: every member may be called from any thread; all state lives on
/// one strand, where event handlers run too. Cost: one JSON dump per call and one
/// parse per message; one timer per pending call.
class connection : public std::enable_shared_from_this<connection> {
 public:
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;
  using event_handler = std::function<void(const nlohmann::json& params)>;
  using close_handler = std::function<void(std::error_code)>;
  using clock = std::chrono::steady_clock;

  /// Connects (blocking: a TCP connect and the WebSocket handshake) to a
  /// `ws://` DevTools URL and starts reading on `ex`. Throws seckill::error.
  static std::shared_ptr<connection> connect(boost::asio::any_io_executor ex,
                                             std::string_view ws_url) {
    const ws_endpoint ep = parse_ws_url(ws_url);
    auto conn = std::shared_ptr<connection>(new connection(std::move(ex)));
    try {
      boost::asio::ip::tcp::resolver resolver(conn->strand_);
      // Every address the name resolves to, in turn (localhost may be ::1 first).
      boost::beast::get_lowest_layer(conn->ws_).connect(resolver.resolve(ep.host, ep.port));
      boost::beast::get_lowest_layer(conn->ws_).socket().set_option(
          boost::asio::ip::tcp::no_delay(true));
      conn->ws_.read_message_max(256u << 20);
      conn->ws_.handshake(ep.host_header(), ep.target);
    } catch (const boost::system::system_error& e) {
      throw error(seckill::errc::connection_refused,
                  "cannot open DevTools WebSocket '" + redact_url(ws_url) + "': " + e.what());
    }
    conn->url_ = std::string(ws_url);
    boost::asio::post(conn->strand_, [self = conn] { self->do_read(); });
    return conn;
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() = default;

  [[nodiscard]] executor_type get_executor() const noexcept { return strand_; }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  /// False once the socket closed (set on the strand; a hint from other threads).
  [[nodiscard]] bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }

  /// The timeout of calls made without one (default 10 s).
  void set_default_timeout(std::chrono::milliseconds t) noexcept {
    default_timeout_ms_ = t.count();
  }
  [[nodiscard]] std::chrono::milliseconds default_timeout() const noexcept {
    return std::chrono::milliseconds(default_timeout_ms_.load());
  }

  /// Sends `method` with `params` (to the page session `session_id`, or the
  /// browser when empty) and completes with (error_code, json): the `result`
  /// member, or on errc::cdp_error the `error` member ({code, message}).
  /// Honours per-operation cancellation (errc::operation_aborted).
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_call(std::string method, nlohmann::json params, std::string session_id,
                  std::chrono::milliseconds timeout, CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code, nlohmann::json)>(
        [self = shared_from_this()](auto handler, std::string method, nlohmann::json params,
                                    std::string session_id, std::chrono::milliseconds timeout) {
          const std::uint64_t id = self->next_id_.fetch_add(1, std::memory_order_relaxed);
          // Type-erase first: any_completion_handler installs its own handler on the
          // caller's slot and exposes a slot of its own, which is the one to use.
          any_handler h(std::move(handler));
          auto slot = boost::asio::get_associated_cancellation_slot(h);
          if (slot.is_connected()) {
            slot.assign(
                [weak = std::weak_ptr<connection>(self), id](boost::asio::cancellation_type) {
                  if (auto s = weak.lock()) {
                    boost::asio::post(s->strand_, [s, id] {
                      s->finish(id, make_error_code(seckill::errc::operation_aborted),
                                nlohmann::json());
                    });
                  }
                });
          }
          boost::asio::post(
              self->strand_,
              [self, id, method = std::move(method), params = std::move(params),
               session_id = std::move(session_id), timeout, h = std::move(h)]() mutable {
                self->start_call(id, std::move(method), std::move(params), std::move(session_id),
                                 timeout, std::move(h));
              });
        },
        token, std::move(method), std::move(params), std::move(session_id), timeout);
  }

  /// async_call with the default timeout.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_call(std::string method, nlohmann::json params, std::string session_id,
                  CompletionToken&& token = CompletionToken()) {
    return async_call(std::move(method), std::move(params), std::move(session_id),
                      default_timeout(), std::forward<CompletionToken>(token));
  }

  /// Calls `handler(params)` on the strand for every event `method` of
  /// `session_id` ("" for browser-level events) until the subscription ends.
  [[nodiscard]] subscription subscribe(std::string session_id, std::string method,
                                       event_handler handler) {
    const std::uint64_t id = next_sub_.fetch_add(1, std::memory_order_relaxed);
    std::string key = event_key(session_id, method);
    std::lock_guard lock(subs_mutex_);
    subs_[std::move(key)].push_back(std::make_shared<entry>(id, std::move(handler)));
    return subscription(weak_from_this(), id);
  }

  /// `handler(ec)` runs once on the strand when the socket closes
  /// (errc::browser_closed); at once if it already has.
  void on_close(close_handler handler) {
    boost::asio::post(strand_, [self = shared_from_this(), handler = std::move(handler)]() mutable {
      if (!self->open_) {
        handler(make_error_code(errc::browser_closed));
      } else {
        self->close_handlers_.push_back(std::move(handler));
      }
    });
  }

  /// Closes the socket: every pending call fails with errc::browser_closed.
  void close() {
    boost::asio::post(strand_, [self = shared_from_this()] {
      boost::system::error_code ignored;
      boost::beast::get_lowest_layer(self->ws_).socket().shutdown(
          boost::asio::ip::tcp::socket::shutdown_both, ignored);
      boost::beast::get_lowest_layer(self->ws_).socket().close(ignored);
      self->fail_all();
    });
  }

  /// Calls sent so far (for diagnostics and benches).
  [[nodiscard]] std::uint64_t calls_sent() const noexcept { return next_id_.load() - 1; }

  /// `handler(what)` runs on the strand for every frame that is not a CDP
  /// message, every malformed reply (its call completes with
  /// errc::protocol_error) and every exception an event handler throws; `what`
  /// says what was wrong and what was seen. The connection stays open.
  void on_protocol_error(std::function<void(const std::string&)> handler) {
    boost::asio::post(strand_, [self = shared_from_this(), handler = std::move(handler)]() mutable {
      self->protocol_error_handler_ = std::move(handler);
    });
  }

  /// Frames and handler failures reported to on_protocol_error() so far.
  [[nodiscard]] std::uint64_t protocol_errors() const noexcept { return protocol_errors_.load(); }

 private:
  friend class subscription;
  using any_handler = boost::asio::any_completion_handler<void(std::error_code, nlohmann::json)>;

  struct pending {
    any_handler handler;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct entry {
    entry(std::uint64_t i, event_handler h) : id(i), handler(std::move(h)) {}
    std::atomic<std::uint64_t> id;
    event_handler handler;
  };

  explicit connection(boost::asio::any_io_executor ex)
      : strand_(boost::asio::make_strand(ex)), ws_(strand_) {}

  static std::string event_key(std::string_view session, std::string_view method) {
    std::string k;
    k.reserve(session.size() + method.size() + 1);
    k.append(session).push_back('\n');
    k.append(method);
    return k;
  }

  void unsubscribe(std::uint64_t id) noexcept {
    std::lock_guard lock(subs_mutex_);
    for (auto it = subs_.begin(); it != subs_.end(); ++it) {
      auto& v = it->second;
      for (auto e = v.begin(); e != v.end(); ++e) {
        if ((*e)->id.load() == id) {
          (*e)->id.store(0);  // a copy being dispatched right now skips it
          v.erase(e);
          if (v.empty()) subs_.erase(it);
          return;
        }
      }
    }
  }

  void start_call(std::uint64_t id, std::string method, nlohmann::json params,
                  std::string session_id, std::chrono::milliseconds timeout, any_handler h) {
    if (!open_) {
      deliver(std::move(h), make_error_code(errc::browser_closed), nlohmann::json());
      return;
    }
    nlohmann::json msg = {{"id", id}, {"method", std::move(method)}, {"params", std::move(params)}};
    if (msg["params"].is_null()) msg["params"] = nlohmann::json::object();
    if (!session_id.empty()) msg["sessionId"] = std::move(session_id);
    auto timer = std::make_unique<boost::asio::steady_timer>(strand_, timeout);
    timer->async_wait([weak = weak_from_this(), id](boost::system::error_code ec) {
      if (ec) return;
      if (auto s = weak.lock())
        s->finish(id, make_error_code(seckill::errc::timed_out), nlohmann::json());
    });
    pending_.emplace(id, pending{std::move(h), std::move(timer)});
    write(msg.dump());
  }

  // Completes call `id` if it is still pending (on the strand).
  void finish(std::uint64_t id, std::error_code ec, nlohmann::json value) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    pending p = std::move(it->second);
    pending_.erase(it);
    if (p.timer) p.timer->cancel();
    deliver(std::move(p.handler), ec, std::move(value));
  }

  void deliver(any_handler h, std::error_code ec, nlohmann::json value) {
    auto slot = boost::asio::get_associated_cancellation_slot(h);
    if (slot.is_connected()) slot.clear();
    // Runs on the handler's own executor (post hands it over from the strand).
    boost::asio::post(strand_, boost::asio::append(std::move(h), ec, std::move(value)));
  }

  void write(std::string text) {
    out_.push_back(std::move(text));
    if (out_.size() == 1) do_write();
  }

  void do_write() {
    ws_.text(true);
    ws_.async_write(boost::asio::buffer(out_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      if (ec) {
                        self->out_.clear();
                        self->fail_all();
                        return;
                      }
                      self->out_.pop_front();
                      if (!self->out_.empty()) self->do_write();
                    });
  }

  void do_read() {
    ws_.async_read(in_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (ec) {
        self->fail_all();
        return;
      }
      self->on_message(
          std::string_view(static_cast<const char*>(self->in_.data().data()), self->in_.size()));
      self->in_.consume(self->in_.size());
      self->do_read();
    });
  }

  void on_message(std::string_view text) {
    message m = parse_message(text);
    switch (m.what) {
      case message::kind::reply: {
        std::string error = std::move(m.error);
        finish(m.id, m.ec, std::move(m.value));  // the call first: a report must not delay it
        if (!error.empty()) protocol_error(std::move(error));
        return;
      }
      case message::kind::invalid:
        protocol_error(std::move(m.error));
        return;
      case message::kind::event:
        break;
    }
    std::vector<std::shared_ptr<entry>> targets;
    {
      std::lock_guard lock(subs_mutex_);
      auto it = subs_.find(event_key(m.session_id, m.method));
      if (it == subs_.end()) return;
      targets = it->second;
    }
    for (auto& e : targets) {
      if (e->id.load() == 0) continue;
      try {
        e->handler(m.value);
      } catch (const std::exception& ex) {
        // The read loop goes on: one bad handler must not take every page down.
        protocol_error("handler of " + m.method + " threw: " + ex.what());
      } catch (...) {
        protocol_error("handler of " + m.method + " threw a non-standard exception");
      }
    }
  }

  void protocol_error(std::string what) noexcept {
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    if (!protocol_error_handler_) return;
    try {
      protocol_error_handler_(what);
    } catch (...) {
      // a throwing report must not stop the read loop either; it was counted
    }
  }

  void fail_all() {
    if (!open_) return;
    open_ = false;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, p] : pending) {
      if (p.timer) p.timer->cancel();
      deliver(std::move(p.handler), make_error_code(errc::browser_closed), nlohmann::json());
    }
    auto handlers = std::move(close_handlers_);
    close_handlers_.clear();
    for (auto& h : handlers) h(make_error_code(errc::browser_closed));
  }

  executor_type strand_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer in_;
  std::deque<std::string> out_;
  std::unordered_map<std::uint64_t, pending> pending_;
  std::vector<close_handler> close_handlers_;
  std::function<void(const std::string&)> protocol_error_handler_;
  std::atomic<std::uint64_t> protocol_errors_{0};
  std::mutex subs_mutex_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<entry>>> subs_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> next_sub_{1};
  std::atomic<std::int64_t> default_timeout_ms_{10000};
  std::atomic<bool> open_{true};
  std::string url_;
};

inline void subscription::reset() noexcept {
  if (id_ == 0) return;
  if (auto c = conn_.lock()) c->unsubscribe(id_);
  id_ = 0;
  conn_.reset();
}

}  // namespace cdp
}  // namespace seckill::browser
