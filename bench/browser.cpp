// Reaction time in a real headless Chromium, seckill's grabber beside
// Puppeteer on the same demo shop in the same run: from the moment the shop
// pushes a restock to a page (its stock flips) to the moment that page's order
// request arrives at the shop server. Both instants are read by the shop
// server on one steady clock.
//
// One shop, two browsers: seckill's grabber drives a tab of its own Chromium;
// bench/puppeteer/react.mjs (a child process, driven over its stdin and
// stdout) drives a tab of another Chromium with Puppeteer's page API. The
// trials alternate, one restock for seckill, then one for Puppeteer, so the
// load and the noise of the host fall on both alike; the side that is not
// reacting watches nothing. Both press the mouse for the same time (the
// benchmark's second argument, ms) after one mouse move. The stages of
// seckill's reaction, on the shop's clock, from the grabber's events: the flip
// reaching C++ (seen: push, page, observer, binding, DevTools), the decision
// (decide: the offers' snapshot and the strategy), the actions up to the
// request's arrival (act: choose, quantity, the click's checks, move, press
// and release, the page's fetch). Puppeteer's side is left out, with the
// reason on stderr and in the label, when node or puppeteer-core is missing
// (`npm ci` in bench/puppeteer; scripts/bench does it when npm exists).
// The extension backend runs in the same run, trial by trial after the two
// others: seckill's grabber over an extension_driver, the extension (extension/)
// loaded in a third Chromium whose seckill_native_host relays the frames to
// this process (its "relay" configuration). Left out, with the reason, when
// the bench was built without the examples (no seckill_native_host).
// Also: the cost of one evaluate round trip.
//
//   build/release/bench/seckill_bench_browser   (or scripts/bench browser)
#include "../examples/shop/shop_server.hpp"
#include "support/alloc_counter.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/extension_driver.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#ifndef SECKILL_PUPPETEER_DIR
#define SECKILL_PUPPETEER_DIR "bench/puppeteer"
#endif

namespace {

namespace asio = boost::asio;
namespace sb = seckill::browser;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A Chromium of its own, one tab on `url`.
struct browser_session {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  sb::chromium browser = sb::chromium::launch(io.get_executor());
  sb::page page;

  explicit browser_session(const std::string& url) {
    auto [eo, p] = sb::page::async_open(browser.connection(), asio::use_future).get();
    if (eo) throw std::runtime_error("open: " + eo.message());
    page = std::move(p);
    auto [en, r] = page.async_navigate(url, asio::use_future).get();
    if (en) throw std::runtime_error("navigate: " + en.message());
  }
  browser_session(const browser_session&) = delete;
  browser_session& operator=(const browser_session&) = delete;
  ~browser_session() {
    browser.shutdown();
    work.reset();
    io.stop();
    thread.join();
  }
};

bool wait_listeners(shop::shop_server& shop, std::size_t n) {
  for (int i = 0; i < 1000; ++i) {
    if (shop.listeners() >= n) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// The flags seckill starts Chromium with, less those naming its own debugging
// endpoint and profile (Puppeteer picks its own).
std::vector<std::string> shared_chromium_flags() {
  const sb::chromium_options opts;
  const auto args = sb::chromium_arguments(opts, "/unused");
  std::vector<std::string> flags;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.starts_with("--remote-debugging-") || a.starts_with("--user-data-dir=")) continue;
    flags.push_back(a);
  }
  return flags;
}

// bench/puppeteer/react.mjs as a child process, driven one line at a time.
class puppeteer_side {
 public:
  // Why the side cannot run on this host; empty when it can.
  static std::string unavailable() {
    const std::filesystem::path dir(SECKILL_PUPPETEER_DIR);
    if (!on_path("node")) return "node is not on PATH";
    if (!std::filesystem::exists(dir / "node_modules" / "puppeteer-core" / "package.json"))
      return "puppeteer-core is not installed: run `npm ci` in " + dir.string() +
             " (scripts/bench browser does when npm is there)";
    return {};
  }

