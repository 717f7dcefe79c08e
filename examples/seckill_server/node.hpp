#pragma once
// node<Store>: one seckill_server node over any stock_store. It owns the
// purchase engine and its policies (admission, breaker, Snowflake ids, the
// payment provider, an order index, the metrics hooks, a gate), answers the
// HTTP API (api.hpp) and runs the background work: the hold reaper (unless a
// coordinator runs it as a leader duty), a probe of the store once a second
// that feeds /ready and the gauges, and the trace export.
//
// Thread-safety: `handle` from any thread at once (each connection calls it
// from its own strand); `start` and `stop` from one thread. Cost per
// purchase: the engine's (the store's round trips, the payment) plus one JSON
// parse and one JSON dump; no lock but the engine's and the known-SKU set's
// shared one.

#include "api.hpp"
#include "common/store_url.hpp"
#include "http_server.hpp"
#include "options.hpp"
#include "payment.hpp"
#include "server_metrics.hpp"

#include <seckill/id/snowflake.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/obs/exposition.hpp>
#include <seckill/obs/otlp_exporter.hpp>
#include <seckill/obs/span.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/purchase/metrics_hooks.hpp>
#include <seckill/redis/gcra_limiter.hpp>
#include <seckill/store/reaper.hpp>
#include <seckill/store/store.hpp>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace seckill_server {

/// The engine's Limiter (asynchronous): this node's token bucket
/// (--admission-rate), then, when --gcra-rate or --gcra-user-rate is set,
/// the buckets every node shares in Redis (redis::gcra_limiter, or
/// redis::cluster_gcra_limiter on a cluster); everyone when neither is set.
/// A purchase the local bucket refuses never reaches Redis. Cost without
/// the Redis buckets: the bucket's CAS and a post.
class admission {
 public:
  admission(boost::asio::io_context& io, const options& o) : ex_(io.get_executor()) {
    if (o.admission_rate > 0)
      bucket_ = std::make_unique<seckill::token_bucket<>>(o.admission_rate, o.admission_burst);
    if (o.gcra_rate <= 0 && o.gcra_user_rate <= 0) return;
    const seckill::redis::gcra_limiter_options gcra_options{
        .sku_rate = o.gcra_rate,
        .sku_burst = o.gcra_burst,
        .user_rate = o.gcra_user_rate,
        .user_burst = o.gcra_user_burst,
        .on_failure = o.gcra_fail_open ? seckill::redis::gcra_failure_policy::fail_open
                                       : seckill::redis::gcra_failure_policy::fail_closed,
        .timeout = o.gcra_timeout};
    if (seckill::redis::is_cluster_url(gcra_url(o)))
      cluster_gcra_ = std::make_unique<seckill::redis::cluster_gcra_limiter>(
          io.get_executor(), seckill_examples::redis_cluster_config(gcra_url(o)), gcra_options);
    else
      gcra_ = std::make_unique<seckill::redis::gcra_limiter>(
          io.get_executor(), seckill_examples::redis_config(gcra_url(o)), gcra_options);
  }

  /// The Redis the shared buckets live in: --gcra-redis, else the store's.
  static std::string gcra_url(const options& o) {
    return o.gcra_redis.empty() ? o.store : o.gcra_redis;
  }

  /// Calls `f` with the shared buckets' limiter, when there is one.
  template <class F>
  void with_gcra(F&& f) {
    if (gcra_) f(*gcra_);
    if (cluster_gcra_) f(*cluster_gcra_);
  }

  /// The shared buckets' pre-filter: a refusal known here costs no round trip
  /// (and no token of this node's bucket).
  bool refuses_locally(std::string_view sku, std::string_view user, double tokens) noexcept {
    bool refused = false;
    with_gcra([&](auto& l) { refused = l.refuses_locally(sku, user, tokens); });
    return refused;
  }

