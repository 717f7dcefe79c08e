// etcd_store against the stock_store conformance suite, on a real etcd, plus
// what only a shared store promises: two nodes racing on one SKU never oversell.
#include "etcd_fixture.hpp"
#include "store_conformance.hpp"
#include "test_util.hpp"

#include <seckill/clock.hpp>
#include <seckill/etcd/etcd_store.hpp>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>

namespace integration_etcd_store {
using namespace std::chrono_literals;
namespace asio = boost::asio;
using store_type = seckill::etcd::etcd_store<seckill::manual_clock>;

/// The conformance fixture: a fresh single-member etcd; holds expire by a manual clock.
struct etcd_fixture {
  seckill::test::etcd_cluster etcd{1};
  asio::io_context context;
  seckill::manual_clock clock;
  store_type store_{context.get_executor(), etcd.options(), {}, clock};

  store_type& store() { return store_; }
  asio::io_context& io() { return context; }
  void let_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds hold() { return 30s; }
  std::string sku(std::string_view name) { return "sku/" + std::string(name); }
};
}  // namespace integration_etcd_store


TEST_SUITE("integration") {
  using namespace integration_etcd_store;
  SECKILL_STORE_CONFORMANCE_TESTS(integration_etcd_store::etcd_fixture, "etcd")

  TEST_CASE("etcd store - two nodes racing on one sku reserve exactly the stock never more") {
    seckill::test::etcd_cluster etcd(1);
    constexpr int per_node = 60;
    constexpr std::int64_t stock = 50;
    std::atomic<int> reserved{0}, sold_out{0}, errors{0};
    {
      asio::io_context setup;
      seckill::etcd::etcd_store<> s(setup.get_executor(), etcd.options());
      bool done = false;
      s.async_set_stock("hot", stock, [&](std::error_code ec) {
        CHECK_FALSE(ec);
        done = true;
      });
      setup.run();
      REQUIRE(done);
    }
    std::uint64_t conflicts = 0;
    std::mutex m;
    auto node = [&](int index) {
      asio::io_context io;
      seckill::etcd::etcd_store<> s(io.get_executor(), etcd.options());
      // one node's calls queue per SKU; racing on several coroutines anyway
      for (int i = 0; i < per_node; ++i) {
        s.async_reserve("hot", 1, index * 1000 + i + 1, 60s, [&](std::error_code ec, seckill::reserve_result r) {
          if (ec) {
            errors.fetch_add(1);
          } else if (r.status == seckill::reserve_status::reserved) {
            reserved.fetch_add(1);
          } else {
            sold_out.fetch_add(1);
          }
        });
      }
      io.run();
      std::lock_guard lock(m);
      conflicts += s.conflicts();
    };
    std::thread a(node, 0), b(node, 1);
    a.join();
    b.join();
    CHECK(errors.load() == 0);
    CHECK(reserved.load() == stock);
    CHECK(sold_out.load() == 2 * per_node - stock);
    MESSAGE("compare failures retried: " << conflicts);
    CHECK(conflicts > 0);  // the two nodes did race
    asio::io_context check;
    seckill::etcd::etcd_store<> s(check.get_executor(), etcd.options());
    seckill::stock_level level;
    s.async_stock("hot", [&](std::error_code ec, seckill::stock_level l) {
      CHECK_FALSE(ec);
      level = l;
    });
    check.run();
    CHECK(level.remaining == 0);
    CHECK(level.reserved == stock);
  }

  TEST_CASE("etcd store - unreachable etcd is store_unavailable") {
    asio::io_context io;
    seckill::etcd::client_options o;
    o.endpoints = {{"127.0.0.1", seckill::test::free_loopback_port()}};
    o.call_timeout = 500ms;
    seckill::etcd::etcd_store<> s(io.get_executor(), o);
    std::error_code got;
    s.async_reserve("x", 1, 1, 1s, [&](std::error_code ec, seckill::reserve_result) { got = ec; });
    io.run();
    CHECK(got == seckill::errc::store_unavailable);
  }
}
