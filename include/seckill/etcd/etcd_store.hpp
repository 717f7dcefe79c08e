#pragma once
/// @file
/// @brief `etcd_store`: the `stock_store` contract (store/store.hpp) on etcd
///        transactions. Each change reads a SKU's records and writes them back
///        in one transaction guarded by their mod revisions (compare-and-swap,
///        the "database CAS version" mode): slower than Redis, linearizable,
///        and safe with any number of shop nodes writing at once.
///
/// Keys, under `options.prefix` (default "seckill/"), with the SKU
/// percent-encoded ('/' and '%'):
///   <prefix><sku>/stock                      {"remaining":R,"reserved":H,"committed":C}
///   <prefix><sku>/order/<order id>   {"qty":Q,"state":"held",...,"expires":ms,"remaining":R}
///   <prefix><sku>/hold/<expiry ms, 20 digits>/<order id, 20 digits>   (the reaper's index)
///   <prefix><sku>/policy                     {"per_user_limit":N,"sale_start":ms,"sale_end":ms}
///                                            (absent: the default)
///   <prefix><sku>/window/not_before          ""   (on a lease that ends at the sale's start)
///   <prefix><sku>/window/until               ""   (on a lease that ends at the sale's end)
///   <prefix><sku>/user/<user>                {"units":U}   (held + committed; deleted at 0)
///   <prefix><sku>/request/<user>/<request>   {"order":id}   (kept as the order record)
///   <prefix><sku>/orders/<order id, 19 digits>   {"qty":Q,...}   (committed; never expires)
///   <prefix><sku>/fence                      N   (the highest fence a reap carried)
/// The failure model of each step is in docs/etcd.md.
///
/// Order records of settled (committed, rolled back, expired) and refused
/// orders are written with an etcd lease, so etcd deletes them
/// `order_retention` (24 h by default) after they settle: the keyspace follows
/// the orders of the last retention period, not every order of the sale.
/// Held records carry no lease and are never deleted while held. One lease
/// is shared by every record written in the same window of
/// `order_retention / retention_buckets` (granted lazily on the first such
/// write of a window, with a TTL of the retention plus one window, rounded up
/// to whole seconds), so the cost is one LeaseGrant per window, not one per
/// order (per store object: each node's store grants its own, so etcd holds
/// about `retention_buckets + 1` leases per node). A settled or refused
/// record therefore lives from `order_retention` after its write was sent up
/// to `order_retention + order_retention / retention_buckets` + 1 s after it,
/// plus the time etcd takes to revoke an expired lease (its lessor checks
/// every 500 ms). etcd raises a TTL below
/// its minimum (1.5 election timeouts rounded up to seconds: 2 s with the
/// default 1 s election timeout) to that minimum, and a new etcd leader
/// restarts every lease's TTL: both only make records live longer.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/etcd_store_orders.hpp>
#include <seckill/etcd/detail/etcd_store_reap.hpp>
#include <seckill/etcd/detail/etcd_store_txn.hpp>
#include <seckill/etcd/etcd_store_options.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill::etcd {

/// @brief `stock_store` on etcd (see the file comment for the key layout and
///        how long order records are kept).
///
/// Every change is one etcd transaction guarded by the mod revisions of the
/// records it read, so concurrent writers on other nodes can never oversell:
/// a writer that lost the race reads again and retries. Holds expire by
/// `Clock` (milliseconds since its epoch, stored in the records: nodes must
/// share the clock, e.g. the system clock); settled and refused records are
/// forgotten by etcd's lease clock.
///
/// Ranges: a quantity (set or reserved) and a SKU's total (remaining +
/// reserved + committed) are at most `max_quantity` (2^53, `seckill::max_units`:
/// every JSON reader of the records keeps it exact, and no sum of them
/// overflows); a hold is in (0, `max_hold`]. Values outside are
/// `errc::invalid_argument`, and `last_error()` says which value was seen.
///
/// Every operation is idempotent per order id: one whose answer was lost
/// (`errc::store_unavailable` or `errc::timed_out` after its transaction was
/// sent) is retried safely with the same id, and answers as the first one
/// would have (a reserve `replayed`, a commit or rollback `already`), within
/// `order_retention` of the first call. A committed order id stays committed
/// after that: its recorded order (`orders/<id>`, never expiring) answers a
/// reserve `replayed` with `order_state::committed` (nothing taken), a commit
/// `already` and a rollback `errc::order_committed`.
///
/// Thread-safety: operations may be started from any thread and the
/// executor may be run by several threads: the store works on a strand of it.
/// `last_error()`, `conflicts()` and `leases_granted()` may be read from any
/// thread.
/// Cost: a reserve, commit or rollback is two round trips (a consistent read
/// of the SKU's records and the guarded write); a reserve replayed by its
/// request id, and a rollback or expired commit of a user's order, one more
/// read. `async_stock`, the policy calls, `async_get_order` and
/// `async_list_orders` are one. Once
/// per `order_retention / retention_buckets` window, the first settled or
/// refused order also waits for one LeaseGrant.
template <class Clock = std::chrono::system_clock>
class etcd_store {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// The largest quantity, and the largest total (remaining + reserved +
  /// committed) of a SKU: the contract's `seckill::max_units` (2^53).
  static constexpr std::int64_t max_quantity = seckill::max_units;
  /// The longest hold a reserve accepts: the contract's `seckill::max_hold`.
  static constexpr std::chrono::milliseconds max_hold = seckill::max_hold;
  /// The longest `order_retention`: 36500 days (a lease TTL well within
  /// etcd's limit of 9e9 s).
  static constexpr std::chrono::milliseconds max_order_retention =
      detail::etcd_stock_txns<Clock>::max_order_retention;

