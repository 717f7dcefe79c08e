#include <seckill/clock.hpp>
#include <seckill/error.hpp>
#include <seckill/id/snowflake.hpp>

#include "support/error_message.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace unit_snowflake {

// Manual time that also moves forward by `step` every `every` reads (0: never),
// so a generator that waits for its clock makes progress without a sleep, and
// the test can count how often it read the clock.
struct stepping_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<stepping_clock, duration>;
  static constexpr bool is_steady = false;

  struct shared {
    seckill::manual_clock base;
    std::int64_t reads = 0;
    std::int64_t every = 0;
    duration step = 1ms;
  };
  std::shared_ptr<shared> s = std::make_shared<shared>();

  time_point now() const noexcept {
    ++s->reads;
    if (s->every != 0 && s->reads % s->every == 0) s->base.advance(s->step);
    return time_point{s->base.now().time_since_epoch()};
  }
  void advance(duration d) const noexcept { s->base.advance(d); }
  std::int64_t reads() const noexcept { return s->reads; }
  void step_every(std::int64_t reads) const noexcept { s->every = reads; }
  std::int64_t millis() const noexcept {
    return std::chrono::floor<std::chrono::milliseconds>(s->base.now().time_since_epoch()).count();
  }
};

constexpr std::int64_t epoch_ms = seckill::default_epoch.count();

// A clock counting whole `Period`s that a test sets to any value, extremes
// included; copies share one reading.
template <class Period>
struct settable_clock {
  using rep = std::int64_t;
  using period = Period;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<settable_clock, duration>;
  static constexpr bool is_steady = false;

  std::shared_ptr<std::atomic<rep>> ticks = std::make_shared<std::atomic<rep>>(0);

  explicit settable_clock(rep start) { ticks->store(start); }
  time_point now() const noexcept { return time_point{duration{ticks->load()}}; }
  void set(rep t) const noexcept { ticks->store(t); }
};

constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

using seckill::test::message_of;

seckill::errc code_of(auto&& f) {
  try {
    f();
  } catch (const seckill::error& e) {
    return static_cast<seckill::errc>(e.code().value());
  }
  return seckill::errc{};
}

}  // namespace unit_snowflake

using namespace unit_snowflake;

