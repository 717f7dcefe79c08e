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
/// The script (`store_lua`), the oldest server it runs on and the decoders
/// of the replies are in redis/detail/store_script.hpp.
///
/// Hold expiry is measured by the server's clock (`TIME` inside the script),
/// so clients with skewed clocks agree. An order record has no TTL while it
/// is held (a held record is never lost, so its units are always given
/// back) nor once committed (it is the sold order); once it is rolled back,
/// expired or refused it lives `order_retention` more (24 h by default).
/// An order's request binding follows its record: no TTL while held or once
/// committed (a retry with the same request id, however late, replays the
/// sale and never buys again), `order_retention` once given back. Within
/// that window a repeated reserve, commit or rollback answers as the first
/// one did; after it, the order id (and the request id) is forgotten.
///
/// SKUs: not empty, and redis_store's own rule, no `{` or `}` (they would
/// break the hash tag); every operation refuses others with
/// `errc::invalid_argument`.
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
#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/detail/store_script.hpp>
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

/// @brief Tuning of a `redis_store`.
struct redis_store_options {
  /// How long a settled or refused order record is kept (see the file
  /// comment): from one second to `max_units` (2^53) ms, what the script's
  /// numbers hold exactly.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
  /// Connections in the pool (`pooled_redis_store` only).
  std::size_t pool_size = 2;
  /// Durability against a master's loss: every write (set_stock, reserve,
  /// commit, rollback, reap, set_policy) is followed, in the same round trip,
  /// by `WAIT replicas_to_wait replication_timeout`, and succeeds only when
  /// that many replicas have it; otherwise it completes with
  /// `errc::store_unavailable` (it ran on the master and may be lost with
  /// it: retrying with the same order id tells). 0: no WAIT (the default).
  /// With one replica per master, a write acknowledged survives a failover
  /// to that replica. Cost: the connection waits for the replicas' answer
  /// before the next request's reply (docs/redis.md, "Durability").
  int replicas_to_wait = 0;
  /// How long a WAIT waits for the replicas, in [1, 60000] ms.
  std::chrono::milliseconds replication_timeout{1000};
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

/// The composed operation behind every `basic_redis_store` operation:
/// builds the request with `build(request&)` and sends it (once more after
/// `SCRIPT LOAD` on NOSCRIPT when `scripted`: `build` is called again, so it
/// keeps what it needs), followed by `WAIT` when `wait_replicas` > 0 (a
/// write with `replicas_to_wait`), decodes the reply with `decode(value,
/// ec, message)`, completes with (ec[, result]); an error reply, a decoding
/// failure or too few replicas is noted in words.
template <class Signature, class Connection, class Build, class Decode>
struct store_op {
  Connection& conn;
  const script& lua;
  store_note& note;
  const char* what;
  Build build;
  bool scripted;
  std::error_code bad;
  Decode decode;
  int wait_replicas = 0;
  std::int64_t wait_ms = 0;
  bool reloaded = false;  // the script was loaded again after NOSCRIPT

