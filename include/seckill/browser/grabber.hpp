#pragma once
/// @file
/// @brief The buyer's side of a flash sale: watch a shop, decide with a
///        strategy, buy the moment stock appears, at a human pace.
///
/// Three layers: perception (a shop_driver's events: the stock status, the
/// offers, the order's outcome; a snapshot of the offers), decision (a
/// Strategy picks a SKU and a quantity: browser/strategy.hpp, included here),
/// execution (choose the offer, set the quantity, press buy), paced by a
/// token bucket. browser/page_driver.hpp, included here, is the driver over a
/// Chromium tab.

#include <seckill/browser/clock_sync.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/sale_time.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/browser/webhook.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/detail/splitmix64.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief A Limiter paces actions; seckill::token_bucket models it.
template <class L>
concept action_limiter = requires(L& l) {
  { l.try_acquire(1.0) } -> std::convertible_to<bool>;
  {l.time_until(1.0)};
};

/// @brief What the grabber did, step by step.
enum class grab_step {
  watching,       ///< subscribed to the stock status
  stock_changed,  ///< the status text changed
  decided,        ///< the strategy picked an offer
  skipped,        ///< in stock, but nothing the strategy wants
  paced,          ///< waited for the token bucket
  ordered,        ///< pressed buy
  confirmed,      ///< the shop confirmed the order
  rejected,       ///< the shop refused the order
  failed,         ///< an action failed (element missing, not actionable, ...)
  gave_up,        ///< the deadline passed
  scheduled,      ///< the start, on the shop's clock and the local one
  started,        ///< the start came: the grabber acts from now on
  paused,         ///< a random pause before an action (delay)
  reloaded,       ///< reload-poll: the page was loaded again
  reload_failed,  ///< reload-poll: a reload failed (tried again at the next turn)
  sold_out,       ///< a stock window closed with no order
  hand_off,       ///< a verification shows: a person must solve it; the grabber does nothing
  resumed,        ///< the verification is gone: the grabber reads the page and acts again
  unconfirmed,    ///< a "just in stock" response not acted on (yet): cached, contradicted, alone
  would_press,    ///< dry run: everything up to the press done and the button checked; no press
  watched,        ///< monitor: the deadline ended the watch
  throttled,      ///< the shop refused by throttling (HTTP 429 / 503, its throttled page)
  backing_off,    ///< after a throttling refusal: no action until the back-off ends
  stopped,        ///< "stopped-refused": max_refusals throttling refusals in a row end the run
  ready,          ///< before the start: offer chosen, quantity set, buy button looked at
  not_ready,      ///< "not-ready": before the start, what could not be made ready, and why
};

/// The step's name as the log writes it ("stock-changed", "gave-up", ...).
constexpr std::string_view to_string(grab_step s) noexcept {
  switch (s) {
    case grab_step::watching:
      return "watching";
    case grab_step::stock_changed:
      return "stock-changed";
    case grab_step::decided:
      return "decided";
    case grab_step::skipped:
      return "skipped";
    case grab_step::paced:
      return "paced";
    case grab_step::ordered:
      return "ordered";
    case grab_step::confirmed:
      return "confirmed";
    case grab_step::rejected:
      return "rejected";
    case grab_step::failed:
      return "failed";
    case grab_step::gave_up:
      return "gave-up";
    case grab_step::scheduled:
      return "scheduled";
    case grab_step::started:
      return "started";
    case grab_step::paused:
      return "paused";
    case grab_step::reloaded:
      return "reloaded";
    case grab_step::reload_failed:
      return "reload-failed";
    case grab_step::sold_out:
      return "sold-out";
    case grab_step::hand_off:
      return "hand-off";
    case grab_step::resumed:
      return "resumed";
    case grab_step::unconfirmed:
      return "unconfirmed";
    case grab_step::would_press:
      return "would-press";
    case grab_step::watched:
      return "watched";
    case grab_step::throttled:
      return "throttled";
    case grab_step::backing_off:
      return "backing-off";
    case grab_step::ready:
      return "ready";
    case grab_step::not_ready:
      return "not-ready";
    case grab_step::stopped:
      return "stopped-refused";
  }
  return "unknown";
}

/// @brief One reported step, stamped by the grabber's Clock.
template <class Clock = std::chrono::steady_clock>
struct basic_grab_event {
  grab_step step;
  std::string detail;
  typename Clock::time_point at;
};
using grab_event = basic_grab_event<>;

/// @brief How long the grabber waits for the shop, how often it tries, and
///        where it reports.
template <class Clock = std::chrono::steady_clock>
struct basic_grabber_options {
  std::chrono::milliseconds confirm_timeout{std::chrono::seconds(5)};  ///< press to answer
  int retries = 1;  ///< more tries within one stock window after a refused or failed one
  std::function<void(const basic_grab_event<Clock>&)> on_event;  ///< every step (driver's executor)
  std::function<void(std::string_view)> log;  ///< one human-readable line per step

  /// When the sale opens, on the shop's clock: nothing is chosen or pressed
  /// (and nothing reloaded) before; the deadline counts from it. None: at
  /// once, or when a countdown the driver reports reaches zero.
  std::optional<sale_time> start;
  int clock_samples = 5;  ///< readings of the shop's clock taken for a start
  /// Straddle rounds after them (async_sync_clock) when the shop's time has
  /// whole seconds and the driver can time its readings; 0: none.
  int clock_rounds = 4;
  /// The shop clock's offset set by hand (local minus shop): replaces the
  /// estimate; the shop's clock is not read.
  std::optional<std::chrono::milliseconds> manual_offset;
  /// The estimate must be at least this precise (its uncertainty, the
  /// interval's half-width): else the run ends with errc::clock_uncertain,
  /// or with warn_uncertain_clock only a warning is logged. None: any.
  std::optional<std::chrono::milliseconds> max_clock_uncertainty;
  bool warn_uncertain_clock = false;  ///< true: an uncertain clock is logged, not refused
  /// Read the shop's clock again this long before the start (both
  /// estimates logged; the new one moves the start). None: once only.
  std::optional<std::chrono::milliseconds> resync_before{std::chrono::seconds(10)};
  /// Get ready this long before the start: the session and the page
  /// checked, the offer the strategy would take chosen and its quantity set,
  /// the buy button found actionable (the `ready` step, or `not-ready` with
  /// why), so that at the start only the snapshot and the press remain.
  /// None: nothing before the start.
  std::optional<std::chrono::milliseconds> prepare_before{std::chrono::seconds(5)};
  /// The local wall clock the shop's clock is compared with; empty:
  /// system_clock::now. A test on a manual Clock maps that clock here.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  /// Reload-poll: load the page again this often (each reload takes a token
  /// of the pace). None: the page updates itself (live).
  std::optional<std::chrono::milliseconds> reload_every;
  delay_range delay;             ///< a random pause before each action, in these bounds
  std::uint64_t delay_seed = 1;  ///< same seed, same pauses
  bool pace_reaction = true;     ///< false: the first try after a flip takes no token and no pause
  /// The notices of the run (driver's executor): one `ordered` for a
  /// confirmed order, one `failed` when the run gives up or ends on an error
  /// (not when cancelled), the first `sold-out` (a stock window that closed
  /// with no order), each `hand-off`. browser::notifier sends them.
  std::function<void(notice)> notify;
  /// buy; dry_run: choose, set the quantity, check the buy button is
  /// actionable, and end the run there (`would-press`) without pressing;
  /// monitor: choose, set and press nothing, tell each stock change (a
  /// `stock` notice) until the deadline, which ends the run without error.
  grab_mode mode = grab_mode::buy;
  /// The account's answer to a shop that throttles it: after each throttling
  /// refusal no action (nor reload) before the longer of the shop's
  /// Retry-After and the back-off; max_refusals in a row end the run
  /// (errc::stopped_refused, the `stopped` notice).
  throttle_options throttle;
};
using grabber_options = basic_grabber_options<>;

