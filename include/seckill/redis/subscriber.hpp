#pragma once
/// @file
/// @brief `subscriber`: a RESP3 connection of its own that PSUBSCRIBEs to
///        channel patterns, hands each message to a handler, and reconnects
///        and subscribes again by itself.

#include <seckill/error.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>

#include <boost/asio/async_result.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief Redis pub/sub on a `connection` of its own: `PSUBSCRIBE` of each
///        pattern is part of the handshake (`connection_config::setup`), so
///        every reconnection (with the connection's capped backoff)
///        subscribes again before anything else.
///
/// Messages published while the connection is down are lost (Redis pub/sub
/// keeps nothing): the state handler sees every change, so its owner can
/// stop trusting what it learnt and read the truth again once `ready`
/// (what `stock_feed` does). Needs RESP3 (Redis 6 or newer): the
/// configuration's `protocol` must be 3, and an older server fails the
/// handshake with `errc::server_error` naming both versions.
///
/// Thread-safety: the handlers run on the connection's strand, one at a
/// time; the other members may be called from any thread. Cost: one socket;
/// per message, one parse and one handler call; the connection's PING every
/// `health_check_interval` finds a silent server.
class subscriber {
 public:
  using executor_type = connection::executor_type;
  /// (channel, payload) of each message.
  using message_handler = std::function<void(std::string_view, std::string_view)>;
  using state_handler = std::function<void(connection_state)>;

  /// Throws `seckill::error` (invalid_argument) for no pattern, a
  /// configuration with `protocol` other than 3, or one `connection` refuses.
  subscriber(const executor_type& ex, connection_config cfg, std::vector<std::string> patterns,
             message_handler on_message, state_handler on_state = {})
      : st_(std::make_shared<shared>()) {
    if (patterns.empty())
      throw seckill::error(seckill::errc::invalid_argument, "subscriber: no channel pattern given");
    if (cfg.protocol != 3)
      throw seckill::error(seckill::errc::invalid_argument,
                           "subscriber: protocol " + std::to_string(cfg.protocol) +
                               " (pub/sub messages need RESP3: protocol 3)");
    // A server without RESP3 (before 6.0) would answer HELLO 3 with an error,
    // the connection would fall back to RESP2, and PSUBSCRIBE's messages
    // would arrive as replies to nothing: refuse it at the handshake instead.
    constexpr server_version resp3_since{6, 0, 0};
    if (cfg.min_server_version < resp3_since) cfg.min_server_version = resp3_since;
    for (const auto& p : patterns) cfg.setup.push("PSUBSCRIBE", p);
    st_->on_message = std::move(on_message);
    conn_ = std::make_unique<connection>(ex, std::move(cfg));
    conn_->on_push([st = st_](const value& v) { st->deliver(v); });
    if (on_state) conn_->on_state(std::move(on_state));
  }
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept { return conn_->get_executor(); }

  /// Connects and subscribes; completes as `connection::async_connect`.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_connect(CompletionToken&& token = CompletionToken()) {
    return conn_->async_connect(std::forward<CompletionToken>(token));
  }

  void close() { conn_->close(); }

  [[nodiscard]] connection_state state() const noexcept { return conn_->state(); }
  /// Successful handshakes (subscriptions) so far: 1 + reconnections.
  [[nodiscard]] std::uint64_t connect_count() const noexcept { return conn_->connect_count(); }
  /// Messages handed to the handler.
  [[nodiscard]] std::uint64_t messages() const noexcept {
    return st_->messages.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::string last_error() const { return conn_->last_error(); }

 private:
  struct shared {
    message_handler on_message;
    std::atomic<std::uint64_t> messages{0};

    // RESP3: >4 pmessage <pattern> <channel> <payload>, >3 message <channel> <payload>.
    void deliver(const value& v) {
      const auto& e = v.elements;
      if (e.size() == 4 && e[0].text == "pmessage") {
        messages.fetch_add(1, std::memory_order_relaxed);
        if (on_message) on_message(e[2].text, e[3].text);
      } else if (e.size() == 3 && e[0].text == "message") {
        messages.fetch_add(1, std::memory_order_relaxed);
        if (on_message) on_message(e[1].text, e[2].text);
      }
    }
  };

  std::shared_ptr<shared> st_;
  std::unique_ptr<connection> conn_;
};

}  // namespace seckill::redis
