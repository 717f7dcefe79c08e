# seckill's components, in one place (docs/cmake.md shows them as a table).
#
# For each component <c>:
#   SECKILL_<c>_REQUIRES  the components it builds on (their targets are linked)
#   SECKILL_<c>_DEPENDS   what it needs itself, beyond what those bring:
#                         Threads, Boost.asio, Boost.beast (both Boost::headers),
#                         Boost.url (Boost::url, a compiled library), fmt,
#                         nlohmann_json, OpenSSL (OpenSSL::SSL and ::Crypto)
#   SECKILL_<c>_HEADERS   the public headers it provides, under include/
#
# A header belongs to the component of its folder. core also carries the
# standard-library-only headers of the other folders, which the umbrella
# seckill.hpp includes (redis/resp.hpp, obs/metrics.hpp, obs/exposition.hpp,
# obs/traceparent.hpp, obs/span.hpp, and redis/error.hpp, which resp.hpp
# needs); url.hpp (redact_url, Boost.URL only) is
# listed under each component that uses it. detail/ headers go with the
# component whose headers include them.
#
# TLS is the tls component: the one header that needs OpenSSL
# (detail/tls_context.hpp) and a target that links OpenSSL and defines
# SECKILL_HAS_TLS=1. The redis and etcd headers reach it only inside
# `#if SECKILL_HAS_TLS` blocks (detail/tls_stream.hpp, etcd/detail/http_stream.hpp),
# so a program that does not link seckill::tls compiles no TLS code and
# needs no OpenSSL; tls_options (tls.hpp) is plain data in core.
#
# CMakeLists.txt makes the targets from this; seckillConfig.cmake re-finds the
# dependencies of the components asked for; tests/package checks that every
# header includes nothing its component does not declare, and that the vcpkg
# port and the Conan recipe offer the same components.
# It sets variables and defines two functions; -P scripts include it too.

set(SECKILL_COMPONENTS core asio redis etcd browser obs tls)

set(SECKILL_core_REQUIRES "")
set(SECKILL_core_DEPENDS Threads)
set(SECKILL_core_HEADERS
  seckill/seckill.hpp
  seckill/version.hpp
  seckill/error.hpp
  seckill/clock.hpp
  seckill/backoff.hpp
  seckill/tls.hpp
  seckill/detail/cache_line.hpp
  seckill/detail/thread_stripe.hpp
  seckill/detail/cpu_relax.hpp
  seckill/detail/hybrid_mutex.hpp
  seckill/detail/base64.hpp
  seckill/detail/splitmix64.hpp
  seckill/limit/token_bucket.hpp
  seckill/limit/gcra.hpp
  seckill/limit/hot_param_limiter.hpp
  seckill/limit/circuit_breaker.hpp
  seckill/limit/bulkhead.hpp
  seckill/id/snowflake.hpp
  seckill/pool/object_pool.hpp
  seckill/pool/wire_record.hpp
  seckill/purchase/state_machine.hpp
  seckill/purchase/request.hpp
  seckill/purchase/hooks.hpp
  seckill/redis/error.hpp
  seckill/redis/resp.hpp
  seckill/obs/metrics.hpp
  seckill/obs/exposition.hpp
  seckill/obs/traceparent.hpp
  seckill/obs/span.hpp)

set(SECKILL_asio_REQUIRES core)
set(SECKILL_asio_DEPENDS Boost.asio)
set(SECKILL_asio_HEADERS
  seckill/limit/async_acquire.hpp
  seckill/clock_timer.hpp
  seckill/purchase/policies.hpp
  seckill/purchase/engine.hpp
  seckill/store/store.hpp
  seckill/store/memory_store.hpp
  seckill/store/reaper.hpp
  seckill/store/reconcile.hpp
  seckill/store/stock_cache.hpp
  seckill/store/cached_store.hpp
  seckill/purchase/metrics_hooks.hpp
  seckill/detail/spawned_completion.hpp
  seckill/detail/tls_stream.hpp)

set(SECKILL_redis_REQUIRES asio)
set(SECKILL_redis_DEPENDS Boost.url)
set(SECKILL_redis_HEADERS
  seckill/redis/acl.hpp
  seckill/redis/connection_config.hpp
  seckill/redis/connection_state.hpp
  seckill/redis/server_version.hpp
  seckill/redis/detail/handshake.hpp
  seckill/redis/detail/connection_impl.hpp
  seckill/redis/connection.hpp
  seckill/redis/connection_pool.hpp
  seckill/redis/cluster_slots.hpp
  seckill/redis/cluster_client.hpp
  seckill/redis/cluster_url.hpp
  seckill/redis/script.hpp
  seckill/redis/detail/store_script.hpp
  seckill/redis/redis_store.hpp
  seckill/redis/sharded_store.hpp
  seckill/redis/gcra_limiter.hpp
  seckill/redis/subscriber.hpp
  seckill/redis/stock_feed.hpp
  seckill/redis/url.hpp
  seckill/detail/tls_params.hpp
  seckill/url.hpp)

