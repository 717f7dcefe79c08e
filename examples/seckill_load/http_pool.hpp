#pragma once
// seckill_load's connections to one node: a fixed number of keep-alive
// HTTP/1.1 connections (Beast, coroutines) taking requests from one queue.

#include "schedule.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace seckill_load {

/// One request for a pool: what to send and when it was meant to go.
struct http_job {
  boost::beast::http::verb method = boost::beast::http::verb::post;
  std::string target = "/purchase";
  std::string body;
  std::string authorization;  ///< the Authorization header; empty: none
  std::uint64_t tag = 0;      ///< the caller's: which request this is
  request_timing timing{};    ///< `intended` set by the caller; `sent`, `done` by the pool
};

/// How a job ended: an HTTP answer (status > 0), or a transport error.
struct http_outcome {
  unsigned status = 0;  ///< 0: no answer
  std::string body;
  std::string error;  ///< without an answer: timeout, connection_refused, connection_closed, ...
  std::string retry_after;
};

/// A short, stable name for a transport error (the report counts by it).
inline std::string transport_error_name(const boost::system::error_code& ec) {
  namespace net = boost::asio::error;
  if (ec == boost::beast::error::timeout || ec == net::timed_out) return "timeout";
  if (ec == net::connection_refused) return "connection_refused";
  if (ec == boost::beast::http::error::end_of_stream || ec == net::eof ||
      ec == net::connection_reset || ec == net::broken_pipe || ec == net::connection_aborted)
    return "connection_closed";
  if (ec == net::host_not_found || ec == net::host_not_found_try_again) return "resolve_failed";
  if (ec == net::operation_aborted) return "cancelled";
  if (ec.category() ==
      boost::beast::http::make_error_code(boost::beast::http::error::bad_version).category())
    return "bad_response";  // not HTTP, or a body over the limit
  return "network_error";
}

namespace detail {

/// Resolves `host` and connects `stream` (Nagle off).
inline boost::asio::awaitable<boost::system::error_code> connect(boost::beast::tcp_stream& stream,
                                                                 const std::string& host,
                                                                 unsigned short port) {
  using tcp = boost::asio::ip::tcp;
  const auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  tcp::resolver resolver(stream.get_executor());
  const std::string service = std::to_string(port);
  auto [rec, results] = co_await resolver.async_resolve(host, service, tuple);
  if (rec) co_return rec;
  auto [cec, ep] = co_await stream.async_connect(results, tuple);
  (void)ep;
  if (!cec) {
    boost::system::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
  }
  co_return cec;
}

inline void close_stream(boost::beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  stream.close();
}

}  // namespace detail

/// @brief Where a connection goes: host, port and the Host header.
struct endpoint_address {
  std::string host;
  unsigned short port = 80;
  [[nodiscard]] std::string host_header() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }
};

/// Sends `job` on `stream` (connecting it first when `open` is false) and
/// reads the answer, all before `deadline`. A reused connection the server
/// closed before answering is replaced once. `open` tells the caller
/// whether the connection can be used again.
inline boost::asio::awaitable<http_outcome> async_exchange(
    boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer, bool& open,
    const endpoint_address& to, const http_job& job,
    std::chrono::steady_clock::time_point deadline) {
  namespace http = boost::beast::http;
  const auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  http::request<http::string_body> req{job.method, job.target, 11};
  req.set(http::field::host, to.host_header());
  req.set(http::field::user_agent, "seckill_load");
  if (!job.body.empty()) req.set(http::field::content_type, "application/json");
  if (!job.authorization.empty()) req.set(http::field::authorization, job.authorization);
  req.body() = job.body;
  req.keep_alive(true);
  req.prepare_payload();
  http_outcome out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = open;
    stream.expires_at(deadline);
    if (!open) {
      const auto cec = co_await detail::connect(stream, to.host, to.port);
      if (cec) {
        stream.close();
        out.error = transport_error_name(cec);
        co_return out;
      }
      open = true;
    }
    auto [wec, written] = co_await http::async_write(stream, req, tuple);
    (void)written;
    boost::system::error_code ec = wec;
    std::optional<http::response_parser<http::string_body>> parser;
    if (!ec) {
      parser.emplace();
      parser->body_limit(1024 * 1024);
      buffer.clear();
      auto [rec, read] = co_await http::async_read(stream, buffer, *parser, tuple);
      (void)read;
      ec = rec;
    }
    if (ec) {
      detail::close_stream(stream);
      open = false;
      const bool nothing_read = !parser || !parser->got_some();
      const bool closed_under_us = transport_error_name(ec) == "connection_closed";
      if (reused && nothing_read && closed_under_us && attempt == 0) continue;
      out.error = transport_error_name(ec);
      co_return out;
    }
    auto res = parser->release();
    out.status = res.result_int();
    out.retry_after = std::string(res[http::field::retry_after]);
    out.body = std::move(res.body());
    if (!res.keep_alive()) {
      detail::close_stream(stream);
      open = false;
    }
    co_return out;
  }
  co_return out;
}