TEST_SUITE("unit") {
  TEST_CASE("snowflake: the twitter layout is 1/41/5/5/12 and custom layouts add up") {
    using L = seckill::twitter_layout;
    static_assert(L::timestamp_bits == 41 && L::datacenter_bits == 5 && L::worker_bits == 5 &&
                  L::sequence_bits == 12);
    CHECK(L::timestamp_shift == 22);
    CHECK(L::datacenter_shift == 17);
    CHECK(L::worker_shift == 12);
    CHECK(L::max_sequence == 4095);
    CHECK(L::max_worker == 31);
    CHECK(L::max_timestamp == (std::int64_t{1} << 41) - 1);
    using wide = seckill::snowflake_layout<39, 0, 16, 8>;
    CHECK(wide::max_datacenter == 0);
    CHECK(wide::max_worker == 65535);
    CHECK(seckill::snowflake<wide, seckill::manual_clock>::ids_per_millisecond == 256);
    CHECK(seckill::snowflake<>::ids_per_millisecond == 4096);
    CHECK(sizeof(seckill::snowflake<>) == 128);  // the state's cache line + the config's
  }

  TEST_CASE(
      "snowflake: ids carry the clock's millisecond since the epoch plus node ids and a sequence") {
    seckill::manual_clock clock;
    clock.advance(1234567us);  // 1234.567 ms past 2025-01-01
    seckill::snowflake<seckill::twitter_layout, seckill::manual_clock> gen(
        3, 17, seckill::default_epoch, clock);
    const auto expected_ms = 1735689600000 + 1234 - epoch_ms;
    const auto a = gen.next();
    const auto b = gen.next();
    const auto pa = decltype(gen)::decompose(a);
    CHECK(pa.timestamp.count() == expected_ms);
    CHECK(pa.datacenter == 3);
    CHECK(pa.worker == 17);
    CHECK(pa.sequence == 0);
    CHECK(decltype(gen)::decompose(b).sequence == 1);
    CHECK(a == (expected_ms << 22 | 3 << 17 | 17 << 12));
    CHECK(gen.time_of(a) == seckill::manual_clock::time_point{1735689600000ms + 1234ms});
    clock.advance(1ms);
    const auto c = gen.next();
    CHECK(decltype(gen)::decompose(c).timestamp.count() == expected_ms + 1);
    CHECK(decltype(gen)::decompose(c).sequence == 0);
    CHECK(gen.datacenter_id() == 3);
    CHECK(gen.worker_id() == 17);
    CHECK(gen.epoch() == seckill::default_epoch);
  }

  TEST_CASE("snowflake: decompose and compose round-trip with a custom layout and epoch") {
    using layout = seckill::snowflake_layout<39, 3, 13, 8>;
    seckill::manual_clock clock;
    const auto epoch = 1'735'000'000'000ms;
    seckill::snowflake<layout, seckill::manual_clock> gen(5, 8000, epoch, clock);
    using gen_t = decltype(gen);
    std::int64_t prev = -1;
    for (int i = 0; i < 2000; ++i) {
      if (i % 200 == 0) clock.advance(7ms);  // 256 ids per millisecond here
      const auto id = gen.next();
      CHECK(id > prev);
      prev = id;
      const auto p = gen_t::decompose(id);
      CHECK(p.datacenter == 5);
      CHECK(p.worker == 8000);
      CHECK(p.sequence <= 255);
      CHECK(gen_t::compose(p) == id);
      CHECK(p.timestamp ==
            std::chrono::floor<std::chrono::milliseconds>(clock.now().time_since_epoch()) - epoch);
    }
    const seckill::snowflake_parts parts{123456789ms, 7, 8191, 255};
    CHECK(gen_t::decompose(gen_t::compose(parts)) == parts);
    CHECK(gen_t::compose({}) == 0);
  }

  TEST_CASE("snowflake: the default generator runs on the system clock") {
    seckill::snowflake<> gen(1, 2);
    const auto before =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    const auto id = gen.next();
    const auto after = std::chrono::system_clock::now();
    CHECK(gen.time_of(id) >= before);
    CHECK(gen.time_of(id) <= after);
    CHECK(gen.next() > id);
  }

  TEST_CASE("snowflake: bad node ids and epochs and ids are refused with the value seen") {
    using gen_t = seckill::snowflake<seckill::twitter_layout, seckill::manual_clock>;
    seckill::manual_clock clock;
    CHECK(message_of([&] { gen_t g(0, 40, seckill::default_epoch, clock); }) ==
          "worker_id 40 out of range [0, 31]: invalid argument");
    CHECK(message_of([&] { gen_t g(32, 0, seckill::default_epoch, clock); }) ==
          "datacenter_id 32 out of range [0, 31]: invalid argument");
    CHECK(code_of([&] { gen_t g(0, 4000000000u, seckill::default_epoch, clock); }) ==
          seckill::errc::invalid_argument);
    using no_dc =
        seckill::snowflake<seckill::snowflake_layout<41, 0, 10, 12>, seckill::manual_clock>;
    CHECK(message_of([&] { no_dc g(1, 0, seckill::default_epoch, clock); }) ==
          "datacenter_id 1 out of range [0, 0]: invalid argument");
    CHECK_NOTHROW(no_dc(0, 1023, seckill::default_epoch, clock));
    // An epoch after the clock's now: the ids would have negative timestamps.
    const auto msg = message_of([&] { gen_t g(0, 0, 1'735'689'600'001ms, clock); });
    CHECK(msg.find("reads -1 ms since it") != std::string::npos);
    // An epoch so early that 20 timestamp bits (17 minutes) are already used up.
    using short_ts =
        seckill::snowflake<seckill::snowflake_layout<20, 5, 5, 33>, seckill::manual_clock>;
    CHECK(code_of([&] { short_ts g(0, 0, 1'735'689'600'000ms - 1'048'576ms, clock); }) ==
          seckill::errc::invalid_argument);
    CHECK_NOTHROW(short_ts(0, 0, 1'735'689'600'000ms - 1'048'575ms, clock));
    // Ids no generator issues, fields out of range.
    CHECK(message_of([] { (void)gen_t::decompose(-5); }) ==
          "snowflake id -5 is negative: not a snowflake id: invalid argument");
    CHECK(message_of([] {
            (void)gen_t::compose({1ms, 0, 0, 4096});
          }) == "sequence 4096 out of range [0, 4095]: invalid argument");
    CHECK(code_of([] {
            (void)gen_t::compose({-1ms, 0, 0, 0});
          }) == seckill::errc::invalid_argument);
    CHECK(code_of([] {
            (void)gen_t::compose({0ms, 32, 0, 0});
          }) == seckill::errc::invalid_argument);
  }

  TEST_CASE("snowflake: the timestamp running out of bits is an error and not a wrap-around") {
    using short_ts =
        seckill::snowflake<seckill::snowflake_layout<20, 5, 5, 33>, seckill::manual_clock>;
    seckill::manual_clock clock;
    short_ts gen(0, 0, 1'735'689'600'000ms - 1'048'570ms, clock);
    CHECK(gen.next() > 0);
    clock.advance(5ms);
    CHECK(gen.next() > 0);
    clock.advance(1ms);
    std::error_code ec;
    CHECK(gen.next(ec) == -1);
    CHECK(ec == seckill::errc::timestamp_out_of_range);
    const auto msg = message_of([&] { (void)gen.next(); });
    CHECK(msg.find("clock at 1048576 ms since the epoch") != std::string::npos);
    CHECK(msg.find("20-bit timestamp range [0, 1048575]") != std::string::npos);
  }

  TEST_CASE("snowflake: ids strictly increase within and across milliseconds") {
    seckill::manual_clock clock;
    seckill::snowflake<seckill::twitter_layout, seckill::manual_clock> gen(
        0, 0, seckill::default_epoch, clock);
    std::int64_t prev = gen.next();
    for (int i = 0; i < 20000; ++i) {
      if (i % 1000 == 0) clock.advance(std::chrono::microseconds(1 + (i * 37) % 3000));
      const auto id = gen.next();
      REQUIRE(id > prev);
      prev = id;
    }
  }

  TEST_CASE("snowflake: an exhausted sequence waits for the next millisecond and never repeats") {
    stepping_clock clock;
    seckill::snowflake<seckill::twitter_layout, stepping_clock> gen(1, 1, seckill::default_epoch,
                                                                    clock);
    using gen_t = decltype(gen);
    const auto ms0 = clock.millis() - epoch_ms;
    std::int64_t prev = -1;
    for (int i = 0; i < 4096; ++i) {
      const auto id = gen.next();
      REQUIRE(id > prev);
      prev = id;
      REQUIRE(gen_t::decompose(id).timestamp.count() == ms0);
      REQUIRE(gen_t::decompose(id).sequence == static_cast<std::uint32_t>(i));
    }
    // The 4097th id of this millisecond: the generator must keep reading the
    // clock until it moves (here after 500 more reads), then start at sequence 0.
    clock.step_every(clock.reads() + 500);
    const auto reads_before = clock.reads();
    const auto id = gen.next();
    CHECK(clock.reads() - reads_before >= 500);
    CHECK(id > prev);
    CHECK(gen_t::decompose(id).timestamp.count() == ms0 + 1);
    CHECK(gen_t::decompose(id).sequence == 0);
  }

  TEST_CASE("snowflake: wait_up_to<15> waits out rollbacks of 1 and 10 ms and refuses 50 ms") {
    for (const int back : {1, 10, 15, 16, 50}) {
      CAPTURE(back);
      stepping_clock clock;
      seckill::snowflake<seckill::twitter_layout, stepping_clock, seckill::wait_up_to<15>> gen(
          0, 0, seckill::default_epoch, clock);
      using gen_t = decltype(gen);
      clock.advance(100ms);
      const auto before = gen.next();
      clock.advance(-std::chrono::milliseconds(back));
      clock.step_every(clock.reads() + 10);  // the clock then moves 1 ms every 10 reads
      std::error_code ec;
      const auto reads_before = clock.reads();
      const auto id = gen.next(ec);
      if (back <= 15) {
        CHECK_FALSE(ec);
        CHECK(id > before);
        CHECK(gen_t::decompose(id).timestamp >= gen_t::decompose(before).timestamp);
        // It waited: the clock was read until it had caught up.
        CHECK(clock.reads() - reads_before >= 10 * (back - 1));
      } else {
        CHECK(ec == seckill::errc::clock_rollback);
        CHECK(id == -1);
        CHECK(clock.reads() - reads_before <= 2);  // refused at once
        clock.step_every(0);
        CHECK(message_of([&] {
                (void)gen.next();
              }).rfind("clock moved backwards by " + std::to_string(back) + " ms", 0) == 0);
      }
    }
    // The default policy is wait_up_to<15>.
    static_assert(std::is_same_v<seckill::snowflake<>::rollback_policy, seckill::wait_up_to<15>>);
  }

  TEST_CASE("snowflake: fail_on_rollback refuses any rollback until the clock catches up") {
    for (const int back : {1, 10, 50}) {
      CAPTURE(back);
      seckill::manual_clock clock;
      seckill::snowflake<seckill::twitter_layout, seckill::manual_clock, seckill::fail_on_rollback>
          gen(0, 0, seckill::default_epoch, clock);
      const auto before = gen.next();
      clock.advance(-std::chrono::milliseconds(back));
      std::error_code ec;
      CHECK(gen.next(ec) == -1);
      CHECK(ec == seckill::errc::clock_rollback);
      const auto msg = message_of([&] { (void)gen.next(); });
      CHECK(msg.find("clock moved backwards by " + std::to_string(back) + " ms") !=
            std::string::npos);
      CHECK(msg.find("fail_on_rollback") != std::string::npos);
      // Once the clock is back where it was, ids continue.
      clock.advance(std::chrono::milliseconds(back));
      const auto after = gen.next(ec);
      CHECK_FALSE(ec);
      CHECK(after > before);
      // A step back within the same millisecond is no rollback.
      clock.advance(700us);
      clock.advance(-300us);
      CHECK(gen.next(ec) > after);
      CHECK_FALSE(ec);
    }
  }

  TEST_CASE("snowflake: logical_clock keeps issuing through rollbacks up to its drift") {
    for (const int back : {1, 10, 50}) {
      CAPTURE(back);
      stepping_clock clock;
      seckill::snowflake<seckill::twitter_layout, stepping_clock, seckill::logical_clock<20>> gen(
          0, 0, seckill::default_epoch, clock);
      using gen_t = decltype(gen);
      const auto before = gen.next();
      clock.advance(-std::chrono::milliseconds(back));
      std::error_code ec;
      const auto reads_before = clock.reads();
      const auto id = gen.next(ec);
      if (back <= 20) {
        CHECK_FALSE(ec);
        CHECK(id == before + 1);  // same timestamp, next sequence, no waiting
        CHECK(gen_t::decompose(id).timestamp == gen_t::decompose(before).timestamp);
        CHECK(clock.reads() - reads_before <= 2);
      } else {
        CHECK(ec == seckill::errc::clock_drift_exceeded);
        const auto msg = message_of([&] { (void)gen.next(); });
        CHECK(msg.find("50 ms ahead of the clock") != std::string::npos);
        CHECK(msg.find("maximum drift 20 ms") != std::string::npos);
      }
    }
  }

  // A policy of the user's own: a rollback of up to 3 ms is bridged by issuing
  // ahead (as logical_clock does); a longer one fails with bulkhead_full, say,
  // because this service would rather shed the request than wait.
  struct bridge_small_rollbacks {
    static constexpr seckill::rollback_decision on_clock_behind(std::int64_t last, std::int64_t now,
                                                                bool exhausted) noexcept {
      if (exhausted)
        return {seckill::rollback_action::wait_for_clock, seckill::errc::clock_rollback};
      if (last - now > 3) return {seckill::rollback_action::fail, seckill::errc::bulkhead_full};
      return {seckill::rollback_action::issue_ahead, seckill::errc::clock_rollback};
    }
    static std::string describe() { return "bridge_small_rollbacks bridges at most 3 ms"; }
  };
  static_assert(seckill::rollback_policy<bridge_small_rollbacks>);
  static_assert(!seckill::rollback_policy<int>);

  TEST_CASE("snowflake: a rollback policy of the user's own decides what a rollback does") {
    seckill::manual_clock clock;
    seckill::snowflake<seckill::twitter_layout, seckill::manual_clock, bridge_small_rollbacks> gen(
        0, 0, seckill::default_epoch, clock);
    using gen_t = decltype(gen);
    const auto before = gen.next();
    clock.advance(-2ms);
    std::error_code ec;
    const auto bridged = gen.next(ec);
    CHECK_FALSE(ec);
    CHECK(bridged == before + 1);  // issued at the last timestamp, no wait
    CHECK(gen_t::decompose(bridged).timestamp == gen_t::decompose(before).timestamp);
    clock.advance(-5ms);
    CHECK(gen.next(ec) == -1);
    CHECK(ec == seckill::errc::bulkhead_full);
    const auto msg = message_of([&] { (void)gen.next(); });
    CHECK(msg.find("clock moved backwards by 7 ms") != std::string::npos);
    CHECK(msg.find("bridge_small_rollbacks bridges at most 3 ms") != std::string::npos);
    clock.advance(10ms);
    const auto after = gen.next(ec);
    CHECK_FALSE(ec);
    CHECK(after > bridged);
  }

  TEST_CASE("snowflake: logical_clock borrows future milliseconds when the sequence runs out") {
    seckill::manual_clock clock;
    seckill::snowflake<seckill::twitter_layout, seckill::manual_clock, seckill::logical_clock<2>>
        gen(0, 0, seckill::default_epoch, clock);
    using gen_t = decltype(gen);
    const auto ms0 =
        std::chrono::floor<std::chrono::milliseconds>(clock.now().time_since_epoch()).count() -
        epoch_ms;
    std::int64_t prev = -1;
    for (int i = 0; i < 3 * 4096; ++i) {  // this millisecond and two borrowed ones
      const auto id = gen.next();
      REQUIRE(id > prev);
      prev = id;
      REQUIRE(gen_t::decompose(id).timestamp.count() == ms0 + i / 4096);
    }
    std::error_code ec;
    CHECK(gen.next(ec) == -1);
    CHECK(ec == seckill::errc::clock_drift_exceeded);
    clock.advance(1ms);  // the clock catches up by one: one more millisecond to borrow
    const auto id = gen.next(ec);
    CHECK_FALSE(ec);
    CHECK(id > prev);
    CHECK(gen_t::decompose(id).timestamp.count() == ms0 + 3);
  }

  TEST_CASE(
      "snowflake: epochs at the ends of the 64-bit range are refused with the value seen - no "
      "overflow") {
    using gen_t = seckill::snowflake<seckill::twitter_layout, seckill::manual_clock>;
    seckill::manual_clock clock;  // 2025-01-01: 1735689600000 ms since the Unix epoch
    // The clock's reading minus INT64_MIN does not fit 64 bits.
    const auto lowest =
        message_of([&] { gen_t g(0, 0, std::chrono::milliseconds{i64_min}, clock); });
    CHECK(lowest.find("snowflake epoch -9223372036854775808 ms") != std::string::npos);
    CHECK(lowest.find("the clock reads 1735689600000 ms since its own epoch") != std::string::npos);
    CHECK(lowest.find("does not fit 64 bits") != std::string::npos);
    CHECK(code_of([&] { gen_t g(0, 0, std::chrono::milliseconds{i64_min}, clock); }) ==
          seckill::errc::invalid_argument);
    CHECK(code_of([&] { gen_t g(0, 0, std::chrono::milliseconds{i64_min + 1}, clock); }) ==
          seckill::errc::invalid_argument);
    // INT64_MAX and an epoch a year ahead: ids would have negative timestamps.
    const auto highest =
        message_of([&] { gen_t g(0, 0, std::chrono::milliseconds{i64_max}, clock); });
    CHECK(highest.find("snowflake epoch 9223372036854775807 ms") != std::string::npos);
    CHECK(highest.find("reads -9223370301165175807 ms since it") != std::string::npos);
    const auto ahead = message_of([&] { gen_t g(0, 0, 1'735'689'600'000ms + 365 * 24h, clock); });
    CHECK(ahead.find("reads -31536000000 ms since it, outside the 41-bit timestamp range [0, "
                     "2199023255551]") != std::string::npos);
    // An epoch longer ago than 41 bits of milliseconds (69 years).
    const auto behind =
        message_of([&] { gen_t g(0, 0, 1'735'689'600'000ms - 2'199'023'255'552ms, clock); });
    CHECK(behind.find("reads 2199023255552 ms since it") != std::string::npos);
    CHECK_NOTHROW(gen_t(0, 0, 1'735'689'600'000ms - 2'199'023'255'551ms, clock));
    // A clock counting seconds whose reading does not fit 64-bit milliseconds.
    using secs = settable_clock<std::ratio<1>>;
    using sec_gen = seckill::snowflake<seckill::twitter_layout, secs>;
    const auto coarse =
        message_of([] { sec_gen g(0, 0, seckill::default_epoch, secs(i64_max / 10)); });
    CHECK(coarse.find("does not fit 64-bit milliseconds") != std::string::npos);
    CHECK(code_of([] { sec_gen g(0, 0, seckill::default_epoch, secs(i64_min)); }) ==
          seckill::errc::invalid_argument);
    // Node ids at the ends of unsigned's range.
    CHECK(message_of([&] {
            gen_t g(0, std::numeric_limits<unsigned>::max(), seckill::default_epoch, clock);
          }) == "worker_id 4294967295 out of range [0, 31]: invalid argument");
    CHECK(message_of([&] {
            gen_t g(std::numeric_limits<unsigned>::max(), 0, seckill::default_epoch, clock);
          }) == "datacenter_id 4294967295 out of range [0, 31]: invalid argument");
  }

  TEST_CASE(
      "snowflake: a clock that jumps to the ends of its range gives timestamp_out_of_range - no "
      "overflow") {
    // Milliseconds, epoch before the clock's zero: INT64_MAX minus it overflows.
    using millis = settable_clock<std::milli>;
    millis clock(0);
    seckill::snowflake<seckill::twitter_layout, millis> gen(0, 0, -1000ms, clock);
    CHECK(seckill::snowflake<seckill::twitter_layout, millis>::decompose(gen.next()).timestamp ==
          1000ms);
    clock.set(i64_max - 10);
    std::error_code ec;
    CHECK(gen.next(ec) == -1);
    CHECK(ec == seckill::errc::timestamp_out_of_range);
    const auto msg = message_of([&] { (void)gen.next(); });
    CHECK(msg.find("the clock's reading minus the epoch at -1000 ms does not fit 64 bits") !=
          std::string::npos);
    // The lowest reading, epoch after the clock's zero: the difference overflows the other way.
    millis low(5000);
    seckill::snowflake<seckill::twitter_layout, millis, seckill::logical_clock<>> logical(
        1, 1, 1000ms, low);
    CHECK(logical.next() >= 0);
    low.set(i64_min);
    CHECK(logical.next(ec) == -1);
    CHECK(ec == seckill::errc::timestamp_out_of_range);
    // Seconds: INT64_MAX seconds do not fit 64-bit milliseconds.
    using secs = settable_clock<std::ratio<1>>;
    secs coarse(1'735'689'600);
    seckill::snowflake<seckill::twitter_layout, secs, seckill::fail_on_rollback> by_seconds(
        0, 0, seckill::default_epoch, coarse);
    CHECK(by_seconds.next() >= 0);
    coarse.set(i64_max);
    CHECK(by_seconds.next(ec) == -1);
    CHECK(ec == seckill::errc::timestamp_out_of_range);
    coarse.set(1'735'689'601);  // and back in range: ids again
    CHECK(by_seconds.next(ec) >= 0);
    CHECK_FALSE(ec);
  }

  TEST_CASE(
      "snowflake: decompose and compose and time_of at the ends of the id range - no overflow") {
    using gen_t = seckill::snowflake<seckill::twitter_layout, seckill::manual_clock>;
    const auto top = gen_t::decompose(i64_max);
    CHECK(top.timestamp.count() == seckill::twitter_layout::max_timestamp);
    CHECK(top.datacenter == 31);
    CHECK(top.worker == 31);
    CHECK(top.sequence == 4095);
    CHECK(gen_t::compose(top) == i64_max);
    CHECK(message_of([] { (void)gen_t::decompose(i64_min); }) ==
          "snowflake id -9223372036854775808 is negative: not a snowflake id: invalid argument");
    CHECK(message_of([] {
            (void)gen_t::compose({std::chrono::milliseconds{i64_min}, 0, 0, 0});
          }) == "timestamp -9223372036854775808 out of range [0, 2199023255551]: invalid argument");
    CHECK(message_of([] {
            (void)gen_t::compose({std::chrono::milliseconds{i64_max}, 0, 0, 0});
          }) == "timestamp 9223372036854775807 out of range [0, 2199023255551]: invalid argument");
    CHECK(code_of([] {
            (void)gen_t::compose({0ms, std::numeric_limits<std::uint32_t>::max(), 0, 0});
          }) == seckill::errc::invalid_argument);

    // time_of: the largest id of a 55-bit layout is 2^55 ms after the epoch, which
    // does not fit manual_clock's nanoseconds.
    using wide = seckill::snowflake<seckill::snowflake_layout<55, 0, 0, 8>, seckill::manual_clock>;
    seckill::manual_clock clock;
    wide w(0, 0, seckill::default_epoch, clock);
    CHECK(w.time_of(w.next()) ==
          seckill::manual_clock::time_point{
              std::chrono::floor<std::chrono::milliseconds>(clock.now().time_since_epoch())});
    const auto far = message_of([&] { (void)w.time_of(i64_max); });
    CHECK(far.find(
              "snowflake id 9223372036854775807: its time, 36028797018963967 ms after the epoch at "
              "1704067200000 ms, does not fit the clock's duration") != std::string::npos);
    CHECK(code_of([&] { (void)w.time_of(-1); }) == seckill::errc::invalid_argument);
    // time_of: an epoch near INT64_MAX plus the largest timestamp overflows 64 bits.
    using millis = settable_clock<std::milli>;
    seckill::snowflake<seckill::twitter_layout, millis> late(
        0, 0, std::chrono::milliseconds{i64_max - 10}, millis(i64_max - 5));
    const auto id = late.next();
    CHECK(late.time_of(id).time_since_epoch().count() == i64_max - 5);
    CHECK(message_of([&] {
            (void)late.time_of(i64_max);
          }).find("does not fit the clock's duration") != std::string::npos);
  }

  TEST_CASE("snowflake: next(error_code&) clears a previous error on success") {
    seckill::manual_clock clock;
    seckill::snowflake<seckill::twitter_layout, seckill::manual_clock> gen(
        0, 0, seckill::default_epoch, clock);
    std::error_code ec = seckill::errc::clock_rollback;
    CHECK(gen.next(ec) >= 0);
    CHECK_FALSE(ec);
  }
}

namespace unit_snowflake {

#if defined(__SANITIZE_THREAD__)
#define UNIT_SNOWFLAKE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNIT_SNOWFLAKE_TSAN 1
#endif
#endif

// 4 threads x 1M ids. Under ThreadSanitizer, which makes every atomic access
// some 20 times slower, the same race runs with 100k ids per thread.
#if defined(UNIT_SNOWFLAKE_TSAN)
constexpr std::size_t ids_per_thread = 100'000;
#else
constexpr std::size_t ids_per_thread = 1'000'000;
#endif
constexpr int threads = 4;

struct race_result {
  std::vector<std::int64_t> ids;
  std::size_t rollback_errors = 0;
  std::size_t drift_errors = 0;
  std::size_t other_errors = 0;
  std::size_t non_increasing = 0;
};

// Four threads share one generator while a fifth moves the manual clock forward
// a millisecond at a time and, every `period` milliseconds, back by `back_ms`.
// The clock moves once the threads have taken half a millisecond's ids since
// the last move, or at once when none was issued since the driver last looked
// (all waiting or refused), so both full and part-used milliseconds occur. Every thread retries a
// failed next() until it has its ids.
template <class Policy>
race_result race(int back_ms, int period) {
  seckill::manual_clock clock;
  seckill::snowflake<seckill::twitter_layout, seckill::manual_clock, Policy> gen(
      2, 9, seckill::default_epoch, clock);
  std::atomic<int> running{threads};
  struct alignas(64) progress {
    std::atomic<std::size_t> ids{0};
  };
  std::vector<progress> issued(threads);
  std::vector<race_result> per_thread(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& r = per_thread[static_cast<std::size_t>(t)];
      r.ids.reserve(ids_per_thread);
      std::int64_t prev = -1;
      std::error_code ec;
      while (r.ids.size() < ids_per_thread) {
        const auto id = gen.next(ec);
        if (ec) {
          if (ec == seckill::errc::clock_rollback)
            ++r.rollback_errors;
          else if (ec == seckill::errc::clock_drift_exceeded)
            ++r.drift_errors;
          else
            ++r.other_errors;
          std::this_thread::yield();
          continue;
        }
        if (id <= prev) ++r.non_increasing;
        prev = id;
        r.ids.push_back(id);
        issued[static_cast<std::size_t>(t)].ids.store(r.ids.size(), std::memory_order_relaxed);
      }
      running.fetch_sub(1);
    });
  }
  std::thread driver([&] {
    std::size_t at_last_move = 0;
    std::size_t at_last_look = 0;
    for (int ms = 1; running.load() > 0;) {
      std::size_t total = 0;
      for (const auto& p : issued) total += p.ids.load(std::memory_order_relaxed);
      const bool stalled = total == at_last_look;  // all waiting (or refused): move on
      at_last_look = total;
      if (total - at_last_move >= 2048 || stalled) {
        at_last_move = total;
        clock.advance(1ms);
        if (++ms % period == 0) clock.advance(-std::chrono::milliseconds(back_ms));
      }
      std::this_thread::yield();
    }
  });
  for (auto& w : workers) w.join();
  driver.join();

  race_result all;
  for (auto& r : per_thread) {
    all.ids.insert(all.ids.end(), r.ids.begin(), r.ids.end());
    all.rollback_errors += r.rollback_errors;
    all.drift_errors += r.drift_errors;
    all.other_errors += r.other_errors;
    all.non_increasing += r.non_increasing;
  }
  return all;
}

void check_unique(race_result& r) {
  REQUIRE(r.ids.size() == threads * ids_per_thread);
  CHECK(r.non_increasing == 0);
  std::sort(r.ids.begin(), r.ids.end());
  CHECK(std::adjacent_find(r.ids.begin(), r.ids.end()) == r.ids.end());
  using gen_t = seckill::snowflake<>;
  const auto first = gen_t::decompose(r.ids.front());
  const auto last = gen_t::decompose(r.ids.back());
  CHECK(first.datacenter == 2);
  CHECK(first.worker == 9);
  CHECK(last.datacenter == 2);
  CHECK(last.worker == 9);
  CHECK(r.other_errors == 0);
}

}  // namespace unit_snowflake

