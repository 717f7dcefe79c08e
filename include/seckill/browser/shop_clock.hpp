#pragma once
/// @file
/// @brief How far the local clock is from the shop's: samples of the shop's
///        time (an HTTP `Date` header, a clock element on the page), the
///        estimate of the offset from them (`estimate_clock_offset`), and the
///        log line of a start converted to the local clock
///        (`describe_start`). Pure functions, standard library only.

#include <seckill/browser/sale_time.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace seckill::browser {

/// @brief One reading of the shop's clock: the local times around the request
///        (or the read) and the time the shop gave, truncated to its
///        resolution (an HTTP Date header has whole seconds).
///
/// A plain value. Cost: none.
struct clock_sample {
  std::chrono::system_clock::time_point sent;                    ///< local time the request left
  std::chrono::system_clock::time_point received;                ///< local time the answer came
  std::chrono::system_clock::time_point shop;                    ///< the shop's time, truncated
  std::chrono::nanoseconds resolution{std::chrono::seconds(1)};  ///< the shop time's unit
};

/// @brief The local clock's offset to the shop's: a time on the shop's clock
///        is `shop + offset` on the local one.
///
/// A plain value. Cost: none.
struct clock_offset {
  std::chrono::nanoseconds offset{0};       ///< local minus shop
  std::chrono::nanoseconds uncertainty{0};  ///< the true offset is within offset +- this
  std::chrono::nanoseconds round_trip{0};   ///< of the sample kept
  std::chrono::nanoseconds resolution{0};   ///< of the sample kept
  int samples = 0;                          ///< how many were usable

  /// The local time of `shop_time`.
  [[nodiscard]] std::chrono::system_clock::time_point to_local(
      std::chrono::system_clock::time_point shop_time) const {
    return shop_time + std::chrono::duration_cast<std::chrono::system_clock::duration>(offset);
  }
};

/// @brief The offset from samples: each one says the shop's time was
///        `shop + resolution / 2` (the middle of its truncation) when the
///        local clock was half-way between sent and received (half the round
///        trip compensated), within `(round trip + resolution) / 2`. The
///        sample with the smallest such bound is kept (the lowest round trip
///        for one kind of sample). Samples whose received is before their
///        sent are skipped; nullopt when none is left. Cost: O(samples).
inline std::optional<clock_offset> estimate_clock_offset(std::span<const clock_sample> samples) {
  using std::chrono::nanoseconds;
  std::optional<clock_offset> best;
  int usable = 0;
  for (const auto& s : samples) {
    if (s.received < s.sent || s.resolution < nanoseconds::zero()) continue;
    ++usable;
    const nanoseconds rtt = s.received - s.sent;
    const auto local_mid = s.sent + (s.received - s.sent) / 2;
    const auto shop_mid = s.shop + s.resolution / 2;
    clock_offset o;
    o.offset = std::chrono::duration_cast<nanoseconds>(local_mid - shop_mid);
    o.uncertainty = (rtt + s.resolution) / 2;
    o.round_trip = rtt;
    o.resolution = s.resolution;
    if (!best || o.uncertainty < best->uncertainty) best = o;
  }
  if (best) best->samples = usable;
  return best;
}

