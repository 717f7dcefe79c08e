#pragma once
/// @file
/// @brief The purchase state machine: seven states, seven events and one
///        transition table, checked at compile time where the state and the
///        event are known statically and at run time where they are not.
///
/// The table below is the whole machine. Each row reads
/// `from + event = to`; any (state, event) pair without a row is invalid:
/// a compile error through `purchase_machine::fire(step<From>, event)`, and
/// `errc::invalid_transition` through `purchase_machine::process(event)`.
/// Terminal states (succeeded, rolled_back, timed_out, failed) have no rows,
/// so they stay terminal.
///
/// The deadline is accepted while the purchase waits on the outside world
/// (reserving stock, taking payment). Once the payment is taken (committed)
/// the order is finished whatever the clock says: rolling it back then would
/// leave a paid order without its units.

#include <seckill/error.hpp>

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace seckill {

/// @brief Where a purchase is in its lifecycle.
enum class purchase_state : std::uint8_t {
  idle,         ///< admitted, nothing reserved yet
  prepared,     ///< units reserved in the store, payment pending
  committed,    ///< payment taken, the order being made final
  succeeded,    ///< terminal: units sold and the order persisted
  rolled_back,  ///< terminal: payment failed, the reservation given back
  timed_out,    ///< terminal: the deadline passed before payment; reservation given back
  failed,  ///< terminal: nothing reserved (sold out, store error) or the order could not be made
           ///< final
};

/// @brief What happened to a purchase.
enum class purchase_event : std::uint8_t {
  reserve_ok,
  reserve_failed,
  payment_ok,
  payment_failed,
  persist_ok,
  persist_failed,
  deadline,
};

inline constexpr std::size_t purchase_state_count = 7;
inline constexpr std::size_t purchase_event_count = 7;

/// @brief One row of the transition table.
struct purchase_transition {
  purchase_state from;
  purchase_event event;
  purchase_state to;
};

namespace detail {
using S = purchase_state;
using E = purchase_event;
}  // namespace detail

/// @brief The purchase transition table: every legal edge, and only those.
inline constexpr std::array<purchase_transition, 8> purchase_transitions{{
    //  from                   + event                       = to
    {detail::S::idle, detail::E::reserve_ok, detail::S::prepared},
    {detail::S::idle, detail::E::reserve_failed, detail::S::failed},
    {detail::S::idle, detail::E::deadline, detail::S::timed_out},
    {detail::S::prepared, detail::E::payment_ok, detail::S::committed},
    {detail::S::prepared, detail::E::payment_failed, detail::S::rolled_back},
    {detail::S::prepared, detail::E::deadline, detail::S::timed_out},
    {detail::S::committed, detail::E::persist_ok, detail::S::succeeded},
    {detail::S::committed, detail::E::persist_failed, detail::S::failed},
}};

/// The state `event` leads to from `from`, or nothing when the table has no such edge.
constexpr std::optional<purchase_state> next_state(purchase_state from,
                                                   purchase_event event) noexcept {
  for (const auto& t : purchase_transitions)
    if (t.from == from && t.event == event) return t.to;
  return std::nullopt;
}

/// True for the states no event leaves.
constexpr bool is_terminal(purchase_state s) noexcept {
  for (const auto& t : purchase_transitions)
    if (t.from == s) return false;
  return true;
}

constexpr std::string_view to_string(purchase_state s) noexcept {
  switch (s) {
    case purchase_state::idle:
      return "idle";
    case purchase_state::prepared:
      return "prepared";
    case purchase_state::committed:
      return "committed";
    case purchase_state::succeeded:
      return "succeeded";
    case purchase_state::rolled_back:
      return "rolled_back";
    case purchase_state::timed_out:
      return "timed_out";
    case purchase_state::failed:
      return "failed";
  }
  return "?";
}

constexpr std::string_view to_string(purchase_event e) noexcept {
  switch (e) {
    case purchase_event::reserve_ok:
      return "reserve_ok";
    case purchase_event::reserve_failed:
      return "reserve_failed";
    case purchase_event::payment_ok:
      return "payment_ok";
    case purchase_event::payment_failed:
      return "payment_failed";
    case purchase_event::persist_ok:
      return "persist_ok";
    case purchase_event::persist_failed:
      return "persist_failed";
    case purchase_event::deadline:
      return "deadline";
  }
  return "?";
}

/// @brief An event known at compile time (`events::reserve_ok`, ...). Empty.
template <purchase_event E>
struct event_c {
  static constexpr purchase_event value = E;
};

/// @brief The events as values for `purchase_machine::fire`.
namespace events {
inline constexpr event_c<purchase_event::reserve_ok> reserve_ok{};
inline constexpr event_c<purchase_event::reserve_failed> reserve_failed{};
inline constexpr event_c<purchase_event::payment_ok> payment_ok{};
inline constexpr event_c<purchase_event::payment_failed> payment_failed{};
inline constexpr event_c<purchase_event::persist_ok> persist_ok{};
inline constexpr event_c<purchase_event::persist_failed> persist_failed{};
inline constexpr event_c<purchase_event::deadline> deadline{};
}  // namespace events

/// True when the table has an edge `From + E`.
template <purchase_state From, purchase_event E>
concept valid_transition = next_state(From, E)
.has_value();

/// @brief Proof that a machine is in state `S`: returned by `purchase_machine::start`
///        and `fire`, consumed by `fire`. Empty; only the machine makes them.
template <purchase_state S>
class purchase_step {
 public:
  static constexpr purchase_state state = S;

 private:
  template <class>
  friend class purchase_machine;
  constexpr purchase_step() noexcept = default;
};

/// @brief Hooks that do nothing: the default, and free.
struct no_state_hooks {};

namespace detail {
template <class H>
concept has_on_exit = requires(H& h, purchase_state s, purchase_event e) {
  h.on_exit(s, e);
};
template <class H>
concept has_on_entry = requires(H& h, purchase_state s, purchase_event e) {
  h.on_entry(s, e);
};
}  // namespace detail

/// @brief One purchase's state, moved only along `purchase_transitions`.
///
/// `Hooks` may define `on_exit(purchase_state left, purchase_event)` and
/// `on_entry(purchase_state entered, purchase_event)` (either or both); they
/// run around every accepted transition, exit first, and never on a refused
/// one. Use them for metrics and tracing.
///
/// Two ways to drive it:
/// - `fire(step, event)` where the state is known statically: the step token
///   says which state the machine is in, an edge missing from the table does
///   not compile, and the result is the token of the next state.
/// - `process(event)` where the event comes at run time: returns
///   `errc::invalid_transition` and leaves the state unchanged for an edge
///   missing from the table.
///
/// Thread-safety: none; one purchase is driven by one flow at a time.
/// Cost: one byte of state (plus the hooks); `fire` is a store and the hook
/// calls, `process` scans the eight-row table.
template <class Hooks = no_state_hooks>
class purchase_machine {
 public:
  constexpr purchase_machine() = default;
  constexpr explicit purchase_machine(Hooks hooks) : hooks_(std::move(hooks)) {}

  [[nodiscard]] constexpr purchase_state state() const noexcept { return state_; }
  [[nodiscard]] constexpr bool terminal() const noexcept { return is_terminal(state_); }

  /// The step token of a fresh machine. Precondition: the machine is idle.
  [[nodiscard]] constexpr purchase_step<purchase_state::idle> start() const noexcept {
    assert(state_ == purchase_state::idle);
    return {};
  }

  /// Moves `From + E` statically: only the table's edges compile.
  /// Precondition: the machine is in `From` (holds when tokens are used once each).
  template <purchase_state From, purchase_event E>
  requires valid_transition<From, E>
  constexpr purchase_step<*next_state(From, E)> fire(purchase_step<From>, event_c<E>) {
    assert(state_ == From);
    move(From, E, *next_state(From, E));
    return {};
  }

  /// Moves along `event` from the current state, or returns
  /// `errc::invalid_transition` and changes nothing. Not constexpr:
  /// std::error_code is not a literal type.
  std::error_code process(purchase_event event) {
    const auto to = next_state(state_, event);
    if (!to) return make_error_code(errc::invalid_transition);
    move(state_, event, *to);
    return {};
  }

  Hooks& hooks() noexcept { return hooks_; }
  const Hooks& hooks() const noexcept { return hooks_; }

 private:
  constexpr void move(purchase_state from, purchase_event event, purchase_state to) {
    if constexpr (detail::has_on_exit<Hooks>) hooks_.on_exit(from, event);
    state_ = to;
    if constexpr (detail::has_on_entry<Hooks>) hooks_.on_entry(to, event);
  }

  [[no_unique_address]] Hooks hooks_{};
  purchase_state state_ = purchase_state::idle;
};

static_assert(sizeof(purchase_machine<>) == 1, "a purchase machine without hooks is one byte");
static_assert(sizeof(purchase_step<purchase_state::idle>) == 1 &&
                  std::is_empty_v<purchase_step<purchase_state::idle>>,
              "step tokens carry no data");

}  // namespace seckill
