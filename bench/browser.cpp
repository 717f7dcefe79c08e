// Reaction time of the grabber in a real headless Chromium: from the moment the
// demo shop pushes a restock to the page (the page's stock flips) to the moment
// the order request arrives at the shop server. Both instants are read by the
// shop server on one steady clock. The stages, on the same clock, from the
// grabber's events: the flip reaching C++ (seen_ms: push, page, observer,
// binding, DevTools), the decision (decide_ms: the offers' snapshot and the
// strategy), and the actions up to the request's arrival (act_ms: select, fill,
// the click's checks, moves, press gap and release, the page's fetch).
// Also: the cost of one evaluate round trip.
//
//   build/release/bench/seckill_bench_browser   (or scripts/bench browser)
#include "../examples/shop/shop_server.hpp"
#include "support/alloc_counter.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace sb = seckill::browser;
using namespace std::chrono_literals;

struct session {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  sb::chromium browser = sb::chromium::launch(io.get_executor());
  sb::page page;
  shop::shop_server shop;

  session() {
    auto [eo, p] = sb::page::async_open(browser.connection(), asio::use_future).get();
    if (eo) throw std::runtime_error("open: " + eo.message());
    page = std::move(p);
    auto [en, r] = page.async_navigate(shop.url(), asio::use_future).get();
    if (en) throw std::runtime_error("navigate: " + en.message());
    for (int i = 0; i < 500 && shop.listeners() == 0; ++i) std::this_thread::sleep_for(10ms);
  }
  ~session() {
    browser.shutdown();
    work.reset();
    io.stop();
    thread.join();
  }
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// One restock per trial; a fresh grabber run each time.
void BM_reaction_stock_flip_to_order(benchmark::State& state) {
  session s;
  const int trials = static_cast<int>(state.range(0));
  std::vector<double> ms, seen_ms, decide_ms, act_ms;
  std::size_t allocations = 0;
  seckill::token_bucket<> pace(50, 10);  // the pace never delays a single order here
  const sb::priority_strategy strategy(sb::parse_strategy("want = sku:veg-box\n"));
  for (auto _ : state) {
    for (int t = 0; t < trials; ++t) {
      s.shop.sell_out();
      s.shop.clear_orders();
      std::this_thread::sleep_for(50ms);  // the page shows "Out of stock"
      std::promise<void> watching;
      auto ready = watching.get_future();
      std::optional<std::chrono::steady_clock::time_point> seen,
          decided;  // written on the page's strand
      sb::grabber_options opts;
      opts.on_event = [&watching, &seen, &decided, armed = true](const sb::grab_event& e) mutable {
        if (armed && e.step == sb::grab_step::watching) {
          armed = false;
          watching.set_value();
        }
        if (!armed && !seen && e.step == sb::grab_step::stock_changed &&
            e.detail.find("'In stock'") != std::string::npos) {
          seen = e.at;
        }
        if (!decided && e.step == sb::grab_step::decided) decided = e.at;
      };
      sb::grabber g(s.page, strategy, pace, opts);
      auto run = g.async_run(10s, asio::use_future);
      ready.wait();
      std::this_thread::sleep_for(20ms);
      const auto a0 = seckill::bench::allocations();
      s.shop.set_stock("veg-box", 1);
      if (!s.shop.wait_for_orders(1, 10s)) {
        state.SkipWithError("no order arrived within 10 s");
        return;
      }
      auto [ec, res] = run.get();
      allocations += seckill::bench::allocations() - a0;
      const auto flip = s.shop.last_push();
      const auto orders = s.shop.orders();
      if (ec || !flip || orders.size() != 1) {
        state.SkipWithError("grab failed");
        return;
      }
      auto span = [](auto from, auto to) {
        return std::chrono::duration<double, std::milli>(to - from).count();
      };
      ms.push_back(span(*flip, orders[0].received));
      if (seen && decided) {  // run.get() above: the run and its events are over
        seen_ms.push_back(span(*flip, *seen));
        decide_ms.push_back(span(*seen, *decided));
        act_ms.push_back(span(*decided, orders[0].received));
      }
    }
  }
  state.counters["trials"] = static_cast<double>(ms.size());
  state.counters["p50_ms"] = percentile(ms, 0.50);
  state.counters["p99_ms"] = percentile(ms, 0.99);
  state.counters["min_ms"] = percentile(ms, 0.0);
  state.counters["max_ms"] = percentile(ms, 1.0);
  if (!seen_ms.empty()) {
    state.counters["seen_p50_ms"] = percentile(seen_ms, 0.50);
    state.counters["decide_p50_ms"] = percentile(decide_ms, 0.50);
    state.counters["act_p50_ms"] = percentile(act_ms, 0.50);
    state.counters["act_p99_ms"] = percentile(act_ms, 0.99);
  }
  state.counters["allocs_per_grab"] =
      static_cast<double>(allocations) / static_cast<double>(ms.size());
}
BENCHMARK(BM_reaction_stock_flip_to_order)->Arg(40)->Iterations(1)->Unit(benchmark::kMillisecond);

// One Runtime.evaluate round trip ("1 + 1") through the connection's strand.
void BM_evaluate_round_trip(benchmark::State& state) {
  session s;
  std::vector<double> us;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto [ec, v] = s.page.async_evaluate("1 + 1", asio::use_future).get();
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (ec) {
      state.SkipWithError("evaluate failed");
      return;
    }
    benchmark::DoNotOptimize(v);
  }
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
}
BENCHMARK(BM_evaluate_round_trip)->Iterations(500)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
