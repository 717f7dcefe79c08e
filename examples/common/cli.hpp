#pragma once
// The examples' command lines: value parsers ("250ms", "1.5s", integers,
// numbers) and flag_cursor, which walks argv one flag at a time ("--flag v"
// or "--flag=v") and turns every bad value into a usage_error naming the
// flag, what it expects and what it saw. The standard library and fmt only.

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace seckill_examples {

/// A command line that cannot be used; `message` says why, naming the flag.
struct usage_error {
  std::string message;
};

/// `--help` or `-h` was given.
struct help_requested {};

inline std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

inline std::optional<double> parse_double(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

/// "250ms", "1.5s", "300us", or a bare number of milliseconds; at most 1e12 us.
inline std::optional<std::chrono::microseconds> parse_duration(std::string_view s) {
  double scale = 1000.0;  // microseconds per unit
  if (s.ends_with("us")) {
    scale = 1.0;
    s.remove_suffix(2);
  } else if (s.ends_with("ms")) {
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    scale = 1e6;
    s.remove_suffix(1);
  }
  const auto v = parse_double(s);
  if (!v || *v < 0 || *v * scale > 1e12) return std::nullopt;
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(*v * scale)));
}

/// Walks argv flag by flag. Each reader takes the flag's value (the next
/// argument, or what follows '=') and returns a usage_error when it is
/// missing or out of range, else nothing.
class flag_cursor {
 public:
  flag_cursor(int argc, const char* const* argv) : args_(argv + 1, argv + argc) {}

  /// Moves to the next flag; false after the last.
  bool next() {
    if (++i_ >= args_.size()) return false;
    flag_ = args_[i_];
    inline_.reset();
    if (const auto eq = flag_.find('='); flag_.starts_with("--") && eq != std::string_view::npos) {
      inline_ = flag_.substr(eq + 1);
      flag_ = flag_.substr(0, eq);
    }
    return true;
  }

  /// The flag, without any "=value".
  [[nodiscard]] std::string_view flag() const noexcept { return flag_; }
  /// The argument as written.
  [[nodiscard]] std::string_view argument() const noexcept { return args_[i_]; }

  [[nodiscard]] usage_error unknown() const {
    return {fmt::format("unknown option '{}' (see --help)", argument())};
  }
  [[nodiscard]] usage_error bad(std::string_view v, std::string_view expected) const {
    return {fmt::format("{}: expected {}, saw '{}'", flag_, expected, v)};
  }

  std::optional<usage_error> no_value() const {
    if (inline_) return usage_error{fmt::format("{} takes no value (saw '{}')", flag_, *inline_)};
    return std::nullopt;
  }
  std::optional<usage_error> text(std::string& out) {
    const auto v = value();
    if (!v) return missing();
    out = std::string(*v);
    return std::nullopt;
  }
  std::optional<usage_error> integer(std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    const auto v = value();
    if (!v) return missing();
    const auto n = parse_int(*v);
    if (!n || *n < lo || *n > hi) return bad(*v, fmt::format("an integer in [{}, {}]", lo, hi));
    out = *n;
    return std::nullopt;
  }
  template <class Int>
  std::optional<usage_error> integer_as(std::int64_t lo, std::int64_t hi, Int& out) {
    std::int64_t n = 0;
    auto err = integer(lo, hi, n);
    if (!err) out = static_cast<Int>(n);
    return err;
  }
  std::optional<usage_error> real(double lo, double hi, double& out) {
    const auto v = value();
    if (!v) return missing();
    const auto n = parse_double(*v);
    if (!n || *n < lo || *n > hi) return bad(*v, fmt::format("a number in [{}, {}]", lo, hi));
    out = *n;
    return std::nullopt;
  }
  std::optional<usage_error> duration(std::chrono::microseconds lo, std::chrono::microseconds hi,
                                      std::chrono::microseconds& out) {
    const auto v = value();
    if (!v) return missing();
    const auto d = parse_duration(*v);
    if (!d || *d < lo || *d > hi)
      return bad(*v, fmt::format("a duration in [{}us, {}us] like 250ms, 1.5s or 300us", lo.count(),
                                 hi.count()));
    out = *d;
    return std::nullopt;
  }
  /// A duration that must be a whole number of milliseconds.
  std::optional<usage_error> millis(std::chrono::milliseconds lo, std::chrono::milliseconds hi,
                                    std::chrono::milliseconds& out) {
    std::chrono::microseconds d{};
    if (auto err = duration(lo, hi, d)) return err;
    if (d % std::chrono::milliseconds(1) != std::chrono::microseconds::zero())
      return bad(last_, "a whole number of milliseconds");
    out = std::chrono::duration_cast<std::chrono::milliseconds>(d);
    return std::nullopt;
  }

 private:
  std::optional<std::string_view> value() {
    if (inline_) return last_ = *inline_;
    if (i_ + 1 >= args_.size()) return std::nullopt;
    return last_ = args_[++i_];
  }
  [[nodiscard]] usage_error missing() const { return {fmt::format("{} needs a value", flag_)}; }

  std::vector<std::string_view> args_;
  std::size_t i_ = static_cast<std::size_t>(-1);
  std::string_view flag_;
  std::optional<std::string_view> inline_;
  std::string_view last_;  // the last value read
};

}  // namespace seckill_examples
