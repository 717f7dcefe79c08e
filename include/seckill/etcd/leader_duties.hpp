#pragma once
/// @file
/// @brief `leader_duties`: the work only one node of a sale may do, run by
///        the elected leader only: the hold reaper, its reaps fenced by the
///        leadership's token, and the periodic audit (`async_reconcile`) of
///        every SKU.
///
/// A node campaigns in an etcd election over its own session. While it
/// leads, it reaps with the leader key's create revision as fence, so a
/// deposed leader (a stale process, a paused VM) is refused by the store as
/// soon as its successor has reaped once, and it audits each SKU every
/// `audit_period`, keeping the last report per SKU. Leadership ends when the
/// session is lost (no keepalive succeeded within the TTL) or a reap is
/// fenced out; the node stops acting at once and campaigns again on its
/// session's next lease. A leader killed with held reservations is replaced
/// within the TTL, and its successor's first pass comes at once: holds come
/// back within hold + TTL + one reap period.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/store/reaper.hpp>
#include <seckill/store/reconcile.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::etcd {

/// @brief Settings of `leader_duties`.
struct leader_duties_options {
  /// The election's key prefix: every node of one sale campaigns under it.
  std::string election = "seckill/duties";
  /// This node (required): the value of its leader key.
  std::string name{};
  /// The session's lease TTL, in [1, 3600] s: a killed leader's successor
  /// starts within it.
  std::chrono::seconds ttl{5};
  /// The pause between two reap passes, in (0, max_hold].
  std::chrono::milliseconds reap_period{1000};
  /// Holds reaped per store call (at least 1).
  std::size_t reap_batch = 512;
  /// The pause between two audits of the SKUs, in (0, max_hold].
  std::chrono::milliseconds audit_period{10'000};
  /// Audits of one SKU in a row while commits keep landing (at least 1).
  unsigned audit_attempts = 3;
  /// The pause after a failed campaign or session start, in (0, max_hold].
  std::chrono::milliseconds retry_interval{500};
};

/// @brief The last audit of one SKU.
struct audit_result {
  std::error_code error;    ///< the store's error; the report is empty then
  reconcile_report report;  ///< what the audit found
  std::int64_t token = 0;   ///< the leadership that ran it
  /// Whether no commit landed while the audit read: the units committed were
  /// the same before the order pages and after them. Only then does a gap
  /// between committed and recorded units mean a fault (a commit in flight
  /// shows its units before its order).
  bool settled = true;
  /// Whether the audit ran and found every unit, order and limit right.
  [[nodiscard]] bool ok() const noexcept { return !error && report.ok(); }
  /// Whether it found a fault: a store error, a user over the limit, or,
  /// settled, units committed without their orders (or the reverse). A SKU
  /// whose stock was never set (`unknown_sku`: duties may start before the
  /// sale is stocked) has nothing to audit yet: no fault.
  [[nodiscard]] bool failed() const noexcept {
    if (error == seckill::errc::unknown_sku) return false;
    return error || !report.users_over_limit.empty() || (settled && !report.ok());
  }
};

/// @brief Runs the hold reaper and the audits of a `Store` on the node that
///        leads an etcd election, and on no other (see the file comment).
///
/// `async_run` starts the session, campaigns and, while leading, runs both
/// duties; it completes only when cancelled (`errc::operation_aborted`),
/// resigning first so the next node need not wait out the TTL. An audit that
/// fails (`audit_result::failed`: a store error, units committed without
/// their orders, a user over the limit) is counted and passed to the
/// `on_audit_failed` hook. The audit reads the SKU's stock before
/// `async_reconcile` too: when a commit landed meanwhile (committed moved),
/// it is run again, up to `audit_attempts` times, and kept unsettled (not a
/// failure) if commits never paused.
///
/// Thread-safety: `set_skus`, `add_sku`, the counters, `is_leader`,
/// `fencing_token`, `last_audit` and `last_error` from any thread; hooks are
/// set before `async_run`, and run on the client's executor; `async_run` once
/// at a time. The client and the store must outlive it. Cost: the session's
/// keepalive (one call per TTL / 3) on every node; one watch on the
/// predecessor per follower; on the leader, one fenced reap per SKU per
/// `reap_period` (etcd_store: a read and a compare-and-swap of the fence
/// besides) and one audit (one read per page of orders plus three) per SKU per
/// `audit_period`.
template <fenced_stock_store Store>
class leader_duties {
 public:
  using executor_type = client::executor_type;
  /// Called on every leadership change: (token, leading, why it ended: none
  /// when it began; session_lost, fenced_out or operation_aborted).
  using term_handler = std::function<void(std::int64_t token, bool leading, std::error_code why)>;
  /// Called with each failed audit: (sku, result).
  using audit_handler = std::function<void(const std::string& sku, const audit_result&)>;

