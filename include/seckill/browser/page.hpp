#pragma once
/// @file
/// @brief One browser tab driven over a flat DevTools session: navigate,
///        evaluate, call functions with arguments, wait for actionable
///        elements, watch them in an isolated world, click with trusted mouse
///        input, pick native select options, fill inputs with trusted keys,
///        and take screenshots.
///
/// The values a page takes and gives are in browser/page_types.hpp (included
/// here); the JavaScript it sends is in browser/detail/page_scripts.hpp.

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/detail/page_session.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/page_types.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief A browser tab (a page target) driven over a flat session of a shared
///        cdp::connection.
///
/// Everything page scripts must not see runs in an isolated world named
/// `page_options::world_name` (recreated in every new document): actionability
/// checks, option selection, and the MutationObservers of on_mutation(), which
/// report through a Runtime binding that exists only in that world.
/// async_evaluate() and async_call_function() run in the page's own main
/// world, like a script of the page. Every value seckill passes to a script
/// (a selector, a text) is a call argument of Runtime.callFunctionOn, never
/// part of the script's source.
///
/// A selector may reach into open shadow roots and same-origin iframes:
/// `host >>> inner` looks for `inner` in the shadow root of the element
/// `host` finds, or in its document when it is an iframe (any depth);
/// clicks add the frames' offsets, observers watch every root on the way.
///
/// Every operation completes with `(std::error_code, T)` through any Asio
/// completion token and honours per-operation (terminal) cancellation: it
/// completes with errc::operation_aborted and leaves the page usable.
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
  template <boost::asio::completion_token_for<void(std::error_code, page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  static auto async_open(std::shared_ptr<cdp::connection> conn, page_options opts,
                         CompletionToken&& token = CompletionToken()) {
    const executor_type ex = conn->get_executor();
    return seckill::detail::async_spawn<void(std::error_code, page)>(
        ex, open(std::move(conn), std::move(opts)), token);
  }
  /// async_open with default page_options.
  template <boost::asio::completion_token_for<void(std::error_code, page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  static auto async_open(std::shared_ptr<cdp::connection> conn,
                         CompletionToken&& token = CompletionToken()) {
    return async_open(std::move(conn), page_options{}, std::forward<CompletionToken>(token));
  }

  /// The connection's strand (requires valid()).
  [[nodiscard]] executor_type get_executor() const { return state_->conn->get_executor(); }
  [[nodiscard]] const std::string& session_id() const noexcept { return state_->session; }
  [[nodiscard]] const std::string& target_id() const noexcept { return state_->target; }
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(state_); }

  /// Navigates and waits for the `load` of the new document (the loaderId
  /// Page.navigate returned). A net error (refused, DNS, ...) completes with
  /// errc::navigation_failed and Page.navigate's result ({errorText, ...}).
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_navigate(std::string url, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(), detail::page_session::navigate(state_, std::move(url)), token);
  }

  /// Reloads and waits for the new document's `load`.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reload(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(), detail::page_session::reload(state_), token);
  }

  /// Evaluates `expression` in the page's main world, awaiting a promise,
  /// returning by value: (error_code, value). A throw or a rejection completes
  /// with errc::javascript_exception and the exceptionDetails object; a
  /// protocol-level failure with errc::cdp_error and the error object.
  /// To pass values, prefer async_call_function: no quoting to get wrong.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_evaluate(std::string expression, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(),
        detail::page_session::evaluate(state_, std::move(expression),
                                       detail::page_session::world::main,
                                       state_->opts.call_timeout),
        token);
  }

  /// Like async_evaluate, in seckill's isolated world: the page's DOM, none of
  /// its globals, and nothing the page can observe besides DOM changes made.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_evaluate_isolated(std::string expression,
                               CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(),
        detail::page_session::evaluate(state_, std::move(expression),
                                       detail::page_session::world::isolated,
                                       state_->opts.call_timeout),
        token);
  }

  /// Calls `function`, the source of a JavaScript function (`(a, b) => a + b`,
  /// `async function (sel) { ... }`), in the page's main world with the
  /// elements of `arguments` (a JSON array) as its arguments
  /// (Runtime.callFunctionOn): values reach the function as data, never as
  /// source. Awaits a promise and completes like async_evaluate;
  /// errc::invalid_argument when `arguments` is not an array. A call whose
  /// document goes away while it runs (a navigation, a reload) runs again in
  /// the next document, within call_timeout: write functions safe to repeat.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_call_function(std::string function, nlohmann::json arguments,
                           CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(),
        detail::page_session::call_function_op(state_, detail::page_session::world::main,
                                               std::move(function), std::move(arguments),
                                               state_->opts.call_timeout),
        token);
  }

  /// Like async_call_function, in seckill's isolated world.
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_call_function_isolated(std::string function, nlohmann::json arguments,
                                    CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, nlohmann::json)>(
        get_executor(),
        detail::page_session::call_function_op(state_, detail::page_session::world::isolated,
                                               std::move(function), std::move(arguments),
                                               state_->opts.call_timeout),
        token);
  }

  /// Waits until the first element matching `selector` is attached, visible,
  /// stable for an animation frame, enabled and the target of a hit test at its
  /// centre; keeps waiting across navigations. Stable means the same box at
  /// two animation times a frame apart; an element found in the box where an
  /// earlier check of the same selector sampled it, one to three frames (at
  /// most 50 ms) of animation time before, counts as stable without waiting
  /// for another frame. Completes with (error_code,
  /// element_box); after `timeout`, errc::element_not_found when nothing
  /// matched, errc::element_not_actionable when something did;
  /// errc::javascript_exception for a selector the browser cannot parse.
  template <boost::asio::completion_token_for<void(std::error_code, element_box)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_for(std::string selector, std::chrono::milliseconds timeout,
                      CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, element_box)>(
        get_executor(), detail::page_session::wait_for(state_, std::move(selector), timeout),
        token);
  }

  /// Clicks the element with trusted input (Input.dispatchMouseEvent): waits
  /// for actionability, moves the mouse in a few steps, presses, waits a
  /// human-scale moment, releases. Never clicks an element that is covered
  /// or disabled: errc::element_not_actionable after the timeout instead.
  /// A box that wait_for found stable less than 250 ms before, in the same
  /// document, counts as stable if the element is still exactly there (no
  /// animation frame to wait for); the moves and the press go out back to
  /// back (one round trip); the press lasts press_duration (plus up to
  /// press_jitter), and the moves on the way stray up to path_jitter, drawn
  /// from the page's seeded generator (page_options::input_seed). A press of
  /// no duration sends the release with the press (the whole click is one
  /// round trip after the check). Cancelled after the press, it still
  /// releases the button.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_click(std::string selector, click_options opts,
                   CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        get_executor(), detail::page_session::click(state_, std::move(selector), opts), token);
  }
  /// async_click with default click_options.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_click(std::string selector, CompletionToken&& token = CompletionToken()) {
    return async_click(std::move(selector), click_options{}, std::forward<CompletionToken>(token));
  }

  /// Picks the option of a native <select> whose value (or else label) is
  /// `value` as a person does with the keyboard: the select gets the focus
  /// and trusted arrow keys (Input.dispatchKeyEvent) move the choice there,
  /// so the page's input and change events are trusted (one per key, as a
  /// person's, for the options passed on the way); no script sets the
  /// value or dispatches an event. Waits until the select is attached,
  /// visible and enabled; errc::element_not_found at once for no such
  /// option, errc::element_not_actionable at once for a disabled one, and
  /// when the keys did not reach it. An option already chosen costs one
  /// round trip and no key.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_select_option(std::string selector, std::string value,
                           std::chrono::milliseconds timeout,
                           CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        get_executor(),
        detail::page_session::select_option(state_, std::move(selector), std::move(value), timeout),
        token);
  }

  /// Types `text` into an input with trusted keyboard input: focus, Ctrl+A,
  /// Input.insertText (the page sees trusted beforeinput and input events),
  /// Tab (change). Waits until the input is attached, visible, enabled and
  /// writable; errc::element_not_actionable when the input then holds
  /// another text (the page refused or rewrote it). Three round trips; an
  /// input that already holds `text` costs one round trip and no key.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_fill(std::string selector, std::string text, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        get_executor(),
        detail::page_session::fill(state_, std::move(selector), std::move(text), timeout), token);
  }

  /// Calls `callback(record)` on the strand each time the presence or the text
  /// of the first element matching `selector` changes, and once per new
  /// document (record.initial). The MutationObserver lives in the isolated
  /// world and reports over a binding only that world has; it is installed
  /// again in every new document, so it survives reloads. Completes with
  /// (error_code, mutation_subscription).
  template <boost::asio::completion_token_for<void(std::error_code, mutation_subscription)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_on_mutation(std::string selector, std::function<void(const mutation_record&)> callback,
                         CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, mutation_subscription)>(
        get_executor(),
        detail::page_session::on_mutation(state_, std::move(selector), std::move(callback)), token);
  }

  /// Like async_on_mutation, for every element matching `selector`: calls
  /// `callback(record)` each time the markup of any of them changes (a text,
  /// an attribute, a child), or how many match. record.text is then
  /// "<count>:<hash of the markup>", empty when nothing matches: a value to
  /// compare, not to read. Costs the matches' outerHTML per DOM change.
  template <boost::asio::completion_token_for<void(std::error_code, mutation_subscription)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_on_markup(std::string selector, std::function<void(const mutation_record&)> callback,
                       CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, mutation_subscription)>(
        get_executor(),
        detail::page_session::on_mutation(state_, std::move(selector), std::move(callback), true),
        token);
  }

  /// Like async_on_mutation, for what a person sees: record.present while
  /// an element matching `selector` is visible (displayed, not
  /// visibility:hidden, a box of some size), or a visible element whose own
  /// text contains one of `texts` (case-insensitive for ASCII letters);
  /// record.text then describes it (the element, or the text and where it
  /// stands), empty when nothing shows. Looks again at most every 50 ms
  /// while the DOM changes; costs a walk of the document's text then.
  template <boost::asio::completion_token_for<void(std::error_code, mutation_subscription)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_on_sight(std::string selector, std::vector<std::string> texts,
                      std::function<void(const mutation_record&)> callback,
                      CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, mutation_subscription)>(
        get_executor(),
        detail::page_session::on_mutation(state_, std::move(selector), std::move(callback), false,
                                          nlohmann::json(std::move(texts))),
        token);
  }

  /// Calls `callback(record)` on the strand for every response the page
  /// receives whose URL contains `url_part` (a fetch, a navigation, an
  /// image). The first call enables DevTools' Network domain for the tab.
  /// Completes with (error_code, mutation_subscription): the same handle ends it.
  template <boost::asio::completion_token_for<void(std::error_code, mutation_subscription)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_on_response(std::string url_part, std::function<void(const response_record&)> callback,
                         CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, mutation_subscription)>(
        get_executor(),
        detail::page_session::on_response(state_, std::move(url_part), std::move(callback)), token);
  }

  /// Calls `callback(record)` on the strand with the body of every response
  /// the page receives whose URL `match` accepts, once it has arrived whole
  /// (Network.loadingFinished, then Network.getResponseBody): the page's
  /// requests are neither changed nor held (no interception). A body over
  /// `max_body` bytes, or one that is not text, comes with a `problem`
  /// instead. A matching server-sent event stream (EventSource) gives one
  /// record per message instead (Network.eventSourceMessageReceived: its
  /// data as the body, status 200). The first call enables DevTools'
  /// Network domain for the tab. Completes with (error_code,
  /// mutation_subscription): the handle ends it. Cost: one round trip per
  /// matching response, carrying its body; none per stream message.
  template <boost::asio::completion_token_for<void(std::error_code, mutation_subscription)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_on_response_body(std::function<bool(std::string_view)> match, std::size_t max_body,
                              std::function<void(const response_body_record&)> callback,
                              CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, mutation_subscription)>(
        get_executor(),
        detail::page_session::on_response_body(state_, std::move(match), max_body,
                                               std::move(callback)),
        token);
  }

  /// Captures what the tab shows, its viewport, as a PNG
  /// (Page.captureScreenshot): completes with (error_code, the PNG file's
  /// bytes). errc::protocol_error when the browser's answer is not a PNG.
  /// Cost: one round trip carrying the image in base64 (a few hundred kB
  /// for a full-HD viewport) and the browser's rendering of a frame.
  /// browser/screenshot.hpp writes one to a file.
  template <boost::asio::completion_token_for<void(std::error_code, std::string)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_screenshot(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::string)>(
        get_executor(), detail::page_session::screenshot(state_), token);
  }

  /// Closes the tab: completes with Target.closeTarget's (error_code, result).
  template <boost::asio::completion_token_for<void(std::error_code, nlohmann::json)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_close(CompletionToken&& token = CompletionToken()) {
    nlohmann::json params{{"targetId", state_->target}};
    return state_->conn->async_call("Target.closeTarget", std::move(params), std::string(),
                                    std::forward<CompletionToken>(token));
  }

 private:
  static boost::asio::awaitable<std::pair<std::error_code, page>> open(
      std::shared_ptr<cdp::connection> conn, page_options opts) {
    auto [ec, state] = co_await detail::page_session::open(std::move(conn), std::move(opts));
    page p;
    p.state_ = std::move(state);
    co_return std::pair<std::error_code, page>{ec, std::move(p)};
  }

  std::shared_ptr<detail::page_session> state_;
};

}  // namespace seckill::browser
