#include <seckill/purchase/state_machine.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace unit_state_machine {

using seckill::purchase_event;
using seckill::purchase_state;
namespace events = seckill::events;

constexpr purchase_state all_states[] = {purchase_state::idle,        purchase_state::prepared,
                                         purchase_state::committed,   purchase_state::succeeded,
                                         purchase_state::rolled_back, purchase_state::timed_out,
                                         purchase_state::failed};
constexpr purchase_event all_events[] = {purchase_event::reserve_ok, purchase_event::reserve_failed,
                                         purchase_event::payment_ok, purchase_event::payment_failed,
                                         purchase_event::persist_ok, purchase_event::persist_failed,
                                         purchase_event::deadline};

// The edges the design allows, written out independently of the table.
const std::set<std::tuple<purchase_state, purchase_event, purchase_state>> expected_edges{
    {purchase_state::idle, purchase_event::reserve_ok, purchase_state::prepared},
    {purchase_state::idle, purchase_event::reserve_failed, purchase_state::failed},
    {purchase_state::idle, purchase_event::deadline, purchase_state::timed_out},
    {purchase_state::prepared, purchase_event::payment_ok, purchase_state::committed},
    {purchase_state::prepared, purchase_event::payment_failed, purchase_state::rolled_back},
    {purchase_state::prepared, purchase_event::deadline, purchase_state::timed_out},
    {purchase_state::committed, purchase_event::persist_ok, purchase_state::succeeded},
    {purchase_state::committed, purchase_event::persist_failed, purchase_state::failed},
};

// Drives a fresh machine to `target` through legal edges.
template <class M>
void drive_to(M& m, purchase_state target) {
  using S = purchase_state;
  using E = purchase_event;
  auto must = [&](E e) { REQUIRE_FALSE(m.process(e)); };
  switch (target) {
    case S::idle:
      break;
    case S::prepared:
      must(E::reserve_ok);
      break;
    case S::committed:
      must(E::reserve_ok);
      must(E::payment_ok);
      break;
    case S::succeeded:
      must(E::reserve_ok);
      must(E::payment_ok);
      must(E::persist_ok);
      break;
    case S::rolled_back:
      must(E::reserve_ok);
      must(E::payment_failed);
      break;
    case S::timed_out:
      must(E::deadline);
      break;
    case S::failed:
      must(E::reserve_failed);
      break;
  }
  REQUIRE(m.state() == target);
}

struct recording_machine_hooks {
  std::vector<std::string>* log;
  void on_exit(purchase_state s, purchase_event e) {
    log->push_back("exit " + std::string(to_string(s)) + " on " + std::string(to_string(e)));
  }
  void on_entry(purchase_state s, purchase_event e) {
    log->push_back("enter " + std::string(to_string(s)) + " on " + std::string(to_string(e)));
  }
};

struct entry_only_hooks {
  int* entries;
  void on_entry(purchase_state, purchase_event) { ++*entries; }
};

template <class M, class Step, class Event>
concept can_fire = requires(M& m, Step s, Event e) {
  m.fire(s, e);
};

using machine = seckill::purchase_machine<>;
using idle_step = seckill::purchase_step<purchase_state::idle>;
using prepared_step = seckill::purchase_step<purchase_state::prepared>;
using committed_step = seckill::purchase_step<purchase_state::committed>;
using succeeded_step = seckill::purchase_step<purchase_state::succeeded>;
using timed_out_step = seckill::purchase_step<purchase_state::timed_out>;

// Compile-time checks: the static API accepts exactly the table's edges.
static_assert(can_fire<machine, idle_step, decltype(events::reserve_ok)>);
static_assert(can_fire<machine, idle_step, decltype(events::reserve_failed)>);
static_assert(can_fire<machine, idle_step, decltype(events::deadline)>);
static_assert(!can_fire<machine, idle_step, decltype(events::payment_ok)>);
static_assert(!can_fire<machine, idle_step, decltype(events::persist_ok)>);
static_assert(can_fire<machine, prepared_step, decltype(events::payment_ok)>);
static_assert(can_fire<machine, prepared_step, decltype(events::payment_failed)>);
static_assert(can_fire<machine, prepared_step, decltype(events::deadline)>);
static_assert(!can_fire<machine, prepared_step, decltype(events::reserve_ok)>);
static_assert(!can_fire<machine, prepared_step, decltype(events::persist_ok)>);
static_assert(can_fire<machine, committed_step, decltype(events::persist_ok)>);
static_assert(can_fire<machine, committed_step, decltype(events::persist_failed)>);
static_assert(!can_fire<machine, committed_step, decltype(events::deadline)>);
static_assert(!can_fire<machine, committed_step, decltype(events::payment_failed)>);
static_assert(!can_fire<machine, succeeded_step, decltype(events::deadline)>);
static_assert(!can_fire<machine, succeeded_step, decltype(events::persist_ok)>);
static_assert(!can_fire<machine, timed_out_step, decltype(events::reserve_ok)>);
static_assert(std::is_same_v<decltype(std::declval<machine&>().fire(std::declval<idle_step>(),
                                                                    events::reserve_ok)),
                             prepared_step>);
// Tokens cannot be forged by users.
static_assert(!std::is_default_constructible_v<prepared_step>);
static_assert(seckill::next_state(purchase_state::prepared, purchase_event::deadline) ==
              purchase_state::timed_out);
