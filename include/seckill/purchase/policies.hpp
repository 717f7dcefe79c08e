#pragma once
/// @file
/// @brief The purchase engine's policies: the concepts each one meets
///        (`purchase_limiter` or `async_purchase_limiter`, `purchase_breaker`, `order_id_source`,
///        `payment_policy`, `orders_sink`, `purchase_gate`) and the trivial or
///        default ones (`unlimited`, `no_breaker`, `no_payment`, `memory_orders`,
///        `open_gate`).

#include <seckill/detail/cache_line.hpp>
#include <seckill/detail/thread_stripe.hpp>
#include <seckill/purchase/request.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill {

/// A synchronous Limiter: `try_acquire(tokens)` answers at once (`token_bucket`, `unlimited`).
template <class P>
concept purchase_limiter = requires(P& p) {
  { p.try_acquire(1.0) } -> std::convertible_to<bool>;
};
/// An asynchronous Limiter: `async_acquire(sku, user, tokens, token)`
/// completes with `void(std::error_code, bool admitted)` (a limiter whose
/// count is elsewhere, `redis::gcra_limiter`). Refused is (no error, false);
/// an error with false is a limiter that could not decide and refuses (the
/// purchase fails with that error); it must never complete inside the call.
template <class P>
concept async_purchase_limiter = requires(P& p, std::string_view sku, std::string_view user,
                                          double tokens) {
  p.async_acquire(sku, user, tokens, boost::asio::deferred);
};
/// Either kind: what `purchase_engine` takes as its Limiter. A type that is
/// both is used synchronously.
template <class P>
concept admission_limiter = purchase_limiter<P> || async_purchase_limiter<P>;

namespace detail {
/// An asynchronous Limiter's optional synchronous answer:
/// `refuses_locally(sku, user, tokens)` true when it knows at once that it
/// refuses (a pre-filter); the engine then refuses without starting a coroutine.
template <class P>
concept refuses_locally = requires(P& p, std::string_view sku, std::string_view user,
                                   double tokens) {
  { p.refuses_locally(sku, user, tokens) } -> std::convertible_to<bool>;
};
}  // namespace detail
template <class B>
concept purchase_breaker = requires(B& b, std::chrono::nanoseconds d) {
  { b.try_acquire() } -> std::convertible_to<bool>;
  b.on_success(d);
  b.on_failure(d);
};

namespace detail {
template <class B>
using permit_t = std::remove_cvref_t<decltype(std::declval<B&>().try_acquire())>;
template <class B>
concept takes_permit_back = requires(B& b, permit_t<B> p, std::chrono::nanoseconds d) {
  b.on_success(p, d);
  b.on_failure(p, d);
};
/// `Payment::async_refund(const payment_request&, token)`, optional.
template <class P>
concept has_async_refund = requires(P& p, const payment_request& r) {
  p.async_refund(r, boost::asio::deferred);
};
}  // namespace detail

template <class I>
concept order_id_source = requires(I& i, std::error_code& ec) {
  { i.next(ec) } -> std::convertible_to<std::int64_t>;
};
template <class P>
concept payment_policy = requires(P& p, const payment_request& r) {
  p.async_pay(r, boost::asio::deferred);
};
template <class O>
concept orders_sink = requires(O& o, const order_record& r) {
  o.async_persist(r, boost::asio::deferred);
};

/// `Gate::admits()`: whether this node takes new purchases now (a health
/// grade, a drain flag). Called once per purchase at admission, from any
/// thread: it must be cheap and thread-safe (one atomic load).
template <class G>
concept purchase_gate = requires(const G& g) {
  { g.admits() } -> std::convertible_to<bool>;
};

/// @brief A Gate that is always open: the node always takes purchases. Free.
struct open_gate {
  constexpr bool admits() const noexcept { return true; }
};

/// @brief A Limiter that admits everything: admission off. Free.
struct unlimited {
  constexpr bool try_acquire(double = 1) const noexcept { return true; }
};

/// @brief A Breaker that never opens: circuit breaking off. Free.
struct no_breaker {
  constexpr bool try_acquire() const noexcept { return true; }
  template <class D>
  constexpr void on_success(D) const noexcept {}
  template <class D>
  constexpr void on_failure(D) const noexcept {}
};

/// @brief A Payment policy for goods that need none (vouchers, free samples,
///        benchmarks): succeeds at once. Completes through the token's
///        associated executor, never inside the call.
struct no_payment {
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken>
  auto async_pay(const payment_request&, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        [](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, boost::asio::append(std::move(handler), std::error_code{}));
        },
        token);
  }
};

/// @brief The default Orders sink: keeps every persisted order in memory.
///
/// Thread-safety: `async_persist` and the readers may be called from any
/// thread. Orders land in one of 8 stripes, each behind its own mutex on
/// cache lines of its own, chosen by the persisting thread
/// (`detail::thread_stripe`), so threads persisting at once rarely share a
/// lock. Cost: one uncontended lock and one `push_back`; no allocation while
/// the reserved capacity lasts and SKUs fit the small-string buffer (15
/// characters with libstdc++). Each stripe reserves `capacity` when a thread
/// first persists into it (address space only until the orders arrive).
/// Reading (`size`, `orders`) takes every stripe's lock in turn.
class memory_orders {
 public:
  struct stored_order {
    std::int64_t order_id;
    std::string sku;
    std::int64_t quantity;
    std::string user;
    std::string request_id;
  };

  explicit memory_orders(std::size_t capacity = 0) : capacity_(capacity) {}

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken>
  auto async_persist(const order_record& order, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this](auto handler, order_record o) {
          {
            stripe& s = stripes_[detail::thread_stripe() % stripe_count];
            std::lock_guard lock(s.mutex);
            if (s.orders.capacity() == 0) s.orders.reserve(capacity_);
            s.orders.push_back({o.order_id, std::string(o.sku), o.quantity, std::string(o.user),
                                std::string(o.request_id)});
          }
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, boost::asio::append(std::move(handler), std::error_code{}));
        },
        token, order);
  }

  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : stripes_) {
      std::lock_guard lock(s.mutex);
      n += s.orders.size();
    }
    return n;
  }

  /// A copy of what was persisted, in order id order (for Snowflake ids,
  /// the order they were issued in).
  [[nodiscard]] std::vector<stored_order> orders() const {
    std::vector<stored_order> all;
    for (const auto& s : stripes_) {
      std::lock_guard lock(s.mutex);
      all.insert(all.end(), s.orders.begin(), s.orders.end());
    }
    std::stable_sort(all.begin(), all.end(), [](const stored_order& a, const stored_order& b) {
      return a.order_id < b.order_id;
    });
    return all;
  }

 private:
  static constexpr std::size_t stripe_count = 8;
  struct alignas(detail::cache_line_size) stripe {
    mutable std::mutex mutex;
    std::vector<stored_order> orders;
  };
  std::size_t capacity_;
  std::array<stripe, stripe_count> stripes_;
};

}  // namespace seckill
