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
#include <vector>

namespace seckill::browser {

/// @brief Where a reading of the shop's clock came from.
enum class clock_source {
  date_header,  ///< an HTTP response's Date header: the server's own clock
  page_clock,   ///< a clock element on the page: the clock the page shows
};

/// @brief One reading of the shop's clock: the local times around the request
///        (or the read) and the time the shop gave, truncated to its
///        resolution (an HTTP Date header has whole seconds). The shop read
///        its clock at some local moment in [sent, received].
///
/// A plain value. Cost: none.
struct clock_sample {
  std::chrono::system_clock::time_point sent;                    ///< local time the request left
  std::chrono::system_clock::time_point received;                ///< local time the answer came
  std::chrono::system_clock::time_point shop;                    ///< the shop's time, truncated
  std::chrono::nanoseconds resolution{std::chrono::seconds(1)};  ///< the shop time's unit
  clock_source source = clock_source::date_header;               ///< where it came from
};

/// @brief The local clock's offset to the shop's: a time on the shop's clock
///        is `shop + offset` on the local one, and the true offset lies in
///        [lo, hi] (offset is its middle, uncertainty its half-width).
///
/// A plain value. Cost: none.
struct clock_offset {
  std::chrono::nanoseconds offset{0};       ///< local minus shop (the interval's middle)
  std::chrono::nanoseconds uncertainty{0};  ///< the true offset is within offset +- this
  std::chrono::nanoseconds round_trip{0};   ///< the smallest of the samples kept
  std::chrono::nanoseconds resolution{0};   ///< the finest of the samples kept
  int samples = 0;                          ///< how many were kept
  std::chrono::nanoseconds lo{0};           ///< the smallest offset the samples allow
  std::chrono::nanoseconds hi{0};           ///< the largest offset the samples allow
  int dropped = 0;                          ///< samples left out for their large round trip
  bool consistent = true;  ///< false: kept samples disagreed; [lo, hi] spans them all
  bool manual = false;     ///< set by hand (manual_clock_offset), not measured

