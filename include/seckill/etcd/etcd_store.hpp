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
///   <prefix><sku>/order/<order id>           {"qty":Q,"state":"held",...,"expires":ms,"remaining":R}
///   <prefix><sku>/hold/<expiry ms, 20 digits>/<order id, 20 digits>   index of open holds (the reaper's)
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

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief Settings of an `etcd_store`.
struct etcd_store_options {
  std::string prefix = "seckill/";
  /// Transaction attempts per operation before `errc::txn_conflict` (other
  /// nodes writing the same SKU make a compare fail; this node's own calls
  /// on one SKU queue up and never conflict with each other).
  unsigned max_attempts = 64;
  std::size_t reap_batch = 32;  ///< holds given back per transaction by the reaper
  /// How long a settled order (committed, rolled back, expired) or a refused
  /// one stays recorded: within it a repeated reserve, commit or rollback
  /// answers as the first one did; after it etcd deletes the record (through
  /// a lease, see the file comment) and the order id is forgotten. Held
  /// orders are never forgotten. Measured by etcd's clock, not the store's
  /// `Clock`. Zero keeps every record forever (no lease; the keyspace grows
  /// with every order). Otherwise in [1 s, 36500 days]: anything else is
  /// `errc::invalid_argument` from the constructor.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
  /// Leases per retention period: records settled or refused within one
  /// `order_retention / retention_buckets` window share a lease, and live at
  /// most that window longer than the retention. In [1, 100].
  unsigned retention_buckets = 8;
};

