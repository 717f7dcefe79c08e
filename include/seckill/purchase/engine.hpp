#pragma once
/// @file
/// @brief `purchase_engine`: admission, an order id, then reserve -> pay ->
///        commit -> persist over a `stock_store`, under a deadline, driven by
///        the purchase state machine.
///
/// ```
/// request -> Gate (errc::read_only) -> Limiter (errc::rate_limited)
///   -> Breaker (errc::circuit_open) -> Ids
///   -> reserve --> payment --> commit --> persist            (succeeded)
///        |            |          \-- refused: compensated   (failed)
///        |            \-- failed: reservation rolled back   (rolled_back)
///        \-- sold out / unknown sku                         (failed)
///        \-- no answer (timeout, lost connection): rolled back (failed)
///   deadline before payment completes: reservation rolled back (timed_out)
/// ```
///
/// Every purchase ends in a state that matches the store. Commit and
/// rollback are idempotent per order id, so when one gets no definite answer
/// (a timeout, a lost connection) the engine retries it with the same id,
/// with a jittered, capped backoff, until the store answers or the hold
/// runs out. The commit starts in the same step that sees the payment
/// succeed, before the deadline and so well within the hold. A paid order
/// the store refuses (its hold passed, or it was rolled back) or never
/// answers for within the hold goes to the compensation path: the
/// Payment's `async_refund` when it has one (for a refusal only: after a
/// commit that never got an answer an earlier attempt may have run, so that
/// case goes to the hook alone), and the `on_compensation` hook; the buyer
/// is told it failed, with `purchase_result::compensated` set. A store that
/// was closed (operation_aborted) ends the retries at once.
///
/// Policies, all passed by reference and shared with whoever else uses them:
/// - `Limiter`: either `bool try_acquire(double tokens)` (`token_bucket`,
///   `unlimited`), asked synchronously, or `async_acquire(sku, user, tokens,
///   token)` completing with `void(std::error_code, bool)`
///   (`redis::gcra_limiter`, one count for every node), awaited inside the
///   purchase's coroutine: a refusal then costs that coroutine, and a
///   limiter that could not decide and refuses fails the purchase with its
///   error instead of `rate_limited`. An asynchronous limiter that also has
///   `refuses_locally(sku, user, tokens)` is asked that first: a refusal it
///   knows at once costs no coroutine.
/// - `Breaker`: `try_acquire()` returning something that tests as bool, and
///   `on_success(d)` / `on_failure(d)`; when it also takes the permit back
///   (`on_success(permit, d)`, as `circuit_breaker` does) the engine hands it
///   back, so an outcome reported after the breaker changed state is ignored
///   (`circuit_breaker`, `no_breaker`). Fed once per admitted purchase with the
///   reserve call's latency, failing when the store errs or misses the deadline.
/// - `Ids`: `std::int64_t next(std::error_code&)` (`snowflake`).
/// - `Payment`: `async_pay(const payment_request&, token)` completing with
///   `void(std::error_code)`; must honour cancellation (the deadline cancels it).
///   Optionally `async_refund(const payment_request&, token)` (same
///   signature), called once for a paid order the store would not commit.
/// - `Orders`: `async_persist(const order_record&, token)` completing with
///   `void(std::error_code)` (`memory_orders` by default).
/// - `Hooks`: metrics and tracing, see `no_purchase_hooks`.
/// - `Gate`: `admits()`, whether this node takes new purchases now (held by
///   value; `open_gate` by default, `etcd::health_gate` follows the node's
///   health grade). One atomic load per purchase; purchases already admitted
///   finish normally when it closes.
///
/// The request and result types are in purchase/request.hpp, the policy
/// concepts and the default policies in purchase/policies.hpp, the hooks in
/// purchase/hooks.hpp; this header includes them all.

#include <seckill/backoff.hpp>
#include <seckill/clock_timer.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/id/snowflake.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/purchase/hooks.hpp>
#include <seckill/purchase/policies.hpp>
#include <seckill/purchase/request.hpp>
#include <seckill/purchase/state_machine.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace seckill {

