// seckill_load's arrival schedule (fixed rate and Poisson, seeded) and the
// arithmetic of latency counted from the intended send time (the correction
// for coordinated omission), on a simulated stalled server.
#include "seckill_load/histogram.hpp"
#include "seckill_load/schedule.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace unit_schedule {

using namespace std::chrono_literals;
using seckill_load::arrival_kind;
using seckill_load::arrival_schedule;
using seckill_load::request_timing;

}  // namespace unit_schedule

using namespace unit_schedule;

TEST_SUITE("unit") {
  TEST_CASE("schedule: a fixed rate spaces requests evenly and does not drift") {
    arrival_schedule s(arrival_kind::fixed, 1000);
    CHECK(s.next() == 0ns);
    CHECK(s.next() == 1ms);
    CHECK(s.next() == 2ms);
    for (int i = 3; i < 1'000'000; ++i) (void)s.next();
    CHECK(s.next() == 1000s);  // request 1,000,000 at exactly 1000 s
    CHECK(s.issued() == 1'000'001u);

    arrival_schedule third(arrival_kind::fixed, 3);
    CHECK(third.next() == 0ns);
    CHECK(third.next() == 333'333'333ns);
    CHECK(third.next() == 666'666'667ns);
    CHECK(third.next() == 1s);

    arrival_schedule slow(arrival_kind::fixed, 0.5);
    (void)slow.next();
    CHECK(slow.next() == 2s);
  }

  TEST_CASE("schedule: Poisson arrivals have the rate - exponential gaps - Poisson counts") {
    const double rate = 5000;
    arrival_schedule s(arrival_kind::poisson, rate, 42);
    CHECK(s.next() == 0ns);  // the first at the start
    const int n = 200'000;
    std::vector<double> gaps;
    std::chrono::nanoseconds last{0};
    std::vector<int> per_10ms;
    for (int i = 0; i < n; ++i) {
      const auto t = s.next();
      REQUIRE(t >= last);
      gaps.push_back(std::chrono::duration<double>(t - last).count());
      last = t;
      const auto bin = static_cast<std::size_t>(t / 10ms);
      if (per_10ms.size() <= bin) per_10ms.resize(bin + 1, 0);
      ++per_10ms[bin];
    }
    double mean = 0;
    for (double g : gaps) mean += g;
    mean /= n;
    double var = 0;
    for (double g : gaps) var += (g - mean) * (g - mean);
    var /= n;
    CHECK(mean == doctest::Approx(1.0 / rate).epsilon(0.01));
    CHECK(std::sqrt(var) / mean == doctest::Approx(1.0).epsilon(0.02));  // exponential: CV 1
    // the share of gaps above the mean is e^-1 for exponential gaps
    const auto above = std::count_if(gaps.begin(), gaps.end(), [&](double g) { return g > mean; });
    CHECK(static_cast<double>(above) / n == doctest::Approx(std::exp(-1.0)).epsilon(0.02));
    // counts in fixed windows: mean 50, variance 50 (Poisson)
    per_10ms.pop_back();  // the last window is partial
    double cm = 0, cv = 0;
    for (int c : per_10ms) cm += c;
    cm /= static_cast<double>(per_10ms.size());
    for (int c : per_10ms) cv += (c - cm) * (c - cm);
    cv /= static_cast<double>(per_10ms.size());
    CHECK(cm == doctest::Approx(50).epsilon(0.02));
    CHECK(cv / cm == doctest::Approx(1.0).epsilon(0.1));
  }

  TEST_CASE("schedule: the same seed gives the same Poisson times and another seed others") {
    arrival_schedule a(arrival_kind::poisson, 100, 7), b(arrival_kind::poisson, 100, 7),
        c(arrival_kind::poisson, 100, 8);
    bool differs = false;
    for (int i = 0; i < 1000; ++i) {
      const auto ta = a.next();
      CHECK(ta == b.next());
      differs = differs || ta != c.next();
    }
    CHECK(differs);
    // the first gaps of seed 7, so a change of the generator shows
    arrival_schedule d(arrival_kind::poisson, 1000, 7);
    (void)d.next();
    const auto t1 = d.next();
    CHECK(t1 > 0ns);
    CHECK(t1 < 20ms);
  }

  TEST_CASE("schedule: a rate that is not positive is refused") {
    CHECK_THROWS_WITH_AS(arrival_schedule(arrival_kind::fixed, 0),
                         "arrival rate 0 per second is not a positive number",
                         std::invalid_argument);
    CHECK_THROWS_AS(arrival_schedule(arrival_kind::poisson, -1), std::invalid_argument);
    CHECK_THROWS_AS(arrival_schedule(arrival_kind::fixed, std::nan("")), std::invalid_argument);
  }

  TEST_CASE("timing: latency counts from the intended send - queueing included") {
    const auto t0 = std::chrono::steady_clock::time_point{} + 10s;
    const request_timing on_time{t0, t0, t0 + 2ms};
    CHECK(on_time.latency() == 2ms);
    CHECK(on_time.service() == 2ms);
    CHECK(on_time.queued() == 0ns);
    const request_timing waited{t0, t0 + 300ms, t0 + 302ms};  // no free connection for 300 ms
    CHECK(waited.latency() == 302ms);
    CHECK(waited.service() == 2ms);
    CHECK(waited.queued() == 300ms);
    const request_timing early{t0, t0 - 1us, t0 + 1ms};  // a timer that fired a hair early
    CHECK(early.queued() == 0ns);
  }

  TEST_CASE("timing: a 1 s stall shows in the corrected percentiles and hides in service times") {
    // One connection, 1000 requests per second for 3 s, 0.5 ms per request,
    // but the server stalls from 1 s to 2 s. Counted from the actual send
    // (what a closed-loop tool reports) only one request is slow; counted from
    // the intended send, every request scheduled during the stall waited.
    arrival_schedule s(arrival_kind::fixed, 1000);
    const auto start = std::chrono::steady_clock::time_point{};
    seckill_load::histogram corrected, naive;
    auto free_at = start;
    for (int i = 0; i < 3000; ++i) {
      request_timing t;
      t.intended = start + s.next();
      t.sent = std::max(t.intended, free_at);
      auto begin = t.sent;
      if (begin >= start + 1s && begin < start + 2s) begin = start + 2s;  // the stall
      t.done = begin + 500us;
      free_at = t.done;
      corrected.record(static_cast<std::uint64_t>(t.latency() / 1us));
      naive.record(static_cast<std::uint64_t>(t.service() / 1us));
    }
    CHECK(naive.value_at(0.5) == 500u);
    CHECK(naive.value_at(0.99) == 500u);
    CHECK(naive.max() == 1'000'500u);  // the one request that met the stall
    CHECK(corrected.max() == 1'000'500u);
    // 1000 requests were scheduled during the stall and waited 0.5..1 s; the
    // backlog drains in the next second
    CHECK(corrected.value_at(0.5) > 200'000u);
    CHECK(corrected.value_at(0.9) > 800'000u);
    CHECK(corrected.value_at(0.99) > 980'000u);
    CHECK(corrected.value_at(0.3) == 500u);  // before the stall: on time
  }
}
