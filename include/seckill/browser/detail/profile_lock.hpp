#pragma once
/// @file
/// @brief Who holds a Chromium profile directory: its SingletonLock, a
///        symbolic link to "<host>-<pid>" that a running Chromium keeps.

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include <unistd.h>

namespace seckill::browser::detail {

/// The Chromium holding a profile directory.
struct profile_holder {
  std::string host;
  long pid = 0;
};

/// The host and pid a SingletonLock link names ("vm-4242"); nullopt when it
/// is not of that shape. The host may itself hold '-': the pid follows the last.
inline std::optional<profile_holder> parse_singleton_lock(const std::string& target) {
  const auto dash = target.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == target.size()) return std::nullopt;
  long pid = 0;
  for (std::size_t i = dash + 1; i < target.size(); ++i) {
    const char c = target[i];
    if (c < '0' || c > '9' || pid > 100000000) return std::nullopt;
    pid = pid * 10 + (c - '0');
  }
  if (pid <= 0) return std::nullopt;
  return profile_holder{target.substr(0, dash), pid};
}

inline std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

/// The running Chromium that holds `profile` (its SingletonLock names a live
/// process on this host, or any process on another host), or nullopt when
/// the directory is free or the lock is stale (Chromium takes a stale lock over).
inline std::optional<profile_holder> profile_held_by(const std::filesystem::path& profile) {
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(profile / "SingletonLock", ec);
  if (ec) return std::nullopt;
  auto holder = parse_singleton_lock(target.string());
  if (!holder) return std::nullopt;
  if (holder->host != this_host()) return holder;
  const bool alive = ::kill(static_cast<pid_t>(holder->pid), 0) == 0 || errno == EPERM;
  return alive ? holder : std::nullopt;
}

}  // namespace seckill::browser::detail
