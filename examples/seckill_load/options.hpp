#pragma once
// seckill_load's command line: every flag, its default, its validation.

#include "common/cli.hpp"
#include "schedule.hpp"

#include <seckill/etcd/endpoint.hpp>
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
#include <vector>

namespace seckill_load {

using seckill_examples::help_requested;
using seckill_examples::usage_error;

/// A node to send requests to: http://host:port.
struct target {
  std::string host;  ///< a name or an address; an IPv6 address without brackets
  unsigned short port = 80;
  /// "http://host:port", the key of the node's statistics.
  [[nodiscard]] std::string url() const {
    return fmt::format("http://{}:{}",
                       host.find(':') != std::string::npos ? "[" + host + "]" : host, port);
  }
  friend bool operator==(const target&, const target&) = default;
};

/// Parses "http://host[:port][/]" (port 80 when absent; IPv6 as [::1]).
/// Returns what is wrong (empty when nothing is); credentials are refused and
/// never echoed.
[[nodiscard]] inline std::string parse_target(std::string_view text, target& out) {
  const auto shown = [&] { return "'" + seckill::redact_url(text) + "'"; };
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return shown() + " is not a URL like http://host:port";
  const auto scheme = text.substr(0, sep);
  if (scheme == "https") return shown() + ": https is not supported; use http://host:port";
  if (scheme != "http") return shown() + ": the scheme must be http (a URL like http://host:port)";
  std::string_view rest = text.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos)
    return shown() + " carries credentials; targets take none";
  if (rest.find_first_of("/?#") != std::string_view::npos)
    return shown() + " has a path, query or fragment; expected http://host:port";
  target t;
  std::string_view port_text;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close == 1)
      return shown() + " has a bad IPv6 address (written [::1])";
    t.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return shown() + " is not http://host:port";
      port_text = rest.substr(1);
      if (port_text.empty()) return shown() + " has an empty port";
    }
  } else {
    const auto colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos)
      return shown() + " is not http://host:port (an IPv6 address is written [::1])";
    t.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return shown() + " has an empty port";
    }
  }
  if (t.host.empty()) return shown() + " has no host";
  for (const char c : t.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return shown() + " has a bad host";
  }
  if (!port_text.empty()) {
    const auto p = seckill_examples::parse_int(port_text);
    if (!p || *p < 1 || *p > 65535)
      return shown() + " has a bad port '" + std::string(port_text) + "' (expected 1..65535)";
    t.port = static_cast<unsigned short>(*p);
  }
  out = std::move(t);
  return {};
}

struct options {
  std::vector<target> targets;                ///< --target, repeatable
  std::string etcd;                           ///< registry endpoints; empty: use targets
  std::string service = "seckill";            ///< the registry's service name
  std::string registry_prefix = "services/";  ///< instances live under prefix + service + "/"
  arrival_kind arrival = arrival_kind::fixed;
  double rate = 1'000;  ///< requests per second
  std::chrono::microseconds duration{10'000'000};
  std::int64_t requests = 0;      ///< > 0: send that many instead of running for `duration`
  std::int64_t connections = 16;  ///< keep-alive connections per node
  int threads = 2;
  std::int64_t users = 1'000'000;  ///< user-0 .. user-(U-1), one after another
  double repeat_share = 0;         ///< share of requests that resend an earlier one
  std::int64_t skus = 1;           ///< sku-0 .. sku-(M-1)
  std::int64_t quantity = 1;
  std::optional<std::int64_t> setup_stock;  ///< PUT /admin/stock/sku-i before the run
  std::string admin_token;                  ///< never printed
  bool verify = false;
  std::chrono::microseconds timeout{10'000'000};  ///< per request (connect, write, read)
  std::uint64_t seed = 1;
  std::string run_id;  ///< request ids are "<run_id>-<n>"; empty: made from the clock
  bool json = false;
  std::optional<bool> progress;  ///< unset: only when stderr is a terminal
};

using parse_result = std::variant<options, help_requested, usage_error>;

