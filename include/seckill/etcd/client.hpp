#pragma once
/// @file
/// @brief A client of etcd's v3 JSON gateway (`POST /v3/...`) over Boost.Beast
///        HTTP/1.1 keep-alive connections: range, put, delete, transactions,
///        leases, compaction and status, with failover across several members,
///        per-call timeouts and per-operation cancellation; `https://`
///        members over TLS (`client_options::tls`).

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/auth.hpp>
#include <seckill/etcd/detail/auth_state.hpp>
#include <seckill/etcd/detail/http_stream.hpp>
#include <seckill/etcd/detail/json_codec.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/tls.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::etcd {

/// @brief Settings of a `client`.
struct client_options {
  std::vector<endpoint> endpoints;  ///< tried in order; the client moves on when one fails
  std::chrono::milliseconds call_timeout{5000};     ///< per call, across retries
  std::chrono::milliseconds connect_timeout{1000};  ///< per connection attempt
  std::size_t max_response_bytes = 16u << 20;
  std::size_t max_idle_per_endpoint = 8;  ///< keep-alive connections kept per member
  /// Sends `Grpc-Metadata-hasleader: true`: a member cut off from its leader
  /// answers "no leader" at once (and the client moves on) instead of stalling.
  bool require_leader = true;
  /// The TLS settings of the `https://` endpoints (`endpoint::tls`): CA file,
  /// client certificate and key (etcd's `--client-cert-auth`), the name
  /// checked (the endpoint's host by default). Needs the `seckill::tls`
  /// component; checked at construction (`validate`: files that exist and
  /// can be read, then the context made from them).
  tls_options tls{};
  /// The etcd user the client logs in as (etcd's `auth enable`); empty: no
  /// login. The client logs in with `POST /v3/auth/authenticate` before its
  /// first call, sends the token as `Authorization` on every call, and logs
  /// in again once when etcd refuses the token (expired, forgotten by a
  /// restarted member), then sends the refused call again: etcd refused it
  /// before applying it. Calls refused at once share that one login. A
  /// wrong password: `errc::auth_failed`; a key outside the user's roles:
  /// `errc::permission_denied`. The password is never in a message.
  credentials auth{};
};

/// @brief What the maintenance status call reports about the member that served it.
struct status_result : response {
  std::string version;
  std::uint64_t leader = 0;
  std::int64_t db_size = 0;
};

/// @brief What the compaction call returns.
struct compact_result : response {};

