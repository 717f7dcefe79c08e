#pragma once
// clang-format off
/// @file
/// @brief The purchase engine, observed: `purchase_metrics` (the metric
///        handles a shop exports) and `purchase_hooks`, the engine's `Hooks`
///        policy that feeds them and traces each purchase. Names stay in
///        `seckill::obs` (this header was obs/purchase_hooks.hpp, which still
///        includes it); it needs Asio only through the engine.
///
/// Metrics (names fixed, so the alert rules and the dashboard in
/// examples/observability work unchanged):
///
/// | name | type | labels |
/// |---|---|---|
/// | `seckill_purchases_total` | counter | `result`: succeeded, sold_out, unknown_sku, rate_limited, circuit_open, invalid, rejected, timed_out, cancelled, rolled_back, failed, limited, in_progress, replayed, read_only, not_started, ended |
/// | `seckill_purchase_duration_seconds` | histogram | (admitted purchases, admission to the end) |
/// | `seckill_stock_units` | gauge | `sku` |
/// | `seckill_breaker_state` | gauge (1 for the current state) | `state`: closed, open, half_open, forced_open, disabled |
/// | `seckill_rate_limited_total` | counter | |
/// | `seckill_store_errors_total` | counter | `operation`: reserve, commit, rollback, stock |
/// | `seckill_compensations_total` | counter | `refund`: ok, failed, none (paid orders the store would not commit) |
///
/// @code
/// seckill::obs::registry reg;
/// seckill::obs::purchase_metrics metrics(reg);
/// seckill::obs::purchase_hooks hooks(metrics, &tracer);   // tracer optional
/// seckill::purchase_engine<..., seckill::obs::purchase_hooks<>> engine(..., hooks);
/// @endcode
// clang-format on

#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/obs/metrics.hpp>
#include <seckill/obs/span.hpp>
#include <seckill/purchase/engine.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill::obs {

/// @brief How a purchase ended, as the `result` label says it.
enum class purchase_outcome {
  succeeded,
  sold_out,
  unknown_sku,
  rate_limited,
  circuit_open,
  invalid,   ///< the request was malformed (invalid_argument)
  rejected,  ///< refused at admission for another reason (e.g. the id source failed)
  timed_out,
  cancelled,    ///< the caller cancelled before payment completed
  rolled_back,  ///< payment failed; the reservation was given back
  failed,       ///< the store, the commit or the order sink failed
  limited,      ///< the buyer's per-user limit for the SKU was reached (purchase_limited)
  in_progress,  ///< a retry of a request whose first attempt is still held (purchase_in_progress)
  replayed,     ///< a retry answered with its first attempt's settled outcome: no new sale
  read_only,    ///< the node's gate refused it: its health grade is read-only or offline
  not_started,  ///< before the SKU's sale window (sale_not_started)
  ended,        ///< after the SKU's sale window (sale_ended)
};

inline constexpr std::size_t purchase_outcome_count = 17;

inline constexpr std::string_view to_string(purchase_outcome o) noexcept {
  constexpr std::array<std::string_view, purchase_outcome_count> names{
      "succeeded",   "sold_out",  "unknown_sku", "rate_limited", "circuit_open", "invalid",
      "rejected",    "timed_out", "cancelled",   "rolled_back",  "failed",       "limited",
      "in_progress", "replayed",  "read_only",   "not_started",  "ended"};
  return names[static_cast<std::size_t>(o)];
}

/// @brief The outcome of a purchase from the engine's answer. A replayed
///        answer (`purchase_result::replayed`) is counted apart, so a retry
///        is never counted as a second sale or a store failure.
inline purchase_outcome classify(std::error_code ec, purchase_state final_state,
                                 bool replayed = false) noexcept {
  if (replayed && ec != errc::purchase_in_progress) return purchase_outcome::replayed;
  if (final_state == purchase_state::succeeded && !ec) return purchase_outcome::succeeded;
  if (ec == errc::rate_limited) return purchase_outcome::rate_limited;
  if (ec == errc::circuit_open) return purchase_outcome::circuit_open;
  if (ec == errc::purchase_limited) return purchase_outcome::limited;
  if (ec == errc::purchase_in_progress) return purchase_outcome::in_progress;
  if (ec == errc::read_only) return purchase_outcome::read_only;
  if (final_state == purchase_state::idle)
    return ec == errc::invalid_argument ? purchase_outcome::invalid : purchase_outcome::rejected;
  if (ec == errc::sold_out) return purchase_outcome::sold_out;
  if (ec == errc::unknown_sku) return purchase_outcome::unknown_sku;
  if (ec == errc::sale_not_started) return purchase_outcome::not_started;
  if (ec == errc::sale_ended) return purchase_outcome::ended;
  if (final_state == purchase_state::timed_out)
    return ec == errc::operation_aborted ? purchase_outcome::cancelled
                                         : purchase_outcome::timed_out;
  if (final_state == purchase_state::rolled_back) return purchase_outcome::rolled_back;
  return purchase_outcome::failed;
}

