#pragma once
/// @file
/// @brief The line format strategy files and site profiles share:
///        `key = value` lines, blank lines and comments. A `#` starts a
///        comment at the start of a line, or after a space when a space or
///        the line's end follows it, so `#buy` is a selector and `# note` a
///        comment. Standard library and seckill/error.hpp only.

#include <seckill/error.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace seckill::browser::detail {

/// The pieces, one after the other (the parsers' messages).
template <class... Pieces>
std::string cat(const Pieces&... pieces) {
  std::string out;
  (out.append(std::string_view(pieces)), ...);
  return out;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// A line without its comment.
inline std::string_view strip_comment(std::string_view line) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '#') continue;
    const bool starts = trim(line.substr(0, i)).empty();
    const bool alone = i > 0 && space(line[i - 1]) && (i + 1 == line.size() || space(line[i + 1]));
    if (starts || alone) return line.substr(0, i);
  }
  return line;
}

/// Throws seckill::error (errc::invalid_argument): "<source> line <n>: <what>".
[[noreturn]] inline void line_error(std::string_view source, std::size_t line,
                                    const std::string& what) {
  throw error(seckill::errc::invalid_argument,
              cat(source, " line ", std::to_string(line), ": ", what));
}

/// Calls `fn(line_no, key, value)` for every `key = value` line of `text`,
/// after the checks every key shares: the `=`, a value, each key once.
template <class Fn>
void for_each_key(std::string_view text, std::string_view source, Fn&& fn) {
  std::size_t line_no = 0;
  std::vector<std::string> seen;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line = trim(strip_comment(line));
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      line_error(source, line_no, cat("expected 'key = value', got '", line, "'"));
    }
    const std::string key(trim(line.substr(0, eq)));
    const std::string_view value = trim(line.substr(eq + 1));
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      line_error(source, line_no, cat("'", key, "' given twice"));
    }
    seen.push_back(key);
    if (value.empty()) line_error(source, line_no, cat("'", key, "' has no value"));
    fn(line_no, key, value);
  }
}

}  // namespace seckill::browser::detail