  template <boost::asio::completion_token_for<void(std::error_code, bool)> Token>
  auto async_acquire(std::string_view sku, std::string_view user, double tokens, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code, bool)>(
        [this](auto handler, std::string_view sku, std::string_view user, double tokens) {
          const bool local_ok = !bucket_ || bucket_->try_acquire(tokens);
          if (local_ok && gcra_) {
            gcra_->async_acquire(sku, user, tokens, std::move(handler));
            return;
          }
          if (local_ok && cluster_gcra_) {
            cluster_gcra_->async_acquire(sku, user, tokens, std::move(handler));
            return;
          }
          auto ex = boost::asio::get_associated_executor(handler, ex_);
          boost::asio::post(ex,
                            boost::asio::append(std::move(handler), std::error_code{}, local_ok));
        },
        token, sku, user, tokens);
  }

 private:
  boost::asio::any_io_executor ex_;
  std::unique_ptr<seckill::token_bucket<>> bucket_;
  std::unique_ptr<seckill::redis::gcra_limiter> gcra_;
  std::unique_ptr<seckill::redis::cluster_gcra_limiter> cluster_gcra_;
};

/// The engine's Gate: open while this node takes purchases (not stopping,
/// and with --etcd, its health grade allows writes).
struct node_gate {
  const std::atomic<bool>* open = nullptr;
  [[nodiscard]] bool admits() const noexcept { return open->load(std::memory_order_relaxed); }
};

/// The engine's Orders sink: remembers which SKU each recent order of this
/// node belongs to (the store keys orders by SKU), so GET /orders/{id} can
/// ask the store without ?sku=. The store's record is the durable one; this
/// keeps the last `capacity` orders. Thread-safety: any thread (one mutex).
class order_index {
 public:
  explicit order_index(std::size_t capacity) : capacity_(capacity) {}

  template <class Token>
  auto async_persist(const seckill::order_record& o, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::int64_t id, std::string sku) {
          remember(id, std::move(sku));
          auto ex = boost::asio::get_associated_executor(handler);
          boost::asio::post(ex, boost::asio::append(std::move(handler), std::error_code{}));
        },
        token, o.order_id, std::string(o.sku));
  }

  void remember(std::int64_t id, std::string sku) {
    std::lock_guard lock(mutex_);
    if (!by_id_.emplace(id, std::move(sku)).second) return;
    order_.push_back(id);
    if (order_.size() > capacity_) {
      by_id_.erase(order_.front());
      order_.pop_front();
    }
  }
  [[nodiscard]] std::optional<std::string> sku_of(std::int64_t id) const {
    std::lock_guard lock(mutex_);
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, std::string> by_id_;
  std::deque<std::int64_t> order_;
};

/// The node's state as /ready and the gate read it: set by the node itself
/// (the store probe, a stop) and, with --etcd, by its coordinator (the grade).
struct node_status {
  std::atomic<bool> admits{true};    ///< the gate: false when stopping or read-only
  std::atomic<bool> store_ok{true};  ///< the last probe reached the store
  std::atomic<int> grade{0};         ///< index into `grades`
  std::atomic<bool> stopping{false};
};

/// `Ids` is the order id source: a snowflake with a fixed worker id, or with
/// --etcd one on a leased worker id (coordination.hpp). It must outlive the node.
template <seckill::stock_store Store, class Ids = seckill::snowflake<>>
class node {
 public:
  using engine_type =
      seckill::purchase_engine<Store, admission, seckill::circuit_breaker<>, Ids, payment_provider,
                               order_index, seckill::obs::purchase_hooks<>,
                               std::chrono::steady_clock, node_gate>;