/// @brief Sets what a strategy file and a site profile say of the run:
///        retries, the start, the pauses (seeded by delay_seed, else by
///        `input_seed`, the page's: page_options::input_seed), whether the
///        reaction is paced, and reload-poll (profile `watch = reload`).
template <class Clock>
void apply_strategy(basic_grabber_options<Clock>& o, const strategy_config& cfg,
                    const site_profile& profile, std::uint64_t input_seed = 1) {
  o.retries = cfg.retries;
  o.start = cfg.start;
  o.delay = cfg.delay;
  o.delay_seed = cfg.delay_seed.value_or(input_seed);
  o.pace_reaction = cfg.pace_reaction;
  o.mode = cfg.mode;
  o.throttle = cfg.throttle;
  o.manual_offset = cfg.clock_offset;
  o.max_clock_uncertainty = cfg.max_clock_uncertainty;
  o.warn_uncertain_clock = cfg.warn_uncertain_clock;
  o.resync_before = cfg.resync_before;
  o.prepare_before = cfg.prepare_before;
  if (profile.watch == site_profile::watch_mode::reload) o.reload_every = profile.reload_every;
}

/// @brief How a grab ended.
template <class Clock = std::chrono::steady_clock>
struct basic_grab_result {
  bool ordered = false;
  std::string sku;
  int quantity = 0;
  int requested =
      0;  ///< what the strategy was asked for; more than quantity when less was in stock
  std::string confirmation;           ///< the shop's result text
  int attempts = 0;                   ///< buy presses
  int reloads = 0;                    ///< reload-poll: the page loads asked for
  std::optional<clock_offset> clock;  ///< the shop clock's estimate, when there was a start
  bool would_order =
      false;  ///< dry run: chosen, quantity set, buy checked; sku and quantity say what

  int throttled = 0;     ///< throttling refusals (429 / 503, the throttled page)
  bool stopped = false;  ///< max_refusals throttling refusals in a row stopped the run
  std::vector<basic_grab_event<Clock>> events;
};
using grab_result = basic_grab_result<>;

namespace detail {

/// The `decided` step's words: "2 x veg-box at 18.50", and when less is in
/// stock than was asked, "(fewer than the 3 asked: 2 in stock)".
inline std::string describe_intent(const order_intent& i) {
  std::string s = fmt::format("{} x {} at {:.2f}", i.quantity, i.sku, i.price);
  if (i.requested > i.quantity) {
    s += fmt::format(" (fewer than the {} asked: {} in stock)", i.requested, i.quantity);
  }
  return s;
}

}  // namespace detail

/// @brief Buys the moment stock appears: follows the shop's stock status
///        through a shop_driver, asks the Strategy what to buy, chooses it,
///        sets the quantity, presses buy, and waits for the shop's answer.
///
/// A stock window is the time the status says "in stock". Each change of the
/// status (or of the offers) leads to at most one order; a refused order, an
/// order the shop does not answer within confirm_timeout, or a failed action
/// is tried again at once, up to `retries` more times in the same window; a
/// new window starts the count again. A status that flaps while an order is
/// in flight does not cause a second one; a change while the grabber waits
/// for the pace drops that attempt (the next one decides on the new page).
/// Stops after a confirmed order or at the deadline. Every action (choose,
/// quantity, press) takes a token from the Limiter, so the shop sees a human
/// pace, after a random pause within options.delay (seeded: the same seed
/// gives the same pauses); with pace_reaction = false, the first try after
/// the stock flips to available (or after the start) takes neither: retries
/// and later tries are paced.
/// A driver that models ordering_shop_driver gets a try's actions in one
/// async_order when nothing is to come between them: no dry run, no random
/// pause, and every action's token at hand at once (taken together), or an
/// unpaced reaction. A try that fails there has spent every action's token,
/// reached or not.
///
/// A person in the loop: while the driver reports a verification (a captcha,
/// a slider, an SMS code), the grabber chooses, presses and reloads nothing
/// and sends no request of its own (the `hand-off` step and notice, once per
/// appearance); when it is gone (`resumed`), the page is read again before
/// any action. The deadline still applies. It never touches the verification.
/// Stock from the network (status events whose source is
/// event_source::network): a response that closes a window acts at once; one
/// that opens it is re-checked first: one served by a cache is stale and
/// ignored, one the page contradicts is ignored, and one the page did not
/// check waits for a newer response (a higher `response` number, not from a
/// cache) that says in stock too. A new document starts the re-check anew.
/// Each such signal not acted on is the `unconfirmed` step.
///
/// Dry run and monitor (options.mode): a dry run does everything up to the
/// press (the decision, the choice, the quantity, each paced, then the buy
/// button's actionability through the driver's async_check_buy when it has
/// one) and ends there with a `would-press` step; monitor only watches: each
/// stock change is logged and, when it flips in or out of stock, told as a
/// `stock` notice.
///
/// Throttling (options.throttle, one throttle_policy per grabber): a
/// throttled outcome (HTTP 429 or 503 to the order, the profile's
/// `throttled` element or text) is the `throttled` step, not a failed try;
/// then no try and no reload until the longer of the shop's Retry-After and
/// the back-off (`backing-off`), and max_refusals such refusals in a row end
/// the run with errc::stopped_refused (`stopped-refused`, the `stopped`
/// notice). A plain refusal or an order resets the count. Give each account
/// its own grabber and Limiter: one account's back-off or stop then never
/// pauses another.
///
/// Sale start: with options.start, the grabber watches from the beginning
/// but acts only from the start, converted to the local clock by an
/// estimate of the shop clock's offset (async_sync_clock: the driver's clock
/// samples intersected, straddling the shop's second boundaries; or
/// options.manual_offset), at the latest moment the estimate allows, so
/// never before the shop's start (logged as the `scheduled` step); read
/// again resync_before the start. prepare_before the start, it gets ready
/// (`ready`, or `not-ready` and why): the session checked, the offer it
/// would take chosen and the quantity set, the buy button looked at (when
/// the driver has async_check_session / async_look_at_buy); at the start
/// it does not redo what the page's snapshot still shows done. Without one, a
/// countdown the driver reports sets the start to now plus the time it
/// shows, and each new text of it moves the start. Reload-poll
/// (options.reload_every): from the start, the page is reloaded every
/// reload_every, each reload taking a token, so polling never exceeds the
/// pace; a failed reload is reported and tried again at the next turn. Each step is reported to
/// options.on_event and options.log and kept in the result.
///
/// Driver models shop_driver (browser::page_driver over a Chromium tab; a
/// page given directly is driven by the demo shop's profile); Strategy
/// models grab_strategy; Limiter models action_limiter (by reference: one
/// bucket can pace several grabbers); Clock stamps the steps and measures the
/// deadline and the pace (waits go through the driver, which a test double
/// can run on a seckill::manual_clock).
///
/// Thread-safety: one run at a time per grabber; the run lives on the driver's
/// executor. Cost per attempt: the driver's snapshot, choice, quantity and
/// press (the snapshot and the press alone for what was made ready); idle
/// while nothing changes (no polling).
template <shop_driver Driver = page_driver, grab_strategy Strategy = priority_strategy,
          action_limiter Limiter = token_bucket<>, class Clock = std::chrono::steady_clock>
