#pragma once
/// @file
/// @brief `seckill::browser::errc`: what only the browser driver reports, in
///        the "seckill.browser" category. Failures every peer shares (timed
///        out, connection refused, protocol error) are `seckill::errc`.

#include <seckill/error.hpp>

#include <system_error>

namespace seckill::browser {

/// @brief Why a browser operation did not succeed, beyond the shared codes.
enum class errc {
  browser_closed = 1,      ///< the browser process or its connection went away
  cdp_error,               ///< the DevTools protocol answered with an error
  javascript_exception,    ///< page JavaScript threw
  navigation_failed,       ///< a navigation reported a net error
  element_not_found,       ///< no element matches the selector
  element_not_actionable,  ///< the element is hidden, covered, moving or disabled
  not_logged_in,           ///< the shop's page shows no sign of a logged-in session
  profile_in_use,          ///< another running Chromium holds the profile directory
  stopped_refused,         ///< the shop refused (throttled) an account too often in a row
  clock_uncertain,         ///< the shop clock's estimate is less precise than required
};

constexpr const char* error_domain_name(errc) noexcept { return "seckill.browser"; }

constexpr const char* error_message(errc e) noexcept {
  switch (e) {
    case errc::browser_closed:
      return "browser closed";
    case errc::cdp_error:
      return "DevTools protocol error";
    case errc::javascript_exception:
      return "JavaScript exception";
    case errc::navigation_failed:
      return "navigation failed";
    case errc::element_not_found:
      return "element not found";
    case errc::element_not_actionable:
      return "element not actionable";
    case errc::not_logged_in:
      return "not logged in to the shop";
    case errc::profile_in_use:
      return "browser profile in use by another Chromium";
    case errc::stopped_refused:
      return "stopped after repeated refusals by the shop";
    case errc::clock_uncertain:
      return "the shop's clock is not known as precisely as required";
  }
  return nullptr;
}

constexpr condition error_condition_of(errc e) noexcept {
  switch (e) {
    case errc::browser_closed:
      return condition::unavailable;
    case errc::cdp_error:
      return condition::protocol;
    case errc::javascript_exception:
    case errc::navigation_failed:
      return condition::server;
    case errc::element_not_found:
      return condition::not_found;
    case errc::element_not_actionable:
    case errc::not_logged_in:
    case errc::profile_in_use:
    case errc::clock_uncertain:
      return condition::conflict;
    case errc::stopped_refused:
      return condition::rejected;
  }
  return condition::server;
}

/// @brief The category of every `seckill::browser::errc`. Thread-safe.
inline const std::error_category& browser_category() noexcept {
  return seckill::detail::category_of<errc>();
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), browser_category()};
}

}  // namespace seckill::browser

template <>
struct std::is_error_code_enum<seckill::browser::errc> : std::true_type {};