  /// @throws seckill::error (`errc::invalid_argument`) for an empty name or
  ///         election prefix, a TTL, period or batch out of range; with the
  ///         value seen.
  leader_duties(client& c, Store& store, std::vector<std::string> skus,
                leader_duties_options options = {})
      : options_(checked(std::move(options))),
        store_(store),
        session_(c, session_options{.ttl = options_.ttl, .renew_after_loss = true}),
        election_(session_, options_.election),
        reaper_(store, skus, reaper_options{options_.reap_period, options_.reap_batch}),
        skus_(std::move(skus)) {}

  leader_duties(const leader_duties&) = delete;
  leader_duties& operator=(const leader_duties&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept { return session_.get_executor(); }
  [[nodiscard]] const leader_duties_options& options() const noexcept { return options_; }
  /// The session the node campaigns with (`async_close` revokes its lease).
  [[nodiscard]] session& get_session() noexcept { return session_; }
  /// The reaper (its counters: `reaped()`, `passes()`, `errors()`).
  [[nodiscard]] const hold_reaper<Store>& reaper() const noexcept { return reaper_; }

  /// Replaces the SKUs reaped and audited from the next pass on.
  void set_skus(std::vector<std::string> skus) {
    reaper_.set_skus(skus);
    std::lock_guard lock(mutex_);
    skus_ = std::move(skus);
  }
  /// Adds one SKU (no effect when it is known already).
  void add_sku(std::string sku) {
    reaper_.add_sku(sku);
    std::lock_guard lock(mutex_);
    for (const auto& s : skus_)
      if (s == sku) return;
    skus_.push_back(std::move(sku));
  }

  /// Sets the leadership hook (before `async_run`).
  void on_term(term_handler h) { on_term_ = std::move(h); }
  /// Sets the failed-audit hook (before `async_run`).
  void on_audit_failed(audit_handler h) { on_audit_failed_ = std::move(h); }

  /// Whether this node leads and acts now.
  [[nodiscard]] bool is_leader() const noexcept { return token_.load() != 0; }
  /// The fencing token of the current leadership; 0 when not leading.
  [[nodiscard]] std::int64_t fencing_token() const noexcept { return token_.load(); }
  /// Leaderships won so far.
  [[nodiscard]] std::uint64_t terms() const noexcept { return terms_.load(); }
  /// Leaderships that ended because a newer leader had reaped.
  [[nodiscard]] std::uint64_t fenced_outs() const noexcept { return fenced_outs_.load(); }
  /// Audits run so far, and those that failed.
  [[nodiscard]] std::uint64_t audits() const noexcept { return audits_.load(); }
  [[nodiscard]] std::uint64_t failed_audits() const noexcept { return failed_audits_.load(); }
  /// The last audit of `sku` by this node, if any.
  [[nodiscard]] std::optional<audit_result> last_audit(const std::string& sku) const {
    std::lock_guard lock(mutex_);
    const auto it = last_.find(sku);
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }
  /// Why the last campaign, session start or leadership failed, with the values seen.
  [[nodiscard]] std::string last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  /// Campaigns and leads (see the class comment) until cancelled
  /// (per-operation cancellation, any type). -> void(error_code)
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_run(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(
        get_executor(), run(), std::forward<CompletionToken>(token));
  }

 private:
  static constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

  static leader_duties_options checked(leader_duties_options o) {
    auto bad = [](const std::string& what) {
      return error(seckill::errc::invalid_argument, "leader_duties: " + what);
    };
    if (o.name.empty()) throw bad("name is empty");
    if (o.election.empty()) throw bad("election prefix is empty");
    if (o.ttl < std::chrono::seconds(1) || o.ttl > std::chrono::seconds(3600))
      throw bad("ttl " + std::to_string(o.ttl.count()) + " s out of [1, 3600] s");
    auto period = [&](const char* what, std::chrono::milliseconds p) {
      if (p <= std::chrono::milliseconds::zero() || p > max_hold)
        throw bad(std::string(what) + " " + std::to_string(p.count()) + " ms out of (0, " +
                  std::to_string(max_hold.count()) + "] ms");
    };
    period("reap_period", o.reap_period);
    period("audit_period", o.audit_period);
    period("retry_interval", o.retry_interval);
    if (o.reap_batch == 0) throw bad("reap_batch 0: want at least 1");
    if (o.audit_attempts == 0) throw bad("audit_attempts 0: want at least 1");
    return o;
  }

  static bool cancelled(const boost::asio::cancellation_state& cs) noexcept {
    return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  void note(std::string message) {
    std::lock_guard lock(mutex_);
    last_error_ = "leader_duties '" + options_.name + "' in election '" + election_.prefix() +
                  "': " + std::move(message);
  }

  boost::asio::awaitable<std::error_code> run() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    co_await boost::asio::this_coro::reset_cancellation_state(
        boost::asio::enable_total_cancellation());
    boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor);
    for (;;) {
      const boost::asio::cancellation_state before =
          co_await boost::asio::this_coro::cancellation_state;
      if (cancelled(before)) break;
      std::error_code failure;
      std::string doing;
      if (session_.state_now() == session_state::idle) {
        auto [sec, lease] = co_await session_.async_start(tuple);
        failure = sec;
        doing = "starting the session";
      } else if (!session_.alive()) {
        auto [wec, lease] = co_await session_.async_wait_alive(tuple);
        failure = wec;
        doing = "waiting for the session's next lease";
      }
      // A stop that came while the session started reaches no campaign begun
      // after it (the campaign has a cancellation state of its own): see it here.
      const boost::asio::cancellation_state started =
          co_await boost::asio::this_coro::cancellation_state;
      if (cancelled(started)) break;
      if (!failure) {
        auto [cec, me] = co_await election_.async_campaign(options_.name, tuple);
        failure = cec;
        doing = "campaigning";
        if (!cec) {
          // Stopped while the campaign's last request was in flight: the
          // campaign won, but a stopping node gives the key up and never leads.
          const boost::asio::cancellation_state won =
              co_await boost::asio::this_coro::cancellation_state;
          if (cancelled(won)) {
            co_await boost::asio::this_coro::reset_cancellation_state(
                boost::asio::enable_total_cancellation());
            auto [rec, rev] = co_await election_.async_resign(tuple);
            (void)rec;
            (void)rev;
            break;
          }
          const std::error_code why = co_await lead(me.create_revision);
          if (why == seckill::errc::operation_aborted) break;
          continue;  // campaign again at once (on the session's next lease once lost)
        }
      }
      const boost::asio::cancellation_state after =
          co_await boost::asio::this_coro::cancellation_state;
      if (cancelled(after)) break;
      note(doing + " failed: " + failure.message());
      pause.expires_after(options_.retry_interval);
      auto [pec] = co_await pause.async_wait(tuple);
      if (pec) break;
    }
    co_return make_error_code(seckill::errc::operation_aborted);
  }

