#pragma once
/// @file
/// @brief `redis::cluster_client`: Redis Cluster behind the same
///        `async_exec` as one connection. Requests go to the master of
///        their keys' slot over a pipelined connection per master, and the
///        client follows the cluster as it changes.
///
/// Routing: a request's keys (the first key of each command; see
/// `route_of`) must share one hash slot, which `seckill:{<sku>}:...` keys
/// do; `redis::errc::cross_slot` otherwise, and nothing is sent. Requests
/// that name no key go to any master that is connected.
///
/// The slot map comes from `CLUSTER SHARDS` (`CLUSTER SLOTS` on servers
/// before 7.0), read at `async_connect` from the first seed that answers,
/// and again, at most once per `refresh_interval`, after a MOVED, a
/// CLUSTERDOWN or a master's connection lost.
///
/// When a request is sent again, and when never:
/// - MOVED: the slot's new master is recorded, the map read again, and the
///   request sent to the new master.
/// - ASK (a slot being migrated): sent once to the target, preceded by
///   `ASKING`; the map is not changed.
/// - TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, and a slot whose master is
///   unknown or not connected (a master down, its replica not yet
///   promoted): sent again after a pause (capped exponential backoff with
///   jitter) while within `retry_window` of the first such answer; then
///   `redis::errc::cluster_down`.
/// - More than `max_redirects` redirections: `redis::errc::too_many_redirects`.
/// These are answers after which the request did not run. A request is sent
/// again only when every command of it that names a key got one of them;
/// otherwise the replies are returned as they came.
/// - A transport failure (`not_connected`, `timed_out`, ...) after the
///   request was handed to a master's connection is returned as it is: the
///   request may have run, and only the caller can tell whether a retry is
///   safe (the store's operations are idempotent per order id).
///
/// Messages (`last_error()`) never hold the configured password.

#include <seckill/backoff.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/cluster_slots.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/error.hpp>
#include <seckill/redis/resp.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief A host and port of a cluster node.
struct cluster_endpoint {
  std::string host;
  std::string port;
};

/// @brief How a `cluster_client` finds the cluster and how long it waits
///        for it. Plain data; `parse_cluster_url` (cluster_url.hpp) fills
///        it from a `redis+cluster://` URL.
struct cluster_config {
  /// Every node's connection: credentials, timeouts, setup (its host and
  /// port are the first seed when `seeds` is empty).
  connection_config node;
  /// Nodes asked for the slot map, in order; empty: `node.host:node.port`.
  std::vector<cluster_endpoint> seeds;
  /// MOVED and ASK redirections followed for one request.
  std::size_t max_redirects = 16;
  /// How long a request waits for a master of its slot (a failover, a
  /// CLUSTERDOWN, a TRYAGAIN) before failing with `cluster_down`. A failover
  /// takes about `cluster-node-timeout` plus an election.
  std::chrono::milliseconds retry_window{5000};
  std::chrono::milliseconds retry_initial_delay{10};
  std::chrono::milliseconds retry_max_delay{250};
  /// The shortest pause between two reads of the slot map.
  std::chrono::milliseconds refresh_interval{100};
};

/// @brief Checks `cfg` as `validate(connection_config)` does, and its own
///        fields: `max_redirects` >= 1, the durations in
///        [0, max_config_duration] (`retry_initial_delay` >= 1 ms).
///        `errc::invalid_argument` with `message` naming the field.
inline std::error_code validate(const cluster_config& cfg, std::string* message = nullptr) {
  if (auto ec = validate(cfg.node, message)) return ec;
  const auto bad = [&](std::string what) {
    if (message != nullptr) *message = "cluster_config: " + std::move(what);
    return make_error_code(seckill::errc::invalid_argument);
  };
  if (cfg.max_redirects == 0) return bad("max_redirects 0; want >= 1");
  const struct {
    const char* name;
    std::chrono::milliseconds value;
    std::int64_t min;
  } fields[] = {{"retry_window", cfg.retry_window, 0},
                {"retry_initial_delay", cfg.retry_initial_delay, 1},
                {"retry_max_delay", cfg.retry_max_delay, 0},
                {"refresh_interval", cfg.refresh_interval, 0}};
  for (const auto& f : fields)
    if (f.value.count() < f.min || f.value > max_config_duration)
      return bad(std::string(f.name) + " " + std::to_string(f.value.count()) +
                 " ms out of range [" + std::to_string(f.min) + ", " +
                 std::to_string(max_config_duration.count()) + "] ms");
  for (const auto& s : cfg.seeds)
    if (s.host.empty() || s.port.empty()) return bad("a seed without a host or a port");
  return {};
}

