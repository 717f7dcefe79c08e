#pragma once
/// @file
/// @brief Launches Chromium (headless by default, with a throwaway profile or
///        a persistent one, its sandbox on where it can run) or connects to a
///        running browser, and owns the DevTools connection to it.

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/detail/profile_lock.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/sandbox.hpp>
#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/error.hpp>
#include <seckill/url.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/grammar/ci_string.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace seckill::browser {

/// @brief How to start Chromium.
struct chromium_options {
  std::string executable = "/usr/bin/chromium";  ///< a path, or a name looked up on PATH
  bool headless = true;
  std::vector<std::string> extra_args;  ///< appended after seckill's flags
  /// Unpacked extensions to load (--load-extension; an MV3 extension's
  /// service worker runs headless too). Empty: extensions are disabled.
  std::vector<std::filesystem::path> extensions;
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(30)};  ///< until the endpoint shows
  std::chrono::milliseconds call_timeout{std::chrono::seconds(10)};    ///< default per-call timeout
  /// Linux: the kernel kills the browser when the thread that called
  /// `launch` ends, a crash or a kill -9 of the program included, so no
  /// headless Chromium outlives its owner. Turn it off to launch from a
  /// thread that ends before the browser should.
  bool die_with_launching_thread = true;
  /// The sandbox: automatic keeps it on except as root, where it cannot run.
  sandbox_mode sandbox = sandbox_mode::automatic;
  /// A persistent profile (cookies, logins): created when missing, never
  /// removed, closed gracefully (Browser.close) so that what the browser
  /// keeps reaches the disk. Empty: a temporary profile, removed on shutdown.
  std::filesystem::path user_data_dir;
  /// With a persistent profile: how long shutdown waits for the browser to
  /// exit after Browser.close before it terminates it.
  std::chrono::milliseconds close_timeout{std::chrono::seconds(10)};
  /// Told what launch and shutdown decided (the sandbox and why, a graceful
  /// close that did not finish); called on the calling thread, never with a
  /// secret. Empty: nothing is told.
  std::function<void(std::string_view)> log;
};

/// @brief The flags seckill starts Chromium with: headless (unless turned
///        off), `--no-sandbox` only when `sandbox_on` is false, a debugging
///        port chosen by the kernel, the given profile, no GPU, no /dev/shm,
///        no background traffic.
inline std::vector<std::string> chromium_arguments(const chromium_options& opts,
                                                   const std::filesystem::path& profile,
                                                   bool sandbox_on) {
  std::vector<std::string> args{opts.executable};
  if (opts.headless) args.emplace_back("--headless");
  if (!sandbox_on) args.emplace_back("--no-sandbox");
  for (const char* flag :
       {"--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--no-default-browser-check", "--mute-audio", "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1"}) {
    args.emplace_back(flag);
  }
  if (opts.extensions.empty()) {
    args.emplace_back("--disable-extensions");
  } else {
    std::string list;
    for (const auto& e : opts.extensions) list += (list.empty() ? "" : ",") + e.string();
    args.push_back("--load-extension=" + list);
  }
  args.push_back("--user-data-dir=" + profile.string());
  args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
  args.emplace_back("about:blank");
  return args;
}

/// chromium_arguments with the sandbox that `opts.sandbox` chooses for this
/// process (see choose_sandbox).
inline std::vector<std::string> chromium_arguments(const chromium_options& opts,
                                                   const std::filesystem::path& profile) {
  return chromium_arguments(opts, profile, choose_sandbox(opts.sandbox, ::geteuid() == 0).on);
}

