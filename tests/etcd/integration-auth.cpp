// etcd authentication against a real etcd 3.4 with `auth enable` and a
// 2-second simple-token TTL: a user logs in, its token is sent on every call
// and replaced by one login, shared by every call it refused, once etcd
// forgets it (unused for the TTL, or a restarted member); a watch open
// across such a refresh delivers every event once and in order; a wrong
// password is auth_failed and a key outside the user's role
// permission_denied, never showing the password. Plus the endpoint list's
// user:password@ (take_credentials).

#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/auth.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/detail/base64.hpp>
#include <seckill/etcd/watch.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace integration_auth {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

constexpr const char* shop_user = "shop";
constexpr const char* shop_password = "shop-secret-pw-17";
constexpr const char* root_password = "root-secret-pw-29";
constexpr auto token_ttl = 2s;  // --auth-token-ttl: a token unused this long is forgotten

asio::awaitable<void> gateway(client& c, std::string target, nlohmann::json body) {
  nlohmann::json out;
  std::string message;
  auto ec = co_await c.call(target, body, false, out, message);
  REQUIRE_MESSAGE(!ec, target, ": ", message);
  REQUIRE_MESSAGE(!out.contains("error"), target, ": ", out.dump());
}

// One etcd for this file, with a root user, user "shop" whose role may read
// and write "shop/" only, and auth enabled, all through the gateway.
seckill::test::etcd_cluster& auth_cluster() {
  static seckill::test::etcd_cluster etcd = [] {
    return seckill::test::etcd_cluster(1, "seckill-auth", {"--auth-token-ttl", "2"});
  }();
  static const bool enabled = [] {
    using nlohmann::json;
    // (built before the coroutine: GCC 12 cannot keep a braced list's literals across co_await)
    std::vector<std::pair<std::string, json>> steps;
    steps.emplace_back("/v3/auth/user/add",
                       json{{"name", "root"}, {"password", std::string(root_password)}});
    steps.emplace_back("/v3/auth/user/grant", json{{"user", "root"}, {"role", "root"}});
    steps.emplace_back("/v3/auth/user/add", json{{"name", std::string(shop_user)},
                                                 {"password", std::string(shop_password)}});
    steps.emplace_back("/v3/auth/role/add", json{{"name", "shop-role"}});
    steps.emplace_back("/v3/auth/role/grant",
                       json{{"name", "shop-role"},
                            {"perm",
                             {{"permType", "READWRITE"},
                              {"key", detail::base64_encode("shop/")},
                              {"range_end", detail::base64_encode(prefix_end("shop/"))}}}});
    steps.emplace_back("/v3/auth/user/grant",
                       json{{"user", std::string(shop_user)}, {"role", "shop-role"}});
    steps.emplace_back("/v3/auth/enable", json::object());
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), etcd.options());
      for (const auto& [target, body] : steps) co_await gateway(c, target, body);
    });
    return true;
  }();
  (void)enabled;
  return etcd;
}

client_options shop_options(const char* password = shop_password) {
  client_options o = auth_cluster().options();
  o.auth = {shop_user, password};
  return o;
}

void check_no_password(const std::string& text) {
  CAPTURE(text);
  CHECK(text.find(shop_password) == std::string::npos);
  CHECK(text.find("secret-pw") == std::string::npos);
}

