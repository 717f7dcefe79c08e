#pragma once
/// @file
/// @brief Leader election with the semantics of etcd's Go `concurrency`
///        package: each candidate writes `prefix/<lease id in hex>` under its
///        session's lease and waits only for its predecessor (the key with the
///        next lower create revision) to go; the leader key's create revision
///        is the fencing token; leadership ends with the session.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace seckill::etcd {

/// @brief The current leader as its key shows it.
struct leader_info {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;  ///< the fencing token of this leadership
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
  friend bool operator==(const leader_info&, const leader_info&) = default;
};

namespace detail {
inline std::string lease_hex(std::int64_t lease) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(lease));
  return buf;
}
inline leader_info to_leader(const key_value& kv) {
  return {kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.lease};
}
}  // namespace detail

/// @brief One candidate in one election.
///
/// `async_campaign` completes once this candidate leads (or with
/// `errc::session_lost` / `errc::operation_aborted`; a cancelled campaign
/// deletes its key, as Go's does). While it leads, `fencing_token()` is the
/// leader key's create revision: guard every write that only the leader may
/// make with `fence()` in the same transaction, and a deposed leader's write
/// fails however late it arrives. `is_leader()` turns false as soon as the
/// session is lost.
///
/// Thread-safety: like the client (one executor). The session must outlive
/// the election. Cost: one transaction to campaign, then one watch on the
/// predecessor only (no herd on a leader change).
class election {
 public:
  using executor_type = session::executor_type;

  election(session& s, std::string prefix)
      : session_(s),
        prefix_(std::move(prefix)),
        watcher_(std::make_unique<watcher>(s.get_client())) {
    if (prefix_.empty() || prefix_.back() != '/') prefix_ += '/';
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return session_.get_executor(); }
  [[nodiscard]] const std::string& prefix() const noexcept { return prefix_; }
  /// This candidate's key (empty before the first campaign).
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  [[nodiscard]] bool is_leader() const noexcept {
    return leading_ && session_.alive() && session_.generation() == generation_ &&
           session_.lease() == lease_;
  }
  /// The create revision of the leader key while leading; 0 otherwise.
  [[nodiscard]] std::int64_t fencing_token() const noexcept { return is_leader() ? rev_ : 0; }
  /// A compare that holds only while this candidate's leader key still exists
  /// with its creation revision: the guard for leader-only writes.
  [[nodiscard]] compare fence() const {
    return compare::create_revision(key_.empty() ? prefix_ : key_, compare::result::equal,
                                    rev_ == 0 ? -1 : rev_);
  }

