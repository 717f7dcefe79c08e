#pragma once
/// @file
/// @brief `redis::basic_sharded_store`: the `stock_store` in Redis with a hot
///        SKU's stock split over several shards, each on its own hash slot,
///        so that on a Redis Cluster its reserves spread over several masters
///        instead of queueing on one.
///
/// A SKU split over K shards is kept as K SKUs of `redis_store`, named
/// `<sku>#0` ... `<sku>#<K-1>` (keys `seckill:{<sku>#i}:...`, K hash slots).
/// A SKU that is not split (K = 1, the default) is kept exactly as
/// `redis_store` keeps it, and every operation on it is `redis_store`'s.
///
/// Where a buyer's order goes: to the buyer's home shard, a hash of the user
/// (of the order id for a reserve without a user). All of a user's orders of
/// the SKU, their units, the per-user count and the (user, request id)
/// bindings are on that one shard, so the per-user limit and the idempotency
/// per request are checked by one script, exactly as on a whole SKU. The
/// same order id must always be reserved for the same user (a Snowflake id
/// per purchase is).
///
/// When the home shard is short of units, the store moves units to it from
/// the other shards, one at a time in a fixed order, and asks again: a
/// transfer takes the units wanted or half of what the giving shard has,
/// whichever is more (so a few transfers even out a sale), in three steps,
/// each one script: `give` on the giver (its remaining goes down, the
/// transfer is kept there), `take` on the recipient (once per transfer id),
/// `settled` on the giver (it forgets the transfer). A step lost to a crash
/// or a network failure leaves the units in transit, never lost and never
/// counted twice: the next `async_reap_expired` of the SKU completes every
/// transfer still kept (`take` again is a no-op). A reserve is answered
/// `sold_out` only when each other shard was found empty in turn; a unit
/// moving between two of them during that walk can be missed, and a retry
/// finds it.
///
/// What differs from a whole SKU, and only for a split one:
/// - `reserve_result::remaining` is what the home shard has left, at most
///   what the SKU has left; `async_stock` sums the shards (units in transit
///   count as remaining).
/// - `async_commit`, `async_rollback` and `async_get_order` do not know the
///   user, so they ask every shard at once (K scripts, one round trip); one
///   holds the order.
/// - `async_set_stock` spreads the units evenly over the shards (one script
///   each). It is refused when the total would pass `max_units` with the
///   units reserved and committed as read just before; a transfer in flight
///   while it runs lands on top of the new figure, so set a split SKU's
///   stock before its sale or while it is paused.
/// - `async_set_policy` writes every shard; `async_get_policy` reads shard 0.
/// - `async_rebalance` evens out the shards' remaining units (a whole SKU
///   has nothing to do).
/// - `async_list_orders` merges the shards' pages in id order.
/// - A fenced `async_reap_expired` reaps the shards in order and stops at the
///   first that refuses the fence (`errc::fenced_out`): a deposed leader may
///   have reaped the shards it reached before the new leader did.
///
/// SKU names: `redis_store`'s rules, and no `#` (shard names use it).
/// Every process sharing the SKUs must be given the same `split_options`.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief The most shards a SKU may be split over.
inline constexpr int max_shards = 64;

/// @brief Which SKUs a `basic_sharded_store` splits, and over how many
///        shards. Every process sharing the SKUs must use the same.
struct split_options {
  /// Shards of a SKU not listed in `shards`, in [1, max_shards]; 1 keeps it
  /// whole (as `redis_store` does).
  int default_shards = 1;
  /// SKUs with their own shard count, in [1, max_shards].
  std::map<std::string, int, std::less<>> shards;
};

