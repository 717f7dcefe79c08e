#pragma once
/// @file
/// @brief `notifier`: sends notices (browser/webhook.hpp) to webhooks over
///        HTTP or HTTPS (Boost.Beast; TLS with certificate verification
///        where the program links seckill::tls) and, where a desktop exists,
///        as a desktop notification (org.freedesktop.Notifications, through
///        gdbus or notify-send), in the background: a slow or dead webhook
///        never delays the caller.

#include <seckill/backoff.hpp>
#include <seckill/browser/webhook.hpp>
#include <seckill/detail/base64.hpp>
#include <seckill/detail/child_process.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/detail/splitmix64.hpp>
#include <seckill/detail/tls_stream.hpp>
#include <seckill/error.hpp>
#include <seckill/tls.hpp>
#include <seckill/version.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#if SECKILL_HAS_TLS
#include <seckill/detail/tls_context.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#endif

namespace seckill::browser {

/// @brief Where a desktop notification can go: the display and the session
///        bus, as the environment says. A plain value.
struct desktop_environment {
  std::string display;          ///< DISPLAY (X11)
  std::string wayland_display;  ///< WAYLAND_DISPLAY
  std::string session_bus;      ///< DBUS_SESSION_BUS_ADDRESS

  /// This process's environment.
  static desktop_environment from_process() {
    const auto get = [](const char* name) {
      const char* v = std::getenv(name);
      return v == nullptr ? std::string() : std::string(v);
    };
    return {get("DISPLAY"), get("WAYLAND_DISPLAY"), get("DBUS_SESSION_BUS_ADDRESS")};
  }

