#pragma once
/// @file
/// @brief What a page is behind its handle: the state of one attached tab
///        (its session, its documents' execution contexts, its observers) and
///        the coroutines its operations run. browser/page.hpp is the public
///        face; everything here runs on the connection's strand.

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/detail/page_replies.hpp>
#include <seckill/browser/detail/page_scripts.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/page_types.hpp>
#include <seckill/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::browser::detail {

/// @brief One attached tab: its state and the bodies of page's operations.
///
/// Thread-safety: every member is used on the connection's strand only (the
/// operations are spawned there, the events arrive there). Cost: a few
/// strings and maps; one timer per parked coroutine.
struct page_session : std::enable_shared_from_this<page_session> {
  using clock = std::chrono::steady_clock;
  using awaitable_json = boost::asio::awaitable<result<json>>;
  using awaitable_code = boost::asio::awaitable<std::error_code>;

  /// Where a script runs: the page's own world, or seckill's isolated one.
  enum class world { main, isolated };

  struct observer {
    std::string selector;
    bool markup = false;  // the markup of every match, not the first match's text
    std::function<void(const mutation_record&)> callback;
    json texts = json();  // an array: the first visible match, or visible text (on_sight)
  };

  // The last box wait_for found actionable, per selector (click reuses it).
  struct stable_box {
    element_box box;
    clock::time_point at;
    std::int64_t context = 0;  // the isolated world (so: the document) it was seen in
  };
  static constexpr std::chrono::milliseconds stable_reuse{250};
  // The least time a read-back after trusted input gets, whatever is left of the timeout.
  static constexpr std::chrono::milliseconds readback_floor{1000};

  std::shared_ptr<cdp::connection> conn;
  page_options opts;
  std::string session, target, main_frame, binding;
  std::int64_t main_context = 0, isolated_context = 0;
  std::deque<std::string> loaded;  // loaderIds whose `load` fired (most recent last)
  std::list<boost::asio::steady_timer*> waiters;
  std::map<std::uint64_t, observer> observers;
  struct response_watch {
    std::string url_part;  // a response whose URL contains this is reported
    std::function<void(const response_record&)> callback;
  };
  std::map<std::uint64_t, response_watch> responses;
  struct body_watch {
    std::function<bool(std::string_view)> match;  // the URLs whose bodies are read
    std::size_t max_body = 0;
    std::function<void(const response_body_record&)> callback;
  };
  std::map<std::uint64_t, body_watch> body_watches;
  std::map<std::string, response_body_record> body_pending;  // by requestId, until loaded
  std::map<std::string, std::string> event_streams;  // requestId -> URL: matching SSE streams
  std::uint64_t response_sequence = 0;
  bool network_enabled = false;
  std::uint64_t next_observer = 1;
  double mouse_x = 0, mouse_y = 0;
  std::mt19937_64 jitter;  // seeded by opts.input_seed at open
  bool closed = false;
  std::map<std::string, stable_box> stable;
  std::vector<cdp::subscription> subs;

  // ---- waiting -------------------------------------------------------------

  static bool cancelled(const boost::asio::cancellation_state& s) {
    return s.cancelled() != boost::asio::cancellation_type::none;
  }

