// etcd over https against real etcd 3.4 members on 127.0.0.1 with
// certificates made by the openssl CLI for the test (support/tls_certs.hpp):
// put, get and a watch over TLS and mutual TLS, and each refusal with its
// code and message.

#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/watch.hpp>
#include <seckill/tls.hpp>

#include "support/tls_certs.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

namespace integration_etcd_tls {

using seckill::tls_errc;
using seckill::tls_options;
using seckill::test::etcd_cluster;
using seckill::test::etcd_tls;
using seckill::test::test_pki;
using seckill::test::tuple_awaitable;
using namespace seckill::etcd;
using namespace std::chrono_literals;
namespace asio = boost::asio;

etcd_tls member_tls(const std::string& cert, const std::string& key, bool client_cert_auth) {
  const auto& pki = test_pki::get();
  etcd_tls t{cert, key, pki.ca(), client_cert_auth, {.ca_file = pki.ca()}};
  if (client_cert_auth) {
    t.client.cert_file = pki.client_cert();
    t.client.key_file = pki.client_key();
  }
  return t;
}

// For a member whose certificate the test wants refused: the fixture's own
// clients (its readiness checks) do not verify it.
etcd_tls unverified(etcd_tls t) {
  t.client.verify = false;
  return t;
}

// One put with `tls` against `etcd`'s members: its code and message.
std::pair<std::error_code, std::string> put_once(const etcd_cluster& etcd, tls_options tls) {
  client_options o = etcd.options();
  o.tls = std::move(tls);
  o.call_timeout = 3s;
  std::pair<std::error_code, std::string> out;
  seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    client c(io.get_executor(), o);
    auto [ec, r] = co_await c.async_put("tls/k", "v", tuple_awaitable);
    out = {ec, r.error_message};
  });
  return out;
}

TEST_SUITE("integration") {
  TEST_CASE("etcd tls: put and get and a watch over https with mutual TLS") {
    const auto& pki = test_pki::get();
    etcd_cluster etcd(member_tls(pki.server_cert(), pki.server_key(), true));
    // the endpoint list as a user writes it, TLS settings in its query
    std::error_code ec;
    std::string why;
    tls_options tls;
    const std::string list = "https://127.0.0.1:" + std::to_string(etcd.at(0).client_port) +
                             "?ca_file=" + pki.ca() + "&cert_file=" + pki.client_cert() +
                             "&key_file=" + pki.client_key();
    client_options o;
    o.endpoints = parse_endpoints(list, ec, &why, &tls);
    REQUIRE_MESSAGE(!ec, why);
    REQUIRE(o.endpoints.at(0).tls);
    o.tls = tls;
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      client c(io.get_executor(), o);
      watcher w(c);
      watch_options prefix;
      prefix.prefix = true;
      auto [wec, stream] = co_await w.async_watch("tls/", prefix, tuple_awaitable);
      REQUIRE_MESSAGE(!wec, "watch over wss failed");
      auto [pec, put] = co_await c.async_put("tls/a", "1", tuple_awaitable);
      REQUIRE_MESSAGE(!pec, put.error_message);
      auto [gec, got] = co_await c.async_get("tls/a", tuple_awaitable);
      REQUIRE_MESSAGE(!gec, got.error_message);
      REQUIRE(got.kvs.size() == 1);
      CHECK(got.kvs[0].value == "1");
      asio::steady_timer timer(io, 10s);
      auto r = co_await (stream.async_next(tuple_awaitable) || timer.async_wait(tuple_awaitable));
      REQUIRE_MESSAGE(r.index() == 0, "no watch event within 10 s");
      auto& [nec, resp] = std::get<0>(r);
      REQUIRE(!nec);
      REQUIRE(resp.events.size() == 1);
      CHECK(resp.events[0].kv.key == "tls/a");
      CHECK(resp.events[0].kv.mod_revision == put.header.revision);
    });
  }

  TEST_CASE("etcd tls: mutual TLS without a client certificate is certificate_refused") {
    const auto& pki = test_pki::get();
    etcd_cluster etcd(member_tls(pki.server_cert(), pki.server_key(), true));
    const auto [ec, message] = put_once(etcd, {.ca_file = pki.ca()});
    CHECK(ec == tls_errc::certificate_refused);
    CHECK(message.find("cert_file") != std::string::npos);
    MESSAGE(message);
  }

  TEST_CASE("etcd tls: an unknown CA an expired certificate and a wrong host name") {
    const auto& pki = test_pki::get();
    {
      etcd_cluster etcd(member_tls(pki.server_cert(), pki.server_key(), false));
      const auto [ec, message] = put_once(etcd, {.ca_file = pki.other_ca()});
      CHECK(ec == tls_errc::unknown_ca);
      CHECK(message.find(pki.other_ca()) != std::string::npos);
      MESSAGE(message);
      const auto [hec, hmessage] =
          put_once(etcd, {.ca_file = pki.ca(), .server_name = "other.example"});
      CHECK(hec == tls_errc::host_name_mismatch);
      CHECK(hmessage.find("'other.example'") != std::string::npos);
    }
    {
      // (the fixture's own readiness checks do not verify this member)
      etcd_cluster etcd(unverified(member_tls(pki.expired_cert(), pki.expired_key(), false)));
      const auto [ec, message] = put_once(etcd, {.ca_file = pki.ca()});
      CHECK(ec == tls_errc::certificate_expired);
      MESSAGE(message);
    }
    {
      etcd_cluster etcd(unverified(member_tls(pki.wrong_host_cert(), pki.wrong_host_key(), false)));
      const auto [ec, message] = put_once(etcd, {.ca_file = pki.ca()});
      CHECK(ec == tls_errc::host_name_mismatch);
      CHECK(message.find("'127.0.0.1'") != std::string::npos);
      MESSAGE(message);
    }
  }

  TEST_CASE("etcd tls: a missing file is refused at construction") {
    asio::io_context io;
    client_options o;
    o.endpoints = {endpoint{"127.0.0.1", 2379, true}};
    o.tls.ca_file = "/nonexistent/ca.pem";
    try {
      client c(io.get_executor(), o);
      FAIL("a missing ca_file was accepted");
    } catch (const seckill::error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find("ca_file '/nonexistent/ca.pem' does not exist") !=
            std::string::npos);
    }
    o.endpoints = {endpoint{"127.0.0.1", 2379, false}};
    CHECK_THROWS_AS(client(io.get_executor(), o), seckill::error);  // TLS options, no https
  }
}

}  // namespace integration_etcd_tls
