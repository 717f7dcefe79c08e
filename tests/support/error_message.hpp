#pragma once
// What a seckill::error thrown by a callable says, for tests of messages.

#include <seckill/error.hpp>

#include <string>

namespace seckill::test {

/// Calls `f` and returns the `what()` of the seckill::error it throws, or
/// "(no exception)".
inline std::string message_of(auto&& f) {
  try {
    f();
  } catch (const seckill::error& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace seckill::test
