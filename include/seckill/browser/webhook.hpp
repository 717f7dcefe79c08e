#pragma once
/// @file
/// @brief What a notification says and where it goes: a `notice` (ordered,
///        failed, sold out, hand-off), the webhook a strategy file or a
///        command line names (`parse_webhook`: a URL template, a body
///        template, or a preset for ntfy, Bark, ServerChan, Telegram or a
///        generic JSON POST), and the HTTP request it makes for one notice
///        (`render_webhook`: placeholders URL-encoded in the URL and
///        JSON-escaped in a JSON body; the screenshot as a multipart upload or
///        a PUT where the channel takes one). Standard library and
///        seckill/error.hpp only: browser/notifier.hpp sends the requests.
///
/// A webhook URL may hold a secret (a user and password, a `?token=`, a path
/// token like Telegram's `bot<TOKEN>`): no message of this header shows more
/// of a URL than `redact_webhook` does (its scheme, host and port).

#include <seckill/detail/splitmix64.hpp>
#include <seckill/error.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief What a notification is about.
enum class notice_kind {
  ordered,   ///< the shop confirmed an order
  failed,    ///< the grab gave up (its deadline) or ended on an error
  sold_out,  ///< a stock window closed with no order
  hand_off,  ///< the shop shows a verification a person must solve
  stock,     ///< monitor mode: the stock changed (in stock, or out again)
  stopped,   ///< the shop refused (throttled) the account too often in a row: it stopped
};

/// The kind's name as notifications and logs write it: "ordered", "failed",
/// "sold-out", "hand-off", "stock", "stopped".
constexpr std::string_view to_string(notice_kind k) noexcept {
  switch (k) {
    case notice_kind::ordered:
      return "ordered";
    case notice_kind::failed:
      return "failed";
    case notice_kind::sold_out:
      return "sold-out";
    case notice_kind::hand_off:
      return "hand-off";
    case notice_kind::stock:
      return "stock";
    case notice_kind::stopped:
      return "stopped";
  }
  return "unknown";
}

/// @brief One notification's facts. The grabber fills kind, sku, quantity,
///        text and at; the caller adds what only it knows (tab, shop,
///        screenshot). A plain value. Cost: that of its strings.
struct notice {
  notice_kind kind = notice_kind::ordered;
  std::string sku;   ///< the SKU ordered or last tried; empty: none
  int quantity = 0;  ///< the quantity ordered or last tried
  std::string text;  ///< the shop's answer, or why (the deadline, the verification seen)
  std::string tab;   ///< which grabber ("1", a name); empty: one only
  std::chrono::system_clock::time_point at{};  ///< when it happened
  std::string shop;        ///< the shop page, as shown to people: pass it through redact_url
  std::string screenshot;  ///< a PNG file to attach; empty: none
};

/// @brief Which notice kinds are sent (`notify_on`). A plain value.
struct notice_filter {
  unsigned bits = 0x3Fu;  ///< one bit per notice_kind; all by default
  [[nodiscard]] bool has(notice_kind k) const noexcept {
    return (bits & (1u << static_cast<unsigned>(k))) != 0;
  }
  void add(notice_kind k) noexcept { bits |= 1u << static_cast<unsigned>(k); }
  friend bool operator==(const notice_filter&, const notice_filter&) = default;
};

/// @brief A webhook: where a notice goes and how it is written.
///
/// A plain value. `url` and `body` are templates: `{event}`, `{title}`,
/// `{text}`, `{sku}`, `{quantity}`, `{tab}`, `{time}`, `{shop}`,
/// `{screenshot}`; `{{` and `}}` are a literal brace. The URL may hold a
/// secret: show it with redact_webhook. Cost: none.
struct webhook {
  /// How the request is made.
  enum class kind {
    json,        ///< POST a JSON object of every field (multipart with the screenshot)
    get,         ///< GET the URL template (everything is in the URL)
    body,        ///< POST the body template (JSON when it starts with { or [)
    ntfy,        ///< ntfy: POST the text to the topic URL (PUT the screenshot)
    bark,        ///< Bark: GET <device URL>/<title>/<text>
    serverchan,  ///< ServerChan: POST a form of title and desp to the SendKey URL
    telegram,    ///< Telegram Bot API: sendMessage, or sendPhoto with the screenshot
  };
  kind type = kind::json;
  std::string url;         ///< the URL template
  std::string body;        ///< kind::body: the body template
  bool json_body = false;  ///< kind::body: JSON (placeholders JSON-escaped)
  friend bool operator==(const webhook&, const webhook&) = default;
};

