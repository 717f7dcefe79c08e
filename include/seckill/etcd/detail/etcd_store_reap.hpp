#pragma once
/// @file
/// @brief The reaper's batch of `etcd_store` (`etcd_stock_txns::reap`): the
///        holds of a SKU that passed, listed from the hold index, given back
///        `reap_batch` at a time, each batch one transaction of at most
///        etcd's `--max-txn-ops` operations.

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/etcd_store_records.hpp>
#include <seckill/etcd/detail/etcd_store_txn.hpp>
#include <seckill/etcd/types.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::etcd::detail {

template <class Clock>
std::error_code etcd_stock_txns<Clock>::hold_ids(const range_result& holds,
                                                 std::vector<std::int64_t>& ids,
                                                 const std::string& what) {
  ids.clear();
  for (const auto& kv : holds.kvs) {
    const auto slash = kv.key.rfind('/');
    std::int64_t id = 0;
    const auto* first = kv.key.data() + slash + 1;
    const auto* last = kv.key.data() + kv.key.size();
    if (slash == std::string::npos || std::from_chars(first, last, id).ptr != last) {
      return failed(make_error_code(seckill::errc::protocol_error),
                    "etcd_store: " + what + ": a hold index key does not end in an order id: '" +
                        kv.key + "'");
    }
    ids.push_back(id);
  }
  return {};
}

template <class Clock>
std::size_t etcd_stock_txns<Clock>::add_give_backs(
    const std::string& sku, const range_result& holds, const std::vector<std::int64_t>& ids,
    const std::vector<order_record>& orders, std::map<std::string, read_value>& users,
    std::map<std::string, std::int64_t>& units, std::int64_t lease, stock_level& level,
    txn_request& t) {
  std::size_t ops = 1;  // the stock's put, which the caller adds
  std::set<std::string> touched;
  std::size_t batch = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const order_record& o = orders[i];
    const bool held = o.mod_revision != 0 && o.state == order_state::held;
    const bool new_user = held && !o.user.empty() && !touched.contains(o.user);
    const std::size_t needed = held ? 2 + (o.request_id.empty() ? 0 : 1) + (new_user ? 1 : 0) : 1;
    if (ops + needed > max_txn_ops) break;  // the rest in the next round
    ops += needed;
    if (o.mod_revision == 0) {
      t.success.push_back(delete_request{holds.kvs[i].key, {}});  // a stray index entry
      continue;
    }
    t.compares.push_back(unchanged(order_key(sku, ids[i]), o.mod_revision));
    if (!held) {
      t.success.push_back(delete_request{holds.kvs[i].key, {}});
      continue;
    }
    give_back(sku, ids[i], o, level, lease, t);
    if (!o.user.empty()) {
      touched.insert(o.user);
      units[o.user] -= o.qty;
    }
    ++batch;
  }
  for (const auto& user : touched) {
    t.compares.push_back(unchanged(users[user].key, users[user].mod_revision));
    write_units(t, users[user].key, units[user]);
  }
  return batch;
}

template <class Clock>
boost::asio::awaitable<std::pair<std::error_code, std::int64_t>>
etcd_stock_txns<Clock>::raise_fence(const std::string& sku, std::int64_t fence,
                                    const std::string& what) {
  using R = std::pair<std::error_code, std::int64_t>;
  const std::string key = fence_key(sku);
  const std::string value = std::to_string(fence);
  for (unsigned attempts = 0;;) {
    std::vector<read_value> kvs;
    kvs.push_back(read_value{key});
    const std::error_code read_error = co_await read(kvs, what);
    if (read_error) co_return R{read_error, 0};
    std::int64_t seen = 0;
    if (kvs[0].mod_revision != 0) {
      const auto& text = kvs[0].value;
      const auto* last = text.data() + text.size();
      if (text.empty() || std::from_chars(text.data(), last, seen).ptr != last) {
        co_return R{
            corrupt("etcd_store: the fence record '" + key + "' holds '" + text + "', not a number",
                    what),
            0};
      }
    }
    if (seen > fence) {
      co_return R{failed(make_error_code(seckill::errc::fenced_out),
                         "etcd_store: " + what + ": refused, a newer leader reaped with fence " +
                             std::to_string(seen)),
                  0};
    }
    if (seen == fence) co_return R{std::error_code{}, kvs[0].mod_revision};
    txn_request t;
    t.compares.push_back(unchanged(key, kvs[0].mod_revision));
    t.success.push_back(put_request{key, value, {}});
    auto [tec, tr] =
        co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (tec) co_return R{transport(tec, what + ": recording the fence", tr.error_message), 0};
    if (tr.succeeded) co_return R{std::error_code{}, tr.header.revision};
    conflicts_.fetch_add(1, std::memory_order_relaxed);
    if (++attempts >= opts_.max_attempts) co_return R{conflict(what), 0};
  }
}

