#pragma once
/// @file
/// @brief `redis::redis_store`: the `stock_store` kept in Redis, every
///        operation one server-side Lua call, so nothing ever oversells.
///
/// Keys, hash-tagged per SKU so that one SKU's keys share a cluster slot:
///
/// | key                                 | type   | content |
/// |-------------------------------------|--------|---------|
/// | `seckill:{<sku>}:stock`             | hash   | `remaining`, `reserved`, `committed` |
/// | `seckill:{<sku>}:order:<order_id>`  | hash   | `state` (held, committed, rolled_back,
/// refused), `qty`, `remaining` (the first answer), `expires` (server ms) | |
/// `seckill:{<sku>}:holds`             | zset   | order ids of held reservations, scored by expiry
/// (server ms) |
///
/// Hold expiry is measured by the server's clock (`TIME` inside the script),
/// so clients with skewed clocks agree. An order record has no TTL while it
/// is held (a held record is never lost, so its units are always given
/// back); once it is settled (committed, rolled back, expired) or refused,
/// it lives `order_retention` more (24 h by default): within that window a
/// repeated reserve, commit or rollback answers as the first one did; after
/// it, the order id is forgotten.
///
/// Errors: a connection that is down or refused gives
/// `errc::store_unavailable`, as the contract says; the connection's other
/// errors (`errc::timed_out`, `errc::operation_aborted`, ...) pass through.
/// A reserve that failed with `store_unavailable` or `timed_out` may or may
/// not have run: retrying it with the same order id is safe (idempotent) and
/// tells. `last_error()` says in words what the store itself refused or could
/// not read (an argument out of range, an error reply, a reply of the wrong
/// shape), with the value seen; the connection's `last_error()` tells about
/// the transport.
///
/// Range (the contract's, which Lua's numbers, doubles, hold exactly):
/// quantities up to `max_units` (2^53) and holds in (0, `max_hold`] are
/// checked before anything is sent; a `set_stock` that would make remaining
/// + reserved + committed pass `max_units` is refused by the script, which
/// sees the units reserved and committed at that moment. Both complete with
/// `errc::invalid_argument`.

#include <seckill/error.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/script.hpp>
#include <seckill/redis/server_version.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief The Lua behind `redis_store`: KEYS = stock, order, holds; ARGV[1]
///        names the operation. Exposed so operators can read it and
///        benchmarks can run it.
inline constexpr std::string_view store_lua = R"lua(-- seckill stock store
local stock, order, holds = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function give_back(qty)
  redis.call('HINCRBY', stock, 'remaining', qty)
  redis.call('HINCRBY', stock, 'reserved', -qty)
end
if op == 'set' then
  -- ARGV[2]: the new remaining, ARGV[3]: max_units. reserved + committed
  -- never pass max_units (2^53), so every number here is exact.
  local s = redis.call('HMGET', stock, 'reserved', 'committed')
  local reserved, committed = tonumber(s[1]) or 0, tonumber(s[2]) or 0
  if tonumber(ARGV[2]) > tonumber(ARGV[3]) - (reserved + committed) then
    return {'too_many', reserved, committed}
  end
  redis.call('HSET', stock, 'remaining', ARGV[2])
  return {'done', reserved, committed}
elseif op == 'reserve' then
  local qty, hold, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local rem = redis.call('HGET', stock, 'remaining')
  if not rem then return {'unknown_sku', 0, 0} end
  local o = redis.call('HMGET', order, 'state', 'remaining')
  if o[1] then
    if o[1] == 'refused' then return {'sold_out', tonumber(o[2]), 1} end
    return {'reserved', tonumber(o[2]), 1}
  end
  rem = tonumber(rem)
  if rem < qty then
    redis.call('HSET', order, 'state', 'refused', 'qty', qty, 'remaining', rem)
    redis.call('PEXPIRE', order, keep)
    return {'sold_out', rem, 0}
  end
  rem = redis.call('HINCRBY', stock, 'remaining', -qty)
  redis.call('HINCRBY', stock, 'reserved', qty)
  local expires = now_ms() + hold
  redis.call('HSET', order, 'state', 'held', 'qty', qty, 'remaining', rem, 'expires', expires)
  redis.call('ZADD', holds, expires, ARGV[2])
  return {'reserved', rem, 0}
