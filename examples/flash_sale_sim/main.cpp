// flash_sale_sim: the flash sale the library exists for, in one process.
// Parses the flags, opens the store named by --store, runs the sale and
// prints the report (a table, or JSON with --json). Adding a backend is one
// branch in open_store_and_run(); the simulation itself is store-agnostic.
#include "common/store_url.hpp"
#include "options.hpp"
#include "simulation.hpp"

#include <seckill/etcd/etcd_store.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/sharded_store.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/url.hpp>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace flash_sale_sim {

namespace {

enum exit_code { ok = 0, stock_mismatch = 1, usage = 2, store_failure = 3 };

std::string ms(std::chrono::nanoseconds d) {
  return fmt::format("{:.2f} ms", static_cast<double>(d.count()) / 1e6);
}

void print_table(const report& r, const options& o) {
  fmt::print(
      "flash sale: {} buyers, {} SKUs x {} units, {} arrival, store {}\n\n", o.buyers, o.skus,
      o.stock,
      o.arrival == arrival_kind::burst ? "burst" : fmt::format("poisson {:g}/s", o.arrival_rate),
      seckill::redact_url(o.store));
  auto row = [](std::string_view name, std::int64_t n, std::int64_t of) {
    fmt::print("  {:<16}{:>10}  {:>6.2f}%\n", name, n,
               of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0);
  };
  row("attempts", r.attempts, r.attempts);
  row("succeeded", r.succeeded, r.attempts);
  row("sold out", r.sold_out, r.attempts);
  if (o.users > 0) row("limited", r.limited, r.attempts);
  row("rate limited", r.rate_limited, r.attempts);
  row("circuit open", r.circuit_open, r.attempts);
  row("timed out", r.timed_out, r.attempts);
  row("rolled back", r.rolled_back, r.attempts);
  row("failed", r.failed, r.attempts);
  if (r.compensated > 0) row("  compensated", r.compensated, r.attempts);
  if (r.not_started > 0)
    fmt::print("  {:<16}{:>10}  (interrupted before they came)\n", "not started", r.not_started);
  fmt::print("\n  {:<16}{:>10.0f} attempts/s  ({:.0f} orders/s, {:.3f} s)\n", "throughput",
             static_cast<double>(r.attempts) / r.seconds,
             static_cast<double>(r.succeeded) / r.seconds, r.seconds);
  fmt::print("  {:<16}p50 {}  p90 {}  p99 {}  max {}\n", "latency", ms(r.p50), ms(r.p90), ms(r.p99),
             ms(r.max));
  if (r.read_error.empty())
    fmt::print("\n  {:<16}initial {}  sold {}  committed {}  remaining {}  reserved {}\n", "stock",
               r.initial, r.sold, r.committed, r.remaining, r.reserved);
  else
    fmt::print("\n  {:<16}initial {}  sold {}  (the store could not be read back)\n", "stock",
               r.initial, r.sold);
  if (r.reaped > 0 || r.settle_wait > std::chrono::seconds(1))
    fmt::print("  {:<16}{} expired holds given back; the end waited {} ms for holds to settle\n",
               "reaper", r.reaped, r.settle_wait.count());
  if (r.stock_ok)
    fmt::print(
        "  {:<16}OK: committed == sold == initial - remaining, nothing negative, nothing left "
        "reserved\n",
        "oversell check");
  else
    fmt::print("  {:<16}FAILED: {}\n", "oversell check", r.stock_error);
  if (!r.read_error.empty()) return;
  if (r.orders_ok)
    fmt::print(
        "  {:<16}OK: {} orders recorded, {} units == {} committed; {} users over the "
        "per-user limit\n",
        "orders audit", r.orders_recorded, r.recorded_units, r.audited_committed,
        r.users_over_limit);
  else
    fmt::print("  {:<16}FAILED: {}\n", "orders audit", r.orders_error);
}

void print_json(const report& r, const options& o) {
  auto ns = [](std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; };
  nlohmann::ordered_json j = {
      {"config",
       {{"store", seckill::redact_url(o.store)},
        {"buyers", o.buyers},
        {"skus", o.skus},
        {"stock_per_sku", o.stock},
        {"quantity", o.quantity},
        {"users", o.users},
        {"per_user", o.per_user},
        {"arrival", o.arrival == arrival_kind::burst ? "burst" : "poisson"},
        {"arrival_rate", o.arrival_rate},
        {"payment_latency_ms", static_cast<double>(o.payment_latency.count()) / 1e3},
        {"payment_failure", o.payment_failure},
        {"payment_hang", o.payment_hang},
        {"admission_rate", o.admission_rate},
        {"admission_burst", o.admission_burst},
        {"deadline_ms", o.deadline.count()},
        {"hold_ms", o.hold.count()},
        {"reaper_period_ms", o.reaper_period.count()},
        {"threads", o.threads},
        {"seed", o.seed}}},
      {"attempts", r.attempts},
      {"succeeded", r.succeeded},
      {"sold_out", r.sold_out},
      {"limited", r.limited},
      {"rate_limited", r.rate_limited},
      {"circuit_open", r.circuit_open},
      {"timed_out", r.timed_out},
      {"rolled_back", r.rolled_back},
      {"failed", r.failed},
      {"compensated", r.compensated},
      {"not_started", r.not_started},
      {"seconds", r.seconds},
      {"attempts_per_second", static_cast<double>(r.attempts) / r.seconds},
      {"orders_per_second", static_cast<double>(r.succeeded) / r.seconds},
      {"latency_ms",
       {{"p50", ns(r.p50)}, {"p90", ns(r.p90)}, {"p99", ns(r.p99)}, {"max", ns(r.max)}}},
      {"stock",
       {{"initial", r.initial},
        {"sold", r.sold},
        {"remaining", r.remaining},
        {"reserved", r.reserved},
        {"committed", r.committed},
        {"read_error", r.read_error}}},
      {"reaper", {{"reaped", r.reaped}, {"settle_wait_ms", r.settle_wait.count()}}},
      {"oversell_check", {{"ok", r.stock_ok}, {"error", r.stock_error}}},
      {"orders_audit",
       {{"ok", r.orders_ok},
        {"orders_recorded", r.orders_recorded},
        {"recorded_units", r.recorded_units},
        {"committed", r.audited_committed},
        {"users_over_limit", r.users_over_limit},
        {"error", r.orders_error}}},
  };
  fmt::print("{}\n", j.dump(2));
}

template <class Store>
report run_with_admission(Store& store, boost::asio::io_context& io, const options& o,
                          bool progress) {
  if (o.admission_rate > 0) {
    seckill::token_bucket<> bucket{o.admission_rate, o.admission_burst};
    return run_simulation(store, io, bucket, o, progress);
  }
  seckill::unlimited everyone;
  return run_simulation(store, io, everyone, o, progress);
}

// Deletes every key of `sku` on a Redis Cluster: one script on the master of
// the SKU's slot SCANs that node for the hash tag and deletes what it finds.
void clear_sku_keys(seckill::redis::cluster_client& conn, const std::string& sku) {
  seckill::redis::request clear;
  clear.push("EVAL",
             "local cursor, n = '0', 0 repeat local r = redis.call('SCAN', cursor, 'MATCH', "
             "ARGV[1], 'COUNT', 1000) cursor = r[1] for _, k in ipairs(r[2]) do "
             "redis.call('DEL', k) n = n + 1 end until cursor == '0' return n",
             1, "seckill:{" + sku + "}:stock", "seckill:{" + sku + "}:*");
  std::promise<std::pair<std::error_code, std::vector<seckill::redis::value>>> cleared;
  conn.async_exec(std::move(clear), [&](std::error_code ec, std::vector<seckill::redis::value> v) {
    cleared.set_value({ec, std::move(v)});
  });
  auto [ec, replies] = cleared.get_future().get();
  if (!ec && (replies.size() != 1 || replies[0].is_error()))
    ec = make_error_code(seckill::errc::server_error);
  if (ec) throw seckill::error(ec, "clearing the keys of " + sku);
}

// Deletes every key of `sku` (stock, holds, and the order records an
// interrupted run may have left held), with SCAN over its hash tag.
template <class Connection>
void clear_sku_keys(Connection& conn, const std::string& sku) {
  const std::string pattern = "seckill:{" + sku + "}:*";
  std::string cursor = "0";
  do {
    seckill::redis::request scan;
    scan.push("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
    std::promise<std::pair<std::error_code, std::vector<seckill::redis::value>>> scanned;
    conn.async_exec(scan, [&](std::error_code ec, std::vector<seckill::redis::value> v) {
      scanned.set_value({ec, std::move(v)});
    });
    auto [ec, replies] = scanned.get_future().get();
    if (!ec && (replies.size() != 1 || replies[0].elements.size() != 2))
      ec = make_error_code(seckill::errc::protocol_error);
    if (ec) throw seckill::error(ec, "clearing the keys of " + sku);
    cursor = replies[0].elements[0].text;
    const auto& keys = replies[0].elements[1].elements;
    if (keys.empty()) continue;
    std::vector<std::string> names;
    for (const auto& k : keys) names.push_back(k.text);
    seckill::redis::request del;
    del.push_range("DEL", names);
    std::promise<std::error_code> deleted;
    conn.async_exec(
        del, [&](std::error_code e, std::vector<seckill::redis::value>) { deleted.set_value(e); });
    if (const auto e = deleted.get_future().get())
      throw seckill::error(e, "clearing the keys of " + sku);
  } while (cursor != "0");
}

// Redis: the store runs on a thread of its own (its connection always has a
// read pending); completions come back to the simulation's io_context. The
// SKUs' stock and holds keys are cleared first, so a rerun starts afresh.
// The same on a Redis Cluster (over cluster_client). With --shards K each
// SKU's stock is split over K shards (sharded_store.hpp; K = 1 is
// redis_store itself).
template <class Connection>
report run_on_redis(boost::asio::io_context& io,
                    const typename seckill::redis::basic_redis_store<Connection>::config_type& cfg,
                    const options& o, bool progress) {
  using Store = seckill::redis::basic_sharded_store<Connection>;
  boost::asio::io_context store_io;
  auto guard = boost::asio::make_work_guard(store_io);
  std::thread store_thread([&] { store_io.run(); });
  Store store(store_io.get_executor(), cfg, {.default_shards = o.shards, .shards = {}});
  struct stopper {
    Store& store;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type>& guard;
    std::thread& thread;
    ~stopper() {
      store.close();
      guard.reset();
      thread.join();
    }
  } stop{store, guard, store_thread};
  std::promise<std::error_code> connected;
  store.async_connect([&](std::error_code ec) { connected.set_value(ec); });
  if (const auto ec = connected.get_future().get())
    throw seckill::error(ec, fmt::format("--store {}: {}", seckill::redact_url(o.store),
                                         store.store().connection().last_error()));
  for (std::int64_t i = 0; i < o.skus; ++i)
    for (int k = 0; k < o.shards; ++k)
      clear_sku_keys(store.store().connection(), Store::shard_sku(sku_name(i), k, o.shards));
  return run_with_admission(store, io, o, progress);
}

// etcd: the store works on a strand of the simulation's io_context; the
// simulation's keys (under "flash_sale_sim/") are deleted first.
report run_on_etcd(boost::asio::io_context& io, const options& o, bool progress) {
  seckill::etcd::etcd_store<> store(io.get_executor(), seckill_examples::etcd_options(o.store),
                                    {.prefix = "flash_sale_sim/"});
  std::optional<std::pair<std::error_code, std::string>> cleared;
  seckill::etcd::delete_options everything;
  everything.prefix = true;
  store.get_client().async_delete("flash_sale_sim/", everything,
                                  [&](std::error_code e, seckill::etcd::delete_result r) {
                                    cleared.emplace(e, r.error_message);
                                  });
  io.restart();
  while (!cleared) io.run_one();
  io.restart();
  if (cleared->first)
    throw seckill::error(cleared->first, fmt::format("--store {}: {}", seckill::redact_url(o.store),
                                                     cleared->second));
  return run_with_admission(store, io, o, progress);
}

// The URL-scheme dispatcher: one branch per backend.
report open_store_and_run(boost::asio::io_context& io, const options& o, bool progress) {
  switch (seckill_examples::store_kind_of(o.store)) {
    case seckill_examples::store_kind::memory: {
      seckill::memory_store<> store{
          io.get_executor(), {.orders_per_sku = static_cast<std::size_t>(o.buyers / o.skus + 16)}};
      return run_with_admission(store, io, o, progress);
    }
    case seckill_examples::store_kind::redis:
      return run_on_redis<seckill::redis::connection>(io, seckill_examples::redis_config(o.store),
                                                      o, progress);
    case seckill_examples::store_kind::redis_cluster:
      return run_on_redis<seckill::redis::cluster_client>(
          io, seckill_examples::redis_cluster_config(o.store), o, progress);
    case seckill_examples::store_kind::etcd:
      return run_on_etcd(io, o, progress);
  }
  throw seckill::error(seckill::errc::invalid_argument, "--store: no such store");
}

}  // namespace

int main(int argc, char** argv) {
  catch_interrupts();  // before anything: a SIGINT during the set-up still gets its report
  const auto parsed = parse_options(argc, argv);
  if (std::holds_alternative<help_requested>(parsed)) {
    fmt::print("{}", help_text(argc > 0 ? argv[0] : "flash_sale_sim"));
    return ok;
  }
  if (const auto* e = std::get_if<usage_error>(&parsed)) {
    fmt::print(stderr, "flash_sale_sim: {}\n", e->message);
    return usage;
  }
  const auto& o = std::get<options>(parsed);
  const bool progress = o.progress.value_or(::isatty(STDERR_FILENO) == 1 && !o.json);
  report r;
  std::optional<observability> obs;
  try {
    obs.emplace(o);  // with --metrics-port, serves /metrics and /health from now on
    if (obs->serving())
      fmt::print(stderr, "flash_sale_sim: metrics on http://127.0.0.1:{}/metrics\n", obs->port());
    const observability::scope current(*obs);
    boost::asio::io_context io{1};  // lane 0; run_simulation adds one per further thread
    r = open_store_and_run(io, o, progress);
  } catch (const seckill::error& e) {
    fmt::print(stderr, "flash_sale_sim: {}\n", e.what());
    return e.code() == seckill::errc::invalid_argument ? usage : store_failure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "flash_sale_sim: {}\n", e.what());
    return store_failure;
  }
  if (o.json)
    print_json(r, o);
  else
    print_table(r, o);
  std::fflush(stdout);
  obs->linger(o.linger);
  if (!r.read_error.empty()) return store_failure;
  return r.stock_ok && r.orders_ok ? ok : stock_mismatch;
}

}  // namespace flash_sale_sim

int main(int argc, char** argv) { return flash_sale_sim::main(argc, argv); }
