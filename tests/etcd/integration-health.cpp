// Health that is enforced: a node whose lease renewals are cut by a proxy
// walks healthy -> degraded -> read-only -> offline and back, and in each
// grade another client sees its registry weight and its engine answers as
// the grade says.
#include "etcd_fixture.hpp"
#include "test_util.hpp"

#include <seckill/detail/spawned_completion.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/watch.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/store/memory_store.hpp>

#include <doctest/doctest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace integration_health {
using namespace seckill::etcd;
using seckill::test::tuple_awaitable;
using namespace std::chrono_literals;
namespace asio = boost::asio;

/// A TCP proxy on 127.0.0.1 in front of one etcd member that, while told to,
/// cuts every lease call (grant, keepalive, revoke): it closes the connection
/// as soon as it sees one, so the node's renewals fail while its other calls
/// (registry writes) go through.
class lease_cutting_proxy {
 public:
  explicit lease_cutting_proxy(endpoint upstream)
      : upstream_(std::move(upstream)),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  lease_cutting_proxy(const lease_cutting_proxy&) = delete;
  lease_cutting_proxy& operator=(const lease_cutting_proxy&) = delete;
  ~lease_cutting_proxy() {
    asio::post(io_, [this] {
      acceptor_.close();
      io_.stop();
    });
    thread_.join();
  }

  [[nodiscard]] client_options options() const {
    client_options o;
    o.endpoints = {{"127.0.0.1", port_}};
    o.call_timeout = 2s;
    return o;
  }
  void cut_leases(bool on) { cutting_.store(on); }
  [[nodiscard]] int cut() const { return cut_.load(); }

 private:
  struct link : std::enable_shared_from_this<link> {
    explicit link(asio::io_context& io) : client(io), server(io) {}
    asio::ip::tcp::socket client, server;
    std::string tail;  // the last bytes from the client, for a request line split across reads
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
      l->tail.append(l->up, n);
      const bool lease_call = l->tail.find("POST /v3/lease/") != std::string::npos;
      if (l->tail.size() > 64) l->tail.erase(0, l->tail.size() - 64);
      if (lease_call) l->tail.clear();
      if (lease_call && cutting_.load()) {
        cut_.fetch_add(1);
        return l->close();
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
      asio::async_write(l->client, asio::buffer(l->down, n),
                        [this, l](std::error_code wec, std::size_t) {
                          if (wec) return l->close();
                          pump_down(l);
                        });
    });
  }

  endpoint upstream_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> cutting_{false};
  std::atomic<int> cut_{0};
  std::thread thread_;
};

struct counting_ids {
  std::int64_t last = 0;
  std::int64_t next(std::error_code& ec) noexcept {
    ec.clear();
    return ++last;
  }
};

/// A payment that completes when the test releases it (for a purchase kept
/// in flight across a grade change), or at once when `held` is false.
struct held_payment {
  bool held = false;
  bool released = false;
  int calls = 0;
  template <class Token>
  auto async_pay(const seckill::payment_request&, Token&& token) {
    ++calls;
    return seckill::detail::async_spawn<void(std::error_code)>(executor, wait(this), token);
  }
  static asio::awaitable<std::error_code> wait(held_payment* self) {
    while (self->held && !self->released) co_await seckill::test::sleep_for(10ms);
    co_return std::error_code{};
  }
  asio::any_io_executor executor;
};

using monitor_type = health_monitor<>;
using engine_type = seckill::purchase_engine<seckill::memory_store<>, seckill::unlimited,
                                             seckill::no_breaker, counting_ids, held_payment,
                                             seckill::memory_orders, seckill::no_purchase_hooks,
                                             std::chrono::steady_clock, health_gate<monitor_type>>;

asio::awaitable<std::pair<std::error_code, seckill::purchase_result>> buy(engine_type& engine) {
  const seckill::purchase_request one{.sku = "sku"};
  auto [ec, r] = co_await engine.async_purchase(one, tuple_awaitable);
  co_return std::pair{ec, r};
}
}  // namespace integration_health

