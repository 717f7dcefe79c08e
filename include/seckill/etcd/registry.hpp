#pragma once
/// @file
/// @brief A service registry on etcd: an instance registers its endpoint,
///        weight, health grade and metadata under its session's lease (gone
///        within the TTL when the process dies); a `resolver` follows a
///        service prefix through a watch and keeps the live instance list; a
///        `weighted_picker` spreads calls by effective weight.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief One registered instance of a service.
struct service_instance {
  std::string id{};        ///< unique within the service; the last part of the key
  std::string endpoint{};  ///< where to reach it, e.g. "10.0.0.7:8080"
  double weight = 1.0;     ///< its share of the traffic when healthy (> 0)
  health_state health = health_state::healthy;
  double effective_weight = 1.0;  ///< weight after the health grade (what pickers use)
  std::map<std::string, std::string> metadata{};
  // set by the resolver
  std::int64_t lease = 0;
  std::int64_t mod_revision = 0;
  friend bool operator==(const service_instance&, const service_instance&) = default;
};

/// @brief A change of one instance as a `resolver` sees it: what other nodes
///        learn about a node's health.
struct instance_event {
  enum class kind : std::uint8_t {
    online,   ///< a record appeared (registered, or written again under a new lease)
    changed,  ///< its grade, weight, endpoint or metadata changed
    /// NODE_OFFLINE: its record went away (lease expired, revoked, or
    /// deregistered) or says offline; `instance` is the last record seen.
    offline,
  };
  kind what = kind::online;
  service_instance instance{};
  std::int64_t revision = 0;  ///< the etcd revision that carried it (0 after a resync)
};

constexpr std::string_view to_string(instance_event::kind k) noexcept {
  switch (k) {
    case instance_event::kind::online:
      return "online";
    case instance_event::kind::changed:
      return "changed";
    case instance_event::kind::offline:
      return "offline";
  }
  return "unknown";
}

namespace detail {

inline std::string encode_instance(const service_instance& s) {
  json j = json::object();
  j["endpoint"] = s.endpoint;
  j["weight"] = s.weight;
  j["effective_weight"] = s.effective_weight;
  j["health"] = std::string(to_string(s.health));
  j["metadata"] = s.metadata;
  return j.dump();
}

/// Parses a registry value; false (and a message) for anything malformed.
inline bool decode_instance(const std::string& text, service_instance& out, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    message = "registry value is not a JSON object: '" + text.substr(0, 60) + "'";
    return false;
  }
  const auto ep = j.find("endpoint");
  if (ep == j.end() || !ep->is_string() || ep->get_ref<const std::string&>().empty()) {
    message = "registry value without an endpoint string: " + excerpt(j);
    return false;
  }
  out.endpoint = ep->get<std::string>();
  auto number = [&](const char* name, double fallback, double& v) {
    const auto it = j.find(name);
    if (it == j.end()) {
      v = fallback;
      return true;
    }
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
      message = std::string("registry value has a bad '") + name + "': " + excerpt(*it);
      return false;
    }
    v = it->get<double>();
    return true;
  };
  if (!number("weight", 1.0, out.weight)) return false;
  if (!number("effective_weight", out.weight, out.effective_weight)) return false;
  out.health = health_state::healthy;
  if (const auto h = j.find("health"); h != j.end()) {
    if (!h->is_string() || !from_string(h->get_ref<const std::string&>(), out.health)) {
      message = "registry value has an unknown health grade: " + excerpt(*h);
      return false;
    }
  }
  out.metadata.clear();
  if (const auto m = j.find("metadata"); m != j.end() && !m->is_null()) {
    if (!m->is_object()) {
      message = "registry metadata is not an object: " + excerpt(*m);
      return false;
    }
    for (const auto& [k, v] : m->items()) {
      if (!v.is_string()) {
        message = "registry metadata '" + k + "' is not a string: " + excerpt(v);
        return false;
      }
      out.metadata[k] = v.get<std::string>();
    }
  }
  return true;
}

inline std::string service_dir(std::string prefix) {
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
  return prefix;
}

}  // namespace detail

/// @brief Registers one instance under its session's lease, and keeps it
///        registered: after the session renews its lease (following a loss)
///        the record is written again under the new lease.
///
/// Thread-safety: like the client. The session must outlive it. Cost: one put
/// per (re)registration or update.
class registration {
 public:
  using executor_type = session::executor_type;

  registration(session& s, std::string service_prefix, service_instance inst)
      : session_(s),
        st_(std::make_shared<state>(s, detail::service_dir(std::move(service_prefix)),
                                    std::move(inst))) {
    if (st_->instance.id.empty() || st_->instance.id.find('/') != std::string::npos) {
      throw error(seckill::errc::invalid_argument,
                  "service instance id '" + st_->instance.id + "' is empty or has a '/'");
    }
    if (!(st_->instance.weight > 0) || !std::isfinite(st_->instance.weight)) {
      throw error(
          seckill::errc::invalid_argument,
          "service instance weight " + std::to_string(st_->instance.weight) + " is not > 0");
    }
    st_->instance.effective_weight = st_->instance.weight;
    std::weak_ptr<state> weak = st_;
    s.on_renewed([weak](std::int64_t) {
      if (auto p = weak.lock(); p && p->registered) {
        boost::asio::co_spawn(p->owner.get_executor(), state::put(p), boost::asio::detached);
      }
    });
  }
  ~registration() { st_->registered = false; }

