#pragma once
/// @file
/// @brief The transactions behind `etcd_store`: each operation reads a SKU's
///        records and writes them back in one etcd transaction guarded by
///        their mod revisions, retried when another writer won; and the
///        retention leases of settled and refused orders. The reaper's batch
///        is defined in detail/etcd_store_reap.hpp, the buyer calls outside
///        transactions (policy, get_order, list_orders) in
///        detail/etcd_store_orders.hpp; etcd_store.hpp includes all three.

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/etcd_store_buyer_records.hpp>
#include <seckill/etcd/detail/etcd_store_records.hpp>
#include <seckill/etcd/detail/json_codec.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/etcd_store_options.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace seckill::etcd::detail {

/// A reserve's arguments, owned: the views of a `reserve_request` are read
/// once, when the operation starts.
struct reserve_args {
  explicit reserve_args(const reserve_request& r)
      : order_id(r.order_id),
        quantity(r.quantity),
        hold(r.hold),
        user(r.user),
        request_id(r.request_id) {}
  std::int64_t order_id;
  std::int64_t quantity;
  std::chrono::milliseconds hold;
  std::string user;
  std::string request_id;
};

/// The state and the transactions of one `etcd_store`; every coroutine runs
/// on the store's strand. Thread-safety: the counters and `last_error()` from
/// any thread, the rest on the strand.
template <class Clock>
class etcd_stock_txns {
 public:
  static constexpr std::int64_t max_quantity = ::seckill::max_units;
  static constexpr std::chrono::milliseconds max_hold = ::seckill::max_hold;
  static constexpr std::chrono::milliseconds max_order_retention = std::chrono::hours(24 * 36500);

  etcd_stock_txns(boost::asio::strand<boost::asio::any_io_executor> strand, client_options copts,
                  etcd_store_options opts, Clock clock)
      : strand_(std::move(strand)),
        opts_(checked(std::move(opts))),
        client_(strand_, std::move(copts)),
        clock_(std::move(clock)) {
    if (opts_.max_attempts == 0) opts_.max_attempts = 1;
    if (opts_.reap_batch == 0 || opts_.reap_batch > 40) opts_.reap_batch = 32;
    if (opts_.order_retention > std::chrono::milliseconds::zero()) {
      const auto width_ms =
          std::max<std::int64_t>(1, opts_.order_retention.count() / opts_.retention_buckets);
      window_ = std::chrono::milliseconds(width_ms);
      lease_ttl_s_ = (opts_.order_retention.count() + width_ms + 999) / 1000;
    }
  }

