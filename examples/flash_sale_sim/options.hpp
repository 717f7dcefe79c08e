#pragma once
// flash_sale_sim's command line: every flag, its default, its validation.

#include "common/cli.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace flash_sale_sim {

enum class arrival_kind { burst, poisson };

struct options {
  std::string store = "memory://";
  std::int64_t buyers = 20'000;
  std::int64_t skus = 10;
  std::int64_t stock = 100;  // per SKU
  std::int64_t quantity = 1;
  std::int64_t users = 0;     // named buyers drawn from this many users; 0: anonymous buyers
  std::int64_t per_user = 1;  // each SKU's per-user limit (units); 0: none
  int shards = 1;             // each SKU's stock split over this many shards (Redis only)
  arrival_kind arrival = arrival_kind::burst;
  double arrival_rate = 50'000;  // buyers per second, Poisson only
  std::chrono::microseconds payment_latency{
      20'000};                     // mean; each payment draws uniformly in [0.5, 1.5] x mean
  double payment_failure = 0.05;   // share of payments that fail
  double payment_hang = 0.01;      // share of payments that never answer (they time out)
  double admission_rate = 10'000;  // tokens per second; 0 turns admission off
  double admission_burst = 1'000;
  std::chrono::milliseconds deadline{800};
  std::chrono::milliseconds hold{30'000};
  std::chrono::milliseconds reaper_period{1'000};  // how often expired holds are given back
  int threads = 2;
  std::uint64_t seed = 42;
  bool json = false;
  std::optional<bool> progress;  // unset: only when stderr is a terminal
  std::optional<unsigned short>
      metrics_port;  // serve /metrics and /health on 127.0.0.1 (0: a free port)
  std::chrono::milliseconds linger{
      0};  // with metrics_port: keep serving that long after the report
};

struct help_requested {};
struct usage_error {
  std::string message;
};

using parse_result = std::variant<options, help_requested, usage_error>;

inline std::string help_text(std::string_view program) {
  const options d;
  return fmt::format(
      R"(usage: {} [options]

A flash sale in one process: buyers (coroutines) race for the stock of a few
SKUs through the purchase engine (token bucket, circuit breaker, Snowflake ids,
reserve -> payment -> commit -> persist under a deadline), then a report and an
oversell check and an audit of the orders the store recorded. Exit status: 0
when the stock and the orders add up, 1 when they do not (oversold, negative,
an order missing or a user over the limit), 2 for bad flags, 3 when the store
cannot be used.

  --store URL              stock backend (default {}): memory://,
                           redis://[user:password@]host:port[/db], or
                           etcd://[user:password@]host:port[,host:port...]
                           (or the etcd user in SECKILL_ETCD_USER and
                           SECKILL_ETCD_PASSWORD); IPv6 as [::1],
                           @ : / ? # % in a password percent-encoded
                           (%40 %3A %2F %3F %23 %25); shown with the
                           password as ***. Over TLS: rediss://... and
                           https://host:port[,...] (etcd), the TLS files as
                           query keys (?ca_file=F&cert_file=F&key_file=F)
  --buyers N               simulated buyers, one purchase each (default {})
  --skus M                 SKUs on sale (default {})
  --stock S                units of each SKU (default {})
  --quantity Q             units per purchase (default {})
  --users U                buyers are drawn from U users, each purchase with a
                           request id of its own; 0 for anonymous buyers, to
                           whom no per-user limit applies (default {})
  --per-user N             each SKU's per-user limit in units, 0 for none
                           (default {}); the end audits every user against it
  --shards K               split each SKU's stock over K shards, 1..64, each
                           on its own hash slot (a Redis store only; on a
                           cluster they spread over the masters) (default {})
  --arrival burst|poisson  everyone at t=0, or a Poisson process (default burst)
  --arrival-rate R         buyers per second for --arrival poisson (default {})
  --payment-latency D      mean payment time, e.g. 20ms, 1.5s, 300us (default {}us);
                           each payment takes between 0.5x and 1.5x of it
  --payment-failure P      share of payments that fail, in [0, 1] (default {})
  --payment-hang P         share of payments that never answer, in [0, 1] (default {})
  --admission-rate R       token bucket rate per second, 0 for no admission (default {})
  --admission-burst B      token bucket burst (default {})
  --deadline D             purchase deadline (default {}ms)
  --hold D                 how long the store holds a reservation (default {}ms)
  --reaper-period D        how often the reaper gives back expired holds
                           (default {}ms); the end of a run waits at most the
                           hold plus two periods for them
  --threads T              threads running the purchases, 1..64 (default {}):
                           an io_context each, buyers spread over them
  --seed N                 random seed (default {})
  --json                   print the report as JSON on stdout
  --metrics-port P         serve Prometheus metrics (/metrics) and /health on
                           127.0.0.1:P while the sale runs (0: a free port)
  --linger D               with --metrics-port: keep serving for D after the
                           report, or until SIGINT/SIGTERM (e.g. 600s)
  --progress, --no-progress
                           force the progress bar on stderr on or off
                           (default: on when stderr is a terminal)
  -h, --help               this text
)",
      program, d.store, d.buyers, d.skus, d.stock, d.quantity, d.users, d.per_user, d.shards,
      d.arrival_rate, d.payment_latency.count(), d.payment_failure, d.payment_hang,
      d.admission_rate, d.admission_burst, d.deadline.count(), d.hold.count(),
      d.reaper_period.count(), d.threads, d.seed);
}

namespace detail {

using seckill_examples::parse_double;
using seckill_examples::parse_duration;
using seckill_examples::parse_int;

}  // namespace detail

inline parse_result parse_options(int argc, const char* const* argv) {
  options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::optional<std::string_view> inline_value;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto no_value = [&]() -> std::optional<usage_error> {
      if (inline_value)
        return usage_error{fmt::format("{} takes no value (saw '{}')", flag, *inline_value)};
      return std::nullopt;
    };
    auto value = [&]() -> std::optional<std::string_view> {
      if (inline_value) return inline_value;
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    auto missing = [&] { return usage_error{fmt::format("{} needs a value", flag)}; };
    auto bad = [&](std::string_view v, std::string_view expected) {
      return usage_error{fmt::format("{}: expected {}, saw '{}'", flag, expected, v)};
    };
    auto integer = [&](std::int64_t lo, std::int64_t hi,
                       std::int64_t& out) -> std::optional<usage_error> {
      const auto v = value();
      if (!v) return missing();
      const auto n = detail::parse_int(*v);
      if (!n || *n < lo || *n > hi) return bad(*v, fmt::format("an integer in [{}, {}]", lo, hi));
      out = *n;
      return std::nullopt;
    };
    auto real = [&](double lo, double hi, double& out) -> std::optional<usage_error> {
      const auto v = value();
      if (!v) return missing();
      const auto n = detail::parse_double(*v);
      if (!n || *n < lo || *n > hi) return bad(*v, fmt::format("a number in [{}, {}]", lo, hi));
      out = *n;
      return std::nullopt;
    };
    auto duration = [&](std::chrono::microseconds lo, std::chrono::microseconds hi,
                        std::chrono::microseconds& out) -> std::optional<usage_error> {
      const auto v = value();
      if (!v) return missing();
      const auto d = detail::parse_duration(*v);
      if (!d || *d < lo || *d > hi)
        return bad(*v, fmt::format("a duration in [{}us, {}us] like 250ms, 1.5s or 300us",
                                   lo.count(), hi.count()));
      out = *d;
      return std::nullopt;
    };

    std::optional<usage_error> err;
    if (flag == "-h" || flag == "--help") return help_requested{};
    if (flag == "--store") {
      const auto v = value();
      if (!v) return missing();
      o.store = std::string(*v);
    } else if (flag == "--buyers") {
      err = integer(1, 10'000'000, o.buyers);
    } else if (flag == "--skus") {
      err = integer(1, 100'000, o.skus);
    } else if (flag == "--stock") {
      err = integer(0, 1'000'000'000, o.stock);
    } else if (flag == "--quantity") {
      err = integer(1, 1'000'000, o.quantity);
    } else if (flag == "--users") {
      err = integer(0, 10'000'000, o.users);
    } else if (flag == "--per-user") {
      err = integer(0, 1'000'000'000, o.per_user);
    } else if (flag == "--shards") {
      std::int64_t k = 0;
      err = integer(1, 64, k);
      o.shards = static_cast<int>(k);
    } else if (flag == "--arrival") {
      const auto v = value();
      if (!v) return missing();
      if (*v == "burst")
        o.arrival = arrival_kind::burst;
      else if (*v == "poisson")
        o.arrival = arrival_kind::poisson;
      else
        return bad(*v, "burst or poisson");
    } else if (flag == "--arrival-rate") {
      err = real(1e-3, 1e9, o.arrival_rate);
    } else if (flag == "--payment-latency") {
      err = duration(std::chrono::microseconds(0), std::chrono::seconds(60), o.payment_latency);
    } else if (flag == "--payment-failure") {
      err = real(0, 1, o.payment_failure);
    } else if (flag == "--payment-hang") {
      err = real(0, 1, o.payment_hang);
    } else if (flag == "--admission-rate") {
      err = real(0, 1e9, o.admission_rate);
    } else if (flag == "--admission-burst") {
      err = real(1, 1e9, o.admission_burst);
    } else if (flag == "--deadline" || flag == "--hold") {
      std::chrono::microseconds d{};
      err = duration(std::chrono::milliseconds(1), std::chrono::hours(24), d);
      if (!err) {
        if (d % std::chrono::milliseconds(1) != std::chrono::microseconds::zero())
          return bad(args[i], "a whole number of milliseconds");
        (flag == "--deadline" ? o.deadline : o.hold) =
            std::chrono::duration_cast<std::chrono::milliseconds>(d);
      }
    } else if (flag == "--reaper-period") {
      std::chrono::microseconds d{};
      err = duration(std::chrono::milliseconds(1), std::chrono::hours(1), d);
      if (!err) {
        if (d % std::chrono::milliseconds(1) != std::chrono::microseconds::zero())
          return bad(args[i], "a whole number of milliseconds");
        o.reaper_period = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      }
    } else if (flag == "--threads") {
      std::int64_t t = 0;
      err = integer(1, 64, t);
      o.threads = static_cast<int>(t);
    } else if (flag == "--seed") {
      std::int64_t s = 0;
      err = integer(0, std::numeric_limits<std::int64_t>::max(), s);
      o.seed = static_cast<std::uint64_t>(s);
    } else if (flag == "--metrics-port") {
      std::int64_t p = 0;
      err = integer(0, 65535, p);
      o.metrics_port = static_cast<unsigned short>(p);
    } else if (flag == "--linger") {
      std::chrono::microseconds d{};
      err = duration(std::chrono::microseconds(0), std::chrono::hours(24), d);
      o.linger = std::chrono::duration_cast<std::chrono::milliseconds>(d);
    } else if (flag == "--json") {
      err = no_value();
      o.json = true;
    } else if (flag == "--progress") {
      err = no_value();
      o.progress = true;
    } else if (flag == "--no-progress") {
      err = no_value();
      o.progress = false;
    } else {
      return usage_error{fmt::format("unknown option '{}' (see --help)", args[i])};
    }
    if (err) return *err;
  }
  if (o.payment_failure + o.payment_hang > 1)
    return usage_error{fmt::format("--payment-failure {} plus --payment-hang {} exceed 1",
                                   o.payment_failure, o.payment_hang)};
  if (o.linger > std::chrono::milliseconds::zero() && !o.metrics_port)
    return usage_error{"--linger needs --metrics-port"};
  if (o.shards > 1 && !o.store.starts_with("redis"))  // redis, rediss, redis(s)+cluster
    return usage_error{fmt::format("--shards {} needs a Redis store, saw --store {}://...",
                                   o.shards, o.store.substr(0, o.store.find(':')))};
  if (o.hold <= o.deadline)
    return usage_error{fmt::format(
        "--hold {}ms must exceed --deadline {}ms: a paid order must still find its units",
        o.hold.count(), o.deadline.count())};
  return o;
}

}  // namespace flash_sale_sim
