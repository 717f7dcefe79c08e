// redis_store's buyer guarantees beyond the conformance suite: two stores on
// separate connections (two nodes) racing the per-user limit and one request
// id, the order stream matching the recorded orders, the reconciliation
// catching a tampered store, and commits whose connection is lost recorded
// exactly once when retried.

#include <seckill/redis/redis_store.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"
#include "store_conformance.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

using seckill::errc;
using seckill::order_state;
using seckill::reserve_request;
using seckill::reserve_status;
using seckill::settle_status;
using seckill::redis::connection_config;
using seckill::redis::redis_store;
using seckill::test::redis_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace conf = seckill::test::conformance;

namespace integration_store_buyers {

// One server, two stores on their own connections: two nodes of a sale.
class two_nodes {
 public:
  two_nodes()
      : a_(io_.get_executor(), seckill::test::config_for<connection_config>(server_)),
        b_(io_.get_executor(), seckill::test::config_for<connection_config>(server_)) {
    for (redis_store* s : {&a_, &b_}) {
      std::optional<std::error_code> connected;
      s->async_connect([&](std::error_code ec) { connected = ec; });
      while (!connected) io_.run_one_for(10ms);
      REQUIRE_MESSAGE(!*connected, s->connection().last_error());
    }
  }
  two_nodes(const two_nodes&) = delete;
  two_nodes& operator=(const two_nodes&) = delete;
  ~two_nodes() {
    a_.close();
    b_.close();
    io_.restart();
    io_.run_for(5s);
  }

  redis_store& store() { return a_; }  // node a, for the conformance helpers
  redis_store& node(int i) { return i % 2 == 0 ? a_ : b_; }
  asio::io_context& io() { return io_; }
  std::chrono::milliseconds hold() { return 60s; }
  redis_server& server() { return server_; }

 private:
  redis_server server_;
  asio::io_context io_;
  redis_store a_;
  redis_store b_;
};

constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

// Runs `make(k)` for k in [0, n) on two threads until all finished (120 s at most).
template <class Make>
void run_on_two_threads(two_nodes& fx, int n, Make make) {
  auto& io = fx.io();
  io.restart();
  std::atomic<int> finished{0};
  for (int k = 0; k < n; ++k)
    asio::co_spawn(io, make(k), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      if (finished.fetch_add(1) + 1 == n) io.stop();
    });
  auto guard = asio::make_work_guard(io);
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (finished.load() < n && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(5ms);
  io.stop();
  t1.join();
  t2.join();
  REQUIRE(finished.load() == n);
}

// The stream's entries: order id -> {quantity, user, request_id}, and how many entries.
struct streamed {
  std::map<std::int64_t, std::vector<std::string>> orders;
  std::size_t entries = 0;
};

streamed read_stream(const redis_server& server, const std::string& sku) {
  streamed out;
  auto entries = server.admin().command("XRANGE", redis_store::orders_key(sku), "-", "+");
  for (const auto& e : entries.elements) {
    ++out.entries;
    std::map<std::string, std::string> fields;
    const auto& flat = e.elements.at(1).elements;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) fields[flat[i].text] = flat[i + 1].text;
    REQUIRE(fields.size() == 4);
    out.orders[std::stoll(fields.at("order_id"))] = {fields.at("quantity"), fields.at("user"),
                                                     fields.at("request_id")};
  }
  return out;
}

// Every committed order is streamed exactly once, as get_order and list_orders say.
void check_stream_matches(two_nodes& fx, const std::string& sku, std::size_t expected_orders) {
  const auto orders = conf::all_orders(fx, sku, seckill::max_order_page);
  const auto stream = read_stream(fx.server(), sku);
  CHECK(orders.size() == expected_orders);
  CHECK(stream.entries == expected_orders);
  CHECK(stream.orders.size() == expected_orders);  // no order id twice
  std::int64_t units = 0;
  for (const auto& o : orders) {
    CAPTURE(o.order_id);
    REQUIRE(stream.orders.count(o.order_id) == 1);
    const auto& s = stream.orders.at(o.order_id);
    CHECK(s[0] == std::to_string(o.quantity));
    CHECK(s[1] == o.user);
    CHECK(s[2] == o.request_id);
    auto [ec, one] = conf::get_order(fx, sku, o.order_id);
    CHECK(ec == std::error_code{});
    CHECK(one.quantity == o.quantity);
    CHECK(one.user == o.user);
    CHECK(one.request_id == o.request_id);
    units += o.quantity;
  }
  CHECK(conf::stock_ok(fx, sku).committed == units);
  auto [rec, report] = conf::reconcile(fx, sku);
  CHECK(rec == std::error_code{});
  CHECK(report.ok());
}