TEST_SUITE("unit") {
  TEST_CASE("etcd auth: take_credentials takes user:password@ off every entry") {
    credentials c;
    std::error_code ec;
    std::string message;
    CHECK(take_credentials("etcd://shop:s%40cret@a:2379,b:2379", c, ec, &message) ==
          "etcd://a:2379,b:2379");
    CHECK(!ec);
    CHECK(c.username == "shop");
    CHECK(c.password == "s@cret");
    credentials none;
    CHECK(take_credentials("a:2379,[::1]:2379", none, ec) == "a:2379,[::1]:2379");
    CHECK(none.empty());
    CHECK(take_credentials("shop:pw@a:2379,shop:pw@b:2379", c, ec) == "a:2379,b:2379");
    CHECK(!ec);
    for (const char* bad : {"etcd://shop:pw1@a:2379,shop:other-pw@b:2379", "etcd://shop@a:2379",
                            "etcd://shop:@a:2379", "etcd://shop:pw%4@a:2379"}) {
      CAPTURE(bad);
      credentials got;
      take_credentials(bad, got, ec, &message);
      CHECK(ec == seckill::errc::invalid_argument);
      CHECK(message.find("other-pw") == std::string::npos);
      CHECK(message.find("pw%4") == std::string::npos);
    }
  }

  TEST_CASE("etcd auth: a refused token is told from other errors") {
    CHECK(detail::token_refused("etcdserver: invalid auth token"));
    CHECK(detail::token_refused(
        "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"));
    CHECK(detail::token_refused("etcdserver: user name is empty"));
    CHECK(detail::token_refused("etcdserver: revision of auth store is old"));
    CHECK_FALSE(detail::token_refused("etcdserver: permission denied"));
    CHECK_FALSE(
        detail::token_refused("etcdserver: authentication failed, invalid user ID or password"));
    put_result p;
    CHECK(detail::parse_put(nlohmann::json::parse(
                                R"({"error":"etcdserver: permission denied","code":7,
                                    "message":"etcdserver: permission denied"})"),
                            p) == seckill::errc::permission_denied);
    CHECK(detail::parse_put(nlohmann::json::parse(
                                R"({"error":"x","code":3,
                                    "message":"etcdserver: authentication failed, invalid user ID or password"})"),
                            p) == seckill::errc::auth_failed);
  }
}

