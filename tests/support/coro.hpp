#pragma once
// Coroutine helpers shared by the integration tests: error codes as values
// (`tuple_awaitable`) and a sleep on the coroutine's own executor.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace seckill::test {

/// Completion token: `auto [ec, ...] = co_await op(tuple_awaitable);`, no throw.
inline constexpr auto tuple_awaitable = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Suspends the calling coroutine for `d` on its executor.
inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(tuple_awaitable);
}

}  // namespace seckill::test