class grabber {
 public:
  using executor_type = typename Driver::executor_type;
  using clock_type = Clock;
  using event_type = basic_grab_event<Clock>;
  using result_type = basic_grab_result<Clock>;
  using options_type = basic_grabber_options<Clock>;

  grabber(Driver driver, Strategy strategy, Limiter& limiter,
          basic_grabber_options<Clock> opts = {}, Clock clock = {})
      : driver_(std::move(driver)),
        strategy_(std::move(strategy)),
        limiter_(limiter),
        opts_(std::move(opts)),
        clock_(std::move(clock)) {}

  /// The driver's executor, where the run lives.
  [[nodiscard]] executor_type get_executor() const { return driver_.get_executor(); }

  /// Runs until a confirmed order (error_code{}), the deadline (errc::timed_out)
  /// or a failure of the shop's page (errc::browser_closed, ...): completes with
  /// (error_code, result_type). Cancelled, it completes with
  /// errc::operation_aborted and what was done so far. A dry run ends with
  /// error_code{} and result.would_order at the press it did not make; a
  /// monitor run with error_code{} at the deadline.
  template <boost::asio::completion_token_for<void(std::error_code, result_type)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_run(std::chrono::milliseconds deadline, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, result_type)>(
        get_executor(), run_and_tell(this, deadline), token);
  }

  [[nodiscard]] const Strategy& strategy() const noexcept { return strategy_; }
  [[nodiscard]] Driver& driver() noexcept { return driver_; }

 private:
  using time_point = typename Clock::time_point;
  using R = std::pair<std::error_code, result_type>;

  // What one run knows between steps.
  struct run_state {
    result_type res;
    time_point deadline{};
    std::deque<shop_event> seen;  // events taken while waiting for the pace
    std::uint64_t generation = 0, decided = 0;
    bool in_stock = false, awaiting = false, retry = false;
    bool reaction = false;  // the next try is the first after a flip (or the start)
    bool started = true, acted = false;
    std::optional<time_point> start;    // on the grabber's clock
    std::optional<time_point> resync;   // when the shop's clock is read again
    std::optional<time_point> prepare;  // when to get ready (options.prepare_before)
    bool prepared = false;              // got ready (or tried to) once this run
    // What was done ahead in this document: the press skips redoing it while
    // the page still shows it (a new document forgets both).
    std::optional<std::string> ahead_sku;
    std::optional<int> ahead_quantity;
    std::chrono::milliseconds deadline_in{0};
    time_point next_reload{};
    std::uint64_t rng = 0;  // the pauses' generator (splitmix64)
    std::string countdown;  // its last text
    int failures = 0;       // failed tries in this stock window
    time_point confirm_until{};
    bool sold_out_told = false;     // the sold-out notice went (once per run)
    bool closed_awaiting = false;   // the window closed while an order awaited its answer
    bool hand_off = false;          // a verification shows: no action, no reload
    std::uint64_t net_pending = 0;  // a fresh "in stock" response awaiting its confirmation
    std::string net_text;           // the last network status acted on
    bool done = false;              // a dry run reached the press

    std::optional<time_point> resume_at;  // backing off: no action before
    int rejected_attempt = -1;            // the press whose answer was a plain refusal
    int throttled_attempt = -1;           // the press whose answer was throttling
  };

  // A notice for options.notify, stamped by the wall clock.
  void tell(notice_kind kind, const result_type& res, std::string text) {
    if (!opts_.notify) return;
    notice n;
    n.kind = kind;
    n.sku = res.sku;
    n.quantity = res.quantity;
    n.text = std::move(text);
    n.at = opts_.wall_clock ? opts_.wall_clock() : std::chrono::system_clock::now();
    opts_.notify(std::move(n));
  }

  // The stock window closed with no order: reported each time, told once.
  void sold_out(run_state& st) {
    report(st.res, grab_step::sold_out, "the stock window closed with no order");
    if (st.sold_out_told) return;
    st.sold_out_told = true;
    tell(notice_kind::sold_out, st.res, "the stock window closed with no order");
  }

  // Sets the start (on the grabber's clock) and the deadline from it.
  void schedule(run_state& st, time_point at) {
    const time_point now = clock_.now();
    st.start = at;
    st.started = now >= at;
    st.deadline = std::max(at, now) + st.deadline_in;
    st.prepare.reset();
    if (!st.started && !st.prepared && opts_.prepare_before && opts_.mode != grab_mode::monitor)
      st.prepare = std::max(
          now, at - std::chrono::duration_cast<typename Clock::duration>(*opts_.prepare_before));
  }

  // The next pause, uniform in [delay.min, delay.max] by the seeded generator.
  std::chrono::milliseconds next_pause(run_state& st) {
    const std::uint64_t z = seckill::detail::splitmix64_next(st.rng);
    const auto span = static_cast<std::uint64_t>((opts_.delay.max - opts_.delay.min).count()) + 1;
    return opts_.delay.min + std::chrono::milliseconds(static_cast<std::int64_t>(z % span));
  }

  // How a pace ended.
  enum class paced { go, stop, changed };

  void report(result_type& res, grab_step step, std::string detail) {
    event_type ev{step, std::move(detail), clock_.now()};
    if (opts_.log) opts_.log(fmt::format("grabber: {}: {}", to_string(step), ev.detail));
    if (opts_.on_event) opts_.on_event(ev);
    res.events.push_back(std::move(ev));
  }

  // A failed try: reported, and tried again while the window allows.
  void fail(run_state& st, grab_step step, std::string detail) {
    report(st.res, step, std::move(detail));
    ++st.failures;
    st.retry = st.failures <= opts_.retries;
  }

  static boost::asio::awaitable<bool> cancel_requested() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  static std::chrono::nanoseconds until(const Clock& c, time_point t) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(t - c.now());
    return std::max(left, std::chrono::nanoseconds::zero());
  }

  // A status from the network, re-checked: true when it goes on as a
  // status change (it closes the window, or a confirmed one opens it).
  bool recheck(run_state& st, const shop_event& ev) {
    if (ev.cached) {  // stale: neither opens nor closes a window
      if (ev.in_stock && !st.in_stock && st.net_text != ev.text) {
        report(st.res, grab_step::unconfirmed,
               fmt::format("'{}' came from a cache: stale, not acted on", ev.text));
      }
      st.net_text = ev.text;
      return false;
    }
    if (!ev.in_stock) {
      st.net_pending = 0;
      const bool change = st.in_stock;
      st.net_text = ev.text;
      return change;
    }
    if (st.in_stock) {  // still in stock: new counts are new offers
      if (ev.text != st.net_text) {
        st.net_text = ev.text;
        ++st.generation;
        report(st.res, grab_step::stock_changed,
               fmt::format("#{} the offers changed: '{}'", st.generation, ev.text));
      }
      return false;
    }
    if (ev.check == page_check::contradicts) {
      st.net_pending = 0;
      st.net_text = ev.text;
      report(st.res, grab_step::unconfirmed,
             fmt::format("'{}' (response {}): the page says otherwise, not acted on", ev.text,
                         ev.response));
      return false;
    }
    if (ev.check == page_check::none && (st.net_pending == 0 || st.net_pending >= ev.response)) {
      st.net_pending = ev.response;
      st.net_text = ev.text;
      report(st.res, grab_step::unconfirmed,
             fmt::format("'{}' (response {}): waiting for a newer response to confirm it", ev.text,
                         ev.response));
      return false;
    }
    st.net_pending = 0;
    st.net_text = ev.text;
    return true;
  }

  // Takes an event in: true when the run is over (a confirmed order).
  bool take(run_state& st, shop_event ev) {
    switch (ev.kind) {
      case shop_event_kind::status: {
        if (ev.source == event_source::network) {
          if (!recheck(st, ev)) return false;
          ev.text = fmt::format("{} (response {}{})", ev.text, ev.response,
                                ev.check == page_check::agrees ? ", the page agrees"
                                : ev.in_stock                  ? ", confirmed by a newer one"
                                                               : "");
        } else if (ev.initial) {
          st.net_pending = 0;  // a new page: its first response is re-checked anew
          st.net_text.clear();
        }
        if (ev.initial) {  // a new document holds nothing chosen ahead
          st.ahead_sku.reset();
          st.ahead_quantity.reset();
        }
        ++st.generation;
        if (ev.in_stock && !st.in_stock) {  // a new stock window
          st.failures = 0;
          st.retry = false;
          st.reaction = true;
          st.closed_awaiting = false;
        }
        const bool closed = !ev.in_stock && st.in_stock && st.started;
        const bool flipped = ev.in_stock != st.in_stock || (ev.initial && ev.in_stock);
        st.in_stock = ev.in_stock;
        report(
            st.res, grab_step::stock_changed,
            fmt::format("#{} '{}'{}", st.generation, ev.text, ev.initial ? " (page loaded)" : ""));
        if (opts_.mode == grab_mode::monitor) {
          if (flipped)
            tell(notice_kind::stock, st.res,
                 fmt::format("{}: '{}'", ev.in_stock ? "in stock" : "out of stock", ev.text));
          return false;  // no order, so no sold-out of one
        }
        if (closed && st.awaiting)
          st.closed_awaiting = true;  // (our order may have taken the last)
        if (closed && !st.awaiting) sold_out(st);
        return false;
      }
      case shop_event_kind::offers:
        ++st.generation;
        report(st.res, grab_step::stock_changed,
               ev.text.empty()
                   ? fmt::format("#{} the offers changed", st.generation)
                   : fmt::format("#{} the offers changed: '{}'", st.generation, ev.text));
        return false;
      case shop_event_kind::outcome:
        if (ev.throttled) {
          take_throttled(st, std::move(ev));
          return false;
        }
        if (!st.awaiting) return false;  // not an answer to an order of this run
        st.awaiting = false;
        st.res.confirmation = ev.text;
        if (ev.confirmed) {
          st.res.ordered = true;
          report(st.res, grab_step::confirmed, ev.text);
          return true;
        }
        throttle_.accepted();  // the shop answered the order: it does not throttle the account
        st.rejected_attempt = st.res.attempts;
        fail(st, grab_step::rejected, std::move(ev.text));
        if (st.closed_awaiting && !st.in_stock) sold_out(st);
        st.closed_awaiting = false;
        return false;
      case shop_event_kind::countdown:
        take_countdown(st, std::move(ev.text));
        return false;
      case shop_event_kind::verification:
        take_verification(st, std::move(ev.text));
        return false;
    }
    return false;
  }

  // A throttling refusal of the last press (429 / 503 to the order, the
  // profile's throttled element or text): counted once per press, even when
  // the page's plain refusal of the same press came first; then the back-off
  // (the longer of Retry-After and the policy's) or, after max_refusals in
  // a row, the stop.
  void take_throttled(run_state& st, shop_event ev) {
    const int press = st.res.attempts;
    const bool late = !st.awaiting && st.rejected_attempt == press && press > 0;
    if ((!st.awaiting && !late) || st.throttled_attempt == press) return;  // not ours, or counted
    st.throttled_attempt = press;
    if (late) --st.failures;  // a refusal by throttling is no failed try
    st.awaiting = false;
    st.retry = true;
    st.res.confirmation = ev.text;
    ++st.res.throttled;
    report(st.res, grab_step::throttled, ev.text);
    const throttle_decision<Clock> d = throttle_.refused(ev.retry_after);
    if (d.stop) {
      st.res.stopped = true;
      report(
          st.res, grab_step::stopped,
          fmt::format("{} refusals in a row: this account stops (the others go on)", d.refusals));
      return;
    }
    st.resume_at = d.until;
    report(st.res, grab_step::backing_off,
           fmt::format("no action for {} ms{} (refusal {} of {})", d.wait.count(),
                       ev.retry_after
                           ? fmt::format(", the shop's Retry-After {} ms", ev.retry_after->count())
                           : std::string(),
                       d.refusals, std::max(1, opts_.throttle.max_refusals)));
  }

  // A verification shows (a text) or is gone (empty): the hand-off to a
  // person, told once per appearance, and the return to the page after it.
  void take_verification(run_state& st, std::string text) {
    if (!text.empty() && !st.hand_off) {
      st.hand_off = true;
      report(st.res, grab_step::hand_off,
             fmt::format("the shop shows a verification ({}): a person must solve it; no action "
                         "and no request until it is gone",
                         text));
      tell(notice_kind::hand_off, st.res, "the shop shows a verification: " + text);
    } else if (text.empty() && st.hand_off) {
      st.hand_off = false;
      ++st.generation;  // what the page shows now is read again before any action
      report(st.res, grab_step::resumed, "the verification is gone: reading the page again");
    }
  }

  // A countdown's text moves the start while the grabber has not acted
  // (and no fixed start was given).
  void take_countdown(run_state& st, std::string text) {
    if (opts_.start || st.acted || text == st.countdown) return;
    st.countdown = std::move(text);
    if (st.countdown.empty()) {
      if (!st.start) return;  // no countdown was ever seen
      schedule(st, clock_.now());
      report(st.res, grab_step::scheduled, "the countdown is gone: starting now");
      return;
    }
    const std::optional<std::chrono::milliseconds> left = parse_time_left(st.countdown);
    if (!left) {
      report(st.res, grab_step::scheduled,
             fmt::format("the countdown shows no time left: '{}' (start unchanged)", st.countdown));
      return;
    }
    schedule(st, clock_.now() + *left);
    report(st.res, grab_step::scheduled,
           fmt::format("countdown '{}': start in {:.3f} s", st.countdown,
                       static_cast<double>(left->count()) / 1000.0));
  }

  // Takes one token, waiting for it (through the driver, which reports
  // events meanwhile) at most until the deadline: stop on the deadline, a
  // cancellation or a driver failure (`ec`), changed when the page changed.
  boost::asio::awaitable<paced> pace(run_state& st, std::error_code& ec) {
    bool waited = false;
    while (!limiter_.try_acquire(1.0)) {
      const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::ceil<std::chrono::microseconds>(limiter_.time_until(1.0)));
      if (clock_.now() + wait > st.deadline) co_return paced::stop;
      if (!waited) {
        report(st.res, grab_step::paced,
               fmt::format("waiting {} ms for the pace",
                           std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
      }
      waited = true;
      const paced p = co_await wait_until(st, clock_.now() + wait, ec);
      if (p != paced::go) co_return p;
    }
    co_return paced::go;
  }

  // Waits until `wake` through the driver, keeping the events for the loop:
  // changed when the page changed, stop on a cancellation or a driver
  // failure (`ec`).
  boost::asio::awaitable<paced> wait_until(run_state& st, time_point wake, std::error_code& ec) {
    while (clock_.now() < wake) {
      auto [e, ev] = co_await driver_.async_next_event(
          until(clock_, wake), boost::asio::as_tuple(boost::asio::use_awaitable));
      if (e) {
        ec = e;
        co_return paced::stop;
      }
      const bool stop = co_await cancel_requested();
      if (stop) co_return paced::stop;
      if (!ev) break;
      bool page_changed =  // (a verification drops the try too)
          ev->kind != shop_event_kind::outcome && ev->kind != shop_event_kind::countdown;
      if (ev->kind == shop_event_kind::status && ev->source == event_source::network) {
        // A polled response that says what the last one did changes nothing.
        page_changed = !ev->cached && (ev->in_stock != st.in_stock || ev->text != st.net_text);
      }
      st.seen.push_back(std::move(*ev));
      if (page_changed) co_return paced::changed;
    }
    co_return paced::go;
  }

  // Before an action: the random pause, then a token (neither for an exempt
  // reaction). go, or why the try is dropped.
  boost::asio::awaitable<paced> before_action(run_state& st, bool exempt, std::error_code& ec) {
    if (exempt) co_return paced::go;
    if (opts_.delay.any()) {
      const std::chrono::milliseconds pause = next_pause(st);
      if (clock_.now() + pause > st.deadline) co_return paced::stop;
      report(st.res, grab_step::paused, fmt::format("{} ms before the action", pause.count()));
      const paced p = co_await wait_until(st, clock_.now() + pause, ec);
      if (p != paced::go) co_return p;
    }
    co_return co_await pace(st, ec);
  }

  // One try: snapshot, decision, choice, quantity, press. A non-empty error
  // ends the run.
  boost::asio::awaitable<std::error_code> attempt(run_state& st) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    auto ends = [](const std::error_code& e) {
      return e == errc::browser_closed || e == seckill::errc::operation_aborted;
    };
    st.decided = st.generation;
    const bool exempt = !opts_.pace_reaction && st.reaction && !st.retry;
    st.reaction = false;
    st.retry = false;
    st.acted = true;
    auto [es, snap] = co_await driver_.async_snapshot(as_tuple(use_awaitable));
    if (ends(es)) co_return es;
    if (es) {
      fail(st, grab_step::failed, fmt::format("reading the offers: {}", es.message()));
      co_return std::error_code{};
    }
    const std::optional<order_intent> intent = strategy_.decide(snap);
    if (!intent) {
      report(st.res, grab_step::skipped,
             fmt::format("{} offers, none wanted in stock within the limits", snap.offers.size()));
      co_return std::error_code{};
    }
    report(st.res, grab_step::decided,
           detail::describe_intent(*intent) + (exempt ? " (the reaction: not paced)" : ""));
    // One token per action; a pace that ends early drops the try (the loop
    // sees the deadline, the cancellation or the change).
    std::error_code ec;
    // What was done ahead and the page still shows is not done again.
    const bool chosen_ahead = st.ahead_sku == intent->sku && snap.chosen == intent->sku;
    const bool quantity_ahead =
        chosen_ahead && st.ahead_quantity == intent->quantity && snap.quantity == intent->quantity;
    if constexpr (ordering_shop_driver<Driver>) {
      // Nothing to wait for between the actions: one operation for them all.
      const int actions = (chosen_ahead ? 0 : 1) + (quantity_ahead ? 0 : 1) + 1;
      if (opts_.mode != grab_mode::dry_run &&
          (exempt || (!opts_.delay.any() && limiter_.try_acquire(static_cast<double>(actions))))) {
        order_actions todo;
        if (!chosen_ahead) todo.sku = intent->sku;
        if (!quantity_ahead) todo.quantity = intent->quantity;
        auto [e_order, at] = co_await driver_.async_order(std::move(todo), as_tuple(use_awaitable));
        if (ends(e_order)) co_return e_order;
        if (e_order) {
          fail(st, grab_step::failed,
               at == order_action::choose
                   ? fmt::format("choosing {}: {}", intent->sku, e_order.message())
               : at == order_action::quantity
                   ? fmt::format("setting quantity {}: {}", intent->quantity, e_order.message())
                   : fmt::format("pressing buy: {}", e_order.message()));
          co_return std::error_code{};
        }
        ordered(st, *intent, chosen_ahead, quantity_ahead);
        co_return std::error_code{};
      }
    }
    if (!chosen_ahead) {
      if (co_await before_action(st, exempt, ec) != paced::go) co_return ec;
      auto [e_choose] = co_await driver_.async_choose(intent->sku, as_tuple(use_awaitable));
      if (ends(e_choose)) co_return e_choose;
      if (e_choose) {
        fail(st, grab_step::failed,
             fmt::format("choosing {}: {}", intent->sku, e_choose.message()));
        co_return std::error_code{};
      }
    }
    if (!quantity_ahead) {
      if (co_await before_action(st, exempt, ec) != paced::go) co_return ec;
      auto [e_qty] = co_await driver_.async_set_quantity(intent->quantity, as_tuple(use_awaitable));
      if (ends(e_qty)) co_return e_qty;
      if (e_qty) {
        fail(st, grab_step::failed,
             fmt::format("setting quantity {}: {}", intent->quantity, e_qty.message()));
        co_return std::error_code{};
      }
    }
    if (opts_.mode == grab_mode::dry_run) co_return co_await rehearse(st, *intent);
    if (co_await before_action(st, exempt, ec) != paced::go) co_return ec;
    auto [e_press] = co_await driver_.async_press_buy(as_tuple(use_awaitable));
    if (ends(e_press)) co_return e_press;
    if (e_press) {
      fail(st, grab_step::failed, fmt::format("pressing buy: {}", e_press.message()));
      co_return std::error_code{};
    }
    ordered(st, *intent, chosen_ahead, quantity_ahead);
    co_return std::error_code{};
  }

  // Buy was pressed: the try counts, and its answer is awaited.
  void ordered(run_state& st, const order_intent& intent, bool chosen_ahead, bool quantity_ahead) {
    ++st.res.attempts;
    st.res.sku = intent.sku;
    st.res.quantity = intent.quantity;
    st.res.requested = std::max(intent.requested, intent.quantity);
    st.awaiting = true;
    st.confirm_until = clock_.now() + opts_.confirm_timeout;
    report(st.res, grab_step::ordered,
           fmt::format("pressed buy for {} x {}{}", intent.quantity, intent.sku,
                       quantity_ahead ? " (chosen and set ahead)"
                       : chosen_ahead ? " (chosen ahead)"
                                      : ""));
  }

  // Before the start (options.prepare_before): the session checked, the
  // offer the strategy would take if every offer shown were in stock
  // chosen and its quantity set, the buy button checked, so that at the
  // start only the snapshot and the press remain (attempt skips what the
  // page still shows done). Nothing is pressed. What cannot be done is said
  // (`not-ready`) and left for the start; a session logged out ends nothing
  // either (the person may log in again meanwhile). Each action takes its
  // token and pause, as at the start.
  boost::asio::awaitable<std::error_code> get_ready(run_state& st) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    auto ends = [](const std::error_code& e) {
      return e == errc::browser_closed || e == seckill::errc::operation_aborted;
    };
    const auto lead = std::chrono::duration<double>(*st.start - clock_.now()).count();
    if constexpr (requires(Driver & d) { d.async_check_session(as_tuple(use_awaitable)); }) {
      auto [e] = co_await driver_.async_check_session(as_tuple(use_awaitable));
      if (ends(e)) co_return e;
      if (e) {
        report(st.res, grab_step::not_ready, fmt::format("the session: {}", e.message()));
        co_return std::error_code{};
      }
    }
    auto [es, snap] = co_await driver_.async_snapshot(as_tuple(use_awaitable));
    if (ends(es)) co_return es;
    if (es) {
      report(st.res, grab_step::not_ready, fmt::format("reading the offers: {}", es.message()));
      co_return std::error_code{};
    }
    shop_snapshot as_if = snap;  // every offer in stock: what would be taken
    for (auto& o : as_if.offers)
      if (o.stock <= 0) o.stock = std::numeric_limits<int>::max();
    const std::optional<order_intent> intent = strategy_.decide(as_if);
    if (!intent) {
      report(st.res, grab_step::not_ready,
             fmt::format("{} offers on the page, none wanted within the limits: nothing chosen "
                         "ahead",
                         snap.offers.size()));
      co_return std::error_code{};
    }
    std::error_code ec;
    if (snap.chosen != intent->sku) {
      if (co_await before_action(st, false, ec) == paced::stop) co_return ec;
      auto [e] = co_await driver_.async_choose(intent->sku, as_tuple(use_awaitable));
      if (ends(e)) co_return e;
      if (e) {
        report(st.res, grab_step::not_ready,
               fmt::format("choosing {} ahead: {} (left for the start)", intent->sku, e.message()));
        co_return std::error_code{};
      }
    }
    st.ahead_sku = intent->sku;
    if (snap.quantity != intent->quantity || snap.chosen != intent->sku) {
      if (co_await before_action(st, false, ec) == paced::stop) co_return ec;
      auto [e] = co_await driver_.async_set_quantity(intent->quantity, as_tuple(use_awaitable));
      if (ends(e)) co_return e;
      if (e) {
        report(st.res, grab_step::not_ready,
               fmt::format("setting quantity {} ahead: {} (left for the start)", intent->quantity,
                           e.message()));
        co_return std::error_code{};
      }
    }
    st.ahead_quantity = intent->quantity;
    // One short look at the buy button, not a wait: a shop may enable it at
    // the start only.
    std::string button = "the buy button not looked at (the driver cannot)";
    if constexpr (requires(Driver & d) { d.async_look_at_buy(as_tuple(use_awaitable)); }) {
      auto [e, box] = co_await driver_.async_look_at_buy(as_tuple(use_awaitable));
      if (ends(e)) co_return e;
      if (e == errc::element_not_found) {
        report(st.res, grab_step::not_ready,
               fmt::format("{} x {} chosen ahead, but the buy button is not on the page",
                           intent->quantity, intent->sku));
        co_return std::error_code{};
      }
      button = e ? fmt::format("the buy button is there, not actionable yet ({})", e.message())
                 : fmt::format("the buy button actionable at ({:.0f}, {:.0f}), {:.0f} x {:.0f}",
                               box.center_x, box.center_y, box.width, box.height);
    }
    report(st.res, grab_step::ready,
           fmt::format("{:.3f} s before the start: {} x {} chosen ahead; {}", lead,
                       intent->quantity, intent->sku, button));
    co_return std::error_code{};
  }

  // A dry run's end: the buy button checked (when the driver can), and what
  // would have been pressed said; a failed check is a failed try.
  boost::asio::awaitable<std::error_code> rehearse(run_state& st, const order_intent& intent) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    std::string button = "buy";
    if constexpr (requires(Driver & d) { d.async_check_buy(as_tuple(use_awaitable)); }) {
      auto [e, selector] = co_await driver_.async_check_buy(as_tuple(use_awaitable));
      if (e == errc::browser_closed || e == seckill::errc::operation_aborted) co_return e;
      if (e) {
        fail(st, grab_step::failed, fmt::format("checking the buy button: {}", e.message()));
        co_return std::error_code{};
      }
      button = std::move(selector);
    }
    st.res.sku = intent.sku;
    st.res.quantity = intent.quantity;
    st.res.requested = std::max(intent.requested, intent.quantity);
    st.res.would_order = true;
    st.done = true;
    report(st.res, grab_step::would_press,
           fmt::format("dry run: would press {} for {}", button, detail::describe_intent(intent)));
    co_return std::error_code{};
  }

  // The run, then its notice: ordered, or failed (not when cancelled).
  static boost::asio::awaitable<R> run_and_tell(grabber* self,
                                                std::chrono::milliseconds deadline_in) {
    R r = co_await run(self, deadline_in);
    if (!r.first && r.second.ordered) {
      self->tell(notice_kind::ordered, r.second, r.second.confirmation);
    } else if (r.first == errc::stopped_refused) {
      self->tell(notice_kind::stopped, r.second,
                 fmt::format("stopped: the shop refused {} times in a row ({})", r.second.throttled,
                             r.second.confirmation));
    } else if (r.first && r.first != seckill::errc::operation_aborted) {
      self->tell(notice_kind::failed, r.second,
                 r.first == seckill::errc::timed_out
                     ? fmt::format("gave up: the deadline of {} ms passed", deadline_in.count())
                     : "the run ended: " + r.first.message());
    }
    co_return r;
  }

  static boost::asio::awaitable<R> run(grabber* self, std::chrono::milliseconds deadline_in) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    run_state st;
    self->throttle_ = throttle_policy<Clock>(self->opts_.throttle, self->clock_);
    st.deadline_in = deadline_in;
    st.deadline = self->clock_.now() + deadline_in;
    st.rng = self->opts_.delay_seed;
    if (self->opts_.reload_every)
      st.next_reload = st.deadline - deadline_in + *self->opts_.reload_every;
    Driver& d = self->driver_;

    auto [ew] = co_await d.async_watch(as_tuple(use_awaitable));
    if (ew) co_return R{ew, std::move(st.res)};
    self->report(st.res, grab_step::watching, "the shop's stock status");
    if (self->opts_.start) {
      const std::error_code e = co_await self->schedule_start(st);
      if (e) co_return R{e, std::move(st.res)};
    }

    for (;;) {
      const bool stop = co_await cancel_requested();
      if (stop) co_return R{make_error_code(seckill::errc::operation_aborted), std::move(st.res)};
      // Every event there is, before deciding anything.
      for (;;) {
        std::optional<shop_event> ev;
        if (!st.seen.empty()) {
          ev = std::move(st.seen.front());
          st.seen.pop_front();
        } else {
          auto [e, next] = co_await d.async_next_event(std::chrono::nanoseconds::zero(),
                                                       as_tuple(use_awaitable));
          if (e) co_return R{e, std::move(st.res)};
          ev = std::move(next);
        }
        if (!ev) break;
        if (self->take(st, std::move(*ev))) co_return R{{}, std::move(st.res)};
      }
      if (st.res.stopped) co_return R{make_error_code(errc::stopped_refused), std::move(st.res)};
      if (!st.started && st.resync && self->clock_.now() >= *st.resync) {
        st.resync.reset();
        const std::error_code e = co_await self->schedule_start(st, true);
        if (e) co_return R{e, std::move(st.res)};
        continue;
      }
      if (!st.started && st.prepare && self->clock_.now() >= *st.prepare && !st.hand_off) {
        st.prepare.reset();
        st.prepared = true;
        const std::error_code e = co_await self->get_ready(st);
        if (e) co_return R{e, std::move(st.res)};
        continue;
      }
      const auto now = self->clock_.now();
      if (st.resume_at && now >= *st.resume_at) {
        st.resume_at.reset();
        ++st.generation;  // the page is read again before the next try
      }
      if (!st.started && st.start && now >= *st.start) {
        st.started = true;
        st.reaction = true;  // what the page shows at the start is the flip
        st.next_reload = now;
        self->report(st.res, grab_step::started,
                     st.in_stock ? "in stock at the start" : "not in stock at the start");
      }
      if (st.awaiting && now >= st.confirm_until) {
        st.awaiting = false;
        self->fail(st, grab_step::failed, "no answer from the shop after pressing buy");
      }
      if (now >= st.deadline && self->opts_.mode == grab_mode::monitor) {
        self->report(st.res, grab_step::watched,
                     fmt::format("monitor: the deadline of {} ms ended the watch; nothing was "
                                 "chosen or pressed",
                                 deadline_in.count()));
        co_return R{{}, std::move(st.res)};
      }
      if (now >= st.deadline) {
        self->report(st.res, grab_step::gave_up,
                     fmt::format("deadline of {} ms passed", deadline_in.count()));
        co_return R{make_error_code(seckill::errc::timed_out), std::move(st.res)};
      }
      const bool reloading = self->opts_.reload_every.has_value();
      const bool holding = st.resume_at.has_value();  // backing off
      if (st.started && st.in_stock && !st.awaiting && !st.hand_off && !holding &&
          self->opts_.mode != grab_mode::monitor && (st.decided != st.generation || st.retry)) {
        const std::error_code e = co_await self->attempt(st);
        if (e) co_return R{e, std::move(st.res)};
        if (st.done) co_return R{{}, std::move(st.res)};
        continue;
      }
      if (st.started && reloading && !st.awaiting && !st.hand_off && !holding &&
          now >= st.next_reload) {
        const std::error_code e = co_await self->reload(st);
        if (e) co_return R{e, std::move(st.res)};
        continue;
      }
      time_point wake = st.awaiting ? std::min(st.deadline, st.confirm_until) : st.deadline;
      if (!st.started && st.start) wake = std::min(wake, *st.start);
      if (!st.started && st.resync) wake = std::min(wake, *st.resync);
      if (!st.started && st.prepare && !st.hand_off) wake = std::min(wake, *st.prepare);
      if (st.started && reloading && !st.awaiting && !st.hand_off && !holding)
        wake = std::min(wake, st.next_reload);
      if (holding) wake = std::min(wake, *st.resume_at);
      auto [e, ev] =
          co_await d.async_next_event(until(self->clock_, wake), as_tuple(use_awaitable));
      if (e) co_return R{e, std::move(st.res)};
      if (ev) st.seen.push_back(std::move(*ev));
    }
  }

  // Reads the shop's clock (async_sync_clock; or takes options.manual_offset),
  // converts options.start to the grabber's clock at the latest moment the
  // estimate allows (never early) and logs both (the `scheduled` step). A
  // failed reading leaves the local clock as the shop's, and says so; a
  // re-sync that fails keeps the estimate before it. An estimate less precise
  // than max_clock_uncertainty ends the run (errc::clock_uncertain) unless
  // warn_uncertain_clock.
  boost::asio::awaitable<std::error_code> schedule_start(run_state& st, bool resync = false) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    std::optional<clock_offset> est;
    std::error_code e;
    if (opts_.manual_offset) {
      est = manual_clock_offset(*opts_.manual_offset);
    } else {
      clock_sync_options so;
      so.samples = std::max(1, opts_.clock_samples);
      so.rounds = std::max(0, opts_.clock_rounds);
      so.wall_clock = opts_.wall_clock;
      auto [e1, o1] = co_await async_sync_clock(driver_, std::move(so), as_tuple(use_awaitable));
      if (e1 == errc::browser_closed || e1 == seckill::errc::operation_aborted) co_return e1;
      e = e1;
      est = o1;
    }
    const std::optional<clock_offset> before = st.res.clock;
    if (est || !resync) st.res.clock = est;
    const sale_time& start = *opts_.start;
    std::string line = (resync ? "re-sync: " : "") + describe_start(start, st.res.clock);
    if (e) line += fmt::format(" (reading the shop's clock failed: {})", e.message());
    if (resync && !est) line += " (the re-sync read nothing: the estimate before it kept)";
    if (resync && before) {
      using std::chrono::milliseconds;  // (whole milliseconds, as describe_start writes them)
      line += fmt::format(
          "; before: offset {:+.3f} s ± {:.3f} s",
          static_cast<double>(std::chrono::duration_cast<milliseconds>(before->offset).count()) /
              1000.0,
          static_cast<double>(
              std::chrono::duration_cast<milliseconds>(before->uncertainty).count()) /
              1000.0);
    }
    const auto wall_now = opts_.wall_clock ? opts_.wall_clock() : std::chrono::system_clock::now();
    const auto local_start = st.res.clock ? st.res.clock->latest_local(start.at) : start.at;
    schedule(st, clock_.now() +
                     std::chrono::duration_cast<typename Clock::duration>(local_start - wall_now));
    if (st.started) line += ": already passed";
    report(st.res, grab_step::scheduled, std::move(line));
    if (opts_.max_clock_uncertainty) {
      const auto& c = st.res.clock;
      if (!c || c->uncertainty > *opts_.max_clock_uncertainty) {
        const std::string why =
            c ? fmt::format(
                    "the shop's clock is known to ± {:.3f} s, max_clock_uncertainty is "
                    "{:.3f} s",
                    std::chrono::duration<double>(c->uncertainty).count(),
                    std::chrono::duration<double>(*opts_.max_clock_uncertainty).count())
              : fmt::format("the shop's clock could not be read, max_clock_uncertainty is {:.3f} s",
                            std::chrono::duration<double>(*opts_.max_clock_uncertainty).count());
        if (!opts_.warn_uncertain_clock) {
          report(st.res, grab_step::failed, why + ": not acting");
          co_return make_error_code(errc::clock_uncertain);
        }
        report(st.res, grab_step::scheduled, "warning: " + why);
      }
    }
    if (!resync && !opts_.manual_offset && opts_.resync_before && st.start && !st.started &&
        *st.start - clock_.now() > *opts_.resync_before) {
      st.resync =
          *st.start - std::chrono::duration_cast<typename Clock::duration>(*opts_.resync_before);
    }
    co_return std::error_code{};
  }

  // One reload-poll turn: a token, then the reload (its page comes as events).
  boost::asio::awaitable<std::error_code> reload(run_state& st) {
    std::error_code ec;
    const paced p = co_await pace(st, ec);
    if (p == paced::stop) {
      st.next_reload = st.deadline;  // no token before the deadline: no more reloads
      co_return ec;
    }
    if (p == paced::changed) co_return std::error_code{};  // the loop looks at the change first
    st.acted = true;
    st.next_reload = clock_.now() + *opts_.reload_every;
    ++st.res.reloads;
    auto [e] = co_await driver_.async_reload(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (e == errc::browser_closed || e == seckill::errc::operation_aborted) co_return e;
    if (e) {
      report(st.res, grab_step::reload_failed,
             fmt::format("{} (tried again at the next turn)", e.message()));
    } else {
      report(st.res, grab_step::reloaded, fmt::format("#{}", st.res.reloads));
    }
    co_return std::error_code{};
  }

  Driver driver_;
  Strategy strategy_;
  Limiter& limiter_;
  options_type opts_;
  Clock clock_;
  throttle_policy<Clock> throttle_{opts_.throttle, clock_};  // this run's; a new one per run
};

/// A grabber given a page drives it by the demo shop's profile (page_driver's default).
template <class Strategy, class Limiter>
grabber(page, Strategy, Limiter&) -> grabber<page_driver, Strategy, Limiter>;
template <class Strategy, class Limiter, class Clock>
grabber(page, Strategy, Limiter&, basic_grabber_options<Clock>)
    -> grabber<page_driver, Strategy, Limiter, Clock>;
template <class Strategy, class Limiter, class Clock>
grabber(page, Strategy, Limiter&, basic_grabber_options<Clock>, Clock)
    -> grabber<page_driver, Strategy, Limiter, Clock>;

}  // namespace seckill::browser
