#pragma once
/// @file
/// @brief Where a Redis connection is in its life cycle (`connection_state`)
///        and what it holds for requests at one moment (`pending_requests`).
///        Plain values; the standard library only.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace seckill::redis {

/// @brief Where a connection is in its life cycle.
enum class connection_state : std::uint8_t {
  idle,          ///< not connected yet (or the first connect failed or was cancelled)
  connecting,    ///< first connect and handshake in progress
  ready,         ///< requests are sent
  reconnecting,  ///< lost; waiting out the backoff or handshaking again
  closed,        ///< close() was called
};

/// @brief The state's name ("idle", "connecting", ...), for logs and messages.
constexpr std::string_view to_string(connection_state s) noexcept {
  switch (s) {
    case connection_state::idle:
      return "idle";
    case connection_state::connecting:
      return "connecting";
    case connection_state::ready:
      return "ready";
    case connection_state::reconnecting:
      return "reconnecting";
    case connection_state::closed:
      return "closed";
  }
  return "unknown";
}

/// @brief What a connection holds for requests at one moment
///        (`connection::pending()`): to watch a connection's memory and
///        backlog. Thread-safety: a plain value.
struct pending_requests {
  std::size_t queued = 0;        ///< waiting to be written
  std::size_t queued_bytes = 0;  ///< their encoded bytes
  std::size_t in_flight = 0;     ///< written, with replies due
  /// Of `in_flight`, those whose caller is gone (timed out, cancelled) and
  /// the connection's own health PINGs: placeholders of a few bytes each
  /// that only count the replies to drop.
  std::size_t discarding = 0;
};

}  // namespace seckill::redis
