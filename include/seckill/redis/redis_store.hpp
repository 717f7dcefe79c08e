#pragma once
/// @file
/// @brief `redis::redis_store`: the `stock_store` kept in Redis, every
///        operation one server-side Lua call, so nothing ever oversells.
///
/// Keys, hash-tagged per SKU so that one SKU's keys share a cluster slot
/// (docs/redis.md has the table with TTLs):
///
/// - `seckill:{<sku>}:stock`, hash: `remaining`, `reserved`, `committed`,
///   `per_user_limit` (absent: 1).
/// - `seckill:{<sku>}:order:<order_id>`, hash: `state` (held, committed,
///   rolled_back, refused), `qty`, `remaining` (the first answer), `expires`
///   (server ms), `user`, `request`, `why` (a refusal's reason).
/// - `seckill:{<sku>}:holds`, zset: held order ids scored by expiry.
/// - `seckill:{<sku>}:users`, hash: user -> units in held and committed orders.
/// - `seckill:{<sku>}:request:<user>/<request_id>`, string: the bound order id.
/// - `seckill:{<sku>}:sold`, zset: committed ids zero-padded to 19 digits,
///   score 0, read by lexical range (ids pass what a score holds exactly).
/// - `seckill:{<sku>}:orders`, stream: one entry per committed order
///   (`order_id`, `quantity`, `user`, `request_id`) for downstream consumers.
///
/// Hold expiry is measured by the server's clock (`TIME` inside the script),
/// so clients with skewed clocks agree. An order record has no TTL while it
/// is held (a held record is never lost, so its units are always given
/// back) nor once committed (it is the sold order); once it is rolled back,
/// expired or refused it lives `order_retention` more (24 h by default), as
/// does a settled order's request binding: within that window a repeated
/// reserve, commit or rollback answers as the first one did; after it, the
/// order id (and the request id) is forgotten.
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

/// @brief The Lua behind `redis_store`: KEYS = stock, order, holds, users,
///        sold, orders (the stream), request (the binding); ARGV[1] names the
///        operation, and the operations that reach other orders' keys take
///        the SKU's key prefix (`seckill:{<sku>}:`, same hash slot) last.
///        Exposed so operators can read it and benchmarks can run it.
inline constexpr std::string_view store_lua = R"lua(-- seckill stock store
local stock, order, holds, users, sold, stream, request =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local op = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Gives a held order's units back to the stock and to its user's allowance.
local function give_back(qty, user)
  redis.call('HINCRBY', stock, 'remaining', qty)
  redis.call('HINCRBY', stock, 'reserved', -qty)
  if user and user ~= '' then
    if redis.call('HINCRBY', users, user, -qty) <= 0 then redis.call('HDEL', users, user) end
  end
end
-- A settled order's request binding lives as long as a settled record.
local function settle_binding(prefix, user, req, keep)
  if user and user ~= '' and req and req ~= '' then
    redis.call('PEXPIRE', prefix .. 'request:' .. user .. '/' .. req, keep)
  end
