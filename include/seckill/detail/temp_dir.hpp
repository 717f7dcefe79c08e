#pragma once
/// @file
/// @brief A fresh directory under the system's temporary directory, removed
///        with everything in it on destruction.

#include <seckill/error.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <stdlib.h>

namespace seckill::detail {

/// @brief Owns a directory made by mkdtemp. Thread-safety: none; one owner.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix = "seckill") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw error(errc::invalid_argument,
                  "cannot create a temporary directory '" + pattern + "': " + std::strerror(errno));
    }
    path_ = pattern;
  }
  temp_dir(temp_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  temp_dir& operator=(temp_dir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() { remove(); }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  void remove() noexcept {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    path_.clear();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace seckill::detail
