#pragma once
/// @file
/// @brief W3C Trace Context (`traceparent`) parsing and formatting, spans, a
///        tracer, the span exporter interface, and an OTLP/HTTP JSON exporter
///        that POSTs batches to a collector's `/v1/traces`.
///
/// @code
/// seckill::obs::in_memory_exporter spans;
/// seckill::obs::tracer tracer(spans);
/// auto parent = seckill::obs::parse_traceparent(request_header);   // std::optional
/// auto span = tracer.start_span("purchase", seckill::obs::span_kind::server, parent);
/// span.set_attribute("sku", "sku-1");
/// span.end();                                                       // handed to the exporter
/// @endcode

#include <seckill/error.hpp>
#include <seckill/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace seckill::obs {

/// @brief A 16-byte trace id; all zeros is invalid.
using trace_id = std::array<std::uint8_t, 16>;
/// @brief An 8-byte span id; all zeros is invalid.
using span_id = std::array<std::uint8_t, 8>;

/// @brief What a span hands to its children and to the next hop: the
///        `traceparent` fields. Cheap to copy (26 bytes); no allocation.
struct trace_context {
  std::uint8_t version = 0;
  trace_id trace{};
  span_id span{};
  std::uint8_t flags = 0;

  static constexpr std::uint8_t sampled_flag = 0x01;
  [[nodiscard]] bool sampled() const noexcept { return (flags & sampled_flag) != 0; }
  [[nodiscard]] bool valid() const noexcept;
  friend bool operator==(const trace_context&, const trace_context&) = default;
};

/// @brief Why a `traceparent` value was rejected (`none` when it was not).
enum class traceparent_fault {
  none,
  bad_length,       ///< version 00 must be exactly 55 characters; later versions at least 55
  bad_delimiter,    ///< a '-' missing between fields (or after them, for later versions)
  not_hex,          ///< a field character is not a hex digit
  uppercase_hex,    ///< hex digits must be lowercase
  version_ff,       ///< version ff is forbidden
  zero_trace_id,    ///< the trace id is all zeros
  zero_parent_id,   ///< the parent (span) id is all zeros
};

/// @brief A short text for a fault, for logs and error messages.
inline const char* to_string(traceparent_fault f) noexcept {
  switch (f) {
    case traceparent_fault::none: return "valid";
    case traceparent_fault::bad_length: return "wrong length";
    case traceparent_fault::bad_delimiter: return "missing '-' between fields";
    case traceparent_fault::not_hex: return "not a hex digit";
    case traceparent_fault::uppercase_hex: return "uppercase hex digit";
    case traceparent_fault::version_ff: return "version ff is invalid";
    case traceparent_fault::zero_trace_id: return "all-zero trace id";
    case traceparent_fault::zero_parent_id: return "all-zero parent id";
  }
  return "unknown fault";
}

namespace detail {

inline constexpr char hex_digits[] = "0123456789abcdef";

/// -1: not hex; -2: uppercase hex; else the value.
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return -2;
  return -1;
}

/// Parses 2*N lowercase hex characters into bytes.
template <std::size_t N>
constexpr traceparent_fault parse_hex(std::string_view s, std::array<std::uint8_t, N>& out) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(s[2 * i]);
    const int lo = hex_value(s[2 * i + 1]);
    if (hi == -1 || lo == -1) return traceparent_fault::not_hex;
    if (hi == -2 || lo == -2) return traceparent_fault::uppercase_hex;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return traceparent_fault::none;
}

template <std::size_t N>
constexpr bool all_zero(const std::array<std::uint8_t, N>& a) noexcept {
  for (auto b : a)
    if (b != 0) return false;
  return true;
}

template <std::size_t N>
inline char* write_hex(char* out, const std::array<std::uint8_t, N>& a) noexcept {
  for (auto b : a) {
    *out++ = hex_digits[b >> 4];
    *out++ = hex_digits[b & 0xF];
  }
  return out;
}

}  // namespace detail

inline bool trace_context::valid() const noexcept {
  return version != 0xff && !detail::all_zero(trace) && !detail::all_zero(span);
}

