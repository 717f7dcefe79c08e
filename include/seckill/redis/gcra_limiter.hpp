#pragma once
/// @file
/// @brief `redis::gcra_limiter`: a cluster-wide rate limiter, token buckets in
///        GCRA form kept in Redis by one Lua script, per SKU and per user,
///        with a local pre-filter that refuses without a round trip while a
///        bucket is known to be empty.
///
/// Keys, hash-tagged like the store's so that a SKU's buckets share its
/// cluster slot (one script call touches both):
///
/// - `seckill:{<sku>}:rate`, string: the SKU's bucket, its `empty_at` in
///   microseconds of the server's clock.
/// - `seckill:{<sku>}:rate:<user>`, string: that user's bucket for the SKU.
///
/// Each key expires (PX) when its bucket is full again: a missing key is a
/// full bucket, so idle buckets cost no memory.
///
/// Time is the server's (`TIME` inside the script), so clients with skewed
/// clocks agree. The rate and burst travel with each call (as microseconds
/// per token and per burst): every client of a bucket must use the same.
/// The arithmetic is `seckill::gcra_decide` (limit/gcra.hpp), line for line.
///
/// Errors: a call that gets no answer (the server down, a timeout) is
/// decided by `gcra_limiter_options::on_failure`: fail closed (the default:
/// refused, completing with the error, `errc::store_unavailable` for a
/// server out of reach) or fail open (admitted, counted in
/// `counters().failed_open`). An error reply from the server (a script
/// that cannot run) is `errc::server_error`, under the same policy.

#include <seckill/error.hpp>
#include <seckill/limit/gcra.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/script.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill::redis {

// Declared only: a program that limits on a cluster includes
// redis/cluster_client.hpp itself (cluster_gcra_limiter needs it complete).
class cluster_client;
struct cluster_config;

/// The limiter's script: GCRA over one or two buckets (KEYS), all or
/// nothing, time from the server's TIME. ARGV: cost and span of each bucket
/// in microseconds. Reply: {admitted 0|1, the first refusing bucket 1|2 or
/// 0, now (us), then each bucket's empty_at - now (us) after the call}.
inline constexpr std::string_view gcra_lua = R"lua(-- seckill gcra 1
local n = #KEYS
if n < 1 or n > 2 or #ARGV ~= 2 * n then
  return redis.error_reply('ERR seckill gcra: want 1 or 2 keys and a cost and span each')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local e = {}
local refused = 0
for i = 1, n do
  local cost = tonumber(ARGV[2 * i - 1])
  local span = tonumber(ARGV[2 * i])
  if not cost or not span or cost < 0 or span < cost then
    return redis.error_reply('ERR seckill gcra: bad cost or span for ' .. KEYS[i])
  end
  local floor = now - span
  local v = tonumber(redis.call('GET', KEYS[i]))
  local ei = floor
  if v and v > floor then ei = v end
  e[i] = ei
  if refused == 0 and ei + cost > now then refused = i end
