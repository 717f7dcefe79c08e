// purchase_engine with an asynchronous Limiter (async_purchase_limiter): the
// limiter is asked with the purchase's SKU and user, its refusal is
// rate_limited, its error (a limiter that could not decide and refuses) is
// the purchase's error, and nothing after it (breaker, ids, store) runs
// unless it admitted.

#include <seckill/purchase/engine.hpp>
#include <seckill/store/memory_store.hpp>

#include <doctest/doctest.h>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace unit_engine_async_limiter {

namespace asio = boost::asio;
using seckill::errc;
using seckill::purchase_state;

// Answers from a script of (error, admitted) pairs, recording what it was asked.
struct scripted_limiter {
  struct asked {
    std::string sku, user;
    double tokens;
  };
  std::deque<std::pair<std::error_code, bool>> answers;
  std::vector<asked> calls;

  template <asio::completion_token_for<void(std::error_code, bool)> CompletionToken>
  auto async_acquire(std::string_view sku, std::string_view user, double tokens,
                     CompletionToken&& token) {
    calls.push_back({std::string(sku), std::string(user), tokens});
    auto answer = answers.empty() ? std::pair{std::error_code{}, true} : answers.front();
    if (!answers.empty()) answers.pop_front();
    return asio::async_initiate<CompletionToken, void(std::error_code, bool)>(
        [answer](auto handler) {
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, asio::append(std::move(handler), answer.first, answer.second));
        },
        token);
  }
};

static_assert(seckill::async_purchase_limiter<scripted_limiter>);
static_assert(!seckill::purchase_limiter<scripted_limiter>);
static_assert(seckill::admission_limiter<scripted_limiter>);
static_assert(seckill::admission_limiter<seckill::unlimited>);
static_assert(!seckill::async_purchase_limiter<seckill::unlimited>);
static_assert(!seckill::admission_limiter<int>);

// Also knows some refusals at once (a pre-filter).
struct prefiltered_limiter : scripted_limiter {
  bool refuse_now = false;
  int asked_locally = 0;
  bool refuses_locally(std::string_view, std::string_view, double) {
    ++asked_locally;
    return refuse_now;
  }
};

static_assert(seckill::detail::refuses_locally<prefiltered_limiter>);
static_assert(!seckill::detail::refuses_locally<scripted_limiter>);

struct counting_ids {
  std::int64_t next_id = 1;
  std::int64_t next(std::error_code&) noexcept { return next_id++; }
};

template <class Limiter = scripted_limiter>
struct fixture {
  asio::io_context io;
  seckill::memory_store<> store{io.get_executor()};
  Limiter limiter;
  seckill::no_breaker breaker;
  counting_ids ids;
  seckill::no_payment payment;
  seckill::memory_orders orders;
  seckill::purchase_engine<seckill::memory_store<>, Limiter, seckill::no_breaker, counting_ids>
      engine{store, limiter, breaker, ids, payment, orders};

  fixture() {
    store.async_set_stock("sku", 10, [](std::error_code) {});
    io.run();
  }

  std::pair<std::error_code, seckill::purchase_result> buy(seckill::purchase_request r) {
    std::optional<std::pair<std::error_code, seckill::purchase_result>> got;
    engine.async_purchase(
        r, [&](std::error_code ec, seckill::purchase_result res) { got.emplace(ec, res); });
    io.restart();
    io.run();
    REQUIRE(got.has_value());
    return *got;
  }
};

TEST_SUITE("unit") {
  TEST_CASE("engine with an async limiter: admitted purchases buy and refusals are rate_limited") {
    fixture<> f;
    f.limiter.answers = {{{}, true}, {{}, false}, {{}, true}};
    auto [ec1, r1] = f.buy({.sku = "sku", .user = "alice"});
    CHECK(!ec1);
    CHECK(r1.final_state == purchase_state::succeeded);
    CHECK(r1.order_id == 1);
    auto [ec2, r2] = f.buy({.sku = "sku", .user = "bob"});
    CHECK(ec2 == errc::rate_limited);
    CHECK(r2.final_state == purchase_state::idle);
    CHECK(r2.order_id == 0);  // no id spent on a refusal
    auto [ec3, r3] = f.buy({.sku = "sku"});
    CHECK(!ec3);
    CHECK(r3.order_id == 2);
    REQUIRE(f.limiter.calls.size() == 3);
    CHECK(f.limiter.calls[0].sku == "sku");
    CHECK(f.limiter.calls[0].user == "alice");
    CHECK(f.limiter.calls[0].tokens == 1.0);
    CHECK(f.limiter.calls[1].user == "bob");
    CHECK(f.limiter.calls[2].user.empty());
    CHECK(f.orders.size() == 2);
  }

  TEST_CASE(
      "engine with an async limiter: a limiter that fails closed fails the purchase with its "
      "error") {
    fixture<> f;
    f.limiter.answers = {{make_error_code(errc::store_unavailable), false},
                         {make_error_code(errc::store_unavailable), true}};
    auto [ec1, r1] = f.buy({.sku = "sku"});
    CHECK(ec1 == errc::store_unavailable);
    CHECK(r1.final_state == purchase_state::idle);
    CHECK(f.orders.size() == 0);
    // an error with an admission (no policy of the library's does that) admits
    auto [ec2, r2] = f.buy({.sku = "sku"});
    CHECK(!ec2);
    CHECK(r2.final_state == purchase_state::succeeded);
  }

  TEST_CASE("engine with an async limiter: a bad request is refused before the limiter is asked") {
    fixture<> f;
    auto [ec, r] = f.buy({.sku = "sku", .quantity = 0});
    CHECK(ec == errc::invalid_argument);
    CHECK(f.limiter.calls.empty());
    (void)r;
  }

  TEST_CASE(
      "engine with an async limiter: a refusal it knows at once is rate_limited without asking "
      "it") {
    fixture<prefiltered_limiter> f;
    f.limiter.refuse_now = true;
    auto [ec1, r1] = f.buy({.sku = "sku", .user = "alice"});
    CHECK(ec1 == errc::rate_limited);
    CHECK(r1.final_state == purchase_state::idle);
    CHECK(f.limiter.asked_locally == 1);
    CHECK(f.limiter.calls.empty());  // no async_acquire
    f.limiter.refuse_now = false;
    auto [ec2, r2] = f.buy({.sku = "sku", .user = "alice"});
    CHECK(!ec2);
    CHECK(f.limiter.asked_locally == 2);
    CHECK(f.limiter.calls.size() == 1);
    (void)r2;
  }
}

}  // namespace unit_engine_async_limiter
