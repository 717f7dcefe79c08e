#pragma once
/// @file
/// @brief `async_reconcile`: the audit of one SKU of any `stock_store`:
///        the units committed equal the sum of the orders recorded, and no
///        user bought more than the SKU's per-user limit.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seckill {

/// @brief What `async_reconcile` found for one SKU.
struct reconcile_report {
  std::int64_t committed_units = 0;  ///< `stock_level::committed`, read after the orders
  std::int64_t recorded_units = 0;   ///< the sum of the recorded orders' quantities
  std::size_t orders = 0;            ///< recorded orders
  std::int64_t per_user_limit = 0;   ///< the SKU's policy when checked (0: none)
  /// Users whose recorded units exceed the limit, with those units, by name.
  std::vector<std::pair<std::string, std::int64_t>> users_over_limit;

  /// Every unit sold has its order, every order its units, every user their limit.
  [[nodiscard]] bool ok() const noexcept {
    return committed_units == recorded_units && users_over_limit.empty();
  }
};

namespace detail {

template <class Store>
boost::asio::awaitable<std::pair<std::error_code, reconcile_report>> reconcile_body(
    Store& store, std::string sku, std::size_t page) {
  using R = std::pair<std::error_code, reconcile_report>;
  constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  reconcile_report report;
  auto [pec, policy] = co_await store.async_get_policy(sku, tuple);
  if (pec) co_return R{pec, {}};
  report.per_user_limit = policy.per_user_limit;
  std::unordered_map<std::string, std::int64_t> per_user;
  std::int64_t after = 0;
  for (;;) {
    auto [ec, orders] = co_await store.async_list_orders(sku, after, page, tuple);
    if (ec) co_return R{ec, {}};
    for (const order_entry& o : orders.orders) {
      report.recorded_units += o.quantity;
      ++report.orders;
      if (!o.user.empty()) per_user[o.user] += o.quantity;
    }
    if (orders.next == 0) break;
    after = orders.next;
  }
  auto [sec, level] = co_await store.async_stock(sku, tuple);
  if (sec) co_return R{sec, {}};
  report.committed_units = level.committed;
  if (policy.per_user_limit > 0) {
    for (auto& [user, units] : per_user)
      if (units > policy.per_user_limit) report.users_over_limit.emplace_back(user, units);
    std::sort(report.users_over_limit.begin(), report.users_over_limit.end());
  }
  co_return R{{}, std::move(report)};
}

}  // namespace detail

/// @brief Audits `sku` on `store`: reads its policy, every recorded order (in
///        pages of `max_order_page`) and then its stock, and
///        completes with `void(std::error_code, reconcile_report)`.
///
/// Run it on a SKU with no commit in flight (after the sale, or on the leader
/// between reaps): a commit that lands between the order pages and the stock
/// read shows as one more unit committed than recorded, never the other way
/// round. A store error completes the operation with it and an empty report.
/// A per-user limit lowered after the sale may flag users who bought within
/// the limit of their day.
///
/// Thread-safety: as the store's operations. Cost: one round trip per page of
/// orders plus two, memory for one page and one counter per user.
template <
    stock_store Store,
    boost::asio::completion_token_for<void(std::error_code, reconcile_report)> CompletionToken =
        boost::asio::default_completion_token_t<typename Store::executor_type>>
auto async_reconcile(Store& store, std::string_view sku,
                     CompletionToken&& token = CompletionToken()) {
  return detail::async_spawn<void(std::error_code, reconcile_report)>(
      store.get_executor(), detail::reconcile_body(store, std::string(sku), max_order_page), token);
}

}  // namespace seckill