/// @brief Parses a `traceparent` header value per W3C Trace Context level 1:
///        `vv-<32 hex trace id>-<16 hex parent id>-ff`, lowercase hex only.
///        Version ff, all-zero ids and uppercase hex are rejected; version 00
///        must be exactly 55 characters; a later version may append fields
///        after a '-', which are ignored (and its flags kept as they are).
///        `fault` says why a value was rejected. No allocation; noexcept.
inline std::optional<trace_context> parse_traceparent(std::string_view s,
                                                      traceparent_fault& fault) noexcept {
  constexpr std::size_t length = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  fault = traceparent_fault::none;
  if (s.size() < length) {
    fault = traceparent_fault::bad_length;
    return std::nullopt;
  }
  trace_context ctx;
  std::array<std::uint8_t, 1> one{};
  if ((fault = detail::parse_hex(s.substr(0, 2), one)) != traceparent_fault::none) return std::nullopt;
  ctx.version = one[0];
  if (ctx.version == 0xff) {
    fault = traceparent_fault::version_ff;
    return std::nullopt;
  }
  if (ctx.version == 0x00 && s.size() != length) {
    fault = traceparent_fault::bad_length;
    return std::nullopt;
  }
  if (s[2] != '-' || s[35] != '-' || s[52] != '-' || (s.size() > length && s[length] != '-')) {
    fault = traceparent_fault::bad_delimiter;
    return std::nullopt;
  }
  if ((fault = detail::parse_hex(s.substr(3, 32), ctx.trace)) != traceparent_fault::none) return std::nullopt;
  if ((fault = detail::parse_hex(s.substr(36, 16), ctx.span)) != traceparent_fault::none) return std::nullopt;
  if ((fault = detail::parse_hex(s.substr(53, 2), one)) != traceparent_fault::none) return std::nullopt;
  ctx.flags = one[0];
  if (detail::all_zero(ctx.trace)) {
    fault = traceparent_fault::zero_trace_id;
    return std::nullopt;
  }
  if (detail::all_zero(ctx.span)) {
    fault = traceparent_fault::zero_parent_id;
    return std::nullopt;
  }
  return ctx;
}

/// @brief `parse_traceparent` without the reason.
inline std::optional<trace_context> parse_traceparent(std::string_view s) noexcept {
  traceparent_fault ignored{};
  return parse_traceparent(s, ignored);
}

/// @brief Parses or throws seckill::error (invalid_argument) naming the fault and the value.
inline trace_context parse_traceparent_or_throw(std::string_view s) {
  traceparent_fault fault{};
  if (auto ctx = parse_traceparent(s, fault)) return *ctx;
  throw error(errc::invalid_argument,
              std::string("invalid traceparent (") + to_string(fault) + "): '" + std::string(s) + "'");
}

/// @brief Writes the 55 characters of a `traceparent` (version 00, as this
///        implementation speaks it) into `out`. No allocation.
inline void format_traceparent(const trace_context& ctx, std::array<char, 55>& out) noexcept {
  char* p = out.data();
  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  p = detail::write_hex(p, ctx.trace);
  *p++ = '-';
  p = detail::write_hex(p, ctx.span);
  *p++ = '-';
  *p++ = detail::hex_digits[ctx.flags >> 4];
  *p++ = detail::hex_digits[ctx.flags & 0xF];
}

/// @brief The `traceparent` header value for `ctx` (version 00; later versions are
///        sent as 00 with their flags, as the specification asks).
inline std::string format_traceparent(const trace_context& ctx) {
  std::array<char, 55> buf{};
  format_traceparent(ctx, buf);
  return std::string(buf.data(), buf.size());
}

/// @brief Lowercase hex of an id (32 or 16 characters).
template <std::size_t N>
inline std::string to_hex(const std::array<std::uint8_t, N>& id) {
  std::string s(2 * N, '0');
  detail::write_hex(s.data(), id);
  return s;
}

/// @brief Whose side of a call a span describes (OTLP's SpanKind, same numbers).
enum class span_kind { unspecified = 0, internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };

/// @brief A span's outcome (OTLP's StatusCode, same numbers).
enum class span_status { unset = 0, ok = 1, error = 2 };

/// @brief An attribute value: string, bool, integer or double.
using attribute_value = std::variant<std::string, bool, std::int64_t, double>;

/// @brief A finished span, as exporters receive it.
struct span_data {
  std::string name;
  trace_context context;                ///< its own trace id, span id and flags
  std::optional<span_id> parent;        ///< empty for a root span
  span_kind kind = span_kind::internal;
  std::uint64_t start_unix_nanos = 0;
  std::uint64_t end_unix_nanos = 0;
  std::vector<std::pair<std::string, attribute_value>> attributes;
  span_status status = span_status::unset;
  std::string status_message;
};

/// @brief Where finished spans go. `export_span` is called once per ended,
///        sampled span, from the thread that ended it: it must not block.
class span_exporter {
 public:
  virtual ~span_exporter() = default;
  virtual void export_span(span_data&& span) = 0;
};