namespace detail {

/// The state a `cluster_client` shares with its operations: the nodes, the
/// slot table, the map refresh. Nodes are made on the strand and live as
/// long as this; the slot table is atomics, read from any thread.
class cluster_state : public std::enable_shared_from_this<cluster_state> {
 public:
  struct node {
    node(const boost::asio::any_io_executor& ex, connection_config cfg)
        : conn(ex, std::move(cfg)) {}
    connection conn;
    bool connecting = false;  // (strand) a connect of ours is under way
  };

  cluster_state(const boost::asio::any_io_executor& ex, cluster_config cfg)
      : ex_(ex), strand_(ex), cfg_(std::move(cfg)), refresh_timer_(ex) {
    if (cfg_.seeds.empty()) cfg_.seeds.push_back({cfg_.node.host, cfg_.node.port});
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);
  }

  [[nodiscard]] const boost::asio::any_io_executor& executor() const noexcept { return ex_; }
  [[nodiscard]] const cluster_config& config() const noexcept { return cfg_; }
  [[nodiscard]] const boost::asio::strand<boost::asio::any_io_executor>& strand() const noexcept {
    return strand_;
  }

  /// The master of `slot` as last known, or null.
  [[nodiscard]] node* master_of(std::uint16_t slot) const noexcept {
    return slots_[slot].load(std::memory_order_acquire);
  }

  /// A connected master, for requests that name no key (a seed connected
  /// only to read the map may be a replica: masters from the slot table first).
  [[nodiscard]] node* any_master() const {
    for (std::size_t slot = 0; slot < cluster_slot_count; slot += 512)
      if (node* n = slots_[slot].load(std::memory_order_acquire);
          n != nullptr && n->conn.state() == connection_state::ready)
        return n;
    std::lock_guard lock(nodes_mutex_);
    for (const auto& n : nodes_)
      if (n->conn.state() == connection_state::ready) return n.get();
    return nullptr;
  }

  /// The node at host:port, or null when none is known.
  [[nodiscard]] node* find(const std::string& host, const std::string& port) const {
    std::lock_guard lock(nodes_mutex_);
    for (const auto& [h, p, n] : index_)
      if (h == host && p == port) return n;
    return nullptr;
  }

  /// A MOVED answer: the slot's master is `host:port` now. Recorded at once
  /// when the node is known and connected (true); otherwise it is connected
  /// first (false). The map is read again either way.
  bool moved(std::uint16_t slot, const std::string& host, const std::string& port) {
    moved_.fetch_add(1, std::memory_order_relaxed);
    bool recorded = false;
    if (node* n = find(host, port); n != nullptr && n->conn.state() == connection_state::ready) {
      slots_[slot].store(n, std::memory_order_release);
      recorded = true;
    } else {
      learn(host, port);
    }
    request_refresh();
    return recorded;
  }

  /// Makes (and connects) the node at host:port if it is new.
  void learn(std::string host, std::string port) {
    boost::asio::dispatch(
        strand_, [self = shared_from_this(), host = std::move(host), port = std::move(port)] {
          if (self->closed_) return;
          self->connect_in_background(self->node_for(host, port));
        });
  }

