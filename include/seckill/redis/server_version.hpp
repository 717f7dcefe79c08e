#pragma once
/// @file
/// @brief `server_version`: a Redis server's version as `HELLO` (`version`)
///        and `INFO server` (`redis_version:`) report it, parsed and
///        compared, so that a connection can refuse a server too old for the
///        commands and scripts it is going to send. The standard library only.

#include <compare>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace seckill::redis {

/// @brief A server version, major.minor.patch; all zeros: unknown (or, as a
///        requirement, none). Thread-safety: a plain value. Cost: none.
struct server_version {
  unsigned major = 0;
  unsigned minor = 0;
  unsigned patch = 0;

  /// False for 0.0.0, which stands for "unknown" or "no requirement".
  [[nodiscard]] constexpr bool known() const noexcept {
    return major != 0 || minor != 0 || patch != 0;
  }
  friend constexpr auto operator<=>(const server_version&, const server_version&) = default;
};

/// @brief "7.0.15".
inline std::string to_string(const server_version& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

/// @brief Parses "major.minor[.patch]" as Redis reports it ("7.0.15", "7.2");
///        a suffix after '-' or '+' is ignored ("7.4.0-rc1"). Each part is
///        1 to 5 decimal digits. Empty when `text` is anything else (empty,
///        "7", "7.", "x.y.z", "7.0.15.1", "7.0.15 ", a part over 5 digits).
constexpr std::optional<server_version> parse_server_version(std::string_view text) noexcept {
  if (const auto cut = text.find_first_of("-+"); cut != std::string_view::npos)
    text = text.substr(0, cut);
  unsigned parts[3] = {0, 0, 0};
  std::size_t count = 0;
  std::size_t digits = 0;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      if (++digits > 5) return std::nullopt;
      parts[count] = parts[count] * 10 + static_cast<unsigned>(c - '0');
    } else if (c == '.') {
      if (digits == 0 || count == 2) return std::nullopt;
      ++count;
      digits = 0;
    } else {
      return std::nullopt;
    }
  }
  if (digits == 0 || count == 0) return std::nullopt;
  return server_version{parts[0], parts[1], parts[2]};
}

/// @brief The `redis_version:` field of an `INFO` (or `INFO server`) reply;
///        empty when the field is missing or does not parse.
constexpr std::optional<server_version> server_version_from_info(std::string_view info) noexcept {
  constexpr std::string_view field = "redis_version:";
  std::size_t at = 0;
  for (;;) {
    at = info.find(field, at);
    if (at == std::string_view::npos) return std::nullopt;
    if (at == 0 || info[at - 1] == '\n') break;  // at the start of a line
    at += field.size();
  }
  std::string_view value = info.substr(at + field.size());
  value = value.substr(0, value.find_first_of("\r\n"));
  return parse_server_version(value);
}

}  // namespace seckill::redis
