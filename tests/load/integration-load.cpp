// seckill_load, run as a program against in-test shops on 127.0.0.1: the
// counts and the JSON report, --verify (OK on an honest shop, FAILED on one
// that oversells or forgets resent requests), the exit statuses, latency
// that includes the wait for a busy connection, and nodes found in a real
// etcd's service registry, weighted and following health grades.
#include "fake_shop.hpp"

#include <etcd/etcd_fixture.hpp>
#include <support/net.hpp>

#include <seckill/detail/temp_dir.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>

#include <doctest/doctest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#ifdef SECKILL_LOAD

namespace integration_load {

using namespace std::chrono_literals;
using seckill::test::fake_shop;
using json = nlohmann::json;

struct outcome {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  [[nodiscard]] json report() const {
    const auto j = json::parse(out, nullptr, false);
    INFO("stdout: " << out << "\nstderr: " << err);
    REQUIRE(j.is_object());
    return j;
  }
};

outcome run_load(const std::string& args) {
  seckill::detail::temp_dir dir("seckill-load");
  const auto err_path = (dir.path() / "stderr").string();
  const std::string command = std::string(SECKILL_LOAD) + " " + args + " 2>" + err_path;
  outcome o;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) o.out.append(buffer, n);
  const int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  o.status = WEXITSTATUS(status);
  std::ifstream err(err_path);
  o.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return o;
}

std::uint64_t count(const json& counts, const char* label) {
  return counts.contains(label) ? counts[label].get<std::uint64_t>() : 0;
}

// A token whose future holds the error of a (error_code, revision) completion.
auto first_error() {
  return boost::asio::use_future([](std::error_code e, std::int64_t) { return e; });
}

