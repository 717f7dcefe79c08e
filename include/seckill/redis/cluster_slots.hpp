#pragma once
/// @file
/// @brief Redis Cluster's addressing, as pure functions: a key's hash slot
///        (CRC16 with hash tags), the slot a request must go to, the
///        MOVED / ASK redirections, and the slot map read from
///        `CLUSTER SHARDS` (Redis 7) or `CLUSTER SLOTS` (older servers).
///
/// No I/O here: `cluster_client` (cluster_client.hpp) uses these to route.

#include <seckill/redis/error.hpp>
#include <seckill/redis/resp.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace seckill::redis {

/// @brief The number of hash slots of a Redis Cluster.
inline constexpr std::size_t cluster_slot_count = 16384;

namespace detail {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), Redis Cluster's
// key hash, one table lookup per byte.
inline constexpr auto crc16_table = [] {
  std::array<std::uint16_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i << 8;
    for (int b = 0; b < 8; ++b) crc = (crc & 0x8000u) != 0 ? (crc << 1) ^ 0x1021u : crc << 1;
    t[i] = static_cast<std::uint16_t>(crc);
  }
  return t;
}();

}  // namespace detail

/// @brief CRC16-CCITT (XMODEM) of `bytes`, as Redis Cluster computes it
///        (`crc16("123456789") == 0x31C3`). Thread-safety: pure.
constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (const char c : bytes)
    crc = static_cast<std::uint16_t>(
        (crc << 8) ^ detail::crc16_table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xffu]);
  return crc;
}

/// @brief The hash slot of `key`: CRC16 of its hash tag (what lies between
///        the first `{` and the first `}` after it, when not empty), or of
///        the whole key, modulo 16384. Thread-safety: pure.
constexpr std::uint16_t key_slot(std::string_view key) noexcept {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16(key) % cluster_slot_count);
}

/// @brief Where a request goes: the slot of its keys, or none for a request
///        whose commands name no key (PING, SCRIPT LOAD, WAIT ...), which
///        any master may serve.
struct request_route {
  std::optional<std::uint16_t> slot;
  std::size_t keyed_commands = 0;  ///< the commands that name a key
  /// Bit i set: command i names a key (for the first 64 commands).
  std::uint64_t keyed_mask = 0;
  /// True when a command beyond the 64th names a key (then `keyed_mask`
  /// does not tell them all).
  bool keyed_beyond_mask = false;

  /// True when command `i` names a key, as far as the mask tells.
  [[nodiscard]] bool keyed(std::size_t i) const noexcept {
    return i < 64 && ((keyed_mask >> i) & 1u) != 0;
  }
};

