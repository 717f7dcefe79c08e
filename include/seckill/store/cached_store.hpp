#pragma once
/// @file
/// @brief `cached_store<Store>`: a `stock_store` that refuses reserves of a
///        SKU its `stock_cache` knows to be sold out without asking `Store`,
///        and forwards everything else.

#include <seckill/error.hpp>
#include <seckill/store/stock_cache.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill {

/// @brief Decorates a `stock_store` with a `stock_cache`: a reserve of a SKU
///        the cache holds as sold out completes at once with
///        `reserve_status::sold_out` (remaining 0), with no round trip.
///
/// Who is refused locally: only reserves without a `request_id`. A retry
/// carrying a request id may be the second attempt of a purchase whose first
/// attempt took the last unit (its answer lost to a timeout); the store
/// answers it `replayed` with that order, and a local `sold_out` would tell
/// the buyer the opposite of what the store holds. Such a reserve goes to the
/// store, which checks the binding and the stock in one step: a lookup of the
/// binding alone would cost the same round trip.
///
/// A reserve repeated with the same order id but no request id is refused
/// locally like any other: if its first attempt took units and the answer was
/// lost, those units stay held until a rollback (what `purchase_engine` sends
/// after any reserve without a definite answer) or the reaper gives them back.
///
/// The cache is fed by this decorator's own answers (a reserve's `remaining`,
/// a stock read, a `set_stock`; a rollback, a commit refused after its hold
/// and a reap forget the count, since units came back) and, across nodes, by
/// a store feed (`redis::stock_feed`, `etcd::stock_feed`). In one process
/// over a `memory_store` the own answers are the whole truth.
///
/// Never oversells (every reserve that takes units is the store's); refuses
/// wrongly only on a stale sold-out entry, which `stock_cache_options::
/// trust_sold_out_for` bounds (docs/purchase.md, "Stock cache").
///
/// Thread-safety: as `Store`; the cache is thread-safe. Cost: a cache read
/// per reserve; a local refusal is one post of the handler. `Store` and the
/// cache must outlive the decorator.
template <stock_store Store>
class cached_store {
 public:
  using executor_type = typename Store::executor_type;

  cached_store(Store& store, stock_cache& cache) : store_(store), cache_(cache) {}
  cached_store(const cached_store&) = delete;
  cached_store& operator=(const cached_store&) = delete;