// An etcd client, session and registrations on an io_context of their own;
// every call is made on its thread and waited for.
class registry_host {
 public:
  explicit registry_host(const seckill::test::etcd_cluster& etcd)
      : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {
    on([&] {
      client_.emplace(io_.get_executor(), etcd.options());
      session_.emplace(*client_, seckill::etcd::session_options{.ttl = 5s});
      return 0;
    });
    const auto ec = on([&] { return session_->async_start(first_error()); }).get();
    REQUIRE_FALSE(ec);
  }
  registry_host(const registry_host&) = delete;
  registry_host& operator=(const registry_host&) = delete;
  ~registry_host() {
    try {
      (void)on([&] { return session_->async_close(first_error()); }).get();
    } catch (...) {
    }
    on([&] {
      regs_.clear();
      return 0;
    });
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  // Registers `id` at `url` with `weight` under services/seckill.
  void add(const std::string& id, const std::string& url, double weight) {
    auto& r = on([&]() -> seckill::etcd::registration& {
      return *regs_
                  .emplace(id, std::make_unique<seckill::etcd::registration>(
                                   *session_, "services/seckill",
                                   seckill::etcd::service_instance{
                                       .id = id, .endpoint = url, .weight = weight}))
                  .first->second;
    });
    const auto ec = on([&] { return r.async_register(first_error()); }).get();
    REQUIRE_FALSE(ec);
  }

  void set_health(const std::string& id, seckill::etcd::health_state h) {
    auto& r = *regs_.at(id);
    const auto ec = on([&] { return r.async_set_health(h, 1.0, first_error()); }).get();
    REQUIRE_FALSE(ec);
  }

 private:
  template <class F>
  auto on(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::optional<seckill::etcd::client> client_;
  std::optional<seckill::etcd::session> session_;
  std::map<std::string, std::unique_ptr<seckill::etcd::registration>> regs_;
};

}  // namespace integration_load

using namespace integration_load;

TEST_SUITE("integration") {
  TEST_CASE("seckill_load - counts - the JSON report and --verify OK against an honest shop") {
    fake_shop shop;
    const auto r =
        run_load("--target " + shop.url() +
                 " --requests 600 --rate 3000 --connections 4 --skus 3 --setup-stock 100 "
                 "--admin-token t0k3n --repeat-share 0.2 --seed 5 --verify --json --no-progress");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    const auto j = r.report();
    CHECK(j["config"]["requests"] == 600);
    CHECK(j["config"]["discovery"] == "targets");
    CHECK(j["requested_rate"] == 3000.0);
    CHECK(j["achieved_rate"].get<double>() > 0);
    const auto& total = j["total"];
    CHECK(total["sent"] == 600);
    CHECK(total["answered"] == 600);
    CHECK(total["no_answer"] == 0);
    CHECK(shop.purchases() == 600u);
    CHECK(shop.admin_calls() == 3u);
    CHECK(shop.refused_tokens() == 0u);
    CHECK(shop.connections() <= 5u);  // 4 keep-alive connections (and the set-up's)
    CHECK(count(total["status"], "200") + count(total["status"], "409") == 600u);
    CHECK(count(total["answers"], "200") + count(total["answers"], "409 sold_out") == 600u);
    CHECK(count(total["answers"], "409 sold_out") > 0u);
    const auto& lat = total["latency_ms"];
    CHECK(lat["count"] == 600);
    CHECK(lat["p50"].get<double>() <= lat["p99"].get<double>());
    CHECK(lat["p99"].get<double>() <= lat["p999"].get<double>());
    CHECK(lat["p999"].get<double>() <= lat["max"].get<double>());
    CHECK(j["idempotency"]["replays"].get<int>() > 60);
    CHECK(j["idempotency"]["violations"] == 0);
    CHECK(j["idempotency"]["duplicate_order_ids"] == 0);
    REQUIRE(j["nodes"].contains(shop.url()));
    CHECK(j["nodes"][shop.url()]["sent"] == 600);
    CHECK(j["verify"]["ok"] == true);
    std::int64_t sold = 0;
    for (const auto& s : j["verify"]["skus"]) {
      CHECK(s["ok"] == true);
      CHECK(s["initial"] == 100);
      CHECK(s["sold"] == s["answered_units"]);
      sold += s["sold"].get<std::int64_t>();
    }
    CHECK(sold == 300);  // more buyers than stock: every unit went
    CHECK(shop.sold("sku-0") + shop.sold("sku-1") + shop.sold("sku-2") == 300);
    CHECK(r.out.find("t0k3n") == std::string::npos);
    CHECK(r.err.find("t0k3n") == std::string::npos);
  }

  TEST_CASE("seckill_load - a run for a duration at a fixed rate sends rate x duration requests") {
    fake_shop shop;
    const auto r =
        run_load("--target " + shop.url() + " --duration 500ms --rate 200 --no-progress");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(shop.purchases() == 100u);  // at 0, 5, ..., 495 ms
    // the table
    CHECK(r.out.find("requests                100 in") != std::string::npos);
    CHECK(r.out.find("200/s requested") != std::string::npos);
    CHECK(r.out.find("404 unknown_sku") != std::string::npos);  // no stock was set up
    CHECK(r.out.find("p99.9") != std::string::npos);
    CHECK(r.out.find("per node") != std::string::npos);
    CHECK(r.out.find(shop.url() + "  100 sent") != std::string::npos);
    CHECK(r.out.find("verify") == std::string::npos);
  }

  TEST_CASE("seckill_load - --verify fails when the shop oversells") {
    fake_shop shop({.oversell = true});
    const auto r = run_load("--target " + shop.url() +
                            " --requests 40 --rate 2000 --setup-stock 10 --admin-token t0k3n "
                            "--verify --no-progress");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(r.out.find("FAILED: sku-0: oversold: sold 40 > 10 at the start") != std::string::npos);
    CHECK(r.out.find("verify                  OK") == std::string::npos);
  }

  TEST_CASE("seckill_load - --verify fails when resent requests get new orders") {
    fake_shop shop({.forget_requests = true});
    const auto r = run_load("--target " + shop.url() +
                            " --requests 200 --rate 4000 --setup-stock 1000 --admin-token t0k3n "
                            "--repeat-share 0.3 --verify --json --no-progress");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    const auto j = r.report();
    CHECK(j["idempotency"]["violations"].get<int>() > 0);
    CHECK(j["verify"]["ok"] == false);
    CHECK(j["verify"]["problems"].dump().find("answered with another order id") !=
          std::string::npos);
  }

  TEST_CASE("seckill_load - exit statuses - nothing listening - a refused token - bad flags") {
    const auto port = seckill::test::free_loopback_port();
    auto r = run_load("--target http://127.0.0.1:" + std::to_string(port) + " --requests 5");
    CHECK(r.status == 3);
    CHECK(r.err == "seckill_load: cannot reach http://127.0.0.1:" + std::to_string(port) +
                       " (connection_refused)\n");
    CHECK(r.out.empty());

    fake_shop shop;
    r = run_load("--target " + shop.url() +
                 " --requests 5 --setup-stock 5 --admin-token wrong-s3cret --no-progress");
    CHECK(r.status == 3);
    CHECK(r.err == "seckill_load: --setup-stock: http://" + shop.url().substr(7) +
                       " refused the admin token (401)\n");
    CHECK(r.err.find("wrong-s3cret") == std::string::npos);
    CHECK(shop.refused_tokens() == 1u);
    CHECK(shop.purchases() == 0u);

    r = run_load("--target " + shop.url() + " --rate 0");
    CHECK(r.status == 2);
    CHECK(r.err == "seckill_load: --rate: expected a number in [0.001, 10000000], saw '0'\n");
    r = run_load("--help");
    CHECK(r.status == 0);
    CHECK(r.out.find("usage:") != std::string::npos);
  }

  TEST_CASE("seckill_load - latency includes the wait for a busy connection") {
    // One connection, 20 ms per purchase (50/s), 100 requests per second:
    // the schedule does not slow down, so requests queue and their latency,
    // counted from when each was meant to go, grows to about half a second.
    fake_shop shop({.service_time = 20ms});
    const auto r = run_load("--target " + shop.url() +
                            " --requests 50 --rate 100 --connections 1 --json --no-progress");
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    const auto j = r.report();
    const auto& lat = j["total"]["latency_ms"];
    CHECK(lat["min"].get<double>() >= 20.0);
    CHECK(lat["p50"].get<double>() > 150.0);
    CHECK(lat["max"].get<double>() > 400.0);
    CHECK(j["seconds"].get<double>() >= 1.0);  // 50 x 20 ms of service
  }

  TEST_CASE("seckill_load --etcd - nodes from the registry by weight - a read-only one gets none") {
    seckill::test::etcd_cluster etcd(1);
    fake_shop a({.first_order = 1'000'000}), b({.first_order = 2'000'000});
    registry_host reg(etcd);
    reg.add("a", a.url(), 3);
    reg.add("b", "127.0.0.1:" + std::to_string(b.port()), 1);  // a bare host:port works too
    const std::string common =
        "--etcd " + etcd.endpoint_list() + " --requests 200 --rate 2000 --json --no-progress";
    auto r = run_load(common);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    auto j = r.report();
    CHECK(j["config"]["discovery"] == "etcd");
    CHECK(j["config"]["service"] == "services/seckill");
    CHECK(a.purchases() == 150u);  // smooth weighted round robin, 3:1
    CHECK(b.purchases() == 50u);
    CHECK(j["nodes"][a.url()]["sent"] == 150);
    CHECK(j["nodes"][b.url()]["sent"] == 50);

    reg.set_health("b", seckill::etcd::health_state::read_only);
    r = run_load(common);
    CHECK(r.status == 0);
    CHECK(a.purchases() == 350u);
    CHECK(b.purchases() == 50u);  // read-only: no purchases
    j = r.report();
    CHECK_FALSE(j["nodes"].contains(b.url()));

    // --service names another service: nothing registered there
    r = run_load(common + " --service other");
    CHECK(r.status == 3);
    CHECK(r.err.find("no instance of 'services/other' is registered") != std::string::npos);
  }

  TEST_CASE("seckill_load --etcd - a grade change during a run moves the traffic at once") {
    seckill::test::etcd_cluster etcd(1);
    fake_shop a({.first_order = 1'000'000}), b({.first_order = 2'000'000});
    registry_host reg(etcd);
    reg.add("a", a.url(), 1);
    reg.add("b", b.url(), 1);
    auto running = std::async(std::launch::async, [&] {
      return run_load("--etcd " + etcd.endpoint_list() +
                      " --duration 2500ms --rate 200 --json --no-progress");
    });
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (b.purchases() < 50 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(5ms);
    REQUIRE(b.purchases() >= 50u);
    reg.set_health("b", seckill::etcd::health_state::read_only);
    std::this_thread::sleep_for(500ms);  // the watch brings the change
    const auto b_after_change = b.purchases();
    const auto a_after_change = a.purchases();
    const auto r = running.get();
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(b.purchases() == b_after_change);
    CHECK(a.purchases() > a_after_change + 100);
    const auto j = r.report();
    CHECK(j["total"]["sent"] == 500);
    CHECK(j["total"]["answered"] == 500);
  }
}

#endif  // SECKILL_LOAD
