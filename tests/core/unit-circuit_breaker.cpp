#include <seckill/limit/circuit_breaker.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace unit_circuit_breaker {

using seckill::breaker_state;
using breaker10 = seckill::circuit_breaker<seckill::count_window<10>, seckill::manual_clock>;
using timed = seckill::circuit_breaker<seckill::time_window<10>, seckill::manual_clock>;

struct transitions {
  std::vector<std::pair<breaker_state, breaker_state>> seen;
  std::function<void(breaker_state, breaker_state)> callback() {
    return [this](breaker_state from, breaker_state to) { seen.emplace_back(from, to); };
  }
};

seckill::breaker_options small_options() {
  seckill::breaker_options o;
  o.failure_rate_threshold = 0.5;
  o.slow_call_rate_threshold = 1.0;
  o.slow_call_duration = 1s;
  o.minimum_calls = 4;
  o.open_duration = 10s;
  o.half_open_permits = 2;
  return o;
}

template <class B>
void fail_n(B& b, int n) {
  for (int i = 0; i < n; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    b.on_failure(p);
  }
}

template <class B>
void succeed_n(B& b, int n) {
  for (int i = 0; i < n; ++i) {
    auto p = b.try_acquire();
    REQUIRE(p);
    b.on_success(p);
  }
}

// Opens a breaker built from small_options(): 4 failures.
template <class B>
void trip(B& b) {
  fail_n(b, 4);
  REQUIRE(b.state() == breaker_state::open);
}

std::string bad_option_message(const std::function<void(seckill::breaker_options&)>& mutate) {
  auto o = small_options();
  mutate(o);
  try {
    breaker10 b{o};
  } catch (const seckill::error& e) {
    CHECK(e.code() == seckill::errc::invalid_argument);
    std::string what = e.what();
    const std::string suffix =
        ": invalid argument";  // std::system_error appends the code's message
    REQUIRE(what.size() > suffix.size());
    CHECK(what.substr(what.size() - suffix.size()) == suffix);
    return what.substr(0, what.size() - suffix.size());
  }
  return "no exception";
}

// Each of two threads fails in a fixed pattern; the stripes' sum is the rate
// of both threads' calls. At 60% (every prefix at least 50%) the breaker opens
// as soon as both threads together made minimum_calls calls: not when one
// stripe alone would have (twice as many). At 40% it never opens.
template <class Window>
void check_rate_across_threads() {
  auto run = [](const char* pattern) {
    seckill::breaker_options o;
    o.failure_rate_threshold = 0.5;
    o.minimum_calls = 100;
    o.open_duration = 1h;
    seckill::manual_clock clock;
    seckill::circuit_breaker<Window, seckill::manual_clock> b{o, clock};
    std::atomic<long> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 5000; ++i) {
          auto p = b.try_acquire();
          if (!p) return;
          admitted.fetch_add(1);
          if (pattern[i % 5] == 'F')
            b.on_failure(p);
          else
            b.on_success(p);
        }
      });
    }
    for (auto& th : threads) th.join();
    return std::pair{b.state(), admitted.load()};
  };
  const auto [over, admitted_over] = run("FSFSF");
  CHECK(over == breaker_state::open);
  CHECK(admitted_over >= 100);
  CHECK(admitted_over <= 120);
  const auto [under, admitted_under] = run("FSSFS");
  CHECK(under == breaker_state::closed);
  CHECK(admitted_under == 10'000);
}

}  // namespace unit_circuit_breaker

using namespace unit_circuit_breaker;

