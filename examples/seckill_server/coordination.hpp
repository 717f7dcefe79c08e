#pragma once
// coordination: what --etcd adds to a node. One etcd session (a lease) under
// which the node
//   - leases its Snowflake worker id (worker_claim): ids stop, never repeat,
//     when the lease is in doubt, and a new claim follows a renewed lease;
//   - registers in the service registry (services/<service>/<node>: its
//     endpoint, weight and url), publishing its graded health, so that load
//     balancers and seckill_load move traffic away from a failing node;
//   - follows its health grade (healthy, degraded, read-only, offline) into
//     its purchase gate, /ready and the metrics;
//   - campaigns for the leader duties (the hold reaper with a fencing token,
//     and the audits of the orders), run by one node at a time;
//   - shares the SKUs it learns about (seckill/cluster/skus/) so that the
//     leader reaps every SKU whichever node sold it.
// Keys: the election under seckill/cluster/duties, the worker leases under
// seckill/cluster/workers/; an etcd store keeps its stock under seckill/stock/.
//
// Thread-safety: `start` and `stop` from the main thread (they block on the
// etcd calls); `ids()` from any thread. Cost: a keepalive per TTL / 3, one
// registry write per grade change, one read of the SKU list per second, and
// on the leader the reaps and audits.

#include "common/store_url.hpp"
#include "node.hpp"
#include "options.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/leader_duties.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/worker_claim.hpp>

#include <fmt/format.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace seckill_server {

inline constexpr std::string_view cluster_prefix = "seckill/cluster";

/// Runs `start(handler)` on `ex` and waits for its completion from this
/// (non-io) thread; the completion's arguments as a tuple.
template <class... Ts, class Start>
std::tuple<Ts...> wait_for_completion(Start start) {
  std::promise<std::tuple<Ts...>> done;
  start([&done](Ts... args) { done.set_value(std::tuple<Ts...>(std::move(args)...)); });
  return done.get_future().get();
}

/// The engine's Ids policy with --etcd: the current leased generator (a new
/// one after each new claim); without one, every id request fails with
/// errc::worker_lost, and the purchase is refused (503).
class cluster_ids {
 public:
  std::int64_t next(std::error_code& ec) {
    auto* g = current_.load(std::memory_order_acquire);
    if (g == nullptr) {
      ec = seckill::etcd::errc::worker_lost;
      return 0;
    }
    return g->next(ec);
  }
  /// Installs a generator for a new claim (kept until destruction: a
  /// purchase may still be using the previous one).
  void install(std::unique_ptr<seckill::etcd::leased_snowflake<>> g) {
    std::lock_guard lock(mutex_);
    all_.push_back(std::move(g));
    current_.store(all_.back().get(), std::memory_order_release);
  }
  [[nodiscard]] std::int64_t last_used_ms() const {
    auto* g = current_.load(std::memory_order_acquire);
    return g == nullptr ? 0 : g->last_used_ms();
  }

 private:
  std::atomic<seckill::etcd::leased_snowflake<>*> current_{nullptr};
  std::mutex mutex_;
  std::vector<std::unique_ptr<seckill::etcd::leased_snowflake<>>> all_;
};

template <class Store>
class coordination {
 public:
  using duties_type = seckill::etcd::leader_duties<Store>;

  coordination(boost::asio::io_context& io, Store& store, const options& o, std::string name)
      : io_(io),
        strand_(boost::asio::make_strand(io)),
        o_(o),
        name_(std::move(name)),
        client_(strand_, seckill_examples::etcd_options(o.etcd, "--etcd")),
        session_(client_, {.ttl = std::chrono::seconds(5)}),
        claim_(session_,
               {.prefix = std::string(cluster_prefix), .node_name = name_, .any_datacenter = true}),
        duties_(client_, store, {},
                {.election = std::string(cluster_prefix) + "/duties",
                 .name = name_,
                 .ttl = std::chrono::seconds(5),
                 .reap_period = o.reaper_period}) {}
  coordination(const coordination&) = delete;
  coordination& operator=(const coordination&) = delete;

