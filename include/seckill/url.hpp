#pragma once
/// @file
/// @brief `redact_url`: a URL fit to print, log, export or put in an error
///        message: its password (or its lone user-info token) and the values
///        of secret-looking query and fragment parameters become `***`.
///
/// Every place seckill (or an example) shows a URL it was given goes through
/// redact_url, so `redis://alice:s3cret@cache:6379/0` is shown as
/// `redis://alice:***@cache:6379/0`. Parsing is Boost.URL's (RFC 3986); when
/// the text is not a URL, or is ambiguous (an unencoded `@`, `#` or `/` in a
/// password), everything between `://` (or the start) and the last `@` is
/// hidden: when in doubt, more is hidden, never less.
///
/// Thread-safety: a pure function. Cost: one parse and one copy of the URL.

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace seckill {

namespace detail {

inline constexpr std::string_view redacted_text = "***";

/// Whether `s` is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
inline bool is_scheme(std::string_view s) noexcept {
  if (s.empty() || std::isalpha(static_cast<unsigned char>(s.front())) == 0) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
  });
}

/// Whether a query (or fragment) parameter named `key` holds a secret:
/// password, token, secret, key, signature, session, credential and the like.
inline bool is_secret_param(std::string_view key) {
  std::string k(key);
  for (char& c : k)
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::array<std::string_view, 6> exact = {"key",  "sig", "auth",
                                                            "pass", "pwd", "code"};
  static constexpr std::array<std::string_view, 11> inside = {
      "password", "passwd",    "secret",     "token",   "apikey",       "api_key",
      "_key",     "signature", "credential", "session", "authorization"};
  if (std::find(exact.begin(), exact.end(), k) != exact.end()) return true;
  return std::any_of(inside.begin(), inside.end(),
                     [&](std::string_view s) { return k.find(s) != std::string::npos; });
}

/// `a=1&token=x` -> `a=1&token=***` (names and order kept).
inline void redact_params(std::string_view params, std::string& out) {
  std::size_t at = 0;
  while (true) {
    const std::size_t amp = std::min(params.find('&', at), params.size());
    const std::string_view kv = params.substr(at, amp - at);
    const std::size_t eq = kv.find('=');
    if (eq != std::string_view::npos && eq + 1 < kv.size() && is_secret_param(kv.substr(0, eq))) {
      out.append(kv.substr(0, eq + 1));
      out.append(redacted_text);
    } else {
      out.append(kv);
    }
    if (amp == params.size()) break;
    out.push_back('&');
    at = amp + 1;
  }
}

/// Copies `tail` (what follows the user info, or the whole text) with the
/// secret-looking parameters of its query and fragment redacted.
inline void redact_tail(std::string_view tail, std::string& out) {
  const std::size_t q = tail.find('?');
  const std::size_t f = tail.find('#');
  const std::size_t first = std::min(q, f);
  if (first == std::string_view::npos) {
    out.append(tail);
    return;
  }
  out.append(tail.substr(0, first + 1));
  if (q < f) {  // a query, then maybe a fragment
    const std::string_view query =
        tail.substr(q + 1, f == std::string_view::npos ? std::string_view::npos : f - q - 1);
    redact_params(query, out);
    if (f == std::string_view::npos) return;
    out.push_back('#');
  }
  redact_params(tail.substr(f + 1), out);
}

}  // namespace detail

/// @brief `url` with its credentials replaced by `***`:
///        `redis://user:secret@host:6379/0` -> `redis://user:***@host:6379/0`,
///        `redis://:secret@h` -> `redis://:***@h`, `redis://secret@h` ->
///        `redis://***@h` (a lone user info is a password to redis-cli and a
///        token to many HTTP services), `http://h/x?token=abc` ->
///        `http://h/x?token=***`. A URL without credentials comes back
///        unchanged; so does an empty password (`redis://u:@h`). Text that
///        does not parse has everything between `://` (or its start) and its
///        last `@` replaced.
inline std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  // What follows "scheme://" may be user info; without a scheme, all of the text may be.
  const std::size_t sep = url.find("://");
  const std::size_t start =
      sep != std::string_view::npos && detail::is_scheme(url.substr(0, sep)) ? sep + 3 : 0;
  const std::size_t last_at = url.rfind('@');
  const bool has_at = last_at != std::string_view::npos && last_at >= start;

  if (const auto r = boost::urls::parse_uri_reference(url); r && has_at && r->has_userinfo()) {
    // Clean only when the '@' closing the user info is the last one: an
    // unencoded '@' in a password makes Boost.URL (rightly, by RFC 3986)
    // end the user info early, and the rest of the password would show.
    const boost::urls::url_view& u = *r;
    const std::string_view info = u.encoded_userinfo();
    if (info.data() != nullptr &&
        static_cast<std::size_t>(info.data() - url.data()) + info.size() == last_at) {
      std::string_view secret = u.has_password() ? std::string_view(u.encoded_password())
                                                 : std::string_view(u.encoded_user());
      if (secret.empty()) {
        out.append(url.substr(0, last_at));
      } else {
        const std::size_t secret_at = static_cast<std::size_t>(secret.data() - url.data());
        out.append(url.substr(0, secret_at));
        out.append(detail::redacted_text);
        out.append(url.substr(secret_at + secret.size(), last_at - secret_at - secret.size()));
      }
      detail::redact_tail(url.substr(last_at), out);
      return out;
    }
  }
  if (!has_at) {
    out.append(url.substr(0, start));
    detail::redact_tail(url.substr(start), out);
    return out;
  }
  // Not a URL, or an ambiguous one: hide all of what may be user info.
  out.append(url.substr(0, start));
  if (last_at > start) out.append(detail::redacted_text);
  detail::redact_tail(url.substr(last_at), out);
  return out;
}

}  // namespace seckill
