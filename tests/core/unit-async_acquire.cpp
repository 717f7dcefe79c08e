// Asio's fenced blocks call std::atomic_thread_fence, which GCC flags under
// -fsanitize=thread (-Wtsan); TSan still sees Asio's own locks and atomics.
// With sanitizers at -O1, GCC 12 also reports Asio's use_future completion
// object as maybe-uninitialized (a false positive inside Asio).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <seckill/limit/async_acquire.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <ostream>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace unit_async_acquire {

using bucket = seckill::token_bucket<seckill::manual_clock>;

struct outcome {
  std::optional<std::error_code> ec;
  seckill::bulkhead_permit permit;
};

auto store(outcome& o) {
  return [&o](std::error_code ec, seckill::bulkhead_permit p) {
    o.ec = ec;
    o.permit = std::move(p);
  };
}

}  // namespace unit_async_acquire

using namespace unit_async_acquire;

TEST_SUITE("unit") {
  TEST_CASE("async_acquire(bucket): tokens there now complete through the executor") {
    asio::io_context ctx;
    seckill::manual_clock clock;
    bucket b{10, 2, clock};
    std::optional<std::error_code> result;
    seckill::async_acquire(b, 2, ctx.get_executor(), [&](std::error_code ec) { result = ec; });
    CHECK_FALSE(result.has_value());  // never inside the initiating call
    ctx.run();
    REQUIRE(result.has_value());
    CHECK_FALSE(*result);
    CHECK(b.available() == doctest::Approx(0));
  }

  TEST_CASE("async_acquire(bucket): waits the reservation's delay on a timer") {
    asio::io_context ctx;
    seckill::manual_clock clock;  // the delay is computed on it and waited in real time
    bucket b{100'000, 1, clock};  // one token per 10 us
    CHECK(b.try_acquire());
    std::optional<std::error_code> result;
    seckill::async_acquire(b, 1, ctx.get_executor(), [&](std::error_code ec) { result = ec; });
    // The token is already reserved: the bucket is in debt until it is due.
    CHECK(b.time_until() == 20us);
    ctx.run();
    REQUIRE(result.has_value());
    CHECK_FALSE(*result);
    CHECK(b.time_until() == 20us);  // the reservation was not given back
  }

  TEST_CASE("async_acquire(bucket): cancellation refunds the tokens") {
    asio::io_context ctx;
    seckill::manual_clock clock;
    bucket b{1.0 / 3600, 1, clock};  // one token per hour
    CHECK(b.try_acquire());
    asio::cancellation_signal signal;
    std::optional<std::error_code> result;
    seckill::async_acquire(
        b, 1, ctx.get_executor(),
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { result = ec; }));
    CHECK(b.time_until() == 2h);
    ctx.poll();
    CHECK_FALSE(result.has_value());
    signal.emit(asio::cancellation_type::total);
    ctx.run();
    REQUIRE(result.has_value());
    CHECK(*result == seckill::errc::operation_aborted);
    CHECK(b.time_until() == 1h);  // refunded
  }

  TEST_CASE("async_acquire(bucket): a count above the burst and a max_wait fail at once") {
    asio::io_context ctx;
    seckill::manual_clock clock;
    bucket b{1, 2, clock};
    std::optional<std::error_code> too_many;
    std::optional<std::error_code> too_long;
    std::optional<std::error_code> short_enough;
    seckill::async_acquire(b, 3, ctx.get_executor(), [&](std::error_code ec) { too_many = ec; });
    CHECK(b.try_acquire(2));
    seckill::async_acquire(b, 1, 999ms, ctx.get_executor(),
                           [&](std::error_code ec) { too_long = ec; });
    CHECK(b.time_until() == 1s);  // the refused wait took nothing
    ctx.run();
    CHECK(*too_many == seckill::errc::invalid_argument);
    CHECK(*too_long == seckill::errc::rate_limited);
    clock.advance(1s);
    ctx.restart();
    seckill::async_acquire(b, 1, 0ns, ctx.get_executor(),
                           [&](std::error_code ec) { short_enough = ec; });
    ctx.run();
    REQUIRE(short_enough.has_value());
    CHECK_FALSE(*short_enough);
  }

  TEST_CASE("async_acquire(bucket) works with use_future") {
    asio::io_context ctx;
    seckill::token_bucket<> b{1000, 1};
    auto f = seckill::async_acquire(b, 1, ctx.get_executor(), asio::use_future);
    ctx.run();
    CHECK_NOTHROW(f.get());
  }

  TEST_CASE("async_acquire(bulkhead): granted when a permit is released") {
    asio::io_context ctx;
    seckill::bulkhead b{1};
    auto held = b.try_acquire();
    outcome o;
    seckill::async_acquire(b, 1h, ctx.get_executor(), store(o));
    ctx.poll();
    CHECK_FALSE(o.ec.has_value());
    CHECK(b.waiting() == 1);
    held.release();
    CHECK(b.in_flight() == 1);  // handed straight to the waiter
    ctx.run();
    REQUIRE(o.ec.has_value());
    CHECK_FALSE(*o.ec);
    CHECK(o.permit);
    CHECK(b.waiting() == 0);
    o.permit.release();
    CHECK(b.in_flight() == 0);
  }

  TEST_CASE("async_acquire(bulkhead): free slot at once - full with no wait - timeout") {
    asio::io_context ctx;
    seckill::bulkhead b{1};
    outcome first;
    outcome no_wait;
    outcome timed;
    seckill::async_acquire(b, 1h, ctx.get_executor(), store(first));
    CHECK_FALSE(first.ec.has_value());
    ctx.run();
    REQUIRE(first.permit);
    seckill::async_acquire(b, 0s, ctx.get_executor(), store(no_wait));
    seckill::async_acquire(b, 1ms, ctx.get_executor(), store(timed));
    ctx.restart();
    ctx.run();
    CHECK(*no_wait.ec == seckill::errc::bulkhead_full);
    CHECK(*timed.ec == seckill::errc::timed_out);
    CHECK_FALSE(timed.permit);
    CHECK(b.waiting() == 0);
    CHECK(b.in_flight() == 1);
  }

  TEST_CASE("async_acquire(bulkhead): cancellation leaves the queue and takes nothing") {
    asio::io_context ctx;
    seckill::bulkhead b{1};
    auto held = b.try_acquire();
    asio::cancellation_signal signal;
    outcome o;
    seckill::async_acquire(b, 1h, ctx.get_executor(),
                           asio::bind_cancellation_slot(signal.slot(), store(o)));
    ctx.poll();
    CHECK(b.waiting() == 1);
    signal.emit(asio::cancellation_type::terminal);
    ctx.run();
    CHECK(*o.ec == seckill::errc::operation_aborted);
    CHECK(b.waiting() == 0);
    held.release();
    CHECK(b.in_flight() == 0);  // nobody was waiting any more
  }

  TEST_CASE("async_acquire(bulkhead): waiters are served in order") {
    asio::io_context ctx;
    seckill::bulkhead b{1};
    auto held = b.try_acquire();
    std::vector<int> order;
    std::vector<seckill::bulkhead_permit> permits;
    for (int i = 0; i < 3; ++i) {
      seckill::async_acquire(b, 1h, ctx.get_executor(),
                             [&, i](std::error_code ec, seckill::bulkhead_permit p) {
                               CHECK_FALSE(ec);
                               order.push_back(i);
                               permits.push_back(std::move(p));
                             });
    }
    ctx.poll();
    CHECK(b.waiting() == 3);
    held.release();
    ctx.poll();
    REQUIRE(order.size() == 1);
    for (int i = 1; i < 3; ++i) {
      permits.front().release();
      permits.erase(permits.begin());
      ctx.poll();
    }
    CHECK(order == std::vector<int>{0, 1, 2});
  }

  TEST_CASE("async_acquire(bulkhead): a destroyed pending operation leaves nothing behind") {
    seckill::bulkhead b{1};
    auto held = b.try_acquire();
    {
      asio::io_context ctx;
      seckill::async_acquire(b, 1h, ctx.get_executor(),
                             [](std::error_code, seckill::bulkhead_permit) {});
      ctx.poll();
      CHECK(b.waiting() == 1);
    }  // destroyed with the wait pending
    CHECK(b.waiting() == 0);
    held.release();
    CHECK(b.in_flight() == 0);
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("async_acquire(bulkhead): releases from another thread wake every waiter") {
    asio::io_context ctx;
    seckill::bulkhead b{2};
    constexpr int waiters = 200;
    std::atomic<int> granted{0};
    std::atomic<int> failed{0};
    std::vector<seckill::bulkhead_permit> held;
    held.push_back(b.try_acquire());
    held.push_back(b.try_acquire());
    std::mutex handed_mutex;
    std::vector<seckill::bulkhead_permit> handed;  // the releaser drops these
    for (int i = 0; i < waiters; ++i) {
      seckill::async_acquire(
          b, 1min, ctx.get_executor(), [&](std::error_code ec, seckill::bulkhead_permit p) {
            if (ec) {
              failed.fetch_add(1);
              return;
            }
            std::lock_guard lock(handed_mutex);
            handed.push_back(std::move(p));
            granted.fetch_add(1);  // after the hand-over: the releaser's last sweep then finds it
          });
    }
    std::thread releaser([&] {
      for (auto& p : held) p.release();
      while (granted.load() + failed.load() < waiters) {
        std::vector<seckill::bulkhead_permit> batch;
        {
          std::lock_guard lock(handed_mutex);
          batch.swap(handed);
        }
        batch.clear();  // releases on this thread, racing with the io thread
        std::this_thread::yield();
      }
      std::lock_guard lock(handed_mutex);
      handed.clear();
    });
    ctx.run();
    releaser.join();
    CHECK(granted.load() == waiters);
    CHECK(failed.load() == 0);
    CHECK(b.in_flight() == 0);
    CHECK(b.waiting() == 0);
  }
}