  /// Reads the slot map again soon (at most once per `refresh_interval`).
  void request_refresh() {
    boost::asio::dispatch(strand_, [self = shared_from_this()] {
      if (self->closed_) return;
      if (self->refreshing_) {
        self->again_ = true;
        return;
      }
      self->refreshing_ = true;
      boost::asio::co_spawn(self->strand_, refresh_loop(self), boost::asio::detached);
    });
  }

  /// (on the strand) Connects to the seeds until one tells the map, then to
  /// every master; the first failure, when it cannot.
  static boost::asio::awaitable<std::error_code> connect_all(std::shared_ptr<cluster_state> self) {
    co_return co_await self->connect_all();
  }

  boost::asio::awaitable<std::error_code> connect_all() {
    std::error_code ec = co_await read_map(true);
    if (ec) co_return ec;
    std::error_code first;
    boost::asio::steady_timer poll(strand_);
    for (node* n : masters()) {
      // a connect started by a refresh meanwhile: it ends within connect_timeout
      const auto until = std::chrono::steady_clock::now() + cfg_.node.connect_timeout;
      while (n->connecting && !closed_ && std::chrono::steady_clock::now() < until) {
        poll.expires_after(std::chrono::milliseconds(5));
        auto [pec] = co_await poll.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (pec) co_return make_error_code(seckill::errc::operation_aborted);
      }
      if (n->conn.state() == connection_state::ready) continue;
      std::error_code cec = make_error_code(seckill::errc::not_connected);
      if (n->conn.state() == connection_state::idle) cec = co_await connect_node(n);
      if (cec && !first) {
        first = cec;
        note("cluster_client: master " + n->conn.config().host + ":" + n->conn.config().port +
             ": " + n->conn.last_error());
      }
    }
    co_return first;
  }

  /// True once `close()` was called (requests are no longer sent).
  [[nodiscard]] bool closing() const noexcept { return closing_.load(std::memory_order_acquire); }

  void close() {
    closing_.store(true, std::memory_order_release);
    boost::asio::dispatch(strand_, [self = shared_from_this()] {
      self->closed_ = true;
      self->refresh_timer_.cancel();
      std::lock_guard lock(self->nodes_mutex_);
      for (auto& n : self->nodes_) n->conn.close();
    });
  }

