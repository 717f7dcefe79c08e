#pragma once
/// @file
/// @brief `page_driver`: a Chromium tab (browser::page) as a shop_driver, read
///        by a site_profile: the status and result elements watched by
///        MutationObservers, the offers read in one call, trusted clicks.

#include <seckill/browser/detail/shop_replies.hpp>
#include <seckill/browser/detail/shop_scripts.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/stock_response.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief How long a page_driver's actions may wait, and how it clicks.
///
/// A plain value. Cost: none.
struct page_driver_options {
  std::chrono::milliseconds action_timeout{std::chrono::seconds(3)};  ///< per choose / fill
  click_options click{2, std::chrono::milliseconds(15), std::chrono::seconds(3)};
  /// Stock from the network: a body larger than this is not read (reported).
  std::size_t max_response_body = std::size_t{1} << 20;
  /// Where the driver says what it could not read (a stock response that is
  /// not JSON, too large, lacks the path): each distinct reason at most
  /// once every 10 s, with the count of repeats. Empty: not said.
  std::function<void(std::string_view)> log;
};

/// @brief A shop_driver over a Chromium tab: what the grabber needs of a shop
///        page, found where a site_profile says.
///
/// Watching installs three MutationObservers (browser::page::async_on_mutation
/// and async_on_markup): the status element's changes become status events
/// (in stock by the profile's texts), a change in the offers' markup (a
/// count, a price, a disabled button) an offers event, and the result
/// element's new texts outcome events (confirmed when one of the success
/// texts is in it); a new document whose URL contains `success_url` is a
/// confirmed outcome too, and with `success_response` a response to such a
/// URL is the outcome (2xx confirmed, else refused). With a `countdown`
/// element, its text is read as watching starts and each new text of it is
/// a countdown event. A verification a person must solve (a visible match of
/// the profile's `verification` or of default_verification, or a visible
/// text of verification_text or default_verification_text) is a
/// verification event when it shows and another, with an empty text, when
/// it is gone. The first outcome
/// after a press is the answer. Events wait in a
/// queue until async_next_event takes them. A snapshot reads the status and
/// every offer in one call and starts a first look at the buy button, whose
/// animation frame the press's check then needs not wait for again. Choosing picks a select's
/// option or clicks a list's offer element with trusted input; a quantity is filled in, or reached
/// with trusted clicks on + / -; buy is a trusted click.
///
/// Throttling: an outcome is `throttled` when the order's request (a URL
/// containing the profile's `order_response`, or `success_response`) is
/// answered 429 or 503 (with its Retry-After), when the profile's
/// `throttled` element appears, or when the result shows a `throttled_text`
/// (a result text repeated unchanged is seen once: name order_response for
/// a shop that refuses again and again).
///
/// Stock from the network (a profile's `stock_response`): the status
/// element is not watched; every response of the page whose URL matches
/// is read once it has arrived (page::async_on_response_body: no request is
/// changed or held) by the profile's stock keys (read_stock), and becomes a
/// status event with `source = event_source::network`, `cached` and its
/// number; with `stock_confirm = page` a "just in stock" one is re-checked
/// against the status element first (`check`: agrees when it says in stock
/// within 500 ms, as the page's script draws after the response). A
/// matching server-sent event stream gives one such event per message. A body that is not read
/// (too large, not JSON, the path missing, not 2xx) makes no event and is
/// said through options.log, each reason at most once per 10 s. A new
/// document is a status event (not in stock, initial). A snapshot's offers
/// then carry the counts and prices of the last response not from a cache.
///
/// A handle: copies share one state (the queue, the observers). Thread-safety:
/// as browser::page; every operation and callback runs on the page's strand.
/// Cost: a snapshot is one round trip; a choice, a quantity and a press a
/// round trip or two and the clicks; idle while nothing changes (no polling).
class page_driver {
 public:
  using executor_type = page::executor_type;

