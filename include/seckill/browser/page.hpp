#pragma once
/// @file
/// @brief One browser tab driven over a flat DevTools session: navigate,
///        evaluate, wait for actionable elements, watch them in an isolated
///        world, click with trusted mouse input, pick native select options.

#include <seckill/browser/cdp.hpp>
#include <seckill/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::browser {

/// @brief Limits and names a page uses.
struct page_options {
  std::chrono::milliseconds call_timeout{std::chrono::seconds(10)};        ///< per DevTools call
  std::chrono::milliseconds navigation_timeout{std::chrono::seconds(30)};  ///< until `load`
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(10)};  ///< wait_for's re-check
  std::string world_name = "__seckill_world";  ///< the isolated world seckill's scripts run in
};

/// @brief How click() moves and presses the mouse.
struct click_options {
  int move_steps = 3;                                          ///< mouseMoved events on the way
  std::chrono::milliseconds press_duration{std::chrono::milliseconds(60)};  ///< press to release
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};  ///< waiting for actionability
};

/// @brief An element's box in CSS pixels of the viewport; (x, y) is its centre.
struct element_box {
  double x = 0, y = 0, width = 0, height = 0;
};

/// @brief What on_mutation() reports: the first element matching the selector
///        (present or not) and its trimmed text. `initial` marks the report a
///        new document makes of its state once its DOM is parsed.
struct mutation_record {
  bool present = false;
  std::string text;
  bool initial = false;
};

namespace detail {

template <class T>
using result = std::pair<std::error_code, T>;

/// co_spawn's (exception_ptr, result<T>) completion turned into (error_code, T)
/// or (error_code), keeping the caller's executor and cancellation slot.
template <class Handler, class T, class Fallback, bool Void>
struct spawn_handler {
  Handler handler;
  Fallback fallback;

  using executor_type = boost::asio::associated_executor_t<Handler, Fallback>;
  executor_type get_executor() const noexcept {
    return boost::asio::get_associated_executor(handler, fallback);
  }
  using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return boost::asio::get_associated_cancellation_slot(handler);
  }

  void operator()(std::exception_ptr e, result<T> r) {
    if (e) r = {make_error_code(errc::protocol_error), T{}};
    if constexpr (Void) {
      std::move(handler)(r.first);
    } else {
      std::move(handler)(r.first, std::move(r.second));
    }
  }
};

template <class Signature, class T, class Executor, class Token>
auto spawn_op(Executor ex, boost::asio::awaitable<result<T>> op, Token&& token) {
  constexpr bool is_void = std::is_same_v<Signature, void(std::error_code)>;
  return boost::asio::async_initiate<Token, Signature>(
      [ex](auto handler, boost::asio::awaitable<result<T>> op) {
        using H = decltype(handler);
        boost::asio::co_spawn(ex, std::move(op),
                              spawn_handler<H, T, Executor, is_void>{std::move(handler), ex});
      },
      token, std::move(op));
}

inline std::string js_string(std::string_view s) { return json(std::string(s)).dump(); }

// Checks one element for actionability; resolves to {state, ...}. Stable means
// the same box one animation frame apart, or the same box as `stable_box`
// ([x, y, width, height], centre form), seen stable by an earlier check.
inline std::string actionability_script(std::string_view selector, const element_box* stable_box = nullptr) {
  return "(async (sel, prev) => {"
         "const el = document.querySelector(sel);"
         "if (!el || !el.isConnected) return {state: 'missing'};"
         "const box = () => { const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; };"
         "const st = getComputedStyle(el);"
         "let a = box();"
         "if (st.visibility !== 'visible' || st.display === 'none' || a[2] === 0 || a[3] === 0) return {state: 'hidden'};"
         "if (a[0] + a[2] / 2 <= 0 || a[1] + a[3] / 2 <= 0 || a[0] - a[2] / 2 >= innerWidth || a[1] - a[3] / 2 >= innerHeight) {"
         "  el.scrollIntoView({block: 'center', inline: 'center'}); a = box(); }"
         "let b = a;"
         "if (!prev || a.some((v, i) => v !== prev[i])) {"
         "  await new Promise(r => { let done = false; requestAnimationFrame(() => { done = true; r(); });"
         "    setTimeout(() => { if (!done) r(); }, 50); });"
         "  if (!el.isConnected) return {state: 'missing'};"
         "  b = box();"
         "  if (a.some((v, i) => v !== b[i])) return {state: 'moving'}; }"
         "if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||"
         "    (el.closest && el.closest('fieldset[disabled]'))) return {state: 'disabled'};"
         "const x = b[0], y = b[1];"
         "const hit = document.elementFromPoint(x, y);"
         "if (!hit || (hit !== el && !el.contains(hit)))"
         "  return {state: 'covered', by: hit ? hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '') : ''};"
         "return {state: 'ok', x, y, width: b[2], height: b[3]};"
         "})(" +
         js_string(selector) + ", " +
         (stable_box != nullptr
              ? json::array({stable_box->x, stable_box->y, stable_box->width, stable_box->height}).dump()
              : std::string("null")) +
         ")";
}

