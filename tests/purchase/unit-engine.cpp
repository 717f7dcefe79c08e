// purchase_engine with manual_clock, scripted payment, store and sink policies.

#include <seckill/clock.hpp>
#include <seckill/id/snowflake.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/purchase/metrics_hooks.hpp>
#include <seckill/store/memory_store.hpp>

#include <doctest/doctest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <list>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace unit_engine {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using seckill::errc;
using seckill::purchase_state;

const std::error_code no_error{};

// Completes with `ec` through the handler's executor (default: ex).
template <class Handler>
void complete_later(const asio::any_io_executor& ex, Handler handler, std::error_code ec) {
  asio::post(ex, asio::append(std::move(handler), ec));
}

struct test_limiter {
  bool admit = true;
  int calls = 0;
  bool try_acquire(double) noexcept {
    ++calls;
    return admit;
  }
};

struct recording_breaker {
  bool open = false;
  int acquired = 0;
  int successes = 0;
  int failures = 0;
  std::vector<std::chrono::nanoseconds> latencies;
  bool try_acquire() noexcept {
    if (open) return false;
    ++acquired;
    return true;
  }
  void on_success(std::chrono::nanoseconds d) {
    ++successes;
    latencies.push_back(d);
  }
  void on_failure(std::chrono::nanoseconds d) {
    ++failures;
    latencies.push_back(d);
  }
};

// A Gate the test opens and closes (one acquire load, as the engine's contract asks).
struct switch_gate {
  const std::atomic<bool>* open;
  bool admits() const noexcept { return open->load(std::memory_order_acquire); }
};
static_assert(seckill::purchase_gate<switch_gate>);
static_assert(seckill::purchase_gate<seckill::open_gate>);

struct counter_ids {
  std::int64_t last = 1000;
  std::error_code fail_with{};
  std::int64_t next(std::error_code& ec) noexcept {
    ec = fail_with;
    return ec ? -1 : ++last;
  }
};

// Pays after advancing the manual clock by `takes`; succeeds, fails, or hangs
// until cancelled.
struct scripted_payment {
  enum class mode { succeed, fail, hang };
  asio::io_context* io;
  seckill::manual_clock clock;
  mode how = mode::succeed;
  std::chrono::milliseconds takes{0};
  int calls = 0;
  int cancelled = 0;
  std::int64_t last_order = 0;
  std::string last_traceparent{};
  std::list<asio::steady_timer> hanging{};

  template <class Token>
  auto async_pay(const seckill::payment_request& r, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, seckill::payment_request req) {
          ++calls;
          last_order = req.order_id;
          last_traceparent = std::string(req.traceparent);
          clock.advance(takes);
          if (how == mode::succeed)
            return complete_later(io->get_executor(), std::move(handler), {});
          if (how == mode::fail)
            return complete_later(io->get_executor(), std::move(handler), errc::payment_failed);
          auto& timer = hanging.emplace_back(*io, std::chrono::hours(1));
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto ex = asio::get_associated_executor(handler, io->get_executor());
          timer.async_wait(asio::bind_cancellation_slot(
              slot, asio::bind_executor(ex, [this, h = std::move(handler)](
                                                boost::system::error_code ec) mutable {
                if (ec == asio::error::operation_aborted) ++cancelled;
                std::move(h)(ec ? std::error_code(errc::operation_aborted) : std::error_code{});
              })));
        },
        token, r);
  }
};

// A payment that also refunds (and whose refund fails, to show the hook gets its answer).
struct refunding_payment : scripted_payment {
  int refunds = 0;
  std::int64_t refunded_order = 0;
  template <class Token>
  auto async_refund(const seckill::payment_request& r, Token&& token) {
    ++refunds;
    refunded_order = r.order_id;
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          complete_later(io->get_executor(), std::move(handler), errc::payment_failed);
        },
        token);
  }
};

// A memory_store with faults to inject.
struct scripted_store {
  using inner_type = seckill::memory_store<seckill::manual_clock>;
  using executor_type = inner_type::executor_type;
  inner_type inner;
  seckill::manual_clock clock;
  std::error_code reserve_error{};
  std::error_code commit_error{};
  std::error_code rollback_error{};
  std::chrono::milliseconds advance_before_commit{0};
  int failures_left = -1;  // -1: fail for ever; n: fail n more calls
  int reserves = 0;
  int commits = 0;
  int rollbacks = 0;

  scripted_store(asio::io_context& io, seckill::manual_clock c)
      : inner(io.get_executor(), {}, c), clock(c) {}
  executor_type get_executor() const { return inner.get_executor(); }