  // One leadership: both duties until one of them, or the session, ends it.
  boost::asio::awaitable<std::error_code> lead(std::int64_t token) {
    using namespace boost::asio::experimental::awaitable_operators;
    reaper_.set_fence(token);
    token_.store(token);
    terms_.fetch_add(1);
    if (on_term_) on_term_(token, true, {});
    auto ended = co_await (reap_duty() || audit_duty(token) || watch_session());
    token_.store(0);
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    // stopping wins over whatever else ended the term at the same moment
    const std::error_code why = cancelled(cs)
                                    ? make_error_code(seckill::errc::operation_aborted)
                                    : std::visit([](std::error_code ec) { return ec; }, ended);
    if (why == seckill::errc::fenced_out) {
      fenced_outs_.fetch_add(1);
      note("leadership " + std::to_string(token) + " fenced out: a newer leader has reaped");
    } else if (why == errc::session_lost) {
      note("leadership " + std::to_string(token) + " ended: the session's lease was lost");
    }
    if (why != errc::session_lost) {
      // give the key up (fenced: only while it is still this leadership's)
      co_await boost::asio::this_coro::reset_cancellation_state(
          boost::asio::enable_total_cancellation());
      auto [rec, rev] = co_await election_.async_resign(tuple);
      (void)rec;
      (void)rev;
    }
    if (on_term_) on_term_(token, false, why);
    co_return why;
  }

