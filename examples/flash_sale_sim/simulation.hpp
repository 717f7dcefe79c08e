#pragma once
// run_simulation(store, io, options): the flash sale itself, on any stock_store.

#include "observability.hpp"
#include "options.hpp"

#include "common/simulated_payment.hpp"

#include <seckill/id/snowflake.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/store/reaper.hpp>
#include <seckill/store/reconcile.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace flash_sale_sim {

namespace asio = boost::asio;

/// What a run produced: counts, timings and the stock check.
struct report {
  std::int64_t attempts = 0;
  std::int64_t succeeded = 0;
  std::int64_t sold_out = 0;
  std::int64_t limited = 0;  // refused: the buyer's per-user limit for the SKU was reached
  std::int64_t rate_limited = 0;
  std::int64_t circuit_open = 0;
  std::int64_t timed_out = 0;
  std::int64_t rolled_back = 0;  // payment failed, units given back
  std::int64_t failed = 0;       // anything else (store errors, commit refused, ...)
  std::int64_t compensated = 0;  // of the failed: paid, then refused by the store (refund due)
  std::int64_t not_started =
      0;  // buyers that never came: the run was interrupted (SIGINT, SIGTERM)
  double seconds = 0;
  std::chrono::nanoseconds p50{}, p90{}, p99{}, max{};
  // Stock, summed over the SKUs, read from the store after the run.
  std::int64_t initial = 0;
  std::int64_t remaining = 0;
  std::int64_t reserved = 0;
  std::int64_t committed = 0;
  std::int64_t sold = 0;  // units of the succeeded purchases
  bool negative_seen = false;
  bool stock_ok = false;
  std::string stock_error;   // why the check failed, empty when it passed
  std::string read_error;    // what could not be read back from the store, empty when all was
  std::uint64_t reaped = 0;  // expired holds the reaper gave back
  std::chrono::milliseconds settle_wait{
      0};  // how long the end waited for holds to pass and be reaped
  // The audit of the store's recorded orders (async_reconcile, summed over the SKUs).
  std::int64_t orders_recorded = 0;    // committed orders the store recorded
  std::int64_t recorded_units = 0;     // their units
  std::int64_t audited_committed = 0;  // the units committed, read after the orders
  std::int64_t users_over_limit = 0;   // users whose recorded units exceed --per-user
  std::string first_over_limit;        // the first of them, "sku user units", for the report
  bool orders_ok = false;
  std::string orders_error;  // why the audit failed, empty when it passed
};

/// Payments that take a random time, fail or never answer (--payment-*).
inline seckill_examples::simulated_payment make_payment(asio::any_io_executor ex,
                                                        const options& o) {
  return {std::move(ex),
          {.latency = o.payment_latency,
           .failure = o.payment_failure,
           .hang = o.payment_hang,
           .seed = o.seed}};
}

inline std::string sku_name(std::int64_t i) { return fmt::format("sku-{:04}", i); }

