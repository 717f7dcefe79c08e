#pragma once
/// @file
/// @brief What a buyer wants and how the choice is made: the offers a shop
///        page shows, a strategy file's parser (`parse_strategy`), and the
///        default strategy (`priority_strategy`). Standard library only: no
///        browser is needed to read a strategy or to test a decision.

#include <seckill/browser/detail/key_value.hpp>
#include <seckill/browser/sale_time.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/browser/webhook.hpp>
#include <seckill/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace seckill::browser {

/// @brief One SKU as the page offers it.
struct sku_offer {
  std::string sku;
  std::string name;
  std::string category;
  double price = 0;
  int stock = 0;  ///< what the page says; 0 = out of stock
};

/// @brief What the page showed when the grabber looked.
struct shop_snapshot {
  std::string status;  ///< the stock-status text
  std::vector<sku_offer> offers;
  /// The offer the page has chosen, where it shows one (a select's value):
  /// a grabber chooses nothing again that is already chosen.
  std::optional<std::string> chosen = std::nullopt;
  /// The quantity the page holds, where it shows one (the field's value or
  /// the +/- count): a grabber sets nothing again that is already set.
  std::optional<int> quantity = std::nullopt;
};

/// @brief What a strategy decided to buy.
struct order_intent {
  std::string sku;
  int quantity = 1;
  double price = 0;
  int requested =
      0;  ///< what was asked for (0: quantity); more than quantity when less was in stock
};

/// @brief A Strategy turns a snapshot into a decision (or none).
template <class S>
concept grab_strategy = requires(const S& s, const shop_snapshot& snap) {
  { s.decide(snap) } -> std::convertible_to<std::optional<order_intent>>;
};

/// @brief One wanted entry: a SKU id or a whole category.
struct wanted_item {
  enum class kind { sku, category };
  kind what = kind::sku;
  std::string value;
  friend bool operator==(const wanted_item&, const wanted_item&) = default;
};

/// The name of a wanted entry's kind, as a strategy file writes it: "sku" or "category".
constexpr std::string_view to_string(wanted_item::kind k) noexcept {
  switch (k) {
    case wanted_item::kind::sku:
      return "sku";
    case wanted_item::kind::category:
      return "category";
  }
  return "unknown";
}

/// @brief What a run does with stock it wants (`mode`).
enum class grab_mode {
  buy,      ///< choose, set the quantity, press buy (the default)
  dry_run,  ///< all the way up to the press: choose, quantity, check the button; no press
  monitor,  ///< watch and tell each stock change; no action at all (not even choose)
};

/// The mode's name as a strategy file writes it: "buy", "dry-run", "monitor".
constexpr std::string_view to_string(grab_mode m) noexcept {
  switch (m) {
    case grab_mode::buy:
      return "buy";
    case grab_mode::dry_run:
      return "dry-run";
    case grab_mode::monitor:
      return "monitor";
  }
  return "unknown";
}

/// @brief Bounds of the random pause before each action (choose, quantity,
///        press): uniform in [min, max]; {0, 0}, the default, pauses not.
///
/// A plain value. Cost: none.
struct delay_range {
  std::chrono::milliseconds min{0};
  std::chrono::milliseconds max{0};
  [[nodiscard]] bool any() const noexcept { return max.count() > 0; }
  friend bool operator==(const delay_range&, const delay_range&) = default;
};