static_assert(!seckill::next_state(purchase_state::failed, purchase_event::deadline));

}  // namespace unit_state_machine

using namespace unit_state_machine;

TEST_SUITE("unit") {
  TEST_CASE("the transition table holds exactly the designed edges") {
    std::set<std::tuple<purchase_state, purchase_event, purchase_state>> table;
    for (const auto& t : seckill::purchase_transitions) table.insert({t.from, t.event, t.to});
    CHECK(table.size() == seckill::purchase_transitions.size());  // no duplicate rows
    CHECK(table == expected_edges);
  }

  TEST_CASE("every legal edge moves the machine and every illegal one is refused unchanged") {
    int legal = 0;
    int illegal = 0;
    for (auto from : all_states) {
      for (auto event : all_events) {
        CAPTURE(to_string(from));
        CAPTURE(to_string(event));
        machine m;
        drive_to(m, from);
        const auto ec = m.process(event);
        const auto expected = seckill::next_state(from, event);
        bool listed = false;
        for (const auto& [f, e, t] : expected_edges) {
          if (f == from && e == event) {
            listed = true;
            CHECK_FALSE(ec);
            CHECK(m.state() == t);
          }
        }
        if (!listed) {
          ++illegal;
          CHECK(ec == seckill::errc::invalid_transition);
          CHECK(m.state() == from);
          CHECK_FALSE(expected);
        } else {
          ++legal;
          CHECK(expected.has_value());
        }
      }
    }
    CHECK(legal == 8);
    CHECK(illegal == 49 - 8);
  }

  TEST_CASE("terminal states stay terminal") {
    for (auto s : {purchase_state::succeeded, purchase_state::rolled_back,
                   purchase_state::timed_out, purchase_state::failed}) {
      CAPTURE(to_string(s));
      CHECK(seckill::is_terminal(s));
      machine m;
      drive_to(m, s);
      CHECK(m.terminal());
      for (auto e : all_events) CHECK(m.process(e) == seckill::errc::invalid_transition);
      CHECK(m.state() == s);
    }
    for (auto s : {purchase_state::idle, purchase_state::prepared, purchase_state::committed})
      CHECK_FALSE(seckill::is_terminal(s));
  }

  TEST_CASE("the static API walks the happy path and the failure paths") {
    {
      machine m;
      auto prepared = m.fire(m.start(), events::reserve_ok);
      CHECK(m.state() == purchase_state::prepared);
      auto committed = m.fire(prepared, events::payment_ok);
      CHECK(m.state() == purchase_state::committed);
      auto done = m.fire(committed, events::persist_ok);
      static_assert(decltype(done)::state == purchase_state::succeeded);
      CHECK(m.state() == purchase_state::succeeded);
    }
    {
      machine m;
      m.fire(m.fire(m.start(), events::reserve_ok), events::deadline);
      CHECK(m.state() == purchase_state::timed_out);
    }
    {
      machine m;
      m.fire(m.fire(m.start(), events::reserve_ok), events::payment_failed);
      CHECK(m.state() == purchase_state::rolled_back);
    }
    {
      machine m;
      m.fire(m.fire(m.fire(m.start(), events::reserve_ok), events::payment_ok),
             events::persist_failed);
      CHECK(m.state() == purchase_state::failed);
    }
  }

  TEST_CASE("exit and entry hooks run around accepted transitions only") {
    std::vector<std::string> log;
    seckill::purchase_machine<recording_machine_hooks> m{recording_machine_hooks{&log}};
    CHECK_FALSE(m.process(purchase_event::reserve_ok));
    CHECK(m.process(purchase_event::persist_ok) == seckill::errc::invalid_transition);
    CHECK_FALSE(m.process(purchase_event::deadline));
    CHECK(m.process(purchase_event::deadline) == seckill::errc::invalid_transition);
    CHECK(log == std::vector<std::string>{"exit idle on reserve_ok", "enter prepared on reserve_ok",
                                          "exit prepared on deadline",
                                          "enter timed_out on deadline"});
    log.clear();
    seckill::purchase_machine<recording_machine_hooks> s{recording_machine_hooks{&log}};
    s.fire(s.fire(s.start(), events::reserve_ok), events::payment_failed);
    CHECK(log == std::vector<std::string>{"exit idle on reserve_ok", "enter prepared on reserve_ok",
                                          "exit prepared on payment_failed",
                                          "enter rolled_back on payment_failed"});
  }

  TEST_CASE("a machine with only an entry hook counts entries") {
    int entries = 0;
    seckill::purchase_machine<entry_only_hooks> m{entry_only_hooks{&entries}};
    CHECK_FALSE(m.process(purchase_event::reserve_ok));
    CHECK_FALSE(m.process(purchase_event::payment_failed));
    CHECK(m.process(purchase_event::payment_ok) == seckill::errc::invalid_transition);
    CHECK(entries == 2);
  }

  TEST_CASE("names of states and events") {
    CHECK(to_string(purchase_state::timed_out) == "timed_out");
    CHECK(to_string(purchase_event::persist_failed) == "persist_failed");
    CHECK(seckill::make_error_code(seckill::errc::invalid_transition).message() ==
          "invalid purchase state transition");
  }
}
