#include <seckill/version.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

TEST_SUITE("unit") {
  TEST_CASE("version.hpp matches project(VERSION) in CMakeLists.txt") {
    std::ifstream in(SECKILL_SOURCE_DIR "/CMakeLists.txt");
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    std::smatch m;
    const std::string s = text.str();
    REQUIRE(std::regex_search(s, m, std::regex(R"(VERSION ([0-9]+)\.([0-9]+)\.([0-9]+))")));
    CHECK(std::stoi(m[1]) == SECKILL_VERSION_MAJOR);
    CHECK(std::stoi(m[2]) == SECKILL_VERSION_MINOR);
    CHECK(std::stoi(m[3]) == SECKILL_VERSION_PATCH);
    CHECK(std::string(seckill::version.string) ==
          std::string(m[1]) + "." + std::string(m[2]) + "." + std::string(m[3]));
  }
}
