#pragma once
/// @file
/// @brief `connection_config`: where a Redis connection goes and the policies
///        it runs with (timeouts, reconnection, batching, reply limits), and
///        `validate`, which checks it. Plain data; `parse_url` (url.hpp)
///        fills it from a `redis://` or `rediss://` (TLS) URL.

#include <seckill/error.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>
#include <seckill/tls.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace seckill::redis {

/// @brief Where and how to connect, and the policies of one connection.
struct connection_config {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string username;     ///< ACL user; empty: "default" when a password is set
  std::string password;     ///< empty: no AUTH
  int database = 0;         ///< SELECTed after AUTH when not 0
  std::string client_name;  ///< CLIENT SETNAME (through HELLO) when not empty
  int protocol = 3;         ///< 3: HELLO 3 with a RESP2 fallback; 2: RESP2 only
  std::chrono::milliseconds connect_timeout{2000};  ///< TCP connect plus handshake
  std::chrono::milliseconds request_timeout{5000};  ///< default per request; 0: none
  std::chrono::milliseconds reconnect_initial_delay{50};
  std::chrono::milliseconds reconnect_max_delay{2000};
  bool reconnect = true;                  ///< reconnect after a loss (after a successful connect)
  bool queue_while_reconnecting = false;  ///< keep new requests waiting instead of failing fast
  std::size_t max_write_batch = 256u << 10;  ///< bytes gathered into one write
  /// Requests waiting to be written that make the connection write them
  /// while it is still handling the replies of one read (which may hold
  /// many): the server works on them instead of idling until the client has
  /// handled every reply. 0: write only once the read is handled. Lower is
  /// fewer idle server cycles, higher is fewer write calls.
  std::size_t early_write_threshold = 4;
  /// A server that stays silent this long while a reply is due is taken
  /// for dead (a frozen host or a lost route keeps the socket open, and
  /// nothing else would ever end it): the connection closes the socket,
  /// fails the requests in flight with `errc::not_connected` and reconnects
  /// through its backoff. "Silent": nothing read since the oldest unanswered
  /// request was fully written (or since the last read, if later), or no
  /// byte of a write taken for this long. Found within this bound plus a
  /// quarter of the shorter of it and `health_check_interval`. A server busy
  /// longer than this with one command (a slow script, `DEBUG SLEEP`, a
  /// blocking `BLPOP` with a longer timeout) is taken for dead too: raise it
  /// for such commands. 0: never. See `validate`.
  std::chrono::milliseconds dead_peer_timeout{5000};
  /// A ready connection that has read nothing for this long and has no
  /// request outstanding sends a PING (its reply is dropped), so that a dead
  /// server is found within `health_check_interval + dead_peer_timeout` even
  /// while no request needs it. 0: no PING; a dead server is then found only
  /// once a request waits on it.
  std::chrono::milliseconds health_check_interval{1000};
  parser_limits limits;  ///< bounds on replies (resp.hpp)
  request setup;         ///< sent after the handshake on every (re)connect; an error reply fails it
  /// The oldest server the connection accepts (0.0.0: any). The version is
  /// read from HELLO's reply (RESP3) or `INFO server` (RESP2, sent only when
  /// this is set); an older server fails the handshake with
  /// `errc::server_error` before `setup` is sent, and `last_error()` names
  /// both versions. A server that does not tell (INFO refused by its ACL)
  /// is not checked. `redis_store` raises it to what its script needs.
  server_version min_server_version;
  /// TLS (redis-server's `tls-port`) when set: the CA file, the client
  /// certificate and key (mutual TLS), the name the server's certificate
  /// must carry (the host by default). `rediss://` sets it. Needs the
  /// `seckill::tls` component (`SECKILL_HAS_TLS`); without it `validate`
  /// refuses a config that sets it. Unset: plain TCP.
  std::optional<tls_options> tls{};
};

/// @brief The longest duration a `connection_config` may hold (one year):
///        every deadline is computed on the steady clock without overflow.
inline constexpr std::chrono::milliseconds max_config_duration = std::chrono::hours(24 * 366);

/// @brief Checks `cfg`: `connect_timeout` in (0, max_config_duration],
///        `request_timeout`, the reconnect delays, `dead_peer_timeout` and
///        `health_check_interval` in [0, max_config_duration]; `tls`, when
///        set, by `validate(tls_options)` (each file it names exists and can
///        be read) and only in a program built with TLS. Returns
///        `errc::invalid_argument` when one is not; `message` then names it
///        and its value. `connection` (and so the pool and the store) throws
///        `seckill::error` with that message. Thread-safety: a pure function.
inline std::error_code validate(const connection_config& cfg, std::string* message = nullptr) {
  struct field {
    const char* name;
    std::chrono::milliseconds value;
    std::int64_t min;
  };
  const field fields[] = {{"connect_timeout", cfg.connect_timeout, 1},
                          {"request_timeout", cfg.request_timeout, 0},
                          {"reconnect_initial_delay", cfg.reconnect_initial_delay, 0},
                          {"reconnect_max_delay", cfg.reconnect_max_delay, 0},
                          {"dead_peer_timeout", cfg.dead_peer_timeout, 0},
                          {"health_check_interval", cfg.health_check_interval, 0}};
  for (const field& f : fields) {
    if (f.value.count() >= f.min && f.value <= max_config_duration) continue;
    if (message != nullptr)
      *message = "connection_config: " + std::string(f.name) + " " +
                 std::to_string(f.value.count()) + " ms out of range [" + std::to_string(f.min) +
                 ", " + std::to_string(max_config_duration.count()) + "] ms" +
                 (f.min == 0 ? " (0: none)" : "");
    return make_error_code(seckill::errc::invalid_argument);
  }
  if (cfg.tls) {
#if !SECKILL_HAS_TLS
    if (message != nullptr)
      *message =
          "connection_config: tls is set (rediss://) but this program was built without TLS: "
          "link seckill::tls (the tls component: OpenSSL), which defines SECKILL_HAS_TLS";
    return make_error_code(seckill::errc::invalid_argument);
#else
    std::string why;
    if (auto ec = seckill::validate(*cfg.tls, &why)) {
      if (message != nullptr) *message = "connection_config: " + why;
      return ec;
    }
#endif
  }
  return {};
}

}  // namespace seckill::redis
