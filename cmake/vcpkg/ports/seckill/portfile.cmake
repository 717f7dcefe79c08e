# Overlay port: vcpkg install seckill --overlay-ports=<seckill>/cmake/vcpkg/ports
# Builds from the checkout this port lives in (SECKILL_SOURCE_PATH overrides it).
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough

if(DEFINED ENV{SECKILL_SOURCE_PATH})
  set(SOURCE_PATH "$ENV{SECKILL_SOURCE_PATH}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
endif()

# One feature per component (seckill::core is always there); default: all.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    asio    SECKILL_WITH_ASIO
    redis   SECKILL_WITH_REDIS
    etcd    SECKILL_WITH_ETCD
    browser SECKILL_WITH_BROWSER
    obs     SECKILL_WITH_OBS
    tls     SECKILL_WITH_TLS
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
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
file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/usage" [=[
seckill provides CMake targets, one per component installed (its features):

  find_package(seckill CONFIG REQUIRED)                   # every component installed
  target_link_libraries(main PRIVATE seckill::seckill)

  find_package(seckill CONFIG REQUIRED COMPONENTS core)   # the standard library only
  target_link_libraries(main PRIVATE seckill::core)       # or seckill::asio, ::redis, ::etcd, ::browser, ::obs, ::tls
]=])