  [[nodiscard]] executor_type get_executor() const noexcept { return session_.get_executor(); }
  [[nodiscard]] std::string key() const { return st_->prefix + st_->instance.id; }
  [[nodiscard]] const service_instance& instance() const noexcept { return st_->instance; }

  /// Writes the record under the session's lease. -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_register(CompletionToken&& token = CompletionToken()) {
    st_->registered = true;
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::put(st_), token);
  }

  /// Publishes a new health grade; the effective weight is the weight times
  /// `factor` (0 for read-only and offline). -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_health(health_state h, double factor,
                        CompletionToken&& token = CompletionToken()) {
    st_->instance.health = h;
    st_->instance.effective_weight = (h == health_state::healthy || h == health_state::degraded)
                                         ? st_->instance.weight * factor
                                         : 0.0;
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::put(st_), token);
  }

  /// Publishes every grade change of `m` (best effort: a failed write is
  /// retried with the next change or renewal).
  template <class Monitor>
  void follow(Monitor& m) {
    std::weak_ptr<state> weak = st_;
    m.on_transition([weak, &m](const auto& t) {
      auto p = weak.lock();
      if (!p) return;
      p->instance.health = t.to;
      p->instance.effective_weight = p->instance.weight * m.weight_factor();
      if (p->registered && t.to != health_state::offline) {
        boost::asio::co_spawn(p->owner.get_executor(), state::put(p), boost::asio::detached);
      }
    });
  }

  /// Deletes the record (the lease stays). -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_deregister(CompletionToken&& token = CompletionToken()) {
    st_->registered = false;
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::remove(st_), token);
  }

 private:
  struct state {
    state(session& s, std::string p, service_instance i)
        : owner(s), prefix(std::move(p)), instance(std::move(i)) {}
    session& owner;
    std::string prefix;
    service_instance instance;
    bool registered = false;

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> put(
        std::shared_ptr<state> p) {
      co_await detail::honour_any_cancellation();
      if (!p->owner.alive())
        co_return std::pair{make_error_code(errc::session_lost), std::int64_t{0}};
      put_options o;
      o.lease = p->owner.lease();
      auto [ec, r] = co_await p->owner.get_client().async_put(
          p->prefix + p->instance.id, detail::encode_instance(p->instance), o,
          boost::asio::as_tuple(boost::asio::use_awaitable));
      co_return std::pair{ec, r.header.revision};
    }
    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> remove(
        std::shared_ptr<state> p) {
      co_await detail::honour_any_cancellation();
      const delete_options just_the_key;
      auto [ec, r] = co_await p->owner.get_client().async_delete(
          p->prefix + p->instance.id, just_the_key,
          boost::asio::as_tuple(boost::asio::use_awaitable));
      co_return std::pair{ec, r.header.revision};
    }
  };

  session& session_;
  std::shared_ptr<state> st_;
};

/// @brief The live instances of a service, kept current by a watch on its
///        prefix (records that do not parse are skipped and counted).
///
/// Thread-safety: like the client. Cost: the instances in memory; a JSON parse
/// per change.
class resolver {
 public:
  using executor_type = watcher::executor_type;
  using change_handler = std::function<void(const std::map<std::string, service_instance>&)>;
  using event_handler = std::function<void(const instance_event&)>;

  resolver(watcher& w, std::string service_prefix)
      : watcher_(w), prefix_(detail::service_dir(std::move(service_prefix))), cache_(w, prefix_) {
    cache_.on_change([this](const event& e) {
      apply(e.kv, e.type == event::kind::del, e.kv.mod_revision);
      if (on_change_) on_change_(instances_);
    });
    cache_.on_resync([this]() {
      rebuild(true);
      if (on_change_) on_change_(instances_);
    });
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return watcher_.get_executor(); }

