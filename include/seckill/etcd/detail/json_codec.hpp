#pragma once
/// @file
/// @brief The JSON codec of etcd's v3 gateway (`/v3/...`): the results of the
///        KV, lease and watch calls parsed from the gateway's documents, and
///        the requests written as its JSON (base64 keys and values, int64
///        fields as decimal strings).
///
/// Pure functions over `nlohmann::json`; no I/O. Every parser validates what
/// it reads (types, base64, integer ranges) and reports `errc::protocol_error`
/// with a message naming the field and the value seen, never throws on bad
/// input. Thread-safety: stateless. Cost: one pass over the JSON document.

#include <seckill/error.hpp>
#include <seckill/etcd/detail/base64.hpp>
#include <seckill/etcd/detail/json_fields.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/types.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::etcd::detail {

/// The range result at `index` of a transaction's responses, or nullptr when
/// the server answered fewer operations or another kind there (bad peer data,
/// which callers report as `errc::protocol_error`).
inline const range_result* range_at(const txn_result& t, std::size_t index) noexcept {
  if (index >= t.responses.size()) return nullptr;
  return std::get_if<range_result>(&t.responses[index]);
}

/// Sets `r`'s message and returns `errc::protocol_error`.
template <class Result>
std::error_code fail(Result& r, std::string message) {
  r.error_message = std::move(message);
  return seckill::errc::protocol_error;
}

inline std::error_code parse_range(const json& doc, range_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  if (!parse_header(doc, r.header, err) || !parse_kvs(doc, "kvs", r.kvs, err) ||
      !read_bool(doc, "more", r.more, err) || !read_int(doc, "count", r.count, err)) {
    return fail(r, "range response: " + err);
  }
  return {};
}

inline std::error_code parse_put(const json& doc, put_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  const json* prev = nullptr;
  if (!parse_header(doc, r.header, err) || !sub_object(doc, "prev_kv", prev, err)) {
    return fail(r, "put response: " + err);
  }
  r.prev_kv.reset();
  if (prev != nullptr && !parse_kv(*prev, r.prev_kv.emplace(), err)) {
    return fail(r, "put response: " + err);
  }
  return {};
}

inline std::error_code parse_delete(const json& doc, delete_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  if (!parse_header(doc, r.header, err) || !read_int(doc, "deleted", r.deleted, err) ||
      !parse_kvs(doc, "prev_kvs", r.prev_kvs, err)) {
    return fail(r, "delete response: " + err);
  }
  return {};
}

inline std::error_code parse_txn(const json& doc, txn_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  const json* arr = nullptr;
  if (!parse_header(doc, r.header, err) || !read_bool(doc, "succeeded", r.succeeded, err) ||
      !sub_array(doc, "responses", arr, err)) {
    return fail(r, "txn response: " + err);
  }
  r.responses.clear();
  if (arr == nullptr) return {};
  for (const auto& op : *arr) {
    if (!op.is_object())
      return fail(r, "txn response: an op response is not an object: " + excerpt(op));
    const json* body = nullptr;
    std::error_code ec;
    if (!sub_object(op, "response_range", body, err)) return fail(r, "txn response: " + err);
    if (body != nullptr) {
      range_result rr;
      ec = parse_range(*body, rr);
      r.responses.emplace_back(std::move(rr));
    } else {
      if (!sub_object(op, "response_put", body, err)) return fail(r, "txn response: " + err);
      if (body != nullptr) {
        put_result pr;
        ec = parse_put(*body, pr);
        r.responses.emplace_back(std::move(pr));
      } else {
        if (!sub_object(op, "response_delete_range", body, err)) {
          return fail(r, "txn response: " + err);
        }
        if (body == nullptr) {
          return fail(r, "txn response: an op response of no known kind: " + excerpt(op));
        }
        delete_result dr;
        ec = parse_delete(*body, dr);
        r.responses.emplace_back(std::move(dr));
      }
    }
    if (ec) {
      std::visit([&](auto& x) { r.error_message = "txn response: " + x.error_message; },
                 r.responses.back());
      return ec;
    }
  }
  return {};
}

