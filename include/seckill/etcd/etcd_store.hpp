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

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
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

/// @brief `stock_store` on etcd (see the file comment for the key layout).
///
/// Every change is one etcd transaction guarded by the mod revisions of the
/// records it read, so concurrent writers on other nodes can never oversell:
/// a writer that lost the race reads again and retries. Holds expire by
/// `Clock` (milliseconds since its epoch, stored in the records: nodes must
/// share the clock, e.g. the system clock).
///
/// Thread-safety: operations may be started from any thread and the
/// executor may be run by several threads: the store works on a strand of it.
/// Cost: a reserve, commit or rollback is two round trips (a consistent read
/// of the SKU's records and the guarded write); `async_stock` is one.
template <class Clock = std::chrono::system_clock>
class etcd_store {
 public:
  using executor_type = asio::any_io_executor;

  etcd_store(executor_type ex, client_options copts, etcd_store_options opts = {}, Clock clock = {})
      : ex_(ex), strand_(asio::make_strand(ex)), client_(strand_, std::move(copts)),
        opts_(std::move(opts)), clock_(std::move(clock)) {
    if (opts_.max_attempts == 0) opts_.max_attempts = 1;
    if (opts_.reap_batch == 0 || opts_.reap_batch > 40) opts_.reap_batch = 32;
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] client& get_client() noexcept { return client_; }
  [[nodiscard]] const etcd_store_options& options() const noexcept { return opts_; }
  /// Transactions that lost a compare and were retried (contention from other writers).
  [[nodiscard]] std::uint64_t conflicts() const noexcept { return conflicts_; }

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

  /// -> void(error_code, std::size_t reaped)
  template <class Token>
  auto async_reap_expired(std::string_view sku, std::size_t limit, Token&& token) {
    return detail::async_run<std::size_t>(
        strand_, [this, s = std::string(sku), limit]() { return reap(s, limit); },
        std::forward<Token>(token));
  }

 private:
  using order_state = detail::order_state;

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

  /// Holds this store's per-SKU lock for the scope of an operation.
  class lock_guard {
   public:
    lock_guard(etcd_store* s, std::string k, bool o) : self(s), key(std::move(k)), owned(o) {}
    lock_guard(lock_guard&& other) noexcept
        : self(other.self), key(std::move(other.key)), owned(std::exchange(other.owned, false)) {}
    lock_guard& operator=(lock_guard&&) = delete;
    ~lock_guard() {
      if (owned) self->locks_.release(key);
    }
    etcd_store* self;
    std::string key;
    bool owned;
  };

  asio::awaitable<lock_guard> lock(const std::string& sku) {
    const asio::any_io_executor ex = strand_;
    const bool ok = co_await locks_.acquire(ex, sku);
    co_return lock_guard(this, sku, ok);
  }

