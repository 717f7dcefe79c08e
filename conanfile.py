from conan import ConanFile
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy
import os


class SeckillConan(ConanFile):
    name = "seckill"
    version = "0.1.0"
    description = "Header-only C++20 building blocks for flash sales"
    license = "BSL-1.0"
    url = "https://github.com/seckill/seckill"
    topics = ("flash-sale", "rate-limiting", "snowflake", "redis", "etcd", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*"
    no_copy_source = True
    # Boost.URL parses the redis:// and etcd:// URLs; it is a compiled Boost library.
    default_options = {"boost/*:header_only": False, "boost/*:without_url": False}

    def requirements(self):
        self.requires("boost/[>=1.81 <2]")
        self.requires("fmt/[>=9 <12]")
        self.requires("nlohmann_json/[>=3.11 <4]")

    def build_requirements(self):
        self.test_requires("doctest/2.4.11")
        self.test_requires("benchmark/1.8.3")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["SECKILL_BUILD_TESTS"] = False
        tc.cache_variables["SECKILL_BUILD_BENCH"] = False
        tc.cache_variables["SECKILL_BUILD_EXAMPLES"] = False
        tc.cache_variables["SECKILL_INSTALL"] = True
        tc.generate()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))

    def package_id(self):
        self.info.clear()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "seckill")
        self.cpp_info.set_property("cmake_target_name", "seckill::seckill")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.requires = ["boost::headers", "boost::url", "fmt::fmt", "nlohmann_json::nlohmann_json"]
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]
