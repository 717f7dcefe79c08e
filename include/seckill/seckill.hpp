#pragma once
/// @file
/// @brief The umbrella header: every seckill header that needs no server.
///        The backends that talk to one (redis/, etcd/, browser/, obs/) are
///        included one by one.

#include <seckill/clock.hpp>
#include <seckill/error.hpp>
#include <seckill/id/snowflake.hpp>
#include <seckill/limit/bulkhead.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/hot_param_limiter.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/obs/exposition.hpp>  // the Prometheus text format alone: no Beast
#include <seckill/obs/metrics.hpp>     // metrics alone: no Asio
#include <seckill/obs/span.hpp>        // spans and the tracer alone: no Beast, no JSON
#include <seckill/obs/traceparent.hpp>
#include <seckill/pool/object_pool.hpp>
#include <seckill/pool/wire_record.hpp>
#include <seckill/purchase/state_machine.hpp>
#include <seckill/redis/resp.hpp>  // the RESP codec alone: no Asio
#include <seckill/version.hpp>
