#pragma once
/// @file
/// @brief The span model: spans, a tracer that starts them (sampling at the
///        root), and the exporter interface they are handed to when they end,
///        with an in-memory exporter. The standard library only; the OTLP/HTTP
///        exporter is obs/otlp_exporter.hpp.
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
#include <seckill/obs/traceparent.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
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

/// @brief Whose side of a call a span describes (OTLP's SpanKind, same numbers).
enum class span_kind {
  unspecified = 0,
  internal = 1,
  server = 2,
  client = 3,
  producer = 4,
  consumer = 5
};

/// @brief A span's outcome (OTLP's StatusCode, same numbers).
enum class span_status { unset = 0, ok = 1, error = 2 };

/// @brief The kind's name as OTLP spells it without its prefix ("server").
constexpr std::string_view to_string(span_kind k) noexcept {
  switch (k) {
    case span_kind::unspecified:
      return "unspecified";
    case span_kind::internal:
      return "internal";
    case span_kind::server:
      return "server";
    case span_kind::client:
      return "client";
    case span_kind::producer:
      return "producer";
    case span_kind::consumer:
      return "consumer";
  }
  return "unknown";
}

/// @brief The status's name ("unset", "ok", "error").
constexpr std::string_view to_string(span_status s) noexcept {
  switch (s) {
    case span_status::unset:
      return "unset";
    case span_status::ok:
      return "ok";
    case span_status::error:
      return "error";
  }
  return "unknown";
}

/// @brief An attribute value: string, bool, integer or double.
using attribute_value = std::variant<std::string, bool, std::int64_t, double>;

/// @brief A finished span, as exporters receive it.
struct span_data {
  std::string name;
  trace_context context;          ///< its own trace id, span id and flags
  std::optional<span_id> parent;  ///< empty for a root span
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
    std::seed_seq seq{
        rd(), rd(), rd(), rd(),
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
      for (std::size_t k = 0; k < 8 && i + k < N; ++k)
        id[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
    }
  } while (all_zero(id));
}

template <class Clock>
inline std::uint64_t unix_nanos(const Clock& clock) {
  const auto d = clock.now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
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
      : data_(std::move(o.data_)),
        exporter_(std::exchange(o.exporter_, nullptr)),
        clock_(std::move(o.clock_)),
        ended_(std::exchange(o.ended_, true)) {}
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
    threshold_ = sample_ratio >= 1.0
                     ? UINT64_MAX
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

}  // namespace seckill::obs
