#pragma once
/// @file
/// @brief etcd authentication settings: `credentials` (an etcd user and its
///        password, for a cluster run with `etcdctl auth enable`), and
///        `take_credentials`, which takes `user:password@` off an endpoint
///        list (`etcd://shop:secret@a:2379,b:2379`) before `parse_endpoints`
///        reads it. The client's use of them is in client.hpp
///        (`client_options::credentials`) and docs/etcd.md,
///        "Authentication". The standard library only, plus `redact_url`.

#include <seckill/error.hpp>
#include <seckill/url.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace seckill::etcd {

/// @brief An etcd user and its password. Empty `username`: no
///        authentication (a cluster without `auth enable`). The password is
///        sent only in the body of `POST /v3/auth/authenticate` and never
///        appears in a message, a log line or `to_string` output.
struct credentials {
  std::string username;
  std::string password;
  [[nodiscard]] bool empty() const noexcept { return username.empty(); }
  friend bool operator==(const credentials&, const credentials&) = default;
};

namespace detail {

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// `%XX` decoded; false on a malformed escape.
inline bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

}  // namespace detail

/// @brief Takes the `user:password@` of the entries of an endpoint list
///        into `creds` and returns the list without them, for
///        `parse_endpoints`: `etcd://shop:s%40cret@a:2379,b:2379` ->
///        `etcd://a:2379,b:2379` with user `shop`, password `s@cret`
///        (percent-decoded). Entries without credentials use the same ones;
///        entries naming different ones, a user without a password, or a
///        malformed escape set `errc::invalid_argument`, and `message` shows
///        the entry through `redact_url` (the password as `***`). A list
///        without credentials comes back unchanged and leaves `creds` as it
///        was. Thread-safety: a pure function.
inline std::string take_credentials(std::string_view list, credentials& creds, std::error_code& ec,
                                    std::string* message = nullptr) {
  ec.clear();
  std::string out;
  credentials found;
  bool any = false;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string_view item = list.substr(pos, comma - pos);
    pos = comma + 1;
    auto bad = [&](const std::string& why) {
      ec = make_error_code(seckill::errc::invalid_argument);
      if (message != nullptr) *message = "etcd endpoint '" + seckill::redact_url(item) + "' " + why;
      return std::string();
    };
    const std::size_t sep = item.find("://");
    const std::size_t start = sep == std::string_view::npos ? 0 : sep + 3;
    std::size_t end = item.find_first_of("/?#", start);
    if (end == std::string_view::npos) end = item.size();
    const std::size_t at = item.substr(0, end).rfind('@');
    if (!out.empty()) out += ',';
    if (at == std::string_view::npos || at < start) {
      out += item;
      continue;
    }
    const std::string_view userinfo = item.substr(start, at - start);
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return bad("has credentials without a user and a password (expected user:password@)");
    credentials c;
    if (!detail::percent_decode(userinfo.substr(0, colon), c.username) ||
        !detail::percent_decode(userinfo.substr(colon + 1), c.password))
      return bad("has credentials with a malformed %-escape");
    if (c.password.empty()) return bad("has a user but no password");
    if (any && !(c == found)) return bad("names other credentials than an earlier entry");
    found = std::move(c);
    any = true;
    out += item.substr(0, start);
    out += item.substr(at + 1);
  }
  if (any) creds = std::move(found);
  return out;
}

}  // namespace seckill::etcd
