#pragma once
/// @file
/// @brief Unique Snowflake (datacenter, worker) pairs through etcd: each live
///        node claims a free pair under its session's lease, exposes it only
///        while the lease is known alive, and hands it over without a
///        duplicate id.
///
/// Keys: `<prefix>/workers/<dc>/<worker>` (value: the node's name, under the
/// session's lease) and `<prefix>/released/<dc>/<worker>` (no lease: the last
/// id timestamp, in ms since the Unix epoch, of the owner that released the
/// pair last).
///
/// Hand-over. etcd expires a lease one TTL after the last keepalive it
/// received, on its own clock; no other node can claim the pair before. The
/// owner measures on its local steady clock from when it *sent* the last
/// keepalive that succeeded (or the grant), which is earlier than etcd saw it,
/// and stops issuing ids `TTL - safety_margin` after it. So when the owner's
/// renewals stop (a partition, a frozen process, a dead etcd), it stops issuing
/// at least `safety_margin` of real time before anybody else can start.
/// - After a clean `async_release`, the pair's last id timestamp is stored
///   and the next owner's `leased_snowflake` resumes after it
///   (`snowflake::resume_after`): if that node's clock is behind, its
///   rollback policy decides (the default `wait_up_to<15>` waits out 15 ms
///   and fails with `errc::clock_rollback` beyond, until the clock passes).
/// - After a crash or a lost lease nothing is stored: ids stay unique as long
///   as the wall clocks of the two nodes differ by less than `safety_margin`
///   (plus the drift a `logical_clock` policy may issue ahead). NTP keeps
///   clocks within milliseconds; the default margin is one second.
/// Someone deleting the key by hand voids all of this.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/id/snowflake.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief A Snowflake node id: the datacenter and the worker within it.
struct worker_pair {
  unsigned datacenter = 0;
  unsigned worker = 0;
  friend bool operator==(const worker_pair&, const worker_pair&) = default;
  friend auto operator<=>(const worker_pair&, const worker_pair&) = default;
};

/// @brief The node ids a Snowflake layout has room for.
struct worker_space {
  unsigned max_datacenter = twitter_layout::max_datacenter;
  unsigned max_worker = twitter_layout::max_worker;
  template <class Layout>
  static constexpr worker_space of() noexcept {
    return {Layout::max_datacenter, Layout::max_worker};
  }
  friend bool operator==(const worker_space&, const worker_space&) = default;
};

/// @brief Settings of a `worker_claim`.
struct worker_claim_options {
  std::string prefix = "seckill";  ///< keys go under `<prefix>/workers/` and `<prefix>/released/`
  std::string node_name{};         ///< this node (required, the claim's value), e.g. the host name
  worker_space layout{};           ///< the generator's layout: worker_space::of<Layout>()
  unsigned datacenter = 0;         ///< the datacenter to claim a worker in
  bool any_datacenter = false;     ///< claim in any datacenter of the layout instead
  unsigned first_worker = 0;       ///< the workers to choose from: [first, last]
  std::optional<unsigned> last_worker{};  ///< none: the layout's last
  /// How long before etcd may expire the lease this node stops issuing ids;
  /// covers the wall-clock skew between nodes. TTL - margin must outlast one
  /// keepalive interval (TTL / 3).
  std::chrono::milliseconds safety_margin{1000};
};

/// @brief The window in which a claimed pair may issue ids: until
///        `last renewal sent + TTL - margin` on the steady clock, closed for
///        good by `revoke()` until the next `open()`.
///
/// Thread-safety: every member from any thread (one atomic). Cost: an atomic
/// load per `valid`.
class lease_window {
 public:
  using clock = std::chrono::steady_clock;

  /// @throws seckill::error (`errc::invalid_argument`) when the margin is not
  ///         positive or leaves no more than a third of the TTL (one default
  ///         keepalive interval): the window would lapse between keepalives.
  lease_window(std::chrono::milliseconds ttl, std::chrono::milliseconds margin)
      : span_(ttl - margin) {
    if (margin <= std::chrono::milliseconds::zero()) {
      throw error(
          seckill::errc::invalid_argument,
          "worker claim safety margin " + std::to_string(margin.count()) + " ms is not positive");
    }
    if (span_ <= ttl / 3) {
      throw error(seckill::errc::invalid_argument,
                  "worker claim safety margin " + std::to_string(margin.count()) + " ms leaves " +
                      std::to_string(span_.count()) + " ms of the " + std::to_string(ttl.count()) +
                      " ms lease TTL, not more than one keepalive interval (" +
                      std::to_string((ttl / 3).count()) +
                      " ms): raise the TTL or lower the margin");
    }
  }

