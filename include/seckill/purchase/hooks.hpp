#pragma once
/// @file
/// @brief How metrics and tracing attach to the purchase engine: the hooks
///        a `Hooks` policy may define (see `no_purchase_hooks`), the
///        per-purchase `purchase_context` they see, and the detection the
///        engine compiles them in with. The standard library only.

#include <seckill/purchase/request.hpp>
#include <seckill/purchase/state_machine.hpp>

#include <concepts>
#include <optional>
#include <string_view>
#include <system_error>

namespace seckill {

/// @brief The per-purchase span of hooks that define none. Empty.
struct no_span {};

/// @brief What hooks see of a purchase in flight. `Span` is the hooks' own
///        per-purchase state (`Hooks::span` when defined), made at `on_start`.
template <class Span = no_span>
struct purchase_context {
  const purchase_request& request;
  std::int64_t order_id = 0;
  Span span{};
};

/// @brief Hooks that observe nothing: the default, compiled away.
///
/// A Hooks type defines any of these (each is optional; every call may come
/// from any thread at once, so they must be thread-safe), plus optionally a
/// default-constructible `span` type kept per purchase in `ctx.span`:
///
/// ```
/// void on_rejected(const purchase_request&, std::error_code, const purchase_result&);
///     // refused before the state machine started: invalid_argument, rate_limited,
///     // circuit_open, or the id source's error
/// void on_start(purchase_context<span>& ctx);          // admitted; ctx.order_id set
/// void on_transition(purchase_context<span>& ctx, purchase_state from,
///                    purchase_event event, purchase_state to);
/// void on_store_error(purchase_context<span>& ctx, std::string_view operation,
///                     std::error_code);                // "reserve", "commit", "rollback"
/// void on_compensation(purchase_context<span>& ctx, std::error_code why,
///                      std::optional<std::error_code> refund);
///     // paid but not committed: `why` is the commit's last error, `refund` the
///     // Payment's async_refund answer (nullopt when the policy has none, or when the
///     // commit never got an answer: an earlier attempt may have run; check before refunding)
/// void on_complete(purchase_context<span>& ctx, std::error_code,
///                  const purchase_result&);            // after the last transition, with timings
/// std::string_view outgoing_traceparent(purchase_context<span>& ctx);
///     // the traceparent the payment call carries (valid while ctx lives), so
///     // the payment's span is a child of the purchase's; empty: the request's own
/// ```
struct no_purchase_hooks {};

namespace detail {

template <class H>
struct span_of {
  using type = seckill::no_span;
};
template <class H>
requires requires { typename H::span; }
struct span_of<H> {
  using type = typename H::span;
};

template <class H, class Ctx>
concept has_on_start = requires(H& h, Ctx& c) {
  h.on_start(c);
};
template <class H, class Ctx>
concept has_on_transition = requires(H& h, Ctx& c, purchase_state s, purchase_event e) {
  h.on_transition(c, s, e, s);
};
template <class H, class Ctx>
concept has_on_store_error = requires(H& h, Ctx& c, std::error_code ec) {
  h.on_store_error(c, std::string_view{}, ec);
};
template <class H, class Ctx>
concept has_on_complete = requires(H& h, Ctx& c, std::error_code ec, const purchase_result& r) {
  h.on_complete(c, ec, r);
};
template <class H, class Ctx>
concept has_outgoing_traceparent = requires(H& h, Ctx& c) {
  { h.outgoing_traceparent(c) } -> std::convertible_to<std::string_view>;
};
template <class H, class Ctx>
concept has_on_compensation = requires(H& h, Ctx& c, std::error_code ec,
                                       std::optional<std::error_code> r) {
  h.on_compensation(c, ec, r);
};
template <class H>
concept has_on_rejected = requires(H& h, const purchase_request& q, std::error_code ec,
                                   const purchase_result& r) {
  h.on_rejected(q, ec, r);
};

// Feeds the engine's on_transition hook from the machine's exit/entry hooks.
template <class Hooks, class Ctx>
struct transition_forwarder {
  Hooks* hooks;
  Ctx* ctx;
  purchase_state from = purchase_state::idle;
  void on_exit(purchase_state s, purchase_event) noexcept { from = s; }
  void on_entry(purchase_state to, purchase_event e) { hooks->on_transition(*ctx, from, e, to); }
};

}  // namespace detail

}  // namespace seckill