/// Set by SIGINT and SIGTERM once `catch_interrupts()` ran (main does it
/// first thing): no new buyers come; those in flight finish, then the report.
inline std::atomic<bool> interrupted{false};
inline void catch_interrupts() {
  static_assert(std::atomic<bool>::is_always_lock_free);  // so the handler may store it
  auto handler = [](int) { interrupted.store(true); };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

namespace detail {

// Counts outcomes as purchases complete; read by the progress bar.
struct tally {
  std::atomic<std::int64_t> done{0}, succeeded{0}, sold_out{0}, limited{0}, rate_limited{0},
      circuit_open{0}, timed_out{0}, rolled_back{0}, failed{0}, compensated{0}, started{0};
  std::atomic<bool> negative_seen{false};
};

inline void progress_bar(const tally& t, std::int64_t total, const std::atomic<bool>& stop) {
  auto draw = [&] {
    const auto done = t.done.load();
    const int width = 40;
    const int filled = static_cast<int>(width * done / std::max<std::int64_t>(total, 1));
    std::fprintf(stderr, "\r[%s%s] %lld/%lld  sold %lld",
                 std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(),
                 static_cast<long long>(done), static_cast<long long>(total),
                 static_cast<long long>(t.succeeded.load()));
    std::fflush(stderr);
  };
  while (!stop.load()) {
    draw();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  draw();
  std::fprintf(stderr, "\n");
}

}  // namespace detail

/// The end of a run: reads every SKU back (retrying a store that is still
/// recovering); while units are still reserved, lets the holds pass and the
/// reaper give them back (at most the hold plus two reaper periods); then
/// checks the stock against what the buyers were told. A SKU that cannot be
/// read is named in `rep.read_error`, and the check fails with it.
template <class Store>
void settle_and_check(Store& store, asio::io_context& io, seckill::hold_reaper<Store>& reaper,
                      const std::vector<std::string>& skus, const options& o, observability& obs,
                      report& rep) {
  const auto settle_start = std::chrono::steady_clock::now();
  const auto settle_limit = settle_start + o.hold + 2 * o.reaper_period;
  const auto read_limit = std::chrono::seconds(10);
  auto read_all = [&](report& into) -> asio::awaitable<void> {
    asio::steady_timer pause(co_await asio::this_coro::executor);
    into.remaining = into.reserved = into.committed = 0;
    into.negative_seen = false;
    into.read_error.clear();
    for (const auto& sku : skus) {
      const auto first_try = std::chrono::steady_clock::now();
      for (;;) {
        auto [ec, level] = co_await store.async_stock(sku, asio::as_tuple(asio::use_awaitable));
        if (!ec) {
          if (level.remaining < 0 || level.reserved < 0 || level.committed < 0)
            into.negative_seen = true;
          into.remaining += level.remaining;
          into.reserved += level.reserved;
          into.committed += level.committed;
          obs.stock_read(sku, {}, level.remaining);
          break;
        }
        obs.stock_read(sku, ec, 0);
        if (std::chrono::steady_clock::now() - first_try >= read_limit) {
          into.read_error =
              fmt::format("could not read the stock of {} back: {} (retried for {} s)", sku,
                          ec.message(), read_limit.count());
          co_return;
        }
        pause.expires_after(std::chrono::milliseconds(200));
        auto [wait_ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)wait_ec;
      }
    }
  };
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(co_await asio::this_coro::executor);
        for (;;) {
          co_await read_all(rep);
          if (!rep.read_error.empty() || rep.reserved == 0 ||
              std::chrono::steady_clock::now() >= settle_limit)
            co_return;
          pause.expires_after(o.reaper_period);
          auto [wait_ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
          (void)wait_ec;
          auto [reap_ec, n] = co_await reaper.async_reap_once(asio::as_tuple(asio::use_awaitable));
          (void)reap_ec;
          (void)n;
        }
      },
      asio::detached);
  io.restart();
  io.run();
  io.restart();
  rep.settle_wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - settle_start);

  if (!rep.read_error.empty())
    rep.stock_error = rep.read_error;
  else if (rep.negative_seen)
    rep.stock_error = "a SKU's stock went negative";
  else if (rep.committed != rep.sold)
    rep.stock_error = fmt::format("the store committed {} units but buyers were sold {}",
                                  rep.committed, rep.sold);
  else if (rep.sold != rep.initial - rep.remaining - rep.reserved)
    rep.stock_error = fmt::format("sold {} != initial {} - remaining {} - reserved {}", rep.sold,
                                  rep.initial, rep.remaining, rep.reserved);
  else if (rep.reserved != 0)
    rep.stock_error = fmt::format(
        "{} units are still reserved {} ms after every purchase ended (hold {} ms, "
        "reaper period {} ms)",
        rep.reserved, rep.settle_wait.count(), o.hold.count(), o.reaper_period.count());
  rep.stock_ok = rep.stock_error.empty();
}

