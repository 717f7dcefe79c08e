#pragma once
// The service's HTTP API without the network: decoding request bodies into
// what the engine and the store take, and mapping how a purchase ended to
// an HTTP status and a JSON body. Pure functions, tested and fuzzed alone.
//
//   POST /purchase        {"sku", "quantity" (1), "user", "request_id" (optional)}
//   PUT  /admin/stock/S   {"stock", "per_user" (optional)}, Authorization: Bearer T
//   GET  /stock/S, /orders/ID[?sku=S], /metrics, /health, /ready

#include <seckill/error.hpp>
#include <seckill/purchase/request.hpp>
#include <seckill/store/store.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill_server {

/// The most units one purchase may ask for.
inline constexpr std::int64_t max_purchase_quantity = 1'000;

/// A decoded POST /purchase body.
struct purchase_input {
  std::string sku;
  std::int64_t quantity = 1;
  std::string user;
  std::string request_id;  ///< empty: the purchase is not idempotent
};

/// A decoded PUT /admin/stock/{sku} body.
struct stock_input {
  std::int64_t stock = 0;
  std::optional<std::int64_t> per_user;  ///< unset: the node's --per-user
};

/// A SKU, a user or a request id: 1 to 64 characters of [A-Za-z0-9._:@-]
/// (they become parts of store keys, so nothing else is let through).
[[nodiscard]] inline bool valid_name(std::string_view s) noexcept {
  return seckill::valid_buyer_key(s);
}

namespace detail {

inline std::string shown(std::string_view s) {
  // Shown in a message: at most 64 characters, JSON-escaped by the caller's dump.
  return "'" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'");
}

// Reads `key` of `j` as a name; empty message on success.
inline std::string read_name(const nlohmann::json& j, const char* key, bool required,
                             std::string& out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return required ? std::string("missing \"") + key + "\"" : "";
  if (!it->is_string()) return std::string("\"") + key + "\" must be a string";
  const auto& s = it->get_ref<const std::string&>();
  if (!valid_name(s))
    return std::string("\"") + key + "\" " + shown(s) +
           " must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -";
  out = s;
  return {};
}

inline std::string read_integer(const nlohmann::json& j, const char* key, std::int64_t lo,
                                std::int64_t hi, std::optional<std::int64_t>& out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_number_integer())
    return std::string("\"") + key + "\" must be an integer in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]";
  const auto range_error = [&] {
    return std::string("\"") + key + "\" " + it->dump() + " is not in [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]";
  };
  std::int64_t v = 0;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) return range_error();
    v = static_cast<std::int64_t>(u);
  } else {
    v = it->get<std::int64_t>();
  }
  if (v < lo || v > hi) return range_error();
  out = v;
  return {};
}

inline std::string parse_object(std::string_view body, nlohmann::json& j) {
  j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return "the body is not valid JSON";
  if (!j.is_object()) return "the body must be a JSON object";
  return {};
}

}  // namespace detail

/// Decodes a POST /purchase body; returns what is wrong with it (empty when
/// nothing is): not JSON, not an object, a missing or malformed field.
/// Unknown fields are ignored.
[[nodiscard]] inline std::string decode_purchase(std::string_view body, purchase_input& out) {
  nlohmann::json j;
  if (auto why = detail::parse_object(body, j); !why.empty()) return why;
  purchase_input in;
  if (auto why = detail::read_name(j, "sku", true, in.sku); !why.empty()) return why;
  if (auto why = detail::read_name(j, "user", true, in.user); !why.empty()) return why;
  if (auto why = detail::read_name(j, "request_id", false, in.request_id); !why.empty()) return why;
  std::optional<std::int64_t> q;
  if (auto why = detail::read_integer(j, "quantity", 1, max_purchase_quantity, q); !why.empty())
    return why;
  if (q) in.quantity = *q;
  out = std::move(in);
  return {};
}

/// Decodes a PUT /admin/stock/{sku} body; as decode_purchase.
[[nodiscard]] inline std::string decode_stock(std::string_view body, stock_input& out) {
  nlohmann::json j;
  if (auto why = detail::parse_object(body, j); !why.empty()) return why;
  std::optional<std::int64_t> stock, per_user;
  if (auto why = detail::read_integer(j, "stock", 0, seckill::max_units, stock); !why.empty())
    return why;
  if (!stock) return "missing \"stock\"";
  if (auto why = detail::read_integer(j, "per_user", 0, seckill::max_units, per_user); !why.empty())
    return why;
  out = {*stock, per_user};
  return {};
}

/// "Bearer <token>" against the configured token, in time independent of
/// where they differ. An empty configured token matches nothing.
[[nodiscard]] inline bool bearer_matches(std::string_view header, std::string_view token) noexcept {
  constexpr std::string_view scheme = "Bearer ";
  if (token.empty() || header.size() != scheme.size() + token.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    diff |= static_cast<unsigned char>(header[i] ^ scheme[i]);
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(header[scheme.size() + i] ^ token[i]);
  return diff == 0;
}

/// A decimal order id in [1, 2^63); nullopt for anything else.
[[nodiscard]] inline std::optional<std::int64_t> parse_order_id(std::string_view s) noexcept {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (INT64_MAX - (c - '0')) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v <= 0) return std::nullopt;
  return v;
}

/// An HTTP answer before it is a response: status, JSON body, Retry-After.
struct reply {
  unsigned status = 200;
  nlohmann::ordered_json body;
  std::optional<std::int64_t> retry_after;  ///< seconds
};

