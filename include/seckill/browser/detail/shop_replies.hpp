#pragma once
/// @file
/// @brief detail: the shop scripts' answers as the shop_driver's values (a
///        snapshot, clock samples) and a site profile as the scripts take it;
///        shared by both backends of the driver (page_driver over CDP,
///        extension_driver over the extension's messages), whose pages run
///        the same scripts. Pure functions; never throw.

#include <seckill/browser/detail/page_replies.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/url.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::browser::detail {

/// The read_shop script's value as a shop_snapshot. Never throws: an offer
/// that is not an object is skipped; a price that is not a number is NaN
/// (above every cap); a stock that is not a number counts as none, and one
/// beyond int's range as int's maximum.
inline shop_snapshot to_snapshot(const nlohmann::json& v) {
  shop_snapshot s;
  if (!v.is_object()) return s;
  s.status = string_member(v, "status");
  if (auto it = v.find("offers"); it != v.end() && it->is_array()) {
    for (const auto& o : *it) {
      if (!o.is_object()) continue;
      sku_offer off;
      off.sku = string_member(o, "sku");
      off.name = string_member(o, "name");
      off.category = string_member(o, "category");
      const auto price = o.find("price");
      off.price = price != o.end() && price->is_number() ? price->get<double>()
                                                         : std::numeric_limits<double>::quiet_NaN();
      const auto stock = o.find("stock");
      if (stock != o.end() && stock->is_number()) {
        const double n = stock->get<double>();  // NaN fails both tests: none
        if (n >= static_cast<double>(std::numeric_limits<int>::max()))
          off.stock = std::numeric_limits<int>::max();
        else if (n > 0)
          off.stock = static_cast<int>(n);
      }
      s.offers.push_back(std::move(off));
    }
  }
  if (auto it = v.find("chosen");
      it != v.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
    s.chosen = it->get<std::string>();
  if (auto it = v.find("quantity"); it != v.end() && it->is_number_integer()) {
    const auto n = it->get<std::int64_t>();
    if (n >= 0 && n <= std::numeric_limits<int>::max()) s.quantity = static_cast<int>(n);
  }
  return s;
}

/// The date_samples and clock_texts scripts' values as clock samples: a Date
/// header has whole seconds; a page clock's text gives its own resolution
/// (parse_clock_text); a clock text is a change seen between two reads
/// ({before, after}) or one read ({at}). The local times are whole milliseconds, so each
/// answer came before received + 1 ms. Entries that do not read are
/// skipped. Never throws.
inline std::vector<clock_sample> to_clock_samples(const nlohmann::json& dates,
                                                  const nlohmann::json& clock_texts) {
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  const auto local = [](const nlohmann::json& v) {
    const double ms = v.is_number() ? v.get<double>() : -1;
    return ms >= 0 && ms < 1e15 ? std::optional(system_clock::time_point(
                                      milliseconds(static_cast<std::int64_t>(ms))))
                                : std::nullopt;
  };
  std::vector<clock_sample> out;
  if (dates.is_array()) {
    for (const auto& d : dates) {
      if (!d.is_object()) continue;
      const auto sent = local(d.value("sent", nlohmann::json()));
      const auto received = local(d.value("received", nlohmann::json()));
      const auto shop = parse_http_date(string_member(d, "date"));
      if (!sent || !received || !shop) continue;
      out.push_back({*sent, *received + milliseconds(1), *shop, std::chrono::seconds(1),
                     clock_source::date_header});
    }
  }
  if (clock_texts.is_array()) {
    for (const auto& c : clock_texts) {
      if (!c.is_object()) continue;
      // A change seen between two reads ({before, after}), or one read ({at}).
      const nlohmann::json at = c.value("at", nlohmann::json());
      const auto before = local(c.value("before", at));
      const auto after = local(c.value("after", at));
      const auto shown = parse_clock_text(string_member(c, "text"));
      if (!before || !after || !shown) continue;
      out.push_back({*before, *after + milliseconds(1), shown->first, shown->second,
                     clock_source::page_clock});
    }
  }
  return out;
}

/// What the two verification watches (0: the common checks, 1: the
/// profile's own) see, folded into the driver's verification events: one
/// when a verification shows (its description, the profile's first), one
/// with an empty text when none shows any more. Not thread-safe: the
/// driver's executor owns it. Cost: two strings.
class verification_watch {
 public:
  /// Watch `which` now sees `text` ("": nothing); the event to report, if any.
  std::optional<shop_event> see(int which, std::string text) {
    seen_[which == 1 ? 1 : 0] = std::move(text);
    const std::string& now = !seen_[1].empty() ? seen_[1] : seen_[0];
    if (now.empty() == shown_.empty()) return std::nullopt;  // still shown, or still none
    shown_ = now;
    shop_event e;
    e.kind = shop_event_kind::verification;
    e.text = now;
    return e;
  }

 private:
  std::string seen_[2];
  std::string shown_;  // the last event's text
};

/// The visible texts that mean a verification for `p`: the common ones
/// (default_verification_text), then the profile's own.
inline std::vector<std::string> verification_texts(const site_profile& p) {
  std::vector<std::string> texts = default_verification_text();
  texts.insert(texts.end(), p.verification_text.begin(), p.verification_text.end());
  return texts;
}

/// An answer to the order (a response the profile names: success_response,
/// order_response) as an outcome event: throttled for a 429 or 503, with
/// the shop's Retry-After. The URL is shown redacted.
inline shop_event response_outcome(int status, std::string_view url, std::string_view retry_after) {
  shop_event e;
  e.kind = shop_event_kind::outcome;
  e.text = "HTTP " + std::to_string(status) + " " + seckill::redact_url(url);
  e.throttled = is_throttling_status(status);
  if (e.throttled && !retry_after.empty()) {
    e.retry_after = parse_retry_after(retry_after, std::chrono::system_clock::now());
    e.text += " (Retry-After: " + std::string(retry_after.substr(0, 40)) + ")";
  }
  return e;
}

/// The profile's `throttled` element (a "too many requests" notice) as the
/// driver's events: a throttled outcome each time it comes to show. Not
/// thread-safe: the driver's executor owns it. Cost: a flag.
class throttled_watch {
 public:
  /// The element is now `present`, showing `text`; the event to report, if any.
  std::optional<shop_event> see(bool present, std::string_view text) {
    if (present == shown_) return std::nullopt;
    shown_ = present;
    if (!present) return std::nullopt;
    shop_event e;
    e.kind = shop_event_kind::outcome;
    e.throttled = true;
    e.text = "the page shows '" + std::string(text.substr(0, 120)) + "'";
    return e;
  }

 private:
  bool shown_ = false;
};

inline nlohmann::json to_json(const offer_field& f) {
  return nlohmann::json{{"child", f.child}, {"attribute", f.attribute}, {"given", f.given}};
}

/// The profile as the read_shop and offer_path scripts take it.
inline nlohmann::json profile_argument(const site_profile& p) {
  return nlohmann::json{
      {"status", p.status},
      {"layout", p.offers == site_profile::offer_layout::select ? "select" : "list"},
      {"offers", p.offer_selector},
      {"sku", to_json(p.sku)},
      {"name", to_json(p.name)},
      {"price", to_json(p.price)},
      {"stock", to_json(p.stock)},
      {"category", to_json(p.category)},
      {"unavailable", p.unavailable},
      {"quantity", p.quantity_by_buttons() ? p.quantity_value : p.quantity}};
}

}  // namespace seckill::browser::detail