elseif op == 'commit' or op == 'rollback' then
  local keep = tonumber(ARGV[3])
  local o = redis.call('HMGET', order, 'state', 'qty', 'expires')
  local state = o[1]
  if not state or state == 'refused' then return 'unknown_order' end
  if state == 'committed' then
    if op == 'commit' then return 'already' end
    return 'order_committed'
  end
  if state == 'rolled_back' then
    if op == 'commit' then return 'order_rolled_back' end
    return 'already'
  end
  local qty = tonumber(o[2])
  redis.call('ZREM', holds, ARGV[2])
  if op == 'commit' and tonumber(o[3]) <= now_ms() then
    give_back(qty)
    redis.call('HSET', order, 'state', 'rolled_back')
    redis.call('PEXPIRE', order, keep)
    return 'order_rolled_back'
  end
  if op == 'commit' then
    redis.call('HINCRBY', stock, 'reserved', -qty)
    redis.call('HINCRBY', stock, 'committed', qty)
    redis.call('HSET', order, 'state', 'committed')
  else
    give_back(qty)
    redis.call('HSET', order, 'state', 'rolled_back')
  end
  redis.call('PEXPIRE', order, keep)
  return 'done'
elseif op == 'reap' then
  local limit, keep, prefix = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
  local ids = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms(), 'LIMIT', 0, limit)
  local reaped = 0
  for _, id in ipairs(ids) do
    local key = prefix .. id
    local o = redis.call('HMGET', key, 'state', 'qty')
    if o[1] == 'held' then
      give_back(tonumber(o[2]))
      redis.call('HSET', key, 'state', 'rolled_back')
      redis.call('PEXPIRE', key, keep)
      reaped = reaped + 1
    end
    redis.call('ZREM', holds, id)
  end
  return reaped
end
return redis.error_reply('ERR seckill store script: unknown operation ' .. tostring(op))
)lua";

/// @brief The oldest Redis server `store_lua` runs on: 5.0. The script
///        reads `TIME` and then writes, which a server replicating whole
///        scripts (the default before 5.0) refuses; and it sets several hash
///        fields in one `HSET` (4.0). Everything else it and the store send
///        (EVALSHA, SCRIPT LOAD, PEXPIRE, TIME, ZADD, ZRANGEBYSCORE ...
///        LIMIT, HMGET, HINCRBY) is 2.6 or older. The store raises its
///        connection's `min_server_version` to this, so an older server is
///        refused at connect time (`errc::server_error`) instead of failing
///        halfway through a script.
inline constexpr server_version store_min_server_version{5, 0, 0};

/// @brief Tuning of a `redis_store`.
struct redis_store_options {
  /// How long a settled or refused order record is kept (see the file
  /// comment): from one second to `max_units` (2^53) ms, what the script's
  /// numbers hold exactly.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
  /// Connections in the pool (`pooled_redis_store` only).
  std::size_t pool_size = 2;
};

namespace detail {

/// The last failure a store found itself, in words. Thread-safe (a mutex
/// taken on failures and reads only).
class store_note {
 public:
  void set(std::string message) {
    std::lock_guard lock(mutex_);
    text_ = std::move(message);
  }
  [[nodiscard]] std::string get() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

/// A reply's shape in a few words, for messages.
inline std::string describe_reply(const value& v) {
  std::string out(to_string(v.type));
  if (v.is_aggregate()) out += " of " + std::to_string(v.elements.size()) + " elements";
  if (v.type == resp_type::integer) out += " " + std::to_string(v.integer);
  if (!v.text.empty()) out += " '" + v.text.substr(0, 80) + (v.text.size() > 80 ? "...'" : "'");
  return out;
}

/// The composed operation behind every `basic_redis_store` operation: sends
/// the request (through the script's NOSCRIPT recovery when `scripted`),
/// decodes the reply with `decode(value, ec, message)`, completes with
/// (ec[, result]); an error reply, or a decoding failure, is noted in words.
template <class Signature, class Connection, class Decode>
struct store_op {
  Connection& conn;
  const script& lua;
  store_note& note;
  const char* what;
  request req;
  bool scripted;
  std::error_code bad;
  Decode decode;

