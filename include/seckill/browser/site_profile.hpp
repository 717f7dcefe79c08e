#pragma once
/// @file
/// @brief Where a shop page shows what the grabber needs: the stock status
///        and its texts, the offers, the quantity, the buy button and how
///        success shows. The defaults describe the demo shop
///        (examples/shop). `parse_profile` reads a profile file (the same
///        keys may stand in a strategy file). Standard library and
///        seckill/error.hpp only.

#include <seckill/browser/detail/key_value.hpp>
#include <seckill/error.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace seckill::browser {

/// @brief Where one field of an offer element is read: the text or an
///        attribute, of the offer element itself or of an element under it.
///
/// A plain value. Cost: none.
struct offer_field {
  std::string child;      ///< a selector under the offer element; empty: the element itself
  std::string attribute;  ///< an attribute's name; empty: the text
  bool given = false;     ///< false: the profile does not say (the field's default applies)
  friend bool operator==(const offer_field&, const offer_field&) = default;
};

/// @brief One step of a JSON path (site_profile's stock keys): a member by
///        name, an array element by index, or every element of an array.
///
/// A plain value. Cost: that of its name.
struct json_step {
  enum class kind { member, index, each };
  kind k = kind::member;
  std::string name;       ///< member: its name
  std::size_t index = 0;  ///< index: the element (from 0)
  friend bool operator==(const json_step&, const json_step&) = default;
};

/// @brief A JSON path as a profile writes it (`$.skus[*].stock`,
///        `data.sku.available`, `items[0]`): parse_json_path reads it.
///        Empty: the whole document.
///
/// A plain value. Cost: that of its steps.
struct json_path {
  std::vector<json_step> steps;
  std::string text;  ///< as written (logs quote it)
  friend bool operator==(const json_path&, const json_path&) = default;
};

/// @brief How a shop's page is laid out, for browser::page_driver.
///
/// Selectors are CSS selectors; `host >>> inner` looks for `inner` inside the
/// element `host` finds: in its open shadow root, or in its document when it
/// is a same-origin iframe (any depth: `a >>> b >>> c`). Texts match as
/// substrings, case-insensitively for ASCII letters (other scripts, such as
/// 有货, match exactly).
///
/// A plain value. Cost: none.
struct site_profile {
  /// How the offers are shown.
  enum class offer_layout {
    select,  ///< a native <select>: each option an offer (value, label, data-*)
    list,    ///< one element per offer (buttons, cards), fields per offer_field
  };

  std::string status = ".stock-status";                      ///< the stock-status element
  std::vector<std::string> in_stock = {"in stock"};          ///< any of these: in stock
  std::vector<std::string> out_of_stock = {"out of stock"};  ///< any of these: none (checked first)

  offer_layout offers = offer_layout::select;
  std::string offer_selector = "#sku";  ///< the <select>, or what matches every offer element
  offer_field sku;                      ///< list: required
  offer_field name;                     ///< list: empty reads the element's text
  offer_field price;                    ///< the first number in it; empty: unknown
  offer_field stock;                    ///< the first whole number in it; empty: 1 if available
  offer_field category;
  std::string unavailable;    ///< list: an offer element matching this is out of stock
  std::string choose_target;  ///< list: what to click under the offer element; empty: itself

  std::string quantity = "#quantity";  ///< an input; empty: no quantity field (or +/- buttons)
  std::string quantity_plus;           ///< a + button (with quantity_value)
  std::string quantity_minus;          ///< a - button
  std::string quantity_value;          ///< where the +/- count shows (text or value)

  std::string buy = "#buy";
  std::string result = ".order-result";              ///< the element showing the shop's answer
  std::vector<std::string> success = {"confirmed"};  ///< any of these in the result: confirmed
  std::string success_url;       ///< a new page whose URL contains this also confirms the order
  std::string success_response;  ///< a response to a URL containing this answers the order
  std::string logged_in;         ///< an element only a logged-in session shows; empty: no check
  /// Throttling: a 429 or 503 answer to a request whose URL contains this
  /// (the order's; success_response's too) is a throttling refusal, with its
  /// Retry-After; empty: only success_response's are read.
  std::string order_response;
  std::string throttled;  ///< an element ("too many requests", an error page) that means one too
  std::vector<std::string> throttled_text;  ///< texts in the result element that mean one too