/// @brief An HTTP date in the IMF-fixdate form every server sends
///        (`Fri, 04 Dec 2026 12:00:00 GMT`, RFC 9110), or nullopt.
inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
  using namespace std::chrono;
  // "Fri, 04 Dec 2026 12:00:00 GMT": 29 characters.
  if (v.size() != 29 || v.substr(3, 2) != ", " || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
      v[19] != ':' || v[22] != ':' || v.substr(25) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto m = std::find(std::begin(months), std::end(months), v.substr(8, 3));
  if (m == std::end(months)) return std::nullopt;
  int d = 0, y = 0, h = 0, mi = 0, s = 0;
  std::size_t p = 5;
  if (!detail::read_digits(v, p, 2, d)) return std::nullopt;
  p = 12;
  if (!detail::read_digits(v, p, 4, y)) return std::nullopt;
  p = 17;
  if (!detail::read_digits(v, p, 2, h)) return std::nullopt;
  p = 20;
  if (!detail::read_digits(v, p, 2, mi)) return std::nullopt;
  p = 23;
  if (!detail::read_digits(v, p, 2, s)) return std::nullopt;
  const year_month_day date{year{y}, month{static_cast<unsigned>(m - std::begin(months) + 1)},
                            day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return time_point_cast<system_clock::duration>(sys_days(date) + hours(h) + minutes(mi) +
                                                 seconds(s));
}

/// @brief What a page clock element shows, as a shop time and its
///        resolution: an ISO 8601 time with offset (parse_sale_time; the
///        unit of its last fraction digit, 1 s without one) or a whole number
///        of milliseconds since the Unix epoch (1 ms). nullopt otherwise.
inline std::optional<std::pair<std::chrono::system_clock::time_point, std::chrono::nanoseconds>>
parse_clock_text(std::string_view text) {
  using namespace std::chrono;
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (text.size() <= 16 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t ms = 0;
    for (const char c : text) ms = ms * 10 + (c - '0');
    return std::pair{system_clock::time_point(milliseconds(ms)), nanoseconds(milliseconds(1))};
  }
  {
    const std::optional<sale_time> t = try_parse_sale_time(text);
    if (!t) return std::nullopt;
    nanoseconds res = seconds(1);
    const auto dot = text.find_first_of(".,", 19);
    if (dot != std::string_view::npos) {
      std::size_t digits = 0;
      while (dot + 1 + digits < text.size() && text[dot + 1 + digits] >= '0' &&
             text[dot + 1 + digits] <= '9')
        ++digits;
      for (std::size_t i = 0; i < digits; ++i) res /= 10;
    }
    return std::pair{t->at, res};
  }
}

/// @brief The log line of a start: "start 20:00:00.000 shop time = local
///        19:59:58.742, offset -1.258 s ± 0.500 s (...)", both times in the
///        start's UTC offset; without an estimate, the local clock is taken
///        as the shop's and the line says so.
inline std::string describe_start(const sale_time& start, const std::optional<clock_offset>& o,
                                  std::string_view source = {}) {
  using namespace std::chrono;
  const auto secs = [](nanoseconds d, bool sign = true) {
    const auto ms = duration_cast<milliseconds>(d).count();
    const auto a = ms < 0 ? -ms : ms;
    std::string s = ms < 0 ? "-" : (ms > 0 && sign ? "+" : "");
    s += std::to_string(a / 1000) + ".";
    const auto frac = a % 1000;
    s += static_cast<char>('0' + frac / 100);
    s += static_cast<char>('0' + frac / 10 % 10);
    s += static_cast<char>('0' + frac % 10);
    return s + " s";
  };
  std::string line = "start " + format_time_of_day(start.at, start.utc_offset) + " shop time";
  if (!o) return line + " = local (the shop's clock unknown: the local clock taken as the shop's)";
  const auto local = o->to_local(start.at);
  line += " = local " + format_time_of_day(local, start.utc_offset) + ", offset " +
          secs(o->offset) + " ± " + secs(o->uncertainty, false);
  line += " (best of " + std::to_string(o->samples) + (o->samples == 1 ? " sample" : " samples");
  if (!source.empty()) line += std::string(" of the ") + std::string(source);
  line +=
      ", round trip " + std::to_string(duration_cast<milliseconds>(o->round_trip).count()) + " ms";
  if (o->resolution >= seconds(1)) {
    line += ", the shop's time in whole seconds";
  } else {
    line += ", resolution " + std::to_string(duration_cast<microseconds>(o->resolution).count()) +
            " us";
  }
  return line + ")";
}

}  // namespace seckill::browser
