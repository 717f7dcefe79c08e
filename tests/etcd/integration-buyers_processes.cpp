// The buyer guarantees across processes on etcd (tests/support/buyer_processes.hpp):
// seckill_buyer_helper processes, each its own node with its own client,
// race the per-user limit and one request id on the binary's shared etcd
// member, and a retry follows a buyer killed -9 mid-payment. Each case keeps
// to a key prefix of its own.

#include <seckill/etcd/etcd_store.hpp>

#include "etcd/etcd_fixture.hpp"
#include "support/buyer_processes.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace integration_etcd_buyers_processes {

using namespace std::chrono_literals;

// The store options every node of a case shares: its prefix, and a
// retention of 1 s in one bucket (the kill -9 case waits for a given-back
// order's binding to be forgotten).
seckill::etcd::etcd_store_options options_for(const std::string& prefix) {
  seckill::etcd::etcd_store_options o;
  o.prefix = prefix;
  o.order_retention = 1000ms;
  o.retention_buckets = 1;
  return o;
}

// The test's own node on the shared member, under `prefix`.
class etcd_env {
 public:
  explicit etcd_env(std::string_view name)
      : prefix_("xproc/" + std::string(name) + "/"),
        store_(io_.get_executor(), seckill::test::shared_single_node().options(),
               options_for(prefix_)) {}

  seckill::etcd::etcd_store<>& store() { return store_; }
  boost::asio::io_context& io() { return io_; }
  std::vector<std::string> helper_args() const {
    return {"--store",        "etcd://" + seckill::test::shared_single_node().endpoint_list(),
            "--prefix",       prefix_,
            "--retention-ms", "1000"};
  }
  std::string sku(std::string_view name) const { return std::string(name); }

 private:
  std::string prefix_;
  boost::asio::io_context io_;
  seckill::etcd::etcd_store<> store_;
};

TEST_SUITE("integration") {
  TEST_CASE("etcd buyers across processes: the per-user limit holds over 4 nodes at once") {
    etcd_env env("limit");
    seckill::test::buyers::per_user_limit_across_processes(env);
  }

  TEST_CASE("etcd buyers across processes: one request from 3 nodes at once buys once") {
    etcd_env env("same-request");
    seckill::test::buyers::same_request_across_processes(env);
  }

  TEST_CASE("etcd buyers across processes: a retry after the first node was killed -9") {
    etcd_env env("after-kill");
    seckill::test::buyers::retry_after_kill(env);
  }
}

}  // namespace integration_etcd_buyers_processes
