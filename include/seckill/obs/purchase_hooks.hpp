#pragma once
/// @file
/// @brief The purchase engine's metrics and tracing hooks moved to
///        purchase/metrics_hooks.hpp; this path includes it.

#include <seckill/purchase/metrics_hooks.hpp>