  void note(std::string message) {
    std::lock_guard lock(note_mutex_);
    last_error_ = std::move(message);
  }
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(note_mutex_);
    return last_error_;
  }

  [[nodiscard]] std::vector<cluster_endpoint> masters_known() const {
    std::vector<cluster_endpoint> out;
    std::lock_guard lock(nodes_mutex_);
    for (const auto& [h, p, n] : index_)
      for (const auto& s : slots_)
        if (s.load(std::memory_order_relaxed) == n) {
          out.push_back({h, p});
          break;
        }
    return out;
  }

  std::atomic<std::uint64_t> moved_{0};
  std::atomic<std::uint64_t> asked_{0};
  std::atomic<std::uint64_t> retried_{0};
  std::atomic<std::uint64_t> refreshes_{0};

 private:
  struct index_entry {
    std::string host;
    std::string port;
    node* n;
  };

  // (strand) The node at host:port, made when new (not connected).
  node* node_for(const std::string& host, const std::string& port) {
    if (node* n = find(host, port)) return n;
    connection_config c = cfg_.node;
    c.host = host;
    c.port = port;
    auto made = std::make_unique<node>(ex_, std::move(c));
    node* n = made.get();
    // A master's connection lost: its replica may be taking over.
    std::weak_ptr<cluster_state> weak = weak_from_this();
    n->conn.on_state([weak](connection_state s) {
      if (s != connection_state::reconnecting) return;
      if (auto self = weak.lock()) self->request_refresh();
    });
    std::lock_guard lock(nodes_mutex_);
    nodes_.push_back(std::move(made));
    index_.push_back({host, port, n});
    return n;
  }

  // (strand) Connects `n` (idle, not connecting), awaited.
  static boost::asio::awaitable<std::error_code> connect_node(node* n) {
    n->connecting = true;
    auto [ec] = co_await n->conn.async_connect(boost::asio::as_tuple(boost::asio::use_awaitable));
    n->connecting = false;
    co_return ec;
  }

  // (strand) Starts connecting `n` unless it is connected or connecting.
  void connect_in_background(node* n) {
    if (n->connecting || closed_) return;
    const auto s = n->conn.state();
    if (s != connection_state::idle) return;  // ready, or reconnecting by itself
    n->connecting = true;
    n->conn.async_connect(
        boost::asio::bind_executor(strand_, [n](std::error_code) { n->connecting = false; }));
  }

  // (strand) The masters in the slot table, once each.
  std::vector<node*> masters() const {
    std::vector<node*> out;
    for (const auto& s : slots_) {
      node* n = s.load(std::memory_order_relaxed);
      if (n != nullptr && (out.empty() || out.back() != n) &&
          std::find(out.begin(), out.end(), n) == out.end())
        out.push_back(n);
    }
    return out;
  }

  static boost::asio::awaitable<void> refresh_loop(std::shared_ptr<cluster_state> self) {
    co_await self->refresh_loop();
  }

  boost::asio::awaitable<void> refresh_loop() {
    for (;;) {
      again_ = false;
      const auto since = std::chrono::steady_clock::now() - last_refresh_;
      if (since < cfg_.refresh_interval) {
        refresh_timer_.expires_after(cfg_.refresh_interval - since);
        auto [ec] =
            co_await refresh_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
      }
      if (closed_) break;
      (void)co_await read_map(false);
      last_refresh_ = std::chrono::steady_clock::now();
      if (!again_ || closed_) break;
    }
    refreshing_ = false;
  }

  // (strand) Asks the known masters, then the seeds, for the map; applies
  // the first answer that covers any slot. `first`: connect to the seeds
  // (async_connect), and report why none answered.
  boost::asio::awaitable<std::error_code> read_map(bool first) {
    refreshes_.fetch_add(1, std::memory_order_relaxed);
    std::vector<node*> ask = first ? std::vector<node*>{} : masters();
    for (const auto& s : cfg_.seeds) {
      node* n = node_for(s.host, s.port);
      if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
    }
    std::error_code last = make_error_code(seckill::errc::connection_refused);
    std::string why;
    for (node* n : ask) {
      if (closed_) co_return make_error_code(seckill::errc::operation_aborted);
      if (n->conn.state() != connection_state::ready) {
        if (n->connecting || n->conn.state() != connection_state::idle) continue;
        const std::error_code cec = co_await connect_node(n);
        if (cec) {
          last = cec;
          why = n->conn.config().host + ":" + n->conn.config().port + ": " + n->conn.last_error();
          continue;
        }
      }
      auto [ec, map, text] = co_await ask_map(n);
      if (ec) {
        last = ec;
        why = n->conn.config().host + ":" + n->conn.config().port + ": " + text;
        continue;
      }
      apply(map);
      if (!first)
        for (node* m : masters()) connect_in_background(m);
      co_return std::error_code{};
    }
    note("cluster_client: no node told the slot map; last: " + why);
    co_return last;
  }

  // (strand) CLUSTER SHARDS, or CLUSTER SLOTS when the server does not know it.
  boost::asio::awaitable<std::tuple<std::error_code, cluster_map, std::string>> ask_map(node* n) {
    constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    const std::string& host = n->conn.config().host;
    for (const bool shards : {true, false}) {
      request req;
      req.push("CLUSTER", shards ? "SHARDS" : "SLOTS");
      auto [ec, replies] = co_await n->conn.async_exec(std::move(req), tuple);
      if (ec) co_return std::tuple{ec, cluster_map{}, n->conn.last_error()};
      const value& r = replies.front();
      if (r.is_error()) {
        if (shards && r.error_code() == "ERR") continue;  // an unknown subcommand before 7.0
        co_return std::tuple{make_error_code(seckill::errc::server_error), cluster_map{}, r.text};
      }
      std::string why;
      std::error_code pec;
      cluster_map map = shards ? parse_cluster_shards(r, host, pec, &why)
                               : parse_cluster_slots(r, host, pec, &why);
      if (!pec && map.shards.empty()) {
        pec = make_error_code(redis::errc::cluster_down);
        why = "the node serves no slot (a cluster not set up yet)";
      }
      co_return std::tuple{pec, std::move(map), why};
    }
    co_return std::tuple{make_error_code(seckill::errc::server_error), cluster_map{},
                         std::string("no CLUSTER SHARDS nor CLUSTER SLOTS")};
  }

  // (strand) The slot table becomes `map`.
  void apply(const cluster_map& map) {
    std::vector<node*> table(cluster_slot_count, nullptr);
    for (const auto& shard : map.shards) {
      node* n = node_for(shard.host, shard.port);
      for (const auto& [a, b] : shard.ranges)
        for (std::size_t i = a; i <= b; ++i) table[i] = n;
    }
    for (std::size_t i = 0; i < cluster_slot_count; ++i)
      slots_[i].store(table[i], std::memory_order_release);
  }

  boost::asio::any_io_executor ex_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  cluster_config cfg_;
  std::array<std::atomic<node*>, cluster_slot_count> slots_;
  mutable std::mutex nodes_mutex_;  // nodes_ and index_: changed on the strand, read anywhere
  std::vector<std::unique_ptr<node>> nodes_;
  std::vector<index_entry> index_;
  boost::asio::steady_timer refresh_timer_;
  std::chrono::steady_clock::time_point last_refresh_{};
  bool refreshing_ = false;  // (strand)
  bool again_ = false;       // (strand)
  bool closed_ = false;      // (strand)
  std::atomic<bool> closing_{false};
  mutable std::mutex note_mutex_;
  std::string last_error_;
};

