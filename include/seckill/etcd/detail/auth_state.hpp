#pragma once
/// @file
/// @brief The etcd client's login: the token it holds, its generation, and
///        the one refresh in flight that every call rejected for its token
///        waits on (no stampede of logins); plus how etcd's answers say that
///        a token was refused. Used by client.hpp and detail/watch_hub.hpp.
///
/// Thread-safety: on the client's executor only (as the client).

#include <seckill/etcd/detail/json_codec.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill::etcd::detail {

/// The gateway's login call: never sent with a token, never retried for one.
inline constexpr std::string_view authenticate_target = "/v3/auth/authenticate";

/// True when etcd refused a request's token, so the request did not run
/// and runs the same after a new login: "invalid auth token" (code 16: the
/// token expired after `--auth-token-ttl` seconds unused, or the member
/// restarted and forgot its simple tokens), "user name is empty" (no token
/// where auth is on) and "revision of auth store is old" (the users or roles
/// changed since the login). etcd checks the token before it applies
/// anything.
inline bool token_refused(std::string_view message) {
  return message.find("invalid auth token") != std::string_view::npos ||
         message.find("user name is empty") != std::string_view::npos ||
         message.find("revision of auth store is old") != std::string_view::npos;
}

/// The token of the client's login and the refresh in flight.
struct auth_state {
  explicit auth_state(const boost::asio::any_io_executor& ex) : refreshed(ex) {
    refreshed.expires_at(std::chrono::steady_clock::time_point::max());
  }
  std::string token;             ///< sent as `Authorization`; empty: none yet
  std::uint64_t generation = 0;  ///< +1 per login that succeeded
  bool refreshing = false;       ///< a login is in flight: wait for it
  std::uint64_t logins = 0;      ///< logins sent (the tests count refreshes)
  std::error_code last_error;    ///< how the last login ended
  std::string last_message;
  boost::asio::steady_timer refreshed;  ///< cancelled when a login ends: wakes its waiters
  void wake() {
    refreshed.cancel();
    refreshed.expires_at(std::chrono::steady_clock::time_point::max());
  }
};

/// The body of the login call.
inline json authenticate_body(const std::string& username, const std::string& password) {
  json body = json::object();
  body["name"] = username;
  body["password"] = password;
  return body;
}

}  // namespace seckill::etcd::detail