set(SECKILL_etcd_REQUIRES asio)
set(SECKILL_etcd_DEPENDS Boost.beast Boost.url nlohmann_json)
set(SECKILL_etcd_HEADERS
  seckill/etcd/error.hpp
  seckill/etcd/types.hpp
  seckill/etcd/codec.hpp
  seckill/etcd/endpoint.hpp
  seckill/etcd/auth.hpp
  seckill/etcd/detail/auth_state.hpp
  seckill/etcd/client.hpp
  seckill/etcd/session.hpp
  seckill/etcd/watch_stream.hpp
  seckill/etcd/watcher.hpp
  seckill/etcd/prefix_cache.hpp
  seckill/etcd/stock_feed.hpp
  seckill/etcd/watch.hpp
  seckill/etcd/election.hpp
  seckill/etcd/registry.hpp
  seckill/etcd/health.hpp
  seckill/etcd/etcd_store_options.hpp
  seckill/etcd/etcd_store.hpp
  seckill/etcd/worker_claim.hpp
  seckill/etcd/leader_duties.hpp
  seckill/etcd/detail/base64.hpp
  seckill/etcd/detail/json_fields.hpp
  seckill/etcd/detail/json_codec.hpp
  seckill/etcd/detail/watch_post_stream.hpp
  seckill/etcd/detail/watch_hub.hpp
  seckill/etcd/detail/http_stream.hpp
  seckill/etcd/detail/etcd_store_buyer_records.hpp
  seckill/etcd/detail/etcd_store_records.hpp
  seckill/etcd/detail/etcd_store_txn.hpp
  seckill/etcd/detail/etcd_store_reap.hpp
  seckill/etcd/detail/etcd_store_orders.hpp
  seckill/detail/tls_params.hpp
  seckill/url.hpp)

set(SECKILL_browser_REQUIRES asio)
set(SECKILL_browser_DEPENDS Boost.beast Boost.url nlohmann_json fmt)
set(SECKILL_browser_HEADERS
  seckill/browser/error.hpp
  seckill/browser/cdp.hpp
  seckill/browser/sandbox.hpp
  seckill/browser/chromium.hpp
  seckill/browser/page_types.hpp
  seckill/browser/page.hpp
  seckill/browser/screenshot.hpp
  seckill/browser/strategy.hpp
  seckill/browser/sale_time.hpp
  seckill/browser/shop_clock.hpp
  seckill/browser/clock_sync.hpp
  seckill/browser/site_profile.hpp
  seckill/browser/stock_response.hpp
  seckill/browser/shop_driver.hpp
  seckill/browser/page_driver.hpp
  seckill/browser/native_messaging.hpp
  seckill/browser/extension_driver.hpp
  seckill/browser/grabber.hpp
  seckill/browser/webhook.hpp
  seckill/browser/notifier.hpp
  seckill/browser/throttle.hpp
  seckill/browser/detail/page_replies.hpp
  seckill/browser/detail/page_scripts.hpp
  seckill/browser/detail/page_session.hpp
  seckill/browser/detail/shop_replies.hpp
  seckill/browser/detail/shop_scripts.hpp
  seckill/browser/detail/key_value.hpp
  seckill/browser/detail/profile_lock.hpp
  seckill/detail/child_process.hpp
  seckill/detail/temp_dir.hpp
  seckill/url.hpp)

set(SECKILL_obs_REQUIRES asio)
set(SECKILL_obs_DEPENDS Boost.beast Boost.url nlohmann_json fmt)
set(SECKILL_obs_HEADERS
  seckill/obs/metrics_server.hpp
  seckill/obs/prometheus.hpp
  seckill/obs/otlp_exporter.hpp
  seckill/obs/trace.hpp
  seckill/obs/purchase_hooks.hpp
  seckill/url.hpp)

set(SECKILL_tls_REQUIRES asio)
set(SECKILL_tls_DEPENDS OpenSSL)
set(SECKILL_tls_HEADERS
  seckill/detail/tls_context.hpp)

# The minimum versions, for find_package here and find_dependency in the
# package config.
set(SECKILL_Boost_VERSION 1.81)
set(SECKILL_fmt_VERSION 9)
set(SECKILL_nlohmann_json_VERSION 3.11)
set(SECKILL_OpenSSL_VERSION 3.0)

# seckill_component_closure(<out> <component>...): the components named and
# every one they build on, each after the ones it builds on.
function(seckill_component_closure out)
  set(done "")
  set(todo ${ARGN})
  while(todo)
    list(GET todo 0 c)
    set(ready TRUE)
    foreach(r IN LISTS SECKILL_${c}_REQUIRES)
      if(NOT r IN_LIST done)
        list(PREPEND todo ${r})
        set(ready FALSE)
      endif()
    endforeach()
    if(ready)
      list(REMOVE_ITEM todo ${c})
      list(APPEND done ${c})
    endif()
  endwhile()
  set(${out} ${done} PARENT_SCOPE)
endfunction()

# seckill_component_depends(<out> <component>...): the dependencies of the
# components named and of every one they build on.
function(seckill_component_depends out)
  seckill_component_closure(closure ${ARGN})
  set(deps "")
  foreach(c IN LISTS closure)
    list(APPEND deps ${SECKILL_${c}_DEPENDS})
  endforeach()
  list(REMOVE_DUPLICATES deps)
  set(${out} ${deps} PARENT_SCOPE)
endfunction()
