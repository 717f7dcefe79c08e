// The main of every test binary: doctest's, except that listing the test
// cases (what CTest's discovery runs) leaves out the "cluster" suite unless
// the command line names a suite itself. The cases of that suite share one
// cluster of servers per process, so CTest runs them together as a single
// test, "<area>/cluster" (tests/CMakeLists.txt), never one process per case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <string_view>

int main(int argc, char** argv) {
  bool listing = false;
  bool names_suite = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--list-test-cases" || arg == "-ltc" || arg == "--dt-list-test-cases")
      listing = true;
    if (arg.starts_with("--test-suite") || arg.starts_with("-ts") ||
        arg.starts_with("--dt-test-suite"))
      names_suite = true;
  }
  doctest::Context context;
  if (listing && !names_suite) context.setOption("test-suite-exclude", "cluster");
  context.applyCommandLine(argc, argv);
  return context.run();
}
