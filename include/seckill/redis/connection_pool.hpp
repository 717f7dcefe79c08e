#pragma once
/// @file
/// @brief `redis::connection_pool`: a few Redis connections used
///        round-robin, so that several threads make progress at once.

#include <seckill/error.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/resp.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
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
    if (size == 0) throw error(errc::invalid_argument, "connection_pool: size 0; want >= 1");
    for (std::size_t i = 0; i < size; ++i) conns_.push_back(std::make_unique<connection>(ex, cfg));
  }

  [[nodiscard]] executor_type get_executor() const noexcept { return ex_; }
  [[nodiscard]] std::size_t size() const noexcept { return conns_.size(); }
  [[nodiscard]] connection& at(std::size_t i) { return *conns_.at(i); }
  [[nodiscard]] const connection_config& config() const noexcept { return conns_.front()->config(); }

  /// Connects every connection; completes with the first error, if any.
  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          struct state {
            std::mutex m;
            std::size_t left;
            std::error_code first;
            boost::asio::any_completion_handler<void(std::error_code)> h;
            executor_type ex;
          };
          auto st = std::make_shared<state>();
          st->left = conns_.size();
          boost::asio::any_completion_handler<void(std::error_code)> h(std::move(handler));
          st->h.swap(h);
          st->ex = ex_;
          for (auto& c : conns_) {
            c->async_connect([st](std::error_code ec) {
              std::unique_lock lock(st->m);
              if (ec && !st->first) st->first = ec;
              if (--st->left != 0) return;
              auto h = std::move(st->h);
              const auto result = st->first;
              lock.unlock();
              boost::asio::post(st->ex, boost::asio::append(std::move(h), result));
            });
          }
        },
        token);
  }

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, Token&& token = {}) {
    return pick().async_exec(req, std::forward<Token>(token));
  }

  template <class Token = boost::asio::default_completion_token_t<executor_type>>
  auto async_exec(const request& req, std::chrono::milliseconds timeout, Token&& token = {}) {
    return pick().async_exec(req, timeout, std::forward<Token>(token));
  }

  void close() {
    for (auto& c : conns_) c->close();
  }

 private:
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
