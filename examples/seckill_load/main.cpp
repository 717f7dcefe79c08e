// seckill_load: an open-loop load generator for seckill_server. Parses the
// flags, finds the nodes (--target, or etcd's service registry), checks
// they answer, sets the stock up, sends POST /purchase on the schedule
// whatever the answers, then reports (and with --verify checks the answers
// against the stock the nodes report).
#include "common/io_threads.hpp"
#include "http_pool.hpp"
#include "ledger.hpp"
#include "options.hpp"
#include "report.hpp"
#include "schedule.hpp"
#include "workload.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/url.hpp>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace seckill_load {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;

enum exit_code { ok = 0, verify_failed = 1, usage = 2, unreachable = 3 };

/// A failure that ends the program with exit status 3.
struct unreachable_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using seckill_examples::io_threads;

// Runs `f` on `ex` and waits for its result (from a thread not running `ex`).
template <class Executor, class F>
auto on(const Executor& ex, F f) {
  std::packaged_task<decltype(f())()> task(std::move(f));
  auto result = task.get_future();
  asio::post(ex, [&task] { task(); });
  return result.get();
}

// A registry instance's URL: metadata "url", else its endpoint (with
// http:// added when it has no scheme).
std::string instance_url(const seckill::etcd::service_instance& inst) {
  if (const auto it = inst.metadata.find("url"); it != inst.metadata.end()) return it->second;
  if (inst.endpoint.find("://") != std::string::npos) return inst.endpoint;
  return "http://" + inst.endpoint;
}

// The nodes to send to: a fixed list taken in turn, or the registry's
// instances through a weighted picker that follows every change. Used on
// the control strand only (the etcd client runs there too).
class node_source {
 public:
  // A node, or none (nothing can take a purchase right now).
  std::optional<target> pick() {
    if (!fixed_.empty()) return fixed_[next_++ % fixed_.size()];
    const auto* inst = picker_.pick(/*for_write=*/true);
    if (inst == nullptr) return std::nullopt;
    target t;
    if (!parse_target(instance_url(*inst), t).empty()) return std::nullopt;
    return t;
  }

  void use_fixed(std::vector<target> targets) { fixed_ = std::move(targets); }

  // Follows the registry: the picker is refreshed on every change.
  void follow(seckill::etcd::resolver& r) {
    resolver_ = &r;
    picker_.update(r.instances());
    r.on_change([this](const std::map<std::string, seckill::etcd::service_instance>& all) {
      picker_.update(all);
    });
  }

  // Every node currently known (for the reachability check), in id order.
  [[nodiscard]] std::vector<std::pair<std::string, std::optional<target>>> known() const {
    std::vector<std::pair<std::string, std::optional<target>>> out;
    if (resolver_ == nullptr) {
      for (const auto& t : fixed_) out.emplace_back(t.url(), t);
      return out;
    }
    for (const auto& [id, inst] : resolver_->instances()) {
      target t;
      const auto url = instance_url(inst);
      if (parse_target(url, t).empty())
        out.emplace_back(url, t);
      else
        out.emplace_back(url, std::nullopt);
    }
    return out;
  }

 private:
  std::vector<target> fixed_;
  std::size_t next_ = 0;
  seckill::etcd::resolver* resolver_ = nullptr;
  seckill::etcd::weighted_picker picker_;
};

// One run: the schedule, the pools, the statistics.
class load_run {
 public:
  load_run(asio::io_context& io, const options& o, node_source& nodes,
           asio::strand<asio::io_context::executor_type> control)
      : io_(io),
        o_(o),
        nodes_(nodes),
        control_(std::move(control)),
        work_({.users = static_cast<std::uint64_t>(o.users),
               .skus = static_cast<std::uint64_t>(o.skus),
               .quantity = o.quantity,
               .repeat_share = o.repeat_share,
               .run_id = o.run_id,
               .seed = o.seed}),
        timer_(control_),
        ledger_(static_cast<std::size_t>(o.skus), o.quantity) {}

