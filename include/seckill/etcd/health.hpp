#pragma once
/// @file
/// @brief Graded degradation of an instance from what its etcd session sees:
///        healthy -> degraded (weight scaled, 30% by default, after 2 failed
///        renewals in a row) -> read-only (no new purchases, after 4) ->
///        offline (no successful renewal for the lease TTL + 5 s: its lease
///        and registry record are gone), and back when renewals succeed
///        again. Each transition is an event for the registry and metrics.
///
/// `health_monitor` is a pure policy over a Clock (unit tests drive it with
/// `seckill::manual_clock`); `attach_health` feeds it from a `session`;
/// `health_gate` is the purchase engine's `Gate` that reads its grade.

#include <seckill/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief How usable an instance is.
enum class health_state : std::uint8_t {
  healthy,    ///< full weight
  degraded,   ///< serves with a scaled weight
  read_only,  ///< serves reads, takes no writes (no purchases)
  offline,    ///< its lease is gone: not in the registry
};

constexpr std::string_view to_string(health_state s) noexcept {
  switch (s) {
    case health_state::healthy:
      return "healthy";
    case health_state::degraded:
      return "degraded";
    case health_state::read_only:
      return "read_only";
    case health_state::offline:
      return "offline";
  }
  return "unknown";
}

/// Parses to_string's output; false for anything else.
inline bool from_string(std::string_view text, health_state& out) noexcept {
  for (auto s : {health_state::healthy, health_state::degraded, health_state::read_only,
                 health_state::offline}) {
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

/// @brief When to move between the grades.
struct health_thresholds {
  unsigned degraded_after_failures = 2;   ///< consecutive failed renewals (>= 1)
  unsigned read_only_after_failures = 4;  ///< consecutive failed renewals (>= degraded)
  /// No successful renewal for this long also means read-only (zero: off;
  /// else below the offline threshold).
  std::chrono::milliseconds read_only_after_silence{0};
  /// The lease TTL the offline threshold counts from (`attach_health` sets
  /// the session's; >= 1 s).
  std::chrono::milliseconds lease_ttl{10000};
  /// Offline when no renewal succeeded for lease_ttl + this (>= 0): by then
  /// etcd has expired the lease and its registry record.
  std::chrono::milliseconds offline_grace{5000};
  double degraded_weight_factor = 0.3;  ///< weight multiplier while degraded, in (0, 1]
  /// Successes in a row needed to climb back one grade (>= 1).
  unsigned recover_after_successes = 1;

  /// No successful renewal for this long means offline.
  [[nodiscard]] std::chrono::milliseconds offline_after() const noexcept {
    return lease_ttl + offline_grace;
  }
};

/// Throws `seckill::error` (`errc::invalid_argument`) naming the values when
/// `t` is inconsistent.
inline void validate(const health_thresholds& t) {
  const auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
  if (t.degraded_after_failures == 0 || t.read_only_after_failures < t.degraded_after_failures) {
    throw error(seckill::errc::invalid_argument,
                "health thresholds: degraded after " + std::to_string(t.degraded_after_failures) +
                    " and read-only after " + std::to_string(t.read_only_after_failures) +
                    " failures (need 1 <= degraded <= read-only)");
  }
  if (t.lease_ttl < std::chrono::seconds(1) ||
      t.offline_grace < std::chrono::milliseconds::zero()) {
    throw error(seckill::errc::invalid_argument, "health thresholds: lease ttl " + ms(t.lease_ttl) +
                                                     " and offline grace " + ms(t.offline_grace) +
                                                     " (need ttl >= 1 s and grace >= 0)");
  }
  if (t.read_only_after_silence < std::chrono::milliseconds::zero() ||
      (t.read_only_after_silence > std::chrono::milliseconds::zero() &&
       t.read_only_after_silence >= t.offline_after())) {
    throw error(seckill::errc::invalid_argument,
                "health thresholds: read-only after " + ms(t.read_only_after_silence) +
                    " of silence, offline after " + ms(t.offline_after()) +
                    " (need 0 (off) or 0 < read-only < offline)");
  }
  if (!(t.degraded_weight_factor > 0.0 && t.degraded_weight_factor <= 1.0)) {
    throw error(seckill::errc::invalid_argument, "health thresholds: degraded weight factor " +
                                                     std::to_string(t.degraded_weight_factor) +
                                                     " outside (0, 1]");
  }
  if (t.recover_after_successes == 0) {
    throw error(seckill::errc::invalid_argument,
                "health thresholds: recover after 0 successes (need >= 1)");
  }
}

/// @brief One transition, as events and metrics see it.
template <class TimePoint>
struct health_transition {
  health_state from;
  health_state to;
  TimePoint at;
  unsigned consecutive_failures;
};

/// @brief The grading policy.
///
/// Thread-safety: one owner reports to it (e.g. the session's executor);
/// `state()`, `writable()` and `weight_factor()` may be read from any thread
/// (the grade is one atomic, stored with release, loaded with acquire).
/// Cost: a few comparisons and a clock read per report; no allocation.
template <class Clock = std::chrono::steady_clock>
class health_monitor {
 public:
  using time_point = typename Clock::time_point;
  using transition = health_transition<time_point>;
  using listener = std::function<void(const transition&)>;

  /// Throws `seckill::error` (`errc::invalid_argument`) for inconsistent
  /// thresholds (see `validate`).
  explicit health_monitor(health_thresholds t = {}, Clock clock = {})
      : t_(t), clock_(std::move(clock)), last_success_(clock_.now()) {
    validate(t_);
  }
  health_monitor(const health_monitor&) = delete;
  health_monitor& operator=(const health_monitor&) = delete;

  /// The current grade; any thread.
  [[nodiscard]] health_state state() const noexcept {
    return state_.load(std::memory_order_acquire);
  }
  /// Sets the lease TTL the offline threshold counts from (validated as in
  /// the constructor; the thresholds stay unchanged when it throws).
  void set_lease_ttl(std::chrono::milliseconds ttl) {
    health_thresholds next = t_;
    next.lease_ttl = ttl;
    validate(next);
    t_ = next;
  }
  [[nodiscard]] unsigned consecutive_failures() const noexcept { return failures_; }
  [[nodiscard]] const health_thresholds& thresholds() const noexcept { return t_; }
  /// The weight multiplier of the current grade (0 when read-only or offline).
  [[nodiscard]] double weight_factor() const noexcept {
    switch (state()) {
      case health_state::healthy:
        return 1.0;
      case health_state::degraded:
        return t_.degraded_weight_factor;
      default:
        return 0.0;
    }
  }
  /// Whether the instance may take writes (purchases) now.
  [[nodiscard]] bool writable() const noexcept {
    const health_state s = state();
    return s == health_state::healthy || s == health_state::degraded;
  }
  /// Transitions so far (for metrics).
  [[nodiscard]] std::uint64_t transitions() const noexcept { return transitions_; }

  /// Adds a listener called with each transition (on the reporting thread).
  void on_transition(listener l) { listeners_.push_back(std::move(l)); }

  void keepalive_succeeded() {
    failures_ = 0;
    last_success_ = clock_.now();
    const health_state now = state();
    if (now == health_state::healthy) return;
    if (++successes_ < t_.recover_after_successes) return;
    successes_ = 0;
    // one grade per streak of successes: offline climbs only through lease_renewed()
    switch (now) {
      case health_state::read_only:
        move(health_state::degraded);
        break;
      case health_state::degraded:
        move(health_state::healthy);
        break;
      default:
        break;
    }
  }

  void keepalive_failed() {
    ++failures_;
    successes_ = 0;
    regrade();
  }

  /// The lease expired or was revoked: its registry record is gone, so no new
  /// purchases (read-only at least); offline follows when no renewal succeeds
  /// within the offline threshold.
  void lease_lost() {
    successes_ = 0;
    if (state() != health_state::offline) raise_to(health_state::read_only);
    regrade();
  }

  /// A new lease was granted after a loss: back in the registry, read-only
  /// until keepalives prove the link again.
  void lease_renewed() {
    failures_ = 0;
    successes_ = 0;
    last_success_ = clock_.now();
    if (state() == health_state::offline) move(health_state::read_only);
  }

  /// Re-evaluates the silence thresholds against the clock (`attach_health`
  /// calls it from a timer).
  void poll() { regrade(); }

 private:
  void regrade() {
    if (state() == health_state::offline) return;
    health_state target = health_state::healthy;
    if (failures_ >= t_.degraded_after_failures) target = health_state::degraded;
    if (failures_ >= t_.read_only_after_failures) target = health_state::read_only;
    const auto silence = clock_.now() - last_success_;
    if (t_.read_only_after_silence > std::chrono::milliseconds::zero() &&
        silence >= t_.read_only_after_silence) {
      target = health_state::read_only;
    }
    if (silence >= t_.offline_after()) target = health_state::offline;
    raise_to(target);
  }

  // Grades only go down here; they climb through successes and renewals.
  void raise_to(health_state target) {
    if (static_cast<int>(target) > static_cast<int>(state())) move(target);
  }

  void move(health_state to) {
    const health_state from = state();
    if (to == from) return;
    const transition t{from, to, clock_.now(), failures_};
    state_.store(to, std::memory_order_release);
    ++transitions_;
    for (auto& l : listeners_) l(t);
  }

  health_thresholds t_;
  Clock clock_;
  time_point last_success_;
  std::atomic<health_state> state_{health_state::healthy};
  unsigned failures_ = 0;
  unsigned successes_ = 0;
  std::uint64_t transitions_ = 0;
  std::vector<listener> listeners_;
};

/// @brief The purchase engine's `Gate` for this node's health: admits while
///        the grade is healthy or degraded, refuses (`errc::read_only`) while
///        it is read-only or offline.
///
/// Thread-safety: `admits()` from any thread. Cost: one acquire load. The
/// monitor must outlive it.
template <class Monitor>
class health_gate {
 public:
  explicit health_gate(const Monitor& m) noexcept : m_(&m) {}
  [[nodiscard]] bool admits() const noexcept { return m_->writable(); }
  [[nodiscard]] health_state state() const noexcept { return m_->state(); }

 private:
  const Monitor* m_;
};

/// @brief What `attach_health` returns: while it lives, the session's
///        reports reach the monitor and a timer polls its silence thresholds.
///
/// Thread-safety: destroy it on the session's executor. Cost: one timer wake
/// per poll interval.
class health_link {
 public:
  health_link() = default;
  health_link(health_link&&) noexcept = default;
  health_link& operator=(health_link&& o) noexcept {
    if (this != &o) {
      detach();
      st_ = std::move(o.st_);
    }
    return *this;
  }
  health_link(const health_link&) = delete;
  health_link& operator=(const health_link&) = delete;
  ~health_link() { detach(); }

  /// Stops feeding the monitor (the session's listeners become no-ops).
  void detach() {
    if (!st_) return;
    st_->active = false;
    st_->timer.cancel();
    st_.reset();
  }

  struct state {
    template <class Executor>
    explicit state(const Executor& ex) : timer(ex) {}
    bool active = true;
    boost::asio::steady_timer timer;
    std::function<void()> poll;
  };
  explicit health_link(std::shared_ptr<state> s) : st_(std::move(s)) {}

 private:
  std::shared_ptr<state> st_;
};

/// @brief Feeds a monitor from a session's keepalives, losses and renewals
///        (adds listeners to the session; `also` runs after each report with
///        the grade), sets its lease TTL from the session's, and polls it
///        every `poll_every` so that the silence thresholds (offline at lease
///        TTL + grace) fire with no report coming in. Feeding stops when the
///        returned link is destroyed; the monitor must outlive the link.
template <class Session, class Monitor>
[[nodiscard]] health_link attach_health(
    Session& s, Monitor& m, std::function<void(health_state)> also = {},
    std::chrono::milliseconds poll_every = std::chrono::milliseconds(250)) {
  if (poll_every <= std::chrono::milliseconds::zero()) {
    throw error(
        seckill::errc::invalid_argument,
        "health poll interval " + std::to_string(poll_every.count()) + " ms is not positive");
  }
  m.set_lease_ttl(std::chrono::duration_cast<std::chrono::milliseconds>(s.ttl()));
  auto st = std::make_shared<health_link::state>(s.get_executor());
  s.on_keepalive([st, &m, also](bool ok, unsigned) {
    if (!st->active) return;
    if (ok) {
      m.keepalive_succeeded();
    } else {
      m.keepalive_failed();
    }
    if (also) also(m.state());
  });
  s.on_lost([st, &m, also](std::error_code, std::int64_t) {
    if (!st->active) return;
    m.lease_lost();
    if (also) also(m.state());
  });
  s.on_renewed([st, &m, also](std::int64_t) {
    if (!st->active) return;
    m.lease_renewed();
    if (also) also(m.state());
  });
  auto loop = [](std::shared_ptr<health_link::state> p, Monitor& mon,
                 std::function<void(health_state)> report,
                 std::chrono::milliseconds every) -> boost::asio::awaitable<void> {
    while (p->active) {
      p->timer.expires_after(every);
      auto [ec] = co_await p->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (!p->active) co_return;
      (void)ec;
      const health_state before = mon.state();
      mon.poll();
      if (report && mon.state() != before) report(mon.state());
    }
  };
  boost::asio::co_spawn(s.get_executor(), loop(st, m, also, poll_every), boost::asio::detached);
  return health_link(std::move(st));
}

}  // namespace seckill::etcd
