// seckill_native_host: the native-messaging host of seckill's browser
// extension (extension/). Chromium starts it when the extension connects
// (chrome.runtime.connectNative("com.seckill.native_host")), with the
// extension's origin as its one argument; it talks the extension protocol
// over stdin and stdout (browser/native_messaging.hpp).
//
// What it does is read from a JSON file: $SECKILL_NATIVE_HOST_CONFIG, else
// ~/.config/seckill/native_host.json. No file: it exits at once (the
// extension then works on its own).
//
//   {"url": "https://shop.example/item/1",     the shop page (its tab is found, else opened)
//    "strategy": "/home/me/strategy.txt",      the strategy file (and the profile it names)
//    "profile": "/home/me/profile.txt",        optional: the site profile, else the strategy's
//    "log": "/home/me/seckill-host.log"}       optional: where the run's log goes (else stderr)
//
// grab: runs the C++ grabber (priority_strategy) over an extension_driver
// on stdin/stdout until an order is confirmed or the strategy's deadline.
//
//   {"relay": "127.0.0.1:PORT"}
//
// relay: connects to a loopback TCP port and forwards the frames unchanged
// both ways, so a program listening there (a test, a debugger) drives the
// extension with an extension_driver over its socket. Only loopback
// addresses are accepted.
#include <seckill/browser/extension_driver.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace {

namespace asio = boost::asio;
namespace sb = seckill::browser;

/// stdin and stdout as one duplex stream (what extension_driver reads and writes).
class stdio_stream {
 public:
  using executor_type = asio::any_io_executor;
  explicit stdio_stream(asio::io_context& io) : in_(io, ::dup(0)), out_(io, ::dup(1)) {}
  executor_type get_executor() { return in_.get_executor(); }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& t) {
    return in_.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& t) {
    return out_.async_write_some(b, std::forward<Token>(t));
  }
  void close(boost::system::error_code& ec) {
    in_.close(ec);
    out_.close(ec);
  }

 private:
  asio::posix::stream_descriptor in_, out_;
};

std::string read_file(const std::filesystem::path& p, bool& ok) {
  std::ifstream in(p);
  ok = static_cast<bool>(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Copies bytes from `from` to `to` until either ends.
template <class From, class To>
asio::awaitable<void> pump(From& from, To& to) {
  char buf[16384];
  for (;;) {
    auto [e, n] =
        co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (e) break;
    auto [e2, m] =
        co_await asio::async_write(to, asio::buffer(buf, n), asio::as_tuple(asio::use_awaitable));
    if (e2) break;
  }
}

int relay(const std::string& where, std::ostream& log) {
  const auto colon = where.rfind(':');
  boost::system::error_code ec;
  const auto addr =
      asio::ip::make_address(where.substr(0, colon == std::string::npos ? 0 : colon), ec);
  if (colon == std::string::npos || ec || !addr.is_loopback()) {
    log << "seckill_native_host: relay '" << where << "' is not a loopback address:port\n";
    return 2;
  }
  const int port = std::atoi(where.c_str() + colon + 1);
  if (port <= 0 || port > 65535) {
    log << "seckill_native_host: relay port out of range [1, 65535] in '" << where << "'\n";
    return 2;
  }
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({addr, static_cast<unsigned short>(port)}, ec);
  if (ec) {
    log << "seckill_native_host: cannot connect to relay " << where << ": " << ec.message() << "\n";
    return 1;
  }
  // Small frames, each awaited by the other side: no Nagle delay on them.
  sock.set_option(asio::ip::tcp::no_delay(true), ec);
  stdio_stream std_io(io);
  auto done = [&](std::exception_ptr) { io.stop(); };  // either side ended: so does the host
  asio::co_spawn(io, pump(std_io, sock), done);
  asio::co_spawn(io, pump(sock, std_io), done);
  io.run();
  return 0;
}

int grab(const nlohmann::json& cfg, const std::filesystem::path& cfg_path, std::ostream& log) {
  const auto rel = [&](const std::string& p) {
    const std::filesystem::path f(p);
    return f.is_absolute() ? f : cfg_path.parent_path() / f;
  };
  const std::string url = cfg.value("url", "");
  const std::string strategy_file = cfg.value("strategy", "");
  if (url.empty() || strategy_file.empty()) {
    log << "seckill_native_host: " << cfg_path.string() << " needs \"url\" and \"strategy\"\n";
    return 2;
  }
  bool ok = false;
  const std::string text = read_file(rel(strategy_file), ok);
  if (!ok) {
    log << "seckill_native_host: cannot read strategy file '" << strategy_file << "'\n";
    return 2;
  }
  sb::strategy_config strategy;
  sb::site_profile profile;
  try {
    strategy = sb::parse_strategy(text);
    profile = strategy.profile.value_or(sb::site_profile{});
    std::filesystem::path profile_file;
    if (cfg.contains("profile"))
      profile_file = rel(cfg.value("profile", ""));
    else if (!strategy.profile_file.empty())
      profile_file = rel(strategy_file).parent_path() / strategy.profile_file;
    if (!profile_file.empty()) {
      const std::string ptext = read_file(profile_file, ok);
      if (!ok) {
        log << "seckill_native_host: cannot read profile file '" << profile_file.string() << "'\n";
        return 2;
      }
      profile = sb::parse_profile(ptext);
    }
  } catch (const seckill::error& e) {
    log << "seckill_native_host: " << e.what() << "\n";
    return 2;
  }
  asio::io_context io;
  sb::extension_driver_options dopts;
  dopts.url = url;
  sb::extension_driver<stdio_stream> driver(stdio_stream(io), profile, dopts);
  seckill::token_bucket<> pace(strategy.actions_per_second, strategy.burst);
  sb::grabber_options opts;
  sb::apply_strategy(opts, strategy, profile, dopts.input_seed);
  opts.log = [&log](std::string_view line) { log << line << "\n" << std::flush; };
  sb::grabber grab(driver, sb::priority_strategy(strategy), pace, std::move(opts));
  int rc = 1;
  grab.async_run(
      strategy.deadline, asio::bind_executor(io, [&](std::error_code ec, const sb::grab_result& r) {
        if (r.ordered)
          log << "ordered " << r.quantity << " x " << r.sku << ": " << r.confirmation << "\n";
        else
          log << "no order: " << (ec ? ec.message() : std::string("the run ended")) << "\n";
        log.flush();
        rc = r.ordered ? 0 : 1;
        driver.close();
      }));
  io.run();
  return rc;
}

}  // namespace

int main(int, char**) {
  std::filesystem::path cfg_path;
  if (const char* env = std::getenv("SECKILL_NATIVE_HOST_CONFIG"); env && *env) {
    cfg_path = env;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cfg_path = std::filesystem::path(home) / ".config/seckill/native_host.json";
  }
  bool ok = false;
  const std::string text = cfg_path.empty() ? std::string() : read_file(cfg_path, ok);
  if (!ok) {
    std::cerr << "seckill_native_host: no configuration at '" << cfg_path.string()
              << "': nothing to do\n";
    return 0;
  }
  const auto cfg = nlohmann::json::parse(text, nullptr, false);
  if (!cfg.is_object()) {
    std::cerr << "seckill_native_host: " << cfg_path.string() << " is not a JSON object\n";
    return 2;
  }
  std::ofstream file;
  if (const std::string log = cfg.value("log", ""); !log.empty()) file.open(log, std::ios::app);
  std::ostream& log = file.is_open() ? static_cast<std::ostream&>(file) : std::cerr;
  if (const std::string r = cfg.value("relay", ""); !r.empty()) return relay(r, log);
  return grab(cfg, cfg_path, log);
}
