from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy
import os


# seckill's components (docs/cmake.md; cmake/SeckillComponents.cmake is the
# source): what each builds on, and the Conan components it requires itself.
# seckill::core needs the standard library only and is always there; every
# other component is an option, with_<component>, on by default. tls (OpenSSL)
# also defines SECKILL_HAS_TLS, which turns on the TLS code of the redis and
# etcd headers.
COMPONENTS = {
    "core": ([], []),
    "asio": (["core"], ["boost::headers"]),
    "redis": (["asio"], ["boost::headers", "boost::url"]),
    "etcd": (["asio"], ["boost::headers", "boost::url", "nlohmann_json::nlohmann_json"]),
    "browser": (["asio"], ["boost::headers", "boost::url", "nlohmann_json::nlohmann_json", "fmt::fmt"]),
    "obs": (["asio"], ["boost::headers", "boost::url", "nlohmann_json::nlohmann_json", "fmt::fmt"]),
    "tls": (["asio"], ["openssl::ssl", "openssl::crypto"]),
}


class SeckillConan(ConanFile):
    name = "seckill"
    version = "0.1.0"
    description = "Header-only C++20 building blocks for flash sales"
    license = "BSL-1.0"
    url = "https://github.com/seckill/seckill"
    topics = ("flash-sale", "rate-limiting", "snowflake", "redis", "etcd", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_asio": [True, False],
        "with_redis": [True, False],
        "with_etcd": [True, False],
        "with_browser": [True, False],
        "with_obs": [True, False],
        "with_tls": [True, False],
    }
    # Boost.URL parses the redis:// and etcd:// URLs; it is a compiled Boost library.
    default_options = {
        "with_asio": True,
        "with_redis": True,
        "with_etcd": True,
        "with_browser": True,
        "with_obs": True,
        "with_tls": True,
        "boost/*:header_only": False,
        "boost/*:without_url": False,
    }
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*"
    no_copy_source = True

    def _enabled(self):
        return [c for c in COMPONENTS if c == "core" or self.options.get_safe(f"with_{c}")]

    def validate(self):
        enabled = self._enabled()
        for c in enabled:
            for r in COMPONENTS[c][0]:
                if r not in enabled:
                    raise ConanInvalidConfiguration(
                        f"seckill:with_{c}=True needs seckill:with_{r}=True: seckill::{c} builds on seckill::{r}")

    def requirements(self):
        needed = {dep.split("::")[0] for c in self._enabled() for dep in COMPONENTS[c][1]}
        if "boost" in needed:
            self.requires("boost/[>=1.81 <2]")
        if "fmt" in needed:
            self.requires("fmt/[>=9 <12]")
        if "nlohmann_json" in needed:
            self.requires("nlohmann_json/[>=3.11 <4]")
        if "openssl" in needed:
            self.requires("openssl/[>=3.0 <4]")

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
        for c in COMPONENTS:
            if c != "core":
                tc.cache_variables[f"SECKILL_WITH_{c.upper()}"] = bool(self.options.get_safe(f"with_{c}"))
        tc.generate()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))

    def package_id(self):
        # The same headers whatever the options: one package for every
        # configuration; the options choose the components package_info declares.
        self.info.clear()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "seckill")
        self.cpp_info.set_property("cmake_target_name", "seckill::seckill")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        for c in self._enabled():
            component = self.cpp_info.components[c]
            component.set_property("cmake_target_name", f"seckill::{c}")
            component.bindirs = []
            component.libdirs = []
            component.requires = COMPONENTS[c][0] + COMPONENTS[c][1]
            if c == "core" and self.settings.os in ("Linux", "FreeBSD"):
                component.system_libs = ["pthread"]
            if c == "tls":
                component.defines = ["SECKILL_HAS_TLS=1"]
