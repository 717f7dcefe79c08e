#pragma once
/// @file
/// @brief The one place that turns `tls_options` into OpenSSL: the client
///        `boost::asio::ssl::context` (CA file, client certificate and key),
///        the per-connection SNI and host name check, and the mapping of a
///        failed handshake to `tls_errc` with a message naming the cause.
///        The `seckill::tls` component (OpenSSL::SSL, OpenSSL::Crypto);
///        users never include it.

#include <seckill/error.hpp>
#include <seckill/tls.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace seckill::detail {

/// The client context for `opts`, made once per connection (or client) and
/// kept for its reconnections. Throws `seckill::error` (invalid_argument)
/// naming the setting and the file that could not be used (a missing file, a
/// file that is not PEM, a key that does not match the certificate, a wrong
/// passphrase); the passphrase itself is never in the message.
inline std::shared_ptr<boost::asio::ssl::context> make_tls_client_context(const tls_options& opts) {
  namespace ssl = boost::asio::ssl;
  std::string why;
  if (validate(opts, &why)) throw error(errc::invalid_argument, why);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  auto fail = [](const char* setting, const std::string& path,
                 const boost::system::error_code& ec) {
    throw error(errc::invalid_argument, "tls_options: " + std::string(setting) + " '" + path +
                                            "' cannot be used: " + ec.message());
  };
  boost::system::error_code ec;
  if (opts.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) fail("ca_file", "(the system's CA store)", ec);
  } else {
    ctx->load_verify_file(opts.ca_file, ec);
    if (ec) fail("ca_file", opts.ca_file, ec);
  }
  // Always answers a passphrase prompt (with nothing when none is set):
  // OpenSSL's default would ask the terminal.
  ctx->set_password_callback([password = opts.key_password](
                                 std::size_t, ssl::context::password_purpose) { return password; },
                             ec);
  if (!opts.cert_file.empty()) {
    ctx->use_certificate_chain_file(opts.cert_file, ec);
    if (ec) fail("cert_file", opts.cert_file, ec);
    const std::string& key = opts.key_file.empty() ? opts.cert_file : opts.key_file;
    ctx->use_private_key_file(key, ssl::context::pem, ec);
    if (ec) fail("key_file", key, ec);  // (a wrong passphrase: "bad decrypt"; never the passphrase)
    if (SSL_CTX_check_private_key(native) != 1) {
      ERR_clear_error();
      throw error(
          errc::invalid_argument,
          "tls_options: key_file '" + key + "' does not match cert_file '" + opts.cert_file + "'");
    }
  }
  ctx->set_verify_mode(opts.verify ? ssl::verify_peer : ssl::verify_none);
  return ctx;
}

/// The name the server's certificate must carry: `server_name`, else the host.
inline const std::string& tls_expected_name(const tls_options& opts, const std::string& host) {
  return opts.server_name.empty() ? host : opts.server_name;
}

/// Sets SNI (for a host name; RFC 6066 sends none for an address) and, when
/// verifying, the name or address the certificate must carry, on one
/// connection's `SSL` before its handshake. Returns false when OpenSSL
/// refuses the name.
inline bool prepare_tls_client(SSL* ssl, const tls_options& opts, const std::string& host) {
  const std::string& name = tls_expected_name(opts, host);
  boost::system::error_code not_address;
  (void)boost::asio::ip::make_address(name, not_address);
  if (!not_address) {
    if (opts.verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
      return false;
    return true;
  }
  if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (opts.verify) {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, name.c_str()) != 1) return false;
  }
  return true;
}

namespace tls_detail {

inline std::string not_after_of(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string out;
  if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}

}  // namespace tls_detail

/// The error for a TLS failure `ec` on the connection `ssl` to `peer`
/// (host:port), and in `message` what went wrong with the value seen: the
/// certificate verification's result when it failed (unknown CA, expired,
/// wrong host name, other), else the server's alert (a refused or missing
/// client certificate) or the handshake's failure. Call it for any error of
/// a TLS connection's handshake or first exchange; other errors than TLS
/// ones give `handshake_failed` with their text. `after_handshake`: the
/// handshake succeeded and the first exchange failed. In TLS 1.3 the server
/// judges the client's certificate only then; its alert may be lost to a
/// connection reset, so a connection closed at that point is taken for a
/// refused (or missing) client certificate, and the message says so.
inline std::error_code tls_failure(const boost::system::error_code& ec, SSL* ssl,
                                   const tls_options& opts, const std::string& host,
                                   std::string_view peer, std::string& message,
                                   bool after_handshake = false) {
  const std::string who = "TLS to " + std::string(peer) + ": ";
  const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK) {
    const std::string detail = std::string(X509_verify_cert_error_string(verify)) +
                               " (X509 error " + std::to_string(verify) + ")";
    const std::string trusted =
        opts.ca_file.empty() ? "the system's CA store" : "ca_file '" + opts.ca_file + "'";
    switch (verify) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        message =
            who + "the server's certificate is not signed by a CA of " + trusted + ": " + detail;
        return make_error_code(tls_errc::unknown_ca);
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID: {
        const std::string until = tls_detail::not_after_of(ssl);
        message = who + "the server's certificate " +
                  (verify == X509_V_ERR_CERT_HAS_EXPIRED ? "has expired" : "is not valid yet") +
                  (until.empty() ? std::string() : " (not after " + until + ")") + ": " + detail;
        return make_error_code(tls_errc::certificate_expired);
      }
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        message = who + "the server's certificate does not name '" + tls_expected_name(opts, host) +
                  "' (set tls_options::server_name to a name it carries): " + detail;
        return make_error_code(tls_errc::host_name_mismatch);
      default:
        message = who + "the server's certificate was refused: " + detail;
        return make_error_code(tls_errc::certificate_invalid);
    }
  }
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    const auto packed = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
    const int reason = ERR_GET_REASON(packed);
    switch (reason) {
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
      case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        message = who + "the server refused " +
                  (opts.cert_file.empty()
                       ? std::string("the connection without a client certificate (it needs one: "
                                     "set tls_options::cert_file and key_file)")
                       : "the client certificate of cert_file '" + opts.cert_file + "'") +
                  ": " + ec.message();
        return make_error_code(tls_errc::certificate_refused);
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_HTTP_REQUEST:
        message =
            who + "the server does not speak TLS on this port (a plain port?): " + ec.message();
        return make_error_code(tls_errc::handshake_failed);
      default:
        message = who + "handshake failed: " + ec.message();
        return make_error_code(tls_errc::handshake_failed);
    }
  }
  const bool closed = ec == boost::asio::ssl::error::stream_truncated ||
                      ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
                      ec == boost::asio::error::broken_pipe;
  if (closed && after_handshake) {
    message = who + "the server closed the connection right after the TLS handshake (" +
              ec.message() + "): it " +
              (opts.cert_file.empty()
                   ? std::string("wants a client certificate and none was sent: set "
                                 "tls_options::cert_file and key_file")
                   : "refused the client certificate of cert_file '" + opts.cert_file + "'");
    return make_error_code(tls_errc::certificate_refused);
  }
  if (closed) {
    message = who + "the server closed the connection during the TLS handshake (" + ec.message() +
              "): a plain port, or a server that wants a client certificate";
    return make_error_code(tls_errc::handshake_failed);
  }
  message = who + "handshake failed: " + ec.message();
  return make_error_code(tls_errc::handshake_failed);
}

}  // namespace seckill::detail
