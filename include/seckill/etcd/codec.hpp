#pragma once
/// @file
/// @brief The JSON codec of etcd's v3 gateway (`/v3/...`): the request and
///        result types of the KV, lease and watch APIs, base64 for keys and
///        values, int64 fields as decimal strings, and the mapping of the
///        gateway's errors (gRPC status codes) to `seckill::errc`.
///
/// Pure functions over `nlohmann::json`; no I/O. Every parser validates what
/// it reads (types, base64, integer ranges) and reports `errc::protocol_error`
/// with a message naming the field and the value seen, never throws on bad
/// input. Thread-safety: stateless. Cost: one pass over the JSON document.

#include <seckill/error.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace seckill::etcd {

/// @brief The header etcd puts on every response.
struct response_header {
  std::uint64_t cluster_id = 0;
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;  ///< the store's revision when the request was served
  std::int64_t raft_term = 0;
};

/// @brief A key and its metadata, keys and values already base64-decoded.
struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;  ///< 0: the key does not exist
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
  friend bool operator==(const key_value&, const key_value&) = default;
};

/// @brief What every call completes with besides its error code: the response
///        header, and on failure the server's own message (or the transport's).
struct response {
  response_header header;
  std::string error_message;  ///< empty on success
};

// ---------------------------------------------------------------- requests

enum class sort_order : std::uint8_t { none, ascend, descend };
enum class sort_target : std::uint8_t { key, version, create, mod, value };

/// @brief Options of a range (get) request.
struct range_options {
  std::string range_end{};   ///< empty: the single key; see prefix_end()
  bool prefix = false;       ///< range over every key starting with `key`
  std::int64_t limit = 0;    ///< 0: no limit
  std::int64_t revision = 0; ///< 0: the newest
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;  ///< served by the member alone (not linearizable)
  sort_order order = sort_order::none;
  sort_target target = sort_target::key;
  std::int64_t min_create_revision = 0;
  std::int64_t max_create_revision = 0;
};

struct put_options {
  std::int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

struct delete_options {
  std::string range_end{};
  bool prefix = false;
  bool prev_kv = false;
};

struct range_request {
  std::string key;
  range_options options;
};
struct put_request {
  std::string key;
  std::string value;
  put_options options;
};
struct delete_request {
  std::string key;
  delete_options options;
};
/// @brief One operation of a transaction branch.
using request_op = std::variant<range_request, put_request, delete_request>;

/// @brief A transaction guard: compares one field of a key (or range) with a value.
struct compare {
  enum class target : std::uint8_t { version, create, mod, value, lease };
  enum class result : std::uint8_t { equal, greater, less, not_equal };
  target what = target::version;
  result op = result::equal;
  std::string key;
  std::string range_end{};
  std::int64_t number = 0;  ///< for version, create, mod and lease
  std::string value;        ///< for value

  static compare version(std::string key, result r, std::int64_t v) {
    return {target::version, r, std::move(key), {}, v, {}};
  }
  static compare create_revision(std::string key, result r, std::int64_t v) {
    return {target::create, r, std::move(key), {}, v, {}};
  }
  static compare mod_revision(std::string key, result r, std::int64_t v) {
    return {target::mod, r, std::move(key), {}, v, {}};
  }
  static compare lease_id(std::string key, result r, std::int64_t v) {
    return {target::lease, r, std::move(key), {}, v, {}};
  }
  static compare value_of(std::string key, result r, std::string v) {
    return {target::value, r, std::move(key), {}, 0, std::move(v)};
  }
  /// The key does not exist (its create revision is 0).
  static compare missing(std::string key) { return create_revision(std::move(key), result::equal, 0); }
};

/// @brief A transaction: if every compare holds, `success` runs, else `failure`.
struct txn_request {
  std::vector<compare> compares;
  std::vector<request_op> success;
  std::vector<request_op> failure;
};

// ----------------------------------------------------------------- results

struct range_result : response {
  std::vector<key_value> kvs;
  bool more = false;
  std::int64_t count = 0;
};
struct put_result : response {
  std::optional<key_value> prev_kv;
};
struct delete_result : response {
  std::int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
};
using op_result = std::variant<range_result, put_result, delete_result>;
struct txn_result : response {
  bool succeeded = false;
  std::vector<op_result> responses;
};
struct lease_grant_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds
};
struct lease_keepalive_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds; the lease is gone when the server answers 0
};
struct lease_ttl_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = -1;  ///< seconds left; -1: the lease does not exist
  std::int64_t granted_ttl = 0;
  std::vector<std::string> keys;
};
struct lease_revoke_result : response {};

/// @brief One change seen by a watch.
struct event {
  enum class kind : std::uint8_t { put, del };
  kind type = kind::put;
  key_value kv;
  std::optional<key_value> prev_kv;
};

/// @brief One message of the gateway's watch stream (after unwrapping "result").
struct watch_message {
  response_header header;
  std::int64_t watch_id = 0;
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<event> events;
};