  /// How the page learns of changes.
  enum class watch_mode {
    live,    ///< the page updates itself (push, polling scripts): watch it
    reload,  ///< it shows the stock only as it loads: reload it every reload_every
  };
  watch_mode watch = watch_mode::live;
  std::chrono::milliseconds reload_every{500};  ///< reload: at most this often (and the pace)
  std::string countdown;  ///< an element showing the time left to the start; empty: none
  std::string clock;      ///< an element showing the shop's time; empty: the Date header only
  /// A verification a person must solve (a captcha, a slider, an SMS code),
  /// as a selector: any visible match is one. Checked besides the common
  /// ones (default_verification, default_verification_text) unless
  /// `verification_off`.
  std::string verification;
  std::vector<std::string> verification_text;  ///< visible texts that mean one too
  bool verification_off = false;               ///< `verification = none`: nothing is checked

  /// Stock from the network: the page's own responses whose URL matches
  /// this (a substring; with `*`, a glob over the whole URL) carry the
  /// stock; empty: the page's status element does. See docs/browser.md
  /// "Stock from the network".
  std::string stock_response;
  json_path stock_json;           ///< the values saying in stock (true, > 0, an in_stock text)
  bool stock_json_given = false;  ///< false: stock_json is not used
  std::vector<std::string> stock_text;  ///< or: the body contains one of these
  json_path stock_offers;               ///< each offer object (with stock_offer.*)
  bool stock_offers_given = false;
  json_path offer_sku_path, offer_stock_path, offer_price_path;  ///< under each offer
  /// How a "just in stock" response is re-checked before the grabber acts.
  enum class stock_check {
    response,  ///< a second, newer response that is not from a cache says so too
    page,      ///< the page's status element (status, in_stock) says so too
  };
  stock_check stock_confirm = stock_check::response;

  [[nodiscard]] bool stock_from_network() const noexcept { return !stock_response.empty(); }

  [[nodiscard]] bool quantity_by_buttons() const noexcept { return !quantity_plus.empty(); }
  friend bool operator==(const site_profile&, const site_profile&) = default;
};

/// The keys a profile may have, as messages list them.
inline constexpr std::string_view profile_keys =
    "status, in_stock, out_of_stock, offers, offer.sku, offer.name, offer.price, offer.stock, "
    "offer.category, offer.unavailable, offer.click, quantity.input, quantity.plus, "
    "quantity.minus, "
    "quantity.value, buy, result, success, success_url, success_response, logged_in, "
    "order_response, throttled, throttled_text, watch, "
    "reload_every, countdown, clock, verification, verification_text, stock_response, stock_json, "
    "stock_text, "
    "stock_offers, stock_offer.sku, stock_offer.stock, stock_offer.price, stock_confirm";

/// @brief What the driver takes for a verification besides a profile's own:
///        the frames and widgets of common captcha providers (reCAPTCHA,
///        hCaptcha, Cloudflare Turnstile, GeeTest, Aliyun's slider, Tencent's
///        captcha), slider handles and one-time-code inputs. Only a visible
///        match counts.
inline constexpr std::string_view default_verification =
    "iframe[src*=\"recaptcha/api2/bframe\"], iframe[title*=\"recaptcha challenge\" i], "
    "iframe[src*=\"hcaptcha.com\"][src*=\"challenge\"], "
    "iframe[src*=\"challenges.cloudflare.com\"], "
    ".cf-turnstile, .geetest_panel_box, .geetest_holder, #nc_1_n1z, .nc_scale, "
    "#tcaptcha_iframe, #tcaptcha_transform, [class*=\"slide-verify\"], "
    "[class*=\"slider-captcha\"], "
    "[class*=\"captcha-slider\"], input[autocomplete=\"one-time-code\"]";

/// @brief Visible texts the driver takes for a verification besides a
///        profile's own (case-insensitive for ASCII letters).
inline const std::vector<std::string>& default_verification_text() {
  static const std::vector<std::string> texts = {
      "verify you are human", "are you human", "are you a robot", "not a robot", "security check",
      "slide to verify",      "滑块",          "验证码",          "安全验证",    "人机验证"};
  return texts;
}