inline std::string help_text(std::string_view program) {
  const options d;
  return fmt::format(
      R"(usage: {} (--target URL ... | --etcd HOST:PORT[,...]) [options]

An open-loop load generator for seckill_server: POST /purchase requests on a
schedule that does not wait for answers (a fixed rate or Poisson arrivals),
over keep-alive HTTP/1.1 connections, with latency counted from when each
request was meant to be sent (corrected for coordinated omission). Reports
requests per second, answers by status and error, and latency percentiles,
for the whole run and per node. Exit status: 0 ok, 1 --verify failed, 2 bad
flags, 3 the targets could not be reached.

targets
  --target URL             a node, http://host:port (repeatable)
  --etcd HOST:PORT[,...]   find the nodes in etcd's service registry instead,
                           following health grades as they change
  --service NAME           the registry's service name (default {})
  --registry-prefix P      where services are registered (default {}): the
                           instances are the keys under P + NAME + "/"
load
  --rate R                 requests per second (default {:g})
  --arrival fixed|poisson  evenly spaced, or a Poisson process (default fixed)
  --duration D             how long to send, e.g. 30s, 500ms (default {}s)
  --requests N             send N requests instead of running for a duration
  --connections C          keep-alive connections per node (default {})
  --threads T              threads running the connections, 1..64 (default {})
  --timeout D              a request's limit (connect, send, answer) (default {}s)
  --seed N                 seed of the arrivals and request mix (default {})
requests
  --users U                buyers user-0 .. user-(U-1), taken in turn (default {})
  --skus M                 SKUs sku-0 .. sku-(M-1), drawn at random (default {})
  --quantity Q             units per purchase, 1..1000 (default {})
  --repeat-share P         share of requests that resend an earlier request
                           (same user and request id), in [0, 0.99]; a resent
                           one answered with another order id is an
                           idempotency violation (default {:g})
  --run-id ID              request ids are ID-<n>; 1 to 24 of A-Z a-z 0-9
                           (default: made from the clock, new for every run)
set-up and checks
  --setup-stock N          before the run, PUT /admin/stock/sku-i {{"stock": N}}
                           on one node for every SKU (needs --admin-token)
  --admin-token T          the admin API's bearer token (never printed); or the
                           environment variable SECKILL_ADMIN_TOKEN, which
                           keeps it out of the process list
  --verify                 after the run, read GET /stock/sku-i and check the
                           answers against it: units in distinct 200 orders ==
                           units sold during the run, no order id given to two
                           requests, sold <= the stock at the start
output
  --json                   print the report as JSON on stdout
  --progress, --no-progress
                           force the progress line on stderr on or off
                           (default: on when stderr is a terminal)
  -h, --help               this text
)",
      program, d.service, d.registry_prefix, d.rate, d.duration.count() / 1'000'000, d.connections,
      d.threads, d.timeout.count() / 1'000'000, d.seed, d.users, d.skus, d.quantity,
      d.repeat_share);
}

