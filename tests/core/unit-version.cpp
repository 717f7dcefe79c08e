#include <seckill/version.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

TEST_SUITE("unit") {
  TEST_CASE("version.hpp matches project(VERSION) in CMakeLists.txt") {
    std::ifstream in(SECKILL_SOURCE_DIR "/CMakeLists.txt");
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const auto project = s.find("project(seckill");
    REQUIRE(project != std::string::npos);
    const auto at = s.find("VERSION ", project);
    REQUIRE(at != std::string::npos);
    const auto begin = at + 8;
    const auto end = s.find_first_not_of("0123456789.", begin);
    const std::string cmake_version = s.substr(begin, end - begin);
    CHECK(cmake_version == seckill::version.string);
    const std::string from_numbers = std::to_string(SECKILL_VERSION_MAJOR) + "." +
                                     std::to_string(SECKILL_VERSION_MINOR) + "." +
                                     std::to_string(SECKILL_VERSION_PATCH);
    CHECK(from_numbers == seckill::version.string);
  }
}
