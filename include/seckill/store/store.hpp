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
///   reserving leaks no stock. Each hold is given back atomically, at most
///   once: two reapers (or a reaper and a late commit or rollback) racing on
///   the same hold return its units once, whatever their order.
/// - `async_reap_expired(sku, limit, fence, token)` -> `void(error_code,
///   std::size_t)`: the same reap carrying a fencing token (`fence` in [1, max_units],
///   monotonic across leaderships: an etcd election's create revision). The
///   store keeps the highest fence any reap of `sku` has carried (recorded
///   even for a SKU never set) and, in the same atomic step as the reap,
///   refuses one whose fence is lower with `errc::fenced_out`, taking
///   nothing; an equal fence is accepted, a higher one raises the record. So
///   a deposed leader stops acting as soon as the new one has reaped once.
///   The three-argument form carries no fence: it is never refused and does
///   not change the record (a reaper outside any election). A fence <= 0 is
///   `errc::invalid_argument`, as is one above max_units.
///
/// Buyers (what a flash sale enforces per person):
///
/// - `async_reserve(sku, reserve_request, token)` -> `void(error_code,
///   reserve_result)`: the reserve above for a named buyer. With a `user`,
///   the SKU's `per_user_limit` holds: the user's units in held and committed
///   orders of this SKU, plus `quantity`, must not exceed it, else
///   `reserve_status::limited` and nothing is taken; the stock is checked
///   first, so a reserve both would refuse answers `sold_out`. The check, the
///   count and the deduction are one atomic step, across every node sharing
///   the store. Units go back to the user's allowance when they go back to
///   the stock: a rollback, a commit refused after the hold, a reap. A hold
///   that passed counts against the user until one of those gives it back
///   (the reaper's period bounds that).
///   With a `request_id` (the buyer's idempotency key, which needs a user),
///   the first reservation that took units binds (user, request_id) to its
///   order: a later reserve with the same pair, whatever its order id, takes
///   nothing and answers `replayed` with the bound order's id, where that
///   order stands now (`order_state`) and the `remaining` of its first
///   answer. A refused reserve (sold out, limited) binds nothing: it took
///   nothing, so a retry is a fresh attempt. A committed order, and the
///   binding of the request that bought it, are kept for good: a retry by
///   order id or by request answers "committed" however late. The records
///   and bindings of rolled-back and refused orders are forgotten after the
///   store's retention period. The four-argument form
///   `async_reserve(sku, quantity, order_id, hold, token)` is this one with
///   no user and no request id.
/// - `async_set_policy(sku, sku_policy, token)` -> `void(error_code)`: the
///   SKU's per-user limit and sale window. A SKU never given a policy
///   has the default one (per_user_limit 1, no window). Allowed before
///   `set_stock`; a lower limit never takes back units already held or sold.
///   Refused with `errc::invalid_argument` when `sku_policy_problem` names a
///   value out of range.
///   `async_get_policy(sku, token)` -> `void(error_code, sku_policy)` reads it
///   back (the default for a SKU never given one).
/// - `async_get_order(sku, order_id, token)` -> `void(error_code,
///   order_entry)`: a committed order as the commit recorded it, in the same
///   atomic step as the stock (no crash between "paid" and "recorded" can
///   lose it); `errc::unknown_order` for an order not committed (held, rolled
///   back, refused or never seen).
/// - `async_list_orders(sku, after, limit, token)` -> `void(error_code,
///   order_page)`: the committed orders of `sku` with ids greater than
///   `after`, in increasing id order, at most `limit` (1..max_order_page);
///   `next` is the cursor for the following page, 0 after the last.
///   The sum of their quantities equals `stock_level::committed` once the
///   SKU has no commit in flight (see store/reconcile.hpp).
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
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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
  limited,      ///< the user's units would exceed the SKU's per-user limit; nothing taken
  not_started,  ///< before the SKU's sale_start; nothing taken, nothing recorded
  ended,        ///< at or after the SKU's sale_end; nothing taken, nothing recorded
};

/// @brief Where an order stands in the store.
enum class order_state : std::uint8_t {
  held,         ///< reserved, neither committed nor given back yet
  committed,    ///< sold
  rolled_back,  ///< given back: rolled back, or its hold passed
  refused,      ///< the reserve took nothing (sold out, limited)
};

/// @brief The answer to `async_reserve`.
struct reserve_result {
  reserve_status status = reserve_status::sold_out;
  /// Units left after this reservation (or now, when refused); for a SKU
  /// split over shards (redis/sharded_store.hpp), what the buyer's shard has
  /// left, at most what the SKU has.
  std::int64_t remaining = 0;
  /// The stored answer of an earlier reserve with this order id, or with
  /// this (user, request_id): nothing was taken by this call.
  bool replayed = false;
  /// The order these units belong to: the order id asked for, or on a replay
  /// by request id, the order the request was first bound to. 0 when refused.
  std::int64_t order_id = 0;
  /// Where `order_id` stands now: `held` for a fresh reservation; on a replay
  /// it tells a retrying buyer what became of the first attempt.
  order_state state = order_state::refused;
};

