// The buyer guarantees across processes on Redis (tests/support/buyer_processes.hpp):
// seckill_buyer_helper processes, each its own node with its own connection,
// race the per-user limit and one request id on one redis-server (started
// once for this binary), and a retry follows a buyer killed -9 mid-payment.

#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "support/buyer_processes.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace integration_buyers_processes {

using seckill::redis::connection_config;
using seckill::redis::redis_store;
using seckill::test::redis_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace buyers = seckill::test::buyers;

// One redis-server for every case of this file.
redis_server& shared_server() {
  static redis_server server;
  return server;
}

// The test's own node, with the helpers' retention (1 s: the kill -9 case
// waits for a given-back order's binding to be forgotten).
class redis_env {
 public:
  redis_env()
      : store_(io_.get_executor(), seckill::test::config_for<connection_config>(shared_server()),
               {.order_retention = 1000ms}) {
    auto [ec] = buyers::run(io_, store_.async_connect(seckill::test::tuple_awaitable));
    REQUIRE_MESSAGE(!ec, store_.connection().last_error());
  }
  redis_env(const redis_env&) = delete;
  redis_env& operator=(const redis_env&) = delete;
  ~redis_env() {
    store_.close();
    io_.restart();
    io_.run_for(2s);
  }

  redis_store& store() { return store_; }
  asio::io_context& io() { return io_; }
  std::vector<std::string> helper_args() const {
    return {"--store", "redis://127.0.0.1:" + shared_server().port_string(), "--retention-ms",
            "1000"};
  }
  std::string sku(std::string_view name) const { return "xproc-" + std::string(name); }

 private:
  asio::io_context io_;
  redis_store store_;
};

TEST_SUITE("integration") {
  TEST_CASE("redis buyers across processes: the per-user limit holds over 4 nodes at once") {
    redis_env env;
    buyers::per_user_limit_across_processes(env);
  }

  TEST_CASE("redis buyers across processes: one request from 3 nodes at once buys once") {
    redis_env env;
    buyers::same_request_across_processes(env);
  }

  TEST_CASE("redis buyers across processes: a retry after the first node was killed -9") {
    redis_env env;
    buyers::retry_after_kill(env);
  }

  TEST_CASE(
      "redis buyers across processes: the helper refuses bad arguments naming them and exits 3 "
      "without a store") {
    const std::string store = "redis://127.0.0.1:" + shared_server().port_string();
    {
      buyers::buyer_process p({"--store", store, "sku/user/request"});
      CHECK(p.wait(10s) == 2);
      CHECK(p.output().find("'sku/user/request'") != std::string::npos);
    }
    {
      buyers::buyer_process p({"--store", store, "sku/user/request/twelve"});
      CHECK(p.wait(10s) == 2);
      CHECK(p.output().find("'twelve'") != std::string::npos);
    }
    {
      buyers::buyer_process p({"--store", "memcached://127.0.0.1:1", "sku/user/request/1"});
      CHECK(p.wait(10s) == 2);
      CHECK(p.output().find("'memcached://127.0.0.1:1'") != std::string::npos);
    }
    {  // nobody listens there: the store cannot be reached
      const std::string nobody =
          "redis://127.0.0.1:" + std::to_string(seckill::test::free_loopback_port());
      buyers::buyer_process p({"--store", nobody, "sku/user/request/1"});
      CHECK(p.wait(20s) == 3);
      CHECK(p.output().find("ERROR connect") != std::string::npos);
    }
    {
      buyers::buyer_process p({"--store", store, "--hold-ms", "-5", "sku/user/request/1"});
      CHECK(p.wait(10s) == 2);
      CHECK(p.output().find("'-5'") != std::string::npos);
    }
  }
}

}  // namespace integration_buyers_processes
