#pragma once
// Helpers for the redis integration tests: run a test coroutine on an
// io_context with a time limit, and tiny servers that are not Redis.

#include <seckill/redis/connection.hpp>
#include <seckill/store/store.hpp>

#include "support/coro.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace seckill::test {

namespace asio = boost::asio;
using asio::awaitable;

/// Runs `make()`'s coroutine on `io` until everything on `io` is done (the
/// coroutine must close what it opened); fails the test after `limit`.
template <class MakeCoroutine>
void run_test(asio::io_context& io, MakeCoroutine make,
              std::chrono::seconds limit = std::chrono::seconds(60)) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  io.run_for(limit);
  REQUIRE_MESSAGE(done, "the test coroutine did not finish within ", limit.count(), " s");
  if (failure) std::rethrow_exception(failure);
  REQUIRE_MESSAGE(io.stopped(), "work left on the io_context: something did not close");
}

/// What the conformance suite asks of a fixture whose store runs on real
/// servers on this host: time passes by sleeping, holds last 300 ms, and the
/// sale window is judged by the servers' clock, which is this host's.
struct real_time_fixture {
  void let_time_pass(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }
  std::chrono::milliseconds hold() { return std::chrono::milliseconds(300); }
  seckill::sale_time sale_now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }
  void let_sale_time_pass(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }
  std::chrono::milliseconds sale_slack() { return std::chrono::milliseconds(1000); }
};

/// Sends one command and returns (error_code, the reply).
inline awaitable<std::pair<std::error_code, redis::value>> exec1(
    redis::connection& conn, redis::request req,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  auto [ec, replies] = co_await conn.async_exec(req, timeout, tuple_awaitable);
  if (ec) co_return std::pair{ec, redis::value{}};
  co_return std::pair{ec, std::move(replies.at(0))};
}

/// A TCP server on 127.0.0.1 that is not Redis: it answers whatever comes
/// with `reply` (an HTTP error page, say) or, when `reply` is empty, reads
/// and never answers.
class fake_server {
 public:
  fake_server(asio::io_context& io, std::string reply)
      : acceptor_(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        reply_(std::move(reply)) {
    accept();
  }
  [[nodiscard]] unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& s : sockets_) s->close(ignored);
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      sockets_.push_back(sock);
      auto buf = std::make_shared<std::array<char, 1024>>();
      sock->async_read_some(
          asio::buffer(*buf), [this, sock, buf](boost::system::error_code e, std::size_t) {
            if (e || reply_.empty()) return;
            asio::async_write(*sock, asio::buffer(reply_),
                              [sock](boost::system::error_code, std::size_t) {
                                boost::system::error_code ignored;
                                sock->shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                              });
          });
      accept();
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  std::string reply_;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;
};

}  // namespace seckill::test
