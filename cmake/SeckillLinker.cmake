# The linker for seckill's own programs (tests, benches, examples, fuzzers):
# linking the Debug test binaries with GNU ld takes seconds each, lld or gold
# a fraction of that. Set for this directory and below only (add_link_options),
# so never part of the interface that consumers inherit, nor of a parent
# project's targets when seckill is embedded with add_subdirectory.
#
#   SECKILL_LINKER=auto     (default) the first of lld, gold that the compiler
#                           can link with; the compiler's default when neither
#   SECKILL_LINKER=default  the compiler's default linker
#   SECKILL_LINKER=<name>   -fuse-ld=<name>; configuring fails when it cannot link
#
# scripts/install-deps installs lld (Debian's package lld); without it the
# choice falls back to gold (binutils), then to the default.
set(SECKILL_LINKER "auto" CACHE STRING
  "Linker for seckill's tests, benches and examples: auto (lld, then gold), default, or a -fuse-ld= name")

if(MSVC OR SECKILL_LINKER STREQUAL "default")
  return()
endif()

include(CheckLinkerFlag)
if(SECKILL_LINKER STREQUAL "auto")
  set(seckill_linker_candidates lld gold)
else()
  set(seckill_linker_candidates ${SECKILL_LINKER})
endif()
set(seckill_linker "")
foreach(ld IN LISTS seckill_linker_candidates)
  # (the result is cached per name: SECKILL_LINKS_WITH_lld, ...)
  check_linker_flag(CXX "-fuse-ld=${ld}" SECKILL_LINKS_WITH_${ld})
  if(SECKILL_LINKS_WITH_${ld})
    set(seckill_linker ${ld})
    break()
  endif()
endforeach()
if(seckill_linker)
  add_link_options(-fuse-ld=${seckill_linker})
  message(STATUS "seckill: tests, benches and examples link with -fuse-ld=${seckill_linker}")
elseif(NOT SECKILL_LINKER STREQUAL "auto")
  message(FATAL_ERROR "SECKILL_LINKER is '${SECKILL_LINKER}', but ${CMAKE_CXX_COMPILER} cannot link with -fuse-ld=${SECKILL_LINKER}")
else()
  message(STATUS "seckill: neither lld nor gold links here; tests, benches and examples use the default linker")
endif()
unset(seckill_linker)
unset(seckill_linker_candidates)
