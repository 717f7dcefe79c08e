#pragma once
/// @file
/// @brief An etcd session: a lease kept alive in the background, with "lost"
///        reported (callback and awaitable) when no keepalive succeeded within
///        the TTL, and an optional renewal with a fresh lease afterwards.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief Settings of a `session`.
struct session_options {
  std::chrono::seconds ttl{10};  ///< the lease's TTL (etcd raises values below its minimum)
  /// Time between keepalives; zero: ttl / 3.
  std::chrono::milliseconds keepalive_interval{0};
  /// Time between attempts after a failed keepalive or grant.
  std::chrono::milliseconds retry_interval{200};
  /// After a loss, keep trying to grant a new lease and report it through
  /// `on_renewed` (the old lease's keys are gone or about to be: owners of
  /// leased keys must write them again).
  bool renew_after_loss = true;
};

/// @brief The state a session reports.
enum class session_state : std::uint8_t { idle, alive, lost, closed };

/// The state's name ("alive").
constexpr std::string_view to_string(session_state s) noexcept {
  switch (s) {
    case session_state::idle:
      return "idle";
    case session_state::alive:
      return "alive";
    case session_state::lost:
      return "lost";
    case session_state::closed:
      return "closed";
  }
  return "unknown";
}

/// @brief A lease kept alive every TTL/3 (etcd Go `concurrency.Session`).
///
/// `async_start` grants the lease; from then on a background task renews it.
/// The session is lost when the server says the lease is gone, or when no
/// keepalive sent less than one TTL ago has succeeded (measured from the time
/// each keepalive was sent, so the session reports the loss no later than the
/// server expires the lease). On loss the `on_lost` callback runs and every
/// `async_wait_lost` completes with `errc::session_lost`; with
/// `renew_after_loss` a new lease is granted as soon as etcd answers and
/// `on_renewed` runs with it (`generation()` counts the leases).
///
/// Thread-safety: like the client (one executor, no concurrent handlers);
/// destroy it on that executor. The client must outlive the session. Cost:
/// one keepalive call per interval.
class session {
 public:
  using executor_type = client::executor_type;
  using lost_handler = std::function<void(std::error_code, std::int64_t old_lease)>;
  using renewed_handler = std::function<void(std::int64_t new_lease)>;

  explicit session(client& c, session_options opts = {}) : st_(std::make_shared<state>(c, opts)) {}
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() { st_->stop(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return st_->etcd.get_executor(); }
  [[nodiscard]] client& get_client() const noexcept { return st_->etcd; }
  /// The lease id (0 before the first grant). Read it on the executor.
  [[nodiscard]] std::int64_t lease() const noexcept { return st_->lease; }
  [[nodiscard]] session_state state_now() const noexcept { return st_->current; }
  [[nodiscard]] bool alive() const noexcept { return st_->current == session_state::alive; }
  /// 1 for the first lease, incremented by each renewal after a loss.
  [[nodiscard]] std::uint64_t generation() const noexcept { return st_->generation; }
  [[nodiscard]] std::chrono::seconds ttl() const noexcept { return st_->opts.ttl; }
  /// When the last successful keepalive (or the grant) of the current lease
  /// was sent, on the steady clock: etcd expires the lease no earlier than one
  /// TTL after it. Read it on the executor.
  [[nodiscard]] std::chrono::steady_clock::time_point last_renewal() const noexcept {
    return st_->last_ok_sent;
  }
  /// Keepalives that failed since the last success (for health grading).
  [[nodiscard]] unsigned consecutive_failures() const noexcept { return st_->failures; }

  /// Adds a listener called when the lease is lost.
  void on_lost(lost_handler h) { st_->lost_cb.push_back(std::move(h)); }
  /// Adds a listener called with each new lease granted after a loss.
  void on_renewed(renewed_handler h) { st_->renewed_cb.push_back(std::move(h)); }
  /// Adds a listener called after every keepalive attempt: (ok, consecutive failures).
  void on_keepalive(std::function<void(bool, unsigned)> h) {
    st_->keepalive_cb.push_back(std::move(h));
  }

  /// Grants the lease and starts the keepalives. -> (ec, lease id)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_start(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::start(st_), token);
  }

