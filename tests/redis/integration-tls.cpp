// Redis over TLS against a real redis-server (tls-port on 127.0.0.1) with
// certificates made by the openssl CLI for the test (support/tls_certs.hpp):
// a sale over TLS and mutual TLS, and each refusal with its code and message.

#include <seckill/redis/connection.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/tls.hpp>

#include "redis/redis_server.hpp"
#include "redis/test_support.hpp"
#include "support/tls_certs.hpp"

#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <system_error>

namespace integration_tls {

using seckill::tls_errc;
using seckill::tls_options;
using seckill::redis::connection;
using seckill::redis::connection_config;
using seckill::test::redis_server;
using seckill::test::redis_tls;
using seckill::test::run_test;
using seckill::test::test_pki;
using seckill::test::tuple_awaitable;
namespace asio = boost::asio;

redis_tls server_tls(const std::string& cert, const std::string& key,
                     const std::string& auth_clients = "no") {
  const auto& pki = test_pki::get();
  return {cert, key, pki.ca(), auth_clients};
}

connection_config tls_config(const redis_server& server, tls_options tls) {
  auto cfg = seckill::test::config_for<connection_config>(server);
  cfg.port = std::to_string(server.tls_port());
  cfg.tls = std::move(tls);
  cfg.reconnect = false;
  return cfg;
}

// What constructing a connection with `cfg` throws ("" when it does not);
// the code must be invalid_argument.
std::string construction_error(const connection_config& cfg) {
  asio::io_context io;
  try {
    connection conn(io.get_executor(), cfg);
  } catch (const seckill::error& e) {
    CHECK(e.code() == seckill::errc::invalid_argument);
    return e.what();
  }
  return {};
}

// Connects once and returns the code and last_error().
std::pair<std::error_code, std::string> connect_once(connection_config cfg) {
  asio::io_context io;
  connection conn(io.get_executor(), std::move(cfg));
  std::error_code result;
  run_test(io, [&]() -> asio::awaitable<void> {
    auto [ec] = co_await conn.async_connect(tuple_awaitable);
    result = ec;
    conn.close();
  });
  return {result, conn.last_error()};
}

TEST_SUITE("integration") {
  TEST_CASE("redis tls: a reserve over rediss with the CA file") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.server_cert(), pki.server_key()));
    connection_config cfg = seckill::test::config_for<connection_config>(server);
    const std::string url =
        "rediss://127.0.0.1:" + std::to_string(server.tls_port()) + "/0?ca_file=" + pki.ca();
    std::string why;
    REQUIRE_MESSAGE(!seckill::redis::parse_url(url, cfg, &why), why);
    REQUIRE(cfg.tls.has_value());
    asio::io_context io;
    seckill::redis::redis_store store(io.get_executor(), cfg);
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [ec] = co_await store.async_connect(tuple_awaitable);
      REQUIRE_MESSAGE(!ec, store.connection().last_error());
      auto [e1] = co_await store.async_set_stock("tea", 5, tuple_awaitable);
      CHECK(!e1);
      auto [e2, r] =
          co_await store.async_reserve("tea", 2, 42, std::chrono::seconds(30), tuple_awaitable);
      CHECK(!e2);
      CHECK(r.status == seckill::reserve_status::reserved);
      CHECK(r.remaining == 3);
      store.close();
    });
    // the server saw it on its TLS port: the stock is in the same server
    CHECK(server.admin().command("HGET", "seckill:{tea}:stock", "remaining").text == "3");
  }

  TEST_CASE("redis tls: mutual TLS with a client certificate and with an encrypted key") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.server_cert(), pki.server_key(), "yes"));
    for (const bool encrypted : {false, true}) {
      CAPTURE(encrypted);
      tls_options tls{.ca_file = pki.ca(), .cert_file = pki.client_cert()};
      tls.key_file = encrypted ? pki.encrypted_client_key() : pki.client_key();
      if (encrypted) tls.key_password = test_pki::key_passphrase;
      asio::io_context io;
      connection conn(io.get_executor(), tls_config(server, tls));
      run_test(io, [&]() -> asio::awaitable<void> {
        auto [ec] = co_await conn.async_connect(tuple_awaitable);
        REQUIRE_MESSAGE(!ec, conn.last_error());
        seckill::redis::request req;
        req.push("SET", "k", "v").push("GET", "k");
        auto [e, replies] = co_await conn.async_exec(req, tuple_awaitable);
        CHECK(!e);
        REQUIRE(replies.size() == 2);
        CHECK(replies[1].text == "v");
        conn.close();
      });
    }
  }

  TEST_CASE("redis tls: mutual TLS without a client certificate is certificate_refused") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.server_cert(), pki.server_key(), "yes"));
    const auto [ec, message] = connect_once(tls_config(server, {.ca_file = pki.ca()}));
    CHECK(ec == tls_errc::certificate_refused);
    CHECK(ec == seckill::condition::server);
    CHECK(message.find("cert_file") != std::string::npos);
    MESSAGE(message);
  }

  TEST_CASE("redis tls: an unknown CA is unknown_ca") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.server_cert(), pki.server_key()));
    const auto [ec, message] = connect_once(tls_config(server, {.ca_file = pki.other_ca()}));
    CHECK(ec == tls_errc::unknown_ca);
    CHECK(message.find(pki.other_ca()) != std::string::npos);
    MESSAGE(message);
  }

  TEST_CASE("redis tls: an expired server certificate is certificate_expired") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.expired_cert(), pki.expired_key()));
    const auto [ec, message] = connect_once(tls_config(server, {.ca_file = pki.ca()}));
    CHECK(ec == tls_errc::certificate_expired);
    CHECK(message.find("expired") != std::string::npos);
    MESSAGE(message);
  }

  TEST_CASE("redis tls: a certificate for another host is host_name_mismatch") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.wrong_host_cert(), pki.wrong_host_key()));
    const auto [ec, message] = connect_once(tls_config(server, {.ca_file = pki.ca()}));
    CHECK(ec == tls_errc::host_name_mismatch);
    CHECK(message.find("'127.0.0.1'") != std::string::npos);
    MESSAGE(message);
    // the name it carries, as server_name, is accepted
    const auto [ok, why] =
        connect_once(tls_config(server, {.ca_file = pki.ca(), .server_name = "wrong.example"}));
    CHECK_MESSAGE(!ok, why);
    // and the good certificate refuses a server_name it does not carry
    redis_server good(server_tls(pki.server_cert(), pki.server_key()));
    const auto [other, other_why] =
        connect_once(tls_config(good, {.ca_file = pki.ca(), .server_name = "other.example"}));
    CHECK(other == tls_errc::host_name_mismatch);
    CHECK(other_why.find("other.example") != std::string::npos);
  }

  TEST_CASE(
      "redis tls: a plain port is a timeout and a server that is not TLS is handshake_failed") {
    const auto& pki = test_pki::get();
    redis_server server(server_tls(pki.server_cert(), pki.server_key()));
    auto cfg = tls_config(server, {.ca_file = pki.ca()});
    cfg.port = server.port_string();  // the plain port: it waits for the end of a command
    cfg.connect_timeout = std::chrono::milliseconds(500);
    const auto [ec, message] = connect_once(cfg);
    CHECK(ec == seckill::errc::timed_out);
    CHECK(message.find("in the TLS handshake (is " + server.port_string() + " a TLS port?)") !=
          std::string::npos);
    // a server that answers the hello with text
    asio::io_context io;
    seckill::test::fake_server http(io, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    cfg.port = std::to_string(http.port());
    cfg.connect_timeout = std::chrono::seconds(3);
    connection conn(io.get_executor(), cfg);
    std::error_code result;
    run_test(io, [&]() -> asio::awaitable<void> {
      auto [e] = co_await conn.async_connect(tuple_awaitable);
      result = e;
      conn.close();
      http.close();
    });
    CHECK(result == tls_errc::handshake_failed);
    CHECK(result == seckill::condition::protocol);
    CHECK(conn.last_error().find("does not speak TLS") != std::string::npos);
    MESSAGE(conn.last_error());
  }

  TEST_CASE("redis tls: missing or bad files are refused at construction") {
    const auto& pki = test_pki::get();
    connection_config cfg;
    cfg.tls = tls_options{.ca_file = "/nonexistent/ca.pem"};
    CHECK(construction_error(cfg).find("ca_file '/nonexistent/ca.pem' does not exist") !=
          std::string::npos);
    cfg.tls = tls_options{.ca_file = pki.ca(), .cert_file = "/nonexistent/client.pem"};
    CHECK(construction_error(cfg).find("cert_file '/nonexistent/client.pem' does not exist") !=
          std::string::npos);
    cfg.tls = tls_options{.ca_file = pki.ca(),
                          .cert_file = pki.client_cert(),
                          .key_file = pki.encrypted_client_key(),
                          .key_password = "wrong-pass"};
    const std::string wrong = construction_error(cfg);
    CHECK(wrong.find("key_file '" + pki.encrypted_client_key() + "' cannot be used") !=
          std::string::npos);
    CHECK(wrong.find("wrong-pass") == std::string::npos);
    cfg.tls = tls_options{
        .ca_file = pki.ca(), .cert_file = pki.client_cert(), .key_file = pki.server_key()};
    CHECK(construction_error(cfg).find("key_file '" + pki.server_key() +
                                       "' cannot be used: key values mismatch") !=
          std::string::npos);
    cfg.tls = tls_options{.ca_file = pki.ca(), .key_file = pki.client_key()};
    CHECK(construction_error(cfg).find("key_file") != std::string::npos);
    cfg.tls = tls_options{.ca_file = pki.client_key()};  // not a certificate
    CHECK(construction_error(cfg).find("ca_file '" + pki.client_key() + "' cannot be used") !=
          std::string::npos);
  }
}

}  // namespace integration_tls