/// The audit of the orders: async_reconcile on every SKU once nothing is in
/// flight. The units committed must equal those of the recorded orders, and
/// no user may have bought more than the SKU's per-user limit.
template <class Store>
void reconcile_orders(Store& store, asio::io_context& io, const std::vector<std::string>& skus,
                      report& rep) {
  std::string error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (const auto& sku : skus) {
          auto [ec, audit] =
              co_await seckill::async_reconcile(store, sku, asio::as_tuple(asio::use_awaitable));
          if (ec) {
            error = fmt::format("could not audit the orders of {}: {}", sku, ec.message());
            co_return;
          }
          rep.orders_recorded += static_cast<std::int64_t>(audit.orders);
          rep.recorded_units += audit.recorded_units;
          rep.audited_committed += audit.committed_units;
          // Per SKU: one SKU's missing order must not hide behind another's extra one.
          if (audit.committed_units != audit.recorded_units && error.empty())
            error =
                fmt::format("{}: the store committed {} units but its {} recorded orders hold {}",
                            sku, audit.committed_units, audit.orders, audit.recorded_units);
          rep.users_over_limit += static_cast<std::int64_t>(audit.users_over_limit.size());
          if (!audit.users_over_limit.empty() && rep.first_over_limit.empty())
            rep.first_over_limit =
                fmt::format("{} {} bought {} (limit {})", sku, audit.users_over_limit[0].first,
                            audit.users_over_limit[0].second, audit.per_user_limit);
        }
      },
      asio::detached);
  io.restart();
  io.run();
  io.restart();
  if (!error.empty())
    rep.orders_error = error;
  else if (rep.recorded_units != rep.audited_committed)
    rep.orders_error =
        fmt::format("the store committed {} units but its {} recorded orders hold {}",
                    rep.audited_committed, rep.orders_recorded, rep.recorded_units);
  else if (rep.users_over_limit > 0)
    rep.orders_error = fmt::format("{} users bought more than the per-user limit, e.g. {}",
                                   rep.users_over_limit, rep.first_over_limit);
  rep.orders_ok = rep.orders_error.empty();
}

