#pragma once
/// @file
/// @brief seckill's error codes (`seckill::errc`), their `std::error_category`
///        and `seckill::error`, the exception thrown by the throwing overloads.
///
/// Every asynchronous operation completes with a `std::error_code`; the codes
/// below compare equal to themselves through `make_error_code`, so callers
/// write `if (ec == seckill::errc::sold_out)`.

#include <string>
#include <system_error>
#include <utility>

namespace seckill {

/// @brief Why a seckill operation did not succeed.
enum class errc {
  // general
  invalid_argument = 1,  ///< a value out of its documented range
  timed_out,             ///< a per-operation timeout or deadline passed
  operation_aborted,     ///< cancelled by the caller
  // admission
  rate_limited,   ///< the token bucket had no token
  circuit_open,   ///< the circuit breaker rejects calls
  bulkhead_full,  ///< too many calls in flight
  // ids and pools
  clock_rollback,        ///< the clock went back further than the policy allows
  clock_drift_exceeded,  ///< a logical clock ran too far ahead of the real one
  pool_exhausted,        ///< every pooled object is in use
  // purchase
  invalid_transition,  ///< an event that the purchase state machine does not accept here
  payment_failed,      ///< the payment step reported failure
  persist_failed,      ///< the order could not be persisted
  // stock
  sold_out,              ///< no stock left for the requested quantity
  unknown_sku,           ///< the store holds no stock record for this SKU
  unknown_order,         ///< no reservation with this order id
  order_committed,       ///< rollback refused: the order was committed
  order_rolled_back,     ///< commit refused: the order was rolled back (or expired)
  store_unavailable,     ///< the backend could not be reached
  // wire protocols
  protocol_error,        ///< malformed bytes from a peer
  message_too_large,     ///< a reply above the configured limit
  nesting_too_deep,      ///< an aggregate nested beyond the configured depth
  not_connected,         ///< no connection, or it was lost with the request in flight
  connection_refused,    ///< the peer refused or could not be reached
  server_error,          ///< the server answered with an error
  auth_failed,           ///< the server refused the credentials
  // etcd
  no_leader,            ///< the etcd cluster has no leader
  compacted,            ///< the requested revision was compacted away
  lease_not_found,      ///< the lease expired or was revoked
  session_lost,         ///< the etcd session's lease could not be kept alive
  not_leader,           ///< the caller does not hold leadership
  txn_conflict,         ///< a compare-and-swap lost against a concurrent writer
  // browser
  browser_closed,       ///< the browser process or its connection went away
  cdp_error,            ///< the DevTools protocol answered with an error
  javascript_exception, ///< page JavaScript threw
  navigation_failed,    ///< a navigation reported a net error
  element_not_found,    ///< no element matches the selector
  element_not_actionable, ///< the element is hidden, covered, moving or disabled
  timestamp_out_of_range, ///< the clock reads outside the id layout's timestamp range
};

namespace detail {

class seckill_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "seckill"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::timed_out: return "timed out";
      case errc::operation_aborted: return "operation aborted";
      case errc::rate_limited: return "rate limited";
      case errc::circuit_open: return "circuit open";
      case errc::bulkhead_full: return "bulkhead full";
      case errc::clock_rollback: return "clock moved backwards";
      case errc::clock_drift_exceeded: return "logical clock drifted too far ahead";
      case errc::pool_exhausted: return "object pool exhausted";
      case errc::invalid_transition: return "invalid purchase state transition";
      case errc::payment_failed: return "payment failed";
      case errc::persist_failed: return "order persistence failed";
      case errc::sold_out: return "sold out";
      case errc::unknown_sku: return "unknown sku";
      case errc::unknown_order: return "unknown order";
      case errc::order_committed: return "order is committed and cannot be rolled back";
      case errc::order_rolled_back: return "order is rolled back and cannot be committed";
      case errc::store_unavailable: return "stock store unavailable";
      case errc::protocol_error: return "protocol error";
      case errc::message_too_large: return "message too large";
      case errc::nesting_too_deep: return "nesting too deep";
      case errc::not_connected: return "not connected";
      case errc::connection_refused: return "connection refused";
      case errc::server_error: return "server error";
      case errc::auth_failed: return "authentication failed";
      case errc::no_leader: return "etcd cluster has no leader";
      case errc::compacted: return "revision compacted";
      case errc::lease_not_found: return "lease not found";
      case errc::session_lost: return "session lost";
      case errc::not_leader: return "not the leader";
      case errc::txn_conflict: return "transaction conflict";
      case errc::browser_closed: return "browser closed";
      case errc::cdp_error: return "DevTools protocol error";
      case errc::javascript_exception: return "JavaScript exception";
      case errc::navigation_failed: return "navigation failed";
      case errc::element_not_found: return "element not found";
      case errc::element_not_actionable: return "element not actionable";
      case errc::timestamp_out_of_range: return "clock outside the id timestamp range";
    }
    return "unknown seckill error " + std::to_string(value);
  }
};

}  // namespace detail

/// @brief The category of every `seckill::errc`. Thread-safe; a function-local static.
inline const std::error_category& seckill_category() noexcept {
  static const detail::seckill_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), seckill_category()};
}

/// @brief The exception thrown by seckill's throwing overloads: an error code plus
///        a message that says what was wrong and which value was seen.
class error : public std::system_error {
 public:
  error(std::error_code ec, const std::string& what) : std::system_error(ec, what) {}
  error(errc e, const std::string& what) : std::system_error(make_error_code(e), what) {}
  explicit error(errc e) : std::system_error(make_error_code(e)) {}
};

/// @brief Throws `seckill::error` when `ec` holds an error; for the throwing overloads.
inline void throw_if(const std::error_code& ec, const char* what) {
  if (ec) throw error(ec, what);
}

}  // namespace seckill

template <>
struct std::is_error_code_enum<seckill::errc> : std::true_type {};
