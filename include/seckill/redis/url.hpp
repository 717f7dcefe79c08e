#pragma once
/// @file
/// @brief `parse_url`: a `connection_config` from a `redis://` or
///        `rediss://` (TLS) URL, read the way `redis-cli -u` reads it
///        (percent-encoded user and password, an IPv6 literal in brackets, an
///        optional database number), parsed with Boost.URL (RFC 3986).
///
/// Error messages show the URL through `seckill::redact_url`: they never
/// contain the password. Thread-safety: a pure function. Cost: one parse.

#include <seckill/detail/tls_params.hpp>
#include <seckill/error.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/url.hpp>

#include <boost/url/grammar/ci_string.hpp>
#include <boost/url/host_type.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill::redis {

/// @brief Fills `cfg` from `redis://[[user]:password@]host[:port][/db]`:
///        `redis://alice:p%40ss@cache:6380/2`, `redis://:password@host`,
///        `redis://password@host` (a lone user info is the password, as for
///        redis-cli), `redis://[::1]:6379` (cfg.host is `::1`). The scheme is
///        case-insensitive; the port defaults to 6379 and the database to 0;
///        user and password are percent-decoded. `rediss://` is the same over
///        TLS (`cfg.tls` set), and takes the TLS settings as query keys:
///        `rediss://cache:6380/0?ca_file=/etc/ca.pem&cert_file=/etc/c.pem&key_file=/etc/c.key`
///        (`ca_file`, `cert_file`, `key_file`, `server_name`, `verify=false`;
///        percent-decoded; never a passphrase). Returns
///        `errc::invalid_argument` on anything else (a query on `redis://`, an
///        unknown query key, a fragment, a path other than `/<db>`; a port
///        outside [1, 65535]) and leaves `cfg` as it was; `message` then says
///        what was wrong, showing the URL with its password redacted. The
///        files are checked by `validate` (when the connection is made).
inline std::error_code parse_url(std::string_view url, connection_config& cfg,
                                 std::string* message = nullptr) {
  namespace urls = boost::urls;
  auto bad = [&](std::string_view why) {
    if (message != nullptr)
      *message = "bad redis url '" + redact_url(url) + "': " + std::string(why);
    return make_error_code(seckill::errc::invalid_argument);
  };
  constexpr std::string_view expected =
      "expected redis://[[user]:password@]host[:port][/db] or rediss://...[?ca_file=...]";

  // The scheme first, from the text: "rediss://" deserves its own answer even
  // when the rest would not parse.
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad(expected);
  const std::string_view scheme = url.substr(0, sep);
  const bool tls = urls::grammar::ci_is_equal(scheme, "rediss");
  if (!tls && !urls::grammar::ci_is_equal(scheme, "redis")) {
    const bool plain = scheme.size() <= 16 && seckill::detail::is_scheme(scheme);
    // (a scheme that is not one may be part of a password: not echoed)
    return bad(plain ? "unsupported scheme '" + std::string(scheme) + "'; " + std::string(expected)
                     : std::string(expected));
  }

  constexpr std::string_view encode_hint =
      "characters such as @ : / ? # [ ] % and spaces in a user name or password must be "
      "percent-encoded (@ as %40, : as %3A, / as %2F, ? as %3F, # as %23)";
  const auto parsed = urls::parse_uri(url);
  if (!parsed) {
    const std::string_view rest = url.substr(sep + 3);
    const std::size_t open = rest.find('[');
    if (open != std::string_view::npos && rest.find(']', open) == std::string_view::npos &&
        rest.find('@') == std::string_view::npos)
      return bad("unterminated '[' in the host (an IPv6 address is written [::1])");
    return bad("not a valid URL (RFC 3986); " + std::string(encode_hint));
  }
  const urls::url_view& u = *parsed;

  // An '@' after the user info: an unencoded '@' (or '#', '/', '?') in the
  // password made the parse end the user info early.
  const auto holds_at = [](std::string_view s) { return s.find('@') != std::string_view::npos; };
  if (holds_at(u.encoded_path()) || holds_at(u.encoded_query()) || holds_at(u.encoded_fragment()))
    return bad("an '@' after the host; " + std::string(encode_hint));
  std::optional<tls_options> tls_settings;
  if (tls) tls_settings.emplace();
  if (u.has_query()) {
    if (!tls)
      return bad("query parameters ('?...') are TLS settings, taken by rediss:// only; " +
                 std::string(expected));
    if (std::string why = seckill::detail::read_tls_params(u.params(), *tls_settings); !why.empty())
      return bad(why);
  }
  if (u.has_fragment())
    return bad("a fragment ('#...') is not supported; " + std::string(expected));

  connection_config out = cfg;
  out.username.clear();
  out.password.clear();
  out.database = 0;
  out.port = "6379";

  const std::string_view path = u.encoded_path();
  if (!path.empty() && path.front() != '/') {
    // RFC 3986 has no such URL; Boost.URL reads what follows the authority as a path.
    if (u.has_port() && u.port().empty()) {
      const std::string_view port_text = path.substr(0, path.find('/'));
      return bad("port '" + std::string(port_text) + "' is not a number in [1, 65535]");
    }
    return bad("unexpected '" + std::string(path) + "' after the host and port; " +
               std::string(expected));
  }

  if (u.host_type() == urls::host_type::ipvfuture)
    return bad("IPvFuture addresses are not supported");
  std::string host = u.host_address();  // decoded; an IPv6 address without its brackets
  if (host.empty()) return bad("no host; " + std::string(expected));

  if (u.has_port()) {
    const std::string_view port = u.port();
    if (port.empty()) return bad("empty port after ':'");
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc{} || end != port.data() + port.size() || n == 0 || n > 65535)
      return bad("port '" + std::string(port) + "' is not in [1, 65535]");
    out.port = std::string(port);
  }

  if (u.has_userinfo()) {
    if (u.has_password()) {
      out.username = u.user();
      out.password = u.password();
      if (out.password.empty())
        return bad("empty password after ':' (leave out the user info when there is none)");
    } else {
      out.password = u.user();  // redis://password@host, as redis-cli reads it
      if (out.password.empty()) return bad("empty password before '@'");
    }
  }

  if (path.size() > 1) {
    const std::string_view db = path.substr(1);
    if (db.find('/') != std::string_view::npos)
      return bad("path '" + std::string(path) + "' is not /<database number>");
    int n = -1;
    const auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), n);
    if (ec != std::errc{} || end != db.data() + db.size() || n < 0)
      return bad("database '" + std::string(db) + "' is not a number >= 0");
    out.database = n;
  }

  out.host = std::move(host);
  out.tls = std::move(tls_settings);
  cfg = std::move(out);
  return {};
}

}  // namespace seckill::redis
