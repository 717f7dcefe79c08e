#pragma once
// What the examples' --store URL names, and the settings of each backend,
// with the same errors everywhere (seckill::error, errc::invalid_argument,
// naming the flag; a password is shown as ***): memory://,
// redis://[user:password@]host:port[/db] (rediss:// over TLS, with the TLS
// settings as query keys: ?ca_file=...&cert_file=...&key_file=...),
// redis+cluster://[user:password@]host:port[,host:port...] (Redis Cluster;
// rediss+cluster:// over TLS),
// etcd://[user:password@]host:port[,host:port...] (https://host:port[,...][?ca_file=...]:
// etcd over TLS; the etcd user may also come from SECKILL_ETCD_USER and
// SECKILL_ETCD_PASSWORD).

#include <seckill/error.hpp>
#include <seckill/etcd/auth.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/redis/cluster_url.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/url.hpp>

#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <system_error>

namespace seckill_examples {

enum class store_kind { memory, redis, redis_cluster, etcd };

/// The backend `url` names; throws for memory:// with a host or path, and for any other scheme.
inline store_kind store_kind_of(const std::string& url) {
  const auto sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? std::string() : url.substr(0, sep);
  if (scheme == "memory") {
    if (url.size() != sep + 3)
      throw seckill::error(
          seckill::errc::invalid_argument,
          fmt::format("--store {}: memory:// takes no host or path", seckill::redact_url(url)));
    return store_kind::memory;
  }
  if (scheme == "redis" || scheme == "rediss") return store_kind::redis;
  if (seckill::redis::is_cluster_url(url)) return store_kind::redis_cluster;
  if (scheme == "etcd" || scheme == "https") return store_kind::etcd;  // (https: etcd over TLS)
  throw seckill::error(seckill::errc::invalid_argument,
                       fmt::format("--store {}: unknown store; this build knows memory://, "
                                   "redis://[user:password@]host:port[/db] (rediss:// over TLS), "
                                   "redis+cluster://[user:password@]host:port[,host:port...] "
                                   "(rediss+cluster:// over TLS), "
                                   "etcd://host:port[,host:port...] and https://host:port[,...] "
                                   "(etcd over TLS)",
                                   seckill::redact_url(url)));
}

/// A redis:// URL's connection settings; throws saying what is wrong with it.
inline seckill::redis::connection_config redis_config(const std::string& url) {
  seckill::redis::connection_config cfg;
  std::string why;
  if (seckill::redis::parse_url(url, cfg, &why))
    throw seckill::error(seckill::errc::invalid_argument, "--store: " + why);
  return cfg;
}

/// A redis+cluster:// URL's settings; throws saying what is wrong with it.
inline seckill::redis::cluster_config redis_cluster_config(const std::string& url) {
  seckill::redis::cluster_config cfg;
  std::string why;
  if (seckill::redis::parse_cluster_url(url, cfg, &why))
    throw seckill::error(seckill::errc::invalid_argument, "--store: " + why);
  return cfg;
}

/// The etcd endpoints in `list` (etcd://host:port[,...] or host:port[,...];
/// https://host:port[,...][?ca_file=...&cert_file=...&key_file=...] over TLS)
/// as client options; throws naming `flag` and what is wrong. The etcd user
/// comes from the list (etcd://user:password@host:port,...) or, out of the
/// process list, from SECKILL_ETCD_USER and SECKILL_ETCD_PASSWORD.
inline seckill::etcd::client_options etcd_options(const std::string& list,
                                                  const char* flag = "--store") {
  std::error_code ec;
  std::string why;
  seckill::etcd::client_options co;
  if (const char* user = std::getenv("SECKILL_ETCD_USER"); user != nullptr && *user != '\0') {
    co.auth.username = user;
    const char* password = std::getenv("SECKILL_ETCD_PASSWORD");
    co.auth.password = password != nullptr ? password : "";
  }
  const std::string endpoints = seckill::etcd::take_credentials(list, co.auth, ec, &why);
  if (ec) throw seckill::error(ec, std::string(flag) + ": " + why);
  co.endpoints = seckill::etcd::parse_endpoints(endpoints, ec, &why, &co.tls);
  if (ec) throw seckill::error(ec, std::string(flag) + ": " + why);
  return co;
}

}  // namespace seckill_examples