  /// Empty when a desktop notification can be shown; else why not.
  [[nodiscard]] std::string missing() const {
    if (display.empty() && wayland_display.empty())
      return "no desktop (DISPLAY and WAYLAND_DISPLAY are unset)";
    if (session_bus.empty()) return "no desktop session bus (DBUS_SESSION_BUS_ADDRESS is unset)";
    return {};
  }
};

/// @brief What a notifier sends where, and how hard it tries.
struct notifier_options {
  std::vector<webhook> webhooks;  ///< each notice goes to every one
  notice_filter on;               ///< the kinds sent (all by default)
  bool desktop = true;            ///< a desktop notification too, where a desktop exists
  desktop_environment env = desktop_environment::from_process();
  /// One attempt's bound: connect, TLS, request and answer.
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  int retries = 3;  ///< more attempts after a 5xx answer or a network error (none after a 4xx)
  std::chrono::milliseconds backoff{500};       ///< the pause before the first retry, doubling
  std::chrono::milliseconds backoff_max{8000};  ///< the longest pause
  /// A larger screenshot is not attached (the text says where it is).
  std::size_t max_attachment = std::size_t{10} << 20;
  tls_options tls;  ///< for https webhooks: the CA to trust (default: the system's), ...
  std::function<void(std::string_view)> log;  ///< one line per delivery, failure or retry
};

/// @brief How sending one notice to one webhook went.
struct delivery {
  unsigned status = 0;  ///< the last HTTP status; 0: no answer
  int attempts = 0;
  bool attached = false;  ///< the screenshot went with it
  std::string message;    ///< what happened, fit for a log (the URL redacted)
};

namespace detail {

/// A GVariant text literal of `s`: single-quoted, ' and \ escaped.
inline std::string gvariant_string(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

/// `%XX` decoded (a URL's user info, for Basic authentication).
inline std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto hex = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace detail

/// @brief Sends notices to webhooks and the desktop, in the background.
///
/// `notify` returns at once: the sending runs on the notifier's strand, one
/// coroutine per webhook, each attempt bounded by `timeout`; a 5xx answer or
/// a network error is retried up to `retries` times after a doubling pause
/// (backoff_delay), a 4xx answer is not. A notice whose kind is not in `on`
/// is dropped. The screenshot (notice::screenshot) is read and attached
/// where the channel takes one (render_webhook); elsewhere its path is in
/// the text. Where a desktop exists (options.env: a display and a session
/// bus), each notice is also a desktop notification, through `gdbus`
/// (org.freedesktop.Notifications.Notify, the screenshot as its image) or
/// `notify-send`; where none does, the log says so once. Logs show a URL
/// only as redact_webhook does.
///
/// Thread-safety: notify() and the counters from any thread; the rest on the
/// strand. Destroying the notifier cancels nothing: sends in flight finish
/// (or time out) on the executor, which must outlive them. Cost per notice:
/// one connection (and TLS handshake) per webhook and attempt, a child
/// process for the desktop.
class notifier {
 public:
  using executor_type = boost::asio::strand<boost::asio::any_io_executor>;

  /// Throws seckill::error (seckill::errc::invalid_argument) for TLS options that
  /// cannot be used (a CA file that does not exist, ...).
  notifier(boost::asio::any_io_executor ex, notifier_options opts)
      : s_(std::make_shared<state>(boost::asio::make_strand(std::move(ex)), std::move(opts))) {
#if SECKILL_HAS_TLS
    for (const auto& w : s_->opts.webhooks) {
      const auto p = detail::split_http_url(w.url);
      if (p && p->tls && !s_->tls) s_->tls = seckill::detail::make_tls_client_context(s_->opts.tls);
    }
#endif
    if (s_->opts.desktop) {
      const std::string why = s_->opts.env.missing();
      if (why.empty()) {
        s_->desktop_program = seckill::detail::find_program("gdbus");
        if (s_->desktop_program.empty())
          s_->desktop_program = seckill::detail::find_program("notify-send");
      }
      if (!why.empty()) {
        say(*s_, "notify: " + why + ": no desktop notifications");
      } else if (s_->desktop_program.empty()) {
        say(*s_, "notify: neither gdbus nor notify-send is on PATH: no desktop notifications");
      }
    }
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return s_->strand; }
  [[nodiscard]] const notifier_options& options() const noexcept { return s_->opts; }
  /// Whether notices also go to the desktop.
  [[nodiscard]] bool desktop() const noexcept { return !s_->desktop_program.empty(); }

  /// Sends `n` to every webhook (and the desktop) in the background, when
  /// its kind is in options.on. Never blocks.
  void notify(notice n) {
    if (!s_->opts.on.has(n.kind)) return;
    ++s_->in_flight;  // (atomic: a flush started right after sees it)
    boost::asio::post(s_->strand, [s = s_, n = std::move(n)]() mutable { start(s, std::move(n)); });
  }

  /// Sends `n` to `w` now, with the retries: (error_code, delivery);
  /// seckill::errc::server_error for a refused (4xx) or failing (5xx) answer,
  /// seckill::errc::timed_out, seckill::errc::connection_refused, a tls_errc, or
  /// seckill::errc::operation_aborted when cancelled (terminal).
  template <boost::asio::completion_token_for<void(std::error_code, delivery)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_send(webhook w, notice n, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, delivery)>(
        s_->strand, send(s_, std::move(w), std::move(n)), token);
  }

  /// Completes when every notice given to notify() so far is delivered or
  /// given up: (error_code), seckill::errc::operation_aborted when cancelled.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_flush(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(s_->strand, flush(s_), token);
  }

  /// Deliveries that succeeded, and that were given up, so far (webhooks and desktop).
  [[nodiscard]] std::uint64_t delivered() const noexcept { return s_->delivered.load(); }
  [[nodiscard]] std::uint64_t failed() const noexcept { return s_->failed.load(); }

 private:
  using R = std::pair<std::error_code, delivery>;

  struct state {
    state(executor_type s, notifier_options o) : strand(std::move(s)), opts(std::move(o)) {}
    executor_type strand;
    notifier_options opts;
    std::string desktop_program;
#if SECKILL_HAS_TLS
    std::shared_ptr<boost::asio::ssl::context> tls;
#endif
    std::atomic<int> in_flight{0};
    std::atomic<std::uint64_t> delivered{0}, failed{0};
    std::vector<boost::asio::steady_timer*> waiters;  // flushes waiting for in_flight == 0
    std::uint64_t rng = 0x2545F4914F6CDD1DULL;
  };

