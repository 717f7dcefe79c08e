#pragma once
/// @file
/// @brief `hold_reaper`: gives back the units of holds whose TTL passed, on a
///        schedule, so that a buyer (or a process) that vanished after
///        reserving leaks no stock for longer than the hold plus one period.

#include <seckill/clock_timer.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill {

namespace detail {

/// Whether `Store` has the fenced reap. Only that call is checked, not all
/// of `stock_store` (a test double may deduce its return types late).
template <class Store>
concept has_fenced_reap = requires(Store& s, std::string_view sku, std::size_t limit,
                                   std::int64_t fence) {
  s.async_reap_expired(sku, limit, fence, boost::asio::deferred);
};

}  // namespace detail

/// @brief Settings of a `hold_reaper`.
struct reaper_options {
  /// The pause between two passes over the SKUs. A hold lives at most its
  /// TTL plus this (plus one pass) while the store answers.
  std::chrono::milliseconds period{1000};
  /// Holds reaped per store call; a pass repeats the call for a SKU while a
  /// whole batch came back, so a backlog drains within one pass.
  std::size_t batch = 512;
};

/// @brief Calls `Store::async_reap_expired` for every SKU it knows, every
///        `period`, until cancelled.
///
/// Faults do not stop it: a failed call is counted (`errors()`,
/// `last_error()`) and the SKU is tried again on the next pass. With a fence
/// (`set_fence`, a leader's fencing token) every reap carries it, and a reap
/// refused with `errc::fenced_out` (a newer leader has acted) ends the pass
/// and `async_run` at once: this reaper must stop acting.
///
/// Thread-safety: `set_skus`, `add_sku`, `set_fence` and the counters may
/// be used from any thread while it runs; `async_run` once at a time. Cost per pass: one
/// store call per SKU (more while batches come back full) and one timer
/// wait; the SKU list is copied once per pass.
template <class Store, class Clock = std::chrono::steady_clock>
class hold_reaper {
 public:
  using executor_type = typename Store::executor_type;

  /// Throws `seckill::error` (invalid_argument) for a period outside
  /// (0, max_hold] or a batch of 0.
  explicit hold_reaper(Store& store, std::vector<std::string> skus = {},
                       reaper_options options = {}, Clock clock = {})
      : store_(store),
        options_(checked(options)),
        clock_(std::move(clock)),
        skus_(std::move(skus)) {}

  hold_reaper(const hold_reaper&) = delete;
  hold_reaper& operator=(const hold_reaper&) = delete;

  executor_type get_executor() const noexcept { return store_.get_executor(); }
  const reaper_options& options() const noexcept { return options_; }

  /// Replaces the SKUs reaped from the next pass on.
  void set_skus(std::vector<std::string> skus) {
    std::lock_guard lock(mutex_);
    skus_ = std::move(skus);
  }
  /// Adds one SKU (no effect when it is known already).
  void add_sku(std::string sku) {
    std::lock_guard lock(mutex_);
    for (const auto& s : skus_)
      if (s == sku) return;
    skus_.push_back(std::move(sku));
  }

  /// Makes the reaps from now on carry `fence` (>= 1, the leadership's
  /// fencing token; the store refuses one below the highest it has seen),
  /// or none with 0. Needs a store with fenced reaps.
  void set_fence(std::int64_t fence) noexcept requires detail::has_fenced_reap<Store> {
    fence_.store(fence, std::memory_order_relaxed);
  }
  /// The fence the reaps carry (0: none).
  [[nodiscard]] std::int64_t fence() const noexcept {
    return fence_.load(std::memory_order_relaxed);
  }

