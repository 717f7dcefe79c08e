#pragma once
/// @file
/// @brief What `redis_store` sends Redis and how it reads the answers:
///        the store's Lua script (`store_lua`), the oldest server it runs on,
///        and the decoders of every reply the store gets. Pure: no I/O
///        (redis_store.hpp sends the requests).
///
/// A decoder takes (reply, ec, message): it sets `ec` (protocol_error for a
/// reply of the wrong shape, or the contract's error the reply means) and
/// may put a failure in words into `message`; it returns the result.

#include <seckill/error.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>
#include <seckill/store/store.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief The Lua behind `redis_store`: KEYS = stock, order, holds, users,
///        sold, orders (the stream), request (the binding); the stock key is
///        also the channel its remaining is published on (`stock_feed`) when
///        set, when it reaches 0 and when it leaves 0; ARGV[1] names the
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
-- The key of an order's request binding, or nil when it has none.
local function binding(prefix, user, req)
  if user and user ~= '' and req and req ~= '' then
    return prefix .. 'request:' .. user .. '/' .. req
  end
  return nil
end
-- Gives a held order back (rollback, a commit refused once the hold passed,
-- reap): its units return to the stock and to its user's allowance, its
-- record (at `key`) is marked rolled_back, and the record and its request
-- binding live `keep` ms more. The only place a binding gets a TTL.
local function announce(rem)
  -- stock_feed: the SKU's remaining, when it is set, reaches 0 or leaves 0.
  redis.call('PUBLISH', stock, rem)
end
local function give_back(key, qty, user, req, prefix, keep)
  if redis.call('HINCRBY', stock, 'remaining', qty) == qty then announce(qty) end
  redis.call('HINCRBY', stock, 'reserved', -qty)
  if user and user ~= '' then
    if redis.call('HINCRBY', users, user, -qty) <= 0 then redis.call('HDEL', users, user) end
  end
  redis.call('HSET', key, 'state', 'rolled_back')
  redis.call('PEXPIRE', key, keep)
  local b = binding(prefix, user, req)
  if b then redis.call('PEXPIRE', b, keep) end
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
  announce(ARGV[2])
  return {'done', reserved, committed}
