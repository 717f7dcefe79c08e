#pragma once
// server_metrics: what the service adds to the engine's purchase metrics:
// requests by route and status and their latency, open and refused
// connections, the node's health grade and leadership, and whether the
// store and etcd (with --etcd) are reachable, and how stale the sold-out
// cache is and how many purchases it refused.
//
// Thread-safety: every member from any thread. Cost per request: one
// counter and one histogram observation, no lock once the (route, status)
// child exists.

#include <seckill/obs/metrics.hpp>
#include <seckill/redis/gcra_limiter.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace seckill_server {

/// The routes, as metric labels (see api.hpp's route_of).
inline constexpr std::array<std::string_view, 8> routes = {
    "purchase", "admin_stock", "stock", "order", "metrics", "health", "ready", "other"};

/// A node's health grades, as metric labels, best first.
inline constexpr std::array<std::string_view, 4> grades = {"healthy", "degraded", "read_only",
                                                           "unavailable"};

class server_metrics {
 public:
  /// `coordinated`: the node runs with --etcd (only then is
  /// seckill_etcd_connected exported: a node without etcd is not one that
  /// lost it).
  server_metrics(seckill::obs::registry& reg, bool coordinated)
      : registry_(&reg),
        requests_(reg.add_counter_family("seckill_http_requests_total",
                                         "HTTP requests answered, by route and status.",
                                         {"route", "status"})),
        connections_(reg.add_gauge_family("seckill_http_connections", "HTTP connections open.")
                         .with(std::vector<std::string>{})),
        refused_(
            reg.add_counter_family("seckill_http_connections_refused_total",
                                   "Connections closed at once: the connection cap was reached.")
                .with(std::vector<std::string>{})),
        leader_(reg.add_gauge_family("seckill_node_leader",
                                     "1 while this node runs the leader duties (reaper, audits).")
                    .with(std::vector<std::string>{})),
        store_connected_(
            reg.add_gauge_family("seckill_store_connected", "1 while the stock store answers.")
                .with(std::vector<std::string>{})),
        cache_lag_(
            reg.add_gauge_family("seckill_stock_cache_lag_seconds",
                                 "How long the sold-out cache's feed has been out of sync with the "
                                 "store (0 while it is live).")
                .with(std::vector<std::string>{})),
        cache_refusals_(reg.add_counter_family("seckill_stock_cache_refusals_total",
                                               "Purchases answered sold out by the node's "
                                               "sold-out cache, without a store round trip.")
                            .with(std::vector<std::string>{})) {
    if (coordinated)
      etcd_connected_ = reg.add_gauge_family("seckill_etcd_connected",
                                             "1 while this node's etcd session is kept alive.")
                            .with(std::vector<std::string>{});
    auto& latency =
        reg.add_histogram_family("seckill_http_request_duration_seconds",
                                 "From a request's first byte to its answer.", {"route"});
    for (std::size_t i = 0; i < routes.size(); ++i)
      latency_[i] = latency.with({std::string(routes[i])});
    auto& grade = reg.add_gauge_family("seckill_node_health_grade",
                                       "1 for this node's current health grade.", {"grade"});
    for (std::size_t i = 0; i < grades.size(); ++i)
      grade_[i] = grade.with({std::string(grades[i])});
    set_grade(0);
  }

  void request(std::string_view route, unsigned status, double seconds) {
    std::size_t r = routes.size() - 1;
    for (std::size_t i = 0; i < routes.size(); ++i)
      if (routes[i] == route) r = i;
    latency_[r].observe(seconds);
    counter_for(r, status).inc();
  }
  void set_connections(std::size_t open, std::uint64_t refused_total) {
    connections_.set(static_cast<double>(open));
    std::lock_guard lock(mutex_);
    const double seen = refused_.value();
    if (static_cast<double>(refused_total) > seen)
      refused_.inc(static_cast<double>(refused_total) - seen);
  }
  /// `index` into `grades`.
  void set_grade(std::size_t index) {
    for (std::size_t i = 0; i < grades.size(); ++i) grade_[i].set(i == index ? 1.0 : 0.0);
  }
  void set_leader(bool v) { leader_.set(v ? 1.0 : 0.0); }
  void set_store_connected(bool v) { store_connected_.set(v ? 1.0 : 0.0); }
  /// Only on a node made `coordinated`.
  void set_etcd_connected(bool v) {
    if (etcd_connected_) etcd_connected_->set(v ? 1.0 : 0.0);
  }
  void set_cache_lag(double seconds) { cache_lag_.set(seconds); }
  /// The cache's running total of local refusals.
  void set_cache_refusals(std::uint64_t total) {
    std::lock_guard lock(mutex_);
    const double seen = cache_refusals_.value();
    if (static_cast<double>(total) > seen) cache_refusals_.inc(static_cast<double>(total) - seen);
  }

