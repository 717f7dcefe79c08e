#pragma once
// seckill_load's account of the orders the answers told it about, and the
// --verify verdict: what the answers say was sold against what the nodes'
// stock says was sold.

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace seckill_load {

/// What seckill_load reads from an answer body.
struct answer_fields {
  std::optional<std::int64_t> order_id;  ///< "order_id": a decimal string (or a number)
  std::string error;                     ///< "error", cut to 40 characters; "" when none
};

/// Reads an answer body; a body that is not a JSON object has neither field.
[[nodiscard]] inline answer_fields read_answer(std::string_view body) {
  answer_fields out;
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  if (const auto e = j.find("error"); e != j.end() && e->is_string()) {
    out.error = e->get<std::string>();
    if (out.error.size() > 40) out.error.resize(40);  // a label, not a message
  }
  const auto it = j.find("order_id");
  if (it == j.end()) return out;
  if (it->is_number_integer()) {
    out.order_id = it->get<std::int64_t>();
    return out;
  }
  if (!it->is_string()) return out;
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty() || s.size() > 19) return out;
  std::int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return out;
    if (v > (INT64_MAX - (c - '0')) / 10) return out;
    v = v * 10 + (c - '0');
  }
  out.order_id = v;
  return out;
}

/// One SKU's stock as GET /stock/{sku} tells it.
struct stock_level {
  std::int64_t available = 0;
  std::int64_t reserved = 0;
  std::int64_t sold = 0;
  bool known = false;  ///< false: the node answered 404 unknown_sku
};

/// One SKU's line of the --verify verdict.
struct sku_check {
  std::string sku;
  std::int64_t initial = 0;       ///< available + reserved at the start
  std::int64_t sold = 0;          ///< sold during the run (end minus start)
  std::int64_t answered = 0;      ///< units in distinct orders answered 200
  std::int64_t orders = 0;        ///< distinct orders answered 200
  std::int64_t unanswered = 0;    ///< units of requests that got no answer
  std::int64_t reserved_end = 0;  ///< still held at the end
  bool ok = true;
};

/// The --verify verdict.
struct verdict {
  bool ok = true;
  std::vector<sku_check> skus;
  std::vector<std::string> problems;  ///< one sentence each
};

/// @brief What the answers said about orders: for each (user, request_id)
///        the first order id answered, the units of distinct orders answered
///        200 per SKU, order ids answered for two different requests, and
///        replays answered with another order id than the first (idempotency
///        violations).
///
/// Thread-safety: none (the caller serialises). Cost: 16 bytes per
/// (user, request_id); a hash entry per distinct order id.
class ledger {
 public:
  ledger(std::size_t skus, std::int64_t quantity)
      : quantity_(quantity), units_(skus, 0), orders_(skus, 0), unanswered_(skus, 0) {}

  /// Registers the next (user, request_id); keys are 0, 1, 2, ...
  void add_key(std::uint32_t sku) { keys_.push_back({0, sku}); }
  [[nodiscard]] std::size_t keys() const noexcept { return keys_.size(); }

  /// An answer to a request of `key` (`replay`: a resending).
  void on_answer(std::uint64_t key, bool replay, unsigned status,
                 std::optional<std::int64_t> order_id) {
    auto& k = keys_.at(key);
    if (replay) ++replays_;
    if (!order_id) return;
    if (k.first_order == 0) {
      k.first_order = *order_id;
    } else if (k.first_order != *order_id) {
      ++idempotency_violations_;
    }
    const auto [it, fresh] = owner_.try_emplace(*order_id, key);
    if (!fresh && it->second != key) ++duplicate_order_ids_;
    if (status == 200 && sold_.insert(*order_id).second) {
      units_[k.sku] += quantity_;
      orders_[k.sku] += 1;
    }
  }

  /// A request of `key` that got no answer: it may or may not have sold.
  void on_no_answer(std::uint64_t key, bool replay) {
    if (replay) ++replays_;
    unanswered_[keys_.at(key).sku] += quantity_;
  }

