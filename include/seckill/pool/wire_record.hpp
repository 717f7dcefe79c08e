#pragma once
/// @file
/// @brief `wire_record<T>`: a fixed-layout record read from and written to raw
///        bytes without undefined behaviour: size-checked copies (the compiler
///        turns them into one `memcpy`), never a `reinterpret_cast` of foreign bytes.

#include <seckill/error.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>

namespace seckill {

/// @brief Reads and writes a trivially copyable, standard-layout `T` as its
///        `sizeof(T)` bytes, in host byte order and layout.
///
/// Casting a network buffer to `T*` is undefined behaviour (no `T` lives
/// there; alignment is not guaranteed); copying the bytes into a real `T` is
/// not, and costs one `memcpy` of `sizeof(T)` bytes (`read_into` copies
/// straight into an existing object, a pooled one for instance). Every read and write
/// checks the span's size first. Nothing allocates; everything but the
/// throwing overloads is `noexcept`, and `from_bytes` / `to_bytes` are `constexpr`.
///
/// Both ends must agree on the layout: use fixed-width members, and mind
/// padding (it travels as whatever bytes the object holds).
///
/// Thread-safety: stateless.
template <class T>
struct wire_record {
  static_assert(std::is_trivially_copyable_v<T>, "wire_record<T> needs a trivially copyable T");
  static_assert(std::is_standard_layout_v<T>, "wire_record<T> needs a standard-layout T");
  static_assert(!std::is_pointer_v<T> && !std::is_member_pointer_v<T>,
                "a pointer means nothing on the wire");

  /// The record's size on the wire.
  static constexpr std::size_t size = sizeof(T);
  using bytes_type = std::array<std::byte, sizeof(T)>;

  [[nodiscard]] static constexpr T from_bytes(const bytes_type& bytes) noexcept {
    return std::bit_cast<T>(bytes);
  }
  [[nodiscard]] static constexpr bytes_type to_bytes(const T& value) noexcept {
    return std::bit_cast<bytes_type>(value);
  }

  /// Copies the first `size` bytes of `in` into `out`. Fails with
  /// `errc::protocol_error` (and leaves `out` untouched) when `in` is shorter.
  static void read_into(std::span<const std::byte> in, T& out, std::error_code& ec) noexcept {
    if (in.size() < size) {
      ec = make_error_code(errc::protocol_error);
      return;
    }
    std::memcpy(std::addressof(out), in.data(), size);  // defined: T is trivially copyable
    ec.clear();
  }

  /// The record in the first `size` bytes of `in`, or `T{}` with `ec` set to
  /// `errc::protocol_error` when `in` is shorter.
  [[nodiscard]] static T read(std::span<const std::byte> in, std::error_code& ec) noexcept {
    T out{};
    read_into(in, out, ec);
    return out;
  }

  /// The record in the first `size` bytes of `in`.
  /// @throws seckill::error (`errc::protocol_error`) when `in` is shorter.
  [[nodiscard]] static T read(std::span<const std::byte> in) {
    std::error_code ec;
    T out = read(in, ec);
    if (ec) throw error(ec, short_message("input", in.size()));
    return out;
  }

  /// Writes `value` into the first `size` bytes of `out`; returns the bytes
  /// written (`size`), or 0 with `ec` set to `errc::invalid_argument` when `out`
  /// is shorter (nothing written).
  static std::size_t write(const T& value, std::span<std::byte> out, std::error_code& ec) noexcept {
    if (out.size() < size) {
      ec = make_error_code(errc::invalid_argument);
      return 0;
    }
    std::memcpy(out.data(), std::addressof(value), size);
    ec.clear();
    return size;
  }

  /// Writes `value` into the first `size` bytes of `out`; returns `size`.
  /// @throws seckill::error (`errc::invalid_argument`) when `out` is shorter.
  static std::size_t write(const T& value, std::span<std::byte> out) {
    std::error_code ec;
    const std::size_t n = write(value, out, ec);
    if (ec) throw error(ec, short_message("output", out.size()));
    return n;
  }

 private:
  static std::string short_message(const char* which, std::size_t got) {
    return std::string("wire record of ") + std::to_string(size) + " bytes: " + which +
           " span holds only " + std::to_string(got);
  }
};

}  // namespace seckill
