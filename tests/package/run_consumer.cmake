# Consumer tests of the installed and embedded package.
#   STEP=install_consumer  install to a prefix, move the prefix, build and run a
#                          find_package(seckill) consumer against the moved copy
#   STEP=wrong_version     find_package(seckill 99.0) must fail to configure
#   STEP=add_subdirectory  a parent project embeds seckill; its tests, benches
#                          and examples stay off
#   STEP=core_component    COMPONENTS core where Boost, fmt and nlohmann_json
#                          cannot be found: every core header compiles, a program
#                          runs, and no core header opens a Boost, fmt or JSON file
#   STEP=redis_component   COMPONENTS redis where fmt and nlohmann_json cannot be
#                          found: builds, links Boost.URL, runs
#   STEP=find_components   unknown components (required, optional, not REQUIRED)
#                          and asio where Boost cannot be found
#   STEP=core_only_install seckill configured and installed with core alone where
#                          Boost, fmt and nlohmann_json cannot be found; a consumer
#                          gets core from find_package(seckill); asking for redis fails
# Usage: cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<dir> -DSTEP=<step> -DCXX=<compiler>
#              [-DCXX_ID=<CMAKE_CXX_COMPILER_ID>] -P run_consumer.cmake
cmake_minimum_required(VERSION 3.23)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
endfunction()

# run_fails(<what the output must match> <command...>): the command must fail
# and say so in words matching the regex.
function(run_fails expected)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  list(JOIN ARGN " " cmd)
  if(rc EQUAL 0)
    message(FATAL_ERROR "succeeded, it must fail: ${cmd}\n${out}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")  # CMake wraps its messages
  if(NOT flat MATCHES "${expected}")
    message(FATAL_ERROR "failed without saying '${expected}': ${cmd}\n${out}")
  endif()
endfunction()

# install_seckill(<prefix> <cmake options...>)
function(install_seckill prefix)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/seckill-build" ${gen}
      -DSECKILL_INSTALL=ON -DSECKILL_BUILD_TESTS=OFF -DSECKILL_BUILD_BENCH=OFF
      -DSECKILL_BUILD_EXAMPLES=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}" ${ARGN})
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/seckill-build")
endfunction()

# What a consumer sees when Boost, fmt and nlohmann_json cannot be found.
set(no_third_party
  -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_fmt=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)

# configure_consumer(<name> <source dir> <prefix> <cmake options...>)
function(configure_consumer name dir prefix)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/${dir}" -B "${WORK_DIR}/${name}" ${gen}
      "-DCMAKE_PREFIX_PATH=${prefix}" ${ARGN})
endfunction()

function(build_and_run name program)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/${name}" -j 2)
  run("${WORK_DIR}/${name}/${program}")
endfunction()

# Every file a TU including each core header opens, as the compiler lists them
# (-M): none may be Boost's, fmt's or nlohmann's, nor a seckill header outside
# core. Boost may sit in /usr/include, where no find_package switch hides it
# from the compiler: this is what shows the headers need only the standard library.
function(check_core_includes prefix)
  if(NOT CXX_ID MATCHES "GNU|Clang")
    message(STATUS "include scan skipped: ${CXX_ID} has no -M")
    return()
  endif()
  include("${SOURCE_DIR}/cmake/SeckillComponents.cmake")
  foreach(header IN LISTS SECKILL_core_HEADERS)
    set(tu "${WORK_DIR}/scan.cpp")
    file(WRITE "${tu}" "#include <${header}>\n")
    execute_process(COMMAND "${CXX}" -std=c++20 -M "-I${prefix}/include" "${tu}"
      RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${CXX} -M failed on <${header}>:\n${err}")
    endif()
    string(REPLACE "\\\n" " " deps "${deps}")
    string(REGEX REPLACE "[ \t\r\n]+" ";" deps "${deps}")
    foreach(file IN LISTS deps)
      if(file MATCHES "/(boost|fmt|nlohmann)/")
        message(FATAL_ERROR "<${header}> (seckill::core) opens ${file}: core is the standard library only")
      endif()
      string(FIND "${file}" "${prefix}/include/" at)
      if(at EQUAL 0)
        string(LENGTH "${prefix}/include/" n)
        string(SUBSTRING "${file}" ${n} -1 included)
        if(NOT included IN_LIST SECKILL_core_HEADERS)
          message(FATAL_ERROR "<${header}> (seckill::core) includes <${included}>, which is not a core header")
        endif()
      endif()
    endforeach()
  endforeach()
  list(LENGTH SECKILL_core_HEADERS n)
  message(STATUS "${n} core headers open no Boost, fmt or JSON file")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(gen -DCMAKE_CXX_COMPILER=${CXX})

if(STEP STREQUAL "install_consumer" OR STEP STREQUAL "wrong_version")
  install_seckill("${WORK_DIR}/prefix")
  # Relocatable: nothing may point back at the first prefix or the source tree.
  file(RENAME "${WORK_DIR}/prefix" "${WORK_DIR}/moved")
  file(GLOB_RECURSE config_files "${WORK_DIR}/moved/share/cmake/seckill/*.cmake")
  foreach(f IN LISTS config_files)
    file(READ "${f}" text)
    foreach(bad "${WORK_DIR}/prefix" "${SOURCE_DIR}")
      string(FIND "${text}" "${bad}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${f} holds the absolute path ${bad}")
      endif()
    endforeach()
    # Warnings (and -Werror) are the project's own business, never its consumers'.
    if(text MATCHES "INTERFACE_COMPILE_OPTIONS|-Werror|-Wall")
      message(FATAL_ERROR "${f} passes compile options on to consumers")
    endif()
  endforeach()
endif()

if(STEP STREQUAL "install_consumer")
  configure_consumer(consumer consumer "${WORK_DIR}/moved")
  build_and_run(consumer seckill_consumer)
elseif(STEP STREQUAL "wrong_version")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/wrong_version"
            -B "${WORK_DIR}/wrong" ${gen} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/moved"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(seckill 99.0) configured, it must fail:\n${out}")
  endif()
  if(NOT out MATCHES "99\\.0")
    message(FATAL_ERROR "find_package(seckill 99.0) failed without naming the version:\n${out}")
  endif()
