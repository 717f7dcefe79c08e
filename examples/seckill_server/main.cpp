// seckill_server: the flash-sale service. Parses the flags, opens the store
// named by --store, starts a node (node.hpp) behind the HTTP server
// (http_server.hpp), prints "listening on http://HOST:PORT" and serves until
// SIGTERM or SIGINT; then stops gracefully: no new connections or
// purchases, those in flight finish, the background work stops, exit 0.
#include "common/io_threads.hpp"
#include "common/store_url.hpp"
#include "coordination.hpp"
#include "http_server.hpp"
#include "node.hpp"
#include "options.hpp"

#include <seckill/etcd/client.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/stock_feed.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/stock_feed.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/stock_cache.hpp>
#include <seckill/url.hpp>

#include <fmt/format.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace seckill_server {

namespace {

enum exit_code { ok = 0, start_failure = 1, usage = 2 };

// The handler the HTTP server holds: the node, set before the server accepts.
template <class Node>
struct node_handler {
  Node* const* n;
  boost::asio::awaitable<answer> operator()(const request& r) const { return (*n)->handle(r); }
};

std::string url_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

using seckill_examples::io_threads;

// Serves with `store` until a signal, then stops gracefully. With --etcd the
// node joins the cluster (coordination.hpp) before it accepts, and leaves it
// (deregistered first, so traffic moves) when it stops.
template <class Store, bool Coordinated>
int serve_node(boost::asio::io_context& io, Store& store, const options& o, io_threads& threads,
               const std::function<void()>& close_store) {
  namespace asio = boost::asio;
  using ids_type = std::conditional_t<Coordinated, cluster_ids, seckill::snowflake<>>;
  using node_type = node<Store, ids_type>;
  node_type* current = nullptr;
  http_server<node_handler<node_type>> server(
      io.get_executor(),
      {.address = o.listen.host,
       .port = o.listen.port,
       .max_connections = static_cast<std::size_t>(o.max_connections),
       .idle_timeout = o.idle_timeout,
       .header_timeout = o.header_timeout,
       .request_timeout = o.request_timeout},
      node_handler<node_type>{&current},
      [&current](std::string_view route, unsigned status, double seconds) {
        current->metrics().request(route, status, seconds);
      });
  server.listen();
  const std::string endpoint = fmt::format("{}:{}", url_host(o.listen.host), server.port());
  const std::string url = "http://" + endpoint;
  const std::string name = o.node.empty() ? endpoint : o.node;

  std::optional<coordination<Store>> coord;
  std::optional<seckill::snowflake<>> fixed_ids;
  ids_type* ids = nullptr;
  if constexpr (Coordinated) {
    coord.emplace(io, store, o, name);
    coord->start_session();
    ids = &coord->ids();
  } else {
    const unsigned worker = o.worker_id < 0 ? 0U : static_cast<unsigned>(o.worker_id);
    fixed_ids.emplace(worker / 32, worker % 32);
    ids = &*fixed_ids;
  }
  node_type n(io, store, o, *ids, name);
  current = &n;
  n.set_connection_source([&server] { return std::pair{server.connections(), server.refused()}; });
  if constexpr (Coordinated) coord->join(n, endpoint, o.advertise.empty() ? url : o.advertise);

  std::promise<int> signalled;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) signalled.set_value(sig);
  });
  n.start(/*leader_reaps=*/Coordinated);
  server.start();
  fmt::print("listening on {}\n", url);
  std::fflush(stdout);
  if constexpr (Coordinated)
    fmt::print(stderr, "seckill_server: node {} on store {}, {} threads, worker id {}, etcd {}\n",
               name, seckill::redact_url(o.store), o.threads, coord->worker(),
               seckill::redact_url(o.etcd));
  else
    fmt::print(stderr, "seckill_server: node {} on store {}, {} threads\n", name,
               seckill::redact_url(o.store), o.threads);

  const int sig = signalled.get_future().get();
  fmt::print(stderr, "seckill_server: {}: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  n.stop_admitting();
  server.stop();
  // Purchases in flight end within the deadline, then commit; one whose
  // reserve was lost with the store is answered once its units are given
  // back, at the latest when its hold passes.
  const auto drain = o.hold + std::chrono::seconds(5);
  if (!server.wait_drained(drain))
    fmt::print(stderr, "seckill_server: connections still open after {} ms; closing them\n",
               drain.count());
  n.stop();
  if constexpr (Coordinated) coord->leave();
  close_store();
  threads.stop();
  fmt::print(stderr, "seckill_server: stopped\n");
  return ok;
}

template <class Store>
int serve(boost::asio::io_context& io, Store& store, const options& o, io_threads& threads,
          const std::function<void()>& close_store) {
  if (o.etcd.empty()) return serve_node<Store, false>(io, store, o, threads, close_store);
  return serve_node<Store, true>(io, store, o, threads, close_store);
}

// Runs `start(handler)` and waits for its (ec).
template <class Start>
std::error_code wait_started(Start&& start) {
  std::promise<std::error_code> done;
  std::forward<Start>(start)([&done](std::error_code ec) { done.set_value(ec); });
  return done.get_future().get();
}

