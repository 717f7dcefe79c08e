#pragma once
/// @file
/// @brief The buyer calls of `etcd_store` outside transactions
///        (`etcd_stock_txns::set_policy`, `get_policy`, `get_order`,
///        `list_orders`): one put or one read each.

#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/etcd_store_buyer_records.hpp>
#include <seckill/etcd/detail/etcd_store_records.hpp>
#include <seckill/etcd/detail/etcd_store_txn.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::etcd::detail {

template <class Clock>
boost::asio::awaitable<std::error_code> etcd_stock_txns<Clock>::set_policy(std::string sku,
                                                                           sku_policy p) {
  co_await honour_any_cancellation();
  const auto ms = [](sale_time t) { return std::to_string(t.time_since_epoch().count()); };
  const std::string what = "set_policy of sku '" + sku + "' to per_user_limit " +
                           std::to_string(p.per_user_limit) + ", sale window [" + ms(p.sale_start) +
                           ", " + ms(p.sale_end) + ") ms";
  if (sku.empty()) {
    co_return failed(make_error_code(seckill::errc::invalid_argument),
                     "etcd_store: " + what + ": empty sku");
  }
  if (const std::string problem = sku_policy_problem(p); !problem.empty()) {
    co_return failed(make_error_code(seckill::errc::invalid_argument),
                     "etcd_store: " + what + ": " + problem);
  }
  // This node's system clock turns the window's instants into lease TTLs,
  // once; from then on etcd's lessor alone judges them. The start rounds up
  // (the sale never opens early), the end down (it never closes late by the
  // rounding).
  const auto now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  const bool has_start = p.sale_start > sale_time{};
  const bool has_end = p.sale_end < max_sale_time;
  const std::int64_t start_ttl =
      has_start && p.sale_start > now ? ((p.sale_start - now).count() + 999) / 1000 : 0;
  const std::int64_t end_ttl = has_end && p.sale_end > now ? (p.sale_end - now).count() / 1000 : 0;
  const std::array<std::int64_t, 2> ttls{start_ttl, end_ttl};
  const std::array<std::string, 2> names{"sale_start", "sale_end"};
  for (std::size_t i = 0; i < ttls.size(); ++i) {
    const std::int64_t ttl = ttls[i];
    const std::string& name = names[i];
    if (ttl > max_lease_ttl_s) {
      co_return failed(make_error_code(seckill::errc::invalid_argument),
                       "etcd_store: " + what + ": " + name + " is " + std::to_string(ttl) +
                           " s from now (" + std::to_string(now.time_since_epoch().count()) +
                           " ms on this node), beyond etcd's longest lease of " +
                           std::to_string(max_lease_ttl_s) + " s");
    }
  }
  // the leases of the window keys this call replaces: revoked once replaced
  const std::string window_prefix = base(sku) + "window/";
  range_options ro;
  ro.prefix = true;
  auto [rec, old] = co_await client_.async_range(window_prefix, ro,
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
  if (rec) co_return transport(rec, what + ": reading its window keys", old.error_message);
  std::vector<std::int64_t> leases;  // granted here: 0 for none
  for (const std::int64_t ttl : ttls) {
    if (ttl == 0) {
      leases.push_back(0);
      continue;
    }
    auto [gec, g] =
        co_await client_.async_lease_grant(ttl, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (gec) {
      for (const std::int64_t id : leases) co_await revoke_quietly(id);
      co_return transport(gec, what + ": granting a window lease of " + std::to_string(ttl) + " s",
                          g.error_message);
    }
    leases.push_back(g.id);
  }
  txn_request t;
  t.success.push_back(put_request{policy_key(sku), encode_policy(p), {}});
  const std::string not_before = window_prefix + "not_before", until = window_prefix + "until";
  put_options start_lease, end_lease;
  start_lease.lease = leases[0];
  end_lease.lease = leases[1];
  if (start_ttl > 0)
    t.success.push_back(put_request{not_before, "", start_lease});
  else
    t.success.push_back(delete_request{not_before, {}});
  if (end_ttl > 0)
    t.success.push_back(put_request{until, "", end_lease});
  else
    t.success.push_back(delete_request{until, {}});
  auto [ec, r] = co_await client_.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
  // Not revoked on a lost answer: the transaction may have attached them.
  if (ec) co_return transport(ec, what, r.error_message);
  for (const auto& kv : old.kvs) co_await revoke_quietly(kv.lease);
  co_return std::error_code{};
}

template <class Clock>
boost::asio::awaitable<void> etcd_stock_txns<Clock>::revoke_quietly(std::int64_t lease) {
  if (lease == 0) co_return;
  // A lease that cannot be revoked now expires by its TTL, holding no key.
  auto [ec, r] =
      co_await client_.async_lease_revoke(lease, boost::asio::as_tuple(boost::asio::use_awaitable));
  (void)ec;
  (void)r;
}

template <class Clock>
boost::asio::awaitable<std::pair<std::error_code, sku_policy>> etcd_stock_txns<Clock>::get_policy(
    std::string sku) {
  co_await honour_any_cancellation();
  const std::string what = "get_policy of sku '" + sku + "'";
  sku_policy p;
  if (sku.empty()) {
    co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                               "etcd_store: " + what + ": empty sku"),
                        p};
  }
  std::vector<read_value> kvs;
  kvs.push_back(read_value{policy_key(sku)});
  const std::error_code read_error = co_await read(kvs, what);
  if (read_error) co_return std::pair{read_error, p};
  std::string message;
  if (kvs[0].mod_revision != 0 && !decode_policy(kvs[0].value, p, message))
    co_return std::pair{corrupt(message, what), sku_policy{}};
  co_return std::pair{std::error_code{}, p};  // absent: the default
}