  /// Completes with `errc::session_lost` when the current lease is lost (at
  /// once when it already is), `errc::operation_aborted` when cancelled or
  /// closed. -> (ec, lost lease id)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_lost(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::wait_lost(st_), token);
  }

  /// Completes when the session is alive (at once when it is). -> (ec, lease id)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_alive(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::wait_alive(st_), token);
  }

  /// Stops the keepalives and revokes the lease (its keys go at once). -> (ec, lease id)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_close(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::close(st_), token);
  }

 private:
  struct state {
    state(client& c, session_options o)
        : etcd(c), opts(o), lost_timer(c.get_executor()), alive_timer(c.get_executor()) {
      if (opts.ttl < std::chrono::seconds(1)) {
        throw error(seckill::errc::invalid_argument,
                    "session ttl " + std::to_string(opts.ttl.count()) + " s is below 1 s");
      }
      if (opts.keepalive_interval <= std::chrono::milliseconds::zero()) {
        opts.keepalive_interval =
            std::chrono::duration_cast<std::chrono::milliseconds>(opts.ttl) / 3;
      }
      lost_timer.expires_at(std::chrono::steady_clock::time_point::max());
      alive_timer.expires_at(std::chrono::steady_clock::time_point::max());
    }

    client& etcd;
    session_options opts;
    session_state current = session_state::idle;
    std::int64_t lease = 0;
    std::uint64_t generation = 0;
    unsigned failures = 0;
    bool loop_running = false;
    boost::asio::steady_timer lost_timer;   // cancelled to wake async_wait_lost
    boost::asio::steady_timer alive_timer;  // cancelled to wake async_wait_alive
    boost::asio::cancellation_signal stop_signal;
    std::vector<lost_handler> lost_cb;
    std::vector<renewed_handler> renewed_cb;
    std::vector<std::function<void(bool, unsigned)>> keepalive_cb;
    void keepalive_done(bool ok) {
      for (auto& f : keepalive_cb) f(ok, failures);
    }

    static void wake(boost::asio::steady_timer& t) {
      t.cancel();
      t.expires_at(std::chrono::steady_clock::time_point::max());
    }

    void stop() {
      if (current != session_state::closed) current = session_state::closed;
      stop_signal.emit(boost::asio::cancellation_type::terminal);
      wake(lost_timer);
      wake(alive_timer);
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> start(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      if (s->current == session_state::closed)
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), 0};
      if (s->current == session_state::alive) co_return std::pair{std::error_code{}, s->lease};
      auto [ec, g] = co_await s->etcd.async_lease_grant(
          s->opts.ttl.count(), boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return std::pair{ec, std::int64_t{0}};
      if (s->current == session_state::closed) {
        co_await s->etcd.async_lease_revoke(g.id,
                                            boost::asio::as_tuple(boost::asio::use_awaitable));
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), std::int64_t{0}};
      }
      s->become_alive(g.id, std::chrono::steady_clock::now());
      if (!s->loop_running) {
        s->loop_running = true;
        boost::asio::co_spawn(
            s->etcd.get_executor(), keepalive_loop(s),
            boost::asio::bind_cancellation_slot(s->stop_signal.slot(), boost::asio::detached));
      }
      co_return std::pair{std::error_code{}, g.id};
    }

    void become_alive(std::int64_t id, std::chrono::steady_clock::time_point sent) {
      lease = id;
      ++generation;
      failures = 0;
      current = session_state::alive;
      last_ok_sent = sent;
      wake(alive_timer);
    }

    std::chrono::steady_clock::time_point last_ok_sent{};

    void become_lost(std::error_code why) {
      if (current != session_state::alive) return;
      current = session_state::lost;
      const auto old = lease;
      wake(lost_timer);
      for (auto& f : lost_cb) f(why, old);
    }

    static boost::asio::awaitable<void> keepalive_loop(std::shared_ptr<state> s) {
      using namespace boost::asio::experimental::awaitable_operators;
      using clock = std::chrono::steady_clock;
      boost::asio::steady_timer timer(s->etcd.get_executor());
      auto next = clock::now() + s->opts.keepalive_interval;
      for (;;) {
        if (s->current == session_state::closed) co_return;
        if (s->current == session_state::alive) {
          const auto deadline = s->last_ok_sent + s->opts.ttl;
          timer.expires_at(std::min(next, deadline));
          auto [wec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
          if (s->current == session_state::closed || wec) co_return;
          if (clock::now() >= deadline) {
            s->become_lost(make_error_code(errc::session_lost));
            continue;
          }
          const auto sent = clock::now();
          timer.expires_at(deadline);
          auto result =
              co_await (s->etcd.async_lease_keepalive(
                            s->lease, boost::asio::as_tuple(boost::asio::use_awaitable)) ||
                        timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)));
          if (s->current == session_state::closed) co_return;
          if (result.index() == 0) {
            auto& [kec, k] = std::get<0>(result);
            if (!kec) {
              s->last_ok_sent = sent;
              s->failures = 0;
              next = sent + s->opts.keepalive_interval;
              s->keepalive_done(true);
              continue;
            }
            ++s->failures;
            if (kec == errc::lease_not_found) {
              // etcd answered: the lease is gone, not the link. Report the
              // loss before the failed attempt, so listeners grading the link
              // (attach_health) see the loss first.
              s->become_lost(kec);
              s->keepalive_done(false);
              continue;
            }
            s->keepalive_done(false);
            if (kec == seckill::errc::operation_aborted) co_return;
          } else {
            ++s->failures;
            s->keepalive_done(false);
          }
          next = clock::now() + s->opts.retry_interval;
        } else if (s->current == session_state::lost) {
          if (!s->opts.renew_after_loss) co_return;
          // best effort: the old lease may still exist (its keys too)
          const auto old = s->lease;
          const auto sent = clock::now();
          auto [gec, g] = co_await s->etcd.async_lease_grant(
              s->opts.ttl.count(), boost::asio::as_tuple(boost::asio::use_awaitable));
          if (s->current == session_state::closed) co_return;
          if (!gec) {
            co_await s->etcd.async_lease_revoke(old,
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
            if (s->current == session_state::closed) {
              co_await s->etcd.async_lease_revoke(
                  g.id, boost::asio::as_tuple(boost::asio::use_awaitable));
              co_return;
            }
            s->become_alive(g.id, sent);
            next = sent + s->opts.keepalive_interval;
            for (auto& f : s->renewed_cb) f(g.id);
            continue;
          }
          if (gec == seckill::errc::operation_aborted) co_return;
          timer.expires_after(s->opts.retry_interval);
          auto [wec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
          if (wec) co_return;
        } else {
          co_return;
        }
      }
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> wait_lost(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      const auto gen = s->generation;
      while (s->current == session_state::alive && s->generation == gen) {
        co_await s->lost_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        const boost::asio::cancellation_state cs =
            co_await boost::asio::this_coro::cancellation_state;
        if (detail::is_cancelled(cs)) {
          co_return std::pair{make_error_code(seckill::errc::operation_aborted), s->lease};
        }
      }
      if (s->current == session_state::closed)
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), s->lease};
      if (s->current == session_state::idle)
        co_return std::pair{make_error_code(errc::session_lost), std::int64_t{0}};
      co_return std::pair{make_error_code(errc::session_lost), s->lease};
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> wait_alive(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      while (s->current != session_state::alive) {
        if (s->current == session_state::closed) break;
        co_await s->alive_timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        const boost::asio::cancellation_state cs =
            co_await boost::asio::this_coro::cancellation_state;
        if (detail::is_cancelled(cs)) break;
      }
      if (s->current != session_state::alive)
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), s->lease};
      co_return std::pair{std::error_code{}, s->lease};
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> close(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      const auto id = s->lease;
      const bool had = s->current == session_state::alive || s->current == session_state::lost;
      s->stop();
      if (!had || id == 0) co_return std::pair{std::error_code{}, id};
      auto [ec, r] = co_await s->etcd.async_lease_revoke(
          id, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == errc::lease_not_found) ec = {};
      co_return std::pair{ec, id};
    }
  };

  std::shared_ptr<state> st_;
};

}  // namespace seckill::etcd
