// cached_store over memory_store against the stock_store conformance suite:
// the decorator forwards the whole contract, its cache in front.
#include <seckill/clock.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/stock_cache.hpp>

#include "store_conformance.hpp"

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>

namespace concurrent_cached_store {

using namespace std::chrono_literals;
using inner_type = seckill::memory_store<seckill::manual_clock>;

/// The conformance fixture: memory_store on a manual clock behind a cache.
struct cached_fixture {
  boost::asio::io_context context;
  seckill::manual_clock clock;
  inner_type inner{context.get_executor(), {.orders_per_sku = 4}, clock};
  seckill::stock_cache cache;
  seckill::cached_store<inner_type> store_{inner, cache};

  seckill::cached_store<inner_type>& store() { return store_; }
  boost::asio::io_context& io() { return context; }
  void let_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds hold() { return 30s; }
  std::string sku(std::string_view name) { return "sku:" + std::string(name); }
  // the manual clock judges the sale window too, to the millisecond
  seckill::sale_time sale_now() {
    return seckill::sale_time{
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch())};
  }
  void let_sale_time_pass(std::chrono::milliseconds d) { clock.advance(d); }
  std::chrono::milliseconds sale_slack() { return 0ms; }
};

}  // namespace concurrent_cached_store

TEST_SUITE("concurrent") {
  SECKILL_STORE_CONFORMANCE_TESTS(concurrent_cached_store::cached_fixture, "cached memory")
}