  // Sends on the schedule until the end (or a signal), then waits for every
  // answer; from the main thread.
  run_report run(bool progress) {
    start_ = clock_type::now();
    last_done_ = start_;
    std::promise<void> sent;
    auto sent_future = sent.get_future();
    asio::co_spawn(control_, dispatch(), [&sent](std::exception_ptr e) {
      if (e)
        sent.set_exception(e);
      else
        sent.set_value();
    });
    std::optional<asio::steady_timer> ticker;
    if (progress) {
      ticker.emplace(control_);
      on(control_, [&] {
        tick(*ticker);
        return 0;
      });
    }
    asio::signal_set signals(io_, SIGINT, SIGTERM);
    signals.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      asio::post(control_, [this] {
        interrupted_ = true;
        timer_.cancel();
      });
    });
    sent_future.get();
    // Every request is handed to a connection: the pools finish them and close.
    std::promise<void> closed;
    auto closed_future = closed.get_future();
    on(control_, [&] {
      closed_ = &closed;
      if (live_pools_ == 0) closed.set_value();
      for (auto& [url, pool] : pools_) pool->close();
      return 0;
    });
    closed_future.get();
    signals.cancel();
    if (ticker)
      on(control_, [&] {
        ticker->cancel();
        print_progress(true);
        return 0;
      });
    return finish();
  }

  [[nodiscard]] const ledger& answers() const noexcept { return ledger_; }
  [[nodiscard]] bool interrupted() const noexcept { return interrupted_; }

 private:
  asio::awaitable<void> dispatch() {
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    arrival_schedule schedule(o_.arrival, o_.rate, o_.seed);
    const bool by_count = o_.requests > 0;
    for (std::int64_t k = 0; !by_count || k < o_.requests; ++k) {
      const auto offset = schedule.next();
      if (!by_count && offset >= o_.duration) break;
      const auto intended = start_ + offset;
      if (intended > clock_type::now()) {
        timer_.expires_at(intended);
        auto [ec] = co_await timer_.async_wait(tuple);
        (void)ec;
      }
      if (interrupted_) break;
      send(intended);
    }
    send_end_ = clock_type::now();
  }

  void send(clock_type::time_point intended) {
    auto planned = work_.next();
    const auto node = nodes_.pick();
    const std::string url = node ? node->url() : std::string("(none)");
    {
      std::lock_guard lock(mutex_);
      if (!planned.replay) ledger_.add_key(static_cast<std::uint32_t>(planned.sku));
      ++stats_[url].sent;
      if (!node) {
        stats_[url].add(0, "no_node", std::chrono::nanoseconds::zero());
        ledger_.on_no_answer(planned.key, planned.replay);
      }
    }
    ++sent_;
    if (!node) {
      ++done_;
      return;
    }
    http_job job;
    job.body = std::move(planned.body);
    job.tag = (planned.key << 1) | (planned.replay ? 1U : 0U);
    job.timing.intended = intended;
    pool_for(*node, url).submit(std::move(job));
  }

  http_pool& pool_for(const target& t, const std::string& url) {
    auto& slot = pools_[url];
    if (!slot) {
      slot = std::make_shared<http_pool>(
          io_, endpoint_address{t.host, t.port}, static_cast<std::size_t>(o_.connections),
          o_.timeout, [this, url](http_job& job, http_outcome& out) { on_done(url, job, out); });
      ++live_pools_;
      slot->start([this] {
        asio::post(control_, [this] {
          if (--live_pools_ == 0 && closed_ != nullptr) closed_->set_value();
        });
      });
    }
    return *slot;
  }

  // On a pool's strand.
  void on_done(const std::string& url, const http_job& job, const http_outcome& out) {
    const auto fields =
        out.status > 0 ? read_answer(out.body) : answer_fields{std::nullopt, out.error};
    const auto key = job.tag >> 1;
    const bool replay = (job.tag & 1U) != 0;
    {
      std::lock_guard lock(mutex_);
      stats_[url].add(out.status, fields.error, job.timing.latency());
      if (out.status > 0)
        ledger_.on_answer(key, replay, out.status, fields.order_id);
      else
        ledger_.on_no_answer(key, replay);
      if (job.timing.done > last_done_) last_done_ = job.timing.done;
    }
    ++done_;
  }

  void tick(asio::steady_timer& t) {
    print_progress(false);
    t.expires_after(std::chrono::milliseconds(250));
    t.async_wait([this, &t](const boost::system::error_code& ec) {
      if (!ec) tick(t);
    });
  }

  void print_progress(bool last) const {
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    const auto sent = sent_.load();
    const auto done = done_.load();
    const double share = o_.requests > 0
                             ? static_cast<double>(sent) / static_cast<double>(o_.requests)
                             : elapsed / std::chrono::duration<double>(o_.duration).count();
    constexpr int width = 24;
    const int filled = std::clamp(static_cast<int>(share * width), 0, width);
    fmt::print(stderr, "\r[{:=<{}}{:<{}}] {:5.1f} s  sent {}  answered {}  in flight {}  {:.0f}/s ",
               "", filled, "", width - filled, elapsed, sent, done, sent - done,
               elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0);
    if (last) fmt::print(stderr, "\n");
    std::fflush(stderr);
  }

  run_report finish() {
    run_report r;
    std::lock_guard lock(mutex_);
    r.nodes = stats_;
    r.send_seconds = std::chrono::duration<double>(send_end_ - start_).count();
    r.seconds = std::chrono::duration<double>(std::max(last_done_, send_end_) - start_).count();
    r.interrupted = interrupted_;
    r.replays = ledger_.replays();
    r.idempotency_violations = ledger_.idempotency_violations();
    r.duplicate_order_ids = ledger_.duplicate_order_ids();
    return r;
  }

  asio::io_context& io_;
  const options& o_;
  node_source& nodes_;
  asio::strand<asio::io_context::executor_type> control_;
  workload work_;
  // on the control strand
  asio::steady_timer timer_;
  std::map<std::string, std::shared_ptr<http_pool>> pools_;
  std::size_t live_pools_ = 0;
  std::promise<void>* closed_ = nullptr;
  bool interrupted_ = false;
  clock_type::time_point start_{}, send_end_{};
  // shared with the pools' strands
  std::mutex mutex_;
  ledger ledger_;
  std::map<std::string, node_stats> stats_;
  clock_type::time_point last_done_{};
  std::atomic<std::uint64_t> sent_{0}, done_{0};
};

