#pragma once
/// @file
/// @brief When a sale starts: an ISO 8601 time with its UTC offset
///        (`parse_sale_time`), the time a countdown element shows as left
///        (`parse_time_left`: `01:02:03`, `02:03`, `123 s`, `1h 2m`,
///        `还剩 1分23秒`, `1小时2分3秒`), and how a log writes such a time
///        (`format_time_of_day`). Pure functions, standard library and
///        seckill/error.hpp only.

#include <seckill/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace seckill::browser {

/// @brief A moment as a shop announces it: the instant, and the UTC offset it
///        was written in (logs write times in that offset again).
///
/// A plain value. Cost: none.
struct sale_time {
  std::chrono::system_clock::time_point at;  ///< the instant
  std::chrono::minutes utc_offset{0};        ///< +08:00 is 480; Z is 0
  friend bool operator==(const sale_time&, const sale_time&) = default;
};

namespace detail {

// Reads exactly `n` digits at `pos` into `out`; false when there are fewer.
inline bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += n;
  return true;
}

/// What is wrong with a time's text (parse_sale_time turns it into seckill::error).
struct bad_time_text {
  std::string message;
};

[[noreturn]] inline void time_error(std::string_view text, std::string_view what) {
  std::string m =
      "expects an ISO 8601 time with its UTC offset like 2026-12-04T20:00:00+08:00 "
      "or 2026-12-04T12:00:00.250Z: ";
  m.append(what);
  m.append(", got '");
  m.append(text);
  m.append("'");
  throw bad_time_text{std::move(m)};
}

}  // namespace detail

/// @brief Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HHMM)`, or
///        says why not in `why` (and returns nullopt). Cost: one pass.
inline std::optional<sale_time> try_parse_sale_time(std::string_view text,
                                                    std::string* why = nullptr);

/// @brief Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HHMM)`
///        (a space may stand for the `T`; up to 9 fraction digits).
///
/// A time without an offset is refused: it would mean a different instant on
/// every machine. Throws seckill::error (errc::invalid_argument) whose message
/// says what is expected, what is wrong and the text it saw; callers prefix it
/// with their line and key. Cost: one pass over the text.
inline sale_time parse_sale_time(std::string_view text) {
  std::string why;
  auto t = try_parse_sale_time(text, &why);
  if (!t) throw error(seckill::errc::invalid_argument, why);
  return *t;
}