template <class Clock>
boost::asio::awaitable<std::pair<std::error_code, std::size_t>> etcd_stock_txns<Clock>::reap(
    std::string sku, std::size_t limit, std::optional<std::int64_t> fence) {
  co_await honour_any_cancellation();
  const std::string what = "reap_expired of sku '" + sku + "' (limit " + std::to_string(limit) +
                           (fence ? ", fence " + std::to_string(*fence) : std::string()) + ")";
  std::size_t reaped = 0;
  auto [entered, guard] = co_await enter(sku, what);
  if (entered) co_return std::pair{entered, reaped};
  if (fence && (*fence <= 0 || *fence > max_quantity)) {
    co_return std::pair{
        failed(make_error_code(seckill::errc::invalid_argument),
               "etcd_store: " + what + ": fence " + std::to_string(*fence) +
                   " out of range [1, max_units " + std::to_string(max_quantity) + "]"),
        reaped};
  }
  std::int64_t fence_revision = 0;  // the fence key's, once raised
  if (fence) {
    auto [fec, rev] = co_await raise_fence(sku, *fence, what);
    if (fec) co_return std::pair{fec, reaped};
    fence_revision = rev;
  }
  unsigned attempts = 0;
  while (reaped < limit) {
    // the holds that passed, oldest first
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
    std::vector<std::int64_t> ids;
    const std::error_code ids_error = hold_ids(holds, ids, what);
    if (ids_error) co_return std::pair{ids_error, reaped};
    // the stock and the orders at one revision
    std::vector<read_value> kvs;
    kvs.push_back(read_value{stock_key(sku)});
    for (const auto id : ids) kvs.push_back(read_value{order_key(sku, id)});
    const std::error_code read_error = co_await read(kvs, what);
    if (read_error) co_return std::pair{read_error, reaped};
    if (kvs[0].mod_revision == 0) break;
    stock_level level;
    std::string message;
    if (!decode_stock(kvs[0].value, level, message))
      co_return std::pair{corrupt(message, what), reaped};
    std::vector<order_record> orders(ids.size());
    std::map<std::string, read_value> users;  // of the held orders
    bool any_held = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (kvs[i + 1].mod_revision == 0) continue;
      if (!decode_order(kvs[i + 1].value, orders[i], message))
        co_return std::pair{corrupt(message, what), reaped};
      orders[i].mod_revision = kvs[i + 1].mod_revision;
      if (orders[i].state != order_state::held) continue;
      any_held = true;
      if (!orders[i].user.empty()) users[orders[i].user] = read_value{};
    }
    std::map<std::string, std::int64_t> units;
    if (!users.empty()) {
      const std::error_code units_error = co_await read_units(sku, users, units, what);
      if (units_error) co_return std::pair{units_error, reaped};
    }
    std::int64_t lease = 0;
    if (any_held) {
      auto [lec, id] = co_await retention_lease(what);
      if (lec) co_return std::pair{lec, reaped};
      lease = id;
    }
    // give them all back in one transaction
    txn_request t;
    t.compares.push_back(unchanged(stock_key(sku), kvs[0].mod_revision));
    if (fence) t.compares.push_back(unchanged(fence_key(sku), fence_revision));
    const std::size_t batch =
        add_give_backs(sku, holds, ids, orders, users, units, lease, level, t);
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
      if (fence) {
        // the fence may be what moved: a newer leader's reap refuses this one
        // (fenced_out, even on the last attempt: the caller must stop leading)
        auto [fec, rev] = co_await raise_fence(sku, *fence, what);
        if (fec) co_return std::pair{fec, reaped};
        fence_revision = rev;
      }
      if (++attempts >= opts_.max_attempts) co_return std::pair{conflict(what), reaped};
      continue;
    }
    reaped += batch;
  }
  co_return std::pair{std::error_code{}, reaped};
}

}  // namespace seckill::etcd::detail