/// @brief A strategy file, parsed: what to buy, in priority order, and the limits.
struct strategy_config {
  std::vector<wanted_item> want;    ///< in priority order
  std::optional<double> max_price;  ///< per unit; none: no cap
  int quantity = 1;                 ///< per order
  bool partial = true;  ///< fewer if fewer are in stock (reported); false: skip such offers
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};  ///< give up after
  double actions_per_second = 3;                                 ///< the human pace
  double burst = 3;                                              ///< actions allowed back to back
  int retries = 1;  ///< more tries within one stock window after a refused or failed one
  std::optional<sale_time> start;           ///< when the sale opens, on the shop's clock; none: now
  delay_range delay;                        ///< the random pause before each action
  std::optional<std::uint64_t> delay_seed;  ///< seeds the pauses; none: the caller's input seed
  bool pace_reaction = true;  ///< false: the first try after a flip takes no token and no pause
  std::optional<site_profile> profile;  ///< the profile keys of the strategy file, if any
  std::string profile_file;       ///< `profile = <file>`: the caller reads it with parse_profile()
  std::optional<webhook> notify;  ///< `notify` (and `notify_body`): where notices go; none: nowhere
  notice_filter notify_on;        ///< `notify_on`: the kinds sent (all by default)
  grab_mode mode = grab_mode::buy;  ///< `mode`: buy, dry-run or monitor
  /// `backoff` (initial..max) and `max_refusals`: the answer to throttling
  throttle_options throttle;
  /// `clock_offset`: the shop clock's offset by hand (local minus shop); none: estimated
  std::optional<std::chrono::milliseconds> clock_offset;
  /// `max_clock_uncertainty`: the estimate's largest accepted half-width; none: any
  std::optional<std::chrono::milliseconds> max_clock_uncertainty;
  bool warn_uncertain_clock = false;  ///< `clock_uncertainty = warn` (default refuse)
  /// `resync_before`: read the shop's clock again this long before the start; `no`: never
  std::optional<std::chrono::milliseconds> resync_before{std::chrono::seconds(10)};
  /// `prepare_before`: get ready this long before the start; `no`: not at all
  std::optional<std::chrono::milliseconds> prepare_before{std::chrono::seconds(5)};
};

/// @brief The longest deadline a strategy file may give: a year. Longer ones
///        (up to `9223372036854775807s`) are refused by `parse_strategy`
///        rather than overflowing when the grabber adds them to its clock.
inline constexpr std::chrono::milliseconds max_strategy_deadline{std::chrono::hours(24 * 365)};

/// @brief The default strategy: the first wanted entry (in priority order)
///        with an in-stock offer at or under the price cap; the cheapest offer
///        within a wanted category. Skips out-of-stock offers. When an offer
///        has fewer in stock than `quantity`, it buys what there is (the
///        intent's quantity is less than its `requested`; the grabber says so)
///        or, with `partial = false`, skips the offer.
///
/// Thread-safety: immutable after construction. Cost: O(wanted x offers).
class priority_strategy {
 public:
  explicit priority_strategy(strategy_config cfg) : cfg_(std::move(cfg)) {}

  [[nodiscard]] std::optional<order_intent> decide(const shop_snapshot& snap) const {
    for (const auto& w : cfg_.want) {
      const sku_offer* best = nullptr;
      for (const auto& o : snap.offers) {
        if (o.stock <= 0 || (!cfg_.partial && o.stock < cfg_.quantity)) continue;
        if (cfg_.max_price && !(o.price <= *cfg_.max_price))
          continue;  // an unknown (NaN) price too
        const bool match =
            w.what == wanted_item::kind::sku ? o.sku == w.value : o.category == w.value;
        if (match && (best == nullptr || cheaper(o.price, best->price))) best = &o;
      }
      if (best != nullptr) {
        return order_intent{best->sku, std::min(cfg_.quantity, best->stock), best->price,
                            cfg_.quantity};
      }
    }
    return std::nullopt;
  }

  [[nodiscard]] const strategy_config& config() const noexcept { return cfg_; }

 private:
  // An unknown (NaN) price ranks after every known one.
  static bool cheaper(double a, double b) noexcept {
    if (std::isnan(a)) return false;
    return std::isnan(b) || a < b;
  }

  strategy_config cfg_;
};

namespace detail {

[[noreturn]] inline void strategy_error(std::size_t line, const std::string& what) {
  throw error(seckill::errc::invalid_argument,
              "strategy line " + std::to_string(line) + ": " + what);
}

/// A number as `std::from_chars` reads it: `nan` and `inf` included (the
/// callers range-check what they read, NaN failing every check); a number
/// beyond double's range is an error.
inline double parse_number(std::string_view v, std::size_t line, std::string_view key) {
  double d = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec == std::errc::result_out_of_range && p == v.data() + v.size()) {
    strategy_error(line, cat(key, " is out of range, got '", v, "'"));
  }
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
    strategy_error(line, cat(key, " must be a number, got '", v, "'"));
  }
  return d;
}