/// @brief Why `o` is refused, naming the value seen; empty when it is not.
[[nodiscard]] inline std::string split_options_problem(const split_options& o) {
  const auto out_of_range = [](int k) { return k < 1 || k > max_shards; };
  const std::string range = " out of range [1, " + std::to_string(max_shards) + "]";
  if (out_of_range(o.default_shards))
    return "default_shards " + std::to_string(o.default_shards) + range;
  for (const auto& [sku, k] : o.shards) {
    if (sku.empty()) return "shards: an empty sku";
    if (sku.find_first_of("{}#") != std::string::npos)
      return "shards: sku '" + sku + "' contains '{', '}' or '#'";
    if (out_of_range(k)) return "shards of sku '" + sku + "': " + std::to_string(k) + range;
  }
  return {};
}

namespace detail {

/// The home shard of a reserve among `shards`: a hash of `user` (FNV-1a,
/// the same in every process), of `order_id` when there is no user.
[[nodiscard]] inline int home_shard(std::string_view user, std::int64_t order_id,
                                    int shards) noexcept {
  std::uint64_t h = 0;
  if (!user.empty()) {
    h = 14695981039346656037ull;
    for (const char c : user) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  } else {  // splitmix64's finaliser: Snowflake ids differ in their low bits only
    h = static_cast<std::uint64_t>(order_id);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return static_cast<int>(h % static_cast<std::uint64_t>(shards));
}

}  // namespace detail

/// @brief The `stock_store` in Redis with hot SKUs split over shards (see
///        the file comment), over `Connection` (`connection`,
///        `connection_pool` or `cluster_client`), which it owns through a
///        `basic_redis_store`.
///
/// Thread-safety: as the connection's (any thread). Cost: a whole SKU's
/// operations are `redis_store`'s, with no extra step. A split SKU's reserve
/// is one script on the home shard while it has the units (plus a coroutine
/// frame), and a transfer (three scripts) when it does not; commit, rollback,
/// get_order, stock and list_orders cost one script per shard, sent at once.
template <class Connection>
class basic_sharded_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using store_type = basic_redis_store<Connection>;
  using config_type = typename store_type::config_type;

  /// Connects nothing yet: call `async_connect`. Throws `seckill::error`
  /// (invalid_argument) when `split_options_problem(split)` names a value, or
  /// when `basic_redis_store` refuses `cfg` or `options`.
  basic_sharded_store(const executor_type& ex, config_type cfg, split_options split = {},
                      redis_store_options options = {})
      : split_(checked(std::move(split))),
        store_(ex, std::move(cfg), options),
        transfer_prefix_(random_prefix()) {}

  [[nodiscard]] executor_type get_executor() const noexcept { return store_.get_executor(); }
  /// The store of the shards (each shard a SKU named `shard_sku(...)`).
  [[nodiscard]] store_type& store() noexcept { return store_; }
  [[nodiscard]] const split_options& split() const noexcept { return split_; }
  /// As `basic_redis_store::last_error`.
  [[nodiscard]] std::string last_error() const { return store_.last_error(); }

