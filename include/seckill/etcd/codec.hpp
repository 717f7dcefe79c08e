#pragma once
/// @file
/// @brief etcd's v3 gateway as data: the public values (`etcd/types.hpp`:
///        key-values, requests, results, events) and the JSON codec that
///        reads and writes them (`etcd/detail/json_codec.hpp`: base64 keys
///        and values, int64 fields as decimal strings, the gateway's errors
///        mapped to `seckill::errc`). Include `etcd/types.hpp` for the values
///        alone.

#include <seckill/etcd/detail/json_codec.hpp>
#include <seckill/etcd/types.hpp>