/// The operation behind `cluster_client::async_exec` (see the file comment).
struct cluster_exec_op {
  std::shared_ptr<cluster_state> state;
  request req;
  std::chrono::milliseconds timeout;
  request_route route{};
  std::size_t redirects = 0;
  std::size_t attempts = 0;
  cluster_state::node* sent_to = nullptr;
  cluster_state::node* ask_to = nullptr;  // the ASK target of the next send
  bool asking = false;                    // the request in flight starts with ASKING
  std::chrono::steady_clock::time_point retry_deadline{};
  std::unique_ptr<boost::asio::steady_timer> timer;

  template <class Self>
  void operator()(Self& self) {
    std::error_code ec;
    if (req.empty())
      ec = make_error_code(seckill::errc::invalid_argument);
    else
      route = route_of(req, ec);
    if (ec) {
      if (ec == redis::errc::cross_slot)
        state->note("cluster_client: the request's keys are in different slots");
      const auto ex = state->executor();  // (before self, which holds state, moves)
      boost::asio::post(ex, boost::asio::append(std::move(self), ec, std::vector<value>{}));
      return;
    }
    send(self);
  }

  // A master's replies (or the transport's failure).
  template <class Self>
  void operator()(Self& self, std::error_code ec, std::vector<value> replies) {
    if (asking && !ec && !replies.empty()) replies.erase(replies.begin());  // ASKING's OK
    asking = false;
    if (ec) {
      // May have run: never sent again. The master may have gone.
      if (ec == seckill::condition::unavailable || ec == seckill::errc::timed_out) {
        state->note("cluster_client: master " + sent_to->conn.config().host + ":" +
                    sent_to->conn.config().port + ": " + ec.message() + " (" +
                    sent_to->conn.last_error() + ")");
        state->request_refresh();
      }
      self.complete(ec, std::move(replies));
      return;
    }
    // Sent again only when every command that names a key was answered with
    // a redirection or a "later" (none of them ran); keyless commands (SCRIPT
    // LOAD, WAIT) are harmless to repeat and their answers are not counted.
    std::size_t stopped = 0;
    std::optional<redirection> redirect;
    bool later = false;
    bool down = false;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const value& r = replies[i];
      if (!r.is_error() || !route.keyed(i)) continue;
      if (auto red = parse_redirection(r)) {
        redirect = std::move(red);
        ++stopped;
      } else if (retry_later(r)) {
        later = true;
        down = down || r.error_code() == "CLUSTERDOWN";
        ++stopped;
      }
    }
    if (stopped == 0 || route.keyed_beyond_mask || stopped < route.keyed_commands) {
      self.complete(ec, std::move(replies));
      return;
    }
    if (later) {
      if (down) state->request_refresh();
      retry(self);
      return;
    }
    if (++redirects > state->config().max_redirects) {
      state->note("cluster_client: more than " + std::to_string(state->config().max_redirects) +
                  " redirections for slot " + std::to_string(redirect->slot));
      self.complete(make_error_code(redis::errc::too_many_redirects), std::vector<value>{});
      return;
    }
    if (redirect->host.empty()) redirect->host = sent_to->conn.config().host;
    if (redirect->type == redirection::kind::moved) {
      if (state->moved(redirect->slot, redirect->host, redirect->port))
        send(self);
      else
        retry(self);  // once the new master is connected
      return;
    }
    state->asked_.fetch_add(1, std::memory_order_relaxed);
    ask_to = state->find(redirect->host, redirect->port);
    if (ask_to == nullptr) {  // connect to it, then ask the slot's master again
      state->learn(redirect->host, redirect->port);
      retry(self);
      return;
    }
    send(self);
  }

  // The pause before sending again is over.
  template <class Self>
  void operator()(Self& self, boost::system::error_code ec) {
    if (ec) {
      self.complete(make_error_code(seckill::errc::operation_aborted), std::vector<value>{});
      return;
    }
    send(self);
  }

 private:
  template <class Self>
  void send(Self& self) {
    if (state->closing()) {               // (a request after close() is never sent)
      const auto ex = state->executor();  // (before self, which holds state, moves)
      boost::asio::post(ex, boost::asio::append(std::move(self),
                                                make_error_code(seckill::errc::operation_aborted),
                                                std::vector<value>{}));
      return;
    }
    cluster_state::node* n = ask_to;
    const bool ask = n != nullptr;
    ask_to = nullptr;
    if (n == nullptr) n = route.slot ? state->master_of(*route.slot) : state->any_master();
    if (n == nullptr || n->conn.state() != connection_state::ready) {
      state->request_refresh();
      retry(self);
      return;
    }
    sent_to = n;
    request copy;
    if (ask) {
      copy.push("ASKING");
      asking = true;
    }
    copy.append(req);
    n->conn.async_exec(std::move(copy), timeout, std::move(self));
  }

  // Sends again after a pause, within the retry window; cluster_down after it.
  template <class Self>
  void retry(Self& self) {
    const auto now = std::chrono::steady_clock::now();
    const cluster_config& cfg = state->config();
    if (retry_deadline == std::chrono::steady_clock::time_point{})
      retry_deadline = now + cfg.retry_window;
    // jitter from the attempt count and the operation's address: no shared generator
    const auto mix = (reinterpret_cast<std::uintptr_t>(this) >> 4) * 0x9E3779B97F4A7C15ull +
                     attempts * 0xBF58476D1CE4E5B9ull;
    const double jitter = static_cast<double>((mix >> 11) & 0xffff) / 65535.0;
    const auto pause = backoff_delay(static_cast<unsigned>(attempts++), cfg.retry_initial_delay,
                                     cfg.retry_max_delay, jitter);
    if (now + pause > retry_deadline) {
      state->note("cluster_client: no master served slot " +
                  (route.slot ? std::to_string(*route.slot) : std::string("(any)")) + " within " +
                  std::to_string(cfg.retry_window.count()) + " ms");
      self.complete(make_error_code(redis::errc::cluster_down), std::vector<value>{});
      return;
    }
    state->retried_.fetch_add(1, std::memory_order_relaxed);
    if (!timer) timer = std::make_unique<boost::asio::steady_timer>(state->executor());
    timer->expires_after(pause);
    timer->async_wait(std::move(self));
  }
};

}  // namespace detail

