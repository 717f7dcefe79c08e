#pragma once
// The Redis ceiling the store-backed benches compare against: redis-benchmark
// (the server's own C client) running redis_store's reserve script by
// EVALSHA, as the store sends it, on a SKU stocked beforehand with the script
// loaded. Shared by bench/redis.cpp and bench/server.cpp.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/redis/redis_store.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace seckill::bench {

/// What one redis-benchmark run asks for.
struct ceiling_run {
  unsigned short port = 0;  ///< the server, on 127.0.0.1, without a password
  std::string sku;          ///< stocked, and the script loaded
  int clients = 50;         ///< redis-benchmark -c
  int pipeline = 1;         ///< -P
  int requests = 100'000;   ///< -n
  std::chrono::milliseconds hold{std::chrono::minutes(10)};
};

/// Runs redis-benchmark reserving on `r.sku` by EVALSHA; the requests per
/// second it reports. Throws when it fails or its output cannot be read.
inline double redis_benchmark_reserve(const ceiling_run& r) {
  const seckill::redis::script lua{std::string(seckill::redis::store_lua)};
  using store_t = seckill::redis::redis_store;
  seckill::detail::temp_dir dir("seckill-bench");
  const auto out = (dir.path() / "redis-benchmark.log").string();
  // redis-benchmark seeds its random ids with time ^ pid, which repeats from
  // one run to another: a run prefix keeps every run's orders new (a repeated
  // order id is a cheap idempotent replay, not a reserve).
  static int runs = 0;
  const std::string run = "b" + std::to_string(++runs) + "-";
  const auto& sku = r.sku;
  seckill::detail::child_process p({{"/usr/bin/redis-benchmark",
                                     "-h",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(r.port),
                                     "-c",
                                     std::to_string(r.clients),
                                     "-n",
                                     std::to_string(r.requests),
                                     "-P",
                                     std::to_string(r.pipeline),
                                     "-r",
                                     "1000000000",
                                     "-q",
                                     "EVALSHA",
                                     lua.sha1(),
                                     "7",
                                     store_t::stock_key(sku),
                                     "seckill:{" + sku + "}:order:" + run + "__rand_int__",
                                     store_t::holds_key(sku),
                                     store_t::users_key(sku),
                                     store_t::sold_key(sku),
                                     store_t::orders_key(sku),
                                     store_t::request_key(sku, "", ""),
                                     "reserve",
                                     run + "__rand_int__",
                                     "1",
                                     std::to_string(r.hold.count()),
                                     "86400000",
                                     "",
                                     "",
                                     "seckill:{" + sku + "}:"},
                                    out,
                                    {}});
  if (!p.wait_for(std::chrono::minutes(5)) || !WIFEXITED(p.wait_status()) ||
      WEXITSTATUS(p.wait_status()) != 0)
    throw std::runtime_error("redis-benchmark failed (is redis-tools installed?)");
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const auto at = s.rfind(" requests per second");
  if (at == std::string::npos)
    throw std::runtime_error("cannot read redis-benchmark's output: " + s);
  const auto begin = s.rfind(' ', at - 1);
  return std::stod(s.substr(begin + 1, at - begin - 1));
}

}  // namespace seckill::bench