namespace detail {

/// Where the keys of a profile were seen (the whole-profile checks name them).
struct profile_lines {
  std::map<std::string, std::size_t, std::less<>> line;  ///< key -> its line
  [[nodiscard]] bool has(std::string_view key) const { return line.find(key) != line.end(); }
  [[nodiscard]] std::size_t at(std::string_view key) const {
    const auto it = line.find(key);
    return it == line.end() ? 0 : it->second;
  }
};

/// `a | b | c`: each text trimmed, none empty.
inline std::vector<std::string> parse_texts(std::string_view value, std::string_view source,
                                            std::size_t line, std::string_view key) {
  std::vector<std::string> out;
  std::string_view rest = value;
  for (;;) {
    const auto bar = rest.find('|');
    const std::string_view item = trim(rest.substr(0, bar));
    if (item.empty()) {
      line_error(source, line,
                 cat(key, " is texts separated by |, got an empty one in '", value, "'"));
    }
    out.emplace_back(item);
    if (bar == std::string_view::npos) break;
    rest = rest.substr(bar + 1);
  }
  return out;
}

/// `reload_every`: a whole number of ms or s (`500ms`, `2s`) in [50 ms, 1 h].
inline std::chrono::milliseconds parse_interval(std::string_view value, std::string_view source,
                                                std::size_t line, std::string_view key) {
  std::size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  const std::string_view unit = trim(value.substr(digits));
  std::int64_t n = -1;
  if (digits > 0 && digits <= 9) {
    n = 0;
    for (std::size_t i = 0; i < digits; ++i) n = n * 10 + (value[i] - '0');
  }
  std::int64_t ms = -1;
  if (n >= 0 && unit == "ms") ms = n;
  if (n >= 0 && unit == "s") ms = n * 1000;
  if (ms < 0) {
    line_error(source, line,
               cat(key, " must be a whole number of ms or s like 500ms or 2s, got '", value, "'"));
  }
  if (ms < 50 || ms > 3'600'000) {
    line_error(source, line, cat(key, " must be in [50ms, 3600s], got '", value, "'"));
  }
  return std::chrono::milliseconds(ms);
}

inline bool attribute_name(std::string_view a) {
  if (a.empty()) return false;
  for (const char c : a) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) || c == '-' || c == '_' || c == ':' || c == '.')) return false;
  }
  return true;
}

/// An offer field: `text`, `@attr`, `<selector>` or `<selector> @attr`.
inline offer_field parse_field(std::string_view value, std::string_view source, std::size_t line,
                               std::string_view key) {
  offer_field f;
  f.given = true;
  if (value == "text") return f;
  std::string_view child = value, attr;
  bool has_attr = true;
  if (value.front() == '@') {
    child = {};
    attr = value.substr(1);
  } else if (const auto at = value.rfind(" @"); at != std::string_view::npos) {
    child = trim(value.substr(0, at));
    attr = value.substr(at + 2);
  } else {
    has_attr = false;
  }
  if (has_attr && !attribute_name(attr)) {
    line_error(
        source, line,
        cat(key, " names no attribute after @ (letters, digits, - _ : .), got '", value, "'"));
  }
  f.child = std::string(child);
  f.attribute = std::string(attr);
  return f;
}

/// A selector, each part around `>>>` (into a shadow root or a frame) not empty.
inline std::string parse_selector(std::string_view value, std::string_view source, std::size_t line,
                                  std::string_view key) {
  std::string_view rest = value;
  for (;;) {
    const auto deep = rest.find(">>>");
    if (trim(rest.substr(0, deep)).empty()) {
      line_error(source, line,
                 cat(key, " has an empty part around >>> (host >>> inner), got '", value, "'"));
    }
    if (deep == std::string_view::npos) break;
    rest = rest.substr(deep + 3);
  }
  return std::string(value);
}