  [[nodiscard]] std::uint64_t replays() const noexcept { return replays_; }
  [[nodiscard]] std::uint64_t idempotency_violations() const noexcept {
    return idempotency_violations_;
  }
  [[nodiscard]] std::uint64_t duplicate_order_ids() const noexcept { return duplicate_order_ids_; }
  [[nodiscard]] std::int64_t units(std::size_t sku) const { return units_.at(sku); }
  [[nodiscard]] std::int64_t orders(std::size_t sku) const { return orders_.at(sku); }
  [[nodiscard]] std::int64_t unanswered(std::size_t sku) const { return unanswered_.at(sku); }

  /// Checks the answers against the stock before and after the run: per
  /// SKU, the units sold during the run equal the units of distinct orders
  /// answered 200 (at most that plus the units of unanswered requests, when
  /// some got no answer) and do not exceed the stock at the start; no order
  /// id was answered to two requests; no replay got another order id.
  [[nodiscard]] verdict check(const std::vector<std::string>& names,
                              const std::vector<stock_level>& before,
                              const std::vector<stock_level>& after) const {
    verdict v;
    for (std::size_t i = 0; i < names.size(); ++i) {
      sku_check c;
      c.sku = names[i];
      c.initial = before.at(i).available + before.at(i).reserved;
      c.sold = after.at(i).sold - before.at(i).sold;
      c.answered = units_.at(i);
      c.orders = orders_.at(i);
      c.unanswered = unanswered_.at(i);
      c.reserved_end = after.at(i).reserved;
      if (!after.at(i).known && c.answered > 0) {
        c.ok = false;
        v.problems.push_back(
            fmt::format("{}: {} units answered as sold, but the node does not know the SKU", c.sku,
                        c.answered));
      }
      if (c.unanswered == 0 && c.sold != c.answered) {
        c.ok = false;
        v.problems.push_back(fmt::format("{}: sold {} != {} units in {} orders answered 200", c.sku,
                                         c.sold, c.answered, c.orders));
      } else if (c.unanswered > 0 && (c.sold < c.answered || c.sold > c.answered + c.unanswered)) {
        c.ok = false;
        v.problems.push_back(fmt::format(
            "{}: sold {} is outside [{}, {}] (units answered 200, plus {} units never answered)",
            c.sku, c.sold, c.answered, c.answered + c.unanswered, c.unanswered));
      }
      if (c.sold > c.initial) {
        c.ok = false;
        v.problems.push_back(
            fmt::format("{}: oversold: sold {} > {} at the start", c.sku, c.sold, c.initial));
      }
      if (after.at(i).available < 0) {
        c.ok = false;
        v.problems.push_back(
            fmt::format("{}: negative stock: available {}", c.sku, after.at(i).available));
      }
      v.ok = v.ok && c.ok;
      v.skus.push_back(std::move(c));
    }
    if (duplicate_order_ids_ > 0) {
      v.ok = false;
      v.problems.push_back(fmt::format("{} order ids were answered to two different requests",
                                       duplicate_order_ids_));
    }
    if (idempotency_violations_ > 0) {
      v.ok = false;
      v.problems.push_back(
          fmt::format("{} resent requests were answered with another order id than the first",
                      idempotency_violations_));
    }
    return v;
  }

 private:
  struct key_state {
    std::int64_t first_order;
    std::uint32_t sku;
  };
  std::int64_t quantity_;
  std::vector<key_state> keys_;
  std::unordered_map<std::int64_t, std::uint64_t> owner_;  // order id -> key
  std::unordered_set<std::int64_t> sold_;                  // order ids answered 200
  std::vector<std::int64_t> units_, orders_, unanswered_;
  std::uint64_t replays_ = 0;
  std::uint64_t idempotency_violations_ = 0;
  std::uint64_t duplicate_order_ids_ = 0;
};

}  // namespace seckill_load
