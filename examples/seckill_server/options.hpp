#pragma once
// seckill_server's command line: every flag, its default, its validation.

#include "common/cli.hpp"

#include <seckill/url.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace seckill_server {

using seckill_examples::help_requested;
using seckill_examples::usage_error;

/// Where to listen: a host (an IPv4 or IPv6 address; IPv6 written [::1]) and a port.
struct listen_address {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
};

struct options {
  listen_address listen;
  std::string store = "memory://";
  std::string etcd;  ///< coordination endpoints, host:port[,host:port...]; empty: none
  std::string node;  ///< this node's name; empty: "<host>:<port>" once listening
  std::string service = "seckill";  ///< the registry's service name (with --etcd)
  std::string advertise;            ///< the URL others reach this node at; empty: the listen one
  std::int64_t weight = 100;        ///< the registry weight (with --etcd)
  std::string admin_token;          ///< empty: the admin API answers 401 to everyone
  std::int64_t per_user = 1;        ///< each SKU's per-user limit set by the admin API; 0: none
  double admission_rate = 0;        ///< token bucket rate per second; 0: no admission
  double admission_burst = 1'000;
  double gcra_rate = 0;  ///< the per-SKU bucket every node shares in Redis; 0: none
  double gcra_burst = 100;
  double gcra_user_rate = 0;  ///< each user's bucket per SKU, shared likewise; 0: none
  double gcra_user_burst = 1;
  bool gcra_fail_open = false;  ///< admit when that Redis does not answer (default: refuse)
  std::chrono::milliseconds gcra_timeout{250};
  std::string gcra_redis;  ///< the Redis of those buckets; empty: --store's
  std::chrono::milliseconds deadline{800};
  std::chrono::milliseconds hold{30'000};
  std::chrono::milliseconds reaper_period{1'000};
  std::chrono::microseconds payment_latency{0};  ///< mean; 0: instant
  double payment_failure = 0;
  double payment_hang = 0;
  std::string payment_url;                ///< a real provider: POST {order_id, sku, quantity}
  std::int64_t payment_connections = 64;  ///< idle keep-alive connections kept to it
  int threads = 2;
  std::string otlp;  ///< an OTLP/HTTP traces endpoint; empty: no export
  std::int64_t max_connections = 10'000;
  std::chrono::milliseconds header_timeout{5'000};  ///< a request's first byte to its headers' end
  std::chrono::milliseconds request_timeout{10'000};  ///< to receive a request; to write an answer
  std::chrono::milliseconds idle_timeout{30'000};     ///< keep-alive: between two requests
  std::int64_t worker_id = -1;  ///< the Snowflake worker id; -1: 0, or claimed through --etcd
  std::uint64_t seed = 42;
};

using parse_result = std::variant<options, help_requested, usage_error>;

inline std::string help_text(std::string_view program) {
  const options d;
  return fmt::format(
      R"(usage: {} [options]

The flash-sale service: purchases over HTTP/1.1 (JSON, keep-alive) through the
purchase engine (admission, circuit breaker, Snowflake ids, reserve -> payment
-> commit under a deadline) on a stock store shared by every node. The first
line on stdout is "listening on http://HOST:PORT". SIGTERM or SIGINT stops it
gracefully: no new connections, purchases in flight finish, then exit 0.
Exit status 2 for bad flags, 1 when it cannot start (port taken, store down).

  --listen HOST:PORT       where to serve (default {}:{}); port 0 for a free
                           one; IPv6 as [::1]:8080
  --store URL              stock backend (default {}): memory://,
                           redis://[user:password@]host:port[/db], or
                           etcd://[user:password@]host:port[,host:port...];
                           shown with the
                           password as ***. Over TLS: rediss://... and
                           https://host:port[,...], the TLS files as query
                           keys (?ca_file=F&cert_file=F&key_file=F)
  --etcd HOST:PORT[,...]   coordination through etcd: registry, health,
                           leader duties, Snowflake worker lease; over TLS
                           https://HOST:PORT[,...][?ca_file=F&cert_file=F...];
                           an etcd user as etcd://USER:PASSWORD@HOST:PORT,...
                           or, out of the process list, in SECKILL_ETCD_USER
                           and SECKILL_ETCD_PASSWORD (for --store etcd:// too)
  --node NAME              this node's name (default HOST:PORT)
  --service NAME           registry service name (default {})
  --advertise URL          the URL other processes reach this node at
                           (default http://HOST:PORT)
  --weight W               registry weight, 1..10000 (default {})
  --admin-token T          bearer token of PUT /admin/stock/{{sku}} (or the
                           environment variable SECKILL_ADMIN_TOKEN); without
                           one the admin API refuses everyone
  --per-user N             per-user limit of the SKUs the admin API stocks,
                           0 for none (default {})
  --admission-rate R       token bucket rate per second, 0 for no admission
                           (default {})
  --admission-burst B      token bucket burst (default {})
  --gcra-rate R            a per-SKU rate shared by every node, per second
                           (GCRA in Redis; 0 for none, the default): checked
                           after this node's bucket; refusals are answered
                           429, most without a round trip (a local pre-filter)
  --gcra-burst B           its burst (default {})
  --gcra-user-rate R       each user's rate per SKU, shared likewise (0: none)
  --gcra-user-burst B      its burst (default {})
  --gcra-fail-open         admit when that Redis does not answer; by default
                           such purchases fail (503 unavailable)
  --gcra-timeout D         how long a check waits for Redis (default {}ms)
  --gcra-redis URL         the Redis of the shared buckets, redis://, rediss://
                           or a cluster's redis+cluster:// (default: --store,
                           which must then be one of them)
  --deadline D             purchase deadline (default {}ms)
  --hold D                 how long the store holds a reservation (default {}ms)
  --reaper-period D        how often expired holds are given back (default {}ms)
  --payment-latency D      simulated payment: mean time, e.g. 20ms; 0 for
                           instant (default 0)
  --payment-failure P      simulated payment: share that fails, in [0, 1] (default 0)
  --payment-hang P         simulated payment: share that never answers (default 0)
  --payment-url URL        a real payment provider instead: POST
                           {{"order_id", "sku", "quantity"}} with traceparent;
                           2xx is paid, anything else failed
  --payment-connections N  keep-alive connections to it kept idle for reuse,
                           1..10000 (default {})
  --threads N              threads serving, 1..64 (default {})
  --otlp URL               export traces to an OTLP/HTTP endpoint
                           (http://host:port/v1/traces)
  --max-connections N      open connections at most (default {}); beyond,
                           a new connection is closed at once
  --header-timeout D       a request's first byte to its headers' end (default {}ms)
  --request-timeout D      a request's first byte to its body's end, and the
                           time to write an answer (default {}ms)
  --idle-timeout D         a keep-alive connection's wait for its next request
                           (default {}ms)
  --worker-id N            Snowflake worker id, 0..1023, unique per node
                           sharing a store (default 0; with --etcd, leased)
  --seed N                 seed of the simulated payment (default {})
  -h, --help               this text
)",
      program, d.listen.host, d.listen.port, d.store, d.service, d.weight, d.per_user,
      d.admission_rate, d.admission_burst, d.gcra_burst, d.gcra_user_burst, d.gcra_timeout.count(),
      d.deadline.count(), d.hold.count(), d.reaper_period.count(), d.payment_connections, d.threads,
      d.max_connections, d.header_timeout.count(), d.request_timeout.count(),
      d.idle_timeout.count(), d.seed);
}

/// Parses "HOST:PORT" ("[v6]:PORT" for IPv6). Empty message on success.
inline std::string parse_listen(std::string_view text, listen_address& out) {
  std::string_view host, port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "expected [IPv6]:PORT";
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "expected HOST:PORT";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return "an IPv6 host goes in brackets: [::1]:PORT";
  }
  if (host.empty()) return "the host is empty";
  const auto p = seckill_examples::parse_int(port);
  if (!p || *p < 0 || *p > 65535) return fmt::format("port '{}' is not in [0, 65535]", port);
  out.host = std::string(host);
  out.port = static_cast<unsigned short>(*p);
  return {};
}

/// A URL of a Redis server or cluster: redis://, rediss://, redis+cluster://
/// or rediss+cluster://.
inline bool is_redis_url(std::string_view url) {
  for (const std::string_view scheme :
       {"redis://", "rediss://", "redis+cluster://", "rediss+cluster://"})
    if (url.starts_with(scheme)) return true;
  return false;
}

inline parse_result parse_options(int argc, const char* const* argv) {
  options o;
  if (const char* env = std::getenv("SECKILL_ADMIN_TOKEN"); env != nullptr) o.admin_token = env;
  seckill_examples::flag_cursor c(argc, argv);
  bool simulated = false;
  bool with_url_only = false;  // a flag that only --payment-url uses
  while (c.next()) {
    const auto flag = c.flag();
    std::optional<usage_error> err;
    if (flag == "-h" || flag == "--help") return help_requested{};
    if (flag == "--listen") {
      std::string text;
      err = c.text(text);
      if (!err) {
        if (auto why = parse_listen(text, o.listen); !why.empty())
          return usage_error{fmt::format("--listen '{}': {}", text, why)};
      }
    } else if (flag == "--store") {
      err = c.text(o.store);
    } else if (flag == "--etcd") {
      err = c.text(o.etcd);
      if (!err && o.etcd.empty()) return c.bad(o.etcd, "host:port[,host:port...]");
    } else if (flag == "--node") {
      err = c.text(o.node);
      if (!err && (o.node.empty() || o.node.size() > 64 || o.node.find('/') != std::string::npos))
        return c.bad(o.node, "a name of 1 to 64 characters without '/'");
    } else if (flag == "--service") {
      err = c.text(o.service);
      if (!err && (o.service.empty() || o.service.find('/') != std::string::npos))
        return c.bad(o.service, "a name without '/'");
    } else if (flag == "--advertise") {
      err = c.text(o.advertise);
      if (!err && !o.advertise.starts_with("http://"))
        return c.bad(o.advertise, "a URL like http://host:port");
    } else if (flag == "--weight") {
      err = c.integer(1, 10'000, o.weight);
    } else if (flag == "--admin-token") {
      err = c.text(o.admin_token);
      if (!err && o.admin_token.empty()) return usage_error{"--admin-token: the token is empty"};
    } else if (flag == "--per-user") {
      err = c.integer(0, 1'000'000'000, o.per_user);
    } else if (flag == "--admission-rate") {
      err = c.real(0, 1e9, o.admission_rate);
    } else if (flag == "--admission-burst") {
      err = c.real(1, 1e9, o.admission_burst);
    } else if (flag == "--gcra-rate") {
      err = c.real(0, 1e6, o.gcra_rate);
    } else if (flag == "--gcra-burst") {
      err = c.real(1, 1e9, o.gcra_burst);
    } else if (flag == "--gcra-user-rate") {
      err = c.real(0, 1e6, o.gcra_user_rate);
    } else if (flag == "--gcra-user-burst") {
      err = c.real(1, 1e9, o.gcra_user_burst);
    } else if (flag == "--gcra-fail-open") {
      err = c.no_value();
      o.gcra_fail_open = true;
    } else if (flag == "--gcra-timeout") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::minutes(1), o.gcra_timeout);
    } else if (flag == "--gcra-redis") {
      err = c.text(o.gcra_redis);
      if (!err && !is_redis_url(o.gcra_redis))
        return c.bad(seckill::redact_url(o.gcra_redis),
                     "a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL");
    } else if (flag == "--deadline") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::hours(1), o.deadline);
    } else if (flag == "--hold") {
      err = c.millis(std::chrono::milliseconds(2), std::chrono::hours(24), o.hold);
    } else if (flag == "--reaper-period") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::hours(1), o.reaper_period);
    } else if (flag == "--payment-latency") {
      simulated = true;
      err = c.duration(std::chrono::microseconds(0), std::chrono::seconds(60), o.payment_latency);
    } else if (flag == "--payment-failure") {
      simulated = true;
      err = c.real(0, 1, o.payment_failure);
    } else if (flag == "--payment-hang") {
      simulated = true;
      err = c.real(0, 1, o.payment_hang);
    } else if (flag == "--payment-url") {
      err = c.text(o.payment_url);
      if (!err && !o.payment_url.starts_with("http://"))
        return c.bad(seckill::redact_url(o.payment_url), "an http:// URL");
    } else if (flag == "--payment-connections") {
      with_url_only = true;
      err = c.integer(1, 10'000, o.payment_connections);
    } else if (flag == "--threads") {
      err = c.integer_as(1, 64, o.threads);
    } else if (flag == "--otlp") {
      err = c.text(o.otlp);
      if (!err && !o.otlp.starts_with("http://"))
        return c.bad(seckill::redact_url(o.otlp), "an http:// URL");
    } else if (flag == "--max-connections") {
      err = c.integer(1, 1'000'000, o.max_connections);
    } else if (flag == "--header-timeout") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::hours(1), o.header_timeout);
    } else if (flag == "--request-timeout") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::hours(1), o.request_timeout);
    } else if (flag == "--idle-timeout") {
      err = c.millis(std::chrono::milliseconds(1), std::chrono::hours(1), o.idle_timeout);
    } else if (flag == "--worker-id") {
      err = c.integer(0, 1023, o.worker_id);
    } else if (flag == "--seed") {
      err = c.integer_as(0, std::numeric_limits<std::int64_t>::max(), o.seed);
    } else {
      return c.unknown();
    }
    if (err) return *err;
  }
  if (simulated && !o.payment_url.empty())
    return usage_error{
        "--payment-url calls a real provider: it takes no --payment-latency, --payment-failure "
        "or --payment-hang"};
  if (with_url_only && o.payment_url.empty())
    return usage_error{
        "--payment-connections is for --payment-url: the simulated payment makes "
        "no connections"};
  if (o.payment_failure + o.payment_hang > 1)
    return usage_error{fmt::format("--payment-failure {} plus --payment-hang {} exceed 1",
                                   o.payment_failure, o.payment_hang)};
  if (o.hold <= o.deadline)
    return usage_error{fmt::format(
        "--hold {}ms must exceed --deadline {}ms: a paid order must still find its units",
        o.hold.count(), o.deadline.count())};
  if ((o.gcra_rate > 0 || o.gcra_user_rate > 0) && o.gcra_redis.empty() && !is_redis_url(o.store))
    return usage_error{fmt::format(
        "--gcra-rate and --gcra-user-rate keep their buckets in Redis: give --gcra-redis, "
        "or a Redis --store (saw --store {})",
        seckill::redact_url(o.store))};
  if (o.worker_id >= 0 && !o.etcd.empty())
    return usage_error{"--worker-id and --etcd: with --etcd the worker id is leased, not given"};
  return o;
}

}  // namespace seckill_server
