// flash_sale_sim, run as a program: flags are validated with clear messages
// and exit status 2, a small sale passes its own oversell check.
#include "support/flash_sale_run.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ostream>
#include <string>
#include <thread>
#include <utility>

#ifdef SECKILL_FLASH_SALE_SIM

namespace unit_flash_sale_sim {

struct outcome {
  int status = -1;
  std::string output;  // stdout and stderr
};

outcome run(const std::string& args, bool merge_stderr = true) {
  const std::string command =
      std::string(SECKILL_FLASH_SALE_SIM) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  outcome out;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.output.append(buffer, n);
  const int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  out.status = WEXITSTATUS(status);
  return out;
}

void check_usage_error(const std::string& args, const std::string& message) {
  CAPTURE(args);
  const auto out = run(args);
  CHECK(out.status == 2);
  CHECK(out.output == "flash_sale_sim: " + message + "\n");
}

}  // namespace unit_flash_sale_sim

using namespace unit_flash_sale_sim;

TEST_SUITE("unit") {
  TEST_CASE("flash_sale_sim: every bad flag is refused with exit status 2 and says why") {
    check_usage_error("--bogus", "unknown option '--bogus' (see --help)");
    check_usage_error("--buyers", "--buyers needs a value");
    check_usage_error("--buyers 0", "--buyers: expected an integer in [1, 10000000], saw '0'");
    check_usage_error("--buyers 12abc",
                      "--buyers: expected an integer in [1, 10000000], saw '12abc'");
    check_usage_error("--skus -3", "--skus: expected an integer in [1, 100000], saw '-3'");
    check_usage_error("--stock=-1", "--stock: expected an integer in [0, 1000000000], saw '-1'");
    check_usage_error("--quantity 0", "--quantity: expected an integer in [1, 1000000], saw '0'");
    check_usage_error("--arrival sometimes",
                      "--arrival: expected burst or poisson, saw 'sometimes'");
    check_usage_error("--arrival-rate 0",
                      "--arrival-rate: expected a number in [0.001, 1000000000], saw '0'");
    check_usage_error("--payment-latency 20parsecs",
                      "--payment-latency: expected a duration in [0us, 60000000us] like 250ms, "
                      "1.5s or 300us, saw "
                      "'20parsecs'");
    check_usage_error("--payment-failure 1.5",
                      "--payment-failure: expected a number in [0, 1], saw '1.5'");
    check_usage_error("--payment-hang nan",
                      "--payment-hang: expected a number in [0, 1], saw 'nan'");
    check_usage_error("--payment-failure 0.6 --payment-hang 0.5",
                      "--payment-failure 0.6 plus --payment-hang 0.5 exceed 1");
    check_usage_error("--admission-rate -5",
                      "--admission-rate: expected a number in [0, 1000000000], saw '-5'");
    check_usage_error("--admission-burst 0.5",
                      "--admission-burst: expected a number in [1, 1000000000], saw '0.5'");
    check_usage_error(
        "--deadline 0",
        "--deadline: expected a duration in [1000us, 86400000000us] like 250ms, 1.5s or "
        "300us, saw '0'");
    check_usage_error("--deadline 1500us",
                      "--deadline: expected a whole number of milliseconds, saw '1500us'");
    check_usage_error(
        "--deadline 2s --hold 1s",
        "--hold 1000ms must exceed --deadline 2000ms: a paid order must still find its units");
    check_usage_error("--reaper-period 0",
                      "--reaper-period: expected a duration in [1000us, 3600000000us] like "
                      "250ms, 1.5s or 300us, saw '0'");
    check_usage_error("--reaper-period 2h",
                      "--reaper-period: expected a duration in [1000us, 3600000000us] like "
                      "250ms, 1.5s or 300us, saw '2h'");
    check_usage_error("--reaper-period 1500us",
                      "--reaper-period: expected a whole number of milliseconds, saw '1500us'");
    check_usage_error("--threads 65", "--threads: expected an integer in [1, 64], saw '65'");
    check_usage_error("--seed -1",
                      "--seed: expected an integer in [0, 9223372036854775807], saw '-1'");
    check_usage_error("--json=yes", "--json takes no value (saw 'yes')");
    check_usage_error("--users", "--users needs a value");
    check_usage_error("--users -1", "--users: expected an integer in [0, 10000000], saw '-1'");
    check_usage_error("--users 10k", "--users: expected an integer in [0, 10000000], saw '10k'");
    check_usage_error("--per-user=-2",
                      "--per-user: expected an integer in [0, 1000000000], saw '-2'");
    check_usage_error("--per-user one",
                      "--per-user: expected an integer in [0, 1000000000], saw 'one'");
    check_usage_error("--shards 0", "--shards: expected an integer in [1, 64], saw '0'");
    check_usage_error("--shards 65", "--shards: expected an integer in [1, 64], saw '65'");
    check_usage_error("--shards 4", "--shards 4 needs a Redis store, saw --store memory://...");
    check_usage_error("--shards 2 --store etcd://user:secret@127.0.0.1:2379",
                      "--shards 2 needs a Redis store, saw --store etcd://...");
    {
      // The list of known schemes grows with the backends: check what it starts with.
      const auto out = run("--store redis-ish");
      CHECK(out.status == 2);
      CHECK(out.output.starts_with(
          "flash_sale_sim: --store redis-ish: unknown store; this build knows memory://"));
    }
    check_usage_error(
        "--store memory://elsewhere",
        "--store memory://elsewhere: memory:// takes no host or path: invalid argument");
  }

  TEST_CASE("flash_sale_sim: --help lists every flag and exits 0") {
    const auto out = run("--help");
    CHECK(out.status == 0);
    for (const char* flag : {"--store",
                             "--buyers",
                             "--skus",
                             "--stock",
                             "--quantity",
                             "--users",
                             "--per-user",
                             "--shards",
                             "--arrival ",
                             "--arrival-rate",
                             "--payment-latency",
                             "--payment-failure",
                             "--payment-hang",
                             "--admission-rate",
                             "--admission-burst",
                             "--deadline",
                             "--hold",
                             "--reaper-period",
                             "--threads",
                             "--seed",
                             "--json",
                             "--progress",
                             "--no-progress"}) {
      CAPTURE(flag);
      CHECK(out.output.find(flag) != std::string::npos);
    }
  }

  TEST_CASE("flash_sale_sim: a small sale adds up and reports JSON") {
    // The burst of 3000 purchases queues on one thread: a debug build under
    // load takes a few hundred milliseconds to serve it, so the deadline is
    // far above that; only the hung payments should reach it.
    const auto out =
        run("--buyers 3000 --skus 3 --stock 200 --payment-latency 2ms --payment-failure 0.1 "
            "--payment-hang 0.02 --deadline 2s --admission-rate 0 --json",
            false);
    REQUIRE(out.status == 0);
    const auto j = nlohmann::json::parse(out.output);
    const auto attempts = j["attempts"].get<std::int64_t>();
    CHECK(attempts == 3000);
    std::int64_t sum = 0;
    for (const char* k : {"succeeded", "sold_out", "rate_limited", "circuit_open", "timed_out",
                          "rolled_back", "failed"})
      sum += j[k].get<std::int64_t>();
    CHECK(sum == attempts);
    // 3000 buyers for 600 units: everything sells, except units given back after
    // every other buyer had tried: a failed payment (rolled back) or a hung one
    // (back when the deadline passes). The burst arrives at once, so that can be
    // any of them.
    const auto succeeded = j["succeeded"].get<std::int64_t>();
    CHECK(succeeded <= 600);
    CHECK(succeeded >=
          600 - j["timed_out"].get<std::int64_t>() - j["rolled_back"].get<std::int64_t>());
    CHECK(j["rolled_back"].get<std::int64_t>() > 0);
    CHECK(j["timed_out"].get<std::int64_t>() > 0);
    CHECK(j["rate_limited"].get<std::int64_t>() == 0);
    CHECK(j["stock"]["initial"].get<std::int64_t>() == 600);
    CHECK(j["stock"]["sold"].get<std::int64_t>() == succeeded);
    CHECK(j["stock"]["remaining"].get<std::int64_t>() == 600 - succeeded);
    CHECK(j["stock"]["reserved"].get<std::int64_t>() == 0);
    CHECK(j["oversell_check"]["ok"].get<bool>());
    CHECK(j["latency_ms"]["max"].get<double>() >= j["latency_ms"]["p99"].get<double>());
  }

  TEST_CASE("flash_sale_sim: named buyers meet the per-user limit and the orders audit agrees") {
    // 2000 purchases by 50 users over 2 SKUs of 1000 units, 2 units per user
    // and SKU: the limit, not the stock, ends the sale.
    const auto out =
        run("--buyers 2000 --skus 2 --stock 1000 --users 50 --per-user 2 --payment-latency 1ms "
            "--payment-failure 0 --payment-hang 0 --admission-rate 0 --json",
            false);
    REQUIRE(out.status == 0);
    const auto j = nlohmann::json::parse(out.output);
    CHECK(j["config"]["users"].get<std::int64_t>() == 50);
    CHECK(j["config"]["per_user"].get<std::int64_t>() == 2);
    std::int64_t sum = 0;
    for (const char* k : {"succeeded", "sold_out", "limited", "rate_limited", "circuit_open",
                          "timed_out", "rolled_back", "failed"})
      sum += j[k].get<std::int64_t>();
    CHECK(sum == 2000);
    const auto succeeded = j["succeeded"].get<std::int64_t>();
    CHECK(succeeded <= 50 * 2 * 2);
    CHECK(j["limited"].get<std::int64_t>() >=
          2000 - 50 * 2 * 2 - j["timed_out"].get<std::int64_t>());
    CHECK(j["sold_out"].get<std::int64_t>() == 0);
    CHECK(j["oversell_check"]["ok"].get<bool>());
    const auto& audit = j["orders_audit"];
    CHECK(audit["ok"].get<bool>());
    CHECK(audit["error"].get<std::string>().empty());
    CHECK(audit["orders_recorded"].get<std::int64_t>() == succeeded);
    CHECK(audit["recorded_units"].get<std::int64_t>() == succeeded);
    CHECK(audit["committed"].get<std::int64_t>() == succeeded);
    CHECK(audit["users_over_limit"].get<std::int64_t>() == 0);

    // --per-user 0: no limit, so the stock ends the sale (1 unit per purchase, 500 units).
    const auto open =
        run("--buyers 1000 --skus 1 --stock 500 --users 10 --per-user 0 --payment-latency 1ms "
            "--payment-failure 0 --payment-hang 0 --admission-rate 0 --json",
            false);
    REQUIRE(open.status == 0);
    const auto k = nlohmann::json::parse(open.output);
    CHECK(k["limited"].get<std::int64_t>() == 0);
    CHECK(k["sold_out"].get<std::int64_t>() > 0);
    CHECK(k["orders_audit"]["ok"].get<bool>());
    CHECK(k["orders_audit"]["recorded_units"].get<std::int64_t>() ==
          k["succeeded"].get<std::int64_t>());
  }

  TEST_CASE("flash_sale_sim: a tight token bucket rejects most of a burst") {
    const auto out =
        run("--buyers 2000 --skus 2 --stock 1000 --payment-latency 1ms --payment-failure 0 "
            "--payment-hang 0 --admission-rate 1 --admission-burst 100 --json",
            false);
    REQUIRE(out.status == 0);
    const auto j = nlohmann::json::parse(out.output);
    const auto succeeded = j["succeeded"].get<std::int64_t>();
    CHECK(succeeded >= 100);
    CHECK(succeeded <= 110);  // the burst, plus one token a second
    CHECK(j["rate_limited"].get<std::int64_t>() == 2000 - succeeded);
    CHECK(j["stock"]["remaining"].get<std::int64_t>() == 2000 - succeeded);
  }

  TEST_CASE(
      "flash_sale_sim: SIGINT stops the arrivals and lets purchases in flight finish and report") {
    using namespace std::chrono_literals;
    seckill::test::flash_sale_run sale(
        SECKILL_FLASH_SALE_SIM, {"--buyers", "100000", "--arrival", "poisson", "--arrival-rate",
                                 "2000", "--payment-latency", "20ms", "--admission-rate", "0"});
    std::this_thread::sleep_for(1s);
    sale.signal(SIGINT);
    const auto out = sale.wait(30s);
    seckill::test::check_buyers_match_store(out);
    const auto attempts = out.report["attempts"].get<std::int64_t>();
    CHECK(attempts > 0);
    CHECK(attempts < 100000);
    CHECK(out.report["not_started"].get<std::int64_t>() == 100000 - attempts);
  }

  TEST_CASE("flash_sale_sim: the table has every row and the progress bar stays off a pipe") {
    const auto out = run("--buyers 500 --skus 2 --stock 10 --payment-latency 1ms", true);
    CHECK(out.status == 0);
    for (const char* row : {"attempts", "succeeded", "sold out", "rate limited", "circuit open",
                            "timed out", "rolled back", "throughput", "p50", "p90", "p99", "max",
                            "oversell check  OK", "orders audit    OK: "}) {
      CAPTURE(row);
      CHECK(out.output.find(row) != std::string::npos);
    }
    CHECK(out.output.find('\r') == std::string::npos);
  }
}

#endif