  /// Campaigns with `value` and waits to lead. -> (ec, leader_info of this candidate)
  template <boost::asio::completion_token_for<void(std::error_code, leader_info)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_campaign(std::string value, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, leader_info)>(
        get_executor(), campaign(std::move(value)), token);
  }

  /// Replaces the leader's value; `errc::not_leader` when this candidate does
  /// not lead. -> (ec, mod revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_proclaim(std::string value, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(
        get_executor(), guarded_proclaim(std::move(value)), token);
  }

  /// Gives up leadership (deletes the key if it is still ours). -> (ec, revision)
  template <boost::asio::completion_token_for<void(std::error_code, std::int64_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_resign(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::int64_t)>(get_executor(),
                                                                             resign(), token);
  }

  /// The current leader of the election, if any. -> (ec, std::optional<leader_info>)
  template <boost::asio::completion_token_for<void(std::error_code, std::optional<leader_info>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_leader(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::optional<leader_info>)>(
        get_executor(), current_leader(session_.get_client(), prefix_), token);
  }

  /// The first candidate (lowest create revision) under `prefix`, if any.
  static boost::asio::awaitable<std::pair<std::error_code, std::optional<leader_info>>>
  current_leader(client& c, std::string prefix) {
    co_await detail::honour_any_cancellation();
    range_options o;
    o.prefix = true;
    o.limit = 1;
    o.order = sort_order::ascend;
    o.target = sort_target::create;
    auto [ec, r] =
        co_await c.async_range(prefix, o, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return std::pair{ec, std::optional<leader_info>{}};
    if (r.kvs.empty()) co_return std::pair{std::error_code{}, std::optional<leader_info>{}};
    co_return std::pair{std::error_code{},
                        std::optional<leader_info>{detail::to_leader(r.kvs.front())}};
  }

 private:
  boost::asio::awaitable<std::pair<std::error_code, leader_info>> campaign(std::string value) {
    using namespace boost::asio::experimental::awaitable_operators;
    co_await detail::honour_any_cancellation();
    if (!session_.alive()) co_return std::pair{make_error_code(errc::session_lost), leader_info{}};
    client& c = session_.get_client();
    const std::int64_t lease = session_.lease();
    const std::uint64_t gen = session_.generation();
    const std::string key = prefix_ + detail::lease_hex(lease);
    txn_request t;
    t.compares = {compare::missing(key)};
    t.success = {put_request{key, value, {.lease = lease}}};
    t.failure = {range_request{key, {}}};
    // The transaction that creates the key runs to its answer even when the
    // campaign is stopped meanwhile: aborted in flight, etcd could apply it
    // after the delete that gives the key up, and the key would stay until
    // the lease ends. The stop is seen at the loop's first check below.
    auto [ec, tr] = co_await c.async_txn(
        t, boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(),
                                               boost::asio::as_tuple(boost::asio::use_awaitable)));
    if (ec) co_return std::pair{ec, leader_info{}};
    key_ = key;
    lease_ = lease;
    generation_ = gen;
    leading_ = false;
    std::int64_t rev = tr.header.revision;
    if (!tr.succeeded) {
      const range_result* existing = detail::range_at(tr, 0);
      if (existing == nullptr)
        co_return std::pair{make_error_code(seckill::errc::protocol_error), leader_info{}};
      const auto& kvs = existing->kvs;
      if (kvs.empty()) co_return std::pair{make_error_code(errc::txn_conflict), leader_info{}};
      rev = kvs.front().create_revision;
      if (kvs.front().value != value) {
        rev_ = rev;
        leading_ = true;  // allows proclaim on our own key
        auto [pec, mod] = co_await proclaim(value);
        leading_ = false;
        if (pec) co_return std::pair{pec, leader_info{}};
      }
    }
    rev_ = rev;
    // wait for every candidate created before us to go, one predecessor at a time
    for (;;) {
      // A stop that came while a request was in flight (a request completes
      // rather than aborts) is seen here, before any wait: the campaign gives
      // its key up instead of waiting on, and perhaps winning, after it.
      const boost::asio::cancellation_state cs =
          co_await boost::asio::this_coro::cancellation_state;
      if (detail::is_cancelled(cs)) {
        co_await give_up();
        co_return std::pair{make_error_code(seckill::errc::operation_aborted), leader_info{}};
      }
      range_options o;
      o.prefix = true;
      o.limit = 1;
      o.order = sort_order::descend;
      o.target = sort_target::create;
      o.max_create_revision = rev - 1;
      auto [rec, r] =
          co_await c.async_range(prefix_, o, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (rec) {
        co_await give_up();
        co_return std::pair{rec, leader_info{}};
      }
      if (r.kvs.empty()) break;
      watch_options wo;
      wo.start_revision = r.header.revision + 1;
      auto [wec, stream] = co_await watcher_->async_watch(
          r.kvs.front().key, wo, boost::asio::as_tuple(boost::asio::use_awaitable));
      if (wec) {
        co_await give_up();
        co_return std::pair{wec, leader_info{}};
      }
      bool deleted = false;
      while (!deleted) {
        const boost::asio::cancellation_state ws =
            co_await boost::asio::this_coro::cancellation_state;
        if (detail::is_cancelled(ws)) {
          co_await give_up();
          co_return std::pair{make_error_code(seckill::errc::operation_aborted), leader_info{}};
        }
        auto res =
            co_await (stream.async_next(boost::asio::as_tuple(boost::asio::use_awaitable)) ||
                      session_.async_wait_lost(boost::asio::as_tuple(boost::asio::use_awaitable)));
        if (res.index() == 1) {
          co_return std::pair{make_error_code(errc::session_lost), leader_info{}};
        }
        auto& [nec, resp] = std::get<0>(res);
        if (nec) {
          co_await give_up();
          co_return std::pair{nec, leader_info{}};
        }
        if (resp.resynced) {
          deleted = resp.snapshot.empty();
        } else {
          for (const auto& e : resp.events) deleted = deleted || e.type == event::kind::del;
        }
      }
    }
    if (!session_.alive() || session_.generation() != gen) {
      co_return std::pair{make_error_code(errc::session_lost), leader_info{}};
    }
    leading_ = true;
    auto [gec, got] = co_await c.async_get(key_, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!gec && !got.kvs.empty())
      co_return std::pair{std::error_code{}, detail::to_leader(got.kvs.front())};
    if (!gec) {
      leading_ = false;
      co_return std::pair{make_error_code(errc::session_lost), leader_info{}};
    }
    co_return std::pair{std::error_code{}, leader_info{key_, value, rev_, rev_, lease}};
  }

  boost::asio::awaitable<void> give_up() {
    if (key_.empty()) co_return;
    // delete our key even when the campaign was cancelled, as Go's does
    co_await boost::asio::this_coro::reset_cancellation_state();
    const delete_options just_the_key;
    co_await session_.get_client().async_delete(key_, just_the_key,
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
    leading_ = false;
  }

  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> guarded_proclaim(
      std::string value) {
    co_await detail::honour_any_cancellation();
    co_return co_await proclaim(std::move(value));
  }

  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> proclaim(std::string value) {
    if (!is_leader()) co_return std::pair{make_error_code(errc::not_leader), std::int64_t{0}};
    txn_request t;
    t.compares = {fence()};
    t.success = {put_request{key_, value, {.lease = lease_}}};
    auto [ec, tr] = co_await session_.get_client().async_txn(
        t, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return std::pair{ec, std::int64_t{0}};
    if (!tr.succeeded) {
      leading_ = false;
      co_return std::pair{make_error_code(errc::not_leader), std::int64_t{0}};
    }
    co_return std::pair{std::error_code{}, tr.header.revision};
  }

  boost::asio::awaitable<std::pair<std::error_code, std::int64_t>> resign() {
    co_await detail::honour_any_cancellation();
    if (key_.empty()) co_return std::pair{std::error_code{}, std::int64_t{0}};
    txn_request t;
    t.compares = {fence()};
    t.success = {delete_request{key_, {}}};
    leading_ = false;
    auto [ec, tr] = co_await session_.get_client().async_txn(
        t, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return std::pair{ec, tr.header.revision};
  }

  session& session_;
  std::string prefix_;
  std::unique_ptr<watcher> watcher_;
  std::string key_;
  std::int64_t rev_ = 0;
  std::int64_t lease_ = 0;
  std::uint64_t generation_ = 0;
  bool leading_ = false;
};

/// @brief Follows who leads an election: each `async_next` completes with the
///        leader as soon as it differs from the one reported before (a new
///        leader, a proclaimed value, or no leader: `std::nullopt`).
///
/// Thread-safety: like the client. Cost: one prefix watch; a range per change.
class election_observer {
 public:
  using executor_type = watcher::executor_type;

  election_observer(watcher& w, std::string prefix) : watcher_(w), prefix_(std::move(prefix)) {
    if (prefix_.empty() || prefix_.back() != '/') prefix_ += '/';
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return watcher_.get_executor(); }

  /// -> (ec, std::optional<leader_info>)
  template <boost::asio::completion_token_for<void(std::error_code, std::optional<leader_info>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_next(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, std::optional<leader_info>)>(
        get_executor(), next(), token);
  }

 private:
  boost::asio::awaitable<std::pair<std::error_code, std::optional<leader_info>>> next() {
    co_await detail::honour_any_cancellation();
    for (;;) {
      // the watch first: a change after the range below is then never missed
      if (!stream_.valid()) {
        if (auto wec = co_await open_watch())
          co_return std::pair{wec, std::optional<leader_info>{}};
      }
      auto [ec, cur] = co_await election::current_leader(watcher_.get_client(), prefix_);
      if (ec) co_return std::pair{ec, std::optional<leader_info>{}};
      if (!started_ || cur != last_) {
        started_ = true;
        last_ = cur;
        co_return std::pair{std::error_code{}, cur};
      }
      auto [nec, resp] =
          co_await stream_.async_next(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (nec) co_return std::pair{nec, std::optional<leader_info>{}};
    }
  }

  boost::asio::awaitable<std::error_code> open_watch() {
    watch_options o;
    o.prefix = true;
    auto [ec, s] = co_await watcher_.async_watch(prefix_, o,
                                                 boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!ec) stream_ = std::move(s);
    co_return ec;
  }

  watcher& watcher_;
  std::string prefix_;
  watch_stream stream_;
  bool started_ = false;
  std::optional<leader_info> last_;
};

}  // namespace seckill::etcd