// The checks select_option and fill make before setting a value (attached,
// visible, enabled: a value is not set by pointer, so neither stability nor a
// hit test applies), as the start of a function of (sel, value) with `el`.
inline constexpr std::string_view set_value_prelude =
    "const el = document.querySelector(sel);"
    "if (!el || !el.isConnected) return 'missing';"
    "const st = getComputedStyle(el), r = el.getBoundingClientRect();"
    "if (st.visibility !== 'visible' || st.display === 'none' || r.width === 0 || r.height === 0) return 'hidden';"
    "if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||"
    "    (el.closest && el.closest('fieldset[disabled]'))) return 'disabled';";

// Installs (once per document and id) a MutationObserver reporting the first
// match of `selector` through the binding whenever its presence or text changes.
inline std::string observer_script(std::uint64_t id, std::string_view binding,
                                   std::string_view selector) {
  return "(() => { const id = " + std::to_string(id) + ", sel = " + js_string(selector) +
         ", report = globalThis[" + js_string(binding) +
         "];"
         "document.createDocumentFragment().querySelector(sel);"  // throws on a bad selector
         "const reg = globalThis.__seckill_observers || (globalThis.__seckill_observers = {});"
         "if (reg[id]) return true;"
         "reg[id] = {last: undefined, observer: null};"
         "const check = (initial) => {"
         "  const el = document.querySelector(sel);"
         "  const s = el ? {present: true, text: (el.textContent || '').trim()} : {present: false, text: ''};"
         "  const key = (s.present ? '1' : '0') + s.text;"
         "  if (key === reg[id].last) return;"
         "  reg[id].last = key;"
         "  report(JSON.stringify({id, present: s.present, text: s.text, initial}));"
         "};"
         "const start = () => { if (!reg[id]) return; check(true);"
         "  reg[id].observer = new MutationObserver(() => check(false));"
         "  reg[id].observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true}); };"
         "if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, {once: true});"
         "else start();"
         "return true; })()";
}

inline std::string stop_observer_script(std::uint64_t id) {
  return "(() => { const reg = globalThis.__seckill_observers; const id = " + std::to_string(id) +
         "; if (reg && reg[id]) { if (reg[id].observer) reg[id].observer.disconnect(); delete reg[id]; } return true; })()";
}

inline std::string select_script(std::string_view selector, std::string_view value) {
  return "((sel, value) => {" + std::string(set_value_prelude) +
         "if (el.tagName !== 'SELECT') return 'not-select';"
         "const opt = Array.from(el.options).find(o => o.value === value) ||"
         "            Array.from(el.options).find(o => o.label === value);"
         "if (!opt) return 'no-option';"
         "if (opt.disabled) return 'option-disabled';"
         "el.value = opt.value;"
         "el.dispatchEvent(new Event('input', {bubbles: true}));"
         "el.dispatchEvent(new Event('change', {bubbles: true}));"
         "return 'ok'; })(" +
         js_string(selector) + ", " + js_string(value) + ")";
}

inline std::string fill_script(std::string_view selector, std::string_view text) {
  return "((sel, text) => {" + std::string(set_value_prelude) +
         "if (!('value' in el)) return 'not-input';"
         "if (el.readOnly) return 'disabled';"
         "el.focus(); el.value = text;"
         "el.dispatchEvent(new Event('input', {bubbles: true}));"
         "el.dispatchEvent(new Event('change', {bubbles: true}));"
         "return 'ok'; })(" +
         js_string(selector) + ", " + js_string(text) + ")";
}

/// What a select/fill script's answer means: {} done; element_not_found or
/// element_not_actionable with `retry` while the element may still become
/// ready (missing, hidden, disabled); the same without `retry` when it cannot
/// (no such option, a disabled option); invalid_argument for the wrong kind of
/// element; protocol_error for an answer that is none of these.
inline std::error_code script_status(const json& v, bool* retry = nullptr) {
  if (retry != nullptr) *retry = false;
  if (!v.is_string()) return make_error_code(errc::protocol_error);
  const auto& s = v.get_ref<const std::string&>();
  const bool waitable = s == "missing" || s == "hidden" || s == "disabled";
  if (retry != nullptr) *retry = waitable;
  if (s == "ok") return {};
  if (s == "missing" || s == "no-option") return make_error_code(errc::element_not_found);
  if (s == "hidden" || s == "disabled" || s == "option-disabled") return make_error_code(errc::element_not_actionable);
  if (s == "not-select" || s == "not-input") return make_error_code(errc::invalid_argument);
  return make_error_code(errc::protocol_error);
}