// Redis, one server or a cluster: the store, the sold-out cache in front of
// it, and the cache fed by the store script's pub/sub messages (on a cluster,
// a PUBLISH reaches every node: the feed listens on the first seed).
template <class Store>
int serve_on_redis(boost::asio::io_context& io, seckill::stock_cache& cache, const options& o,
                   const typename Store::config_type& config) {
  using redis_store = Store;
  seckill::redis::connection_config feed_config;
  if constexpr (std::is_same_v<typename Store::config_type, seckill::redis::cluster_config>) {
    feed_config = config.node;
    feed_config.host = config.seeds.front().host;
    feed_config.port = config.seeds.front().port;
  } else {
    feed_config = config;
  }
  redis_store backing(io.get_executor(), config);
  seckill::cached_store<redis_store> store(backing, cache);
  seckill::redis::stock_feed<redis_store> feed(io.get_executor(), backing, cache, feed_config);
  io_threads threads(io, o.threads);
  const auto fail = [&](std::error_code ec, const std::string& what, const std::string& detail) {
    feed.close();
    backing.close();
    threads.stop();
    return seckill::error(
        ec, fmt::format("--store {}: {}: {}", seckill::redact_url(o.store), what, detail));
  };
  if (const auto ec = wait_started([&](auto h) { backing.async_connect(std::move(h)); }))
    throw fail(ec, "cannot connect", backing.connection().last_error());
  if (const auto ec = wait_started([&](auto h) { feed.async_start(std::move(h)); }))
    throw fail(ec, "cannot subscribe to the stock feed", feed.source().last_error());
  return serve(io, store, o, threads, [&] {
    feed.close();
    backing.close();
  });
}

// Every node serves through a sold-out cache (seckill::cached_store): a
// purchase without a request_id of a SKU the cache holds as sold out is
// answered 409 with no store round trip (one with a request_id always asks
// the store, which may hold its earlier attempt). The cache learns from the
// store's answers on this node and, across nodes, from the store's feed:
// Redis pub/sub (redis::stock_feed) or an etcd watch (etcd::stock_feed).
int run(const options& o) {
  namespace asio = boost::asio;
  asio::io_context io{o.threads};
  seckill::stock_cache cache;
  switch (seckill_examples::store_kind_of(o.store)) {
    case seckill_examples::store_kind::memory: {
      // One process: the node's own answers are the whole truth (live from the start).
      seckill::memory_store<> backing{io.get_executor()};
      seckill::cached_store<seckill::memory_store<>> store(backing, cache);
      io_threads threads(io, o.threads);
      return serve(io, store, o, threads, [] {});
    }
    case seckill_examples::store_kind::redis:
      return serve_on_redis<seckill::redis::redis_store>(io, cache, o,
                                                         seckill_examples::redis_config(o.store));
    case seckill_examples::store_kind::redis_cluster:
      return serve_on_redis<seckill::redis::redis_cluster_store>(
          io, cache, o, seckill_examples::redis_cluster_config(o.store));
    case seckill_examples::store_kind::etcd: {
      using etcd_store = seckill::etcd::etcd_store<>;
      const std::string prefix = "seckill/stock/";
      etcd_store backing(io.get_executor(), seckill_examples::etcd_options(o.store),
                         {.prefix = prefix});
      seckill::cached_store<etcd_store> store(backing, cache);
      // The feed's own client and watcher, on a strand (they are single-threaded).
      auto feed_strand = asio::make_strand(io);
      seckill::etcd::client feed_client(feed_strand, seckill_examples::etcd_options(o.store));
      seckill::etcd::watcher watcher(feed_client);
      seckill::etcd::stock_feed feed(watcher, prefix, cache);
      io_threads threads(io, o.threads);
      if (const auto ec = wait_started(
              [&](auto h) { feed.async_start(asio::bind_executor(feed_strand, std::move(h))); })) {
        threads.stop();
        throw seckill::error(ec, fmt::format("--store {}: cannot watch the stock: {}",
                                             seckill::redact_url(o.store), feed.last_error()));
      }
      return serve(io, store, o, threads, [&] {
        std::promise<void> stopped;
        asio::post(feed_strand, [&] {
          feed.stop();
          stopped.set_value();
        });
        stopped.get_future().wait();
      });
    }
  }
  throw seckill::error(seckill::errc::invalid_argument, "--store: no such store");
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = parse_options(argc, argv);
  if (std::holds_alternative<help_requested>(parsed)) {
    fmt::print("{}", help_text(argc > 0 ? argv[0] : "seckill_server"));
    return ok;
  }
  if (const auto* e = std::get_if<usage_error>(&parsed)) {
    fmt::print(stderr, "seckill_server: {}\n", e->message);
    return usage;
  }
  const auto& o = std::get<options>(parsed);
  if (o.worker_id < 0 && o.etcd.empty() && o.store.rfind("memory://", 0) != 0)
    fmt::print(stderr,
               "seckill_server: worker id 0: give each node sharing a store its own --worker-id "
               "(or use --etcd) so that order ids never collide\n");
  try {
    return run(o);
  } catch (const seckill::error& e) {
    fmt::print(stderr, "seckill_server: {}\n", e.what());
    return e.code() == seckill::errc::invalid_argument ? usage : start_failure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "seckill_server: {}\n", e.what());
    return start_failure;
  }
}

}  // namespace seckill_server

int main(int argc, char** argv) { return seckill_server::main(argc, argv); }