  /// Drives `p` by `profile` (by default the demo shop's). Implicit, so a
  /// grabber can be given a page.
  page_driver(page p, site_profile profile = {},  // NOLINT(google-explicit-constructor)
              page_driver_options opts = {})
      : s_(std::make_shared<state>(std::move(p), std::move(profile), opts)) {}

  [[nodiscard]] executor_type get_executor() const { return s_->pg.get_executor(); }
  [[nodiscard]] const site_profile& profile() const noexcept { return s_->profile; }
  [[nodiscard]] page& get_page() noexcept { return s_->pg; }

  /// Starts watching the status, the offers and the result: (error_code);
  /// errc::not_logged_in when the profile names a logged-in sign the page
  /// does not show.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_watch(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), watch(s_), token);
  }

  /// Whether the page still shows the profile's logged-in sign: (error_code);
  /// errc::not_logged_in when it does not (none named: always logged in).
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_check_session(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), check_session(s_),
                                                               token);
  }

  /// The oldest unread event, waiting for one at most `max_wait`:
  /// (error_code, optional<shop_event>), nullopt when none came.
  template <boost::asio::completion_token_for<void(std::error_code, std::optional<shop_event>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_next_event(std::chrono::nanoseconds max_wait,
                        CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::optional<shop_event>)>(
        get_executor(), next_event(s_, max_wait), token);
  }

  /// The status text and every offer: (error_code, shop_snapshot).
  template <boost::asio::completion_token_for<void(std::error_code, shop_snapshot)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_snapshot(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, shop_snapshot)>(get_executor(),
                                                                              snapshot(s_), token);
  }

  /// Chooses the offer `sku`: errc::element_not_found when there is none.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_choose(std::string sku, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(),
                                                               choose(s_, std::move(sku)), token);
  }

  /// Sets the quantity to `n`. Without a quantity field, 1 is what the shop
  /// takes (no action) and more is errc::element_not_found.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_quantity(int n, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), set_quantity(s_, n),
                                                               token);
  }

  /// Loads the page again (reload-poll) and waits for its `load`:
  /// (error_code). The new document's status comes as an event.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reload(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), reload(s_), token);
  }

  /// Up to `n` readings of the shop's clock: (error_code, vector<clock_sample>).
  /// `n` HEAD requests of the page's URL made by the page (in seckill's
  /// isolated world; the page's own requests are left alone), each giving
  /// the response's Date header (whole seconds) and the local times around
  /// it; with a profile's `clock` element, up to `n` changes of its text too
  /// (each bounded by the reads around it; at most 2.5 s).
  /// Costs n round trips to the shop, in one DevTools call (two with a clock).
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<clock_sample>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_clock_samples(int n, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::vector<clock_sample>)>(
        get_executor(), clock_samples(s_, n), token);
  }

  /// Readings of the shop's Date header taken at chosen local times
  /// (plan_straddle's): (error_code, vector<clock_sample>). A HEAD request
  /// of the page's URL leaves at each time (from seckill's isolated world),
  /// without waiting for the one before. Costs one DevTools call lasting
  /// until the last answer.
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<clock_sample>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_clock_samples_at(std::vector<std::chrono::system_clock::time_point> at,
                              CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::vector<clock_sample>)>(
        get_executor(), clock_samples_at(s_, std::move(at)), token);
  }

  /// Presses buy with a trusted click; the shop's answer comes as an outcome event.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_press_buy(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), press_buy(s_),
                                                               token);
  }

  /// One short look at the buy button (up to 100 ms, no wait for it to become
  /// actionable): (error_code, its box); errc::element_not_found when it is
  /// not on the page, errc::element_not_actionable when it is there but not
  /// actionable now (disabled before a sale's start, covered, moving). A box
  /// found actionable is the one a press within 250 ms checks again without
  /// waiting for an animation frame.
  template <boost::asio::completion_token_for<void(std::error_code, element_box)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_look_at_buy(CompletionToken&& token = CompletionToken()) {
    return s_->pg.async_wait_for(s_->profile.buy, std::min(s_->opts.action_timeout, look_timeout),
                                 std::forward<CompletionToken>(token));
  }

  /// A dry run's last check: waits (up to the click's timeout) until the buy
  /// button is actionable (attached, visible, stable, enabled, not covered)
  /// and completes with its selector, pressing nothing;
  /// errc::element_not_found or errc::element_not_actionable when it is not.
  template <boost::asio::completion_token_for<void(std::error_code, std::string)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_check_buy(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::string)>(get_executor(),
                                                                            check_buy(s_), token);
  }

 private:
  static constexpr std::chrono::milliseconds look_timeout{100};  // the buy button's early check
  static constexpr std::chrono::milliseconds page_grace{500};    // stock_confirm = page: its delay

  struct state {
    state(page p, site_profile prof, page_driver_options o)
        : pg(std::move(p)), profile(std::move(prof)), opts(o) {}
    page pg;
    site_profile profile;
    page_driver_options opts;
    std::deque<shop_event> events;
    boost::asio::steady_timer* wake = nullptr;
    mutation_subscription status_sub, result_sub, offers_sub, response_sub, countdown_sub;
    mutation_subscription verification_sub, own_verification_sub;
    mutation_subscription order_sub, throttled_sub;    // throttling: the order's answer, the page
    detail::throttled_watch throttled;                 // the profile's `throttled` element
    detail::verification_watch verification;           // the common and the profile's checks
    mutation_subscription stock_sub;                   // stock from the network
    std::optional<std::vector<sku_offer>> net_offers;  // the last fresh response's offers
    std::string net_summary;
    struct said {
      std::chrono::steady_clock::time_point at;
      int repeats = 0;
    };
    std::map<std::string, said, std::less<>> problems;  // what was logged, when
    // Logs `what` at most once per 10 s for each `key`, with the repeats since.
    void problem(const std::string& key, const std::string& what) {
      if (!opts.log) return;
      const auto now = std::chrono::steady_clock::now();
      auto [it, fresh] = problems.try_emplace(key, said{now, 0});
      if (!fresh && now - it->second.at < std::chrono::seconds(10)) {
        ++it->second.repeats;
        return;
      }
      const int repeats = fresh ? 0 : it->second.repeats;
      it->second = said{now, 0};
      opts.log("page_driver: " + what +
               (repeats > 0 ? " (" + std::to_string(repeats) + " more since)" : std::string()));
    }
    std::uint64_t last_network = 0;  // the newest network event's response number
    void push_network(shop_event e) {
      last_network = std::max(last_network, e.response);
      push(std::move(e));
    }
    void push(shop_event e) {
      events.push_back(std::move(e));
      if (wake) wake->cancel();
    }
  };

  static boost::asio::awaitable<bool> cancel_requested() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  static boost::asio::awaitable<std::error_code> check_session(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (s->profile.logged_in.empty()) co_return std::error_code{};
    std::string fn(detail::scripts::deep<&detail::scripts::exists>());
    nlohmann::json args = nlohmann::json::array({s->profile.logged_in});
    auto [ec, there] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                                   as_tuple(use_awaitable));
    if (ec) co_return ec;
    if (there != true) co_return make_error_code(errc::not_logged_in);
    co_return std::error_code{};
  }

  static boost::asio::awaitable<std::error_code> watch(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (const std::error_code e = co_await check_session(s)) co_return e;
    std::weak_ptr<state> weak = s;
    std::function<void(const mutation_record&)> on_status = [weak](const mutation_record& r) {
      if (auto st = weak.lock()) {
        shop_event e;
        e.kind = shop_event_kind::status;
        e.text = r.text;
        e.in_stock = r.present && detail::says_in_stock(st->profile, r.text);
        e.initial = r.initial;
        st->push(std::move(e));
      }
    };
    std::function<void(const mutation_record&)> on_result = [weak](const mutation_record& r) {
      auto st = weak.lock();
      if (!st) return;
      if (r.initial && st->profile.stock_from_network()) {  // a new page: its responses tell anew
        shop_event e;
        e.kind = shop_event_kind::status;
        e.text = "a new page: its stock comes from its responses";
        e.initial = true;
        st->net_offers.reset();
        st->push(std::move(e));
      }
      if (!r.initial && !r.text.empty()) {
        shop_event e;
        e.kind = shop_event_kind::outcome;
        e.text = r.text;
        e.throttled = detail::contains_any(r.text, st->profile.throttled_text);
        e.confirmed = !e.throttled && detail::contains_any(r.text, st->profile.success);
        st->push(std::move(e));
      }
      if (r.initial && !st->profile.success_url.empty()) {  // a new document: where are we?
        st->pg.async_evaluate_isolated(
            "location.href",
            boost::asio::bind_executor(
                st->pg.get_executor(), [weak](std::error_code ec, const nlohmann::json& href) {
                  auto st2 = weak.lock();
                  if (!st2 || ec || !href.is_string()) return;
                  const auto url = href.get<std::string>();
                  if (url.find(st2->profile.success_url) == std::string::npos) return;
                  shop_event e;
                  e.kind = shop_event_kind::outcome;
                  e.text = url;
                  e.confirmed = true;
                  st2->push(std::move(e));
                }));
      }
    };
    const bool network = s->profile.stock_from_network();
    mutation_subscription status_sub;
    if (!network) {
      auto [e1, sub] = co_await s->pg.async_on_mutation(s->profile.status, std::move(on_status),
                                                        as_tuple(use_awaitable));
      if (e1) co_return e1;
      status_sub = std::move(sub);
    }
    auto [e2, result_sub] = co_await s->pg.async_on_mutation(
        s->profile.result, std::move(on_result), as_tuple(use_awaitable));
    if (e2) co_return e2;
    std::function<void(const mutation_record&)> on_offers = [weak](const mutation_record& r) {
      auto st = weak.lock();
      if (!st || r.initial) return;
      shop_event e;
      e.kind = shop_event_kind::offers;  // (the record's text is a hash: nothing to show)
      st->push(std::move(e));
    };
    auto [e3, offers_sub] = co_await s->pg.async_on_markup(
        s->profile.offer_selector, std::move(on_offers), as_tuple(use_awaitable));
    if (e3) co_return e3;
    if (!s->profile.success_response.empty()) {  // the order's own response answers it
      std::function<void(const response_record&)> on_response = [weak](const response_record& r) {
        auto st = weak.lock();
        if (!st) return;
        shop_event e = detail::response_outcome(r.status, r.url, r.retry_after);
        e.confirmed = r.status >= 200 && r.status < 300;
        st->push(std::move(e));
      };
      auto [e4, response_sub] = co_await s->pg.async_on_response(
          s->profile.success_response, std::move(on_response), as_tuple(use_awaitable));
      if (e4) co_return e4;
      s->response_sub = std::move(response_sub);
    }
    if (network) {
      auto [e5, stock_sub] = co_await watch_stock_responses(s);
      if (e5) co_return e5;
      s->stock_sub = std::move(stock_sub);
    }
    s->status_sub = std::move(status_sub);
    s->result_sub = std::move(result_sub);
    s->offers_sub = std::move(offers_sub);
    if (const std::error_code et = co_await watch_throttling(s); et) co_return et;
    if (const std::error_code ev = co_await watch_verification(s); ev) co_return ev;
    if (!s->profile.countdown.empty()) co_return co_await watch_countdown(s);
    co_return std::error_code{};
  }

  // Throttling the profile names: a 429 or 503 answer to order_response's
  // URL, and the `throttled` element as it appears (on the page or as an
  // error page): each a throttled outcome event.
  static boost::asio::awaitable<std::error_code> watch_throttling(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    const site_profile& p = s->profile;
    std::weak_ptr<state> weak = s;
    if (!p.order_response.empty() && p.order_response != p.success_response) {
      std::function<void(const response_record&)> on_order = [weak](const response_record& r) {
        auto st = weak.lock();
        if (!st || !is_throttling_status(r.status)) return;  // other answers: the result says
        st->push(detail::response_outcome(r.status, r.url, r.retry_after));
      };
      auto [e, sub] = co_await s->pg.async_on_response(p.order_response, std::move(on_order),
                                                       as_tuple(use_awaitable));
      if (e) co_return e;
      s->order_sub = std::move(sub);
    }
    if (!p.throttled.empty()) {
      std::function<void(const mutation_record&)> on_shown = [weak](const mutation_record& r) {
        auto st = weak.lock();
        if (!st) return;
        if (auto e = st->throttled.see(r.present, r.text)) st->push(std::move(*e));
      };
      auto [e, sub] = co_await s->pg.async_on_mutation(p.throttled, std::move(on_shown),
                                                       as_tuple(use_awaitable));
      if (e) co_return e;
      s->throttled_sub = std::move(sub);
    }
    co_return std::error_code{};
  }

  // A verification a person must solve: the common selectors and texts and
  // the profile's, each visible match seen by page::async_on_sight. One
  // event when one shows (its description), one when none shows any more.
  static boost::asio::awaitable<std::error_code> watch_verification(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    const site_profile& p = s->profile;
    if (p.verification_off) co_return std::error_code{};
    std::weak_ptr<state> weak = s;
    const auto on = [weak](int which) {
      return std::function<void(const mutation_record&)>([weak, which](const mutation_record& r) {
        auto st = weak.lock();
        if (!st) return;
        if (auto e = st->verification.see(which, r.present ? r.text : std::string()))
          st->push(std::move(*e));
      });
    };
    std::vector<std::string> texts = detail::verification_texts(p);
    auto [e, sub] = co_await s->pg.async_on_sight(std::string(default_verification),
                                                  std::move(texts), on(0), as_tuple(use_awaitable));
    if (e) co_return e;
    s->verification_sub = std::move(sub);
    if (!p.verification.empty()) {
      auto [e2, own] =
          co_await s->pg.async_on_sight(p.verification, {}, on(1), as_tuple(use_awaitable));
      if (e2) co_return e2;
      s->own_verification_sub = std::move(own);
    }
    co_return std::error_code{};
  }

  // The page's own responses that carry the stock (profile stock_response),
  // read as they arrive: each one a network status event.
  static boost::asio::awaitable<std::pair<std::error_code, mutation_subscription>>
  watch_stock_responses(std::shared_ptr<state> s) {
    std::weak_ptr<state> weak = s;
    std::function<void(const response_body_record&)> on_body = [weak](
                                                                   const response_body_record& r) {
      auto st = weak.lock();
      if (!st) return;
      const std::string where = seckill::redact_url(r.url);
      if (!r.problem.empty()) {
        st->problem(r.problem.substr(0, r.problem.find(':')),
                    "a stock response from " + where + " was not read: " + r.problem);
        return;
      }
      if (r.status < 200 || r.status >= 300) {
        st->problem("HTTP " + std::to_string(r.status), "a stock response from " + where +
                                                            " is HTTP " + std::to_string(r.status) +
                                                            ": not read");
        return;
      }
      stock_reading reading = read_stock(st->profile, r.body);
      if (!reading.readable) {
        st->problem(reading.problem, "a stock response from " + where +
                                         " says nothing of the stock: " + reading.problem);
        return;
      }
      shop_event e;
      e.kind = shop_event_kind::status;
      e.text = reading.summary + (r.from_cache ? " [cached]" : "");
      e.in_stock = reading.in_stock;
      e.source = event_source::network;
      e.cached = r.from_cache;
      e.response = r.sequence;
      if (!r.from_cache) {
        if (reading.has_offers) st->net_offers = std::move(reading.offers);
        st->net_summary = reading.summary;
      }
      if (!e.in_stock || e.cached || st->profile.stock_confirm != site_profile::stock_check::page) {
        st->push_network(std::move(e));
        return;
      }
      // Re-checked against the page's status element before it is reported.
      boost::asio::co_spawn(st->pg.get_executor(), check_page(weak, std::move(e)),
                            boost::asio::detached);
    };
    // Named first: a temporary lambda in a co_await expression is not
    // destroyed reliably by every compiler (GCC 12 frees its capture twice).
    std::function<bool(std::string_view)> match =
        [pattern = s->profile.stock_response](std::string_view url) {
          return response_url_matches(pattern, url);
        };
    auto [e, sub] = co_await s->pg.async_on_response_body(
        std::move(match), s->opts.max_response_body, std::move(on_body),
        boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return std::pair<std::error_code, mutation_subscription>{e, std::move(sub)};
  }

  // stock_confirm = page: the page's status element must say in stock too,
  // within page_grace (its script draws after the response arrived); read
  // every 50 ms until then. Dropped when a newer response was reported meanwhile.
  static boost::asio::awaitable<void> check_page(std::weak_ptr<state> weak, shop_event e) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    const auto until = std::chrono::steady_clock::now() + page_grace;
    for (;;) {
      bool agrees = false;
      {
        auto st = weak.lock();
        if (!st) co_return;
        std::string fn(detail::scripts::deep<&detail::scripts::read_text>());
        nlohmann::json args = nlohmann::json::array({st->profile.status});
        auto [ec, v] = co_await st->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                                    as_tuple(use_awaitable));
        if (ec == errc::browser_closed) co_return;
        agrees = !ec && v.is_string() && detail::says_in_stock(st->profile, v.get<std::string>());
      }
      if (agrees || std::chrono::steady_clock::now() >= until) {
        auto st = weak.lock();
        if (!st || st->last_network > e.response) co_return;  // a newer one was reported
        e.check = agrees ? page_check::agrees : page_check::contradicts;
        st->push_network(std::move(e));
        co_return;
      }
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex, std::chrono::milliseconds(50));
      co_await t.async_wait(as_tuple(use_awaitable));
    }
  }

  // The countdown's text as watching starts, then each new one (empty: gone).
  static boost::asio::awaitable<std::error_code> watch_countdown(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    std::weak_ptr<state> weak = s;
    auto countdown = [weak](std::string text) {
      if (auto st = weak.lock()) {
        shop_event e;
        e.kind = shop_event_kind::countdown;
        e.text = std::move(text);
        st->push(std::move(e));
      }
    };
    std::function<void(const mutation_record&)> on_countdown =
        [countdown](const mutation_record& r) { countdown(r.present ? r.text : std::string()); };
    auto [e, sub] = co_await s->pg.async_on_mutation(s->profile.countdown, std::move(on_countdown),
                                                     as_tuple(use_awaitable));
    if (e) co_return e;
    s->countdown_sub = std::move(sub);
    std::string fn(detail::scripts::deep<&detail::scripts::read_text>());
    nlohmann::json args = nlohmann::json::array({s->profile.countdown});
    auto [ec, v] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                               as_tuple(use_awaitable));
    if (ec) co_return ec;
    countdown(v.is_string() ? v.get<std::string>() : std::string());
    co_return std::error_code{};
  }

  static boost::asio::awaitable<std::error_code> reload(std::shared_ptr<state> s) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [e, r] = co_await s->pg.async_reload(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return e;
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::vector<clock_sample>>>
  clock_samples(std::shared_ptr<state> s, int n) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    using R = std::pair<std::error_code, std::vector<clock_sample>>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    n = std::clamp(n, 1, 100);
    std::string fn(detail::scripts::date_samples);
    nlohmann::json args = nlohmann::json::array({n});
    auto [ec, dates] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                                   as_tuple(use_awaitable));
    if (ec) co_return R{ec, {}};
    nlohmann::json texts;
    if (!s->profile.clock.empty()) {
      std::string read(detail::scripts::deep<&detail::scripts::clock_texts>());
      nlohmann::json read_args = nlohmann::json::array({s->profile.clock, n});
      auto [e2, t] = co_await s->pg.async_call_function_isolated(
          std::move(read), std::move(read_args), as_tuple(use_awaitable));
      if (e2) co_return R{e2, {}};
      texts = std::move(t);
    }
    co_return R{{}, detail::to_clock_samples(dates, texts)};
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::vector<clock_sample>>>
  clock_samples_at(std::shared_ptr<state> s,
                   std::vector<std::chrono::system_clock::time_point> at) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    using R = std::pair<std::error_code, std::vector<clock_sample>>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    nlohmann::json times = nlohmann::json::array();
    for (std::size_t i = 0; i < at.size() && i < 100; ++i) {
      times.push_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(at[i].time_since_epoch()).count());
    }
    std::string fn(detail::scripts::date_samples_at);
    nlohmann::json args = nlohmann::json::array();
    args.push_back(std::move(times));
    auto [ec, dates] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                                   as_tuple(use_awaitable));
    if (ec) co_return R{ec, {}};
    co_return R{{}, detail::to_clock_samples(dates, nullptr)};
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::optional<shop_event>>> next_event(
      std::shared_ptr<state> s, std::chrono::nanoseconds max_wait) {
    using R = std::pair<std::error_code, std::optional<shop_event>>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const auto until = std::chrono::steady_clock::now() +
                       std::min(max_wait, std::chrono::nanoseconds(std::chrono::hours(24 * 366)));
    for (;;) {
      if (!s->events.empty()) {
        shop_event e = std::move(s->events.front());
        s->events.pop_front();
        co_return R{{}, std::move(e)};
      }
      if (std::chrono::steady_clock::now() >= until) co_return R{{}, std::nullopt};
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex, until);
      s->wake = &t;
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      s->wake = nullptr;
      const bool stop = co_await cancel_requested();
      if (stop) co_return R{make_error_code(seckill::errc::operation_aborted), std::nullopt};
    }
  }

  static boost::asio::awaitable<std::pair<std::error_code, shop_snapshot>> snapshot(
      std::shared_ptr<state> s) {
    using R = std::pair<std::error_code, shop_snapshot>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    // The reading goes out first: it needs no layout, so the page answers it
    // before the look below makes it lay the new state out.
    struct reading {
      bool done = false;
      std::error_code ec;
      nlohmann::json value;
      boost::asio::steady_timer* wake = nullptr;
    };
    auto r = std::make_shared<reading>();
    std::string fn(detail::scripts::deep<&detail::scripts::read_shop>());
    nlohmann::json args = nlohmann::json::array({detail::profile_argument(s->profile)});
    s->pg.async_call_function_isolated(
        std::move(fn), std::move(args),
        boost::asio::bind_executor(s->pg.get_executor(), [r](std::error_code ec, nlohmann::json v) {
          r->ec = ec;
          r->value = std::move(v);
          r->done = true;
          if (r->wake) r->wake->cancel();
        }));
    // A first look at the buy button: its wait for an animation frame (is
    // the button stable?) overlaps the decision and the choice, and the
    // click's own check finds the button already sampled a frame before (or
    // shares the look's frame). A short look, not a wait: the click waits
    // (and reports) if need be.
    s->pg.async_wait_for(s->profile.buy, std::min(s->opts.action_timeout, look_timeout),
                         [](std::error_code, const element_box&) {});
    if (!r->done) {
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex, boost::asio::steady_timer::time_point::max());
      r->wake = &t;
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      r->wake = nullptr;
      const bool stop = co_await cancel_requested();
      if (stop) co_return R{make_error_code(seckill::errc::operation_aborted), {}};
    }
    std::error_code ec = r->ec;
    if (!ec && !r->value.is_object()) ec = make_error_code(seckill::errc::protocol_error);
    if (ec) co_return R{ec, {}};
    shop_snapshot snap = detail::to_snapshot(r->value);
    if (s->profile.stock_from_network()) {  // the stock as the last fresh response said
      snap.status = s->net_summary;
      if (s->net_offers) overlay_offers(snap, *s->net_offers);
    }
    co_return R{{}, std::move(snap)};
  }

  // The page's offers with the counts (and prices, where given) of a
  // response's; the response's alone when the page lists none.
  static void overlay_offers(shop_snapshot& snap, const std::vector<sku_offer>& net) {
    if (snap.offers.empty()) {
      snap.offers = net;
      return;
    }
    for (auto& o : snap.offers) {
      const auto it =
          std::find_if(net.begin(), net.end(), [&](const sku_offer& n) { return n.sku == o.sku; });
      if (it == net.end()) {
        o.stock = 0;  // the response does not list it: none known
        continue;
      }
      o.stock = it->stock;
      if (!std::isnan(it->price)) o.price = it->price;
    }
  }

  static boost::asio::awaitable<std::error_code> choose(std::shared_ptr<state> s, std::string sku) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const site_profile& p = s->profile;
    if (p.offers == site_profile::offer_layout::select) {
      auto [e] = co_await s->pg.async_select_option(
          p.offer_selector, std::move(sku), s->opts.action_timeout, as_tuple(use_awaitable));
      co_return e;
    }
    std::string fn(detail::scripts::deep<&detail::scripts::offer_path>());
    nlohmann::json args = nlohmann::json::array({detail::profile_argument(p), sku});
    auto [ec, v] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                               as_tuple(use_awaitable));
    if (ec) co_return ec;
    if (!detail::bool_member(v, "found")) co_return make_error_code(errc::element_not_found);
    std::string target = detail::string_member(v, "path");
    if (!p.choose_target.empty()) target += " " + p.choose_target;
    auto [e] =
        co_await s->pg.async_click(std::move(target), s->opts.click, as_tuple(use_awaitable));
    co_return e;
  }

  static boost::asio::awaitable<std::error_code> set_quantity(std::shared_ptr<state> s, int n) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const site_profile& p = s->profile;
    if (p.quantity_by_buttons()) co_return co_await step_quantity(s, n);
    if (p.quantity.empty()) {
      co_return n == 1 ? std::error_code{} : make_error_code(errc::element_not_found);
    }
    auto [e] = co_await s->pg.async_fill(p.quantity, std::to_string(n), s->opts.action_timeout,
                                         as_tuple(use_awaitable));
    if (e == errc::element_not_found && n == 1) co_return std::error_code{};  // no field: one
    co_return e;
  }

  // Reaches `n` with trusted clicks on + or -, reading the count before and after.
  static boost::asio::awaitable<std::error_code> step_quantity(std::shared_ptr<state> s, int n) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    const site_profile& p = s->profile;
    for (int round = 0; round < 2; ++round) {
      std::string fn(detail::scripts::deep<&detail::scripts::read_count>());
      nlohmann::json args = nlohmann::json::array({p.quantity_value});
      auto [ec, v] = co_await s->pg.async_call_function_isolated(std::move(fn), std::move(args),
                                                                 as_tuple(use_awaitable));
      if (ec) co_return ec;
      if (!v.is_number_integer()) co_return make_error_code(errc::element_not_found);
      const int now = v.get<int>();
      if (now == n) co_return std::error_code{};
      if (round == 1) co_return make_error_code(errc::element_not_actionable);  // it did not move
      const std::string& button = now < n ? p.quantity_plus : p.quantity_minus;
      if (button.empty()) co_return make_error_code(errc::element_not_found);
      for (int i = 0; i < std::abs(n - now); ++i) {
        auto [e] = co_await s->pg.async_click(button, s->opts.click, as_tuple(use_awaitable));
        if (e) co_return e;
      }
    }
    co_return std::error_code{};
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::string>> check_buy(
      std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [e, box] = co_await s->pg.async_wait_for(s->profile.buy, s->opts.click.timeout,
                                                  as_tuple(use_awaitable));
    co_return std::pair{e, s->profile.buy};
  }

  static boost::asio::awaitable<std::error_code> press_buy(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [e] = co_await s->pg.async_click(s->profile.buy, s->opts.click, as_tuple(use_awaitable));
    co_return e;
  }

  std::shared_ptr<state> s_;
};

static_assert(shop_driver<page_driver>);

}  // namespace seckill::browser