  /// A consistent read of the stock record and (optionally) one order record.
  asio::awaitable<std::error_code> snapshot(const std::string& sku, std::int64_t order_id,
                                            detail::stock_record& stock, std::optional<detail::order_record>& order,
                                            std::string& message) {
    txn_request t;
    t.success.push_back(range_request{stock_key(sku), {}});
    if (order_id != 0) t.success.push_back(range_request{order_key(sku, order_id), {}});
    auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      message = r.error_message;
      co_return seckill::detail::store_error(ec);
    }
    stock = {};
    order.reset();
    const auto& skv = std::get<range_result>(r.responses.at(0)).kvs;
    if (!skv.empty()) {
      if (!detail::decode_stock(skv.front().value, stock.level, message)) co_return errc::protocol_error;
      stock.mod_revision = skv.front().mod_revision;
    }
    if (order_id != 0) {
      const auto& okv = std::get<range_result>(r.responses.at(1)).kvs;
      if (!okv.empty()) {
        auto& o = order.emplace();
        if (!detail::decode_order(okv.front().value, o, message)) co_return errc::protocol_error;
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

  asio::awaitable<std::pair<std::error_code, std::int64_t>> set_stock(std::string sku, std::int64_t qty) {
    if (sku.empty() || qty < 0) co_return std::pair{make_error_code(errc::invalid_argument), std::int64_t{0}};
    auto guard = co_await lock(sku);
    if (!guard.owned) co_return std::pair{make_error_code(errc::operation_aborted), std::int64_t{0}};
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> none;
      std::string message;
      if (auto ec = co_await snapshot(sku, 0, s, none, message)) co_return std::pair{ec, std::int64_t{0}};
      stock_level next = s.level;
      next.remaining = qty;
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(next), {}});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{seckill::detail::store_error(ec), std::int64_t{0}};
      if (r.succeeded) co_return std::pair{std::error_code{}, r.header.revision};
      ++conflicts_;
    }
    co_return std::pair{make_error_code(errc::txn_conflict), std::int64_t{0}};
  }

  asio::awaitable<std::pair<std::error_code, stock_level>> stock(std::string sku) {
    if (sku.empty()) co_return std::pair{make_error_code(errc::invalid_argument), stock_level{}};
    detail::stock_record s;
    std::optional<detail::order_record> none;
    std::string message;
    if (auto ec = co_await snapshot(sku, 0, s, none, message)) co_return std::pair{ec, stock_level{}};
    if (s.mod_revision == 0) co_return std::pair{make_error_code(errc::unknown_sku), stock_level{}};
    co_return std::pair{std::error_code{}, s.level};
  }

  asio::awaitable<std::pair<std::error_code, reserve_result>> reserve(std::string sku, std::int64_t qty,
                                                                      std::int64_t order_id,
                                                                      std::chrono::milliseconds hold) {
    reserve_result out;
    if (sku.empty() || qty <= 0 || hold <= std::chrono::milliseconds::zero()) {
      co_return std::pair{make_error_code(errc::invalid_argument), out};
    }
    auto guard = co_await lock(sku);
    if (!guard.owned) co_return std::pair{make_error_code(errc::operation_aborted), out};
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> o;
      std::string message;
      if (auto ec = co_await snapshot(sku, order_id, s, o, message)) co_return std::pair{ec, out};
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
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), s.mod_revision));
      t.compares.push_back(compare::missing(order_key(sku, order_id)));
      if (s.level.remaining < qty) {
        rec.state = order_state::refused;
        rec.remaining = s.level.remaining;
      } else {
        stock_level next = s.level;
        next.remaining -= qty;
        next.reserved += qty;
        rec.state = order_state::held;
        rec.remaining = next.remaining;
        rec.expires_ms = now_ms() + hold.count();
        t.success.push_back(put_request{stock_key(sku), detail::encode_stock(next), {}});
        t.success.push_back(put_request{hold_key(sku, rec.expires_ms, order_id), "", {}});
      }
      t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(rec), {}});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{seckill::detail::store_error(ec), out};
      if (!r.succeeded) {
        ++conflicts_;
        continue;
      }
      out.status = rec.state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
      out.remaining = rec.remaining;
      out.replayed = false;
      co_return std::pair{std::error_code{}, out};
    }
    co_return std::pair{make_error_code(errc::txn_conflict), out};
  }

  /// Adds to `t` the writes that give a held order's units back.
  void give_back(const std::string& sku, std::int64_t order_id, detail::order_record o, stock_level& level,
                 txn_request& t) {
    level.remaining += o.qty;
    level.reserved -= o.qty;
    t.success.push_back(delete_request{hold_key(sku, o.expires_ms, order_id), {}});
    o.state = order_state::rolled_back;
    t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(o), {}});
  }

  asio::awaitable<std::pair<std::error_code, settle_result>> settle(std::string sku, std::int64_t order_id,
                                                                    bool commit) {
    settle_result out;
    if (sku.empty()) co_return std::pair{make_error_code(errc::invalid_argument), out};
    auto guard = co_await lock(sku);
    if (!guard.owned) co_return std::pair{make_error_code(errc::operation_aborted), out};
    for (unsigned attempt = 0; attempt < opts_.max_attempts; ++attempt) {
      detail::stock_record s;
      std::optional<detail::order_record> o;
      std::string message;
      if (auto ec = co_await snapshot(sku, order_id, s, o, message)) co_return std::pair{ec, out};
      if (!o || o->state == order_state::refused || s.mod_revision == 0) {
        co_return std::pair{make_error_code(errc::unknown_order), out};
      }
      switch (o->state) {
        case order_state::committed:
          if (!commit) co_return std::pair{make_error_code(errc::order_committed), out};
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        case order_state::rolled_back:
          if (commit) co_return std::pair{make_error_code(errc::order_rolled_back), out};
          out.status = settle_status::already;
          co_return std::pair{std::error_code{}, out};
        default: break;
      }
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
        t.success.push_back(put_request{order_key(sku, order_id), detail::encode_order(done), {}});
      } else {
        give_back(sku, order_id, *o, level, t);
        if (commit) answer = errc::order_rolled_back;  // the hold passed: as the reaper would do
      }
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(level), {}});
      auto [ec, r] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{seckill::detail::store_error(ec), out};
      if (!r.succeeded) {
        ++conflicts_;
        continue;
      }
      out.status = settle_status::done;
      co_return std::pair{answer, out};
    }
    co_return std::pair{make_error_code(errc::txn_conflict), out};
  }

  asio::awaitable<std::pair<std::error_code, std::size_t>> reap(std::string sku, std::size_t limit) {
    if (sku.empty()) co_return std::pair{make_error_code(errc::invalid_argument), std::size_t{0}};
    auto guard = co_await lock(sku);
    if (!guard.owned) co_return std::pair{make_error_code(errc::operation_aborted), std::size_t{0}};
    std::size_t reaped = 0;
    unsigned attempts = 0;
    while (reaped < limit) {
      const std::int64_t now = now_ms();
      range_options ro;
      ro.range_end = hold_prefix(sku) + detail::padded(now + 1);  // expiry <= now
      ro.limit = static_cast<std::int64_t>(std::min(limit - reaped, opts_.reap_batch));
      ro.keys_only = true;
      auto [ec, holds] = co_await client_.async_range(hold_prefix(sku), ro, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::pair{seckill::detail::store_error(ec), reaped};
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
          co_return std::pair{make_error_code(errc::protocol_error), reaped};
        }
        ids.push_back(id);
        read.success.push_back(range_request{order_key(sku, id), {}});
      }
      auto [rec, rr] = co_await client_.async_txn(read, asio::as_tuple(asio::use_awaitable));
      if (rec) co_return std::pair{seckill::detail::store_error(rec), reaped};
      const auto& skv = std::get<range_result>(rr.responses.at(0)).kvs;
      if (skv.empty()) break;
      stock_level level;
      std::string message;
      if (!detail::decode_stock(skv.front().value, level, message)) {
        co_return std::pair{make_error_code(errc::protocol_error), reaped};
      }
      txn_request t;
      t.compares.push_back(unchanged(stock_key(sku), skv.front().mod_revision));
      std::size_t batch = 0;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto& okv = std::get<range_result>(rr.responses.at(i + 1)).kvs;
        if (okv.empty()) {
          t.success.push_back(delete_request{holds.kvs[i].key, {}});  // a stray index entry
          continue;
        }
        detail::order_record o;
        if (!detail::decode_order(okv.front().value, o, message)) {
          co_return std::pair{make_error_code(errc::protocol_error), reaped};
        }
        t.compares.push_back(unchanged(order_key(sku, ids[i]), okv.front().mod_revision));
        if (o.state != order_state::held) {
          t.success.push_back(delete_request{holds.kvs[i].key, {}});
          continue;
        }
        give_back(sku, ids[i], o, level, t);
        ++batch;
      }
      t.success.push_back(put_request{stock_key(sku), detail::encode_stock(level), {}});
      auto [tec, tr] = co_await client_.async_txn(t, asio::as_tuple(asio::use_awaitable));
      if (tec) co_return std::pair{seckill::detail::store_error(tec), reaped};
      if (!tr.succeeded) {
        ++conflicts_;
        if (++attempts >= opts_.max_attempts) co_return std::pair{make_error_code(errc::txn_conflict), reaped};
        continue;
      }
      reaped += batch;
    }
    co_return std::pair{std::error_code{}, reaped};
  }

  executor_type ex_;
  asio::strand<executor_type> strand_;
  client client_;
  etcd_store_options opts_;
  Clock clock_;
  detail::keyed_lock locks_;
  std::uint64_t conflicts_ = 0;
};

static_assert(stock_store<etcd_store<>>);

}  // namespace seckill::etcd