template <class Clock>
boost::asio::awaitable<std::pair<std::error_code, order_entry>> etcd_stock_txns<Clock>::get_order(
    std::string sku, std::int64_t id) {
  co_await honour_any_cancellation();
  const std::string what = op_name("get_order", sku, id);
  order_entry entry;
  if (sku.empty() || id <= 0) {
    co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                               "etcd_store: " + what + ": " +
                                   (sku.empty() ? "empty sku" : "the order id is not > 0")),
                        entry};
  }
  std::vector<read_value> kvs;
  kvs.push_back(read_value{recorded_key(sku, id)});
  const std::error_code read_error = co_await read(kvs, what);
  if (read_error) co_return std::pair{read_error, entry};
  if (kvs[0].mod_revision == 0) {
    co_return std::pair{failed(make_error_code(seckill::errc::unknown_order),
                               "etcd_store: " + what + ": no recorded order at '" + kvs[0].key +
                                   "' (held, rolled back, refused or never reserved)"),
                        entry};
  }
  std::string message;
  if (!decode_entry(kvs[0].value, entry, message))
    co_return std::pair{corrupt(message, what), order_entry{}};
  entry.order_id = id;
  co_return std::pair{std::error_code{}, std::move(entry)};
}

template <class Clock>
boost::asio::awaitable<std::pair<std::error_code, order_page>> etcd_stock_txns<Clock>::list_orders(
    std::string sku, std::int64_t after, std::size_t limit) {
  co_await honour_any_cancellation();
  const std::string what = "list_orders of sku '" + sku + "' after " + std::to_string(after) +
                           " (limit " + std::to_string(limit) + ")";
  order_page page;
  const std::string why = sku.empty() ? "empty sku" : order_page_problem(after, limit);
  if (!why.empty()) {
    co_return std::pair{failed(make_error_code(seckill::errc::invalid_argument),
                               "etcd_store: " + what + ": " + why),
                        page};
  }
  if (after == std::numeric_limits<std::int64_t>::max())
    co_return std::pair{std::error_code{}, page};
  const std::string from = recorded_key(sku, after + 1);
  range_options ro;
  ro.range_end = prefix_end(recorded_prefix(sku));
  ro.limit = static_cast<std::int64_t>(limit) + 1;  // one more: whether a next page exists
  auto [ec, r] =
      co_await client_.async_range(from, ro, boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec) co_return std::pair{transport(ec, what, r.error_message), page};
  std::string message;
  for (const auto& kv : r.kvs) {
    if (page.orders.size() == limit) {
      page.next = page.orders.back().order_id;
      break;
    }
    order_entry entry;
    entry.order_id = recorded_id(kv.key);
    if (entry.order_id <= after) {
      co_return std::pair{corrupt("etcd_store: a recorded order's key does not end in an id "
                                  "above the cursor: '" +
                                      kv.key + "'",
                                  what),
                          order_page{}};
    }
    if (!decode_entry(kv.value, entry, message))
      co_return std::pair{corrupt(message, what), order_page{}};
    page.orders.push_back(std::move(entry));
  }
  co_return std::pair{std::error_code{}, std::move(page)};
}

}  // namespace seckill::etcd::detail
