#pragma once
/// @file
/// @brief Asynchronous admission on Asio timers: wait for a token bucket's
///        tokens, or for a bulkhead slot with a timeout.
///
/// Kept apart from token_bucket.hpp and bulkhead.hpp so that those need only
/// the standard library. Both operations follow Asio's universal model
/// (callbacks, `use_awaitable`, `use_future`, `deferred`) and honour
/// per-operation cancellation of every type (terminal, partial, total): a
/// cancelled wait gives back what it held, so it has no side effects.

#include <seckill/error.hpp>
#include <seckill/limit/bulkhead.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/wait_traits.hpp>

#include <chrono>
#include <memory>
#include <system_error>
#include <utility>

namespace seckill {

namespace detail {

template <class Executor>
concept limit_executor = boost::asio::execution::is_executor<Executor>::value ||
    boost::asio::is_executor<Executor>::value;

template <class Executor>
using limit_timer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;

template <class Clock, class Executor>
struct bucket_acquire_op {
  token_bucket<Clock>* bucket;
  double tokens;
  typename Clock::duration max_wait;
  std::unique_ptr<limit_timer<Executor>> timer;
  typename token_bucket<Clock>::reservation held{};
  enum class step { start, waiting, done } at = step::start;
  std::error_code result{};

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}) {
    switch (at) {
      case step::start: {
        self.reset_cancellation_state(boost::asio::enable_total_cancellation());
        held = bucket->reserve(tokens, max_wait);
        if (!held.ok() || held.delay() <= Clock::duration::zero()) {
          result = held.error();
          at = step::done;
          auto ex = timer->get_executor();
          boost::asio::post(ex, std::move(self));  // never complete inside the initiation
          return;
        }
        at = step::waiting;
        timer->expires_after(std::chrono::ceil<std::chrono::steady_clock::duration>(held.delay()));
        auto& t = *timer;
        t.async_wait(std::move(self));
        return;
      }
      case step::waiting:
        if (ec || self.cancelled() != boost::asio::cancellation_type::none) {
          held.cancel();  // refund: the tokens were never used
          self.complete(make_error_code(errc::operation_aborted));
          return;
        }
        self.complete(std::error_code{});
        return;
      case step::done:
        self.complete(result);
        return;
    }
  }
};

template <class Executor>
struct bulkhead_wait_state final : bulkhead_waiter,
                                   std::enable_shared_from_this<bulkhead_wait_state<Executor>> {
  bulkhead_wait_state(bulkhead& b, const Executor& ex) : owner(&b), timer(ex) {}
  bulkhead_wait_state(const bulkhead_wait_state&) = delete;
  bulkhead_wait_state& operator=(const bulkhead_wait_state&) = delete;
  ~bulkhead_wait_state() {
    // The operation was destroyed without completing (its io_context went
    // away): leave the queue, or give back a slot granted but never handed out.
    if (!settled && !owner->remove(*this)) bulkhead_permit{*owner, adopt_slot_t{}}.release();
  }
  bulkhead* owner;
  limit_timer<Executor> timer;
  bool settled = true;  // false only while queued and not yet resumed
  void on_granted() noexcept override {
    // Under the bulkhead's lock, on the releasing thread: wake the waiting
    // operation on its own executor.
    boost::asio::post(timer.get_executor(),
                      [self = this->shared_from_this()] { self->timer.cancel(); });
  }
};