TEST_SUITE("integration") {
  using namespace integration_health;
  TEST_CASE("a node whose renewals are cut degrades then turns read-only then offline and back") {
    seckill::test::etcd_cluster etcd(1);
    lease_cutting_proxy proxy(etcd.endpoint_of(0));
    seckill::test::run_test([&](asio::io_context& io) -> asio::awaitable<void> {
      // the node: its etcd calls go through the proxy
      client node_client(io.get_executor(), proxy.options());
      const session_options so{.ttl = 10s, .keepalive_interval = 500ms, .retry_interval = 2s};
      session s(node_client, so);
      auto [sec, first_lease] = co_await s.async_start(tuple_awaitable);
      REQUIRE_FALSE(sec);
      monitor_type monitor;  // the design's thresholds
      const health_thresholds& t = monitor.thresholds();
      std::vector<monitor_type::transition> transitions;
      monitor.on_transition([&](const monitor_type::transition& tr) { transitions.push_back(tr); });
      const double weight = 2.0;
      registration reg(s, "services/shop",
                       {.id = "n1", .endpoint = "127.0.0.1:7001", .weight = weight});
      reg.follow(monitor);
      health_link link = attach_health(s, monitor);
      CHECK(monitor.thresholds().lease_ttl == 10s);
      auto [rec, rrev] = co_await reg.async_register(tuple_awaitable);
      REQUIRE_FALSE(rec);

      seckill::memory_store<> store(io.get_executor());
      const std::string sku = "sku";
      auto [stock_ec] = co_await store.async_set_stock(sku, 100, tuple_awaitable);
      REQUIRE_FALSE(stock_ec);
      seckill::unlimited limiter;
      seckill::no_breaker breaker;
      counting_ids ids;
      held_payment payment{.executor = io.get_executor()};
      seckill::memory_orders orders;
      engine_type engine(store, limiter, breaker, ids, payment, orders,
                         {.deadline = 60s, .hold = 120s}, {}, {},
                         health_gate<monitor_type>(monitor));

      // another node watching the registry
      client observer_client(io.get_executor(), etcd.options());
      watcher w(observer_client);
      resolver res(w, "services/shop");
      std::vector<instance_event> events;
      res.on_event([&](const instance_event& e) {
        if (e.instance.id == "n1") events.push_back(e);
      });
      co_await res.async_start(tuple_awaitable);
      REQUIRE(res.instances().count("n1") == 1);
      const auto seen = [&]() -> const service_instance* {
        const auto it = res.instances().find("n1");
        return it == res.instances().end() ? nullptr : &it->second;
      };

      // healthy: full weight, sells
      CHECK(monitor.state() == health_state::healthy);
      CHECK(seen()->effective_weight == doctest::Approx(weight));
      auto [e0, r0] = co_await buy(engine);
      CHECK_FALSE(e0);
      CHECK(r0.final_state == seckill::purchase_state::succeeded);

      // degraded after 2 failed renewals: 30% of the weight, still sells
      proxy.cut_leases(true);
      const auto cut_at = std::chrono::steady_clock::now();
      REQUIRE(co_await seckill::test::eventually(
          [&] { return monitor.state() == health_state::degraded; }, 10000ms));
      CHECK(monitor.consecutive_failures() >= t.degraded_after_failures);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return seen() && seen()->health == health_state::degraded; }, 5000ms));
      CHECK(seen()->effective_weight == doctest::Approx(weight * t.degraded_weight_factor));
      auto [e1, r1] = co_await buy(engine);
      CHECK_FALSE(e1);
      CHECK(r1.final_state == seckill::purchase_state::succeeded);
      // a purchase admitted now stays in flight (its payment is held) across read-only
      payment.held = true;
      std::optional<std::pair<std::error_code, seckill::purchase_result>> in_flight;
      const seckill::purchase_request held_request{.sku = "sku"};
      engine.async_purchase(held_request, [&](std::error_code ec, seckill::purchase_result r) {
        in_flight.emplace(ec, r);
      });

      // read-only after 4 failed renewals: weight 0, new purchases refused
      REQUIRE(co_await seckill::test::eventually(
          [&] { return monitor.state() == health_state::read_only; }, 15000ms));
      REQUIRE(transitions.size() >= 2);
      CHECK(transitions[1].to == health_state::read_only);
      CHECK(transitions[1].consecutive_failures >= t.read_only_after_failures);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return seen() && seen()->health == health_state::read_only; }, 5000ms));
      CHECK(seen()->effective_weight == 0.0);
      const std::int64_t ids_before = ids.last;
      auto [e2, r2] = co_await buy(engine);
      CHECK(e2 == seckill::errc::read_only);
      CHECK(r2.final_state == seckill::purchase_state::idle);
      CHECK(r2.order_id == 0);
      CHECK(ids.last == ids_before);  // refused before taking an order id
      CHECK_FALSE(in_flight.has_value());
      payment.released = true;
      REQUIRE(co_await seckill::test::eventually([&] { return in_flight.has_value(); }, 5000ms));
      CHECK_FALSE(in_flight->first);
      CHECK(in_flight->second.final_state == seckill::purchase_state::succeeded);
      payment.held = false;

      // offline at lease ttl + 5 s without a successful renewal; the watcher
      // learnt it from the registry (the record expired with the lease)
      REQUIRE(co_await seckill::test::eventually(
          [&] { return monitor.state() == health_state::offline; },
          std::chrono::duration_cast<std::chrono::milliseconds>(t.offline_after() + 10s)));
      const auto offline_after = std::chrono::steady_clock::now() - cut_at;
      MESSAGE("offline " << std::chrono::duration<double>(offline_after).count()
                         << " s after the renewals were cut (lease ttl + grace "
                         << std::chrono::duration<double>(t.offline_after()).count() << " s)");
      CHECK(offline_after > t.lease_ttl);  // not at the loss: the grace runs after it
      REQUIRE(co_await seckill::test::eventually(
          [&] { return !events.empty() && events.back().what == instance_event::kind::offline; },
          5000ms));
      CHECK(events.back().instance.id == "n1");
      CHECK(events.back().instance.lease == first_lease);
      CHECK(seen() == nullptr);
      auto [e3, r3] = co_await buy(engine);
      CHECK(e3 == seckill::errc::read_only);
      CHECK(r3.final_state == seckill::purchase_state::idle);
      CHECK(proxy.cut() >= static_cast<int>(t.read_only_after_failures));

      // renewals succeed again: a new lease, registered again, back to healthy
      proxy.cut_leases(false);
      REQUIRE(co_await seckill::test::eventually(
          [&] { return monitor.state() == health_state::healthy; }, 15000ms));
      CHECK(s.lease() != first_lease);
      REQUIRE(co_await seckill::test::eventually(
          [&] {
            return seen() && seen()->health == health_state::healthy && seen()->lease == s.lease();
          },
          5000ms));
      CHECK(seen()->effective_weight == doctest::Approx(weight));
      bool came_back = false;
      for (const auto& e : events) {
        if (e.what == instance_event::kind::online && e.instance.lease == s.lease())
          came_back = true;
      }
      CHECK(came_back);
      auto [e4, r4] = co_await buy(engine);
      CHECK_FALSE(e4);
      CHECK(r4.final_state == seckill::purchase_state::succeeded);
      std::vector<health_state> path;
      for (const auto& tr : transitions) path.push_back(tr.to);
      const std::vector<health_state> expected{health_state::degraded, health_state::read_only,
                                               health_state::offline,  health_state::read_only,
                                               health_state::degraded, health_state::healthy};
      CHECK(path == expected);
      auto [level_ec, level] = co_await store.async_stock(sku, tuple_awaitable);
      CHECK_FALSE(level_ec);
      CHECK(level.committed == 4);  // healthy, degraded, the one in flight, after recovery
      CHECK(orders.size() == 4u);
      res.stop();
      link.detach();
      co_await s.async_close(tuple_awaitable);
    });
  }
}