/// @brief The metric handles of a shop's purchases, registered in a registry
///        with every `result`, breaker state and store operation created up
///        front (so every series exists from the first scrape).
///
/// Thread-safety: every member from any threads. Cost: `record()` is a
/// counter increment and a histogram observation (no lock, no allocation);
/// `set_stock()` looks the SKU's child up under the family's mutex (call it
/// from a sampler, not per purchase).
class purchase_metrics {
 public:
  explicit purchase_metrics(registry& reg,
                            std::vector<double> latency_buckets = default_latency_buckets())
      : purchases_(reg.add_counter_family("seckill_purchases_total", "Purchases by final result.",
                                          {"result"})),
        stock_(reg.add_gauge_family("seckill_stock_units",
                                    "Units left in the stock store, per SKU.", {"sku"})),
        breaker_(reg.add_gauge_family(
            "seckill_breaker_state",
            "The stock store's circuit breaker: 1 for its current state, 0 for the others.",
            {"state"})),
        store_errors_(reg.add_counter_family(
            "seckill_store_errors_total",
            "Stock store calls that failed (not answers such as sold out), by operation.",
            {"operation"})) {
    for (std::size_t i = 0; i < purchase_outcome_count; ++i)
      by_outcome_[i] = purchases_.with({to_string(static_cast<purchase_outcome>(i))});
    latency_ = reg.add_histogram_family("seckill_purchase_duration_seconds",
                                        "Admitted purchases, from admission to their final state.",
                                        {}, std::move(latency_buckets))
                   .get();
    rate_limited_ =
        reg.add_counter("seckill_rate_limited_total", "Purchases refused by the token bucket.");
    auto& compensations =
        reg.add_counter_family("seckill_compensations_total",
                               "Paid orders the stock store would not commit, handed to the "
                               "compensation path, by refund outcome.",
                               {"refund"});
    compensations_ = {compensations.with({"ok"}), compensations.with({"failed"}),
                      compensations.with({"none"})};
    for (auto s : {breaker_state::closed, breaker_state::open, breaker_state::half_open,
                   breaker_state::forced_open, breaker_state::disabled})
      breaker_states_[static_cast<std::size_t>(s)] = breaker_.with({to_string(s)});
    set_breaker_state(breaker_state::closed);
  }

  /// Counts a finished purchase; `total` goes to the latency histogram when `admitted`.
  void record(purchase_outcome o, std::chrono::nanoseconds total, bool admitted) const noexcept {
    by_outcome_[static_cast<std::size_t>(o)].inc();
    if (o == purchase_outcome::rate_limited) rate_limited_.inc();
    if (admitted) latency_.observe(std::chrono::duration<double>(total).count());
  }

  /// Counts a paid order the store would not commit: `refunded` says how
  /// the Payment's refund went (nullopt: the policy has none).
  void compensation(std::optional<bool> refunded) const noexcept {
    compensations_[!refunded ? 2 : (*refunded ? 0 : 1)].inc();
  }

  /// Sets the `seckill_stock_units{sku}` gauge.
  void set_stock(std::string_view sku, std::int64_t units) {
    stock_.with({sku}).set(static_cast<double>(units));
  }

  /// One-hot: 1 on `s`, 0 on every other state.
  void set_breaker_state(breaker_state s) const noexcept {
    for (std::size_t i = 0; i < breaker_states_.size(); ++i)
      breaker_states_[i].set(i == static_cast<std::size_t>(s) ? 1.0 : 0.0);
  }

  /// Counts a failed store call ("reserve", "commit", "rollback", "stock").
  void store_error(std::string_view operation) {
    if (operation == "reserve") return store_error_handles_[0].inc();
    if (operation == "commit") return store_error_handles_[1].inc();
    if (operation == "rollback") return store_error_handles_[2].inc();
    if (operation == "stock") return store_error_handles_[3].inc();
    store_errors_.with({operation}).inc();
  }

  [[nodiscard]] counter purchases(purchase_outcome o) const noexcept {
    return by_outcome_[static_cast<std::size_t>(o)];
  }
  [[nodiscard]] histogram latency() const noexcept { return latency_; }
  [[nodiscard]] counter rate_limited() const noexcept { return rate_limited_; }
  /// `seckill_compensations_total{refund}`: "ok", "failed" or "none".
  [[nodiscard]] counter compensations(std::string_view refund) const noexcept {
    return compensations_[refund == "ok" ? 0 : refund == "failed" ? 1 : 2];
  }
  [[nodiscard]] gauge breaker(breaker_state s) const noexcept {
    return breaker_states_[static_cast<std::size_t>(s)];
  }

