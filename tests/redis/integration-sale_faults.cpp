// The whole flash sale (flash_sale_sim) on a real redis-server, with the
// faults an adversarial operator finds: a server stall longer than the
// request timeout, connections killed mid-sale. After each, every buyer's
// answer matches the store. And no password appears in anything it prints.

#include "redis/redis_server.hpp"
#include "support/flash_sale_run.hpp"

#include <seckill/redis/resp.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#ifdef SECKILL_FLASH_SALE_SIM

namespace integration_sale_faults {

using namespace std::chrono_literals;

// A sale of 3 s of Poisson arrivals over 4 SKUs that sell out, with payments
// that fail or hang, on the server at `url`.
std::vector<std::string> sale_args(const std::string& url, const std::string& hold) {
  return {"--store",
          url,
          "--buyers",
          "3000",
          "--skus",
          "4",
          "--stock",
          "400",
          "--arrival",
          "poisson",
          "--arrival-rate",
          "1000",
          "--admission-rate",
          "0",
          "--payment-latency",
          "5ms",
          "--payment-failure",
          "0.05",
          "--payment-hang",
          "0.01",
          "--deadline",
          "1000ms",
          "--hold",
          hold,
          "--reaper-period",
          "500ms",
          "--threads",
          "2"};
}

}  // namespace integration_sale_faults

using namespace integration_sale_faults;

TEST_SUITE("integration") {
  TEST_CASE(
      "flash_sale_sim on redis - a 6 s stall mid-sale ends with every buyer's answer in the "
      "store") {
    seckill::test::redis_server server;
    seckill::test::flash_sale_run sale(
        SECKILL_FLASH_SALE_SIM, sale_args("redis://127.0.0.1:" + server.port_string(), "10s"));
    std::this_thread::sleep_for(1500ms);
    auto admin = server.admin();
    admin.send(seckill::redis::request()
                   .push("DEBUG", "SLEEP", "6")
                   .payload());  // longer than the 5 s timeout
    const auto out = sale.wait(120s);
    CHECK(admin.read().text == "OK");
    seckill::test::check_buyers_match_store(out);
    CHECK(out.report["latency_ms"]["max"].get<double>() > 4000);  // the stall was felt
  }

  TEST_CASE(
      "flash_sale_sim on redis - 30 CLIENT KILLs mid-sale end with every buyer's answer in the "
      "store") {
    seckill::test::redis_server server;
    seckill::test::flash_sale_run sale(
        SECKILL_FLASH_SALE_SIM, sale_args("redis://127.0.0.1:" + server.port_string(), "5s"));
    std::this_thread::sleep_for(300ms);
    int killed = 0;
    for (int i = 0; i < 30; ++i) {
      std::this_thread::sleep_for(80ms);
      killed +=
          static_cast<int>(server.admin().command("CLIENT", "KILL", "TYPE", "normal").integer);
    }
    const auto out = sale.wait(120s);
    CHECK(killed >= 10);  // the sale's connection was killed again and again
    seckill::test::check_buyers_match_store(out);
  }

  TEST_CASE(
      "flash_sale_sim on redis - a server gone for good still gets a report naming what could not "
      "be read") {
    seckill::test::redis_server server;
    seckill::test::flash_sale_run sale(
        SECKILL_FLASH_SALE_SIM, {"--store",          "redis://127.0.0.1:" + server.port_string(),
                                 "--buyers",         "2000",
                                 "--skus",           "2",
                                 "--stock",          "5000",
                                 "--arrival",        "poisson",
                                 "--arrival-rate",   "1000",
                                 "--admission-rate", "0",
                                 "--deadline",       "500ms",
                                 "--hold",           "2s",
                                 "--reaper-period",  "500ms"});
    std::this_thread::sleep_for(700ms);
    server.kill();  // and it never comes back
    const auto out = sale.wait(120s);
    INFO(out.output);
    CHECK(out.exit_code == 3);
    REQUIRE(out.report.is_object());
    CHECK(out.report["succeeded"].get<std::int64_t>() >
          0);  // the report keeps what happened before
    CHECK(out.report["stock"]["read_error"].get<std::string>().starts_with(
        "could not read the stock of sku-0000 back: "));
    CHECK_FALSE(out.report["oversell_check"]["ok"].get<bool>());
    CHECK(out.report["oversell_check"]["error"] == out.report["stock"]["read_error"]);
  }

  TEST_CASE("flash_sale_sim on redis - the password appears nowhere in what it prints") {
    const std::string password = "s3cr%t/pa:ss";  // needs percent-encoding in the URL
    seckill::test::redis_server server({"--requirepass", password}, password);
    const std::string encoded = "s3cr%25t%2Fpa%3Ass";
    {
      seckill::test::flash_sale_run sale(
          SECKILL_FLASH_SALE_SIM,
          {"--store", "redis://:" + encoded + "@127.0.0.1:" + server.port_string(), "--buyers",
           "200", "--skus", "2"});
      const auto out = sale.wait(60s);
      seckill::test::check_buyers_match_store(out);
      CHECK(out.report["config"]["store"].get<std::string>() ==
            "redis://:***@127.0.0.1:" + server.port_string());
      CHECK(out.output.find(password) == std::string::npos);
      CHECK(out.output.find(encoded) == std::string::npos);
    }
    {  // a wrong password: refused with a clear error that shows neither password
      const std::string wrong = "wrong-s3cret";
      seckill::test::flash_sale_run sale(
          SECKILL_FLASH_SALE_SIM,
          {"--store", "redis://:" + wrong + "@127.0.0.1:" + server.port_string(), "--buyers",
           "10"});
      const auto out = sale.wait(60s);
      INFO(out.output);
      CHECK(out.exit_code == 3);
      CHECK(out.output.find("***@127.0.0.1") != std::string::npos);
      CHECK(out.output.find(wrong) == std::string::npos);
      CHECK(out.output.find(password) == std::string::npos);
    }
  }
}

#endif  // SECKILL_FLASH_SALE_SIM
