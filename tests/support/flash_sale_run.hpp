#pragma once
// Runs the flash_sale_sim example as a child process (--json, no progress
// bar) while a test injects faults into the servers it uses, then checks
// the buyers against the store: what every buyer was told must match what
// the store holds.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace seckill::test {

struct sale_outcome {
  int exit_code = -1;     // -1: it did not exit in time (then it was killed)
  std::string output;     // stdout and stderr
  nlohmann::json report;  // the --json report (null when none was printed)
};

/// One flash_sale_sim run in the background.
class flash_sale_run {
 public:
  flash_sale_run(const std::string& program, std::vector<std::string> args) : dir_("seckill-sale") {
    output_ = (dir_.path() / "output").string();
    detail::child_process::options o;
    o.argv = {program};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.argv.push_back("--json");
    o.argv.push_back("--no-progress");
    o.output_path = output_;
    o.die_with_parent = true;
    process_.start(o);
  }

  /// Sends `sig` (SIGINT, SIGTERM, ...) to the run.
  void signal(int sig) noexcept { process_.signal(sig); }

  /// Waits for the run to end (killing it after `timeout`) and reads its report.
  sale_outcome wait(std::chrono::seconds timeout) {
    sale_outcome out;
    if (process_.wait_for(timeout)) {
      const int status = process_.wait_status();
      out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else {
      process_.kill_and_wait();
    }
    std::ifstream in(output_);
    std::stringstream text;
    text << in.rdbuf();
    out.output = text.str();
    if (const auto brace = out.output.find("{\n"); brace != std::string::npos) {
      out.report = nlohmann::json::parse(out.output.substr(brace), nullptr, false);
      if (out.report.is_discarded()) out.report = nullptr;
    }
    return out;
  }

 private:
  detail::temp_dir dir_;
  std::string output_;
  detail::child_process process_;
};

/// Every buyer's answer matches the store: the run passed its own check,
/// units committed == units sold to buyers told "succeeded", nothing left
/// reserved, the accounts add up, and no answer was lost (every attempt has
/// an outcome).
inline void check_buyers_match_store(const sale_outcome& out) {
  INFO(out.output);
  REQUIRE(out.exit_code == 0);
  REQUIRE(out.report.is_object());
  const auto& r = out.report;
  CHECK(r["oversell_check"]["ok"].get<bool>());
  CHECK(r["orders_audit"]["ok"].get<bool>());  // every order recorded, no user over the limit
  const auto& stock = r["stock"];
  CHECK(stock["committed"].get<std::int64_t>() == stock["sold"].get<std::int64_t>());
  CHECK(stock["reserved"].get<std::int64_t>() == 0);
  CHECK(stock["initial"].get<std::int64_t>() ==
        stock["remaining"].get<std::int64_t>() + stock["committed"].get<std::int64_t>());
  std::int64_t outcomes = 0;
  for (const char* k : {"succeeded", "sold_out", "limited", "rate_limited", "circuit_open",
                        "timed_out", "rolled_back", "failed"})
    outcomes += r[k].get<std::int64_t>();
  CHECK(outcomes == r["attempts"].get<std::int64_t>());
}

}  // namespace seckill::test