  /// The shared Redis buckets' decisions (--gcra-rate): exported from the
  /// first call on, so a node without them exports none.
  void set_gcra(const seckill::redis::gcra_counters& c) {
    std::lock_guard lock(mutex_);
    if (!gcra_failures_) {
      auto& decisions = registry_->add_counter_family(
          "seckill_gcra_decisions_total",
          "Purchases decided by the rate limits shared in Redis, by outcome: admitted, "
          "refused_local (by the pre-filter, no round trip), refused_remote, failed_open "
          "(Redis did not answer, admitted by --gcra-fail-open).",
          {"outcome"});
      for (std::size_t i = 0; i < gcra_outcomes_.size(); ++i)
        gcra_outcomes_[i] = decisions.with({std::string(gcra_outcome_names[i])});
      gcra_failures_ = registry_
                           ->add_counter_family("seckill_gcra_failures_total",
                                                "Checks of the shared rate limits that Redis did "
                                                "not answer (or answered with an error).")
                           .with(std::vector<std::string>{});
    }
    const std::array<std::uint64_t, 4> totals{c.admitted, c.refused_local, c.refused_remote,
                                              c.failed_open};
    for (std::size_t i = 0; i < totals.size(); ++i) catch_up(gcra_outcomes_[i], totals[i]);
    catch_up(gcra_failures_, c.failures);
  }

 private:
  // The statuses the service answers; their children are made on first use
  // and then read without a lock. Any other status takes the mutex.
  static constexpr std::array<unsigned, 14> statuses = {200, 400, 401, 402, 404, 405, 409,
                                                        413, 429, 431, 500, 502, 503, 504};
  struct slot {
    std::atomic<bool> ready{false};
    seckill::obs::counter counter;
  };

  seckill::obs::counter counter_for(std::size_t route, unsigned status) {
    std::size_t s = statuses.size();
    for (std::size_t i = 0; i < statuses.size(); ++i)
      if (statuses[i] == status) s = i;
    if (s < statuses.size() && slots_[route][s].ready.load(std::memory_order_acquire))
      return slots_[route][s].counter;
    std::lock_guard lock(mutex_);
    auto c = requests_.with({std::string(routes[route]), std::to_string(status)});
    if (s < statuses.size()) {
      slots_[route][s].counter = c;
      slots_[route][s].ready.store(true, std::memory_order_release);
    }
    return c;
  }

  // Raises `c` to `total` (a counter only goes up).
  static void catch_up(const seckill::obs::counter& c, std::uint64_t total) {
    const double seen = c.value();
    if (static_cast<double>(total) > seen) c.inc(static_cast<double>(total) - seen);
  }

  static constexpr std::array<std::string_view, 4> gcra_outcome_names = {
      "admitted", "refused_local", "refused_remote", "failed_open"};

  seckill::obs::registry* registry_;
  seckill::obs::family<seckill::obs::counter>& requests_;
  std::array<seckill::obs::histogram, routes.size()> latency_;
  std::array<seckill::obs::gauge, grades.size()> grade_;
  seckill::obs::gauge connections_;
  seckill::obs::counter refused_;
  seckill::obs::gauge leader_;
  seckill::obs::gauge store_connected_;
  std::optional<seckill::obs::gauge> etcd_connected_;
  seckill::obs::gauge cache_lag_;
  seckill::obs::counter cache_refusals_;
  std::array<seckill::obs::counter, 4> gcra_outcomes_;
  seckill::obs::counter gcra_failures_;
  std::array<std::array<slot, statuses.size()>, routes.size()> slots_;
  std::mutex mutex_;  // making children; the refused count
};

}  // namespace seckill_server