// Waits until node a answers again.
void wait_recovered(two_nodes& fx, const std::string& sku) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  for (;;) {
    auto [ec, level] = conf::stock(fx, sku);
    if (!ec) return;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < give_up,
                    "the store did not recover: ", ec.message());
    std::this_thread::sleep_for(20ms);
  }
}

// Commits `ids` on node a all at once, with `fault` run once they are sent;
// returns the ids whose commit failed (store_unavailable: uncertain).
template <class Fault>
std::vector<std::int64_t> commit_all(two_nodes& fx, const std::string& sku,
                                     const std::vector<std::int64_t>& ids, Fault fault) {
  auto& io = fx.io();
  io.restart();
  std::vector<std::int64_t> failed;
  std::size_t done = 0;
  for (auto id : ids)
    fx.store().async_commit(sku, id, [&, id](std::error_code ec, seckill::settle_result) {
      ++done;
      if (ec) {
        CHECK(ec == errc::store_unavailable);
        failed.push_back(id);
      }
    });
  for (int i = 0; i < 5; ++i) io.poll();  // the commits are written
  fault();
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (done < ids.size() && std::chrono::steady_clock::now() < give_up) io.run_one_for(10ms);
  REQUIRE(done == ids.size());
  return failed;
}

// Retries each commit until it answers; returns how many answered `already`.
std::size_t retry_commits(two_nodes& fx, const std::string& sku,
                          const std::vector<std::int64_t>& ids) {
  std::size_t already = 0;
  for (auto id : ids) {
    for (int attempt = 0;; ++attempt) {
      auto [ec, s] = conf::commit(fx, sku, id);
      if (!ec) {
        if (s.status == settle_status::already) ++already;
        break;
      }
      REQUIRE_MESSAGE(attempt < 100, ec.message());
      std::this_thread::sleep_for(20ms);
    }
  }
  return already;
}

}  // namespace integration_store_buyers

using namespace integration_store_buyers;

