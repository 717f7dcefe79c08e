#pragma once
/// @file
/// @brief The TLS settings a URL's query carries (`rediss://...?ca_file=...`,
///        `https://...?ca_file=...` for etcd), read into `tls_options`: the
///        one list of query keys both backends accept (docs/redis.md, "TLS").

#include <seckill/tls.hpp>

#include <boost/url/params_view.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace seckill::detail {

/// The query keys `read_tls_params` knows.
inline constexpr std::string_view tls_param_keys =
    "ca_file, cert_file, key_file, server_name, verify";

/// Reads `ca_file`, `cert_file`, `key_file`, `server_name` (percent-decoded)
/// and `verify` (true, false, yes, no, 1, 0) from `params` into `opts`.
/// Returns what was wrong (an unknown key, a key given twice, a bad
/// `verify`), or nothing. A key passphrase is never read from a URL (a URL
/// shows in process lists and logs): `key_password` is refused by name.
inline std::string read_tls_params(const boost::urls::params_view& params, tls_options& opts) {
  tls_options out = opts;
  std::string seen;
  for (const auto& p : params) {
    const std::string& key = p.key;
    if (("," + seen + ",").find("," + key + ",") != std::string::npos)
      return "the query key '" + key + "' is given twice";
    seen += (seen.empty() ? "" : ",") + key;
    if (!p.has_value && key != "verify") return "the query key '" + key + "' has no value";
    if (key == "ca_file") {
      out.ca_file = p.value;
    } else if (key == "cert_file") {
      out.cert_file = p.value;
    } else if (key == "key_file") {
      out.key_file = p.value;
    } else if (key == "server_name") {
      out.server_name = p.value;
    } else if (key == "verify") {
      const std::string& v = p.value;
      if (!p.has_value || v == "true" || v == "yes" || v == "1") {
        out.verify = true;
      } else if (v == "false" || v == "no" || v == "0") {
        out.verify = false;
      } else {
        return "verify='" + v + "' is not true or false";
      }
    } else if (key == "key_password" || key == "password") {
      return "a passphrase is not taken from a URL (URLs show in process lists and logs); set "
             "tls_options::key_password instead";
    } else {
      return "unknown query key '" + key + "' (known: " + std::string(tls_param_keys) + ")";
    }
  }
  opts = std::move(out);
  return {};
}

}  // namespace seckill::detail
