#pragma once
/// @file
/// @brief Reading the fields of etcd's gateway JSON: int64 fields written as
///        decimal strings, booleans, base64 bytes, sub-objects and arrays,
///        the response header and key-values; and the gateway's error
///        documents (gRPC status codes) mapped to `seckill::errc`.
///
/// Every reader validates what it reads and reports a message naming the
/// field and the value seen; none throws on bad input. Stateless.

#include <seckill/error.hpp>
#include <seckill/etcd/detail/base64.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/types.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace seckill::etcd::detail {

using json = nlohmann::json;

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

/// Maps a gRPC status code and message (as the gateway reports them) to a
/// code of etcd's own (`etcd::errc`) or a shared one (`seckill::errc`).
inline std::error_code map_grpc_status(std::int64_t code, std::string_view message) {
  if (message.find("no leader") != std::string_view::npos) return errc::no_leader;
  if (message.find("compacted") != std::string_view::npos) return errc::compacted;
  if (message.find("lease not found") != std::string_view::npos) return errc::lease_not_found;
  // etcd's auth errors (auth enabled): a role without the key, no or a bad
  // login, a token etcd no longer knows ("invalid auth token", code 16)
  if (message.find("etcdserver: permission denied") != std::string_view::npos)
    return seckill::errc::permission_denied;
  if (message.find("etcdserver: user name is empty") != std::string_view::npos ||
      message.find("etcdserver: authentication failed") != std::string_view::npos)
    return seckill::errc::auth_failed;
  switch (code) {
    case 1:
      return seckill::errc::operation_aborted;  // Canceled
    case 3:
      return seckill::errc::invalid_argument;  // InvalidArgument
    case 4:
      return seckill::errc::timed_out;  // DeadlineExceeded
    case 5:
      return errc::lease_not_found;  // NotFound: etcd's only one is a lease
    case 7:
      return seckill::errc::permission_denied;  // PermissionDenied
    case 16:
      return seckill::errc::auth_failed;  // Unauthenticated
    case 11:
      return seckill::errc::invalid_argument;  // OutOfRange: future revision
    case 14:
      return seckill::errc::not_connected;  // Unavailable
    default:
      return seckill::errc::server_error;
  }
}

/// Checks a response document for the gateway's error shapes:
///   {"error": "...", "code": N, "message": "..."}          (unary calls)
///   {"error": {"grpc_code": N, "message": "..."}}          (streams)
/// Returns no error when the document is a success.
inline std::error_code check_error(const json& doc, std::string& message) {
  if (!doc.is_object()) {
    message = "etcd response is not a JSON object: " + excerpt(doc);
    return seckill::errc::protocol_error;
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

}  // namespace seckill::etcd::detail