TEST_SUITE("integration") {
  TEST_CASE("redis store keeps the buyer keys and their TTLs as documented") {
    two_nodes fx;
    const std::string sku = "buyer-keys";
    REQUIRE(conf::set_policy(fx, sku, 2) == std::error_code{});
    REQUIRE(conf::set_stock(fx, sku, 10) == std::error_code{});
    auto admin = fx.server().admin();
    CHECK(admin.command("HGET", redis_store::stock_key(sku), "per_user_limit").text == "2");
    REQUIRE(conf::buy(fx, sku, 1, "alice", 1, "r-1").status == reserve_status::reserved);
    const auto users = redis_store::users_key(sku);
    const auto r1 = redis_store::request_key(sku, "alice", "r-1");
    CHECK(r1 == "seckill:{buyer-keys}:request:alice/r-1");
    CHECK(admin.command("HGET", users, "alice").text == "1");
    CHECK(admin.command("GET", r1).text == "1");
    CHECK(admin.command("PTTL", r1).integer == -1);  // bound while held: no TTL
    CHECK(admin.command("HGET", redis_store::order_key(sku, 1), "user").text == "alice");
    CHECK(admin.command("HGET", redis_store::order_key(sku, 1), "request").text == "r-1");
    const std::int64_t day = 24 * 3600 * 1000;
    auto kept_a_day = [&](const std::string& key) {
      const auto pttl = admin.command("PTTL", key).integer;
      return pttl > day - 60'000 && pttl <= day;
    };
    REQUIRE(std::get<0>(conf::rollback(fx, sku, 1)) == std::error_code{});
    CHECK(admin.command("HEXISTS", users, "alice").integer == 0);  // back to zero: deleted
    CHECK(kept_a_day(r1));
    REQUIRE(conf::buy(fx, sku, 2, "alice", 1, "r-2").status == reserve_status::reserved);
    REQUIRE(std::get<0>(conf::commit(fx, sku, 2)) == std::error_code{});
    CHECK(admin.command("HGET", users, "alice").text == "1");  // a sold unit still counts
    CHECK(admin.command("PTTL", redis_store::request_key(sku, "alice", "r-2")).integer == -1);
    CHECK(admin.command("PTTL", redis_store::order_key(sku, 2)).integer == -1);  // sold: kept
    CHECK(admin.command("PTTL", redis_store::sold_key(sku)).integer == -1);
    CHECK(admin.command("PTTL", redis_store::orders_key(sku)).integer == -1);
    REQUIRE(conf::buy(fx, sku, 3, "alice", 2).status == reserve_status::limited);
    CHECK(admin.command("HGET", redis_store::order_key(sku, 3), "why").text == "limited");
    auto replay = conf::buy(fx, sku, 3, "alice", 2);  // a refused order id replays refused
    CHECK(replay.replayed);
    CHECK(replay.status == reserve_status::limited);
    CHECK(replay.order_id == 0);
    CHECK(replay.state == order_state::refused);
  }

  TEST_CASE(
      "redis store keeps a sold order's request binding for good and a given-back one a while") {
    two_nodes fx;
    const std::string sku = "binding-ttl";
    REQUIRE(conf::set_policy(fx, sku, 0) == std::error_code{});
    REQUIRE(conf::set_stock(fx, sku, 10) == std::error_code{});
    auto admin = fx.server().admin();
    const std::int64_t day = 24 * 3600 * 1000;
    auto pttl = [&](const std::string& key) { return admin.command("PTTL", key).integer; };
    auto kept_a_day = [&](const std::string& key) {
      const auto ms = pttl(key);
      INFO(key, " PTTL ", ms);
      return ms > day - 60'000 && ms <= day;
    };
    auto short_hold = [&](std::int64_t id, const std::string& request) {
      reserve_request r;
      r.order_id = id;
      r.hold = 50ms;
      r.user = "bob";
      r.request_id = request;
      auto [ec, result] = conf::reserve_as(fx, sku, r);
      REQUIRE(ec == std::error_code{});
      REQUIRE(result.status == reserve_status::reserved);
    };
    // Committed: record and binding without a TTL.
    REQUIRE(conf::buy(fx, sku, 1, "bob", 1, "sold").status == reserve_status::reserved);
    REQUIRE(std::get<0>(conf::commit(fx, sku, 1)) == std::error_code{});
    CHECK(pttl(redis_store::order_key(sku, 1)) == -1);
    CHECK(pttl(redis_store::request_key(sku, "bob", "sold")) == -1);
    // Rolled back: both kept for the retention.
    REQUIRE(conf::buy(fx, sku, 2, "bob", 1, "back").status == reserve_status::reserved);
    REQUIRE(std::get<0>(conf::rollback(fx, sku, 2)) == std::error_code{});
    CHECK(kept_a_day(redis_store::order_key(sku, 2)));
    CHECK(kept_a_day(redis_store::request_key(sku, "bob", "back")));
    // A commit refused once the hold passed, and a reap: the same.
    short_hold(3, "late");
    short_hold(4, "reaped");
    std::this_thread::sleep_for(120ms);
    CHECK(std::get<0>(conf::commit(fx, sku, 3)) == errc::order_rolled_back);
    CHECK(kept_a_day(redis_store::order_key(sku, 3)));
    CHECK(kept_a_day(redis_store::request_key(sku, "bob", "late")));
    auto [rec, reaped] = conf::reap(fx, sku, 10);
    CHECK(rec == std::error_code{});
    CHECK(reaped == 1);
    CHECK(kept_a_day(redis_store::order_key(sku, 4)));
    CHECK(kept_a_day(redis_store::request_key(sku, "bob", "reaped")));
    conf::check_level(conf::stock_ok(fx, sku), 9, 0, 1);
    CHECK(admin.command("HGET", redis_store::users_key(sku), "bob").text == "1");
  }

  TEST_CASE("redis store replays a sold request id after the retention has passed") {
    two_nodes fx;
    const std::string sku = "binding-late";
    seckill::redis::redis_store_options options;
    options.order_retention = 1s;  // the shortest allowed
    redis_store store(fx.io().get_executor(),
                      seckill::test::config_for<connection_config>(fx.server()), options);
    struct on_store {  // the conformance helpers' fixture, on `store`
      redis_store& s;
      asio::io_context& i;
      redis_store& store() { return s; }
      asio::io_context& io() { return i; }
      std::chrono::milliseconds hold() { return 60s; }
    } short_fx{store, fx.io()};
    REQUIRE(std::get<0>(conf::wait<std::error_code>(
                short_fx, [&](auto h) { store.async_connect(h); })) == std::error_code{});
    REQUIRE(conf::set_policy(short_fx, sku, 0) == std::error_code{});
    REQUIRE(conf::set_stock(short_fx, sku, 10) == std::error_code{});
    REQUIRE(conf::buy(short_fx, sku, 1, "carol", 2, "once").status == reserve_status::reserved);
    REQUIRE(std::get<0>(conf::commit(short_fx, sku, 1)) == std::error_code{});
    REQUIRE(conf::buy(short_fx, sku, 2, "carol", 1, "given-back").status ==
            reserve_status::reserved);
    REQUIRE(std::get<0>(conf::rollback(short_fx, sku, 2)) == std::error_code{});
    std::this_thread::sleep_for(1500ms);
    auto admin = fx.server().admin();
    // The given-back order and its binding are forgotten: the request id buys afresh.
    CHECK(admin.command("EXISTS", redis_store::request_key(sku, "carol", "given-back")).integer ==
          0);
    auto fresh = conf::buy(short_fx, sku, 3, "carol", 1, "given-back");
    CHECK_FALSE(fresh.replayed);
    CHECK(fresh.order_id == 3);
    // The sold one still replays, under any order id, and takes nothing.
    auto retry = conf::buy(short_fx, sku, 4, "carol", 2, "once");
    CHECK(retry.replayed);
    CHECK(retry.order_id == 1);
    CHECK(retry.state == order_state::committed);
    conf::check_level(conf::stock_ok(short_fx, sku), 7, 1, 2);
    store.close();
    fx.io().restart();
    fx.io().run_for(1s);
  }

  TEST_CASE("redis store answers sold_out when stock and the per-user limit both refuse") {
    two_nodes fx;
    const std::string sku = "both-refuse";
    REQUIRE(conf::set_policy(fx, sku, 1) == std::error_code{});
    REQUIRE(conf::set_stock(fx, sku, 1) == std::error_code{});
    REQUIRE(conf::buy(fx, sku, 1, "dave").status == reserve_status::reserved);
    auto both = conf::buy(fx, sku, 2, "dave");  // no stock left, and dave is at his limit
    CHECK(both.status == reserve_status::sold_out);
    CHECK(fx.server().admin().command("HGET", redis_store::order_key(sku, 2), "why").text ==
          "sold_out");
  }

  TEST_CASE("redis store refuses a reserve request exactly when check_reserve_request does") {
    two_nodes fx;
    const std::string sku = "request-grid";  // never set: an accepted reserve answers unknown_sku
    const std::string long_key(seckill::max_key_length + 1, 'a');
    int refused = 0, accepted = 0;
    for (std::int64_t id : {-1, 0, 1})
      for (std::int64_t qty :
           {std::int64_t{0}, std::int64_t{1}, seckill::max_units, seckill::max_units + 1})
        for (std::chrono::milliseconds hold : std::initializer_list<std::chrono::milliseconds>{
                 0ms, 1ms, seckill::max_hold, seckill::max_hold + 1ms})
          for (const std::string& user :
               {std::string(), std::string("alice"), std::string("al ice"), long_key})
            for (const std::string& request :
                 {std::string(), std::string("r-1"), std::string("r#1"), long_key}) {
              reserve_request r;
              r.order_id = id;
              r.quantity = qty;
              r.hold = hold;
              r.user = user;
              r.request_id = request;
              CAPTURE(id);
              CAPTURE(qty);
              CAPTURE(hold.count());
              CAPTURE(user);
              CAPTURE(request);
              auto [ec, result] = conf::reserve_as(fx, sku, r);
              if (seckill::check_reserve_request(r)) {
                ++refused;
                CHECK(ec == errc::invalid_argument);
                CHECK(fx.store().last_error().find("refused by check_reserve_request") ==
                      std::string::npos);  // a message that names the field
              } else {
                ++accepted;
                CHECK(ec == std::error_code{});
                CHECK(result.status == reserve_status::unknown_sku);
              }
            }
    CHECK(accepted > 0);
    CHECK(refused > 0);
    // redis_store's own rule, on a request the contract accepts.
    reserve_request ok;
    ok.order_id = 1;
    ok.hold = 1s;
    CHECK(std::get<0>(conf::reserve_as(fx, "a{b", ok)) == errc::invalid_argument);
    CHECK(fx.store().last_error().find("sku 'a{b' contains '{' or '}'") != std::string::npos);
    CHECK(std::get<0>(conf::reserve_as(fx, "a}b", ok)) == errc::invalid_argument);
  }

  TEST_CASE("redis store says which buyer argument it refused and the value seen") {
    two_nodes fx;
    const std::string sku = "buyer-words";
    auto said = [&](const std::string& words) {
      const auto text = fx.store().last_error();
      INFO(text);
      return text.find(words) != std::string::npos;
    };
    CHECK(conf::set_policy(fx, sku, -1) == errc::invalid_argument);
    CHECK(said("set_policy of sku 'buyer-words': per_user_limit -1 out of"));
    const seckill::sale_time start{std::chrono::milliseconds(1'800'000'000'000)};
    CHECK(conf::set_window(fx, sku, 1, start, start - 1ms) == errc::invalid_argument);
    CHECK(said("sale_end 1799999999999 ms is not after sale_start 1800000000000 ms"));
    reserve_request r;
    r.order_id = 5;
    r.hold = 1s;
    r.user = "al ice";
    CHECK(std::get<0>(conf::reserve_as(fx, sku, r)) == errc::invalid_argument);
    CHECK(said("user 'al ice'"));
    r.user = "alice";
    r.request_id = "r#1";
    CHECK(std::get<0>(conf::reserve_as(fx, sku, r)) == errc::invalid_argument);
    CHECK(said("request id 'r#1'"));
    r.user = {};
    r.request_id = "r-1";
    CHECK(std::get<0>(conf::reserve_as(fx, sku, r)) == errc::invalid_argument);
    CHECK(said("request id 'r-1' of sku 'buyer-words' for order 5 has no user"));
    CHECK(std::get<0>(conf::list_orders(fx, sku, 0, seckill::max_order_page + 1)) ==
          errc::invalid_argument);
    CHECK(said("limit " + std::to_string(seckill::max_order_page + 1)));
    CHECK(std::get<0>(conf::list_orders(fx, sku, -3, 1)) == errc::invalid_argument);
    CHECK(said("after -3"));
    CHECK(std::get<0>(conf::get_order(fx, sku, -7)) == errc::invalid_argument);
    CHECK(said("order id -7"));
    // Nothing was written.
    CHECK(fx.server().admin().command("KEYS", "seckill:{buyer-words}:*").elements.empty());
  }

  TEST_CASE("redis store on two nodes: racing buyers stay within the per-user limit") {
    two_nodes fx;
    const std::string sku = "two-nodes-limit";
    constexpr int buyers = 32;
    constexpr int attempts = 8;
    constexpr int users = 6;
    constexpr std::int64_t limit = 3;
    REQUIRE(conf::set_stock(fx, sku, 10'000) == std::error_code{});
    REQUIRE(conf::set_policy(fx, sku, limit) == std::error_code{});
    std::vector<std::atomic<std::int64_t>> taken(users);
    std::atomic<int> errors{0};
    run_on_two_threads(fx, buyers, [&](int k) -> asio::awaitable<void> {
      for (int a = 0; a < attempts; ++a) {
        const int u = (k * 7 + a) % users;
        const std::string user = "user-" + std::to_string(u);
        reserve_request r;
        r.order_id = 1 + k * attempts + a;
        r.quantity = 1 + (k / 3 + a) % 2;
        r.hold = 60s;
        r.user = user;
        auto [ec, result] = co_await fx.node(k).async_reserve(sku, r, tuple);
        if (ec) {
          errors.fetch_add(1);
        } else if (result.status == reserve_status::reserved) {
          taken[static_cast<std::size_t>(u)].fetch_add(r.quantity);
          if (a % 2 == 1) {
            auto [cec, c] = co_await fx.node(k + 1).async_commit(sku, r.order_id, tuple);
            if (cec) errors.fetch_add(1);
          }
        } else if (result.status != reserve_status::limited) {
          errors.fetch_add(1);
        }
      }
    });
    CHECK(errors.load() == 0);
    std::int64_t total = 0;
    for (int u = 0; u < users; ++u) {
      CAPTURE(u);
      const auto units = taken[static_cast<std::size_t>(u)].load();
      CHECK(units <= limit);
      CHECK(units >= limit - 1);  // ~40 attempts each: the user filled the allowance but for one
      total += units;
      // the store's own per-user counter agrees
      const auto counted = fx.server().admin().command("HGET", redis_store::users_key(sku),
                                                       "user-" + std::to_string(u));
      CHECK(std::stoll(counted.text) == units);
    }
    const auto level = conf::stock_ok(fx, sku);
    CHECK(level.reserved + level.committed == total);
    CHECK(level.remaining == 10'000 - total);
    auto [rec, report] = conf::reconcile(fx, sku);
    CHECK(rec == std::error_code{});
    CHECK(report.ok());
  }

  TEST_CASE("redis store on two nodes: one request id racing under many order ids takes once") {
    two_nodes fx;
    const std::string sku = "two-nodes-request";
    constexpr int tries = 24;
    REQUIRE(conf::set_stock(fx, sku, 100) == std::error_code{});
    REQUIRE(conf::set_policy(fx, sku, 10) == std::error_code{});
    std::mutex mutex;
    std::vector<seckill::reserve_result> results;
    std::atomic<int> errors{0};
    run_on_two_threads(fx, tries, [&](int k) -> asio::awaitable<void> {
      const std::string user = "racer";
      const std::string request = "same-request";
      reserve_request r;
      r.order_id = 100 + k;
      r.quantity = 2;
      r.hold = 60s;
      r.user = user;
      r.request_id = request;
      auto [ec, result] = co_await fx.node(k).async_reserve(sku, r, tuple);
      if (ec) {
        errors.fetch_add(1);
        co_return;
      }
      std::lock_guard lock(mutex);
      results.push_back(result);
    });
    CHECK(errors.load() == 0);
    REQUIRE(results.size() == static_cast<std::size_t>(tries));
    int fresh = 0;
    std::set<std::int64_t> bound;
    for (const auto& r : results) {
      CHECK(r.status == reserve_status::reserved);
      CHECK(r.state == order_state::held);
      bound.insert(r.order_id);
      if (!r.replayed) ++fresh;
    }
    CHECK(fresh == 1);
    REQUIRE(bound.size() == 1);
    const auto order = *bound.begin();
    CHECK(order >= 100);
    CHECK(order < 100 + tries);
    conf::check_level(conf::stock_ok(fx, sku), 98, 2, 0);
    // Committed on the other node, a retry on either hears so.
    auto [cec, c] = conf::wait<std::error_code, seckill::settle_result>(
        fx, [&](auto h) { fx.node(1).async_commit(sku, order, h); });
    REQUIRE(cec == std::error_code{});
    auto retry = conf::buy(fx, sku, 999, "racer", 2, "same-request");
    CHECK(retry.replayed);
    CHECK(retry.order_id == order);
    CHECK(retry.state == order_state::committed);
    check_stream_matches(fx, sku, 1);
  }

  TEST_CASE("redis store streams each committed order once with the recorded fields") {
    two_nodes fx;
    const std::string sku = "stream";
    REQUIRE(conf::set_stock(fx, sku, 100) == std::error_code{});
    REQUIRE(conf::set_policy(fx, sku, 0) == std::error_code{});
    std::size_t committed = 0;
    for (std::int64_t id = 1; id <= 12; ++id) {
      const std::string user = "u-" + std::to_string(id % 3);
      const std::string request = "r-" + std::to_string(id);
      if (id % 4 == 0) {
        REQUIRE(conf::reserve_ok(fx, sku, 1, id).status == reserve_status::reserved);
      } else {
        REQUIRE(conf::buy(fx, sku, id, user, 1 + id % 3, request).status ==
                reserve_status::reserved);
      }
      if (id % 5 == 0) {
        REQUIRE(std::get<0>(conf::rollback(fx, sku, id)) == std::error_code{});
      } else {
        REQUIRE(std::get<0>(conf::commit(fx, sku, id)) == std::error_code{});
        ++committed;
        // a repeated commit, on either node, streams nothing more
        auto [ec, s] = conf::wait<std::error_code, seckill::settle_result>(
            fx, [&](auto h) { fx.node(1).async_commit(sku, id, h); });
        CHECK(ec == std::error_code{});
        CHECK(s.status == settle_status::already);
      }
    }
    check_stream_matches(fx, sku, committed);
    // An order without a user streams empty fields.
    CHECK(read_stream(fx.server(), sku).orders.at(4) == std::vector<std::string>{"1", "", ""});
  }

  TEST_CASE("redis store reconcile reports a tampered store and ok otherwise") {
    two_nodes fx;
    const std::string sku = "tamper";
    REQUIRE(conf::set_stock(fx, sku, 20) == std::error_code{});
    REQUIRE(conf::set_policy(fx, sku, 2) == std::error_code{});
    REQUIRE(conf::buy(fx, sku, 1, "alice", 2).status == reserve_status::reserved);
    REQUIRE(conf::buy(fx, sku, 2, "bob", 1).status == reserve_status::reserved);
    REQUIRE(conf::buy(fx, sku, 3, "carol", 1).status == reserve_status::reserved);
    for (std::int64_t id : {1, 2, 3})
      REQUIRE(std::get<0>(conf::commit(fx, sku, id)) == std::error_code{});
    auto [ec, clean] = conf::reconcile(fx, sku);
    REQUIRE(ec == std::error_code{});
    CHECK(clean.ok());
    CHECK(clean.committed_units == 4);
    auto admin = fx.server().admin();
    // One unit committed without its order.
    admin.command("HINCRBY", redis_store::stock_key(sku), "committed", "1");
    auto [ec1, more] = conf::reconcile(fx, sku);
    REQUIRE(ec1 == std::error_code{});
    CHECK_FALSE(more.ok());
    CHECK(more.committed_units == 5);
    CHECK(more.recorded_units == 4);
    admin.command("HINCRBY", redis_store::stock_key(sku), "committed", "-1");
    CHECK(std::get<1>(conf::reconcile(fx, sku)).ok());
    // An order rewritten to another user puts alice over her limit.
    admin.command("HSET", redis_store::order_key(sku, 2), "user", "alice");
    auto [ec2, over] = conf::reconcile(fx, sku);
    REQUIRE(ec2 == std::error_code{});
    CHECK_FALSE(over.ok());
    REQUIRE(over.users_over_limit.size() == 1);
    CHECK(over.users_over_limit[0].first == "alice");
    CHECK(over.users_over_limit[0].second == 3);
    admin.command("HSET", redis_store::order_key(sku, 2), "user", "bob");
    CHECK(std::get<1>(conf::reconcile(fx, sku)).ok());
    // An indexed order whose record is gone is an error that names it.
    admin.command("DEL", redis_store::order_key(sku, 3));
    auto [ec3, gone] = conf::list_orders(fx, sku, 0, 10);
    CHECK(ec3 == errc::protocol_error);
    CHECK(fx.store().last_error().find("order 3 of sku 'tamper'") != std::string::npos);
  }

  TEST_CASE("redis store commits lost with their connection and retried are recorded once") {
    two_nodes fx;
    const std::string sku = "lost-commit";
    REQUIRE(conf::set_stock(fx, sku, 1000) == std::error_code{});
    REQUIRE(conf::set_policy(fx, sku, 0) == std::error_code{});
    std::vector<std::int64_t> first, second;
    for (std::int64_t id = 1; id <= 300; ++id) {
      REQUIRE(conf::buy(fx, sku, id, "buyer-" + std::to_string(id % 7), 1 + id % 2,
                        "req-" + std::to_string(id))
                  .status == reserve_status::reserved);
      (id <= 20 ? first : second).push_back(id);
    }
    auto admin = fx.server().admin();
    // Writes paused: the commits reach the server and wait there; the kill
    // loses them before they run.
    REQUIRE(admin.command("CLIENT", "PAUSE", "10000", "WRITE").text == "OK");
    auto lost = commit_all(fx, sku, first, [&] {
      std::this_thread::sleep_for(100ms);
      CHECK(admin.command("CLIENT", "KILL", "TYPE", "normal").integer >= 1);
      admin.command("CLIENT", "UNPAUSE");
    });
    CHECK(lost.size() == first.size());
    wait_recovered(fx, sku);
    CHECK(conf::stock_ok(fx, sku).committed == 0);
    CHECK(read_stream(fx.server(), sku).entries == 0);
    CHECK(retry_commits(fx, sku, lost) == 0);  // none had run
    check_stream_matches(fx, sku, first.size());
    // Killed while they run: some ran and lost their reply, some never ran.
    auto uncertain =
        commit_all(fx, sku, second, [&] { admin.command("CLIENT", "KILL", "TYPE", "normal"); });
    wait_recovered(fx, sku);
    const auto already = retry_commits(fx, sku, uncertain);
    MESSAGE(uncertain.size(), " commits uncertain, ", already, " of them had run");
    CHECK(retry_commits(fx, sku, second) == second.size());  // every one is committed once
    check_stream_matches(fx, sku, first.size() + second.size());
  }
}