/// @brief Redis Cluster as one connection: `async_exec` routed by slot,
///        redirections and failovers followed (see the file comment).
///
/// Thread-safety: every member function may be called from any thread.
/// Cost per request: the route read from the request's bytes (no
/// allocation), two atomic loads for the slot's master, the request copied
/// once (kept for a redirection; no allocation below
/// `request::inline_bytes`), then what `connection::async_exec` costs on
/// that master's connection. The slot table is 128 KiB (a pointer per slot).
class cluster_client {
 public:
  using executor_type = boost::asio::any_io_executor;
  using config_type = cluster_config;

  /// Throws `seckill::error` (invalid_argument) when `validate(cfg)` refuses it.
  cluster_client(const executor_type& ex, cluster_config cfg)
      : state_(std::make_shared<detail::cluster_state>(ex, checked(std::move(cfg)))) {}
  cluster_client(const cluster_client&) = delete;
  cluster_client& operator=(const cluster_client&) = delete;
  ~cluster_client() { close(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return state_->executor(); }
  [[nodiscard]] const cluster_config& cluster() const noexcept { return state_->config(); }
  /// Every node's connection settings.
  [[nodiscard]] const connection_config& config() const noexcept { return state_->config().node; }
  /// The last failure, in words.
  [[nodiscard]] std::string last_error() const { return state_->last_error(); }
  /// The masters that serve slots now, as the client knows them.
  [[nodiscard]] std::vector<cluster_endpoint> masters() const { return state_->masters_known(); }
  /// The master the client sends `key`'s slot to now (empty when none).
  [[nodiscard]] std::optional<cluster_endpoint> master_of(std::string_view key) const {
    auto* n = state_->master_of(key_slot(key));
    if (n == nullptr) return std::nullopt;
    return cluster_endpoint{n->conn.config().host, n->conn.config().port};
  }
  [[nodiscard]] std::uint64_t moved_count() const noexcept { return state_->moved_.load(); }
  [[nodiscard]] std::uint64_t ask_count() const noexcept { return state_->asked_.load(); }
  /// Requests paused and sent again (TRYAGAIN, CLUSTERDOWN, no master yet).
  [[nodiscard]] std::uint64_t retry_count() const noexcept { return state_->retried_.load(); }
  /// Reads of the slot map so far.
  [[nodiscard]] std::uint64_t refresh_count() const noexcept { return state_->refreshes_.load(); }

  /// Reads the slot map from the first seed that answers and connects to
  /// every master; `void(std::error_code)`: the first failure
  /// (`connection_refused`, `auth_failed`, `cluster_down` for a node that
  /// serves no slot, ...), `last_error()` saying which node and why.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        state_->strand(), detail::cluster_state::connect_all(state_), token);
  }

  /// `connection::async_exec` on the master of the request's slot, with the
  /// redirections and retries of the file comment:
  /// `void(std::error_code, std::vector<value>)`.
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request req, CompletionToken&& token = CompletionToken()) {
    return async_exec(std::move(req), config().request_timeout,
                      std::forward<CompletionToken>(token));
  }

  /// As above with each attempt's own timeout (0: none).
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request req, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_compose<CompletionToken, void(std::error_code, std::vector<value>)>(
        detail::cluster_exec_op{
            state_, std::move(req), timeout, {}, 0, 0, nullptr, nullptr, false, {}, nullptr},
        token, state_->executor());
  }

  /// Closes every node's connection; pending requests complete with
  /// `errc::operation_aborted`. Final.
  void close() { state_->close(); }

 private:
  static cluster_config checked(cluster_config cfg) {
    std::string message;
    if (validate(cfg, &message)) throw error(seckill::errc::invalid_argument, message);
    return cfg;
  }

  std::shared_ptr<detail::cluster_state> state_;
};

}  // namespace seckill::redis
