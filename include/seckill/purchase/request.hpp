#pragma once
/// @file
/// @brief What a purchase is and how it ends: `purchase_request`,
///        `purchase_result` (with `purchase_timings`), what the payment and
///        the order sink are handed, and the engine's `purchase_options`.
///        The standard library only.

#include <seckill/purchase/state_machine.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace seckill {

/// @brief One buyer's purchase. The views must stay valid until the purchase completes.
struct purchase_request {
  std::string_view sku{};
  std::int64_t quantity = 1;
  /// This purchase's deadline; zero means the engine's (`purchase_options::deadline`).
  std::chrono::milliseconds deadline{0};
  /// The incoming W3C `traceparent` header, if any, for tracing hooks.
  std::string_view traceparent{};
  /// The buyer, for the SKU's per-user limit: empty for an anonymous
  /// purchase (no limit applies); else 1 to `max_key_length` characters of
  /// [A-Za-z0-9._:@-] (`valid_buyer_key`).
  std::string_view user{};
  /// The buyer's idempotency key for this purchase (needs a user), same
  /// characters: a retry with the same (user, request_id) never buys twice
  /// and answers what became of the first attempt (see purchase_engine).
  std::string_view request_id{};
};

/// @brief Where a purchase spent its time. Steps that did not run stay zero.
struct purchase_timings {
  std::chrono::nanoseconds admission{};  ///< validation, limiter, breaker, order id
  std::chrono::nanoseconds reserve{};
  std::chrono::nanoseconds payment{};
  std::chrono::nanoseconds commit{};
  std::chrono::nanoseconds persist{};
  std::chrono::nanoseconds total{};
};

/// @brief How a purchase ended. `final_state` is `idle` when admission refused it.
struct purchase_result {
  std::int64_t order_id = 0;  ///< 0 when refused before an id was taken
  purchase_state final_state = purchase_state::idle;
  purchase_timings timings;
  /// The payment was taken but the order could not be committed: it went to
  /// the compensation path (`Payment::async_refund` when the policy has one,
  /// and the `on_compensation` hook). Never set on a succeeded purchase.
  bool compensated = false;
  /// A retry of a request whose first attempt took the units: `order_id`,
  /// `final_state` and the error tell what became of that first order; this
  /// call took, paid and committed nothing.
  bool replayed = false;
};

/// @brief What the Payment policy is asked to charge.
struct payment_request {
  std::int64_t order_id = 0;
  std::string_view sku{};
  std::int64_t quantity = 0;
  std::string_view traceparent{};
};

/// @brief What the Orders sink is asked to record. The views live until the sink completes.
struct order_record {
  std::int64_t order_id = 0;
  std::string_view sku{};
  std::int64_t quantity = 0;
  std::string_view user{};        ///< empty for an anonymous purchase
  std::string_view request_id{};  ///< empty when the request carried none
};

/// @brief Engine settings.
struct purchase_options {
  /// Reserve and payment must finish within it, unless a request brings its own.
  std::chrono::milliseconds deadline{800};
  /// How long the store holds reserved units: longer than any deadline and
  /// at most `max_hold`. The store gives the units back after it (through
  /// its reaper) if this process dies before settling them. It also bounds
  /// how long the engine retries a commit or a rollback that got no
  /// definite answer.
  std::chrono::milliseconds hold{30'000};
  /// The first pause between two attempts of a commit or a rollback that got
  /// no definite answer (a timeout, a lost connection); it doubles up to
  /// `settle_retry_max`, with jitter drawn from the order id.
  std::chrono::milliseconds settle_retry_initial{20};
  std::chrono::milliseconds settle_retry_max{1'000};
};

}  // namespace seckill