/// @brief The first key after every key that starts with `key` (etcd's prefix
///        range_end): the last byte below 0xff incremented, the rest dropped;
///        "\0" (every key) when `key` is empty or all 0xff.
inline std::string prefix_end(std::string_view key) {
  std::string end(key);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

namespace detail {

// ------------------------------------------------------------------ base64

inline std::string base64_encode(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto n = (static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<unsigned>(static_cast<unsigned char>(in[i + 2]));
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (const auto rest = in.size() - i; rest > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
    if (rest == 2) n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// Decodes standard base64 (padding required and unused bits zero, as
/// etcd's gateway writes it); false on anything else.
inline bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = in[i + static_cast<std::size_t>(j)];
      if (c == '=') {
        if (i + 4 != in.size() || j < 2) return false;
        v[j] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        v[j] = value(c);
        if (v[j] < 0) return false;
      }
    }
    const unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                       (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    // the bits after the last whole byte must be zero (RFC 4648 3.5): each
    // byte string then has exactly one encoding
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) return false;
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return true;
}

// ------------------------------------------------------------- json reading

using json = nlohmann::json;

/// A parse failure: the code (protocol_error) plus what was wrong.
struct parse_error {
  std::string message;
};

inline std::string excerpt(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

/// An int64 field written as a decimal string (or, leniently, a JSON integer);
/// absent means 0, as in proto3.
template <class Int>
bool read_int(const json& obj, const char* name, Int& out, std::string& err) {
  out = 0;
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_number_integer()) {
    if constexpr (std::is_unsigned_v<Int>) {
      if (it->is_number_unsigned()) {
        out = it->template get<Int>();
        return true;
      }
      const auto v = it->template get<std::int64_t>();
      if (v < 0) {
        err = std::string("field '") + name + "' is negative: " + excerpt(*it);
        return false;
      }
      out = static_cast<Int>(v);
      return true;
    } else {
      if (it->is_number_unsigned() &&
          it->template get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        err = std::string("field '") + name + "' out of int64 range: " + excerpt(*it);
        return false;
      }
      out = it->template get<Int>();
      return true;
    }
  }
  if (it->is_string()) {
    const auto& s = it->template get_ref<const std::string&>();
    const auto* first = s.data();
    const auto* last = s.data() + s.size();
    const auto [p, ec] = std::from_chars(first, last, out);
    if (ec == std::errc{} && p == last && !s.empty()) return true;
  }
  err = std::string("field '") + name + "' is not an integer: " + excerpt(*it);
  out = 0;
  return false;
}

inline bool read_bool(const json& obj, const char* name, bool& out, std::string& err) {
  out = false;
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_boolean()) {
    out = it->get<bool>();
    return true;
  }
  err = std::string("field '") + name + "' is not a boolean: " + excerpt(*it);
  return false;
}

inline bool read_bytes(const json& obj, const char* name, std::string& out, std::string& err) {
  out.clear();
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string() && base64_decode(it->get_ref<const std::string&>(), out)) return true;
  err = std::string("field '") + name + "' is not base64: " + excerpt(*it);
  return false;
}

inline bool read_string(const json& obj, const char* name, std::string& out, std::string& err) {
  out.clear();
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  err = std::string("field '") + name + "' is not a string: " + excerpt(*it);
  return false;
}

/// An optional sub-object: null when absent; false when present but not an object.
inline bool sub_object(const json& obj, const char* name, const json*& out, std::string& err) {
  out = nullptr;
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_object()) {
    err = std::string("field '") + name + "' is not an object: " + excerpt(*it);
    return false;
  }
  out = &*it;
  return true;
}

inline bool sub_array(const json& obj, const char* name, const json*& out, std::string& err) {
  out = nullptr;
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_array()) {
    err = std::string("field '") + name + "' is not an array: " + excerpt(*it);
    return false;
  }
  out = &*it;
  return true;
}

inline bool parse_header(const json& obj, response_header& h, std::string& err) {
  const json* hj = nullptr;
  if (!sub_object(obj, "header", hj, err)) return false;
  if (hj == nullptr) {
    h = {};
    return true;
  }
  return read_int(*hj, "cluster_id", h.cluster_id, err) &&
         read_int(*hj, "member_id", h.member_id, err) &&
         read_int(*hj, "revision", h.revision, err) && read_int(*hj, "raft_term", h.raft_term, err);
}

inline bool parse_kv(const json& j, key_value& kv, std::string& err) {
  if (!j.is_object()) {
    err = "key-value is not an object: " + excerpt(j);
    return false;
  }
  return read_bytes(j, "key", kv.key, err) && read_bytes(j, "value", kv.value, err) &&
         read_int(j, "create_revision", kv.create_revision, err) &&
         read_int(j, "mod_revision", kv.mod_revision, err) &&
         read_int(j, "version", kv.version, err) && read_int(j, "lease", kv.lease, err);
}

