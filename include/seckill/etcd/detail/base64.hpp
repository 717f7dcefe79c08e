#pragma once
/// @file
/// @brief etcd's gateway writes keys and values in standard base64: the
///        codec of seckill/detail/base64.hpp, under etcd::detail's names.

#include <seckill/detail/base64.hpp>

namespace seckill::etcd::detail {

using seckill::detail::base64_decode;
using seckill::detail::base64_encode;

}  // namespace seckill::etcd::detail