  /// The local time of `shop_time` by the middle of the interval.
  [[nodiscard]] std::chrono::system_clock::time_point to_local(
      std::chrono::system_clock::time_point shop_time) const {
    return shop_time + std::chrono::duration_cast<std::chrono::system_clock::duration>(offset);
  }
  /// The latest local moment `shop_time` can be: acting then is never early.
  [[nodiscard]] std::chrono::system_clock::time_point latest_local(
      std::chrono::system_clock::time_point shop_time) const {
    return shop_time + std::chrono::duration_cast<std::chrono::system_clock::duration>(hi);
  }
  /// The earliest local moment `shop_time` can be.
  [[nodiscard]] std::chrono::system_clock::time_point earliest_local(
      std::chrono::system_clock::time_point shop_time) const {
    return shop_time + std::chrono::duration_cast<std::chrono::system_clock::duration>(lo);
  }
};

/// @brief An offset given by hand (local minus shop, e.g. from the shop's
///        own "server time" page): exact as far as the grabber knows.
inline clock_offset manual_clock_offset(std::chrono::nanoseconds offset) {
  clock_offset o;
  o.offset = o.lo = o.hi = offset;
  o.manual = true;
  return o;
}

/// @brief The round trip above which a sample is left out when
///        estimate_clock_offset chooses: twice the smallest plus 10 ms.
inline std::chrono::nanoseconds default_max_round_trip(std::chrono::nanoseconds smallest) {
  return 2 * smallest + std::chrono::milliseconds(10);
}

/// @brief The offset from samples, as an intersection of intervals. The shop
///        read its clock at a local moment t in [sent, received] and showed
///        `shop` truncated to `resolution`, so the offset (t minus the shop's
///        time) lies in [sent - shop - resolution, received - shop]: half the
///        round trip is compensated by construction, and a sample taken as
///        the shop's second changes bounds the offset to about its round trip.
///
/// Samples whose received is before their sent are skipped; those whose
/// round trip exceeds `max_round_trip` (default: default_max_round_trip of
/// the smallest) are dropped (counted in `dropped`). The kept samples of
/// each source are intersected; if they disagree (an empty intersection: a
/// shop whose servers' clocks differ), the interval spans them all and
/// `consistent` is false. The Date header's and the page clock's intervals
/// are intersected the same way. nullopt when no sample is kept.
/// Cost: O(samples).
inline std::optional<clock_offset> estimate_clock_offset(
    std::span<const clock_sample> samples, std::chrono::nanoseconds max_round_trip = {}) {
  using std::chrono::nanoseconds;
  std::optional<nanoseconds> smallest;
  for (const auto& s : samples) {
    if (s.received < s.sent || s.resolution < nanoseconds::zero()) continue;
    const nanoseconds rtt = s.received - s.sent;
    if (!smallest || rtt < *smallest) smallest = rtt;
  }
  if (!smallest) return std::nullopt;
  const nanoseconds limit =
      max_round_trip > nanoseconds::zero() ? max_round_trip : default_max_round_trip(*smallest);
  struct range {
    bool any = false, agree = true;
    nanoseconds lo{0}, hi{0}, hull_lo{0}, hull_hi{0};
  };
  range by_source[2];
  clock_offset o;
  for (const auto& s : samples) {
    if (s.received < s.sent || s.resolution < nanoseconds::zero()) continue;
    const nanoseconds rtt = s.received - s.sent;
    if (rtt > limit) {
      ++o.dropped;
      continue;
    }
    const nanoseconds lo = s.sent - s.shop - s.resolution;
    const nanoseconds hi = s.received - s.shop;
    range& r = by_source[s.source == clock_source::page_clock ? 1 : 0];
    if (!r.any) {
      r = {true, true, lo, hi, lo, hi};
    } else {
      r.lo = std::max(r.lo, lo);
      r.hi = std::min(r.hi, hi);
      r.hull_lo = std::min(r.hull_lo, lo);
      r.hull_hi = std::max(r.hull_hi, hi);
    }
    if (o.samples == 0 || rtt < o.round_trip) o.round_trip = rtt;
    if (o.samples == 0 || s.resolution < o.resolution) o.resolution = s.resolution;
    ++o.samples;
  }
  if (o.samples == 0) return std::nullopt;
  bool first = true;
  for (range& r : by_source) {
    if (!r.any) continue;
    if (r.lo > r.hi) {  // the samples disagree: all of them are possible
      r.agree = false;
      r.lo = r.hull_lo;
      r.hi = r.hull_hi;
      o.consistent = false;
    }
    if (first) {
      o.lo = r.lo;
      o.hi = r.hi;
      first = false;
    } else if (std::max(o.lo, r.lo) <= std::min(o.hi, r.hi)) {
      o.lo = std::max(o.lo, r.lo);
      o.hi = std::min(o.hi, r.hi);
    } else {  // the page's clock and the server's disagree
      o.lo = std::min(o.lo, r.lo);
      o.hi = std::max(o.hi, r.hi);
      o.consistent = false;
    }
  }
  o.offset = o.lo + (o.hi - o.lo) / 2;
  o.uncertainty = o.hi - o.offset;
  return o;
}

/// @brief When to send the next readings of a whole-second clock so that
///        they straddle one of its second boundaries: `count` local send
///        times spread evenly over where the boundary can fall given
///        `estimate` (its [lo, hi]), each sent half a round trip early, all
///        at least `lead` after `now`. Each reading then says on which side
///        of the boundary it was, and the intersection shrinks to about the
///        spacing plus the round trip: a round cuts the interval by about
///        count + 1. Pure. Cost: O(count).
inline std::vector<std::chrono::system_clock::time_point> plan_straddle(
    const clock_offset& estimate, std::chrono::system_clock::time_point now, int count,
    std::chrono::nanoseconds lead = std::chrono::milliseconds(50)) {
  using namespace std::chrono;
  using sys = system_clock::duration;
  count = std::clamp(count, 1, 100);
  const nanoseconds width = std::max(estimate.hi - estimate.lo, nanoseconds::zero());
  const nanoseconds half_rtt = estimate.round_trip / 2;
  // The first whole shop second whose earliest local moment leaves `lead`.
  const auto boundary = ceil<seconds>(now + duration_cast<sys>(lead + half_rtt - estimate.lo));
  std::vector<system_clock::time_point> at;
  at.reserve(static_cast<std::size_t>(count));
  for (int i = 1; i <= count; ++i) {
    const nanoseconds local = estimate.lo + width * i / (count + 1) - half_rtt;
    at.push_back(time_point_cast<sys>(boundary) + duration_cast<sys>(local));
  }
  return at;
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
///        19:59:58.742 (acting at 19:59:58.760, the latest it can be), offset
///        -1.258 s ± 0.018 s (...)", both times in the start's UTC offset;
///        a manual offset says so; without an estimate, the local clock is
///        taken as the shop's and the line says so.
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
  line += " = local " + format_time_of_day(local, start.utc_offset);
  if (o->manual) return line + ", offset " + secs(o->offset) + " (manual)";
  if (o->hi != o->lo) {
    line += " (acting at " + format_time_of_day(o->latest_local(start.at), start.utc_offset) +
            ", the latest it can be)";
  }
  line += ", offset " + secs(o->offset) + " ± " + secs(o->uncertainty, false);
  line += " (" + std::to_string(o->samples) + (o->samples == 1 ? " sample" : " samples");
  if (!source.empty()) line += std::string(" of the ") + std::string(source);
  if (o->dropped > 0) line += ", " + std::to_string(o->dropped) + " dropped for their round trip";
  if (!o->consistent) line += ", which disagree: the interval spans them all";
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
