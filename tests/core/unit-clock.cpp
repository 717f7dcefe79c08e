#include <seckill/clock.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_SUITE("unit") {
  TEST_CASE("manual_clock starts at 2025-01-01 since the Unix epoch by default") {
    seckill::manual_clock clock;
    CHECK(clock.now().time_since_epoch() == 1735689600s);
    seckill::manual_clock other{seckill::manual_clock::time_point{42ms}};
    CHECK(other.now().time_since_epoch() == 42ms);
  }

  TEST_CASE("manual_clock copies share one time source") {
    seckill::manual_clock test_side;
    seckill::manual_clock policy_side = test_side;
    CHECK(policy_side.shares_source_with(test_side));
    const auto t0 = policy_side.now();
    test_side.advance(1500us);
    CHECK(policy_side.now() - t0 == 1500us);
    test_side.advance(-500us);
    CHECK(policy_side.now() - t0 == 1ms);
    test_side.set(t0 + 1h);
    CHECK(policy_side.now() - t0 == 1h);
    CHECK_FALSE(seckill::manual_clock{}.shares_source_with(test_side));
  }

  TEST_CASE("coarse_steady_clock is steady and reports its resolution") {
    const auto res = seckill::coarse_steady_clock::resolution();
    CHECK(res > 0ns);
    CHECK(res <= 20ms);
    auto prev = seckill::coarse_steady_clock::now();
    for (int i = 0; i < 1000; ++i) {
      const auto now = seckill::coarse_steady_clock::now();
      CHECK(now >= prev);
      prev = now;
    }
    // It tracks the fine clock within its resolution (plus scheduling slack).
    const auto fine = std::chrono::steady_clock::now().time_since_epoch();
    const auto coarse = seckill::coarse_steady_clock::now().time_since_epoch();
    CHECK(std::chrono::abs(fine - coarse) < res + 50ms);
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("manual_clock advances from several threads add up") {
    seckill::manual_clock clock;
    const auto t0 = clock.now();
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([copy = clock] {
        for (int i = 0; i < 10000; ++i) {
          copy.advance(1ns);
          (void)copy.now();
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(clock.now() - t0 == 20000ns);
  }
}