// The stock of every SKU as `node` reports it; throws unreachable_error.
std::vector<stock_level> read_stock(blocking_client& node, std::int64_t skus) {
  std::vector<stock_level> out;
  for (std::int64_t i = 0; i < skus; ++i) {
    const auto sku = workload::sku_name(static_cast<std::uint64_t>(i));
    const auto a = node.request(http::verb::get, "/stock/" + sku);
    stock_level level;
    if (a.status == 404) {
      out.push_back(level);
      continue;
    }
    if (a.status != 200)
      throw unreachable_error(
          fmt::format("GET /stock/{} on http://{}: {}", sku, node.address().host_header(),
                      answer_label(a.status, a.status > 0 ? read_answer(a.body).error : a.error)));
    const auto j = nlohmann::json::parse(a.body, nullptr, false);
    if (!j.is_object() || !j.value("available", nlohmann::json()).is_number_integer() ||
        !j.value("sold", nlohmann::json()).is_number_integer())
      throw unreachable_error(fmt::format("GET /stock/{} on http://{}: not a stock answer: {:.120}",
                                          sku, node.address().host_header(), a.body));
    level.known = true;
    level.available = j["available"].get<std::int64_t>();
    level.reserved = j.value("reserved", std::int64_t{0});
    level.sold = j["sold"].get<std::int64_t>();
    out.push_back(level);
  }
  return out;
}

