#pragma once
/// @file
/// @brief `otlp_http_exporter`: sends finished spans to an OpenTelemetry
///        collector over OTLP/HTTP with the JSON encoding (Boost.Beast,
///        nlohmann::json), and `to_otlp_json`, the body it posts. The span
///        model itself is obs/span.hpp (the standard library only).

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/obs/span.hpp>
#include <seckill/obs/traceparent.hpp>
#include <seckill/version.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::obs {

/// @brief The OTLP/JSON body (ExportTraceServiceRequest) for `spans` of one
///        service: ids as lowercase hex, times as decimal strings of Unix
///        nanoseconds, kind and status as OTLP's numbers.
inline nlohmann::json to_otlp_json(const std::vector<span_data>& spans,
                                   const std::string& service_name) {
  using nlohmann::json;
  const auto attr = [](const std::string& key, const attribute_value& v) {
    json value = std::visit(
        [](const auto& x) -> json {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>)
            return {{"stringValue", x}};
          else if constexpr (std::is_same_v<T, bool>)
            return {{"boolValue", x}};
          else if constexpr (std::is_same_v<T, std::int64_t>)
            return {{"intValue", std::to_string(x)}};
          else
            return {{"doubleValue", x}};
        },
        v);
    return json{{"key", key}, {"value", std::move(value)}};
  };
  json out_spans = json::array();
  for (const auto& s : spans) {
    json attrs = json::array();
    for (const auto& [k, v] : s.attributes) attrs.push_back(attr(k, v));
    json j{{"traceId", to_hex(s.context.trace)},
           {"spanId", to_hex(s.context.span)},
           {"name", s.name},
           {"kind", static_cast<int>(s.kind)},
           {"startTimeUnixNano", std::to_string(s.start_unix_nanos)},
           {"endTimeUnixNano", std::to_string(s.end_unix_nanos)},
           {"attributes", std::move(attrs)},
           {"flags", static_cast<int>(s.context.flags)},  // W3C trace flags in bits 0-7
           {"status", {{"code", static_cast<int>(s.status)}}}};
    if (s.parent) j["parentSpanId"] = to_hex(*s.parent);
    if (!s.status_message.empty()) j["status"]["message"] = s.status_message;
    out_spans.push_back(std::move(j));
  }
  return json{
      {"resourceSpans",
       json::array(
           {json{{"resource", {{"attributes", json::array({attr("service.name", service_name)})}}},
                 {"scopeSpans",
                  json::array({json{{"scope", {{"name", "seckill"}, {"version", version.string}}},
                                    {"spans", std::move(out_spans)}}})}}})}};
}

/// @brief Sends spans to an OpenTelemetry collector over OTLP/HTTP with the
///        JSON encoding: `POST http://host:port/v1/traces`,
///        `Content-Type: application/json`.
///
/// `export_span` only queues (a mutex, a move; never blocks on the network):
/// spans beyond `max_queue` are dropped and counted. `async_flush` sends what
/// is queued in batches of `max_batch` and completes with the first error
/// (errc::server_error for a non-2xx answer, errc::timed_out, or the network
/// error); a batch that failed is dropped and counted. Call it from a timer
/// to export periodically. Thread-safety: every member from any threads; the
/// sending runs on a strand of the executor. Cost per flush: one TCP
/// connection and one JSON body per batch.
class otlp_http_exporter final : public span_exporter {
 public:
  using executor_type = boost::asio::any_io_executor;

  struct options {
    std::string host = "127.0.0.1";
    std::string port = "4318";
    std::string target = "/v1/traces";
    std::string service_name = "seckill";
    std::size_t max_batch = 512;
    std::size_t max_queue = 8192;
    std::chrono::milliseconds timeout{5000};
  };

  otlp_http_exporter(boost::asio::any_io_executor ex, options opts)
      : state_(std::make_shared<state>(boost::asio::make_strand(ex), std::move(opts))) {
    if (state_->opts.max_batch == 0)
      throw error(errc::invalid_argument, "otlp_http_exporter: max_batch must be > 0; saw 0");
  }

