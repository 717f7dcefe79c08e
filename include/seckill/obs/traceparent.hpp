#pragma once
/// @file
/// @brief W3C Trace Context: the `traceparent` header parsed and formatted,
///        and the ids it carries. The standard library only.
///
/// @code
/// seckill::obs::traceparent_fault why{};
/// if (auto ctx = seckill::obs::parse_traceparent(header, why)) { /* a child of *ctx */ }
/// else log(seckill::obs::to_string(why));
/// @endcode

#include <seckill/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
  bad_length,      ///< version 00 must be exactly 55 characters; later versions at least 55
  bad_delimiter,   ///< a '-' missing between fields (or after them, for later versions)
  not_hex,         ///< a field character is not a hex digit
  uppercase_hex,   ///< hex digits must be lowercase
  version_ff,      ///< version ff is forbidden
  zero_trace_id,   ///< the trace id is all zeros
  zero_parent_id,  ///< the parent (span) id is all zeros
};

/// @brief A short text for a fault, for logs and error messages.
constexpr std::string_view to_string(traceparent_fault f) noexcept {
  switch (f) {
    case traceparent_fault::none:
      return "valid";
    case traceparent_fault::bad_length:
      return "wrong length";
    case traceparent_fault::bad_delimiter:
      return "missing '-' between fields";
    case traceparent_fault::not_hex:
      return "not a hex digit";
    case traceparent_fault::uppercase_hex:
      return "uppercase hex digit";
    case traceparent_fault::version_ff:
      return "version ff is invalid";
    case traceparent_fault::zero_trace_id:
      return "all-zero trace id";
    case traceparent_fault::zero_parent_id:
      return "all-zero parent id";
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
constexpr traceparent_fault parse_hex(std::string_view s,
                                      std::array<std::uint8_t, N>& out) noexcept {
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
  if ((fault = detail::parse_hex(s.substr(0, 2), one)) != traceparent_fault::none)
    return std::nullopt;
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
  if ((fault = detail::parse_hex(s.substr(3, 32), ctx.trace)) != traceparent_fault::none)
    return std::nullopt;
  if ((fault = detail::parse_hex(s.substr(36, 16), ctx.span)) != traceparent_fault::none)
    return std::nullopt;
  if ((fault = detail::parse_hex(s.substr(53, 2), one)) != traceparent_fault::none)
    return std::nullopt;
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
  throw error(errc::invalid_argument, "invalid traceparent (" + std::string(to_string(fault)) +
                                          "): '" + std::string(s) + "'");
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

}  // namespace seckill::obs