  /// Throws `seckill::error` (`errc::invalid_argument`) when `opts` holds an
  /// `order_retention` or `retention_buckets` out of range (see
  /// `etcd_store_options`), and `client`'s error when `copts` has no endpoint.
  etcd_store(executor_type ex, client_options copts, etcd_store_options opts = {}, Clock clock = {})
      : ex_(ex),
        strand_(boost::asio::make_strand(ex)),
        txns_(strand_, std::move(copts), std::move(opts), std::move(clock)) {}

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] client& get_client() noexcept { return txns_.get_client(); }
  [[nodiscard]] const etcd_store_options& options() const noexcept { return txns_.options(); }
  /// Transactions that lost a compare and were retried (contention from other writers).
  [[nodiscard]] std::uint64_t conflicts() const noexcept { return txns_.conflicts(); }
  /// Leases granted for settled and refused records (one per window in use).
  [[nodiscard]] std::uint64_t leases_granted() const noexcept { return txns_.leases_granted(); }
  /// What the most recent operation that completed with an error found wrong,
  /// with the value seen (e.g. "etcd_store: set_stock of sku 'a' to 5: ...").
  /// Never empty once an operation has failed. Operations failing at once on
  /// several threads overwrite each other's message: the last one stays.
  [[nodiscard]] std::string last_error() const { return txns_.last_error(); }

  /// Sets a SKU's remaining stock (creating the SKU). -> void(error_code)
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_stock(std::string_view sku, std::int64_t quantity,
                       CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        strand_, txns_.set_stock(std::string(sku), quantity), token);
  }

  /// -> void(error_code, stock_level)
  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, stock_level)>(
        strand_, txns_.stock(std::string(sku)), token);
  }

  /// The reserve without a buyer: `async_reserve(sku, reserve_request{order_id,
  /// quantity, hold})`. -> void(error_code, reserve_result)
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return async_reserve(sku,
                         reserve_request{.order_id = order_id, .quantity = quantity, .hold = hold},
                         std::forward<CompletionToken>(token));
  }

  /// A reserve for a buyer: the SKU's per-user limit and the request binding
  /// are checked and written in the reserve's transaction (see the file
  /// comment). -> void(error_code, reserve_result)
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& request,
                     CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, reserve_result)>(
        strand_, txns_.reserve(std::string(sku), detail::reserve_args(request)), token);
  }

  /// Sets the SKU's policy: a read of the window keys, a LeaseGrant per
  /// bound still ahead, one transaction, and a LeaseRevoke per replaced
  /// window key. The window is judged by etcd's lease clock: this node's
  /// system clock turns each bound into a TTL once, here (docs/failure-model.md,
  /// "The sale window", says how precise that is). -> void(error_code)
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, sku_policy policy,
                        CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        strand_, txns_.set_policy(std::string(sku), policy), token);
  }

  /// The SKU's policy, the default one when never set. -> void(error_code, sku_policy)
  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, sku_policy)>(
        strand_, txns_.get_policy(std::string(sku)), token);
  }

  /// A committed order's record (one read). -> void(error_code, order_entry)
  template <boost::asio::completion_token_for<void(std::error_code, order_entry)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_order(std::string_view sku, std::int64_t order_id,
                       CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, order_entry)>(
        strand_, txns_.get_order(std::string(sku), order_id), token);
  }

  /// A page of committed orders with ids above `after` (one range read of
  /// `limit` + 1 keys). -> void(error_code, order_page)
  template <boost::asio::completion_token_for<void(std::error_code, order_page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit,
                         CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, order_page)>(
        strand_, txns_.list_orders(std::string(sku), after, limit), token);
  }

  /// -> void(error_code, settle_result)
  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_commit(std::string_view sku, std::int64_t order_id,
                    CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, settle_result)>(
        strand_, txns_.settle(std::string(sku), order_id, true), token);
  }

  /// -> void(error_code, settle_result)
  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_rollback(std::string_view sku, std::int64_t order_id,
                      CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, settle_result)>(
        strand_, txns_.settle(std::string(sku), order_id, false), token);
  }

  /// -> void(error_code, std::size_t reaped). Any `limit` is accepted: one
  /// above the number of expired holds (`SIZE_MAX` included) reaps them all,
  /// `reap_batch` per transaction; 0 reaps nothing.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit,
                          CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::size_t)>(
        strand_, txns_.reap(std::string(sku), limit), token);
  }

  /// The reap carrying a fencing token (`fence` >= 1): the fence is checked
  /// against `<sku>/fence` and raised there (compare-and-swap) before the
  /// first batch, and every batch's transaction holds only while that key is
  /// unchanged, so a newer leader's reap in between refuses the rest with
  /// `errc::fenced_out` (`last_error()` names the fence seen); holds given
  /// back by earlier batches stay given back. -> void(error_code, std::size_t)
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit, std::int64_t fence,
                          CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::size_t)>(
        strand_, txns_.reap(std::string(sku), limit, fence), token);
  }

 private:
  executor_type ex_;
  boost::asio::strand<executor_type> strand_;
  detail::etcd_stock_txns<Clock> txns_;
};

static_assert(stock_store<etcd_store<>>);
static_assert(fenced_stock_store<etcd_store<>>);

}  // namespace seckill::etcd