inline reply error_reply(unsigned status, std::string_view error, std::string message = {}) {
  reply r{status, {{"error", error}}, std::nullopt};
  if (!message.empty()) r.body["message"] = std::move(message);
  return r;
}

/// Whether `ec` says "not now" rather than "no": unreachable, or no answer in time.
[[nodiscard]] inline bool transient(std::error_code ec) noexcept {
  return ec == seckill::condition::unavailable || ec == seckill::condition::timed_out;
}

/// A store error while reading or stocking: 503 store_unavailable (Retry-After
/// 1) when it may pass, else 500.
inline reply store_error_reply(std::error_code ec) {
  if (transient(ec)) {
    auto r = error_reply(503, "store_unavailable");
    r.retry_after = 1;
    return r;
  }
  return error_reply(500, "internal", ec.message());
}

// clang-format off
/// How a purchase that the engine finished is told to the buyer:
///
/// | engine outcome | status | error |
/// |---|---|---|
/// | succeeded (also a replay of a committed order) | 200 | - |
/// | invalid_argument | 400 | invalid_argument |
/// | unknown_sku | 404 | unknown_sku |
/// | sold_out | 409 | sold_out |
/// | sale_not_started / sale_ended | 409 | sale_not_started / sale_ended |
/// | purchase_in_progress (a retry while the first is held) | 409 | in_progress, Retry-After |
/// | order_rolled_back on a replay | 409 | rolled_back |
/// | rate_limited | 429 | rate_limited, Retry-After 1 |
/// | purchase_limited | 429 | user_limit, Retry-After: the hold |
/// | payment failed (rolled back) | 402 | payment_failed |
/// | circuit_open | 503 | circuit_open, Retry-After 1 |
/// | read_only | 503 | read_only, Retry-After 1 |
/// | store unreachable or silent on reserve | 503 | store_unavailable, Retry-After 1 |
/// | another transient refusal before the reserve (the id source) | 503 | unavailable, Retry-After 1 |
/// | deadline passed (timed_out state) | 504 | timed_out |
/// | paid but not committed (compensated) | 500 | not_committed |
/// | anything else | 500 | internal |
///
/// Whenever an order id was taken the body names it ("order_id", a decimal
/// string: JSON numbers lose precision above 2^53).
// clang-format on
[[nodiscard]] inline reply purchase_reply(std::error_code ec, const seckill::purchase_result& r,
                                          std::chrono::milliseconds hold) {
  using seckill::errc;
  using seckill::purchase_state;
  reply out;
  const auto with_order = [&](reply x) {
    if (r.order_id > 0) x.body["order_id"] = std::to_string(r.order_id);
    if (r.replayed) x.body["replayed"] = true;
    return x;
  };
  if (!ec && r.final_state == purchase_state::succeeded) {
    out.body = {{"order_id", std::to_string(r.order_id)}, {"state", "succeeded"}};
    if (r.replayed) out.body["replayed"] = true;
    return out;
  }
  const auto again = [](reply x, std::int64_t seconds) {
    x.retry_after = seconds;
    return x;
  };
  const auto hold_seconds = std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(hold + std::chrono::milliseconds(999))
             .count());
  if (ec == errc::invalid_argument)
    return error_reply(400, "invalid_argument", "refused by the engine");
  if (ec == errc::unknown_sku) return error_reply(404, "unknown_sku");
  if (ec == errc::sold_out) return error_reply(409, "sold_out");
  if (ec == errc::sale_not_started) return error_reply(409, "sale_not_started");
  if (ec == errc::sale_ended) return error_reply(409, "sale_ended");
  if (ec == errc::purchase_in_progress)
    return with_order(again(error_reply(409, "in_progress"), 1));
  if (ec == errc::order_rolled_back && r.replayed)
    return with_order(error_reply(409, "rolled_back"));
  if (ec == errc::rate_limited) return again(error_reply(429, "rate_limited"), 1);
  if (ec == errc::purchase_limited) return again(error_reply(429, "user_limit"), hold_seconds);
  if (ec == errc::circuit_open) return again(error_reply(503, "circuit_open"), 1);
  if (ec == errc::read_only) return again(error_reply(503, "read_only"), 1);
  if (r.compensated) {
    auto x = with_order(error_reply(500, "not_committed",
                                    "paid, but the store did not commit the order: refunded"));
    x.body["compensated"] = true;
    return x;
  }
  if (r.final_state == purchase_state::timed_out) return with_order(error_reply(504, "timed_out"));
  if (r.final_state == purchase_state::rolled_back)
    return with_order(error_reply(402, "payment_failed"));
  if (transient(ec) && r.final_state == purchase_state::failed)  // the store, at the reserve
    return with_order(again(error_reply(503, "store_unavailable"), 1));
  if (transient(ec))
    return again(error_reply(503, "unavailable", ec.message()), 1);  // e.g. the ids
  return with_order(error_reply(500, "internal", ec ? ec.message() : "the purchase failed"));
}

/// The metrics label of a request target: a fixed set, never the raw path.
[[nodiscard]] inline std::string_view route_of(std::string_view target) noexcept {
  if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (target == "/purchase") return "purchase";
  if (target.starts_with("/admin/stock/")) return "admin_stock";
  if (target.starts_with("/stock/")) return "stock";
  if (target.starts_with("/orders/")) return "order";
  if (target == "/metrics") return "metrics";
  if (target == "/health") return "health";
  if (target == "/ready") return "ready";
  return "other";
}

}  // namespace seckill_server