  // Completes with `ec` when set, else runs the inner store's operation.
  template <class T, class Token, class Inner>
  auto maybe_fail(std::error_code ec, Token&& token, Inner inner_start) {
    return asio::async_initiate<Token, void(std::error_code, T)>(
        [this, ec, inner_start](auto handler) mutable {
          if (ec && failures_left != 0) {
            if (failures_left > 0) --failures_left;
            asio::post(get_executor(), asio::append(std::move(handler), ec, T{}));
          } else {
            inner_start(std::move(handler));
          }
        },
        token);
  }
  template <class Token>
  auto async_set_stock(std::string_view sku, std::int64_t q, Token&& t) {
    return inner.async_set_stock(sku, q, std::forward<Token>(t));
  }
  template <class Token>
  auto async_stock(std::string_view sku, Token&& t) {
    return inner.async_stock(sku, std::forward<Token>(t));
  }
  template <class Token>
  auto async_reserve(std::string_view sku, std::int64_t q, std::int64_t id,
                     std::chrono::milliseconds hold, Token&& t) {
    return maybe_fail<seckill::reserve_result>(
        reserve_error, std::forward<Token>(t),
        [=, this](auto h) { inner.async_reserve(sku, q, id, hold, std::move(h)); });
  }
  template <class Token>
  auto async_reserve(std::string_view sku, const seckill::reserve_request& r, Token&& t) {
    ++reserves;
    return maybe_fail<seckill::reserve_result>(
        reserve_error, std::forward<Token>(t),
        [=, this](auto h) { inner.async_reserve(sku, r, std::move(h)); });
  }
  template <class Token>
  auto async_set_policy(std::string_view sku, seckill::sku_policy p, Token&& t) {
    return inner.async_set_policy(sku, p, std::forward<Token>(t));
  }
  template <class Token>
  auto async_get_policy(std::string_view sku, Token&& t) {
    return inner.async_get_policy(sku, std::forward<Token>(t));
  }
  template <class Token>
  auto async_get_order(std::string_view sku, std::int64_t id, Token&& t) {
    return inner.async_get_order(sku, id, std::forward<Token>(t));
  }
  template <class Token>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit, Token&& t) {
    return inner.async_list_orders(sku, after, limit, std::forward<Token>(t));
  }
  template <class Token>
  auto async_commit(std::string_view sku, std::int64_t id, Token&& t) {
    clock.advance(advance_before_commit);
    ++commits;
    return maybe_fail<seckill::settle_result>(
        commit_error, std::forward<Token>(t),
        [=, this](auto h) { inner.async_commit(sku, id, std::move(h)); });
  }
  template <class Token>
  auto async_rollback(std::string_view sku, std::int64_t id, Token&& t) {
    ++rollbacks;
    return maybe_fail<seckill::settle_result>(
        rollback_error, std::forward<Token>(t),
        [=, this](auto h) { inner.async_rollback(sku, id, std::move(h)); });
  }
  template <class Token>
  auto async_reap_expired(std::string_view sku, std::size_t limit, Token&& t) {
    return inner.async_reap_expired(sku, limit, std::forward<Token>(t));
  }
};
static_assert(seckill::stock_store<scripted_store>);

struct failing_orders {
  std::error_code ec = errc::persist_failed;
  template <class Token>
  auto async_persist(const seckill::order_record&, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, asio::append(std::move(handler), ec));
        },
        token);
  }
};

struct recording_hooks {
  struct span {
    int number = 0;
  };
  std::vector<std::string>* log;
  int* started;
  void on_rejected(const seckill::purchase_request& r, std::error_code ec,
                   const seckill::purchase_result&) {
    log->push_back("rejected " + std::string(r.sku) + ": " + ec.message());
  }
  void on_start(seckill::purchase_context<span>& ctx) {
    ctx.span.number = ++*started;
    log->push_back("start #" + std::to_string(ctx.span.number) + " order " +
                   std::to_string(ctx.order_id) + " trace " + std::string(ctx.request.traceparent));
  }
  void on_transition(seckill::purchase_context<span>& ctx, purchase_state from,
                     seckill::purchase_event e, purchase_state to) {
    log->push_back("#" + std::to_string(ctx.span.number) + " " + std::string(to_string(from)) +
                   " -" + std::string(to_string(e)) + "-> " + std::string(to_string(to)));
  }
  void on_store_error(seckill::purchase_context<span>& ctx, std::string_view op,
                      std::error_code ec) {
    log->push_back("#" + std::to_string(ctx.span.number) + " store " + std::string(op) + ": " +
                   ec.message());
  }
  void on_compensation(seckill::purchase_context<span>& ctx, std::error_code why,
                       std::optional<std::error_code> refund) {
    log->push_back("#" + std::to_string(ctx.span.number) + " compensate: " + why.message() +
                   (refund ? "; refund: " + (*refund ? refund->message() : std::string("ok"))
                           : std::string()));
  }
  void on_complete(seckill::purchase_context<span>& ctx, std::error_code ec,
                   const seckill::purchase_result& r) {
    log->push_back("#" + std::to_string(ctx.span.number) + " complete " +
                   std::string(to_string(r.final_state)) +
                   (ec ? ": " + ec.message() : std::string()));
  }
};

template <class Orders = seckill::memory_orders, class Limiter = test_limiter>
struct fixture {
  asio::io_context io;
  seckill::manual_clock clock;
  scripted_store store{io, clock};
  Limiter limiter;
  recording_breaker breaker;
  counter_ids ids;
  scripted_payment payment{&io, clock};
  Orders orders;
  std::vector<std::string> log;
  int started = 0;
  seckill::purchase_engine<scripted_store, Limiter, recording_breaker, counter_ids,
                           scripted_payment, Orders, recording_hooks, seckill::manual_clock>
      engine;

  explicit fixture(seckill::purchase_options options = {}, Limiter l = Limiter{})
      : limiter(std::move(l)),
        engine(store, limiter, breaker, ids, payment, orders, options,
               recording_hooks{&log, &started}, clock) {
    std::optional<std::error_code> done;
    store.async_set_stock("sku", 5, [&](std::error_code ec) { done = ec; });
    io.run();
    io.restart();
    REQUIRE(done == no_error);
  }

  // Runs one purchase to completion.
  std::pair<std::error_code, seckill::purchase_result> buy(seckill::purchase_request r = {
                                                               .sku = "sku"}) {
    std::optional<std::pair<std::error_code, seckill::purchase_result>> out;
    engine.async_purchase(
        r, [&](std::error_code ec, seckill::purchase_result res) { out.emplace(ec, res); });
    io.restart();
    io.run();
    REQUIRE(out.has_value());
    return *out;
  }

  // Runs one purchase to completion while time runs: the manual clock moves
  // `step` per millisecond of real time, so retry pauses pass.
  std::pair<std::error_code, seckill::purchase_result> buy_while_time_runs(
      std::chrono::milliseconds step) {
    std::optional<std::pair<std::error_code, seckill::purchase_result>> out;
    engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result res) {
      out.emplace(ec, res);
    });
    for (int i = 0; !out && i < 100'000; ++i) {
      io.restart();
      io.run_for(1ms);
      clock.advance(step);
    }
    REQUIRE(out.has_value());
    return *out;
  }

  seckill::stock_level level(std::string_view sku = "sku") {
    std::optional<seckill::stock_level> out;
    store.async_stock(sku, [&](std::error_code ec, seckill::stock_level l) {
      REQUIRE(ec == no_error);
      out = l;
    });
    io.restart();
    io.run();
    REQUIRE(out.has_value());
    return *out;
  }
};