// PUT /admin/stock/sku-i {"stock": N} for every SKU; throws unreachable_error.
void setup_stock(blocking_client& node, const options& o) {
  const std::string authorization = "Bearer " + o.admin_token;
  for (std::int64_t i = 0; i < o.skus; ++i) {
    const auto sku = workload::sku_name(static_cast<std::uint64_t>(i));
    const auto a = node.request(http::verb::put, "/admin/stock/" + sku,
                                fmt::format(R"({{"stock":{}}})", *o.setup_stock), authorization);
    if (a.status == 200) continue;
    if (a.status == 401)
      throw unreachable_error(fmt::format("--setup-stock: http://{} refused the admin token (401)",
                                          node.address().host_header()));
    throw unreachable_error(fmt::format(
        "--setup-stock: PUT /admin/stock/{} on http://{}: {}", sku, node.address().host_header(),
        answer_label(a.status, a.status > 0 ? read_answer(a.body).error : a.error)));
  }
}

// Waits (at most `limit`) until no unit of any SKU is held, then reads the stock.
std::vector<stock_level> settled_stock(blocking_client& node, std::int64_t skus,
                                       std::chrono::milliseconds limit) {
  const auto until = clock_type::now() + limit;
  for (;;) {
    auto levels = read_stock(node, skus);
    bool held = false;
    for (const auto& l : levels) held = held || l.reserved > 0;
    if (!held || clock_type::now() >= until) return levels;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

run_description describe(const options& o) {
  run_description d;
  if (o.etcd.empty()) {
    d.discovery = "targets";
    for (const auto& t : o.targets) d.targets.push_back(t.url());
  } else {
    d.discovery = "etcd";
    d.targets.push_back(seckill::redact_url(o.etcd));
    d.service = o.registry_prefix + o.service;
  }
  d.rate = o.rate;
  d.arrival = o.arrival == arrival_kind::fixed ? "fixed" : "poisson";
  if (o.requests > 0)
    d.requests = o.requests;
  else
    d.duration_s = std::chrono::duration<double>(o.duration).count();
  d.connections = o.connections;
  d.threads = o.threads;
  d.users = o.users;
  d.skus = o.skus;
  d.quantity = o.quantity;
  d.repeat_share = o.repeat_share;
  d.seed = o.seed;
  d.run_id = o.run_id;
  return d;
}

std::string clock_run_id() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::string out;
  for (auto v = static_cast<std::uint64_t>(us); v > 0; v /= 36)
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36]);
  return out.empty() ? std::string("0") : out;
}