/// @brief Keeps finished spans in memory, for tests and for programs that
///        inspect their own traces. Thread-safety: any threads (one mutex).
class in_memory_exporter final : public span_exporter {
 public:
  void export_span(span_data&& span) override {
    std::lock_guard lock(mutex_);
    spans_.push_back(std::move(span));
  }
  /// Every span exported so far, oldest first; empties the store.
  [[nodiscard]] std::vector<span_data> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(spans_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<span_data> spans_;
};

namespace detail {

/// Random non-zero ids from a per-thread generator seeded from std::random_device.
inline std::mt19937_64& id_engine() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(),
                      static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()))};
    return std::mt19937_64(seq);
  }();
  return engine;
}

template <std::size_t N>
inline void random_id(std::array<std::uint8_t, N>& id) {
  auto& e = id_engine();
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t r = e();
      for (std::size_t k = 0; k < 8 && i + k < N; ++k) id[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
    }
  } while (all_zero(id));
}

template <class Clock>
inline std::uint64_t unix_nanos(const Clock& clock) {
  const auto d = clock.now().time_since_epoch();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

}  // namespace detail

/// @brief One operation being traced. Ends (and is exported, when sampled) on
///        `end()` or destruction, whichever comes first; later calls do nothing.
///
/// Thread-safety: one owner at a time (move it between threads, do not share it).
/// Cost: the name and attributes allocate; ids come from a per-thread generator.
template <class Clock>
class basic_span {
 public:
  basic_span() = default;
  basic_span(basic_span&& o) noexcept
      : data_(std::move(o.data_)), exporter_(std::exchange(o.exporter_, nullptr)),
        clock_(std::move(o.clock_)), ended_(std::exchange(o.ended_, true)) {}
  basic_span& operator=(basic_span&& o) noexcept {
    if (this != &o) {
      end();
      data_ = std::move(o.data_);
      exporter_ = std::exchange(o.exporter_, nullptr);
      clock_ = std::move(o.clock_);
      ended_ = std::exchange(o.ended_, true);
    }
    return *this;
  }
  basic_span(const basic_span&) = delete;
  basic_span& operator=(const basic_span&) = delete;
  ~basic_span() { end(); }

  /// The context to hand to child spans and to send as `traceparent`.
  [[nodiscard]] const trace_context& context() const noexcept { return data_.context; }
  /// True until ended, when the span will be exported (sampled) on end.
  [[nodiscard]] bool recording() const noexcept { return !ended_ && exporter_ != nullptr; }

  void set_attribute(std::string key, attribute_value value) {
    if (!recording()) return;
    for (auto& [k, v] : data_.attributes) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
    data_.attributes.emplace_back(std::move(key), std::move(value));
  }
  void set_attribute(std::string key, const char* value) {
    set_attribute(std::move(key), attribute_value(std::string(value)));
  }
  void set_attribute(std::string key, int value) {
    set_attribute(std::move(key), attribute_value(static_cast<std::int64_t>(value)));
  }
  void set_status(span_status status, std::string message = {}) {
    if (!recording()) return;
    data_.status = status;
    data_.status_message = status == span_status::error ? std::move(message) : std::string{};
  }
  /// Records the end time and hands the span to the exporter (once).
  void end() {
    if (ended_) return;
    ended_ = true;
    if (exporter_ == nullptr) return;
    data_.end_unix_nanos = detail::unix_nanos(clock_);
    exporter_->export_span(std::move(data_));
  }

 private:
  template <class>
  friend class basic_tracer;
  basic_span(span_data d, span_exporter* e, Clock c)
      : data_(std::move(d)), exporter_(e), clock_(std::move(c)), ended_(false) {}

  span_data data_;
  span_exporter* exporter_ = nullptr;  ///< null: not sampled (context only)
  Clock clock_{};
  bool ended_ = true;
};

/// @brief Starts spans with fresh ids: a child of the given parent context
///        (same trace id, the parent's sampled flag) or a new root. Root spans
///        are sampled with probability `sample_ratio`; unsampled spans carry a
///        context but export nothing.
///
/// Thread-safety: `start_span` from any threads. Cost: two random draws and the
/// span's allocations. The exporter must outlive the tracer and its spans.
template <class Clock = std::chrono::system_clock>
class basic_tracer {
 public:
  using span = basic_span<Clock>;

  explicit basic_tracer(span_exporter& exporter, double sample_ratio = 1.0, Clock clock = {})
      : exporter_(&exporter), clock_(std::move(clock)) {
    if (!(sample_ratio >= 0.0 && sample_ratio <= 1.0)) {
      throw error(errc::invalid_argument,
                  "tracer sample_ratio must be in [0, 1]; saw " + std::to_string(sample_ratio));
    }
    // Compare the first 8 bytes of a trace id with a threshold: consistent per trace.
    threshold_ = sample_ratio >= 1.0 ? UINT64_MAX
                                     : static_cast<std::uint64_t>(sample_ratio * 18446744073709551616.0);
  }

