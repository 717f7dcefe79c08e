// The whole flash sale (flash_sale_sim) on a real single-member etcd that is
// killed with kill -9 three times mid-sale and restarted on its data: every
// buyer's answer matches the store afterwards.

#include "etcd/etcd_fixture.hpp"
#include "support/flash_sale_run.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <thread>

#ifdef SECKILL_FLASH_SALE_SIM

TEST_SUITE("integration") {
  TEST_CASE(
      "flash_sale_sim on etcd - three kill -9 of etcd mid-sale end with every buyer's answer in "
      "the store") {
    using namespace std::chrono_literals;
    seckill::test::etcd_cluster etcd(1);
    seckill::test::flash_sale_run sale(SECKILL_FLASH_SALE_SIM, {"--store",
                                                                "etcd://" + etcd.endpoint_list(),
                                                                "--buyers",
                                                                "1500",
                                                                "--skus",
                                                                "3",
                                                                "--stock",
                                                                "150",
                                                                "--arrival",
                                                                "poisson",
                                                                "--arrival-rate",
                                                                "300",
                                                                "--admission-rate",
                                                                "0",
                                                                "--payment-latency",
                                                                "5ms",
                                                                "--payment-failure",
                                                                "0.05",
                                                                "--payment-hang",
                                                                "0.01",
                                                                "--deadline",
                                                                "1500ms",
                                                                "--hold",
                                                                "12s",
                                                                "--reaper-period",
                                                                "500ms",
                                                                "--threads",
                                                                "2"});
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(900ms);
      etcd.kill(0);
      std::this_thread::sleep_for(200ms);
      etcd.start(0);
    }
    etcd.wait_ready();
    const auto out = sale.wait(180s);
    seckill::test::check_buyers_match_store(out);
    // the faults were felt: purchases failed or met an open breaker
    CHECK(out.report["failed"].get<std::int64_t>() +
              out.report["circuit_open"].get<std::int64_t>() >
          0);
  }
}

#endif  // SECKILL_FLASH_SALE_SIM