inline parse_result parse_options(int argc, const char* const* argv) {
  options o;
  // The token from the environment keeps it out of `ps`; --admin-token overrides it.
  if (const char* env = std::getenv("SECKILL_ADMIN_TOKEN"); env != nullptr) o.admin_token = env;
  seckill_examples::flag_cursor c(argc, argv);
  bool duration_given = false;
  while (c.next()) {
    const auto flag = c.flag();
    std::optional<usage_error> err;
    if (flag == "-h" || flag == "--help") return help_requested{};
    if (flag == "--target") {
      std::string text;
      if ((err = c.text(text))) return *err;
      target t;
      if (auto why = parse_target(text, t); !why.empty())
        return usage_error{fmt::format("--target {}", why)};
      if (o.targets.size() >= 64) return usage_error{"--target: at most 64 targets"};
      for (const auto& seen : o.targets)
        if (seen == t) return usage_error{fmt::format("--target {} is given twice", t.url())};
      o.targets.push_back(std::move(t));
    } else if (flag == "--etcd") {
      if ((err = c.text(o.etcd))) return *err;
      std::error_code ec;
      std::string why;
      (void)seckill::etcd::parse_endpoints(o.etcd, ec, &why);
      if (ec) return usage_error{fmt::format("--etcd: {}", why)};
    } else if (flag == "--service") {
      err = c.text(o.service);
      if (!err && (o.service.empty() || o.service.find('/') != std::string::npos))
        return c.bad(o.service, "a name without '/'");
    } else if (flag == "--registry-prefix") {
      err = c.text(o.registry_prefix);
      if (!err && o.registry_prefix.starts_with("/"))
        return c.bad(o.registry_prefix, "a key prefix not starting with '/'");
    } else if (flag == "--rate") {
      err = c.real(0.001, 10'000'000, o.rate);
    } else if (flag == "--arrival") {
      std::string v;
      if ((err = c.text(v))) return *err;
      if (v == "fixed")
        o.arrival = arrival_kind::fixed;
      else if (v == "poisson")
        o.arrival = arrival_kind::poisson;
      else
        return c.bad(v, "fixed or poisson");
    } else if (flag == "--duration") {
      err = c.duration(std::chrono::milliseconds(1), std::chrono::hours(24), o.duration);
      duration_given = true;
    } else if (flag == "--requests") {
      err = c.integer(1, 1'000'000'000, o.requests);
    } else if (flag == "--connections") {
      err = c.integer(1, 10'000, o.connections);
    } else if (flag == "--threads") {
      err = c.integer_as(1, 64, o.threads);
    } else if (flag == "--timeout") {
      err = c.duration(std::chrono::milliseconds(1), std::chrono::minutes(10), o.timeout);
    } else if (flag == "--seed") {
      err = c.integer_as(0, std::numeric_limits<std::int64_t>::max(), o.seed);
    } else if (flag == "--users") {
      err = c.integer(1, 1'000'000'000, o.users);
    } else if (flag == "--skus") {
      err = c.integer(1, 100'000, o.skus);
    } else if (flag == "--quantity") {
      err = c.integer(1, 1'000, o.quantity);
    } else if (flag == "--repeat-share") {
      err = c.real(0, 0.99, o.repeat_share);
    } else if (flag == "--run-id") {
      err = c.text(o.run_id);
      const bool ok = !o.run_id.empty() && o.run_id.size() <= 24 &&
                      o.run_id.find_first_not_of(
                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
                          "WXYZ0123456789") == std::string::npos;
      if (!err && !ok) return c.bad(o.run_id, "1 to 24 characters of A-Z a-z 0-9");
    } else if (flag == "--setup-stock") {
      std::int64_t n = 0;
      err = c.integer(0, 1'000'000'000'000, n);
      if (!err) o.setup_stock = n;
    } else if (flag == "--admin-token") {
      // never echoed: not even in an error
      if ((err = c.text(o.admin_token))) return *err;
      if (o.admin_token.empty()) return usage_error{"--admin-token: the token is empty"};
      if (o.admin_token.find_first_of(" \t\r\n") != std::string::npos)
        return usage_error{"--admin-token: the token has white space or a line break"};
    } else if (flag == "--verify") {
      err = c.no_value();
      o.verify = true;
    } else if (flag == "--json") {
      err = c.no_value();
      o.json = true;
    } else if (flag == "--progress") {
      err = c.no_value();
      o.progress = true;
    } else if (flag == "--no-progress") {
      err = c.no_value();
      o.progress = false;
    } else {
      // the flag alone: what follows an '=' may be a mistyped --admin-token's value
      return usage_error{fmt::format("unknown option '{}' (see --help)", flag)};
    }
    if (err) return *err;
  }
  if (o.targets.empty() && o.etcd.empty())
    return usage_error{"give at least one --target URL, or --etcd HOST:PORT to find the nodes"};
  if (!o.targets.empty() && !o.etcd.empty())
    return usage_error{
        "--target and --etcd exclude each other: give the nodes, or where to find them"};
  if (o.requests > 0 && duration_given)
    return usage_error{"--duration and --requests exclude each other: run for a time, or a count"};
  if (o.setup_stock && o.admin_token.empty())
    return usage_error{"--setup-stock needs --admin-token (the admin API's bearer token)"};
  return o;
}

}  // namespace seckill_load
