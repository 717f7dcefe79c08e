// Redis ACL users: a user given exactly redis::store_acl_rules runs every
// store operation and the stock feed; a user lacking one of those rights
// gets errc::permission_denied naming the command refused; a wrong password
// is errc::auth_failed. No message ever shows the password.

#include <seckill/redis/acl.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/stock_feed.hpp>
#include <seckill/store/stock_cache.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using seckill::errc;
using seckill::redis::connection_config;
using seckill::redis::redis_store;
using seckill::test::redis_server;
using seckill::test::run_test;
using seckill::test::sleep_for;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace integration_acl {

constexpr std::string_view admin_password = "acl-admin-pw";
constexpr std::string_view shop_password = "shop-secret-pw-42";

// One server for every case of this file; the default user needs a password.
redis_server& shared_server() {
  static redis_server server({"--requirepass", std::string(admin_password)},
                             std::string(admin_password));
  return server;
}

std::vector<std::string> words(std::string_view rules) {
  std::vector<std::string> out;
  std::istringstream in{std::string(rules)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// ACL SETUSER <user> on ><password> <rules...>, as an operator would.
void set_user(const std::string& user, const std::vector<std::string>& rules) {
  auto admin = shared_server().admin();
  std::vector<std::string> args{"SETUSER", user, "on", ">" + std::string(shop_password)};
  args.insert(args.end(), rules.begin(), rules.end());
  seckill::redis::request req;
  req.push_range("ACL", args);
  admin.send(req.payload());
  const auto reply = admin.read();
  REQUIRE_MESSAGE(!reply.is_error(), reply.text);
}

// The rules with one word left out.
std::vector<std::string> without(std::string_view word) {
  std::vector<std::string> out;
  for (auto& w : words(seckill::redis::store_acl_rules))
    if (w != word) out.push_back(w);
  REQUIRE(out.size() + 1 == words(seckill::redis::store_acl_rules).size());
  return out;
}

connection_config config_for_user(const std::string& user,
                                  std::string_view password = shop_password) {
  auto cfg = seckill::test::config_for<connection_config>(shared_server());
  cfg.username = user;
  cfg.password = std::string(password);
  cfg.reconnect = false;
  return cfg;
}

void check_no_password(const std::string& text) {
  CAPTURE(text);
  CHECK(text.find(shop_password) == std::string::npos);
  CHECK(text.find("secret-pw") == std::string::npos);
}

TEST_SUITE("integration") {
  TEST_CASE("redis acl: a user with exactly store_acl_rules runs the store and its stock feed") {
    set_user("shop", words(seckill::redis::store_acl_rules));
    asio::io_context io;
    redis_store store(io.get_executor(), config_for_user("shop"));
    seckill::stock_cache cache;
    seckill::redis::stock_feed<redis_store> feed(io.get_executor(), store, cache,
                                                 config_for_user("shop"));
    run_test(io, [&]() -> asio::awaitable<void> {
      constexpr auto use = seckill::test::tuple_awaitable;
      auto [cec] = co_await store.async_connect(use);
      REQUIRE_MESSAGE(!cec, store.connection().last_error());
      const std::string sku = "acl-sku";
      auto [fec] = co_await feed.async_start(use);
      REQUIRE_MESSAGE(!fec, feed.source().last_error());
      for (int i = 0; i < 200 && !cache.live(); ++i) co_await sleep_for(10ms);
      CHECK(cache.live());
      auto [sec] = co_await store.async_set_stock(sku, 10, use);
      REQUIRE_MESSAGE(!sec, store.last_error());
      // the feed hears the script's PUBLISH through the user's channel right
      for (int i = 0; i < 200 && !cache.find(sku); ++i) co_await sleep_for(10ms);
      REQUIRE(cache.find(sku).has_value());
      CHECK(cache.find(sku)->remaining == 10);

      auto [r1, reserved] = co_await store.async_reserve(sku, 2, 1, 60s, use);
      REQUIRE_MESSAGE(!r1, store.last_error());
      CHECK(reserved.status == seckill::reserve_status::reserved);
      auto [c1, committed] = co_await store.async_commit(sku, 1, use);
      CHECK_MESSAGE(!c1, store.last_error());
      auto [r2, second] = co_await store.async_reserve(sku, 1, 2, 60s, use);
      CHECK(!r2);
      auto [b2, rolled] = co_await store.async_rollback(sku, 2, use);
      CHECK_MESSAGE(!b2, store.last_error());
      auto [r3, third] = co_await store.async_reserve(sku, 1, 3, 1ms, use);
      CHECK(!r3);
      co_await sleep_for(20ms);
      auto [p1, reaped] = co_await store.async_reap_expired(sku, 10, std::int64_t{7}, use);
      CHECK_MESSAGE(!p1, store.last_error());
      CHECK(reaped == 1u);
      auto [l1, page] = co_await store.async_list_orders(sku, 0, 10, use);
      CHECK_MESSAGE(!l1, store.last_error());
      REQUIRE(page.orders.size() == 1u);
      CHECK(page.orders[0].order_id == 1);
      auto [g1, order] = co_await store.async_get_order(sku, 1, use);
      CHECK_MESSAGE(!g1, store.last_error());
      seckill::sku_policy policy;
      policy.per_user_limit = 3;
      auto [s1] = co_await store.async_set_policy(sku, policy, use);
      CHECK_MESSAGE(!s1, store.last_error());
      auto [q1, read_policy] = co_await store.async_get_policy(sku, use);
      CHECK(!q1);
      CHECK(read_policy.per_user_limit == 3);
      auto [k1, level] = co_await store.async_stock(sku, use);
      CHECK(!k1);
      CHECK(level.remaining == 8);
      CHECK(level.committed == 2);
      // a restock reaches the feed too
      auto [s2] = co_await store.async_set_stock(sku, 5, use);
      CHECK(!s2);
      for (int i = 0; i < 200 && cache.find(sku)->remaining != 5; ++i) co_await sleep_for(10ms);
      CHECK(cache.find(sku)->remaining == 5);
      feed.close();
      store.close();
    });
  }

  TEST_CASE("redis acl: a user lacking one right gets permission_denied naming the command") {
    struct lacking {
      const char* right;
      bool at_connect;    // refused in the handshake (SCRIPT LOAD)
      const char* named;  // what last_error() must name
    };
    for (const lacking l :
         {lacking{"+evalsha", false, "evalsha"}, lacking{"+hincrby", false, "HINCRBY"},
          lacking{"+script|load", true, "SCRIPT LOAD"}}) {
      CAPTURE(l.right);
      const std::string user = std::string("shop-no-") + (l.right + 1);
      set_user(user, without(l.right));
      asio::io_context io;
      redis_store store(io.get_executor(), config_for_user(user));
      run_test(io, [&]() -> asio::awaitable<void> {
        constexpr auto use = seckill::test::tuple_awaitable;
        auto [cec] = co_await store.async_connect(use);
        if (l.at_connect) {
          CHECK(cec == errc::permission_denied);
          CHECK(cec == seckill::condition::server);
          const std::string text = store.connection().last_error();
          CAPTURE(text);
          CHECK(text.find(l.named) != std::string::npos);
          CHECK(text.find("ACL") != std::string::npos);
          check_no_password(text);
        } else {
          REQUIRE_MESSAGE(!cec, store.connection().last_error());
          // stock set by the admin, so that the reserve gets as far as the script's writes
          const std::string sku = std::string("acl-lacking-") + (l.right + 1);
          shared_server().admin().command("HSET", "seckill:{" + sku + "}:stock", "remaining", "10",
                                          "reserved", "0", "committed", "0");
          auto [rec, r] = co_await store.async_reserve(sku, 1, 1, 60s, use);
          CHECK(rec == errc::permission_denied);
          const std::string text = store.last_error();
          CAPTURE(text);
          CHECK(text.find(l.named) != std::string::npos);
          CHECK(text.find("reserve") != std::string::npos);
          check_no_password(text);
        }
        store.close();
      });
    }
  }

  TEST_CASE("redis acl: the stock feed without its channel right is refused at subscribe") {
    const std::string user = "shop-no-channel";
    set_user(user, without("&seckill:{*}:stock"));
    asio::io_context io;
    redis_store store(io.get_executor(), config_for_user(user));
    seckill::stock_cache cache;
    auto feed_cfg = config_for_user(user);
    seckill::redis::stock_feed<redis_store> feed(io.get_executor(), store, cache, feed_cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      constexpr auto use = seckill::test::tuple_awaitable;
      auto [fec] = co_await feed.async_start(use);
      CHECK(fec == errc::permission_denied);
      const std::string text = feed.source().last_error();
      CAPTURE(text);
      CHECK(text.find("PSUBSCRIBE") != std::string::npos);
      check_no_password(text);
      feed.close();
      store.close();
    });
  }

  TEST_CASE("redis acl: a wrong password is auth_failed and never printed") {
    set_user("shop", words(seckill::redis::store_acl_rules));
    asio::io_context io;
    const std::string wrong = "wrong-secret-pw-43";
    redis_store store(io.get_executor(), config_for_user("shop", wrong));
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [cec] = co_await store.async_connect(seckill::test::tuple_awaitable);
      CHECK(cec == errc::auth_failed);
      CHECK(cec != errc::permission_denied);
      const std::string text = store.connection().last_error();
      CAPTURE(text);
      CHECK(!text.empty());
      CHECK(text.find(wrong) == std::string::npos);
      CHECK(text.find("secret-pw") == std::string::npos);
      store.close();
    });
  }
}

}  // namespace integration_acl
