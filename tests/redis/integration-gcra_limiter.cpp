// redis::gcra_limiter on a real redis-server: the script's decisions against
// the C++ reference (gcra_decide) at the server's own instants, both buckets
// all or nothing, the keys and their expiry, the pre-filter and the
// counters, NOSCRIPT recovery, the failure policies with the server killed,
// the purchase engine on it, and several processes hammering one bucket.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/limit/gcra.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/redis/gcra_limiter.hpp>
#include <seckill/store/memory_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace integration_gcra_limiter {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using seckill::errc;
using seckill::gcra_decide;
using seckill::gcra_input;
using seckill::redis::connection_config;
using seckill::redis::gcra_bucket;
using seckill::redis::gcra_decision;
using seckill::redis::gcra_failure_policy;
using seckill::redis::gcra_limiter;
using seckill::redis::gcra_limiter_options;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::tuple_awaitable;

redis_server& shared_server() {
  static redis_server server;
  return server;
}

// One seckill_gcra_helper process (tests/redis/gcra_helper.cpp), its output in a temp file.
class helper_process {
 public:
  explicit helper_process(const std::vector<std::string>& args) {
    output_ = (dir_.path() / "output").string();
    seckill::detail::child_process::options o;
    o.argv = {SECKILL_GCRA_HELPER};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.output_path = output_;
    o.die_with_parent = true;
    process_.start(o);
  }
  /// Waits for the exit (killing it after `timeout`) and returns the output.
  std::string finish(std::chrono::milliseconds timeout, bool& clean) {
    clean = process_.wait_for(timeout);
    if (!clean) process_.kill_and_wait();
    std::ifstream in(output_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  seckill::detail::temp_dir dir_{"seckill-gcra"};
  std::string output_;
  seckill::detail::child_process process_;
};

connection_config config_of(const redis_server& server) {
  return seckill::test::config_for<connection_config>(server);
}

asio::awaitable<std::pair<std::error_code, gcra_decision>> check(gcra_limiter& l,
                                                                 std::string_view sku,
                                                                 std::string_view user,
                                                                 double tokens = 1) {
  auto [ec, d] = co_await l.async_check(sku, user, tokens, tuple_awaitable);
  co_return std::pair{ec, d};
}

// A reference bucket for gcra_decide.
struct ref_bucket {
  bool has_state = false;
  std::int64_t empty_at = 0;
};

TEST_SUITE("integration") {
  TEST_CASE(
      "gcra_limiter: every decision of the script is the reference's at the server's instants") {
    asio::io_context io;
    gcra_limiter limiter(
        io.get_executor(), config_of(shared_server()),
        {.sku_rate = 200, .sku_burst = 5, .user_rate = 50, .user_burst = 2, .prefilter = false});
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await limiter.async_connect(tuple_awaitable);
      REQUIRE(!cec);
      const auto sku_rule = limiter.sku_rule();
      const auto user_rule = limiter.user_rule();
      CHECK(sku_rule.per_us == 5000);
      CHECK(user_rule.span_us == 40000);
      ref_bucket sku;
      std::array<ref_bucket, 3> users{};
      const std::array<std::string, 3> names{"u0", "u1", "u2"};
      int admitted = 0, refused_sku = 0, refused_user = 0;
      for (int i = 0; i < 400; ++i) {
        const int u = i % 3;
        const double tokens = i % 7 == 0 ? 2.0 : 1.0;
        auto [ec, d] = co_await check(limiter, "ref-sku", names[u], tokens);
        REQUIRE(!ec);
        REQUIRE(d.server_now_us > 0);
        const std::array<gcra_input, 2> in{
            gcra_input{sku.has_state, sku.empty_at, sku_rule.cost(tokens), sku_rule.span_us},
            gcra_input{users[u].has_state, users[u].empty_at, user_rule.cost(tokens),
                       user_rule.span_us}};
        std::array<std::int64_t, 2> out{};
        const auto want = gcra_decide(in, d.server_now_us, out);
        INFO("call " << i << " at " << d.server_now_us);
        REQUIRE(d.admitted == want.admitted);
        CHECK(d.sku_empty_in_us == out[0] - d.server_now_us);
        CHECK(d.user_empty_in_us == out[1] - d.server_now_us);
        if (want.admitted) {
          ++admitted;
          sku = {true, out[0]};
          users[u] = {true, out[1]};
          CHECK(d.refused_by == gcra_bucket::none);
          CHECK(d.retry_after.count() == 0);
        } else {
          (want.refused_by == 0 ? refused_sku : refused_user)++;
          CHECK(d.refused_by == (want.refused_by == 0 ? gcra_bucket::sku : gcra_bucket::user));
          CHECK(d.retry_after.count() == want.retry_after);
        }
        if (i % 10 == 9) co_await seckill::test::sleep_for(3ms);  // let tokens come back
      }
      // the run went through every branch
      CHECK(admitted > 20);
      CHECK(refused_sku > 0);
      CHECK(refused_user > 0);
      const auto c = limiter.counters();
      CHECK(c.admitted == static_cast<std::uint64_t>(admitted));
      CHECK(c.refused_remote == static_cast<std::uint64_t>(refused_sku + refused_user));
      CHECK(c.refused_local == 0);
      limiter.close();
    });
  }

