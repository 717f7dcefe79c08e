#pragma once
/// @file
/// @brief Prometheus, all of it: the text exposition format
///        (obs/exposition.hpp, the standard library only) and the HTTP server
///        answering `/metrics` and `/health` (obs/metrics_server.hpp,
///        Boost.Beast).

#include <seckill/obs/exposition.hpp>
#include <seckill/obs/metrics_server.hpp>