  cluster_ids& ids() noexcept { return ids_; }
  duties_type& duties() noexcept { return duties_; }

  /// Starts the session and claims a worker id; throws seckill::error when
  /// etcd cannot be reached or no worker id is free.
  void start_session() {
    auto [ec, lease] = wait_for_completion<std::error_code, std::int64_t>(
        [&](auto h) { session_.async_start(boost::asio::bind_executor(strand_, std::move(h))); });
    (void)lease;
    if (ec)
      throw seckill::error(
          ec, fmt::format("--etcd {}: cannot start a session", seckill::redact_url(o_.etcd)));
    claim_worker();
  }

  /// Joins the cluster with the node: registry, health, duties, shared SKUs.
  void join(node<Store, cluster_ids>& n, const std::string& endpoint, const std::string& url) {
    namespace asio = boost::asio;
    node_ = &n;
    n.metrics().set_etcd_connected(true);
    seckill::etcd::service_instance inst;
    inst.id = name_;
    inst.endpoint = endpoint;
    inst.weight = static_cast<double>(o_.weight);
    inst.metadata["url"] = url;
    registration_.emplace(session_, "services/" + o_.service, inst);
    registration_->follow(monitor_);
    health_ = seckill::etcd::attach_health(
        session_, monitor_, [this](seckill::etcd::health_state h) { apply_grade(h); });
    session_.on_keepalive([this](bool ok, unsigned) {
      if (node_ != nullptr) node_->metrics().set_etcd_connected(ok);
    });
    session_.on_renewed([this](std::int64_t) {
      // A new lease: the old claim is void; claim again (maybe another pair).
      asio::co_spawn(strand_, reclaim(), asio::detached);
    });
    duties_.on_term([this](std::int64_t token, bool leading, std::error_code why) {
      if (node_ != nullptr) node_->metrics().set_leader(leading);
      if (leading)
        fmt::print(stderr, "seckill_server: {} runs the leader duties (fencing token {})\n", name_,
                   token);
      else if (!stopping_.load())
        fmt::print(stderr, "seckill_server: {} no longer runs the leader duties: {}\n", name_,
                   why.message());
    });
    n.on_new_sku([this](const std::string& sku) { share_sku(sku); });
    auto [ec, rev] = wait_for_completion<std::error_code, std::int64_t>(
        [&](auto h) { registration_->async_register(asio::bind_executor(strand_, std::move(h))); });
    (void)rev;
    if (ec)
      throw seckill::error(
          ec, fmt::format("--etcd {}: cannot register {}", seckill::redact_url(o_.etcd), name_));
    duties_.async_run(asio::bind_cancellation_slot(
        stop_duties_.slot(),
        asio::bind_executor(strand_, [this](std::error_code) { duties_ended_.set_value(); })));
    asio::co_spawn(strand_, follow_skus(), [this](std::exception_ptr) { skus_ended_.set_value(); });
    joined_ = true;
  }

  /// Leaves the cluster: deregisters (traffic stops coming), resigns the
  /// duties, releases the worker id, closes the session (revoking its lease).
  void leave() {
    namespace asio = boost::asio;
    stopping_ = true;
    if (registration_) {
      auto [ec, rev] = wait_for_completion<std::error_code, std::int64_t>([&](auto h) {
        registration_->async_deregister(asio::bind_executor(strand_, std::move(h)));
      });
      (void)ec;
      (void)rev;
    }
    asio::post(strand_, [this] {
      stop_duties_.emit(asio::cancellation_type::terminal);
      if (sku_timer_) sku_timer_->cancel();
    });
    if (joined_) {
      // Nothing of the duties (a resign, a reap on the store) nor of the SKU
      // list may still be running once the node, the store and the client go.
      duties_ended_.get_future().wait();
      skus_ended_.get_future().wait();
    }
    auto [rec, rrev] = wait_for_completion<std::error_code, std::int64_t>([&](auto h) {
      claim_.async_release(ids_.last_used_ms(), asio::bind_executor(strand_, std::move(h)));
    });
    (void)rec;
    (void)rrev;
    asio::post(strand_, [this] { health_.detach(); });
    auto [cec, lease] = wait_for_completion<std::error_code, std::int64_t>(
        [&](auto h) { session_.async_close(asio::bind_executor(strand_, std::move(h))); });
    (void)cec;
    (void)lease;
  }