/// A JSON path: an optional `$`, then members (`name` or `.name`: letters,
/// digits, `_`, `-`), indexes `[0]` and `[*]` (every element).
inline json_path parse_json_path(std::string_view value, std::string_view source, std::size_t line,
                                 std::string_view key) {
  json_path out;
  out.text = std::string(value);
  const auto bad = [&](std::string_view why) {
    line_error(source, line,
               cat(key, " must be a JSON path like $.items[*].stock or data.sku.available (", why,
                   "), got '", value, "'"));
  };
  const auto name_char = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '_' || c == '-' || u >= 0x80;
  };
  std::size_t i = 0;
  if (i < value.size() && value[i] == '$') ++i;
  bool need_name = i == 0;  // a bare first member (`data.x`)
  while (i < value.size()) {
    const char c = value[i];
    if (c == '.' || need_name) {
      if (c == '.') ++i;
      const std::size_t from = i;
      while (i < value.size() && name_char(value[i])) ++i;
      if (i == from) bad("an empty member name");
      out.steps.push_back({json_step::kind::member, std::string(value.substr(from, i - from)), 0});
      need_name = false;
    } else if (c == '[') {
      const auto close = value.find(']', i);
      if (close == std::string_view::npos) bad("a [ without ]");
      const std::string_view inside = value.substr(i + 1, close - i - 1);
      if (inside == "*") {
        out.steps.push_back({json_step::kind::each, {}, 0});
      } else {
        if (inside.empty() || inside.size() > 9 ||
            !std::all_of(inside.begin(), inside.end(),
                         [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
          bad("an index is a whole number or *");
        }
        std::size_t n = 0;
        for (const char d : inside) n = n * 10 + static_cast<std::size_t>(d - '0');
        out.steps.push_back({json_step::kind::index, {}, n});
      }
      i = close + 1;
    } else {
      bad(cat("'", std::string_view(&value[i], 1), "' where . or [ was expected"));
    }
  }
  return out;
}

/// Applies one profile key to `p`; false when `key` is no profile key.
inline bool apply_profile_key(site_profile& p, profile_lines& seen, std::string_view key,
                              std::string_view value, std::size_t line, std::string_view source) {
  const auto selector = [&](std::string& out) { out = parse_selector(value, source, line, key); };
  const auto field = [&](offer_field& out) { out = parse_field(value, source, line, key); };
  if (key == "status")
    selector(p.status);
  else if (key == "in_stock")
    p.in_stock = parse_texts(value, source, line, key);
  else if (key == "out_of_stock")
    p.out_of_stock = parse_texts(value, source, line, key);
  else if (key == "offers") {
    const auto space = value.find_first_of(" \t");
    const std::string_view layout = value.substr(0, space);
    const std::string_view sel =
        space == std::string_view::npos ? std::string_view() : trim(value.substr(space));
    if ((layout != "select" && layout != "list") || sel.empty()) {
      line_error(source, line,
                 cat("offers must be 'select <selector>' or 'list <selector>', got '", value, "'"));
    }
    p.offers =
        layout == "select" ? site_profile::offer_layout::select : site_profile::offer_layout::list;
    p.offer_selector = parse_selector(sel, source, line, key);
  } else if (key == "offer.sku")
    field(p.sku);
  else if (key == "offer.name")
    field(p.name);
  else if (key == "offer.price")
    field(p.price);
  else if (key == "offer.stock")
    field(p.stock);
  else if (key == "offer.category")
    field(p.category);
  else if (key == "offer.unavailable")
    selector(p.unavailable);
  else if (key == "offer.click")
    selector(p.choose_target);
  else if (key == "quantity.input")
    p.quantity = value == "none" ? std::string() : parse_selector(value, source, line, key);
  else if (key == "quantity.plus")
    selector(p.quantity_plus);
  else if (key == "quantity.minus")
    selector(p.quantity_minus);
  else if (key == "quantity.value")
    selector(p.quantity_value);
  else if (key == "buy")
    selector(p.buy);
  else if (key == "result")
    selector(p.result);
  else if (key == "success")
    p.success = parse_texts(value, source, line, key);
  else if (key == "success_url")
    p.success_url = std::string(value);
  else if (key == "success_response")
    p.success_response = std::string(value);
  else if (key == "logged_in")
    selector(p.logged_in);
  else if (key == "order_response") {
    if (value.find_first_of(" \t") != std::string_view::npos)
      line_error(source, line,
                 cat("order_response must be a part of the order's URL (no spaces), got '",
                     value.substr(0, 64), "'"));
    p.order_response = std::string(value);
  } else if (key == "throttled")
    selector(p.throttled);
  else if (key == "throttled_text")
    p.throttled_text = parse_texts(value, source, line, key);
  else if (key == "watch") {
    if (value == "live")
      p.watch = site_profile::watch_mode::live;
    else if (value == "reload")
      p.watch = site_profile::watch_mode::reload;
    else
      line_error(source, line, cat("watch must be live or reload, got '", value, "'"));
  } else if (key == "reload_every")
    p.reload_every = parse_interval(value, source, line, key);
  else if (key == "countdown")
    selector(p.countdown);
  else if (key == "clock")
    selector(p.clock);
  else if (key == "verification") {
    p.verification_off = value == "none";
    if (!p.verification_off) selector(p.verification);
  } else if (key == "verification_text")
    p.verification_text = parse_texts(value, source, line, key);
  else if (key == "stock_response")
    p.stock_response = std::string(value);
  else if (key == "stock_json") {
    p.stock_json = parse_json_path(value, source, line, key);
    p.stock_json_given = true;
  } else if (key == "stock_text")
    p.stock_text = parse_texts(value, source, line, key);
  else if (key == "stock_offers") {
    p.stock_offers = parse_json_path(value, source, line, key);
    p.stock_offers_given = true;
  } else if (key == "stock_offer.sku")
    p.offer_sku_path = parse_json_path(value, source, line, key);
  else if (key == "stock_offer.stock")
    p.offer_stock_path = parse_json_path(value, source, line, key);
  else if (key == "stock_offer.price")
    p.offer_price_path = parse_json_path(value, source, line, key);
  else if (key == "stock_confirm") {
    if (value == "response")
      p.stock_confirm = site_profile::stock_check::response;
    else if (value == "page")
      p.stock_confirm = site_profile::stock_check::page;
    else
      line_error(source, line, cat("stock_confirm must be response or page, got '", value, "'"));
  } else
    return false;
  seen.line.emplace(std::string(key), line);
  return true;
}

/// The checks of the profile as a whole, naming the line of the key at fault.
inline void check_profile(site_profile& p, const profile_lines& seen, std::string_view source) {
  if (p.offers == site_profile::offer_layout::list && !seen.has("offer.sku")) {
    line_error(source, seen.at("offers"),
               "offers = list needs offer.sku (where each offer's SKU is read)");
  }
  if (p.offers == site_profile::offer_layout::select) {
    for (const char* k : {"offer.sku", "offer.name", "offer.price", "offer.stock", "offer.category",
                          "offer.unavailable", "offer.click"}) {
      if (seen.has(k)) {
        line_error(source, seen.at(k),
                   cat(k,
                       " applies to offers = list only (a select's options give value, "
                       "label and data-price, data-stock, data-category)"));
      }
    }
  }
  const bool buttons = seen.has("quantity.plus") || seen.has("quantity.minus");
  if (buttons && seen.has("quantity.input")) {
    line_error(
        source, seen.at("quantity.input"),
        "quantity.input (an input) and quantity.plus / quantity.minus (buttons) exclude each "
        "other");
  }
  if (buttons && !seen.has("quantity.plus")) {
    line_error(source, seen.at("quantity.minus"), "quantity.minus needs quantity.plus");
  }
  if (buttons && !seen.has("quantity.value")) {
    line_error(source, seen.at("quantity.plus"),
               "quantity.plus needs quantity.value (where the count shows)");
  }
  if (!buttons && seen.has("quantity.value")) {
    line_error(source, seen.at("quantity.value"), "quantity.value needs quantity.plus");
  }
  if (seen.has("reload_every") && p.watch != site_profile::watch_mode::reload) {
    line_error(source, seen.at("reload_every"), "reload_every needs watch = reload");
  }
  if (p.verification_off && seen.has("verification_text")) {
    line_error(source, seen.at("verification_text"),
               "verification_text is checked for nothing: verification = none turns checking off");
  }
  if (buttons) p.quantity.clear();  // no input besides the buttons
  for (const char* k : {"stock_json", "stock_text", "stock_offers", "stock_confirm"}) {
    if (seen.has(k) && !seen.has("stock_response")) {
      line_error(source, seen.at(k),
                 cat(k, " needs stock_response (which responses carry the stock)"));
    }
  }
  if (seen.has("stock_response") && !seen.has("stock_json") && !seen.has("stock_text") &&
      !seen.has("stock_offers")) {
    line_error(source, seen.at("stock_response"),
               "stock_response needs stock_json, stock_text or stock_offers (what in a "
               "response says in stock)");
  }
  for (const char* k : {"stock_offer.sku", "stock_offer.stock", "stock_offer.price"}) {
    if (seen.has(k) && !seen.has("stock_offers")) {
      line_error(source, seen.at(k), cat(k, " needs stock_offers (where each offer is)"));
    }
  }
  if (seen.has("stock_offers") && !seen.has("stock_offer.sku")) {
    line_error(source, seen.at("stock_offers"),
               "stock_offers needs stock_offer.sku (where each offer's SKU is)");
  }
}

}  // namespace detail