inline bool parse_kvs(const json& obj, const char* name, std::vector<key_value>& out,
                      std::string& err) {
  out.clear();
  const json* arr = nullptr;
  if (!sub_array(obj, name, arr, err)) return false;
  if (arr == nullptr) return true;
  out.reserve(arr->size());
  for (const auto& e : *arr) {
    if (!parse_kv(e, out.emplace_back(), err)) return false;
  }
  return true;
}

/// Maps a gRPC status code and message (as the gateway reports them) to errc.
inline errc map_grpc_status(std::int64_t code, std::string_view message) {
  if (message.find("no leader") != std::string_view::npos) return errc::no_leader;
  if (message.find("compacted") != std::string_view::npos) return errc::compacted;
  if (message.find("lease not found") != std::string_view::npos) return errc::lease_not_found;
  switch (code) {
    case 1: return errc::operation_aborted;  // Canceled
    case 3: return errc::invalid_argument;   // InvalidArgument
    case 4: return errc::timed_out;          // DeadlineExceeded
    case 5: return errc::lease_not_found;    // NotFound: etcd's only one is a lease
    case 7:                                  // PermissionDenied
    case 16: return errc::auth_failed;       // Unauthenticated
    case 11: return errc::invalid_argument;  // OutOfRange: future revision
    case 14: return errc::not_connected;     // Unavailable
    default: return errc::server_error;
  }
}

/// Checks a response document for the gateway's error shapes:
///   {"error": "...", "code": N, "message": "..."}          (unary calls)
///   {"error": {"grpc_code": N, "message": "..."}}          (streams)
/// Returns no error when the document is a success.
inline std::error_code check_error(const json& doc, std::string& message) {
  if (!doc.is_object()) {
    message = "etcd response is not a JSON object: " + excerpt(doc);
    return errc::protocol_error;
  }
  const auto it = doc.find("error");
  if (it == doc.end() || it->is_null()) return {};
  std::int64_t code = 2;
  std::string err;
  if (it->is_object()) {
    if (!read_int(*it, "grpc_code", code, err)) code = 2;
    read_string(*it, "message", message, err);
  } else {
    if (!read_int(doc, "code", code, err)) code = 2;
    if (!read_string(doc, "message", message, err) || message.empty()) {
      if (it->is_string()) message = it->get<std::string>();
    }
  }
  if (message.empty()) message = "etcd error " + excerpt(*it);
  return map_grpc_status(code, message);
}

template <class Result>
std::error_code fail(Result& r, std::string message) {
  r.error_message = std::move(message);
  return errc::protocol_error;
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
    if (!op.is_object()) return fail(r, "txn response: an op response is not an object: " + excerpt(op));
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
    return errc::server_error;
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
    return errc::protocol_error;
  }
  const json* events = nullptr;
  if (!parse_header(*body, m.header, err) || !read_int(*body, "watch_id", m.watch_id, err) ||
      !read_bool(*body, "created", m.created, err) ||
      !read_bool(*body, "canceled", m.canceled, err) ||
      !read_int(*body, "compact_revision", m.compact_revision, err) ||
      !read_string(*body, "cancel_reason", m.cancel_reason, err) ||
      !sub_array(*body, "events", events, err)) {
    message = "watch message: " + err;
    return errc::protocol_error;
  }
  m.events.clear();
  if (events != nullptr) {
    m.events.reserve(events->size());
    for (const auto& e : *events) {
      if (!e.is_object()) {
        message = "watch event is not an object: " + excerpt(e);
        return errc::protocol_error;
      }
      auto& ev = m.events.emplace_back();
      std::string type;
      const json* kv = nullptr;
      const json* prev = nullptr;
      if (!read_string(e, "type", type, err) || !sub_object(e, "kv", kv, err) ||
          !sub_object(e, "prev_kv", prev, err)) {
        message = "watch event: " + err;
        return errc::protocol_error;
      }
      if (type.empty() || type == "PUT") {
        ev.type = event::kind::put;
      } else if (type == "DELETE") {
        ev.type = event::kind::del;
      } else {
        message = "watch event of unknown type '" + type + "'";
        return errc::protocol_error;
      }
      if (kv == nullptr) {
        message = "watch event without a kv: " + excerpt(e);
        return errc::protocol_error;
      }
      if (!parse_kv(*kv, ev.kv, err) || (prev != nullptr && !parse_kv(*prev, ev.prev_kv.emplace(), err))) {
        message = "watch event: " + err;
        return errc::protocol_error;
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
    case compare::target::version: j["version"] = std::to_string(c.number); break;
    case compare::target::create: j["create_revision"] = std::to_string(c.number); break;
    case compare::target::mod: j["mod_revision"] = std::to_string(c.number); break;
    case compare::target::lease: j["lease"] = std::to_string(c.number); break;
    case compare::target::value: j["value"] = base64_encode(c.value); break;
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

}  // namespace detail
}  // namespace seckill::etcd