  static void say(state& s, const std::string& line) {
    if (s.opts.log) s.opts.log(line);
  }

  static boost::asio::awaitable<bool> cancelled() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  // On the strand: one coroutine per webhook, one child for the desktop.
  static void start(const std::shared_ptr<state>& s, notice n) {
    std::string bytes;
    if (!n.screenshot.empty() && !s->opts.webhooks.empty()) {
      std::ifstream in(n.screenshot, std::ios::binary);
      if (in) bytes.assign(std::istreambuf_iterator<char>(in), {});
      if (bytes.size() > s->opts.max_attachment) bytes.clear();
    }
    auto shared = std::make_shared<const std::string>(std::move(bytes));
    const int jobs =
        static_cast<int>(s->opts.webhooks.size()) + (s->desktop_program.empty() ? 0 : 1);
    s->in_flight += jobs;
    for (const auto& w : s->opts.webhooks) {
      boost::asio::co_spawn(s->strand, send_with_file(s, w, n, shared),
                            [s](std::exception_ptr, R r) {
                              (r.first ? s->failed : s->delivered) += 1;
                              done(*s);
                            });
    }
    if (!s->desktop_program.empty()) {
      boost::asio::co_spawn(s->strand, show_on_desktop(s, n), [s](std::exception_ptr, bool ok) {
        (ok ? s->delivered : s->failed) += 1;
        done(*s);
      });
    }
    done(*s);  // the one notify() counted
  }

  static void done(state& s) {
    if (--s.in_flight > 0) return;
    for (auto* t : s.waiters) t->cancel();
  }

  static boost::asio::awaitable<std::error_code> flush(std::shared_ptr<state> s) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    while (s->in_flight.load() > 0) {
      boost::asio::steady_timer t(s->strand, boost::asio::steady_timer::time_point::max());
      s->waiters.push_back(&t);
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      std::erase(s->waiters, &t);
      if (co_await cancelled()) co_return make_error_code(seckill::errc::operation_aborted);
    }
    co_return std::error_code{};
  }

  static boost::asio::awaitable<R> send(std::shared_ptr<state> s, webhook w, notice n) {
    std::string bytes;
    if (!n.screenshot.empty()) {
      std::ifstream in(n.screenshot, std::ios::binary);
      if (in) bytes.assign(std::istreambuf_iterator<char>(in), {});
      if (bytes.size() > s->opts.max_attachment) bytes.clear();
    }
    co_return co_await send_with_file(s, std::move(w), std::move(n),
                                      std::make_shared<const std::string>(std::move(bytes)));
  }