/// @brief Parses a site profile: `key = value` lines, comments, blank lines.
///
/// ```text
/// status            = .stock-status          # the stock-status element
/// in_stock          = in stock | 有货          # texts, any of them
/// out_of_stock      = out of stock | 售罄      # checked first
/// offers            = list .sku-grid .sku    # or: select #sku
/// offer.sku         = @data-sku              # text | @attr | <selector> | <selector> @attr
/// offer.name        = .name
/// offer.price       = .price                 # the first number in it
/// offer.stock       = .left                  # the first whole number in it
/// offer.category    = @data-category
/// offer.unavailable = .sold-out              # such an offer element is out of stock
/// offer.click       = .pick                  # what to click under it (default: itself)
/// quantity.input    = #quantity              # an input, or none
/// quantity.plus     = .qty .plus             # or + / - buttons, with
/// quantity.minus    = .qty .minus
/// quantity.value    = .qty .count            # where their count shows
/// buy               = #buy
/// result            = .order-result          # where the shop's answer shows
/// success           = confirmed | 下单成功      # texts in the answer that mean success
/// success_url       = /order/done            # or: a new page at such a URL
/// success_response  = /api/order            # or: its response, 2xx success, else refused
/// logged_in         = .user-name             # only a logged-in session shows it
/// order_response    = /api/order            # its 429 / 503 answers throttle (with Retry-After)
/// throttled         = .too-many-requests     # or: an element (an error page) that means so
/// throttled_text    = too many requests | 请求过于频繁  # or: texts in the result that mean so
/// watch             = reload                 # live (default): the page updates itself
/// reload_every      = 500ms                  # reload: at most this often (ms or s)
/// countdown         = .countdown             # the time left to the start: 01:02:03, 还剩 1分23秒
/// clock             = #server-time           # the shop's time (ISO 8601 with offset, or ms)
/// verification      = .captcha-box           # a verification a person solves (or: none)
/// verification_text = 请完成验证 | prove it    # visible texts that mean one
/// stock_response    = /api/stock             # responses carrying the stock (substring, or * glob)
/// stock_json        = $.skus[*].stock        # values saying in stock: true, > 0, an in_stock text
/// stock_text        = "available":true       # or: the body contains one of these texts
/// stock_offers      = $.skus[*]              # each offer object, read by
/// stock_offer.sku   = sku                    #   its SKU (a path under the offer)
/// stock_offer.stock = stock                  #   its count
/// stock_offer.price = price                  #   its price
/// stock_confirm     = response               # or page: how "just in stock" is re-checked
/// ```
/// Every key is optional; an absent one keeps the demo shop's value
/// (site_profile's defaults). Throws seckill::error (errc::invalid_argument)
/// naming the line, the key and the value at fault.
inline site_profile parse_profile(std::string_view text) {
  site_profile p;
  detail::profile_lines seen;
  constexpr std::string_view source = "profile";
  detail::for_each_key(
      text, source, [&](std::size_t line, const std::string& key, std::string_view value) {
        if (!detail::apply_profile_key(p, seen, key, value, line, source)) {
          detail::line_error(source, line,
                             detail::cat("unknown key '", key, "' (known: ", profile_keys, ")"));
        }
      });
  detail::check_profile(p, seen, source);
  return p;
}

}  // namespace seckill::browser
