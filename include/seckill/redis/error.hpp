#pragma once
/// @file
/// @brief `seckill::redis::errc`: what only the Redis backend reports, in the
///        "seckill.redis" category. Failures every backend shares (timed out,
///        not connected, protocol error, server error) are `seckill::errc`.

#include <seckill/error.hpp>

#include <system_error>

namespace seckill::redis {

/// @brief Why a Redis operation did not succeed, beyond the shared codes.
enum class errc {
  nesting_too_deep = 1,  ///< a reply nested beyond the parser's configured depth
  unsupported_server,    ///< the server is older than the commands and scripts seckill sends need
  /// Redis Cluster: no master served the key's slot within the retry window
  /// (CLUSTERDOWN, a slot no master covers, a master down and not yet
  /// replaced). The request did not run.
  cluster_down,
  /// Redis Cluster: more MOVED / ASK redirections than the client follows
  /// for one request (a slot map changing faster than it can be read). The
  /// request did not run.
  too_many_redirects,
  /// Redis Cluster: the keys of one request are in different hash slots,
  /// which no single node may serve. Nothing was sent.
  cross_slot,
};

constexpr const char* error_domain_name(errc) noexcept { return "seckill.redis"; }

constexpr const char* error_message(errc e) noexcept {
  switch (e) {
    case errc::nesting_too_deep:
      return "nesting too deep";
    case errc::unsupported_server:
      return "unsupported redis-server version";
    case errc::cluster_down:
      return "no redis cluster master serves the slot";
    case errc::too_many_redirects:
      return "too many redis cluster redirections";
    case errc::cross_slot:
      return "the request's keys are in different redis cluster slots";
  }
  return nullptr;
}

constexpr condition error_condition_of(errc e) noexcept {
  switch (e) {
    case errc::nesting_too_deep:
      return condition::protocol;
    case errc::unsupported_server:
      return condition::server;
    case errc::cluster_down:
    case errc::too_many_redirects:
      return condition::unavailable;
    case errc::cross_slot:
      return condition::invalid_input;
  }
  return condition::server;
}

/// @brief The category of every `seckill::redis::errc`. Thread-safe.
inline const std::error_category& redis_category() noexcept {
  return seckill::detail::category_of<errc>();
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), redis_category()};
}

}  // namespace seckill::redis

template <>
struct std::is_error_code_enum<seckill::redis::errc> : std::true_type {};