void check_level(const seckill::stock_level& l, std::int64_t remaining, std::int64_t reserved,
                 std::int64_t committed) {
  CHECK(l.remaining == remaining);
  CHECK(l.reserved == reserved);
  CHECK(l.committed == committed);
}

}  // namespace unit_engine

using namespace unit_engine;

TEST_SUITE("unit") {
  TEST_CASE("engine: a purchase walks reserve then payment then commit then persist") {
    fixture<> fx;
    fx.payment.takes = 30ms;
    auto [ec, r] =
        fx.buy({.sku = "sku",
                .quantity = 2,
                .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
    CHECK(ec == no_error);
    CHECK(r.final_state == purchase_state::succeeded);
    CHECK(r.order_id == 1001);
    CHECK(r.timings.payment == 30ms);
    CHECK(r.timings.total == 30ms);
    CHECK(r.timings.reserve == 0ns);
    check_level(fx.level(), 3, 0, 2);
    REQUIRE(fx.orders.size() == 1u);
    CHECK(fx.orders.orders()[0].order_id == 1001);
    CHECK(fx.orders.orders()[0].sku == "sku");
    CHECK(fx.orders.orders()[0].quantity == 2);
    CHECK(fx.payment.last_order == 1001);
    CHECK(fx.payment.last_traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    CHECK(fx.breaker.successes == 1);
    CHECK(fx.breaker.failures == 0);
    CHECK(fx.log ==
          std::vector<std::string>{
              "start #1 order 1001 trace 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
              "#1 idle -reserve_ok-> prepared", "#1 prepared -payment_ok-> committed",
              "#1 committed -persist_ok-> succeeded", "#1 complete succeeded"});
  }

  TEST_CASE("engine: sold out and unknown sku fail without paying") {
    fixture<> fx;
    auto [ec, r] = fx.buy({.sku = "sku", .quantity = 6});
    CHECK(ec == errc::sold_out);
    CHECK(r.final_state == purchase_state::failed);
    CHECK(r.order_id == 1001);
    auto [ec2, r2] = fx.buy({.sku = "nope"});
    CHECK(ec2 == errc::unknown_sku);
    CHECK(r2.final_state == purchase_state::failed);
    CHECK(fx.payment.calls == 0);
    CHECK(fx.breaker.successes == 2);  // the store answered: not a failure
    check_level(fx.level(), 5, 0, 0);
    CHECK(fx.log.back() == "#2 complete failed: unknown sku");
  }

  TEST_CASE("engine: a retry of a request after success answers its order and pays once") {
    fixture<> fx;
    const seckill::purchase_request req{.sku = "sku", .user = "alice", .request_id = "r-1"};
    auto [ec, r] = fx.buy(req);
    REQUIRE(ec == no_error);
    CHECK(r.final_state == purchase_state::succeeded);
    CHECK(r.order_id == 1001);
    REQUIRE(fx.orders.size() == 1u);
    CHECK(fx.orders.orders()[0].user == "alice");
    CHECK(fx.orders.orders()[0].request_id == "r-1");
    auto [ec2, r2] = fx.buy(req);  // the buyer did not hear the answer and retries
    CHECK(ec2 == no_error);
    CHECK(r2.final_state == purchase_state::succeeded);
    CHECK(r2.order_id == 1001);
    CHECK(fx.ids.last == 1002);  // the retry drew an id of its own, and used none of it
    CHECK(fx.payment.calls == 1);
    CHECK(fx.store.commits == 1);
    CHECK(fx.orders.size() == 1u);
    check_level(fx.level(), 4, 0, 1);
    CHECK(fx.log.back() == "#2 complete succeeded");
    CHECK(fx.log[fx.log.size() - 2] == "start #2 order 1002 trace ");  // no transition ran
  }

  TEST_CASE("engine: a retry while the first attempt is held answers in progress") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::hang;
    const seckill::purchase_request req{.sku = "sku", .user = "alice", .request_id = "r-1"};
    std::optional<std::pair<std::error_code, seckill::purchase_result>> first, second;
    fx.engine.async_purchase(
        req, [&](std::error_code ec, seckill::purchase_result r) { first.emplace(ec, r); });
    fx.io.restart();
    fx.io.run_for(20ms);
    REQUIRE(fx.payment.calls == 1);  // the first attempt is paying, its units held
    REQUIRE_FALSE(first.has_value());
    fx.engine.async_purchase(
        req, [&](std::error_code ec, seckill::purchase_result r) { second.emplace(ec, r); });
    for (int i = 0; i < 200 && !second; ++i) fx.io.run_for(1ms);
    REQUIRE(second.has_value());
    CHECK(second->first == errc::purchase_in_progress);
    CHECK(second->first == seckill::condition::unavailable);
    CHECK(second->second.final_state == purchase_state::idle);
    CHECK(second->second.order_id == 1001);
    CHECK(fx.payment.calls == 1);
    CHECK(fx.store.rollbacks == 0);  // nothing of the first attempt touched
    CHECK_FALSE(first.has_value());
    // The first attempt times out and gives its units back; a retry now hears that.
    fx.clock.advance(1s);
    fx.io.run();
    REQUIRE(first.has_value());
    CHECK(first->first == errc::timed_out);
    check_level(fx.level(), 5, 0, 0);
    auto [ec3, r3] = fx.buy(req);
    CHECK(ec3 == errc::order_rolled_back);
    CHECK(r3.final_state == purchase_state::failed);
    CHECK(r3.order_id == 1001);
    CHECK(fx.payment.calls == 1);
    check_level(fx.level(), 5, 0, 0);
    // A new request id is a new purchase.
    fx.payment.how = scripted_payment::mode::succeed;
    auto [ec4, r4] = fx.buy({.sku = "sku", .user = "alice", .request_id = "r-2"});
    CHECK(ec4 == no_error);
    CHECK(r4.order_id == 1004);
    check_level(fx.level(), 4, 0, 1);
  }

  TEST_CASE("engine: the per-user limit refuses a purchase without paying") {
    fixture<> fx;  // the SKU's default policy: one unit per user
    auto [ec, r] = fx.buy({.sku = "sku", .user = "alice"});
    REQUIRE(ec == no_error);
    auto [ec2, r2] = fx.buy({.sku = "sku", .user = "alice"});
    CHECK(ec2 == errc::purchase_limited);
    CHECK(ec2 == seckill::condition::rejected);
    CHECK(r2.final_state == purchase_state::failed);
    CHECK(r2.order_id == 1002);
    auto [ec3, r3] = fx.buy({.sku = "sku", .quantity = 2, .user = "bob"});
    CHECK(ec3 == errc::purchase_limited);
    CHECK(fx.payment.calls == 1);
    CHECK(fx.breaker.failures == 0);  // the store answered
    check_level(fx.level(), 4, 0, 1);
    CHECK(fx.log.back() == "#3 complete failed: the per-user limit for this SKU is reached");
    // A limited attempt bound nothing: the same request id may buy once there is room.
    std::optional<std::error_code> set;
    fx.store.async_set_policy("sku", seckill::sku_policy{.per_user_limit = 3},
                              [&](std::error_code e) { set = e; });
    fx.io.restart();
    fx.io.run();
    REQUIRE(set == no_error);
    auto [ec4, r4] = fx.buy({.sku = "sku", .quantity = 2, .user = "bob"});
    CHECK(ec4 == no_error);
    check_level(fx.level(), 2, 0, 3);
  }

  TEST_CASE("engine: the sale window refuses early and late purchases without paying") {
    fixture<> fx;  // the store judges the window by the fixture's manual clock
    const seckill::sale_time now{
        std::chrono::duration_cast<std::chrono::milliseconds>(fx.clock.now().time_since_epoch())};
    std::optional<std::error_code> set;
    fx.store.async_set_policy(
        "sku",
        seckill::sku_policy{.per_user_limit = 1, .sale_start = now + 1s, .sale_end = now + 2s},
        [&](std::error_code e) { set = e; });
    fx.io.restart();
    fx.io.run();
    REQUIRE(set == no_error);
    const seckill::purchase_request alice{.sku = "sku", .user = "alice", .request_id = "r-1"};
    auto [early, r1] = fx.buy(alice);
    CHECK(early == errc::sale_not_started);
    CHECK(early == seckill::condition::unavailable);  // retrying once it opens may work
    CHECK(r1.final_state == purchase_state::failed);
    CHECK_FALSE(r1.replayed);
    CHECK(seckill::obs::classify(early, r1.final_state) ==
          seckill::obs::purchase_outcome::not_started);
    CHECK(fx.payment.calls == 0);
    check_level(fx.level(), 5, 0, 0);  // nothing taken
    CHECK(fx.log.back() == "#1 complete failed: the sale of this SKU has not started");
    // The early click bound nothing: the same request buys once the sale opens.
    fx.clock.advance(1s);
    auto [inside, r2] = fx.buy(alice);
    CHECK(inside == no_error);
    CHECK_FALSE(r2.replayed);
    CHECK(r2.final_state == purchase_state::succeeded);
    check_level(fx.level(), 4, 0, 1);
    fx.clock.advance(1s);  // at the end: closed
    auto [late, r3] = fx.buy({.sku = "sku", .user = "bob"});
    CHECK(late == errc::sale_ended);
    CHECK(late == seckill::condition::refused);
    CHECK(r3.final_state == purchase_state::failed);
    CHECK(seckill::obs::classify(late, r3.final_state) == seckill::obs::purchase_outcome::ended);
    CHECK(seckill::obs::to_string(seckill::obs::purchase_outcome::ended) == "ended");
    // A retry of the request bought inside the window still hears its sale.
    auto [replay, r4] = fx.buy(alice);
    CHECK(replay == no_error);
    CHECK(r4.replayed);
    CHECK(r4.order_id == r2.order_id);
    CHECK(fx.payment.calls == 1);
    check_level(fx.level(), 4, 0, 1);
  }

  TEST_CASE("engine: anonymous purchases are not limited and bad buyers are refused") {
    fixture<> fx;
    auto [ec, r] = fx.buy({.sku = "sku", .quantity = 2});
    CHECK(ec == no_error);
    auto [ec2, r2] = fx.buy({.sku = "sku", .quantity = 2});
    CHECK(ec2 == no_error);
    CHECK(r2.order_id == 1002);
    REQUIRE(fx.orders.size() == 2u);
    CHECK(fx.orders.orders()[1].user.empty());
    CHECK(fx.orders.orders()[1].request_id.empty());
    const std::string too_long(seckill::max_key_length + 1, 'a');
    for (const seckill::purchase_request& bad :
         {seckill::purchase_request{.sku = "sku", .user = "al ice"},
          seckill::purchase_request{.sku = "sku", .user = "alice\n"},
          seckill::purchase_request{.sku = "sku", .user = too_long},
          seckill::purchase_request{.sku = "sku", .request_id = "r-1"},
          seckill::purchase_request{.sku = "sku", .user = "alice", .request_id = "r/1"},
          seckill::purchase_request{.sku = "sku", .user = "alice", .request_id = too_long}}) {
      CAPTURE(bad.user);
      CAPTURE(bad.request_id);
      auto [bec, br] = fx.buy(bad);
      CHECK(bec == errc::invalid_argument);
      CHECK(br.final_state == purchase_state::idle);
      CHECK(br.order_id == 0);
    }
    CHECK(fx.limiter.calls == 2);  // refused before admission
    CHECK(fx.store.reserves == 2);
    check_level(fx.level(), 1, 0, 4);
  }

  TEST_CASE("engine: a failed payment rolls the reservation back") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::fail;
    auto [ec, r] = fx.buy({.sku = "sku", .quantity = 3});
    CHECK(ec == errc::payment_failed);
    CHECK(r.final_state == purchase_state::rolled_back);
    CHECK(fx.store.rollbacks == 1);
    check_level(fx.level(), 5, 0, 0);
    CHECK(fx.orders.size() == 0u);
  }

  TEST_CASE("engine: the deadline cancels the payment and rolls back") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::hang;
    fx.payment.takes = 801ms;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::timed_out);
    CHECK(r.final_state == purchase_state::timed_out);
    CHECK(fx.payment.cancelled == 1);
    CHECK(r.timings.total == 801ms);
    check_level(fx.level(), 5, 0, 0);
    CHECK(fx.orders.size() == 0u);
    CHECK(fx.log[fx.log.size() - 2] == "#1 prepared -deadline-> timed_out");
  }

  TEST_CASE("engine: the deadline does not fire early and a request may bring its own") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::hang;
    fx.payment.takes = 790ms;  // inside the 800 ms default
    std::optional<std::pair<std::error_code, seckill::purchase_result>> out;
    fx.engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result r) {
      out.emplace(ec, r);
    });
    fx.io.restart();
    fx.io.run_for(30ms);  // the deadline timer polls the manual clock every millisecond
    CHECK_FALSE(out.has_value());
    fx.clock.advance(10ms);
    fx.io.run();
    REQUIRE(out.has_value());
    CHECK(out->first == errc::timed_out);
    CHECK(out->second.timings.total == 800ms);

    fx.payment.takes = 60ms;
    auto [ec, r] = fx.buy({.sku = "sku", .deadline = 50ms});
    CHECK(ec == errc::timed_out);
    CHECK(r.final_state == purchase_state::timed_out);
    CHECK(r.timings.total == 60ms);
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: the caller's cancellation aborts the purchase and gives the units back") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::hang;
    asio::cancellation_signal signal;
    std::optional<std::pair<std::error_code, seckill::purchase_result>> out;
    fx.engine.async_purchase(
        {.sku = "sku"}, asio::bind_cancellation_slot(
                            signal.slot(), [&](std::error_code ec, seckill::purchase_result r) {
                              out.emplace(ec, r);
                            }));
    fx.io.restart();
    fx.io.run_for(20ms);
    REQUIRE_FALSE(out.has_value());
    CHECK(fx.payment.calls == 1);
    signal.emit(asio::cancellation_type::terminal);
    fx.io.run();
    REQUIRE(out.has_value());
    CHECK(out->first == errc::operation_aborted);
    CHECK(out->second.final_state == purchase_state::timed_out);
    CHECK(fx.payment.cancelled == 1);
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: the limiter rejects first and nothing else runs") {
    fixture<> fx;
    fx.limiter.admit = false;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::rate_limited);
    CHECK(r.final_state == purchase_state::idle);
    CHECK(r.order_id == 0);
    CHECK(fx.breaker.acquired == 0);
    CHECK(fx.ids.last == 1000);
    CHECK(fx.log == std::vector<std::string>{"rejected sku: rate limited"});
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: a closed gate refuses new purchases read_only and admitted ones finish") {
    fixture<> fx;
    std::atomic<bool> open{true};
    seckill::purchase_engine<scripted_store, test_limiter, recording_breaker, counter_ids,
                             scripted_payment, seckill::memory_orders, recording_hooks,
                             seckill::manual_clock, switch_gate>
        engine(fx.store, fx.limiter, fx.breaker, fx.ids, fx.payment, fx.orders, {},
               recording_hooks{&fx.log, &fx.started}, fx.clock, switch_gate{&open});
    // admitted while open; the gate closes before it has run a single step
    fx.payment.takes = 20ms;
    std::optional<std::pair<std::error_code, seckill::purchase_result>> in_flight;
    engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result res) {
      in_flight.emplace(ec, res);
    });
    open.store(false, std::memory_order_release);
    const int limiter_calls = fx.limiter.calls;
    const int breaker_acquired = fx.breaker.acquired;
    const std::int64_t last_id = fx.ids.last;
    std::optional<std::pair<std::error_code, seckill::purchase_result>> refused;
    engine.async_purchase(
        {.sku = "sku", .quantity = 2},
        [&](std::error_code ec, seckill::purchase_result res) { refused.emplace(ec, res); });
    fx.io.restart();
    fx.io.run();
    REQUIRE(in_flight.has_value());
    CHECK(in_flight->first == no_error);
    CHECK(in_flight->second.final_state == purchase_state::succeeded);
    REQUIRE(refused.has_value());
    CHECK(refused->first == errc::read_only);
    CHECK(refused->first == seckill::condition::unavailable);
    CHECK(refused->second.final_state == purchase_state::idle);
    CHECK(refused->second.order_id == 0);
    // refused before the limiter, the breaker and the id source
    CHECK(fx.limiter.calls == limiter_calls);
    CHECK(fx.breaker.acquired == breaker_acquired);
    CHECK(fx.ids.last == last_id);
    CHECK(std::count(fx.log.begin(), fx.log.end(),
                     "rejected sku: this node takes no new purchases: its health grade is "
                     "read-only") == 1);
    check_level(fx.level(), 4, 0, 1);
    CHECK(fx.orders.size() == 1u);
    // bad input is still invalid_argument first; an open gate sells again
    std::optional<std::error_code> bad;
    engine.async_purchase({.sku = ""},
                          [&](std::error_code ec, seckill::purchase_result) { bad = ec; });
    fx.io.restart();
    fx.io.run();
    REQUIRE(bad.has_value());
    CHECK(*bad == errc::invalid_argument);
    open.store(true, std::memory_order_release);
    fx.payment.takes = 0ms;
    std::optional<std::pair<std::error_code, seckill::purchase_result>> again;
    engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result res) {
      again.emplace(ec, res);
    });
    fx.io.restart();
    fx.io.run();
    REQUIRE(again.has_value());
    CHECK(again->first == no_error);
    check_level(fx.level(), 3, 0, 2);
  }

  TEST_CASE("engine: a token bucket on the manual clock admits its burst then refills") {
    using bucket = seckill::token_bucket<seckill::manual_clock>;
    asio::io_context io;
    seckill::manual_clock clock;
    seckill::memory_store<seckill::manual_clock> store{io.get_executor(), {}, clock};
    bucket limiter{1.0, 2.0, clock};
    recording_breaker breaker;
    counter_ids ids;
    seckill::no_payment payment;
    seckill::memory_orders orders;
    seckill::purchase_engine<decltype(store), bucket, recording_breaker, counter_ids,
                             seckill::no_payment, seckill::memory_orders,
                             seckill::no_purchase_hooks, seckill::manual_clock>
        engine{store, limiter, breaker, ids, payment, orders, {}, {}, clock};
    store.async_set_stock("sku", 10, [](std::error_code) {});
    std::vector<std::error_code> results;
    auto buy = [&] {
      engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result) {
        results.push_back(ec);
      });
      io.restart();
      io.run();
    };
    buy();
    buy();
    buy();
    clock.advance(1s);
    buy();
    REQUIRE(results.size() == 4u);
    CHECK(results[0] == no_error);
    CHECK(results[1] == no_error);
    CHECK(results[2] == errc::rate_limited);
    CHECK(results[3] == no_error);
    CHECK(orders.size() == 3u);
  }

  TEST_CASE("engine: an open breaker rejects after the limiter") {
    fixture<> fx;
    fx.breaker.open = true;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::circuit_open);
    CHECK(r.final_state == purchase_state::idle);
    CHECK(fx.limiter.calls == 1);
    CHECK(fx.ids.last == 1000);
  }

  TEST_CASE("engine: store errors feed the breaker and the hooks") {
    fixture<> fx;
    fx.store.reserve_error = errc::store_unavailable;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::store_unavailable);
    CHECK(r.final_state == purchase_state::failed);
    CHECK(fx.breaker.failures == 1);
    CHECK(fx.breaker.successes == 0);
    CHECK(fx.log[1] == "#1 store reserve: stock store unavailable");
  }

  TEST_CASE("engine: a commit refused after payment fails the order and compensates it") {
    fixture<> fx;
    fx.store.advance_before_commit = 31s;  // the 30 s hold passes between payment and commit
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::order_rolled_back);
    CHECK(r.final_state == purchase_state::failed);
    CHECK(r.compensated);
    CHECK(fx.store.commits == 1);  // a refusal is an answer: no retry
    check_level(fx.level(), 5, 0, 0);
    CHECK(fx.orders.size() == 0u);
    CHECK(fx.log[fx.log.size() - 4] ==
          "#1 store commit: order is rolled back and cannot be committed");
    CHECK(fx.log[fx.log.size() - 2] ==
          "#1 compensate: order is rolled back and cannot be committed");
  }

  TEST_CASE(
      "engine: a commit without an answer is retried with the same order id until the store "
      "answers") {
    fixture<> fx;
    fx.store.commit_error = errc::timed_out;
    fx.store.failures_left = 3;
    auto [ec, r] = fx.buy_while_time_runs(5ms);
    CHECK(ec == no_error);
    CHECK(r.final_state == purchase_state::succeeded);
    CHECK_FALSE(r.compensated);
    CHECK(fx.store.commits == 4);
    check_level(fx.level(), 4, 0, 1);
    REQUIRE(fx.orders.size() == 1u);
    CHECK(fx.orders.orders()[0].order_id == r.order_id);
    CHECK(std::count(fx.log.begin(), fx.log.end(),
                     "#1 store commit: " + std::error_code(errc::timed_out).message()) == 3);
    CHECK(fx.breaker.failures == 0);  // the reserve answered: the store was healthy then
  }

  TEST_CASE("engine: a commit the store never answers gives up at the hold and compensates") {
    fixture<> fx;
    fx.store.commit_error = errc::store_unavailable;
    auto [ec, r] = fx.buy_while_time_runs(50ms);
    CHECK(ec == errc::store_unavailable);
    CHECK(r.final_state == purchase_state::failed);
    CHECK(r.compensated);
    CHECK(r.timings.commit >= 30s);  // retried for the whole hold
    CHECK(fx.store.commits >= 20);
    CHECK(fx.store.commits <= 80);  // pauses of 0.5 to 1 s once the backoff is capped
    CHECK(fx.orders.size() == 0u);
    CHECK(fx.log[fx.log.size() - 2] == "#1 compensate: stock store unavailable");
  }

  TEST_CASE(
      "engine: a reserve without an answer is rolled back and a lost answer's units come back") {
    fixture<> fx;
    // the reserve ran in the store but its answer was lost: the engine must give the units back
    fx.store.reserve_error = errc::timed_out;
    fx.store.failures_left = 1;
    // run the reserve for real first, as the store would have before the answer was lost
    std::optional<std::error_code> ran;
    fx.store.inner.async_reserve("sku", 1, 1001, 30s,
                                 [&](std::error_code e, seckill::reserve_result) { ran = e; });
    fx.io.restart();
    fx.io.run();
    REQUIRE(ran == no_error);
    check_level(fx.level(), 4, 1, 0);
    auto [ec, r] = fx.buy();  // order 1001, the same id
    CHECK(ec == errc::timed_out);
    CHECK(r.final_state == purchase_state::failed);
    CHECK_FALSE(r.compensated);
    CHECK(fx.payment.calls == 0);
    CHECK(fx.store.rollbacks == 1);
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: a rollback without an answer is retried until the store answers") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::fail;
    fx.store.rollback_error = errc::store_unavailable;
    fx.store.failures_left = 2;
    auto [ec, r] = fx.buy_while_time_runs(5ms);
    CHECK(ec == errc::payment_failed);
    CHECK(r.final_state == purchase_state::rolled_back);
    CHECK(fx.store.rollbacks == 3);
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: a refund policy is called once for a paid order the store refuses") {
    asio::io_context io;
    seckill::manual_clock clock;
    scripted_store store{io, clock};
    test_limiter limiter;
    recording_breaker breaker;
    counter_ids ids;
    refunding_payment payment{{&io, clock}};
    seckill::memory_orders orders;
    std::vector<std::string> log;
    int started = 0;
    seckill::purchase_engine<scripted_store, test_limiter, recording_breaker, counter_ids,
                             refunding_payment, seckill::memory_orders, recording_hooks,
                             seckill::manual_clock>
        engine(store, limiter, breaker, ids, payment, orders, {}, recording_hooks{&log, &started},
               clock);
    store.async_set_stock("sku", 1, [](std::error_code) {});
    io.run();
    store.advance_before_commit = 31s;
    std::optional<std::pair<std::error_code, seckill::purchase_result>> out;
    engine.async_purchase({.sku = "sku"}, [&](std::error_code e, seckill::purchase_result res) {
      out.emplace(e, res);
    });
    io.restart();
    io.run();
    REQUIRE(out.has_value());
    CHECK(out->first == errc::order_rolled_back);
    CHECK(out->second.compensated);
    CHECK(payment.refunds == 1);
    CHECK(payment.refunded_order == out->second.order_id);
    CHECK(log[log.size() - 2] ==
          "#1 compensate: order is rolled back and cannot be committed; refund: " +
              std::error_code(errc::payment_failed).message());
  }

  TEST_CASE("engine: a sink failure fails the order after the units were committed") {
    fixture<failing_orders> fx;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::persist_failed);
    CHECK(r.final_state == purchase_state::failed);
    check_level(fx.level(), 4, 0, 1);
  }

  TEST_CASE(
      "engine: a rollback that never gets an answer is retried for the hold and then left to the "
      "reaper") {
    fixture<> fx;
    fx.payment.how = scripted_payment::mode::fail;
    fx.store.rollback_error = errc::store_unavailable;
    auto [ec, r] = fx.buy_while_time_runs(50ms);
    CHECK(ec == errc::payment_failed);
    CHECK(r.final_state == purchase_state::rolled_back);
    CHECK(fx.store.rollbacks > 5);
    CHECK(r.timings.total >= 30s);
    check_level(fx.level(), 4, 1, 0);
    fx.clock.advance(1s);
    std::optional<std::size_t> reaped;
    fx.store.async_reap_expired("sku", 10, [&](std::error_code, std::size_t n) { reaped = n; });
    fx.io.restart();
    fx.io.run();
    CHECK(reaped == 1u);
    check_level(fx.level(), 5, 0, 0);
    CHECK(std::find(fx.log.begin(), fx.log.end(), "#1 store rollback: stock store unavailable") !=
          fx.log.end());
  }

  TEST_CASE("engine: an id source failure refuses the purchase") {
    fixture<> fx;
    fx.ids.fail_with = errc::clock_rollback;
    auto [ec, r] = fx.buy();
    CHECK(ec == errc::clock_rollback);
    CHECK(r.final_state == purchase_state::idle);
    CHECK(fx.breaker.acquired == 1);
    CHECK(fx.breaker.successes == 1);  // the permit goes back
    check_level(fx.level(), 5, 0, 0);
  }

  TEST_CASE("engine: bad requests and bad options are refused") {
    fixture<> fx;
    CHECK(fx.buy({.sku = "sku", .quantity = 0}).first == errc::invalid_argument);
    CHECK(fx.buy({.sku = "sku", .quantity = -1}).first == errc::invalid_argument);
    CHECK(fx.buy({.sku = ""}).first == errc::invalid_argument);
    CHECK(fx.buy({.sku = "sku", .deadline = -1ms}).first == errc::invalid_argument);
    CHECK(fx.buy({.sku = "sku", .deadline = 30s}).first ==
          errc::invalid_argument);  // not below the hold
    CHECK(fx.limiter.calls == 0);
    CHECK_THROWS_WITH_AS(fixture<>(seckill::purchase_options{.deadline = 0ms}),
                         "purchase deadline 0 ms is not positive: invalid argument",
                         seckill::error);
    CHECK_THROWS_WITH_AS(
        fixture<>(seckill::purchase_options{.deadline = 800ms, .hold = 500ms}),
        "reservation hold 500 ms must exceed the deadline 800 ms: invalid argument",
        seckill::error);
    CHECK_THROWS_WITH_AS(
        fixture<>(seckill::purchase_options{.hold = std::chrono::milliseconds::max()}),
        ("reservation hold " + std::to_string(std::chrono::milliseconds::max().count()) +
         " ms exceeds the longest a store keeps, 31622400000 ms: invalid argument")
            .c_str(),
        seckill::error);
    CHECK_THROWS_AS(fixture<>(seckill::purchase_options{.settle_retry_initial = 0ms}),
                    seckill::error);
    CHECK_THROWS_WITH_AS(fixture<>(seckill::purchase_options{.settle_retry_initial = 50ms,
                                                             .settle_retry_max = 10ms}),
                         "settle retry pauses 50 ms to 10 ms: want 0 < initial <= max <= "
                         "31622400000 ms: invalid argument",
                         seckill::error);
  }

  TEST_CASE("engine: the policies are deduced from the constructor's arguments") {
    asio::io_context io;
    seckill::memory_store<> store{io.get_executor()};
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    counter_ids ids;
    seckill::no_payment payment;
    seckill::memory_orders orders;
    seckill::purchase_engine engine{store, limiter, breaker, ids, payment, orders};
    static_assert(
        std::is_same_v<decltype(engine),
                       seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited,
                                                seckill::no_breaker, counter_ids,
                                                seckill::no_payment, seckill::memory_orders>>);
    seckill::purchase_engine timed{
        store, limiter, breaker, ids, payment, orders, {.deadline = 100ms}};
    CHECK(timed.options().deadline == 100ms);
    store.async_set_stock("sku", 1, [](std::error_code) {});
    io.run();
    std::optional<std::error_code> got;
    engine.async_purchase({.sku = "sku"},
                          [&](std::error_code ec, seckill::purchase_result) { got = ec; });
    io.restart();
    io.run();
    CHECK(got == no_error);
    // what the concepts refuse
    static_assert(!seckill::purchase_limiter<int>);
    static_assert(!seckill::purchase_breaker<seckill::unlimited>);
    static_assert(!seckill::order_id_source<seckill::no_payment>);
    static_assert(!seckill::payment_policy<seckill::memory_orders>);
    static_assert(!seckill::orders_sink<seckill::no_payment>);
    static_assert(!seckill::stock_store<seckill::memory_orders>);
  }

  TEST_CASE("engine: snowflake ids on the default policies") {
    asio::io_context io;
    seckill::memory_store<> store{io.get_executor()};
    seckill::token_bucket<> limiter{1000.0, 100.0};
    seckill::circuit_breaker<> breaker{seckill::breaker_options{}};
    seckill::snowflake<> ids{1, 2};
    seckill::no_payment payment;
    seckill::memory_orders orders;
    seckill::purchase_engine<seckill::memory_store<>> engine{store, limiter, breaker,
                                                             ids,   payment, orders};
    store.async_set_stock("sku", 3, [](std::error_code) {});
    std::vector<std::pair<std::error_code, seckill::purchase_result>> out;
    for (int i = 0; i < 4; ++i)
      engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result r) {
        out.emplace_back(ec, r);
      });
    io.run();
    REQUIRE(out.size() == 4u);
    int ok = 0, sold_out = 0;
    for (auto& [ec, r] : out) {
      if (!ec) ++ok;
      if (ec == errc::sold_out) ++sold_out;
      const auto parts = seckill::snowflake<>::decompose(r.order_id);
      CHECK(parts.datacenter == 1u);
      CHECK(parts.worker == 2u);
    }
    CHECK(ok == 3);
    CHECK(sold_out == 1);
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("engine: an io_context per thread - 2000 buyers never oversell 300 units over 3 SKUs") {
    // Shard per core: each thread runs its own io_context and starts its
    // purchases on it; they share the store, the ids and the sink.
    asio::io_context home;
    seckill::memory_store<> store{home.get_executor()};
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    seckill::snowflake<> ids{0, 0};
    seckill::no_payment payment;
    seckill::memory_orders orders{2000};
    // (a deadline no slow machine reaches: a sanitizer build under load takes
    // seconds to serve each lane's burst of 1000, which the 800 ms default
    // cut short; the outcome counts below must see every purchase settle)
    seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited, seckill::no_breaker>
        engine{store, limiter, breaker, ids, payment, orders, {.deadline = 20s, .hold = 60s}};
    const std::vector<std::string> skus{"a", "b", "c"};
    for (const auto& sku : skus) store.async_set_stock(sku, 100, [](std::error_code) {});
    home.run();
    std::atomic<int> ok{0}, sold_out{0}, other{0};
    std::vector<std::vector<std::int64_t>> paid(2);
    auto lane = [&](int index) {
      asio::io_context io(1);
      for (int i = 0; i < 1000; ++i) {
        engine.async_purchase(io.get_executor(), {.sku = skus[static_cast<std::size_t>(i % 3)]},
                              [&, index](std::error_code ec, seckill::purchase_result r) {
                                if (!ec && r.final_state == purchase_state::succeeded) {
                                  ++ok;
                                  paid[static_cast<std::size_t>(index)].push_back(r.order_id);
                                } else if (ec == errc::sold_out) {
                                  ++sold_out;
                                } else {
                                  ++other;
                                }
                              });
      }
      io.run();
    };
    std::thread t(lane, 1);
    lane(0);
    t.join();
    CHECK(ok.load() == 300);
    CHECK(sold_out.load() == 1700);
    CHECK(other.load() == 0);
    // Every buyer told "succeeded" has an order in the sink, and no other.
    std::vector<std::int64_t> told = paid[0];
    told.insert(told.end(), paid[1].begin(), paid[1].end());
    std::sort(told.begin(), told.end());
    CHECK(std::adjacent_find(told.begin(), told.end()) == told.end());
    std::vector<std::int64_t> kept;
    for (const auto& o : orders.orders()) kept.push_back(o.order_id);
    CHECK(kept == told);  // orders() comes in id order
    home.restart();
    for (const auto& sku : skus) {
      store.async_stock(sku, [](std::error_code ec, seckill::stock_level l) {
        CHECK(ec == no_error);
        CHECK(l.remaining == 0);
        CHECK(l.reserved == 0);
        CHECK(l.committed == 100);
      });
    }
    home.run();
  }

  TEST_CASE("engine: 400 buyers on 2 threads never oversell 50 units over 2 SKUs") {
    asio::io_context io;
    seckill::memory_store<> store{io.get_executor()};
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    seckill::snowflake<> ids{0, 0};
    seckill::no_payment payment;
    seckill::memory_orders orders{400};
    seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited, seckill::no_breaker>
        engine{store, limiter, breaker, ids, payment, orders};
    store.async_set_stock("a", 20, [](std::error_code) {});
    store.async_set_stock("b", 30, [](std::error_code) {});
    io.run();
    io.restart();
    std::atomic<int> ok{0}, sold_out{0}, other{0};
    for (int i = 0; i < 400; ++i) {
      engine.async_purchase({.sku = i % 2 ? "a" : "b"},
                            [&](std::error_code ec, seckill::purchase_result r) {
                              if (!ec && r.final_state == purchase_state::succeeded)
                                ++ok;
                              else if (ec == errc::sold_out)
                                ++sold_out;
                              else
                                ++other;
                            });
    }
    std::thread t([&] { io.run(); });
    io.run();
    t.join();
    CHECK(ok.load() == 50);
    CHECK(sold_out.load() == 350);
    CHECK(other.load() == 0);
    CHECK(orders.size() == 50u);
    io.restart();
    for (auto [sku, n] : {std::pair{"a", 20}, std::pair{"b", 30}}) {
      store.async_stock(sku, [n = n](std::error_code ec, seckill::stock_level l) {
        CHECK(ec == no_error);
        CHECK(l.remaining == 0);
        CHECK(l.reserved == 0);
        CHECK(l.committed == n);
      });
    }
    io.run();
  }
}