  /// How many shards `sku` is split over (1: whole).
  [[nodiscard]] int shards_of(std::string_view sku) const {
    const auto it = split_.shards.find(sku);
    return it == split_.shards.end() ? split_.default_shards : it->second;
  }
  /// The `redis_store` SKU that keeps shard `shard` of `sku` split over
  /// `shards`: `<sku>#<shard>`, or `sku` itself when whole.
  [[nodiscard]] static std::string shard_sku(std::string_view sku, int shard, int shards) {
    if (shards == 1) return std::string(sku);
    return std::string(sku) + "#" + std::to_string(shard);
  }
  /// The home shard of a buyer's orders (the file comment).
  [[nodiscard]] static int home_shard(std::string_view user, std::int64_t order_id, int shards) {
    return detail::home_shard(user, order_id, shards);
  }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return store_.async_connect(std::forward<CompletionToken>(token));
  }
  void close() { store_.close(); }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_stock(std::string_view sku, std::int64_t quantity,
                       CompletionToken&& token = CompletionToken()) {
    return dispatch<void(std::error_code)>(
        sku, "set_stock", std::forward<CompletionToken>(token),
        [this, sku = std::string(sku), quantity](auto handler) {
          store_.async_set_stock(sku, quantity, std::move(handler));
        },
        [this, sku = std::string(sku), quantity](int shards) {
          return set_stock_split(sku, shards, quantity);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return dispatch<void(std::error_code, stock_level)>(
        sku, "stock", std::forward<CompletionToken>(token),
        [this, sku = std::string(sku)](auto handler) {
          store_.async_stock(sku, std::move(handler));
        },
        [this, sku = std::string(sku)](int shards) { return stock_split(sku, shards); });
  }

  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return async_reserve(sku,
                         reserve_request{.order_id = order_id, .quantity = quantity, .hold = hold},
                         std::forward<CompletionToken>(token));
  }

  /// A split SKU's reserve goes to the buyer's home shard, and moves units
  /// there from the other shards when it is short (the file comment).
  /// Refused as `basic_redis_store::async_reserve` refuses it.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& r,
                     CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check(sku, "reserve");
    if (!bad) bad = store_.check_request(sku, r);
    return dispatch<void(std::error_code, reserve_result)>(
        sku, bad, std::forward<CompletionToken>(token),
        [this, sku = std::string(sku), r = owned_request(r)](auto handler) {
          store_.async_reserve(sku, r.view(), std::move(handler));
        },
        [this, sku = std::string(sku), r = owned_request(r)](int shards) {
          return reserve_split(sku, shards, r);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_commit(std::string_view sku, std::int64_t order_id,
                    CompletionToken&& token = CompletionToken()) {
    return settle(sku, order_id, true, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_rollback(std::string_view sku, std::int64_t order_id,
                      CompletionToken&& token = CompletionToken()) {
    return settle(sku, order_id, false, std::forward<CompletionToken>(token));
  }

  /// A split SKU: first completes the transfers its shards still keep (the
  /// file comment), then reaps each shard, up to `limit` holds in all.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit,
                          CompletionToken&& token = CompletionToken()) {
    return reap(sku, limit, 0, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit, std::int64_t fence,
                          CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check(sku, "reap_expired");
    if (!bad && (fence <= 0 || fence > max_units))
      bad = store_.refuse("reap_expired of sku '" + std::string(sku) + "': fence " +
                          std::to_string(fence) + " out of range [1, max_units " +
                          std::to_string(max_units) + "]");
    return reap(sku, limit, fence, std::forward<CompletionToken>(token), bad);
  }

  /// Evens out a split SKU's remaining units over its shards: completes the
  /// transfers still kept, then moves units from the shards above an even
  /// share to those below it (exact transfers, one at a time). Reserves may
  /// run meanwhile; they only make the result less even. Nothing to do for
  /// a whole SKU. Useful after a sale whose buyers crowded some home shards,
  /// or before one, after `set_stock` (which spreads evenly already).
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_rebalance(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return dispatch<void(std::error_code)>(
        sku, "rebalance", std::forward<CompletionToken>(token),
        [this](auto handler) {
          boost::asio::post(store_.get_executor(),
                            boost::asio::append(std::move(handler), std::error_code{}));
        },
        [this, sku = std::string(sku)](int shards) { return rebalance_split(sku, shards); });
  }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, const sku_policy& policy,
                        CompletionToken&& token = CompletionToken()) {
    return dispatch<void(std::error_code)>(
        sku, "set_policy", std::forward<CompletionToken>(token),
        [this, sku = std::string(sku), policy](auto handler) {
          store_.async_set_policy(sku, policy, std::move(handler));
        },
        [this, sku = std::string(sku), policy](int shards) {
          return set_policy_split(sku, shards, policy);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    // shard 0 of a split SKU: set_policy writes them all
    const std::error_code bad = check(sku, "get_policy");
    return boost::asio::async_initiate<CompletionToken, void(std::error_code, sku_policy)>(
        [this, bad](auto handler, std::string shard) {
          if (bad)
            fail<void(std::error_code, sku_policy)>(bad, std::move(handler));
          else
            store_.async_get_policy(shard, std::move(handler));
        },
        token, bad ? std::string() : shard_sku(sku, 0, shards_of(sku)));
  }

  template <boost::asio::completion_token_for<void(std::error_code, order_entry)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_order(std::string_view sku, std::int64_t order_id,
                       CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check(sku, "get_order");
    if (!bad && order_id <= 0)
      bad = store_.refuse("get_order order id " + std::to_string(order_id) + " of sku '" +
                          std::string(sku) + "' is not positive");
    return dispatch<void(std::error_code, order_entry)>(
        sku, bad, std::forward<CompletionToken>(token),
        [this, sku = std::string(sku), order_id](auto handler) {
          store_.async_get_order(sku, order_id, std::move(handler));
        },
        [this, sku = std::string(sku), order_id](int shards) {
          return get_order_split(sku, shards, order_id);
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, order_page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit,
                         CompletionToken&& token = CompletionToken()) {
    std::error_code bad = check(sku, "list_orders");
    if (!bad) {
      if (const std::string why = order_page_problem(after, limit); !why.empty())
        bad = store_.refuse("list_orders of sku '" + std::string(sku) + "': " + why);
    }
    return dispatch<void(std::error_code, order_page)>(
        sku, bad, std::forward<CompletionToken>(token),
        [this, sku = std::string(sku), after, limit](auto handler) {
          store_.async_list_orders(sku, after, limit, std::move(handler));
        },
        [this, sku = std::string(sku), after, limit](int shards) {
          return list_orders_split(sku, shards, after, limit);
        });
  }

 private:
  template <class T>
  using awaitable = boost::asio::awaitable<T>;
  static constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  // A reserve_request that owns its strings (an operation started later,
  // with `deferred`, must not read the caller's views).
  struct owned_request {
    explicit owned_request(const reserve_request& r)
        : order_id(r.order_id),
          quantity(r.quantity),
          hold(r.hold),
          user(r.user),
          request_id(r.request_id) {}
    [[nodiscard]] reserve_request view() const {
      return reserve_request{.order_id = order_id,
                             .quantity = quantity,
                             .hold = hold,
                             .user = user,
                             .request_id = request_id};
    }
    std::int64_t order_id;
    std::int64_t quantity;
    std::chrono::milliseconds hold;
    std::string user;
    std::string request_id;
  };

  static split_options checked(split_options o) {
    if (const std::string problem = split_options_problem(o); !problem.empty())
      throw error(seckill::errc::invalid_argument, "sharded_store: " + problem);
    return o;
  }

  static std::string random_prefix() {
    std::random_device rd;
    const std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    return std::to_string(r) + ".";
  }
  // A transfer id unique across processes: this store's random prefix and a count.
  std::string next_transfer_id() { return transfer_prefix_ + std::to_string(++transfers_); }

  // redis_store's SKU rules, and no '#' (shard names use it).
  std::error_code check(std::string_view sku, const char* what) {
    if (std::error_code bad = store_.check_sku(sku, what)) return bad;
    if (sku.find('#') != std::string_view::npos)
      return store_.refuse(std::string(what) + ": sku '" + std::string(sku) +
                           "' contains '#', which names a shard of a split SKU");
    return {};
  }

  // Runs `whole(handler)` for a SKU kept whole and the coroutine `split(K)`
  // for one split over K shards; completes with `bad` (through the store,
  // on its executor) when set.
  template <class Signature, class Token, class Whole, class Split>
  auto dispatch(std::string_view sku, std::error_code bad, Token&& token, Whole whole,
                Split split) {
    const int shards = bad ? 1 : shards_of(sku);
    return boost::asio::async_initiate<Token, Signature>(
        [this, bad, shards](auto handler, Whole whole_op, Split split_op) {
          if (bad) {
            fail<Signature>(bad, std::move(handler));
          } else if (shards == 1) {
            whole_op(std::move(handler));
          } else {
            boost::asio::co_spawn(
                store_.get_executor(), split_op(shards),
                seckill::detail::spawned_completion<decltype(handler)>{std::move(handler)});
          }
        },
        token, std::move(whole), std::move(split));
  }
  template <class Signature, class Token, class Whole, class Split>
  auto dispatch(std::string_view sku, const char* what, Token&& token, Whole whole, Split split) {
    return dispatch<Signature>(sku, check(sku, what), std::forward<Token>(token), std::move(whole),
                               std::move(split));
  }

  // Completes `handler` with `bad` through the store's machinery (posted).
  template <class Signature, class Handler>
  void fail(std::error_code bad, Handler&& handler) {
    auto ignore = [](const value&, std::error_code&, std::string&) {};
    if constexpr (std::is_same_v<Signature, void(std::error_code)>) {
      store_.template run<Signature>("", request{}, bad, std::forward<Handler>(handler), ignore);
    } else {
      using result = std::tuple_element_t<1, typename completion_args<Signature>::type>;
      store_.template run<Signature>(
          "", request{}, bad, std::forward<Handler>(handler),
          [](const value&, std::error_code&, std::string&) { return result{}; });
    }
  }
  template <class>
  struct completion_args;
  template <class... Args>
  struct completion_args<void(Args...)> {
    using type = std::tuple<Args...>;
  };

  awaitable<std::error_code> set_stock_split(std::string sku, int shards, std::int64_t quantity) {
    if (quantity < 0 || quantity > max_units)
      co_return store_.refuse("set_stock quantity " + std::to_string(quantity) + " for sku '" +
                              sku + "' out of range [0, max_units " + std::to_string(max_units) +
                              "]");
    // The contract's bound on the whole SKU, with what is reserved and
    // committed now (each shard's script checks only its own share).
    auto [ec, level] = co_await stock_split(sku, shards);
    if (ec && ec != seckill::errc::unknown_sku) co_return ec;
    if (!ec && quantity > max_units - (level.reserved + level.committed))
      co_return store_.refuse("set_stock quantity " + std::to_string(quantity) + " for sku '" +
                              sku + "' refused: with " + std::to_string(level.reserved) +
                              " units reserved and " + std::to_string(level.committed) +
                              " committed, remaining + reserved + committed would pass max_units " +
                              std::to_string(max_units));
    std::vector<decltype(store_.async_set_stock(sku, 0, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i) {
      const std::int64_t share = quantity / shards + (i < quantity % shards ? 1 : 0);
      ops.push_back(
          store_.async_set_stock(shard_sku(sku, i, shards), share, boost::asio::deferred));
    }
    auto [order, errors] = co_await all(std::move(ops));
    co_return first_error(errors);
  }

  awaitable<std::pair<std::error_code, stock_level>> stock_split(std::string sku, int shards) {
    auto [ec, levels] = co_await shard_levels(sku, shards);
    stock_level sum;
    if (ec) co_return std::pair{ec, sum};
    bool known = false;
    // Units in transit (given, not yet taken) count as remaining: whatever
    // step a transfer is at when each shard is read, sent - received makes up
    // for it, so the sum is exact with respect to transfers.
    for (const auto& s : levels) {
      known = known || s.known;
      sum.remaining += s.level.remaining + s.sent - s.received;
      sum.reserved += s.level.reserved;
      sum.committed += s.level.committed;
    }
    if (!known) co_return std::pair{make_error_code(seckill::errc::unknown_sku), stock_level{}};
    co_return std::pair{std::error_code{}, sum};
  }

  awaitable<std::pair<std::error_code, std::vector<detail::shard_level>>> shard_levels(
      const std::string& sku, int shards) {
    std::vector<decltype(store_.shard_level(sku, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i)
      ops.push_back(store_.shard_level(shard_sku(sku, i, shards), boost::asio::deferred));
    auto [order, errors, levels] = co_await all(std::move(ops));
    co_return std::pair{first_error(errors), std::move(levels)};
  }

  awaitable<std::pair<std::error_code, reserve_result>> reserve_split(std::string sku, int shards,
                                                                      owned_request owned) {
    const reserve_request r = owned.view();
    const int home = detail::home_shard(r.user, r.order_id, shards);
    const std::string here = shard_sku(sku, home, shards);
    std::vector<char> empty(static_cast<std::size_t>(shards), 0);  // givers found empty
    // Each round either answers or brought units (which others may have
    // bought meanwhile); the bound keeps a crowd passing units around from
    // keeping one buyer waiting.
    for (int round = 0; round <= 2 * shards; ++round) {
      auto [ec, res] = co_await store_.reserve_on(here, r, {}, true, tuple);
      if (ec || res.status != reserve_status::sold_out || res.replayed)
        co_return std::pair{ec, res};
      bool brought = false;
      for (int step = 1; step < shards && !brought; ++step) {
        const int giver = (home + step) % shards;
        if (empty[static_cast<std::size_t>(giver)]) continue;
        auto [tec, moved] =
            co_await move_units(sku, shards, giver, home, r.quantity - res.remaining);
        if (tec) co_return std::pair{tec, reserve_result{}};
        if (moved == 0)
          empty[static_cast<std::size_t>(giver)] = 1;
        else
          brought = true;
      }
      if (!brought) break;
    }
    // Every other shard was found empty: the home shard answers for good,
    // recording a refusal as a whole SKU does.
    auto [ec, res] = co_await store_.reserve_on(here, r, {}, false, tuple);
    co_return std::pair{ec, res};
  }

  // Moves units from shard `giver` to shard `to` (the file comment): how
  // many, 0 when the giver has none; `exact`: `wanted` at most, else at
  // least that or half the giver's. An error leaves them in transit.
  awaitable<std::pair<std::error_code, std::int64_t>> move_units(const std::string& sku, int shards,
                                                                 int giver, int to,
                                                                 std::int64_t wanted,
                                                                 bool exact = false) {
    const std::string id = next_transfer_id();
    const std::string from = shard_sku(sku, giver, shards);
    auto [ec, units] =
        co_await store_.give(from, id, std::max<std::int64_t>(wanted, 1), to, exact, tuple);
    if (ec || units == 0) co_return std::pair{ec, units};
    auto [tec] = co_await store_.take(shard_sku(sku, to, shards), id, units, tuple);
    if (tec) co_return std::pair{tec, std::int64_t{0}};
    // A failure here leaves the transfer kept by the giver, which the next
    // reap completes (its take again is a no-op): the units are where they
    // belong already.
    co_await store_.settled(from, id, tuple);
    co_return std::pair{std::error_code{}, units};
  }

  template <class Token>
  auto settle(std::string_view sku, std::int64_t order_id, bool commit, Token&& token) {
    const char* what = commit ? "commit" : "rollback";
    return dispatch<void(std::error_code, settle_result)>(
        sku, what, std::forward<Token>(token),
        [this, sku = std::string(sku), order_id, commit](auto handler) {
          if (commit)
            store_.async_commit(sku, order_id, std::move(handler));
          else
            store_.async_rollback(sku, order_id, std::move(handler));
        },
        [this, sku = std::string(sku), order_id, commit](int shards) {
          return settle_split(sku, shards, order_id, commit);
        });
  }

  // Asks every shard; the one holding the order answers (see one_answer).
  awaitable<std::pair<std::error_code, settle_result>> settle_split(std::string sku, int shards,
                                                                    std::int64_t order_id,
                                                                    bool commit) {
    std::vector<decltype(store_.async_commit(sku, order_id, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i) {
      const std::string shard = shard_sku(sku, i, shards);
      if (commit)
        ops.push_back(store_.async_commit(shard, order_id, boost::asio::deferred));
      else
        ops.push_back(store_.async_rollback(shard, order_id, boost::asio::deferred));
    }
    auto [order, errors, results] = co_await all(std::move(ops));
    co_return one_answer(errors, results);
  }

  awaitable<std::pair<std::error_code, order_entry>> get_order_split(std::string sku, int shards,
                                                                     std::int64_t order_id) {
    std::vector<decltype(store_.async_get_order(sku, order_id, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i)
      ops.push_back(
          store_.async_get_order(shard_sku(sku, i, shards), order_id, boost::asio::deferred));
    auto [order, errors, entries] = co_await all(std::move(ops));
    co_return one_answer(errors, entries);
  }

  // The answer of the shard that holds the order (its result, or its
  // refusal: order_committed, ...); else the failure of a shard that could
  // not tell (unreachable, timed out: it may hold the order, so a retry is
  // the buyer's way to know); else unknown_order.
  template <class R>
  static std::pair<std::error_code, R> one_answer(const std::vector<std::error_code>& errors,
                                                  std::vector<R>& results) {
    const auto could_not_tell = [](const std::error_code& ec) {
      return ec == seckill::condition::unavailable || ec == seckill::errc::timed_out ||
             ec == seckill::errc::operation_aborted;
    };
    for (std::size_t i = 0; i < errors.size(); ++i)
      if (errors[i] != seckill::errc::unknown_order && !could_not_tell(errors[i]))
        return {errors[i], std::move(results[i])};
    for (const auto& ec : errors)
      if (ec != seckill::errc::unknown_order) return {ec, R{}};
    return {make_error_code(seckill::errc::unknown_order), R{}};
  }

  awaitable<std::pair<std::error_code, order_page>> list_orders_split(std::string sku, int shards,
                                                                      std::int64_t after,
                                                                      std::size_t limit) {
    std::vector<decltype(store_.async_list_orders(sku, after, limit, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i)
      ops.push_back(
          store_.async_list_orders(shard_sku(sku, i, shards), after, limit, boost::asio::deferred));
    auto [order, errors, pages] = co_await all(std::move(ops));
    order_page merged;
    if (const std::error_code ec = first_error(errors)) co_return std::pair{ec, merged};
    bool more = false;
    for (auto& page : pages) {
      more = more || page.next != 0;
      for (auto& o : page.orders) merged.orders.push_back(std::move(o));
    }
    std::sort(merged.orders.begin(), merged.orders.end(),
              [](const order_entry& a, const order_entry& b) { return a.order_id < b.order_id; });
    if (merged.orders.size() > limit) {
      merged.orders.resize(limit);
      more = true;
    }
    if (more && !merged.orders.empty()) merged.next = merged.orders.back().order_id;
    co_return std::pair{std::error_code{}, std::move(merged)};
  }

  awaitable<std::error_code> set_policy_split(std::string sku, int shards, sku_policy policy) {
    std::vector<decltype(store_.async_set_policy(sku, policy, boost::asio::deferred))> ops;
    for (int i = 0; i < shards; ++i)
      ops.push_back(
          store_.async_set_policy(shard_sku(sku, i, shards), policy, boost::asio::deferred));
    auto [order, errors] = co_await all(std::move(ops));
    co_return first_error(errors);
  }

  template <class Token>
  auto reap(std::string_view sku, std::size_t limit, std::int64_t fence, Token&& token,
            std::error_code bad = {}) {
    if (!bad) bad = check(sku, "reap_expired");
    return dispatch<void(std::error_code, std::size_t)>(
        sku, bad, std::forward<Token>(token),
        [this, sku = std::string(sku), limit, fence](auto handler) {
          if (fence > 0)
            store_.async_reap_expired(sku, limit, fence, std::move(handler));
          else
            store_.async_reap_expired(sku, limit, std::move(handler));
        },
        [this, sku = std::string(sku), limit, fence](int shards) {
          return reap_split(sku, shards, limit, fence);
        });
  }

  awaitable<std::pair<std::error_code, std::size_t>> reap_split(std::string sku, int shards,
                                                                std::size_t limit,
                                                                std::int64_t fence) {
    std::size_t reaped = 0;
    for (int i = 0; i < shards; ++i) {
      const std::string shard = shard_sku(sku, i, shards);
      std::error_code ec;
      std::size_t n = 0;
      if (fence > 0)
        std::tie(ec, n) = co_await store_.async_reap_expired(shard, limit - reaped, fence, tuple);
      else
        std::tie(ec, n) = co_await store_.async_reap_expired(shard, limit - reaped, tuple);
      if (ec) co_return std::pair{ec, reaped};
      reaped += n;
      if (const std::error_code tec = co_await complete_transfers(sku, shards, i))
        co_return std::pair{tec, reaped};
    }
    co_return std::pair{std::error_code{}, reaped};
  }

  awaitable<std::error_code> rebalance_split(std::string sku, int shards) {
    for (int i = 0; i < shards; ++i)
      if (const std::error_code ec = co_await complete_transfers(sku, shards, i)) co_return ec;
    auto [ec, levels] = co_await shard_levels(sku, shards);
    if (ec) co_return ec;
    std::int64_t total = 0;
    for (const auto& s : levels) total += s.level.remaining;
    // surplus > 0: above its even share, < 0: below
    std::vector<std::int64_t> surplus;
    for (int i = 0; i < shards; ++i)
      surplus.push_back(levels[static_cast<std::size_t>(i)].level.remaining -
                        (total / shards + (i < total % shards ? 1 : 0)));
    int giver = 0, to = 0;
    for (;;) {
      while (giver < shards && surplus[static_cast<std::size_t>(giver)] <= 0) ++giver;
      while (to < shards && surplus[static_cast<std::size_t>(to)] >= 0) ++to;
      if (giver == shards || to == shards) co_return std::error_code{};
      auto& give = surplus[static_cast<std::size_t>(giver)];
      auto& take = surplus[static_cast<std::size_t>(to)];
      const std::int64_t wanted = std::min(give, -take);
      auto [mec, moved] = co_await move_units(sku, shards, giver, to, wanted, true);
      if (mec) co_return mec;
      if (moved < wanted) give = 0;  // the giver sold meanwhile: it has no more to spare
      give -= std::min(give, moved);
      take += moved;
    }
  }

  // Completes the transfers shard `giver` still keeps: take (again) on the
  // recipient, then settled.
  awaitable<std::error_code> complete_transfers(const std::string& sku, int shards, int giver) {
    const std::string from = shard_sku(sku, giver, shards);
    auto [ec, kept] = co_await store_.pending(from, tuple);
    if (ec) co_return ec;
    for (const auto& t : kept) {
      if (t.to >= shards) {
        co_return store_.refuse(
            "reap_expired of sku '" + sku + "': shard " + std::to_string(giver) +
            " keeps transfer " + t.id + " to shard " + std::to_string(t.to) + ", but the sku has " +
            std::to_string(shards) + " shards (is every process given the same split_options?)");
      }
      auto [tec] = co_await store_.take(shard_sku(sku, t.to, shards), t.id, t.units, tuple);
      if (tec) co_return tec;
      auto [sec] = co_await store_.settled(from, t.id, tuple);
      if (sec) co_return sec;
    }
    co_return std::error_code{};
  }

  // Runs `ops` (deferred operations of one type) at once; completes with
  // the completion order, then a vector per completion argument.
  template <class Op>
  static auto all(std::vector<Op> ops) {
    return boost::asio::experimental::make_parallel_group(std::move(ops))
        .async_wait(boost::asio::experimental::wait_for_all(), boost::asio::use_awaitable);
  }

  static std::error_code first_error(const std::vector<std::error_code>& errors) {
    for (const auto& ec : errors)
      if (ec) return ec;
    return {};
  }

  split_options split_;
  store_type store_;
  std::string transfer_prefix_;
  std::atomic<std::uint64_t> transfers_{0};
};

/// @brief The store with split SKUs on one connection.
using sharded_redis_store = basic_sharded_store<connection>;
/// @brief The store with split SKUs on a Redis Cluster: the shards of a SKU
///        land on several masters.
using sharded_redis_cluster_store = basic_sharded_store<cluster_client>;

static_assert(stock_store<sharded_redis_store>);
static_assert(fenced_stock_store<sharded_redis_store>);
static_assert(stock_store<sharded_redis_cluster_store>);

}  // namespace seckill::redis