// Members read without throwing: missing or of another type gives the fallback.
inline std::string string_member(const json& o, const char* key) {
  if (!o.is_object()) return {};
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
inline std::int64_t int_member(const json& o, const char* key, std::int64_t fallback) {
  if (!o.is_object()) return fallback;
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return fallback;
  return it->get<std::int64_t>();
}
inline double number_member(const json& o, const char* key) {
  if (!o.is_object()) return 0;
  const auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<double>() : 0;
}
inline bool bool_member(const json& o, const char* key) {
  if (!o.is_object()) return false;
  const auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

/// Runtime.evaluate's reply (returnByValue) as (error_code, value): the value
/// (null for undefined); errc::javascript_exception and the exceptionDetails
/// object for a throw or a rejection; errc::protocol_error and
/// {"message": why} for a reply without a RemoteObject.
inline result<json> evaluation_result(json reply) {
  if (!reply.is_object()) {
    return {make_error_code(errc::protocol_error),
            json{{"message", std::string("Runtime.evaluate replied a ") + reply.type_name() + ", not an object"}}};
  }
  if (auto ex = reply.find("exceptionDetails"); ex != reply.end()) {
    if (!ex->is_object()) {
      return {make_error_code(errc::protocol_error),
              json{{"message", std::string("Runtime.evaluate's exceptionDetails is a ") + ex->type_name()}}};
    }
    return {make_error_code(errc::javascript_exception), std::move(*ex)};
  }
  auto res = reply.find("result");
  if (res == reply.end() || !res->is_object()) {
    return {make_error_code(errc::protocol_error),
            json{{"message", "Runtime.evaluate replied without a result object"}}};
  }
  auto v = res->find("value");
  return {std::error_code{}, v != res->end() ? std::move(*v) : json()};
}

/// A Runtime.bindingCalled event of `binding` carrying an observer's report:
/// (observer id, record); none for another binding or a payload that is not one.
inline std::optional<std::pair<std::uint64_t, mutation_record>> binding_report(const json& params,
                                                                               std::string_view binding) {
  if (string_member(params, "name") != binding) return std::nullopt;
  const json r = json::parse(string_member(params, "payload"), nullptr, false);
  if (r.is_discarded() || !r.is_object()) return std::nullopt;
  const auto id = r.find("id");
  if (id == r.end() || !id->is_number_unsigned() || id->get<std::uint64_t>() == 0) return std::nullopt;
  return std::pair{id->get<std::uint64_t>(),
                   mutation_record{bool_member(r, "present"), string_member(r, "text"), bool_member(r, "initial")}};
}

/// The id of the context a Runtime.executionContextCreated event announces if
/// it is the world `world` of frame `frame`; 0 otherwise.
inline std::int64_t created_context(const json& params, std::string_view world, std::string_view frame) {
  if (!params.is_object()) return 0;
  const auto c = params.find("context");
  if (c == params.end() || !c->is_object() || string_member(*c, "name") != world) return 0;
  const auto aux = c->find("auxData");
  if (aux == c->end() || string_member(*aux, "frameId") != frame) return 0;
  const std::int64_t id = int_member(*c, "id", 0);
  return id > 0 ? id : 0;
}

}  // namespace detail

class page;

/// @brief Keeps an on_mutation() callback registered; ends it on destruction.
///
/// Thread-safety: one owner; destruction from any thread (the callback may run
/// once more if it was already queued on the strand). Cost: one map entry and a
/// script in every new document until reset.
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
  void reset() noexcept {
    if (reset_) std::exchange(reset_, nullptr)();
  }
  [[nodiscard]] bool active() const noexcept { return static_cast<bool>(reset_); }

 private:
  std::function<void()> reset_;
};

/// @brief A browser tab (a page target) driven over a flat session of a shared
///        cdp::connection.
///
/// Everything page scripts must not see runs in an isolated world named
/// `page_options::world_name` (recreated in every new document): actionability
/// checks, option selection, and the MutationObservers of on_mutation(), which
/// report through a Runtime binding that exists only in that world. evaluate()
/// runs in the page's own main world, like a script of the page.
///
/// Thread-safety: a page may be used from any thread; every operation runs on
/// the connection's strand, where callbacks are invoked too. Operations may run
/// concurrently (a hundred evaluates in flight is fine). Cost: one DevTools
/// round trip per evaluate; wait_for re-checks every poll_interval (one round
/// trip and one animation frame each) until the element is actionable; a click
/// on an element just seen stable costs two round trips and the press.
class page {
 public:
  using executor_type = cdp::connection::executor_type;

  page() = default;