end
-- Where an order record stands now: a held one whose hold passed is given back.
local function state_now(state, expires)
  if state == 'held' and tonumber(expires) <= now_ms() then return 'rolled_back' end
  return state
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
  -- ARGV: order id, qty, hold, keep, user, request id, prefix. Replies
  -- {status, remaining, replayed, order id, state}.
  local id, qty, hold, keep = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local user, req = ARGV[6], ARGV[7]
  local s = redis.call('HMGET', stock, 'remaining', 'per_user_limit')
  if not s[1] then return {'unknown_sku', 0, 0, '0', 'refused'} end
  local o = redis.call('HMGET', order, 'state', 'remaining', 'why', 'expires')
  if o[1] then
    if o[1] == 'refused' then return {o[3] or 'sold_out', tonumber(o[2]), 1, '0', 'refused'} end
    return {'reserved', tonumber(o[2]), 1, id, state_now(o[1], o[4])}
  end
  if req ~= '' then
    local bound = redis.call('GET', request)
    if bound then
      local b = redis.call('HMGET', ARGV[8] .. 'order:' .. bound, 'state', 'remaining', 'expires')
      if b[1] then return {'reserved', tonumber(b[2]), 1, bound, state_now(b[1], b[3])} end
    end
  end
  local rem = tonumber(s[1])
  local why = nil
  if rem < qty then
    why = 'sold_out'
  elseif user ~= '' then
    local limit = tonumber(s[2] or '1')
    if limit > 0 and (tonumber(redis.call('HGET', users, user)) or 0) + qty > limit then
      why = 'limited'
    end
  end
  if why then
    redis.call('HSET', order, 'state', 'refused', 'qty', qty, 'remaining', rem, 'why', why)
    redis.call('PEXPIRE', order, keep)
    return {why, rem, 0, '0', 'refused'}
  end
  rem = redis.call('HINCRBY', stock, 'remaining', -qty)
  redis.call('HINCRBY', stock, 'reserved', qty)
  local expires = now_ms() + hold
  redis.call('HSET', order, 'state', 'held', 'qty', qty, 'remaining', rem, 'expires', expires,
             'user', user, 'request', req)
  redis.call('ZADD', holds, expires, id)
  if user ~= '' then redis.call('HINCRBY', users, user, qty) end
  if req ~= '' then redis.call('SET', request, id) end
  return {'reserved', rem, 0, id, 'held'}
