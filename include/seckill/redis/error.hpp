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
};

constexpr const char* error_domain_name(errc) noexcept { return "seckill.redis"; }

constexpr const char* error_message(errc e) noexcept {
  switch (e) {
    case errc::nesting_too_deep:
      return "nesting too deep";
    case errc::unsupported_server:
      return "unsupported redis-server version";
  }
  return nullptr;
}

constexpr condition error_condition_of(errc e) noexcept {
  switch (e) {
    case errc::nesting_too_deep:
      return condition::protocol;
    case errc::unsupported_server:
      return condition::server;
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
