#pragma once
/// @file
/// @brief `clock_timer<Clock>`: an Asio timer that expires by any
///        seckill Clock, `manual_clock` included, so deadlines are testable
///        without sleeping.
///
/// Asio's own timers read `Clock::now()` statically, which a clock with a
/// shared, settable time source (`manual_clock`) cannot offer. This timer
/// waits on a `steady_timer` in slices of at most
/// `clock_poll_interval<Clock>::value` of real time and reads its own Clock
/// object after each slice: for the real clocks the slice is unbounded (one
/// wait, then a re-check), for `manual_clock` it is 1 ms, so a test that
/// advances the clock sees the deadline fire within a millisecond.

#include <seckill/clock.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <utility>

namespace seckill {

/// @brief The longest real time a `clock_timer<Clock>` sleeps before
///        reading `Clock` again. Specialise it for a virtual clock of your own.
template <class Clock>
struct clock_poll_interval {
  static constexpr std::chrono::nanoseconds value = std::chrono::nanoseconds::max();
};

template <>
struct clock_poll_interval<manual_clock> {
  static constexpr std::chrono::nanoseconds value = std::chrono::milliseconds(1);
};

/// @brief A one-shot timer that completes when `Clock` reaches its expiry.
///
/// `async_wait(token)` completes with `void(std::error_code)`: no error at
/// the expiry, `boost::asio::error::operation_aborted` when cancelled through
/// `cancel()` or the operation's cancellation slot (terminal, partial and total
/// cancellation are honoured). Thread-safety: as `boost::asio::steady_timer`,
/// one object is not for concurrent use. Cost: one `steady_timer` wait per
/// poll slice; no allocation beyond the handler's (Asio's recycling allocator).
template <class Clock = std::chrono::steady_clock>
class clock_timer {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock_type = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  explicit clock_timer(executor_type ex, Clock clock = {})
      : timer_(std::move(ex)), clock_(std::move(clock)) {}

  executor_type get_executor() noexcept { return timer_.get_executor(); }

  void expires_at(time_point at) noexcept { expiry_ = at; }
  void expires_after(duration d) { expiry_ = clock_.now() + d; }
  [[nodiscard]] time_point expiry() const noexcept { return expiry_; }
  [[nodiscard]] bool expired() const { return clock_.now() >= expiry_; }
  /// Time left until the expiry, zero once it passed.
  [[nodiscard]] duration remaining() const {
    return std::max(expiry_ - clock_.now(), duration::zero());
  }

  /// Cancels a pending wait: it completes with `operation_aborted`.
  void cancel() { timer_.cancel(); }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait(CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_compose<CompletionToken, void(std::error_code)>(waiter{this}, token,
                                                                              timer_);
  }

 private:
  struct waiter {
    clock_timer* self;
    bool first = true;
    template <class Self>
    void operator()(Self& op, std::error_code ec = {}) {
      if (ec) return op.complete(ec);
      if (op.cancelled() != boost::asio::cancellation_type::none)
        return op.complete(
            std::error_code(boost::system::error_code(boost::asio::error::operation_aborted)));
      const auto left = self->expiry_ - self->clock_.now();
      // The first step always waits (zero when due) so the completion never
      // runs inside the initiating call.
      if (left <= duration::zero() && !first) return op.complete({});
      first = false;
      const auto slice = std::min<std::chrono::nanoseconds>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(left, duration::zero())),
          clock_poll_interval<Clock>::value);
      self->timer_.expires_after(
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(slice));
      self->timer_.async_wait(std::move(op));
    }
  };

  boost::asio::steady_timer timer_;
  Clock clock_;
  time_point expiry_{};
};

}  // namespace seckill
