#pragma once
/// @file
/// @brief Estimating the shop's clock through a shop_driver:
///        `async_sync_clock` takes the driver's readings, then, with a
///        whole-second Date header and a driver that can send readings at
///        chosen times (`async_clock_samples_at`), straddles the shop's
///        second boundaries until the interval is about a round trip wide.

#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/detail/spawned_completion.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief How async_sync_clock reads the shop's clock.
///
/// A plain value. Cost: none.
struct clock_sync_options {
  int samples = 5;    ///< the first readings (async_clock_samples), in [1, 100]
  int rounds = 4;     ///< straddle rounds at most (0: none), each up to about a second
  int per_round = 5;  ///< readings per round, spread over where the boundary can fall
  /// Readings with a longer round trip are dropped; zero:
  /// default_max_round_trip of the smallest.
  std::chrono::nanoseconds max_round_trip{0};
  /// The local wall clock the plans are made on; empty: system_clock::now.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

namespace detail {

template <class Driver>
concept timed_clock_samples = requires(Driver& d,
                                       std::vector<std::chrono::system_clock::time_point> at) {
  {
    d.async_clock_samples_at(at, boost::asio::as_tuple(boost::asio::use_awaitable))
    }
    -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code, std::vector<clock_sample>>>>;
};

template <class Driver>
boost::asio::awaitable<std::pair<std::error_code, std::optional<clock_offset>>> sync_clock(
    Driver* d, clock_sync_options o) {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  using R = std::pair<std::error_code, std::optional<clock_offset>>;
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  auto [e, samples] =
      co_await d->async_clock_samples(std::clamp(o.samples, 1, 100), as_tuple(use_awaitable));
  if (e) co_return R{e, std::nullopt};
  std::optional<clock_offset> est = estimate_clock_offset(samples, o.max_round_trip);
  if constexpr (timed_clock_samples<Driver>) {
    for (int round = 0; est && round < o.rounds; ++round) {
      // Done when the interval is about a round trip, or when a finer clock
      // than the Date header's whole seconds (a page clock) was read.
      if (est->uncertainty <= est->round_trip + std::chrono::milliseconds(1) ||
          est->resolution < std::chrono::seconds(1))
        break;
      const auto now = o.wall_clock ? o.wall_clock() : std::chrono::system_clock::now();
      auto [e2, more] = co_await d->async_clock_samples_at(plan_straddle(*est, now, o.per_round),
                                                           as_tuple(use_awaitable));
      if (e2) co_return R{e2, est};
      if (more.empty()) break;
      samples.insert(samples.end(), more.begin(), more.end());
      const std::optional<clock_offset> next = estimate_clock_offset(samples, o.max_round_trip);
      const bool better = next && next->hi - next->lo < est->hi - est->lo;
      est = next;
      if (!better) break;
    }
  }
  co_return R{{}, est};
}

}  // namespace detail

/// @brief Estimates the shop clock's offset through `driver` (which must
///        outlive the operation): (error_code, optional<clock_offset>),
///        nullopt when no reading was usable. The driver's readings first;
///        then, while the estimate is wider than about a round trip and the
///        readings all have whole seconds and the driver has
///        async_clock_samples_at, up to `rounds` rounds of
///        readings timed by plan_straddle (each waits for the next second
///        boundary of the shop's clock: about a second), kept while they
///        narrow the interval. A failure of a later round completes with its
///        error and the estimate so far. Cost: options.samples + rounds x
///        per_round requests to the shop; about rounds seconds.
template <shop_driver Driver,
          boost::asio::completion_token_for<void(std::error_code, std::optional<clock_offset>)>
              CompletionToken =
                  boost::asio::default_completion_token_t<typename Driver::executor_type>>
auto async_sync_clock(Driver& driver, clock_sync_options options = {},
                      CompletionToken&& token = CompletionToken()) {
  return seckill::detail::async_spawn<void(std::error_code, std::optional<clock_offset>)>(
      driver.get_executor(), detail::sync_clock(&driver, std::move(options)), token);
}

}  // namespace seckill::browser
