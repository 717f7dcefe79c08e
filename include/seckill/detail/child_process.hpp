#pragma once
/// @file
/// @brief A child process started with posix_spawn, in a process group of its
///        own, killed with its whole group on destruction. Used by the browser
///        driver to run Chromium and by the tests to run real servers.

#include <seckill/error.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cstdlib>

#include <fcntl.h>
#include <spawn.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace seckill::detail {

/// The executable `name` resolves to: itself when it holds a '/', else the
/// first executable `<dir>/name` along PATH (an empty entry is the current
/// directory); empty when there is none. The lookup child_process does
/// before fork() (the child may only make async-signal-safe calls).
inline std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t begin = 0; begin <= dirs.size();) {
    std::size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(begin, end - begin);
    candidate = (candidate.empty() ? std::string(".") : candidate) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return {};
}

/// @brief Owns one child process (and its process group).
///
/// Thread-safety: none; one owner. Cost: a posix_spawn (or, with
/// `die_with_parent`, a fork and exec) at start, a waitpid per query.
class child_process {
 public:
  struct options {
    std::vector<std::string> argv;       ///< argv[0] is looked up on PATH
    std::string output_path;             ///< stdout and stderr appended here; empty: inherited
    std::vector<std::string> extra_env;  ///< "NAME=value" added to the environment
    /// Linux: the kernel kills the child (SIGKILL) when the thread that
    /// started it ends, crashes and kills included, so a test that dies
    /// leaves no server behind. Start it from a thread that lives as long as
    /// the child should. Elsewhere: ignored.
    bool die_with_parent = false;
  };

  child_process() = default;
  explicit child_process(const options& opts) { start(opts); }
  child_process(child_process&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)),
        group_(std::exchange(other.group_, -1)),
        status_(other.status_) {}
  child_process& operator=(child_process&& other) noexcept {
    if (this != &other) {
      kill_and_wait();
      pid_ = std::exchange(other.pid_, -1);
      group_ = std::exchange(other.group_, -1);
      status_ = other.status_;
    }
    return *this;
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    kill_and_wait();
    if (group_ > 0) ::kill(-group_, SIGKILL);  // children that outlived the leader
  }

  /// Starts the process; throws seckill::error with the program and errno's text on failure.
  void start(const options& opts) {
    if (opts.argv.empty()) throw error(errc::invalid_argument, "child_process: empty argv");
    kill_and_wait();
#if defined(__linux__)
    if (opts.die_with_parent) {
      start_forked(opts);
      return;
    }
#endif
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
    ::posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ::posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setsigdefault(&attr, &all);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!opts.output_path.empty()) {
      ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, opts.output_path.c_str(),
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    std::vector<char*> argv = c_strings(opts.argv, nullptr);
    std::vector<char*> envp = c_strings(opts.extra_env, environ);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      throw error(errc::invalid_argument,
                  "cannot start '" + opts.argv[0] + "': " + std::strerror(rc));
    }
    pid_ = pid;
    group_ = pid;
    status_ = 0;
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// True while the process has not exited (reaps it when it has).
  [[nodiscard]] bool running() noexcept {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    if (r == pid_) status_ = status;
    pid_ = -1;
    return false;
  }

  /// Sends `sig` to the whole process group.
  void signal(int sig) noexcept {
    if (pid_ > 0) ::kill(-pid_, sig);
  }

  /// Waits up to `timeout` for the process to exit; true when it has.
  bool wait_for(std::chrono::milliseconds timeout) noexcept {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  /// SIGTERM, then SIGKILL after `grace`; always reaps the process.
  void terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) noexcept {
    if (pid_ <= 0) return;
    signal(SIGTERM);
    if (!wait_for(grace)) kill_and_wait();
    if (group_ > 0) ::kill(-group_, SIGKILL);  // children that outlived the leader
  }

  /// SIGKILL to the group and reap: what the tests use to crash a server.
  void kill_and_wait() noexcept {
    if (pid_ <= 0) return;
    const pid_t group = pid_;
    signal(SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
    pid_ = -1;
    ::kill(-group, SIGKILL);  // stragglers that left the leader behind
  }

  /// The raw wait status of the last exit (see WIFEXITED and friends).
  [[nodiscard]] int wait_status() const noexcept { return status_; }

 private:
  // The null-terminated char* array exec wants: `first` (a null-terminated
  // array, may be null) followed by `more`. The strings stay owned by the caller.
  static std::vector<char*> c_strings(const std::vector<std::string>& more, char** first) {
    std::vector<char*> out;
    for (char** p = first; p != nullptr && *p != nullptr; ++p) out.push_back(*p);
    for (const auto& m : more) out.push_back(const_cast<char*>(m.c_str()));
    out.push_back(nullptr);
    return out;
  }

#if defined(__linux__)
  // fork + PR_SET_PDEATHSIG + execve, with exec's errno sent back over a
  // close-on-exec pipe so that a program that cannot start is reported here.
  void start_forked(const options& opts) {
    const std::string program = find_program(opts.argv[0]);
    if (program.empty()) {
      throw error(errc::invalid_argument, "cannot start '" + opts.argv[0] +
                                              "': " + std::strerror(ENOENT) + " (not on PATH)");
    }
    std::vector<char*> argv = c_strings(opts.argv, nullptr);
    std::vector<char*> envp = c_strings(opts.extra_env, environ);
    int in = -1, out = -1;
    int report[2] = {-1, -1};
    auto close_all = [&] {
      for (int fd : {in, out, report[0], report[1]})
        if (fd >= 0) ::close(fd);
    };
    auto fail = [&](int e, const std::string& what) {
      close_all();
      throw error(errc::invalid_argument,
                  "cannot start '" + opts.argv[0] + "': " + what + std::strerror(e));
    };
    if ((in = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) fail(errno, "/dev/null: ");
    if (!opts.output_path.empty() &&
        (out = ::open(opts.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) <
            0) {
      fail(errno, opts.output_path + ": ");
    }
    if (::pipe2(report, O_CLOEXEC) != 0) fail(errno, "pipe: ");
    const pid_t parent = ::getpid();
    // Every signal blocked across fork: none may run the parent's handlers
    // in the child before they are reset to their defaults.
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // the child: async-signal-safe calls only, up to execve
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
      ::dup2(in, STDIN_FILENO);
      if (out >= 0) {
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
      }
      ::execve(program.c_str(), argv.data(), envp.data());
      const int e = errno;
      [[maybe_unused]] const auto n = ::write(report[1], &e, sizeof e);
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid > 0) {
      ::close(report[1]);
      report[1] = -1;
    }
    if (pid < 0) fail(fork_errno, "fork: ");
    ::setpgid(pid, pid);  // also here: no race with a signal sent to the group right away
    int exec_errno = 0;
    ssize_t n = 0;
    while ((n = ::read(report[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof exec_errno)) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      fail(exec_errno, "");
    }
    close_all();
    pid_ = pid;
    group_ = pid;
    status_ = 0;
  }
#endif

  pid_t pid_ = -1;
  pid_t group_ = -1;
  int status_ = 0;
};

}  // namespace seckill::detail