TEST_SUITE("unit") {
  TEST_CASE("breaker: closed until minimum_calls - then opens at the failure rate threshold") {
    seckill::manual_clock clock;
    transitions t;
    auto o = small_options();
    o.on_state_change = t.callback();
    breaker10 b{o, clock};
    CHECK(b.state() == breaker_state::closed);
    succeed_n(b, 2);
    fail_n(b, 1);  // 1 of 3, and only 3 calls
    CHECK(b.state() == breaker_state::closed);
    CHECK(b.counts().calls == 3);
    CHECK(b.counts().failures == 1);
    fail_n(b, 1);  // 2 of 4 = 50%: at the threshold
    CHECK(b.state() == breaker_state::open);
    REQUIRE(t.seen.size() == 1);
    CHECK(t.seen[0] == std::pair{breaker_state::closed, breaker_state::open});
    std::error_code ec;
    CHECK_FALSE(b.try_acquire(ec));
    CHECK(ec == seckill::errc::circuit_open);
    // Three failures of three calls: below minimum_calls, no decision.
    breaker10 few{small_options(), clock};
    fail_n(few, 3);
    CHECK(few.state() == breaker_state::closed);
    succeed_n(few, 1);  // 3 of 4
    CHECK(few.state() == breaker_state::open);
  }

  TEST_CASE("breaker: a failure rate below the threshold keeps it closed") {
    breaker10 b{small_options(), seckill::manual_clock{}};
    for (int round = 0; round < 20; ++round) {
      succeed_n(b, 2);
      fail_n(b, 1);  // 1 in 3
    }
    CHECK(b.state() == breaker_state::closed);
    CHECK(b.counts().calls == 10);  // the window holds the last 10
  }

  TEST_CASE("breaker: the count window forgets calls older than the last N") {
    breaker10 b{small_options(), seckill::manual_clock{}};
    succeed_n(b, 10);
    fail_n(b, 3);
    CHECK(b.counts().failures == 3);
    succeed_n(b, 10);  // the 3 failures slide out
    CHECK(b.counts().failures == 0);
    CHECK(b.counts().calls == 10);
    fail_n(b, 4);  // 4 of 10
    CHECK(b.state() == breaker_state::closed);
    fail_n(b, 1);  // 5 of 10
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: slow calls open it at the slow call rate threshold") {
    auto o = small_options();
    o.slow_call_rate_threshold = 0.75;
    breaker10 b{o, seckill::manual_clock{}};
    auto call = [&](std::chrono::nanoseconds took) {
      auto p = b.try_acquire();
      REQUIRE(p);
      b.on_success(p, took);
    };
    call(999ms);  // not slow
    call(1s);     // slow: at slow_call_duration
    call(5s);
    call(10ms);  // 2 of 4
    CHECK(b.counts().slow == 2);
    call(2s);  // 3 of 5
    call(2s);  // 4 of 6
    call(2s);  // 5 of 7
    CHECK(b.state() == breaker_state::closed);
    call(2s);  // 6 of 8 = 0.75
    CHECK(b.state() == breaker_state::open);
    CHECK(b.counts().failures == 0);
  }

  TEST_CASE("breaker: slow calls at the threshold open it") {
    auto o = small_options();
    o.slow_call_rate_threshold = 0.5;
    breaker10 b{o, seckill::manual_clock{}};
    for (int i = 0; i < 4; ++i) {
      auto p = b.try_acquire();
      REQUIRE(p);
      b.on_success(p, i % 2 == 0 ? 2s : 10ms);
    }
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: open rejects until open_duration - then half_open admits the permits") {
    seckill::manual_clock clock;
    transitions t;
    auto o = small_options();
    o.on_state_change = t.callback();
    breaker10 b{o, clock};
    trip(b);
    clock.advance(10s - 1ns);
    CHECK_FALSE(b.try_acquire());
    CHECK(b.state() == breaker_state::open);
    clock.advance(1ns);
    CHECK(b.state() == breaker_state::open);  // moves on the next try_acquire
    auto p1 = b.try_acquire();
    CHECK(p1);
    CHECK(b.state() == breaker_state::half_open);
    auto p2 = b.try_acquire();
    CHECK(p2);
    CHECK_FALSE(b.try_acquire());  // only half_open_permits = 2
    b.on_success(p1);
    CHECK(b.state() == breaker_state::half_open);
    b.on_success(p2);
    CHECK(b.state() == breaker_state::closed);
    CHECK(b.counts().calls == 0);  // a fresh window
    REQUIRE(t.seen.size() == 3);
    CHECK(t.seen[1] == std::pair{breaker_state::open, breaker_state::half_open});
    CHECK(t.seen[2] == std::pair{breaker_state::half_open, breaker_state::closed});
  }

  TEST_CASE("breaker: failed trial calls reopen it") {
    seckill::manual_clock clock;
    breaker10 b{small_options(), clock};
    trip(b);
    clock.advance(10s);
    auto p1 = b.try_acquire();
    auto p2 = b.try_acquire();
    b.on_success(p1);
    b.on_failure(p2);  // 1 of 2 = 50%
    CHECK(b.state() == breaker_state::open);
    CHECK_FALSE(b.try_acquire());
  }

  TEST_CASE("breaker: exponential backoff of the open duration - capped - reset once closed") {
    seckill::manual_clock clock;
    auto o = small_options();
    o.open_duration = 1s;
    o.open_backoff_multiplier = 2;
    o.max_open_duration = 5s;
    o.half_open_permits = 1;
    breaker10 b{o, clock};
    trip(b);
    const std::chrono::seconds expected[] = {1s, 2s, 4s, 5s, 5s};
    for (auto d : expected) {
      CAPTURE(d.count());
      clock.advance(d - 1ns);
      CHECK_FALSE(b.try_acquire());
      clock.advance(1ns);
      auto p = b.try_acquire();
      REQUIRE(p);
      CHECK(b.state() == breaker_state::half_open);
      b.on_failure(p);
      CHECK(b.state() == breaker_state::open);
    }
    clock.advance(5s);
    auto p = b.try_acquire();
    b.on_success(p);
    CHECK(b.state() == breaker_state::closed);
    CHECK(b.next_open_duration() == 1s);
    trip(b);
    clock.advance(1s);
    CHECK(b.try_acquire());  // back to the base open duration
  }

  TEST_CASE("breaker: backoff without a cap keeps multiplying") {
    seckill::manual_clock clock;
    auto o = small_options();
    o.open_duration = 1s;
    o.open_backoff_multiplier = 3;
    o.half_open_permits = 1;
    breaker10 b{o, clock};
    trip(b);
    CHECK(b.next_open_duration() == 3s);
    clock.advance(1s);
    b.on_failure(b.try_acquire());
    CHECK(b.next_open_duration() == 9s);
  }

  TEST_CASE("breaker: half_open longer than max_half_open_duration reopens") {
    seckill::manual_clock clock;
    transitions t;
    auto o = small_options();
    o.max_half_open_duration = 3s;
    o.on_state_change = t.callback();
    breaker10 b{o, clock};
    trip(b);
    clock.advance(10s);
    auto lost1 = b.try_acquire();  // trial calls that never report
    auto lost2 = b.try_acquire();
    CHECK(lost1);
    CHECK(lost2);
    clock.advance(3s - 1ns);
    CHECK_FALSE(b.try_acquire());
    CHECK(b.state() == breaker_state::half_open);
    clock.advance(1ns);
    CHECK_FALSE(b.try_acquire());
    CHECK(b.state() == breaker_state::open);
    REQUIRE(t.seen.size() == 3);
    CHECK(t.seen[2] == std::pair{breaker_state::half_open, breaker_state::open});
    // The lost trials reporting now do not count against the new open state.
    b.on_success(lost1);
    b.on_success(lost2);
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: the generation guard drops outcomes from an earlier state") {
    seckill::manual_clock clock;
    breaker10 b{small_options(), clock};
    auto slow_caller = b.try_acquire();  // admitted while closed
    trip(b);
    clock.advance(10s);
    auto trial1 = b.try_acquire();
    CHECK(b.state() == breaker_state::half_open);
    b.on_failure(slow_caller);  // from the closed generation: ignored
    CHECK(b.state() == breaker_state::half_open);
    auto trial2 = b.try_acquire();
    b.on_success(trial1);
    b.on_success(trial2);
    CHECK(b.state() == breaker_state::closed);
    // A closed-generation permit does not count in the next closed generation.
    b.on_failure(slow_caller);
    CHECK(b.counts().calls == 0);
    // An empty permit records nothing.
    b.on_failure(seckill::breaker_permit{});
    CHECK(b.counts().calls == 0);
    // Plain bool-style use counts against the current state.
    b.on_failure();
    CHECK(b.counts().failures == 1);
    bool ok = b.try_acquire();
    CHECK(ok);
  }

  TEST_CASE("breaker: forced_open - disabled and reset by hand") {
    seckill::manual_clock clock;
    transitions t;
    auto o = small_options();
    o.on_state_change = t.callback();
    breaker10 b{o, clock};
    b.transition_to(breaker_state::forced_open);
    CHECK(b.state() == breaker_state::forced_open);
    clock.advance(1h);
    CHECK_FALSE(b.try_acquire());
    CHECK(b.state() == breaker_state::forced_open);
    b.transition_to(breaker_state::disabled);
    fail_n(b, 50);  // admitted, not recorded
    CHECK(b.state() == breaker_state::disabled);
    CHECK(b.counts().calls == 0);
    b.transition_to(breaker_state::disabled);  // no-op, no callback
    b.transition_to(breaker_state::open);
    CHECK_FALSE(b.try_acquire());
    clock.advance(10s);
    CHECK(b.try_acquire());
    CHECK(b.state() == breaker_state::half_open);
    b.transition_to(breaker_state::closed);
    fail_n(b, 3);
    b.reset();
    CHECK(b.state() == breaker_state::closed);
    CHECK(b.counts().calls == 0);
    b.transition_to(breaker_state::half_open);
    CHECK(b.try_acquire());
    const std::vector<std::pair<breaker_state, breaker_state>> expected = {
        {breaker_state::closed, breaker_state::forced_open},
        {breaker_state::forced_open, breaker_state::disabled},
        {breaker_state::disabled, breaker_state::open},
        {breaker_state::open, breaker_state::half_open},
        {breaker_state::half_open, breaker_state::closed},
        {breaker_state::closed, breaker_state::half_open},
    };
    CHECK(t.seen == expected);
    CHECK(std::string(seckill::to_string(breaker_state::forced_open)) == "forced_open");
  }

  TEST_CASE("breaker: a throwing state-change callback does not break the breaker") {
    auto o = small_options();
    o.on_state_change = [](breaker_state, breaker_state) { throw std::runtime_error("observer"); };
    breaker10 b{o, seckill::manual_clock{}};
    trip(b);
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: time_window counts the last window_duration only") {
    seckill::manual_clock clock;
    auto o = small_options();
    o.window_duration = 10s;  // 10 buckets of 1 s
    timed b{o, clock};
    fail_n(b, 3);
    CHECK(b.counts().failures == 3);
    clock.advance(9s);
    CHECK(b.counts().failures == 3);
    clock.advance(1s);  // the first bucket expired
    CHECK(b.counts().calls == 0);
    fail_n(b, 1);
    CHECK(b.state() == breaker_state::closed);  // 1 call: below minimum_calls
    succeed_n(b, 2);
    clock.advance(500ms);
    fail_n(b, 1);  // 2 of 4
    CHECK(b.state() == breaker_state::open);
    // A bucket reused after the window wrapped around starts from zero.
    b.reset();
    clock.advance(10s);
    succeed_n(b, 3);
    clock.advance(10s);
    fail_n(b, 1);
    CHECK(b.counts().calls == 1);
  }

  TEST_CASE("breaker: time_window - a success that brings the window to minimum_calls opens it") {
    seckill::manual_clock clock;
    auto o = small_options();
    o.window_duration = 10s;
    timed b{o, clock};
    fail_n(b, 3);
    succeed_n(b, 1);  // 3 of 4
    CHECK(b.state() == breaker_state::open);
    // Successes skip reading the window once it held minimum_calls in the
    // current bucket period; once that period ended and the calls expired, a
    // success is weighed again.
    b.reset();
    succeed_n(b, 10);
    clock.advance(20s);
    fail_n(b, 3);
    CHECK(b.state() == breaker_state::closed);
    succeed_n(b, 1);
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: one stripe is the unstriped window - exactly the last N calls") {
    seckill::circuit_breaker<seckill::count_window<10, 1>, seckill::manual_clock> b{
        small_options()};
    succeed_n(b, 10);
    fail_n(b, 4);
    CHECK(b.counts().calls == 10);
    CHECK(b.counts().failures == 4);
    CHECK(b.state() == breaker_state::closed);
    fail_n(b, 1);
    CHECK(b.state() == breaker_state::open);
  }

  TEST_CASE("breaker: a time_window bucket counts millions of calls without wrapping") {
    // 2^21 + 1000 successes in one bucket: more than a packed 21-bit field
    // holds, which once wrapped into the failure count and opened the breaker.
    seckill::manual_clock clock;
    auto o = small_options();
    o.window_duration = 10s;
    timed b{o, clock};
    constexpr std::uint64_t n = (std::uint64_t{1} << 21) + 1000;
    for (std::uint64_t i = 0; i < n; ++i) b.on_success(b.try_acquire());
    CHECK(b.counts().calls == n);
    CHECK(b.counts().failures == 0);
    CHECK(b.state() == breaker_state::closed);
  }

  TEST_CASE("breaker: every bad option is refused with its name and value") {
    CHECK(bad_option_message([](auto& o) { o.failure_rate_threshold = 0; }) ==
          "breaker_options: failure_rate_threshold 0 out of range (0, 1]");
    CHECK(bad_option_message([](auto& o) { o.failure_rate_threshold = 1.5; }) ==
          "breaker_options: failure_rate_threshold 1.5 out of range (0, 1]");
    CHECK(bad_option_message([](auto& o) { o.failure_rate_threshold = std::nan(""); }) ==
          "breaker_options: failure_rate_threshold nan out of range (0, 1]");
    CHECK(bad_option_message([](auto& o) { o.slow_call_rate_threshold = -0.1; }) ==
          "breaker_options: slow_call_rate_threshold -0.1 out of range (0, 1]");
    CHECK(bad_option_message([](auto& o) { o.slow_call_duration = 0s; }) ==
          "breaker_options: slow_call_duration 0 ns must be > 0");
    CHECK(bad_option_message([](auto& o) { o.minimum_calls = 0; }) ==
          "breaker_options: minimum_calls 0 must be >= 1");
    CHECK(bad_option_message([](auto& o) { o.minimum_calls = 11; }) ==
          "breaker_options: minimum_calls 11 exceeds the window's 10 calls: the breaker could "
          "never open");
    CHECK(bad_option_message([](auto& o) { o.open_duration = -1s; }) ==
          "breaker_options: open_duration -1000000000 ns must be > 0");
    CHECK(bad_option_message([](auto& o) { o.open_backoff_multiplier = 0.5; }) ==
          "breaker_options: open_backoff_multiplier 0.5 must be a finite number >= 1");
    CHECK(bad_option_message([](auto& o) { o.open_backoff_multiplier = INFINITY; }) ==
          "breaker_options: open_backoff_multiplier inf must be a finite number >= 1");
    CHECK(bad_option_message([](auto& o) { o.max_open_duration = 5s; }) ==
          "breaker_options: max_open_duration 5000000000 ns below open_duration 10000000000 ns (0 "
          "means no cap)");
    CHECK(bad_option_message([](auto& o) { o.half_open_permits = 0; }) ==
          "breaker_options: half_open_permits 0 must be >= 1");
    CHECK(bad_option_message([](auto& o) { o.half_open_permits = 1u << 20; }) ==
          "breaker_options: half_open_permits 1048576 must be < 2^20");
    CHECK(bad_option_message([](auto& o) { o.max_half_open_duration = -1ns; }) ==
          "breaker_options: max_half_open_duration -1 ns must be >= 0 (0 means unbounded)");
    CHECK(bad_option_message([](auto&) {}) == "no exception");
    // window_duration matters to time_window only.
    auto o = small_options();
    o.window_duration = 0s;
    CHECK_NOTHROW(breaker10{o});
    try {
      timed t{o};
      FAIL("accepted window_duration 0");
    } catch (const seckill::error& e) {
      CHECK(std::string(e.what()) ==
            "breaker_options: window_duration 0 ns must be > 0: invalid argument");
    }
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("breaker: racing callers open it exactly once and admit nothing while open") {
    seckill::manual_clock clock;
    std::atomic<int> opened{0};
    seckill::breaker_options o;
    o.failure_rate_threshold = 0.5;
    o.minimum_calls = 50;
    o.open_duration = 1h;
    o.on_state_change = [&](breaker_state, breaker_state to) {
      if (to == breaker_state::open) opened.fetch_add(1);
    };
    seckill::circuit_breaker<seckill::count_window<100>, seckill::manual_clock> b{o, clock};
    std::atomic<long> admitted_after_open{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 20'000; ++i) {
          const bool was_open = b.state() == breaker_state::open;
          auto p = b.try_acquire();
          if (p && was_open) admitted_after_open.fetch_add(1);
          if (!p) continue;
          if ((i + t) % 3 == 0)
            b.on_success(p);
          else
            b.on_failure(p);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(b.state() == breaker_state::open);
    CHECK(opened.load() == 1);
    CHECK(admitted_after_open.load() == 0);
  }

  TEST_CASE("breaker: racing callers in half_open get exactly half_open_permits trials") {
    seckill::manual_clock clock;
    auto o = small_options();
    o.half_open_permits = 7;
    breaker10 b{o, clock};
    trip(b);
    clock.advance(10s);
    std::atomic<int> trials{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 5000; ++i)
          if (b.try_acquire()) trials.fetch_add(1);
      });
    }
    for (auto& th : threads) th.join();
    CHECK(trials.load() == 7);
    CHECK(b.state() == breaker_state::half_open);
  }

  TEST_CASE(
      "breaker: two threads open a count_window at the failure rate threshold and not below") {
    check_rate_across_threads<seckill::count_window<1000>>();
  }

  TEST_CASE("breaker: two threads open a time_window at the failure rate threshold and not below") {
    check_rate_across_threads<seckill::time_window<10>>();
  }

  TEST_CASE("breaker: closed-state outcomes from two threads all land in the window") {
    seckill::breaker_options o;
    o.minimum_calls = 1000;
    o.failure_rate_threshold = 1.0;
    seckill::circuit_breaker<seckill::count_window<1000>, seckill::manual_clock> b{
        o, seckill::manual_clock{}};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 400; ++i) {
          auto p = b.try_acquire();
          if (t == 0)
            b.on_success(p);
          else
            b.on_failure(p, 2min);
        }
      });
    }
    for (auto& th : threads) th.join();
    const auto c = b.counts();
    CHECK(c.calls == 800);
    CHECK(c.failures == 400);
    CHECK(c.slow == 400);
    CHECK(b.state() == breaker_state::closed);
  }
}

// The windows meet the concept the breaker asks for; other types do not.
static_assert(seckill::breaker_window<seckill::count_window<10>>);
static_assert(seckill::breaker_window<seckill::time_window<10>>);
static_assert(!seckill::breaker_window<int>);
static_assert(!seckill::breaker_window<seckill::window_counts>);