template <class Executor>
struct bulkhead_acquire_op {
  bulkhead* owner;
  std::chrono::steady_clock::duration max_wait;
  std::shared_ptr<bulkhead_wait_state<Executor>> state;
  enum class step { start, waiting, done } at = step::start;
  std::error_code result{};
  bulkhead_permit permit{};

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}) {
    switch (at) {
      case step::start: {
        self.reset_cancellation_state(boost::asio::enable_total_cancellation());
        permit = owner->try_acquire();
        if (permit || max_wait <= std::chrono::steady_clock::duration::zero()) {
          if (!permit) result = make_error_code(errc::bulkhead_full);
          at = step::done;
          auto ex = state->timer.get_executor();
          boost::asio::post(ex, std::move(self));
          return;
        }
        at = step::waiting;
        auto st = state;  // `self` (and this object) move into the timer's wait
        bulkhead* b = owner;
        st->settled = false;
        st->timer.expires_after(max_wait);
        st->timer.async_wait(std::move(self));
        b->enqueue(*st);  // may grant at once: the wait above is then cancelled
        return;
      }
      case step::waiting:
        state->settled = true;
        if (owner->remove(*state)) {
          // Not granted: the timer expired or the caller cancelled.
          self.complete(make_error_code(ec ? errc::operation_aborted : errc::timed_out),
                        bulkhead_permit{});
          return;
        }
        self.complete(std::error_code{}, bulkhead_permit{*owner, adopt_slot_t{}});
        return;
      case step::done:
        self.complete(result, std::move(permit));
        return;
    }
  }
};

}  // namespace detail

/// @brief Waits on an Asio timer until `tokens` of `bucket` are the caller's,
///        then completes with `std::error_code{}`. Signature `void(std::error_code)`.
///
/// The tokens are reserved at once (`token_bucket::reserve`); the operation
/// then waits the reservation's delay on a `steady_timer` bound to `ex`.
/// Completes with `errc::invalid_argument` for a count that can never be
/// admitted (negative, NaN, above the burst), and with
/// `errc::operation_aborted` when cancelled, in which case the tokens go
/// back to the bucket. The bucket must outlive the operation. One
/// allocation (the timer) per wait, none when the tokens are there at once
/// besides Asio's post.
template <class Clock, detail::limit_executor Executor,
          boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
              boost::asio::default_completion_token_t<Executor>>
auto async_acquire(token_bucket<Clock>& bucket, double tokens, const Executor& ex,
                   CompletionToken&& token = CompletionToken()) {
  return boost::asio::async_compose<CompletionToken, void(std::error_code)>(
      detail::bucket_acquire_op<Clock, Executor>{
          &bucket, tokens, Clock::duration::max(),
          std::make_unique<detail::limit_timer<Executor>>(ex)},
      token, ex);
}

/// @brief As `async_acquire(bucket, tokens, ex, token)`, but takes nothing and
///        completes at once with `errc::rate_limited` when the wait would
///        exceed `max_wait`.
template <class Clock, detail::limit_executor Executor,
          boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
              boost::asio::default_completion_token_t<Executor>>
auto async_acquire(token_bucket<Clock>& bucket, double tokens, typename Clock::duration max_wait,
                   const Executor& ex, CompletionToken&& token = CompletionToken()) {
  return boost::asio::async_compose<CompletionToken, void(std::error_code)>(
      detail::bucket_acquire_op<Clock, Executor>{
          &bucket, tokens, max_wait, std::make_unique<detail::limit_timer<Executor>>(ex)},
      token, ex);
}

/// @brief Waits up to `max_wait` for a slot of `b`. Signature
///        `void(std::error_code, bulkhead_permit)`.
///
/// Completes with a permit as soon as one is free (queued callers are served
/// in order), with `errc::timed_out` after `max_wait`, with
/// `errc::bulkhead_full` at once when `max_wait` is zero or negative and the
/// bulkhead is full, and with `errc::operation_aborted` when cancelled. The
/// bulkhead must outlive the operation; `ex` must not run this operation's
/// handlers on two threads at once (an io_context run by one thread, or a strand).
template <detail::limit_executor Executor,
          boost::asio::completion_token_for<void(std::error_code, bulkhead_permit)>
              CompletionToken = boost::asio::default_completion_token_t<Executor>>
auto async_acquire(bulkhead& b, std::chrono::steady_clock::duration max_wait, const Executor& ex,
                   CompletionToken&& token = CompletionToken()) {
  return boost::asio::async_compose<CompletionToken, void(std::error_code, bulkhead_permit)>(
      detail::bulkhead_acquire_op<Executor>{
          &b, max_wait, std::make_shared<detail::bulkhead_wait_state<Executor>>(b, ex)},
      token, ex);
}

}  // namespace seckill