  template <class Self>
  void operator()(Self& self) {
    if (bad) {
      boost::asio::post(conn.get_executor(), boost::asio::append(std::move(self), bad, value{}));
      return;
    }
    send(self);
  }
  template <class Self>
  void operator()(Self& self, std::error_code ec, std::vector<value> replies) {
    if (!ec && scripted && !reloaded && script::noscript(replies)) {
      reloaded = true;
      send(self);
      return;
    }
    // one reply, after SCRIPT LOAD's when the script was loaded again, before WAIT's
    const std::size_t at = reloaded ? 1u : 0u;
    if (!ec && replies.size() != at + 1 + (wait_replicas > 0 ? 1u : 0u))
      ec = make_error_code(seckill::errc::protocol_error);
    if (!ec && wait_replicas > 0 && !replies[at].is_error()) {
      const value& copies = replies.back();
      if (copies.type != resp_type::integer || copies.integer < wait_replicas) {
        note.set(std::string("redis_store: ") + what + " ran on the master but reached " +
                 (copies.type == resp_type::integer ? std::to_string(copies.integer)
                                                    : describe_reply(copies)) +
                 " of the " + std::to_string(wait_replicas) + " replicas wanted within " +
                 std::to_string(wait_ms) + " ms: it may be lost with the master");
        ec = make_error_code(seckill::errc::store_unavailable);
      }
    }
    (*this)(self, ec, ec ? value{} : std::move(replies[at]));
  }
  template <class Self>
  void operator()(Self& self, std::error_code ec, value v) {
    ec = seckill::detail::store_error(ec);  // the contract's word for a backend out of reach
    std::string message;
    if (!ec && v.is_error() && is_permission_refusal(v)) {  // the user's ACL lacks a right
      ec = make_error_code(seckill::errc::permission_denied);
      const std::string called = scripted ? script_command_at(v.text, lua.body()) : std::string();
      message = std::string("redis_store: ") + what + (scripted ? " (EVALSHA)" : "") +
                " refused by the server's ACL: " + v.text +
                (called.empty() ? "" : " (the script's " + called + ")") +
                " (redis::store_acl_rules lists the rights the store needs)";
    } else if (!ec && v.is_error()) {
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
  template <class Self>
  void send(Self& self) {
    request req;
    if (reloaded) lua.load(req);
    build(req);
    if (wait_replicas > 0) req.push("WAIT", wait_replicas, wait_ms);
    conn.async_exec(std::move(req), std::move(self));
  }

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
/// shared with the requests pipelined with it; a request of about 400
/// bytes, written in place (no allocation below `request::inline_bytes`);
/// the SKU, user and request id kept by value for the NOSCRIPT recovery (no
/// allocation up to 15 bytes each); then what `connection::async_exec`
/// costs: about 3 heap allocations per reserve in all (bench/README.md). A
/// failure's message costs a lock and a string, on failures only.
template <class Connection>
class basic_redis_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using connection_type = Connection;
  /// `connection_config`, or `cluster_config` for the store on a cluster.
  using config_type = std::conditional_t<std::is_same_v<Connection, cluster_client>, cluster_config,
                                         connection_config>;

  /// Connects nothing yet: call `async_connect`. Throws `seckill::error`
  /// (invalid_argument) on a retention outside [1 s, 2^53 ms], a
  /// `replicas_to_wait` outside [0, 16] or a `replication_timeout` outside
  /// [1, 60000] ms, or a configuration the connection refuses.
  basic_redis_store(const executor_type& ex, config_type cfg, redis_store_options options = {})
      : ex_(ex),
        options_(checked(options)),
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
  static std::string stock_key(std::string_view sku) { return stock_key_arg(sku).str(); }
  static std::string holds_key(std::string_view sku) { return holds_key_arg(sku).str(); }
  static std::string order_key(std::string_view sku, std::int64_t order_id) {
    return order_key_arg(sku, order_id).str();
  }
  static std::string users_key(std::string_view sku) { return users_key_arg(sku).str(); }
  static std::string sold_key(std::string_view sku) { return sold_key_arg(sku).str(); }
  /// The stream of committed orders, for downstream consumers (docs/redis.md).
  static std::string orders_key(std::string_view sku) { return orders_key_arg(sku).str(); }
  /// The binding of (user, request_id): '/' separates them, as neither holds one.
  static std::string request_key(std::string_view sku, std::string_view user,
                                 std::string_view request_id) {
    return request_key_arg(sku, user, request_id).str();
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
    std::error_code bad = check_sku(sku, "set_stock");
    if (!bad && (quantity < 0 || quantity > max_units))
      bad = refuse("set_stock quantity " + std::to_string(quantity) + " for sku '" +
                   std::string(sku) + "' out of range [0, max_units " + std::to_string(max_units) +
                   "]");
    auto args = [this, sku = std::string(sku), quantity](request& req) {
      eval(req, sku, 0, {}, {}, "set", quantity, max_units);
    };
    return run_script<void(std::error_code)>(
        "set_stock", std::move(args), bad, std::forward<CompletionToken>(token),
        [quantity, sku = bad ? std::string() : std::string(sku)](
            const value& v, std::error_code& ec, std::string& message) {
          detail::decode_set_stock(v, ec, message, quantity, sku);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    request req;
    const std::error_code bad = check_sku(sku, "stock");
    if (!bad) req.push("HMGET", stock_key_arg(sku), "remaining", "reserved", "committed");
    return run<void(std::error_code, stock_level)>(
        "stock", std::move(req), bad, std::forward<CompletionToken>(token), &detail::decode_stock);
  }

  /// The reserve below with no user (no per-user limit) and no request id:
  /// refused as it is, for an order id <= 0, a `quantity` outside
  /// [1, max_units] or a `hold` outside (0, max_hold].
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return async_reserve(sku,
                         reserve_request{.order_id = order_id, .quantity = quantity, .hold = hold},
                         std::forward<CompletionToken>(token));
  }

  /// The reserve for a named buyer (store/store.hpp, "Buyers"): one script
  /// checks the order id, the (user, request_id) binding, the stock and the
  /// user's units against the SKU's `per_user_limit`, then takes the units.
  /// Refused with `errc::invalid_argument`, before anything is sent, exactly
  /// when `check_reserve_request(r)` refuses it, and for an empty SKU or one
  /// holding `{` or `}` (redis_store's own rule, as for every operation: a
  /// brace would break the keys' hash tag); `last_error()` names the field
  /// and the value seen.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& r,
                     CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check_sku(sku, "reserve");
    if (!bad) bad = check_request(sku, r);
    return reserve_on(sku, r, bad, false, std::forward<CompletionToken>(token));
  }

  /// Refused with `errc::invalid_argument` when `sku_policy_problem` names
  /// a value (`last_error()` says which). Kept in the SKU's stock hash
  /// (`per_user_limit`, `sale_start`, `sale_end` in ms since the Unix
  /// epoch), before `set_stock` too. The reserve script judges the window by
  /// the server's `TIME`.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, const sku_policy& policy,
                        CompletionToken&& token = CompletionToken()) {
    request req;
    std::error_code bad = check_sku(sku, "set_policy");
    if (const std::string problem = sku_policy_problem(policy); !bad && !problem.empty())
      bad = refuse("set_policy of sku '" + std::string(sku) + "': " + problem);
    if (!bad)
      req.push("HSET", stock_key_arg(sku), "per_user_limit", policy.per_user_limit, "sale_start",
               policy.sale_start.time_since_epoch().count(), "sale_end",
               policy.sale_end.time_since_epoch().count());
    return run<void(std::error_code)>("set_policy", std::move(req), bad,
                                      std::forward<CompletionToken>(token),
                                      &detail::decode_set_policy);
  }

  /// The default policy (per_user_limit 1, no window) for a SKU never given one.
  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    request req;
    const std::error_code bad = check_sku(sku, "get_policy");
    if (!bad) req.push("HMGET", stock_key_arg(sku), "per_user_limit", "sale_start", "sale_end");
    return run<void(std::error_code, sku_policy)>("get_policy", std::move(req), bad,
                                                  std::forward<CompletionToken>(token),
                                                  &detail::decode_policy);
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
    if (!bad) req.push("HMGET", order_key_arg(sku, order_id), "state", "qty", "user", "request");
    return run<void(std::error_code, order_entry)>(
        "get_order", std::move(req), bad, std::forward<CompletionToken>(token),
        [order_id](const value& v, std::error_code& ec, std::string&) {
          return detail::decode_order(v, ec, order_id);
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
    std::error_code bad = check_sku(sku, "list_orders");
    if (!bad) {
      if (const std::string why = order_page_problem(after, limit); !why.empty())
        bad = refuse("list_orders of sku '" + std::string(sku) + "': " + why);
    }
    auto args = [this, sku = std::string(sku), after, limit](request& req) {
      eval(req, sku, 0, {}, {}, "list", padded(after), limit, prefix(sku));
    };
    return run_script<void(std::error_code, order_page)>(
        "list_orders", std::move(args), bad, std::forward<CompletionToken>(token),
        [sku = bad ? std::string() : std::string(sku)](const value& v, std::error_code& ec,
                                                       std::string& message) {
          return detail::decode_order_page(v, ec, message, sku);
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
    const std::error_code bad = check_sku(sku, "reap_expired");
    return run_script<void(std::error_code, std::size_t)>(
        "reap_expired", reap_args(sku, limit, 0), bad, std::forward<CompletionToken>(token),
        [](const value& v, std::error_code& ec, std::string& message) {
          return detail::decode_reaped(v, ec, message);
        });
  }

  /// The reap carrying a fencing token (`fence` >= 1): the script checks and
  /// raises the SKU's fence (`<prefix>fence`, same hash slot) in the same
  /// step as the reap; `errc::fenced_out`, taking nothing, below it, and
  /// `last_error()` names the fence seen.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit, std::int64_t fence,
                          CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check_sku(sku, "reap_expired");
    if (!bad && (fence <= 0 || fence > max_units))
      bad =
          refuse("reap_expired of sku '" + std::string(sku) + "': fence " + std::to_string(fence) +
                 " out of range [1, max_units " + std::to_string(max_units) + "]");
    std::string what =
        "reap_expired of sku '" + std::string(sku) + "' with fence " + std::to_string(fence);
    return run_script<void(std::error_code, std::size_t)>(
        "reap_expired", reap_args(sku, limit, fence), bad, std::forward<CompletionToken>(token),
        [what = std::move(what)](const value& v, std::error_code& ec, std::string& message) {
          return detail::decode_reaped(v, ec, message, what);
        });
  }

 private:
  template <class>
  friend class basic_sharded_store;

  // The reserve, refused with `bad` when set; `shard_of_split`: `sku` is a
  // shard of a split SKU, which records no refusal when short of stock (its
  // store brings units from the other shards and asks again).
  template <class Token>
  auto reserve_on(std::string_view sku, const reserve_request& r, std::error_code bad,
                  bool shard_of_split, Token&& token) {
    // (the strings are kept by value: a SKU, user and request id of up to
    // 15 bytes each cost no allocation)
    return run_script<void(std::error_code, reserve_result)>(
        "reserve",
        [this, sku = std::string(sku), order_id = r.order_id, quantity = r.quantity,
         hold = r.hold.count(), user = std::string(r.user), request_id = std::string(r.request_id),
         shard_of_split](request& req) {
          if (shard_of_split)
            eval(req, sku, order_id, user, request_id, "reserve", order_id, quantity, hold,
                 options_.order_retention.count(), user, request_id, prefix(sku), 1);
          else
            eval(req, sku, order_id, user, request_id, "reserve", order_id, quantity, hold,
                 options_.order_retention.count(), user, request_id, prefix(sku));
        },
        bad, std::forward<Token>(token), &detail::decode_reserve);
  }

  // A split SKU's transfers between its shards (the script's give, take,
  // settled and pending: sharded_store.hpp).
  template <class Token>
  auto give(std::string_view shard, const std::string& transfer, std::int64_t wanted, int to,
            bool exact, Token&& token) {
    return run_script<void(std::error_code, std::int64_t)>(
        "give",
        [this, shard = std::string(shard), transfer, wanted, to, exact](request& req) {
          eval(req, shard, 0, {}, {}, "give", transfer, wanted, to, prefix(shard), exact ? 1 : 0);
        },
        {}, std::forward<Token>(token), &detail::decode_given);
  }
  template <class Token>
  auto take(std::string_view shard, const std::string& transfer, std::int64_t units,
            Token&& token) {
    return run_script<void(std::error_code)>(
        "take",
        [this, shard = std::string(shard), transfer, units](request& req) {
          eval(req, shard, 0, {}, {}, "take", transfer, units, prefix(shard));
        },
        {}, std::forward<Token>(token), &detail::decode_integer_reply);
  }
  template <class Token>
  auto settled(std::string_view shard, const std::string& transfer, Token&& token) {
    return run_script<void(std::error_code)>(
        "settled",
        [this, shard = std::string(shard), transfer](request& req) {
          eval(req, shard, 0, {}, {}, "settled", transfer, prefix(shard));
        },
        {}, std::forward<Token>(token), &detail::decode_integer_reply);
  }
  template <class Token>
  auto pending(std::string_view shard, Token&& token) {
    return run_script<void(std::error_code, std::vector<detail::transfer>)>(
        "pending",
        [this, shard = std::string(shard)](request& req) {
          eval(req, shard, 0, {}, {}, "pending", prefix(shard));
        },
        {}, std::forward<Token>(token), &detail::decode_transfers);
  }
  // A shard's stock with what it gave and took (one HMGET).
  template <class Token>
  auto shard_level(std::string_view shard, Token&& token) {
    request req;
    req.push("HMGET", stock_key_arg(shard), "remaining", "reserved", "committed", "sent",
             "received");
    return run<void(std::error_code, detail::shard_level)>(
        "stock", std::move(req), {}, std::forward<Token>(token), &detail::decode_shard_level);
  }

  static Connection make_connection(const executor_type& ex, config_type cfg,
                                    const redis_store_options& options, const script& s) {
    connection_config* node = nullptr;
    if constexpr (std::is_same_v<config_type, cluster_config>)
      node = &cfg.node;
    else
      node = &cfg;
    s.load_into(*node);
    if (node->min_server_version < store_min_server_version)
      node->min_server_version = store_min_server_version;
    if constexpr (std::is_same_v<Connection, connection_pool>) {
      return Connection(ex, std::move(cfg), options.pool_size);
    } else {
      (void)options;
      return Connection(ex, std::move(cfg));
    }
  }
  static Connection make_connection(const executor_type& ex, config_type cfg,
                                    const redis_store_options& options) {
    return make_connection(ex, std::move(cfg), options, script(std::string(store_lua)));
  }

  static redis_store_options checked(const redis_store_options& options) {
    const auto ms = options.order_retention.count();
    if (ms < 1000 || ms > max_units)
      throw error(seckill::errc::invalid_argument,
                  "redis_store: order_retention " + std::to_string(ms) +
                      " ms out of range [1000, " + std::to_string(max_units) + "] ms");
    if (options.replicas_to_wait < 0 || options.replicas_to_wait > 16)
      throw error(seckill::errc::invalid_argument, "redis_store: replicas_to_wait " +
                                                       std::to_string(options.replicas_to_wait) +
                                                       " out of range [0, 16]");
    const auto wait = options.replication_timeout.count();
    if (wait < 1 || wait > 60000)
      throw error(seckill::errc::invalid_argument, "redis_store: replication_timeout " +
                                                       std::to_string(wait) +
                                                       " ms out of range [1, 60000] ms");
    return options;
  }

  // The keys as request arguments, written into the request without a
  // string of their own.
  static auto stock_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:stock"); }
  static auto holds_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:holds"); }
  static auto order_key_arg(std::string_view sku, std::int64_t order_id) {
    return joined("seckill:{", sku, "}:order:", order_id);
  }
  static auto users_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:users"); }
  static auto sold_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:sold"); }
  static auto orders_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:orders"); }
  static auto request_key_arg(std::string_view sku, std::string_view user,
                              std::string_view request_id) {
    return joined("seckill:{", sku, "}:request:", user, "/", request_id);
  }
  // What the script prefixes the keys it makes itself with.
  static auto prefix(std::string_view sku) { return joined("seckill:{", sku, "}:"); }

  // `order_id` zero-padded to 19 digits: the `sold` index's members sort as the ids.
  static std::string padded(std::int64_t order_id) {
    std::string digits = std::to_string(order_id);
    return std::string(digits.size() < 19 ? 19 - digits.size() : 0, '0') + digits;
  }

  // Appends the store script's EVALSHA with the seven keys of `sku` and `args`.
  template <class... Args>
  void eval(request& req, std::string_view sku, std::int64_t order_id, std::string_view user,
            std::string_view request_id, const Args&... args) const {
    // One allocation: a reserve's EVALSHA is about 340 bytes, plus the SKU
    // 8 times (7 keys and the prefix) and the user and request id twice.
    req.reserve(400 + 8 * sku.size() + 2 * (user.size() + request_id.size()));
    script_.evalsha(req, 7, stock_key_arg(sku), order_key_arg(sku, order_id), holds_key_arg(sku),
                    users_key_arg(sku), sold_key_arg(sku), orders_key_arg(sku),
                    request_key_arg(sku, user, request_id), args...);
  }

  // Refuses `r` exactly when the contract's check_reserve_request does (no
  // rule of redis_store's own), saying which field and the value seen.
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
    if (!r.user.empty() && !valid_buyer_key(r.user)) return refuse(bad_key("user", r.user, of));
    if (!r.request_id.empty() && !valid_buyer_key(r.request_id))
      return refuse(bad_key("request id", r.request_id, of));
    // Only if check_reserve_request gained a rule not told above.
    return refuse("reserve" + of + " refused by check_reserve_request");
  }

  static std::string bad_key(const char* what, std::string_view key, const std::string& of) {
    return std::string("reserve ") + what + " '" + std::string(key.substr(0, 2 * max_key_length)) +
           "' (" + std::to_string(key.size()) + " characters)" + of + " is not 1 to " +
           std::to_string(max_key_length) + " characters of [A-Za-z0-9._:@-]";
  }

  // Notes `message` and returns invalid_argument.
  std::error_code refuse(std::string message) {
    note_.set("redis_store: " + std::move(message));
    return make_error_code(seckill::errc::invalid_argument);
  }

  // Every operation's SKU: not empty (as every store), and redis_store's own
  // rule: no '{' or '}', which would break its keys' hash tag.
  std::error_code check_sku(std::string_view sku, const char* what) {
    if (sku.empty()) return refuse(std::string(what) + ": empty sku");
    if (sku.find_first_of("{}") != std::string_view::npos)  // a brace would break the hash tag
      return refuse(std::string(what) + ": sku '" + std::string(sku) +
                    "' contains '{' or '}', which would break its keys' hash tag");
    return {};
  }

  // The reap's script arguments (fence 0: none); a `limit` above
  // `max_units` is taken as `max_units`.
  auto reap_args(std::string_view sku, std::size_t limit, std::int64_t fence) {
    const std::uint64_t clamped =
        std::min<std::uint64_t>(limit, static_cast<std::uint64_t>(max_units));
    return [this, sku = std::string(sku), clamped, fence](request& req) {
      eval(req, sku, 0, {}, {}, "reap", clamped, options_.order_retention.count(), prefix(sku),
           fence);
    };
  }

  template <class Token>
  auto settle(const char* op, std::string_view sku, std::int64_t order_id, Token&& token) {
    const std::error_code bad = check_sku(sku, op);
    return run_script<void(std::error_code, settle_result)>(
        op,
        [this, op, sku = std::string(sku), order_id](request& req) {
          eval(req, sku, order_id, {}, {}, op, order_id, options_.order_retention.count(),
               prefix(sku));
        },
        bad, std::forward<Token>(token), &detail::decode_settle);
  }

  // Sends a command built once: `req`, moved into the connection.
  template <class Signature, class Token, class Decode>
  auto run(const char* what, request req, std::error_code bad, Token&& token, Decode decode) {
    return run_built<Signature>(
        what, [req = std::move(req)](request& out) mutable { out = std::move(req); }, false, bad,
        std::forward<Token>(token), std::move(decode));
  }

  // Whether the operation `what` writes (then it waits for replicas_to_wait).
  static bool writes(std::string_view what) noexcept {
    return what != "stock" && what != "get_policy" && what != "get_order" &&
           what != "list_orders" && what != "pending";
  }

  // Sends the store's script with the arguments `eval_args(request&)`
  // appends, built again for the NOSCRIPT recovery.
  template <class Signature, class Token, class Build, class Decode>
  auto run_script(const char* what, Build eval_args, std::error_code bad, Token&& token,
                  Decode decode) {
    return run_built<Signature>(what, std::move(eval_args), true, bad, std::forward<Token>(token),
                                std::move(decode));
  }

  // Sends what `build(request&)` makes (see detail::store_op), decodes the
  // reply with `decode(value, ec, message)`, completes with (ec[, result]).
  template <class Signature, class Build, class Token, class Decode>
  auto run_built(const char* what, Build build, bool scripted, std::error_code bad, Token&& token,
                 Decode decode) {
    return boost::asio::async_compose<Token, Signature>(
        detail::store_op<Signature, Connection, Build, Decode>{
            conn_, script_, note_, what, std::move(build), scripted, bad, std::move(decode),
            writes(what) ? options_.replicas_to_wait : 0, options_.replication_timeout.count()},
        // (the executor given, not the connection's strand: tracking work
        // on a strand type-erased anew allocates)
        token, ex_);
  }

  executor_type ex_;  // completions without an executor of their own run there
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
/// @brief The store on a Redis Cluster (cluster_client.hpp): each SKU's
///        keys share a slot, so every operation is still one script on one
///        master. Pair it with `replicas_to_wait` = 1 for a write that
///        survives its master's failover.
using redis_cluster_store = basic_redis_store<cluster_client>;

static_assert(stock_store<redis_store>);
static_assert(stock_store<pooled_redis_store>);
static_assert(fenced_stock_store<redis_store>);
static_assert(stock_store<redis_cluster_store>);
static_assert(fenced_stock_store<redis_cluster_store>);

}  // namespace seckill::redis
