// etcd_store against the stock_store conformance suite, on a real etcd, plus
// what only a shared store promises: two nodes racing on one SKU never oversell;
// order records forgotten after their retention through shared leases; range
// edges refused with a message; answers lost on the wire replayed on retry.
#include "etcd_store_fixtures.hpp"

#include <seckill/clock.hpp>
#include <seckill/etcd/etcd_store.hpp>

#include "support/error_message.hpp"

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

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
        s.async_reserve("hot", 1, index * 1000 + i + 1, 60s,
                        [&](std::error_code ec, seckill::reserve_result r) {
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
  TEST_CASE(
      "etcd store - order_retention and retention_buckets out of range are refused naming the "
      "value") {
    asio::io_context io;
    seckill::etcd::client_options o;
    o.endpoints = {{"127.0.0.1", seckill::test::free_loopback_port()}};  // never contacted
    auto make = [&](etcd_store_options opts) { store_type s(io.get_executor(), o, opts); };
    auto with_retention = [](std::chrono::milliseconds r) {
      etcd_store_options opts;
      opts.order_retention = r;
      return opts;
    };
    for (auto bad : {999ms, -1ms, std::chrono::milliseconds(std::chrono::hours(24 * 36500)) + 1ms,
                     std::chrono::milliseconds::max(), std::chrono::milliseconds::min()}) {
      CAPTURE(bad.count());
      const auto message = seckill::test::message_of([&] { make(with_retention(bad)); });
      CHECK(message.find("order_retention " + std::to_string(bad.count()) + " ms out of [1000, ") !=
            std::string::npos);
      CHECK_THROWS_AS(make(with_retention(bad)), seckill::error);
    }
    for (unsigned buckets : {0u, 101u}) {
      etcd_store_options opts;
      opts.retention_buckets = buckets;
      CHECK(seckill::test::message_of([&] { make(opts); })
                .starts_with("etcd_store_options: retention_buckets " + std::to_string(buckets) +
                             " out of [1, 100]"));
    }
    CHECK_NOTHROW(make(with_retention(0ms)));  // keep every record
    CHECK_NOTHROW(make(with_retention(1s)));
    CHECK_NOTHROW(make(with_retention(store_type::max_order_retention)));
    CHECK(store_type(io.get_executor(), o).options().order_retention == 24h);
  }

  TEST_CASE(
      "etcd store - settled and refused records are forgotten after the retention and held ones "
      "stay") {
    seckill::test::etcd_cluster etcd(1);
    etcd_store_options opts;
    opts.order_retention = 3s;
    opts.retention_buckets = 3;  // a 1 s window: records live 3 s to 4 s (+ etcd's revocation)
    store_fixture fx(etcd.options(), opts);
    const std::string sku = "retained";
    const std::string orders = "seckill/" + sku + "/order/";
    REQUIRE(cf::set_stock(fx, sku, 4) == cf::no_error);
    const auto written = std::chrono::steady_clock::now();  // before any settled or refused write
    REQUIRE(cf::reserve_ok(fx, sku, 1, 1).status ==
            seckill::reserve_status::reserved);  // stays held
    REQUIRE(cf::reserve_ok(fx, sku, 1, 2).status == seckill::reserve_status::reserved);
    REQUIRE(std::get<0>(cf::commit(fx, sku, 2)) == cf::no_error);
    REQUIRE(cf::reserve_ok(fx, sku, 1, 3).status == seckill::reserve_status::reserved);
    REQUIRE(std::get<0>(cf::rollback(fx, sku, 3)) == cf::no_error);
    const auto refused = cf::reserve_ok(fx, sku, 5, 4);
    REQUIRE(refused.status == seckill::reserve_status::sold_out);
    {  // order 5's hold passes by the store's clock; the reaper settles it
      auto [ec, r] = cf::reserve(fx, sku, 1, 5, 1s);
      REQUIRE(!ec);
      REQUIRE(r.status == seckill::reserve_status::reserved);
    }
    fx.clock.advance(2s);
    REQUIRE(std::get<1>(cf::reap(fx, sku, 10)) == 1u);
    cf::check_level(cf::stock_ok(fx, sku), 2, 1, 1);

    auto kvs = keys_under(etcd.options(), orders);
    REQUIRE(kvs.size() == 5u);
    std::set<std::int64_t> leases;
    for (const auto& kv : kvs) {
      CAPTURE(kv.key);
      if (kv.key == orders + "1") {
        CHECK(kv.lease == 0);  // held: never forgotten
      } else {
        CHECK(kv.lease != 0);
        leases.insert(kv.lease);
      }
    }
    CHECK(leases.size() <= 2u);  // shared, not one per order
    CHECK(fx.store().leases_granted() == leases.size());

    // Within the retention every order answers as it did the first time.
    std::this_thread::sleep_until(written + 1500ms);
    auto replay = cf::reserve_ok(fx, sku, 1, 4);
    CHECK(replay.replayed);
    CHECK(replay.status == seckill::reserve_status::sold_out);
    CHECK(replay.remaining == refused.remaining);
    CHECK(cf::reserve_ok(fx, sku, 1, 2).replayed);
    CHECK(std::get<1>(cf::commit(fx, sku, 2)).status == seckill::settle_status::already);
    CHECK(std::get<1>(cf::rollback(fx, sku, 3)).status == seckill::settle_status::already);
    CHECK(std::get<1>(cf::rollback(fx, sku, 5)).status == seckill::settle_status::already);
    CHECK(std::get<0>(cf::commit(fx, sku, 5)) == seckill::errc::order_rolled_back);
    CHECK(keys_under(etcd.options(), orders).size() == 5u);
    REQUIRE(std::chrono::steady_clock::now() < written + 3s);  // all of that within the retention

    // Then etcd forgets them: between the retention and the retention + a window + 1 s
    // rounding + etcd's revocation.
    std::chrono::steady_clock::duration gone_after{};
    for (;;) {
      kvs = keys_under(etcd.options(), orders);
      if (kvs.size() == 1u || std::chrono::steady_clock::now() > written + 12s) break;
      std::this_thread::sleep_for(50ms);
    }
    gone_after = std::chrono::steady_clock::now() - written;
    MESSAGE("settled and refused records gone after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(gone_after).count()
            << " ms (retention 3000 ms)");
    REQUIRE(kvs.size() == 1u);
    CHECK(kvs.front().key == orders + "1");
    CHECK(gone_after >= 3s);
    CHECK(gone_after < 8s);
    // The held order is intact, its hold index too.
    CHECK(keys_under(etcd.options(), "seckill/" + sku + "/hold/").size() == 1u);
    cf::check_level(cf::stock_ok(fx, sku), 2, 1, 1);
    CHECK(std::get<0>(cf::commit(fx, sku, 1)) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), 2, 0, 2);
    // Forgotten ids are new again: a reserve answers afresh, a commit finds nothing.
    auto again = cf::reserve_ok(fx, sku, 1, 4);
    CHECK_FALSE(again.replayed);
    CHECK(again.status == seckill::reserve_status::reserved);
    CHECK(std::get<0>(cf::commit(fx, sku, 3)) == seckill::errc::unknown_order);
    CHECK(fx.store().last_error().find("forgotten after the retention") != std::string::npos);
  }

  TEST_CASE(
      "etcd store - refused attempts share a lease per window and leave no keys after the "
      "retention") {
    seckill::test::etcd_cluster etcd(1);
    constexpr int attempts = 300;
    auto run = [&](std::chrono::milliseconds retention, const std::string& sku) {
      etcd_store_options opts;
      opts.order_retention = retention;
      opts.retention_buckets = 4;
      store_fixture fx(etcd.options(), opts);
      REQUIRE(cf::set_stock(fx, sku, 0) == cf::no_error);
      const auto start = std::chrono::steady_clock::now();
      for (int i = 1; i <= attempts; ++i) {
        auto r = cf::reserve_ok(fx, sku, 1, i);
        REQUIRE(r.status == seckill::reserve_status::sold_out);
      }
      const auto took = std::chrono::steady_clock::now() - start;
      const auto during = keys_under(etcd.options(), "seckill/" + sku + "/").size();
      std::this_thread::sleep_for(retention > 0ms ? retention + retention / 4 + 2s : 3s);
      const auto after = keys_under(etcd.options(), "seckill/" + sku + "/").size();
      return std::tuple{during, after, fx.store().leases_granted(), took};
    };
    // order_retention 0: every record kept, as before leases
    const auto [kept_during, kept_after, kept_leases, kept_took] = run(0ms, "kept");
    CHECK(kept_during == attempts + 1u);
    CHECK(kept_after == attempts + 1u);
    CHECK(kept_leases == 0u);
    const auto [during, after, leases, took] = run(2s, "forgotten");
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    MESSAGE(attempts << " refused attempts in " << ms
                     << " ms: keys with order_retention 0: " << kept_during << " during, "
                     << kept_after << " after; with order_retention 2 s: " << during << " during, "
                     << after << " after, " << leases << " leases granted (window 500 ms)");
    CHECK(during == attempts + 1u);
    CHECK(after == 1u);  // the stock record alone
    CHECK(leases >= 1u);
    CHECK(leases <= static_cast<std::uint64_t>(ms / 500 + 2));
    CHECK(lease_count(etcd.options()) == 0u);  // every window's lease expired and was revoked
  }

  TEST_CASE(
      "etcd store - range edges are refused with invalid_argument and a message naming the value") {
    seckill::test::etcd_cluster etcd(1);
    store_fixture fx(etcd.options(), {});
    auto& store = fx.store();
    constexpr auto int64_max = std::numeric_limits<std::int64_t>::max();
    constexpr auto max_q = store_type::max_quantity;
    const std::string sku = "edges";
    auto last_error_has = [&](const std::string& text) {
      const auto m = store.last_error();
      INFO(m);
      CHECK(m.find(text) != std::string::npos);
    };
    // set_stock beyond what a record keeps exact, or with the holds beyond it
    CHECK(cf::set_stock(fx, sku, int64_max) == seckill::errc::invalid_argument);
    last_error_has(
        "set_stock of sku 'edges' to 9223372036854775807: quantity 9223372036854775807 out of "
        "[0, " +
        std::to_string(max_q) + "]");
    CHECK(std::get<0>(cf::stock(fx, sku)) == seckill::errc::unknown_sku);  // nothing written
    REQUIRE(cf::set_stock(fx, sku, max_q) == cf::no_error);
    REQUIRE(cf::reserve_ok(fx, sku, 5, 1).status == seckill::reserve_status::reserved);
    REQUIRE(cf::reserve_ok(fx, sku, 2, 2).status == seckill::reserve_status::reserved);
    REQUIRE(std::get<0>(cf::commit(fx, sku, 2)) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), max_q - 7, 5, 2);
    CHECK(cf::set_stock(fx, sku, int64_max) == seckill::errc::invalid_argument);
    CHECK(cf::set_stock(fx, sku, max_q) == seckill::errc::invalid_argument);
    last_error_has("with 5 reserved and 2 committed the total would exceed " +
                   std::to_string(max_q) + "; at most " + std::to_string(max_q - 7) +
                   " can be set");
    CHECK(cf::set_stock(fx, sku, max_q - 6) == seckill::errc::invalid_argument);
    CHECK(cf::set_stock(fx, sku, max_q - 7) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), max_q - 7, 5, 2);
    // every sum stays exact at the edge: give back and take everything
    REQUIRE(std::get<0>(cf::rollback(fx, sku, 1)) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), max_q - 2, 0, 2);
    auto all = cf::reserve_ok(fx, sku, max_q - 2, 3);
    CHECK(all.status == seckill::reserve_status::reserved);
    CHECK(all.remaining == 0);
    CHECK(cf::reserve_ok(fx, sku, max_q, 4).status == seckill::reserve_status::sold_out);
    REQUIRE(std::get<0>(cf::commit(fx, sku, 3)) == cf::no_error);
    cf::check_level(cf::stock_ok(fx, sku), 0, 0, max_q);

    // reserve: quantity and hold out of range
    const std::string small = "edges-small";
    REQUIRE(cf::set_stock(fx, small, 10) == cf::no_error);
    CHECK(std::get<0>(cf::reserve(fx, small, int64_max, 10, 30s)) ==
          seckill::errc::invalid_argument);
    last_error_has(
        "reserve of order 10 on sku 'edges-small': quantity 9223372036854775807 out of [1, " +
        std::to_string(max_q) + "]");
    CHECK(std::get<0>(cf::reserve(fx, small, max_q + 1, 10, 30s)) ==
          seckill::errc::invalid_argument);
    CHECK(std::get<0>(cf::reserve(fx, small, 1, 11, std::chrono::milliseconds::max())) ==
          seckill::errc::invalid_argument);
    last_error_has(
        "reserve of order 11 on sku 'edges-small': hold 9223372036854775807 ms out of [1, " +
        std::to_string(store_type::max_hold.count()) + "] ms");
    CHECK(std::get<0>(cf::reserve(fx, small, 1, 11, store_type::max_hold + 1ms)) ==
          seckill::errc::invalid_argument);
    CHECK(std::get<0>(cf::reserve(fx, small, 1, 11, std::chrono::milliseconds::min())) ==
          seckill::errc::invalid_argument);
    last_error_has("hold -9223372036854775808 ms out of [1, ");
    cf::check_level(cf::stock_ok(fx, small), 10, 0, 0);  // refusals recorded nothing
    {
      auto [ec, r] =
          cf::reserve(fx, small, 1, 10, store_type::max_hold);  // the documented maximum is fine
      CHECK(!ec);
      CHECK(r.status == seckill::reserve_status::reserved);
      CHECK_FALSE(r.replayed);
    }
    // order ids 0 and negative are refused (reserve_request: order ids are > 0)
    for (std::int64_t id :
         {std::int64_t{0}, std::int64_t{-7}, std::numeric_limits<std::int64_t>::min()}) {
      CAPTURE(id);
      CHECK(std::get<0>(cf::reserve(fx, small, 1, id, 30s)) == seckill::errc::invalid_argument);
      last_error_has("reserve of order " + std::to_string(id) + " on sku 'edges-small': order id " +
                     std::to_string(id) + " is not > 0");
    }
    cf::check_level(cf::stock_ok(fx, small), 9, 1, 0);
    // the largest order id is an id like any other: idempotent
    for (std::int64_t id : {std::int64_t{12}, std::int64_t{13}, int64_max}) {
      CAPTURE(id);
      auto [ec, first] = cf::reserve(fx, small, 1, id, 30s);
      REQUIRE(!ec);
      CHECK(first.status == seckill::reserve_status::reserved);
      CHECK_FALSE(first.replayed);
      CHECK(first.order_id == id);
      auto [ec2, again] = cf::reserve(fx, small, 1, id, 30s);
      REQUIRE_MESSAGE(!ec2, store.last_error());
      CHECK(again.replayed);
      CHECK(again.remaining == first.remaining);
    }
    cf::check_level(cf::stock_ok(fx, small), 6, 4, 0);

    // the reaper takes any limit: SIZE_MAX reaps every expired hold, 0 none
    fx.clock.advance(31s);
    CHECK(std::get<1>(cf::reap(fx, small, 0)) == 0u);
    auto [rec, reaped] = cf::reap(fx, small, std::numeric_limits<std::size_t>::max());
    CHECK_MESSAGE(!rec, store.last_error());
    CHECK(reaped == 3u);  // ids 12, 13 and INT64_MAX; the max_hold one stays
    cf::check_level(cf::stock_ok(fx, small), 9, 1, 0);
    auto [rec2, reaped2] = cf::reap(fx, small, std::numeric_limits<std::size_t>::max());
    CHECK(!rec2);
    CHECK(reaped2 == 0u);
    // an empty sku says so
    CHECK(std::get<0>(cf::reap(fx, "", 1)) == seckill::errc::invalid_argument);
    last_error_has("reap_expired of sku '' (limit 1): empty sku");
  }

  TEST_CASE(
      "etcd store - a reserve commit or rollback whose answer was lost answers as the first one on "
      "retry") {
    seckill::test::etcd_cluster etcd(1);
    answer_dropping_proxy proxy(etcd.endpoint_of(0));
    store_fixture fx(proxy.options(), {});
    store_fixture direct(etcd.options(), {});  // sees what etcd holds
    const std::string sku = "lost";
    REQUIRE(cf::set_stock(fx, sku, 10) == cf::no_error);
    auto lost = [&](auto ec) {
      CHECK(ec == seckill::errc::store_unavailable);
      CHECK_FALSE(fx.store().last_error().empty());
      MESSAGE("lost answer: " << fx.store().last_error());
    };

    // a reserve that ran: the retry replays its answer and deducts nothing more
    proxy.drop_next_write_answers(1);
    lost(std::get<0>(cf::reserve(fx, sku, 2, 1, 30s)));
    CHECK(proxy.dropped() == 1);
    cf::check_level(cf::stock_ok(direct, sku), 8, 2, 0);
    auto replay = cf::reserve_ok(fx, sku, 2, 1);
    CHECK(replay.replayed);
    CHECK(replay.status == seckill::reserve_status::reserved);
    CHECK(replay.remaining == 8);
    cf::check_level(cf::stock_ok(fx, sku), 8, 2, 0);

    // a commit that ran: the retry answers already, and commits once
    proxy.drop_next_write_answers(1);
    lost(std::get<0>(cf::commit(fx, sku, 1)));
    cf::check_level(cf::stock_ok(direct, sku), 8, 0, 2);
    auto [cec, c] = cf::commit(fx, sku, 1);
    CHECK(cec == cf::no_error);
    CHECK(c.status == seckill::settle_status::already);
    CHECK(std::get<0>(cf::rollback(fx, sku, 1)) == seckill::errc::order_committed);
    cf::check_level(cf::stock_ok(fx, sku), 8, 0, 2);

    // a rollback that ran: the retry answers already, and gives back once
    REQUIRE(cf::reserve_ok(fx, sku, 3, 2).status == seckill::reserve_status::reserved);
    proxy.drop_next_write_answers(1);
    lost(std::get<0>(cf::rollback(fx, sku, 2)));
    cf::check_level(cf::stock_ok(direct, sku), 8, 0, 2);
    auto [rec, r] = cf::rollback(fx, sku, 2);
    CHECK(rec == cf::no_error);
    CHECK(r.status == seckill::settle_status::already);
    CHECK(std::get<0>(cf::commit(fx, sku, 2)) == seckill::errc::order_rolled_back);
    cf::check_level(cf::stock_ok(fx, sku), 8, 0, 2);

    // a refusal that ran: the retry is still refused, even once stock would allow it
    proxy.drop_next_write_answers(1);
    lost(std::get<0>(cf::reserve(fx, sku, 9, 3, 30s)));
    REQUIRE(cf::set_stock(fx, sku, 20) == cf::no_error);
    auto refused = cf::reserve_ok(fx, sku, 9, 3);
    CHECK(refused.replayed);
    CHECK(refused.status == seckill::reserve_status::sold_out);
    CHECK(refused.remaining == 8);

    // a commit after the hold passed, whose answer (order_rolled_back) was lost
    REQUIRE(cf::reserve_ok(fx, sku, 4, 4).status == seckill::reserve_status::reserved);
    fx.clock.advance(31s);
    proxy.drop_next_write_answers(1);
    lost(std::get<0>(cf::commit(fx, sku, 4)));
    CHECK(std::get<0>(cf::commit(fx, sku, 4)) == seckill::errc::order_rolled_back);
    CHECK(std::get<1>(cf::rollback(fx, sku, 4)).status == seckill::settle_status::already);
    CHECK(std::get<1>(cf::reap(fx, sku, 10)) == 0u);
    cf::check_level(cf::stock_ok(fx, sku), 20, 0, 2);
    CHECK(proxy.dropped() == 5);
  }
}
