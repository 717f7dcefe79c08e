#pragma once
/// @file
/// @brief Server-side Lua for Redis: a script known by its SHA-1, loaded on
///        every (re)connect, and run with EVALSHA.
///
/// Why EVALSHA (with SCRIPT LOAD on connect and NOSCRIPT -> SCRIPT LOAD ->
/// retry) and not Redis Functions (FUNCTION LOAD REPLACE + FCALL):
///
/// - It works on every server a shop may run: Redis from 2.6, and the
///   servers that speak its protocol (Valkey, KeyDB, Dragonfly, managed
///   offerings that lag behind); Functions need Redis 7. (A script may need
///   more: the store's needs 5.0, see detail/store_script.hpp.)
/// - Loading is side-effect free. SCRIPT LOAD only fills the node's script
///   cache; FUNCTION LOAD REPLACE is a write that is persisted in RDB/AOF,
///   replicated, refused on a read-only replica, and needs the `@write`
///   FUNCTION permission for the shop's ACL user. Doing it on every
///   reconnect of every client would rewrite the library thousands of times
///   a day and race between versions of a rolling deploy.
/// - Recovery is exact: NOSCRIPT means the script did not run, so loading it
///   and retrying never executes a write twice (after SCRIPT FLUSH, a
///   failover to a replica with a cold cache, or a restart).
/// - The SHA-1 is computed here from the text, so a client checks at
///   connect time that the server cached exactly this script, and
///   redis-benchmark can drive the very same EVALSHA as a ceiling.
///
/// What Functions would add (a named, versioned library visible to
/// operators) matters less for one small script shipped with the library.

#include <seckill/error.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/resp.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

namespace detail {

/// SHA-1 (FIPS 180-4) of `data`, as 40 lowercase hex digits: the name Redis
/// gives a script.
inline std::string sha1_hex(std::string_view data) {
  std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  auto rotl = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
  auto block = [&](const unsigned char* p) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(p[4 * i]) << 24) | (std::uint32_t(p[4 * i + 1]) << 16) |
             (std::uint32_t(p[4 * i + 2]) << 8) | std::uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  };
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  std::size_t i = 0;
  for (; i + 64 <= data.size(); i += 64)
    block(reinterpret_cast<const unsigned char*>(data.data() + i));
  unsigned char tail[128] = {};
  const std::size_t rest = data.size() - i;
  for (std::size_t j = 0; j < rest; ++j) tail[j] = static_cast<unsigned char>(data[i + j]);
  tail[rest & 63] = 0x80;  // rest < 64 (the mask tells the optimiser so)
  const std::size_t len = rest + 1 + 8 <= 64 ? 64 : 128;
  for (int j = 0; j < 8; ++j) tail[len - 1 - j] = static_cast<unsigned char>(bits >> (8 * j));
  block(tail);
  if (len == 128) block(tail + 64);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(40);
  for (std::uint32_t v : h)
    for (int s = 28; s >= 0; s -= 4) out += hex[(v >> s) & 15];
  return out;
}

/// The composed operation behind `script::async_run`.
template <class Connection, class Script>
struct run_script_op {
  Connection& conn;
  const Script& lua;
  request req;
  bool reloaded = false;

  template <class Self>
  void operator()(Self& self) {
    conn.async_exec(req, std::move(self));
  }
  template <class Self>
  void operator()(Self& self, std::error_code ec, std::vector<value> replies) {
    if (ec) {
      self.complete(ec, value{});
      return;
    }
    if (replies.empty()) {
      self.complete(make_error_code(seckill::errc::protocol_error), value{});
      return;
    }
    if (lua.reload_on_noscript(req, replies, reloaded)) {
      conn.async_exec(req, std::move(self));
      return;
    }
    self.complete(std::error_code{}, std::move(replies.back()));
  }
};

}  // namespace detail

/// @brief A Lua script and its SHA-1.
///
/// `load_into(cfg)` appends `SCRIPT LOAD` to a connection's setup, so the
/// script is in the server's cache after every (re)connect; `async_run`
/// sends EVALSHA and, on NOSCRIPT, `SCRIPT LOAD` + EVALSHA once more.
/// Thread-safety: immutable after construction. Cost: the SHA-1 once.
class script {
 public:
  explicit script(std::string body) : body_(std::move(body)), sha1_(detail::sha1_hex(body_)) {}

  [[nodiscard]] const std::string& body() const noexcept { return body_; }
  [[nodiscard]] const std::string& sha1() const noexcept { return sha1_; }

  /// Adds `SCRIPT LOAD <body>` to the commands run on every (re)connect.
  void load_into(connection_config& cfg) const { load(cfg.setup); }

  /// Appends `EVALSHA sha numkeys keys... args...` to `req`.
  template <class... Args>
  request& evalsha(request& req, const Args&... keys_then_args) const {
    return req.push("EVALSHA", sha1_, keys_then_args...);
  }

  /// Appends `SCRIPT LOAD <body>` to `req`.
  void load(request& req) const { req.push("SCRIPT", "LOAD", body_); }

  /// True when `replies` end with NOSCRIPT: the script was not in the
  /// server's cache, and did not run.
  static bool noscript(const std::vector<value>& replies) noexcept {
    return !replies.empty() && replies.back().error_code() == "NOSCRIPT";
  }

  /// The NOSCRIPT recovery: when `replies` (to `evalsha_request`) end with
  /// NOSCRIPT and `reloaded` is still false, rewrites the request as
  /// `SCRIPT LOAD` + the same EVALSHA, sets `reloaded` and returns true:
  /// send it again, and read the last reply. NOSCRIPT means the script did
  /// not run, so this never runs a write twice.
  bool reload_on_noscript(request& evalsha_request, const std::vector<value>& replies,
                          bool& reloaded) const {
    if (reloaded || !noscript(replies)) return false;
    reloaded = true;
    request retry;
    load(retry);
    retry.append(evalsha_request);
    evalsha_request = std::move(retry);
    return true;
  }

  /// Runs `evalsha_request` (one EVALSHA built by `evalsha`) on `conn`; on a
  /// NOSCRIPT reply, sends `SCRIPT LOAD` and the same EVALSHA again in one
  /// round trip. Completes with `void(std::error_code, value)`: the script's
  /// reply, which may be an error value (`value::is_error()`). Cancellation
  /// is the connection's (`connection::async_exec`).
  template <class Connection,
            boost::asio::completion_token_for<void(std::error_code, value)> CompletionToken =
                boost::asio::default_completion_token_t<typename Connection::executor_type>>
  auto async_run(Connection& conn, request evalsha_request,
                 CompletionToken&& token = CompletionToken()) const {
    return boost::asio::async_compose<CompletionToken, void(std::error_code, value)>(
        detail::run_script_op<Connection, script>{conn, *this, std::move(evalsha_request)}, token,
        conn);
  }

 private:
  std::string body_;
  std::string sha1_;
};

}  // namespace seckill::redis
