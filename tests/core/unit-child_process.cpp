#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using seckill::detail::child_process;

namespace unit_child_process {

// Runs `o` (its output into a fresh file) to its end within 5 s; checks that
// it exited with `code` and returns what it wrote to stdout and stderr.
std::string output_of(child_process::options o, int code) {
  seckill::detail::temp_dir dir("seckill-test");
  o.output_path = (dir.path() / "out.log").string();
  child_process p(o);
  REQUIRE(p.wait_for(5s));
  CHECK(WIFEXITED(p.wait_status()));
  CHECK(WEXITSTATUS(p.wait_status()) == code);
  std::ifstream in(o.output_path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace unit_child_process

TEST_SUITE("unit") {
  using unit_child_process::output_of;
  TEST_CASE("child_process runs a program and captures its output") {
    CHECK(output_of({{"sh", "-c", "echo hello; echo oops >&2; exit 3"}, "", {}}, 3) ==
          "hello\noops\n");
  }

  TEST_CASE("child_process kills its whole process group") {
    seckill::detail::temp_dir dir("seckill-test");
    const auto pidfile = (dir.path() / "grandchild.pid").string();
    pid_t grandchild = -1;
    {
      child_process p({{"sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"}, "", {}});
      for (int i = 0; i < 400 && !std::filesystem::exists(pidfile); ++i)
        std::this_thread::sleep_for(5ms);
      std::this_thread::sleep_for(20ms);
      std::ifstream in(pidfile);
      in >> grandchild;
      REQUIRE(grandchild > 0);
      CHECK(::kill(grandchild, 0) == 0);
    }  // destructor: SIGKILL to the group
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
      gone = ::kill(grandchild, 0) != 0 ||
             std::filesystem::exists("/proc/" + std::to_string(grandchild)) == false;
      if (!gone) {
        // a zombie reparented to init counts as gone once its state is Z
        std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
        std::string pid, comm, state;
        stat >> pid >> comm >> state;
        gone = state == "Z";
      }
      if (!gone) std::this_thread::sleep_for(10ms);
    }
    CHECK(gone);
  }

  TEST_CASE("child_process terminate() stops a program that ignores nothing") {
    child_process p({{"sleep", "30"}, "", {}});
    CHECK(p.running());
    p.terminate(2s);
    CHECK_FALSE(p.running());
    CHECK(WIFSIGNALED(p.wait_status()));
  }

  TEST_CASE("child_process reports a program that does not exist") {
    CHECK_THROWS_WITH_AS(child_process({{"/nonexistent/seckill-no-such-program"}, "", {}}),
                         doctest::Contains("seckill-no-such-program"), seckill::error);
    CHECK_THROWS_AS(child_process({{}, "", {}}), seckill::error);
  }

  TEST_CASE("child_process with die_with_parent runs and captures like the default") {
    CHECK(output_of({{"sh", "-c", "echo \"$SECKILL_X\"; echo oops >&2; exit 4"},
                     "",
                     {"SECKILL_X=hello"},
                     true},
                    4) == "hello\noops\n");
  }

  TEST_CASE("child_process with die_with_parent is killed when the thread that started it ends") {
    child_process p;
    std::thread starter([&] { p = child_process({{"sleep", "30"}, "", {}, true}); });
    starter.join();
    // the kernel sends SIGKILL as the starting thread exits, with no call from here
    REQUIRE(p.wait_for(5s));
    CHECK(WIFSIGNALED(p.wait_status()));
    CHECK(WTERMSIG(p.wait_status()) == SIGKILL);

    child_process kept;
    std::thread other([&] { kept = child_process({{"sleep", "30"}, "", {}, false}); });
    other.join();
    std::this_thread::sleep_for(50ms);
    CHECK(kept.running());  // without the option its starting thread's end does nothing
  }

  TEST_CASE("child_process with die_with_parent reports a program that cannot start") {
    seckill::detail::temp_dir dir("seckill-test");
    CHECK_THROWS_WITH_AS(child_process({{"seckill-no-such-program"}, "", {}, true}),
                         doctest::Contains("seckill-no-such-program"), seckill::error);
    const auto not_executable = dir.path() / "data.txt";
    std::ofstream(not_executable) << "x";
    CHECK_THROWS_WITH_AS(child_process({{not_executable.string()}, "", {}, true}),
                         doctest::Contains("Permission denied"), seckill::error);
    CHECK_THROWS_WITH_AS(
        child_process({{"sh"}, (dir.path() / "no/such/dir/log").string(), {}, true}),
        doctest::Contains("no/such/dir/log"), seckill::error);
  }

  TEST_CASE("temp_dir is removed with its contents") {
    std::filesystem::path kept;
    {
      seckill::detail::temp_dir dir("seckill-test");
      kept = dir.path();
      std::ofstream(kept / "file") << "x";
      CHECK(std::filesystem::is_directory(kept));
    }
    CHECK_FALSE(std::filesystem::exists(kept));
  }
}
