#include <seckill/clock.hpp>
#include <seckill/obs/prometheus.hpp>
#include <seckill/obs/purchase_hooks.hpp>
#include <seckill/store/memory_store.hpp>

#include <doctest/doctest.h>

#include <boost/asio/append.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <ostream>
#include <string>
#include <vector>

using seckill::errc;
using seckill::purchase_state;
using seckill::obs::purchase_outcome;

namespace unit_purchase_hooks {

/// Fails the payment of every order whose id is in `fail`; completes at once
/// otherwise. Keeps the traceparent each payment call carried.
struct picky_payment {
  std::vector<std::int64_t> fail;
  std::vector<std::string> traceparents{};
  template <class Token>
  auto async_pay(const seckill::payment_request& r, Token&& token) {
    traceparents.emplace_back(r.traceparent);
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::int64_t id) {
          std::error_code ec;
          for (auto f : fail)
            if (f == id) ec = errc::payment_failed;
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
        },
        token, r.order_id);
  }
};

/// Advances a manual clock by `takes` before succeeding: the store's hold can
/// pass while the buyer pays.
struct slow_payment {
  seckill::manual_clock clock;
  std::chrono::milliseconds takes;
  template <class Token>
  auto async_pay(const seckill::payment_request&, Token&& token) {
    clock.advance(takes);
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, boost::asio::append(std::move(handler), std::error_code{}));
        },
        token);
  }
};

/// Order ids 1, 2, 3, ...
struct counting_ids {
  std::int64_t next_id = 0;
  std::int64_t next(std::error_code&) noexcept { return ++next_id; }
};

}  // namespace unit_purchase_hooks