/// Runs the sale described by `o` on `store`, whose completions run on `io`.
/// Sets each SKU's stock first; returns the report, stock check included.
template <class Store, class Limiter>
report run_simulation(Store& store, asio::io_context& io, Limiter& limiter, const options& o,
                      bool show_progress) {
  static_assert(seckill::stock_store<Store>);
  report rep;
  rep.attempts = o.buyers;
  rep.initial = o.skus * o.stock;

  std::vector<std::string> skus;
  for (std::int64_t i = 0; i < o.skus; ++i) skus.push_back(sku_name(i));

  // Set the policy and the stock (and fail loudly when the store refuses).
  std::error_code setup_error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        seckill::sku_policy policy;
        policy.per_user_limit = o.per_user;
        for (const auto& sku : skus) {
          auto [pec] =
              co_await store.async_set_policy(sku, policy, asio::as_tuple(asio::use_awaitable));
          if (pec) {
            setup_error = pec;
            co_return;
          }
          auto [ec] =
              co_await store.async_set_stock(sku, o.stock, asio::as_tuple(asio::use_awaitable));
          if (ec) {
            setup_error = ec;
            co_return;
          }
        }
      },
      asio::detached);
  io.run();
  io.restart();
  if (setup_error) throw seckill::error(setup_error, "setting the stock");

  seckill::circuit_breaker<> breaker{seckill::breaker_options{}};
  seckill::snowflake<> ids{0, 1};
  auto payment = make_payment(io.get_executor(), o);
  seckill::memory_orders orders{
      static_cast<std::size_t>(std::min<std::int64_t>(o.buyers, o.skus * o.stock))};
  observability& obs = observability::current();
  seckill::purchase_engine<Store, Limiter, seckill::circuit_breaker<>, seckill::snowflake<>,
                           seckill_examples::simulated_payment, seckill::memory_orders,
                           seckill::obs::purchase_hooks<>>
      engine{store,
             limiter,
             breaker,
             ids,
             payment,
             orders,
             {.deadline = o.deadline, .hold = o.hold},
             seckill::obs::purchase_hooks<>(obs.metrics())};

  detail::tally t;
  std::atomic<bool> arrivals_over{false}, finished{false};
  auto background = asio::make_strand(io);  // the reaper and its stop
  asio::cancellation_signal stop_reaper;
  seckill::hold_reaper<Store> reaper(store, skus, {.period = o.reaper_period});
  // Lanes: --threads N runs N io_contexts, one thread each (shard per core).
  // The first is `io`, where the store, the reaper and the sampler live;
  // buyer i runs on lane i % N, and its purchase with it (async_purchase on
  // the lane's executor), so a purchase never crosses threads.
  std::vector<std::unique_ptr<asio::io_context>> extra_lanes;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> lane_guards;
  std::vector<asio::any_io_executor> lanes{io.get_executor()};
  for (int i = 1; i < o.threads; ++i) {
    extra_lanes.push_back(std::make_unique<asio::io_context>(1));
    lane_guards.push_back(asio::make_work_guard(*extra_lanes.back()));
    lanes.push_back(extra_lanes.back()->get_executor());
  }
  // Once every buyer that came has finished: the sale's background work stops.
  auto stop_background = [&] {
    if (finished.exchange(true)) return;
    asio::post(background, [&] { stop_reaper.emit(asio::cancellation_type::terminal); });
    for (auto& g : lane_guards) g.reset();  // the other lanes' threads end once idle
  };
  // -1: the buyer never came (an interrupted run)
  std::vector<std::int64_t> latencies(static_cast<std::size_t>(o.buyers), -1);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<std::int64_t> pick(0, o.skus - 1);
  std::vector<std::int32_t> choice(static_cast<std::size_t>(o.buyers));
  for (auto& c : choice) c = static_cast<std::int32_t>(pick(rng));
  // Named buyers: each purchase by one of --users users, with a request id of its own.
  std::vector<std::int32_t> who(o.users > 0 ? static_cast<std::size_t>(o.buyers) : 0);
  if (o.users > 0) {
    std::uniform_int_distribution<std::int64_t> pick_user(0, o.users - 1);
    for (auto& u : who) u = static_cast<std::int32_t>(pick_user(rng));
  }

  auto buyer = [&](std::int64_t i) -> asio::awaitable<void> {
    const auto t0 = std::chrono::steady_clock::now();
    seckill::purchase_request req{
        .sku = skus[static_cast<std::size_t>(choice[static_cast<std::size_t>(i)])],
        .quantity = o.quantity};
    std::string user, request_id;  // live in this frame until the purchase completes
    if (o.users > 0) {
      user = fmt::format("user-{}", who[static_cast<std::size_t>(i)]);
      request_id = fmt::format("req-{}", i);
      req.user = user;
      req.request_id = request_id;
    }
    auto [ec, r] = co_await engine.async_purchase(co_await asio::this_coro::executor, req,
                                                  asio::as_tuple(asio::use_awaitable));
    latencies[static_cast<std::size_t>(i)] = (std::chrono::steady_clock::now() - t0).count();
    using seckill::errc;
    if (!ec && r.final_state == seckill::purchase_state::succeeded)
      ++t.succeeded;
    else if (ec == errc::sold_out)
      ++t.sold_out;
    else if (ec == errc::purchase_limited)
      ++t.limited;
    else if (ec == errc::rate_limited)
      ++t.rate_limited;
    else if (ec == errc::circuit_open)
      ++t.circuit_open;
    else if (r.final_state == seckill::purchase_state::timed_out)
      ++t.timed_out;
    else if (r.final_state == seckill::purchase_state::rolled_back)
      ++t.rolled_back;
    else
      ++t.failed;
    if (r.compensated) ++t.compensated;
    if (++t.done == t.started.load() && arrivals_over.load()) stop_background();
  };

  // Arrivals: everyone at t=0, or a Poisson process at --arrival-rate.
  std::vector<std::chrono::nanoseconds> arrival(static_cast<std::size_t>(o.buyers));
  if (o.arrival == arrival_kind::poisson) {
    std::exponential_distribution<double> gap(o.arrival_rate);
    double at = 0;
    for (auto& a : arrival) {
      at += gap(rng);
      a = std::chrono::nanoseconds(static_cast<std::int64_t>(at * 1e9));
    }
  }

  // Each lane brings its own buyers (i % lanes == its index), so a buyer's
  // coroutine frames are allocated and freed on one thread.
  const auto start = std::chrono::steady_clock::now();
  std::atomic<std::size_t> lanes_arriving{lanes.size()};
  for (std::size_t lane = 0; lane < lanes.size(); ++lane) {
    asio::co_spawn(
        lanes[lane],
        [&, lane]() -> asio::awaitable<void> {
          asio::steady_timer timer(co_await asio::this_coro::executor);
          for (auto i = static_cast<std::int64_t>(lane); i < o.buyers && !interrupted.load();
               i += static_cast<std::int64_t>(lanes.size())) {
            const auto due = start + arrival[static_cast<std::size_t>(i)];
            if (due > std::chrono::steady_clock::now() + std::chrono::microseconds(200)) {
              timer.expires_at(due);
              auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
              if (ec || interrupted.load()) break;
            }
            ++t.started;
            asio::co_spawn(lanes[lane], buyer(i), asio::detached);
          }
          if (lanes_arriving.fetch_sub(1) == 1) {
            arrivals_over = true;
            if (t.done.load() == t.started.load()) stop_background();
          }
        },
        asio::detached);
  }

  // The reaper gives back the holds of purchases that could not give them
  // back themselves (a store that stayed silent past the hold).
  reaper.async_run(asio::bind_cancellation_slot(
      stop_reaper.slot(), asio::bind_executor(background, [](std::error_code) {})));
  asio::co_spawn(io, obs.sample(store, breaker, skus, [&] { return finished.load(); }),
                 asio::detached);
  std::atomic<bool> stop_progress{false};
  std::thread progress;
  if (show_progress)
    progress = std::thread([&] { detail::progress_bar(t, o.buyers, stop_progress); });
  std::vector<std::thread> threads;
  for (auto& lane : extra_lanes) threads.emplace_back([&lane] { lane->run(); });
  io.run();
  for (auto& th : threads) th.join();
  const auto stop = std::chrono::steady_clock::now();
  stop_progress = true;
  if (progress.joinable()) progress.join();
  io.restart();

  rep.seconds = std::chrono::duration<double>(stop - start).count();
  rep.attempts = t.started;
  rep.not_started = o.buyers - t.started;
  rep.succeeded = t.succeeded;
  rep.sold_out = t.sold_out;
  rep.limited = t.limited;
  rep.rate_limited = t.rate_limited;
  rep.circuit_open = t.circuit_open;
  rep.timed_out = t.timed_out;
  rep.rolled_back = t.rolled_back;
  rep.failed = t.failed;
  rep.compensated = t.compensated;
  rep.sold = rep.succeeded * o.quantity;

  std::erase_if(latencies, [](std::int64_t l) { return l < 0; });
  if (latencies.empty()) latencies.push_back(0);
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    const auto idx =
        static_cast<std::size_t>(std::ceil(p * static_cast<double>(latencies.size()))) - 1;
    return std::chrono::nanoseconds(latencies[std::min(idx, latencies.size() - 1)]);
  };
  rep.p50 = pct(0.50);
  rep.p90 = pct(0.90);
  rep.p99 = pct(0.99);
  rep.max = std::chrono::nanoseconds(latencies.back());

  settle_and_check(store, io, reaper, skus, o, obs, rep);
  rep.reaped = reaper.reaped();
  if (rep.read_error.empty()) reconcile_orders(store, io, skus, rep);
  return rep;
}

}  // namespace flash_sale_sim