elseif op == 'commit' or op == 'rollback' then
  -- ARGV: order id, keep, prefix.
  local id, keep, prefix = ARGV[2], tonumber(ARGV[3]), ARGV[4]
  local o = redis.call('HMGET', order, 'state', 'qty', 'expires', 'user', 'request')
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
  local qty, user, req = tonumber(o[2]), o[4] or '', o[5] or ''
  redis.call('ZREM', holds, id)
  settle_binding(prefix, user, req, keep)
  if op == 'commit' and tonumber(o[3]) <= now_ms() then
    give_back(qty, user)
    redis.call('HSET', order, 'state', 'rolled_back')
    redis.call('PEXPIRE', order, keep)
    return 'order_rolled_back'
  end
  if op == 'rollback' then
    give_back(qty, user)
    redis.call('HSET', order, 'state', 'rolled_back')
    redis.call('PEXPIRE', order, keep)
    return 'done'
  end
  -- Sold: the record stays (no TTL), indexed by its zero-padded id, and streamed.
  redis.call('HINCRBY', stock, 'reserved', -qty)
  redis.call('HINCRBY', stock, 'committed', qty)
  redis.call('HSET', order, 'state', 'committed')
  redis.call('ZADD', sold, 0, string.rep('0', 19 - #id) .. id)
  redis.call('XADD', stream, '*', 'order_id', id, 'quantity', o[2], 'user', user,
             'request_id', req)
  return 'done'
elseif op == 'reap' then
  -- ARGV: limit, keep, prefix.
  local limit, keep, prefix = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
  local ids = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms(), 'LIMIT', 0, limit)
  local reaped = 0
  for _, id in ipairs(ids) do
    local key = prefix .. 'order:' .. id
    local o = redis.call('HMGET', key, 'state', 'qty', 'user', 'request')
    if o[1] == 'held' then
      give_back(tonumber(o[2]), o[3])
      settle_binding(prefix, o[3], o[4], keep)
      redis.call('HSET', key, 'state', 'rolled_back')
      redis.call('PEXPIRE', key, keep)
      reaped = reaped + 1
    end
    redis.call('ZREM', holds, id)
  end
  return reaped
elseif op == 'list' then
  -- ARGV: after (zero-padded), limit, prefix. Replies {more, {id, qty, user,
  -- request id, ...}}; qty '' for an indexed order without its record.
  local limit, prefix = tonumber(ARGV[3]), ARGV[4]
  local ids = redis.call('ZRANGEBYLEX', sold, '(' .. ARGV[2], '+', 'LIMIT', 0, limit + 1)
  local out = {}
  for i = 1, math.min(#ids, limit) do
    local id = (string.gsub(ids[i], '^0+', ''))
    local o = redis.call('HMGET', prefix .. 'order:' .. id, 'state', 'qty', 'user', 'request')
    local qty = o[2] or ''
    if o[1] ~= 'committed' then qty = '' end
    table.insert(out, id)
    table.insert(out, qty)
    table.insert(out, o[3] or '')
    table.insert(out, o[4] or '')
  end
  local more = 0
  if #ids > limit then more = 1 end
  return {more, out}
end
return redis.error_reply('ERR seckill store script: unknown operation ' .. tostring(op))
)lua";

/// @brief The oldest Redis server `store_lua` runs on: 5.0. The script
///        reads `TIME` and then writes, which a server replicating whole
///        scripts (the default before 5.0) refuses; it appends committed
///        orders with `XADD` (5.0); and it sets several hash fields in one
///        `HSET` (4.0). Everything else it and the store send
///        (EVALSHA, SCRIPT LOAD, PEXPIRE, TIME, ZADD, ZRANGEBYSCORE ...
///        LIMIT, ZRANGEBYLEX, HMGET, HINCRBY) is 2.8.9 or older. The store raises its
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
/// Every operation is one EVALSHA of `store_lua` (or one HMGET, HGET or
/// HSET for stock, get_order and the policy): atomic on the server,
/// idempotent per order id (and per (user, request_id)), auto-pipelined with
/// the other operations in flight on the connection. The script is loaded on
/// every (re)connect. The per-user limit, the request binding and the order
/// record are checked and written in the same script as the stock, so two
/// stores on separate connections (two nodes) enforce them together.
///
/// Thread-safety: as the connection's (any thread). Cost: one round trip
/// shared with the requests pipelined with it, a request of about 300 bytes
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
  static std::string users_key(std::string_view sku) {
    return "seckill:{" + std::string(sku) + "}:users";
  }
  static std::string sold_key(std::string_view sku) {
    return "seckill:{" + std::string(sku) + "}:sold";
  }
  /// The stream of committed orders, for downstream consumers (docs/redis.md).
  static std::string orders_key(std::string_view sku) {
    return "seckill:{" + std::string(sku) + "}:orders";
  }
  /// The binding of (user, request_id): '/' separates them, as neither holds one.
  static std::string request_key(std::string_view sku, std::string_view user,
                                 std::string_view request_id) {
    return "seckill:{" + std::string(sku) + "}:request:" + std::string(user) + "/" +
           std::string(request_id);
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
    if (!bad) eval(req, sku, 0, {}, {}, "set", quantity, max_units);
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
  /// [1, max_units] or `hold` outside (0, max_hold]. No user: no per-user limit.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    reserve_request r;
    r.order_id = order_id;
    r.quantity = quantity;
    r.hold = hold;
    return async_reserve(sku, r, std::forward<CompletionToken>(token));
  }

  /// The reserve for a named buyer (store/store.hpp, "Buyers"): one script
  /// checks the order id, the (user, request_id) binding, the stock and the
  /// user's units against the SKU's `per_user_limit`, then takes the units.
  /// Refused with `errc::invalid_argument`, before anything is sent, as
  /// `check_reserve_request` says.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& r,
                     CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "reserve");
    if (!bad) bad = check_request(sku, r);
    if (!bad)
      eval(req, sku, r.order_id, r.user, r.request_id, "reserve", r.order_id, r.quantity,
           r.hold.count(), options_.order_retention.count(), r.user, r.request_id, prefix(sku));
    return run<void(std::error_code, reserve_result)>(
        "reserve", std::move(req), true, bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          reserve_result r;
          if (v.type != resp_type::array || v.elements.size() != 5 || !v.elements[0].is_string() ||
              !v.elements[4].is_string()) {
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
          else if (status == "limited")
            r.status = reserve_status::limited;
          else
            ec = make_error_code(seckill::errc::protocol_error);
          r.remaining = to_int(v.elements[1], ec);
          r.replayed = to_int(v.elements[2], ec) != 0;
          r.order_id = to_int(v.elements[3], ec);
          r.state = to_state(v.elements[4].text, ec);
          return r;
        });
  }

  /// Refused with `errc::invalid_argument` for a limit outside [0,
  /// max_units]. Kept in the SKU's stock hash (`per_user_limit`), before
  /// `set_stock` too.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, const sku_policy& policy,
                        CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "set_policy");
    if (!bad && (policy.per_user_limit < 0 || policy.per_user_limit > max_units))
      bad = refuse("set_policy per_user_limit " + std::to_string(policy.per_user_limit) +
                   " for sku '" + std::string(sku) + "' out of range [0, max_units " +
                   std::to_string(max_units) + "]");
    if (!bad) req.push("HSET", stock_key(sku), "per_user_limit", policy.per_user_limit);
    return run<void(std::error_code)>("set_policy", std::move(req), false, bad,
                                      std::forward<CompletionToken>(token),
                                      [](const value& v, std::error_code& ec, std::string&) {
                                        if (v.type != resp_type::integer)
                                          ec = make_error_code(seckill::errc::protocol_error);
                                      });
  }

  /// The default policy (per_user_limit 1) for a SKU never given one.
  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    request req;
    const std::error_code bad = check_sku(sku, "get_policy");
    if (!bad) req.push("HGET", stock_key(sku), "per_user_limit");
    return run<void(std::error_code, sku_policy)>(
        "get_policy", std::move(req), false, bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string&) {
          sku_policy p;
          if (!v.is_null()) p.per_user_limit = to_int(v, ec);
          return p;
        });
  }

  /// A committed order's record (one HMGET); `errc::unknown_order` for any
  /// other. Refused with `errc::invalid_argument` for an order id <= 0.
  template <boost::asio::completion_token_for<void(std::error_code, order_entry)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_order(std::string_view sku, std::int64_t order_id,
                       CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "get_order");
    if (!bad && order_id <= 0)
      bad = refuse("get_order order id " + std::to_string(order_id) + " of sku '" +
                   std::string(sku) + "' is not positive");
    if (!bad) req.push("HMGET", order_key(sku, order_id), "state", "qty", "user", "request");
    return run<void(std::error_code, order_entry)>(
        "get_order", std::move(req), false, bad, std::forward<CompletionToken>(token),
        [order_id](const value& v, std::error_code& ec, std::string&) {
          order_entry o;
          if (v.type != resp_type::array || v.elements.size() != 4) {
            ec = make_error_code(seckill::errc::protocol_error);
            return o;
          }
          if (!v.elements[0].is_string() || v.elements[0].text != "committed") {
            ec = make_error_code(seckill::errc::unknown_order);
            return o;
          }
          o.order_id = order_id;
          o.quantity = to_int(v.elements[1], ec);
          o.user = v.elements[2].text;
          o.request_id = v.elements[3].text;
          return o;
        });
  }

  /// Committed orders with ids above `after`, in increasing id order: one
  /// script reads the `sold` index by lexical range (ids zero-padded to 19
  /// digits, since Snowflake ids pass what a score holds exactly) and each
  /// order's record. Refused with `errc::invalid_argument` for `after` < 0 or
  /// `limit` outside [1, max_order_page].
  template <boost::asio::completion_token_for<void(std::error_code, order_page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit,
                         CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "list_orders");
    if (!bad && after < 0)
      bad = refuse("list_orders after " + std::to_string(after) + " of sku '" + std::string(sku) +
                   "' is negative");
    if (!bad && (limit == 0 || limit > max_order_page))
      bad = refuse("list_orders limit " + std::to_string(limit) + " of sku '" + std::string(sku) +
                   "' out of range [1, max_order_page " + std::to_string(max_order_page) + "]");
    if (!bad) eval(req, sku, 0, {}, {}, "list", padded(after), limit, prefix(sku));
    return run<void(std::error_code, order_page)>(
        "list_orders", std::move(req), true, bad, std::forward<CompletionToken>(token),
        [sku = bad ? std::string() : std::string(sku)](const value& v, std::error_code& ec,
                                                       std::string& message) {
          order_page page;
          if (v.type != resp_type::array || v.elements.size() != 2 ||
              v.elements[1].type != resp_type::array || v.elements[1].elements.size() % 4 != 0) {
            ec = make_error_code(seckill::errc::protocol_error);
            return page;
          }
          const auto& flat = v.elements[1].elements;
          for (std::size_t i = 0; i + 3 < flat.size(); i += 4) {
            order_entry o;
            o.order_id = to_int(flat[i], ec);
            if (flat[i + 1].is_string() && flat[i + 1].text.empty()) {
              ec = make_error_code(seckill::errc::protocol_error);
              message = "redis_store: list_orders: order " + flat[i].text + " of sku '" + sku +
                        "' is in the sold index but its record is missing or not committed";
              return order_page{};
            }
            o.quantity = to_int(flat[i + 1], ec);
            o.user = flat[i + 2].text;
            o.request_id = flat[i + 3].text;
            page.orders.push_back(std::move(o));
          }
          if (to_int(v.elements[0], ec) != 0 && !page.orders.empty())
            page.next = page.orders.back().order_id;
          return page;
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
      eval(req, sku, 0, {}, {}, "reap", clamped, options_.order_retention.count(), prefix(sku));
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

  static std::string prefix(std::string_view sku) { return "seckill:{" + std::string(sku) + "}:"; }

  // `order_id` zero-padded to 19 digits: the `sold` index's members sort as the ids.
  static std::string padded(std::int64_t order_id) {
    std::string digits = std::to_string(order_id);
    return std::string(digits.size() < 19 ? 19 - digits.size() : 0, '0') + digits;
  }

  // Appends the store script's EVALSHA with the seven keys of `sku` and `args`.
  template <class... Args>
  void eval(request& req, std::string_view sku, std::int64_t order_id, std::string_view user,
            std::string_view request_id, const Args&... args) const {
    script_.evalsha(req, 7, stock_key(sku), order_key(sku, order_id), holds_key(sku),
                    users_key(sku), sold_key(sku), orders_key(sku),
                    request_key(sku, user, request_id), args...);
  }

  static order_state to_state(std::string_view s, std::error_code& ec) {
    if (s == "held") return order_state::held;
    if (s == "committed") return order_state::committed;
    if (s == "rolled_back") return order_state::rolled_back;
    if (s == "refused") return order_state::refused;
    if (!ec) ec = make_error_code(seckill::errc::protocol_error);
    return order_state::refused;
  }

  // The contract's checks of a reserve_request (check_reserve_request), in words.
  std::error_code check_request(std::string_view sku, const reserve_request& r) {
    if (!check_reserve_request(r)) return {};
    const std::string of =
        " of sku '" + std::string(sku) + "' for order " + std::to_string(r.order_id);
    if (r.order_id <= 0)
      return refuse("reserve order id " + std::to_string(r.order_id) + " of sku '" +
                    std::string(sku) + "' is not positive");
    if (r.quantity <= 0 || r.quantity > max_units)
      return refuse("reserve quantity " + std::to_string(r.quantity) + of +
                    " out of range [1, max_units " + std::to_string(max_units) + "]");
    if (r.hold.count() <= 0 || r.hold > max_hold)
      return refuse("reserve hold " + std::to_string(r.hold.count()) + " ms" + of +
                    " out of range (0, max_hold " + std::to_string(max_hold.count()) + " ms]");
    if (!r.request_id.empty() && r.user.empty())
      return refuse("reserve request id '" + std::string(r.request_id) + "'" + of + " has no user");
    const bool user_bad = !r.user.empty() && !valid_buyer_key(r.user);
    const std::string_view key = user_bad ? r.user : r.request_id;
    return refuse(std::string("reserve ") + (user_bad ? "user" : "request id") + " '" +
                  std::string(key.substr(0, 2 * max_key_length)) + "' (" +
                  std::to_string(key.size()) + " characters)" + of + " is not 1 to " +
                  std::to_string(max_key_length) + " characters of [A-Za-z0-9._:@-]");
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
      eval(req, sku, order_id, {}, {}, op, order_id, options_.order_retention.count(), prefix(sku));
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