namespace detail {

inline std::string encode_sku(std::string_view sku) {
  std::string out;
  out.reserve(sku.size());
  for (char c : sku) {
    if (c == '/' || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string padded(std::int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020" PRId64, v);
  return buf;
}

enum class order_state : std::uint8_t { held, committed, rolled_back, refused };

inline const char* order_state_name(order_state s) {
  switch (s) {
    case order_state::held: return "held";
    case order_state::committed: return "committed";
    case order_state::rolled_back: return "rolled_back";
    case order_state::refused: return "refused";
  }
  return "?";
}

struct stock_record {
  stock_level level;
  std::int64_t mod_revision = 0;  // 0: absent
};

struct order_record {
  std::int64_t qty = 0;
  order_state state = order_state::held;
  std::int64_t expires_ms = 0;
  std::int64_t remaining = 0;  // the answer given to the reserve
  std::int64_t mod_revision = 0;
};

inline std::string encode_stock(const stock_level& l) {
  json j = {{"remaining", l.remaining}, {"reserved", l.reserved}, {"committed", l.committed}};
  return j.dump();
}

inline bool decode_stock(const std::string& text, stock_level& l, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  auto num = [&](const char* name, std::int64_t& out) {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<std::int64_t>();
    return true;
  };
  if (j.is_discarded() || !j.is_object() || !num("remaining", l.remaining) || !num("reserved", l.reserved) ||
      !num("committed", l.committed)) {
    message = "etcd_store: a stock record does not parse: '" + text.substr(0, 80) + "'";
    return false;
  }
  return true;
}

inline std::string encode_order(const order_record& o) {
  json j = {{"qty", o.qty},
            {"state", order_state_name(o.state)},
            {"expires", o.expires_ms},
            {"remaining", o.remaining}};
  return j.dump();
}

inline bool decode_order(const std::string& text, order_record& o, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  bool ok = !j.is_discarded() && j.is_object();
  auto num = [&](const char* name, std::int64_t& out) {
    const auto it = ok ? j.find(name) : j.end();
    if (!ok || it == j.end() || !it->is_number_integer()) return ok = false;
    out = it->get<std::int64_t>();
    return true;
  };
  num("qty", o.qty);
  num("expires", o.expires_ms);
  num("remaining", o.remaining);
  if (ok) {
    const auto s = j.find("state");
    ok = s != j.end() && s->is_string();
    if (ok) {
      const auto& name = s->get_ref<const std::string&>();
      if (name == "held") o.state = order_state::held;
      else if (name == "committed") o.state = order_state::committed;
      else if (name == "rolled_back") o.state = order_state::rolled_back;
      else if (name == "refused") o.state = order_state::refused;
      else ok = false;
    }
  }
  if (!ok) message = "etcd_store: an order record does not parse: '" + text.substr(0, 80) + "'";
  return ok;
}

/// A FIFO async lock per key: this store's own operations on one SKU run one
/// after the other instead of failing each other's compares.
class keyed_lock {
 public:
  struct waiter {
    explicit waiter(const asio::any_io_executor& ex) : timer(ex) {
      timer.expires_at(std::chrono::steady_clock::time_point::max());
    }
    asio::steady_timer timer;
    bool granted = false;
  };

  asio::awaitable<bool> acquire(asio::any_io_executor ex, std::string key) {
    auto& e = entries_[key];
    if (!e.held) {
      e.held = true;
      co_return true;
    }
    auto w = std::make_shared<waiter>(ex);
    e.waiters.push_back(w);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (w->granted) co_return true;
    auto& again = entries_[key];
    for (auto it = again.waiters.begin(); it != again.waiters.end(); ++it) {
      if (*it == w) {
        again.waiters.erase(it);
        break;
      }
    }
    co_return false;
  }

  void release(const std::string& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) return;
    auto& e = it->second;
    if (e.waiters.empty()) {
      entries_.erase(it);
      return;
    }
    auto w = e.waiters.front();
    e.waiters.pop_front();
    w->granted = true;
    w->timer.cancel();
  }

 private:
  struct entry {
    bool held = false;
    std::deque<std::shared_ptr<waiter>> waiters;
  };
  std::map<std::string, entry> entries_;
};

}  // namespace detail

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
/// `order_retention` of the first call.
///
/// Thread-safety: operations may be started from any thread and the
/// executor may be run by several threads: the store works on a strand of it.
/// `last_error()`, `conflicts()` and `leases_granted()` may be read from any
/// thread.
/// Cost: a reserve, commit or rollback is two round trips (a consistent read
/// of the SKU's records and the guarded write); `async_stock` is one. Once
/// per `order_retention / retention_buckets` window, the first settled or
/// refused order also waits for one LeaseGrant.
template <class Clock = std::chrono::system_clock>
class etcd_store {
 public:
  using executor_type = asio::any_io_executor;

  /// The largest quantity, and the largest total (remaining + reserved +
  /// committed) of a SKU: the contract's `seckill::max_units` (2^53).
  static constexpr std::int64_t max_quantity = seckill::max_units;
  /// The longest hold a reserve accepts: the contract's `seckill::max_hold`.
  static constexpr std::chrono::milliseconds max_hold = seckill::max_hold;
  /// The longest `order_retention`: 36500 days (a lease TTL well within
  /// etcd's limit of 9e9 s).
  static constexpr std::chrono::milliseconds max_order_retention = std::chrono::hours(24 * 36500);

  /// Throws `seckill::error` (`errc::invalid_argument`) when `opts` holds an
  /// `order_retention` or `retention_buckets` out of range (see
  /// `etcd_store_options`), and `client`'s error when `copts` has no endpoint.
  etcd_store(executor_type ex, client_options copts, etcd_store_options opts = {}, Clock clock = {})
      : ex_(ex), strand_(asio::make_strand(ex)), opts_(checked(std::move(opts))),
        client_(strand_, std::move(copts)), clock_(std::move(clock)) {
    if (opts_.max_attempts == 0) opts_.max_attempts = 1;
    if (opts_.reap_batch == 0 || opts_.reap_batch > 40) opts_.reap_batch = 32;
    if (opts_.order_retention > std::chrono::milliseconds::zero()) {
      const auto width_ms = std::max<std::int64_t>(1, opts_.order_retention.count() / opts_.retention_buckets);
      window_ = std::chrono::milliseconds(width_ms);
      lease_ttl_s_ = (opts_.order_retention.count() + width_ms + 999) / 1000;
    }
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] client& get_client() noexcept { return client_; }
  [[nodiscard]] const etcd_store_options& options() const noexcept { return opts_; }
  /// Transactions that lost a compare and were retried (contention from other writers).
  [[nodiscard]] std::uint64_t conflicts() const noexcept { return conflicts_.load(std::memory_order_relaxed); }
  /// Leases granted for settled and refused records (one per window in use).
  [[nodiscard]] std::uint64_t leases_granted() const noexcept {
    return leases_granted_.load(std::memory_order_relaxed);
  }
  /// What the most recent operation that completed with an error found wrong,
  /// with the value seen (e.g. "etcd_store: set_stock of sku 'a' to 5: ...").
  /// Never empty once an operation has failed. Operations failing at once on
  /// several threads overwrite each other's message: the last one stays.
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(message_mutex_);
    return last_error_;
  }

  /// -> void(error_code)
  template <class Token>
  auto async_set_stock(std::string_view sku, std::int64_t quantity, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::string s, std::int64_t q) {
          detail::async_run<std::int64_t>(
              strand_, [this, s = std::move(s), q]() { return set_stock(s, q); },
              [h = std::move(handler)](std::error_code ec, std::int64_t) mutable { std::move(h)(ec); });
        },
        token, std::string(sku), quantity);
  }

  /// -> void(error_code, stock_level)
  template <class Token>
  auto async_stock(std::string_view sku, Token&& token) {
    return detail::async_run<stock_level>(
        strand_, [this, s = std::string(sku)]() { return stock(s); }, std::forward<Token>(token));
  }

  /// -> void(error_code, reserve_result)
  template <class Token>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, Token&& token) {
    return detail::async_run<reserve_result>(
        strand_, [this, s = std::string(sku), quantity, order_id, hold]() {
          return reserve(s, quantity, order_id, hold);
        },
        std::forward<Token>(token));
  }

  /// -> void(error_code, settle_result)
  template <class Token>
  auto async_commit(std::string_view sku, std::int64_t order_id, Token&& token) {
    return detail::async_run<settle_result>(
        strand_, [this, s = std::string(sku), order_id]() { return settle(s, order_id, true); },
        std::forward<Token>(token));
  }

  /// -> void(error_code, settle_result)
  template <class Token>
  auto async_rollback(std::string_view sku, std::int64_t order_id, Token&& token) {
    return detail::async_run<settle_result>(
        strand_, [this, s = std::string(sku), order_id]() { return settle(s, order_id, false); },
        std::forward<Token>(token));
  }

  /// -> void(error_code, std::size_t reaped). Any `limit` is accepted: one
  /// above the number of expired holds (`SIZE_MAX` included) reaps them all,
  /// `reap_batch` per transaction; 0 reaps nothing.
  template <class Token>
  auto async_reap_expired(std::string_view sku, std::size_t limit, Token&& token) {
    return detail::async_run<std::size_t>(
        strand_, [this, s = std::string(sku), limit]() { return reap(s, limit); },
        std::forward<Token>(token));
  }

 private:
  using order_state = detail::order_state;

  static etcd_store_options checked(etcd_store_options o) {
    if (o.order_retention != std::chrono::milliseconds::zero() &&
        (o.order_retention < std::chrono::seconds(1) || o.order_retention > max_order_retention)) {
      throw error(errc::invalid_argument, "etcd_store_options: order_retention " +
                                              std::to_string(o.order_retention.count()) +
                                              " ms out of [1000, " + std::to_string(max_order_retention.count()) +
                                              "] ms (etcd leases count whole seconds; 0 keeps every order)");
    }
    if (o.retention_buckets < 1 || o.retention_buckets > 100) {
      throw error(errc::invalid_argument, "etcd_store_options: retention_buckets " +
                                              std::to_string(o.retention_buckets) + " out of [1, 100]");
    }
    return o;
  }

  std::string base(const std::string& sku) const { return opts_.prefix + detail::encode_sku(sku) + "/"; }
  std::string stock_key(const std::string& sku) const { return base(sku) + "stock"; }
  std::string order_key(const std::string& sku, std::int64_t id) const {
    return base(sku) + "order/" + std::to_string(id);
  }
  std::string hold_prefix(const std::string& sku) const { return base(sku) + "hold/"; }
  std::string hold_key(const std::string& sku, std::int64_t expires_ms, std::int64_t id) const {
    return hold_prefix(sku) + detail::padded(expires_ms) + "/" + detail::padded(id);
  }
  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
  }

  /// Records `message` (or, when empty, what `ec` says) as `last_error()` and returns `ec`.
  std::error_code failed(std::error_code ec, std::string message) {
    if (message.empty()) message = "etcd_store: " + ec.message();
    std::lock_guard lock(message_mutex_);
    last_error_ = std::move(message);
    return ec;
  }

  /// A transport error of the call behind `what`, mapped as the contract says.
  std::error_code transport(std::error_code ec, const std::string& what, const std::string& server_message) {
    return failed(seckill::detail::store_error(ec),
                  "etcd_store: " + what + ": " + (server_message.empty() ? ec.message() : server_message));
  }

  static std::string op_name(const char* op, const std::string& sku, std::int64_t order_id) {
    return std::string(op) + " of order " + std::to_string(order_id) + " on sku '" + sku + "'";
  }

  /// Holds one key of a `keyed_lock` for the scope of an operation.
  class lock_guard {
   public:
    lock_guard(detail::keyed_lock* l, std::string k, bool o) : locks(l), key(std::move(k)), owned(o) {}
    lock_guard(lock_guard&& other) noexcept
        : locks(other.locks), key(std::move(other.key)), owned(std::exchange(other.owned, false)) {}
    lock_guard& operator=(lock_guard&&) = delete;
    ~lock_guard() {
      if (owned) locks->release(key);
    }
    detail::keyed_lock* locks;
    std::string key;
    bool owned;
  };

  asio::awaitable<lock_guard> lock(const std::string& sku) {
    const asio::any_io_executor ex = strand_;
    const bool ok = co_await locks_.acquire(ex, sku);
    co_return lock_guard(&locks_, sku, ok);
  }

  /// The lease for a record settled or refused now (0: records are kept
  /// forever). The current window's lease when it has one; else one granted
  /// now, at most one grant in flight (the other callers wait for it).
  asio::awaitable<std::pair<std::error_code, std::int64_t>> retention_lease(const std::string& what) {
    if (lease_ttl_s_ == 0) co_return std::pair{std::error_code{}, std::int64_t{0}};
    if (lease_id_ != 0 && std::chrono::steady_clock::now() < lease_usable_until_) {
      co_return std::pair{std::error_code{}, lease_id_};
    }
    const asio::any_io_executor ex = strand_;
    const std::string key;  // the one key of lease_lock_
    const bool ok = co_await lease_lock_.acquire(ex, key);
    lock_guard guard(&lease_lock_, key, ok);
    if (!ok) {
      co_return std::pair{failed(make_error_code(errc::operation_aborted),
                                 "etcd_store: " + what + ": cancelled while waiting for a retention lease"),
                          std::int64_t{0}};
    }
    const auto asked_at = std::chrono::steady_clock::now();
    if (lease_id_ != 0 && asked_at < lease_usable_until_) co_return std::pair{std::error_code{}, lease_id_};
    auto [ec, r] = co_await client_.async_lease_grant(lease_ttl_s_, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      co_return std::pair{transport(ec, what + ": granting a retention lease of " + std::to_string(lease_ttl_s_) + " s",
                                    r.error_message),
                          std::int64_t{0}};
    }
    // The TTL counts from the grant, which etcd applied after `asked_at`: a
    // record written before `asked_at + ttl - retention` lives the retention.
    const auto slack = std::chrono::seconds(r.ttl) - opts_.order_retention;
    if (slack <= std::chrono::milliseconds::zero()) {
      co_return std::pair{failed(make_error_code(errc::protocol_error),
                                 "etcd_store: " + what + ": etcd granted lease " + std::to_string(r.id) +
                                     " a TTL of " + std::to_string(r.ttl) + " s, asked " +
                                     std::to_string(lease_ttl_s_) + " s, not above the retention of " +
                                     std::to_string(opts_.order_retention.count()) + " ms"),
                          std::int64_t{0}};
    }
    lease_id_ = r.id;
    lease_usable_until_ = asked_at + std::min<std::chrono::milliseconds>(
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
  asio::awaitable<std::error_code> snapshot(const std::string& sku, std::optional<std::int64_t> order_id,
                                            detail::stock_record& stock, std::optional<detail::order_record>& order,
                                            const std::string& what) {
    txn_request t;
    t.success.push_back(range_request{stock_key(sku), {}});
    if (order_id) t.success.push_back(range_request{order_key(sku, *order_id), {}});
    auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return transport(ec, what + ": reading its records", r.error_message);
    stock = {};
    order.reset();
    std::string message;
    const auto& skv = std::get<range_result>(r.responses.at(0)).kvs;
    if (!skv.empty()) {
      if (!detail::decode_stock(skv.front().value, stock.level, message)) {
        co_return failed(make_error_code(errc::protocol_error), message + " (" + what + ")");
      }
      stock.mod_revision = skv.front().mod_revision;
    }
    if (order_id) {
      const auto& okv = std::get<range_result>(r.responses.at(1)).kvs;
      if (!okv.empty()) {
        auto& o = order.emplace();
        if (!detail::decode_order(okv.front().value, o, message)) {
          co_return failed(make_error_code(errc::protocol_error), message + " (" + what + ")");
        }
        o.mod_revision = okv.front().mod_revision;
      }
    }
    co_return std::error_code{};
  }

  /// The compare for a record read at `mod_revision` (0: it must not exist).
  static compare unchanged(std::string key, std::int64_t mod_revision) {
    return mod_revision == 0 ? compare::missing(std::move(key))
                             : compare::mod_revision(std::move(key), compare::result::equal, mod_revision);
  }

  std::error_code conflict(const std::string& what) {
    return failed(make_error_code(errc::txn_conflict),
                  "etcd_store: " + what + ": " + std::to_string(opts_.max_attempts) +
                      " transaction attempts lost their compare to other writers");
  }

  asio::awaitable<std::pair<std::error_code, std::int64_t>> set_stock(std::string sku, std::int64_t qty) {
    const std::string what = "set_stock of sku '" + sku + "' to " + std::to_string(qty);
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(errc::invalid_argument), "etcd_store: " + what + ": empty sku"),
                          std::int64_t{0}};
    }
    if (qty < 0 || qty > max_quantity) {
      co_return std::pair{failed(make_error_code(errc::invalid_argument),
                                 "etcd_store: " + what + ": quantity " + std::to_string(qty) + " out of [0, " +
                                     std::to_string(max_quantity) + "]"),
                          std::int64_t{0}};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(errc::operation_aborted), "etcd_store: " + what + ": cancelled"),
                          std::int64_t{0}};
    }
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> none;
      if (auto ec = co_await snapshot(sku, std::nullopt, s, none, what)) co_return std::pair{ec, std::int64_t{0}};
      // the total must stay within max_quantity, so no later sum overflows
      const std::int64_t held = s.level.reserved, sold = s.level.committed;
      if (held < 0 || sold < 0 || held > max_quantity - qty || sold > max_quantity - qty - held) {
        const std::int64_t room = held < 0 || sold < 0 || held > max_quantity || sold > max_quantity - held
                                      ? 0
                                      : max_quantity - held - sold;
        co_return std::pair{failed(make_error_code(errc::invalid_argument),
                                   "etcd_store: " + what + ": with " + std::to_string(held) + " reserved and " +
                                       std::to_string(sold) + " committed the total would exceed " +
                                       std::to_string(max_quantity) + "; at most " + std::to_string(room) +
                                       " can be set"),
                            std::int64_t{0}};
      }
      stock_level next = s.level;
      next.remaining = qty;
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(next), {}});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{transport(ec, what, r.error_message), std::int64_t{0}};
      if (r.succeeded) co_return std::pair{std::error_code{}, r.header.revision};
      conflicts_.fetch_add(1, std::memory_order_relaxed);
    }
    co_return std::pair{conflict(what), std::int64_t{0}};
  }

  asio::awaitable<std::pair<std::error_code, stock_level>> stock(std::string sku) {
    const std::string what = "stock of sku '" + sku + "'";
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(errc::invalid_argument), "etcd_store: " + what + ": empty sku"),
                          stock_level{}};
    }
    detail::stock_record s;
    std::optional<detail::order_record> none;
    if (auto ec = co_await snapshot(sku, std::nullopt, s, none, what)) co_return std::pair{ec, stock_level{}};
    if (s.mod_revision == 0) {
      co_return std::pair{failed(make_error_code(errc::unknown_sku),
                                 "etcd_store: " + what + ": no stock record at '" + stock_key(sku) + "'"),
                          stock_level{}};
    }
    co_return std::pair{std::error_code{}, s.level};
  }

  asio::awaitable<std::pair<std::error_code, reserve_result>> reserve(std::string sku, std::int64_t qty,
                                                                      std::int64_t order_id,
                                                                      std::chrono::milliseconds hold) {
    reserve_result out;
    const std::string what = op_name("reserve", sku, order_id);
    auto bad = [&](std::string why) {
      return std::pair{failed(make_error_code(errc::invalid_argument), "etcd_store: " + what + ": " + why), out};
    };
    if (sku.empty()) co_return bad("empty sku");
    if (qty <= 0 || qty > max_quantity) {
      co_return bad("quantity " + std::to_string(qty) + " out of [1, " + std::to_string(max_quantity) + "]");
    }
    if (hold <= std::chrono::milliseconds::zero() || hold > max_hold) {
      co_return bad("hold " + std::to_string(hold.count()) + " ms out of [1, " + std::to_string(max_hold.count()) +
                    "] ms");
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(errc::operation_aborted), "etcd_store: " + what + ": cancelled"),
                          out};
    }
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> o;
      if (auto ec = co_await snapshot(sku, order_id, s, o, what)) co_return std::pair{ec, out};
      if (o) {  // a replay: the first answer
        out.status = o->state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
        out.remaining = o->remaining;
        out.replayed = true;
        co_return std::pair{std::error_code{}, out};
      }
      if (s.mod_revision == 0) {
        out.status = reserve_status::unknown_sku;
        out.remaining = 0;
        co_return std::pair{std::error_code{}, out};
      }
      detail::order_record rec;
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
          co_return bad("the clock reads " + std::to_string(now) + " ms since its epoch; a hold of " +
                        std::to_string(hold.count()) + " ms from then does not fit in [0, INT64_MAX] ms");
        }
        stock_level next = s.level;
        next.remaining -= qty;
        next.reserved += qty;
        rec.state = order_state::held;
        rec.remaining = next.remaining;
        rec.expires_ms = now + hold.count();
        t.success.push_back(put_request{stock_key(sku), detail::encode_stock(next), {}});
        t.success.push_back(put_request{hold_key(sku, rec.expires_ms, order_id), "", {}});
      }
      put_options po;
      po.lease = lease;  // held: none, never forgotten while held
      t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(rec), po});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (ec == errc::lease_not_found && lease != 0) {
        forget_lease(lease);
        continue;
      }
      if (ec) co_return std::pair{transport(ec, what, r.error_message), out};
      if (!r.succeeded) {
        conflicts_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      out.status = rec.state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
      out.remaining = rec.remaining;
      out.replayed = false;
      co_return std::pair{std::error_code{}, out};
    }
    co_return std::pair{conflict(what), out};
  }

  /// Adds to `t` the writes that give a held order's units back; its record
  /// is kept with `lease`.
  void give_back(const std::string& sku, std::int64_t order_id, detail::order_record o, stock_level& level,
                 std::int64_t lease, txn_request& t) {
    level.remaining += o.qty;
    level.reserved -= o.qty;
    t.success.push_back(delete_request{hold_key(sku, o.expires_ms, order_id), {}});
    o.state = order_state::rolled_back;
    put_options po;
    po.lease = lease;
    t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(o), po});
  }

  asio::awaitable<std::pair<std::error_code, settle_result>> settle(std::string sku, std::int64_t order_id,
                                                                    bool commit) {
    settle_result out;
    const std::string what = op_name(commit ? "commit" : "rollback", sku, order_id);
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(errc::invalid_argument), "etcd_store: " + what + ": empty sku"),
                          out};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(errc::operation_aborted), "etcd_store: " + what + ": cancelled"),
                          out};
    }
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> o;
      if (auto ec = co_await snapshot(sku, order_id, s, o, what)) co_return std::pair{ec, out};
      if (!o || o->state == order_state::refused || s.mod_revision == 0) {
        co_return std::pair{failed(make_error_code(errc::unknown_order),
                                   "etcd_store: " + what + ": " +
                                       (!o ? "no order record (never reserved, or forgotten after the retention)"
                                           : o->state == order_state::refused ? "the reserve was refused (sold out)"
                                                                              : "the sku has no stock record")),
                            out};
      }
      switch (o->state) {
        case order_state::committed:
          if (!commit) {
            co_return std::pair{failed(make_error_code(errc::order_committed),
                                       "etcd_store: " + what + ": the order is committed"),
                                out};
          }
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        case order_state::rolled_back:
          if (commit) {
            co_return std::pair{failed(make_error_code(errc::order_rolled_back),
                                       "etcd_store: " + what + ": the order was rolled back (or its hold passed)"),
                                out};
          }
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        default: break;
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
        t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(done), po});
      } else {
        give_back(sku, order_id, *o, level, lease, t);
        if (commit) answer = errc::order_rolled_back;  // the hold passed: as the reaper would do
      }
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(level), {}});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
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
        answer = failed(answer, "etcd_store: " + what + ": the hold passed at " + std::to_string(o->expires_ms) +
                                    " ms; its units went back to stock");
      }
      co_return std::pair{answer, out};
    }
    co_return std::pair{conflict(what), out};
  }

  asio::awaitable<std::pair<std::error_code, std::size_t>> reap(std::string sku, std::size_t limit) {
    const std::string what = "reap_expired of sku '" + sku + "' (limit " + std::to_string(limit) + ")";
    if (sku.empty()) {
      co_return std::pair{failed(make_error_code(errc::invalid_argument), "etcd_store: " + what + ": empty sku"),
                          std::size_t{0}};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) {
      co_return std::pair{failed(make_error_code(errc::operation_aborted), "etcd_store: " + what + ": cancelled"),
                          std::size_t{0}};
    }
    std::size_t reaped = 0;
    unsigned attempts = 0;
    while (reaped < limit) {
      const std::int64_t now = now_ms();
      range_options ro;
      ro.range_end = hold_prefix(sku) + detail::padded(now + 1);  // expiry <= now
      ro.limit = static_cast<std::int64_t>(std::min(limit - reaped, opts_.reap_batch));
      ro.keys_only = true;
      auto [ec, holds] = co_await client_.async_range(hold_prefix(sku), ro, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{transport(ec, what + ": listing expired holds", holds.error_message), reaped};
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
          co_return std::pair{failed(make_error_code(errc::protocol_error),
                                     "etcd_store: " + what + ": a hold index key does not end in an order id: '" +
                                         kv.key + "'"),
                              reaped};
        }
        ids.push_back(id);
        read.success.push_back(range_request{order_key(sku, id), {}});
      }
      auto [rec, rr] = co_await client_.async_txn(read, asio::as_tuple(asio::use_awaitable));
      if (rec) co_return std::pair{transport(rec, what + ": reading the held orders", rr.error_message), reaped};
      const auto& skv = std::get<range_result>(rr.responses.at(0)).kvs;
      if (skv.empty()) break;
      stock_level level;
      std::string message;
      if (!detail::decode_stock(skv.front().value, level, message)) {
        co_return std::pair{failed(make_error_code(errc::protocol_error), message + " (" + what + ")"), reaped};
      }
      std::vector<detail::order_record> orders(ids.size());
      bool any_held = false;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto& okv = std::get<range_result>(rr.responses.at(i + 1)).kvs;
        if (okv.empty()) continue;
        if (!detail::decode_order(okv.front().value, orders[i], message)) {
          co_return std::pair{failed(make_error_code(errc::protocol_error), message + " (" + what + ")"), reaped};
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
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(level), {}});
      auto [tec, tr] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
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

  executor_type ex_;
  asio::strand<executor_type> strand_;
  etcd_store_options opts_;
  client client_;
  Clock clock_;
  detail::keyed_lock locks_;
  std::atomic<std::uint64_t> conflicts_{0};
  // the retention lease of the current window (on the strand)
  std::chrono::milliseconds window_{0};
  std::int64_t lease_ttl_s_ = 0;  // 0: records are kept forever
  std::int64_t lease_id_ = 0;
  std::chrono::steady_clock::time_point lease_usable_until_{};
  detail::keyed_lock lease_lock_;
  std::atomic<std::uint64_t> leases_granted_{0};
  mutable std::mutex message_mutex_;
  std::string last_error_;
};

static_assert(stock_store<etcd_store<>>);

}  // namespace seckill::etcd