  [[nodiscard]] executor_type get_executor() const { return store_.get_executor(); }
  [[nodiscard]] Store& next_layer() noexcept { return store_; }
  [[nodiscard]] stock_cache& cache() noexcept { return cache_; }
  /// Reserves answered sold out from the cache, with no round trip.
  [[nodiscard]] std::uint64_t local_refusals() const noexcept {
    return local_refusals_.load(std::memory_order_relaxed);
  }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_stock(std::string_view sku, std::int64_t quantity,
                       CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_set_stock(sku, quantity, boost::asio::deferred)(
        boost::asio::deferred([s = std::move(s), quantity](std::error_code ec) {
          if (!ec) s.update(quantity);
          return boost::asio::deferred.values(ec);
        }))(std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_stock(sku, boost::asio::deferred)(
        boost::asio::deferred([s = std::move(s)](std::error_code ec, stock_level level) {
          if (!ec) s.update(level.remaining);
          return boost::asio::deferred.values(ec, level);
        }))(std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return async_reserve(sku,
                         reserve_request{.order_id = order_id, .quantity = quantity, .hold = hold},
                         std::forward<CompletionToken>(token));
  }

  /// Refused locally when the cache says sold out, the request has no
  /// request id and is well formed (a malformed one goes to the store, which
  /// names what is wrong); else the store's answer, which feeds the cache.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& request,
                     CompletionToken&& token = CompletionToken()) {
    using signature = void(std::error_code, reserve_result);
    return boost::asio::async_initiate<CompletionToken, signature>(
        [this, sku](auto handler, const reserve_request& r) {
          // decided when the operation starts (a deferred one may start later)
          if (r.request_id.empty() && cache_.sold_out(sku) && !check_reserve_request(r)) {
            local_refusals_.fetch_add(1, std::memory_order_relaxed);
            reserve_result refused;  // sold_out, remaining 0, refused, order 0
            boost::asio::post(store_.get_executor(),
                              boost::asio::append(std::move(handler), std::error_code{}, refused));
            return;
          }
          store_.async_reserve(sku, r, boost::asio::deferred)(boost::asio::deferred(
              [s = target_of(sku)](std::error_code ec, reserve_result answer) {
                if (!ec && answer.status != reserve_status::unknown_sku) {
                  // A replay's remaining is its first answer's, not now's. A
                  // window refusal is the store's to give: were its remaining
                  // (often 0 after a sell-out) cached, later buyers would hear
                  // sold_out instead of not_started or ended.
                  if (answer.status == reserve_status::not_started ||
                      answer.status == reserve_status::ended)
                    s.update(-1);
                  else if (!answer.replayed)
                    s.update(answer.remaining);
                }
                return boost::asio::deferred.values(ec, answer);
              }))(std::move(handler));
        },
        token, request);
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_commit(std::string_view sku, std::int64_t order_id,
                    CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_commit(sku, order_id, boost::asio::deferred)(
        boost::asio::deferred([s = std::move(s)](std::error_code ec, settle_result r) {
          if (ec == make_error_code(errc::order_rolled_back)) s.update(-1);  // units came back
          return boost::asio::deferred.values(ec, r);
        }))(std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_rollback(std::string_view sku, std::int64_t order_id,
                      CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_rollback(sku, order_id, boost::asio::deferred)(
        boost::asio::deferred([s = std::move(s)](std::error_code ec, settle_result r) {
          if (!ec && r.status == settle_status::done) s.update(-1);
          return boost::asio::deferred.values(ec, r);
        }))(std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit,
                          CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_reap_expired(sku, limit, boost::asio::deferred)(
        reopen_after_reap(std::move(s)))(std::forward<CompletionToken>(token));
  }

  /// The fenced reap of a `fenced_stock_store` (store.hpp), forwarded; units
  /// given back re-open the SKU as above.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  requires fenced_stock_store<Store>
  auto async_reap_expired(std::string_view sku, std::size_t limit, std::int64_t fence,
                          CompletionToken&& token = CompletionToken()) {
    target s = target_of(sku);
    return store_.async_reap_expired(sku, limit, fence, boost::asio::deferred)(
        reopen_after_reap(std::move(s)))(std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, sku_policy policy,
                        CompletionToken&& token = CompletionToken()) {
    return store_.async_set_policy(sku, policy, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return store_.async_get_policy(sku, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, order_entry)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_order(std::string_view sku, std::int64_t order_id,
                       CompletionToken&& token = CompletionToken()) {
    return store_.async_get_order(sku, order_id, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, order_page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit,
                         CompletionToken&& token = CompletionToken()) {
    return store_.async_list_orders(sku, after, limit, std::forward<CompletionToken>(token));
  }

 private:
  /// Where an answer about a SKU goes: its entry, created only when the
  /// store knew the SKU (an unknown SKU's answers add nothing to the cache,
  /// so made-up SKUs cost no memory). Copies the SKU only before its first
  /// entry exists.
  class target {
   public:
    target(stock_cache& cache, std::string_view sku) : cache_(&cache), slot_(cache.find_slot(sku)) {
      if (slot_ == nullptr) sku_ = sku;
    }
    void update(std::int64_t remaining) const {
      if (slot_ == nullptr) slot_ = &cache_->entry(sku_);
      slot_->update(remaining);
    }

   private:
    stock_cache* cache_;
    mutable stock_cache::slot* slot_;
    std::string sku_;
  };

  target target_of(std::string_view sku) { return target(cache_, sku); }

  /// A reap that gave units back re-opens the SKU: its count is unknown (-1)
  /// until the next answer says it.
  static auto reopen_after_reap(target s) {
    return boost::asio::deferred([s = std::move(s)](std::error_code ec, std::size_t reaped) {
      if (!ec && reaped > 0) s.update(-1);
      return boost::asio::deferred.values(ec, reaped);
    });
  }

  Store& store_;
  stock_cache& cache_;
  std::atomic<std::uint64_t> local_refusals_{0};
};

}  // namespace seckill
