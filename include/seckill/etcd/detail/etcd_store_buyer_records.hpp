#pragma once
/// @file
/// @brief The buyer records `etcd_store` keeps in etcd as JSON: a SKU's
///        policy, a user's units of a SKU, a request binding and a recorded
///        (committed) order, and the 19-digit order id of the recorded
///        orders' keys.

#include <seckill/etcd/client.hpp>
#include <seckill/store/store.hpp>

#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

namespace seckill::etcd::detail {

/// An order id >= 0 as 19 digits: the keys of recorded orders sort as their ids.
inline std::string padded19(std::int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%019" PRId64, v);
  return buf;
}

/// The order id at the end of a recorded order's key (after the last '/'), or 0.
inline std::int64_t recorded_id(std::string_view key) noexcept {
  const auto slash = key.rfind('/');
  if (slash == std::string_view::npos) return 0;
  std::int64_t id = 0;
  const char* first = key.data() + slash + 1;
  const char* last = key.data() + key.size();
  const auto [ptr, ec] = std::from_chars(first, last, id);
  return ec == std::errc() && ptr == last && last - first == 19 && id > 0 ? id : 0;
}

namespace buyer_json {

inline bool integer(const json& j, const char* name, std::int64_t& out) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return false;
  out = it->get<std::int64_t>();
  return true;
}

/// An optional buyer key: absent is empty; present, it must be a valid key.
inline bool key(const json& j, const char* name, std::string& out) {
  const auto it = j.find(name);
  if (it == j.end()) return true;
  if (!it->is_string() || !valid_buyer_key(it->get_ref<const std::string&>())) return false;
  out = it->get<std::string>();
  return true;
}

inline std::string unparsable(const char* record, const std::string& text) {
  return std::string("etcd_store: ") + record + " does not parse: '" + text.substr(0, 80) + "'";
}

}  // namespace buyer_json

/// A SKU's policy; the window's instants in ms since the Unix epoch.
inline std::string encode_policy(const sku_policy& p) {
  return json{{"per_user_limit", p.per_user_limit},
              {"sale_start", p.sale_start.time_since_epoch().count()},
              {"sale_end", p.sale_end.time_since_epoch().count()}}
      .dump();
}

/// A record without the window's fields (written before they existed) has no window.
inline bool decode_policy(const std::string& text, sku_policy& p, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  bool ok = !j.is_discarded() && j.is_object() &&
            buyer_json::integer(j, "per_user_limit", p.per_user_limit);
  for (auto [name, field] :
       {std::pair{"sale_start", &p.sale_start}, std::pair{"sale_end", &p.sale_end}}) {
    std::int64_t ms = 0;
    if (ok && j.contains(name)) {
      ok = buyer_json::integer(j, name, ms);
      *field = sale_time{std::chrono::milliseconds{ms}};
    }
  }
  ok = ok && sku_policy_problem(p).empty();
  if (!ok) message = buyer_json::unparsable("a policy record", text);
  return ok;
}

/// A user's units of a SKU: held plus committed.
inline std::string encode_units(std::int64_t units) { return json{{"units", units}}.dump(); }

inline bool decode_units(const std::string& text, std::int64_t& units, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  const bool ok = !j.is_discarded() && j.is_object() && buyer_json::integer(j, "units", units) &&
                  units >= 0 && units <= max_units;
  if (!ok) message = buyer_json::unparsable("a user's units record", text);
  return ok;
}

/// A (user, request id) binding: the order it is bound to.
inline std::string encode_binding(std::int64_t order_id) {
  return json{{"order", order_id}}.dump();
}

inline bool decode_binding(const std::string& text, std::int64_t& order_id, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  const bool ok = !j.is_discarded() && j.is_object() && buyer_json::integer(j, "order", order_id);
  if (!ok) message = buyer_json::unparsable("a request binding", text);
  return ok;
}

/// A recorded order (its id is in the key).
inline std::string encode_entry(const order_entry& e) {
  json j = {{"qty", e.quantity}};
  if (!e.user.empty()) j["user"] = e.user;
  if (!e.request_id.empty()) j["request"] = e.request_id;
  return j.dump();
}

inline bool decode_entry(const std::string& text, order_entry& e, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  const bool ok = !j.is_discarded() && j.is_object() && buyer_json::integer(j, "qty", e.quantity) &&
                  buyer_json::key(j, "user", e.user) && buyer_json::key(j, "request", e.request_id);
  if (!ok) message = buyer_json::unparsable("a recorded order", text);
  return ok;
}

}  // namespace seckill::etcd::detail