  TEST_CASE(
      "gcra_limiter: a refusal by the user bucket takes nothing from the SKU bucket and the keys "
      "expire when full") {
    asio::io_context io;
    gcra_limiter limiter(
        io.get_executor(), config_of(shared_server()),
        {.sku_rate = 1, .sku_burst = 3, .user_rate = 1, .user_burst = 1, .prefilter = false});
    auto admin = shared_server().admin();
    const std::string sku = "keys-sku";
    CHECK(gcra_limiter::sku_key(sku) == "seckill:{keys-sku}:rate");
    CHECK(gcra_limiter::user_key(sku, "ann") == "seckill:{keys-sku}:rate:ann");
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await limiter.async_connect(tuple_awaitable);
      REQUIRE(!cec);
      auto [e1, d1] = co_await check(limiter, sku, "ann");
      CHECK(d1.admitted);
      const std::string sku_state = admin.command("GET", gcra_limiter::sku_key(sku)).text;
      CHECK(!sku_state.empty());
      // the key lives until the bucket is full again: 1 s of 3 s here
      const auto ttl = admin.command("PTTL", gcra_limiter::sku_key(sku)).integer;
      CHECK(ttl > 0);
      CHECK(ttl <= 1000);
      CHECK(admin.command("PTTL", gcra_limiter::user_key(sku, "ann")).integer > 0);
      // ann's bucket is empty: refused by it, and the SKU's state unchanged
      auto [e2, d2] = co_await check(limiter, sku, "ann");
      CHECK(!e2);
      CHECK_FALSE(d2.admitted);
      CHECK(d2.refused_by == gcra_bucket::user);
      CHECK(d2.retry_after > 900ms);
      CHECK(admin.command("GET", gcra_limiter::sku_key(sku)).text == sku_state);
      // two more users take the SKU's two other tokens, the fourth is refused by the SKU
      auto [e3, d3] = co_await check(limiter, sku, "bob");
      auto [e4, d4] = co_await check(limiter, sku, "cy");
      auto [e5, d5] = co_await check(limiter, sku, "dee");
      CHECK(d3.admitted);
      CHECK(d4.admitted);
      CHECK_FALSE(d5.admitted);
      CHECK(d5.refused_by == gcra_bucket::sku);
      CHECK(admin.command("EXISTS", gcra_limiter::user_key(sku, "dee")).integer == 0);
      // anonymous: the SKU's bucket only
      auto [e6, d6] = co_await check(limiter, sku, "");
      CHECK_FALSE(d6.admitted);
      CHECK(d6.refused_by == gcra_bucket::sku);
      (void)e1, (void)e3, (void)e4, (void)e5, (void)e6;
      limiter.close();
    });
  }

  TEST_CASE(
      "gcra_limiter: the pre-filter refuses an empty bucket without a round trip until its time") {
    asio::io_context io;
    gcra_limiter limiter(io.get_executor(), config_of(shared_server()),
                         {.sku_rate = 5, .sku_burst = 2});  // 200 ms a token
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await limiter.async_connect(tuple_awaitable);
      REQUIRE(!cec);
      const std::string sku = "prefilter-sku";
      auto [e1, d1] = co_await check(limiter, sku, "");
      CHECK(d1.admitted);
      CHECK_FALSE(d1.local);
      auto [e2, d2] = co_await check(limiter, sku, "");
      CHECK(d2.admitted);
      // empty now: every refusal from here on is local, none reaches the server
      for (int i = 0; i < 50; ++i) {
        auto [ec, d] = co_await check(limiter, sku, "");
        CHECK(!ec);
        CHECK_FALSE(d.admitted);
        CHECK(d.local);
        CHECK(d.refused_by == gcra_bucket::sku);
        CHECK(d.retry_after > 0us);
        CHECK(d.retry_after <= 200ms);
      }
      // the same answer synchronously (what the engine asks first)
      CHECK(limiter.refuses_locally(sku, "", 1));
      CHECK(limiter.refuses_locally(sku, "anyone", 1));
      CHECK_FALSE(limiter.refuses_locally("prefilter-unknown", "", 1));
      auto c = limiter.counters();
      CHECK(c.refused_local == 52);
      CHECK(c.admitted == 2);
      CHECK(c.refused_remote == 0);  // every answer of the server counts as one or the other
      // another SKU is not affected
      auto [e3, d3] = co_await check(limiter, "prefilter-other", "");
      CHECK(d3.admitted);
      // once the token is back, the server is asked again and admits
      co_await seckill::test::sleep_for(210ms);
      auto [e4, d4] = co_await check(limiter, sku, "");
      CHECK(d4.admitted);
      CHECK_FALSE(d4.local);
      (void)e1, (void)e2, (void)e3, (void)e4;
      limiter.close();
    });
  }

  TEST_CASE("gcra_limiter: refuses bad arguments and recovers from a flushed script cache") {
    asio::io_context io;
    gcra_limiter limiter(io.get_executor(), config_of(shared_server()),
                         {.sku_rate = 100, .sku_burst = 4, .prefilter = false});
    CHECK_THROWS_AS(gcra_limiter(io.get_executor(), config_of(shared_server()), {}),
                    seckill::error);  // no bucket
    CHECK_THROWS_AS(gcra_limiter(io.get_executor(), config_of(shared_server()), {.sku_rate = 2e6}),
                    seckill::error);
    CHECK_THROWS_AS(gcra_limiter(io.get_executor(), config_of(shared_server()),
                                 {.sku_rate = 10, .sku_burst = 0.5}),
                    seckill::error);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await limiter.async_connect(tuple_awaitable);
      REQUIRE(!cec);
      auto [a, da] = co_await check(limiter, "", "");
      CHECK(a == errc::invalid_argument);
      auto [b, db] = co_await check(limiter, "x{y}", "");
      CHECK(b == errc::invalid_argument);
      auto [c, dc] = co_await check(limiter, "ok", "", 5);  // above the burst of 4
      CHECK(c == errc::invalid_argument);
      CHECK(limiter.counters().failures == 0);
      shared_server().admin().command("SCRIPT", "FLUSH");
      auto [d, dd] = co_await check(limiter, "after-flush", "");
      CHECK(!d);
      CHECK(dd.admitted);
      (void)da, (void)db, (void)dc;
      limiter.close();
    });
  }

  TEST_CASE("gcra_limiter: with the server killed it fails closed by default and open when told") {
    redis_server server;
    asio::io_context io;
    auto cfg = config_of(server);
    gcra_limiter closed(io.get_executor(), cfg, {.sku_rate = 1000, .sku_burst = 10});
    gcra_limiter open(io.get_executor(), cfg,
                      {.sku_rate = 1000,
                       .sku_burst = 10,
                       .on_failure = gcra_failure_policy::fail_open,
                       .timeout = 300ms});
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [e1] = co_await closed.async_connect(tuple_awaitable);
      auto [e2] = co_await open.async_connect(tuple_awaitable);
      REQUIRE(!e1);
      REQUIRE(!e2);
      auto [ok1, d1] = co_await check(closed, "down", "");
      CHECK(d1.admitted);
      server.kill();
      co_await seckill::test::sleep_for(50ms);
      auto [ec_closed, dc] = co_await check(closed, "down", "");
      CHECK(ec_closed == errc::store_unavailable);
      CHECK_FALSE(dc.admitted);
      auto [ac, admitted_closed] = co_await closed.async_acquire("down", "", 1, tuple_awaitable);
      CHECK(ac == errc::store_unavailable);
      CHECK_FALSE(admitted_closed);
      auto [ec_open, dop] = co_await check(open, "down", "");
      CHECK(!ec_open);
      CHECK(dop.admitted);
      CHECK(dop.failed_open);
      CHECK(closed.counters().failures == 2);
      CHECK(closed.counters().failed_open == 0);
      CHECK(open.counters().failures == 1);
      CHECK(open.counters().failed_open == 1);
      // the server back: the count is the server's again
      server.restart();
      for (int i = 0; i < 100; ++i) {
        auto [ec, d] = co_await check(closed, "down", "");
        if (!ec) {
          CHECK(d.admitted);
          break;
        }
        co_await seckill::test::sleep_for(50ms);
      }
      (void)ok1;
      closed.close();
      open.close();
    });
  }

  TEST_CASE(
      "gcra_limiter: 4 processes hammering one bucket for 3 s are admitted exactly what GCRA "
      "allows") {
    // The bound. Redis runs the scripts one at a time and each reads TIME
    // once, so every call has an instant on the server's clock, in
    // microseconds, and the calls a total order. The bucket's key is new, so
    // the bucket is full at the first call's instant t0: GCRA admits a k-th
    // token only when t0 - span + k * per <= now <= t1 (the last call's
    // instant), so admitted <= (t1 - t0 + span) / per. The arithmetic is on
    // integers of TIME's own unit, and 100 per second is a whole 10,000 us a
    // token: there is no rounding to allow for, the bound is exact. Below it:
    // 16 calls are always in flight, so each token is taken within a few
    // milliseconds of coming back, well inside the 490 ms (span - per) that
    // GCRA keeps as credit; only the last token, if it came back after the
    // last call, may be missing: admitted >= bound - 1.
    constexpr double rate = 100, burst = 50;
    constexpr std::int64_t per = 10'000, span = 500'000;
    constexpr int processes = 4;
    const std::string sku =
        "xproc-gcra-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    const auto start_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                              (std::chrono::system_clock::now() + 1500ms).time_since_epoch())
                              .count();
    std::vector<std::unique_ptr<helper_process>> ps;
    for (int p = 0; p < processes; ++p)
      ps.push_back(std::make_unique<helper_process>(std::vector<std::string>{
          shared_server().port_string(), sku, "100", "50", std::to_string(start_at), "3000", "4"}));
    std::int64_t admitted = 0, refused = 0;
    std::int64_t t0 = std::numeric_limits<std::int64_t>::max(), t1 = 0;
    for (auto& p : ps) {
      bool clean = false;
      const std::string out = p->finish(60s, clean);
      INFO("helper output:\n" << out);
      REQUIRE(clean);
      const auto at = out.find("RESULT ");
      REQUIRE(at != std::string::npos);
      std::istringstream words(out.substr(at + 7));
      std::int64_t a = 0, r = 0, first = 0, last = 0;
      REQUIRE(static_cast<bool>(words >> a >> r >> first >> last));
      CHECK(a > 0);
      admitted += a;
      refused += r;
      t0 = std::min(t0, first);
      t1 = std::max(t1, last);
    }
    const std::int64_t bound = (t1 - t0 + span) / per;
    INFO("admitted " << admitted << ", refused " << refused << ", server window " << (t1 - t0)
                     << " us, bound " << bound);
    MESSAGE("admitted " << admitted << " of " << admitted + refused << " calls in " << (t1 - t0)
                        << " us of server time; GCRA allows " << bound);
    CHECK(t1 - t0 > 2'500'000);  // the processes did overlap for most of the window
    CHECK(refused > admitted);   // demand far above the rate
    CHECK(admitted <= bound);
    CHECK(admitted >= bound - 1);
    (void)rate, (void)burst;
  }

  TEST_CASE("gcra_limiter: the purchase engine admits through it and refuses past the rate") {
    asio::io_context io;
    gcra_limiter limiter(io.get_executor(), config_of(shared_server()),
                         {.sku_rate = 1, .sku_burst = 3, .user_rate = 1, .user_burst = 1});
    seckill::memory_store<> store{io.get_executor()};
    seckill::no_breaker breaker;
    seckill::snowflake<> ids{1, 1};
    seckill::no_payment payment;
    seckill::memory_orders orders;
    seckill::purchase_engine<seckill::memory_store<>, gcra_limiter, seckill::no_breaker> engine{
        store, limiter, breaker, ids, payment, orders};
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await limiter.async_connect(tuple_awaitable);
      REQUIRE(!cec);
      auto [sec] = co_await store.async_set_stock("engine-sku", 100, tuple_awaitable);
      REQUIRE(!sec);
      std::vector<std::error_code> got;
      for (const char* user : {"a", "a", "b", "c", "d"}) {
        auto [ec, r] =
            co_await engine.async_purchase({.sku = "engine-sku", .user = user}, tuple_awaitable);
        got.push_back(ec);
        (void)r;
      }
      // a; a again (its bucket is empty); b; c (the SKU's third); d (the SKU is empty)
      CHECK(!got[0]);
      CHECK(got[1] == errc::rate_limited);
      CHECK(!got[2]);
      CHECK(!got[3]);
      CHECK(got[4] == errc::rate_limited);
      CHECK(orders.size() == 3);
      limiter.close();
    });
  }
}

}  // namespace integration_gcra_limiter
