#pragma once
/// @file
/// @brief Whether Chromium runs with its sandbox: `sandbox_mode` (automatic,
///        on, off) and `choose_sandbox`, the decision with its reason.
///        Standard library only.

#include <optional>
#include <string>
#include <string_view>

namespace seckill::browser {

/// @brief How chromium::launch sets Chromium's sandbox.
enum class sandbox_mode {
  automatic,  ///< on, except where it cannot run: a process running as root
  on,         ///< always on (as root Chromium then refuses to start)
  off,        ///< always off (`--no-sandbox`)
};

/// "auto", "on" or "off": what the example's `--sandbox` flag takes.
constexpr std::string_view to_string(sandbox_mode m) noexcept {
  switch (m) {
    case sandbox_mode::automatic:
      return "auto";
    case sandbox_mode::on:
      return "on";
    case sandbox_mode::off:
      return "off";
  }
  return "auto";
}

/// The mode named `text` ("auto", "on" or "off"); nullopt for anything else.
constexpr std::optional<sandbox_mode> parse_sandbox_mode(std::string_view text) noexcept {
  if (text == "auto") return sandbox_mode::automatic;
  if (text == "on") return sandbox_mode::on;
  if (text == "off") return sandbox_mode::off;
  return std::nullopt;
}

/// @brief The sandbox decision for one launch and why it was made. A plain
///        value (thread-safety: that of std::string).
struct sandbox_choice {
  bool on = true;
  std::string reason;  ///< a short phrase, as in "running as root, where it cannot run"
};

/// What `mode` means for a process that is (or is not) running as root:
/// automatic turns the sandbox off only as root. Pure; cost: one short string.
inline sandbox_choice choose_sandbox(sandbox_mode mode, bool running_as_root) {
  switch (mode) {
    case sandbox_mode::on:
      return {true, "forced by sandbox = on"};
    case sandbox_mode::off:
      return {false, "forced by sandbox = off"};
    case sandbox_mode::automatic:
      break;
  }
  if (running_as_root)
    return {false, "running as root (euid 0), where Chromium's sandbox cannot run"};
  return {true, "not running as root"};
}

}  // namespace seckill::browser
