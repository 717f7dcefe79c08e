#pragma once
/// @file
/// @brief `parse_cluster_url`: a `cluster_config` from a
///        `redis+cluster://` (or `rediss+cluster://`, TLS) URL with one or
///        more seed nodes.
///
/// Error messages show the URL through `seckill::redact_url`: they never
/// contain the password. Thread-safety: a pure function. Cost: one parse.

#include <seckill/error.hpp>
#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/cluster_slots.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/url.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace seckill::redis {

/// @brief True when `url`'s scheme is `redis+cluster` or `rediss+cluster`
///        (case-insensitive).
inline bool is_cluster_url(std::string_view url) noexcept {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return false;
  const std::string_view scheme = url.substr(0, sep);
  return detail::same_word(scheme, "REDIS+CLUSTER") || detail::same_word(scheme, "REDISS+CLUSTER");
}

/// @brief Fills `cfg` from
///        `redis+cluster://[user:password@]host:port[,host:port...][?tls keys]`:
///        the seeds in order, and every node's connection settings (user,
///        password, and with `rediss+cluster://` the TLS query keys of
///        `parse_url`) read as `parse_url` reads the first seed's
///        `redis://` URL. No database: a cluster has only database 0. A seed
///        is `host:port`, `[v6]:port`, or `host` (port 6379). Returns
///        `errc::invalid_argument` otherwise (no seed, an empty seed, a path,
///        a port outside [1, 65535]) and leaves `cfg` as it was; `message`
///        then says what was wrong, showing the URL with its password
///        redacted.
inline std::error_code parse_cluster_url(std::string_view url, cluster_config& cfg,
                                         std::string* message = nullptr) {
  const auto fail = [&](const std::string& why) {
    if (message != nullptr)
      *message = "redis cluster URL '" + redact_url(std::string(url)) + "': " + why;
    return make_error_code(seckill::errc::invalid_argument);
  };
  if (!is_cluster_url(url)) return fail("the scheme is not redis+cluster:// or rediss+cluster://");
  const auto sep = url.find("://");
  const bool tls = sep == std::string_view("rediss+cluster").size();
  std::string_view rest = url.substr(sep + 3);
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q);
    rest = rest.substr(0, q);
  }
  std::string_view userinfo;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    userinfo = rest.substr(0, at + 1);
    rest = rest.substr(at + 1);
  }
  if (rest.find('/') != std::string_view::npos)
    return fail("a cluster URL takes no path (a cluster has only database 0)");
  std::vector<std::string_view> hosts;
  while (true) {
    const auto comma = rest.find(',');
    hosts.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  cluster_config out = cfg;
  out.seeds.clear();
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].empty()) return fail("seed " + std::to_string(i + 1) + " is empty");
    // Each seed read as a one-host URL, so hosts, ports and IPv6 literals
    // follow parse_url's rules; the first one's settings are every node's.
    connection_config node = cfg.node;
    std::string one = std::string(tls ? "rediss://" : "redis://") + std::string(userinfo) +
                      std::string(hosts[i]) + std::string(query);
    std::string why;
    if (parse_url(one, node, &why)) return fail("seed " + std::to_string(i + 1) + ": " + why);
    if (i == 0) out.node = node;
    out.seeds.push_back({node.host, node.port});
  }
  out.node.database = 0;
  cfg = std::move(out);
  return {};
}

}  // namespace seckill::redis