  void export_span(span_data&& span) override {
    std::lock_guard lock(state_->mutex);
    if (state_->queue.size() >= state_->opts.max_queue) {
      ++state_->dropped;
      return;
    }
    state_->queue.push_back(std::move(span));
  }

  /// Spans dropped so far: queue full, or their batch failed to send.
  [[nodiscard]] std::uint64_t dropped() const {
    std::lock_guard lock(state_->mutex);
    return state_->dropped;
  }
  /// Spans the collector accepted so far.
  [[nodiscard]] std::uint64_t exported() const {
    std::lock_guard lock(state_->mutex);
    return state_->exported;
  }
  [[nodiscard]] std::size_t queued() const {
    std::lock_guard lock(state_->mutex);
    return state_->queue.size();
  }

  /// The strand the sending runs on.
  [[nodiscard]] executor_type get_executor() const noexcept { return state_->strand; }

  /// Sends every queued span; completes with `void(std::error_code)`: the
  /// first error, or success. Honours per-operation cancellation (terminal):
  /// the batch in flight is dropped (and counted) and the operation
  /// completes with `errc::operation_aborted`; the spans still queued stay
  /// for the next flush.
  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_flush(CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code)>(state_->strand, flush_all(state_),
                                                               token);
  }

 private:
  struct state {
    state(boost::asio::strand<boost::asio::any_io_executor> s, options o)
        : strand(std::move(s)), opts(std::move(o)) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    options opts;
    mutable std::mutex mutex;
    std::deque<span_data> queue;
    std::uint64_t dropped = 0;
    std::uint64_t exported = 0;
  };

  static boost::asio::awaitable<std::error_code> flush_all(std::shared_ptr<state> st) {
    for (;;) {
      std::vector<span_data> batch;
      {
        std::lock_guard lock(st->mutex);
        while (!st->queue.empty() && batch.size() < st->opts.max_batch) {
          batch.push_back(std::move(st->queue.front()));
          st->queue.pop_front();
        }
      }
      if (batch.empty()) co_return std::error_code{};
      const std::error_code ec = co_await send(*st, batch);
      std::lock_guard lock(st->mutex);
      if (ec) {
        st->dropped += batch.size();
        co_return ec;
      }
      st->exported += batch.size();
    }
  }

  static boost::asio::awaitable<std::error_code> send(state& st,
                                                      const std::vector<span_data>& batch) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    asio::ip::tcp::resolver resolver(st.strand);
    auto [rec, results] = co_await resolver.async_resolve(st.opts.host, st.opts.port, tuple);
    if (rec) co_return map_error(rec);
    beast::tcp_stream stream(st.strand);
    stream.expires_after(st.opts.timeout);
    auto [cec, ep] = co_await stream.async_connect(results, tuple);
    (void)ep;
    if (cec) co_return map_error(cec);
    http::request<http::string_body> req{http::verb::post, st.opts.target, 11};
    const std::string& host = st.opts.host;  // an IPv6 address goes in brackets: [::1]:4318
    req.set(http::field::host,
            (host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host) +
                ":" + st.opts.port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, std::string("seckill/") + version.string);
    req.body() = to_otlp_json(batch, st.opts.service_name)
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, req, tuple);
    (void)wn;
    if (wec) co_return map_error(wec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1024 * 1024);
    auto [rrec, rn] = co_await http::async_read(stream, buffer, parser, tuple);
    (void)rn;
    if (rrec) co_return map_error(rrec);
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    const unsigned status = parser.get().result_int();
    if (status < 200 || status >= 300) co_return make_error_code(errc::server_error);
    co_return std::error_code{};
  }

  static std::error_code map_error(const boost::system::error_code& ec) {
    if (ec == boost::beast::error::timeout) return make_error_code(errc::timed_out);
    if (ec == boost::asio::error::operation_aborted)
      return make_error_code(errc::operation_aborted);
    if (ec == boost::asio::error::connection_refused)
      return make_error_code(errc::connection_refused);
    if (ec == boost::asio::error::host_not_found ||
        ec == boost::asio::error::host_not_found_try_again)
      return make_error_code(errc::connection_refused);
    return ec;
  }

  std::shared_ptr<state> state_;
};

}  // namespace seckill::obs
