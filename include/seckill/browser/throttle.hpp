#pragma once
/// @file
/// @brief One account's answer to a shop that throttles it: what counts as
///        a refusal (HTTP 429, 503), the shop's Retry-After, and the back-off
///        that honours it and stops after repeated refusals. The standard
///        library, seckill/backoff.hpp and browser/shop_clock.hpp (the HTTP date)
///        only.

#include <seckill/backoff.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/detail/splitmix64.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace seckill::browser {

/// True for the HTTP statuses a shop throttles with: 429 Too Many Requests
/// and 503 Service Unavailable.
constexpr bool is_throttling_status(int status) noexcept { return status == 429 || status == 503; }

/// @brief A Retry-After header's value as a wait from `now`: delay-seconds
///        ("120") or an HTTP-date ("Fri, 04 Dec 2026 20:00:00 GMT"; a date
///        already past is a wait of zero). nullopt for anything else (the
///        caller's own back-off then applies). Free: no allocation.
inline std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view v, std::chrono::system_clock::time_point now) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  auto number = [](std::string_view s, std::int64_t& out) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && out >= 0;
  };
  if (v.front() >= '0' && v.front() <= '9') {
    std::int64_t s = 0;
    if (!number(v, s) || s > 86'400 * 366) return std::nullopt;  // at most a year
    return std::chrono::milliseconds(s * 1000);
  }
  const auto at = parse_http_date(v);  // the IMF-fixdate every server sends
  if (!at) return std::nullopt;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*at - now);
  return std::max(wait, std::chrono::milliseconds(0));
}

/// @brief How an account backs off a shop that refuses it.
struct throttle_options {
  std::chrono::milliseconds initial{std::chrono::seconds(1)};  ///< the first back-off
  std::chrono::milliseconds max{std::chrono::minutes(1)};      ///< the longest back-off
  int max_refusals = 5;    ///< refusals in a row that stop the account (at least 1)
  std::uint64_t seed = 1;  ///< the jitter's seed: the same seed, the same pauses
};

/// @brief What a refusal leads to: wait until `until`, or stop for good.
template <class Clock>
struct throttle_decision {
  bool stop = false;                   ///< max_refusals in a row: the account stops
  typename Clock::time_point until{};  ///< no action before this (when not stopped)
  std::chrono::milliseconds wait{0};   ///< until - the refusal's time
  int refusals = 0;                    ///< refusals in a row, this one included
};

/// @brief One account's back-off: each refusal (a throttling status, an
///        error page) pauses the account for the longer of the shop's
///        Retry-After and seckill::backoff_delay (doubling from
///        options.initial up to options.max, jittered by a seeded
///        generator); max_refusals refusals in a row stop it; an accepted
///        action resets the count. One per account: an account's back-off
///        never pauses another.
///
/// Thread-safety: none (one account's run uses it). Cost: a few integers;
/// no allocation, no clock read except where a time is asked for.
template <class Clock = std::chrono::steady_clock>
class throttle_policy {
 public:
  using time_point = typename Clock::time_point;
  using decision = throttle_decision<Clock>;

  explicit throttle_policy(throttle_options o = {}, Clock clock = {})
      : opts_(o), clock_(std::move(clock)), rng_(o.seed) {
    opts_.max_refusals = std::max(1, opts_.max_refusals);
  }

  /// The shop refused (now): how long to wait, or stop. `retry_after`: the
  /// shop's Retry-After, when it gave one.
  decision refused(std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    decision d;
    d.refusals = ++refusals_;
    const time_point now = clock_.now();
    if (refusals_ >= opts_.max_refusals) {
      stopped_ = true;
      d.stop = true;
      d.until = now;
      return d;
    }
    d.wait = backoff_delay(static_cast<unsigned>(refusals_ - 1), opts_.initial, opts_.max,
                           next_jitter());
    if (retry_after) d.wait = std::max(d.wait, *retry_after);
    d.until = now + std::chrono::duration_cast<typename Clock::duration>(d.wait);
    until_ = d.until;
    return d;
  }

  /// The shop accepted an action: the count of refusals starts again.
  void accepted() noexcept { refusals_ = 0; }

  /// True once max_refusals refusals in a row stopped the account.
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// True while a back-off runs (not stopped): no action before resume_at().
  [[nodiscard]] bool backing_off() const { return !stopped_ && clock_.now() < until_; }
  /// When the current back-off ends.
  [[nodiscard]] time_point resume_at() const noexcept { return until_; }
  /// Refusals in a row so far.
  [[nodiscard]] int refusals() const noexcept { return refusals_; }

 private:
  double next_jitter() noexcept { return seckill::detail::splitmix64_fraction(rng_); }

  throttle_options opts_;
  Clock clock_;
  std::uint64_t rng_;
  int refusals_ = 0;
  bool stopped_ = false;
  time_point until_{};
};

}  // namespace seckill::browser
