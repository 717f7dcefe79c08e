#pragma once
/// @file
/// @brief Tracing, all of it: W3C `traceparent` (obs/traceparent.hpp), the
///        span model and tracer (obs/span.hpp), and the OTLP/HTTP JSON
///        exporter (obs/otlp_exporter.hpp, Boost.Beast and nlohmann::json).
///        Include the first two alone to trace without Beast or JSON.

#include <seckill/obs/otlp_exporter.hpp>
#include <seckill/obs/span.hpp>
#include <seckill/obs/traceparent.hpp>
