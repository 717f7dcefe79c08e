#pragma once
/// @file
/// @brief etcd watches: `watcher` (one gateway WebSocket shared by many
///        watches, resumed after failures, resynchronised after compactions),
///        `watch_stream` (one watch) and `prefix_cache` (a watch-driven local
///        copy of a prefix). Include the one you use, or this for all three.

#include <seckill/etcd/prefix_cache.hpp>
#include <seckill/etcd/watch_stream.hpp>
#include <seckill/etcd/watcher.hpp>