namespace detail {

// splitmix64's finaliser: a cheap, well-spread hash for retry jitter.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace detail

// clang-format off
/// @brief Runs purchases: admission, an order id, then the state machine over
///        `Store` with a payment step and an order sink, under a deadline.
///
/// `async_purchase(request, token)` completes with
/// `void(std::error_code, purchase_result)`:
///
/// | outcome | error | final_state |
/// |---|---|---|
/// | bought | none | succeeded |
/// | bad request (quantity <= 0, empty sku, deadline > hold, bad user or request id, request id without user) | invalid_argument | idle |
/// | the gate is closed (this node's health grade is read-only or offline) | read_only | idle |
/// | limiter empty | rate_limited | idle |
/// | breaker open | circuit_open | idle |
/// | id source failed | its error (e.g. clock_rollback) | idle |
/// | sold out / unknown sku | sold_out / unknown_sku | failed |
/// | the user's per-user limit reached | purchase_limited | failed |
/// | before the SKU's sale window / from its end (store's clock) | sale_not_started / sale_ended | failed |
/// | retry of a request whose first order was committed | none (its order id; no payment; `replayed`) | succeeded |
/// | retry of a request whose first order is still held | purchase_in_progress (its order id) | idle |
/// | retry of a request whose first order was rolled back or expired | order_rolled_back (its order id; `replayed`) | failed |
/// | store error on reserve | the store's error | failed |
/// | payment failed | the payment's error | rolled_back |
/// | deadline before payment completed | timed_out | timed_out |
/// | cancelled by the caller before payment completed | operation_aborted | timed_out |
/// | reserve without a definite answer (timeout, lost connection) | the store's error | failed |
/// | commit refused after payment, or no answer within the hold | the store's error | failed, `compensated` |
/// | sink failed | the sink's error | failed |
///
/// A purchase with a `request_id` is idempotent per (user, request_id): the
/// store binds the pair to the first order that took units, and a retry
/// (same pair, any node, after a crash) takes nothing, pays nothing and
/// commits nothing; it answers with the bound order's id and what became of
/// it. A retry while that order is still held answers `purchase_in_progress`
/// instead of waiting for it: the first attempt may run on another node or
/// have died with it, and only its hold bounds how long it can stay
/// undecided; retrying after a while tells the outcome. A retry does not run
/// the state machine (no `on_transition`), and does not call the Orders sink
/// again: the first attempt did, and the store's recorded orders
/// (`async_list_orders`) are the record that a crash cannot split from the
/// stock. A refused attempt (sold out, limited, outside the sale window)
/// binds nothing. The store answers a replay before it judges the window: a
/// retry after the end of a request bought inside it still answers with its
/// order.
///
/// On failed (no answer to the reserve), rolled_back and timed_out the
/// reservation is given back, retried until the store answers or the hold
/// passes (then the store's reaper gives it back); each failed attempt is
/// reported to `on_store_error`. Once the payment is taken the deadline no
/// longer applies: commit and persist run to completion, uncancellable.
///
/// Thread-safety: `async_purchase` may be called from any thread at once if
/// the policies allow it (the library's do; Payment, Orders and Hooks are
/// yours). The engine, its policies and the store must outlive every
/// purchase. Cost: admission is the gate's load, the limiter and breaker calls
/// plus one clock read; an admitted purchase is one coroutine, one deadline race (an Asio
/// parallel group) and the store, payment and sink calls. See the
/// benchmark in bench/README.md for what allocates.
// clang-format on
template <stock_store Store, admission_limiter Limiter = token_bucket<>,
          purchase_breaker Breaker = circuit_breaker<>, order_id_source Ids = snowflake<>,
          payment_policy Payment = no_payment, orders_sink Orders = memory_orders,
          class Hooks = no_purchase_hooks, class Clock = std::chrono::steady_clock,
          purchase_gate Gate = open_gate>
class purchase_engine {
 public:
  using executor_type = typename Store::executor_type;
  using span_type = typename detail::span_of<Hooks>::type;
  using context_type = purchase_context<span_type>;