inline std::error_code parse_lease_grant(const json& doc, lease_grant_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  std::string grant_error;
  if (!parse_header(doc, r.header, err) || !read_int(doc, "ID", r.id, err) ||
      !read_int(doc, "TTL", r.ttl, err) || !read_string(doc, "error", grant_error, err)) {
    return fail(r, "lease grant response: " + err);
  }
  if (!grant_error.empty()) {
    r.error_message = grant_error;
    return seckill::errc::server_error;
  }
  if (r.id == 0) return fail(r, "lease grant response without a lease ID: " + excerpt(doc));
  return {};
}

/// The keepalive endpoint streams: the document is {"result": {...}} or {"error": {...}}.
inline std::error_code parse_lease_keepalive(const json& doc, lease_keepalive_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  const json* body = nullptr;
  if (!sub_object(doc, "result", body, err)) return fail(r, "lease keepalive response: " + err);
  if (body == nullptr) return fail(r, "lease keepalive response without a result: " + excerpt(doc));
  if (auto ec = check_error(*body, r.error_message)) return ec;
  if (!parse_header(*body, r.header, err) || !read_int(*body, "ID", r.id, err) ||
      !read_int(*body, "TTL", r.ttl, err)) {
    return fail(r, "lease keepalive response: " + err);
  }
  if (r.ttl <= 0) {
    r.error_message = "etcdserver: requested lease not found (keepalive of lease " +
                      std::to_string(r.id) + " answered TTL " + std::to_string(r.ttl) + ")";
    return errc::lease_not_found;
  }
  return {};
}

inline std::error_code parse_lease_ttl(const json& doc, lease_ttl_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  const json* keys = nullptr;
  if (!parse_header(doc, r.header, err) || !read_int(doc, "ID", r.id, err) ||
      !read_int(doc, "TTL", r.ttl, err) || !read_int(doc, "grantedTTL", r.granted_ttl, err) ||
      !sub_array(doc, "keys", keys, err)) {
    return fail(r, "lease time-to-live response: " + err);
  }
  r.keys.clear();
  if (keys != nullptr) {
    for (const auto& k : *keys) {
      std::string decoded;
      if (!k.is_string() || !base64_decode(k.get_ref<const std::string&>(), decoded)) {
        return fail(r, "lease time-to-live response: a key is not base64: " + excerpt(k));
      }
      r.keys.push_back(std::move(decoded));
    }
  }
  return {};
}

inline std::error_code parse_lease_revoke(const json& doc, lease_revoke_result& r) {
  if (auto ec = check_error(doc, r.error_message)) return ec;
  std::string err;
  if (!parse_header(doc, r.header, err)) return fail(r, "lease revoke response: " + err);
  return {};
}

/// One message of the watch stream: {"result": {...}} or {"error": {...}}.
inline std::error_code parse_watch_message(const json& doc, watch_message& m,
                                           std::string& message) {
  if (auto ec = check_error(doc, message)) return ec;
  std::string err;
  const json* body = nullptr;
  if (!sub_object(doc, "result", body, err) || body == nullptr) {
    message = "watch message without a result object: " + excerpt(doc);
    return seckill::errc::protocol_error;
  }
  const json* events = nullptr;
  if (!parse_header(*body, m.header, err) || !read_int(*body, "watch_id", m.watch_id, err) ||
      !read_bool(*body, "created", m.created, err) ||
      !read_bool(*body, "canceled", m.canceled, err) ||
      !read_int(*body, "compact_revision", m.compact_revision, err) ||
      !read_string(*body, "cancel_reason", m.cancel_reason, err) ||
      !sub_array(*body, "events", events, err)) {
    message = "watch message: " + err;
    return seckill::errc::protocol_error;
  }
  m.events.clear();
  if (events != nullptr) {
    m.events.reserve(events->size());
    for (const auto& e : *events) {
      if (!e.is_object()) {
        message = "watch event is not an object: " + excerpt(e);
        return seckill::errc::protocol_error;
      }
      auto& ev = m.events.emplace_back();
      std::string type;
      const json* kv = nullptr;
      const json* prev = nullptr;
      if (!read_string(e, "type", type, err) || !sub_object(e, "kv", kv, err) ||
          !sub_object(e, "prev_kv", prev, err)) {
        message = "watch event: " + err;
        return seckill::errc::protocol_error;
      }
      if (type.empty() || type == "PUT") {
        ev.type = event::kind::put;
      } else if (type == "DELETE") {
        ev.type = event::kind::del;
      } else {
        message = "watch event of unknown type '" + type + "'";
        return seckill::errc::protocol_error;
      }
      if (kv == nullptr) {
        message = "watch event without a kv: " + excerpt(e);
        return seckill::errc::protocol_error;
      }
      if (!parse_kv(*kv, ev.kv, err) ||
          (prev != nullptr && !parse_kv(*prev, ev.prev_kv.emplace(), err))) {
        message = "watch event: " + err;
        return seckill::errc::protocol_error;
      }
    }
  }
  return {};
}