// Everything after the flags; returns the exit status.
int run(options o, bool progress) {
  if (o.run_id.empty()) o.run_id = clock_run_id();
  asio::io_context io{o.threads};
  auto control = asio::make_strand(io);
  io_threads threads(io, o.threads);
  node_source nodes;

  // The registry, when the nodes come from etcd.
  std::unique_ptr<seckill::etcd::client> etcd;
  std::unique_ptr<seckill::etcd::watcher> watcher;
  std::unique_ptr<seckill::etcd::resolver> resolver;
  // At the end (or on a throw): the registry stops following, then the
  // threads stop, then the etcd objects go (nothing of theirs runs any more).
  struct stopper {
    asio::strand<asio::io_context::executor_type>& control;
    std::unique_ptr<seckill::etcd::resolver>& resolver;
    io_threads& threads;
    ~stopper() {
      if (resolver)
        on(control, [this] {
          resolver->stop();
          return 0;
        });
      threads.stop();
    }
  } stop_all{control, resolver, threads};
  if (o.etcd.empty()) {
    nodes.use_fixed(o.targets);
  } else {
    std::error_code ec;
    std::string why;
    seckill::etcd::client_options co;
    co.endpoints = seckill::etcd::parse_endpoints(o.etcd, ec, &why);
    co.call_timeout = std::chrono::seconds(5);
    etcd = std::make_unique<seckill::etcd::client>(control, co);
    watcher = std::make_unique<seckill::etcd::watcher>(*etcd);
    resolver = std::make_unique<seckill::etcd::resolver>(*watcher, o.registry_prefix + o.service);
    auto started = on(control, [&] {
      return resolver->async_start(
          asio::use_future([](std::error_code e, std::int64_t) { return e; }));
    });
    if (const auto e = started.get())
      throw unreachable_error(fmt::format("--etcd {}: the registry cannot be read: {}",
                                          seckill::redact_url(o.etcd), e.message()));
    on(control, [&] {
      nodes.follow(*resolver);
      return 0;
    });
    // Nodes may still be registering: wait a little for the first one.
    const auto until = clock_type::now() + std::chrono::seconds(5);
    while (on(control, [&] { return resolver->instances().empty(); })) {
      if (clock_type::now() >= until)
        throw unreachable_error(fmt::format("--etcd {}: no instance of '{}' is registered",
                                            seckill::redact_url(o.etcd),
                                            o.registry_prefix + o.service));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // Every node must answer something; the first one that does sets up and checks.
  const auto known = on(control, [&] { return nodes.known(); });
  std::unique_ptr<blocking_client> control_node;
  std::vector<std::string> unreachable_nodes;
  for (const auto& [url, t] : known) {
    if (!t) {
      unreachable_nodes.push_back(
          fmt::format("{} (not a URL like http://host:port)", seckill::redact_url(url)));
      continue;
    }
    auto client = std::make_unique<blocking_client>(endpoint_address{t->host, t->port}, o.timeout);
    const auto a = client->request(http::verb::get, "/health");
    if (a.status == 0) {
      unreachable_nodes.push_back(fmt::format("{} ({})", url, a.error));
      continue;
    }
    if (!control_node) control_node = std::move(client);
  }
  if (!unreachable_nodes.empty() && (o.etcd.empty() || !control_node))
    throw unreachable_error(fmt::format("cannot reach {}", fmt::join(unreachable_nodes, ", ")));
  for (const auto& n : unreachable_nodes)
    fmt::print(stderr, "seckill_load: warning: cannot reach {}\n", n);

  if (o.setup_stock) setup_stock(*control_node, o);
  std::vector<stock_level> before;
  if (o.verify) before = read_stock(*control_node, o.skus);

  load_run load(io, o, nodes, control);
  auto report = load.run(progress);
  report.config = describe(o);
  if (o.verify) {
    const auto after = settled_stock(*control_node, o.skus, std::chrono::seconds(5));
    std::vector<std::string> names;
    for (std::int64_t i = 0; i < o.skus; ++i)
      names.push_back(workload::sku_name(static_cast<std::uint64_t>(i)));
    report.verified = load.answers().check(names, before, after);
  }
  if (o.json)
    fmt::print("{}\n",
               to_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  else
    fmt::print("{}", to_text(report));
  std::fflush(stdout);
  if (load.interrupted()) fmt::print(stderr, "seckill_load: interrupted; the report is partial\n");
  if (report.total().answered == 0) {
    fmt::print(stderr, "seckill_load: no request got an answer\n");
    return unreachable;
  }
  if (report.verified && !report.verified->ok) return verify_failed;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = parse_options(argc, argv);
  if (std::holds_alternative<help_requested>(parsed)) {
    fmt::print("{}", help_text(argc > 0 ? argv[0] : "seckill_load"));
    return ok;
  }
  if (const auto* e = std::get_if<usage_error>(&parsed)) {
    fmt::print(stderr, "seckill_load: {}\n", e->message);
    return usage;
  }
  const auto& o = std::get<options>(parsed);
  const bool progress = o.progress.value_or(::isatty(STDERR_FILENO) == 1);
  try {
    return run(o, progress);
  } catch (const unreachable_error& e) {
    fmt::print(stderr, "seckill_load: {}\n", e.what());
    return unreachable;
  } catch (const std::exception& e) {
    fmt::print(stderr, "seckill_load: {}\n", e.what());
    return unreachable;
  }
}

}  // namespace seckill_load

int main(int argc, char** argv) { return seckill_load::main(argc, argv); }