elseif(STEP STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/parent" -B "${WORK_DIR}/parent" ${gen}
      "-DSECKILL_SOURCE_DIR=${SOURCE_DIR}")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/parent" -j 2)
  run("${WORK_DIR}/parent/seckill_parent")
  run("${WORK_DIR}/parent/seckill_parent_core")
elseif(STEP STREQUAL "core_component")
  install_seckill("${WORK_DIR}/prefix")
  configure_consumer(core core_consumer "${WORK_DIR}/prefix" ${no_third_party} -DASK=core
    "-DSECKILL_COMPONENTS_FILE=${SOURCE_DIR}/cmake/SeckillComponents.cmake")
  build_and_run(core seckill_core_consumer)
  check_core_includes("${WORK_DIR}/prefix")
elseif(STEP STREQUAL "redis_component")
  install_seckill("${WORK_DIR}/prefix")
  configure_consumer(redis redis_consumer "${WORK_DIR}/prefix"
    -DCMAKE_DISABLE_FIND_PACKAGE_fmt=ON -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
  build_and_run(redis seckill_redis_consumer)
elseif(STEP STREQUAL "find_components")
  install_seckill("${WORK_DIR}/prefix")
  foreach(case unknown unknown_optional)
    configure_consumer(${case} find_components "${WORK_DIR}/prefix" -DCASE=${case})
  endforeach()
  run_fails("seckill has no component 'nosuch'; its components are: core, asio, redis, etcd, browser, obs"
    ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/find_components" -B "${WORK_DIR}/unknown_required"
    ${gen} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCASE=unknown_required)
  # The switch the core test relies on does hide Boost from find_package.
  run_fails("Boost"
    ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/find_components" -B "${WORK_DIR}/asio_without_boost"
    ${gen} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCASE=asio_without_boost ${no_third_party})
elseif(STEP STREQUAL "core_only_install")
  install_seckill("${WORK_DIR}/prefix" ${no_third_party}
    -DSECKILL_WITH_ASIO=OFF -DSECKILL_WITH_REDIS=OFF -DSECKILL_WITH_ETCD=OFF
    -DSECKILL_WITH_BROWSER=OFF -DSECKILL_WITH_OBS=OFF -DSECKILL_WITH_TLS=OFF)
  foreach(absent seckill/redis/connection.hpp seckill/purchase/engine.hpp seckill/url.hpp
                 share/cmake/seckill/seckill_asioTargets.cmake)
    if(absent MATCHES "^seckill/")
      set(absent "include/${absent}")
    endif()
    if(EXISTS "${WORK_DIR}/prefix/${absent}")
      message(FATAL_ERROR "an install of core alone has ${absent}")
    endif()
  endforeach()
  configure_consumer(core core_consumer "${WORK_DIR}/prefix" ${no_third_party} -DASK=
    "-DSECKILL_COMPONENTS_FILE=${SOURCE_DIR}/cmake/SeckillComponents.cmake")
  build_and_run(core seckill_core_consumer)
  run_fails("installed without its 'redis' component.*SECKILL_WITH_REDIS=ON, the vcpkg feature 'redis' or the Conan option with_redis=True"
    ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/find_components" -B "${WORK_DIR}/not_installed"
    ${gen} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCASE=not_installed)
else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
