#pragma once
/// @file
/// @brief The library's version, kept equal to the version in CMakeLists.txt
///        (a test checks it).

#define SECKILL_VERSION_MAJOR 0
#define SECKILL_VERSION_MINOR 1
#define SECKILL_VERSION_PATCH 0
#define SECKILL_VERSION_STRING "0.1.0"

namespace seckill {

/// @brief The version as numbers, for run-time checks and reports.
struct version_info {
  int major;
  int minor;
  int patch;
  const char* string;
};

inline constexpr version_info version{SECKILL_VERSION_MAJOR, SECKILL_VERSION_MINOR,
                                      SECKILL_VERSION_PATCH, SECKILL_VERSION_STRING};

}  // namespace seckill