TEST_SUITE("integration") {
  TEST_CASE("etcd auth: a user logs in once and works in its prefix") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shop_options());
      auto [pe, p] = co_await c.async_put("shop/a", "1", tuple_awaitable);
      REQUIRE_MESSAGE(!pe, p.error_message);
      auto [ge, g] = co_await c.async_get("shop/a", tuple_awaitable);
      REQUIRE_MESSAGE(!ge, g.error_message);
      REQUIRE(g.kvs.size() == 1u);
      CHECK(g.kvs[0].value == "1");
      CHECK(c.logins() == 1u);
      // without a login, etcd refuses
      client anonymous(io.get_executor(), auth_cluster().options());
      auto [ae, a] = co_await anonymous.async_get("shop/a", tuple_awaitable);
      CHECK(ae == seckill::errc::auth_failed);
      CHECK(a.error_message.find("user name is empty") != std::string::npos);
    });
  }

  TEST_CASE("etcd auth: concurrent calls refused for an expired token share one login") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shop_options());
      auto [pe, p] = co_await c.async_put("shop/b", "1", tuple_awaitable);
      REQUIRE_MESSAGE(!pe, p.error_message);
      REQUIRE(c.logins() == 1u);
      const std::string first_token = c.auth_token();
      co_await seckill::test::sleep_for(token_ttl + 1500ms);  // etcd forgets the unused token
      constexpr int calls = 8;
      int ok = 0;
      int done = 0;
      for (int i = 0; i < calls; ++i) {
        c.async_put("shop/b" + std::to_string(i), "x",
                    [&](std::error_code ec, const put_result& r) {
                      CHECK_MESSAGE(!ec, r.error_message);
                      ok += ec ? 0 : 1;
                      ++done;
                    });
      }
      CHECK(co_await seckill::test::eventually([&] { return done == calls; }, 10s));
      CHECK(ok == calls);
      CHECK(c.logins() == 2u);  // one login for the eight refused calls
      CHECK(c.auth_token() != first_token);
    });
  }

  TEST_CASE("etcd auth: a wrong password is auth_failed and never shown") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      const char* wrong = "wrong-secret-pw-31";
      client c(io.get_executor(), shop_options(wrong));
      auto [pe, p] = co_await c.async_put("shop/c", "1", tuple_awaitable);
      CHECK(pe == seckill::errc::auth_failed);
      CAPTURE(p.error_message);
      CHECK(p.error_message.find("shop") != std::string::npos);
      CHECK(p.error_message.find("authentication failed") != std::string::npos);
      CHECK(p.error_message.find(wrong) == std::string::npos);
      check_no_password(p.error_message);
      // a watch of a client that cannot log in fails with the same error
      watcher w(c);
      watch_options prefix;
      prefix.prefix = true;
      auto [we, s] = co_await w.async_watch("shop/c", prefix, tuple_awaitable);
      CHECK(we == seckill::errc::auth_failed);
    });
  }

  TEST_CASE("etcd auth: a key outside the user's role is permission_denied") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      client c(io.get_executor(), shop_options());
      auto [pe, p] = co_await c.async_put("other/x", "1", tuple_awaitable);
      CHECK(pe == seckill::errc::permission_denied);
      CHECK(pe == seckill::condition::server);
      CAPTURE(p.error_message);
      CHECK(p.error_message.find("permission denied") != std::string::npos);
      CHECK(p.error_message.find("shop") != std::string::npos);
      check_no_password(p.error_message);
      // a watch outside the role is refused too, and the watcher goes on with the others
      watcher w(c);
      watch_options prefix;
      prefix.prefix = true;
      auto [we, s] = co_await w.async_watch("other/", prefix, tuple_awaitable);
      CHECK(we == seckill::errc::permission_denied);
    });
  }

  TEST_CASE("etcd auth: a watch open across token refreshes delivers every event once") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      client c(io.get_executor(), shop_options());
      watcher w(c);
      watch_options prefix;
      prefix.prefix = true;
      auto [we, s] = co_await w.async_watch("shop/w/", prefix, tuple_awaitable);
      REQUIRE_FALSE(we);
      std::vector<std::int64_t> written;
      auto put = [&](int i) -> asio::awaitable<void> {
        auto [pe, p] =
            co_await c.async_put("shop/w/" + std::to_string(i), std::to_string(i), tuple_awaitable);
        REQUIRE_MESSAGE(!pe, p.error_message);
        written.push_back(p.header.revision);
      };
      std::vector<std::int64_t> seen;
      auto take = [&](std::size_t n) -> asio::awaitable<void> {
        asio::steady_timer timer(io, 10s);
        while (seen.size() < n) {
          auto r = co_await (s.async_next(tuple_awaitable) || timer.async_wait(tuple_awaitable));
          if (r.index() == 1) co_return;
          auto& [nec, resp] = std::get<0>(r);
          REQUIRE_FALSE(nec);
          for (const auto& e : resp.events) seen.push_back(e.kv.mod_revision);
        }
      };
      for (int i = 0; i < 3; ++i) co_await put(i);
      co_await take(3);
      REQUIRE(c.logins() == 1u);
      // the token expires under the open stream; a second watch makes the hub
      // open it again: its creates are refused for the token, one login, and
      // both watches go on (the first from where it was)
      co_await seckill::test::sleep_for(token_ttl + 1500ms);
      const watch_options single;  // (a named local: GCC 12 frees a braced temporary twice here)
      auto [we2, s2] = co_await w.async_watch("shop/w2", single, tuple_awaitable);
      REQUIRE_FALSE(we2);
      CHECK(c.logins() == 2u);
      for (int i = 3; i < 6; ++i) co_await put(i);  // with the watch's new token: no login
      co_await take(6);
      CHECK(c.logins() == 2u);
      // the member restarts: the stream breaks and is opened again elsewhere
      // in time (here: the same member, back); its tokens are replayed from
      // its log, so wait them out before writing again
      const auto connections = w.connections();
      auth_cluster().restart(0);
      auth_cluster().wait_ready();
      co_await seckill::test::sleep_for(token_ttl + 1500ms);
      for (int i = 6; i < 9; ++i) co_await put(i);
      co_await take(9);
      CHECK(w.connections() > connections);
      CHECK(c.logins() == 3u);
      CHECK(seen == written);  // every revision once, in order
    });
  }

  TEST_CASE("etcd auth: credentials in the endpoint list log the client in") {
    seckill::test::run_test([](asio::io_context& io) -> asio::awaitable<void> {
      const std::string list = std::string("etcd://") + shop_user + ":" + shop_password + "@" +
                               auth_cluster().endpoint_list();
      client_options o;
      std::error_code ec;
      o.endpoints = parse_endpoints(take_credentials(list, o.auth, ec), ec);
      REQUIRE(!ec);
      CHECK(o.auth.username == shop_user);
      client c(io.get_executor(), o);
      auto [pe, p] = co_await c.async_put("shop/url", "1", tuple_awaitable);
      CHECK_MESSAGE(!pe, p.error_message);
      // what is printed of the list never shows the password
      const std::string shown = seckill::redact_url(list);
      CHECK(shown.find(shop_password) == std::string::npos);
      for (const auto& ep : o.endpoints)
        CHECK(ep.to_string().find(shop_password) == std::string::npos);
    });
  }
}

}  // namespace integration_auth
