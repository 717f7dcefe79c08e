// seckill_server under load, with the Redis ceiling measured in the same run.
//
//   scripts/bench server
//   build/release/bench/seckill_bench_server        # after building seckill_server, seckill_load
//
// The bench starts its own redis-server on a free 127.0.0.1 port (no
// persistence) and, for each benchmark nodes:N (N = 1, 2, 3), N seckill_server
// processes over it (--threads 2 each, simulated instant payment, admission
// off, no per-user limit), then in this order:
//   1. the ceiling: redis-benchmark, 64 clients unpipelined (like 64
//      keep-alive connections), running the store's reserve by EVALSHA on a
//      SKU of its own (stocked through a node with curl);
//   2. saturated: seckill_load sends 60,000 purchases of one SKU at once over
//      64 keep-alive connections in all (64 / N per node) and waits for every
//      answer: `purchases_per_s`;
//   3. paced: seckill_load at 70% of that rate for 5 s: `p50_ms`, `p99_ms`
//      (from each request's intended send time: queueing included).
// A purchase is two store scripts (reserve, then commit with its order), so
// `of_ceiling` compares 2 x purchases/s with the reserve ceiling.
// Where the CPU goes, per purchase of the saturated run, from /proc (the
// servers, redis-server) and getrusage (seckill_load): `node_cpu_us` (all
// nodes), `redis_cpu_us`, `load_cpu_us`; `redis_cpu_us_per_reserve` is
// redis-server's CPU per reserve during the ceiling run.
#include "support/read_file.hpp"
#include "support/redis_ceiling.hpp"

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include "redis/redis_server.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if !defined(SECKILL_SERVER) || !defined(SECKILL_LOAD)
#error "built with the paths of seckill_server and seckill_load (bench/CMakeLists.txt)"
#endif

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr int total_connections = 64;
constexpr int saturated_requests = 60'000;
constexpr double paced_share = 0.7;
constexpr auto paced_duration = 5s;
constexpr const char* admin_token = "bench-admin-token";

using seckill::bench::read_file;

/// CPU seconds (user + system) a live process has used so far.
double process_cpu_seconds(pid_t pid) {
  const std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
  // fields after the command name (which may hold spaces): state is field 3
  const auto close = stat.rfind(')');
  if (close == std::string::npos) throw std::runtime_error("cannot read /proc/<pid>/stat");
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// CPU seconds of the children this process has waited for.
double children_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

/// One seckill_server node on 127.0.0.1 over the store `store`.
class node_process {
 public:
  node_process(const std::string& store, int worker) : dir_("seckill-bench-node") {
    output_ = (dir_.path() / "output").string();
    process_.start(
        {{SECKILL_SERVER, "--listen", "127.0.0.1:0", "--store", store, "--worker-id",
          std::to_string(worker), "--threads", "2", "--per-user", "0", "--admission-rate", "0",
          "--payment-latency", "0", "--admin-token", admin_token},
         output_,
         {},
         true});
    const std::regex listening("listening on (http://127\\.0\\.0\\.1:[0-9]+)\n");
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      std::smatch m;
      const auto text = read_file(output_);
      if (std::regex_search(text, m, listening)) {
        url_ = m[1].str();
        return;
      }
      if (!process_.running()) break;
      std::this_thread::sleep_for(20ms);
    }
    throw std::runtime_error("seckill_server did not start:\n" + read_file(output_));
  }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] pid_t pid() const noexcept { return process_.pid(); }

 private:
  seckill::detail::temp_dir dir_;
  std::string output_;
  seckill::detail::child_process process_;
  std::string url_;
};

/// Runs seckill_load with `args` against `nodes`; its JSON report.
json run_load(const std::vector<std::unique_ptr<node_process>>& nodes,
              const std::vector<std::string>& args) {
  seckill::detail::temp_dir dir("seckill-bench-load");
  const auto out = (dir.path() / "report.json").string();
  const auto err = (dir.path() / "stderr").string();
  std::string command = fmt::format("exec {} --json --no-progress", SECKILL_LOAD);
  for (const auto& n : nodes) command += " --target " + n->url();
  for (const auto& a : args) command += " " + a;
  command += " > " + out + " 2> " + err;
  seckill::detail::child_process p({{"/bin/sh", "-c", command}, {}, {}, true});
  if (!p.wait_for(5min) || !WIFEXITED(p.wait_status()) || WEXITSTATUS(p.wait_status()) != 0)
    throw std::runtime_error("seckill_load failed: " + read_file(err) + read_file(out));
  const auto j = json::parse(read_file(out), nullptr, false);
  if (!j.is_object()) throw std::runtime_error("seckill_load's report does not parse");
  return j;
}

