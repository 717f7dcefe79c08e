#pragma once
// read_file(path): a whole text file (a child process's output or report,
// /proc/<pid>/stat) as a string; empty when it cannot be read.

#include <fstream>
#include <sstream>
#include <string>

namespace seckill::bench {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace seckill::bench