  /// Throws `seckill::error` (`errc::invalid_argument`) when the deadline is
  /// not positive or the hold does not exceed it.
  purchase_engine(Store& store, Limiter& limiter, Breaker& breaker, Ids& ids, Payment& payment,
                  Orders& orders, purchase_options options = {}, Hooks hooks = {}, Clock clock = {},
                  Gate gate = {})
      : store_(store),
        limiter_(limiter),
        breaker_(breaker),
        ids_(ids),
        payment_(payment),
        orders_(orders),
        options_(options),
        hooks_(std::move(hooks)),
        clock_(std::move(clock)),
        gate_(std::move(gate)) {
    if (options_.deadline <= std::chrono::milliseconds::zero())
      throw error(
          errc::invalid_argument,
          "purchase deadline " + std::to_string(options_.deadline.count()) + " ms is not positive");
    if (options_.hold <= options_.deadline)
      throw error(errc::invalid_argument, "reservation hold " +
                                              std::to_string(options_.hold.count()) +
                                              " ms must exceed the deadline " +
                                              std::to_string(options_.deadline.count()) + " ms");
    if (options_.hold > max_hold)
      throw error(errc::invalid_argument, "reservation hold " +
                                              std::to_string(options_.hold.count()) +
                                              " ms exceeds the longest a store keeps, " +
                                              std::to_string(max_hold.count()) + " ms");
    if (options_.settle_retry_initial <= std::chrono::milliseconds::zero() ||
        options_.settle_retry_max < options_.settle_retry_initial ||
        options_.settle_retry_max > max_hold)
      throw error(errc::invalid_argument,
                  "settle retry pauses " + std::to_string(options_.settle_retry_initial.count()) +
                      " ms to " + std::to_string(options_.settle_retry_max.count()) +
                      " ms: want 0 < initial <= max <= " + std::to_string(max_hold.count()) +
                      " ms");
  }

  purchase_engine(const purchase_engine&) = delete;
  purchase_engine& operator=(const purchase_engine&) = delete;

  executor_type get_executor() const noexcept { return store_.get_executor(); }
  const purchase_options& options() const noexcept { return options_; }
  Hooks& hooks() noexcept { return hooks_; }
  const Gate& gate() const noexcept { return gate_; }
  Store& store() noexcept { return store_; }

  /// Runs one purchase on the engine's executor (the store's).
  template <boost::asio::completion_token_for<void(std::error_code, purchase_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_purchase(const purchase_request& request,
                      CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code, purchase_result)>(
        initiation{this}, token, request, boost::asio::any_io_executor(store_.get_executor()));
  }

  /// Runs one purchase on `ex`: its coroutine, its deadline timer and the
  /// store's completions (for stores that complete on the caller's executor,
  /// as `memory_store` does) stay there. With one `io_context` per thread,
  /// each thread passing its own, purchases never cross threads and share
  /// only the store's state, the policies and the id source (shard per core;
  /// see docs/purchase.md, "Scaling across cores").
  template <boost::asio::completion_token_for<void(std::error_code, purchase_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_purchase(boost::asio::any_io_executor ex, const purchase_request& request,
                      CompletionToken&& token = CompletionToken()) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code, purchase_result)>(
        initiation{this}, token, request, std::move(ex));
  }

