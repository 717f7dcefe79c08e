#pragma once
/// @file
/// @brief The plain values a page takes and gives: its options, a click's
///        options, an element's box, a mutation report, a response report,
///        and the handle that keeps such a callback registered. Standard
///        library only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace seckill::browser {

/// @brief Limits and names a page uses.
///
/// A plain value. Cost: none.
struct page_options {
  std::chrono::milliseconds call_timeout{std::chrono::seconds(10)};        ///< per DevTools call
  std::chrono::milliseconds navigation_timeout{std::chrono::seconds(30)};  ///< until `load`
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(10)};  ///< wait_for's re-check
  std::string world_name = "__seckill_world";  ///< the isolated world seckill's scripts run in
  std::uint64_t input_seed =
      1;  ///< seeds the jitter of clicks (click_options): same seed, same input
  /// Opens the tab in a window of its own, so that it is shown whatever
  /// other tabs are open: a tab behind another in one window is hidden, and
  /// Chromium then pauses its animation frames and throttles its timers
  /// (clicks wait, screenshots stall). false: a tab in the current window.
  bool new_window = true;
};

/// @brief How click() moves and presses the mouse. The jitter, off by
///        default, is drawn from the page's generator (page_options::input_seed):
///        a run with the same seed and the same clicks sends the same input.
///
/// A plain value. Cost: none.
struct click_options {
  int move_steps = 3;  ///< mouseMoved events on the way
  std::chrono::milliseconds press_duration{std::chrono::milliseconds(60)};  ///< press to release
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};  ///< waiting for actionability
  std::chrono::milliseconds press_jitter{0};  ///< the press lasts up to this much longer
  double path_jitter = 0;  ///< CSS pixels each move on the way may stray (the press never does)
};

/// @brief An element's box in CSS pixels of the viewport, by its centre.
///
/// A plain value. Cost: none.
struct element_box {
  double center_x = 0;  ///< the centre's distance from the viewport's left edge
  double center_y = 0;  ///< the centre's distance from the viewport's top edge
  double width = 0;
  double height = 0;
};

/// @brief What on_mutation() reports: the first element matching the selector
///        (present or not) and its trimmed text. `initial` marks the report a
///        new document makes of its state once its DOM is parsed.
///
/// A plain value. Cost: that of its text.
struct mutation_record {
  bool present = false;
  std::string text;
  bool initial = false;
};

/// @brief What on_response() reports: a response the page received, by the
///        URL it answered and its HTTP status (and its Retry-After, which a
///        throttling shop sends with a 429 or 503).
///
/// A plain value. Cost: that of its URL.
struct response_record {
  std::string url;
  int status = 0;
  std::string retry_after = {};  ///< its Retry-After header as sent (empty when absent)
};

/// @brief What on_response_body() reports: a response the page received
///        and read to its end, with its body or why there is none. The
///        page's request is not changed or held: the body is read from
///        DevTools' copy after it arrived.
///
/// A plain value. Cost: that of its body.
struct response_body_record {
  std::string url;
  int status = 0;
  std::string body;            ///< the text; empty when `problem` says why
  std::string problem;         ///< "too large: ...", "binary", "unavailable: ..."; empty: a body
  bool from_cache = false;     ///< served by a cache: disk, service worker, prefetch, or Age > 0
  std::string date;            ///< its Date header (empty when absent)
  std::string etag;            ///< its ETag header (empty when absent)
  std::uint64_t sequence = 0;  ///< 1, 2, ... per page, in the order responses arrived
};

/// @brief Keeps an on_mutation() (or on_markup(), on_response()) callback
///        registered; ends it on destruction.
///
/// Thread-safety: one owner; destruction from any thread (the callback may run
/// once more if it was already queued on the page's strand). Cost: one map
/// entry, and the observer installed in every new document, until reset.
class mutation_subscription {
 public:
  mutation_subscription() = default;
  /// Adopts `reset`, called once when the subscription ends (page::async_on_mutation makes these).
  explicit mutation_subscription(std::function<void()> reset) : reset_(std::move(reset)) {}
  mutation_subscription(mutation_subscription&& o) noexcept
      : reset_(std::exchange(o.reset_, nullptr)) {}
  mutation_subscription& operator=(mutation_subscription&& o) noexcept {
    if (this != &o) {
      reset();
      reset_ = std::exchange(o.reset_, nullptr);
    }
    return *this;
  }
  mutation_subscription(const mutation_subscription&) = delete;
  mutation_subscription& operator=(const mutation_subscription&) = delete;
  ~mutation_subscription() { reset(); }

  /// Ends the subscription (no-op when it has ended).
  void reset() noexcept {
    if (reset_) std::exchange(reset_, nullptr)();
  }
  [[nodiscard]] bool active() const noexcept { return static_cast<bool>(reset_); }

 private:
  std::function<void()> reset_;
};

}  // namespace seckill::browser
