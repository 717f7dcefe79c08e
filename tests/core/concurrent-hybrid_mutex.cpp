// detail::hybrid_mutex: mutual exclusion whether a waiter spins or sleeps,
// and a sleeper is woken by the unlock.
#include <seckill/detail/hybrid_mutex.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

TEST_SUITE("concurrent") {
  TEST_CASE("hybrid_mutex: four threads add under it and lose nothing") {
    seckill::detail::hybrid_mutex m;
    long counter = 0;  // not atomic: only the lock keeps it right
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50'000; ++i) {
          std::lock_guard lock(m);
          ++counter;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(counter == 200'000);
  }

  TEST_CASE("hybrid_mutex: a waiter past its spins sleeps and is woken by the unlock") {
    seckill::detail::hybrid_mutex m;
    std::atomic<bool> took{false};
    m.lock();
    CHECK_FALSE(m.try_lock());
    std::thread waiter([&] {
      std::lock_guard lock(m);
      took = true;
    });
    // Held far longer than the spin lasts: the waiter is asleep by now.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(took.load());
    m.unlock();
    waiter.join();
    CHECK(took.load());
    CHECK(m.try_lock());
    m.unlock();
  }
}