 private:
  using time_point = typename Clock::time_point;
  using awaitable_pair = boost::asio::awaitable<std::pair<std::error_code, purchase_result>>;
  static constexpr auto tuple_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);

  // Steps that finish what was started (give back, commit what was paid for)
  // run with no cancellation slot: neither the deadline nor the caller stops them.
  static auto uncancellable() {
    return boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(),
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  // The store did its job: success, or a refusal that the same request would
  // get again. Anything else (timed out, unavailable, protocol) may have run.
  static bool definite(const std::error_code& ec) noexcept {
    return !ec || ec == condition::refused;
  }

  static std::chrono::nanoseconds since(time_point t0, time_point t1) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0);
  }

  struct initiation {
    purchase_engine* self;
    template <class Handler>
    void operator()(Handler&& handler, const purchase_request& request,
                    boost::asio::any_io_executor ex) const {
      self->start(std::forward<Handler>(handler), request, std::move(ex));
    }
  };

  template <class Handler>
  void start(Handler handler, purchase_request request, boost::asio::any_io_executor ex) {
    const auto t0 = clock_.now();
    purchase_result result;
    if constexpr (!purchase_limiter<Limiter>) {
      // An asynchronous limiter: what needs no answer from it is checked
      // here, the rest in the purchase's coroutine.
      std::error_code ec = check_request(request);
      if constexpr (detail::refuses_locally<Limiter>) {
        if (!ec && limiter_.refuses_locally(request.sku, request.user, 1.0))
          ec = errc::rate_limited;
      }
      if (!ec) {
        boost::asio::co_spawn(ex, admit_then_run(request, t0),
                              detail::spawned_completion<Handler>{std::move(handler)});
        return;
      }
      result.timings.admission = result.timings.total = since(t0, clock_.now());
      if constexpr (detail::has_on_rejected<Hooks>) hooks_.on_rejected(request, ec, result);
      boost::asio::post(ex, boost::asio::append(std::move(handler), ec, result));
    } else {
      permit_type permit{};
      std::error_code ec = admit(request, result, permit);
      if (ec) {
        result.timings.admission = result.timings.total = since(t0, clock_.now());
        if constexpr (detail::has_on_rejected<Hooks>) hooks_.on_rejected(request, ec, result);
        boost::asio::post(ex, boost::asio::append(std::move(handler), ec, result));
        return;
      }
      result.timings.admission = since(t0, clock_.now());
      // The purchase runs on `ex`; its completion goes to the handler's
      // associated executor (a strand, or use_future's own).
      boost::asio::co_spawn(ex, run(request, result, t0, permit),
                            detail::spawned_completion<Handler>{std::move(handler)});
    }
  }

  using permit_type = detail::permit_t<Breaker>;

  // Reports one admitted purchase's store outcome to the breaker.
  void feed_breaker(const permit_type& permit, bool failed, std::chrono::nanoseconds elapsed) {
    if constexpr (detail::takes_permit_back<Breaker>) {
      if (failed)
        breaker_.on_failure(permit, elapsed);
      else
        breaker_.on_success(permit, elapsed);
    } else {
      (void)permit;
      if (failed)
        breaker_.on_failure(elapsed);
      else
        breaker_.on_success(elapsed);
    }
  }

  // Admission before the limiter: the request's fields, then the gate.
  std::error_code check_request(const purchase_request& r) {
    if (r.sku.empty() || r.quantity <= 0 || r.quantity > max_units ||
        r.deadline < std::chrono::milliseconds::zero() || r.deadline >= options_.hold ||
        (!r.user.empty() && !valid_buyer_key(r.user)) ||
        (!r.request_id.empty() && (r.user.empty() || !valid_buyer_key(r.request_id))))
      return errc::invalid_argument;
    // a read-only node refuses before it spends a token, a permit or an id
    if (!static_cast<bool>(gate_.admits())) return errc::read_only;
    return {};
  }

  std::error_code admit(const purchase_request& r, purchase_result& result, permit_type& permit) {
    if (std::error_code ec = check_request(r)) return ec;
    if (!limiter_.try_acquire(1.0)) return errc::rate_limited;
    return admit_after_limiter(result, permit);
  }

  // Admission after the limiter admitted: the breaker's permit, then an id.
  std::error_code admit_after_limiter(purchase_result& result, permit_type& permit) {
    permit = breaker_.try_acquire();
    if (!static_cast<bool>(permit)) return errc::circuit_open;
    std::error_code ec;
    const std::int64_t id = ids_.next(ec);
    if (ec) {
      feed_breaker(
          permit, false,
          std::chrono::nanoseconds::zero());  // not the store's doing: the permit goes back
      return ec;
    }
    result.order_id = id;
    return {};
  }

  // The purchase with an asynchronous limiter: its answer, then the rest of
  // the admission, then the purchase itself (`run`).
  awaitable_pair admit_then_run(purchase_request req, time_point t0) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    purchase_result result;
    permit_type permit{};
    auto [limiter_ec, admitted] = co_await limiter_.async_acquire(
        std::string_view(req.sku), std::string_view(req.user), 1.0, tuple_awaitable);
    std::error_code ec;
    if (!admitted)
      ec = limiter_ec ? limiter_ec : std::error_code(errc::rate_limited);
    else
      ec = admit_after_limiter(result, permit);
    if (ec) {
      result.timings.admission = result.timings.total = since(t0, clock_.now());
      if constexpr (detail::has_on_rejected<Hooks>) hooks_.on_rejected(req, ec, result);
      co_return std::pair{ec, result};
    }
    result.timings.admission = since(t0, clock_.now());
    co_return co_await run(std::move(req), result, t0, permit);
  }

  // What the cancellable phase (reserve, payment, and a commit it started) leaves behind.
  struct phase {
    std::error_code ec;
    permit_type permit{};
    bool reserve_sent = false;
    bool reserve_uncertain = false;  // sent, and the store gave no definite answer
    bool breaker_fed = false;
    time_point reserve_start{};
    time_point deadline_at{};
    // Set when the reserve replayed an earlier attempt of the request: how the
    // purchase ends, with no transition of this machine and nothing to give back.
    std::optional<purchase_state> replayed_end;
    std::optional<purchase_step<purchase_state::idle>> idle;
    std::optional<purchase_step<purchase_state::prepared>> prepared;
  };

  template <class Machine>
  boost::asio::awaitable<void> reserve_and_pay(const purchase_request& req, Machine& m, phase& ph,
                                               context_type& ctx, purchase_result& result) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    auto idle = *ph.idle;
    const auto t0 = clock_.now();
    ph.reserve_start = t0;
    ph.reserve_sent = true;
    reserve_request to_reserve;
    to_reserve.order_id = result.order_id;
    to_reserve.quantity = req.quantity;
    to_reserve.hold = options_.hold;
    to_reserve.user = req.user;
    to_reserve.request_id = req.request_id;
    auto [ec, r] = co_await store_.async_reserve(req.sku, to_reserve, tuple_awaitable);
    result.timings.reserve = since(t0, clock_.now());
    const auto cancel_state = co_await boost::asio::this_coro::cancellation_state;
    const bool cancelled = cancel_state.cancelled() != boost::asio::cancellation_type::none;
    if (!(cancelled && ec)) {  // an answer (not an abort): the store's health, reported once
      feed_breaker(ph.permit, !definite(ec), result.timings.reserve);
      ph.breaker_fed = true;
    }
    if (cancelled) co_return;  // the deadline or the caller: the outer flow decides
    if (ec) {
      if constexpr (detail::has_on_store_error<Hooks, context_type>)
        hooks_.on_store_error(ctx, "reserve", ec);
      ph.ec = ec;
      ph.reserve_uncertain = !definite(ec);  // it may have run: the outer flow gives it back
      m.fire(idle, events::reserve_failed);
      co_return;
    }
    if (r.status != reserve_status::reserved) {
      switch (r.status) {
        case reserve_status::sold_out:
          ph.ec = errc::sold_out;
          break;
        case reserve_status::limited:
          ph.ec = errc::purchase_limited;
          break;
        case reserve_status::not_started:
          ph.ec = errc::sale_not_started;
          break;
        case reserve_status::ended:
          ph.ec = errc::sale_ended;
          break;
        default:
          ph.ec = errc::unknown_sku;
          break;
      }
      m.fire(idle, events::reserve_failed);
      co_return;
    }
    if (r.replayed) {  // an earlier attempt of this request took the units: say what became of it
      result.order_id = r.order_id;
      result.replayed = true;
      switch (r.state) {
        case order_state::committed:
          ph.replayed_end = purchase_state::succeeded;
          break;
        case order_state::held:
          ph.ec = errc::purchase_in_progress;
          ph.replayed_end = purchase_state::idle;
          break;
        default:  // rolled back, or its hold passed
          ph.ec = errc::order_rolled_back;
          ph.replayed_end = purchase_state::failed;
          break;
      }
      co_return;
    }
    auto prepared = m.fire(idle, events::reserve_ok);
    ph.prepared = prepared;
    // An answer that comes after the deadline (a busy process runs completions
    // late, whichever was due first) must not start a payment that would
    // finish too late to commit: the outer flow times it out.
    if (clock_.now() >= ph.deadline_at) co_return;
    std::string_view traceparent = req.traceparent;
    if constexpr (detail::has_outgoing_traceparent<Hooks, context_type>) {
      if (const std::string_view own = hooks_.outgoing_traceparent(ctx); !own.empty())
        traceparent = own;
    }
    const payment_request pay_request{result.order_id, req.sku, req.quantity, traceparent};
    const auto t1 = clock_.now();
    auto [pay_ec] = co_await payment_.async_pay(pay_request, tuple_awaitable);
    result.timings.payment = since(t1, clock_.now());
    if (cancel_state.cancelled() != boost::asio::cancellation_type::none && pay_ec)
      co_return;  // cancelled while paying: the outer flow times it out
    if (pay_ec) {
      ph.ec = pay_ec;
      m.fire(prepared, events::payment_failed);
      co_return;
    }
    // Paid: the commit starts in this very step, before the deadline and so
    // within the hold, and nothing cancels it from here on.
    auto committed = m.fire(prepared, events::payment_ok);
    co_await finish_paid(req, pay_request, m, committed, ph, ctx, result);
  }

  // Commits a paid order (retried until the store answers) and persists it;
  // a commit the store refuses, or never answers within the hold, is compensated.
  template <class Machine>
  boost::asio::awaitable<void> finish_paid(const purchase_request& req, const payment_request& paid,
                                           Machine& m,
                                           purchase_step<purchase_state::committed> committed,
                                           phase& ph, context_type& ctx, purchase_result& result) {
    const auto c0 = clock_.now();
    const auto until = c0 + std::chrono::duration_cast<typename Clock::duration>(options_.hold);
    const std::error_code cec = co_await settle(true, paid.sku, paid.order_id, until, ctx);
    result.timings.commit = since(c0, clock_.now());
    if (cec) {
      if constexpr (detail::has_on_store_error<Hooks, context_type>) {
        if (definite(cec)) hooks_.on_store_error(ctx, "commit", cec);  // a refusal, reported once
      }
      ph.ec = cec;
      m.fire(committed, events::persist_failed);
      co_await compensate(paid, cec, ctx, result);
      co_return;
    }
    const auto p0 = clock_.now();
    const order_record record{paid.order_id, paid.sku, paid.quantity, req.user, req.request_id};
    auto [pec] = co_await orders_.async_persist(record, uncancellable());
    result.timings.persist = since(p0, clock_.now());
    if (pec) {
      ph.ec = pec;
      m.fire(committed, events::persist_failed);
    } else {
      m.fire(committed, events::persist_ok);
    }
  }

  // Hands a paid, uncommitted order to the compensation path. The refund
  // runs only when the store refused the commit: after a commit that never
  // got an answer an earlier attempt may have run, so that case goes to the
  // hook alone, for a refund that checks the order first.
  boost::asio::awaitable<void> compensate(const payment_request& paid, std::error_code why,
                                          context_type& ctx, purchase_result& result) {
    result.compensated = true;
    std::optional<std::error_code> refund_ec;
    if constexpr (detail::has_async_refund<Payment>) {
      if (definite(why)) {
        auto [rec] = co_await payment_.async_refund(paid, uncancellable());
        refund_ec = rec;
      }
    }
    if constexpr (detail::has_on_compensation<Hooks, context_type>)
      hooks_.on_compensation(ctx, why, refund_ec);
    (void)why;
    (void)ctx;
  }

  // Commits or rolls back `order_id`, retrying with the same id while the
  // store gives no definite answer and `until` has not passed; every failed
  // attempt goes to on_store_error. Completes with the last answer or error.
  boost::asio::awaitable<std::error_code> settle(bool commit, std::string_view sku,
                                                 std::int64_t order_id, time_point until,
                                                 context_type& ctx) {
    const std::string_view operation = commit ? "commit" : "rollback";
    for (unsigned attempt = 0;; ++attempt) {
      std::error_code ec;
      if (commit) {
        auto [e, settled] = co_await store_.async_commit(sku, order_id, uncancellable());
        ec = e;
        (void)settled;
      } else {
        auto [e, settled] = co_await store_.async_rollback(sku, order_id, uncancellable());
        ec = e;
        (void)settled;
      }
      if (definite(ec)) co_return ec;
      if constexpr (detail::has_on_store_error<Hooks, context_type>)
        hooks_.on_store_error(ctx, operation, ec);
      // The engine's store calls carry no cancellation slot: an abort means
      // the store was closed, and no attempt can get through.
      if (ec == condition::aborted) co_return ec;
      const auto now = clock_.now();
      if (now >= until) co_return ec;
      // jitter drawn from the order id and the attempt, so retries of many orders spread out
      const double jitter =
          static_cast<double>(detail::mix64(static_cast<std::uint64_t>(order_id) ^ attempt) >> 11) *
          0x1.0p-53;
      const auto wait = std::min<typename Clock::duration>(
          backoff_delay(attempt, options_.settle_retry_initial, options_.settle_retry_max, jitter),
          until - now);
      clock_timer<Clock> timer(co_await boost::asio::this_coro::executor, clock_);
      timer.expires_after(wait);
      auto [timer_ec] = co_await timer.async_wait(uncancellable());
      (void)timer_ec;
    }
  }

  awaitable_pair run(purchase_request req, purchase_result result, time_point t0,
                     permit_type permit) {
    namespace asio = boost::asio;
    using namespace boost::asio::experimental::awaitable_operators;
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::this_coro::reset_cancellation_state(asio::enable_terminal_cancellation());

    context_type ctx{req, result.order_id};
    if constexpr (detail::has_on_start<Hooks, context_type>) hooks_.on_start(ctx);
    using machine_hooks =
        std::conditional_t<detail::has_on_transition<Hooks, context_type>,
                           detail::transition_forwarder<Hooks, context_type>, no_state_hooks>;
    purchase_machine<machine_hooks> m = [&] {
      if constexpr (detail::has_on_transition<Hooks, context_type>)
        return purchase_machine<machine_hooks>(machine_hooks{&hooks_, &ctx});
      else
        return purchase_machine<machine_hooks>();
    }();

    phase ph;
    ph.permit = permit;
    ph.idle = m.start();
    const auto budget = req.deadline.count() > 0 ? req.deadline : options_.deadline;
    ph.deadline_at = t0 + std::chrono::duration_cast<typename Clock::duration>(budget);
    clock_timer<Clock> timer(co_await asio::this_coro::executor, clock_);
    timer.expires_at(ph.deadline_at);
    co_await (reserve_and_pay(req, m, ph, ctx, result) || timer.async_wait(tuple_awaitable));
    const auto cancel_state = co_await asio::this_coro::cancellation_state;
    const bool caller_cancelled = cancel_state.cancelled() != asio::cancellation_type::none;

    // From here on nothing is cancellable: give back what may be held.
    std::error_code ec = ph.ec;
    const auto state = ph.replayed_end ? *ph.replayed_end : m.state();
    const auto hold_ends =
        ph.reserve_start + std::chrono::duration_cast<typename Clock::duration>(options_.hold);
    if (ph.replayed_end) {
      // the request's first attempt holds or settled the units: nothing of this one to give back
    } else if (state == purchase_state::idle || state == purchase_state::prepared) {
      ec = caller_cancelled ? std::error_code(errc::operation_aborted)
                            : std::error_code(errc::timed_out);
      if (!ph.breaker_fed)  // the store did not answer in time (a caller's cancel is not its fault)
        feed_breaker(ph.permit, !caller_cancelled, since(t0, clock_.now()));
      if (state == purchase_state::idle) {
        if (ph.reserve_sent) co_await give_back(req.sku, result.order_id, hold_ends, ctx, true);
        m.fire(*ph.idle, events::deadline);
      } else {
        co_await give_back(req.sku, result.order_id, hold_ends, ctx, false);
        m.fire(*ph.prepared, events::deadline);
      }
    } else if (state == purchase_state::rolled_back) {
      co_await give_back(req.sku, result.order_id, hold_ends, ctx, false);
    } else if (state == purchase_state::failed && ph.reserve_uncertain) {
      co_await give_back(req.sku, result.order_id, hold_ends, ctx, true);
    }
    result.final_state = ph.replayed_end ? *ph.replayed_end : m.state();
    result.timings.total = since(t0, clock_.now());
    if constexpr (detail::has_on_complete<Hooks, context_type>) hooks_.on_complete(ctx, ec, result);
    co_return std::pair{ec, result};
  }

  // Gives the units of `order_id` back, retried until the store answers or
  // the hold ends (then the store's reaper gives them back). `maybe_unknown`:
  // the reserve may never have run, so unknown_order is the expected answer.
  boost::asio::awaitable<void> give_back(std::string_view sku, std::int64_t order_id,
                                         time_point until, context_type& ctx, bool maybe_unknown) {
    const std::error_code ec = co_await settle(false, sku, order_id, until, ctx);
    if (ec && definite(ec) && !(maybe_unknown && ec == errc::unknown_order)) {
      if constexpr (detail::has_on_store_error<Hooks, context_type>)
        hooks_.on_store_error(ctx, "rollback", ec);
    }
    (void)ctx;
  }

  Store& store_;
  Limiter& limiter_;
  Breaker& breaker_;
  Ids& ids_;
  Payment& payment_;
  Orders& orders_;
  purchase_options options_;
  [[no_unique_address]] Hooks hooks_;
  Clock clock_;
  [[no_unique_address]] Gate gate_;
};

