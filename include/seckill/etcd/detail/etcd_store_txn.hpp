#pragma once
/// @file
/// @brief The transactions behind `etcd_store`: each operation reads a SKU's
///        records and writes them back in one etcd transaction guarded by
///        their mod revisions, retried when another writer won; and the
///        retention leases of settled and refused orders.

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
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
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace seckill::etcd::detail {

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

  /// A consistent read of the stock record and (when `order_id` is set) one order record.
  boost::asio::awaitable<std::error_code> snapshot(const std::string& sku,
                                                   std::optional<std::int64_t> order_id,
                                                   stock_record& stock,
                                                   std::optional<order_record>& order,
                                                   const std::string& what) {
    txn_request t;
    t.success.push_back(range_request{stock_key(sku), {}});
    if (order_id) t.success.push_back(range_request{order_key(sku, *order_id), {}});
    auto [ec, r] = co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return transport(ec, what + ": reading its records", r.error_message);
    stock = {};
    order.reset();
    std::string message;
    const range_result* stock_range = range_at(r, 0);
    const range_result* order_range = order_id ? range_at(r, 1) : nullptr;
    if (stock_range == nullptr || (order_id && order_range == nullptr)) {
      co_return failed(make_error_code(seckill::errc::protocol_error),
                       "etcd_store: " + what + ": etcd answered a read of " +
                           std::to_string(t.success.size()) + " ranges with " +
                           std::to_string(r.responses.size()) + " range results");
    }
    const auto& skv = stock_range->kvs;
    if (!skv.empty()) {
      if (!decode_stock(skv.front().value, stock.level, message)) {
        co_return failed(make_error_code(seckill::errc::protocol_error),
                         message + " (" + what + ")");
      }
      stock.mod_revision = skv.front().mod_revision;
    }
    if (order_id) {
      const auto& okv = order_range->kvs;
      if (!okv.empty()) {
        auto& o = order.emplace();
        if (!decode_order(okv.front().value, o, message)) {
          co_return failed(make_error_code(seckill::errc::protocol_error),
                           message + " (" + what + ")");
        }
        o.mod_revision = okv.front().mod_revision;
      }
    }
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
    if (sku.empty()) {
      co_return failed(make_error_code(seckill::errc::invalid_argument),
                       "etcd_store: " + what + ": empty sku");
    }
    if (qty < 0 || qty > max_quantity) {
      co_return failed(make_error_code(seckill::errc::invalid_argument),
                       "etcd_store: " + what + ": quantity " + std::to_string(qty) +
                           " out of [0, " + std::to_string(max_quantity) + "]");
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return failed(make_error_code(seckill::errc::operation_aborted),
                       "etcd_store: " + what + ": cancelled");
    }
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

  boost::asio::awaitable<std::pair<std::error_code, reserve_result>> reserve(
      std::string sku, std::int64_t qty, std::int64_t order_id, std::chrono::milliseconds hold) {
    co_await honour_any_cancellation();
    reserve_result out;
    const std::string what = op_name("reserve", sku, order_id);
    auto bad = [&](std::string why) {
      return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                              "etcd_store: " + what + ": " + why),
                       out};
    };
    if (sku.empty()) co_return bad("empty sku");
    if (qty <= 0 || qty > max_quantity) {
      co_return bad("quantity " + std::to_string(qty) + " out of [1, " +
                    std::to_string(max_quantity) + "]");
    }
    if (hold <= std::chrono::milliseconds::zero() || hold > max_hold) {
      co_return bad("hold " + std::to_string(hold.count()) + " ms out of [1, " +
                    std::to_string(max_hold.count()) + "] ms");
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(seckill::errc::operation_aborted),
                                 "etcd_store: " + what + ": cancelled"),
                          out};
    }
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      stock_record s;
      std::optional<order_record> o;
      const std::error_code read_error = co_await snapshot(sku, order_id, s, o, what);
      if (read_error) co_return std::pair{read_error, out};
      if (o) {  // a replay: the first answer
        out.status =
            o->state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
        out.remaining = o->remaining;
        out.replayed = true;
        co_return std::pair{std::error_code{}, out};
      }
      if (s.mod_revision == 0) {
        out.status = reserve_status::unknown_sku;
        out.remaining = 0;
        co_return std::pair{std::error_code{}, out};
      }
      order_record rec;
      rec.qty = qty;
      std::int64_t lease = 0;
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.compares.push_back(compare::missing(order_key(sku, order_id)));
      if (s.level.remaining < qty) {
        rec.state = order_state::refused;
        rec.remaining = s.level.remaining;
        auto [lec, id] = co_await retention_lease(what);
        if (lec) co_return std::pair{lec, out};
        lease = id;
      } else {
        const std::int64_t now = now_ms();
        if (now < 0 || now > std::numeric_limits<std::int64_t>::max() - hold.count()) {
          co_return bad("the clock reads " + std::to_string(now) +
                        " ms since its epoch; a hold of " + std::to_string(hold.count()) +
                        " ms from then does not fit in [0, INT64_MAX] ms");
        }
        stock_level next = s.level;
        next.remaining -= qty;
        next.reserved += qty;
        rec.state = order_state::held;
        rec.remaining = next.remaining;
        rec.expires_ms = now + hold.count();
        t.success.push_back(put_request{stock_key(sku), encode_stock(next), {}});
        t.success.push_back(put_request{hold_key(sku, rec.expires_ms, order_id), "", {}});
      }
      put_options po;
      po.lease = lease;  // held: none, never forgotten while held
      t.success.push_back(put_request{order_key(sku, order_id), encode_order(rec), po});
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
      out.status =
          rec.state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
      out.remaining = rec.remaining;
      out.replayed = false;
      co_return std::pair{std::error_code{}, out};
    }
    co_return std::pair{conflict(what), out};
  }

 private:
  /// Adds to `t` the writes that give a held order's units back; its record
  /// is kept with `lease`.
  void give_back(const std::string& sku, std::int64_t order_id, order_record o, stock_level& level,
                 std::int64_t lease, txn_request& t) {
    level.remaining += o.qty;
    level.reserved -= o.qty;
    t.success.push_back(delete_request{hold_key(sku, o.expires_ms, order_id), {}});
    o.state = order_state::rolled_back;
    put_options po;
    po.lease = lease;
    t.success.push_back(put_request{order_key(sku, order_id), encode_order(o), po});
  }

 public:
  boost::asio::awaitable<std::pair<std::error_code, settle_result>> settle(std::string sku,
                                                                           std::int64_t order_id,
                                                                           bool commit) {
    co_await honour_any_cancellation();
    settle_result out;
    const std::string what = op_name(commit ? "commit" : "rollback", sku, order_id);
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                                 "etcd_store: " + what + ": empty sku"),
                          out};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(seckill::errc::operation_aborted),
                                 "etcd_store: " + what + ": cancelled"),
                          out};
    }
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      stock_record s;
      std::optional<order_record> o;
      const std::error_code read_error = co_await snapshot(sku, order_id, s, o, what);
      if (read_error) co_return std::pair{read_error, out};
      if (!o || o->state == order_state::refused || s.mod_revision == 0) {
        co_return std::pair{
            failed(make_error_code(seckill::errc::unknown_order),
                   "etcd_store: " + what + ": " +
                       (!o ? "no order record (never reserved, or forgotten after the retention)"
                        : o->state == order_state::refused ? "the reserve was refused (sold out)"
                                                           : "the sku has no stock record")),
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
      auto [lec, lease] = co_await retention_lease(what);
      if (lec) co_return std::pair{lec, out};
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.compares.push_back(unchanged(order_key(sku, order_id), o->mod_revision));
      stock_level level = s.level;
      const bool expired = o->expires_ms <= now_ms();
      std::error_code answer;
      if (commit && !expired) {
        level.reserved -= o->qty;
        level.committed += o->qty;
        t.success.push_back(delete_request{hold_key(sku, o->expires_ms, order_id), {}});
        auto done = *o;
        done.state = order_state::committed;
        put_options po;
        po.lease = lease;
        t.success.push_back(put_request{order_key(sku, order_id), encode_order(done), po});
      } else {
        give_back(sku, order_id, *o, level, lease, t);
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

  boost::asio::awaitable<std::pair<std::error_code, std::size_t>> reap(std::string sku,
                                                                       std::size_t limit) {
    co_await honour_any_cancellation();
    const std::string what =
        "reap_expired of sku '" + sku + "' (limit " + std::to_string(limit) + ")";
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                                 "etcd_store: " + what + ": empty sku"),
                          std::size_t{0}};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(seckill::errc::operation_aborted),
                                 "etcd_store: " + what + ": cancelled"),
                          std::size_t{0}};
    }
    std::size_t reaped = 0;
    unsigned attempts = 0;
    while (reaped < limit) {
      const std::int64_t now = now_ms();
      range_options ro;
      ro.range_end = hold_prefix(sku) + padded(now + 1);  // expiry <= now
      ro.limit = static_cast<std::int64_t>(std::min(limit - reaped, opts_.reap_batch));
      ro.keys_only = true;
      auto [ec, holds] = co_await client_.async_range(
          hold_prefix(sku), ro, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec)
        co_return std::pair{transport(ec, what + ": listing expired holds", holds.error_message),
                            reaped};
      if (holds.kvs.empty()) break;
      // read the stock and the orders at one revision, then give them all back in one txn
      txn_request read;
      read.success.push_back(range_request{stock_key(sku), {}});
      std::vector<std::int64_t> ids;
      for (const auto& kv : holds.kvs) {
        const auto slash = kv.key.rfind('/');
        std::int64_t id = 0;
        const auto* first = kv.key.data() + slash + 1;
        const auto* last = kv.key.data() + kv.key.size();
        if (slash == std::string::npos || std::from_chars(first, last, id).ptr != last) {
          co_return std::pair{
              failed(make_error_code(seckill::errc::protocol_error),
                     "etcd_store: " + what + ": a hold index key does not end in an order id: '" +
                         kv.key + "'"),
              reaped};
        }
        ids.push_back(id);
        read.success.push_back(range_request{order_key(sku, id), {}});
      }
      auto [rec, rr] =
          co_await client_.async_txn(read, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (rec)
        co_return std::pair{transport(rec, what + ": reading the held orders", rr.error_message),
                            reaped};
      bool complete = rr.responses.size() == ids.size() + 1;
      for (std::size_t i = 0; complete && i <= ids.size(); ++i)
        complete = range_at(rr, i) != nullptr;
      if (!complete) {
        co_return std::pair{failed(make_error_code(seckill::errc::protocol_error),
                                   "etcd_store: " + what + ": etcd answered a read of " +
                                       std::to_string(ids.size() + 1) + " ranges with " +
                                       std::to_string(rr.responses.size()) + " results"),
                            reaped};
      }
      const auto& skv = range_at(rr, 0)->kvs;
      if (skv.empty()) break;
      stock_level level;
      std::string message;
      if (!decode_stock(skv.front().value, level, message)) {
        co_return std::pair{
            failed(make_error_code(seckill::errc::protocol_error), message + " (" + what + ")"),
            reaped};
      }
      std::vector<order_record> orders(ids.size());
      bool any_held = false;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto& okv = range_at(rr, i + 1)->kvs;
        if (okv.empty()) continue;
        if (!decode_order(okv.front().value, orders[i], message)) {
          co_return std::pair{
              failed(make_error_code(seckill::errc::protocol_error), message + " (" + what + ")"),
              reaped};
        }
        orders[i].mod_revision = okv.front().mod_revision;
        any_held = any_held || orders[i].state == order_state::held;
      }
      std::int64_t lease = 0;
      if (any_held) {
        auto [lec, id] = co_await retention_lease(what);
        if (lec) co_return std::pair{lec, reaped};
        lease = id;
      }
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), skv.front().mod_revision));
      std::size_t batch = 0;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (orders[i].mod_revision == 0) {
          t.success.push_back(delete_request{holds.kvs[i].key, {}});  // a stray index entry
          continue;
        }
        t.compares.push_back(unchanged(order_key(sku, ids[i]), orders[i].mod_revision));
        if (orders[i].state != order_state::held) {
          t.success.push_back(delete_request{holds.kvs[i].key, {}});
          continue;
        }
        give_back(sku, ids[i], orders[i], level, lease, t);
        ++batch;
      }
      t.success.push_back(put_request{stock_key(sku), encode_stock(level), {}});
      auto [tec, tr] =
          co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (tec == errc::lease_not_found && lease != 0) {
        forget_lease(lease);
        if (++attempts >= opts_.max_attempts) co_return std::pair{conflict(what), reaped};
        continue;
      }
      if (tec) co_return std::pair{transport(tec, what, tr.error_message), reaped};
      if (!tr.succeeded) {
        conflicts_.fetch_add(1, std::memory_order_relaxed);
        if (++attempts >= opts_.max_attempts) co_return std::pair{conflict(what), reaped};
        continue;
      }
      reaped += batch;
    }
    co_return std::pair{std::error_code{}, reaped};
  }

 private:
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