  node(boost::asio::io_context& io, Store& store, const options& o, Ids& ids, std::string name)
      : store_(store),
        o_(o),
        name_(std::move(name)),
        purchase_metrics_(registry_),
        metrics_(registry_, !o.etcd.empty()),
        admission_(io, o),
        breaker_(seckill::breaker_options{}),
        ids_(ids),
        payment_(make_payment(io, o)),
        orders_(1 << 20),
        background_(boost::asio::make_strand(io)),
        reaper_(store, {}, {.period = o.reaper_period}) {
    if (!o.otlp.empty()) {
      http_url u;
      if (auto why = parse_http_url(o.otlp, u); !why.empty())
        throw seckill::error(seckill::errc::invalid_argument,
                             "--otlp " + seckill::redact_url(o.otlp) + ": " + why);
      seckill::obs::otlp_http_exporter::options eo;
      eo.host = u.host;
      eo.port = u.port;
      eo.target = u.path == "/" ? "/v1/traces" : u.path;
      eo.service_name = "seckill_server";
      exporter_.emplace(io.get_executor(), eo);
      tracer_.emplace(*exporter_);
    }
    engine_.emplace(
        store_, admission_, breaker_, ids_, payment_, orders_,
        seckill::purchase_options{.deadline = o.deadline, .hold = o.hold},
        seckill::obs::purchase_hooks<>(purchase_metrics_, tracer_ ? &*tracer_ : nullptr),
        std::chrono::steady_clock{}, node_gate{&status_.admits});
  }
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Names the node (before the server accepts).
  void set_name(std::string name) { name_ = std::move(name); }
  seckill::obs::registry& registry() noexcept { return registry_; }
  server_metrics& metrics() noexcept { return metrics_; }
  node_status& status() noexcept { return status_; }
  seckill::hold_reaper<Store>& reaper() noexcept { return reaper_; }
  /// The SKUs this node has seen (stocked through it, or bought on it).
  [[nodiscard]] std::vector<std::string> skus() const {
    std::shared_lock lock(skus_mutex_);
    return {skus_.begin(), skus_.end()};
  }

  /// Called once for each SKU this node learns about (stocked or bought here).
  void on_new_sku(std::function<void(const std::string&)> f) { new_sku_ = std::move(f); }

  /// The health grade (an index into `grades`) and whether it takes purchases.
  void set_grade(std::size_t index, bool writable) {
    status_.grade = static_cast<int>(index);
    status_.admits = writable && !status_.stopping.load();
    metrics_.set_grade(index);
  }

  /// Connection counts for /metrics (set by main once the server exists).
  void set_connection_source(std::function<std::pair<std::size_t, std::uint64_t>()> f) {
    connections_ = std::move(f);
  }

  /// Starts the background work: the probe, the trace export, and unless
  /// `leader_reaps` (a coordinator runs the reaper as a leader duty) the reaper.
  /// Throws `seckill::error` when the Redis of --gcra-rate cannot be reached.
  void start(bool leader_reaps) {
    namespace asio = boost::asio;
    admission_.with_gcra([&](auto& gcra) {
      std::promise<std::error_code> connected;
      gcra.async_connect([&connected](std::error_code ec) { connected.set_value(ec); });
      if (const auto ec = connected.get_future().get())
        throw seckill::error(ec, fmt::format("--gcra-redis {}: cannot connect: {}",
                                             seckill::redact_url(admission::gcra_url(o_)),
                                             gcra.connection().last_error()));
    });
    if (!leader_reaps)
      reaper_.async_run(asio::bind_cancellation_slot(
          stop_reaper_.slot(), asio::bind_executor(background_, [](std::error_code) {})));
    asio::co_spawn(background_, probe_loop(), asio::detached);
    if (exporter_) asio::co_spawn(background_, export_loop(), asio::detached);
  }

  /// Stops admitting purchases (the gate closes; those admitted finish).
  void stop_admitting() {
    status_.stopping = true;
    status_.admits = false;
  }

  /// Stops the background work; the last trace batch is flushed.
  void stop() {
    namespace asio = boost::asio;
    stop_admitting();
    asio::post(background_, [this] {
      stop_reaper_.emit(asio::cancellation_type::terminal);
      if (probe_timer_) probe_timer_->cancel();
    });
    admission_.with_gcra([](auto& gcra) { gcra.close(); });
  }

