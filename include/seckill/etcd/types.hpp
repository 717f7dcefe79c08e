#pragma once
/// @file
/// @brief The values of etcd's v3 API as seckill's etcd client speaks them:
///        key-values and response headers, the options and requests of the
///        KV calls and transactions, their results, leases, watch events and
///        watch settings; `prefix_end`. Keys and values are raw bytes (the
///        codec, `etcd/detail/json_codec.hpp`, base64-encodes them).
///
/// Plain values: thread-safe as any value type (no shared state), no cost
/// beyond their members. The standard library only.

#include <chrono>
#include <cstdint>
#include <optional>
#include <seckill/etcd/error.hpp>
#include <string>
#include <string_view>
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

/// @brief The order of a range's results.
enum class sort_order : std::uint8_t { none, ascend, descend };
/// @brief The field a range's results are sorted by.
enum class sort_target : std::uint8_t { key, version, create, mod, value };

/// The enumerator's name ("ascend").
constexpr std::string_view to_string(sort_order o) noexcept {
  switch (o) {
    case sort_order::none:
      return "none";
    case sort_order::ascend:
      return "ascend";
    case sort_order::descend:
      return "descend";
  }
  return "unknown";
}

/// The enumerator's name ("create").
constexpr std::string_view to_string(sort_target t) noexcept {
  switch (t) {
    case sort_target::key:
      return "key";
    case sort_target::version:
      return "version";
    case sort_target::create:
      return "create";
    case sort_target::mod:
      return "mod";
    case sort_target::value:
      return "value";
  }
  return "unknown";
}

/// @brief Options of a range (get) request.
struct range_options {
  std::string range_end{};    ///< empty: the single key; see prefix_end()
  bool prefix = false;        ///< range over every key starting with `key`
  std::int64_t limit = 0;     ///< 0: no limit
  std::int64_t revision = 0;  ///< 0: the newest
  bool keys_only = false;
  bool count_only = false;
  bool serializable = false;  ///< served by the member alone (not linearizable)
  sort_order order = sort_order::none;
  sort_target target = sort_target::key;
  std::int64_t min_create_revision = 0;
  std::int64_t max_create_revision = 0;
};

/// @brief Options of a put request.
struct put_options {
  std::int64_t lease = 0;
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

/// @brief Options of a delete (delete range) request.
struct delete_options {
  std::string range_end{};
  bool prefix = false;
  bool prev_kv = false;
};

/// @brief A range (get) operation of a transaction.
struct range_request {
  std::string key;
  range_options options;
};
/// @brief A put operation of a transaction.
struct put_request {
  std::string key;
  std::string value;
  put_options options;
};
/// @brief A delete operation of a transaction.
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
  static compare missing(std::string key) {
    return create_revision(std::move(key), result::equal, 0);
  }
};

/// The enumerator's name ("mod").
constexpr std::string_view to_string(compare::target t) noexcept {
  switch (t) {
    case compare::target::version:
      return "version";
    case compare::target::create:
      return "create";
    case compare::target::mod:
      return "mod";
    case compare::target::value:
      return "value";
    case compare::target::lease:
      return "lease";
  }
  return "unknown";
}

/// The enumerator's name ("not_equal").
constexpr std::string_view to_string(compare::result r) noexcept {
  switch (r) {
    case compare::result::equal:
      return "equal";
    case compare::result::greater:
      return "greater";
    case compare::result::less:
      return "less";
    case compare::result::not_equal:
      return "not_equal";
  }
  return "unknown";
}

/// @brief A transaction: if every compare holds, `success` runs, else `failure`.
struct txn_request {
  std::vector<compare> compares;
  std::vector<request_op> success;
  std::vector<request_op> failure;
};

// ----------------------------------------------------------------- results

/// @brief The keys a range found (`count` of them in all; `more` when `limit` cut the list).
struct range_result : response {
  std::vector<key_value> kvs;
  bool more = false;
  std::int64_t count = 0;
};
/// @brief What a put returns: the previous key-value when `prev_kv` was asked.
struct put_result : response {
  std::optional<key_value> prev_kv;
};
/// @brief What a delete returns: how many keys went (and which, when `prev_kv` was asked).
struct delete_result : response {
  std::int64_t deleted = 0;
  std::vector<key_value> prev_kvs;
};
/// @brief The result of one operation of a transaction branch.
using op_result = std::variant<range_result, put_result, delete_result>;
/// @brief What a transaction returns: which branch ran and the results of its operations.
struct txn_result : response {
  bool succeeded = false;
  std::vector<op_result> responses;
};
/// @brief A lease granted: its id and TTL.
struct lease_grant_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds
};
/// @brief A lease renewed once: its id and fresh TTL.
struct lease_keepalive_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds; the lease is gone when the server answers 0
};
/// @brief A lease's remaining and granted TTL, and its keys when asked.
struct lease_ttl_result : response {
  std::int64_t id = 0;
  std::int64_t ttl = -1;  ///< seconds left; -1: the lease does not exist
  std::int64_t granted_ttl = 0;
  std::vector<std::string> keys;
};
/// @brief What a lease revocation returns (its header only).
struct lease_revoke_result : response {};

/// @brief One change seen by a watch.
struct event {
  enum class kind : std::uint8_t { put, del };
  kind type = kind::put;
  key_value kv;
  std::optional<key_value> prev_kv;
};

/// The enumerator's name ("put" or "del").
constexpr std::string_view to_string(event::kind k) noexcept {
  switch (k) {
    case event::kind::put:
      return "put";
    case event::kind::del:
      return "del";
  }
  return "unknown";
}

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

/// @brief What to watch and from where.
struct watch_options {
  std::string range_end{};  ///< empty: the single key (or the prefix when `prefix`)
  bool prefix = false;
  std::int64_t start_revision = 0;  ///< 0: changes after the watch is created
  bool prev_kv = false;
  bool progress_notify = false;
  /// After a compaction of the revision the watch needs: range the key (or
  /// prefix) at the newest revision, deliver it as a `resynced` snapshot and
  /// watch on from there. Otherwise the watch ends with `errc::compacted`.
  bool resync_on_compaction = true;
};

/// @brief One delivery of a watch: events in revision order, or a snapshot
///        after a resynchronisation.
struct watch_response {
  std::int64_t revision = 0;  ///< the header revision of the message
  std::vector<event> events;
  bool resynced = false;              ///< `snapshot` replaces everything seen so far
  std::int64_t compact_revision = 0;  ///< set when a compaction was detected
  std::vector<key_value> snapshot;    ///< the watched keys at `revision` (resynced only)
};

/// @brief Settings of a `watcher`.
struct watcher_options {
  /// The first pause before reconnecting (or retrying a resynchronising
  /// range); each failure in a row doubles it, up to `reconnect_max_interval`,
  /// with half of it jitter (`seckill::backoff_delay`).
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_max_interval{2000};  ///< the cap of that pause
  /// No frame for this long (pings included) ends the socket: Beast pings at
  /// half of it, the gateway answers pongs.
  std::chrono::milliseconds idle_timeout{3000};
  std::chrono::milliseconds handshake_timeout{2000};
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

}  // namespace seckill::etcd