end
if refused == 0 then
  for i = 1, n do
    local span = tonumber(ARGV[2 * i])
    e[i] = e[i] + tonumber(ARGV[2 * i - 1])
    local ttl = math.ceil((e[i] + span - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('SET', KEYS[i], string.format('%.0f', e[i]), 'PX', ttl)
  end
end
local reply = {refused == 0 and 1 or 0, refused, now}
for i = 1, n do reply[3 + i] = e[i] - now end
return reply
)lua";

/// @brief What a `gcra_limiter` does when Redis cannot answer.
enum class gcra_failure_policy {
  fail_closed,  ///< refuse, completing with the error (no admission without the shared count)
  fail_open,    ///< admit (the shop stays open; the rate is not enforced meanwhile)
};

/// @brief A `gcra_limiter`'s buckets and behaviour.
struct gcra_limiter_options {
  /// The per-SKU bucket: tokens per second across every client, in (0, 1e6];
  /// 0: no per-SKU bucket. Burst >= 1.
  double sku_rate = 0;
  double sku_burst = 1;
  /// The per-user bucket (each user, per SKU); 0: none. A call with no user
  /// is checked against the SKU's bucket only.
  double user_rate = 0;
  double user_burst = 1;
  gcra_failure_policy on_failure = gcra_failure_policy::fail_closed;
  /// How long a call waits for Redis before the failure policy decides.
  std::chrono::milliseconds timeout{250};
  /// Refuse locally, with no round trip, while a bucket is known to be empty.
  bool prefilter = true;
  /// The pre-filter's table (rounded up to a power of two).
  std::size_t prefilter_slots = 4096;
};

/// @brief Which bucket refused a request.
enum class gcra_bucket { none, sku, user };

/// @brief A `gcra_limiter`'s answer in full.
struct gcra_decision {
  bool admitted = false;
  gcra_bucket refused_by = gcra_bucket::none;
  /// Refused by the local pre-filter, with no round trip.
  bool local = false;
  /// Redis did not answer and the fail-open policy admitted it.
  bool failed_open = false;
  /// How long until the refusing bucket could admit the same request (a
  /// lower bound for a local refusal); zero when admitted.
  std::chrono::microseconds retry_after{};
  /// From the server (zero for a local or failed call): its TIME, and each
  /// bucket's `empty_at - now` after the call (SKU's, then user's).
  std::int64_t server_now_us = 0;
  std::int64_t sku_empty_in_us = 0;
  std::int64_t user_empty_in_us = 0;
};

/// @brief What a `gcra_limiter` decided so far (relaxed counters, each exact on its own).
struct gcra_counters {
  std::uint64_t admitted = 0;        ///< admitted by Redis
  std::uint64_t refused_local = 0;   ///< refused by the pre-filter, no round trip
  std::uint64_t refused_remote = 0;  ///< refused by Redis
  std::uint64_t failures = 0;        ///< calls Redis did not answer (or answered with an error)
  std::uint64_t failed_open = 0;     ///< of those, admitted by the fail-open policy
};

/// @brief A rate limiter shared by every node: per-SKU and per-user token
///        buckets (GCRA) in Redis, checked and taken in one script call, with
///        a local pre-filter. The purchase engine's asynchronous Limiter
///        (`async_purchase_limiter`).
///
/// `async_acquire(sku, user, tokens, token)` completes with
/// `void(std::error_code, bool admitted)`; `async_check` with the full
/// `gcra_decision`. A request is admitted only when every configured bucket
/// admits it; a refusal by one takes nothing from the other. Owns its
/// `Connection` (`connection`, or `cluster_client` on a Redis Cluster: a
/// SKU's buckets share its hash slot), the script loaded on every
/// (re)connect (and again after a NOSCRIPT).
///
/// Thread-safety: every member may be called from any thread (as the
/// connection). Lifetime: as a store, the limiter must outlive the
/// operations it started (close it and let them complete before destroying
/// it): their completions use its counters and pre-filter. Cost: a
/// pre-filtered refusal is a hash, one clock read, a
/// few atomic loads and a post of the completion; anything else one EVALSHA
/// round trip of about 120 bytes plus the connection's cost per request
/// (auto-pipelined with the other calls in flight), and one clock read.
/// bench/README.md has the figures.
template <class Clock = std::chrono::steady_clock, class Connection = redis::connection>
class basic_gcra_limiter {
 public:
  using executor_type = boost::asio::any_io_executor;
  using connection_type = Connection;
  /// `connection_config`, or `cluster_config` on a cluster.
  using config_type = std::conditional_t<std::is_same_v<Connection, cluster_client>, cluster_config,
                                         connection_config>;

  /// Connects nothing yet: call `async_connect`. Throws `seckill::error`
  /// (invalid_argument) for a rate outside (0, 1e6] (other than 0: no such
  /// bucket), a burst below 1, or no bucket at all.
  basic_gcra_limiter(const executor_type& ex, config_type cfg, gcra_limiter_options options = {},
                     Clock clock = {})
      : ex_(ex),
        options_(options),
        sku_rule_(rule_of("sku", options.sku_rate, options.sku_burst)),
        user_rule_(rule_of("user", options.user_rate, options.user_burst)),
        script_(std::string(gcra_lua)),
        prefilter_(options.prefilter ? options.prefilter_slots : 1, std::move(clock)),
        conn_(ex, loaded(std::move(cfg), script_)) {
    if (!sku_rule_.valid() && !user_rule_.valid())
      throw error(seckill::errc::invalid_argument,
                  "gcra_limiter: neither sku_rate nor user_rate is set: no bucket to check");
    if (options_.timeout.count() <= 0)
      throw error(seckill::errc::invalid_argument, "gcra_limiter: timeout " +
                                                       std::to_string(options_.timeout.count()) +
                                                       " ms is not positive");
  }

  basic_gcra_limiter(const basic_gcra_limiter&) = delete;
  basic_gcra_limiter& operator=(const basic_gcra_limiter&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] Connection& connection() noexcept { return conn_; }
  [[nodiscard]] const gcra_limiter_options& options() const noexcept { return options_; }
  [[nodiscard]] const script& lua() const noexcept { return script_; }
  [[nodiscard]] gcra_rule sku_rule() const noexcept { return sku_rule_; }
  [[nodiscard]] gcra_rule user_rule() const noexcept { return user_rule_; }

  [[nodiscard]] gcra_counters counters() const noexcept {
    return {counters_.admitted.load(std::memory_order_relaxed),
            counters_.refused_local.load(std::memory_order_relaxed),
            counters_.refused_remote.load(std::memory_order_relaxed),
            counters_.failures.load(std::memory_order_relaxed),
            counters_.failed_open.load(std::memory_order_relaxed)};
  }

  /// The keys of a SKU's bucket and of a user's bucket within the SKU.
  static std::string sku_key(std::string_view sku) { return sku_key_arg(sku).str(); }
  static std::string user_key(std::string_view sku, std::string_view user) {
    return user_key_arg(sku, user).str();
  }

  /// The connection's `async_connect`.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return conn_.async_connect(std::forward<CompletionToken>(token));
  }

  void close() { conn_.close(); }

  /// Decides `tokens` for `sku` (and `user`'s bucket within it when the
  /// per-user rate is set and `user` is not empty): `void(std::error_code,
  /// gcra_decision)`. `errc::invalid_argument` at once for an empty SKU, one
  /// holding `{` or `}`, or `tokens` that no bucket could ever admit
  /// (negative, NaN, above a burst). A failure of Redis follows
  /// `on_failure` (see the file comment). Never completes inside the call.
  template <boost::asio::completion_token_for<void(std::error_code, gcra_decision)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_check(std::string_view sku, std::string_view user, double tokens,
                   CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_compose<CompletionToken, void(std::error_code, gcra_decision)>(
        call_op<true>{this, plan(sku, user, tokens)}, token, ex_);
  }

  /// True when the pre-filter refuses `tokens` for `sku` (and `user`) now:
  /// counted as a local refusal, and no call is needed. False when it may be
  /// admitted (or the arguments are bad): ask with `async_acquire`. The
  /// engine asks this first, so a refused purchase costs no coroutine.
  /// Cost: a hash per bucket, one clock read, a few atomic loads.
  [[nodiscard]] bool refuses_locally(std::string_view sku, std::string_view user,
                                     double tokens) noexcept {
    if (!options_.prefilter || sku.empty()) return false;
    const std::int64_t now = prefilter_.now_us();
    bool refused = false;
    if (sku_rule_.valid()) {
      const std::int64_t c = sku_rule_.cost(tokens);
      refused = c >= 0 && prefilter_.refuses(gcra_prefilter<Clock>::key_of(sku), c, now);
    }
    if (!refused && user_rule_.valid() && !user.empty()) {
      const std::int64_t c = user_rule_.cost(tokens);
      refused = c >= 0 && prefilter_.refuses(gcra_prefilter<Clock>::key_of(sku, user), c, now);
    }
    if (refused) counters_.refused_local.fetch_add(1, std::memory_order_relaxed);
    return refused;
  }

  /// As `async_check`, completing with `void(std::error_code, bool admitted)`:
  /// the engine's asynchronous Limiter.
  template <boost::asio::completion_token_for<void(std::error_code, bool)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_acquire(std::string_view sku, std::string_view user, double tokens,
                     CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_compose<CompletionToken, void(std::error_code, bool)>(
        call_op<false>{this, plan(sku, user, tokens)}, token, ex_);
  }

 private:
  // One call's buckets, costs and request, worked out at initiation.
  struct call_plan {
    std::error_code bad;
    int buckets = 0;  // 1 or 2; 0: nothing to check (admitted)
    std::array<gcra_bucket, 2> which{};
    std::array<std::uint64_t, 2> keys{};
    std::array<std::int64_t, 2> cost{};
    std::array<std::int64_t, 2> per{};
    request req;
  };

  static gcra_rule rule_of(const char* who, double rate, double burst) {
    if (rate == 0) return {};
    const gcra_rule r = gcra_rule::of(rate, burst);
    if (!r.valid())
      throw error(seckill::errc::invalid_argument,
                  std::string("gcra_limiter: ") + who + "_rate " +
                      seckill::detail::limit_number(rate) + " and " + who + "_burst " +
                      seckill::detail::limit_number(burst) +
                      ": want a rate in (0, 1e6] per second and a burst >= 1 spanning at most "
                      "2^50 us");
    return r;
  }

  static config_type loaded(config_type cfg, const script& s) {
    if constexpr (std::is_same_v<config_type, cluster_config>)
      s.load_into(cfg.node);
    else
      s.load_into(cfg);
    return cfg;
  }

  static auto sku_key_arg(std::string_view sku) { return joined("seckill:{", sku, "}:rate"); }
  static auto user_key_arg(std::string_view sku, std::string_view user) {
    return joined("seckill:{", sku, "}:rate:", user);
  }

  call_plan plan(std::string_view sku, std::string_view user, double tokens) const {
    call_plan p;
    if (sku.empty() || sku.find_first_of("{}") != std::string_view::npos) {
      p.bad = make_error_code(seckill::errc::invalid_argument);
      return p;
    }
    const bool with_user = user_rule_.valid() && !user.empty();
    std::array<std::int64_t, 2> span{};
    auto add = [&](gcra_bucket b, const gcra_rule& rule, std::uint64_t key) {
      const std::int64_t c = rule.cost(tokens);
      if (c < 0) p.bad = make_error_code(seckill::errc::invalid_argument);
      p.which[p.buckets] = b;
      p.keys[p.buckets] = key;
      p.cost[p.buckets] = c;
      p.per[p.buckets] = rule.per_us;
      span[p.buckets] = rule.span_us;
      ++p.buckets;
    };
    if (sku_rule_.valid()) add(gcra_bucket::sku, sku_rule_, gcra_prefilter<Clock>::key_of(sku));
    if (with_user) add(gcra_bucket::user, user_rule_, gcra_prefilter<Clock>::key_of(sku, user));
    if (p.bad || p.buckets == 0) return p;
    if (p.buckets == 1) {
      if (p.which[0] == gcra_bucket::sku)
        script_.evalsha(p.req, 1, sku_key_arg(sku), p.cost[0], span[0]);
      else
        script_.evalsha(p.req, 1, user_key_arg(sku, user), p.cost[0], span[0]);
    } else {
      script_.evalsha(p.req, 2, sku_key_arg(sku), user_key_arg(sku, user), p.cost[0], span[0],
                      p.cost[1], span[1]);
    }
    return p;
  }

  // The local refusal, if the pre-filter knows a bucket of `p` to be empty.
  bool refused_locally(const call_plan& p, gcra_decision& d) const noexcept {
    if (!options_.prefilter) return false;
    const std::int64_t now = prefilter_.now_us();
    for (int i = 0; i < p.buckets; ++i) {
      if (prefilter_.refuses(p.keys[i], p.cost[i], now)) {
        d.local = true;
        d.refused_by = p.which[i];
        d.retry_after = std::chrono::microseconds(prefilter_.ready_at(p.keys[i], p.cost[i]) - now);
        if (d.retry_after.count() < 0) d.retry_after = {};
        return true;
      }
    }
    return false;
  }

  // Reads the script's reply into `d`, noting what it tells in the pre-filter.
  std::error_code decode(const call_plan& p, std::int64_t sent_us, const value& v,
                         gcra_decision& d) {
    if (v.is_error()) return make_error_code(seckill::errc::server_error);
    if (v.type != resp_type::array || v.elements.size() != static_cast<std::size_t>(3 + p.buckets))
      return make_error_code(seckill::errc::protocol_error);
    for (const value& e : v.elements)
      if (e.type != resp_type::integer) return make_error_code(seckill::errc::protocol_error);
    const auto& el = v.elements;
    d.admitted = el[0].integer == 1;
    d.server_now_us = el[2].integer;
    const std::int64_t refused = el[1].integer;
    if (refused < 0 || refused > p.buckets || d.admitted != (refused == 0))
      return make_error_code(seckill::errc::protocol_error);
    for (int i = 0; i < p.buckets; ++i) {
      const std::int64_t empty_in = el[3 + i].integer;
      (p.which[i] == gcra_bucket::sku ? d.sku_empty_in_us : d.user_empty_in_us) = empty_in;
      // Worth remembering only while the bucket holds less than one token.
      if (options_.prefilter && empty_in + p.per[i] > 0)
        prefilter_.note(p.keys[i], sent_us + empty_in);
    }
    if (!d.admitted) {
      const int i = static_cast<int>(refused) - 1;
      d.refused_by = p.which[i];
      d.retry_after = std::chrono::microseconds(el[3 + i].integer + p.cost[i]);
    }
    return {};
  }

  // What a call that got no usable answer completes with, by the policy.
  std::error_code failed(std::error_code ec, gcra_decision& d) noexcept {
    counters_.failures.fetch_add(1, std::memory_order_relaxed);
    // a call cancelled by its caller is refused whatever the policy
    if (options_.on_failure == gcra_failure_policy::fail_open && ec != condition::aborted) {
      counters_.failed_open.fetch_add(1, std::memory_order_relaxed);
      d.admitted = true;
      d.failed_open = true;
      return {};
    }
    d.admitted = false;
    return seckill::detail::store_error(ec);
  }

  // The composed operation: pre-filter, then EVALSHA (and SCRIPT LOAD +
  // EVALSHA once more after NOSCRIPT), then the policy on failure; completes
  // with the decision (Detailed) or whether it admitted.
  template <bool Detailed>
  struct call_op {
    basic_gcra_limiter* self_;
    call_plan p;
    std::int64_t sent_us = 0;
    bool reloaded = false;
    gcra_decision d{};

    template <class Self>
    void operator()(Self& self) {
      std::error_code ec = p.bad;
      if (!ec && p.buckets == 0) d.admitted = true;
      if (ec || p.buckets == 0 || self_->refused_locally(p, d)) {
        if (d.local) self_->counters_.refused_local.fetch_add(1, std::memory_order_relaxed);
        boost::asio::post(self_->ex_, boost::asio::append(std::move(self), ec, d, 0));
        return;
      }
      sent_us = self_->prefilter_.now_us();
      self_->conn_.async_exec(p.req, self_->options_.timeout, std::move(self));
    }
    template <class Self>
    void operator()(Self& self, std::error_code ec, std::vector<value> replies) {
      if (!ec && !reloaded && script::noscript(replies)) {
        reloaded = true;
        request retry;
        self_->script_.load(retry);
        retry.append(p.req);
        sent_us = self_->prefilter_.now_us();
        self_->conn_.async_exec(std::move(retry), self_->options_.timeout, std::move(self));
        return;
      }
      if (!ec && replies.size() != (reloaded ? 2u : 1u))
        ec = make_error_code(seckill::errc::protocol_error);
      if (!ec) ec = self_->decode(p, sent_us, replies.back(), d);
      if (ec) {
        d = gcra_decision{};
        ec = self_->failed(ec, d);
      } else if (d.admitted) {
        self_->counters_.admitted.fetch_add(1, std::memory_order_relaxed);
      } else {
        self_->counters_.refused_remote.fetch_add(1, std::memory_order_relaxed);
      }
      finish(self, ec);
    }
    template <class Self>
    void operator()(Self& self, std::error_code ec, gcra_decision, int) {
      finish(self, ec);
    }
    template <class Self>
    void finish(Self& self, std::error_code ec) {
      if constexpr (Detailed)
        self.complete(ec, d);
      else
        self.complete(ec, d.admitted);
    }
  };

  struct alignas(seckill::detail::cache_line_size) counter_block {
    std::atomic<std::uint64_t> admitted{0};
    std::atomic<std::uint64_t> refused_local{0};
    std::atomic<std::uint64_t> refused_remote{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<std::uint64_t> failed_open{0};
  };

  executor_type ex_;
  gcra_limiter_options options_;
  gcra_rule sku_rule_;
  gcra_rule user_rule_;
  script script_;
  gcra_prefilter<Clock> prefilter_;
  counter_block counters_;
  Connection conn_;
};

/// @brief The limiter on the steady clock (the pre-filter's local time).
using gcra_limiter = basic_gcra_limiter<>;
/// @brief The limiter on a Redis Cluster (include redis/cluster_client.hpp to use it).
using cluster_gcra_limiter = basic_gcra_limiter<std::chrono::steady_clock, cluster_client>;

}  // namespace seckill::redis