// One test case per policy and rollback size, so each runs as its own process.
TEST_SUITE("concurrent") {
  TEST_CASE("snowflake: 4 threads get unique ids through 1 ms rollbacks under wait_up_to<15>") {
    auto r = race<seckill::wait_up_to<15>>(1, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
    CHECK(r.rollback_errors == 0);  // waited out, never refused
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 10 ms rollbacks under wait_up_to<15>") {
    auto r = race<seckill::wait_up_to<15>>(10, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
    CHECK(r.rollback_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 50 ms rollbacks under wait_up_to<15>") {
    auto r = race<seckill::wait_up_to<15>>(50, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 1 ms rollbacks under fail_on_rollback") {
    auto r = race<seckill::fail_on_rollback>(1, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 10 ms rollbacks under fail_on_rollback") {
    auto r = race<seckill::fail_on_rollback>(10, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 50 ms rollbacks under fail_on_rollback") {
    auto r = race<seckill::fail_on_rollback>(50, 64);
    check_unique(r);
    CHECK(r.drift_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 1 ms rollbacks under logical_clock") {
    auto r = race<seckill::logical_clock<100>>(1, 64);
    check_unique(r);
    CHECK(r.rollback_errors == 0);  // a logical clock never reports a rollback
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 10 ms rollbacks under logical_clock") {
    auto r = race<seckill::logical_clock<100>>(10, 64);
    check_unique(r);
    CHECK(r.rollback_errors == 0);
  }
  TEST_CASE("snowflake: 4 threads get unique ids through 50 ms rollbacks under logical_clock") {
    auto r = race<seckill::logical_clock<100>>(50, 64);
    check_unique(r);
    CHECK(r.rollback_errors == 0);
  }

  TEST_CASE("snowflake: resume_after puts every later id past a timestamp another generator used") {
    seckill::manual_clock clock;
    using gen_t =
        seckill::snowflake<seckill::twitter_layout, seckill::manual_clock, seckill::wait_up_to<15>>;
    gen_t gen(1, 2, seckill::default_epoch, clock);
    CHECK(gen.last_timestamp() == 0ms);
    const auto first = gen.next();
    const auto now = gen_t::decompose(first).timestamp;
    CHECK(gen.last_timestamp() == now);
    // the previous owner of the pair used timestamps up to now + 40 ms: 40 ms
    // is beyond wait_up_to<15>, so ids fail as after a rollback, with the gap
    const auto previous = now + 40ms;
    gen.resume_after(previous);
    CHECK(gen.last_timestamp() == previous);
    std::error_code ec;
    CHECK(gen.next(ec) == -1);
    CHECK(ec == seckill::errc::clock_rollback);
    CHECK(message_of([&] { (void)gen.next(); }).rfind("clock moved backwards by 40 ms", 0) == 0);
    // once the clock passes it, ids resume strictly after it
    clock.advance(41ms);
    const auto id = gen.next(ec);
    CHECK_FALSE(ec);
    CHECK(gen_t::decompose(id).timestamp > previous);
    // an older timestamp changes nothing; one outside the layout is refused
    gen.resume_after(now);
    CHECK(gen.last_timestamp() == gen_t::decompose(id).timestamp);
    CHECK(message_of([&] {
            gen.resume_after(-1ms);
          }).rfind("snowflake resume_after timestamp -1 ms out of range [0, 2199023255551]", 0) ==
          0);
  }
}
