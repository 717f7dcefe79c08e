# CTest runs each doctest case with --test-case=<name> and labels it from its
# test suite; a comma in a name splits that filter, so the case would lose its
# label and drop out of the sanitizer presets; a semicolon or a square bracket
# breaks CMake's list of discovered names (one test then swallows the next
# ones, and ctest cannot even load the list). Fail on any such name.
# Usage: cmake -DSOURCE_DIR=<repo> -P check_test_names.cmake
file(GLOB_RECURSE sources "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/tests/*.hpp")
set(bad "")
foreach(f IN LISTS sources)
  file(STRINGS "${f}" lines REGEX "TEST_CASE[A-Z_]*\\(\"[^\"]*[],;[]")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    list(APPEND bad "${f}: ${line}")
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n" text)
  message(FATAL_ERROR "test case names with a comma, a semicolon or a square bracket (ctest cannot list or label them):\n${text}")
endif()