  template <class Self>
  void operator()(Self& self) {
    if (bad) {
      boost::asio::post(conn.get_executor(), boost::asio::append(std::move(self), bad, value{}));
      return;
    }
    if (scripted) {
      lua.async_run(conn, std::move(req), std::move(self));
    } else {
      conn.async_exec(req, std::move(self));
    }
  }
  template <class Self>
  void operator()(Self& self, std::error_code ec, std::vector<value> replies) {
    if (!ec && replies.size() != 1) ec = make_error_code(seckill::errc::protocol_error);
    (*this)(self, ec, ec ? value{} : std::move(replies.front()));
  }
  template <class Self>
  void operator()(Self& self, std::error_code ec, value v) {
    ec = seckill::detail::store_error(ec);  // the contract's word for a backend out of reach
    std::string message;
    if (!ec && v.is_error()) {
      ec = make_error_code(seckill::errc::server_error);
      message = std::string("redis_store: ") + what + " failed on the server: " + v.text;
    }
    if constexpr (std::is_same_v<Signature, void(std::error_code)>) {
      if (!ec) decode(v, ec, message);
      noted(ec, message, v);
      self.complete(ec);
    } else {
      using result_type = decltype(decode(v, ec, message));
      result_type r{};
      if (!ec) r = decode(v, ec, message);
      noted(ec, message, v);
      self.complete(ec, r);
    }
  }

 private:
  void noted(const std::error_code& ec, std::string& message, const value& v) {
    if (!ec) return;
    if (message.empty() && ec == seckill::errc::protocol_error)
      message =
          std::string("redis_store: ") + what + " got a reply it cannot read: " + describe_reply(v);
    if (!message.empty()) note.set(std::move(message));
  }
};

}  // namespace detail

/// @brief The `stock_store` in Redis over `Connection` (`connection` or
///        `connection_pool`), which it owns.
///
/// Every operation is one EVALSHA of `store_lua` (or an HMGET for
/// stock): atomic on the server, idempotent per order id,
/// auto-pipelined with the other operations in flight on the connection.
/// The script is loaded on every (re)connect.
///
/// Thread-safety: as the connection's (any thread). Cost: one round trip
/// shared with the requests pipelined with it, a request of about 150 bytes
/// and the connection's per-request allocation; the SKU is copied into the
/// keys. A failure's message costs a lock and a string, on failures only.
template <class Connection>
class basic_redis_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using connection_type = Connection;

  /// Connects nothing yet: call `async_connect`. Throws `seckill::error`
  /// (invalid_argument) on a retention outside [1 s, 2^53 ms], or a
  /// connection_config the connection refuses.
  basic_redis_store(const executor_type& ex, connection_config cfg,
                    redis_store_options options = {})
      : options_(checked(options)),
        script_(std::string(store_lua)),
        conn_(make_connection(ex, std::move(cfg), options)) {}

  [[nodiscard]] executor_type get_executor() const noexcept { return conn_.get_executor(); }
  [[nodiscard]] Connection& connection() noexcept { return conn_; }
  [[nodiscard]] const script& lua() const noexcept { return script_; }
  [[nodiscard]] const redis_store_options& options() const noexcept { return options_; }
  /// The last failure the store found itself (an argument out of range, an
  /// error reply, a reply it cannot read), in words with the value seen;
  /// empty when there was none. Transport failures are in
  /// `connection().last_error()`. With failures on several threads at once,
  /// one of them.
  [[nodiscard]] std::string last_error() const { return note_.get(); }

  /// The keys of `sku` (see the file comment).
  static std::string stock_key(std::string_view sku) {
    return "seckill:{" + std::string(sku) + "}:stock";
  }
  static std::string holds_key(std::string_view sku) {
    return "seckill:{" + std::string(sku) + "}:holds";
  }
  static std::string order_key(std::string_view sku, std::int64_t order_id) {
    return "seckill:{" + std::string(sku) + "}:order:" + std::to_string(order_id);
  }

