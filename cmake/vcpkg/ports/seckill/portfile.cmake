# Overlay port: vcpkg install seckill --overlay-ports=<seckill>/cmake/vcpkg/ports
# Builds from the checkout this port lives in (SECKILL_SOURCE_PATH overrides it).
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough

if(DEFINED ENV{SECKILL_SOURCE_PATH})
  set(SOURCE_PATH "$ENV{SECKILL_SOURCE_PATH}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DSECKILL_BUILD_TESTS=OFF
    -DSECKILL_BUILD_BENCH=OFF
    -DSECKILL_BUILD_EXAMPLES=OFF
    -DSECKILL_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/seckill)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/usage"
  "seckill provides CMake targets:\n\n  find_package(seckill CONFIG REQUIRED)\n  target_link_libraries(main PRIVATE seckill::seckill)\n")
