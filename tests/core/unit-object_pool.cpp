// This file replaces the global operator new for the core test binary (through
// bench/support/alloc_counter.hpp) so tests can count heap allocations;
// core_alloc_probe::allocations() gives the count to other files of the binary.
#include "../../bench/support/alloc_counter.hpp"

#include <seckill/error.hpp>
#include <seckill/pool/object_pool.hpp>

#include "support/error_message.hpp"

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace core_alloc_probe {
std::size_t allocations() noexcept { return seckill::bench::allocations(); }
}  // namespace core_alloc_probe

namespace unit_object_pool {

std::atomic<int> constructed{0};

struct request {
  request() { constructed.fetch_add(1, std::memory_order_relaxed); }
  void reset() noexcept {
    ++resets;
    payload = 0;
  }
  std::atomic<int> in_use{0};  // set by whoever holds it: two holders at once is a bug
  int resets = 0;
  std::uint64_t payload = 0;
  std::array<char, 1200> body{};
};

struct counting_reset {
  int* calls;
  void operator()(request& r) const noexcept {
    ++*calls;
    r.payload = 7;
  }
};

using seckill::test::message_of;

#if defined(__SANITIZE_THREAD__)
#define UNIT_OBJECT_POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNIT_OBJECT_POOL_TSAN 1
#endif
#endif
#if defined(UNIT_OBJECT_POOL_TSAN)
constexpr int rounds = 20'000;  // ThreadSanitizer: the same races, fewer of them
#else
constexpr int rounds = 200'000;
#endif

}  // namespace unit_object_pool

using namespace unit_object_pool;