  /// The connection's `async_connect` (which refuses a server older than
  /// `store_min_server_version`).
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return conn_.async_connect(std::forward<CompletionToken>(token));
  }

  void close() { conn_.close(); }

  /// Refused with `errc::invalid_argument` when `quantity` is outside
  /// [0, max_units] or, on the server, when the units reserved and committed
  /// leave less room than `quantity` below `max_units`.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_stock(std::string_view sku, std::int64_t quantity,
                       CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "set_stock");
    if (!bad && (quantity < 0 || quantity > max_units))
      bad = refuse("set_stock quantity " + std::to_string(quantity) + " for sku '" +
                   std::string(sku) + "' out of range [0, max_units " + std::to_string(max_units) +
                   "]");
    if (!bad)
      script_.evalsha(req, 3, stock_key(sku), order_key(sku, 0), holds_key(sku), "set", quantity,
                      max_units);
    return run<void(std::error_code)>(
        "set_stock", std::move(req), true, bad, std::forward<CompletionToken>(token),
        [quantity, sku = bad ? std::string() : std::string(sku)](
            const value& v, std::error_code& ec, std::string& message) {
          if (v.type != resp_type::array || v.elements.size() != 3 || !v.elements[0].is_string()) {
            ec = make_error_code(seckill::errc::protocol_error);
            return;
          }
          if (v.elements[0].text == "done") return;
          if (v.elements[0].text != "too_many") {
            ec = make_error_code(seckill::errc::protocol_error);
            return;
          }
          ec = make_error_code(seckill::errc::invalid_argument);
          message = "redis_store: set_stock quantity " + std::to_string(quantity) + " for sku '" +
                    sku + "' refused: with " + std::to_string(to_int(v.elements[1], ec)) +
                    " units reserved and " + std::to_string(to_int(v.elements[2], ec)) +
                    " committed, remaining + reserved + committed would pass max_units " +
                    std::to_string(max_units);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    request req;
    const std::error_code bad = check_sku(sku, "stock");
    if (!bad) req.push("HMGET", stock_key(sku), "remaining", "reserved", "committed");
    return run<void(std::error_code, stock_level)>(
        "stock", std::move(req), false, bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          stock_level level;
          if (v.type != resp_type::array || v.elements.size() != 3) {
            ec = make_error_code(seckill::errc::protocol_error);
            return level;
          }
          if (v.elements[0].is_null()) {
            ec = make_error_code(seckill::errc::unknown_sku);
            return level;
          }
          level.remaining = to_int(v.elements[0], ec);
          level.reserved = to_int(v.elements[1], ec);
          level.committed = to_int(v.elements[2], ec);
          return level;
        });
  }

  /// Refused with `errc::invalid_argument` when `quantity` is outside
  /// [1, max_units] or `hold` outside (0, max_hold].
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "reserve");
    if (!bad && (quantity <= 0 || quantity > max_units))
      bad = refuse("reserve quantity " + std::to_string(quantity) + " of sku '" + std::string(sku) +
                   "' for order " + std::to_string(order_id) + " out of range [1, max_units " +
                   std::to_string(max_units) + "]");
    if (!bad && (hold.count() <= 0 || hold > max_hold))
      bad = refuse("reserve hold " + std::to_string(hold.count()) + " ms of sku '" +
                   std::string(sku) + "' for order " + std::to_string(order_id) +
                   " out of range (0, max_hold " + std::to_string(max_hold.count()) + " ms]");
    if (!bad)
      script_.evalsha(req, 3, stock_key(sku), order_key(sku, order_id), holds_key(sku), "reserve",
                      order_id, quantity, hold.count(), options_.order_retention.count());
    return run<void(std::error_code, reserve_result)>(
        "reserve", std::move(req), true, bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          reserve_result r;
          if (v.type != resp_type::array || v.elements.size() != 3 || !v.elements[0].is_string()) {
            ec = make_error_code(seckill::errc::protocol_error);
            return r;
          }
          const std::string& status = v.elements[0].text;
          if (status == "reserved")
            r.status = reserve_status::reserved;
          else if (status == "sold_out")
            r.status = reserve_status::sold_out;
          else if (status == "unknown_sku")
            r.status = reserve_status::unknown_sku;
          else
            ec = make_error_code(seckill::errc::protocol_error);
          r.remaining = to_int(v.elements[1], ec);
          r.replayed = to_int(v.elements[2], ec) != 0;
          return r;
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_commit(std::string_view sku, std::int64_t order_id,
                    CompletionToken&& token = CompletionToken()) {
    return settle("commit", sku, order_id, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_rollback(std::string_view sku, std::int64_t order_id,
                      CompletionToken&& token = CompletionToken()) {
    return settle("rollback", sku, order_id, std::forward<CompletionToken>(token));
  }

  /// A `limit` above `max_units` (2^53, what the script's numbers hold
  /// exactly) is taken as `max_units`: `SIZE_MAX` reaps every expired hold.
  /// One call runs as one script: a large limit over many expired holds
  /// keeps the server busy that long.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit,
                          CompletionToken&& token = CompletionToken()) {
    request req;
    const std::error_code bad = check_sku(sku, "reap_expired");
    const std::uint64_t clamped =
        std::min<std::uint64_t>(limit, static_cast<std::uint64_t>(max_units));
    if (!bad)
      script_.evalsha(req, 3, stock_key(sku), order_key(sku, 0), holds_key(sku), "reap", clamped,
                      options_.order_retention.count(),
                      "seckill:{" + std::string(sku) + "}:order:");
    return run<void(std::error_code, std::size_t)>(
        "reap_expired", std::move(req), true, bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          const auto n = to_int(v, ec);
          return n < 0 ? std::size_t{0} : static_cast<std::size_t>(n);
        });
  }

 private:
  static Connection make_connection(const executor_type& ex, connection_config cfg,
                                    const redis_store_options& options, const script& s) {
    s.load_into(cfg);
    if (cfg.min_server_version < store_min_server_version)
      cfg.min_server_version = store_min_server_version;
    if constexpr (std::is_same_v<Connection, connection_pool>) {
      return Connection(ex, std::move(cfg), options.pool_size);
    } else {
      (void)options;
      return Connection(ex, std::move(cfg));
    }
  }
  static Connection make_connection(const executor_type& ex, connection_config cfg,
                                    const redis_store_options& options) {
    return make_connection(ex, std::move(cfg), options, script(std::string(store_lua)));
  }

  static redis_store_options checked(const redis_store_options& options) {
    const auto ms = options.order_retention.count();
    if (ms < 1000 || ms > max_units)
      throw error(seckill::errc::invalid_argument,
                  "redis_store: order_retention " + std::to_string(ms) +
                      " ms out of range [1000, " + std::to_string(max_units) + "] ms");
    return options;
  }

  // Notes `message` and returns invalid_argument.
  std::error_code refuse(std::string message) {
    note_.set("redis_store: " + std::move(message));
    return make_error_code(seckill::errc::invalid_argument);
  }

  std::error_code check_sku(std::string_view sku, const char* what) {
    if (sku.empty()) return refuse(std::string(what) + ": empty sku");
    if (sku.find_first_of("{}") != std::string_view::npos)  // a brace would break the hash tag
      return refuse(std::string(what) + ": sku '" + std::string(sku) +
                    "' contains '{' or '}', which would break its keys' hash tag");
    return {};
  }

  static std::int64_t to_int(const value& v, std::error_code& ec) {
    if (v.type == resp_type::integer) return v.integer;
    if (v.type == resp_type::null) return 0;  // a stock field never written
    if (v.is_string()) {
      std::int64_t n = 0;
      const auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
      if (r.ec == std::errc{} && r.ptr == v.text.data() + v.text.size()) return n;
    }
    if (!ec) ec = make_error_code(seckill::errc::protocol_error);
    return 0;
  }

  template <class Token>
  auto settle(const char* op, std::string_view sku, std::int64_t order_id, Token&& token) {
    request req;
    const std::error_code bad = check_sku(sku, op);
    if (!bad)
      script_.evalsha(req, 3, stock_key(sku), order_key(sku, order_id), holds_key(sku), op,
                      order_id, options_.order_retention.count());
    return run<void(std::error_code, settle_result)>(
        op, std::move(req), true, bad, std::forward<Token>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          settle_result r;
          if (!v.is_string()) {
            ec = make_error_code(seckill::errc::protocol_error);
            return r;
          }
          const std::string_view s = v.text;
          if (s == "done")
            r.status = settle_status::done;
          else if (s == "already")
            r.status = settle_status::already;
          else if (s == "unknown_order")
            ec = make_error_code(seckill::errc::unknown_order);
          else if (s == "order_committed")
            ec = make_error_code(seckill::errc::order_committed);
          else if (s == "order_rolled_back")
            ec = make_error_code(seckill::errc::order_rolled_back);
          else
            ec = make_error_code(seckill::errc::protocol_error);
          return r;
        });
  }

  // Sends `req` (through the script's NOSCRIPT recovery when `scripted`),
  // decodes the reply with `decode(value, ec, message)`, completes with
  // (ec[, result]).
  template <class Signature, class Token, class Decode>
  auto run(const char* what, request req, bool scripted, std::error_code bad, Token&& token,
           Decode decode) {
    return boost::asio::async_compose<Token, Signature>(
        detail::store_op<Signature, Connection, Decode>{conn_, script_, note_, what, std::move(req),
                                                        scripted, bad, std::move(decode)},
        token, conn_);
  }

  detail::store_note note_;
  redis_store_options options_;
  script script_;
  Connection conn_;
};

/// @brief The store on one connection: the usual choice (auto-pipelining
///        makes one connection carry a whole server's throughput).
using redis_store = basic_redis_store<connection>;
/// @brief The store on a pool of `pool_size` connections, for many threads.
using pooled_redis_store = basic_redis_store<connection_pool>;

static_assert(stock_store<redis_store>);
static_assert(stock_store<pooled_redis_store>);

}  // namespace seckill::redis
