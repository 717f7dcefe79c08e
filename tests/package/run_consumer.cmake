# Consumer tests of the installed and embedded package.
#   STEP=install_consumer  install to a prefix, move the prefix, build and run a
#                          find_package(seckill) consumer against the moved copy
#   STEP=wrong_version     find_package(seckill 99.0) must fail to configure
#   STEP=add_subdirectory  a parent project embeds seckill; its tests, benches
#                          and examples stay off
cmake_minimum_required(VERSION 3.23)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(gen -DCMAKE_CXX_COMPILER=${CXX})

if(STEP STREQUAL "install_consumer" OR STEP STREQUAL "wrong_version")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/seckill-build" ${gen}
      -DSECKILL_INSTALL=ON -DSECKILL_BUILD_TESTS=OFF -DSECKILL_BUILD_BENCH=OFF
      -DSECKILL_BUILD_EXAMPLES=OFF "-DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/seckill-build")
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
  endforeach()
endif()

if(STEP STREQUAL "install_consumer")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/package/consumer" -B "${WORK_DIR}/consumer" ${gen}
      "-DCMAKE_PREFIX_PATH=${WORK_DIR}/moved")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer" -j 2)
  run("${WORK_DIR}/consumer/seckill_consumer")
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
else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
