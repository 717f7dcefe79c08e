#pragma once
/// @file
/// @brief seckill's error codes (`seckill::errc`), their `std::error_category`,
///        the conditions every code maps to (`seckill::condition`) and
///        `seckill::error`, the exception thrown by the throwing overloads.
///
/// Every asynchronous operation completes with a `std::error_code`. Test a
/// precise code with `ec == seckill::errc::sold_out`; test what kind of
/// failure it is, whichever layer produced it, with a condition:
/// `ec == seckill::condition::aborted` holds for seckill's `operation_aborted`,
/// for Asio's `operation_aborted` and for `std::errc::operation_canceled` alike.

#include <string>
#include <system_error>
#include <utility>

namespace seckill {

/// @brief Why a seckill operation did not succeed: the codes of the core and
///        those every backend shares. Each backend's own codes live in its
///        domain (`seckill::redis::errc`, `seckill::etcd::errc`,
///        `seckill::browser::errc`); every code of every domain maps to a
///        `seckill::condition`.
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
  clock_rollback,          ///< the clock went back further than the policy allows
  clock_drift_exceeded,    ///< a logical clock ran too far ahead of the real one
  timestamp_out_of_range,  ///< the clock reads outside the id layout's timestamp range
  pool_exhausted,          ///< every pooled object is in use
  // purchase
  invalid_transition,  ///< an event that the purchase state machine does not accept here
  payment_failed,      ///< the payment step reported failure
  persist_failed,      ///< the order could not be persisted
  purchase_limited,    ///< the buyer's per-user limit for this SKU is reached
  /// A retry of a request whose first order is still held: its outcome is not
  /// known yet; retrying later tells it.
  purchase_in_progress,
  // stock
  sold_out,           ///< no stock left for the requested quantity
  unknown_sku,        ///< the store holds no stock record for this SKU
  unknown_order,      ///< no reservation with this order id
  order_committed,    ///< rollback refused: the order was committed
  order_rolled_back,  ///< commit refused: the order was rolled back (or expired)
  store_unavailable,  ///< the backend could not be reached
  // what every network peer may do
  protocol_error,      ///< malformed bytes from a peer
  message_too_large,   ///< a message above the configured limit
  not_connected,       ///< no connection, or it was lost with the request in flight
  connection_refused,  ///< the peer refused or could not be reached
  server_error,        ///< the server answered with an error
  auth_failed,         ///< the server refused the credentials
  // node health
  read_only,  ///< this node takes no new purchases: its health grade is read-only or offline
  // sale window
  sale_not_started,  ///< the SKU's sale window has not opened yet (store's clock)
  sale_ended,        ///< the SKU's sale window has closed (store's clock)
  // coordination
  /// A fenced write refused: a newer leader (a higher fencing token) has
  /// acted on this resource; the writer must stop acting as leader.
  fenced_out,
  // access control
  /// The server knows who is asking but refused the operation: a Redis ACL
  /// without the command, key or channel (NOPERM), an etcd user whose roles
  /// do not cover the key (permission denied). Retrying cannot help until
  /// an operator grants the right; the message names what was refused.
  permission_denied,
};

/// @brief What kind of failure a code is: the questions callers ask of an
///        error whichever layer (core, Redis, etcd, browser, the OS, Asio)
///        produced it. Compare with `ec == seckill::condition::timed_out`.
enum class condition {
  invalid_input = 1,  ///< a value out of its documented range: nothing ran
  timed_out,          ///< no answer in time: the operation may have run
  aborted,            ///< cancelled by the caller, or its object was closed
  rejected,           ///< a policy or the stock said no: admission, a pool, sold out, a payment
  not_found,          ///< no such SKU, order, lease or element
  conflict,           ///< the current state forbids it: an order already settled, not the leader
  unavailable,  ///< cannot be reached or used now (unreachable, contended): retrying later may work
  protocol,     ///< a peer sent bytes that break the protocol or its limits
  server,       ///< the peer answered with an error of its own (credentials included)
  /// The peer evaluated the request and refused it for good: the same request
  /// gets the same answer, so retrying cannot help (invalid_input, rejected,
  /// not_found and conflict).
  refused,
};

namespace detail {

class condition_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "seckill.condition"; }

  std::string message(int value) const override {
    switch (static_cast<condition>(value)) {
      case condition::invalid_input:
        return "invalid input";
      case condition::timed_out:
        return "timed out";
      case condition::aborted:
        return "aborted";
      case condition::rejected:
        return "rejected";
      case condition::not_found:
        return "not found";
      case condition::conflict:
        return "conflict";
      case condition::unavailable:
        return "unavailable";
      case condition::protocol:
        return "protocol error";
      case condition::server:
        return "server error";
      case condition::refused:
        return "refused";
    }
    return "unknown seckill condition " + std::to_string(value);
  }

  bool equivalent(const std::error_code& code, int value) const noexcept override;
};

}  // namespace detail

/// @brief The category of every `seckill::condition`. Thread-safe; a function-local static.
inline const std::error_category& condition_category() noexcept {
  static const detail::condition_category_impl instance;
  return instance;
}

inline std::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), condition_category()};
}

namespace detail {

/// The category of a domain's error enum `E`. The domain provides, found by
/// argument-dependent lookup: `error_domain_name(E)` (the category's name),
/// `error_message(E)` (nullptr for a value it does not know) and
/// `error_condition_of(E)`. Thread-safe; one instance per enum.
template <class E>
class domain_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return error_domain_name(E{}); }

  std::string message(int value) const override {
    if (const char* text = error_message(static_cast<E>(value))) return text;
    return std::string("unknown ") + name() + " error " + std::to_string(value);
  }

  std::error_condition default_error_condition(int value) const noexcept override {
    if (error_message(static_cast<E>(value)) == nullptr) return {value, *this};
    return make_error_condition(error_condition_of(static_cast<E>(value)));
  }
};