  /// Loads the service and starts following it. -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_start(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(get_executor(),
                                                                             start(), token);
  }

  /// Completes when changes up to `revision` are applied. -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_wait_revision(std::int64_t revision, CompletionToken&& token = CompletionToken()) {
    return cache_.async_wait_revision(revision, std::forward<CompletionToken>(token));
  }

  /// The instances by id.
  [[nodiscard]] const std::map<std::string, service_instance>& instances() const noexcept {
    return instances_;
  }
  /// Records skipped because they did not parse (with the last reason).
  [[nodiscard]] std::size_t malformed() const noexcept { return malformed_; }
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }
  [[nodiscard]] std::int64_t revision() const noexcept { return cache_.revision(); }
  void on_change(change_handler h) { on_change_ = std::move(h); }
  /// Adds a listener called with each instance that comes online, changes or
  /// goes offline (after `instances()` reflects it; not for the initial load).
  void on_event(event_handler h) { on_event_.push_back(std::move(h)); }
  void stop() { cache_.stop(); }

 private:
  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> start() {
    co_await detail::honour_any_cancellation();
    auto [ec, rev] = co_await cache_.async_start(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!ec) rebuild(false);
    co_return std::pair{ec, rev};
  }

  // Reloads from the cache; with `report`, the differences become events.
  void rebuild(bool report) {
    std::map<std::string, service_instance> before;
    before.swap(instances_);
    malformed_ = 0;
    for (const auto& [k, kv] : cache_.items()) apply(kv, false, 0, false);
    if (!report) return;
    for (const auto& [id, old] : before) {
      const auto it = instances_.find(id);
      if (it == instances_.end()) {
        emit(instance_event::kind::offline, old, 0);
      } else {
        report_update(&old, it->second, 0);
      }
    }
    for (const auto& [id, now] : instances_) {
      if (before.count(id) == 0) report_update(nullptr, now, 0);
    }
  }

  void apply(const key_value& kv, bool deleted, std::int64_t revision, bool report = true) {
    if (kv.key.size() <= prefix_.size()) return;
    const std::string id = kv.key.substr(prefix_.size());
    std::optional<service_instance> old;
    if (const auto it = instances_.find(id); it != instances_.end()) old = it->second;
    if (deleted) {
      instances_.erase(id);
      if (report && old) emit(instance_event::kind::offline, *old, revision);
      return;
    }
    service_instance inst;
    if (!detail::decode_instance(kv.value, inst, last_error_)) {
      ++malformed_;
      instances_.erase(id);
      if (report && old) emit(instance_event::kind::offline, *old, revision);
      return;
    }
    inst.id = id;
    inst.lease = kv.lease;
    inst.mod_revision = kv.mod_revision;
    instances_[id] = inst;
    if (report) report_update(old ? &*old : nullptr, inst, revision);
  }

  void report_update(const service_instance* old, const service_instance& now,
                     std::int64_t revision) {
    if (now.health == health_state::offline) {
      if (old == nullptr || old->health != health_state::offline)
        emit(instance_event::kind::offline, now, revision);
      return;
    }
    if (old == nullptr || old->health == health_state::offline || old->lease != now.lease) {
      emit(instance_event::kind::online, now, revision);
    } else if (!(old->endpoint == now.endpoint && old->weight == now.weight &&
                 old->health == now.health && old->effective_weight == now.effective_weight &&
                 old->metadata == now.metadata)) {
      emit(instance_event::kind::changed, now, revision);
    }
  }

  void emit(instance_event::kind k, const service_instance& inst, std::int64_t revision) {
    if (on_event_.empty()) return;
    const instance_event e{k, inst, revision};
    for (auto& h : on_event_) h(e);
  }

  watcher& watcher_;
  std::string prefix_;
  prefix_cache cache_;
  std::map<std::string, service_instance> instances_;
  std::size_t malformed_ = 0;
  std::string last_error_;
  change_handler on_change_;
  std::vector<event_handler> on_event_;
};

/// @brief Smooth weighted round robin (nginx's): over any window, each
///        instance is picked in proportion to its effective weight, spread
///        evenly rather than in bursts. Writes skip read-only and offline
///        instances; reads also take read-only ones (at their base weight).
///
/// Thread-safety: none (one owner). Cost: O(instances) per pick, no allocation.
class weighted_picker {
 public:
  /// Replaces the candidates, keeping the rotation state of ids still present.
  void update(const std::map<std::string, service_instance>& instances) {
    std::vector<entry> next;
    next.reserve(instances.size());
    for (const auto& [id, inst] : instances) {
      entry e{inst, 0};
      for (const auto& old : entries_) {
        if (old.inst.id == id) e.current = old.current;
      }
      next.push_back(std::move(e));
    }
    entries_ = std::move(next);
  }

  /// The next instance, or nullptr when none can take the call.
  const service_instance* pick(bool for_write = true) {
    std::int64_t total = 0;
    entry* best = nullptr;
    for (auto& e : entries_) {
      const std::int64_t w = scaled(e.inst, for_write);
      if (w <= 0) continue;
      e.current += w;
      total += w;
      if (best == nullptr || e.current > best->current) best = &e;
    }
    if (best == nullptr) return nullptr;
    best->current -= total;
    return &best->inst;
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct entry {
    service_instance inst;
    std::int64_t current;
  };
  static std::int64_t scaled(const service_instance& s, bool for_write) {
    double w = 0;
    switch (s.health) {
      case health_state::healthy:
      case health_state::degraded:
        w = s.effective_weight;
        break;
      case health_state::read_only:
        w = for_write ? 0.0 : s.weight;
        break;
      case health_state::offline:
        w = 0;
        break;
    }
    return static_cast<std::int64_t>(std::llround(w * 1000.0));
  }
  std::vector<entry> entries_;
};

}  // namespace seckill::etcd
