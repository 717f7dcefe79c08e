#pragma once
// What the etcd_store integration tests share: the conformance fixture, a
// store fixture with chosen options, raw reads of etcd's keys and leases, and
// a proxy that loses the answers of write transactions.
#include "etcd_fixture.hpp"
#include "store_conformance.hpp"
#include "test_util.hpp"

#include <seckill/clock.hpp>
#include <seckill/etcd/etcd_store.hpp>

#include <doctest/doctest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

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
  // etcd's lease clock judges the sale window; set_policy turns its bounds
  // into TTLs by this host's system clock
  seckill::sale_time sale_now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }
  void let_sale_time_pass(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }
  // opens up to 1 s (the start's TTL rounded up) + 500 ms (the lessor's
  // period) late; closes up to 1 s early (rounded down) or 500 ms late
  std::chrono::milliseconds sale_slack() { return 1600ms; }
};

namespace cf = seckill::test::conformance;
using seckill::etcd::etcd_store_options;

/// A store with chosen options on a caller's etcd (or proxy); the conformance
/// helpers (cf::reserve, cf::commit, ...) drive it.
struct store_fixture {
  store_fixture(seckill::etcd::client_options copts, etcd_store_options o)
      : store_(context.get_executor(), std::move(copts), std::move(o), clock) {}
  asio::io_context context;
  seckill::manual_clock clock;
  store_type store_;
  store_type& store() { return store_; }
  asio::io_context& io() { return context; }
  std::chrono::milliseconds hold() { return 30s; }
};

/// The keys under `prefix` now, with their leases.
inline std::vector<seckill::etcd::key_value> keys_under(const seckill::etcd::client_options& o,
                                                        const std::string& prefix) {
  std::vector<seckill::etcd::key_value> out;
  seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    seckill::etcd::client c(io.get_executor(), o);
    seckill::etcd::range_options ro;
    ro.prefix = true;
    auto [ec, r] = co_await c.async_range(prefix, ro, seckill::test::tuple_awaitable);
    REQUIRE_MESSAGE(!ec, r.error_message);
    out = r.kvs;
  });
  return out;
}

/// The leases etcd holds now (LeaseLeases).
inline std::size_t lease_count(const seckill::etcd::client_options& o) {
  std::size_t n = 0;
  seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    seckill::etcd::client c(io.get_executor(), o);
    nlohmann::json out;
    std::string message;
    const std::string target = "/v3/lease/leases";
    const nlohmann::json body = nlohmann::json::object();
    auto ec = co_await c.call(target, body, true, out, message);
    REQUIRE_MESSAGE(!ec, message);
    if (out.contains("leases")) n = out["leases"].size();
  });
  return n;
}

/// A TCP proxy on 127.0.0.1 in front of one etcd member that can lose the
/// answer of a write transaction (a /v3/kv/txn with a put) after etcd has
/// applied it: it forwards the request, and of the answer only its first 5
/// bytes, then closes both sides. The client then reports the call failed
/// (`errc::store_unavailable` from the store) although the write ran.
class answer_dropping_proxy {
 public:
  explicit answer_dropping_proxy(seckill::etcd::endpoint upstream)
      : upstream_(std::move(upstream)),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  answer_dropping_proxy(const answer_dropping_proxy&) = delete;
  answer_dropping_proxy& operator=(const answer_dropping_proxy&) = delete;
  ~answer_dropping_proxy() {
    asio::post(io_, [this] {
      acceptor_.close();
      io_.stop();
    });
    thread_.join();
  }

  [[nodiscard]] seckill::etcd::client_options options() const {
    seckill::etcd::client_options o;
    o.endpoints = {{"127.0.0.1", port_}};
    o.call_timeout = 5s;
    return o;
  }
  /// The answers of the next `n` write transactions are lost.
  void drop_next_write_answers(int n) { drops_.store(n); }
  [[nodiscard]] int dropped() const { return dropped_.load(); }

 private:
  struct link : std::enable_shared_from_this<link> {
    explicit link(asio::io_context& io) : client(io), server(io) {}
    asio::ip::tcp::socket client, server;
    std::string seen;  // the tail of the client's bytes since the last write txn
    bool write_txn = false;
    char up[16384], down[16384];
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
  };

  void accept() {
    auto l = std::make_shared<link>(io_);
    acceptor_.async_accept(l->client, [this, l](std::error_code ec) {
      if (ec) return;
      accept();
      boost::system::error_code cec;
      l->server.connect({asio::ip::make_address(upstream_.host), upstream_.port}, cec);
      if (cec) {
        l->close();
        return;
      }
      pump_up(l);
      pump_down(l);
    });
  }

  void pump_up(std::shared_ptr<link> l) {
    l->client.async_read_some(asio::buffer(l->up), [this, l](std::error_code ec, std::size_t n) {
      if (ec) return l->close();
      l->seen.append(l->up, n);
      if (l->seen.find("request_put") != std::string::npos) {  // only a write txn's body says that
        l->write_txn = true;
        l->seen.clear();
      } else if (l->seen.size() > 64) {
        l->seen.erase(0, l->seen.size() - 64);
      }
      asio::async_write(l->server, asio::buffer(l->up, n),
                        [this, l](std::error_code wec, std::size_t) {
                          if (wec) return l->close();
                          pump_up(l);
                        });
    });
  }

  void pump_down(std::shared_ptr<link> l) {
    l->server.async_read_some(asio::buffer(l->down), [this, l](std::error_code ec, std::size_t n) {
      if (ec) return l->close();
      const bool answer_of_write = std::exchange(l->write_txn, false);
      if (answer_of_write && drops_.load() > 0) {
        drops_.fetch_sub(1);
        dropped_.fetch_add(1);
        asio::async_write(l->client, asio::buffer(l->down, std::min<std::size_t>(n, 5)),
                          [l](std::error_code, std::size_t) { l->close(); });
        return;
      }
      asio::async_write(l->client, asio::buffer(l->down, n),
                        [this, l](std::error_code wec, std::size_t) {
                          if (wec) return l->close();
                          pump_down(l);
                        });
    });
  }

  seckill::etcd::endpoint upstream_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<int> drops_{0}, dropped_{0};
  std::thread thread_;
};
}  // namespace integration_etcd_store
