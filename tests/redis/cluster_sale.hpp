#pragma once
// A sale on a store of the shared cluster, by 24 buyers who remember what
// they were told, and the retry of the uncertain ones: the fault tests of
// integration-cluster.cpp and integration-sharded.cpp run it. The Fixture is
// theirs: store(), io(), transport_error().

#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include "redis/test_support.hpp"
#include "store_conformance.hpp"
#include "support/flash_sale_run.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace seckill::test {

// What each buyer was told.
enum class told { paid, rolled_back, sold_out, uncertain };

struct sale {
  std::map<std::int64_t, told> outcomes;
  std::int64_t errors = 0;
  std::string first_error;
};

// 24 buyers reserve (1..2 units) then commit two in three and roll back the
// rest until `duration` passed; `fault` runs meanwhile. A reserve or commit
// that failed is uncertain: settle_uncertain() asks again with the same
// order id.
template <class Fixture>
void run_sale(Fixture& fx, const std::string& sku, std::int64_t initial,
              std::chrono::milliseconds duration, sale& out,
              std::function<boost::asio::awaitable<void>()> fault) {
  auto& io = fx.io();
  auto& store = fx.store();
  REQUIRE(seckill::test::conformance::set_stock(fx, sku, initial) == std::error_code{});
  io.restart();
  const auto until = std::chrono::steady_clock::now() + duration;
  std::int64_t next_order = 1;
  int running = 0;
  auto failed = [&](std::int64_t order, std::error_code ec) {
    out.outcomes[order] = told::uncertain;
    ++out.errors;
    if (out.first_error.empty())
      out.first_error = ec.message() + ": " + store.last_error() + " / " + fx.transport_error();
  };
  auto buyer = [&]() -> boost::asio::awaitable<void> {
    while (std::chrono::steady_clock::now() < until) {
      const auto order = next_order++;
      auto [ec, r] = co_await store.async_reserve(sku, 1 + order % 2, order,
                                                  std::chrono::seconds(60), tuple_awaitable);
      if (ec) {
        failed(order, ec);
        co_await sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (r.status == seckill::reserve_status::sold_out) {
        out.outcomes[order] = told::sold_out;
        continue;
      }
      if (order % 3 != 0) {
        auto [ec2, s] = co_await store.async_commit(sku, order, tuple_awaitable);
        if (ec2)
          failed(order, ec2);
        else
          out.outcomes[order] = told::paid;
      } else {
        auto [ec2, s] = co_await store.async_rollback(sku, order, tuple_awaitable);
        if (ec2)
          failed(order, ec2);
        else
          out.outcomes[order] = told::rolled_back;
      }
    }
  };
  for (int i = 0; i < 24; ++i) {
    ++running;
    boost::asio::co_spawn(io, buyer(), [&](std::exception_ptr) { --running; });
  }
  bool fault_done = false;
  boost::asio::co_spawn(io, fault(), [&](std::exception_ptr e) {
    fault_done = true;
    if (e) std::rethrow_exception(e);
  });
  const auto give_up = std::chrono::steady_clock::now() + duration + std::chrono::seconds(60);
  while ((running > 0 || !fault_done) && std::chrono::steady_clock::now() < give_up)
    io.run_one_for(std::chrono::milliseconds(10));
  REQUIRE(running == 0);
  REQUIRE(fault_done);
}

// Every uncertain buyer asks again with the same order id, as the engine
// does: a reserve that had run is rolled back (or was committed: paid).
template <class Fixture>
void settle_uncertain(Fixture& fx, const std::string& sku, sale& s) {
  for (auto& [order, outcome] : s.outcomes) {
    if (outcome != told::uncertain) continue;
    auto [ec, r] = seckill::test::conformance::reserve(fx, sku, 1 + order % 2, order,
                                                       std::chrono::seconds(60));
    REQUIRE_MESSAGE(!ec, ec.message(), ": ", fx.store().last_error());
    if (r.status != seckill::reserve_status::reserved) {
      outcome = told::sold_out;
      continue;
    }
    auto [ec2, st] = seckill::test::conformance::rollback(fx, sku, order);
    if (ec2 == seckill::errc::order_committed)
      outcome = told::paid;
    else {
      REQUIRE_MESSAGE(!ec2, ec2.message());
      outcome = told::rolled_back;
    }
  }
}

#ifdef SECKILL_FLASH_SALE_SIM
// flash_sale_sim on the cluster at `url` (a Poisson crowd at 1,500 buyers/s,
// payments of 5 ms of which 5% fail, no admission limit) with `flags` added;
// its own audit must pass and every buyer's answer be in the store.
inline void flash_sale_on_cluster(const std::string& url, const std::vector<std::string>& flags) {
  std::vector<std::string> args{"--store",
                                url,
                                "--arrival",
                                "poisson",
                                "--arrival-rate",
                                "1500",
                                "--admission-rate",
                                "0",
                                "--payment-latency",
                                "5ms",
                                "--payment-failure",
                                "0.05",
                                "--deadline",
                                "2000ms",
                                "--hold",
                                "5s",
                                "--threads",
                                "2"};
  args.insert(args.end(), flags.begin(), flags.end());
  flash_sale_run sale(SECKILL_FLASH_SALE_SIM, args);
  const auto out = sale.wait(std::chrono::seconds(120));
  CHECK(out.exit_code == 0);
  check_buyers_match_store(out);
}
#endif

}  // namespace seckill::test