  /// The HTTP handler: one request, one answer.
  boost::asio::awaitable<answer> handle(const request& req) {
    const std::string_view full = req.target();
    const auto q = full.find('?');
    const std::string_view path = full.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : full.substr(q + 1);
    const auto route = route_of(path);
    const auto method = req.method();
    const auto only = [&](http::verb v, std::string_view allow) -> std::optional<answer> {
      if (method == v || (v == http::verb::get && method == http::verb::head)) return std::nullopt;
      auto a = json_answer(
          route, error_reply(405, "method_not_allowed", fmt::format("{} takes {}", path, allow)));
      a.res.set(http::field::allow, allow);
      return a;
    };
    if (route == "purchase") {
      if (auto refused = only(http::verb::post, "POST")) co_return std::move(*refused);
      co_return co_await purchase(req);
    }
    if (route == "admin_stock") {
      if (auto refused = only(http::verb::put, "PUT")) co_return std::move(*refused);
      co_return co_await admin_stock(req, path.substr(std::string_view("/admin/stock/").size()));
    }
    if (route == "stock") {
      if (auto refused = only(http::verb::get, "GET, HEAD")) co_return std::move(*refused);
      co_return co_await stock(path.substr(std::string_view("/stock/").size()));
    }
    if (route == "order") {
      if (auto refused = only(http::verb::get, "GET, HEAD")) co_return std::move(*refused);
      co_return co_await order(path.substr(std::string_view("/orders/").size()), query);
    }
    if (route == "metrics") {
      if (auto refused = only(http::verb::get, "GET, HEAD")) co_return std::move(*refused);
      co_return metrics_answer();
    }
    if (route == "health") {
      if (auto refused = only(http::verb::get, "GET, HEAD")) co_return std::move(*refused);
      co_return json_answer(route, reply{200, {{"status", "alive"}, {"node", name_}}, {}});
    }
    if (route == "ready") {
      if (auto refused = only(http::verb::get, "GET, HEAD")) co_return std::move(*refused);
      co_return ready_answer();
    }
    co_return json_answer(route, error_reply(404, "not_found",
                                             "no such resource; see /purchase, /stock/{sku}, "
                                             "/orders/{id}, /admin/stock/{sku}, /metrics, "
                                             "/health, /ready"));
  }

 private:
  static payment_provider make_payment(boost::asio::io_context& io, const options& o) {
    if (!o.payment_url.empty()) {
      http_url u;
      if (auto why = parse_http_url(o.payment_url, u); !why.empty())
        throw seckill::error(seckill::errc::invalid_argument,
                             "--payment-url " + seckill::redact_url(o.payment_url) + ": " + why);
      return payment_provider(io.get_executor(), std::move(u),
                              static_cast<std::size_t>(o.payment_connections));
    }
    return payment_provider(io.get_executor(), {.latency = o.payment_latency,
                                                .failure = o.payment_failure,
                                                .hang = o.payment_hang,
                                                .seed = o.seed});
  }

  static answer json_answer(std::string_view route, const reply& r) {
    answer a;
    a.route = route;
    a.res.version(11);
    a.res.result(r.status);
    a.res.set(http::field::content_type, "application/json");
    if (r.retry_after) a.res.set(http::field::retry_after, std::to_string(*r.retry_after));
    a.res.body() = r.body.dump() + "\n";
    return a;
  }

  static reply bad_request(std::string message) {
    return error_reply(400, "invalid_argument", std::move(message));
  }

  void note_sku(std::string_view sku) {
    {
      std::shared_lock lock(skus_mutex_);
      if (skus_.find(sku) != skus_.end()) return;
    }
    std::unique_lock lock(skus_mutex_);
    if (skus_.size() >= max_known_skus) return;
    if (!skus_.emplace(sku).second) return;
    reaper_.add_sku(std::string(sku));
    if (new_sku_) new_sku_(std::string(sku));
  }

  boost::asio::awaitable<answer> purchase(const request& req) {
    purchase_input in;
    if (auto why = decode_purchase(req.body(), in); !why.empty())
      co_return json_answer("purchase", bad_request(std::move(why)));
    const std::string traceparent(req["traceparent"]);
    seckill::purchase_request pr{.sku = in.sku,
                                 .quantity = in.quantity,
                                 .traceparent = traceparent,
                                 .user = in.user,
                                 .request_id = in.request_id};
    auto [ec, r] =
        co_await engine_->async_purchase(pr, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec != seckill::errc::unknown_sku && ec != seckill::errc::invalid_argument &&
        ec != seckill::errc::read_only)
      note_sku(in.sku);
    co_return json_answer("purchase", purchase_reply(ec, r, o_.hold));
  }

