#pragma once
// A desktop for the browser tests, where the machine has one's parts: an X
// server without a screen (Xvfb) and a session bus (dbus-daemon), each a
// child of the test on a display number and a socket of its own, and a
// dbus-monitor that records the bus's Notify calls. `missing()` says which
// program is not there, so a test can skip with the reason.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace browser_desktop {

/// The first of `names` not found on PATH; empty when all are.
inline std::string missing_program(std::initializer_list<const char*> names) {
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (const char* name : names) {
    bool found = false;
    std::stringstream s(dirs);
    for (std::string dir; std::getline(s, dir, ':') && !found;)
      found = ::access((dir + "/" + name).c_str(), X_OK) == 0;
    if (!found) return name;
  }
  return {};
}

/// Waits until `ok()` or `bound` passes.
template <class F>
bool wait_until(F ok, std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!ok()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

inline std::string read_all(const std::filesystem::path& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Xvfb on a free display number, a session bus, and a monitor of its
/// Notify calls. Start it only when missing() is empty.
struct desktop {
  static std::string missing() {
    return missing_program({"Xvfb", "dbus-daemon", "dbus-monitor", "gdbus"});
  }

  seckill::detail::temp_dir dir{"seckill-desktop"};
  std::string display;  ///< ":N"
  std::string bus;      ///< the session bus's address
  seckill::detail::child_process x, daemon, monitor;

  desktop() {
    for (int n = 90 + static_cast<int>(::getpid() % 50); n < 400; ++n) {
      if (std::filesystem::exists("/tmp/.X11-unix/X" + std::to_string(n)) ||
          std::filesystem::exists("/tmp/.X" + std::to_string(n) + "-lock"))
        continue;
      display = ":" + std::to_string(n);
      x.start({{"Xvfb", display, "-nolisten", "tcp", "-screen", "0", "1280x800x24"},
               (dir.path() / "xvfb.log").string(),
               {},
               true});
      if (wait_until(
              [&] { return std::filesystem::exists("/tmp/.X11-unix/X" + std::to_string(n)); },
              std::chrono::seconds(10)))
        break;
      x.kill_and_wait();  // another server took it first: the next number
      display.clear();
    }
    const auto socket = dir.path() / "bus";
    bus = "unix:path=" + socket.string();
    daemon.start({{"dbus-daemon", "--session", "--nofork", "--address=" + bus},
                  (dir.path() / "dbus.log").string(),
                  {},
                  true});
    wait_until([&] { return std::filesystem::exists(socket); });
    monitor.start({{"dbus-monitor", "--address", bus,
                    "interface='org.freedesktop.Notifications',member='Notify'"},
                   monitor_file().string(),
                   {},
                   true});
    wait_until([&] { return read_all(monitor_file()).find("NameAcquired") != std::string::npos; });
  }

  [[nodiscard]] bool ready() const { return !display.empty(); }
  [[nodiscard]] std::filesystem::path monitor_file() const { return dir.path() / "monitor.txt"; }
  /// What dbus-monitor recorded so far.
  [[nodiscard]] std::string notify_calls() const { return read_all(monitor_file()); }
};

}  // namespace browser_desktop