namespace detail {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The ws:// URL from a DevToolsActivePort file ("<port>\n<path>\n"); empty while incomplete.
inline std::string endpoint_from_active_port(std::string_view text) {
  const auto nl = text.find('\n');
  if (nl == std::string_view::npos || nl == 0) return {};
  const std::string_view port = text.substr(0, nl);
  std::string_view path = text.substr(nl + 1);
  if (const auto nl2 = path.find('\n'); nl2 != std::string_view::npos) path = path.substr(0, nl2);
  if (path.empty() || path.front() != '/') return {};
  for (char c : port)
    if (c < '0' || c > '9') return {};
  return "ws://127.0.0.1:" + std::string(port) + std::string(path);
}

/// The ws:// URL from Chromium's "DevTools listening on ws://..." stderr line; empty when absent.
inline std::string endpoint_from_log(std::string_view log) {
  constexpr std::string_view marker = "DevTools listening on ";
  const auto at = log.find(marker);
  if (at == std::string_view::npos) return {};
  const auto start = at + marker.size();
  const auto end = log.find_first_of("\r\n", start);
  if (end == std::string_view::npos) return {};  // the line is still being written
  return std::string(log.substr(start, end - start));
}

/// The parts of a browser's DevTools HTTP endpoint, `http://host[:port]`
/// (`http://127.0.0.1:9222`, `http://[::1]:9222`), read like cdp::parse_ws_url
/// (port 80 when absent; https:// refused: TLS is not supported). Its path,
/// query and fragment are kept in `target` but chromium::connect asks
/// /json/version whatever they are. On a URL it cannot use, returns
/// errc::invalid_argument and sets `message` (the URL through redact_url).
inline cdp::ws_endpoint parse_http_url(std::string_view url, std::error_code& ec,
                                       std::string* message = nullptr) {
  cdp::ws_endpoint ep;
  ec = cdp::detail::parse_endpoint_url(url, "http", "https", "browser URL",
                                       "http://host[:port], as in http://127.0.0.1:9222", true, ep,
                                       message);
  return ep;
}

inline std::string tail(const std::string& s, std::size_t n = 2000) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

/// The first line of `log` that holds `needle`, without its "[pid:tid:...]"
/// prefix; empty when none does.
inline std::string log_line_with(std::string_view log, std::string_view needle) {
  const auto at = log.find(needle);
  if (at == std::string_view::npos) return {};
  auto begin = log.rfind('\n', at);
  begin = begin == std::string_view::npos ? 0 : begin + 1;
  auto end = log.find('\n', at);
  if (end == std::string_view::npos) end = log.size();
  std::string_view line = log.substr(begin, end - begin);
  if (!line.empty() && line.front() == '[') {
    if (const auto close = line.find("] "); close != std::string_view::npos && close < at - begin)
      line.remove_prefix(close + 2);
  }
  return std::string(line);
}

/// Sends Browser.close over a WebSocket of its own to the browser endpoint
/// `ws_url` (whatever the state of the main connection and its executor);
/// true when the command was written within `timeout`. Never throws.
inline bool request_browser_close(const std::string& ws_url,
                                  std::chrono::milliseconds timeout) noexcept {
  namespace beast = boost::beast;
  try {
    const cdp::ws_endpoint ep = cdp::parse_ws_url(ws_url);
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    const auto addresses = resolver.resolve(ep.host, ep.port);
    beast::websocket::stream<beast::tcp_stream> ws(io);
    const std::string command = R"({"id":1,"method":"Browser.close","params":{}})";
    bool sent = false;
    beast::get_lowest_layer(ws).async_connect(addresses, [&](beast::error_code ec, const auto&) {
      if (ec) return;
      ws.async_handshake(ep.host_header(), ep.target, [&](beast::error_code ec2) {
        if (ec2) return;
        ws.async_write(boost::asio::buffer(command),
                       [&](beast::error_code ec3, std::size_t) { sent = !ec3; });
      });
    });
    io.run_for(timeout);
    return sent;
  } catch (...) {
    return false;
  }
}

}  // namespace detail