TEST_SUITE("unit") {
  TEST_CASE("object_pool: pooled<T> is a pointer-sized move-only handle") {
    static_assert(sizeof(seckill::pooled<request>) == sizeof(void*));
    static_assert(sizeof(seckill::pooled<char>) == sizeof(void*));
    static_assert(!std::is_copy_constructible_v<seckill::pooled<request>>);
    static_assert(!std::is_copy_assignable_v<seckill::pooled<request>>);
    static_assert(std::is_nothrow_move_constructible_v<seckill::pooled<request>>);
    static_assert(std::is_nothrow_move_assignable_v<seckill::pooled<request>>);
    seckill::object_pool<request> pool(2);
    auto a = pool.acquire();
    request* raw = a.get();
    auto b = std::move(a);
    CHECK_FALSE(a);
    CHECK(a.get() == nullptr);
    CHECK(b.get() == raw);
    CHECK(&*b == raw);
    b->payload = 5;
    CHECK(raw->payload == 5);
    seckill::pooled<request> c;
    CHECK_FALSE(c);
    c = std::move(b);
    CHECK(c.get() == raw);
    c.reset();
    CHECK_FALSE(c);
  }

  TEST_CASE("object_pool: objects are constructed once and up front") {
    constructed = 0;
    seckill::object_pool<request> pool(8);
    CHECK(constructed == 8);
    CHECK(pool.capacity() == 8);
    for (int i = 0; i < 1000; ++i) {
      auto a = pool.acquire();
      auto b = pool.acquire();
      CHECK(a.get() != b.get());
    }
    CHECK(constructed == 8);
  }

  TEST_CASE("object_pool: exhaustion is an empty try_acquire and a pool_exhausted error") {
    for (const std::size_t cache : {std::size_t{0}, std::size_t{32}}) {
      CAPTURE(cache);
      seckill::object_pool<request> pool(4, {.thread_cache = cache});
      std::vector<seckill::pooled<request>> held;
      std::set<request*> distinct;
      for (int i = 0; i < 4; ++i) {
        held.push_back(pool.try_acquire());
        REQUIRE(held.back());
        distinct.insert(held.back().get());
      }
      CHECK(distinct.size() == 4);
      CHECK_FALSE(pool.try_acquire());
      std::error_code ec;
      CHECK_FALSE(pool.acquire(ec));
      CHECK(ec == seckill::errc::pool_exhausted);
      CHECK(message_of([&] { (void)pool.acquire(); }) ==
            "object_pool exhausted: all 4 objects in use (maximum capacity 4): object pool "
            "exhausted");
      held.pop_back();  // one comes back
      auto again = pool.acquire(ec);
      CHECK(again);
      CHECK_FALSE(ec);
      CHECK(distinct.count(again.get()) == 1);
      CHECK_FALSE(pool.try_acquire());
    }
  }

  TEST_CASE("object_pool: Reset runs on every release") {
    seckill::object_pool<request> pool(1);  // call_reset: request::reset()
    {
      auto r = pool.acquire();
      r->payload = 42;
      CHECK(r->resets == 0);
    }
    auto r = pool.acquire();
    CHECK(r->payload == 0);
    CHECK(r->resets == 1);

    int calls = 0;
    seckill::object_pool<request, counting_reset> custom(2, {}, counting_reset{&calls});
    {
      auto a = custom.acquire();
      auto b = custom.acquire();
    }
    CHECK(calls == 2);
    CHECK(custom.acquire()->payload == 7);
    CHECK(calls == 3);

    seckill::object_pool<request, seckill::no_reset> raw(1);
    raw.acquire()->payload = 9;
    CHECK(raw.acquire()->payload == 9);
    CHECK(raw.acquire()->resets == 0);
  }

  TEST_CASE("object_pool: the growth policy adds objects up to its maximum") {
    constructed = 0;
    seckill::object_pool<request> pool(2, {.growth = seckill::growth_policy::by(2, 5)});
    CHECK(pool.capacity() == 2);
    CHECK(pool.max_capacity() == 5);
    std::vector<seckill::pooled<request>> held;
    for (int i = 0; i < 5; ++i) {
      held.push_back(pool.try_acquire());
      REQUIRE(held.back());
    }
    CHECK(pool.capacity() == 5);
    CHECK(constructed == 5);
    CHECK_FALSE(pool.try_acquire());
    CHECK(message_of([&] { (void)pool.acquire(); }).find("all 5 objects in use") !=
          std::string::npos);
    held.clear();
    CHECK(pool.capacity() == 5);  // it never shrinks
    // A pool may also start empty and grow on demand.
    seckill::object_pool<request> lazy(0, {.growth = seckill::growth_policy::by(1, 2)});
    CHECK(lazy.capacity() == 0);
    auto a = lazy.acquire();
    auto b = lazy.acquire();
    CHECK_FALSE(lazy.try_acquire());
  }

  TEST_CASE("object_pool: bad capacities are refused with the value seen") {
    CHECK(message_of([] { seckill::object_pool<int, seckill::no_reset> p(0); }) ==
          "object_pool capacity 0 out of range [1, 4294967294]: invalid argument");
    CHECK(message_of([] {
            seckill::object_pool<int, seckill::no_reset> p(
                8, {.growth = seckill::growth_policy::by(4, 6)});
          }) == "growth max_capacity 6 is below the capacity 8: invalid argument");
  }

  TEST_CASE("object_pool: no heap allocation after warm-up") {
    seckill::object_pool<request> pool(16);
    std::array<seckill::pooled<request>, 8> held;
    // Warm-up: this thread's cache for the pool is created on first use.
    { auto w = pool.acquire(); }
    const auto before = core_alloc_probe::allocations();
    std::uint64_t sum = 0;
    for (int i = 0; i < 100'000; ++i) {
      auto r = pool.acquire();
      r->payload = static_cast<std::uint64_t>(i);
      sum += r->payload;
      held[static_cast<std::size_t>(i) % held.size()] = std::move(r);  // some held, some released
    }
    for (auto& h : held) h.reset();
    for (int i = 0; i < 1000;
         ++i) {  // exhaust and recover: the error path allocates nothing either
      std::array<seckill::pooled<request>, 16> all;
      for (auto& a : all) a = pool.try_acquire();
      std::error_code ec;
      auto extra = pool.acquire(ec);
      sum += ec ? 1 : 0;
    }
    const auto after = core_alloc_probe::allocations();
    CHECK(after - before == 0);
    CHECK(sum == 4'999'950'000ull + 1000);
    // The counter does count: a heap allocation shows up.
    auto* p = new request;
    CHECK(core_alloc_probe::allocations() - after == 1);
    delete p;
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("object_pool: objects released on another thread come back to the pool") {
    seckill::object_pool<request> pool(64);
    std::mutex m;
    std::condition_variable cv;
    std::deque<seckill::pooled<request>> handoff;
    bool done = false;
    int exhausted = 0;
    bool doubled = false;
    std::thread producer([&] {
      for (int i = 0; i < rounds; ++i) {
        auto r = pool.try_acquire();
        if (!r) {
          ++exhausted;
          std::this_thread::yield();
          --i;
          continue;
        }
        if (r->in_use.exchange(1) != 0) doubled = true;
        r->payload = static_cast<std::uint64_t>(i);
        std::lock_guard lock(m);
        handoff.push_back(std::move(r));
        cv.notify_one();
      }
      std::lock_guard lock(m);
      done = true;
      cv.notify_one();
    });
    std::uint64_t expected = 0;
    bool in_order = true;
    std::thread consumer([&] {
      for (;;) {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return !handoff.empty() || done; });
        if (handoff.empty()) return;
        auto r = std::move(handoff.front());
        handoff.pop_front();
        lock.unlock();
        if (r->payload != expected++) in_order = false;
        r->in_use.store(0);
        // r is released here, on the consumer thread
      }
    });
    producer.join();
    consumer.join();
    CHECK(in_order);
    CHECK_FALSE(doubled);
    CHECK(expected == static_cast<std::uint64_t>(rounds));
    // Every object is back: the objects cached by the two exited threads are
    // taken over, so the whole capacity can be held at once.
    std::vector<seckill::pooled<request>> all;
    std::set<request*> distinct;
    for (int i = 0; i < 64; ++i) {
      all.push_back(pool.try_acquire());
      REQUIRE(all.back());
      distinct.insert(all.back().get());
      CHECK(all.back()->in_use.load() == 0);
    }
    CHECK(distinct.size() == 64);
    CHECK_FALSE(pool.try_acquire());
  }

  TEST_CASE("object_pool: objects cached by a live thread can be taken by others") {
    seckill::object_pool<request> pool(4, {.thread_cache = 8});
    std::mutex m;
    std::condition_variable cv;
    int stage = 0;
    std::thread holder([&] {
      {
        std::vector<seckill::pooled<request>> v;
        for (int i = 0; i < 4; ++i) v.push_back(pool.acquire());
      }  // all four now sit in this thread's cache
      std::unique_lock lock(m);
      stage = 1;
      cv.notify_all();
      cv.wait(lock, [&] { return stage == 2; });
    });
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return stage == 1; });
    }
    std::vector<seckill::pooled<request>> mine;
    for (int i = 0; i < 4; ++i) {
      mine.push_back(pool.try_acquire());
      CHECK(mine.back());
    }
    CHECK_FALSE(pool.try_acquire());
    mine.clear();
    {
      std::lock_guard lock(m);
      stage = 2;
      cv.notify_all();
    }
    holder.join();
  }

  TEST_CASE("object_pool: four threads never hold the same object at once") {
    seckill::object_pool<request> pool(16, {.thread_cache = 4});
    std::atomic<int> shared_holders{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::array<seckill::pooled<request>, 3> held;
        for (int i = 0; i < rounds / 2; ++i) {
          auto& slot = held[static_cast<std::size_t>(i) % held.size()];
          if (slot) {
            slot->in_use.store(0);
            slot.reset();
          }
          slot = pool.try_acquire();
          if (!slot) continue;  // 4 x 3 < 16: rare, only while objects are in flight
          if (slot->in_use.exchange(1) != 0) shared_holders.fetch_add(1);
          slot->payload = static_cast<std::uint64_t>(t);
          if (slot->payload != static_cast<std::uint64_t>(t)) failures.fetch_add(1);
        }
        for (auto& h : held) {
          if (h) h->in_use.store(0);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(shared_holders == 0);
    CHECK(failures == 0);
    std::vector<seckill::pooled<request>> all;
    for (int i = 0; i < 16; ++i) {
      all.push_back(pool.try_acquire());
      REQUIRE(all.back());
    }
    CHECK_FALSE(pool.try_acquire());
  }
}
