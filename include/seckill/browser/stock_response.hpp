#pragma once
/// @file
/// @brief Stock read from a response body: which response URLs a profile's
///        `stock_response` matches, what a `stock_json` path selects, and
///        what a body says by the profile's stock keys (in stock or not, the
///        offers it lists). browser::page_driver reads the page's own
///        responses with it; it needs no browser.

#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/strategy.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace seckill::browser {

/// @brief What one response body says of the stock, by a site_profile.
///
/// A plain value. Cost: that of its offers and texts.
struct stock_reading {
  bool readable = false;          ///< false: `problem` says why (not JSON, the path missing)
  std::string problem;            ///< why the body says nothing, for the log
  bool in_stock = false;          ///< the body says there is stock
  bool has_offers = false;        ///< stock_offers: `offers` is what the body lists
  std::vector<sku_offer> offers;  ///< stock_offers: every offer read (name and category empty)
  std::string summary;            ///< a short text for the log: "in stock (veg-box 3, eggs-12 0)"
};

namespace detail {

inline bool contains_nocase(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

inline bool contains_any(std::string_view hay, const std::vector<std::string>& needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](const std::string& n) { return contains_nocase(hay, n); });
}

/// Whether a status text says "in stock" by the profile: no out-of-stock
/// text in it, and one of the in-stock texts (any text, when none is given).
inline bool says_in_stock(const site_profile& p, std::string_view text) {
  if (contains_any(text, p.out_of_stock)) return false;
  return p.in_stock.empty() ? !text.empty() : contains_any(text, p.in_stock);
}

// `*` matches any run of characters; the rest matches exactly.
inline bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

inline void select_from(const nlohmann::json& v, const std::vector<json_step>& steps,
                        std::size_t at, std::vector<const nlohmann::json*>& out) {
  if (at == steps.size()) {
    out.push_back(&v);
    return;
  }
  const json_step& s = steps[at];
  switch (s.k) {
    case json_step::kind::member:
      if (v.is_object()) {
        if (const auto it = v.find(s.name); it != v.end()) select_from(*it, steps, at + 1, out);
      }
      return;
    case json_step::kind::index:
      if (v.is_array() && s.index < v.size()) select_from(v[s.index], steps, at + 1, out);
      return;
    case json_step::kind::each:
      if (v.is_array()) {
        for (const auto& e : v) select_from(e, steps, at + 1, out);
      }
      return;
  }
}

// A value as "in stock": true, a number above 0, a text saying so by the profile.
inline bool value_in_stock(const site_profile& p, const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() > 0;  // NaN: not above 0
  if (v.is_string()) return says_in_stock(p, v.get<std::string>());
  return false;
}

inline int stock_count(const nlohmann::json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (!v.is_number()) return 0;
  const double n = v.get<double>();
  if (n >= static_cast<double>(std::numeric_limits<int>::max()))
    return std::numeric_limits<int>::max();
  return n > 0 ? static_cast<int>(n) : 0;
}

}  // namespace detail

/// Whether a response's URL is one `pattern` names: with a `*`, the whole
/// URL matches the glob (`*` any run of characters); without, the URL
/// contains it. Thread-safe; cost linear in the URL (glob: worst case
/// quadratic).
inline bool response_url_matches(std::string_view pattern, std::string_view url) {
  if (pattern.empty()) return false;
  if (pattern.find('*') == std::string_view::npos)
    return url.find(pattern) != std::string_view::npos;
  return detail::glob_match(pattern, url);
}

/// The values `path` selects in `doc`, in document order (none when a
/// member or element is missing, or a step meets another type). Pointers
/// into `doc`. Thread-safe; cost: the values visited.
inline std::vector<const nlohmann::json*> select_json(const nlohmann::json& doc,
                                                      const json_path& path) {
  std::vector<const nlohmann::json*> out;
  detail::select_from(doc, path.steps, 0, out);
  return out;
}

/// @brief What `body` says of the stock by the profile's stock keys. With
///        stock_text: in stock when the body contains one of its texts
///        (ASCII case-insensitively) and none of out_of_stock. With
///        stock_offers: each offer's SKU, count (stock_offer.stock; absent:
///        1) and price (stock_offer.price; absent: NaN, above every cap); in
///        stock when one has a count above 0, unless stock_json is given,
///        which then decides: in stock when one value it selects is true, a
///        number above 0, or a text saying in stock (in_stock /
///        out_of_stock). Never throws: a body that is not JSON, or in which
///        a path selects nothing, is unreadable with the reason in `problem`.
///
/// Thread-safe. Cost: a parse of the body and the values the paths visit.
inline stock_reading read_stock(const site_profile& p, std::string_view body) {
  stock_reading r;
  if (p.stock_text.size() > 0 && !p.stock_json_given && !p.stock_offers_given) {
    r.readable = true;
    r.in_stock =
        !detail::contains_any(body, p.out_of_stock) && detail::contains_any(body, p.stock_text);
    r.summary = r.in_stock ? "in stock (a stock_text is in the body)" : "not in stock";
    return r;
  }
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    r.problem = "the body is not JSON";
    return r;
  }
  std::string list;
  if (p.stock_offers_given) {
    const auto offers = select_json(doc, p.stock_offers);
    if (offers.empty()) {
      r.problem = "stock_offers '" + p.stock_offers.text + "' selects nothing in the body";
      return r;
    }
    r.has_offers = true;
    for (const nlohmann::json* o : offers) {
      const auto sku = select_json(*o, p.offer_sku_path);
      if (sku.empty() || !(sku.front()->is_string() || sku.front()->is_number())) continue;
      sku_offer off;
      off.sku = sku.front()->is_string() ? sku.front()->get<std::string>() : sku.front()->dump();
      off.stock = 1;
      if (!p.offer_stock_path.steps.empty()) {
        const auto n = select_json(*o, p.offer_stock_path);
        off.stock = n.empty() ? 0 : detail::stock_count(*n.front());
      }
      off.price = std::numeric_limits<double>::quiet_NaN();
      if (!p.offer_price_path.steps.empty()) {
        const auto price = select_json(*o, p.offer_price_path);
        if (!price.empty() && price.front()->is_number()) off.price = price.front()->get<double>();
      }
      r.in_stock = r.in_stock || off.stock > 0;
      if (r.offers.size() < 4)
        list += (list.empty() ? "" : ", ") + off.sku + " " + std::to_string(off.stock);
      r.offers.push_back(std::move(off));
    }
    if (r.offers.size() > 4) list += ", ...";
    if (r.offers.empty()) {
      r.problem = "stock_offer.sku '" + p.offer_sku_path.text + "' selects no SKU in any offer";
      return r;
    }
  }
  if (p.stock_json_given) {
    const auto values = select_json(doc, p.stock_json);
    if (values.empty()) {
      r.problem = "stock_json '" + p.stock_json.text + "' selects nothing in the body";
      return r;
    }
    r.in_stock = std::any_of(values.begin(), values.end(), [&](const nlohmann::json* v) {
      return detail::value_in_stock(p, *v);
    });
  }
  r.readable = true;
  r.summary = r.in_stock ? "in stock" : "not in stock";
  if (!list.empty()) r.summary += " (" + list + ")";
  return r;
}

}  // namespace seckill::browser