// ------------------------------------------------------------ json writing

inline void put_int(json& j, const char* name, std::int64_t v) {
  if (v != 0) j[name] = std::to_string(v);
}

inline std::string range_end_of(const std::string& key, const std::string& range_end, bool prefix) {
  if (prefix) return prefix_end(key);
  return range_end;
}

inline json to_json(const range_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  const auto end = range_end_of(r.key, r.options.range_end, r.options.prefix);
  if (!end.empty()) j["range_end"] = base64_encode(end);
  put_int(j, "limit", r.options.limit);
  put_int(j, "revision", r.options.revision);
  if (r.options.keys_only) j["keys_only"] = true;
  if (r.options.count_only) j["count_only"] = true;
  if (r.options.serializable) j["serializable"] = true;
  static constexpr const char* orders[] = {"NONE", "ASCEND", "DESCEND"};
  static constexpr const char* targets[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
  if (r.options.order != sort_order::none) {
    j["sort_order"] = orders[static_cast<int>(r.options.order)];
    j["sort_target"] = targets[static_cast<int>(r.options.target)];
  }
  put_int(j, "min_create_revision", r.options.min_create_revision);
  put_int(j, "max_create_revision", r.options.max_create_revision);
  return j;
}

inline json to_json(const put_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  if (!r.options.ignore_value) j["value"] = base64_encode(r.value);
  put_int(j, "lease", r.options.lease);
  if (r.options.prev_kv) j["prev_kv"] = true;
  if (r.options.ignore_value) j["ignore_value"] = true;
  if (r.options.ignore_lease) j["ignore_lease"] = true;
  return j;
}

inline json to_json(const delete_request& r) {
  json j = json::object();
  j["key"] = base64_encode(r.key);
  const auto end = range_end_of(r.key, r.options.range_end, r.options.prefix);
  if (!end.empty()) j["range_end"] = base64_encode(end);
  if (r.options.prev_kv) j["prev_kv"] = true;
  return j;
}

inline json to_json(const compare& c) {
  static constexpr const char* targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static constexpr const char* results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json j = json::object();
  j["key"] = base64_encode(c.key);
  if (!c.range_end.empty()) j["range_end"] = base64_encode(c.range_end);
  j["target"] = targets[static_cast<int>(c.what)];
  j["result"] = results[static_cast<int>(c.op)];
  switch (c.what) {
    case compare::target::version:
      j["version"] = std::to_string(c.number);
      break;
    case compare::target::create:
      j["create_revision"] = std::to_string(c.number);
      break;
    case compare::target::mod:
      j["mod_revision"] = std::to_string(c.number);
      break;
    case compare::target::lease:
      j["lease"] = std::to_string(c.number);
      break;
    case compare::target::value:
      j["value"] = base64_encode(c.value);
      break;
  }
  return j;
}

inline json to_json(const request_op& op) {
  json j = json::object();
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, range_request>) j["request_range"] = to_json(r);
        if constexpr (std::is_same_v<T, put_request>) j["request_put"] = to_json(r);
        if constexpr (std::is_same_v<T, delete_request>) j["request_delete_range"] = to_json(r);
      },
      op);
  return j;
}

inline json to_json(const txn_request& t) {
  json j = json::object();
  json& c = j["compare"] = json::array();
  for (const auto& x : t.compares) c.push_back(to_json(x));
  json& s = j["success"] = json::array();
  for (const auto& x : t.success) s.push_back(to_json(x));
  json& f = j["failure"] = json::array();
  for (const auto& x : t.failure) f.push_back(to_json(x));
  return j;
}

}  // namespace seckill::etcd::detail