/// @brief A Chromium browser and the DevTools connection to it.
///
/// launch() starts /usr/bin/chromium headless with --remote-debugging-port=0
/// and a profile: a fresh temporary one, or `chromium_options::user_data_dir`
/// (created when missing, refused with errc::profile_in_use while another
/// running Chromium holds it). Its sandbox is on unless the process runs as
/// root (`chromium_options::sandbox` forces either; sandboxed() and
/// sandbox_reason() say what was chosen). It reads the endpoint from
/// <profile>/DevToolsActivePort (or the "DevTools listening on" line) and
/// connects. Destruction closes the connection; a persistent profile's
/// browser is then asked to close (Browser.close) and given
/// `close_timeout` to write its cookies and exit; then the whole process
/// group is terminated and a temporary profile removed: no process and no
/// temporary file is left behind, and a persistent profile is kept.
/// connect() attaches to a browser someone else runs (nothing is closed or
/// killed then but the connection).
///
/// Thread-safety: the object is owned by one thread; connection() is
/// thread-safe. Cost: launch blocks for the browser's start-up (about a second);
/// all later traffic is asynchronous on the executor given.
class chromium {
 public:
  chromium(chromium&&) noexcept = default;
  chromium& operator=(chromium&& o) noexcept {
    if (this != &o) {
      shutdown();
      conn_ = std::move(o.conn_);
      process_ = std::move(o.process_);
      dir_ = std::move(o.dir_);
      url_ = std::move(o.url_);
      user_data_dir_ = std::move(o.user_data_dir_);
      sandbox_ = std::move(o.sandbox_);
      close_timeout_ = o.close_timeout_;
      log_ = std::move(o.log_);
    }
    return *this;
  }
  chromium(const chromium&) = delete;
  chromium& operator=(const chromium&) = delete;
  ~chromium() { shutdown(); }