/// @brief Who reserves, for the per-user limit and request idempotency.
///        The views are read while the operation starts.
struct reserve_request {
  std::int64_t order_id = 0;               ///< > 0, unique per SKU
  std::int64_t quantity = 1;               ///< in [1, max_units]
  std::chrono::milliseconds hold{30'000};  ///< in (0, max_hold]
  /// The buyer: empty for none (no per-user limit applies); else 1 to
  /// max_key_length characters of [A-Za-z0-9._:@-].
  std::string_view user{};
  /// The idempotency key: empty for none; else as `user` (and needs one).
  std::string_view request_id{};
};

/// @brief The longest `user` or `request_id` a store accepts.
inline constexpr std::size_t max_key_length = 64;

/// @brief The most orders one `async_list_orders` page returns.
inline constexpr std::size_t max_order_page = 1000;

/// @brief Why `async_list_orders(sku, after, limit)` is refused (`after`
///        below 0, `limit` outside [1, max_order_page]), naming the value
///        seen; empty when it is not. Every backend's check, so all refuse
///        the same calls.
[[nodiscard]] inline std::string order_page_problem(std::int64_t after, std::size_t limit) {
  if (after < 0) return "after " + std::to_string(after) + " is negative";
  if (limit == 0 || limit > max_order_page)
    return "limit " + std::to_string(limit) + " out of [1, " + std::to_string(max_order_page) + "]";
  return {};
}

/// @brief An instant of a sale window: milliseconds since the Unix epoch.
using sale_time = std::chrono::sys_time<std::chrono::milliseconds>;

/// @brief The latest sale_time a policy holds (9999-12-31T23:59:59.999Z).
inline constexpr sale_time max_sale_time{std::chrono::milliseconds{253'402'300'799'999}};

/// @brief A SKU's rules for buyers.
struct sku_policy {
  /// The most units of this SKU one user may hold and buy together; 0 means
  /// no limit. In [0, max_units].
  std::int64_t per_user_limit = 1;
  /// The sale window [sale_start, sale_end), in [epoch, max_sale_time], end
  /// after start. The defaults (the epoch, max_sale_time) mean no bound.
  sale_time sale_start{};
  sale_time sale_end = max_sale_time;
};

/// @brief Why `p` is refused by `async_set_policy`, naming the value seen;
///        empty when it is not. Every backend's check.
[[nodiscard]] inline std::string sku_policy_problem(const sku_policy& p) {
  const auto ms = [](sale_time t) { return std::to_string(t.time_since_epoch().count()) + " ms"; };
  const std::string range = " out of [0, " + ms(max_sale_time) + "]";
  if (p.per_user_limit < 0 || p.per_user_limit > max_units)
    return "per_user_limit " + std::to_string(p.per_user_limit) + " out of [0, " +
           std::to_string(max_units) + "]";
  if (p.sale_start < sale_time{} || p.sale_start > max_sale_time)
    return "sale_start " + ms(p.sale_start) + range;
  if (p.sale_end < sale_time{} || p.sale_end > max_sale_time)
    return "sale_end " + ms(p.sale_end) + range;
  if (p.sale_end <= p.sale_start)
    return "sale_end " + ms(p.sale_end) + " is not after sale_start " + ms(p.sale_start);
  return {};
}

/// @brief A committed order, as the commit recorded it.
struct order_entry {
  std::int64_t order_id = 0;
  std::int64_t quantity = 0;
  std::string user;        ///< empty when the reserve named none
  std::string request_id;  ///< empty when the reserve carried none
};

/// @brief One page of `async_list_orders`.
struct order_page {
  std::vector<order_entry> orders;  ///< increasing order id
  std::int64_t next = 0;            ///< the `after` of the next page; 0 after the last
};

/// @brief Whether `key` is a valid `user` or `request_id`: 1 to
///        max_key_length characters of [A-Za-z0-9._:@-]. Keys go into store
///        keys and scripts verbatim, so nothing else is let through.
[[nodiscard]] constexpr bool valid_buyer_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > max_key_length) return false;
  for (const char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// @brief The checks every backend makes of a reserve_request before it
///        sends anything: errc::invalid_argument for an order id <= 0, a
///        quantity outside [1, max_units], a hold outside (0, max_hold], an
///        invalid user or request id, or a request id without a user.
[[nodiscard]] inline std::error_code check_reserve_request(const reserve_request& r) noexcept {
  const bool bad = r.order_id <= 0 || r.quantity <= 0 || r.quantity > max_units ||
                   r.hold <= std::chrono::milliseconds::zero() || r.hold > max_hold ||
                   (!r.user.empty() && !valid_buyer_key(r.user)) ||
                   (!r.request_id.empty() && (r.user.empty() || !valid_buyer_key(r.request_id)));
  return bad ? make_error_code(errc::invalid_argument) : std::error_code();
}

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
  store.async_reserve(sku, reserve_request{}, boost::asio::deferred);
  store.async_set_policy(sku, sku_policy{}, boost::asio::deferred);
  store.async_get_policy(sku, boost::asio::deferred);
  store.async_get_order(sku, order_id, boost::asio::deferred);
  store.async_list_orders(sku, order_id, limit, boost::asio::deferred);
};

/// @brief A stock backend whose reaps can carry a fencing token (the
///        four-argument `async_reap_expired` of the contract above): the
///        three stores of seckill are; a decorator may not be.
template <class S>
concept fenced_stock_store = stock_store<S> &&
    requires(S& store, std::string_view sku, std::size_t limit, std::int64_t fence) {
  store.async_reap_expired(sku, limit, fence, boost::asio::deferred);
};

}  // namespace seckill
