#include <seckill/limit/bulkhead.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

TEST_SUITE("unit") {
  TEST_CASE("bulkhead: at most max_in_flight permits - released by RAII") {
    seckill::bulkhead b{2};
    CHECK(b.max_in_flight() == 2);
    auto p1 = b.try_acquire();
    CHECK(p1);
    {
      auto p2 = b.try_acquire();
      CHECK(p2);
      CHECK(b.in_flight() == 2);
      std::error_code ec;
      auto p3 = b.try_acquire(ec);
      CHECK_FALSE(p3);
      CHECK(ec == seckill::errc::bulkhead_full);
    }
    CHECK(b.in_flight() == 1);
    std::error_code ec;
    auto p4 = b.try_acquire(ec);
    CHECK(p4);
    CHECK_FALSE(ec);
    // Moving a permit moves the slot; release() gives it back once.
    seckill::bulkhead_permit moved = std::move(p4);
    CHECK_FALSE(p4);  // NOLINT(bugprone-use-after-move)
    CHECK(moved);
    moved.release();
    moved.release();
    CHECK_FALSE(moved);
    CHECK(b.in_flight() == 1);
    p1 = b.try_acquire();  // move-assign releases the old slot first
    CHECK(b.in_flight() == 1);
  }

  TEST_CASE("bulkhead: max_in_flight 0 is refused with the value") {
    try {
      seckill::bulkhead b{0};
      FAIL("accepted max_in_flight 0");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find("max_in_flight 0") != std::string::npos);
    }
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("bulkhead: racing threads never hold more than max_in_flight") {
    seckill::bulkhead b{3};
    std::atomic<int> holding{0};
    std::atomic<int> peak{0};
    std::atomic<long> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20'000; ++i) {
          auto p = b.try_acquire();
          if (!p) continue;
          admitted.fetch_add(1);
          const int now = holding.fetch_add(1) + 1;
          int seen = peak.load();
          while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          }
          holding.fetch_sub(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(peak.load() <= 3);
    CHECK(peak.load() >= 1);
    CHECK(admitted.load() > 0);
    CHECK(b.in_flight() == 0);
  }
}