  [[nodiscard]] span start_span(std::string name, span_kind kind = span_kind::internal,
                                const std::optional<trace_context>& parent = std::nullopt) const {
    span_data d;
    d.name = std::move(name);
    d.kind = kind;
    if (parent && parent->valid()) {
      d.context.trace = parent->trace;
      d.context.flags = parent->flags & trace_context::sampled_flag;
      d.parent = parent->span;
    } else {
      detail::random_id(d.context.trace);
      std::uint64_t head = 0;
      for (int i = 0; i < 8; ++i) head = head << 8 | d.context.trace[static_cast<std::size_t>(i)];
      const bool sampled = threshold_ == UINT64_MAX || head < threshold_;
      d.context.flags = sampled ? trace_context::sampled_flag : 0;
    }
    detail::random_id(d.context.span);
    const bool sampled = d.context.sampled();
    d.start_unix_nanos = detail::unix_nanos(clock_);
    return span(std::move(d), sampled ? exporter_ : nullptr, clock_);
  }

 private:
  span_exporter* exporter_;
  Clock clock_;
  std::uint64_t threshold_ = UINT64_MAX;
};

using tracer = basic_tracer<>;
using span = basic_span<std::chrono::system_clock>;

/// @brief The OTLP/JSON body (ExportTraceServiceRequest) for `spans` of one
///        service: ids as lowercase hex, times as decimal strings of Unix
///        nanoseconds, kind and status as OTLP's numbers.
inline nlohmann::json to_otlp_json(const std::vector<span_data>& spans, const std::string& service_name) {
  using nlohmann::json;
  const auto attr = [](const std::string& key, const attribute_value& v) {
    json value = std::visit(
        [](const auto& x) -> json {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) return {{"stringValue", x}};
          else if constexpr (std::is_same_v<T, bool>) return {{"boolValue", x}};
          else if constexpr (std::is_same_v<T, std::int64_t>) return {{"intValue", std::to_string(x)}};
          else return {{"doubleValue", x}};
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
  return json{{"resourceSpans",
               json::array({json{
                   {"resource", {{"attributes", json::array({attr("service.name", service_name)})}}},
                   {"scopeSpans", json::array({json{{"scope", {{"name", "seckill"}, {"version", version.string}}},
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

  /// Sends every queued span; completes with `void(std::error_code)`. Honours
  /// per-operation cancellation (terminal): the batch in flight is dropped.
  template <class CompletionToken>
  auto async_flush(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(std::error_code)>(
        [st = state_](auto handler) {
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          auto ex = boost::asio::get_associated_executor(handler, st->strand);
          boost::asio::co_spawn(
              st->strand, flush_all(st),
              boost::asio::bind_cancellation_slot(
                  slot, [h = std::move(handler), ex](std::exception_ptr ep, std::error_code ec) mutable {
                    if (ep && !ec) ec = make_error_code(errc::server_error);
                    boost::asio::dispatch(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
                  }));
        },
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

  static boost::asio::awaitable<std::error_code> send(state& st, const std::vector<span_data>& batch) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    asio::ip::tcp::resolver resolver(st.strand);
    auto [rec, results] = co_await resolver.async_resolve(st.opts.host, st.opts.port, tuple);
    if (rec) co_return rec == asio::error::operation_aborted ? make_error_code(errc::operation_aborted)
                                                            : std::error_code(rec);
    beast::tcp_stream stream(st.strand);
    stream.expires_after(st.opts.timeout);
    auto [cec, ep] = co_await stream.async_connect(results, tuple);
    (void)ep;
    if (cec) co_return map_error(cec);
    http::request<http::string_body> req{http::verb::post, st.opts.target, 11};
    const std::string& host = st.opts.host;  // an IPv6 address goes in brackets: [::1]:4318
    req.set(http::field::host, (host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host) +
                                   ":" + st.opts.port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, std::string("seckill/") + version.string);
    req.body() = to_otlp_json(batch, st.opts.service_name).dump(-1, ' ', false,
                                                                 nlohmann::json::error_handler_t::replace);
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
    if (ec == boost::asio::error::operation_aborted) return make_error_code(errc::operation_aborted);
    if (ec == boost::asio::error::connection_refused) return make_error_code(errc::connection_refused);
    return ec;
  }

  std::shared_ptr<state> state_;
};

}  // namespace seckill::obs