  boost::asio::awaitable<answer> admin_stock(const request& req, std::string_view sku) {
    namespace asio = boost::asio;
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    if (!bearer_matches(req[http::field::authorization], o_.admin_token)) {
      auto a = json_answer(
          "admin_stock",
          error_reply(401, "unauthorized",
                      o_.admin_token.empty() ? "the admin API is off: start with --admin-token"
                                             : "a valid Authorization: Bearer token is needed"));
      a.res.set(http::field::www_authenticate, "Bearer");
      co_return a;
    }
    if (!valid_name(sku))
      co_return json_answer(
          "admin_stock",
          bad_request("the SKU must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -"));
    stock_input in;
    if (auto why = decode_stock(req.body(), in); !why.empty())
      co_return json_answer("admin_stock", bad_request(std::move(why)));
    const std::string name(sku);
    seckill::sku_policy policy;
    policy.per_user_limit = in.per_user.value_or(o_.per_user);
    auto [pec] = co_await store_.async_set_policy(name, policy, tuple);
    if (pec) co_return json_answer("admin_stock", store_error_reply(pec));
    auto [sec] = co_await store_.async_set_stock(name, in.stock, tuple);
    if (sec == seckill::errc::invalid_argument)
      co_return json_answer("admin_stock",
                            bad_request("the store refused it: held and sold units plus the "
                                        "stock would exceed its range"));
    if (sec) co_return json_answer("admin_stock", store_error_reply(sec));
    note_sku(name);
    auto [rec, level] = co_await store_.async_stock(name, tuple);
    if (rec) co_return json_answer("admin_stock", store_error_reply(rec));
    purchase_metrics_.set_stock(name, level.remaining);
    co_return json_answer(
        "admin_stock",
        reply{200,
              {{"sku", name}, {"available", level.remaining}, {"per_user", policy.per_user_limit}},
              {}});
  }

  boost::asio::awaitable<answer> stock(std::string_view sku) {
    if (!valid_name(sku)) co_return json_answer("stock", error_reply(404, "unknown_sku"));
    const std::string name(sku);
    auto [ec, level] =
        co_await store_.async_stock(name, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec == seckill::errc::unknown_sku)
      co_return json_answer("stock", error_reply(404, "unknown_sku"));
    if (ec) co_return json_answer("stock", store_error_reply(ec));
    co_return json_answer("stock", reply{200,
                                         {{"sku", name},
                                          {"available", level.remaining},
                                          {"reserved", level.reserved},
                                          {"sold", level.committed}},
                                         {}});
  }

  boost::asio::awaitable<answer> order(std::string_view id_text, std::string_view query) {
    const auto id = parse_order_id(id_text);
    if (!id)
      co_return json_answer("order",
                            bad_request("the order id must be a positive decimal integer"));
    std::vector<std::string> candidates;
    if (query.starts_with("sku=")) {
      const auto sku = query.substr(4);
      if (!valid_name(sku)) co_return json_answer("order", bad_request("bad sku in the query"));
      candidates.emplace_back(sku);
    } else if (auto sku = orders_.sku_of(*id)) {
      candidates.push_back(std::move(*sku));
    } else {
      candidates = skus();  // bought on another node: ask the store for each SKU known here
    }
    for (const auto& sku : candidates) {
      auto [ec, entry] = co_await store_.async_get_order(
          sku, *id, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == seckill::errc::unknown_order || ec == seckill::errc::unknown_sku) continue;
      if (ec) co_return json_answer("order", store_error_reply(ec));
      nlohmann::ordered_json body = {{"order_id", std::to_string(entry.order_id)},
                                     {"sku", sku},
                                     {"quantity", entry.quantity},
                                     {"user", entry.user},
                                     {"state", "committed"}};
      if (!entry.request_id.empty()) body["request_id"] = entry.request_id;
      co_return json_answer("order", reply{200, std::move(body), {}});
    }
    co_return json_answer("order",
                          error_reply(404, "unknown_order",
                                      "no committed order with this id (held, rolled "
                                      "back or never made; add ?sku= to ask for one SKU)"));
  }

  answer metrics_answer() {
    if (connections_) {
      const auto [open, refused] = connections_();
      metrics_.set_connections(open, refused);
    }
    if constexpr (requires { store_.local_refusals(); })
      metrics_.set_cache_refusals(store_.local_refusals());
    admission_.with_gcra([this](auto& gcra) { metrics_.set_gcra(gcra.counters()); });
    answer a;
    a.route = "metrics";
    a.res.version(11);
    a.res.result(http::status::ok);
    a.res.set(http::field::content_type, seckill::obs::text_content_type);
    a.res.body() = seckill::obs::to_text(registry_);
    return a;
  }