  // Every attempt of one notice to one webhook.
  static boost::asio::awaitable<R> send_with_file(std::shared_ptr<state> s, webhook w, notice n,
                                                  std::shared_ptr<const std::string> file) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const webhook_request req = render_webhook(w, n, *file);
    const std::string shown = redact_webhook(w.url);
    const std::string what = std::string(to_string(n.kind)) + " to " + shown;
    delivery d;
    d.attached = req.attached;
    std::error_code ec;
    for (int attempt = 0;; ++attempt) {
      ++d.attempts;
      std::string why;
      std::tie(ec, d.status) = co_await attempt_once(*s, req, why);
      if (!ec && d.status >= 200 && d.status < 300) {
        d.message = "notify: " + what + ": HTTP " + std::to_string(d.status) + " (" +
                    std::to_string(d.attempts) + (d.attempts == 1 ? " attempt" : " attempts") +
                    (d.attached ? ", screenshot attached)" : ")");
        say(*s, d.message);
        co_return R{{}, std::move(d)};
      }
      if (!ec) {
        ec = make_error_code(seckill::errc::server_error);
        why = "HTTP " + std::to_string(d.status);
      }
      // A refusal, a certificate or a bad URL: trying again changes nothing.
      const bool refused = (d.status >= 400 && d.status < 500) || ec.category() == tls_category() ||
                           ec == seckill::errc::invalid_argument;
      if (ec == seckill::errc::operation_aborted || co_await cancelled()) {
        d.message = "notify: " + what + ": cancelled";
        co_return R{make_error_code(seckill::errc::operation_aborted), std::move(d)};
      }
      if (refused || attempt >= s->opts.retries) {
        d.message = "notify: " + what + " failed after " + std::to_string(d.attempts) +
                    (d.attempts == 1 ? " attempt: " : " attempts: ") + why +
                    (refused ? " (not retried)" : "");
        say(*s, d.message);
        co_return R{ec, std::move(d)};
      }
      const double jitter = seckill::detail::splitmix64_fraction(s->rng);
      const auto pause = backoff_delay(static_cast<unsigned>(attempt), s->opts.backoff,
                                       s->opts.backoff_max, jitter);
      say(*s, "notify: " + what + ": attempt " + std::to_string(d.attempts) + ": " + why +
                  "; again in " + std::to_string(pause.count()) + " ms");
      boost::asio::steady_timer t(s->strand, pause);
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (co_await cancelled()) {
        d.message = "notify: " + what + ": cancelled";
        co_return R{make_error_code(seckill::errc::operation_aborted), std::move(d)};
      }
    }
  }

  // One attempt: (error, HTTP status); `why` says what failed (no secret).
  static boost::asio::awaitable<std::pair<std::error_code, unsigned>> attempt_once(
      state& s, const webhook_request& req, std::string& why) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    using P = std::pair<std::error_code, unsigned>;
    constexpr auto use = asio::as_tuple(asio::use_awaitable);
    const auto parts = detail::split_http_url(req.url, &why);
    if (!parts) co_return P{make_error_code(seckill::errc::invalid_argument), 0};
    const auto net = [&](const boost::system::error_code& e, const char* step) {
      why = std::string(step) + ": " + e.message();
      if (e == beast::error::timeout) {
        why = std::string(step) + ": no answer within " + std::to_string(s.opts.timeout.count()) +
              " ms";
        return make_error_code(seckill::errc::timed_out);
      }
      if (e == asio::error::operation_aborted)
        return make_error_code(seckill::errc::operation_aborted);
      if (e == asio::error::connection_refused || e == asio::error::host_not_found ||
          e == asio::error::host_not_found_try_again)
        return make_error_code(seckill::errc::connection_refused);
      return make_error_code(seckill::errc::not_connected);
    };
    seckill::detail::maybe_tls_stream<beast::tcp_stream> stream(s.strand);
    asio::ip::tcp::resolver resolver(s.strand);
    auto [rec, results] = co_await resolver.async_resolve(parts->host, parts->port, use);
    if (rec) co_return P{net(rec, "resolving the host"), 0};
    stream.next_layer().expires_after(s.opts.timeout);
    auto [cec, ep] = co_await stream.next_layer().async_connect(results, use);
    (void)ep;
    if (cec) co_return P{net(cec, "connecting"), 0};
    if (parts->tls) {
#if SECKILL_HAS_TLS
      auto& session = stream.start_tls(*s.tls);
      if (!seckill::detail::prepare_tls_client(session.native_handle(), s.opts.tls, parts->host)) {
        why = "TLS: OpenSSL refused the server name";
        co_return P{make_error_code(tls_errc::handshake_failed), 0};
      }
      auto [hec] = co_await session.async_handshake(asio::ssl::stream_base::client, use);
      if (hec == beast::error::timeout || hec == asio::error::operation_aborted)
        co_return P{net(hec, "TLS handshake"), 0};
      if (hec) {
        const std::string peer = parts->host + ":" + parts->port;
        const std::error_code e = seckill::detail::tls_failure(hec, session.native_handle(),
                                                               s.opts.tls, parts->host, peer, why);
        co_return P{e, 0};
      }
#else
      why = "https needs a program built with TLS (link seckill::tls)";
      co_return P{make_error_code(seckill::errc::invalid_argument), 0};
#endif
    }
    http::request<http::string_body> r;
    r.method_string(req.method);
    r.target(parts->target);
    r.version(11);
    const bool v6 = parts->host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + parts->host + "]" : parts->host;
    r.set(http::field::host,
          parts->port == (parts->tls ? "443" : "80") ? host : host + ":" + parts->port);
    r.set(http::field::user_agent, std::string("seckill/") + version.string);
    r.set(http::field::connection, "close");
    if (!parts->userinfo.empty()) {
      r.set(http::field::authorization,
            "Basic " + seckill::detail::base64_encode(detail::percent_decode(parts->userinfo)));
    }
    if (!req.content_type.empty()) r.set(http::field::content_type, req.content_type);
    r.body() = req.body;
    if (req.method != "GET" || !req.body.empty()) r.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, r, use);
    (void)wn;
    if (wec) co_return P{net(wec, "sending"), 0};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 20);
    auto [rrec, rn] = co_await http::async_read(stream, buffer, parser, use);
    (void)rn;
    if (rrec) co_return P{net(rrec, "reading the answer"), 0};
    boost::system::error_code ignored;
    stream.next_layer().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return P{std::error_code{}, parser.get().result_int()};
  }

  // A desktop notification through gdbus (or notify-send): true when the
  // program reported success within 5 s.
  static boost::asio::awaitable<bool> show_on_desktop(std::shared_ptr<state> s, notice n) {
    const std::string title = detail::notice_title(n);
    std::string body = n.text;
    if (!n.screenshot.empty()) body += (body.empty() ? "" : "\n") + n.screenshot;
    seckill::detail::child_process::options o;
    const bool gdbus = s->desktop_program.ends_with("gdbus");
    if (gdbus) {
      std::string hints = "@a{sv} {}";
      if (!n.screenshot.empty())
        hints = "{'image-path': <" + detail::gvariant_string("file://" + n.screenshot) + ">}";
      o.argv = {s->desktop_program,
                "call",
                "--session",
                "--dest",
                "org.freedesktop.Notifications",
                "--object-path",
                "/org/freedesktop/Notifications",
                "--method",
                "org.freedesktop.Notifications.Notify",
                detail::gvariant_string("seckill"),
                "uint32 0",
                detail::gvariant_string(""),
                detail::gvariant_string(title),
                detail::gvariant_string(body),
                "@as []",
                hints,
                "int32 10000"};
    } else {
      o.argv = {s->desktop_program, "-a", "seckill"};
      if (!n.screenshot.empty()) o.argv.insert(o.argv.end(), {"-i", n.screenshot});
      o.argv.insert(o.argv.end(), {title, body});
    }
    o.output_path = "/dev/null";
    const desktop_environment& env = s->opts.env;
    o.extra_env = {"DBUS_SESSION_BUS_ADDRESS=" + env.session_bus};
    if (!env.display.empty()) o.extra_env.push_back("DISPLAY=" + env.display);
    if (!env.wayland_display.empty())
      o.extra_env.push_back("WAYLAND_DISPLAY=" + env.wayland_display);
    seckill::detail::child_process child;
    try {
      child.start(o);
    } catch (const std::exception& e) {
      say(*s, std::string("notify: desktop notification: ") + e.what());
      co_return false;
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (child.running() && std::chrono::steady_clock::now() < until) {
      boost::asio::steady_timer t(s->strand, std::chrono::milliseconds(20));
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    if (child.running()) {
      child.kill_and_wait();
      say(*s, "notify: desktop notification: no answer from the session bus within 5 s");
      co_return false;
    }
    const int st = child.wait_status();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      say(*s, "notify: desktop notification: " +
                  s->desktop_program.substr(s->desktop_program.find_last_of('/') + 1) +
                  " failed (exit status " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) +
                  "; is a notification service running?)");
      co_return false;
    }
    say(*s, "notify: " + std::string(to_string(n.kind)) + " shown on the desktop");
    co_return true;
  }

  std::shared_ptr<state> s_;
};

}  // namespace seckill::browser