/// Deduces the policies from the constructor's arguments:
/// `purchase_engine engine{store, limiter, breaker, ids, payment, orders};`
/// (plus, optionally, the options, the hooks, the clock and the gate).
template <class Store, class Limiter, class Breaker, class Ids, class Payment, class Orders>
purchase_engine(Store&, Limiter&, Breaker&, Ids&, Payment&, Orders&)
    -> purchase_engine<Store, Limiter, Breaker, Ids, Payment, Orders>;
template <class Store, class Limiter, class Breaker, class Ids, class Payment, class Orders>
purchase_engine(Store&, Limiter&, Breaker&, Ids&, Payment&, Orders&, purchase_options)
    -> purchase_engine<Store, Limiter, Breaker, Ids, Payment, Orders>;
template <class Store, class Limiter, class Breaker, class Ids, class Payment, class Orders,
          class Hooks>
purchase_engine(Store&, Limiter&, Breaker&, Ids&, Payment&, Orders&, purchase_options, Hooks)
    -> purchase_engine<Store, Limiter, Breaker, Ids, Payment, Orders, Hooks>;
template <class Store, class Limiter, class Breaker, class Ids, class Payment, class Orders,
          class Hooks, class Clock>
purchase_engine(Store&, Limiter&, Breaker&, Ids&, Payment&, Orders&, purchase_options, Hooks, Clock)
    -> purchase_engine<Store, Limiter, Breaker, Ids, Payment, Orders, Hooks, Clock>;
template <class Store, class Limiter, class Breaker, class Ids, class Payment, class Orders,
          class Hooks, class Clock, class Gate>
purchase_engine(Store&, Limiter&, Breaker&, Ids&, Payment&, Orders&, purchase_options, Hooks, Clock,
                Gate)
    -> purchase_engine<Store, Limiter, Breaker, Ids, Payment, Orders, Hooks, Clock, Gate>;

}  // namespace seckill
