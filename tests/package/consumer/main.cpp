// A consumer of the installed package: includes every public header and uses
// the library, built against a moved install prefix.
#include <seckill/backoff.hpp>
#include <seckill/browser/cdp.hpp>
#include <seckill/browser/chromium.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/extension_driver.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/native_messaging.hpp>
#include <seckill/browser/notifier.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/page_types.hpp>
#include <seckill/browser/sale_time.hpp>
#include <seckill/browser/sandbox.hpp>
#include <seckill/browser/screenshot.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/shop_driver.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/stock_response.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/throttle.hpp>
#include <seckill/browser/webhook.hpp>
#include <seckill/clock.hpp>
#include <seckill/clock_timer.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/auth.hpp>
#include <seckill/etcd/client.hpp>
#include <seckill/etcd/codec.hpp>
#include <seckill/etcd/election.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/etcd/etcd_store_options.hpp>
#include <seckill/etcd/health.hpp>
#include <seckill/etcd/leader_duties.hpp>
#include <seckill/etcd/prefix_cache.hpp>
#include <seckill/etcd/registry.hpp>
#include <seckill/etcd/session.hpp>
#include <seckill/etcd/stock_feed.hpp>
#include <seckill/etcd/types.hpp>
#include <seckill/etcd/watch.hpp>
#include <seckill/etcd/watch_stream.hpp>
#include <seckill/etcd/watcher.hpp>
#include <seckill/etcd/worker_claim.hpp>
#include <seckill/id/snowflake.hpp>
#include <seckill/limit/async_acquire.hpp>
#include <seckill/limit/bulkhead.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/gcra.hpp>
#include <seckill/limit/hot_param_limiter.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/obs/exposition.hpp>
#include <seckill/obs/metrics.hpp>
#include <seckill/obs/metrics_server.hpp>
#include <seckill/obs/otlp_exporter.hpp>
#include <seckill/obs/prometheus.hpp>
#include <seckill/obs/purchase_hooks.hpp>
#include <seckill/obs/span.hpp>
#include <seckill/obs/trace.hpp>
#include <seckill/obs/traceparent.hpp>
#include <seckill/pool/object_pool.hpp>
#include <seckill/pool/wire_record.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/purchase/hooks.hpp>
#include <seckill/purchase/metrics_hooks.hpp>
#include <seckill/purchase/policies.hpp>
#include <seckill/purchase/request.hpp>
#include <seckill/purchase/state_machine.hpp>
#include <seckill/redis/acl.hpp>
#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/cluster_slots.hpp>
#include <seckill/redis/cluster_url.hpp>
#include <seckill/redis/connection.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/connection_pool.hpp>
#include <seckill/redis/connection_state.hpp>
#include <seckill/redis/error.hpp>
#include <seckill/redis/gcra_limiter.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/script.hpp>
#include <seckill/redis/server_version.hpp>
#include <seckill/redis/sharded_store.hpp>
#include <seckill/redis/stock_feed.hpp>
#include <seckill/redis/subscriber.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/seckill.hpp>
#include <seckill/store/cached_store.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/store/reaper.hpp>
#include <seckill/store/reconcile.hpp>
#include <seckill/store/stock_cache.hpp>
#include <seckill/store/store.hpp>
#include <seckill/tls.hpp>
#include <seckill/url.hpp>
#include <seckill/version.hpp>

#include <cstdio>

int main() {
  const std::error_code ec = seckill::errc::sold_out;
  if (ec.message() != "sold out") return 1;
  if (seckill::redact_url("redis://u:secret@127.0.0.1:6379") != "redis://u:***@127.0.0.1:6379")
    return 1;
  std::printf("seckill %s from an installed package\n", seckill::version.string);
  return 0;
}