namespace detail {

/// The first thing a coroutine body that honours every cancellation type
/// awaits (`seckill::detail::async_spawn` lets only terminal cancellation
/// through by default): total and partial signals then reach it too, and a
/// cancelled operation inside it completes with its error code instead of
/// throwing, so the body reports the cancellation itself
/// (`errc::operation_aborted`).
inline boost::asio::awaitable<void> honour_any_cancellation() {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  co_await boost::asio::this_coro::reset_cancellation_state(
      boost::asio::enable_total_cancellation());
}

/// Read the state into a named local first (`const boost::asio::cancellation_state
/// cs = co_await boost::asio::this_coro::cancellation_state;`), never as
/// `if (is_cancelled(co_await ...))`: GCC 12 lays out the frame of a coroutine
/// with a co_await inside an if condition and no local in its outermost scope
/// with the resume pointer 8 bytes in, so the handle Asio makes from the
/// promise resumes a garbage index (SIGILL or a corrupted frame).
inline bool is_cancelled(boost::asio::cancellation_state st) {
  return st.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace detail

/// @brief A client of etcd's JSON gateway.
///
/// Calls are HTTP/1.1 POSTs on keep-alive connections (a small pool per
/// member, so concurrent calls do not wait on each other). A call moves to
/// the next endpoint when a connection cannot be made, when the member
/// answers "no leader", or (for reads and lease keepalives, which are safe to
/// repeat) when the connection breaks mid-call; a write whose connection broke
/// after it was sent is not repeated and fails with `errc::not_connected`
/// (it may or may not have been applied). Each call has one deadline across
/// all its attempts (`call_timeout`, `errc::timed_out`) and honours
/// per-operation cancellation (`errc::operation_aborted`). etcd's errors map
/// to `seckill::etcd::errc` (no_leader, compacted, lease_not_found) or to the
/// shared `seckill::errc` (invalid_argument, timed_out, auth_failed,
/// server_error); the server's message is kept in the result's `error_message`.
///
/// Thread-safety: operations may be started from any thread; they run on the
/// client's executor, which must not run two handlers at once (an io_context
/// run by one thread, or a strand). The client must outlive its operations.
/// Cost: one HTTP round trip and one JSON parse per call; connections are
/// reused.
class client {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws `seckill::error` (invalid_argument) without endpoints, or when
  /// an `https://` endpoint's TLS settings cannot be used (a file missing or
  /// unreadable, not PEM, a key that does not match; TLS not built in).
  client(executor_type ex, client_options opts)
      : ex_(std::move(ex)), opts_(std::move(opts)), auth_(ex_) {
    if (opts_.endpoints.empty()) {
      throw error(seckill::errc::invalid_argument, "etcd client: no endpoints given");
    }
    bool any_tls = false;
    for (const endpoint& ep : opts_.endpoints) any_tls = any_tls || ep.tls;
    if (any_tls) {
      std::string why;
      if (seckill::validate(opts_.tls, &why))
        throw error(seckill::errc::invalid_argument, "etcd client: " + why);
#if SECKILL_HAS_TLS
      tls_.options = opts_.tls;
      tls_.context = seckill::detail::make_tls_client_context(opts_.tls);
#else
      throw error(seckill::errc::invalid_argument,
                  "etcd client: an https:// endpoint but this program was built without TLS: "
                  "link seckill::tls (the tls component: OpenSSL), which defines SECKILL_HAS_TLS");
#endif
    } else if (opts_.tls != tls_options{}) {
      throw error(seckill::errc::invalid_argument,
                  "etcd client: tls options are set but no endpoint is https://");
    }
    idle_.resize(opts_.endpoints.size());
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] const client_options& options() const noexcept { return opts_; }
  /// The TLS context and settings of the https:// endpoints (the watcher's
  /// sockets use them too).
  [[nodiscard]] const detail::tls_setup& tls() const noexcept { return tls_; }
  /// Logins sent so far (`client_options::auth`): the first, then one per
  /// token etcd refused, however many calls it refused at once.
  [[nodiscard]] std::uint64_t logins() const noexcept { return auth_.logins; }
  /// The token of the current login and its generation (watches send it).
  [[nodiscard]] const std::string& auth_token() const noexcept { return auth_.token; }
  [[nodiscard]] std::uint64_t auth_generation() const noexcept { return auth_.generation; }
  /// The index in `options().endpoints` of the member calls go to now.
  [[nodiscard]] std::size_t current_endpoint() const noexcept { return current_; }
  /// Moves later calls to another member (used by watches that lost theirs).
  void rotate_endpoint(std::size_t from) noexcept {
    if (from == current_) current_ = (current_ + 1) % opts_.endpoints.size();
  }

  // ------------------------------------------------------------------- KV

  /// Reads one key, a range, or a prefix (`options.prefix`). -> (ec, range_result)
  template <boost::asio::completion_token_for<void(std::error_code, range_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_range(std::string key, range_options options,
                   CompletionToken&& token = CompletionToken()) {
    const range_request request{std::move(key), std::move(options)};
    return start<range_result>("/v3/kv/range", detail::to_json(request), true, &detail::parse_range,
                               std::forward<CompletionToken>(token));
  }
  /// Reads one key. -> (ec, range_result)
  template <boost::asio::completion_token_for<void(std::error_code, range_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get(std::string key, CompletionToken&& token = CompletionToken()) {
    return async_range(std::move(key), range_options{}, std::forward<CompletionToken>(token));
  }

  /// Writes one key. -> (ec, put_result)
  template <boost::asio::completion_token_for<void(std::error_code, put_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_put(std::string key, std::string value, put_options options,
                 CompletionToken&& token = CompletionToken()) {
    const put_request request{std::move(key), std::move(value), options};
    return start<put_result>("/v3/kv/put", detail::to_json(request), false, &detail::parse_put,
                             std::forward<CompletionToken>(token));
  }
  /// Writes one key with the default options. -> (ec, put_result)
  template <boost::asio::completion_token_for<void(std::error_code, put_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_put(std::string key, std::string value, CompletionToken&& token = CompletionToken()) {
    return async_put(std::move(key), std::move(value), put_options{},
                     std::forward<CompletionToken>(token));
  }

  /// Deletes one key, a range or a prefix. -> (ec, delete_result)
  template <boost::asio::completion_token_for<void(std::error_code, delete_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_delete(std::string key, delete_options options,
                    CompletionToken&& token = CompletionToken()) {
    const delete_request request{std::move(key), std::move(options)};
    return start<delete_result>("/v3/kv/deleterange", detail::to_json(request), false,
                                &detail::parse_delete, std::forward<CompletionToken>(token));
  }

  /// A transaction; `succeeded` tells which branch ran. -> (ec, txn_result)
  template <boost::asio::completion_token_for<void(std::error_code, txn_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_txn(txn_request transaction, CompletionToken&& token = CompletionToken()) {
    bool read_only = true;
    for (const auto* branch : {&transaction.success, &transaction.failure}) {
      for (const auto& op : *branch)
        read_only = read_only && std::holds_alternative<range_request>(op);
    }
    return start<txn_result>("/v3/kv/txn", detail::to_json(transaction), read_only,
                             &detail::parse_txn, std::forward<CompletionToken>(token));
  }

  /// Compacts the key-value history up to `revision`. -> (ec, compact_result)
  template <boost::asio::completion_token_for<void(std::error_code, compact_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_compact(std::int64_t revision, bool physical,
                     CompletionToken&& token = CompletionToken()) {
    detail::json body = detail::json::object();
    body["revision"] = std::to_string(revision);
    if (physical) body["physical"] = true;
    return start<compact_result>("/v3/kv/compaction", std::move(body), false,
                                 &parse_plain<compact_result>,
                                 std::forward<CompletionToken>(token));
  }

  // --------------------------------------------------------------- leases

  /// Grants a lease of `ttl_seconds`. -> (ec, lease_grant_result)
  template <boost::asio::completion_token_for<void(std::error_code, lease_grant_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_lease_grant(std::int64_t ttl_seconds, CompletionToken&& token = CompletionToken()) {
    detail::json body = detail::json::object();
    body["TTL"] = std::to_string(ttl_seconds);
    return start<lease_grant_result>("/v3/lease/grant", std::move(body), false,
                                     &detail::parse_lease_grant,
                                     std::forward<CompletionToken>(token));
  }

  /// Renews a lease once; `errc::lease_not_found` when it has expired. -> (ec,
  /// lease_keepalive_result)
  template <boost::asio::completion_token_for<void(std::error_code, lease_keepalive_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_lease_keepalive(std::int64_t id, CompletionToken&& token = CompletionToken()) {
    detail::json body = detail::json::object();
    body["ID"] = std::to_string(id);
    return start<lease_keepalive_result>("/v3/lease/keepalive", std::move(body), true,
                                         &detail::parse_lease_keepalive,
                                         std::forward<CompletionToken>(token));
  }

  /// Revokes a lease, deleting every key attached to it. -> (ec, lease_revoke_result)
  template <boost::asio::completion_token_for<void(std::error_code, lease_revoke_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_lease_revoke(std::int64_t id, CompletionToken&& token = CompletionToken()) {
    detail::json body = detail::json::object();
    body["ID"] = std::to_string(id);
    return start<lease_revoke_result>("/v3/lease/revoke", std::move(body), true,
                                      &detail::parse_lease_revoke,
                                      std::forward<CompletionToken>(token));
  }

  /// A lease's remaining time (ttl -1 when it does not exist). -> (ec, lease_ttl_result)
  template <boost::asio::completion_token_for<void(std::error_code, lease_ttl_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_lease_time_to_live(std::int64_t id, bool with_keys,
                                CompletionToken&& token = CompletionToken()) {
    detail::json body = detail::json::object();
    body["ID"] = std::to_string(id);
    if (with_keys) body["keys"] = true;
    return start<lease_ttl_result>("/v3/lease/timetolive", std::move(body), true,
                                   &detail::parse_lease_ttl, std::forward<CompletionToken>(token));
  }

  /// The status of the member the client talks to. -> (ec, status_result)
  template <boost::asio::completion_token_for<void(std::error_code, status_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_status(CompletionToken&& token = CompletionToken()) {
    return start<status_result>("/v3/maintenance/status", detail::json::object(), true,
                                &parse_status, std::forward<CompletionToken>(token));
  }

  /// Closes the idle keep-alive connections (calls in flight keep theirs).
  void close_idle() {
    for (auto& v : idle_) v.clear();
  }

  // ------------------------------------------------------ raw gateway call

  /// One POST to the gateway with failover, timeouts and cancellation; the
  /// JSON document of the answer (error documents included) in `out`.
  /// `repeatable`: the request may be sent again after a broken connection.
  boost::asio::awaitable<std::error_code> call(std::string target, const detail::json& body,
                                               bool repeatable, detail::json& out,
                                               std::string& message) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    const auto deadline = std::chrono::steady_clock::now() + opts_.call_timeout;
    const std::size_t n = opts_.endpoints.size();
    const std::string payload = body.dump();
    std::size_t failovers = 0;
    std::string tried;
    std::error_code last = seckill::errc::connection_refused;
    const bool with_token = !opts_.auth.empty() && target != detail::authenticate_target;
    bool logged_in_again = false;  // a call refused for its token is sent once more
    if (with_token && auth_.generation == 0) {
      if (auto lec = co_await login(auth_.generation, message)) co_return lec;
    }
    for (;;) {
      const std::size_t idx = current_;
      const endpoint& ep = opts_.endpoints[idx];
      auto cs = co_await boost::asio::this_coro::cancellation_state;
      if (detail::is_cancelled(cs)) {
        message = "etcd call " + target + " cancelled";
        co_return seckill::errc::operation_aborted;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        message = "etcd call " + target + " timed out after " +
                  std::to_string(opts_.call_timeout.count()) + " ms (tried " + tried + ")";
        co_return seckill::errc::timed_out;
      }
      std::unique_ptr<connection> conn;
      bool reused = false;
      if (!idle_[idx].empty()) {
        conn = std::move(idle_[idx].back());
        idle_[idx].pop_back();
        reused = true;
      } else {
        conn = std::make_unique<connection>(ex_);
      }
      if (!tried.empty()) tried += ", ";
      tried += ep.to_string();

      auto move_on = [&](std::error_code why, std::string what) {
        last = why;
        message = std::move(what);
        if (current_ == idx) current_ = (idx + 1) % n;
        ++failovers;
      };

      if (!reused) {
        std::string why;
        const std::error_code cec = co_await detail::connect_http_stream(
            conn->stream, ep, tls_,
            std::min(deadline, std::chrono::steady_clock::now() + opts_.connect_timeout), why);
        if (cec) {
          const boost::asio::cancellation_state now =
              co_await boost::asio::this_coro::cancellation_state;
          if (detail::is_cancelled(now)) continue;
          move_on(cec, std::move(why));
          if (failovers >= 2 * n) {
            message += " (tried " + tried + ")";
            co_return last;
          }
          continue;
        }
      }

      conn->stream.next_layer().expires_at(deadline);
      http::request<http::string_body> req{http::verb::post, target, 11};
      req.set(http::field::host, ep.uri_host());
      req.set(http::field::content_type, "application/json");
      if (opts_.require_leader) req.set("Grpc-Metadata-hasleader", "true");
      const std::uint64_t sent_generation = auth_.generation;
      if (with_token && !auth_.token.empty()) req.set(http::field::authorization, auth_.token);
      req.keep_alive(true);
      req.body() = payload;
      req.prepare_payload();
      auto [wec, wn] = co_await http::async_write(
          conn->stream, req, boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)wn;
      boost::system::error_code ioec = wec;
      http::response_parser<http::string_body> parser;
      parser.body_limit(opts_.max_response_bytes);
      parser.header_limit(64 * 1024);
      bool got_bytes = false;
      if (!ioec) {
        auto [rec, rn] = co_await http::async_read(
            conn->stream, conn->buffer, parser, boost::asio::as_tuple(boost::asio::use_awaitable));
        ioec = rec;
        got_bytes = rn > 0 || parser.got_some();
      }
      if (ioec) {
        const boost::asio::cancellation_state now =
            co_await boost::asio::this_coro::cancellation_state;
        if (detail::is_cancelled(now) || ioec == boost::asio::error::operation_aborted) {
          message = "etcd call " + target + " to " + ep.to_string() + " cancelled";
          co_return seckill::errc::operation_aborted;
        }
        if (ioec == beast::error::timeout) {
          message = "etcd call " + target + " to " + ep.to_string() + " timed out after " +
                    std::to_string(opts_.call_timeout.count()) + " ms";
          co_return seckill::errc::timed_out;
        }
        if (std::string why; !reused) {
          // a member that refuses the client certificate says so here (TLS 1.3)
          if (const auto tec =
                  detail::tls_exchange_error(conn->stream, ioec, ep, tls_, why, repeatable)) {
            move_on(tec, std::move(why));  // (refused before anything was applied)
            if (failovers >= 2 * n) co_return last;
            continue;
          }
        }
        if (ioec == http::error::body_limit) {
          message = "etcd response to " + target + " is larger than " +
                    std::to_string(opts_.max_response_bytes) + " bytes";
          co_return seckill::errc::message_too_large;
        }
        if (ioec.category() == http::make_error_code(http::error::bad_target).category() &&
            ioec != http::error::end_of_stream && ioec != http::error::partial_message) {
          message = "etcd at " + ep.to_string() +
                    " answered something that is not HTTP: " + ioec.message();
          co_return seckill::errc::protocol_error;
        }
        // A keep-alive connection the member closed while idle: nothing was
        // processed; open a fresh one to the same member.
        if (reused && !got_bytes) continue;
        const std::string what = "connection to etcd at " + ep.to_string() + " broke during " +
                                 target + ": " + ioec.message();
        if (!repeatable) {
          move_on(seckill::errc::not_connected,
                  what + " (not repeated: the write may have been applied)");
          co_return last;
        }
        move_on(seckill::errc::not_connected, what);
        if (failovers >= 2 * n) co_return last;
        continue;
      }
      auto res = parser.release();
      const bool keep = res.keep_alive();
      out = detail::json::parse(res.body(), nullptr, false);
      if (out.is_discarded() || !out.is_object()) {
        std::string excerpt = res.body().substr(0, 80);
        message = "etcd at " + ep.to_string() + " answered " + target + " with HTTP " +
                  std::to_string(res.result_int()) +
                  " and a body that is not an etcd JSON object: '" + excerpt + "'";
        co_return seckill::errc::protocol_error;
      }
      if (res.result_int() != 200 && out.find("error") == out.end() &&
          out.find("code") == out.end()) {
        message = "etcd at " + ep.to_string() + " answered " + target + " with HTTP " +
                  std::to_string(res.result_int()) + ": '" + res.body().substr(0, 80) + "'";
        co_return seckill::errc::protocol_error;
      }
      if (keep && idle_[idx].size() < opts_.max_idle_per_endpoint) {
        idle_[idx].push_back(std::move(conn));
      }
      std::string emsg;
      const std::error_code answered = detail::check_error(out, emsg);
      if (answered && with_token && !logged_in_again && detail::token_refused(emsg)) {
        logged_in_again = true;  // refused before it ran: log in (once for all) and send again
        if (auto lec = co_await login(sent_generation, message)) co_return lec;
        continue;
      }
      if (answered == errc::no_leader) {
        move_on(errc::no_leader, emsg + " (member " + ep.to_string() + ")");
        if (failovers >= 2 * n) co_return last;
        continue;
      }
      co_return std::error_code{};
    }
  }

  /// Logs in (`POST /v3/auth/authenticate`) unless a login newer than
  /// `stale` (the generation whose token was refused) already succeeded;
  /// while one is in flight, waits for it instead of sending another.
  /// Sets `message` on failure: `auth_failed` for a wrong user or password
  /// (never the password), or the call's own error.
  boost::asio::awaitable<std::error_code> login(std::uint64_t stale, std::string& message) {
    for (;;) {
      if (auth_.generation != stale) co_return std::error_code{};  // done by another call
      if (!auth_.refreshing) break;
      auto [wec] =
          co_await auth_.refreshed.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      const boost::asio::cancellation_state cs =
          co_await boost::asio::this_coro::cancellation_state;
      if (detail::is_cancelled(cs)) {
        message = "etcd login of user '" + opts_.auth.username + "' cancelled";
        co_return seckill::errc::operation_aborted;
      }
      (void)wec;
      if (auth_.generation == stale && !auth_.refreshing &&
          auth_.last_error == seckill::errc::auth_failed) {
        message = auth_.last_message;  // a wrong password is not tried again at once
        co_return auth_.last_error;
      }
    }
    auth_.refreshing = true;
    ++auth_.logins;
    detail::json out;
    std::string why;
    std::error_code ec = co_await call(
        std::string(detail::authenticate_target),
        detail::authenticate_body(opts_.auth.username, opts_.auth.password), true, out, why);
    std::string token;
    if (!ec) {
      ec = detail::check_error(out, why);
      if (ec && why.find("authentication is not enabled") != std::string::npos) {
        ec.clear();  // a cluster without auth: calls go without a token
      } else if (!ec) {
        std::string err;
        if (!detail::read_string(out, "token", token, err) || token.empty()) {
          why = "etcd answered the login without a token";
          ec = seckill::errc::protocol_error;
        }
      }
      if (ec == seckill::errc::invalid_argument) ec = seckill::errc::auth_failed;
    }
    if (ec) {
      message = "etcd login of user '" + opts_.auth.username + "' failed: " + why;
    } else {
      auth_.token = std::move(token);
      ++auth_.generation;
    }
    auth_.last_error = ec;
    auth_.last_message = message;
    auth_.refreshing = false;
    auth_.wake();
    co_return ec;
  }

 private:
  struct connection {
    explicit connection(const boost::asio::any_io_executor& ex) : stream(ex) {}
    detail::http_stream stream;  // plain, or TLS for an https:// endpoint
    boost::beast::flat_buffer buffer;
  };

  template <class Result>
  static std::error_code parse_plain(const detail::json& doc, Result& r) {
    if (auto ec = detail::check_error(doc, r.error_message)) return ec;
    std::string err;
    if (!detail::parse_header(doc, r.header, err)) return detail::fail(r, err);
    return {};
  }

  static std::error_code parse_status(const detail::json& doc, status_result& r) {
    if (auto ec = detail::check_error(doc, r.error_message)) return ec;
    std::string err;
    if (!detail::parse_header(doc, r.header, err) ||
        !detail::read_string(doc, "version", r.version, err) ||
        !detail::read_int(doc, "leader", r.leader, err) ||
        !detail::read_int(doc, "dbSize", r.db_size, err)) {
      return detail::fail(r, "status response: " + err);
    }
    return {};
  }

  template <class Result>
  using parse_function = std::error_code (*)(const detail::json&, Result&);

  /// Every call: one gateway POST and its parse, as an operation of the client.
  template <class Result, class CompletionToken>
  auto start(std::string target, detail::json body, bool repeatable, parse_function<Result> parse,
             CompletionToken&& token) {
    return seckill::detail::async_spawn<void(std::error_code, Result)>(
        ex_, call_parsed<Result>(std::move(target), std::move(body), repeatable, parse), token);
  }

  template <class Result>
  boost::asio::awaitable<std::pair<std::error_code, Result>> call_parsed(
      std::string target, detail::json body, bool repeatable, parse_function<Result> parse) {
    co_await detail::honour_any_cancellation();
    Result r;
    detail::json doc;
    std::string message;
    auto ec = co_await call(target, body, repeatable, doc, message);
    if (ec) {
      r.error_message = std::move(message);
      co_return std::pair{ec, std::move(r)};
    }
    ec = parse(doc, r);
    if (ec == seckill::errc::permission_denied && !opts_.auth.empty())
      r.error_message += " (etcd user '" + opts_.auth.username + "' has no role granting " +
                         target + " on this key)";
    co_return std::pair{ec, std::move(r)};
  }

  executor_type ex_;
  client_options opts_;
  detail::tls_setup tls_;
  detail::auth_state auth_;
  std::size_t current_ = 0;
  std::vector<std::vector<std::unique_ptr<connection>>> idle_;
};

}  // namespace seckill::etcd