/// A duration in [1 ms, max_strategy_deadline]: checked as a double before
/// it becomes an integer, so no value overflows.
inline std::chrono::milliseconds parse_duration(std::string_view v, std::size_t line,
                                                std::string_view key) {
  std::size_t digits = 0;
  while (digits < v.size() &&
         (std::isdigit(static_cast<unsigned char>(v[digits])) || v[digits] == '.'))
    ++digits;
  const std::string_view unit = trim(v.substr(digits));
  const double n = digits == 0 ? -1 : parse_number(v.substr(0, digits), line, key);
  double ms = -1;
  if (unit == "ms")
    ms = n;
  else if (unit == "s")
    ms = n * 1000;
  else if (unit == "m" || unit == "min")
    ms = n * 60'000;
  else if (unit == "h")
    ms = n * 3'600'000;
  if (!(n > 0 && ms > 0)) {
    strategy_error(
        line, cat(key, " must be a positive duration like 500ms, 30s, 10m or 1h, got '", v, "'"));
  }
  if (!(ms <= static_cast<double>(max_strategy_deadline.count()))) {
    strategy_error(line,
                   cat(key, " must be at most ", std::to_string(max_strategy_deadline.count()),
                       " ms (365 days), got '", v, "'"));
  }
  if (ms < 1) strategy_error(line, cat(key, " must be at least 1 ms, got '", v, "'"));
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

/// A whole number of milliseconds, signed when `lo` < 0: `-1250`, `-1250ms`,
/// `+3s`, within [lo, hi] ms.
inline std::chrono::milliseconds parse_ms(std::string_view v, std::size_t line,
                                          std::string_view key, std::int64_t lo, std::int64_t hi) {
  std::string_view body = v;
  bool negative = false;
  if (lo < 0 && !body.empty() && (body.front() == '-' || body.front() == '+')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  std::size_t digits = 0;
  while (digits < body.size() && std::isdigit(static_cast<unsigned char>(body[digits]))) ++digits;
  const std::string_view unit = trim(body.substr(digits));
  if (digits == 0 || digits > 9 || (unit != "ms" && unit != "s" && !unit.empty())) {
    strategy_error(line, cat(key, " must be a whole number of ms or s like ",
                             lo < 0 ? "-1250ms or +2s" : "50ms or 2s", ", got '", v, "'"));
  }
  std::int64_t n = 0;
  for (std::size_t i = 0; i < digits; ++i) n = n * 10 + (body[i] - '0');
  if (unit == "s") n *= 1000;
  if (negative) n = -n;
  if (n < lo || n > hi) {
    strategy_error(line, cat(key, " must be in [", std::to_string(lo), "ms, ", std::to_string(hi),
                             "ms], got '", v, "'"));
  }
  return std::chrono::milliseconds(n);
}

/// `40ms..120ms` (or `0ms..80ms`, `1s..2s`): bounds in ms or s, min <= max <= 10 s.
inline delay_range parse_delay(std::string_view v, std::size_t line, std::string_view key) {
  const auto dots = v.find("..");
  const auto bound = [&](std::string_view b) -> std::int64_t {
    b = trim(b);
    std::size_t digits = 0;
    while (digits < b.size() && std::isdigit(static_cast<unsigned char>(b[digits]))) ++digits;
    const std::string_view unit = trim(b.substr(digits));
    if (digits == 0 || digits > 6 || (unit != "ms" && unit != "s")) return -1;
    std::int64_t n = 0;
    for (std::size_t i = 0; i < digits; ++i) n = n * 10 + (b[i] - '0');
    return unit == "s" ? n * 1000 : n;
  };
  const std::int64_t lo = dots == std::string_view::npos ? -1 : bound(v.substr(0, dots));
  const std::int64_t hi = dots == std::string_view::npos ? -1 : bound(v.substr(dots + 2));
  if (lo < 0 || hi < 0) {
    strategy_error(
        line, cat(key, " must be two whole durations in ms or s like 40ms..120ms, got '", v, "'"));
  }
  if (lo > hi)
    strategy_error(line, cat(key, " has its lower bound above the upper, got '", v, "'"));
  if (hi > 10'000) strategy_error(line, cat(key, " must be at most 10s, got '", v, "'"));
  return delay_range{std::chrono::milliseconds(lo), std::chrono::milliseconds(hi)};
}

}  // namespace detail

/// @brief Parses a strategy file: `key = value` lines, `#` comments, blank lines.
///
/// ```
/// want      = sku:veg-box, category:fruit   # priority order
/// max_price = 20.00                          # per unit, optional
/// quantity  = 2
/// deadline  = 10m                            # ms, s, m, h
/// pace      = 3/s                            # actions per second (or per minute: 20/min)
/// burst     = 3
/// partial   = yes                            # fewer if fewer are in stock; no: skip
/// retries   = 1                              # more tries in one stock window
/// profile   = shops/grid.profile             # the site profile's file, or its keys here
/// start     = 2026-12-04T20:00:00+08:00      # the sale opens (ISO 8601 with offset)
/// delay     = 40ms..120ms                    # a random pause before each action
/// delay_seed = 7                             # the pauses' seed (default: the input seed)
/// pace_reaction = no                         # the first try after a flip: no token, no pause
/// clock_offset = -1250ms                     # the shop's clock by hand (local minus shop)
/// max_clock_uncertainty = 50ms               # refuse a start known less precisely
/// clock_uncertainty = refuse                 # or warn: log it and go on
/// resync_before = 10s                        # read the shop's clock again (no: never)
/// prepare_before = 5s                        # choose, set and check ahead (no: never)
/// notify    = ntfy:https://ntfy.sh/my-topic  # a webhook (parse_webhook): a preset or a URL
/// notify_body = {{"text": "{title}: {text}"}} # with a plain URL: the body template
/// notify_on = ordered, failed, sold-out, hand-off  # the notices sent (default: all)
/// mode      = buy                            # buy, dry-run (no press) or monitor (no action)
/// backoff   = 1s..60s                        # throttled: the first back-off..the longest
/// max_refusals = 5                           # throttling refusals in a row that stop the run
/// ```
/// Ranges: quantity a whole number in [1, 1000]; retries a whole number in
/// [0, 10]; max_price finite and > 0;
/// deadline in [1 ms, max_strategy_deadline]; pace in (0, 50] per second;
/// burst in [1, 100]; max_refusals a whole number in [1, 100]; backoff's
/// bounds durations, the first not above the longest, at most 24 h.
/// burst in [1, 100]; clock_offset in [-86400000ms, 86400000ms];
/// max_clock_uncertainty in [1ms, 10000ms]; resync_before and prepare_before in [100ms, 3600000ms].
/// `nan`, `inf` and numbers beyond them are refused.
/// The keys of a site profile (parse_profile) may stand in the strategy file
/// itself (`profile` above then names no file). A `#` starts a comment at
/// the start of a line or alone after a space, so `buy = #buy` is a selector.
/// Throws seckill::error (errc::invalid_argument) naming the line, the key and
/// the value that was wrong.
inline strategy_config parse_strategy(std::string_view text) {
  strategy_config cfg;
  bool saw_want = false;
  site_profile profile;
  detail::profile_lines profile_seen;
  std::size_t profile_line = 0;
  std::string notify, notify_body;
  std::size_t notify_line = 0, body_line = 0;
  detail::for_each_key(
      text, "strategy", [&](std::size_t line_no, const std::string& key, std::string_view value) {
        if (detail::apply_profile_key(profile, profile_seen, key, value, line_no, "strategy"))
          return;
        if (key == "profile") {
          cfg.profile_file = std::string(value);
          profile_line = line_no;
          return;
        }
        if (key == "want") {
          saw_want = true;
          std::string_view rest = value;
          while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string_view item = detail::trim(rest.substr(0, comma));
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            const auto colon = item.find(':');
            const std::string_view kind =
                colon == std::string_view::npos ? std::string_view() : item.substr(0, colon);
            const std::string_view name =
                colon == std::string_view::npos ? item : detail::trim(item.substr(colon + 1));
            if ((kind != "sku" && kind != "category") || name.empty()) {
              detail::strategy_error(
                  line_no,
                  detail::cat("want entries are sku:<id> or category:<name>, got '", item, "'"));
            }
            cfg.want.push_back(
                {kind == "sku" ? wanted_item::kind::sku : wanted_item::kind::category,
                 std::string(name)});
          }
        } else if (key == "max_price") {
          const double p = detail::parse_number(value, line_no, key);
          if (!std::isfinite(p)) {
            detail::strategy_error(line_no,
                                   detail::cat("max_price must be a finite number, got ", value));
          }
          if (!(p > 0))
            detail::strategy_error(line_no, detail::cat("max_price must be > 0, got ", value));
          cfg.max_price = p;
        } else if (key == "quantity") {
          const double q = detail::parse_number(value, line_no, key);
          if (!(q >= 1 && q <= 1000) ||
              q != std::floor(q)) {  // NaN fails the first test: no cast of it
            detail::strategy_error(
                line_no, detail::cat("quantity must be a whole number in [1, 1000], got ", value));
          }
          cfg.quantity = static_cast<int>(q);
        } else if (key == "retries") {
          const double r = detail::parse_number(value, line_no, key);
          if (!(r >= 0 && r <= 10) || r != std::floor(r)) {
            detail::strategy_error(
                line_no, detail::cat("retries must be a whole number in [0, 10], got ", value));
          }
          cfg.retries = static_cast<int>(r);
        } else if (key == "deadline") {
          cfg.deadline = detail::parse_duration(value, line_no, key);
        } else if (key == "pace") {
          std::string_view v = value;
          double per = 1;  // seconds per unit
          if (v.size() > 2 && v.substr(v.size() - 2) == "/s") {
            v = detail::trim(v.substr(0, v.size() - 2));
          } else if (v.size() > 4 && v.substr(v.size() - 4) == "/min") {
            v = detail::trim(v.substr(0, v.size() - 4));
            per = 60;
          }
          const double r = detail::parse_number(v, line_no, key) / per;
          if (!(r > 0) || r > 50) {
            detail::strategy_error(
                line_no, detail::cat("pace must be in (0, 50] actions per second, got ", value));
          }
          cfg.actions_per_second = r;
        } else if (key == "partial") {
          if (value == "yes" || value == "true")
            cfg.partial = true;
          else if (value == "no" || value == "false")
            cfg.partial = false;
          else
            detail::strategy_error(line_no,
                                   detail::cat("partial must be yes or no, got '", value, "'"));
        } else if (key == "start") {
          std::string why;
          cfg.start = try_parse_sale_time(value, &why);
          if (!cfg.start) detail::strategy_error(line_no, detail::cat("start ", why));
        } else if (key == "delay") {
          cfg.delay = detail::parse_delay(value, line_no, key);
        } else if (key == "delay_seed") {
          std::uint64_t seed = 0;
          const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
          if (ec != std::errc() || p != value.data() + value.size()) {
            detail::strategy_error(
                line_no, detail::cat("delay_seed must be a whole number >= 0, got '", value, "'"));
          }
          cfg.delay_seed = seed;
        } else if (key == "pace_reaction") {
          if (value == "yes" || value == "true")
            cfg.pace_reaction = true;
          else if (value == "no" || value == "false")
            cfg.pace_reaction = false;
          else
            detail::strategy_error(
                line_no, detail::cat("pace_reaction must be yes or no, got '", value, "'"));
        } else if (key == "clock_offset") {
          cfg.clock_offset = detail::parse_ms(value, line_no, key, -86'400'000, 86'400'000);
        } else if (key == "max_clock_uncertainty") {
          cfg.max_clock_uncertainty = detail::parse_ms(value, line_no, key, 1, 10'000);
        } else if (key == "clock_uncertainty") {
          if (value == "refuse")
            cfg.warn_uncertain_clock = false;
          else if (value == "warn")
            cfg.warn_uncertain_clock = true;
          else
            detail::strategy_error(
                line_no,
                detail::cat("clock_uncertainty must be refuse or warn, got '", value, "'"));
        } else if (key == "resync_before") {
          if (value == "no")
            cfg.resync_before.reset();
          else
            cfg.resync_before = detail::parse_ms(value, line_no, key, 100, 3'600'000);
        } else if (key == "prepare_before") {
          if (value == "no")
            cfg.prepare_before.reset();
          else
            cfg.prepare_before = detail::parse_ms(value, line_no, key, 100, 3'600'000);
        } else if (key == "notify") {
          notify = std::string(value);
          notify_line = line_no;
        } else if (key == "notify_body") {
          notify_body = std::string(value);
          body_line = line_no;
        } else if (key == "notify_on") {
          std::string why;
          const auto on = try_parse_notice_filter(value, &why);
          if (!on) detail::strategy_error(line_no, why);
          cfg.notify_on = *on;
        } else if (key == "mode") {
          if (value == "buy")
            cfg.mode = grab_mode::buy;
          else if (value == "dry-run" || value == "dry_run")
            cfg.mode = grab_mode::dry_run;
          else if (value == "monitor")
            cfg.mode = grab_mode::monitor;
          else
            detail::strategy_error(line_no,
                                   detail::cat("mode must be buy, dry-run or monitor, got '",
                                               value.substr(0, 32), "'"));
        } else if (key == "max_refusals") {
          const double n = detail::parse_number(value, line_no, key);
          if (!(n >= 1 && n <= 100) || n != std::floor(n)) {
            detail::strategy_error(
                line_no,
                detail::cat("max_refusals must be a whole number in [1, 100], got ", value));
          }
          cfg.throttle.max_refusals = static_cast<int>(n);
        } else if (key == "backoff") {
          const auto dots = value.find("..");
          if (dots == std::string_view::npos) {
            detail::strategy_error(line_no,
                                   detail::cat("backoff must be two durations like 1s..60s "
                                               "(the first back-off..the longest), got '",
                                               value.substr(0, 64), "'"));
          }
          const auto lo = detail::parse_duration(detail::trim(value.substr(0, dots)), line_no, key);
          const auto hi =
              detail::parse_duration(detail::trim(value.substr(dots + 2)), line_no, key);
          if (lo > hi) {
            detail::strategy_error(
                line_no, detail::cat("backoff has its first back-off above the longest, got '",
                                     value.substr(0, 64), "'"));
          }
          if (hi > std::chrono::hours(24)) {
            detail::strategy_error(line_no, detail::cat("backoff must be at most 24h, got '",
                                                        value.substr(0, 64), "'"));
          }
          cfg.throttle.initial = lo;
          cfg.throttle.max = hi;
        } else if (key == "burst") {
          const double b = detail::parse_number(value, line_no, key);
          if (!(b >= 1 && b <= 100)) {
            detail::strategy_error(line_no, detail::cat("burst must be in [1, 100], got ", value));
          }
          cfg.burst = b;
        } else {
          detail::strategy_error(
              line_no,
              detail::cat("unknown key '", key,
                          "' (known: want, max_price, quantity, partial, retries, deadline, "
                          "pace, burst, start, delay, delay_seed, pace_reaction, clock_offset, "
                          "max_clock_uncertainty, clock_uncertainty, resync_before, "
                          "prepare_before, notify, "
                          "notify_body, notify_on, mode, max_refusals, backoff, profile, and a "
                          "site profile's: ",
                          profile_keys, ")"));
        }
      });
  if (!notify_body.empty() && notify.empty())
    detail::strategy_error(body_line, "notify_body needs notify (the URL it is posted to)");
  if (!notify.empty()) {
    std::string why;
    cfg.notify = try_parse_webhook(notify, notify_body, &why);
    if (!cfg.notify) detail::strategy_error(notify_line, why);
  }
  if (!profile_seen.line.empty()) {
    if (!cfg.profile_file.empty()) {
      detail::strategy_error(profile_line,
                             "profile names a file, and profile keys stand in this file too "
                             "(line " +
                                 std::to_string(profile_seen.line.begin()->second) +
                                 "): keep them in one place");
    }
    detail::check_profile(profile, profile_seen, "strategy");
    cfg.profile = std::move(profile);
  }
  if (!saw_want)
    throw error(seckill::errc::invalid_argument, "strategy: no 'want' line: nothing to buy");
  return cfg;
}

}  // namespace seckill::browser
