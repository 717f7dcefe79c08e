#pragma once
/// @file
/// @brief `connection_config`: where a Redis connection goes and the policies
///        it runs with (timeouts, reconnection, batching, reply limits). Plain
///        data; `parse_url` (url.hpp) fills it from a `redis://` URL.

#include <seckill/redis/resp.hpp>

#include <chrono>
#include <cstddef>
#include <string>

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
  std::chrono::milliseconds connect_timeout{2000};    ///< TCP connect plus handshake
  std::chrono::milliseconds request_timeout{5000};    ///< default per request; 0: none
  std::chrono::milliseconds reconnect_initial_delay{50};
  std::chrono::milliseconds reconnect_max_delay{2000};
  bool reconnect = true;                   ///< reconnect after a loss (after a successful connect)
  bool queue_while_reconnecting = false;   ///< keep new requests waiting instead of failing fast
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
  /// for such commands. 0: never. See `validate` (connection.hpp).
  std::chrono::milliseconds dead_peer_timeout{5000};
  /// A ready connection that has read nothing for this long and has no
  /// request outstanding sends a PING (its reply is dropped), so that a dead
  /// server is found within `health_check_interval + dead_peer_timeout` even
  /// while no request needs it. 0: no PING; a dead server is then found only
  /// once a request waits on it.
  std::chrono::milliseconds health_check_interval{1000};
  parser_limits limits;                    ///< bounds on replies (resp.hpp)
  request setup;  ///< sent after the handshake on every (re)connect; an error reply fails it
};

}  // namespace seckill::redis