elseif op == 'reserve' then
  -- ARGV: order id, qty, hold, keep, user, request id, prefix. Replies
  -- {status, remaining, replayed, order id, state}.
  local id, qty, hold, keep = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local user, req = ARGV[6], ARGV[7]
  local s = redis.call('HMGET', stock, 'remaining', 'per_user_limit', 'sale_start', 'sale_end')
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
  -- The sale window, by this server's clock, after the replays and before
  -- the stock: a refusal by it writes nothing (no record, no binding).
  if s[3] or s[4] then
    local now = now_ms()
    local why = nil
    if s[3] and now < tonumber(s[3]) then why = 'not_started' end
    if s[4] and now >= tonumber(s[4]) then why = 'ended' end
    if why then return {why, tonumber(s[1]), 0, '0', 'refused'} end
  end
  -- Stock first, then the user's allowance: when both would refuse, the
  -- answer is sold_out (the stock_store contract: stock first).
  local rem = tonumber(s[1])
  local why = nil
  if rem < qty then
    -- ARGV[9] '1': a shard of a split SKU, whose store brings units from the
    -- other shards and asks again: short of stock, it records nothing.
    if ARGV[9] == '1' then return {'sold_out', rem, 0, '0', 'refused'} end
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
  if rem == 0 then announce(0) end
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
  if op == 'rollback' or tonumber(o[3]) <= now_ms() then
    -- A held order replayed after its hold passed reads rolled_back
    -- (state_now); a commit that late gives it back for good.
    give_back(order, qty, user, req, prefix, keep)
    if op == 'rollback' then return 'done' end
    return 'order_rolled_back'
  end
  -- Sold: the record stays (no TTL), indexed by its zero-padded id, and
  -- streamed; its request binding stays as long (PERSIST), so a retry with
  -- the same (user, request id), however late, replays the sale and never
  -- buys again.
  redis.call('HINCRBY', stock, 'reserved', -qty)
  redis.call('HINCRBY', stock, 'committed', qty)
  redis.call('HSET', order, 'state', 'committed')
  local b = binding(prefix, user, req)
  if b then redis.call('PERSIST', b) end
  redis.call('ZADD', sold, 0, string.rep('0', 19 - #id) .. id)
  redis.call('XADD', stream, '*', 'order_id', id, 'quantity', o[2], 'user', user,
             'request_id', req)
  return 'done'
elseif op == 'reap' then
  -- ARGV: limit, keep, prefix, fence (0: none). A fenced reap keeps the
  -- highest fence seen at <prefix>fence and is refused, taking nothing,
  -- below it: replies {'fenced_out', fence seen}.
  local limit, keep, prefix, fence = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
  if fence ~= '0' then
    local seen = redis.call('GET', prefix .. 'fence')
    if seen and tonumber(seen) > tonumber(fence) then return {'fenced_out', seen} end
    if seen ~= fence then redis.call('SET', prefix .. 'fence', fence) end
  end
  local ids = redis.call('ZRANGEBYSCORE', holds, '-inf', now_ms(), 'LIMIT', 0, limit)
  local reaped = 0
  for _, id in ipairs(ids) do
    local key = prefix .. 'order:' .. id
    local o = redis.call('HMGET', key, 'state', 'qty', 'user', 'request')
    if o[1] == 'held' then
      give_back(key, tonumber(o[2]), o[3], o[4], prefix, keep)
      reaped = reaped + 1
    end
    redis.call('ZREM', holds, id)
  end
  return reaped
elseif op == 'give' then
  -- A shard of a split SKU gives units to another (sharded_store.hpp).
  -- ARGV: transfer id, wanted, recipient shard, prefix, exact ('1': the
  -- wanted units at most). Gives the wanted units or half of what it has,
  -- whichever is more (exact: the wanted ones), at most all of it, and
  -- keeps the transfer at <prefix>transfers until the recipient has them
  -- (`settled`); `sent` counts what it ever gave. Replies {given, remaining
  -- left}; a transfer id seen before answers what it gave then.
  local tid, want, to, prefix = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
  local seen = redis.call('HGET', prefix .. 'transfers', tid)
  if seen then return {tonumber(string.match(seen, '^%d+')), -1} end
  local rem = tonumber(redis.call('HGET', stock, 'remaining') or '0')
  if rem <= 0 then return {0, rem} end
  local n = math.min(rem, math.max(want, math.ceil(rem / 2)))
  if ARGV[6] == '1' then n = math.min(rem, want) end
  rem = redis.call('HINCRBY', stock, 'remaining', -n)
  if rem == 0 then announce(0) end
  redis.call('HINCRBY', stock, 'sent', n)
  redis.call('HSET', prefix .. 'transfers', tid, n .. ' ' .. to)
  return {n, rem}
elseif op == 'take' then
  -- The recipient's side: ARGV: transfer id, units, prefix. Once per
  -- transfer id (<prefix>received); `received` counts what it ever took.
  -- Replies 1 when it took them now, 0 when it had already.
  local tid, n, prefix = ARGV[2], tonumber(ARGV[3]), ARGV[4]
  if redis.call('HSETNX', prefix .. 'received', tid, n) == 0 then return 0 end
  if redis.call('HINCRBY', stock, 'remaining', n) == n then announce(n) end
  redis.call('HINCRBY', stock, 'received', n)
  return 1
elseif op == 'settled' then
  -- The giver forgets a transfer its recipient has: ARGV: transfer id, prefix.
  return redis.call('HDEL', ARGV[3] .. 'transfers', ARGV[2])
elseif op == 'pending' then
  -- The transfers a giver keeps: ARGV: prefix. Replies {id, 'units to', ...}.
  return redis.call('HGETALL', ARGV[2] .. 'transfers')
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

namespace detail {

/// A reply's shape in a few words, for messages.
inline std::string describe_reply(const value& v) {
  std::string out(to_string(v.type));
  if (v.is_aggregate()) out += " of " + std::to_string(v.elements.size()) + " elements";
  if (v.type == resp_type::integer) out += " " + std::to_string(v.integer);
  if (!v.text.empty()) out += " '" + v.text.substr(0, 80) + (v.text.size() > 80 ? "...'" : "'");
  return out;
}

/// An integer reply, or a string of one; null (a stock field never written)
/// reads 0. Anything else sets protocol_error (unless `ec` is set already).
inline std::int64_t reply_int(const value& v, std::error_code& ec) {
  if (v.type == resp_type::integer) return v.integer;
  if (v.type == resp_type::null) return 0;
  if (v.is_string()) {
    std::int64_t n = 0;
    const auto r = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
    if (r.ec == std::errc{} && r.ptr == v.text.data() + v.text.size()) return n;
  }
  if (!ec) ec = make_error_code(seckill::errc::protocol_error);
  return 0;
}

/// An order record's `state` field.
inline order_state reply_state(std::string_view s, std::error_code& ec) {
  if (s == "held") return order_state::held;
  if (s == "committed") return order_state::committed;
  if (s == "rolled_back") return order_state::rolled_back;
  if (s == "refused") return order_state::refused;
  if (!ec) ec = make_error_code(seckill::errc::protocol_error);
  return order_state::refused;
}

/// The script's `set`: {done|too_many, reserved, committed}. A refusal is
/// invalid_argument, told with `quantity`, `sku` and the units seen.
inline void decode_set_stock(const value& v, std::error_code& ec, std::string& message,
                             std::int64_t quantity, const std::string& sku) {
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
  message = "redis_store: set_stock quantity " + std::to_string(quantity) + " for sku '" + sku +
            "' refused: with " + std::to_string(reply_int(v.elements[1], ec)) +
            " units reserved and " + std::to_string(reply_int(v.elements[2], ec)) +
            " committed, remaining + reserved + committed would pass max_units " +
            std::to_string(max_units);
}

/// `HMGET stock remaining reserved committed`; unknown_sku for no record.
inline stock_level decode_stock(const value& v, std::error_code& ec, std::string&) {
  stock_level level;
  if (v.type != resp_type::array || v.elements.size() != 3) {
    ec = make_error_code(seckill::errc::protocol_error);
    return level;
  }
  if (v.elements[0].is_null()) {
    ec = make_error_code(seckill::errc::unknown_sku);
    return level;
  }
  level.remaining = reply_int(v.elements[0], ec);
  level.reserved = reply_int(v.elements[1], ec);
  level.committed = reply_int(v.elements[2], ec);
  return level;
}

/// The script's `reserve`: {status, remaining, replayed, order id, state}.
inline reserve_result decode_reserve(const value& v, std::error_code& ec, std::string&) {
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
  else if (status == "not_started")
    r.status = reserve_status::not_started;
  else if (status == "ended")
    r.status = reserve_status::ended;
  else
    ec = make_error_code(seckill::errc::protocol_error);
  r.remaining = reply_int(v.elements[1], ec);
  r.replayed = reply_int(v.elements[2], ec) != 0;
  r.order_id = reply_int(v.elements[3], ec);
  r.state = reply_state(v.elements[4].text, ec);
  return r;
}

/// `HSET stock per_user_limit n sale_start ms sale_end ms`: the count of fields added.
inline void decode_set_policy(const value& v, std::error_code& ec, std::string&) {
  if (v.type != resp_type::integer) ec = make_error_code(seckill::errc::protocol_error);
}

/// `HMGET stock per_user_limit sale_start sale_end`: the default policy (or
/// bound) for each field never set.
inline sku_policy decode_policy(const value& v, std::error_code& ec, std::string&) {
  sku_policy p;
  if (v.type != resp_type::array || v.elements.size() != 3) {
    ec = make_error_code(seckill::errc::protocol_error);
    return p;
  }
  if (!v.elements[0].is_null()) p.per_user_limit = reply_int(v.elements[0], ec);
  if (!v.elements[1].is_null())
    p.sale_start = sale_time{std::chrono::milliseconds{reply_int(v.elements[1], ec)}};
  if (!v.elements[2].is_null())
    p.sale_end = sale_time{std::chrono::milliseconds{reply_int(v.elements[2], ec)}};
  return p;
}

/// `HMGET order state qty user request` of `order_id`; unknown_order unless
/// committed.
inline order_entry decode_order(const value& v, std::error_code& ec, std::int64_t order_id) {
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
  o.quantity = reply_int(v.elements[1], ec);
  o.user = v.elements[2].text;
  o.request_id = v.elements[3].text;
  return o;
}

/// The script's `list`: {more, {id, qty, user, request id, ...}}. An
/// indexed order without its committed record is protocol_error, named
/// with `sku` in `message`.
inline order_page decode_order_page(const value& v, std::error_code& ec, std::string& message,
                                    const std::string& sku) {
  order_page page;
  if (v.type != resp_type::array || v.elements.size() != 2 ||
      v.elements[1].type != resp_type::array || v.elements[1].elements.size() % 4 != 0) {
    ec = make_error_code(seckill::errc::protocol_error);
    return page;
  }
  const auto& flat = v.elements[1].elements;
  for (std::size_t i = 0; i + 3 < flat.size(); i += 4) {
    order_entry o;
    o.order_id = reply_int(flat[i], ec);
    if (flat[i + 1].is_string() && flat[i + 1].text.empty()) {
      ec = make_error_code(seckill::errc::protocol_error);
      message = "redis_store: list_orders: order " + flat[i].text + " of sku '" + sku +
                "' is in the sold index but its record is missing or not committed";
      return order_page{};
    }
    o.quantity = reply_int(flat[i + 1], ec);
    o.user = flat[i + 2].text;
    o.request_id = flat[i + 3].text;
    page.orders.push_back(std::move(o));
  }
  if (reply_int(v.elements[0], ec) != 0 && !page.orders.empty())
    page.next = page.orders.back().order_id;
  return page;
}

/// The script's `commit` and `rollback`: done, already, or the contract's
/// refusal.
inline settle_result decode_settle(const value& v, std::error_code& ec, std::string&) {
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
}

/// The script's `reap`: how many holds it gave back, or `errc::fenced_out`
/// with the fence seen named in `message` (for the reap described by `what`).
inline std::size_t decode_reaped(const value& v, std::error_code& ec, std::string& message,
                                 const std::string& what = {}) {
  if (v.type == resp_type::array) {
    if (v.elements.size() == 2 && v.elements[0].is_string() && v.elements[0].text == "fenced_out" &&
        v.elements[1].is_string()) {
      ec = make_error_code(seckill::errc::fenced_out);
      message = "redis_store: " + what + ": refused, a newer leader reaped with fence " +
                v.elements[1].text;
    } else {
      ec = make_error_code(seckill::errc::protocol_error);
    }
    return 0;
  }
  const auto n = reply_int(v, ec);
  return n < 0 ? std::size_t{0} : static_cast<std::size_t>(n);
}

/// A shard's `HMGET stock remaining reserved committed sent received`
/// (sharded_store.hpp): unknown_sku for no record.
struct shard_level {
  stock_level level;
  std::int64_t sent = 0;      // units it ever gave to other shards
  std::int64_t received = 0;  // units it ever took from them
  bool known = false;         // the shard has a stock record
};

inline shard_level decode_shard_level(const value& v, std::error_code& ec, std::string&) {
  shard_level s;
  if (v.type != resp_type::array || v.elements.size() != 5) {
    ec = make_error_code(seckill::errc::protocol_error);
    return s;
  }
  s.known = !v.elements[0].is_null();
  s.level.remaining = reply_int(v.elements[0], ec);
  s.level.reserved = reply_int(v.elements[1], ec);
  s.level.committed = reply_int(v.elements[2], ec);
  s.sent = reply_int(v.elements[3], ec);
  s.received = reply_int(v.elements[4], ec);
  return s;
}

/// The script's `give`: {units given, remaining left}; the units.
inline std::int64_t decode_given(const value& v, std::error_code& ec, std::string&) {
  if (v.type != resp_type::array || v.elements.size() != 2) {
    ec = make_error_code(seckill::errc::protocol_error);
    return 0;
  }
  return reply_int(v.elements[0], ec);
}

/// The script's `take` and `settled`: an integer.
inline void decode_integer_reply(const value& v, std::error_code& ec, std::string&) {
  if (v.type != resp_type::integer) ec = make_error_code(seckill::errc::protocol_error);
}

/// A transfer a shard gave and keeps until its recipient has the units.
struct transfer {
  std::string id;
  std::int64_t units = 0;
  int to = 0;  // the recipient shard
};

/// The script's `pending`: {id, 'units to', ...}.
inline std::vector<transfer> decode_transfers(const value& v, std::error_code& ec, std::string&) {
  std::vector<transfer> out;
  if (v.type != resp_type::array || v.elements.size() % 2 != 0) {
    ec = make_error_code(seckill::errc::protocol_error);
    return out;
  }
  for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    transfer t;
    t.id = v.elements[i].text;
    const std::string& what = v.elements[i + 1].text;
    const char* end = what.data() + what.size();
    auto r = std::from_chars(what.data(), end, t.units);
    const bool spaced = r.ec == std::errc{} && r.ptr != end && *r.ptr == ' ';
    if (spaced) r = std::from_chars(r.ptr + 1, end, t.to);
    if (!spaced || r.ec != std::errc{} || r.ptr != end || t.units <= 0 || t.to < 0) {
      ec = make_error_code(seckill::errc::protocol_error);
      return {};
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace detail

}  // namespace seckill::redis