  /// Opens a new tab (about:blank) on `conn` and attaches to it:
  /// completes with (error_code, page).
  template <class CompletionToken>
  static auto async_open(std::shared_ptr<cdp::connection> conn, page_options opts,
                         CompletionToken&& token) {
    auto ex = conn->get_executor();
    return detail::spawn_op<void(std::error_code, page), page>(
        ex, impl::open(std::move(conn), std::move(opts)), std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  static auto async_open(std::shared_ptr<cdp::connection> conn, CompletionToken&& token) {
    return async_open(std::move(conn), page_options{}, std::forward<CompletionToken>(token));
  }

  [[nodiscard]] executor_type get_executor() const { return impl_->conn->get_executor(); }
  [[nodiscard]] const std::string& session_id() const noexcept { return impl_->session; }
  [[nodiscard]] const std::string& target_id() const noexcept { return impl_->target; }
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(impl_); }

  /// Navigates and waits for the `load` of the new document (the loaderId
  /// Page.navigate returned). A net error (refused, DNS, ...) completes with
  /// errc::navigation_failed and Page.navigate's result ({errorText, ...}).
  template <class CompletionToken>
  auto async_navigate(std::string url, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, json), json>(
        get_executor(), impl::navigate(impl_, std::move(url)), std::forward<CompletionToken>(token));
  }