  puppeteer_side(const std::string& url, const nlohmann::json& config) {
    const std::string script =
        (std::filesystem::path(SECKILL_PUPPETEER_DIR) / "react.mjs").string();
    const std::string config_text = config.dump();
    std::vector<const char*> argv{"node", script.c_str(), url.c_str(), config_text.c_str(),
                                  nullptr};
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {  // the child: only async-signal-safe calls until exec
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      ::execvp("node", const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_ = to_child[1];
    from_ = from_child[0];
  }
  puppeteer_side(const puppeteer_side&) = delete;
  puppeteer_side& operator=(const puppeteer_side&) = delete;
  ~puppeteer_side() {
    say("quit");
    ::close(to_);
    const auto until = steady::now() + 15s;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (steady::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::close(from_);
  }

  bool say(const std::string& line) {
    const std::string text = line + "\n";
    return ::write(to_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }

  // The next line the script prints, waiting at most `timeout`; nullopt when
  // none came or the script ended.
  std::optional<std::string> next_line(std::chrono::milliseconds timeout) {
    const auto until = steady::now() + timeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - steady::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Waits for exactly `expected`; false (with what came instead in `seen`) otherwise.
  bool expect(const std::string& expected, std::chrono::milliseconds timeout, std::string& seen) {
    auto line = next_line(timeout);
    seen = line ? *line : "(nothing within " + std::to_string(timeout.count()) + " ms)";
    return line && *line == expected;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buffer_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double span_ms(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The stages of one grabber run on the shop's clock, from its events: the
// flip reaching C++ (seen), the decision (decide), the actions up to the
// order's arrival (act). Its events are written on the driver's strand and
// read once the run is over.
struct stage_clock {
  std::promise<void> watching;  // set once the run watches the page
  std::optional<steady::time_point> seen, decided;
  bool armed = true;

  sb::grabber_options options() {
    sb::grabber_options o;
    o.on_event = [this](const sb::grab_event& e) {
      if (armed && e.step == sb::grab_step::watching) {
        armed = false;
        watching.set_value();
      }
      if (!armed && !seen && e.step == sb::grab_step::stock_changed &&
          e.detail.find("'In stock'") != std::string::npos) {
        seen = e.at;
      }
      if (!decided && e.step == sb::grab_step::decided) decided = e.at;
    };
    return o;
  }
  void record(const shop::shop_server& shop, std::vector<double>& seen_ms,
              std::vector<double>& decide_ms, std::vector<double>& act_ms) const {
    const auto flip = shop.last_push();
    const auto orders = shop.orders();
    if (!seen || !decided || !flip || orders.empty()) return;
    seen_ms.push_back(span_ms(*flip, *seen));
    decide_ms.push_back(span_ms(*seen, *decided));
    act_ms.push_back(span_ms(*decided, orders[0].received));
  }
};

// Trials alternate between seckill and Puppeteer (range(0) each); every
// trial restocks veg-box for one side after both pages showed it sold out.
// range(1): how long both sides hold the mouse button down, ms.
// The extension backend: a Chromium with the extension loaded and
// seckill_native_host registered in its profile as a relay to `acceptor`;
// `driver` drives the shop's tab through it.
class extension_side {
 public:
  static std::string unavailable() {
#if defined(SECKILL_NATIVE_HOST_BINARY) && defined(SECKILL_EXTENSION_DIR)
    if (!std::filesystem::exists(SECKILL_NATIVE_HOST_BINARY))
      return std::string("seckill_native_host is not built: ") + SECKILL_NATIVE_HOST_BINARY;
    return {};
#else
    return "built without the examples: no seckill_native_host";
#endif
  }

  extension_side(const std::string& url, const sb::click_options& click) {
#if defined(SECKILL_NATIVE_HOST_BINARY) && defined(SECKILL_EXTENSION_DIR)
    const auto profile = tmp_.path() / "profile";
    std::filesystem::create_directories(profile / "NativeMessagingHosts");
    std::ofstream(profile / "NativeMessagingHosts" / "com.seckill.native_host.json")
        << R"({"name": "com.seckill.native_host", "description": "seckill", "path": ")"
        << SECKILL_NATIVE_HOST_BINARY << R"(", "type": "stdio", "allowed_origins": )"
        << R"(["chrome-extension://ikcgffofaaglogflfhnkhingdndchoai/"]})";
    std::ofstream(tmp_.path() / "host.json")
        << R"({"relay": "127.0.0.1:)" << acceptor_.local_endpoint().port() << R"("})";
    ::setenv("SECKILL_NATIVE_HOST_CONFIG", (tmp_.path() / "host.json").c_str(), 1);
    auto accepted = acceptor_.async_accept(asio::use_future);
    sb::chromium_options o;
    o.user_data_dir = profile;
    o.extensions = {SECKILL_EXTENSION_DIR};
    o.close_timeout = 3s;
    browser_.emplace(sb::chromium::launch(io_.get_executor(), o));
    if (accepted.wait_for(30s) != std::future_status::ready)
      throw std::runtime_error("the extension's native host never connected");
    sb::extension_driver_options d;
    d.url = url;
    d.click = click;
    driver.emplace(accepted.get(), sb::site_profile{}, d);
#else
    (void)url;
    (void)click;
#endif
  }
  extension_side(const extension_side&) = delete;
  extension_side& operator=(const extension_side&) = delete;
  ~extension_side() {
    if (driver) asio::post(io_, asio::use_future([d = *driver]() mutable { d.close(); })).wait();
    browser_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Takes every event there is, so a run starts from the page as it is.
  void drain() {
    for (;;) {
      auto [ec, e] =
          driver->async_next_event(std::chrono::nanoseconds::zero(), asio::use_future).get();
      if (ec || !e) return;
    }
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_{[this] { io_.run(); }};
  seckill::detail::temp_dir tmp_{"seckill-bench-extension"};
  asio::ip::tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
  std::optional<sb::chromium> browser_;

 public:
  std::optional<sb::extension_driver<asio::ip::tcp::socket>> driver;
};

void BM_reaction_vs_puppeteer(benchmark::State& state) {
  const int trials = static_cast<int>(state.range(0));
  const auto press = std::chrono::milliseconds(state.range(1));
  const std::string sku = "veg-box";
  shop::shop_server shop;
  browser_session s(shop.url());
  if (!wait_listeners(shop, 1)) {
    state.SkipWithError("seckill's page never listened to the shop");
    return;
  }

  std::string skipped = puppeteer_side::unavailable();
  std::optional<puppeteer_side> pup;
  if (skipped.empty()) {
    nlohmann::json config{{"executable", sb::chromium_options{}.executable},
                          {"args", shared_chromium_flags()},
                          {"sku", sku},
                          {"quantity", 1},
                          {"pressMs", press.count()}};
    pup.emplace(shop.url(), config);
    std::string seen;
    if (!pup->expect("ready", 60s, seen)) {
      skipped = "the Puppeteer script did not start: " + seen;
      pup.reset();
    } else if (!wait_listeners(shop, 2)) {
      state.SkipWithError("Puppeteer's page never listened to the shop");
      return;
    }
  }
  if (!skipped.empty())
    std::fprintf(stderr, "browser bench: Puppeteer side skipped: %s\n", skipped.c_str());

  // Both sides press for `press` after one move, without jitter; seckill
  // keeps every check.
  sb::page_driver_options driver_opts;
  driver_opts.click.move_steps = 1;
  driver_opts.click.press_duration = press;
  driver_opts.click.press_jitter = 0ms;
  driver_opts.click.path_jitter = 0;
  seckill::token_bucket<> pace(50, 10);  // the pace never delays a single order here

  // The extension backend, with the same clicks; its tab opens as it first watches.
  std::string ext_skipped = extension_side::unavailable();
  std::optional<extension_side> ext;
  if (ext_skipped.empty()) {
    try {
      ext.emplace(shop.url(), driver_opts.click);
      const std::size_t before = shop.listeners();
      auto [ew] = std::tuple{ext->driver->async_watch(asio::use_future).get()};
      if (ew) throw std::runtime_error("watch: " + ew.message());
      if (!wait_listeners(shop, before + 1))
        throw std::runtime_error("the extension's tab never listened to the shop");
    } catch (const std::exception& e) {
      ext_skipped = e.what();
      ext.reset();
    }
  }
  if (!ext_skipped.empty())
    std::fprintf(stderr, "browser bench: extension side skipped: %s\n", ext_skipped.c_str());
  const sb::priority_strategy strategy(sb::parse_strategy("want = sku:" + sku + "\n"));

  std::vector<double> ms, pup_ms, ext_ms, seen_ms, decide_ms, act_ms;
  std::vector<double> ext_seen_ms, ext_decide_ms, ext_act_ms;
  std::size_t allocations = 0;
  auto sold_out = [&] {
    shop.sell_out();
    shop.clear_orders();
    std::this_thread::sleep_for(50ms);  // both pages show "Out of stock"
  };
  // The restock's push to the order's arrival, once one order came.
  auto reaction = [&](const char* who) -> std::optional<double> {
    if (!shop.wait_for_orders(1, 10s)) {
      state.SkipWithError((std::string(who) + ": no order arrived within 10 s").c_str());
      return std::nullopt;
    }
    const auto flip = shop.last_push();
    const auto orders = shop.orders();
    if (!flip || orders.size() != 1 || !orders[0].accepted) {
      state.SkipWithError((std::string(who) + ": not exactly one accepted order").c_str());
      return std::nullopt;
    }
    return span_ms(*flip, orders[0].received);
  };

  for (auto _ : state) {
    for (int t = 0; t < trials; ++t) {
      // seckill: a fresh grabber run on its page.
      sold_out();
      stage_clock cdp_stages;
      auto ready = cdp_stages.watching.get_future();
      sb::grabber g(sb::page_driver(s.page, sb::site_profile{}, driver_opts), strategy, pace,
                    cdp_stages.options());
      auto run = g.async_run(10s, asio::use_future);
      ready.wait();
      std::this_thread::sleep_for(20ms);
      const auto a0 = seckill::bench::allocations();
      shop.set_stock(sku, 1);
      const auto took = reaction("seckill");
      if (!took) return;
      auto [ec, res] = run.get();
      allocations += seckill::bench::allocations() - a0;
      if (ec) {
        state.SkipWithError(("seckill: grab failed: " + ec.message()).c_str());
        return;
      }
      ms.push_back(*took);
      cdp_stages.record(shop, seen_ms, decide_ms, act_ms);  // run.get() above: its events are over

      if (ext) {  // the extension backend: a fresh grabber run over its driver
        sold_out();
        ext->drain();
        stage_clock ext_stages;
        auto ext_ready = ext_stages.watching.get_future();
        sb::grabber eg(*ext->driver, strategy, pace, ext_stages.options());
        auto ext_run = eg.async_run(10s, asio::use_future);
        ext_ready.wait();
        std::this_thread::sleep_for(20ms);
        shop.set_stock(sku, 1);
        const auto ext_took = reaction("extension");
        if (!ext_took) return;
        auto [eec, eres] = ext_run.get();
        if (eec) {
          state.SkipWithError(("extension: grab failed: " + eec.message()).c_str());
          return;
        }
        ext_ms.push_back(*ext_took);
        ext_stages.record(shop, ext_seen_ms, ext_decide_ms, ext_act_ms);
      }

      if (!pup) continue;
      // Puppeteer: armed, then the same restock.
      sold_out();
      std::string line;
      if (!pup->say("arm " + std::to_string(t)) ||
          !pup->expect("armed " + std::to_string(t), 10s, line)) {
        state.SkipWithError(("puppeteer: not armed: " + line).c_str());
        return;
      }
      std::this_thread::sleep_for(20ms);
      shop.set_stock(sku, 1);
      const auto pup_took = reaction("puppeteer");
      if (!pup_took) return;
      if (!pup->expect("done " + std::to_string(t), 10s, line)) {
        state.SkipWithError(("puppeteer: " + line).c_str());
        return;
      }
      pup_ms.push_back(*pup_took);
    }
  }
  state.counters["press_ms"] = static_cast<double>(press.count());
  state.counters["trials"] = static_cast<double>(ms.size());
  state.counters["p50_ms"] = percentile(ms, 0.50);
  state.counters["p99_ms"] = percentile(ms, 0.99);
  state.counters["min_ms"] = percentile(ms, 0.0);
  state.counters["max_ms"] = percentile(ms, 1.0);
  state.counters["seen_p50_ms"] = percentile(seen_ms, 0.50);
  state.counters["decide_p50_ms"] = percentile(decide_ms, 0.50);
  state.counters["act_p50_ms"] = percentile(act_ms, 0.50);
  state.counters["act_p99_ms"] = percentile(act_ms, 0.99);
  state.counters["allocs_per_grab"] =
      static_cast<double>(allocations) / static_cast<double>(std::max<std::size_t>(ms.size(), 1));
  if (ext) {
    state.counters["extension_p50_ms"] = percentile(ext_ms, 0.50);
    state.counters["extension_p99_ms"] = percentile(ext_ms, 0.99);
    state.counters["extension_cdp_p50_ratio"] = percentile(ext_ms, 0.50) / percentile(ms, 0.50);
    state.counters["extension_seen_p50_ms"] = percentile(ext_seen_ms, 0.50);
    state.counters["extension_decide_p50_ms"] = percentile(ext_decide_ms, 0.50);
    state.counters["extension_act_p50_ms"] = percentile(ext_act_ms, 0.50);
  }
  if (pup) {
    state.counters["puppeteer_p50_ms"] = percentile(pup_ms, 0.50);
    state.counters["puppeteer_p99_ms"] = percentile(pup_ms, 0.99);
    state.counters["puppeteer_min_ms"] = percentile(pup_ms, 0.0);
    state.counters["p50_ratio"] = percentile(ms, 0.50) / percentile(pup_ms, 0.50);
  } else {
    state.SetLabel("Puppeteer skipped: " + skipped);
  }
  if (!ext) state.SetLabel("extension skipped: " + ext_skipped);
}
BENCHMARK(BM_reaction_vs_puppeteer)
    ->ArgNames({"trials", "press_ms"})
    ->Args({40, 0})
    ->Args({40, 15})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// One Runtime.evaluate round trip ("1 + 1") through the connection's strand.
void BM_evaluate_round_trip(benchmark::State& state) {
  shop::shop_server shop;
  browser_session s(shop.url());
  std::vector<double> us;
  for (auto _ : state) {
    const auto t0 = steady::now();
    auto [ec, v] = s.page.async_evaluate("1 + 1", asio::use_future).get();
    us.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
    if (ec) {
      state.SkipWithError("evaluate failed");
      return;
    }
    benchmark::DoNotOptimize(v);
  }
  state.counters["p50_us"] = percentile(us, 0.50);
  state.counters["p99_us"] = percentile(us, 0.99);
}
BENCHMARK(BM_evaluate_round_trip)->Iterations(500)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
