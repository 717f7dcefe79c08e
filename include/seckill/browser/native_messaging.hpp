#pragma once
/// @file
/// @brief Chromium's native-messaging framing and seckill's extension
///        protocol (version 1): a frame is a 4-byte length in native byte
///        order and that many bytes of UTF-8 JSON. A message the browser
///        sends to the host may be up to 64 MiB, one the host sends up to
///        1 MB. Every message is a JSON object with `"v": 1`; a request has
///        `id`, `op` and `args`, its reply the same `id` and `ok` with
///        `result` or `error: {code, message}`, an event `event`. The
///        protocol is in docs/browser.md, "The extension".

#include <seckill/browser/error.hpp>
#include <seckill/error.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill::browser::native_messaging {

/// The protocol version every message carries as `"v"`.
inline constexpr int protocol_version = 1;
/// The largest message a native host may send to the browser (Chromium's limit).
inline constexpr std::size_t to_browser_limit = std::size_t{1024} * 1024;
/// The largest message the browser sends to a native host (Chromium's limit).
inline constexpr std::size_t to_host_limit = std::size_t{64} << 20;
/// The length prefix's size.
inline constexpr std::size_t header_size = 4;

/// @brief What decode_frame found at the front of a buffer.
///
/// A plain value; `body` points into the decoded buffer. Cost: none.
struct decoded_frame {
  std::error_code error;     ///< message_too_large (the length exceeds the limit)
  bool complete = false;     ///< a whole frame is there (else: read more)
  std::size_t consumed = 0;  ///< bytes the frame takes (header included) when complete
  std::string_view body;     ///< its JSON text when complete
};

/// The length a frame's header says (native byte order).
inline std::uint32_t read_length(const char* header) noexcept {
  std::uint32_t n = 0;
  std::memcpy(&n, header, sizeof n);
  return n;
}

/// Decodes the frame at the front of `buffer`, at most `limit` bytes of
/// body: incomplete (not `complete`, no error) while the header or the body
/// is short; errc::message_too_large when the header says more than
/// `limit`. Never reads past `buffer`, never throws: fit for fuzzing.
inline decoded_frame decode_frame(std::string_view buffer, std::size_t limit) noexcept {
  decoded_frame f;
  if (buffer.size() < header_size) return f;
  const std::uint32_t n = read_length(buffer.data());
  if (n > limit) {
    f.error = make_error_code(seckill::errc::message_too_large);
    return f;
  }
  if (buffer.size() - header_size < n) return f;
  f.complete = true;
  f.consumed = header_size + n;
  f.body = buffer.substr(header_size, n);
  return f;
}

/// `body` framed: the 4-byte length then the bytes; errc::message_too_large
/// (and nothing written) when `body` exceeds `limit`.
inline std::error_code encode_frame(std::string_view body, std::size_t limit, std::string& out) {
  if (body.size() > limit) return make_error_code(seckill::errc::message_too_large);
  const auto n = static_cast<std::uint32_t>(body.size());
  char header[header_size];
  std::memcpy(header, &n, sizeof n);
  out.append(header, header_size);
  out.append(body);
  return {};
}

/// @brief A message read from a frame's body, or why it is not one.
///
/// A plain value. Cost: that of its JSON.
struct parsed_message {
  std::error_code error;  ///< protocol_error: not JSON, not an object, another version
  std::string problem;    ///< what was wrong, with the value seen (never the whole body)
  nlohmann::json value;   ///< the message object when no error
};

/// Reads `body` as one protocol message: a JSON object whose `v` is
/// protocol_version. Never throws.
inline parsed_message parse_message(std::string_view body) {
  parsed_message m;
  m.value = nlohmann::json::parse(body, nullptr, false);
  if (m.value.is_discarded()) {
    m.error = make_error_code(seckill::errc::protocol_error);
    m.problem = "a message is not JSON (" + std::to_string(body.size()) + " bytes)";
    m.value = nullptr;
    return m;
  }
  if (!m.value.is_object()) {
    m.error = make_error_code(seckill::errc::protocol_error);
    m.problem = std::string("a message is a JSON ") + m.value.type_name() + ", not an object";
    m.value = nullptr;
    return m;
  }
  const auto v = m.value.find("v");
  if (v == m.value.end() || !v->is_number_integer() || v->get<std::int64_t>() != protocol_version) {
    m.error = make_error_code(seckill::errc::protocol_error);
    m.problem = "a message has protocol version " +
                (v == m.value.end() ? std::string("(none)") : v->dump()) + ", not " +
                std::to_string(protocol_version);
    m.value = nullptr;
  }
  return m;
}

/// The error a reply's `error.code` names: browser::errc's and seckill::errc's
/// names ("element_not_found", "timed_out", ...); any other is protocol_error.
inline std::error_code error_from_code(std::string_view code) noexcept {
  using be = seckill::browser::errc;
  using se = seckill::errc;
  if (code == "browser_closed") return make_error_code(be::browser_closed);
  if (code == "javascript_exception") return make_error_code(be::javascript_exception);
  if (code == "navigation_failed") return make_error_code(be::navigation_failed);
  if (code == "element_not_found") return make_error_code(be::element_not_found);
  if (code == "element_not_actionable") return make_error_code(be::element_not_actionable);
  if (code == "not_logged_in") return make_error_code(be::not_logged_in);
  if (code == "timed_out") return make_error_code(se::timed_out);
  if (code == "invalid_argument") return make_error_code(se::invalid_argument);
  if (code == "operation_aborted") return make_error_code(se::operation_aborted);
  return make_error_code(se::protocol_error);
}

/// The protocol's name for `ec` (error_from_code's inverse; "protocol_error"
/// for any other).
inline std::string_view code_of(std::error_code ec) noexcept {
  for (std::string_view c : {"browser_closed", "javascript_exception", "navigation_failed",
                             "element_not_found", "element_not_actionable", "not_logged_in",
                             "timed_out", "invalid_argument", "operation_aborted"}) {
    if (error_from_code(c) == ec) return c;
  }
  return "protocol_error";
}

}  // namespace seckill::browser::native_messaging