  /// Starts Chromium and connects on `ex`. Blocks until the DevTools endpoint
  /// answers; throws seckill::error (with Chromium's last output) on failure:
  /// errc::profile_in_use when another running Chromium holds
  /// `user_data_dir`, errc::browser_closed when Chromium exits first (its own
  /// words first when it refused a sandbox as root), seckill::errc::timed_out
  /// after `launch_timeout`.
  static chromium launch(boost::asio::any_io_executor ex, const chromium_options& opts = {}) {
    chromium c;
    c.sandbox_ = choose_sandbox(opts.sandbox, ::geteuid() == 0);
    c.close_timeout_ = opts.close_timeout;
    c.log_ = opts.log;
    c.say(std::string("chromium: sandbox ") + (c.sandbox_.on ? "on: " : "off: ") +
          c.sandbox_.reason);
    c.dir_.emplace("seckill-chromium");
    const auto log = c.dir_->path() / "chromium.log";
    std::filesystem::path profile = c.dir_->path() / "profile";
    if (!opts.user_data_dir.empty()) {
      profile = opts.user_data_dir;
      c.user_data_dir_ = profile;
      prepare_persistent_profile(profile);
    }
    std::error_code dir_ec;
    std::filesystem::create_directories(profile, dir_ec);
    if (dir_ec) {
      throw error(seckill::errc::invalid_argument, "cannot create the browser profile directory '" +
                                                       profile.string() + "': " + dir_ec.message());
    }
    c.process_.emplace(
        seckill::detail::child_process::options{chromium_arguments(opts, profile, c.sandbox_.on),
                                                log.string(),
                                                {},
                                                opts.die_with_launching_thread});
    const auto until = std::chrono::steady_clock::now() + opts.launch_timeout;
    std::string url;
    while (url.empty()) {
      url = detail::endpoint_from_active_port(detail::read_file(profile / "DevToolsActivePort"));
      if (url.empty()) url = detail::endpoint_from_log(detail::read_file(log));
      if (!url.empty()) break;
      if (!c.process_->running()) c.throw_exited(opts, profile, detail::read_file(log));
      if (std::chrono::steady_clock::now() >= until) {
        throw error(seckill::errc::timed_out,
                    "chromium did not report a DevTools endpoint within " +
                        std::to_string(opts.launch_timeout.count()) + " ms; its output:\n" +
                        detail::tail(detail::read_file(log)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    c.url_ = url;
    c.conn_ = cdp::connection::connect(std::move(ex), url);
    c.conn_->set_default_timeout(opts.call_timeout);
    return c;
  }

  /// Connects to a running browser: a `ws://host[:port]/path` DevTools URL
  /// (`ws://127.0.0.1:9222/devtools/browser/<id>`), or `http://host[:port]`
  /// whose /json/version names it (a path in it is ignored). The port
  /// defaults to 80; an IPv6 host is written in brackets (`http://[::1]:9222`).
  /// Blocks; throws seckill::error: errc::invalid_argument for a URL it cannot
  /// use (wss:// and https:// included: TLS is not supported), the URL shown
  /// through redact_url.
  static chromium connect(boost::asio::any_io_executor ex, std::string_view url) {
    namespace urls = boost::urls;
    const std::string_view scheme = cdp::detail::url_scheme(url);
    chromium c;
    if (urls::grammar::ci_is_equal(scheme, "http") || urls::grammar::ci_is_equal(scheme, "https")) {
      c.url_ = discover_ws_url(url);
    } else if (urls::grammar::ci_is_equal(scheme, "ws") ||
               urls::grammar::ci_is_equal(scheme, "wss")) {
      c.url_ = std::string(url);
    } else {
      throw error(seckill::errc::invalid_argument,
                  "bad browser URL '" + redact_url(url) +
                      "': " + cdp::detail::unexpected_scheme(url) +
                      "expected ws://host[:port]/path or http://host[:port]");
    }
    c.conn_ = cdp::connection::connect(std::move(ex), c.url_);
    return c;
  }

  /// The DevTools connection (shared with every page opened on it).
  [[nodiscard]] const std::shared_ptr<cdp::connection>& connection() const noexcept {
    return conn_;
  }
  [[nodiscard]] const std::string& ws_url() const noexcept { return url_; }
  /// The browser's pid, or -1 when connected to a browser this object did not start.
  [[nodiscard]] pid_t pid() const noexcept { return process_ ? process_->pid() : -1; }
  /// The profile directory: the persistent `user_data_dir`, or the temporary
  /// one (empty when connected, not launched).
  [[nodiscard]] std::filesystem::path profile_dir() const {
    if (!user_data_dir_.empty()) return user_data_dir_;
    return dir_ ? dir_->path() / "profile" : std::filesystem::path();
  }
  /// True when launched with a persistent profile (kept on shutdown).
  [[nodiscard]] bool persistent_profile() const noexcept { return !user_data_dir_.empty(); }
  /// True when launched with Chromium's sandbox on (false when connected:
  /// the browser's owner decided).
  [[nodiscard]] bool sandboxed() const noexcept { return process_.has_value() && sandbox_.on; }
  /// Why the sandbox is on or off, as in "running as root (euid 0), where
  /// Chromium's sandbox cannot run"; empty when connected.
  [[nodiscard]] const std::string& sandbox_reason() const noexcept { return sandbox_.reason; }

  /// Closes the connection and, when launched, stops the browser: gracefully
  /// first with a persistent profile (Browser.close, then up to
  /// `close_timeout` for it to exit), then SIGTERM and SIGKILL to its process
  /// group. Removes a temporary profile; keeps a persistent one.
  void shutdown() noexcept {
    if (conn_) conn_->close();
    conn_.reset();
    if (process_) {
      const pid_t group = process_->pid();
      if (!user_data_dir_.empty() && process_->running()) close_gracefully();
      process_->terminate(std::chrono::milliseconds(1000));
      // Wait for every member of the group (renderers, zygotes) to be gone
      // before the profile they write to is removed or used again.
      if (group > 0) {
        for (int i = 0; i < 200 && ::kill(-group, 0) == 0; ++i) {
          ::kill(-group, SIGKILL);
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      process_.reset();
    }
    if (dir_) {
      for (int i = 0; i < 20 && std::filesystem::exists(dir_->path()); ++i) {
        std::error_code ec;
        std::filesystem::remove_all(dir_->path(), ec);
        if (!ec) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      dir_.reset();
    }
  }

 private:
  chromium() = default;

  void say(const std::string& line) const noexcept {
    if (!log_) return;
    try {
      log_(line);
    } catch (...) {  // a logger's failure is not the browser's
    }
  }

  // Refuses a directory another running Chromium holds (it would abort, or
  // hand our command line to that browser and exit), and removes a
  // DevToolsActivePort left by a browser that is gone, so that only the
  // one this launch starts is read.
  static void prepare_persistent_profile(const std::filesystem::path& profile) {
    if (const auto holder = detail::profile_held_by(profile)) {
      throw error(errc::profile_in_use,
                  "browser profile directory '" + profile.string() +
                      "' is in use by another Chromium (pid " + std::to_string(holder->pid) +
                      " on host '" + holder->host +
                      "', its SingletonLock); close that browser or use another directory");
    }
    std::error_code ignored;
    std::filesystem::remove(profile / "DevToolsActivePort", ignored);
  }

  // Chromium exited before it listened: say why in the clearest words there are.
  [[noreturn]] void throw_exited(const chromium_options& opts, const std::filesystem::path& profile,
                                 const std::string& output) const {
    const std::string root_refusal = detail::log_line_with(output, "without --no-sandbox");
    if (sandbox_.on && !root_refusal.empty()) {
      throw error(errc::browser_closed,
                  "chromium refused to start with its sandbox on while running as root: \"" +
                      root_refusal + "\" (the sandbox is " + sandbox_.reason +
                      "; as root use sandbox_mode automatic or off)");
    }
    if (!user_data_dir_.empty()) {
      std::string singleton = detail::log_line_with(output, "ProcessSingleton");
      if (singleton.empty()) singleton = detail::log_line_with(output, "existing browser session");
      if (!singleton.empty()) {
        throw error(errc::profile_in_use, "browser profile directory '" + profile.string() +
                                              "' is in use by another Chromium: \"" + singleton +
                                              "\"");
      }
    }
    throw error(errc::browser_closed, "chromium '" + opts.executable +
                                          "' exited before it listened; its output:\n" +
                                          detail::tail(output));
  }

  // Browser.close, then up to close_timeout_ for the process to exit.
  void close_gracefully() noexcept {
    const auto t = std::min(close_timeout_, std::chrono::milliseconds(5000));
    if (url_.empty() || !detail::request_browser_close(url_, t)) {
      say("chromium: could not send Browser.close; terminating it");
      return;
    }
    if (!process_->wait_for(close_timeout_)) {
      say("chromium: did not exit within " + std::to_string(close_timeout_.count()) +
          " ms of Browser.close; terminating it");
    }
  }

  static std::string discover_ws_url(std::string_view http_url) {
    namespace http = boost::beast::http;
    std::error_code ec;
    std::string message;
    const cdp::ws_endpoint ep = detail::parse_http_url(http_url, ec, &message);
    if (ec) throw error(ec, message);
    const std::string shown = redact_url(http_url);
    try {
      boost::asio::io_context io;
      boost::asio::ip::tcp::resolver resolver(io);
      boost::beast::tcp_stream stream(io);
      stream.connect(resolver.resolve(ep.host, ep.port));
      http::request<http::empty_body> req{http::verb::get, "/json/version", 11};
      req.set(http::field::host, ep.host_header());
      http::write(stream, req);
      boost::beast::flat_buffer buf;
      http::response<http::string_body> res;
      http::read(stream, buf, res);
      const nlohmann::json body = nlohmann::json::parse(res.body(), nullptr, false);
      const auto found = body.is_object() ? body.find("webSocketDebuggerUrl") : body.end();
      if (!body.is_object() || found == body.end() || !found->is_string()) {
        throw error(seckill::errc::protocol_error,
                    "no webSocketDebuggerUrl string in the answer to GET /json/version from '" +
                        shown + "' (HTTP " + std::to_string(res.result_int()) + "): '" +
                        cdp::detail::excerpt(res.body()) + "'");
      }
      return found->get<std::string>();
    } catch (const boost::system::system_error& e) {
      throw error(seckill::errc::connection_refused,
                  "cannot reach browser at '" + shown + "': " + e.what());
    }
  }

  std::shared_ptr<cdp::connection> conn_;
  std::optional<seckill::detail::child_process> process_;
  std::optional<seckill::detail::temp_dir> dir_;  // the log, and a temporary profile
  std::string url_;
  std::filesystem::path user_data_dir_;  // empty: the profile is temporary
  sandbox_choice sandbox_{false, {}};
  std::chrono::milliseconds close_timeout_{std::chrono::seconds(10)};
  std::function<void(std::string_view)> log_;
};

}  // namespace seckill::browser