  // Completes with fenced_out, or operation_aborted once cancelled.
  boost::asio::awaitable<std::error_code> reap_duty() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [ec] = co_await reaper_.async_run(tuple);
    co_return ec;
  }

  // Completes with session_lost, or operation_aborted once cancelled.
  boost::asio::awaitable<std::error_code> watch_session() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto [ec, lease] = co_await session_.async_wait_lost(tuple);
    (void)lease;
    co_return ec ? ec : make_error_code(errc::session_lost);
  }

  // Audits every SKU now and then every audit_period, until cancelled.
  boost::asio::awaitable<std::error_code> audit_duty(std::int64_t token) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (;;) {
      const auto started = std::chrono::steady_clock::now();
      std::vector<std::string> skus;
      {
        std::lock_guard lock(mutex_);
        skus = skus_;
      }
      for (const auto& sku : skus) {
        audit_result result;
        result.token = token;
        for (unsigned attempt = 1;; ++attempt) {
          // committed only grows: unchanged across the audit, no commit landed in it
          auto [sec, before] = co_await store_.async_stock(sku, tuple);
          auto [ec, report] = co_await async_reconcile(store_, sku, tuple);
          const boost::asio::cancellation_state cs =
              co_await boost::asio::this_coro::cancellation_state;
          if (cancelled(cs)) co_return make_error_code(seckill::errc::operation_aborted);
          result.error = sec ? sec : ec;
          result.report = std::move(report);
          result.settled = !result.error && before.committed == result.report.committed_units;
          if (result.error || result.settled || attempt >= options_.audit_attempts) break;
        }
        record(sku, std::move(result));
      }
      timer.expires_at(started + options_.audit_period);
      auto [wec] = co_await timer.async_wait(tuple);
      if (wec) co_return make_error_code(seckill::errc::operation_aborted);
    }
  }

  void record(const std::string& sku, audit_result r) {
    audits_.fetch_add(1);
    const bool failed = r.failed();
    if (failed) failed_audits_.fetch_add(1);
    {
      std::lock_guard lock(mutex_);
      last_[sku] = r;
    }
    if (failed && on_audit_failed_) on_audit_failed_(sku, r);
  }

  leader_duties_options options_;
  Store& store_;
  session session_;
  election election_;
  hold_reaper<Store> reaper_;
  term_handler on_term_;
  audit_handler on_audit_failed_;
  mutable std::mutex mutex_;
  std::vector<std::string> skus_;
  std::map<std::string, audit_result> last_;
  std::string last_error_;
  std::atomic<std::int64_t> token_{0};
  std::atomic<std::uint64_t> terms_{0};
  std::atomic<std::uint64_t> fenced_outs_{0};
  std::atomic<std::uint64_t> audits_{0};
  std::atomic<std::uint64_t> failed_audits_{0};
};

}  // namespace seckill::etcd