namespace detail {

// The argument of a RESP array of bulk strings at `pos` (the request's own
// encoding: "$<len>\r\n<bytes>\r\n"), advancing `pos`.
inline std::string_view next_bulk(std::string_view bytes, std::size_t& pos) noexcept {
  if (pos >= bytes.size() || bytes[pos] != '$') return {};
  std::size_t len = 0;
  std::size_t i = pos + 1;
  for (; i < bytes.size() && bytes[i] != '\r'; ++i)
    len = len * 10 + static_cast<std::size_t>(bytes[i] - '0');
  i += 2;
  if (i + len > bytes.size()) return {};
  pos = i + len + 2;
  return bytes.substr(i, len);
}

inline bool same_word(std::string_view a, std::string_view upper) noexcept {
  if (a.size() != upper.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

// The first arguments of one command (up to four: the name, and what may
// hold its first key), and the key after XREAD's STREAMS, if any.
struct command_head {
  std::array<std::string_view, 4> args{};
  std::size_t count = 0;  // arguments in the command
  std::string_view after_streams;
};

// The first key of one command, or none.
inline std::optional<std::string_view> first_key(const command_head& c) {
  if (c.count == 0) return std::nullopt;
  const std::string_view name = c.args[0];
  // Commands that name no key: any node serves them.
  for (const std::string_view keyless :
       {"PING", "ECHO", "SCRIPT", "ASKING", "READONLY", "READWRITE", "WAIT", "INFO", "CLUSTER",
        "HELLO", "AUTH", "SELECT", "CLIENT", "MULTI", "EXEC", "DISCARD", "FUNCTION", "TIME",
        "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "CONFIG", "DBSIZE",
        "FLUSHALL", "FLUSHDB", "ACL", "COMMAND", "DEBUG", "QUIT", "RESET",
        // a node's own keyspace, not a key: they run on whichever master gets them
        "SCAN", "KEYS", "RANDOMKEY"})
    if (same_word(name, keyless)) return std::nullopt;
  // EVAL/EVALSHA/FCALL script numkeys key ...: the first key, if any.
  for (const std::string_view scripted :
       {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}) {
    if (!same_word(name, scripted)) continue;
    if (c.count < 4 || c.args[2].empty() || c.args[2] == "0") return std::nullopt;
    return c.args[3];
  }
  // XREAD / XREADGROUP ... STREAMS key ...
  if (same_word(name, "XREAD") || same_word(name, "XREADGROUP")) {
    if (c.after_streams.empty()) return std::nullopt;
    return c.after_streams;
  }
  if (c.count < 2) return std::nullopt;
  return c.args[1];
}

}  // namespace detail

/// @brief The slot `req` must be sent to: every command that names a key
///        must name keys of one slot (only the first key of each command is
///        read: a multi-key command spanning slots is the server's to refuse
///        with CROSSSLOT). `errc::cross_slot` (redis::errc) when two
///        commands name keys of different slots. Thread-safety: pure.
inline request_route route_of(const request& req, std::error_code& ec) {
  ec.clear();
  request_route route;
  const std::string_view bytes = req.payload();
  std::size_t pos = 0;
  std::size_t index = 0;
  for (; pos < bytes.size() && bytes[pos] == '*'; ++index) {
    std::size_t n = 0;
    std::size_t i = pos + 1;
    for (; i < bytes.size() && bytes[i] != '\r'; ++i)
      n = n * 10 + static_cast<std::size_t>(bytes[i] - '0');
    pos = i + 2;
    detail::command_head head;
    head.count = n;
    bool streams = false;
    for (std::size_t a = 0; a < n; ++a) {
      const std::string_view arg = detail::next_bulk(bytes, pos);
      if (a < head.args.size()) head.args[a] = arg;
      if (streams && head.after_streams.empty()) head.after_streams = arg;
      if (a > 0 && !streams) streams = detail::same_word(arg, "STREAMS");
    }
    const auto key = detail::first_key(head);
    if (!key) continue;
    const std::uint16_t slot = key_slot(*key);
    ++route.keyed_commands;
    if (index < 64)
      route.keyed_mask |= std::uint64_t{1} << index;
    else
      route.keyed_beyond_mask = true;
    if (route.slot && *route.slot != slot) {
      ec = make_error_code(errc::cross_slot);
      return route;
    }
    route.slot = slot;
  }
  return route;
}

/// @brief A MOVED or ASK error reply, read: the slot and where it is now.
struct redirection {
  enum class kind { moved, ask };
  kind type = kind::moved;
  std::uint16_t slot = 0;
  std::string
      host;  ///< empty when the server does not know its own address: the node that answered
  std::string port;
};

/// @brief `reply` read as "MOVED <slot> <host>:<port>" or "ASK <slot>
///        <host>:<port>" (the host may be empty, or an IPv6 address: the
///        port follows the last ':'); none for any other reply. Thread-safety: pure.
inline std::optional<redirection> parse_redirection(const value& reply) {
  if (!reply.is_error()) return std::nullopt;
  const std::string_view code = reply.error_code();
  redirection r;
  if (code == "MOVED")
    r.type = redirection::kind::moved;
  else if (code == "ASK")
    r.type = redirection::kind::ask;
  else
    return std::nullopt;
  std::string_view rest = std::string_view(reply.text).substr(code.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const auto space = rest.find(' ');
  if (space == std::string_view::npos || space == 0) return std::nullopt;
  unsigned slot = 0;
  for (const char c : rest.substr(0, space)) {
    if (c < '0' || c > '9') return std::nullopt;
    slot = slot * 10 + static_cast<unsigned>(c - '0');
    if (slot >= cluster_slot_count) return std::nullopt;
  }
  r.slot = static_cast<std::uint16_t>(slot);
  const std::string_view endpoint = rest.substr(space + 1);
  const auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == endpoint.size()) return std::nullopt;
  r.host = std::string(endpoint.substr(0, colon));
  if (r.host.size() >= 2 && r.host.front() == '[' && r.host.back() == ']')
    r.host = r.host.substr(1, r.host.size() - 2);
  r.port = std::string(endpoint.substr(colon + 1));
  for (const char c : r.port)
    if (c < '0' || c > '9') return std::nullopt;
  return r;
}

/// @brief True for the error replies after which a request did not run
///        and may be sent again after a pause: TRYAGAIN (a multi-key
///        request during a slot's migration), CLUSTERDOWN (no master covers
///        the slot yet), and LOADING / MASTERDOWN (a node starting or
///        failing over). Thread-safety: pure.
inline bool retry_later(const value& reply) noexcept {
  const std::string_view code = reply.error_code();
  return code == "TRYAGAIN" || code == "CLUSTERDOWN" || code == "LOADING" || code == "MASTERDOWN";
}

/// @brief A master and the slot ranges it serves.
struct cluster_shard {
  std::string host;
  std::string port;
  std::string id;  ///< the node id (may be empty from CLUSTER SLOTS on old servers)
  std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;  ///< [first, last], inclusive
};

/// @brief The masters of a cluster and their slots, as one node told it.
struct cluster_map {
  std::vector<cluster_shard> shards;

  /// Slots no master covers.
  [[nodiscard]] std::size_t uncovered() const {
    std::vector<bool> covered(cluster_slot_count, false);
    std::size_t n = 0;
    for (const auto& s : shards)
      for (const auto& [a, b] : s.ranges)
        for (std::size_t i = a; i <= b; ++i)
          if (!covered[i]) covered[i] = true, ++n;
    return cluster_slot_count - n;
  }
};

namespace detail {

inline const value* field(const value& map, std::string_view name) {
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
    if (map.elements[i].is_string() && map.elements[i].text == name) return &map.elements[i + 1];
  return nullptr;
}

inline std::optional<std::int64_t> integer_of(const value& v) {
  if (v.type == resp_type::integer) return v.integer;
  if (!v.is_string() || v.text.empty() || v.text.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (const char c : v.text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

inline bool slot_range(const value& a, const value& b,
                       std::vector<std::pair<std::uint16_t, std::uint16_t>>& out) {
  const auto first = integer_of(a);
  const auto last = integer_of(b);
  if (!first || !last || *first < 0 || *last < *first ||
      *last >= static_cast<std::int64_t>(cluster_slot_count))
    return false;
  out.emplace_back(static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last));
  return true;
}

inline std::string text_of(const value* v) { return v != nullptr && v->is_string() ? v->text : ""; }

}  // namespace detail

/// @brief Reads a `CLUSTER SHARDS` reply (RESP3 maps or RESP2 flat
///        arrays): for each shard, its slots and its master that is online.
///        A shard without slots or without an online master is left out.
///        `errc::protocol_error` (and `why`) for a reply of another shape.
///        `host` names the node that answered, for masters that report no
///        address of their own. Thread-safety: pure.
inline cluster_map parse_cluster_shards(const value& reply, const std::string& host,
                                        std::error_code& ec, std::string* why = nullptr) {
  ec.clear();
  cluster_map map;
  const auto bad = [&](const char* what) {
    ec = make_error_code(seckill::errc::protocol_error);
    if (why != nullptr) *why = std::string("CLUSTER SHARDS reply: ") + what;
    return cluster_map{};
  };
  if (reply.type != resp_type::array) return bad("not an array");
  for (const value& shard : reply.elements) {
    if (!shard.is_aggregate()) return bad("a shard is not a map");
    const value* slots = detail::field(shard, "slots");
    const value* nodes = detail::field(shard, "nodes");
    if (slots == nullptr || nodes == nullptr) return bad("a shard without slots or nodes");
    cluster_shard out;
    for (std::size_t i = 0; i + 1 < slots->elements.size(); i += 2)
      if (!detail::slot_range(slots->elements[i], slots->elements[i + 1], out.ranges))
        return bad("a slot range out of [0, 16383]");
    if (out.ranges.empty()) continue;
    for (const value& node : nodes->elements) {
      if (!node.is_aggregate()) return bad("a node is not a map");
      if (detail::text_of(detail::field(node, "role")) != "master") continue;
      if (detail::text_of(detail::field(node, "health")) != "online") continue;
      const value* port = detail::field(node, "port");
      if (port == nullptr) port = detail::field(node, "tls-port");
      const auto p = port != nullptr ? detail::integer_of(*port) : std::nullopt;
      if (!p) return bad("a master without a port");
      out.port = std::to_string(*p);
      out.host = detail::text_of(detail::field(node, "ip"));
      if (out.host.empty() || out.host == "?")
        out.host = detail::text_of(detail::field(node, "endpoint"));
      if (out.host.empty() || out.host == "?") out.host = host;
      out.id = detail::text_of(detail::field(node, "id"));
      map.shards.push_back(std::move(out));
      break;
    }
  }
  return map;
}

/// @brief Reads a `CLUSTER SLOTS` reply (Redis before 7): each range with
///        its master first. As `parse_cluster_shards` otherwise.
inline cluster_map parse_cluster_slots(const value& reply, const std::string& host,
                                       std::error_code& ec, std::string* why = nullptr) {
  ec.clear();
  cluster_map map;
  const auto bad = [&](const char* what) {
    ec = make_error_code(seckill::errc::protocol_error);
    if (why != nullptr) *why = std::string("CLUSTER SLOTS reply: ") + what;
    return cluster_map{};
  };
  if (reply.type != resp_type::array) return bad("not an array");
  for (const value& range : reply.elements) {
    if (range.type != resp_type::array || range.elements.size() < 3) return bad("a short range");
    std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;
    if (!detail::slot_range(range.elements[0], range.elements[1], ranges))
      return bad("a slot range out of [0, 16383]");
    const value& master = range.elements[2];
    if (master.type != resp_type::array || master.elements.size() < 2)
      return bad("a range without a master");
    const auto port = detail::integer_of(master.elements[1]);
    if (!port) return bad("a master without a port");
    std::string h = detail::text_of(&master.elements[0]);
    if (h.empty() || h == "?") h = host;
    const std::string id = master.elements.size() > 2 ? detail::text_of(&master.elements[2]) : "";
    const std::string p = std::to_string(*port);
    cluster_shard* shard = nullptr;
    for (auto& s : map.shards)
      if (s.host == h && s.port == p) shard = &s;
    if (shard == nullptr) {
      map.shards.push_back(cluster_shard{h, p, id, {}});
      shard = &map.shards.back();
    }
    shard->ranges.push_back(ranges.front());
  }
  return map;
}

}  // namespace seckill::redis
