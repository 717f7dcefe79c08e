// A helper process for the etcd integration tests, so that a test can kill -9
// (or stop) a real participant:
//   seckill_etcd_helper elect    <endpoints> <election prefix> <ttl s> <guard key> <name>
//     campaigns; once leading, every 20 ms writes "<token> <name> <seq>" to the
//     guard key in a transaction fenced by its leader key and guarded by the
//     guard's mod revision; prints "LEADER <token>", "ACT <token> OK|FAIL" and
//     "LOST" (then exits 3) when its session is lost.
//   seckill_etcd_helper register <endpoints> <service prefix> <ttl s> <id> <endpoint>
//     registers an instance and stays until killed; prints "REGISTERED <rev>".
//   seckill_etcd_helper claim    <endpoints> <prefix> <ttl s> <node name> <datacenter>
//     claims a worker id in the datacenter and stays until killed; prints
//     "CLAIMED <datacenter> <worker>" or "ERROR claim <message>".
//   seckill_etcd_helper duties <endpoints> <election> <ttl s> <store prefix> <name> <sku>...
//     runs leader_duties over an etcd_store (system clock) under <store prefix>
//     for the SKUs (reap period 250 ms, audit period 500 ms); prints
//     "LEADER <token>", "DEPOSED <token> <why>", "REAPED <n> <token>" (holds
//     given back since the last line) and "AUDIT <sku> FAILED <what>".
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/leader_duties.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/worker_claim.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {
namespace asio = boost::asio;
using namespace seckill::etcd;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

asio::awaitable<void> elect(client& c, std::string prefix, long ttl, std::string guard,
                            std::string name) {
  session s(c, {.ttl = std::chrono::seconds(ttl), .renew_after_loss = false});
  auto [sec, lease] = co_await s.async_start(tuple_awaitable);
  if (sec) {
    say("ERROR session " + sec.message());
    std::exit(2);
  }
  election e(s, prefix);
  auto [ec, me] = co_await e.async_campaign(name, tuple_awaitable);
  if (ec) {
    say("ERROR campaign " + ec.message());
    std::exit(2);
  }
  const auto token = me.create_revision;
  say("LEADER " + std::to_string(token));
  asio::steady_timer timer(c.get_executor());
  for (long seq = 0;; ++seq) {
    auto [gec, g] = co_await c.async_get(guard, tuple_awaitable);
    if (!gec) {
      txn_request t;
      t.compares.push_back(e.fence());
      t.compares.push_back(compare::mod_revision(guard, compare::result::equal,
                                                 g.kvs.empty() ? 0 : g.kvs.front().mod_revision));
      t.success.push_back(
          put_request{guard, std::to_string(token) + " " + name + " " + std::to_string(seq), {}});
      auto [tec, tr] = co_await c.async_txn(t, tuple_awaitable);
      say("ACT " + std::to_string(token) + (!tec && tr.succeeded ? " OK" : " FAIL"));
    }
    if (!e.is_leader()) {
      say("LOST");
      std::exit(3);
    }
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(tuple_awaitable);
  }
}

asio::awaitable<void> enroll(client& c, std::string prefix, long ttl, std::string id,
                             std::string endpoint) {
  static session s(c, {.ttl = std::chrono::seconds(ttl)});
  auto [sec, lease] = co_await s.async_start(tuple_awaitable);
  if (sec) {
    say("ERROR session " + sec.message());
    std::exit(2);
  }
  static registration r(s, prefix, service_instance{.id = id, .endpoint = endpoint});
  auto [ec, rev] = co_await r.async_register(tuple_awaitable);
  if (ec) {
    say("ERROR register " + ec.message());
    std::exit(2);
  }
  say("REGISTERED " + std::to_string(rev));
}

asio::awaitable<void> claim(client& c, std::string prefix, long ttl, std::string name,
                            unsigned datacenter) {
  static session s(c, {.ttl = std::chrono::seconds(ttl)});
  auto [sec, lease] = co_await s.async_start(tuple_awaitable);
  if (sec) {
    say("ERROR session " + sec.message());
    std::exit(2);
  }
  worker_claim_options o;
  o.prefix = prefix;
  o.node_name = name;
  o.datacenter = datacenter;
  static worker_claim w(s, o);
  auto [ec, pair] = co_await w.async_claim(tuple_awaitable);
  if (ec) {
    say("ERROR claim " + w.last_error());
    std::exit(2);
  }
  say("CLAIMED " + std::to_string(pair.datacenter) + " " + std::to_string(pair.worker));
}

asio::awaitable<void> duties(client& c, std::string election_prefix, long ttl,
                             std::string store_prefix, std::string name,
                             std::vector<std::string> skus) {
  using store_type = etcd_store<>;
  static store_type store(c.get_executor(), c.options(), {.prefix = store_prefix});
  leader_duties_options o;
  o.election = election_prefix;
  o.name = name;
  o.ttl = std::chrono::seconds(ttl);
  o.reap_period = std::chrono::milliseconds(250);
  o.audit_period = std::chrono::milliseconds(500);
  static leader_duties<store_type> d(c, store, skus, o);
  d.on_term([](std::int64_t token, bool leading, std::error_code why) {
    if (leading) {
      say("LEADER " + std::to_string(token));
    } else {
      say("DEPOSED " + std::to_string(token) + " " + why.message());
    }
  });
  d.on_audit_failed([](const std::string& sku, const audit_result& r) {
    say("AUDIT " + sku + " FAILED " + (r.error ? r.error.message() : "report") + " committed " +
        std::to_string(r.report.committed_units) + " recorded " +
        std::to_string(r.report.recorded_units));
  });
  d.async_run(asio::detached);
  asio::steady_timer timer(c.get_executor());
  std::uint64_t said = 0;
  for (;;) {
    const std::uint64_t now = d.reaper().reaped();
    if (now != said) {
      say("REAPED " + std::to_string(now - said) + " " + std::to_string(d.fencing_token()));
      said = now;
    }
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(tuple_awaitable);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (argc != 7 && !(mode == "duties" && argc >= 7)) {
    std::fprintf(stderr,
                 "usage: %s elect|register|claim <endpoints> <prefix> <ttl> <guard|id|name> "
                 "<name|endpoint|datacenter>\n"
                 "       %s duties <endpoints> <election prefix> <ttl> <store prefix> <name> "
                 "<sku>...\n",
                 argv[0], argv[0]);
    return 1;
  }
  asio::io_context io;
  client_options o;
  o.endpoints = parse_endpoints(argv[2]);
  o.call_timeout = std::chrono::milliseconds(1500);
  client c(io.get_executor(), o);
  const long ttl = std::strtol(argv[4], nullptr, 10);
  if (mode == "elect") {
    asio::co_spawn(io, elect(c, argv[3], ttl, argv[5], argv[6]), asio::detached);
  } else if (mode == "register") {
    asio::co_spawn(io, enroll(c, argv[3], ttl, argv[5], argv[6]), asio::detached);
  } else if (mode == "claim") {
    const auto dc = static_cast<unsigned>(std::strtoul(argv[6], nullptr, 10));
    asio::co_spawn(io, claim(c, argv[3], ttl, argv[5], dc), asio::detached);
  } else if (mode == "duties") {
    std::vector<std::string> skus(argv + 7, argv + argc);
    asio::co_spawn(io, duties(c, argv[3], ttl, argv[5], argv[6], std::move(skus)), asio::detached);
  } else {
    return 1;
  }
  io.run();
  return 0;
}
