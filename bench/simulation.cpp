// flash_sale_sim on the memory store with --threads 1 and 2, in one run: the
// whole job (arrivals, admission, the engine, the report's stock check and
// orders audit) as a user runs it, in a child process each time.
//
//   scripts/bench simulation
//   build/release/bench/seckill_bench_simulation      # after building flash_sale_sim
//
// The sale: 200,000 buyers arriving at once over 100 SKUs of 1,000 units,
// instant payment that never fails, no admission limit, a 10 s deadline (so
// nobody times out for want of a thread): what it measures is how fast the
// purchases go through, `attempts_per_s` and `orders_per_s` from the
// report's own clock. Each repetition runs both thread counts (interleave
// them with --benchmark_enable_random_interleaving=true).
#include "support/read_file.hpp"

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <stdexcept>
#include <string>

#if !defined(SECKILL_FLASH_SALE_SIM)
#error "built with the path of flash_sale_sim (bench/CMakeLists.txt)"
#endif

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

using seckill::bench::read_file;

json run_sale(int threads) {
  seckill::detail::temp_dir dir("seckill-bench-simulation");
  const auto out = (dir.path() / "report.json").string();
  const auto err = (dir.path() / "stderr").string();
  const std::string command = fmt::format(
      "exec {} --threads {} --buyers 200000 --skus 100 --stock 1000 --payment-latency 0 "
      "--payment-failure 0 --payment-hang 0 --admission-rate 0 --deadline 10s --hold 20s "
      "--json --no-progress > {} 2> {}",
      SECKILL_FLASH_SALE_SIM, threads, out, err);
  seckill::detail::child_process p({{"/bin/sh", "-c", command}, {}, {}, true});
  if (!p.wait_for(5min) || !WIFEXITED(p.wait_status()) || WEXITSTATUS(p.wait_status()) != 0)
    throw std::runtime_error("flash_sale_sim failed: " + read_file(err) + read_file(out));
  auto j = json::parse(read_file(out), nullptr, false);
  if (!j.is_object()) throw std::runtime_error("flash_sale_sim's report does not parse");
  return j;
}

void bm_flash_sale_sim(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  double attempts = 0, orders = 0, seconds = 0;
  for (auto _ : state) {
    json r;
    try {
      r = run_sale(threads);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    if (r["timed_out"].get<long>() != 0 || r["failed"].get<long>() != 0 ||
        !r["oversell_check"]["ok"].get<bool>() || !r["orders_audit"]["ok"].get<bool>()) {
      state.SkipWithError(("a purchase failed or the check did not pass: " + r.dump()).c_str());
      return;
    }
    attempts += r["attempts"].get<double>();
    orders += r["succeeded"].get<double>();
    seconds += r["seconds"].get<double>();
  }
  state.counters["attempts_per_s"] = attempts / seconds;
  state.counters["orders_per_s"] = orders / seconds;
}

}  // namespace

BENCHMARK(bm_flash_sale_sim)
    ->Name("flash_sale_sim/memory")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("threads")
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
