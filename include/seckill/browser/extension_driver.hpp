#pragma once
/// @file
/// @brief `extension_driver`: a shop_driver over seckill's browser extension
///        (extension/ in the source tree), talking the extension protocol
///        (browser/native_messaging.hpp) over any byte stream: the native
///        host's stdin and stdout, or a loopback socket a relay connects.
///        The browser driver's second backend, beside page_driver (CDP).

#include <seckill/browser/detail/shop_replies.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/native_messaging.hpp>
#include <seckill/browser/page_types.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/stock_response.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief Which tab an extension_driver drives, how long its actions may
///        wait, and how it clicks (the same meaning as page_driver_options).
///
/// A plain value. Cost: none.
struct extension_driver_options {
  std::string url;       ///< the shop page: the tab whose URL starts with it
  bool open_tab = true;  ///< open the page in a new tab when no tab shows it
  std::chrono::milliseconds action_timeout{std::chrono::seconds(3)};  ///< per choose / fill
  click_options click{2, std::chrono::milliseconds(15), std::chrono::seconds(3)};
  /// A request's reply, beyond its action's own timeout.
  std::chrono::milliseconds call_timeout{std::chrono::seconds(10)};
  std::uint64_t input_seed = 1;  ///< seeds the extension's click jitter
  /// How long the shop a status or offers event carried answers
  /// async_snapshot without a request (the reaction to a change then costs
  /// no round trip); 0: every snapshot is a request.
  std::chrono::milliseconds carried_snapshot_age{200};
};

/// @brief A shop_driver over the seckill extension: what the grabber needs of
///        a shop page, perceived by the extension's content script and done
///        with trusted input through chrome.debugger, in the user's own
///        browser.
///
/// The same semantics and errors as page_driver, read by the same
/// site_profile: status, offers, outcome, countdown and verification events
/// (the content script's MutationObservers, running page_driver's own
/// scripts; a new document or a single-page route change reports the status
/// again as `initial`), snapshots, choices, quantities and presses after the
/// same actionability checks (attached, visible, stable, enabled, not
/// covered), the answers to the order (`success_response`, `order_response`,
/// the `throttled` element and texts). Not supported by this backend (yet):
/// stock from the network (`stock_response`); async_watch refuses it with
/// seckill::errc::invalid_argument. When the stream ends or the tab closes,
/// every pending and later operation completes with errc::browser_closed.
///
/// `Stream`: an AsyncReadStream and AsyncWriteStream carrying the frames
/// (native_messaging.hpp) to and from the extension; a TCP socket gets
/// TCP_NODELAY here (a relay's small frames must not wait). A handle: copies share
/// one state; call close() to end it (the state lives while its stream is
/// read). Thread-safety: run it on one thread or a strand (the stream's
/// executor). Cost: each operation is a request and its reply (a click's
/// checks and input run in the browser, in one request), except a snapshot
/// taken just after a status or offers change: the change's event carries
/// the shop as the content script read it then, and the first snapshot
/// within `carried_snapshot_age` of its arrival returns it. Any action (as
/// it starts and as it ends), a result, a route change or a form control the
/// user changed makes the next snapshot a request again; a page script that
/// sets a control's value sends no event (set the age to 0 for such a shop).
template <class Stream>
class extension_driver {
 public:
  using executor_type = typename Stream::executor_type;

  extension_driver(Stream stream, site_profile profile = {}, extension_driver_options opts = {})
      : s_(std::make_shared<state>(std::move(stream), std::move(profile), std::move(opts))) {
    // Requests, replies and events are small frames, each awaited: on a TCP
    // socket, Nagle's algorithm would hold a reply written just after an event
    // until the peer's delayed acknowledgement (up to 40 ms on Linux).
    if constexpr (requires(Stream & st, boost::system::error_code & ec) {
                    st.set_option(typename Stream::protocol_type::no_delay(true), ec);
                  }) {
      boost::system::error_code ignored;
      s_->stream.set_option(typename Stream::protocol_type::no_delay(true), ignored);
    }
  }

  [[nodiscard]] executor_type get_executor() const { return s_->stream.get_executor(); }
  [[nodiscard]] const site_profile& profile() const noexcept { return s_->profile; }
  /// The tab the extension attached to (after async_watch), else nullopt.
  [[nodiscard]] std::optional<std::int64_t> tab() const noexcept { return s_->tab; }