  /// Reloads and waits for the new document's `load`.
  template <class CompletionToken>
  auto async_reload(CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, json), json>(
        get_executor(), impl::reload(impl_), std::forward<CompletionToken>(token));
  }

  /// Evaluates `expression` in the page's main world, awaiting a promise,
  /// returning by value: (error_code, value). A throw or a rejection completes
  /// with errc::javascript_exception and the exceptionDetails object; a
  /// protocol-level failure with errc::cdp_error and the error object.
  template <class CompletionToken>
  auto async_evaluate(std::string expression, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, json), json>(
        get_executor(), impl::evaluate(impl_, std::move(expression), 0, impl_->opts.call_timeout),
        std::forward<CompletionToken>(token));
  }

  /// Like async_evaluate, in seckill's isolated world: the page's DOM, none of
  /// its globals, and nothing the page can observe besides DOM changes made.
  template <class CompletionToken>
  auto async_evaluate_isolated(std::string expression, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, json), json>(
        get_executor(), impl::evaluate_isolated(impl_, std::move(expression), impl_->opts.call_timeout),
        std::forward<CompletionToken>(token));
  }

  /// Waits until the first element matching `selector` is attached, visible,
  /// stable for an animation frame, enabled and the target of a hit test at its
  /// centre; keeps waiting across navigations. Completes with (error_code,
  /// element_box); after `timeout`, errc::element_not_found when nothing
  /// matched, errc::element_not_actionable when something did.
  template <class CompletionToken>
  auto async_wait_for(std::string selector, std::chrono::milliseconds timeout, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, element_box), element_box>(
        get_executor(), impl::wait_for(impl_, std::move(selector), timeout),
        std::forward<CompletionToken>(token));
  }

  /// Clicks the element with trusted input (Input.dispatchMouseEvent): waits
  /// for actionability, moves the mouse in a few steps, presses, waits a
  /// human-scale moment, releases. Never clicks an element that is covered
  /// or disabled: errc::element_not_actionable after the timeout instead.
  /// A box that wait_for found stable less than 250 ms before, in the same
  /// document, counts as stable if the element is still exactly there (no
  /// animation frame to wait for); the moves and the press go out back to
  /// back (one round trip); the press lasts press_duration.
  template <class CompletionToken>
  auto async_click(std::string selector, click_options opts, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code), std::monostate>(
        get_executor(), impl::click(impl_, std::move(selector), opts), std::forward<CompletionToken>(token));
  }
  template <class CompletionToken>
  auto async_click(std::string selector, CompletionToken&& token) {
    return async_click(std::move(selector), click_options{}, std::forward<CompletionToken>(token));
  }

  /// Picks the option of a native <select> whose value (or else label) is
  /// `value`, firing input and change like a user's choice. Waits until the
  /// select is attached, visible and enabled (one round trip when it is);
  /// errc::element_not_found at once for no such option,
  /// errc::element_not_actionable at once for a disabled one.
  template <class CompletionToken>
  auto async_select_option(std::string selector, std::string value, std::chrono::milliseconds timeout,
                           CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code), std::monostate>(
        get_executor(),
        impl::set_value(impl_, std::move(selector), detail::select_script, std::move(value), timeout),
        std::forward<CompletionToken>(token));
  }

  /// Sets an input's value, firing input and change. Waits until the input is
  /// attached, visible, enabled and writable (one round trip when it is).
  template <class CompletionToken>
  auto async_fill(std::string selector, std::string text, std::chrono::milliseconds timeout,
                  CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code), std::monostate>(
        get_executor(),
        impl::set_value(impl_, std::move(selector), detail::fill_script, std::move(text), timeout),
        std::forward<CompletionToken>(token));
  }

  /// Calls `callback(record)` on the strand each time the presence or the text
  /// of the first element matching `selector` changes, and once per new
  /// document (record.initial). The MutationObserver lives in the isolated
  /// world and reports over a binding only that world has; it is reinstalled
  /// in every document, so it survives reloads. Completes with
  /// (error_code, mutation_subscription).
  template <class CompletionToken>
  auto async_on_mutation(std::string selector, std::function<void(const mutation_record&)> callback,
                         CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, mutation_subscription), mutation_subscription>(
        get_executor(), impl::on_mutation(impl_, std::move(selector), std::move(callback)),
        std::forward<CompletionToken>(token));
  }

  /// Closes the tab.
  template <class CompletionToken>
  auto async_close(CompletionToken&& token) {
    return impl_->conn->async_call("Target.closeTarget", json{{"targetId", impl_->target}}, "",
                                   std::forward<CompletionToken>(token));
  }

 private:
  struct impl : std::enable_shared_from_this<impl> {
    using awaitable_json = boost::asio::awaitable<detail::result<json>>;
    using clock = std::chrono::steady_clock;

    std::shared_ptr<cdp::connection> conn;
    page_options opts;
    std::string session, target, main_frame, binding;
    std::int64_t isolated_context = 0;
    std::deque<std::string> loaded;  // loaderIds whose `load` fired (most recent last)
    std::list<boost::asio::steady_timer*> waiters;
    std::map<std::uint64_t, std::function<void(const mutation_record&)>> observers;
    std::uint64_t next_observer = 1;
    double mouse_x = 0, mouse_y = 0;
    bool closed = false;
    // The last box wait_for found actionable, per selector (click reuses it).
    struct stable_box {
      element_box box;
      clock::time_point at;
      std::int64_t context = 0;  // the isolated world (so: the document) it was seen in
    };
    static constexpr std::chrono::milliseconds stable_reuse{250};
    std::map<std::string, stable_box> stable;
    std::vector<cdp::subscription> subs;

    // Wakes every coroutine parked in wait_event().
    void notify() {
      for (auto* t : waiters) t->cancel();
    }

    // Parks until notify() or `until`; false when the caller's op was cancelled.
    static boost::asio::awaitable<bool> wait_event(std::shared_ptr<impl> self, clock::time_point until) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, until);
      auto it = self->waiters.insert(self->waiters.end(), &timer);
      co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      self->waiters.erase(it);
      co_return !cancelled(co_await boost::asio::this_coro::cancellation_state);
    }

    static boost::asio::awaitable<bool> sleep(std::chrono::milliseconds d) {
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
      co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      co_return !cancelled(co_await boost::asio::this_coro::cancellation_state);
    }

    static bool cancelled(const boost::asio::cancellation_state& s) {
      return s.cancelled() != boost::asio::cancellation_type::none;
    }

    awaitable_json call(std::string method, json params,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
      auto [ec, v] = co_await conn->async_call(
          std::move(method), std::move(params), session,
          timeout.count() > 0 ? timeout : opts.call_timeout,
          boost::asio::as_tuple(boost::asio::use_awaitable));
      co_return detail::result<json>{ec, std::move(v)};
    }

    static boost::asio::awaitable<detail::result<page>> open(std::shared_ptr<cdp::connection> conn,
                                                             page_options opts) {
      using boost::asio::as_tuple;
      using boost::asio::use_awaitable;
      json create_params{{"url", "about:blank"}};
      auto [ec1, created] = co_await conn->async_call("Target.createTarget", std::move(create_params),
                                                      std::string(), opts.call_timeout, as_tuple(use_awaitable));
      if (ec1) co_return detail::result<page>{ec1, page{}};
      auto self = std::make_shared<impl>();
      self->conn = conn;
      self->opts = std::move(opts);
      self->target = created.value("targetId", std::string());
      json attach_params{{"targetId", self->target}, {"flatten", true}};
      auto [ec2, attached] = co_await conn->async_call("Target.attachToTarget", std::move(attach_params),
                                                       std::string(), self->opts.call_timeout,
                                                       as_tuple(use_awaitable));
      if (ec2) co_return detail::result<page>{ec2, page{}};
      self->session = attached.value("sessionId", std::string());
      self->binding = self->opts.world_name + "_report";
      self->subscribe_events();

      std::vector<std::pair<std::string, json>> setup{
               {"Page.enable", json::object()},
               {"Runtime.enable", json::object()},
               {"Page.setLifecycleEventsEnabled", json{{"enabled", true}}},
               {"Runtime.addBinding", json{{"name", self->binding},
                                           {"executionContextName", self->opts.world_name}}},
               {"Page.addScriptToEvaluateOnNewDocument",
                json{{"source", "void 0;"}, {"worldName", self->opts.world_name}}}};
      for (auto& step : setup) {
        auto [ec, r] = co_await self->call(step.first, std::move(step.second));
        if (ec) co_return detail::result<page>{ec, page{}};
      }
      auto [ec3, tree] = co_await self->call("Page.getFrameTree", json::object());
      if (ec3) co_return detail::result<page>{ec3, page{}};
      self->main_frame = tree["frameTree"]["frame"].value("id", std::string());
      json world_params{{"frameId", self->main_frame}, {"worldName", self->opts.world_name}};
      auto [ec4, world] = co_await self->call("Page.createIsolatedWorld", std::move(world_params));
      if (ec4) co_return detail::result<page>{ec4, page{}};
      if (self->isolated_context == 0) self->isolated_context = world.value("executionContextId", 0);
      page p;
      p.impl_ = std::move(self);
      co_return detail::result<page>{{}, std::move(p)};
    }

    void subscribe_events() {
      std::weak_ptr<impl> weak = shared_from_this();
      auto on = [&](const char* method, auto fn) {
        subs.push_back(conn->subscribe(session, method, [weak, fn](const json& p) {
          if (auto self = weak.lock()) fn(*self, p);
        }));
      };
      on("Page.lifecycleEvent", [](impl& s, const json& p) {
        if (detail::string_member(p, "name") != "load") return;
        s.loaded.push_back(detail::string_member(p, "loaderId"));
        if (s.loaded.size() > 32) s.loaded.pop_front();
        s.notify();
      });
      on("Runtime.executionContextCreated", [](impl& s, const json& p) {
        const std::int64_t id = detail::created_context(p, s.opts.world_name, s.main_frame);
        if (id == 0) return;
        s.isolated_context = id;
        s.notify();
      });
      on("Runtime.executionContextDestroyed", [](impl& s, const json& p) {
        if (detail::int_member(p, "executionContextId", -1) == s.isolated_context) s.isolated_context = 0;
      });
      on("Runtime.executionContextsCleared", [](impl& s, const json&) { s.isolated_context = 0; });
      on("Runtime.bindingCalled", [](impl& s, const json& p) {
        auto report = detail::binding_report(p, s.binding);
        if (!report) return;
        auto it = s.observers.find(report->first);
        if (it == s.observers.end()) return;
        auto fn = it->second;  // the callback may end its own subscription
        fn(report->second);
      });
      conn->on_close([weak](std::error_code) {
        if (auto self = weak.lock()) {
          self->closed = true;
          self->notify();
        }
      });
    }

    static awaitable_json evaluate(std::shared_ptr<impl> self, std::string expression, std::int64_t context,
                                   std::chrono::milliseconds timeout) {
      json params{{"expression", std::move(expression)}, {"awaitPromise", true}, {"returnByValue", true}};
      if (context != 0) params["contextId"] = context;
      auto [ec, r] = co_await self->call("Runtime.evaluate", std::move(params), timeout);
      if (ec) co_return detail::result<json>{ec, std::move(r)};
      co_return detail::evaluation_result(std::move(r));
    }

    // Evaluates in the current isolated world, waiting for one to exist (during
    // a navigation) and retrying when the context went away under the call.
    static awaitable_json evaluate_isolated(std::shared_ptr<impl> self, std::string expression,
                                            std::chrono::milliseconds timeout) {
      const auto until = clock::now() + timeout;
      for (;;) {
        if (self->closed) co_return detail::result<json>{make_error_code(errc::browser_closed), json()};
        if (clock::now() >= until) co_return detail::result<json>{make_error_code(errc::timed_out), json()};
        if (self->isolated_context == 0) {
          if (!co_await wait_event(self, std::min(until, clock::now() + std::chrono::milliseconds(250)))) {
            co_return detail::result<json>{make_error_code(errc::operation_aborted), json()};
          }
          if (self->isolated_context == 0 && !self->closed && clock::now() < until) {
            // No world announced itself: make one in the current document.
            json world_params{{"frameId", self->main_frame}, {"worldName", self->opts.world_name}};
            auto [ec, w] = co_await self->call("Page.createIsolatedWorld", std::move(world_params),
                                               remaining(until));
            if (!ec && self->isolated_context == 0) self->isolated_context = w.value("executionContextId", 0);
          }
          continue;
        }
        const std::int64_t ctx = self->isolated_context;
        auto r = co_await evaluate(self, expression, ctx, remaining(until));
        if (r.first == make_error_code(errc::cdp_error)) {
          // "Cannot find context with specified id" / "Execution context was destroyed."
          if (self->isolated_context == ctx) self->isolated_context = 0;
          continue;
        }
        co_return r;
      }
    }

    static std::chrono::milliseconds remaining(clock::time_point until) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());  // up: never end early
      return std::max(left, std::chrono::milliseconds(1));
    }

    static awaitable_json navigate(std::shared_ptr<impl> self, std::string url) {
      json params{{"url", std::move(url)}};
      auto [ec, r] = co_await self->call("Page.navigate", std::move(params));
      if (ec) co_return detail::result<json>{ec, std::move(r)};
      if (!r.value("errorText", std::string()).empty()) {
        co_return detail::result<json>{make_error_code(errc::navigation_failed), std::move(r)};
      }
      const std::string loader = r.value("loaderId", std::string());
      if (loader.empty()) co_return detail::result<json>{{}, std::move(r)};  // same-document
      auto e = co_await wait_loaded(self, loader);
      co_return detail::result<json>{e, std::move(r)};
    }

    static awaitable_json reload(std::shared_ptr<impl> self) {
      // Page.reload names no loaderId: wait for the first `load` of a loader not seen before.
      const std::deque<std::string> seen = self->loaded;
      auto [ec, r] = co_await self->call("Page.reload", json::object());
      if (ec) co_return detail::result<json>{ec, std::move(r)};
      const auto until = clock::now() + self->opts.navigation_timeout;
      for (;;) {
        for (const auto& l : self->loaded) {
          if (std::find(seen.begin(), seen.end(), l) == seen.end()) {
            co_return detail::result<json>{{}, json{{"loaderId", l}}};
          }
        }
        if (self->closed) co_return detail::result<json>{make_error_code(errc::browser_closed), json()};
        if (clock::now() >= until) co_return detail::result<json>{make_error_code(errc::timed_out), json()};
        if (!co_await wait_event(self, until)) {
          co_return detail::result<json>{make_error_code(errc::operation_aborted), json()};
        }
      }
    }

    static boost::asio::awaitable<std::error_code> wait_loaded(std::shared_ptr<impl> self, std::string loader) {
      const auto until = clock::now() + self->opts.navigation_timeout;
      for (;;) {
        if (std::find(self->loaded.begin(), self->loaded.end(), loader) != self->loaded.end()) co_return std::error_code{};
        if (self->closed) co_return make_error_code(errc::browser_closed);
        if (clock::now() >= until) co_return make_error_code(errc::timed_out);
        if (!co_await wait_event(self, until)) co_return make_error_code(errc::operation_aborted);
      }
    }

    // Waits until `selector` is actionable. With `reuse`, a box found stable by
    // an earlier check of the same selector in this document, less than
    // stable_reuse ago, counts as stable when the element is still exactly
    // there: no animation frame to wait for.
    static boost::asio::awaitable<detail::result<element_box>> wait_for(std::shared_ptr<impl> self,
                                                                          std::string selector,
                                                                          std::chrono::milliseconds timeout,
                                                                          bool reuse = false) {
      using R = detail::result<element_box>;
      const auto until = clock::now() + timeout;
      std::optional<element_box> seen;
      if (auto it = self->stable.find(selector); reuse && it != self->stable.end() &&
                                                 it->second.context == self->isolated_context &&
                                                 clock::now() - it->second.at < stable_reuse) {
        seen = it->second.box;
      }
      bool matched = false;
      for (;;) {
        if (clock::now() >= until) break;
        const std::string script = detail::actionability_script(selector, seen ? &*seen : nullptr);
        seen.reset();  // a second look waits for a frame
        auto [ec, v] = co_await evaluate_isolated(self, script, remaining(until));
        if (ec == make_error_code(errc::timed_out)) break;
        if (ec) co_return R{ec, {}};  // closed, cancelled, a bad selector
        const std::string state = detail::string_member(v, "state");
        if (state == "ok") {
          const element_box box{detail::number_member(v, "x"), detail::number_member(v, "y"),
                                detail::number_member(v, "width"), detail::number_member(v, "height")};
          self->stable[selector] = stable_box{box, clock::now(), self->isolated_context};
          co_return R{{}, box};
        }
        self->stable.erase(selector);
        matched = state != "missing";
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());  // up: never end early
        if (left.count() <= 0) break;
        if (!co_await sleep(std::min(left, self->opts.poll_interval))) co_return R{make_error_code(errc::operation_aborted), {}};
      }
      co_return R{make_error_code(matched ? errc::element_not_actionable : errc::element_not_found), {}};
    }

    // Sends `calls` back to back without waiting for each reply (the browser
    // runs a session's commands in order) and completes when every reply is in:
    // the first failure in call order, or {}.
    boost::asio::awaitable<std::error_code> call_all(std::vector<std::pair<std::string, json>> calls) {
      struct state {
        explicit state(executor_type ex, std::size_t n)
            : timer(ex, boost::asio::steady_timer::time_point::max()), errors(n), left(n) {}
        boost::asio::steady_timer timer;
        std::vector<std::error_code> errors;
        std::size_t left;
      };
      auto st = std::make_shared<state>(conn->get_executor(), calls.size());
      for (std::size_t i = 0; i < calls.size(); ++i) {
        conn->async_call(std::move(calls[i].first), std::move(calls[i].second), session, opts.call_timeout,
                         boost::asio::bind_executor(conn->get_executor(), [st, i](std::error_code ec, json) {
                           st->errors[i] = ec;
                           if (--st->left == 0) st->timer.cancel();
                         }));
      }
      if (st->left > 0) {
        co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        // a named local, never a co_await in the condition (GCC 12 misplaces such a frame)
        const auto cancel_state = co_await boost::asio::this_coro::cancellation_state;
        if (cancelled(cancel_state)) co_return make_error_code(errc::operation_aborted);
      }
      for (const auto& e : st->errors) {
        if (e) co_return e;
      }
      co_return std::error_code{};
    }

    static boost::asio::awaitable<detail::result<std::monostate>> click(std::shared_ptr<impl> self,
                                                                          std::string selector,
                                                                          click_options o) {
      using R = detail::result<std::monostate>;
      auto [ec, box] = co_await wait_for(self, std::move(selector), o.timeout, true);
      if (ec) co_return R{ec, {}};
      const int steps = std::max(1, o.move_steps);
      const double x0 = self->mouse_x, y0 = self->mouse_y;
      auto mouse = [&](const char* type, double x, double y, const char* button, int buttons) {
        json p{{"type", type}, {"x", x}, {"y", y}, {"button", button}, {"buttons", buttons}, {"pointerType", "mouse"}};
        if (std::string_view(type) != "mouseMoved") p["clickCount"] = 1;
        return std::pair<std::string, json>{"Input.dispatchMouseEvent", std::move(p)};
      };
      // The moves and the press go out back to back: one round trip, not one each.
      std::vector<std::pair<std::string, json>> approach;
      for (int i = 1; i <= steps; ++i) {
        approach.push_back(mouse("mouseMoved", x0 + (box.x - x0) * i / steps, y0 + (box.y - y0) * i / steps, "none", 0));
      }
      approach.push_back(mouse("mousePressed", box.x, box.y, "left", 1));
      self->mouse_x = box.x;
      self->mouse_y = box.y;
      const std::error_code pressed = co_await self->call_all(std::move(approach));
      const bool slept = !pressed && co_await sleep(o.press_duration);
      // Release even when cancelled or when the press failed: a button left
      // pressed would confuse the page.
      auto [e, r] = co_await self->call("Input.dispatchMouseEvent",
                                        std::move(mouse("mouseReleased", box.x, box.y, "left", 0).second));
      if (pressed) co_return R{pressed, {}};
      if (!slept) co_return R{make_error_code(errc::operation_aborted), {}};
      co_return R{e, {}};
    }

    static boost::asio::awaitable<detail::result<std::monostate>> set_value(
        std::shared_ptr<impl> self, std::string selector, std::string (*script)(std::string_view, std::string_view),
        std::string value, std::chrono::milliseconds timeout) {
      using R = detail::result<std::monostate>;
      const auto until = clock::now() + timeout;
      const std::string source = script(selector, value);
      bool matched = false;
      for (;;) {
        auto [e, v] = co_await evaluate_isolated(self, source, remaining(until));
        if (e == make_error_code(errc::timed_out)) break;
        if (e) co_return R{e, {}};
        bool retry = false;
        const std::error_code status = detail::script_status(v, &retry);
        if (!retry) co_return R{status, {}};
        matched = matched || status == errc::element_not_actionable;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());  // up: never end early
        if (left.count() <= 0) break;
        if (!co_await sleep(std::min(left, self->opts.poll_interval))) co_return R{make_error_code(errc::operation_aborted), {}};
      }
      co_return R{make_error_code(matched ? errc::element_not_actionable : errc::element_not_found), {}};
    }

    static boost::asio::awaitable<detail::result<mutation_subscription>> on_mutation(
        std::shared_ptr<impl> self, std::string selector, std::function<void(const mutation_record&)> callback) {
      using R = detail::result<mutation_subscription>;
      const std::uint64_t id = self->next_observer++;
      const std::string script = detail::observer_script(id, self->binding, selector);
      self->observers.emplace(id, std::move(callback));
      json add_params{{"source", script}, {"worldName", self->opts.world_name}};
      auto [ec, added] = co_await self->call("Page.addScriptToEvaluateOnNewDocument", std::move(add_params));
      if (ec) {
        self->observers.erase(id);
        co_return R{ec, mutation_subscription{}};
      }
      const std::string identifier = added.value("identifier", std::string());
      auto [e, v] = co_await evaluate_isolated(self, script, self->opts.call_timeout);
      auto remove = [weak = std::weak_ptr<impl>(self), id, identifier] {
        if (auto s = weak.lock()) {
          boost::asio::post(s->conn->get_executor(), [s, id, identifier] {
            s->observers.erase(id);
            s->conn->async_call("Page.removeScriptToEvaluateOnNewDocument", json{{"identifier", identifier}},
                                s->session, boost::asio::detached);
            if (s->isolated_context != 0) {
              s->conn->async_call("Runtime.evaluate",
                                  json{{"expression", detail::stop_observer_script(id)},
                                       {"contextId", s->isolated_context}},
                                  s->session, boost::asio::detached);
            }
          });
        }
      };
      if (e) {
        remove();
        co_return R{e, mutation_subscription{}};
      }
      co_return R{std::error_code{}, mutation_subscription(std::function<void()>(std::move(remove)))};
    }
  };

  std::shared_ptr<impl> impl_;
};

}  // namespace seckill::browser