inline std::optional<sale_time> try_parse_sale_time(std::string_view text, std::string* why) try {
  using namespace std::chrono;
  std::size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  auto expect = [&](char c, std::string_view what) {
    if (p >= text.size() || text[p] != c) detail::time_error(text, what);
    ++p;
  };
  if (!detail::read_digits(text, p, 4, y)) detail::time_error(text, "no 4-digit year");
  expect('-', "no '-' after the year");
  if (!detail::read_digits(text, p, 2, mo)) detail::time_error(text, "no 2-digit month");
  expect('-', "no '-' after the month");
  if (!detail::read_digits(text, p, 2, d)) detail::time_error(text, "no 2-digit day");
  if (p >= text.size() || (text[p] != 'T' && text[p] != 't' && text[p] != ' ')) {
    detail::time_error(text, "no time of day (a 'T' and HH:MM:SS after the date)");
  }
  ++p;
  if (!detail::read_digits(text, p, 2, h)) detail::time_error(text, "no 2-digit hour");
  expect(':', "no ':' after the hour");
  if (!detail::read_digits(text, p, 2, mi)) detail::time_error(text, "no 2-digit minute");
  expect(':', "no ':' after the minute (seconds are required)");
  if (!detail::read_digits(text, p, 2, se)) detail::time_error(text, "no 2-digit second");
  std::int64_t frac_ns = 0;
  if (p < text.size() && (text[p] == '.' || text[p] == ',')) {
    ++p;
    std::int64_t scale = 100'000'000;
    std::size_t digits = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
      if (++digits > 9) detail::time_error(text, "more than 9 fraction digits");
      frac_ns += (text[p] - '0') * scale;
      scale /= 10;
      ++p;
    }
    if (digits == 0) detail::time_error(text, "no digits after the decimal point");
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                            day{static_cast<unsigned>(d)}};
  if (!date.ok()) detail::time_error(text, "no such date");
  if (h > 23 || mi > 59 || se > 59) detail::time_error(text, "no such time of day");
  if (p >= text.size()) {
    detail::time_error(text, "no UTC offset (add Z or +HH:MM: a local time is ambiguous)");
  }
  minutes offset{0};
  if (text[p] == 'Z' || text[p] == 'z') {
    ++p;
  } else if (text[p] == '+' || text[p] == '-') {
    const bool minus = text[p] == '-';
    ++p;
    int oh = 0, om = 0;
    if (!detail::read_digits(text, p, 2, oh)) detail::time_error(text, "no 2-digit offset hour");
    if (p < text.size() && text[p] == ':') ++p;
    if (!detail::read_digits(text, p, 2, om)) detail::time_error(text, "no 2-digit offset minute");
    if (oh > 14 || om > 59 || (oh == 14 && om > 0)) {
      detail::time_error(text, "an offset beyond +-14:00");
    }
    offset = minutes(oh * 60 + om);
    if (minus) offset = -offset;
  } else {
    detail::time_error(text, "no UTC offset (add Z or +HH:MM: a local time is ambiguous)");
  }
  if (p != text.size()) detail::time_error(text, "text after the offset");
  const auto local = sys_days(date) + hours(h) + minutes(mi) + seconds(se) + nanoseconds(frac_ns);
  return sale_time{time_point_cast<system_clock::duration>(local - offset), offset};
} catch (const detail::bad_time_text& e) {
  if (why) *why = e.message;
  return std::nullopt;
}

/// @brief `HH:MM:SS.mmm` of `t` in the UTC offset `utc_offset` (milliseconds
///        truncated), as logs write a start: "20:00:00.000".
inline std::string format_time_of_day(std::chrono::system_clock::time_point t,
                                      std::chrono::minutes utc_offset) {
  using namespace std::chrono;
  const auto local = time_point_cast<milliseconds>(t) + utc_offset;
  const auto day_start = floor<days>(local);
  const auto ms = (local - day_start).count();
  const auto two = [](std::int64_t v) {
    return std::string(1, static_cast<char>('0' + v / 10)) + static_cast<char>('0' + v % 10);
  };
  const std::int64_t milli = ms % 1000;
  std::string out = two(ms / 3'600'000) + ":" + two(ms / 60'000 % 60) + ":" + two(ms / 1000 % 60);
  out += '.';
  out += static_cast<char>('0' + milli / 100);
  out += static_cast<char>('0' + milli / 10 % 10);
  out += static_cast<char>('0' + milli % 10);
  return out;
}

namespace detail {

// The unit a countdown writes after a number, and its length in bytes; 0 when none.
inline std::size_t time_unit(std::string_view s, std::chrono::milliseconds& unit) {
  using namespace std::chrono;
  struct named {
    std::string_view text;
    milliseconds length;
  };
  // Longest first where one is a prefix of another ("ms" before "m", "分钟" before "分").
  static constexpr named units[] = {
      {"毫秒", milliseconds(1)}, {"小时", hours(1)},
      {"分钟", minutes(1)},      {"天", hours(24)},
      {"时", hours(1)},          {"分", minutes(1)},
      {"秒", seconds(1)},        {"milliseconds", milliseconds(1)},
      {"ms", milliseconds(1)},   {"days", hours(24)},
      {"day", hours(24)},        {"d", hours(24)},
      {"hours", hours(1)},       {"hour", hours(1)},
      {"hrs", hours(1)},         {"hr", hours(1)},
      {"h", hours(1)},           {"minutes", minutes(1)},
      {"minute", minutes(1)},    {"mins", minutes(1)},
      {"min", minutes(1)},       {"m", minutes(1)},
      {"seconds", seconds(1)},   {"second", seconds(1)},
      {"secs", seconds(1)},      {"sec", seconds(1)},
      {"s", seconds(1)},
  };
  for (const auto& u : units) {
    if (s.substr(0, u.text.size()) != u.text) continue;
    // An ASCII unit must end its word: "5 sale" is no "5 s".
    const unsigned char last = static_cast<unsigned char>(u.text.back());
    if (last < 0x80 && u.text.size() < s.size()) {
      const unsigned char next = static_cast<unsigned char>(s[u.text.size()]);
      if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z')) continue;
    }
    unit = u.length;
    return u.text.size();
  }
  return 0;
}

// A number at `p` (digits, an optional fraction): its value in `out`.
inline bool read_number(std::string_view s, std::size_t& p, double& out) {
  const std::size_t start = p;
  double v = 0;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') v = v * 10 + (s[p++] - '0');
  if (p == start) return false;
  if (p + 1 < s.size() && s[p] == '.' && s[p + 1] >= '0' && s[p + 1] <= '9') {
    ++p;
    double scale = 0.1;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      v += (s[p++] - '0') * scale;
      scale /= 10;
    }
  }
  out = v;
  return true;
}

inline void skip_spaces(std::string_view s, std::size_t& p) {
  while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
}

}  // namespace detail