/// The preset names parse_webhook takes before a URL (`ntfy:https://...`).
inline constexpr std::string_view webhook_presets = "json, get, ntfy, bark, serverchan, telegram";

/// The placeholders a template may use.
inline constexpr std::string_view webhook_placeholders =
    "event, title, text, sku, quantity, tab, time, shop, screenshot";

/// @brief One HTTP request a webhook makes for a notice.
struct webhook_request {
  std::string method;        ///< GET, POST or PUT
  std::string url;           ///< the rendered URL (may hold a secret: redact_webhook)
  std::string content_type;  ///< empty: no body
  std::string body;
  bool attached = false;  ///< the screenshot is in the body
};

namespace detail {

/// What try_parse_webhook's checks throw to it (never beyond it).
struct webhook_refused {
  std::string why;
};

/// The pieces of an http(s) URL (or URL template).
struct url_parts {
  bool tls = false;
  std::string userinfo;  ///< before the host's @, as written
  std::string host;      ///< without brackets
  std::string port;      ///< digits; the scheme's default when absent
  std::string target;    ///< path and query, at least "/"
};

inline bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// Splits `url`; nullopt and `why` (never a part that may be secret) when it
/// is no absolute http:// or https:// URL with a host.
inline std::optional<url_parts> split_http_url(std::string_view url, std::string* why = nullptr) {
  const auto fail = [&](std::string w) -> std::optional<url_parts> {
    if (why != nullptr) *why = std::move(w);
    return std::nullopt;
  };
  const auto sep = url.find("://");
  if (sep == std::string_view::npos)
    return fail("is no absolute URL (expected http:// or https://)");
  const std::string_view scheme = url.substr(0, sep);
  url_parts p;
  if (ascii_iequal(scheme, "https")) {
    p.tls = true;
  } else if (!ascii_iequal(scheme, "http")) {
    bool plain = !scheme.empty() && scheme.size() <= 16;
    for (const char c : scheme) plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    return fail(plain ? "has the scheme '" + std::string(scheme) + "' (expected http or https)"
                      : std::string("has no http:// or https:// scheme"));
  }
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return fail("has a space or a control character (percent-encode it: %20 for a space)");
  }
  std::string_view rest = url.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (const auto f = tail.find('#'); f != std::string_view::npos) tail = tail.substr(0, f);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    p.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed [ in its host");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("has text after its [host]");
    if (!after.empty()) port = after.substr(1);
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  } else if (authority.find(':') != std::string_view::npos) {
    return fail("has a bad host");
  }
  if (host.empty()) return fail("has no host");
  for (const char c : host) {
    if (c == '{' || c == '}' || c == ' ' || c == '\t')
      return fail(
          "has a placeholder or a space in its host (only the path and query may have "
          "placeholders)");
  }
  if (!port.empty()) {
    unsigned n = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || n > 65535)
        return fail("has a port that is not a number in [1, 65535]");
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (n == 0 || n > 65535) return fail("has a port that is not a number in [1, 65535]");
  }
  p.host = std::string(host);
  p.port = port.empty() ? (p.tls ? "443" : "80") : std::string(port);
  p.target = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
  return p;
}

/// A placeholder's value, by name; nullopt for an unknown name.
inline std::optional<std::string> placeholder(std::string_view name, const notice& n);

/// How a value goes into a template.
enum class escape { none, url, json };

inline void append_escaped(std::string& out, std::string_view v, escape how) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (how == escape::url) {
      const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                              c == '~';
      if (unreserved) {
        out += ch;
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    } else if (how == escape::json) {
      switch (ch) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
          } else {
            out += ch;
          }
      }
    } else {
      out += ch;
    }
  }
}