  /// Holds given back so far.
  [[nodiscard]] std::uint64_t reaped() const noexcept {
    return reaped_.load(std::memory_order_relaxed);
  }
  /// Passes over the SKUs completed so far.
  [[nodiscard]] std::uint64_t passes() const noexcept {
    return passes_.load(std::memory_order_relaxed);
  }
  /// Store calls that failed so far.
  [[nodiscard]] std::uint64_t errors() const noexcept {
    return errors_.load(std::memory_order_relaxed);
  }
  /// The last failed call's error (none before the first).
  [[nodiscard]] std::error_code last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  /// Reaps now and then every period, until the operation is cancelled
  /// (per-operation cancellation, any type); then completes with
  /// `errc::operation_aborted`. With a fence, completes with
  /// `errc::fenced_out` as soon as a reap is refused for it. Never completes
  /// otherwise.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_run(CompletionToken&& token = CompletionToken()) {
    return detail::async_spawn<void(std::error_code)>(store_.get_executor(), run(),
                                                      std::forward<CompletionToken>(token));
  }

  /// One pass over the SKUs now; completes with the holds it gave back (a
  /// failed call is counted and the pass goes on with the next SKU; a reap
  /// refused for its fence ends the pass with `errc::fenced_out`).
  template <boost::asio::completion_token_for<void(std::error_code, std::uint64_t)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_once(CompletionToken&& token = CompletionToken()) {
    return detail::async_spawn<void(std::error_code, std::uint64_t)>(
        store_.get_executor(), pass_once(), std::forward<CompletionToken>(token));
  }

 private:
  static reaper_options checked(reaper_options o) {
    if (o.period <= std::chrono::milliseconds::zero() || o.period > max_hold)
      throw error(errc::invalid_argument, "reaper period " + std::to_string(o.period.count()) +
                                              " ms out of (0, " + std::to_string(max_hold.count()) +
                                              "] ms");
    if (o.batch == 0) throw error(errc::invalid_argument, "reaper batch 0: want at least 1");
    return o;
  }

  // async_reap_once's coroutine: a cancelled pass ends early and reports
  // operation_aborted (with what it reaped), never an exception.
  boost::asio::awaitable<std::pair<std::error_code, std::uint64_t>> pass_once() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [ec, n] = co_await pass();
    co_return std::pair{ec, n};
  }

  // One pass over the SKUs; stops early (operation_aborted) once cancelled.
  // The caller has turned throw_if_cancelled off.
  boost::asio::awaitable<std::pair<std::error_code, std::uint64_t>> pass() {
    std::vector<std::string> skus;
    {
      std::lock_guard lock(mutex_);
      skus = skus_;
    }
    std::uint64_t total = 0;
    for (const auto& sku : skus) {
      for (;;) {
        const auto before = co_await boost::asio::this_coro::cancellation_state;
        if (before.cancelled() != boost::asio::cancellation_type::none)
          co_return std::pair{std::error_code(errc::operation_aborted), total};
        auto [ec, n] = co_await reap(sku);
        const auto after = co_await boost::asio::this_coro::cancellation_state;
        if (after.cancelled() != boost::asio::cancellation_type::none && ec)
          co_return std::pair{std::error_code(errc::operation_aborted),
                              total};  // not the store's fault
        if (ec) {
          errors_.fetch_add(1, std::memory_order_relaxed);
          {
            std::lock_guard lock(mutex_);
            last_error_ = ec;
          }
          if (ec == errc::fenced_out) co_return std::pair{ec, total};  // a newer leader acts
          break;
        }
        total += n;
        reaped_.fetch_add(n, std::memory_order_relaxed);
        if (n < options_.batch) break;
      }
    }
    passes_.fetch_add(1, std::memory_order_relaxed);
    co_return std::pair{std::error_code{}, total};
  }

  // One store call for `sku`, with the fence when one is set.
  boost::asio::awaitable<std::pair<std::error_code, std::size_t>> reap(const std::string& sku) {
    constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    if constexpr (detail::has_fenced_reap<Store>) {
      const std::int64_t fence = fence_.load(std::memory_order_relaxed);
      if (fence != 0) {
        auto [ec, n] = co_await store_.async_reap_expired(sku, options_.batch, fence, tuple);
        co_return std::pair{ec, n};
      }
    }
    auto [ec, n] = co_await store_.async_reap_expired(sku, options_.batch, tuple);
    co_return std::pair{ec, n};
  }

  boost::asio::awaitable<std::error_code> run() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    co_await boost::asio::this_coro::reset_cancellation_state(
        boost::asio::enable_total_cancellation());
    clock_timer<Clock> timer(co_await boost::asio::this_coro::executor, clock_);
    for (;;) {
      const auto started = clock_.now();
      auto [ec, n] = co_await pass();
      (void)n;
      if (ec == errc::fenced_out) co_return ec;
      const auto cs = co_await boost::asio::this_coro::cancellation_state;
      if (cs.cancelled() != boost::asio::cancellation_type::none) break;
      timer.expires_at(started +
                       std::chrono::duration_cast<typename Clock::duration>(options_.period));
      auto [wait_ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (wait_ec) break;
    }
    co_return std::error_code(errc::operation_aborted);
  }

  Store& store_;
  reaper_options options_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::vector<std::string> skus_;
  std::error_code last_error_;
  std::atomic<std::uint64_t> reaped_{0};
  std::atomic<std::uint64_t> passes_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::int64_t> fence_{0};
};

}  // namespace seckill