/// @brief The time a countdown element shows as left, or nullopt when its
///        text holds no time.
///
/// Reads the first time in the text, whatever words stand around it: colon
/// forms (`SS` never alone: `MM:SS`, `HH:MM:SS`, `D:HH:MM:SS`, the last part
/// may have a fraction), or numbers with units (`123 s`, `1h 2m 3s`,
/// `2 min 5 sec`, `1500 ms`, `还剩 1分23秒`, `1小时2分3秒`, `2天3时`). A
/// lone number without a unit is no time (nullopt): it could be anything.
/// Minutes and seconds after a colon must be below 60. Cost: one pass.
inline std::optional<std::chrono::milliseconds> parse_time_left(std::string_view text) {
  using namespace std::chrono;
  std::size_t p = 0;
  while (p < text.size() && !(text[p] >= '0' && text[p] <= '9')) ++p;
  if (p == text.size()) return std::nullopt;
  // Colon form?
  {
    std::size_t q = p;
    double parts[4] = {0, 0, 0, 0};
    int n = 0;
    bool fraction = false;
    while (n < 4) {
      const std::size_t before = q;
      double v = 0;
      if (!detail::read_number(text, q, v)) break;
      fraction = text.substr(before, q - before).find('.') != std::string_view::npos;
      parts[n++] = v;
      if (fraction || q >= text.size() || text[q] != ':') break;
      ++q;
    }
    if (n >= 2) {
      static constexpr double scale[] = {86'400'000, 3'600'000, 60'000, 1000};
      double ms = 0;
      for (int i = 0; i < n; ++i) {
        if (i > 0 && i + (4 - n) >= 2 && !(parts[i] < 60)) return std::nullopt;
        if (i > 0 && i + (4 - n) == 1 && !(parts[i] < 24)) return std::nullopt;
        ms += parts[i] * scale[i + (4 - n)];
      }
      return milliseconds(static_cast<std::int64_t>(ms));
    }
  }
  // Numbers with units.
  double total = 0;
  int terms = 0;
  for (;;) {
    double v = 0;
    std::size_t q = p;
    if (!detail::read_number(text, q, v)) break;
    detail::skip_spaces(text, q);
    milliseconds unit{0};
    const std::size_t len = detail::time_unit(text.substr(q), unit);
    if (len == 0) break;
    total += v * static_cast<double>(unit.count());
    ++terms;
    p = q + len;
    detail::skip_spaces(text, p);
  }
  if (terms == 0) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(total));
}

}  // namespace seckill::browser