/// @brief The connections to one node: `connections` keep-alive HTTP/1.1
///        connections, each a coroutine taking the oldest waiting job,
///        sending it and reading its answer, then the next. Jobs submitted
///        while every connection is busy wait in the queue: their latency,
///        counted from the intended time, includes the wait.
///
/// A connection opens at start() and again after any failure or a
/// "Connection: close"; a job whose reused connection turns out closed by
/// the server (before any answer byte) is sent once more on a new one (the
/// purchases carry request ids, so this is safe). Each job has `timeout`
/// from when it is sent, for connecting, writing and reading.
///
/// Thread-safety: submit() and close() from any thread; `on_done` is called
/// on the pool's strand, one job at a time. Cost: one strand; per
/// connection a socket and a read buffer; per job one request and one
/// response object.
class http_pool : public std::enable_shared_from_this<http_pool> {
 public:
  using done_handler = std::function<void(http_job&, http_outcome&)>;

  http_pool(boost::asio::io_context& io, endpoint_address to, std::size_t connections,
            std::chrono::nanoseconds timeout, done_handler on_done)
      : strand_(boost::asio::make_strand(io)),
        to_(std::move(to)),
        connections_(connections == 0 ? 1 : connections),
        timeout_(timeout),
        on_done_(std::move(on_done)) {}

  http_pool(const http_pool&) = delete;
  http_pool& operator=(const http_pool&) = delete;

  /// Opens the connections. `finished` is called (on the strand) once
  /// close() was called and every connection has ended.
  void start(std::function<void()> finished = {}) {
    auto self = shared_from_this();
    boost::asio::post(strand_, [self, finished = std::move(finished)]() mutable {
      self->finished_ = std::move(finished);
      self->running_ = self->connections_;
      for (std::size_t i = 0; i < self->connections_; ++i)
        boost::asio::co_spawn(self->strand_, connection_loop(self), boost::asio::detached);
    });
  }

  /// Queues a job; an idle connection takes it at once.
  void submit(http_job job) {
    boost::asio::post(strand_, [self = shared_from_this(), job = std::move(job)]() mutable {
      self->queue_.push_back(std::move(job));
      self->wake_one();
    });
  }

  /// The connections finish the queued jobs, then end.
  void close() {
    boost::asio::post(strand_, [self = shared_from_this()] {
      self->closing_ = true;
      while (!self->idle_.empty()) self->wake_one();
    });
  }

  [[nodiscard]] const endpoint_address& address() const noexcept { return to_; }

 private:
  using stream_type = boost::beast::tcp_stream;

  void wake_one() {
    if (idle_.empty()) return;
    auto* t = idle_.back();
    idle_.pop_back();
    t->cancel();
  }

  static boost::asio::awaitable<void> connection_loop(std::shared_ptr<http_pool> self) {
    const auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
    stream_type stream(self->strand_);
    boost::beast::flat_buffer buffer;
    bool open = false;
    // Warm up: connect before the first job, so the run's first requests
    // do not pay for it (a failure here is retried with the first job).
    {
      stream.expires_after(self->timeout_);
      const auto ec = co_await detail::connect(stream, self->to_.host, self->to_.port);
      open = !ec;
      if (ec) stream.close();
    }
    boost::asio::steady_timer idle(self->strand_);
    for (;;) {
      if (self->queue_.empty()) {
        if (self->closing_) break;
        idle.expires_at(boost::asio::steady_timer::time_point::max());
        self->idle_.push_back(&idle);
        auto [ignored] = co_await idle.async_wait(tuple);
        (void)ignored;
        continue;
      }
      http_job job = std::move(self->queue_.front());
      self->queue_.pop_front();
      job.timing.sent = std::chrono::steady_clock::now();
      const auto deadline = job.timing.sent + self->timeout_;
      http_outcome out = co_await async_exchange(stream, buffer, open, self->to_, job, deadline);
      job.timing.done = std::chrono::steady_clock::now();
      self->on_done_(job, out);
    }
    if (open) detail::close_stream(stream);
    if (--self->running_ == 0 && self->finished_) self->finished_();
  }

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  endpoint_address to_;
  std::size_t connections_;
  std::chrono::nanoseconds timeout_;
  done_handler on_done_;
  // on the strand
  std::deque<http_job> queue_;
  std::vector<boost::asio::steady_timer*> idle_;
  std::size_t running_ = 0;
  bool closing_ = false;
  std::function<void()> finished_;
};

/// @brief One keep-alive connection used from one thread that waits for
///        each answer: for the set-up, the checks and the stock reads
///        around a run, not for the load.
///
/// Thread-safety: none (one owner). Cost: an io_context and a socket.
class blocking_client {
 public:
  blocking_client(endpoint_address to, std::chrono::nanoseconds timeout)
      : to_(std::move(to)), timeout_(timeout) {}

  http_outcome request(boost::beast::http::verb method, std::string target, std::string body = {},
                       std::string authorization = {}) {
    http_job job;
    job.method = method;
    job.target = std::move(target);
    job.body = std::move(body);
    job.authorization = std::move(authorization);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    http_outcome out;
    boost::asio::co_spawn(io_, async_exchange(stream_, buffer_, open_, to_, job, deadline),
                          [&out](std::exception_ptr e, http_outcome o) {
                            if (e) {
                              out.error = "internal_error";
                              return;
                            }
                            out = std::move(o);
                          });
    io_.restart();
    io_.run();
    return out;
  }

  [[nodiscard]] const endpoint_address& address() const noexcept { return to_; }

 private:
  boost::asio::io_context io_;
  endpoint_address to_;
  std::chrono::nanoseconds timeout_;
  boost::beast::tcp_stream stream_{io_};
  boost::beast::flat_buffer buffer_;
  bool open_ = false;
};

}  // namespace seckill_load
