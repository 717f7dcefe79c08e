#pragma once
/// @file
/// @brief `tls_options`, the TLS settings the Redis connection (`rediss://`)
///        and the etcd client (`https://` endpoints) share, `validate`, which
///        checks them, and `tls_errc`, the errors a TLS connection reports
///        ("seckill.tls"). The standard library only: the OpenSSL part is in
///        the `seckill::tls` component (detail/tls_context.hpp), which a
///        program links to use TLS at all (it defines `SECKILL_HAS_TLS`).
///
/// No message ever holds `key_password`. Thread-safety: plain data and pure
/// functions. Cost: `validate` opens each file named once.

#include <seckill/error.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

/// 1 where the program links the `seckill::tls` component (its target
/// defines it): the Redis and etcd headers then compile their TLS code.
#ifndef SECKILL_HAS_TLS
#define SECKILL_HAS_TLS 0
#endif

namespace seckill {

/// @brief How a client speaks TLS to a server: what it trusts, who it is,
///        and which name the server's certificate must carry.
struct tls_options {
  /// PEM file of the CA certificates the server's chain must lead to; empty:
  /// the system's trust store (OpenSSL's default paths).
  std::string ca_file{};
  /// PEM file of the client's certificate (and its chain), for servers that
  /// ask for one (mutual TLS: redis-server's `tls-auth-clients`, etcd's
  /// `--client-cert-auth`); empty: none is sent.
  std::string cert_file{};
  /// PEM file of the client certificate's private key; empty: `cert_file`
  /// holds it too.
  std::string key_file{};
  /// The private key's passphrase, when it is encrypted. A secret: never in
  /// a message.
  std::string key_password{};
  /// The name sent as SNI and checked against the server's certificate
  /// (its DNS or IP subject alternative names); empty: the host connected
  /// to. Set it when connecting by address to a server whose certificate
  /// names a host.
  std::string server_name{};
  /// Checks the server's chain and name (the default). false skips both:
  /// the connection is encrypted but talks to whoever answers.
  bool verify = true;

  friend bool operator==(const tls_options&, const tls_options&) = default;
};

/// @brief Why a TLS connection failed. Certificate problems map to
///        `condition::server` (like `errc::auth_failed`: retrying does not
///        help until a certificate or a setting changes); a handshake that
///        is not TLS maps to `condition::protocol`.
enum class tls_errc {
  /// The server's certificate does not chain to a CA of `ca_file` (or of the
  /// system's store): an unknown or self-signed issuer.
  unknown_ca = 1,
  /// The server's certificate, or one of its chain, has expired or is not
  /// valid yet.
  certificate_expired,
  /// The server's certificate does not name the host connected to (or
  /// `server_name`).
  host_name_mismatch,
  /// Another verification failure (a bad signature, a certificate not meant
  /// for a server, ...).
  certificate_invalid,
  /// The server refused the client's certificate, or wanted one and got
  /// none (mutual TLS without `cert_file`).
  certificate_refused,
  /// The TLS handshake failed otherwise: not a TLS port, no protocol
  /// version or cipher in common, the connection closed during it.
  handshake_failed,
};

constexpr const char* error_domain_name(tls_errc) noexcept { return "seckill.tls"; }

constexpr const char* error_message(tls_errc e) noexcept {
  switch (e) {
    case tls_errc::unknown_ca:
      return "TLS: the server's certificate is not signed by a trusted CA";
    case tls_errc::certificate_expired:
      return "TLS: the server's certificate has expired or is not valid yet";
    case tls_errc::host_name_mismatch:
      return "TLS: the server's certificate does not name the host";
    case tls_errc::certificate_invalid:
      return "TLS: the server's certificate is invalid";
    case tls_errc::certificate_refused:
      return "TLS: the server refused the client certificate (or needs one)";
    case tls_errc::handshake_failed:
      return "TLS handshake failed";
  }
  return nullptr;
}

constexpr condition error_condition_of(tls_errc e) noexcept {
  return e == tls_errc::handshake_failed ? condition::protocol : condition::server;
}

/// @brief The category of every `tls_errc` ("seckill.tls"). Thread-safe.
inline const std::error_category& tls_category() noexcept {
  return detail::category_of<tls_errc>();
}

inline std::error_code make_error_code(tls_errc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

namespace detail {

// Empty when `path` names a regular file this process can open for reading;
// otherwise why not, naming the setting and the path.
inline std::string unreadable_file(const char* setting, const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    return std::string(setting) + " '" + path + "' does not exist";
  if (!std::filesystem::is_regular_file(status))
    return std::string(setting) + " '" + path + "' is not a regular file";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return std::string(setting) + " '" + path +
           "' cannot be read: " + (err != 0 ? std::strerror(err) : "open failed");
  }
  return {};
}

}  // namespace detail

/// @brief Checks `opts`: every file it names exists and can be read, and a
///        key or a passphrase comes with a certificate. Returns
///        `errc::invalid_argument` when not; `message` then names the setting
///        and the file (never the passphrase). The Redis connection and the
///        etcd client call it at construction; the certificates' contents
///        are checked when the TLS context is made (at construction too, with
///        the `seckill::tls` component).
inline std::error_code validate(const tls_options& opts, std::string* message = nullptr) {
  auto bad = [&](std::string why) {
    if (message != nullptr) *message = "tls_options: " + std::move(why);
    return make_error_code(errc::invalid_argument);
  };
  if (!opts.key_file.empty() && opts.cert_file.empty())
    return bad("key_file '" + opts.key_file + "' is set without cert_file");
  if (!opts.key_password.empty() && opts.cert_file.empty())
    return bad("key_password is set without cert_file");
  const struct {
    const char* name;
    const std::string& path;
  } files[] = {
      {"ca_file", opts.ca_file}, {"cert_file", opts.cert_file}, {"key_file", opts.key_file}};
  for (const auto& f : files) {
    if (f.path.empty()) continue;
    if (std::string why = detail::unreadable_file(f.name, f.path); !why.empty()) return bad(why);
  }
  if (opts.server_name.find_first_of(" \t\r\n/") != std::string::npos)
    return bad("server_name '" + opts.server_name + "' is not a host name");
  return {};
}

}  // namespace seckill

template <>
struct std::is_error_code_enum<seckill::tls_errc> : std::true_type {};
