// The back-off of one account a shop throttles: Retry-After, the doubling
// pause, the stop after repeated refusals, on a manual clock.
#include <seckill/browser/throttle.hpp>
#include <seckill/clock.hpp>

#include <doctest/doctest.h>

#include <chrono>

namespace unit_throttle {

using namespace std::chrono_literals;
namespace sb = seckill::browser;
using ms = std::chrono::milliseconds;

std::chrono::system_clock::time_point at_utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(mo) /
                               std::chrono::day(d)) +
         std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s);
}

}  // namespace unit_throttle

using namespace unit_throttle;

TEST_SUITE("unit") {
  TEST_CASE("throttling statuses: 429 and 503 - not 200 - 403 or 500") {
    CHECK(sb::is_throttling_status(429));
    CHECK(sb::is_throttling_status(503));
    CHECK_FALSE(sb::is_throttling_status(200));
    CHECK_FALSE(sb::is_throttling_status(403));
    CHECK_FALSE(sb::is_throttling_status(500));
  }

  TEST_CASE("Retry-After: seconds or an HTTP date - anything else refused") {
    const auto now = at_utc(2026, 12, 4, 20, 0, 0);
    CHECK(sb::parse_retry_after("2", now) == ms(2000));
    CHECK(sb::parse_retry_after(" 0 ", now) == ms(0));
    CHECK(sb::parse_retry_after("Fri, 04 Dec 2026 20:00:07 GMT", now) == ms(7000));
    CHECK(sb::parse_retry_after("Fri, 04 Dec 2026 19:59:00 GMT", now) == ms(0));  // past
    CHECK_FALSE(sb::parse_retry_after("", now));
    CHECK_FALSE(sb::parse_retry_after("-1", now));
    CHECK_FALSE(sb::parse_retry_after("1.5", now));
    CHECK_FALSE(sb::parse_retry_after("soon", now));
    CHECK_FALSE(sb::parse_retry_after("99999999999", now));
    CHECK_FALSE(sb::parse_retry_after("Fri, 31 Feb 2026 20:00:07 GMT", now));
    CHECK_FALSE(sb::parse_retry_after("Fri, 04 Dcx 2026 20:00:07 GMT", now));
    CHECK_FALSE(sb::parse_retry_after("Fri, 04 Dec 2026 25:00:07 GMT", now));
  }

  TEST_CASE("throttle policy: Retry-After honoured - the pause doubles - accepted resets it") {
    seckill::manual_clock clock;
    sb::throttle_options o;
    o.initial = 200ms;
    o.max = 1600ms;
    o.max_refusals = 10;
    sb::throttle_policy<seckill::manual_clock> p(o, clock);
    CHECK_FALSE(p.backing_off());
    auto d = p.refused(3000ms);  // the shop's Retry-After is longer than the back-off
    CHECK_FALSE(d.stop);
    CHECK(d.wait == 3000ms);
    CHECK(d.until == clock.now() + 3000ms);
    CHECK(p.backing_off());
    clock.advance(2999ms);
    CHECK(p.backing_off());
    clock.advance(1ms);
    CHECK_FALSE(p.backing_off());
    // Without Retry-After: backoff_delay's [d/2, d] of 200, 400, 800, 1600, 1600.
    ms bound = 400ms;
    for (int i = 0; i < 4; ++i) {
      d = p.refused();
      const ms top = std::min(bound, ms(1600));
      CHECK(d.wait >= top / 2);
      CHECK(d.wait <= top);
      bound *= 2;
      clock.advance(d.wait);
    }
    CHECK(p.refusals() == 5);
    p.accepted();
    CHECK(p.refusals() == 0);
    d = p.refused();
    CHECK(d.wait <= 200ms);  // from the start again
    // The same seed gives the same pauses.
    sb::throttle_policy<seckill::manual_clock> q1(o, clock), q2(o, clock);
    for (int i = 0; i < 3; ++i) CHECK(q1.refused().wait == q2.refused().wait);
  }

  TEST_CASE("throttle policy: max_refusals in a row stop the account - an accepted one resets") {
    seckill::manual_clock clock;
    sb::throttle_options o;
    o.max_refusals = 3;
    sb::throttle_policy<seckill::manual_clock> p(o, clock);
    CHECK_FALSE(p.refused(100ms).stop);
    CHECK_FALSE(p.refused().stop);
    p.accepted();
    CHECK_FALSE(p.refused().stop);
    CHECK_FALSE(p.refused().stop);
    const auto last = p.refused();
    CHECK(last.stop);
    CHECK(last.refusals == 3);
    CHECK(p.stopped());
    CHECK_FALSE(p.backing_off());
    // Two accounts: one stopped, the other untouched.
    sb::throttle_policy<seckill::manual_clock> other(o, clock);
    CHECK_FALSE(other.stopped());
    CHECK_FALSE(other.backing_off());
    sb::throttle_options zero;
    zero.max_refusals = 0;  // at least one
    sb::throttle_policy<seckill::manual_clock> z(zero, clock);
    CHECK(z.refused().stop);
  }
}
