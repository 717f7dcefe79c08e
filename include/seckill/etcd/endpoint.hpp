#pragma once
/// @file
/// @brief `endpoint`, one etcd member's client address, and
///        `parse_endpoints`, the list of members a `client` is given as text
///        (`etcd://a:2379,b:2379`, `https://a:2379,b:2379?ca_file=...` for
///        TLS). Boost.URL parses each entry.

#include <seckill/detail/tls_params.hpp>
#include <seckill/error.hpp>
#include <seckill/tls.hpp>
#include <seckill/url.hpp>

#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/host_type.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace seckill::etcd {

/// @brief One etcd member's client address.
struct endpoint {
  std::string host;  ///< a name or an address; an IPv6 address without brackets
  std::uint16_t port = 2379;
  bool tls = false;  ///< https://: the client speaks TLS to it (client_options::tls)
  /// The host as a URL or a Host header writes it: `[::1]` for an IPv6 address.
  [[nodiscard]] std::string uri_host() const {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
  }
  [[nodiscard]] std::string to_string() const { return uri_host() + ":" + std::to_string(port); }
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// @brief Parses a comma-separated list of members, each `host:port`,
///        `etcd://host:port`, `http://host:port` or `https://host:port` (TLS),
///        an IPv6 address in brackets (`[::1]:2379`), an optional trailing
///        `/`; each entry is parsed with Boost.URL. An entry without a scheme
///        takes the one before it (`https://a:2379,b:2379`: both TLS); a list
///        that names both `https://` and a plain scheme is refused (no silent
///        downgrade). With `tls`, one entry may carry the TLS settings of the
///        whole list as query keys, as `rediss://` does (`ca_file`,
///        `cert_file`, `key_file`, `server_name`, `verify`):
///        `https://a:2379,b:2379?ca_file=/etc/etcd/ca.pem`; they are read into
///        `*tls`. Sets `errc::invalid_argument` on failure and says which entry
///        was wrong and why: another scheme, credentials (not taken: and never
///        echoed, the entry is shown through `redact_url`), no host, no port
///        or one outside 1..65535, a path, a fragment, a query (without `tls`,
///        or on a plain entry, or on two entries, or an unknown key), an
///        empty entry.
inline std::vector<endpoint> parse_endpoints(std::string_view list, std::error_code& ec,
                                             std::string* message, tls_options* tls) {
  namespace urls = boost::urls;
  std::vector<endpoint> out;
  ec.clear();
  auto bad = [&](std::string what) {
    ec = seckill::errc::invalid_argument;
    if (message != nullptr) *message = std::move(what);
    out.clear();
    return out;
  };
  if (list.empty()) return bad("etcd endpoint list is empty");
  constexpr std::string_view ipv6_hint = " (an IPv6 address is written [::1]:2379)";
  std::string scheme_before = "etcd";  // (the scheme of an entry without one)
  bool any_tls = false;
  bool any_plain = false;
  bool had_query = false;
  tls_options tls_read = tls != nullptr ? *tls : tls_options{};
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string_view item = list.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty())
      return bad("etcd endpoint list '" + redact_url(list) + "' has an empty entry");
    auto bad_item = [&](std::string_view why) {
      return bad("etcd endpoint '" + redact_url(item) + "' " + std::string(why));
    };
    if (item.find('@') != std::string_view::npos)
      return bad_item("carries credentials; etcd endpoints take none (host:port)");

    std::string text;
    if (const std::size_t sep = item.find("://"); sep == std::string_view::npos) {
      text = scheme_before + "://" + std::string(item);
    } else {
      const std::string_view scheme = item.substr(0, sep);
      if (urls::grammar::ci_is_equal(scheme, "https")) {
        scheme_before = "https";
      } else if (urls::grammar::ci_is_equal(scheme, "etcd") ||
                 urls::grammar::ci_is_equal(scheme, "http")) {
        scheme_before = "etcd";
      } else {
        return bad_item(seckill::detail::is_scheme(scheme) && scheme.size() <= 16
                            ? "has an unsupported scheme '" + std::string(scheme) +
                                  "' (expected host:port, etcd://host:port, http://host:port or "
                                  "https://host:port)"
                            : std::string("is not host:port"));
      }
      text = std::string(item);
    }
    const bool entry_tls = scheme_before == "https";
    (entry_tls ? any_tls : any_plain) = true;
    if (any_tls && any_plain)
      return bad_item("mixes https:// with plain http:// or etcd:// entries in one list");
    if (std::string_view rest = std::string_view(text).substr(text.find("://") + 3);
        (rest = rest.substr(0, rest.find('/'))).find('[') == std::string_view::npos &&
        rest.find(':') != rest.rfind(':'))
      return bad_item("is not host:port" +
                      std::string(ipv6_hint));  // an IPv6 address without brackets
    const auto parsed = urls::parse_uri(text);
    if (!parsed) return bad_item("is not host:port" + std::string(ipv6_hint));
    const urls::url_view& u = *parsed;
    if (u.has_fragment()) return bad_item("has a fragment; expected host:port");
    if (u.has_query()) {
      if (tls == nullptr || !entry_tls)
        return bad_item(
            "has a query; only https:// entries take one (TLS settings), read by "
            "parse_endpoints(list, ec, message, &tls)");
      if (had_query) return bad_item("has a query too; give the TLS settings on one entry");
      had_query = true;
      if (std::string why = seckill::detail::read_tls_params(u.params(), tls_read); !why.empty())
        return bad_item(why);
    }
    const std::string_view path = u.encoded_path();
    if (!path.empty() && path.front() != '/') {
      // RFC 3986 has no such URL; Boost.URL reads what follows the authority as a path.
      if (u.has_port() && u.port().empty())
        return bad_item("has a bad port '" + std::string(path.substr(0, path.find('/'))) +
                        "' (expected 1..65535)");
      return bad_item("is not host:port" + std::string(ipv6_hint));
    }
    if (path.find_first_not_of('/') != std::string_view::npos)
      return bad_item("has a path; expected host:port");
    if (u.host_type() == urls::host_type::ipvfuture)
      return bad_item("is an IPvFuture address, not supported");
    std::string host = u.host_address();  // decoded; an IPv6 address without its brackets
    if (host.empty()) return bad_item("is not host:port (no host)");
    if (!u.has_port()) return bad_item("is not host:port (no port)");
    const std::string_view port_text = u.port();
    unsigned port = 0;
    const auto [p, perr] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || perr != std::errc{} || p != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      return bad_item("has a bad port '" + std::string(port_text) + "' (expected 1..65535)");
    }
    out.push_back({std::move(host), static_cast<std::uint16_t>(port), entry_tls});
  }
  if (tls != nullptr) *tls = std::move(tls_read);
  return out;
}

/// @brief `parse_endpoints` without TLS settings in a query (an `https://`
///        entry is TLS with `client_options::tls` as set elsewhere).
inline std::vector<endpoint> parse_endpoints(std::string_view list, std::error_code& ec,
                                             std::string* message = nullptr) {
  return parse_endpoints(list, ec, message, nullptr);
}

/// @brief Throwing overload of parse_endpoints.
inline std::vector<endpoint> parse_endpoints(std::string_view list) {
  std::error_code ec;
  std::string message;
  auto out = parse_endpoints(list, ec, &message);
  if (ec) throw error(ec, message);
  return out;
}

}  // namespace seckill::etcd
