#pragma once
/// @file
/// @brief Graded degradation of an instance from what its etcd session sees:
///        healthy -> degraded (weight scaled, 30% by default) -> read-only ->
///        offline (lease expired and removed), and back when keepalives
///        succeed again. Each transition is an event for the registry's
///        resolver and for metrics.
///
/// `health_monitor` is a pure policy over a Clock (unit tests drive it with
/// `seckill::manual_clock`); `attach_health` feeds it from a `session`.

#include <seckill/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

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
  unsigned degraded_after_failures = 1;   ///< consecutive keepalive failures
  unsigned read_only_after_failures = 3;  ///< consecutive keepalive failures
  /// No successful keepalive for this long also means read-only (zero: off).
  std::chrono::milliseconds read_only_after_silence{0};
  double degraded_weight_factor = 0.3;  ///< weight multiplier while degraded
  /// Successes in a row needed to climb back one grade.
  unsigned recover_after_successes = 1;
};

/// @brief One transition, as events and metrics see it.
template <class TimePoint>
struct health_transition {
  health_state from;
  health_state to;
  TimePoint at;
  unsigned consecutive_failures;
};

/// @brief The grading policy. Thread-safety: none (one owner, e.g. the
///        session's executor). Cost: a few comparisons per report; no allocation.
template <class Clock = std::chrono::steady_clock>
class health_monitor {
 public:
  using time_point = typename Clock::time_point;
  using transition = health_transition<time_point>;
  using listener = std::function<void(const transition&)>;

  explicit health_monitor(health_thresholds t = {}, Clock clock = {})
      : t_(t), clock_(std::move(clock)), last_success_(clock_.now()) {
    if (t_.degraded_after_failures == 0 ||
        t_.read_only_after_failures < t_.degraded_after_failures) {
      throw error(seckill::errc::invalid_argument,
                  "health thresholds: degraded after " +
                      std::to_string(t_.degraded_after_failures) + " and read-only after " +
                      std::to_string(t_.read_only_after_failures) +
                      " failures (need 1 <= degraded <= read-only)");
    }
    if (!(t_.degraded_weight_factor > 0.0 && t_.degraded_weight_factor <= 1.0)) {
      throw error(seckill::errc::invalid_argument, "health thresholds: degraded weight factor " +
                                                       std::to_string(t_.degraded_weight_factor) +
                                                       " outside (0, 1]");
    }
    if (t_.recover_after_successes == 0) t_.recover_after_successes = 1;
  }

  [[nodiscard]] health_state state() const noexcept { return state_; }
  [[nodiscard]] unsigned consecutive_failures() const noexcept { return failures_; }
  [[nodiscard]] const health_thresholds& thresholds() const noexcept { return t_; }
  /// The weight multiplier of the current grade (0 when read-only or offline).
  [[nodiscard]] double weight_factor() const noexcept {
    switch (state_) {
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
    return state_ == health_state::healthy || state_ == health_state::degraded;
  }
  /// Transitions so far (for metrics).
  [[nodiscard]] std::uint64_t transitions() const noexcept { return transitions_; }

  void on_transition(listener l) { listener_ = std::move(l); }

  void keepalive_succeeded() {
    failures_ = 0;
    last_success_ = clock_.now();
    if (state_ == health_state::healthy) return;
    if (++successes_ < t_.recover_after_successes) return;
    successes_ = 0;
    // one grade per streak of successes: offline climbs only through lease_renewed()
    switch (state_) {
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
    grade();
  }

  /// The lease expired or was revoked: the instance left the registry.
  void lease_lost() {
    successes_ = 0;
    move(health_state::offline);
  }

  /// A new lease was granted after a loss: back in the registry, read-only
  /// until keepalives prove the link again.
  void lease_renewed() {
    failures_ = 0;
    successes_ = 0;
    last_success_ = clock_.now();
    if (state_ == health_state::offline) move(health_state::read_only);
  }

  /// Re-evaluates the silence threshold against the clock (call it from a
  /// timer, or before deciding on a write).
  void poll() { grade(); }

 private:
  void grade() {
    if (state_ == health_state::offline) return;
    health_state target = health_state::healthy;
    if (failures_ >= t_.degraded_after_failures) target = health_state::degraded;
    if (failures_ >= t_.read_only_after_failures) target = health_state::read_only;
    if (t_.read_only_after_silence > std::chrono::milliseconds::zero() &&
        clock_.now() - last_success_ >= t_.read_only_after_silence) {
      target = health_state::read_only;
    }
    if (static_cast<int>(target) > static_cast<int>(state_)) move(target);
  }

  void move(health_state to) {
    if (to == state_) return;
    const transition t{state_, to, clock_.now(), failures_};
    state_ = to;
    ++transitions_;
    if (listener_) listener_(t);
  }

  health_thresholds t_;
  Clock clock_;
  time_point last_success_;
  health_state state_ = health_state::healthy;
  unsigned failures_ = 0;
  unsigned successes_ = 0;
  std::uint64_t transitions_ = 0;
  listener listener_;
};

/// @brief Feeds a monitor from a session's keepalives, losses and renewals
///        (adds listeners to the session; `also` runs after each report).
template <class Session, class Monitor>
void attach_health(Session& s, Monitor& m, std::function<void(health_state)> also = {}) {
  s.on_keepalive([&m, also](bool ok, unsigned) {
    if (ok) {
      m.keepalive_succeeded();
    } else {
      m.keepalive_failed();
    }
    if (also) also(m.state());
  });
  s.on_lost([&m, also](std::error_code, std::int64_t) {
    m.lease_lost();
    if (also) also(m.state());
  });
  s.on_renewed([&m, also](std::int64_t) {
    m.lease_renewed();
    if (also) also(m.state());
  });
}

}  // namespace seckill::etcd