  /// TTL minus the margin: how long a renewal keeps the window open.
  [[nodiscard]] std::chrono::milliseconds span() const noexcept { return span_; }

  /// Opens the window for a claim made under a lease last renewed at `sent`.
  void open(clock::time_point sent) noexcept {
    deadline_.store(ticks(sent + span_), std::memory_order_release);
  }
  /// A keepalive sent at `sent` succeeded: moves the end forward (never back;
  /// nothing after `revoke`).
  void renewed(clock::time_point sent) noexcept {
    const auto want = ticks(sent + span_);
    auto cur = deadline_.load(std::memory_order_acquire);
    while (cur != closed && cur < want &&
           !deadline_.compare_exchange_weak(cur, want, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
    }
  }
  /// Closes the window (the lease is lost or the pair released).
  void revoke() noexcept { deadline_.store(closed, std::memory_order_release); }

  /// Whether ids may be issued at `now`.
  [[nodiscard]] bool valid(clock::time_point now = clock::now()) const noexcept {
    return ticks(now) < deadline_.load(std::memory_order_acquire);
  }
  /// The end of the window (`time_point::min()` when closed).
  [[nodiscard]] clock::time_point valid_until() const noexcept {
    const auto d = deadline_.load(std::memory_order_acquire);
    if (d == closed) return clock::time_point::min();
    return clock::time_point{clock::duration{d}};
  }

 private:
  static constexpr clock::rep closed = std::numeric_limits<clock::rep>::min();
  static clock::rep ticks(clock::time_point t) noexcept { return t.time_since_epoch().count(); }

  std::chrono::milliseconds span_;
  std::atomic<clock::rep> deadline_{closed};
};

namespace detail {

/// FNV-1a: where a node starts looking, so that nodes spread over the pairs.
constexpr std::uint64_t node_hash(std::string_view s) noexcept {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

/// "12" -> 12; false for anything else.
inline bool parse_unsigned(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace detail

/// @brief Claims a (datacenter, worker) pair no other live node holds, for
///        one Snowflake generator, and says while it may be used.
///
/// `async_claim` lists the taken pairs, then tries the free ones with a
/// create-only transaction (the key's create revision is 0), starting at a
/// hash of the node name; it completes with the pair it won, or
/// `errc::no_free_worker` (`last_error()` says how many pairs there are), or
/// `errc::worker_lost` when the lease is not known alive (its last renewal is
/// older than TTL - margin: claim again after a keepalive; a pair already won
/// under this lease is found again).
/// `pair()` and `valid()` hold only while the lease is known alive, and turn
/// false `TTL - safety_margin` after the last successful renewal (see the
/// file comment for the hand-over); a lost lease voids the claim: claim again
/// once the session has a new lease (maybe another pair). `async_release`
/// stores the last id timestamp and deletes the key (the session's lease
/// stays); a killed node's pair is free once etcd expires its lease.
/// Destroying the claim without a release stops its ids and leaves the key
/// until the session's lease goes (`session::async_close` revokes it).
///
/// Thread-safety: the async operations on the session's executor, one at a
/// time; `valid`, `valid_until`, `pair` and `window` from any thread. The
/// session must outlive the claim. Cost: one range and a transaction per free
/// pair tried to claim; nothing per keepalive but an atomic store.
class worker_claim {
 public:
  using executor_type = session::executor_type;

  /// @throws seckill::error (`errc::invalid_argument`) for an empty node name,
  ///         a datacenter or worker range outside the layout, or a margin the
  ///         session's TTL cannot hold (see `lease_window`); with the values.
  worker_claim(session& s, worker_claim_options o)
      : session_(s), st_(std::make_shared<state>(s, std::move(o))) {
    std::weak_ptr<state> weak = st_;
    s.on_keepalive([weak, &s](bool ok, unsigned) {
      auto p = weak.lock();
      if (p && ok && p->lease != 0 && s.lease() == p->lease) p->window->renewed(s.last_renewal());
    });
    s.on_lost([weak](std::error_code, std::int64_t old) {
      auto p = weak.lock();
      if (p && old == p->lease) p->window->revoke();
    });
  }
  worker_claim(const worker_claim&) = delete;
  worker_claim& operator=(const worker_claim&) = delete;
  ~worker_claim() { st_->window->revoke(); }

  [[nodiscard]] executor_type get_executor() const noexcept { return session_.get_executor(); }
  [[nodiscard]] const worker_claim_options& options() const noexcept { return st_->opts; }
  /// How many pairs this claim chooses from.
  [[nodiscard]] std::size_t pair_count() const noexcept { return st_->candidates.size(); }
  /// Whether the claimed pair may issue ids now.
  [[nodiscard]] bool valid() const noexcept { return st_->window->valid(); }
  [[nodiscard]] lease_window::clock::time_point valid_until() const noexcept {
    return st_->window->valid_until();
  }
  /// The pair, only while `valid()`.
  [[nodiscard]] std::optional<worker_pair> pair() const noexcept {
    const auto packed = st_->packed.load(std::memory_order_acquire);
    if (!valid()) return std::nullopt;
    return worker_pair{static_cast<unsigned>(packed >> 32),
                       static_cast<unsigned>(packed & 0xffffffffu)};
  }
  /// The window generators check (shared: it outlives the claim).
  [[nodiscard]] std::shared_ptr<const lease_window> window() const noexcept { return st_->window; }
  /// The last id timestamp (ms since the Unix epoch) the pair's previous owner
  /// stored on release; 0 when none did. Read it on the executor.
  [[nodiscard]] std::int64_t released_at_ms() const noexcept { return st_->released_ms; }
  /// The claimed key (empty before the first claim). Read it on the executor.
  [[nodiscard]] const std::string& key() const noexcept { return st_->key; }
  /// Why the last operation failed, with the values seen.
  [[nodiscard]] const std::string& last_error() const noexcept { return st_->message; }

  /// Claims a free pair (or completes with the current one while valid). -> (ec, pair)
  template <boost::asio::completion_token_for<void(std::error_code, worker_pair)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_claim(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, worker_pair)>(
        get_executor(), state::claim(st_), token);
  }

  /// Stops the pair's ids at once, then stores `last_used_ms` (the last id
  /// timestamp, ms since the Unix epoch; `leased_snowflake::last_used_ms()`)
  /// and deletes the key, if it is still this claim's; `errc::worker_lost`
  /// when it no longer was. -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_release(std::int64_t last_used_ms, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), state::release(st_, last_used_ms), token);
  }

 private:
  struct state {
    state(session& s, worker_claim_options o)
        : owner(s),
          opts(std::move(o)),
          window(std::make_shared<lease_window>(
              std::chrono::duration_cast<std::chrono::milliseconds>(s.ttl()), opts.safety_margin)) {
      while (!opts.prefix.empty() && opts.prefix.back() == '/') opts.prefix.pop_back();
      if (opts.node_name.empty()) {
        throw error(seckill::errc::invalid_argument, "worker claim node name is empty");
      }
      const auto& l = opts.layout;
      if (!opts.any_datacenter && opts.datacenter > l.max_datacenter) {
        throw error(seckill::errc::invalid_argument,
                    "worker claim datacenter " + std::to_string(opts.datacenter) +
                        " out of the layout's range [0, " + std::to_string(l.max_datacenter) + "]");
      }
      const unsigned last = opts.last_worker.value_or(l.max_worker);
      if (last > l.max_worker || opts.first_worker > last) {
        throw error(seckill::errc::invalid_argument,
                    "worker claim workers [" + std::to_string(opts.first_worker) + ", " +
                        std::to_string(last) + "] not a range within the layout's [0, " +
                        std::to_string(l.max_worker) + "]");
      }
      const unsigned dc_first = opts.any_datacenter ? 0 : opts.datacenter;
      const unsigned dc_last = opts.any_datacenter ? l.max_datacenter : opts.datacenter;
      for (unsigned dc = dc_first; dc <= dc_last; ++dc) {
        for (unsigned w = opts.first_worker; w <= last; ++w) candidates.push_back({dc, w});
      }
      scope = opts.prefix + "/workers/" +
              (opts.any_datacenter ? std::string() : std::to_string(opts.datacenter) + "/");
      describe_scope = (opts.any_datacenter ? "datacenters 0-" + std::to_string(l.max_datacenter)
                                            : "datacenter " + std::to_string(opts.datacenter)) +
                       ", workers " + std::to_string(opts.first_worker) + "-" +
                       std::to_string(last);
    }

    session& owner;
    worker_claim_options opts;
    std::shared_ptr<lease_window> window;
    std::vector<worker_pair> candidates;
    std::string scope;           // the range of keys listed before trying
    std::string describe_scope;  // for messages
    std::atomic<std::uint64_t> packed{0};
    std::int64_t lease = 0;
    std::int64_t create_revision = 0;
    std::int64_t released_ms = 0;
    std::string key;
    std::string message;

    std::string worker_key(worker_pair p) const {
      return opts.prefix + "/workers/" + std::to_string(p.datacenter) + "/" +
             std::to_string(p.worker);
    }
    std::string released_key(worker_pair p) const {
      return opts.prefix + "/released/" + std::to_string(p.datacenter) + "/" +
             std::to_string(p.worker);
    }

    // "<prefix>/workers/<dc>/<worker>" -> the pair
    bool parse_key(const std::string& k, worker_pair& out) const {
      const std::string head = opts.prefix + "/workers/";
      if (k.compare(0, head.size(), head) != 0) return false;
      const std::string_view rest = std::string_view(k).substr(head.size());
      const auto slash = rest.find('/');
      if (slash == std::string_view::npos) return false;
      std::uint64_t dc = 0, w = 0;
      if (!detail::parse_unsigned(rest.substr(0, slash), dc) ||
          !detail::parse_unsigned(rest.substr(slash + 1), w))
        return false;
      if (dc > std::numeric_limits<unsigned>::max() || w > std::numeric_limits<unsigned>::max())
        return false;
      out = {static_cast<unsigned>(dc), static_cast<unsigned>(w)};
      return true;
    }

    // The lease is not known alive when its last renewal is older than the
    // window's span (a keepalive is due or failing): no claim can be used yet.
    std::error_code renewal_too_old(const std::string& when) {
      const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
          lease_window::clock::now() - owner.last_renewal());
      if (since < window->span()) return {};
      window->revoke();
      message = "worker claim " + when + ": the session's last renewal was " +
                std::to_string(since.count()) + " ms ago, not within TTL - margin (" +
                std::to_string(window->span().count()) + " ms); claim again after a keepalive";
      return make_error_code(errc::worker_lost);
    }

    void won(worker_pair p, std::int64_t lease_id, std::int64_t create_rev) {
      window->revoke();
      lease = lease_id;
      create_revision = create_rev;
      key = worker_key(p);
      packed.store((std::uint64_t{p.datacenter} << 32) | p.worker, std::memory_order_release);
      window->open(owner.last_renewal());
    }

    static boost::asio::awaitable<std::pair<std::error_code, worker_pair>> claim(
        std::shared_ptr<state> s) {
      co_await detail::honour_any_cancellation();
      s->message.clear();
      if (!s->owner.alive()) {
        s->message = "worker claim needs a live session; it is " +
                     std::string(to_string(s->owner.state_now()));
        co_return std::pair{make_error_code(errc::session_lost), worker_pair{}};
      }
      const std::int64_t lease = s->owner.lease();
      if (s->window->valid() && s->lease == lease) {
        const auto packed = s->packed.load(std::memory_order_acquire);
        co_return std::pair{std::error_code{},
                            worker_pair{static_cast<unsigned>(packed >> 32),
                                        static_cast<unsigned>(packed & 0xffffffffu)}};
      }
      s->window->revoke();
      if (auto lec = s->renewal_too_old("before claiming")) co_return std::pair{lec, worker_pair{}};
      client& c = s->owner.get_client();
      range_options listing;
      listing.prefix = true;
      auto [lec, taken_now] = co_await c.async_range(
          s->scope, listing, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (lec) {
        s->message = "worker claim could not list '" + s->scope + "': " + lec.message();
        co_return std::pair{lec, worker_pair{}};
      }
      std::set<worker_pair> taken;
      for (const auto& kv : taken_now.kvs) {
        worker_pair p;
        // a pair already ours (same lease and name) is tried, and recognised below
        const bool ours = kv.lease == lease && kv.value == s->opts.node_name;
        if (!ours && s->parse_key(kv.key, p)) taken.insert(p);
      }
      const std::size_t n = s->candidates.size();
      const std::size_t start = static_cast<std::size_t>(detail::node_hash(s->opts.node_name) % n);
      for (std::size_t i = 0; i < n; ++i) {
        const worker_pair p = s->candidates[(start + i) % n];
        if (taken.count(p) != 0) continue;
        const std::string k = s->worker_key(p);
        txn_request t;
        t.compares.push_back(compare::missing(k));
        put_options po;
        po.lease = lease;
        t.success.push_back(put_request{k, s->opts.node_name, po});
        t.success.push_back(range_request{s->released_key(p), {}});
        t.success.push_back(range_request{k, {}});
        t.failure.push_back(range_request{k, {}});
        auto [tec, tr] = co_await c.async_txn(t, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (tec) {
          s->message = "worker claim transaction on '" + k + "' failed: " + tec.message();
          co_return std::pair{tec, worker_pair{}};
        }
        if (!s->owner.alive() || s->owner.lease() != lease) {
          s->message =
              "worker claim: the session lost lease " + std::to_string(lease) + " while claiming";
          co_return std::pair{make_error_code(errc::session_lost), worker_pair{}};
        }
        if (tr.succeeded) {
          const range_result* released = detail::range_at(tr, 1);
          const range_result* mine = detail::range_at(tr, 2);
          if (released == nullptr || mine == nullptr || mine->kvs.empty()) {
            s->message = "worker claim: etcd's answer to the claim of '" + k +
                         "' lacks the key or the released timestamp";
            co_return std::pair{make_error_code(seckill::errc::protocol_error), worker_pair{}};
          }
          std::uint64_t ms = 0;
          if (!released->kvs.empty() && !detail::parse_unsigned(released->kvs.front().value, ms)) {
            s->message = "worker claim: '" + s->released_key(p) + "' holds no timestamp: '" +
                         released->kvs.front().value.substr(0, 40) + "'";
            co_return std::pair{make_error_code(seckill::errc::protocol_error), worker_pair{}};
          }
          s->released_ms = static_cast<std::int64_t>(ms);
          s->won(p, lease, mine->kvs.front().create_revision);
          if (auto wec = s->renewal_too_old("after winning '" + k + "'"))
            co_return std::pair{wec, worker_pair{}};
          co_return std::pair{std::error_code{}, p};
        }
        // taken meanwhile; ours already when it carries our name and lease
        const range_result* existing = detail::range_at(tr, 0);
        if (existing != nullptr && !existing->kvs.empty() && existing->kvs.front().lease == lease &&
            existing->kvs.front().value == s->opts.node_name) {
          s->won(p, lease, existing->kvs.front().create_revision);
          if (auto wec = s->renewal_too_old("after finding '" + k + "' ours already"))
            co_return std::pair{wec, worker_pair{}};
          co_return std::pair{std::error_code{}, p};
        }
      }
      s->message = "all " + std::to_string(n) + " (datacenter, worker) pairs of " +
                   s->describe_scope + " are taken under '" + s->opts.prefix + "/workers/'";
      co_return std::pair{make_error_code(errc::no_free_worker), worker_pair{}};
    }

    static boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> release(
        std::shared_ptr<state> s, std::int64_t last_used_ms) {
      co_await detail::honour_any_cancellation();
      s->window->revoke();  // no id from here on, whatever etcd answers
      s->message.clear();
      if (s->key.empty()) co_return std::pair{std::error_code{}, std::int64_t{0}};
      if (last_used_ms < 0) {
        s->message = "worker claim release: last used timestamp " + std::to_string(last_used_ms) +
                     " ms is negative";
        co_return std::pair{make_error_code(seckill::errc::invalid_argument), std::int64_t{0}};
      }
      const auto packed = s->packed.load(std::memory_order_acquire);
      const worker_pair p{static_cast<unsigned>(packed >> 32),
                          static_cast<unsigned>(packed & 0xffffffffu)};
      txn_request t;
      t.compares.push_back(
          compare::create_revision(s->key, compare::result::equal, s->create_revision));
      t.compares.push_back(compare::lease_id(s->key, compare::result::equal, s->lease));
      t.success.push_back(put_request{s->released_key(p), std::to_string(last_used_ms), {}});
      t.success.push_back(delete_request{s->key, {}});
      auto [ec, tr] = co_await s->owner.get_client().async_txn(
          t, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) {
        s->message = "worker claim release of '" + s->key + "' failed: " + ec.message();
        co_return std::pair{ec, std::int64_t{0}};
      }
      const std::string released = s->key;
      s->key.clear();
      s->lease = 0;
      if (!tr.succeeded) {
        s->message = "worker claim release: '" + released + "' was no longer this claim's";
        co_return std::pair{make_error_code(errc::worker_lost), tr.header.revision};
      }
      co_return std::pair{std::error_code{}, tr.header.revision};
    }
  };

  session& session_;
  std::shared_ptr<state> st_;
};

/// @brief A Snowflake generator on a claimed pair that issues ids only while
///        the claim is valid: `next(ec)` fails with `errc::worker_lost` after
///        the window closes. A purchase engine's `Ids` policy.
///
/// Each id is checked against the window after it was made, so its timestamp
/// was read while the claim held, however long the thread was descheduled
/// (an id made too late is dropped: a gap, never a duplicate). Starts after
/// the timestamp the pair's previous owner stored on release.
///
/// Thread-safety: `next` from any thread, like `snowflake`. Cost: the
/// snowflake's, plus a steady clock read and an atomic load per id.
template <class Layout = twitter_layout, class Clock = system_millis,
          rollback_policy OnRollback = wait_up_to<15>>
class leased_snowflake {
 public:
  using snowflake_type = snowflake<Layout, Clock, OnRollback>;

  /// On the pair `c` holds now. @throws seckill::error: `errc::worker_lost`
  /// when the claim is not valid, `errc::invalid_argument` when the claim was
  /// made for another layout (or as `snowflake` throws).
  explicit leased_snowflake(const worker_claim& c, std::chrono::milliseconds epoch = default_epoch,
                            Clock clock = {})
      : leased_snowflake(c.window(), checked_pair(c), c.released_at_ms(), epoch, std::move(clock)) {
  }

  /// On `pair` while `window` is valid, after `released_at_ms` (ms since the
  /// Unix epoch; 0: none). @throws seckill::error as `snowflake` throws.
  leased_snowflake(std::shared_ptr<const lease_window> window, worker_pair pair,
                   std::int64_t released_at_ms, std::chrono::milliseconds epoch = default_epoch,
                   Clock clock = {})
      : window_(std::move(window)), ids_(pair.datacenter, pair.worker, epoch, std::move(clock)) {
    if (released_at_ms > 0 && released_at_ms - epoch.count() >= 0) {
      ids_.resume_after(std::chrono::milliseconds{released_at_ms - epoch.count()});
    }
  }

  /// The next id, or -1 with `ec` set: `errc::worker_lost` once the claim's
  /// window closed, or the snowflake's codes.
  [[nodiscard]] std::int64_t next(std::error_code& ec) noexcept {
    if (!window_->valid()) {
      ec = make_error_code(errc::worker_lost);
      return -1;
    }
    const std::int64_t id = ids_.next(ec);
    if (ec) return -1;
    if (!window_->valid()) {  // made while valid? only if still valid after
      ec = make_error_code(errc::worker_lost);
      return -1;
    }
    return id;
  }

  /// The next id. @throws seckill::error with `errc::worker_lost` once the
  /// window closed, or as the snowflake throws.
  [[nodiscard]] std::int64_t next() {
    if (!window_->valid()) throw lost();
    const std::int64_t id = ids_.next();  // throws with the snowflake's own message
    if (!window_->valid()) throw lost();
    return id;
  }

  /// The last id timestamp in ms since the Unix epoch, for `async_release`.
  [[nodiscard]] std::int64_t last_used_ms() const noexcept {
    return ids_.last_timestamp().count() + ids_.epoch().count();
  }
  [[nodiscard]] bool valid() const noexcept { return window_->valid(); }
  [[nodiscard]] snowflake_type& generator() noexcept { return ids_; }
  [[nodiscard]] const snowflake_type& generator() const noexcept { return ids_; }

 private:
  error lost() const {
    return error(make_error_code(errc::worker_lost),
                 "worker " + std::to_string(ids_.worker_id()) + " of datacenter " +
                     std::to_string(ids_.datacenter_id()) +
                     ": the claim's lease is no longer known alive");
  }

  static worker_pair checked_pair(const worker_claim& c) {
    if (c.options().layout != worker_space::of<Layout>()) {
      throw error(seckill::errc::invalid_argument,
                  "worker claim made for datacenters [0, " +
                      std::to_string(c.options().layout.max_datacenter) + "] and workers [0, " +
                      std::to_string(c.options().layout.max_worker) +
                      "], the generator's layout has [0, " +
                      std::to_string(Layout::max_datacenter) + "] and [0, " +
                      std::to_string(Layout::max_worker) + "]");
    }
    const auto p = c.pair();
    if (!p) {
      throw error(make_error_code(errc::worker_lost),
                  "leased_snowflake needs a valid worker claim; '" + c.options().node_name +
                      "' holds none");
    }
    return *p;
  }

  std::shared_ptr<const lease_window> window_;
  snowflake_type ids_;
};

}  // namespace seckill::etcd