/// Checks a template: every `{name}` known, every brace balanced (`{{` and
/// `}}` stand for one). Empty when good; else what is wrong, naming the
/// column and the placeholder, never the text around it.
inline std::string check_template(std::string_view t) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') {
      if (i + 1 < t.size() && t[i + 1] == '}') {
        ++i;
        continue;
      }
      return "an unbalanced '}' at column " + std::to_string(i + 1) + " (write }} for a brace)";
    }
    if (t[i] != '{') continue;
    if (i + 1 < t.size() && t[i + 1] == '{') {
      ++i;
      continue;
    }
    const auto close = t.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || t[close] == '{') {
      return "an unbalanced '{' at column " + std::to_string(i + 1) + " (write {{ for a brace)";
    }
    const std::string_view name = t.substr(i + 1, close - i - 1);
    if (!placeholder(name, notice{})) {
      std::string shown(name.substr(0, 24));
      for (char& c : shown)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      return "an unknown placeholder {" + shown + "} at column " + std::to_string(i + 1) +
             " (known: " + std::string(webhook_placeholders) + ")";
    }
    i = close;
  }
  return {};
}

/// Renders a checked template for `n`, each value escaped as `how` says.
inline std::string render_template(std::string_view t, const notice& n, escape how) {
  std::string out;
  out.reserve(t.size() + 64);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if ((c == '{' || c == '}') && i + 1 < t.size() && t[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const auto close = t.find('}', i + 1);
    if (close == std::string_view::npos) break;  // (checked templates have none)
    append_escaped(out, placeholder(t.substr(i + 1, close - i - 1), n).value_or(std::string()),
                   how);
    i = close;
  }
  return out;
}

/// "2026-12-04T14:05:12.345Z".
inline std::string utc_time(std::chrono::system_clock::time_point at) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  const auto frac = static_cast<int>(((ms.count() % 1000) + 1000) % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
  out += 'Z';
  return out;
}

/// The short line a notice is titled with: "seckill: ordered 2 x veg-box".
inline std::string notice_title(const notice& n) {
  std::string t = "seckill: " + std::string(to_string(n.kind));
  if (!n.sku.empty()) {
    t += ' ';
    if (n.quantity > 0) t += std::to_string(n.quantity) + " x ";
    t += n.sku;
  }
  if (!n.tab.empty()) t += " (tab " + n.tab + ")";
  return t;
}

inline std::optional<std::string> placeholder(std::string_view name, const notice& n) {
  if (name == "event") return std::string(to_string(n.kind));
  if (name == "title") return notice_title(n);
  if (name == "text") return n.text;
  if (name == "sku") return n.sku;
  if (name == "quantity") return std::to_string(n.quantity);
  if (name == "tab") return n.tab;
  if (name == "time") return utc_time(n.at);
  if (name == "shop") return n.shop;
  if (name == "screenshot") return n.screenshot;
  return std::nullopt;
}

/// The text of a channel that cannot take the screenshot: it says where the file is.
inline std::string text_with_file(const notice& n) {
  if (n.screenshot.empty()) return n.text;
  return n.text + (n.text.empty() ? "" : "\n") + "screenshot: " + n.screenshot;
}

/// The file name a screenshot is uploaded as (its path's last part).
inline std::string file_name_of(std::string_view path) {
  const auto slash = path.find_last_of('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  for (char& c : name)
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '_';
  return name.empty() ? std::string("screenshot.png") : name;
}

/// A multipart/form-data body of `parts` (name, file name or empty, content
/// type or empty, bytes); `boundary` is set to one that none of them holds.
struct form_part {
  std::string_view name, file, type, bytes;
};
inline std::string multipart(const std::vector<form_part>& parts, std::string& boundary) {
  std::uint64_t seed =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (;;) {
    const std::uint64_t bits = seckill::detail::splitmix64_next(seed);
    boundary = "seckill-";
    for (int i = 0; i < 16; ++i) boundary += "0123456789abcdef"[(bits >> (i * 4)) & 15];
    bool clash = false;
    for (const auto& p : parts) clash = clash || p.bytes.find(boundary) != std::string_view::npos;
    if (!clash) break;
  }
  std::string out;
  for (const auto& p : parts) {
    out += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + std::string(p.name) +
           "\"";
    if (!p.file.empty()) out += "; filename=\"" + std::string(p.file) + "\"";
    out += "\r\n";
    if (!p.type.empty()) out += "Content-Type: " + std::string(p.type) + "\r\n";
    out += "\r\n";
    out.append(p.bytes);
    out += "\r\n";
  }
  out += "--" + boundary + "--\r\n";
  return out;
}

/// `url` with `name=value` (value URL-encoded) appended to its query.
inline std::string with_param(std::string url, std::string_view name, std::string_view value) {
  url += url.find('?') == std::string::npos ? '?' : '&';
  url.append(name);
  url += '=';
  append_escaped(url, value, escape::url);
  return url;
}

}  // namespace detail

/// @brief A webhook URL fit for a log or a message: its scheme, host and
///        port, and "/…" for the rest (where a token may be); "(not an http
///        URL)" when it is none. Thread-safe, pure.
inline std::string redact_webhook(std::string_view url) {
  const auto p = detail::split_http_url(url);
  if (!p) return "(not an http URL)";
  const bool v6 = p->host.find(':') != std::string::npos;
  std::string out =
      std::string(p->tls ? "https://" : "http://") + (v6 ? "[" : "") + p->host + (v6 ? "]" : "");
  if (p->port != (p->tls ? "443" : "80")) out += ":" + p->port;
  if (p->target != "/") out += "/…";
  return out;
}

/// @brief Parses a list of notice kinds (`notify_on`): "ordered, failed,
///        sold-out, hand-off, stock, stopped" (or sold_out, hand_off), or "all". Throws
///        seckill::error (seckill::errc::invalid_argument) naming the word at fault.
/// @brief Parses a list of notice kinds (`notify_on`): "ordered, failed,
///        sold-out, hand-off, stock, stopped" (or sold_out, hand_off), or "all": nullopt and,
///        in `why`, the word at fault when one is unknown.
inline std::optional<notice_filter> try_parse_notice_filter(std::string_view list,
                                                            std::string* why) {
  notice_filter f{0};
  std::string_view rest = list;
  for (;;) {
    const auto comma = rest.find(',');
    std::string_view w = rest.substr(0, comma);
    while (!w.empty() && (w.front() == ' ' || w.front() == '\t')) w.remove_prefix(1);
    while (!w.empty() && (w.back() == ' ' || w.back() == '\t')) w.remove_suffix(1);
    if (w == "all") {
      f.bits = notice_filter{}.bits;
    } else if (w == "ordered") {
      f.add(notice_kind::ordered);
    } else if (w == "failed") {
      f.add(notice_kind::failed);
    } else if (w == "sold-out" || w == "sold_out") {
      f.add(notice_kind::sold_out);
    } else if (w == "hand-off" || w == "hand_off") {
      f.add(notice_kind::hand_off);
    } else if (w == "stock") {
      f.add(notice_kind::stock);
    } else if (w == "stopped") {
      f.add(notice_kind::stopped);
    } else {
      if (why != nullptr) {
        *why = "notify_on: unknown event '" + std::string(w.substr(0, 32)) +
               "' (known: ordered, failed, sold-out, hand-off, stock, stopped, all)";
      }
      return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return f;
}

/// @brief try_parse_notice_filter, throwing seckill::error (seckill::errc::invalid_argument).
inline notice_filter parse_notice_filter(std::string_view list) {
  std::string why;
  auto f = try_parse_notice_filter(list, &why);
  if (!f) throw error(seckill::errc::invalid_argument, why);
  return *f;
}

/// @brief Parses a webhook: `[<preset>:]<url>` and, for a plain URL, an
///        optional body template.
///
/// ```text
/// https://hooks.example/seckill                 POST a JSON object of every field
/// https://hooks.example/x  + body {{"msg": "{title}: {text}"}}   POST that body
/// get:https://hooks.example/x?e={event}&s={sku} GET (placeholders URL-encoded)
/// ntfy:https://ntfy.sh/<topic>                  ntfy (the screenshot as a PUT)
/// bark:https://api.day.app/<device key>         Bark
/// serverchan:https://sctapi.ftqq.com/<SendKey>.send
/// telegram:https://api.telegram.org/bot<TOKEN>?chat_id=<chat>
/// ```
/// Refused with seckill::error (seckill::errc::invalid_argument), naming what is
/// wrong and never the URL's secret: an unknown preset, a URL that is not
/// http(s) or has no host, a placeholder in the host, an unknown placeholder
/// or an unbalanced brace (in the URL or the body), a body with a preset, a
/// Telegram URL without `bot<TOKEN>` or `chat_id`, a Bark URL with a query.
inline std::optional<webhook> try_parse_webhook(std::string_view spec, std::string_view body,
                                                std::string* why);

inline webhook parse_webhook(std::string_view spec, std::string_view body = {}) {
  std::string why;
  auto w = try_parse_webhook(spec, body, &why);
  if (!w) throw error(seckill::errc::invalid_argument, why);
  return std::move(*w);
}

/// @brief parse_webhook without exceptions: nullopt and, in `why`, what is
///        wrong ("notify: ...").
inline std::optional<webhook> try_parse_webhook(std::string_view spec, std::string_view body,
                                                std::string* why) try {
  const auto bad = [](const std::string& w) -> void {
    throw detail::webhook_refused{"notify: " + w};
  };
  webhook w;
  std::string_view url = spec;
  const auto colon = spec.find(':');
  if (colon != std::string_view::npos && spec.substr(colon, 3) != "://") {
    const std::string_view preset = spec.substr(0, colon);
    url = spec.substr(colon + 1);
    if (preset == "json") {
      w.type = webhook::kind::json;
    } else if (preset == "get") {
      w.type = webhook::kind::get;
    } else if (preset == "ntfy") {
      w.type = webhook::kind::ntfy;
    } else if (preset == "bark") {
      w.type = webhook::kind::bark;
    } else if (preset == "serverchan") {
      w.type = webhook::kind::serverchan;
    } else if (preset == "telegram") {
      w.type = webhook::kind::telegram;
    } else {
      bool word = !preset.empty() && preset.size() <= 16;
      for (const char c : preset) word = word && c >= 'a' && c <= 'z';
      bad(word ? "unknown preset '" + std::string(preset) +
                     "' (known: " + std::string(webhook_presets) + ")"
               : std::string("expected [<preset>:]http(s)://host/... (presets: ") +
                     std::string(webhook_presets) + ")");
    }
  }
  std::string url_why;
  const auto parts = detail::split_http_url(url, &url_why);
  if (!parts) bad("the URL " + url_why);
  if (const std::string t = detail::check_template(url); !t.empty()) bad("the URL has " + t);
  if (!body.empty()) {
    if (w.type != webhook::kind::json || spec.substr(0, 5) == "json:")
      bad("a body template goes with a plain URL, not with a preset");
    if (const std::string t = detail::check_template(body); !t.empty()) bad("the body has " + t);
    w.type = webhook::kind::body;
    w.body = std::string(body);
    std::size_t i = 0;
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n')) ++i;
    w.json_body = i < body.size() && (body.substr(i, 2) == "{{" || body[i] == '[');
  }
  const std::string& target = parts->target;
  if (w.type == webhook::kind::telegram) {
    if (target.rfind("/bot", 0) != 0 || target.size() < 5 || target[4] == '?')
      bad("a telegram URL is https://api.telegram.org/bot<TOKEN>?chat_id=<chat>: no /bot<TOKEN>");
    if (target.find("?chat_id=") == std::string::npos &&
        target.find("&chat_id=") == std::string::npos)
      bad("a telegram URL needs ?chat_id=<chat> (the chat the bot writes to)");
  }
  if ((w.type == webhook::kind::bark || w.type == webhook::kind::ntfy) &&
      target.find('?') != std::string::npos)
    bad("a bark or ntfy URL takes no query (the title and text are added to it)");
  w.url = std::string(url);
  return w;
} catch (const detail::webhook_refused& r) {
  if (why != nullptr) *why = r.why;
  return std::nullopt;
}

/// @brief The request `w` makes for `n`. `attachment`: the screenshot's
///        bytes (empty: none, or it could not be read); channels that take a
///        file get it (json: multipart with a `payload` JSON part and a
///        `screenshot` file part; ntfy: PUT of the file with the text in the
///        query; telegram: sendPhoto), the others say in their text where
///        the file is. Thread-safe, pure.
inline webhook_request render_webhook(const webhook& w, const notice& n,
                                      std::string_view attachment = {}) {
  using detail::escape;
  webhook_request r;
  const std::string url = detail::render_template(w.url, n, escape::url);
  const bool file = !attachment.empty();
  const std::string file_name = detail::file_name_of(n.screenshot);
  switch (w.type) {
    case webhook::kind::json: {
      std::string json = "{";
      bool first = true;
      for (const char* name :
           {"event", "title", "text", "sku", "quantity", "tab", "time", "shop", "screenshot"}) {
        json += first ? "\"" : ",\"";
        first = false;
        json += name;
        json += "\":";
        const std::string v = detail::placeholder(name, n).value_or(std::string());
        if (std::string_view(name) == "quantity") {
          json += v;
        } else {
          json += '"';
          detail::append_escaped(json, v, escape::json);
          json += '"';
        }
      }
      json += '}';
      r.method = "POST";
      r.url = url;
      if (file) {
        std::string boundary;
        r.body = detail::multipart({{"payload", "", "application/json", json},
                                    {"screenshot", file_name, "image/png", attachment}},
                                   boundary);
        r.content_type = "multipart/form-data; boundary=" + boundary;
        r.attached = true;
      } else {
        r.body = std::move(json);
        r.content_type = "application/json";
      }
      return r;
    }
    case webhook::kind::get:
      r.method = "GET";
      r.url = url;
      return r;
    case webhook::kind::body:
      r.method = "POST";
      r.url = url;
      r.body = detail::render_template(w.body, n, w.json_body ? escape::json : escape::none);
      r.content_type = w.json_body ? "application/json" : "text/plain; charset=utf-8";
      return r;
    case webhook::kind::ntfy:
      r.url = detail::with_param(url, "title", detail::notice_title(n));
      if (file) {
        r.method = "PUT";
        r.url = detail::with_param(detail::with_param(r.url, "filename", file_name), "message",
                                   n.text.empty() ? detail::notice_title(n) : n.text);
        r.body = std::string(attachment);
        r.content_type = "image/png";
        r.attached = true;
      } else {
        r.method = "POST";
        r.body = detail::text_with_file(n);
        r.content_type = "text/plain; charset=utf-8";
      }
      return r;
    case webhook::kind::bark: {
      r.method = "GET";
      r.url = url;
      if (!r.url.empty() && r.url.back() == '/') r.url.pop_back();
      r.url += '/';
      detail::append_escaped(r.url, detail::notice_title(n), escape::url);
      r.url += '/';
      const std::string text = detail::text_with_file(n);
      detail::append_escaped(r.url, text.empty() ? std::string(to_string(n.kind)) : text,
                             escape::url);
      return r;
    }
    case webhook::kind::serverchan:
      r.method = "POST";
      r.url = url;
      r.body = "title=";
      detail::append_escaped(r.body, detail::notice_title(n), escape::url);
      r.body += "&desp=";
      detail::append_escaped(r.body, detail::text_with_file(n), escape::url);
      r.content_type = "application/x-www-form-urlencoded";
      return r;
    case webhook::kind::telegram: {
      // https://api.telegram.org/bot<TOKEN>?chat_id=<chat>: the method goes before the query.
      const auto q = url.find('?');
      const std::string base = url.substr(0, q);
      std::string chat;
      for (std::string_view query = std::string_view(url).substr(q + 1); !query.empty();) {
        const auto amp = query.find('&');
        const std::string_view kv = query.substr(0, amp);
        if (kv.rfind("chat_id=", 0) == 0) chat = std::string(kv.substr(8));
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      }
      const std::string message = detail::notice_title(n) + (n.text.empty() ? "" : "\n" + n.text);
      r.method = "POST";
      if (file) {
        r.url = base + (base.back() == '/' ? "" : "/") + "sendPhoto";
        std::string boundary;
        r.body = detail::multipart({{"chat_id", "", "", chat},
                                    {"caption", "", "", message},
                                    {"photo", file_name, "image/png", attachment}},
                                   boundary);
        r.content_type = "multipart/form-data; boundary=" + boundary;
        r.attached = true;
      } else {
        r.url = base + (base.back() == '/' ? "" : "/") + "sendMessage";
        const std::string said = detail::text_with_file(n);
        std::string text;
        detail::append_escaped(text, detail::notice_title(n) + (said.empty() ? "" : "\n" + said),
                               escape::json);
        std::string chat_json;
        detail::append_escaped(chat_json, chat, escape::json);
        r.body = "{\"chat_id\":\"" + chat_json + "\",\"text\":\"" + text + "\"}";
        r.content_type = "application/json";
      }
      return r;
    }
  }
  return r;
}

}  // namespace seckill::browser