  answer ready_answer() {
    const auto grade = std::string(grades[static_cast<std::size_t>(status_.grade.load())]);
    std::string reason;
    if (status_.stopping.load())
      reason = "stopping";
    else if (!status_.store_ok.load())
      reason = "the stock store does not answer";
    else if (!status_.admits.load())
      reason = "the health grade takes no purchases";
    if (reason.empty())
      return json_answer("ready", reply{200, {{"status", "ready"}, {"grade", grade}}, {}});
    return json_answer(
        "ready", reply{503, {{"status", "not_ready"}, {"grade", grade}, {"reason", reason}}, {}});
  }

  // Once a second: reach the store (a stock read of a SKU, or of a probe
  // name), sample the breaker and the stock of the known SKUs.
  boost::asio::awaitable<void> probe_loop() {
    namespace asio = boost::asio;
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    probe_timer_.emplace(background_);
    while (!status_.stopping.load()) {
      auto known = skus();
      if (known.size() > 64) known.resize(64);
      if (known.empty()) known.emplace_back("seckill-probe");
      bool reached = true;
      for (const auto& sku : known) {
        auto [ec, level] = co_await store_.async_stock(sku, tuple);
        if (ec && ec != seckill::errc::unknown_sku) {
          reached = false;
          purchase_metrics_.store_error("stock");
          break;
        }
        if (!ec) purchase_metrics_.set_stock(sku, level.remaining);
      }
      status_.store_ok = reached;
      metrics_.set_store_connected(reached);
      sample_cache(reached);
      purchase_metrics_.set_breaker_state(breaker_.state());
      probe_timer_->expires_after(std::chrono::seconds(1));
      auto [wec] = co_await probe_timer_->async_wait(tuple);
      if (wec) break;
    }
  }

  // The sold-out cache's lag: 0 while its feed is live and the store
  // answers, else how long since it last was (its view is that old).
  // Nothing on a store without a cache.
  void sample_cache(bool store_reached) {
    if constexpr (requires { store_.cache().live(); }) {
      const auto now = std::chrono::steady_clock::now();
      if (store_.cache().live() && store_reached)
        cache_stale_since_.reset();
      else if (!cache_stale_since_)
        cache_stale_since_ = now;
      metrics_.set_cache_lag(cache_stale_since_
                                 ? std::chrono::duration<double>(now - *cache_stale_since_).count()
                                 : 0.0);
    }
  }

  boost::asio::awaitable<void> export_loop() {
    namespace asio = boost::asio;
    asio::steady_timer timer(background_);
    while (!status_.stopping.load()) {
      timer.expires_after(std::chrono::seconds(1));
      auto [wec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      (void)wec;
      auto [fec] = co_await exporter_->async_flush(asio::as_tuple(asio::use_awaitable));
      (void)fec;  // counted by the exporter (dropped spans)
    }
  }

  static constexpr std::size_t max_known_skus = 100'000;

  Store& store_;
  const options& o_;
  std::string name_;
  seckill::obs::registry registry_;
  seckill::obs::purchase_metrics purchase_metrics_;
  server_metrics metrics_;
  node_status status_;
  admission admission_;
  seckill::circuit_breaker<> breaker_;
  Ids& ids_;
  payment_provider payment_;
  order_index orders_;
  std::optional<seckill::obs::otlp_http_exporter> exporter_;
  std::optional<seckill::obs::basic_tracer<>> tracer_;
  std::optional<engine_type> engine_;
  boost::asio::strand<boost::asio::io_context::executor_type> background_;
  seckill::hold_reaper<Store> reaper_;
  boost::asio::cancellation_signal stop_reaper_;
  std::optional<boost::asio::steady_timer> probe_timer_;
  std::optional<std::chrono::steady_clock::time_point> cache_stale_since_;  // the probe's
  mutable std::shared_mutex skus_mutex_;
  std::set<std::string, std::less<>> skus_;
  std::function<std::pair<std::size_t, std::uint64_t>()> connections_;
  std::function<void(const std::string&)> new_sku_;
};

}  // namespace seckill_server