/// Stocks `sku` with a billion units through `node`'s admin API (curl).
void put_stock(const node_process& node, const std::string& sku) {
  seckill::detail::child_process p(
      {{"curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H",
        fmt::format("Authorization: Bearer {}", admin_token), "--data", R"({"stock": 1000000000})",
        node.url() + "/admin/stock/" + sku},
       {},
       {},
       true});
  if (!p.wait_for(30s) || !WIFEXITED(p.wait_status()) || WEXITSTATUS(p.wait_status()) != 0)
    throw std::runtime_error("cannot stock " + sku + " through " + node.url());
}

struct redis_env {
  seckill::test::redis_server server;
  std::string url = fmt::format("redis://127.0.0.1:{}", server.port());
  static redis_env& get() {
    static redis_env env;
    return env;
  }
};

void bm_server(benchmark::State& state) {
  auto& redis = redis_env::get();
  const int n = static_cast<int>(state.range(0));
  const int per_node = total_connections / n;
  std::vector<std::unique_ptr<node_process>> nodes;
  for (int i = 0; i < n; ++i) nodes.push_back(std::make_unique<node_process>(redis.url, i + 1));
  const std::string connections = fmt::format("--connections {}", per_node);
  // Stocks sku-0 (through a node, as a shop would) and warms every connection.
  run_load(nodes, {"--setup-stock 1000000000", fmt::format("--admin-token {}", admin_token),
                   "--requests 2000", "--rate 1000000", connections, "--users 1000000"});
  for (auto _ : state) {
    // 1. the ceiling: the store's reserve script, alone on this redis-server,
    // on a SKU of its own, new each time (the holds it leaves are never
    // committed: reused, a SKU's hold set would grow from run to run).
    static int ceilings = 0;
    const std::string ceiling_sku = fmt::format("ceiling-{}", ++ceilings);
    put_stock(*nodes.front(), ceiling_sku);
    const double redis_before_ceiling = process_cpu_seconds(redis.server.pid());
    const double ceiling = seckill::bench::redis_benchmark_reserve(
        {.port = redis.server.port(), .sku = ceiling_sku, .clients = 64, .requests = 100'000});
    const double redis_ceiling_cpu = process_cpu_seconds(redis.server.pid()) - redis_before_ceiling;

    // 2. saturated
    std::vector<double> node_before;
    for (const auto& node : nodes) node_before.push_back(process_cpu_seconds(node->pid()));
    const double redis_before = process_cpu_seconds(redis.server.pid());
    const double load_before = children_cpu_seconds();
    const auto sat =
        run_load(nodes, {fmt::format("--requests {}", saturated_requests), "--rate 10000000",
                         "--timeout 60s", connections, "--users 1000000"});
    const double load_cpu = children_cpu_seconds() - load_before;
    const double redis_cpu = process_cpu_seconds(redis.server.pid()) - redis_before;
    double node_cpu = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      node_cpu += process_cpu_seconds(nodes[i]->pid()) - node_before[i];
    const auto& total = sat.at("total");
    const double ok = total.at("status").value("200", 0.0);
    const double seconds = sat.at("seconds").get<double>();
    const double rate = ok / seconds;
    state.SetIterationTime(seconds);

    // 3. paced
    const auto paced = run_load(nodes, {fmt::format("--rate {:.0f}", rate * paced_share),
                                        fmt::format("--duration {}s", paced_duration.count()),
                                        connections, "--users 1000000"});
    const auto& latency = paced.at("total").at("latency_ms");

    state.counters["purchases_per_s"] = rate;
    state.counters["failed"] = total.at("sent").get<double>() - ok;
    state.counters["ceiling_reserves_per_s"] = ceiling;
    state.counters["of_ceiling"] = 2 * rate / ceiling;
    state.counters["paced_per_s"] = rate * paced_share;
    state.counters["paced_failed"] = paced.at("total").at("sent").get<double>() -
                                     paced.at("total").at("status").value("200", 0.0);
    state.counters["p50_ms"] = latency.at("p50").get<double>();
    state.counters["p99_ms"] = latency.at("p99").get<double>();
    state.counters["node_cpu_us"] = 1e6 * node_cpu / ok;
    state.counters["redis_cpu_us"] = 1e6 * redis_cpu / ok;
    state.counters["load_cpu_us"] = 1e6 * load_cpu / ok;
    state.counters["redis_cpu_us_per_reserve"] = 1e6 * redis_ceiling_cpu / 100'000;
  }
}

BENCHMARK(bm_server)->Name("nodes")->Arg(1)->Arg(2)->Arg(3)->Iterations(1)->UseManualTime()->Unit(
    benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