 private:
  void claim_worker() {
    auto [ec, pair] = wait_for_completion<std::error_code, seckill::etcd::worker_pair>(
        [&](auto h) { claim_.async_claim(boost::asio::bind_executor(strand_, std::move(h))); });
    if (ec)
      throw seckill::error(ec, fmt::format("--etcd {}: cannot claim a worker id: {}",
                                           seckill::redact_url(o_.etcd), claim_.last_error()));
    worker_ = pair.datacenter * 32 + pair.worker;
    ids_.install(std::make_unique<seckill::etcd::leased_snowflake<>>(claim_));
  }

  boost::asio::awaitable<void> reclaim() {
    auto [ec, pair] =
        co_await claim_.async_claim(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;  // the ids stay refused until the next renewal
    ids_.install(std::make_unique<seckill::etcd::leased_snowflake<>>(claim_));
  }

  void apply_grade(seckill::etcd::health_state h) {
    if (node_ == nullptr) return;
    std::size_t index = 0;
    switch (h) {
      case seckill::etcd::health_state::healthy:
        index = 0;
        break;
      case seckill::etcd::health_state::degraded:
        index = 1;
        break;
      case seckill::etcd::health_state::read_only:
        index = 2;
        break;
      case seckill::etcd::health_state::offline:
        index = 3;
        break;
    }
    node_->set_grade(index, monitor_.writable());
  }

  // Tells the cluster about a SKU (once per node and SKU).
  void share_sku(const std::string& sku) {
    boost::asio::post(strand_, [this, sku] {
      duties_.add_sku(sku);
      client_.async_put(
          std::string(cluster_prefix) + "/skus/" + sku, "1",
          boost::asio::bind_executor(strand_, [](std::error_code, seckill::etcd::put_result) {}));
    });
  }

  // Once a second: the SKUs every node told about, for the leader's duties.
  boost::asio::awaitable<void> follow_skus() {
    namespace asio = boost::asio;
    sku_timer_.emplace(strand_);
    const std::string prefix = std::string(cluster_prefix) + "/skus/";
    while (!stopping_.load()) {
      seckill::etcd::range_options ro;
      ro.prefix = true;
      ro.keys_only = true;
      auto [ec, r] = co_await client_.async_range(prefix, ro, asio::as_tuple(asio::use_awaitable));
      if (!ec) {
        std::vector<std::string> skus;
        for (const auto& kv : r.kvs) skus.push_back(kv.key.substr(prefix.size()));
        duties_.set_skus(std::move(skus));
      }
      if (stopping_.load()) break;
      sku_timer_->expires_after(std::chrono::seconds(1));
      auto [wec] = co_await sku_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
  }

 public:
  [[nodiscard]] unsigned worker() const noexcept { return worker_; }

 private:
  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  const options& o_;
  std::string name_;
  seckill::etcd::client client_;
  seckill::etcd::session session_;
  seckill::etcd::worker_claim claim_;
  seckill::etcd::health_monitor<> monitor_;
  seckill::etcd::health_link health_;
  std::optional<seckill::etcd::registration> registration_;
  duties_type duties_;
  boost::asio::cancellation_signal stop_duties_;
  std::optional<boost::asio::steady_timer> sku_timer_;
  cluster_ids ids_;
  unsigned worker_ = 0;
  node<Store, cluster_ids>* node_ = nullptr;
  std::atomic<bool> stopping_{false};
  bool joined_ = false;
  std::promise<void> duties_ended_;
  std::promise<void> skus_ended_;
};

}  // namespace seckill_server
