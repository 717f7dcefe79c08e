#pragma once
/// @file
/// @brief The `stock_store` contract that every stock backend meets
///        (`memory_store`, `redis::redis_store`, `etcd::etcd_store`), and the
///        result types its operations complete with.
///
/// The contract, which tests/store_conformance.hpp checks for every backend:
///
/// - `async_set_stock(sku, qty, token)` -> `void(error_code)`: makes `qty`
///   units of `sku` available (qty >= 0), creating the SKU if needed; holds and
///   committed orders already recorded are kept.
/// - `async_stock(sku, token)` -> `void(error_code, stock_level)`:
///   `errc::unknown_sku` for a SKU never set.
/// - `async_reserve(sku, qty, order_id, hold, token)` -> `void(error_code,
///   reserve_result)`: takes `qty` (> 0) units for `order_id` if that many are
///   left (all or nothing), holding them for `hold`. Never oversells: the check
///   and the deduction are one atomic step in the backend. Idempotent per
///   order id: a repeated reserve returns the first answer (`replayed` set) and
///   never deducts twice.
/// - `async_commit(sku, order_id, token)` -> `void(error_code, settle_result)`:
///   makes a held reservation final. A repeated commit reports
///   `settle_status::already` and changes nothing. Refused with
///   `errc::order_rolled_back` after a rollback or once the hold has passed
///   (the units go back to stock, as the reaper would do), with
///   `errc::unknown_order` for an order never reserved.
/// - `async_rollback(sku, order_id, token)` -> `void(error_code, settle_result)`:
///   gives held units back. A repeated rollback reports `already`; refused
///   with `errc::order_committed` after a commit, `errc::unknown_order` for an
///   order never reserved.
/// - `async_reap_expired(sku, limit, token)` -> `void(error_code, std::size_t)`:
///   gives back the units of at most `limit` reservations whose hold has
///   passed, and reports how many it reaped. A buyer that crashes after
///   reserving leaks no stock.
///
/// Errors every backend shares: `errc::store_unavailable` when the backend
/// cannot be reached (refused, or the connection lost with the operation in
/// flight), `errc::timed_out` when an operation's own timeout passed. Either
/// leaves an operation that had been sent uncertain; each is idempotent per
/// order id, so retrying it with the same id is safe and tells what happened.
///
/// Invariant, per SKU, at every moment: remaining >= 0, and remaining +
/// reserved + committed == the sum of the quantities set.
///
/// Range: a hold is in (0, `max_hold`]; a `set_stock` that would make
/// remaining + reserved + committed exceed `max_units` is refused with
/// `errc::invalid_argument`, as is a quantity above it.
///
/// Operations complete through Asio completion tokens (callbacks,
/// `use_awaitable`, `use_future`, `deferred`). The `sku` view is only read
/// while the operation starts; backends copy what they keep.

#include <seckill/error.hpp>

#include <boost/asio/deferred.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace seckill {

namespace detail {

/// The contract's word for a backend that cannot be reached: each network
/// store maps its transport's errors through this.
inline std::error_code store_error(std::error_code ec) noexcept {
  if (ec == condition::unavailable) return make_error_code(errc::store_unavailable);
  return ec;
}

}  // namespace detail

/// @brief The longest hold a store accepts (one year): every backend adds it
///        to its clock's now without overflow.
inline constexpr std::chrono::milliseconds max_hold = std::chrono::hours(24 * 366);

/// @brief The most units one SKU may count (2^53): what every backend,
///        Redis' Lua numbers (doubles) included, holds exactly.
inline constexpr std::int64_t max_units = std::int64_t{1} << 53;

/// @brief What a reservation attempt found.
enum class reserve_status : std::uint8_t {
  reserved,     ///< the units are held for the order
  sold_out,     ///< fewer units left than asked for; nothing taken
  unknown_sku,  ///< the store holds no stock record for this SKU
};

/// @brief The answer to `async_reserve`.
struct reserve_result {
  reserve_status status = reserve_status::sold_out;
  std::int64_t remaining = 0;  ///< units left after this reservation (or now, when refused)
  bool replayed = false;       ///< the stored answer of an earlier reserve with this order id
};

/// @brief The answer to `async_commit` and `async_rollback`.
enum class settle_status : std::uint8_t {
  done,     ///< this call changed the order
  already,  ///< an earlier call did; nothing changed
};

struct settle_result {
  settle_status status = settle_status::done;
};

/// @brief A SKU's stock as one consistent snapshot.
struct stock_level {
  std::int64_t remaining = 0;  ///< free to reserve
  std::int64_t reserved = 0;   ///< held by reservations not yet committed or given back
  std::int64_t committed = 0;  ///< sold
};

/// @brief A stock backend: see the file comment for the contract.
template <class S>
concept stock_store = requires(S& store, std::string_view sku, std::int64_t quantity,
                               std::int64_t order_id, std::chrono::milliseconds hold,
                               std::size_t limit) {
  typename S::executor_type;
  { store.get_executor() } -> std::convertible_to<typename S::executor_type>;
  store.async_set_stock(sku, quantity, boost::asio::deferred);
  store.async_stock(sku, boost::asio::deferred);
  store.async_reserve(sku, quantity, order_id, hold, boost::asio::deferred);
  store.async_commit(sku, order_id, boost::asio::deferred);
  store.async_rollback(sku, order_id, boost::asio::deferred);
  store.async_reap_expired(sku, limit, boost::asio::deferred);
};

}  // namespace seckill