/// The one `domain_category<E>`: a function-local static.
template <class E>
const std::error_category& category_of() noexcept {
  static const domain_category<E> instance;
  return instance;
}

}  // namespace detail

constexpr const char* error_domain_name(errc) noexcept { return "seckill"; }

constexpr const char* error_message(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::timed_out:
      return "timed out";
    case errc::operation_aborted:
      return "operation aborted";
    case errc::rate_limited:
      return "rate limited";
    case errc::circuit_open:
      return "circuit open";
    case errc::bulkhead_full:
      return "bulkhead full";
    case errc::clock_rollback:
      return "clock moved backwards";
    case errc::clock_drift_exceeded:
      return "logical clock drifted too far ahead";
    case errc::timestamp_out_of_range:
      return "clock outside the id timestamp range";
    case errc::pool_exhausted:
      return "object pool exhausted";
    case errc::invalid_transition:
      return "invalid purchase state transition";
    case errc::payment_failed:
      return "payment failed";
    case errc::persist_failed:
      return "order persistence failed";
    case errc::purchase_limited:
      return "the per-user limit for this SKU is reached";
    case errc::purchase_in_progress:
      return "an earlier attempt of this request is still in progress";
    case errc::sold_out:
      return "sold out";
    case errc::unknown_sku:
      return "unknown sku";
    case errc::unknown_order:
      return "unknown order";
    case errc::order_committed:
      return "order is committed and cannot be rolled back";
    case errc::order_rolled_back:
      return "order is rolled back and cannot be committed";
    case errc::store_unavailable:
      return "stock store unavailable";
    case errc::protocol_error:
      return "protocol error";
    case errc::message_too_large:
      return "message too large";
    case errc::not_connected:
      return "not connected";
    case errc::connection_refused:
      return "connection refused";
    case errc::server_error:
      return "server error";
    case errc::auth_failed:
      return "authentication failed";
    case errc::read_only:
      return "this node takes no new purchases: its health grade is read-only";
    case errc::sale_not_started:
      return "the sale of this SKU has not started";
    case errc::sale_ended:
      return "the sale of this SKU has ended";
    case errc::fenced_out:
      return "fenced out: a newer leader has acted";
    case errc::permission_denied:
      return "permission denied by the server's access control";
  }
  return nullptr;
}

constexpr condition error_condition_of(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument:
      return condition::invalid_input;
    case errc::timed_out:
      return condition::timed_out;
    case errc::operation_aborted:
      return condition::aborted;
    case errc::rate_limited:
    case errc::circuit_open:
    case errc::bulkhead_full:
    case errc::pool_exhausted:
    case errc::payment_failed:
    case errc::purchase_limited:
    case errc::sold_out:
    case errc::sale_ended:
      return condition::rejected;
    case errc::unknown_sku:
    case errc::unknown_order:
      return condition::not_found;
    case errc::invalid_transition:
    case errc::order_committed:
    case errc::order_rolled_back:
    case errc::fenced_out:
      return condition::conflict;
    case errc::clock_rollback:
    case errc::clock_drift_exceeded:
    case errc::timestamp_out_of_range:
    case errc::persist_failed:
    case errc::purchase_in_progress:
    case errc::store_unavailable:
    case errc::not_connected:
    case errc::connection_refused:
    case errc::read_only:
    case errc::sale_not_started:  // retrying once the sale opens works
      return condition::unavailable;
    case errc::protocol_error:
    case errc::message_too_large:
      return condition::protocol;
    case errc::server_error:
    case errc::auth_failed:
    case errc::permission_denied:
      return condition::server;
  }
  return condition::server;
}

/// @brief The category of every `seckill::errc` (named "seckill"). Thread-safe.
inline const std::error_category& seckill_category() noexcept {
  return detail::category_of<errc>();
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), seckill_category()};
}

namespace detail {

// A code from any category is compared through its default condition; codes
// that name the same failure in the OS's words (Asio's included, as
// std::error_code) are mapped here.
inline bool condition_category_impl::equivalent(const std::error_code& code,
                                                int value) const noexcept {
  const auto wanted = static_cast<condition>(value);
  if (wanted == condition::refused) {
    return code == make_error_condition(condition::invalid_input) ||
           code == make_error_condition(condition::rejected) ||
           code == make_error_condition(condition::not_found) ||
           code == make_error_condition(condition::conflict);
  }
  const std::error_condition mapped = code.default_error_condition();
  if (mapped.category() == *this) return mapped.value() == value;
  if (mapped.category() != std::generic_category()) return false;
  switch (static_cast<std::errc>(mapped.value())) {
    case std::errc::operation_canceled:
      return wanted == condition::aborted;
    case std::errc::timed_out:
      return wanted == condition::timed_out;
    case std::errc::invalid_argument:
      return wanted == condition::invalid_input;
    case std::errc::connection_refused:
    case std::errc::connection_reset:
    case std::errc::connection_aborted:
    case std::errc::not_connected:
    case std::errc::broken_pipe:
    case std::errc::host_unreachable:
    case std::errc::network_unreachable:
    case std::errc::network_down:
    case std::errc::address_not_available:
      return wanted == condition::unavailable;
    case std::errc::protocol_error:
    case std::errc::bad_message:
    case std::errc::message_size:
      return wanted == condition::protocol;
    default:
      return false;
  }
}

}  // namespace detail

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
template <>
struct std::is_error_condition_enum<seckill::condition> : std::true_type {};
