// The coroutines that check their cancellation state resume on a sound frame.
// GCC 12 misplaced the frame of a coroutine with a co_await inside an if
// condition (see detail::is_cancelled): its first resume crashed (SIGILL) no
// matter which path it took. These paths need no server.
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>

#include <doctest/doctest.h>

#include <support/net.hpp>

namespace unit_coroutines {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;
}  // namespace unit_coroutines

TEST_SUITE("unit") {
  using namespace unit_coroutines;
  TEST_CASE("waits that check cancellation complete at once when there is nothing to wait for") {
    const auto dead = seckill::test::free_loopback_port();
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client_options o;
      o.endpoints = {{"127.0.0.1", dead}};
      o.call_timeout = 300ms;
      client c(io.get_executor(), o);
      watcher w(c);
      prefix_cache cache(w, "p/");
      auto [rec, rev] = co_await cache.async_wait_revision(0, tuple_awaitable);
      CHECK_FALSE(rec);
      CHECK(rev == 0);
      cache.stop();
      std::tie(rec, rev) = co_await cache.async_wait_revision(5, tuple_awaitable);
      CHECK(rec == seckill::errc::operation_aborted);

      session s(c, {.ttl = 2s});
      auto [lec, lost] = co_await s.async_wait_lost(tuple_awaitable);
      CHECK(lec == seckill::etcd::errc::session_lost);  // never started
      CHECK(lost == 0);
      co_await s.async_close(tuple_awaitable);
      auto [aec, alive] = co_await s.async_wait_alive(tuple_awaitable);
      CHECK(aec == seckill::errc::operation_aborted);  // closed
      CHECK(alive == 0);
    });
  }
}