TEST_SUITE("unit") {
  TEST_CASE("purchase outcomes from the engine's answers") {
    using seckill::obs::classify;
    CHECK(classify({}, purchase_state::succeeded) == purchase_outcome::succeeded);
    CHECK(classify(errc::rate_limited, purchase_state::idle) == purchase_outcome::rate_limited);
    CHECK(classify(errc::circuit_open, purchase_state::idle) == purchase_outcome::circuit_open);
    CHECK(classify(errc::invalid_argument, purchase_state::idle) == purchase_outcome::invalid);
    CHECK(classify(errc::clock_rollback, purchase_state::idle) == purchase_outcome::rejected);
    CHECK(classify(errc::sold_out, purchase_state::failed) == purchase_outcome::sold_out);
    CHECK(classify(errc::unknown_sku, purchase_state::failed) == purchase_outcome::unknown_sku);
    CHECK(classify(errc::timed_out, purchase_state::timed_out) == purchase_outcome::timed_out);
    // A retry's answer is no second sale and no store failure.
    CHECK(classify({}, purchase_state::succeeded, true) == purchase_outcome::replayed);
    CHECK(classify(errc::order_rolled_back, purchase_state::failed, true) ==
          purchase_outcome::replayed);
    CHECK(classify(errc::purchase_in_progress, purchase_state::idle, true) ==
          purchase_outcome::in_progress);
    CHECK(classify(errc::operation_aborted, purchase_state::timed_out) ==
          purchase_outcome::cancelled);
    CHECK(classify(errc::payment_failed, purchase_state::rolled_back) ==
          purchase_outcome::rolled_back);
    CHECK(classify(errc::store_unavailable, purchase_state::failed) == purchase_outcome::failed);
    CHECK(classify(errc::persist_failed, purchase_state::failed) == purchase_outcome::failed);
    CHECK(seckill::obs::to_string(purchase_outcome::rolled_back) == "rolled_back");
    CHECK(seckill::obs::to_string(purchase_outcome::failed) == "failed");
    CHECK(classify(errc::purchase_limited, purchase_state::failed) == purchase_outcome::limited);
    CHECK(classify(errc::purchase_in_progress, purchase_state::idle) ==
          purchase_outcome::in_progress);
    CHECK(seckill::obs::to_string(purchase_outcome::in_progress) == "in_progress");
    CHECK(classify(errc::read_only, purchase_state::idle) == purchase_outcome::read_only);
    CHECK(seckill::obs::to_string(purchase_outcome::read_only) == "read_only");
    CHECK(classify(errc::sale_not_started, purchase_state::failed) ==
          purchase_outcome::not_started);
    CHECK(classify(errc::sale_ended, purchase_state::failed) == purchase_outcome::ended);
    CHECK(seckill::obs::to_string(purchase_outcome::not_started) == "not_started");
    CHECK(seckill::obs::to_string(purchase_outcome::ended) == "ended");
  }

  TEST_CASE(
      "purchase_metrics: every series exists before the first purchase - breaker is one-hot") {
    seckill::obs::registry reg;
    seckill::obs::purchase_metrics m(reg);
    const auto text = seckill::obs::to_text(reg);
    for (const char* result :
         {"succeeded", "sold_out", "unknown_sku", "rate_limited", "circuit_open", "invalid",
          "rejected", "timed_out", "cancelled", "rolled_back", "failed", "limited", "in_progress",
          "replayed", "read_only", "not_started", "ended"})
      CHECK_MESSAGE(text.find(std::string("seckill_purchases_total{result=\"") + result +
                              "\"} 0\n") != std::string::npos,
                    result);
    CHECK(text.find("seckill_breaker_state{state=\"closed\"} 1\n") != std::string::npos);
    CHECK(text.find("seckill_breaker_state{state=\"open\"} 0\n") != std::string::npos);
    CHECK(text.find("seckill_store_errors_total{operation=\"reserve\"} 0\n") != std::string::npos);
    CHECK(text.find("seckill_rate_limited_total 0\n") != std::string::npos);
    for (const char* refund : {"ok", "failed", "none"})
      CHECK_MESSAGE(text.find(std::string("seckill_compensations_total{refund=\"") + refund +
                              "\"} 0\n") != std::string::npos,
                    refund);
    CHECK(text.find("seckill_purchase_duration_seconds_count 0\n") != std::string::npos);
    m.set_breaker_state(seckill::breaker_state::open);
    CHECK(m.breaker(seckill::breaker_state::open).value() == 1);
    CHECK(m.breaker(seckill::breaker_state::closed).value() == 0);
    m.set_stock("sku-1", 42);
    m.store_error("commit");
    m.store_error("something_else");
    const auto after = seckill::obs::to_text(reg);
    CHECK(after.find("seckill_stock_units{sku=\"sku-1\"} 42\n") != std::string::npos);
    CHECK(after.find("seckill_store_errors_total{operation=\"commit\"} 1\n") != std::string::npos);
    CHECK(after.find("seckill_store_errors_total{operation=\"something_else\"} 1\n") !=
          std::string::npos);
  }

  TEST_CASE(
      "purchase_hooks count results / time admitted purchases and trace them under the caller's "
      "traceparent") {
    boost::asio::io_context io;
    seckill::memory_store<> store{io.get_executor()};
    seckill::token_bucket<seckill::manual_clock> limiter{
        1.0, 5.0, seckill::manual_clock{}};  // 5 tokens, no refill
    seckill::no_breaker breaker;
    unit_purchase_hooks::counting_ids ids;
    unit_purchase_hooks::picky_payment payment{{2}};  // order 2's payment fails
    seckill::memory_orders orders;
    seckill::obs::registry reg;
    seckill::obs::purchase_metrics metrics(reg);
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::tracer tracer(exporter);
    seckill::purchase_engine<seckill::memory_store<>, seckill::token_bucket<seckill::manual_clock>,
                             seckill::no_breaker, unit_purchase_hooks::counting_ids,
                             unit_purchase_hooks::picky_payment, seckill::memory_orders,
                             seckill::obs::purchase_hooks<>>
        engine{store,   limiter, breaker, ids,
               payment, orders,  {},      seckill::obs::purchase_hooks<>(metrics, &tracer)};
    store.async_set_stock("sku", 2, [](std::error_code) {});
    io.run();
    io.restart();
    constexpr std::string_view parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    int done = 0;
    for (int i = 0; i < 7; ++i) {
      engine.async_purchase({.sku = "sku", .traceparent = i == 0 ? parent : std::string_view{}},
                            [&](std::error_code, seckill::purchase_result) { ++done; });
      io.run();  // one at a time: orders 1..5 in sequence
      io.restart();
    }
    CHECK(done == 7);
    // 1: succeeded, 2: payment failed (rolled back), 3: succeeded (stock 2), 4, 5: sold out, 6, 7:
    // rate limited
    CHECK(metrics.purchases(purchase_outcome::succeeded).value() == 2);
    CHECK(metrics.purchases(purchase_outcome::rolled_back).value() == 1);
    CHECK(metrics.purchases(purchase_outcome::sold_out).value() == 2);
    CHECK(metrics.purchases(purchase_outcome::rate_limited).value() == 2);
    CHECK(metrics.rate_limited().value() == 2);
    CHECK(metrics.latency().count() == 5);  // admitted ones only
    const auto spans = exporter.take();
    REQUIRE(spans.size() == 5);
    CHECK(spans[0].name == "purchase");
    CHECK(spans[0].kind == seckill::obs::span_kind::server);
    CHECK(seckill::obs::to_hex(spans[0].context.trace) == "4bf92f3577b34da6a3ce929d0e0e4736");
    REQUIRE(spans[0].parent.has_value());
    CHECK(seckill::obs::to_hex(*spans[0].parent) == "00f067aa0ba902b7");
    CHECK(spans[0].status == seckill::obs::span_status::ok);
    CHECK_FALSE(spans[1].parent.has_value());  // no traceparent: a new root
    CHECK(spans[1].context.trace != spans[0].context.trace);
    CHECK(spans[1].status == seckill::obs::span_status::error);
    CHECK(spans[1].status_message == seckill::make_error_code(errc::payment_failed).message());
    const auto attr = [](const seckill::obs::span_data& s,
                         const std::string& key) -> seckill::obs::attribute_value {
      for (const auto& [k, v] : s.attributes)
        if (k == key) return v;
      return std::string("<missing>");
    };
    CHECK(std::get<std::string>(attr(spans[1], "seckill.result")) == "rolled_back");
    CHECK(std::get<std::int64_t>(attr(spans[1], "seckill.order_id")) == 2);
    CHECK(std::get<std::string>(attr(spans[3], "seckill.result")) == "sold_out");
    CHECK(std::get<std::string>(attr(spans[0], "seckill.sku")) == "sku");
    // the payment calls carry the purchase span's context: the payment's span is its child
    REQUIRE(payment.traceparents.size() == 3);  // orders 1, 2 and 3 reached payment
    CHECK(payment.traceparents[0] == seckill::obs::format_traceparent(spans[0].context));
    CHECK(payment.traceparents[0].substr(3, 32) == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(payment.traceparents[0].substr(36, 16) != "00f067aa0ba902b7");
    CHECK(payment.traceparents[1] == seckill::obs::format_traceparent(spans[1].context));
    CHECK(payment.traceparents[2] == seckill::obs::format_traceparent(spans[2].context));
  }

  TEST_CASE(
      "purchase_hooks without a tracer hand the request's traceparent to the payment unchanged") {
    boost::asio::io_context io;
    seckill::memory_store<> store{io.get_executor()};
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    unit_purchase_hooks::counting_ids ids;
    unit_purchase_hooks::picky_payment payment{{}};
    seckill::memory_orders orders;
    seckill::obs::registry reg;
    seckill::obs::purchase_metrics metrics(reg);
    seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited, seckill::no_breaker,
                             unit_purchase_hooks::counting_ids, unit_purchase_hooks::picky_payment,
                             seckill::memory_orders, seckill::obs::purchase_hooks<>>
        engine{store,   limiter, breaker, ids,
               payment, orders,  {},      seckill::obs::purchase_hooks<>(metrics)};
    store.async_set_stock("sku", 2, [](std::error_code) {});
    io.run();
    io.restart();
    constexpr std::string_view parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    engine.async_purchase({.sku = "sku", .traceparent = parent},
                          [](std::error_code, seckill::purchase_result) {});
    io.run();
    REQUIRE(payment.traceparents.size() == 1);
    CHECK(payment.traceparents[0] == parent);
  }

  TEST_CASE("purchase_hooks count a paid order the store would not commit as a compensation") {
    boost::asio::io_context io;
    seckill::manual_clock clock;
    seckill::memory_store<seckill::manual_clock> store{io.get_executor(), {}, clock};
    seckill::unlimited limiter;
    seckill::no_breaker breaker;
    unit_purchase_hooks::counting_ids ids;
    unit_purchase_hooks::slow_payment payment{clock,
                                              std::chrono::seconds(31)};  // past the 30 s hold
    seckill::memory_orders orders;
    seckill::obs::registry reg;
    seckill::obs::purchase_metrics metrics(reg);
    seckill::obs::in_memory_exporter exporter;
    seckill::obs::tracer tracer(exporter);
    seckill::purchase_engine<seckill::memory_store<seckill::manual_clock>, seckill::unlimited,
                             seckill::no_breaker, unit_purchase_hooks::counting_ids,
                             unit_purchase_hooks::slow_payment, seckill::memory_orders,
                             seckill::obs::purchase_hooks<>>
        engine{store,   limiter, breaker, ids,
               payment, orders,  {},      seckill::obs::purchase_hooks<>(metrics, &tracer)};
    store.async_set_stock("sku", 1, [](std::error_code) {});
    io.run();
    io.restart();
    std::error_code got;
    bool compensated = false;
    engine.async_purchase({.sku = "sku"}, [&](std::error_code ec, seckill::purchase_result r) {
      got = ec;
      compensated = r.compensated;
    });
    io.run();
    CHECK(got == errc::order_rolled_back);
    CHECK(compensated);
    CHECK(metrics.compensations("none").value() == 1);
    CHECK(metrics.compensations("ok").value() == 0);
    CHECK(metrics.purchases(purchase_outcome::failed).value() == 1);
    CHECK(orders.size() == 0u);
    const auto spans = exporter.take();
    REQUIRE(spans.size() == 1);
    bool found = false;
    for (const auto& [k, v] : spans[0].attributes)
      if (k == "seckill.compensation") found = std::get<std::string>(v) == got.message();
    CHECK(found);
  }
}
