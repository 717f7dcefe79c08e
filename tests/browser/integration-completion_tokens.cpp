// Every completion token reaches a page operation and a DevTools session call,
// and per-operation cancellation reaches every operation that waits, in a real
// headless Chromium.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/cdp.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <nlohmann/json.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <future>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

namespace integration_completion_tokens {

using namespace std::chrono_literals;
using browser_support::get;
using json = nlohmann::json;
using seckill::errc;
namespace asio = boost::asio;
namespace sb = seckill::browser;

shop::response serve(const shop::request& r) {
  if (r.target == "/shop") {
    return {200, "text/html; charset=utf-8", R"PG(<!doctype html><body>
      <div class="stock-status">Out of stock</div>
      <select id="sku"><option value="veg-box" data-price="18.5" data-stock="0" disabled>Veg box</option></select>
      <input id="quantity" value="1"><button id="buy">Buy</button><div class="order-result"></div>
      </body>)PG",
            false};
  }
  return {200, "text/html; charset=utf-8", "<!doctype html><body><p>plain</p></body>", false};
}

struct tokens_fixture : browser_support::browser_fixture {
  shop::http_server server{serve};
  tokens_fixture() {
    auto [ec, r] = get(page.async_navigate(server.url("/"), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << " " << r.dump());
  }
  json eval(const std::string& expr) {
    auto [ec, v] = get(page.async_evaluate(expr, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << " " << v.dump());
    return v;
  }
  // A DevTools call on the page's session: Runtime.evaluate of `expr`.
  std::pair<std::string, json> runtime_evaluate(const std::string& expr) const {
    return {"Runtime.evaluate",
            json{{"expression", expr}, {"returnByValue", true}, {"awaitPromise", true}}};
  }
};

// Emits a terminal cancellation on the io thread, where the operation's slot lives.
struct canceller {
  asio::cancellation_signal signal;
  void emit_on(asio::io_context& io) {
    asio::post(io, [this] { signal.emit(asio::cancellation_type::terminal); });
  }
};

// Starts `start(token)` with a slot bound to a use_future token, cancels it
// after `after`, and checks it ends with operation_aborted within a second.
template <class Start>
void check_cancelled(tokens_fixture& f, const char* what, Start start,
                     std::chrono::milliseconds after = 300ms) {
  CAPTURE(what);
  canceller c;
  auto fut = start(asio::bind_cancellation_slot(c.signal.slot(), asio::use_future));
  std::this_thread::sleep_for(after);
  REQUIRE_MESSAGE(fut.wait_for(0s) == std::future_status::timeout,
                  "it ended before it was cancelled");
  const auto t0 = std::chrono::steady_clock::now();
  c.emit_on(f.io.io);
  const auto outcome = get(fut, 5s);
  const auto took = std::chrono::steady_clock::now() - t0;
  std::error_code ec;
  if constexpr (std::is_same_v<std::decay_t<decltype(outcome)>, std::error_code>) {
    ec = outcome;
  } else {
    ec = std::get<0>(outcome);
  }
  CHECK_MESSAGE(ec == errc::operation_aborted, ec.message());
  CHECK(took < 1000ms);
  // The page is still usable.
  CHECK(f.eval("6 * 7") == 42);
}

}  // namespace integration_completion_tokens

using namespace integration_completion_tokens;

TEST_SUITE("integration") {
  TEST_CASE(
      "a page operation completes through a callback - use_awaitable - deferred and use_future") {
    tokens_fixture f;
    // A callback: it runs on the page's strand.
    std::promise<std::pair<std::error_code, json>> called;
    f.page.async_call_function("(a, b) => a + b", json::array({40, 2}),
                               [&](std::error_code ec, json v) {
                                 CHECK(f.page.get_executor().running_in_this_thread());
                                 called.set_value({ec, std::move(v)});
                               });
    auto [ec1, v1] = get(called.get_future());
    CHECK_FALSE(ec1);
    CHECK(v1 == 42);

    // use_awaitable, inside a coroutine of the caller's own.
    auto coro = [&]() -> asio::awaitable<json> {
      const std::string expr = "'awaited'";
      auto [ec, v] = co_await f.page.async_evaluate(expr, asio::use_awaitable);
      CHECK_FALSE(ec);
      co_return v;
    };
    CHECK(get(asio::co_spawn(f.io.io, coro(), asio::use_future)) == "awaited");

    // deferred: nothing happens until the operation is launched.
    f.eval("window.runs = 0");
    auto op = f.page.async_evaluate("++window.runs", asio::deferred);
    std::this_thread::sleep_for(100ms);
    CHECK(f.eval("window.runs") == 0);
    auto [ec3, v3] = get(std::move(op)(asio::use_future));
    CHECK_FALSE(ec3);
    CHECK(v3 == 1);

    // use_future: a std::future of (std::error_code, json).
    std::future<std::tuple<std::error_code, json>> fut =
        f.page.async_evaluate("'future'", asio::use_future);
    auto [ec4, v4] = get(fut);
    CHECK_FALSE(ec4);
    CHECK(v4 == "future");

    // A void(std::error_code) operation through a callback and a future.
    std::promise<std::error_code> clicked;
    f.page.async_select_option("#none", "x", 100ms,
                               [&](std::error_code ec) { clicked.set_value(ec); });
    CHECK(get(clicked.get_future()) == seckill::browser::errc::element_not_found);
    std::future<std::error_code> filled = f.page.async_fill("#none", "x", 100ms, asio::use_future);
    CHECK(get(filled) == seckill::browser::errc::element_not_found);
  }

  TEST_CASE(
      "a DevTools session call completes through a callback - use_awaitable - deferred and "
      "use_future") {
    tokens_fixture f;
    auto conn = f.browser.connection();
    const std::string session = f.page.session_id();

    std::promise<std::pair<std::error_code, json>> called;
    auto [m1, p1] = f.runtime_evaluate("1 + 1");
    conn->async_call(m1, p1, session, [&](std::error_code ec, json v) {
      CHECK(conn->get_executor().running_in_this_thread());
      called.set_value({ec, std::move(v)});
    });
    auto [ec1, v1] = get(called.get_future());
    CHECK_FALSE(ec1);
    CHECK(v1["result"]["value"] == 2);

    auto coro = [&]() -> asio::awaitable<json> {
      auto [method, params] = f.runtime_evaluate("2 + 2");
      auto [ec, v] = co_await conn->async_call(method, params, session, asio::use_awaitable);
      CHECK_FALSE(ec);
      co_return v;
    };
    CHECK(get(asio::co_spawn(f.io.io, coro(), asio::use_future))["result"]["value"] == 4);

    f.eval("window.calls = 0");
    auto [m3, p3] = f.runtime_evaluate("++window.calls");
    auto op = conn->async_call(m3, p3, session, asio::deferred);
    std::this_thread::sleep_for(100ms);
    CHECK(f.eval("window.calls") == 0);
    auto [ec3, v3] = get(std::move(op)(asio::use_future));
    CHECK_FALSE(ec3);
    CHECK(v3["result"]["value"] == 1);

    auto [m4, p4] = f.runtime_evaluate("'future'");
    auto [ec4, v4] = get(conn->async_call(m4, p4, session, 5s, asio::use_future));
    CHECK_FALSE(ec4);
    CHECK(v4["result"]["value"] == "future");
  }

  TEST_CASE(
      "per-operation cancellation ends every waiting page operation promptly and leaves the page "
      "usable") {
    tokens_fixture f;
    check_cancelled(f, "wait_for",
                    [&](auto token) { return f.page.async_wait_for("#never", 30s, token); });
    check_cancelled(f, "click", [&](auto token) {
      sb::click_options o;
      o.timeout = 30s;
      return f.page.async_click("#never", o, token);
    });
    check_cancelled(f, "select_option", [&](auto token) {
      return f.page.async_select_option("#never", "a", 30s, token);
    });
    check_cancelled(f, "fill",
                    [&](auto token) { return f.page.async_fill("#never", "a", 30s, token); });
    check_cancelled(f, "evaluate", [&](auto token) {
      return f.page.async_evaluate("new Promise(() => {})", token);
    });
    check_cancelled(f, "evaluate_isolated", [&](auto token) {
      return f.page.async_evaluate_isolated("new Promise(() => {})", token);
    });
    check_cancelled(f, "call_function", [&](auto token) {
      return f.page.async_call_function("() => new Promise(() => {})", json::array(), token);
    });
    check_cancelled(f, "call_function_isolated", [&](auto token) {
      return f.page.async_call_function_isolated("() => new Promise(() => {})", json::array(),
                                                 token);
    });
    // The same operation still works after its cancellations.
    f.eval("document.body.insertAdjacentHTML('beforeend', '<button id=\"late\">late</button>')");
    auto [ec, box] = get(f.page.async_wait_for("#late", 5s, asio::use_future));
    CHECK_FALSE(ec);
    CHECK(box.width > 0);
  }

  TEST_CASE("per-operation cancellation reaches a DevTools call and a grabber's run") {
    tokens_fixture f;
    auto conn = f.browser.connection();
    check_cancelled(f, "cdp call", [&](auto token) {
      auto [method, params] = f.runtime_evaluate("new Promise(() => {})");
      return conn->async_call(method, params, f.page.session_id(), 30s, token);
    });

    auto [en, nav] = get(f.page.async_navigate(f.server.url("/shop"), asio::use_future));
    REQUIRE_MESSAGE(!en, en.message());
    seckill::token_bucket<> pace(10, 3);
    sb::grabber grab(f.page, sb::priority_strategy(sb::parse_strategy("want = sku:veg-box\n")),
                     pace);
    check_cancelled(
        f, "grabber run", [&](auto token) { return grab.async_run(30s, token); }, 500ms);
  }
}