  /// Ends the driver: closes the stream; pending operations complete with
  /// errc::browser_closed.
  void close() {
    fail(s_, make_error_code(errc::browser_closed));
    if constexpr (requires(Stream & st, boost::system::error_code & e) { st.close(e); }) {
      boost::system::error_code ignored;
      s_->stream.close(ignored);
    } else if constexpr (requires(Stream & st, std::error_code & e) { st.close(e); }) {
      std::error_code ignored;
      s_->stream.close(ignored);
    }
  }

  /// Attaches to the shop's tab (options.url) and starts watching:
  /// (error_code); errc::not_logged_in when the profile names a logged-in
  /// sign the page does not show.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_watch(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), watch(s_), token);
  }

  /// The oldest unread event, waiting for one at most `max_wait`.
  template <boost::asio::completion_token_for<void(std::error_code, std::optional<shop_event>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_next_event(std::chrono::nanoseconds max_wait,
                        CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::optional<shop_event>)>(
        get_executor(), next_event(s_, max_wait), token);
  }

  /// The status text and every offer.
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

  /// Sets the quantity to `n` (as page_driver::async_set_quantity).
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_quantity(int n, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), set_quantity(s_, n),
                                                               token);
  }

  /// Presses buy with a trusted click; the answer comes as an outcome event.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_press_buy(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(),
                                                               click(s_, s_->profile.buy), token);
  }

  /// A try's actions back to back (ordering_shop_driver): choose `a.sku`,
  /// set `a.quantity` (each skipped when nullopt), press buy, with the same
  /// checks, input and errors as the three operations. Where the profile
  /// allows (offers in a select, a quantity field) they go as one request:
  /// one trip through the native host instead of three; an offer chosen by
  /// a click or a quantity set with +/- goes on its own, as it would alone.
  /// Completes with the first error and the action it came from.
  template <boost::asio::completion_token_for<void(std::error_code, order_action)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_order(order_actions a, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, order_action)>(
        get_executor(), order(s_, std::move(a)), token);
  }

  /// A dry run's last check: waits (up to the click's timeout) until the buy
  /// button is actionable (the click's checks, in the content script) and
  /// completes with its selector, pressing nothing; errc::element_not_found
  /// or errc::element_not_actionable when it is not.
  template <boost::asio::completion_token_for<void(std::error_code, std::string)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_check_buy(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::string)>(get_executor(),
                                                                            check_buy(s_), token);
  }

  /// Loads the page again and waits for its load; the new document's status
  /// comes as an event.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reload(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(get_executor(), reload(s_), token);
  }

  /// Up to `n` readings of the shop's clock (as page_driver::async_clock_samples).
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<clock_sample>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_clock_samples(int n, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::vector<clock_sample>)>(
        get_executor(), clock_samples(s_, n), token);
  }

 private:
  using json = nlohmann::json;
  using result = std::pair<std::error_code, json>;

  struct pending {
    explicit pending(const executor_type& ex) : timer(ex) {}
    boost::asio::steady_timer timer;
    std::optional<json> reply;
  };

  struct state {
    state(Stream st, site_profile p, extension_driver_options o)
        : stream(std::move(st)), profile(std::move(p)), opts(std::move(o)) {}
    Stream stream;
    site_profile profile;
    extension_driver_options opts;
    std::deque<shop_event> events;
    boost::asio::steady_timer* wake = nullptr;
    std::map<std::int64_t, std::shared_ptr<pending>> calls;
    std::int64_t next_id = 0;
    std::deque<std::string> out;
    bool writing = false;
    bool reading = false;
    std::error_code closed;
    std::optional<std::int64_t> tab;
    std::optional<shop_snapshot> carried;  // the shop the last change event carried
    std::chrono::steady_clock::time_point carried_at;
    bool batch_refused = false;  // the extension predates the batch op
    detail::verification_watch verification;
    detail::throttled_watch throttled;
    void push(shop_event e) {
      events.push_back(std::move(e));
      if (wake) wake->cancel();
    }
  };

  static void fail(const std::shared_ptr<state>& s, std::error_code ec) {
    if (!s->closed) s->closed = ec;
    for (auto& [id, p] : s->calls) p->timer.cancel();
    if (s->wake) s->wake->cancel();
  }

  static boost::asio::awaitable<bool> cancel_requested() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  static boost::asio::awaitable<void> read_loop(std::shared_ptr<state> s) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    char header[native_messaging::header_size];
    std::string body;
    for (;;) {
      auto [e, n] = co_await boost::asio::async_read(
          s->stream, boost::asio::buffer(header, sizeof header), as_tuple(use_awaitable));
      if (e) break;
      const std::uint32_t len = native_messaging::read_length(header);
      if (len > native_messaging::to_host_limit) {
        fail(s, make_error_code(seckill::errc::message_too_large));
        co_return;
      }
      body.assign(len, '\0');
      auto [e2, n2] = co_await boost::asio::async_read(s->stream, boost::asio::buffer(body),
                                                       as_tuple(use_awaitable));
      if (e2) break;
      auto m = native_messaging::parse_message(body);
      if (m.error) {
        fail(s, m.error);
        co_return;
      }
      dispatch(s, m.value);
    }
    fail(s, make_error_code(errc::browser_closed));
  }

  static void dispatch(const std::shared_ptr<state>& s, json& m) {
    if (auto ev = m.find("event"); ev != m.end() && ev->is_object()) {
      on_event(s, *ev);
      return;
    }
    const auto id = m.find("id");
    if (id == m.end() || !id->is_number_integer()) return;  // hello, or a reply to no request
    const auto it = s->calls.find(id->get<std::int64_t>());
    if (it == s->calls.end()) return;  // timed out meanwhile
    it->second->reply = std::move(m);
    it->second->timer.cancel();
  }

  static void on_event(const std::shared_ptr<state>& s, const json& ev) {
    const auto tab = ev.find("tab");
    if (tab != ev.end() && tab->is_number_integer() && s->tab &&
        tab->get<std::int64_t>() != *s->tab)
      return;
    const std::string kind = detail::string_member(ev, "kind");
    if (const auto shop = ev.find("shop");
        (kind == "status" || kind == "offers") && shop != ev.end() && shop->is_object()) {
      s->carried = detail::to_snapshot(*shop);
      s->carried_at = std::chrono::steady_clock::now();
    } else if (kind == "status" || kind == "offers" || kind == "form" || kind == "route" ||
               kind == "result") {
      s->carried.reset();
    }
    std::string text = detail::string_member(ev, "text");
    const bool present = detail::bool_member(ev, "present");
    const bool initial = detail::bool_member(ev, "initial");
    const site_profile& p = s->profile;
    shop_event e;
    if (kind == "status") {
      e.kind = shop_event_kind::status;
      e.in_stock = present && detail::says_in_stock(p, text);
      e.initial = initial;
      e.text = std::move(text);
      s->push(std::move(e));
    } else if (kind == "result") {
      if (!initial && !text.empty()) {
        e.kind = shop_event_kind::outcome;
        e.throttled = detail::contains_any(text, p.throttled_text);
        e.confirmed = !e.throttled && detail::contains_any(text, p.success);
        e.text = std::move(text);
        s->push(std::move(e));
      }
      const std::string url = detail::string_member(ev, "url");
      if (initial && !p.success_url.empty() && url.find(p.success_url) != std::string::npos) {
        e.kind = shop_event_kind::outcome;
        e.confirmed = true;
        e.text = url;
        s->push(std::move(e));
      }
    } else if (kind == "offers") {
      if (initial) return;
      e.kind = shop_event_kind::offers;
      s->push(std::move(e));
    } else if (kind == "throttled") {
      if (auto t = s->throttled.see(present, text)) s->push(std::move(*t));
    } else if (kind == "response") {
      // A response of the page's (its URL, status and Retry-After): the
      // order's own answer when the profile names its URL.
      const std::string url = detail::string_member(ev, "url");
      const auto status = ev.find("status");
      if (status == ev.end() || !status->is_number_integer()) return;
      const int code = status->template get<int>();
      const std::string retry_after = detail::string_member(ev, "retry_after");
      if (response_url_matches(p.success_response, url)) {
        e = detail::response_outcome(code, url, retry_after);
        e.confirmed = code >= 200 && code < 300;
        s->push(std::move(e));
      } else if (response_url_matches(p.order_response, url) && is_throttling_status(code)) {
        s->push(detail::response_outcome(code, url, retry_after));
      }
    } else if (kind == "verification") {
      const auto which = ev.find("which");
      const bool own = which != ev.end() && which->is_number_integer() && *which == 1;
      if (auto v = s->verification.see(own ? 1 : 0, present ? std::move(text) : std::string()))
        s->push(std::move(*v));
    } else if (kind == "countdown") {
      e.kind = shop_event_kind::countdown;
      e.text = present ? std::move(text) : std::string();
      s->push(std::move(e));
    } else if (kind == "closed") {
      fail(s, make_error_code(errc::browser_closed));
    }
  }

  static boost::asio::awaitable<void> write_loop(std::shared_ptr<state> s) {
    while (!s->out.empty()) {
      auto [e, n] =
          co_await boost::asio::async_write(s->stream, boost::asio::buffer(s->out.front()),
                                            boost::asio::as_tuple(boost::asio::use_awaitable));
      if (e) {
        s->out.clear();
        fail(s, make_error_code(errc::browser_closed));
        break;
      }
      s->out.pop_front();
    }
    s->writing = false;
  }

  // One request and its reply: (error_code, result).
  static boost::asio::awaitable<result> call(std::shared_ptr<state> s, std::string op, json args,
                                             std::chrono::milliseconds own_timeout = {}) {
    if (s->closed) co_return result{s->closed, json()};
    const auto ex = co_await boost::asio::this_coro::executor;
    if (!s->reading) {
      s->reading = true;
      boost::asio::co_spawn(s->stream.get_executor(), read_loop(s), boost::asio::detached);
    }
    const std::int64_t id = ++s->next_id;
    if (s->tab && op != "attach") args["tab"] = *s->tab;
    const json msg{{"v", native_messaging::protocol_version},
                   {"id", id},
                   {"op", std::move(op)},
                   {"args", std::move(args)}};
    std::string frame;
    if (const std::error_code e =
            native_messaging::encode_frame(msg.dump(-1, ' ', false, json::error_handler_t::replace),
                                           native_messaging::to_browser_limit, frame))
      co_return result{e, json()};
    auto p = std::make_shared<pending>(ex);
    p->timer.expires_after(own_timeout + s->opts.call_timeout);
    s->calls.emplace(id, p);
    s->out.push_back(std::move(frame));
    if (!s->writing) {
      s->writing = true;
      boost::asio::co_spawn(s->stream.get_executor(), write_loop(s), boost::asio::detached);
    }
    co_await p->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    s->calls.erase(id);
    if (!p->reply) {
      if (co_await cancel_requested())
        co_return result{make_error_code(seckill::errc::operation_aborted), json()};
      if (s->closed) co_return result{s->closed, json()};
      co_return result{make_error_code(seckill::errc::timed_out), json()};
    }
    json& r = *p->reply;
    if (detail::bool_member(r, "ok")) co_return result{{}, r.value("result", json())};
    const json err = r.value("error", json::object());
    co_return result{native_messaging::error_from_code(detail::string_member(err, "code")), err};
  }

  static boost::asio::awaitable<result> page_call(std::shared_ptr<state> s, const char* fn,
                                                  json args,
                                                  std::chrono::milliseconds own_timeout = {}) {
    json a{{"fn", fn}, {"args", std::move(args)}};
    a["timeout_ms"] = (own_timeout + s->opts.call_timeout).count();
    co_return co_await call(std::move(s), "call", std::move(a), own_timeout);
  }

  static boost::asio::awaitable<std::error_code> watch(std::shared_ptr<state> s) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const site_profile& p = s->profile;
    if (p.stock_from_network() || s->opts.url.empty())
      co_return make_error_code(seckill::errc::invalid_argument);
    if (!s->tab) {
      json a{{"url", s->opts.url},
             {"open", s->opts.open_tab},
             {"seed", s->opts.input_seed},
             {"timeout_ms", s->opts.call_timeout.count()}};
      auto [e, r] = co_await call(s, "attach", std::move(a));
      if (e) co_return e;
      const auto tab = r.find("tab");
      if (!r.is_object() || tab == r.end() || !tab->is_number_integer())
        co_return make_error_code(seckill::errc::protocol_error);
      s->tab = tab->template get<std::int64_t>();
    }
    json cfg{{"status", p.status},         {"result", p.result},
             {"offers", p.offer_selector}, {"countdown", p.countdown},
             {"logged_in", p.logged_in},   {"shop", detail::profile_argument(p)}};
    cfg["throttled"] = p.throttled;
    // The page's responses (their URL, status and Retry-After), for the
    // answers to the order the profile names.
    cfg["responses"] = !p.success_response.empty() || !p.order_response.empty();
    if (!p.verification_off) {
      // The common checks and texts, and the profile's own (page_driver's).
      json v = json::object();
      v["common"] = std::string(default_verification);
      v["texts"] = detail::verification_texts(p);
      v["own"] = p.verification;
      cfg["verification"] = std::move(v);
    }
    json a{{"profile", std::move(cfg)}, {"timeout_ms", s->opts.call_timeout.count()}};
    auto [e, r] = co_await call(s, "watch", std::move(a));
    if (e) co_return e;
    if (!p.logged_in.empty() && !detail::bool_member(r, "logged_in"))
      co_return make_error_code(errc::not_logged_in);
    co_return std::error_code{};
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
      if (s->closed) co_return R{s->closed, std::nullopt};
      if (std::chrono::steady_clock::now() >= until) co_return R{{}, std::nullopt};
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex, until);
      s->wake = &t;
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      s->wake = nullptr;
      if (co_await cancel_requested())
        co_return R{make_error_code(seckill::errc::operation_aborted), std::nullopt};
    }
  }

  static boost::asio::awaitable<std::pair<std::error_code, shop_snapshot>> snapshot(
      std::shared_ptr<state> s) {
    using R = std::pair<std::error_code, shop_snapshot>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (s->carried) {
      std::optional<shop_snapshot> carried = std::exchange(s->carried, std::nullopt);
      if (std::chrono::steady_clock::now() - s->carried_at <= s->opts.carried_snapshot_age)
        co_return R{{}, std::move(*carried)};
    }
    json args = json::array({detail::profile_argument(s->profile)});
    auto [e, v] = co_await page_call(s, "read_shop", std::move(args));
    if (e) co_return R{e, {}};
    if (!v.is_object()) co_return R{make_error_code(seckill::errc::protocol_error), {}};
    co_return R{{}, detail::to_snapshot(v)};
  }

  // Forgets the carried shop as an action starts and as it ends: the page the
  // action changed, and any event that came in while it ran, is read afresh.
  class page_changing {
   public:
    explicit page_changing(std::shared_ptr<state> s) : s_(std::move(s)) { s_->carried.reset(); }
    ~page_changing() { s_->carried.reset(); }
    page_changing(const page_changing&) = delete;
    page_changing& operator=(const page_changing&) = delete;

   private:
    std::shared_ptr<state> s_;
  };

  static json click_args(const std::shared_ptr<state>& s, std::string selector) {
    const click_options& o = s->opts.click;
    return json{{"selector", std::move(selector)},
                {"options",
                 {{"move_steps", o.move_steps},
                  {"press_ms", o.press_duration.count()},
                  {"press_jitter_ms", o.press_jitter.count()},
                  {"path_jitter", o.path_jitter},
                  {"timeout_ms", o.timeout.count()}}}};
  }

  static boost::asio::awaitable<std::error_code> click(std::shared_ptr<state> s,
                                                       std::string selector) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const page_changing changing(s);
    json a = click_args(s, std::move(selector));
    auto [e, r] = co_await call(s, "click", std::move(a), click_time(s));
    co_return e;
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::string>> check_buy(
      std::shared_ptr<state> s) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    json a = json::object();  // (no braced list across a co_await: GCC)
    a["selector"] = s->profile.buy;
    a["timeout_ms"] = s->opts.click.timeout.count();
    auto [e, r] = co_await call(s, "check", std::move(a), s->opts.click.timeout);
    co_return std::pair{e, s->profile.buy};
  }

  static json select_args(const std::shared_ptr<state>& s, std::string sku) {
    return json{{"selector", s->profile.offer_selector},
                {"value", std::move(sku)},
                {"timeout_ms", s->opts.action_timeout.count()}};
  }

  // The quantity field's fill; `absent_ok`: no field means the one the shop
  // takes anyway (a quantity of 1).
  static json fill_args(const std::shared_ptr<state>& s, int n) {
    return json{{"selector", s->profile.quantity},
                {"text", std::to_string(n)},
                {"timeout_ms", s->opts.action_timeout.count()},
                {"absent_ok", n == 1}};
  }

  // A request's error, but none for element_not_found where its args said
  // `absent_ok`: an extension older than that argument reports the missing
  // element itself.
  static std::error_code unless_absent_ok(std::error_code e, bool absent_ok) {
    return absent_ok && e == make_error_code(errc::element_not_found) ? std::error_code{} : e;
  }

  [[nodiscard]] static std::chrono::milliseconds click_time(const std::shared_ptr<state>& s) {
    return s->opts.click.timeout + s->opts.click.press_duration + s->opts.click.press_jitter;
  }

  // Steps gathered for one "batch" request, and the action each is part of.
  struct batch {
    json steps = json::array();
    std::vector<order_action> of;
    std::vector<std::chrono::milliseconds> waits;  // each step's own time
    std::chrono::milliseconds own{0};
    void add(order_action a, const char* op, json args, std::chrono::milliseconds t) {
      json step = json::object();
      step["op"] = op;
      step["args"] = std::move(args);
      steps.push_back(std::move(step));
      of.push_back(a);
      waits.push_back(t);
      own += t;
    }
  };

  // Runs the gathered steps in one request (nothing when there are none);
  // the extension's error says at which step it stopped. With no step named
  // (closed, timed out), the last action is blamed: a timeout covers them all.
  // An extension older than the batch op refuses it with invalid_argument and
  // no step: the steps then go one request each, from then on.
  static boost::asio::awaitable<std::pair<std::error_code, order_action>> run_batch(
      std::shared_ptr<state> s, batch b) {
    using R = std::pair<std::error_code, order_action>;
    if (b.of.empty()) co_return R{};
    if (!s->batch_refused) {
      json a = json::object();
      a["steps"] = b.steps;
      auto [e, r] = co_await call(s, "batch", std::move(a), b.own);
      if (!e) co_return R{};
      const auto step = r.is_object() ? r.find("step") : r.end();
      const bool named = step != r.end() && step->is_number_unsigned() &&
                         step->template get<std::size_t>() < b.of.size();
      if (named) co_return R{e, b.of[step->template get<std::size_t>()]};
      if (e != make_error_code(seckill::errc::invalid_argument)) co_return R{e, b.of.back()};
      s->batch_refused = true;
    }
    for (std::size_t i = 0; i < b.of.size(); ++i) {
      std::string op = detail::string_member(b.steps[i], "op");
      json args = std::move(b.steps[i]["args"]);
      const bool absent_ok = detail::bool_member(args, "absent_ok");
      auto [e, r] = co_await call(s, std::move(op), std::move(args), b.waits[i]);
      if (const std::error_code failed = unless_absent_ok(e, absent_ok))
        co_return R{failed, b.of[i]};
    }
    co_return R{};
  }

  static boost::asio::awaitable<std::pair<std::error_code, order_action>> order(
      std::shared_ptr<state> s, order_actions todo) {
    using R = std::pair<std::error_code, order_action>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const page_changing changing(s);
    const site_profile& p = s->profile;
    batch b;
    if (todo.sku) {
      if (p.offers == site_profile::offer_layout::select) {
        b.add(order_action::choose, "select", select_args(s, *todo.sku), s->opts.action_timeout);
      } else if (const std::error_code e = co_await choose(s, *todo.sku)) {
        co_return R{e, order_action::choose};  // (first: nothing gathered yet)
      }
    }
    if (todo.quantity) {
      const int n = *todo.quantity;
      if (!p.quantity_by_buttons() && p.quantity.empty()) {
        // No quantity on the page: the shop takes one, and no other.
        if (n != 1) co_return R{make_error_code(errc::element_not_found), order_action::quantity};
      } else if (!p.quantity_by_buttons()) {
        b.add(order_action::quantity, "fill", fill_args(s, n), s->opts.action_timeout);
      } else {
        batch head = std::move(b);  // (no braced temporary across a co_await: GCC)
        b = batch();
        R done = co_await run_batch(s, std::move(head));
        if (done.first) co_return done;
        if (const std::error_code e = co_await set_quantity(s, n))
          co_return R{e, order_action::quantity};
      }
    }
    b.add(order_action::press, "click", click_args(s, p.buy), click_time(s));
    co_return co_await run_batch(s, std::move(b));
  }

  static boost::asio::awaitable<std::error_code> choose(std::shared_ptr<state> s, std::string sku) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const page_changing changing(s);
    const site_profile& p = s->profile;
    if (p.offers == site_profile::offer_layout::select) {
      json a = select_args(s, std::move(sku));
      auto [e, r] = co_await call(s, "select", std::move(a), s->opts.action_timeout);
      co_return e;
    }
    json args = json::array({detail::profile_argument(p), sku});
    auto [ec, v] = co_await page_call(s, "offer_path", std::move(args));
    if (ec) co_return ec;
    if (!detail::bool_member(v, "found")) co_return make_error_code(errc::element_not_found);
    std::string target = detail::string_member(v, "path");
    if (!p.choose_target.empty()) target += " " + p.choose_target;
    co_return co_await click(s, std::move(target));
  }

  static boost::asio::awaitable<std::error_code> set_quantity(std::shared_ptr<state> s, int n) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const page_changing changing(s);
    const site_profile& p = s->profile;
    if (p.quantity_by_buttons()) co_return co_await step_quantity(s, n);
    if (p.quantity.empty())
      co_return n == 1 ? std::error_code{} : make_error_code(errc::element_not_found);
    json a = fill_args(s, n);
    const bool absent_ok = detail::bool_member(a, "absent_ok");
    auto [e, r] = co_await call(s, "fill", std::move(a), s->opts.action_timeout);
    co_return unless_absent_ok(e, absent_ok);
  }

  // Reaches `n` with trusted clicks on + or -, reading the count before and after.
  static boost::asio::awaitable<std::error_code> step_quantity(std::shared_ptr<state> s, int n) {
    const site_profile& p = s->profile;
    for (int round = 0; round < 2; ++round) {
      json args = json::array({p.quantity_value});
      auto [ec, v] = co_await page_call(s, "read_count", std::move(args));
      if (ec) co_return ec;
      if (!v.is_number_integer()) co_return make_error_code(errc::element_not_found);
      const int now = v.template get<int>();
      if (now == n) co_return std::error_code{};
      if (round == 1) co_return make_error_code(errc::element_not_actionable);  // it did not move
      const std::string& button = now < n ? p.quantity_plus : p.quantity_minus;
      if (button.empty()) co_return make_error_code(errc::element_not_found);
      for (int i = 0; i < std::abs(n - now); ++i) {
        if (const std::error_code e = co_await click(s, button)) co_return e;
      }
    }
    co_return std::error_code{};
  }

  static boost::asio::awaitable<std::error_code> reload(std::shared_ptr<state> s) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const page_changing changing(s);
    const std::chrono::milliseconds load{30000};
    json a = json::object();  // (no braced list across a co_await: GCC)
    a["timeout_ms"] = load.count();
    auto [e, r] = co_await call(s, "reload", std::move(a), load);
    co_return e;
  }

  static boost::asio::awaitable<std::pair<std::error_code, std::vector<clock_sample>>>
  clock_samples(std::shared_ptr<state> s, int n) {
    using R = std::pair<std::error_code, std::vector<clock_sample>>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    n = std::clamp(n, 1, 100);
    const std::chrono::milliseconds each{1000};  // a HEAD request's share of the wait
    json args = json::array();
    args.push_back(n);
    auto [ec, dates] = co_await page_call(s, "date_samples", std::move(args), each * n);
    if (ec) co_return R{ec, {}};
    json texts;
    if (!s->profile.clock.empty()) {
      json read = json::array();
      read.push_back(s->profile.clock);
      read.push_back(n);
      // (the script watches the clock for at most 2.5 s)
      auto [e2, t] =
          co_await page_call(s, "clock_texts", std::move(read), std::chrono::milliseconds(2500));
      if (e2) co_return R{e2, {}};
      texts = std::move(t);
    }
    co_return R{{}, detail::to_clock_samples(dates, texts)};
  }

  std::shared_ptr<state> s_;
};

}  // namespace seckill::browser
