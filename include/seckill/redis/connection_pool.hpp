#pragma once
/// @file
/// @brief `redis::connection_pool`: a few Redis connections used
///        round-robin, so that several threads make progress at once.

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/resp.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief A few connections used round-robin, for many threads: each
///        connection has its own strand, so up to `size()` threads make
///        progress at once.
///
/// Thread-safety: every member function may be called from any thread.
/// Cost: one relaxed atomic increment per request to pick a connection
/// (ready connections first), then what `connection::async_exec` costs.
class connection_pool {
 public:
  using executor_type = boost::asio::any_io_executor;

  connection_pool(const executor_type& ex, connection_config cfg, std::size_t size) : ex_(ex) {
    if (size == 0)
      throw error(seckill::errc::invalid_argument, "connection_pool: size 0; want >= 1");
    for (std::size_t i = 0; i < size; ++i) conns_.push_back(std::make_unique<connection>(ex, cfg));
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] std::size_t size() const noexcept { return conns_.size(); }
  [[nodiscard]] connection& at(std::size_t i) { return *conns_.at(i); }
  [[nodiscard]] const connection_config& config() const noexcept {
    return conns_.front()->config();
  }

  /// Connects every connection, one after the other; completes with the
  /// first error, if any. Honours per-operation cancellation: the connect
  /// under way stops and the ones not started are not.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(ex_, connect_all(), token);
  }

  /// `connection::async_exec` on the next connection (ready ones first).
  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, CompletionToken&& token = CompletionToken()) {
    return pick().async_exec(req, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return pick().async_exec(req, timeout, std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request&& req, CompletionToken&& token = CompletionToken()) {
    return pick().async_exec(std::move(req), std::forward<CompletionToken>(token));
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::vector<value>)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(request&& req, std::chrono::milliseconds timeout,
                  CompletionToken&& token = CompletionToken()) {
    return pick().async_exec(std::move(req), timeout, std::forward<CompletionToken>(token));
  }

  void close() {
    for (auto& c : conns_) c->close();
  }

 private:
  boost::asio::awaitable<std::error_code> connect_all() {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    std::error_code first;
    for (auto& c : conns_) {
      const auto cs = co_await boost::asio::this_coro::cancellation_state;
      if (cs.cancelled() != boost::asio::cancellation_type::none)
        co_return make_error_code(seckill::errc::operation_aborted);
      auto [ec] = co_await c->async_connect(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec && !first) first = ec;
    }
    co_return first;
  }

  connection& pick() noexcept {
    const std::size_t n = conns_.size();
    const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed) % n;
    for (std::size_t i = 0; i < n; ++i) {
      connection& c = *conns_[(start + i) % n];
      if (c.state() == connection_state::ready) return c;
    }
    return *conns_[start];
  }

  executor_type ex_;
  std::vector<std::unique_ptr<connection>> conns_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace seckill::redis