  [[nodiscard]] client& get_client() noexcept { return client_; }
  [[nodiscard]] const etcd_store_options& options() const noexcept { return opts_; }
  [[nodiscard]] std::uint64_t conflicts() const noexcept {
    return conflicts_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t leases_granted() const noexcept {
    return leases_granted_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(message_mutex_);
    return last_error_;
  }

 private:
  static etcd_store_options checked(etcd_store_options o) {
    if (o.order_retention != std::chrono::milliseconds::zero() &&
        (o.order_retention < std::chrono::seconds(1) || o.order_retention > max_order_retention)) {
      throw error(seckill::errc::invalid_argument,
                  "etcd_store_options: order_retention " +
                      std::to_string(o.order_retention.count()) + " ms out of [1000, " +
                      std::to_string(max_order_retention.count()) +
                      "] ms (etcd leases count whole seconds; 0 keeps every order)");
    }
    if (o.retention_buckets < 1 || o.retention_buckets > 100) {
      throw error(seckill::errc::invalid_argument, "etcd_store_options: retention_buckets " +
                                                       std::to_string(o.retention_buckets) +
                                                       " out of [1, 100]");
    }
    return o;
  }

  std::string base(const std::string& sku) const { return opts_.prefix + encode_sku(sku) + "/"; }
  std::string stock_key(const std::string& sku) const { return base(sku) + "stock"; }
  std::string order_key(const std::string& sku, std::int64_t id) const {
    return base(sku) + "order/" + std::to_string(id);
  }
  std::string hold_prefix(const std::string& sku) const { return base(sku) + "hold/"; }
  std::string hold_key(const std::string& sku, std::int64_t expires_ms, std::int64_t id) const {
    return hold_prefix(sku) + padded(expires_ms) + "/" + padded(id);
  }
  std::string policy_key(const std::string& sku) const { return base(sku) + "policy"; }
  // present while the sale has not started / has not ended (see set_policy)
  std::string not_before_key(const std::string& sku) const {
    return base(sku) + "window/not_before";
  }
  std::string until_key(const std::string& sku) const { return base(sku) + "window/until"; }
  std::string user_key(const std::string& sku, const std::string& user) const {
    return base(sku) + "user/" + user;
  }
  std::string request_key(const std::string& sku, const std::string& user,
                          const std::string& request_id) const {
    return base(sku) + "request/" + user + "/" + request_id;
  }
  std::string recorded_prefix(const std::string& sku) const { return base(sku) + "orders/"; }
  std::string recorded_key(const std::string& sku, std::int64_t id) const {
    return recorded_prefix(sku) + padded19(id);
  }
  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch())
        .count();
  }

  /// Records `message` (or, when empty, what `ec` says) as `last_error()` and returns `ec`.
  std::error_code failed(std::error_code ec, std::string message) {
    if (message.empty()) message = "etcd_store: " + ec.message();
    std::lock_guard lock(message_mutex_);
    last_error_ = std::move(message);
    return ec;
  }

  /// A transport error of the call behind `what`, mapped as the contract says.
  std::error_code transport(std::error_code ec, const std::string& what,
                            const std::string& server_message) {
    return failed(
        ::seckill::detail::store_error(ec),
        "etcd_store: " + what + ": " + (server_message.empty() ? ec.message() : server_message));
  }

  static std::string op_name(const char* op, const std::string& sku, std::int64_t order_id) {
    return std::string(op) + " of order " + std::to_string(order_id) + " on sku '" + sku + "'";
  }

  /// Holds one key of a `keyed_lock` for the scope of an operation.
  class lock_guard {
   public:
    lock_guard(keyed_lock* l, std::string k, bool o) : locks(l), key(std::move(k)), owned(o) {}
    lock_guard(lock_guard&& other) noexcept
        : locks(other.locks), key(std::move(other.key)), owned(std::exchange(other.owned, false)) {}
    lock_guard& operator=(lock_guard&&) = delete;
    ~lock_guard() {
      if (owned) locks->release(key);
    }
    keyed_lock* locks;
    std::string key;
    bool owned;
  };

  boost::asio::awaitable<lock_guard> lock(const std::string& sku) {
    const boost::asio::any_io_executor ex = strand_;
    const bool ok = co_await locks_.acquire(ex, sku);
    co_return lock_guard(&locks_, sku, ok);
  }

  /// The prologue of every change of a SKU: an empty `sku` is
  /// `invalid_argument`; else this store's lock on it (`operation_aborted`
  /// when cancelled while waiting for it).
  boost::asio::awaitable<std::pair<std::error_code, lock_guard>> enter(const std::string& sku,
                                                                       const std::string& what) {
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                                 "etcd_store: " + what + ": empty sku"),
                          lock_guard(&locks_, std::string(), false)};
    }
    auto guard = co_await lock(sku);
    std::error_code ec;
    if (!guard.owned)
      ec = failed(make_error_code(seckill::errc::operation_aborted),
                  "etcd_store: " + what + ": cancelled");
    co_return std::pair{ec, std::move(guard)};
  }

  /// The lease for a record settled or refused now (0: records are kept
  /// forever). The current window's lease when it has one; else one granted
  /// now, at most one grant in flight (the other callers wait for it).
  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> retention_lease(
      const std::string& what) {
    if (lease_ttl_s_ == 0) co_return std::pair{std::error_code{}, std::int64_t{0}};
    if (lease_id_ != 0 && std::chrono::steady_clock::now() < lease_usable_until_) {
      co_return std::pair{std::error_code{}, lease_id_};
    }
    const boost::asio::any_io_executor ex = strand_;
    const std::string key;  // the one key of lease_lock_
    const bool ok = co_await lease_lock_.acquire(ex, key);
    lock_guard guard(&lease_lock_, key, ok);
    if (!ok) {
      co_return std::pair{
          failed(make_error_code(seckill::errc::operation_aborted),
                 "etcd_store: " + what + ": cancelled while waiting for a retention lease"),
          std::int64_t{0}};
    }
    const auto asked_at = std::chrono::steady_clock::now();
    if (lease_id_ != 0 && asked_at < lease_usable_until_)
      co_return std::pair{std::error_code{}, lease_id_};
    auto [ec, r] = co_await client_.async_lease_grant(
        lease_ttl_s_, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) {
      co_return std::pair{
          transport(ec,
                    what + ": granting a retention lease of " + std::to_string(lease_ttl_s_) + " s",
                    r.error_message),
          std::int64_t{0}};
    }
    // The TTL counts from the grant, which etcd applied after `asked_at`: a
    // record written before `asked_at + ttl - retention` lives the retention.
    const auto slack = std::chrono::seconds(r.ttl) - opts_.order_retention;
    if (slack <= std::chrono::milliseconds::zero()) {
      co_return std::pair{
          failed(make_error_code(seckill::errc::protocol_error),
                 "etcd_store: " + what + ": etcd granted lease " + std::to_string(r.id) +
                     " a TTL of " + std::to_string(r.ttl) + " s, asked " +
                     std::to_string(lease_ttl_s_) + " s, not above the retention of " +
                     std::to_string(opts_.order_retention.count()) + " ms"),
          std::int64_t{0}};
    }
    lease_id_ = r.id;
    lease_usable_until_ =
        asked_at + std::min<std::chrono::milliseconds>(
                       window_, std::chrono::duration_cast<std::chrono::milliseconds>(slack));
    leases_granted_.fetch_add(1, std::memory_order_relaxed);
    co_return std::pair{std::error_code{}, lease_id_};
  }

  /// A write with `lease` failed with lease_not_found (revoked, or expired
  /// early): the next record gets a fresh lease.
  void forget_lease(std::int64_t lease) noexcept {
    if (lease_id_ == lease) lease_id_ = 0;
  }

  /// A key to read and, once read, its value and mod revision (0: absent).
  struct read_value {
    std::string key;
    std::string value{};
    std::int64_t mod_revision = 0;
  };

  /// Reads `kvs` at one revision (one transaction of ranges).
  boost::asio::awaitable<std::error_code> read(std::vector<read_value>& kvs,
                                               const std::string& what) {
    txn_request t;
    for (const auto& kv : kvs) t.success.push_back(range_request{kv.key, {}});
    auto [ec, r] = co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return transport(ec, what + ": reading its records", r.error_message);
    for (std::size_t i = 0; i < kvs.size(); ++i) {
      const range_result* range = range_at(r, i);
      if (range == nullptr) {
        co_return failed(make_error_code(seckill::errc::protocol_error),
                         "etcd_store: " + what + ": etcd answered a read of " +
                             std::to_string(kvs.size()) + " ranges with " +
                             std::to_string(r.responses.size()) + " results");
      }
      kvs[i].value.clear();
      kvs[i].mod_revision = 0;
      if (!range->kvs.empty()) {
        kvs[i].value = range->kvs.front().value;
        kvs[i].mod_revision = range->kvs.front().mod_revision;
      }
    }
    co_return std::error_code{};
  }

  /// A record that does not parse: `message` says which, `what` for which operation.
  std::error_code corrupt(const std::string& message, const std::string& what) {
    return failed(make_error_code(seckill::errc::protocol_error), message + " (" + what + ")");
  }

  /// A consistent read of the stock record, (when `order_id` is set) one order
  /// record and (when `extra` is set) the keys in `extra`, all at one revision.
  boost::asio::awaitable<std::error_code> snapshot(const std::string& sku,
                                                   std::optional<std::int64_t> order_id,
                                                   stock_record& stock,
                                                   std::optional<order_record>& order,
                                                   const std::string& what,
                                                   std::vector<read_value>* extra = nullptr) {
    std::vector<read_value> kvs;
    kvs.push_back(read_value{stock_key(sku)});
    if (order_id) kvs.push_back(read_value{order_key(sku, *order_id)});
    const std::size_t first_extra = kvs.size();
    if (extra != nullptr) kvs.insert(kvs.end(), extra->begin(), extra->end());
    const std::error_code read_error = co_await read(kvs, what);
    if (read_error) co_return read_error;
    stock = {};
    order.reset();
    std::string message;
    if (kvs[0].mod_revision != 0) {
      if (!decode_stock(kvs[0].value, stock.level, message)) co_return corrupt(message, what);
      stock.mod_revision = kvs[0].mod_revision;
    }
    if (order_id && kvs[1].mod_revision != 0) {
      auto& o = order.emplace();
      if (!decode_order(kvs[1].value, o, message)) co_return corrupt(message, what);
      o.mod_revision = kvs[1].mod_revision;
    }
    if (extra != nullptr) std::copy(kvs.begin() + first_extra, kvs.end(), extra->begin());
    co_return std::error_code{};
  }

  /// The compare for a record read at `mod_revision` (0: it must not exist).
  static compare unchanged(std::string key, std::int64_t mod_revision) {
    return mod_revision == 0
               ? compare::missing(std::move(key))
               : compare::mod_revision(std::move(key), compare::result::equal, mod_revision);
  }

  std::error_code conflict(const std::string& what) {
    return failed(make_error_code(errc::txn_conflict),
                  "etcd_store: " + what + ": " + std::to_string(opts_.max_attempts) +
                      " transaction attempts lost their compare to other writers");
  }

 public:
  boost::asio::awaitable<std::error_code> set_stock(std::string sku, std::int64_t qty) {
    co_await honour_any_cancellation();
    const std::string what = "set_stock of sku '" + sku + "' to " + std::to_string(qty);
    if (qty < 0 || qty > max_quantity) {
      co_return failed(make_error_code(seckill::errc::invalid_argument),
                       "etcd_store: " + what + ": quantity " + std::to_string(qty) +
                           " out of [0, " + std::to_string(max_quantity) + "]");
    }
    auto [entered, guard] = co_await enter(sku, what);
    if (entered) co_return entered;
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      stock_record s;
      std::optional<order_record> none;
      const std::error_code read_error = co_await snapshot(sku, std::nullopt, s, none, what);
      if (read_error) co_return read_error;
      // the total must stay within max_quantity, so no later sum overflows
      const std::int64_t held = s.level.reserved, sold = s.level.committed;
      if (held < 0 || sold < 0 || held > max_quantity - qty || sold > max_quantity - qty - held) {
        const std::int64_t room =
            held < 0 || sold < 0 || held > max_quantity || sold > max_quantity - held
                ? 0
                : max_quantity - held - sold;
        co_return failed(make_error_code(seckill::errc::invalid_argument),
                         "etcd_store: " + what + ": with " + std::to_string(held) +
                             " reserved and " + std::to_string(sold) +
                             " committed the total would exceed " + std::to_string(max_quantity) +
                             "; at most " + std::to_string(room) + " can be set");
      }
      stock_level next = s.level;
      next.remaining = qty;
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.success.push_back(put_request{stock_key(sku), encode_stock(next), {}});
      auto [ec, r] =
          co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return transport(ec, what, r.error_message);
      if (r.succeeded) co_return std::error_code{};
      conflicts_.fetch_add(1, std::memory_order_relaxed);
    }
    co_return conflict(what);
  }

  boost::asio::awaitable<std::pair<std::error_code, stock_level>> stock(std::string sku) {
    co_await honour_any_cancellation();
    const std::string what = "stock of sku '" + sku + "'";
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                                 "etcd_store: " + what + ": empty sku"),
                          stock_level{}};
    }
    stock_record s;
    std::optional<order_record> none;
    const std::error_code read_error = co_await snapshot(sku, std::nullopt, s, none, what);
    if (read_error) co_return std::pair{read_error, stock_level{}};
    if (s.mod_revision == 0) {
      co_return std::pair{
          failed(make_error_code(seckill::errc::unknown_sku),
                 "etcd_store: " + what + ": no stock record at '" + stock_key(sku) + "'"),
          stock_level{}};
    }
    co_return std::pair{std::error_code{}, s.level};
  }

 private:
  /// The answer a reserve gave (or gives) for order `id` recorded as `o`, at
  /// `now_ms`: a held order whose hold has passed stands rolled back (its
  /// units are due back; the reaper or a commit gives them back), as the
  /// other stores answer.
  static reserve_result answer_of(std::int64_t id, const order_record& o, bool replayed,
                                  std::int64_t now_ms) {
    reserve_result r;
    const bool refused = o.state == order_state::refused;
    r.status = !refused    ? reserve_status::reserved
               : o.limited ? reserve_status::limited
                           : reserve_status::sold_out;
    r.remaining = o.remaining;
    r.replayed = replayed;
    r.order_id = refused ? 0 : id;
    r.state =
        o.state == order_state::held && o.expires_ms <= now_ms ? order_state::rolled_back : o.state;
    return r;
  }

  /// The answer to a reserve of order `id` whose retained record is gone but
  /// whose durable record (`orders/<id>`) says it was committed: replayed,
  /// committed, nothing taken; `remaining` is the stock's now.
  static reserve_result recorded_answer(std::int64_t id, std::int64_t remaining) {
    reserve_result r;
    r.status = reserve_status::reserved;
    r.remaining = remaining;
    r.replayed = true;
    r.order_id = id;
    r.state = order_state::committed;
    return r;
  }

  static std::string quoted(const std::string& key) {
    return json(key).dump(-1, ' ', false, json::error_handler_t::replace);
  }

 public:
  boost::asio::awaitable<std::pair<std::error_code, reserve_result>> reserve(std::string sku,
                                                                             reserve_args a) {
    co_await honour_any_cancellation();
    reserve_result out;
    const std::string what = op_name("reserve", sku, a.order_id);
    auto bad = [&](std::string why) {
      return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                              "etcd_store: " + what + ": " + why),
                       out};
    };
    const std::string key_rule =
        " is not 1 to " + std::to_string(max_key_length) + " characters of [A-Za-z0-9._:@-]";
    if (a.order_id <= 0) co_return bad("order id " + std::to_string(a.order_id) + " is not > 0");
    if (a.quantity <= 0 || a.quantity > max_quantity) {
      co_return bad("quantity " + std::to_string(a.quantity) + " out of [1, " +
                    std::to_string(max_quantity) + "]");
    }
    if (a.hold <= std::chrono::milliseconds::zero() || a.hold > max_hold) {
      co_return bad("hold " + std::to_string(a.hold.count()) + " ms out of [1, " +
                    std::to_string(max_hold.count()) + "] ms");
    }
    if (!a.user.empty() && !valid_buyer_key(a.user))
      co_return bad("user " + quoted(a.user) + key_rule);
    if (!a.request_id.empty() && !valid_buyer_key(a.request_id))
      co_return bad("request id " + quoted(a.request_id) + key_rule);
    if (!a.request_id.empty() && a.user.empty())
      co_return bad("request id " + quoted(a.request_id) + " without a user");
    auto [entered, guard] = co_await enter(sku, what);
    if (entered) co_return std::pair{entered, out};
    // extra records: the order's durable record (committed once, kept after the
    // retained order record is forgotten); the policy and its window keys; the
    // user's units with a user, the binding with a request id
    std::vector<read_value> extra;
    extra.push_back(read_value{recorded_key(sku, a.order_id)});
    extra.push_back(read_value{policy_key(sku)});
    extra.push_back(read_value{not_before_key(sku)});
    extra.push_back(read_value{until_key(sku)});
    constexpr std::size_t recorded_at = 0, policy_at = 1, not_before_at = 2, until_at = 3,
                          units_at = 4, binding_at = 5;
    if (!a.user.empty()) extra.push_back(read_value{user_key(sku, a.user)});
    if (!a.request_id.empty()) extra.push_back(read_value{request_key(sku, a.user, a.request_id)});
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      stock_record s;
      std::optional<order_record> o;
      const std::error_code read_error = co_await snapshot(sku, a.order_id, s, o, what, &extra);
      if (read_error) co_return std::pair{read_error, out};
      if (o) co_return std::pair{std::error_code{}, answer_of(a.order_id, *o, true, now_ms())};
      if (extra[recorded_at].mod_revision != 0) {  // committed, its retained record forgotten
        co_return std::pair{std::error_code{}, recorded_answer(a.order_id, s.level.remaining)};
      }
      std::string message;
      if (!a.request_id.empty() && extra[binding_at].mod_revision != 0) {  // bound: where it stands
        std::int64_t bound = 0;
        if (!decode_binding(extra[binding_at].value, bound, message))
          co_return std::pair{corrupt(message, what), out};
        stock_record unused;
        std::optional<order_record> b;
        std::vector<read_value> bound_recorded{read_value{recorded_key(sku, bound)}};
        const std::error_code bound_error =
            co_await snapshot(sku, bound, unused, b, what, &bound_recorded);
        if (bound_error) co_return std::pair{bound_error, out};
        if (b) co_return std::pair{std::error_code{}, answer_of(bound, *b, true, now_ms())};
        if (bound_recorded[0].mod_revision != 0)  // sold: its retained record forgotten
          co_return std::pair{std::error_code{}, recorded_answer(bound, s.level.remaining)};
        if (attempt + 1 < opts_.max_attempts) continue;  // both forgotten since the first read
        co_return std::pair{
            corrupt("etcd_store: request " + quoted(a.request_id) + " of user " + quoted(a.user) +
                        " is bound to order " + std::to_string(bound) + ", which has no record",
                    what),
            out};
      }
      if (s.mod_revision == 0) {
        out.status = reserve_status::unknown_sku;
        co_return std::pair{std::error_code{}, out};
      }
      sku_policy policy;
      std::int64_t units = 0;
      if (extra[policy_at].mod_revision != 0 &&
          !decode_policy(extra[policy_at].value, policy, message))
        co_return std::pair{corrupt(message, what), out};
      // The window by etcd's lease clock: the start has passed once the
      // not_before key is gone, the end once the until key is. A refusal
      // writes nothing; an admitted reserve's transaction compares both keys
      // unchanged, so a lease expiring in between makes it read again.
      const bool early = policy.sale_start > sale_time{} && extra[not_before_at].mod_revision != 0;
      const bool late = policy.sale_end < max_sale_time && extra[until_at].mod_revision == 0;
      if (early || late) {
        out.status = early ? reserve_status::not_started : reserve_status::ended;
        out.remaining = s.level.remaining;
        co_return std::pair{std::error_code{}, out};
      }
      if (!a.user.empty() && extra[units_at].mod_revision != 0 &&
          !decode_units(extra[units_at].value, units, message))
        co_return std::pair{corrupt(message, what), out};
      const std::int64_t limit = policy.per_user_limit;
      const bool over =
          !a.user.empty() && limit > 0 && (units > limit || a.quantity > limit - units);
      const bool sold_out = s.level.remaining < a.quantity;
      order_record rec;
      rec.qty = a.quantity;
      rec.user = a.user;
      rec.request_id = a.request_id;
      rec.limited = over && !sold_out;  // stock is checked first: sold out wins
      std::int64_t lease = 0;
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.compares.push_back(compare::missing(order_key(sku, a.order_id)));
      for (const auto& kv : extra) t.compares.push_back(unchanged(kv.key, kv.mod_revision));
      const std::int64_t now = now_ms();
      if (over || sold_out) {
        rec.state = order_state::refused;
        rec.remaining = s.level.remaining;
        auto [lec, id] = co_await retention_lease(what);
        if (lec) co_return std::pair{lec, out};
        lease = id;
      } else {
        if (now < 0 || now > std::numeric_limits<std::int64_t>::max() - a.hold.count()) {
          co_return bad("the clock reads " + std::to_string(now) +
                        " ms since its epoch; a hold of " + std::to_string(a.hold.count()) +
                        " ms from then does not fit in [0, INT64_MAX] ms");
        }
        stock_level next = s.level;
        next.remaining -= a.quantity;
        next.reserved += a.quantity;
        rec.state = order_state::held;
        rec.remaining = next.remaining;
        rec.expires_ms = now + a.hold.count();
        t.success.push_back(put_request{stock_key(sku), encode_stock(next), {}});
        t.success.push_back(put_request{hold_key(sku, rec.expires_ms, a.order_id), "", {}});
        if (!a.user.empty()) write_units(t, user_key(sku, a.user), units + a.quantity);
        if (!a.request_id.empty()) {  // no lease while held: kept as the order record is
          t.success.push_back(
              put_request{request_key(sku, a.user, a.request_id), encode_binding(a.order_id), {}});
        }
      }
      put_options po;
      po.lease = lease;  // held: none, never forgotten while held
      t.success.push_back(put_request{order_key(sku, a.order_id), encode_order(rec), po});
      auto [ec, r] =
          co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == errc::lease_not_found && lease != 0) {
        forget_lease(lease);
        continue;
      }
      if (ec) co_return std::pair{transport(ec, what, r.error_message), out};
      if (!r.succeeded) {
        conflicts_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      co_return std::pair{std::error_code{}, answer_of(a.order_id, rec, false, now)};
    }
    co_return std::pair{conflict(what), out};
  }

 private:
  /// Adds to `t` the write of a user's units of a SKU: the record, or its
  /// deletion at 0 (a user who holds and bought nothing leaves no key).
  static void write_units(txn_request& t, std::string key, std::int64_t units) {
    if (units <= 0)
      t.success.push_back(delete_request{std::move(key), {}});
    else
      t.success.push_back(put_request{std::move(key), encode_units(units), {}});
  }

  /// Adds to `t` the binding of a settling order's request (if any), written
  /// again with `lease`: it is forgotten with the order record (lease 0, for
  /// a commit: the binding of a sold order is kept for good, as its durable
  /// record is, so a late retry still answers committed).
  void rebind(const std::string& sku, std::int64_t order_id, const order_record& o,
              std::int64_t lease, txn_request& t) const {
    if (o.request_id.empty()) return;
    put_options po;
    po.lease = lease;
    t.success.push_back(
        put_request{request_key(sku, o.user, o.request_id), encode_binding(order_id), po});
  }

  /// Adds to `t` the writes that give a held order's units back to the
  /// stock (not to its user: the caller writes the user's units); its record
  /// and binding are kept with `lease`.
  void give_back(const std::string& sku, std::int64_t order_id, order_record o, stock_level& level,
                 std::int64_t lease, txn_request& t) {
    level.remaining += o.qty;
    level.reserved -= o.qty;
    t.success.push_back(delete_request{hold_key(sku, o.expires_ms, order_id), {}});
    rebind(sku, order_id, o, lease, t);
    o.state = order_state::rolled_back;
    put_options po;
    po.lease = lease;
    t.success.push_back(put_request{order_key(sku, order_id), encode_order(o), po});
  }

  /// Reads the units of `users` (each key's record, or absent: 0).
  boost::asio::awaitable<std::error_code> read_units(const std::string& sku,
                                                     std::map<std::string, read_value>& users,
                                                     std::map<std::string, std::int64_t>& units,
                                                     const std::string& what) {
    std::vector<read_value> kvs;
    for (const auto& [user, kv] : users) kvs.push_back(read_value{user_key(sku, user)});
    const std::error_code read_error = co_await read(kvs, what);
    if (read_error) co_return read_error;
    std::size_t i = 0;
    std::string message;
    for (auto& [user, kv] : users) {
      kv = kvs[i++];
      std::int64_t n = 0;
      if (kv.mod_revision != 0 && !decode_units(kv.value, n, message))
        co_return corrupt(message, what);
      units[user] = n;
    }
    co_return std::error_code{};
  }

 public:
  boost::asio::awaitable<std::pair<std::error_code, settle_result>> settle(std::string sku,
                                                                           std::int64_t order_id,
                                                                           bool commit) {
    co_await honour_any_cancellation();
    settle_result out;
    const std::string what = op_name(commit ? "commit" : "rollback", sku, order_id);
    auto [entered, guard] = co_await enter(sku, what);
    if (entered) co_return std::pair{entered, out};
    // the order's durable record: it says "committed" once the retained one is forgotten
    std::vector<read_value> recorded{read_value{recorded_key(sku, order_id)}};
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      stock_record s;
      std::optional<order_record> o;
      const std::error_code read_error = co_await snapshot(sku, order_id, s, o, what, &recorded);
      if (read_error) co_return std::pair{read_error, out};
      if (!o && recorded[0].mod_revision != 0) {
        if (!commit) {
          co_return std::pair{
              failed(make_error_code(seckill::errc::order_committed),
                     "etcd_store: " + what + ": the order is committed (recorded at '" +
                         recorded[0].key +
                         "'; its order record was forgotten after the retention)"),
              out};
        }
        out.status = settle_status::already;
        co_return std::pair{std::error_code{}, out};
      }
      if (!o || o->state == order_state::refused || s.mod_revision == 0) {
        const std::string refusal = o && o->limited ? "limited" : "sold out";
        co_return std::pair{
            failed(make_error_code(seckill::errc::unknown_order),
                   "etcd_store: " + what + ": " +
                       (!o ? "no order record (never reserved, or forgotten after the retention)"
                        : o->state == order_state::refused
                            ? "the reserve was refused (" + refusal + ")"
                            : std::string("the sku has no stock record"))),
            out};
      }
      switch (o->state) {
        case order_state::committed:
          if (!commit) {
            co_return std::pair{failed(make_error_code(seckill::errc::order_committed),
                                       "etcd_store: " + what + ": the order is committed"),
                                out};
          }
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        case order_state::rolled_back:
          if (commit) {
            co_return std::pair{
                failed(make_error_code(seckill::errc::order_rolled_back),
                       "etcd_store: " + what + ": the order was rolled back (or its hold passed)"),
                out};
          }
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        default:
          break;
      }
      const bool expired = o->expires_ms <= now_ms();
      const bool giving_back = !commit || expired;
      std::map<std::string, read_value> users;  // the order's user, when units go back
      std::map<std::string, std::int64_t> units;
      if (giving_back && !o->user.empty()) {
        users[o->user] = read_value{};
        const std::error_code units_error = co_await read_units(sku, users, units, what);
        if (units_error) co_return std::pair{units_error, out};
      }
      auto [lec, lease] = co_await retention_lease(what);
      if (lec) co_return std::pair{lec, out};
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.compares.push_back(unchanged(order_key(sku, order_id), o->mod_revision));
      t.compares.push_back(unchanged(recorded[0].key, recorded[0].mod_revision));
      stock_level level = s.level;
      std::error_code answer;
      if (!giving_back) {
        level.reserved -= o->qty;
        level.committed += o->qty;
        t.success.push_back(delete_request{hold_key(sku, o->expires_ms, order_id), {}});
        auto done = *o;
        done.state = order_state::committed;
        put_options po;
        po.lease = lease;
        t.success.push_back(put_request{order_key(sku, order_id), encode_order(done), po});
        rebind(sku, order_id, done, 0, t);
        order_entry entry;  // the durable record: never expires
        entry.quantity = o->qty;
        entry.user = o->user;
        entry.request_id = o->request_id;
        t.success.push_back(put_request{recorded_key(sku, order_id), encode_entry(entry), {}});
      } else {
        give_back(sku, order_id, *o, level, lease, t);
        for (const auto& [user, kv] : users) {
          t.compares.push_back(unchanged(kv.key, kv.mod_revision));
          write_units(t, kv.key, units[user] - o->qty);
        }
        if (commit)
          answer = seckill::errc::order_rolled_back;  // the hold passed: as the reaper would do
      }
      t.success.push_back(put_request{stock_key(sku), encode_stock(level), {}});
      auto [ec, r] =
          co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == errc::lease_not_found && lease != 0) {
        forget_lease(lease);
        continue;
      }
      if (ec) co_return std::pair{transport(ec, what, r.error_message), out};
      if (!r.succeeded) {
        conflicts_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      out.status = settle_status::done;
      if (answer) {
        answer =
            failed(answer, "etcd_store: " + what + ": the hold passed at " +
                               std::to_string(o->expires_ms) + " ms; its units went back to stock");
      }
      co_return std::pair{answer, out};
    }
    co_return std::pair{conflict(what), out};
  }

  /// The most operations etcd takes in one branch of a transaction (its
  /// default --max-txn-ops): a reaper batch stops before it.
  static constexpr std::size_t max_txn_ops = 128;

  /// Gives back the holds of `sku` that passed, `reap_batch` per transaction
  /// (defined in detail/etcd_store_reap.hpp). With a `fence` (>= 1) each
  /// batch also holds only while `<sku>/fence` is the one this reap checked
  /// and raised (none: no fence).
  boost::asio::awaitable<std::pair<std::error_code, std::size_t>> reap(
      std::string sku, std::size_t limit, std::optional<std::int64_t> fence = std::nullopt);

  // The buyer calls outside transactions: one put or one read each (defined
  // in detail/etcd_store_orders.hpp).
  boost::asio::awaitable<std::error_code> set_policy(std::string sku, sku_policy p);
  /// etcd's longest lease TTL (MaxLeaseTTL), in seconds.
  static constexpr std::int64_t max_lease_ttl_s = 9'000'000'000;
  boost::asio::awaitable<std::pair<std::error_code, sku_policy>> get_policy(std::string sku);
  boost::asio::awaitable<std::pair<std::error_code, order_entry>> get_order(std::string sku,
                                                                            std::int64_t id);
  boost::asio::awaitable<std::pair<std::error_code, order_page>> list_orders(std::string sku,
                                                                             std::int64_t after,
                                                                             std::size_t limit);

 private:
  /// Revokes `lease` (0: none), ignoring a failure.
  boost::asio::awaitable<void> revoke_quietly(std::int64_t lease);
  std::string fence_key(const std::string& sku) const { return base(sku) + "fence"; }
  /// Checks `fence` against the highest one recorded for `sku`:
  /// `errc::fenced_out` below it; else records it (a compare-and-swap) and
  /// returns the fence key's mod revision, which the reap's batches compare.
  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> raise_fence(
      const std::string& sku, std::int64_t fence, const std::string& what);
  /// The order ids at the end of the hold index keys in `holds`.
  std::error_code hold_ids(const range_result& holds, std::vector<std::int64_t>& ids,
                           const std::string& what);
  /// Adds to `t` the give-back of the held orders among `orders` (and the
  /// deletion of index entries left by settled or forgotten ones), stopping
  /// before etcd's `max_txn_ops`; returns how many holds it gives back.
  std::size_t add_give_backs(const std::string& sku, const range_result& holds,
                             const std::vector<std::int64_t>& ids,
                             const std::vector<order_record>& orders,
                             std::map<std::string, read_value>& users,
                             std::map<std::string, std::int64_t>& units, std::int64_t lease,
                             stock_level& level, txn_request& t);

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  etcd_store_options opts_;
  client client_;
  Clock clock_;
  keyed_lock locks_;
  std::atomic<std::uint64_t> conflicts_{0};
  // the retention lease of the current window (on the strand)
  std::chrono::milliseconds window_{0};
  std::int64_t lease_ttl_s_ = 0;  // 0: records are kept forever
  std::int64_t lease_id_ = 0;
  std::chrono::steady_clock::time_point lease_usable_until_{};
  keyed_lock lease_lock_;
  std::atomic<std::uint64_t> leases_granted_{0};
  mutable std::mutex message_mutex_;
  std::string last_error_;
};

}  // namespace seckill::etcd::detail