 private:
  family<counter>& purchases_;
  family<gauge>& stock_;
  family<gauge>& breaker_;
  family<counter>& store_errors_;
  std::array<counter, purchase_outcome_count> by_outcome_{};
  histogram latency_;
  counter rate_limited_;
  std::array<counter, 3> compensations_{};  // refund ok, failed, none
  std::array<gauge, 5> breaker_states_{};
  std::array<counter, 4> store_error_handles_{
      store_errors_.with({"reserve"}), store_errors_.with({"commit"}),
      store_errors_.with({"rollback"}), store_errors_.with({"stock"})};
};

/// @brief The purchase engine's `Hooks` policy: counts every purchase in
///        `purchase_metrics` and, given a tracer, makes one server span per
///        admitted purchase, a child of the request's `traceparent` when it
///        carries a valid one, whose context the payment call carries on
///        (`payment_request::traceparent`). The span records the SKU, quantity, order id,
///        the step timings, the result, store errors, and an error status
///        with the error's message.
///
/// Thread-safety: as the engine requires (metrics and tracer are). Cost per
/// purchase without a tracer: one counter increment and one histogram
/// observation; with one, a span (a few small allocations) handed to the
/// exporter. Copyable; the metrics and tracer must outlive the engine.
template <class Clock = std::chrono::system_clock>
class purchase_hooks {
 public:
  /// Per-purchase state the engine keeps in its context.
  struct span {
    basic_span<Clock> s;
    std::array<char, 55> traceparent{};  ///< this span's context, for the payment call
  };

  explicit purchase_hooks(purchase_metrics& metrics, const basic_tracer<Clock>* tracer = nullptr)
      : metrics_(&metrics), tracer_(tracer) {}

  void on_rejected(const purchase_request&, std::error_code ec, const purchase_result& r) const {
    metrics_->record(classify(ec, r.final_state, r.replayed), r.timings.total, false);
  }

  void on_start(purchase_context<span>& ctx) const {
    if (tracer_ == nullptr) return;
    const auto parent = parse_traceparent(ctx.request.traceparent);
    ctx.span.s = tracer_->start_span("purchase", span_kind::server, parent);
    ctx.span.s.set_attribute("seckill.sku", std::string(ctx.request.sku));
    ctx.span.s.set_attribute("seckill.quantity", attribute_value(ctx.request.quantity));
    ctx.span.s.set_attribute("seckill.order_id", attribute_value(ctx.order_id));
    // sampled or not, the context goes on (W3C: the callee follows the sampled flag)
    if (ctx.span.s.context().valid())
      format_traceparent(ctx.span.s.context(), ctx.span.traceparent);
  }

  /// The purchase span's own traceparent, which the engine hands to the
  /// payment call: the payment service's span becomes its child. Empty
  /// without a tracer (the request's traceparent goes on unchanged).
  std::string_view outgoing_traceparent(purchase_context<span>& ctx) const noexcept {
    if (ctx.span.traceparent[0] == '\0') return {};
    return {ctx.span.traceparent.data(), ctx.span.traceparent.size()};
  }

  void on_store_error(purchase_context<span>& ctx, std::string_view operation,
                      std::error_code ec) const {
    metrics_->store_error(operation);
    if (ctx.span.s.recording())
      ctx.span.s.set_attribute("seckill.store_error." + std::string(operation), ec.message());
  }

  /// Counts the compensation by the refund's outcome and records it on the span.
  void on_compensation(purchase_context<span>& ctx, std::error_code why,
                       std::optional<std::error_code> refund) const {
    metrics_->compensation(refund ? std::optional<bool>(!*refund) : std::nullopt);
    if (ctx.span.s.recording()) {
      ctx.span.s.set_attribute("seckill.compensation", why.message());
      if (refund && *refund) ctx.span.s.set_attribute("seckill.refund_error", refund->message());
    }
  }

  void on_complete(purchase_context<span>& ctx, std::error_code ec,
                   const purchase_result& r) const {
    const auto outcome = classify(ec, r.final_state, r.replayed);
    metrics_->record(outcome, r.timings.total, true);
    auto& s = ctx.span.s;
    if (!s.recording()) return;
    s.set_attribute("seckill.result", std::string(to_string(outcome)));
    s.set_attribute("seckill.final_state", std::string(to_string(r.final_state)));
    const auto ns = [](std::chrono::nanoseconds d) {
      return attribute_value(static_cast<std::int64_t>(d.count()));
    };
    s.set_attribute("seckill.reserve_ns", ns(r.timings.reserve));
    s.set_attribute("seckill.payment_ns", ns(r.timings.payment));
    s.set_attribute("seckill.commit_ns", ns(r.timings.commit));
    s.set_attribute("seckill.persist_ns", ns(r.timings.persist));
    if (ec) {
      s.set_status(span_status::error, ec.message());
    } else {
      s.set_status(span_status::ok);
    }
    s.end();
  }

 private:
  purchase_metrics* metrics_;
  const basic_tracer<Clock>* tracer_;
};

}  // namespace seckill::obs