  static boost::asio::awaitable<bool> cancel_requested() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cancelled(cs);
  }

  static std::chrono::milliseconds remaining(clock::time_point until) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - clock::now());  // up: never end early
    return std::max(left, std::chrono::milliseconds(1));
  }

  // Wakes every coroutine parked in wait_event().
  void notify() {
    for (auto* t : waiters) t->cancel();
  }

  // Parks until notify() or `until`; false when the caller's op was cancelled.
  static boost::asio::awaitable<bool> wait_event(std::shared_ptr<page_session> self,
                                                 clock::time_point until) {
    const auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(ex, until);
    auto it = self->waiters.insert(self->waiters.end(), &timer);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    self->waiters.erase(it);
    const bool stop = co_await cancel_requested();
    co_return !stop;
  }

  // Sleeps `d`; false when the caller's op was cancelled.
  static boost::asio::awaitable<bool> sleep(std::chrono::milliseconds d) {
    const auto ex = co_await boost::asio::this_coro::executor;
    boost::asio::steady_timer timer(ex, d);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    const bool stop = co_await cancel_requested();
    co_return !stop;
  }

  // ---- calls -----------------------------------------------------------------

  awaitable_json call(std::string method, json params, std::chrono::milliseconds timeout = {}) {
    const std::chrono::milliseconds t = timeout.count() > 0 ? timeout : opts.call_timeout;
    auto [ec, v] = co_await conn->async_call(std::move(method), std::move(params), session, t,
                                             boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return result<json>{ec, std::move(v)};
  }

  // Sends `calls` back to back without waiting for each reply (the browser
  // runs a session's commands in order) and completes when every reply is in:
  // the first failure in call order, or {}.
  awaitable_code call_all(std::vector<std::pair<std::string, json>> calls) {
    struct state {
      explicit state(cdp::connection::executor_type ex, std::size_t n)
          : timer(ex, boost::asio::steady_timer::time_point::max()), errors(n), left(n) {}
      boost::asio::steady_timer timer;
      std::vector<std::error_code> errors;
      std::size_t left;
    };
    auto st = std::make_shared<state>(conn->get_executor(), calls.size());
    for (std::size_t i = 0; i < calls.size(); ++i) {
      conn->async_call(std::move(calls[i].first), std::move(calls[i].second), session,
                       opts.call_timeout,
                       boost::asio::bind_executor(conn->get_executor(),
                                                  [st, i](std::error_code ec, const json&) {
                                                    st->errors[i] = ec;
                                                    if (--st->left == 0) st->timer.cancel();
                                                  }));
    }
    if (st->left > 0) {
      co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      const bool stop = co_await cancel_requested();
      if (stop) co_return make_error_code(seckill::errc::operation_aborted);
    }
    for (const auto& e : st->errors) {
      if (e) co_return e;
    }
    co_return std::error_code{};
  }

  // Fire and forget (the reply is of no use): cleanup, and observers installed
  // in a new document.
  void send(std::string method, json params) {
    conn->async_call(std::move(method), std::move(params), session, opts.call_timeout,
                     boost::asio::detached);
  }

  static json call_arguments(const json& values) {
    json args = json::array();
    if (values.is_array()) {
      for (const auto& v : values) args.push_back(json{{"value", v}});
    }
    return args;
  }

  static json function_call(std::string_view function, const json& values, std::int64_t context) {
    json params{{"functionDeclaration", std::string(function)},
                {"arguments", call_arguments(values)},
                {"returnByValue", true},
                {"awaitPromise", true}};
    if (context != 0) params["executionContextId"] = context;
    return params;
  }

  std::int64_t& context_of(world w) noexcept {
    return w == world::main ? main_context : isolated_context;
  }

  // A DevTools error that says the document the call ran in is gone: "Cannot
  // find context with specified id", "Execution context was destroyed." (the
  // context went first), "Inspected target navigated or closed" (a pending
  // promise ended by a navigation or reload) and "Promise was collected".
  static bool context_lost(const json& error) {
    const std::string message = string_member(error, "message");
    return message.find("context") != std::string::npos ||
           message.find("Context") != std::string::npos ||
           message.find("navigated or closed") != std::string::npos ||
           message.find("Promise was collected") != std::string::npos;
  }

  // Sends `method` with `params` to world `w` of the current document (its
  // context id under `context_key`), waiting for the world to exist (during a
  // navigation) and retrying when it went away under the call.
  static awaitable_json run_in_world(std::shared_ptr<page_session> self, world w,
                                     std::string method, json params, std::string context_key,
                                     std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    for (;;) {
      const bool stop = co_await cancel_requested();
      if (stop) co_return result<json>{make_error_code(seckill::errc::operation_aborted), json()};
      if (self->closed) co_return result<json>{make_error_code(errc::browser_closed), json()};
      if (clock::now() >= until)
        co_return result<json>{make_error_code(seckill::errc::timed_out), json()};
      const std::int64_t ctx = self->context_of(w);
      if (ctx == 0) {
        const auto wake = std::min(until, clock::now() + std::chrono::milliseconds(250));
        const bool woke = co_await wait_event(self, wake);
        if (!woke)
          co_return result<json>{make_error_code(seckill::errc::operation_aborted), json()};
        if (w == world::isolated && self->isolated_context == 0 && !self->closed &&
            clock::now() < until) {
          // No world announced itself: make one in the current document.
          const std::string create = "Page.createIsolatedWorld";
          json world_params{{"frameId", self->main_frame}, {"worldName", self->opts.world_name}};
          auto [ec, made] = co_await self->call(create, std::move(world_params), remaining(until));
          const std::int64_t id = int_member(made, "executionContextId", 0);
          if (!ec && self->isolated_context == 0 && id > 0) self->isolated_context = id;
        }
        continue;
      }
      json sent = params;
      sent[context_key] = ctx;
      auto [ec, reply] = co_await self->call(method, std::move(sent), remaining(until));
      if (ec == errc::cdp_error && (self->context_of(w) != ctx || context_lost(reply))) {
        if (self->context_of(w) == ctx) self->context_of(w) = 0;
        continue;
      }
      if (ec) co_return result<json>{ec, std::move(reply)};
      co_return evaluation_result(std::move(reply), method);
    }
  }

  // Calls `function` (a JavaScript function's source) in world `w` with
  // `values` (a JSON array) as its arguments, awaiting a promise, by value.
  static awaitable_json call_function(std::shared_ptr<page_session> self, world w,
                                      std::string_view function, json values,
                                      std::chrono::milliseconds timeout) {
    json params = function_call(function, values, 0);
    const std::string method = "Runtime.callFunctionOn";
    const std::string key = "executionContextId";
    auto r = co_await run_in_world(std::move(self), w, method, std::move(params), key, timeout);
    co_return r;
  }

  // Evaluates `expression` in the page's own world (the browser picks the
  // main frame's) or in the isolated one.
  static awaitable_json evaluate(std::shared_ptr<page_session> self, std::string expression,
                                 world w, std::chrono::milliseconds timeout) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    json params{
        {"expression", std::move(expression)}, {"awaitPromise", true}, {"returnByValue", true}};
    const std::string method = "Runtime.evaluate";
    if (w == world::main) {
      auto [ec, reply] = co_await self->call(method, std::move(params), timeout);
      if (ec) co_return result<json>{ec, std::move(reply)};
      co_return evaluation_result(std::move(reply), method);
    }
    const std::string key = "contextId";
    auto r = co_await run_in_world(std::move(self), w, method, std::move(params), key, timeout);
    co_return r;
  }

  static awaitable_json call_function_op(std::shared_ptr<page_session> self, world w,
                                         std::string function, json values,
                                         std::chrono::milliseconds timeout) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (!values.is_array()) {
      co_return result<json>{
          make_error_code(seckill::errc::invalid_argument),
          json{{"message",
                std::string("arguments must be a JSON array, got a ") + values.type_name()}}};
    }
    auto r = co_await call_function(std::move(self), w, function, std::move(values), timeout);
    co_return r;
  }

  // ---- opening -----------------------------------------------------------------

  static boost::asio::awaitable<result<std::shared_ptr<page_session>>> open(
      std::shared_ptr<cdp::connection> conn, page_options opts) {
    using R = result<std::shared_ptr<page_session>>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto self = std::make_shared<page_session>();
    self->conn = conn;
    self->opts = std::move(opts);
    self->jitter.seed(self->opts.input_seed);
    const std::string create = "Target.createTarget";
    json create_params{{"url", "about:blank"}, {"newWindow", self->opts.new_window}};
    const std::string browser;  // the browser's own session
    auto [ec1, created] = co_await conn->async_call(
        create, std::move(create_params), browser, self->opts.call_timeout,
        boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec1) co_return R{ec1, nullptr};
    self->target = string_member(created, "targetId");
    if (self->target.empty()) co_return R{make_error_code(seckill::errc::protocol_error), nullptr};
    const std::string attach = "Target.attachToTarget";
    json attach_params{{"targetId", self->target}, {"flatten", true}};
    auto [ec2, attached] = co_await conn->async_call(
        attach, std::move(attach_params), browser, self->opts.call_timeout,
        boost::asio::as_tuple(boost::asio::use_awaitable));
    self->session = string_member(attached, "sessionId");
    std::error_code failed = ec2 ? ec2
                             : self->session.empty()
                                 ? make_error_code(seckill::errc::protocol_error)
                                 : std::error_code{};
    if (!failed) failed = co_await self->set_up();
    if (failed) {
      json close_params{{"targetId", self->target}};
      conn->async_call("Target.closeTarget", std::move(close_params), browser,
                       boost::asio::detached);
      co_return R{failed, nullptr};
    }
    co_return R{{}, std::move(self)};
  }

  // Subscribes to the session's events and enables the domains it needs.
  awaitable_code set_up() {
    binding = opts.world_name + "_report";
    // The main frame first: the contexts Runtime.enable announces are matched against it.
    const std::string get_tree = "Page.getFrameTree";
    json no_params = json::object();
    auto [ec, tree] = co_await call(get_tree, std::move(no_params));
    if (ec) co_return ec;
    const auto frame_tree = tree.is_object() ? tree.find("frameTree") : tree.end();
    if (frame_tree != tree.end() && frame_tree->is_object()) {
      if (const auto frame = frame_tree->find("frame"); frame != frame_tree->end())
        main_frame = string_member(*frame, "id");
    }
    if (main_frame.empty()) co_return make_error_code(seckill::errc::protocol_error);
    subscribe_events();
    std::vector<std::pair<std::string, json>> setup{
        {"Page.enable", json::object()},
        {"Runtime.enable", json::object()},
        {"Page.setLifecycleEventsEnabled", json{{"enabled", true}}},
        {"Runtime.addBinding", json{{"name", binding}, {"executionContextName", opts.world_name}}},
        // The isolated world in every new document (observers are installed there).
        {"Page.addScriptToEvaluateOnNewDocument",
         json{{"source", "void 0;"}, {"worldName", opts.world_name}}}};
    for (auto& step : setup) {
      auto [e, r] = co_await call(std::move(step.first), std::move(step.second));
      if (e) co_return e;
    }
    const std::string create_world = "Page.createIsolatedWorld";
    json world_params{{"frameId", main_frame}, {"worldName", opts.world_name}};
    auto [e, made] = co_await call(create_world, std::move(world_params));
    if (e) co_return e;
    const std::int64_t id = int_member(made, "executionContextId", 0);
    if (isolated_context == 0 && id > 0) isolated_context = id;
    co_return std::error_code{};
  }

  void subscribe_events() {
    std::weak_ptr<page_session> weak = shared_from_this();
    auto on = [&](const char* method, auto fn) {
      subs.push_back(conn->subscribe(session, method, [weak, fn](const json& p) {
        if (auto self = weak.lock()) fn(*self, p);
      }));
    };
    on("Page.lifecycleEvent", [](page_session& s, const json& p) {
      if (string_member(p, "name") != "load") return;
      s.loaded.push_back(string_member(p, "loaderId"));
      if (s.loaded.size() > 32) s.loaded.pop_front();
      s.notify();
    });
    on("Runtime.executionContextCreated", [](page_session& s, const json& p) {
      if (const std::int64_t id = created_context(p, s.opts.world_name, s.main_frame); id != 0) {
        s.isolated_context = id;
        s.install_observers();
        s.notify();
      } else if (const std::int64_t main = created_context(p, "", s.main_frame); main != 0) {
        s.main_context = main;
        s.notify();
      }
    });
    on("Runtime.executionContextDestroyed", [](page_session& s, const json& p) {
      const std::int64_t id = int_member(p, "executionContextId", -1);
      if (id == s.isolated_context) s.isolated_context = 0;
      if (id == s.main_context) s.main_context = 0;
    });
    on("Runtime.executionContextsCleared", [](page_session& s, const json&) {
      s.isolated_context = 0;
      s.main_context = 0;
    });
    on("Network.responseReceived", [](page_session& s, const json& p) {
      if (s.responses.empty() || !p.is_object()) return;
      const auto r = p.find("response");
      if (r == p.end() || !r->is_object()) return;
      response_record rec{string_member(*r, "url"), static_cast<int>(int_member(*r, "status", 0))};
      if (const auto h = r->find("headers"); h != r->end() && h->is_object()) {
        for (const auto& [name, value] : h->items()) {
          if (value.is_string() && name.size() == 11 &&
              std::equal(name.begin(), name.end(), "retry-after", [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == b;
              }))
            rec.retry_after = value.get<std::string>();
        }
      }
      std::vector<std::function<void(const response_record&)>> calls;  // they may end themselves
      for (const auto& [id, w] : s.responses) {
        if (rec.url.find(w.url_part) != std::string::npos) calls.push_back(w.callback);
      }
      for (const auto& fn : calls) fn(rec);
    });
    on("Network.responseReceived", [](page_session& s, const json& p) {
      if (s.body_watches.empty() || !p.is_object()) return;
      const auto r = p.find("response");
      if (r == p.end() || !r->is_object()) return;
      response_body_record rec;
      rec.url = string_member(*r, "url");
      if (std::none_of(s.body_watches.begin(), s.body_watches.end(),
                       [&](const auto& w) { return w.second.match(rec.url); }))
        return;
      rec.status = static_cast<int>(int_member(*r, "status", 0));
      rec.sequence = ++s.response_sequence;
      rec.from_cache = bool_member(*r, "fromDiskCache") || bool_member(*r, "fromServiceWorker") ||
                       bool_member(*r, "fromPrefetchCache");
      if (const auto h = r->find("headers"); h != r->end() && h->is_object()) {
        for (const auto& [name, value] : h->items()) {
          if (!value.is_string()) continue;
          std::string lower = name;
          for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (lower == "date") rec.date = value.get<std::string>();
          if (lower == "etag") rec.etag = value.get<std::string>();
          if (lower == "age")
            rec.from_cache = rec.from_cache || std::atoll(value.get<std::string>().c_str()) > 0;
        }
      }
      if (string_member(p, "type") == "EventSource") {  // its messages are read as they come
        s.event_streams[string_member(p, "requestId")] = rec.url;
        if (s.event_streams.size() > 64) s.event_streams.erase(s.event_streams.begin());
        return;
      }
      s.body_pending[string_member(p, "requestId")] = std::move(rec);
      if (s.body_pending.size() > 256) s.body_pending.erase(s.body_pending.begin());
    });
    on("Network.loadingFailed", [](page_session& s, const json& p) {
      s.body_pending.erase(string_member(p, "requestId"));
      s.event_streams.erase(string_member(p, "requestId"));
    });
    on("Network.eventSourceMessageReceived", [](page_session& s, const json& p) {
      const auto it = s.event_streams.find(string_member(p, "requestId"));
      if (it == s.event_streams.end()) return;
      response_body_record rec;
      rec.url = it->second;
      rec.status = 200;
      rec.sequence = ++s.response_sequence;
      rec.body = string_member(p, "data");
      std::size_t limit = 0;
      for (const auto& [id, w] : s.body_watches)
        if (w.match(rec.url)) limit = std::max(limit, w.max_body);
      if (rec.body.size() > limit) {
        rec.problem = "too large: " + std::to_string(rec.body.size()) + " bytes (limit " +
                      std::to_string(limit) + ")";
        rec.body.clear();
      }
      s.deliver_body(rec);
    });
    on("Network.loadingFinished", [](page_session& s, const json& p) {
      const auto it = s.body_pending.find(string_member(p, "requestId"));
      if (it == s.body_pending.end()) return;
      auto rec = std::make_shared<response_body_record>(std::move(it->second));
      s.body_pending.erase(it);
      std::size_t limit = 0;
      for (const auto& [id, w] : s.body_watches)
        if (w.match(rec->url)) limit = std::max(limit, w.max_body);
      const auto encoded = int_member(p, "encodedDataLength", 0);
      if (encoded > static_cast<std::int64_t>(limit)) {  // not even fetched
        rec->problem = "too large: " + std::to_string(encoded) + " bytes (limit " +
                       std::to_string(limit) + ")";
        s.deliver_body(*rec);
        return;
      }
      std::weak_ptr<page_session> weak = s.shared_from_this();
      s.conn->async_call(
          "Network.getResponseBody", json{{"requestId", string_member(p, "requestId")}}, s.session,
          s.opts.call_timeout,
          boost::asio::bind_executor(
              s.conn->get_executor(), [weak, rec, limit](std::error_code ec, const json& v) {
                auto self = weak.lock();
                if (!self) return;
                if (ec) {
                  rec->problem = "unavailable: " + ec.message();
                } else if (bool_member(v, "base64Encoded")) {
                  rec->problem = "binary (not text)";
                } else {
                  rec->body = string_member(v, "body");
                  if (rec->body.size() > limit) {
                    rec->problem = "too large: " + std::to_string(rec->body.size()) +
                                   " bytes (limit " + std::to_string(limit) + ")";
                    rec->body.clear();
                  }
                }
                self->deliver_body(*rec);
              }));
    });
    on("Runtime.bindingCalled", [](page_session& s, const json& p) {
      auto report = binding_report(p, s.binding);
      if (!report) return;
      auto it = s.observers.find(report->first);
      if (it == s.observers.end()) return;
      auto fn = it->second.callback;  // the callback may end its own subscription
      fn(report->second);
    });
    conn->on_close([weak](std::error_code) {
      if (auto self = weak.lock()) {
        self->closed = true;
        self->notify();
      }
    });
  }

  // Calls every body watch whose URLs `rec` matches.
  void deliver_body(const response_body_record& rec) {
    std::vector<std::function<void(const response_body_record&)>> calls;  // may end themselves
    for (const auto& [id, w] : body_watches)
      if (w.match(rec.url)) calls.push_back(w.callback);
    for (const auto& fn : calls) fn(rec);
  }

  // ---- navigation --------------------------------------------------------------

  awaitable_code wait_loaded(std::string loader) {
    const auto until = clock::now() + opts.navigation_timeout;
    auto self = shared_from_this();
    for (;;) {
      if (std::find(loaded.begin(), loaded.end(), loader) != loaded.end())
        co_return std::error_code{};
      if (closed) co_return make_error_code(errc::browser_closed);
      if (clock::now() >= until) co_return make_error_code(seckill::errc::timed_out);
      const bool woke = co_await wait_event(self, until);
      if (!woke) co_return make_error_code(seckill::errc::operation_aborted);
    }
  }

  static awaitable_json navigate(std::shared_ptr<page_session> self, std::string url) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const std::string method = "Page.navigate";
    json params{{"url", std::move(url)}};
    auto [ec, r] = co_await self->call(method, std::move(params));
    if (ec) co_return result<json>{ec, std::move(r)};
    if (!string_member(r, "errorText").empty())
      co_return result<json>{make_error_code(errc::navigation_failed), std::move(r)};
    const std::string loader = string_member(r, "loaderId");
    if (loader.empty()) co_return result<json>{{}, std::move(r)};  // same-document
    const std::error_code e = co_await self->wait_loaded(loader);
    co_return result<json>{e, std::move(r)};
  }

  static awaitable_json reload(std::shared_ptr<page_session> self) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    // Page.reload names no loaderId: wait for the first `load` of a loader not seen before.
    const std::deque<std::string> seen = self->loaded;
    const std::string method = "Page.reload";
    json params = json::object();
    auto [ec, r] = co_await self->call(method, std::move(params));
    if (ec) co_return result<json>{ec, std::move(r)};
    const auto until = clock::now() + self->opts.navigation_timeout;
    for (;;) {
      for (const auto& l : self->loaded) {
        if (std::find(seen.begin(), seen.end(), l) == seen.end())
          co_return result<json>{{}, json{{"loaderId", l}}};
      }
      if (self->closed) co_return result<json>{make_error_code(errc::browser_closed), json()};
      if (clock::now() >= until)
        co_return result<json>{make_error_code(seckill::errc::timed_out), json()};
      const bool woke = co_await wait_event(self, until);
      if (!woke) co_return result<json>{make_error_code(seckill::errc::operation_aborted), json()};
    }
  }

  // Captures the viewport as a PNG (Page.captureScreenshot), decoded.
  static boost::asio::awaitable<result<std::string>> screenshot(
      std::shared_ptr<page_session> self) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const std::string method = "Page.captureScreenshot";
    json params{{"format", "png"}};
    auto [ec, reply] = co_await self->call(method, std::move(params));
    if (ec) co_return result<std::string>{ec, std::string()};
    co_return screenshot_png(reply);
  }

  // ---- elements ----------------------------------------------------------------

  // Waits until `selector` is actionable. With `reuse`, a box found stable by
  // an earlier check of the same selector in this document, less than
  // stable_reuse ago, counts as stable when the element is still exactly
  // there: no animation frame to wait for.
  static boost::asio::awaitable<result<element_box>> wait_for(std::shared_ptr<page_session> self,
                                                              std::string selector,
                                                              std::chrono::milliseconds timeout,
                                                              bool reuse = false) {
    using R = result<element_box>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
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
      json args = json::array(
          {selector, seen ? json::array({seen->center_x, seen->center_y, seen->width, seen->height})
                          : json()});
      seen.reset();  // a second look waits for a frame
      auto [ec, v] =
          co_await call_function(self, world::isolated, scripts::deep<&scripts::actionability>(),
                                 std::move(args), remaining(until));
      if (ec == seckill::errc::timed_out) break;
      if (ec) co_return R{ec, {}};  // closed, cancelled, a bad selector
      actionability seen_now;
      if (const std::error_code bad = read_actionability(v, seen_now)) co_return R{bad, {}};
      if (seen_now.state == "ok") {
        self->stable[selector] = stable_box{seen_now.box, clock::now(), self->isolated_context};
        co_return R{{}, seen_now.box};
      }
      self->stable.erase(selector);
      matched = seen_now.state != "missing";
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          until - clock::now());  // up: never end early
      if (left.count() <= 0) break;
      const bool slept = co_await sleep(std::min(left, self->opts.poll_interval));
      if (!slept) co_return R{make_error_code(seckill::errc::operation_aborted), {}};
    }
    co_return R{make_error_code(matched ? errc::element_not_actionable : errc::element_not_found),
                {}};
  }

  static std::pair<std::string, json> mouse_event(std::string_view type, double x, double y,
                                                  std::string_view button, int buttons) {
    json p{{"type", type},          {"x", x}, {"y", y}, {"button", button}, {"buttons", buttons},
           {"pointerType", "mouse"}};
    if (type != "mouseMoved") p["clickCount"] = 1;
    return {"Input.dispatchMouseEvent", std::move(p)};
  }

  static awaitable_code click(std::shared_ptr<page_session> self, std::string selector,
                              click_options o) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [ec, box] = co_await wait_for(self, std::move(selector), o.timeout, true);
    if (ec) co_return ec;
    const int steps = std::max(1, o.move_steps);
    const double x0 = self->mouse_x, y0 = self->mouse_y;
    // The moves and the press go out back to back: one round trip, not one each.
    std::vector<std::pair<std::string, json>> approach;
    for (int i = 1; i <= steps; ++i) {
      double x = x0 + (box.center_x - x0) * i / steps, y = y0 + (box.center_y - y0) * i / steps;
      if (i < steps && o.path_jitter > 0) {  // the last move is on target
        std::uniform_real_distribution<double> stray(-o.path_jitter, o.path_jitter);
        x += stray(self->jitter);
        y += stray(self->jitter);
      }
      approach.push_back(mouse_event("mouseMoved", x, y, "none", 0));
    }
    std::chrono::milliseconds press = o.press_duration;
    if (o.press_jitter.count() > 0) {
      std::uniform_int_distribution<std::int64_t> longer(0, o.press_jitter.count());
      press += std::chrono::milliseconds(longer(self->jitter));
    }
    approach.push_back(mouse_event("mousePressed", box.center_x, box.center_y, "left", 1));
    self->mouse_x = box.center_x;
    self->mouse_y = box.center_y;
    if (press.count() <= 0) {  // no pause to keep: the release goes out with the press
      approach.push_back(mouse_event("mouseReleased", box.center_x, box.center_y, "left", 0));
      co_return co_await self->call_all(std::move(approach));
    }
    const std::error_code pressed = co_await self->call_all(std::move(approach));
    bool slept = false;
    if (!pressed) slept = co_await sleep(press);
    // Release even when cancelled or when the press failed: a button left
    // pressed would confuse the page.
    auto release = mouse_event("mouseReleased", box.center_x, box.center_y, "left", 0);
    auto [e, r] = co_await self->call(std::move(release.first), std::move(release.second));
    if (pressed) co_return pressed;
    if (!slept) co_return make_error_code(seckill::errc::operation_aborted);
    co_return e;
  }

  // Runs a preparing script (`script` with `args`) until the element is ready
  // or `until` passes: its answer once it says ok ('ok', or {status: 'ok', ...}).
  static awaitable_json prepare(std::shared_ptr<page_session> self, std::string_view script,
                                json args, clock::time_point until) {
    bool matched = false;
    for (;;) {
      auto [e, v] = co_await call_function(self, world::isolated, script, args, remaining(until));
      if (e == seckill::errc::timed_out) break;
      if (e) co_return result<json>{e, json()};
      const json status = v.is_object() && v.contains("status") ? v["status"] : v;
      bool retry = false;
      const std::error_code st = script_status(status, &retry);
      if (!retry) co_return result<json>{st, std::move(v)};
      matched = matched || st == errc::element_not_actionable;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          until - clock::now());  // up: never end early
      if (left.count() <= 0) break;
      const bool slept = co_await sleep(std::min(left, self->opts.poll_interval));
      if (!slept) co_return result<json>{make_error_code(seckill::errc::operation_aborted), json()};
    }
    co_return result<json>{
        make_error_code(matched ? errc::element_not_actionable : errc::element_not_found), json()};
  }

  // A key going down or up (Input.dispatchKeyEvent): trusted, like a person's.
  static std::pair<std::string, json> key_event(bool down, std::string_view key,
                                                std::string_view code, int key_code,
                                                int modifiers = 0, std::string_view command = {}) {
    json p{{"type", down ? "rawKeyDown" : "keyUp"},
           {"key", key},
           {"code", code},
           {"windowsVirtualKeyCode", key_code},
           {"nativeVirtualKeyCode", key_code},
           {"modifiers", modifiers}};
    if (down && !command.empty()) p["commands"] = json::array({command});
    return {"Input.dispatchKeyEvent", std::move(p)};
  }

  // Picks a native select's option with arrow keys (trusted input): the
  // select is focused, the keys go out back to back, and the choice is read
  // back; a few rounds when the page moved it meanwhile.
  static awaitable_code select_option(std::shared_ptr<page_session> self, std::string selector,
                                      std::string value, std::chrono::milliseconds timeout) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const auto until = clock::now() + timeout;
    for (int round = 0;; ++round) {
      // A read-back gets a moment of its own even when the wait used the timeout.
      const auto by = round == 0 ? until : std::max(until, clock::now() + readback_floor);
      json args = json::array({selector, value});  // (no braced list across a co_await: GCC)
      auto [e, v] =
          co_await prepare(self, scripts::deep<&scripts::select_prepare>(), std::move(args), by);
      if (e) co_return e;
      const std::int64_t keys = int_member(v, "keys", -1);
      if (keys == 0) co_return std::error_code{};
      if (keys < 0) co_return make_error_code(seckill::errc::protocol_error);
      if (round == 3) break;
      const bool down = string_member(v, "key") == "ArrowDown";
      const std::string_view key =
          down ? std::string_view("ArrowDown") : std::string_view("ArrowUp");
      const int code = down ? 40 : 38;
      std::vector<std::pair<std::string, json>> presses;
      for (std::int64_t i = 0; i < keys; ++i) {
        presses.push_back(key_event(true, key, key, code));
        presses.push_back(key_event(false, key, key, code));
      }
      const std::error_code pressed = co_await self->call_all(std::move(presses));
      if (pressed) co_return pressed;
    }
    co_return make_error_code(errc::element_not_actionable);  // the keys did not get there
  }

  // Types `text` into an input with trusted input: the input is focused, its
  // text selected (Ctrl+A) and replaced (Input.insertText; Backspace for an
  // empty text), then Tab commits it (change fires); the value is read back.
  // An input that already holds `text` gets no key.
  static awaitable_code fill(std::shared_ptr<page_session> self, std::string selector,
                             std::string text, std::chrono::milliseconds timeout) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const auto until = clock::now() + timeout;
    json args = json::array({selector, text});
    auto [e, v] =
        co_await prepare(self, scripts::deep<&scripts::fill_prepare>(), std::move(args), until);
    if (e) co_return e;
    if (bool_member(v, "same")) co_return std::error_code{};
    constexpr int ctrl = 2;
    std::vector<std::pair<std::string, json>> typing{
        key_event(true, "a", "KeyA", 65, ctrl, "selectAll"),
        key_event(false, "a", "KeyA", 65, ctrl)};
    if (text.empty()) {
      typing.push_back(key_event(true, "Backspace", "Backspace", 8));
      typing.push_back(key_event(false, "Backspace", "Backspace", 8));
    } else {
      typing.emplace_back("Input.insertText", json{{"text", text}});
    }
    typing.push_back(key_event(true, "Tab", "Tab", 9));
    typing.push_back(key_event(false, "Tab", "Tab", 9));
    const std::error_code typed = co_await self->call_all(std::move(typing));
    if (typed) co_return typed;
    json read_args = json::array({selector});
    auto [er, now] =
        co_await call_function(self, world::isolated, scripts::deep<&scripts::read_value>(),
                               std::move(read_args), std::max(remaining(until), readback_floor));
    if (er) co_return er;
    if (!now.is_string() || now.get<std::string>() != text)
      co_return make_error_code(errc::element_not_actionable);  // the page kept another text
    co_return std::error_code{};
  }

  // ---- observers -----------------------------------------------------------------

  json observer_arguments(std::uint64_t id, const std::string& selector, bool markup,
                          const json& texts = json()) const {
    return json::array({id, binding, selector, texts.is_array() ? texts : json(markup)});
  }

  // Installs every observer in a document's new isolated world.
  void install_observers() {
    for (const auto& [id, o] : observers) {
      send("Runtime.callFunctionOn",
           function_call(scripts::deep<&scripts::install_observer>(),
                         observer_arguments(id, o.selector, o.markup, o.texts), isolated_context));
    }
  }

  // Enables the Network domain once per session (the response watchers need
  // it); later calls return at once.
  static boost::asio::awaitable<std::error_code> enable_network(
      std::shared_ptr<page_session> self) {
    if (self->network_enabled) co_return std::error_code{};
    const std::string method = "Network.enable";
    json params = json::object();
    auto [e, r] = co_await self->call(method, std::move(params));
    if (!e) self->network_enabled = true;
    co_return e;
  }

  // Reports every response whose URL contains `url_part` (the Network domain
  // is enabled on first use).
  static boost::asio::awaitable<result<mutation_subscription>> on_response(
      std::shared_ptr<page_session> self, std::string url_part,
      std::function<void(const response_record&)> callback) {
    using R = result<mutation_subscription>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (auto e = co_await enable_network(self)) co_return R{e, mutation_subscription{}};
    const std::uint64_t id = self->next_observer++;
    self->responses.emplace(id, response_watch{std::move(url_part), std::move(callback)});
    auto remove = [weak = std::weak_ptr<page_session>(self), id] {
      if (auto s = weak.lock()) {
        boost::asio::post(s->conn->get_executor(), [s, id] { s->responses.erase(id); });
      }
    };
    co_return R{std::error_code{}, mutation_subscription(std::function<void()>(std::move(remove)))};
  }

  // Reads the body of every response whose URL `match` accepts, up to
  // `max_body` bytes (the Network domain is enabled on first use).
  static boost::asio::awaitable<result<mutation_subscription>> on_response_body(
      std::shared_ptr<page_session> self, std::function<bool(std::string_view)> match,
      std::size_t max_body, std::function<void(const response_body_record&)> callback) {
    using R = result<mutation_subscription>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    if (auto e = co_await enable_network(self)) co_return R{e, mutation_subscription{}};
    const std::uint64_t id = self->next_observer++;
    self->body_watches.emplace(id, body_watch{std::move(match), max_body, std::move(callback)});
    auto remove = [weak = std::weak_ptr<page_session>(self), id] {
      if (auto s = weak.lock()) {
        boost::asio::post(s->conn->get_executor(), [s, id] { s->body_watches.erase(id); });
      }
    };
    co_return R{std::error_code{}, mutation_subscription(std::function<void()>(std::move(remove)))};
  }

  static boost::asio::awaitable<result<mutation_subscription>> on_mutation(
      std::shared_ptr<page_session> self, std::string selector,
      std::function<void(const mutation_record&)> callback, bool markup = false,
      json texts = json()) {
    using R = result<mutation_subscription>;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    const std::uint64_t id = self->next_observer++;
    json args = self->observer_arguments(id, selector, markup, texts);
    // Registered first: a document that starts meanwhile installs it too (installing is
    // idempotent).
    self->observers.emplace(
        id, observer{std::move(selector), markup, std::move(callback), std::move(texts)});
    auto [e, v] =
        co_await call_function(self, world::isolated, scripts::deep<&scripts::install_observer>(),
                               std::move(args), self->opts.call_timeout);
    auto remove = [weak = std::weak_ptr<page_session>(self), id] {
      if (auto s = weak.lock()) {
        boost::asio::post(s->conn->get_executor(), [s, id] {
          s->observers.erase(id);
          if (s->isolated_context != 0) {
            json ids = json::array({id});
            s->send("Runtime.callFunctionOn",
                    function_call(scripts::remove_observer, ids, s->isolated_context));
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

}  // namespace seckill::browser::detail
