#pragma once
// Certificates for the TLS tests, made once per test process with the openssl
// CLI in a temporary directory (EC P-256 keys, valid for two days):
//   ca.pem              the CA the servers and clients are signed by
//   server.pem/.key     127.0.0.1 and localhost (subject alternative names)
//   client.pem/.key     a client certificate (mutual TLS)
//   expired.pem/.key    like server.pem, expired a day ago
//   wrong_host.pem/.key like server.pem, for wrong.example only
//   other_ca.pem        a second CA that signed none of them
//   encrypted.key       client.key under the passphrase "s3cret-pass"

#include <seckill/detail/temp_dir.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace seckill::test {

class test_pki {
 public:
  static constexpr const char* key_passphrase = "s3cret-pass";

  /// The process's one set of certificates (made on first use).
  static const test_pki& get() {
    static const test_pki pki;
    return pki;
  }

  [[nodiscard]] std::string file(const std::string& name) const {
    return (dir_.path() / name).string();
  }
  [[nodiscard]] std::string ca() const { return file("ca.pem"); }
  [[nodiscard]] std::string other_ca() const { return file("other_ca.pem"); }
  [[nodiscard]] std::string server_cert() const { return file("server.pem"); }
  [[nodiscard]] std::string server_key() const { return file("server.key"); }
  [[nodiscard]] std::string client_cert() const { return file("client.pem"); }
  [[nodiscard]] std::string client_key() const { return file("client.key"); }
  [[nodiscard]] std::string expired_cert() const { return file("expired.pem"); }
  [[nodiscard]] std::string expired_key() const { return file("expired.key"); }
  [[nodiscard]] std::string wrong_host_cert() const { return file("wrong_host.pem"); }
  [[nodiscard]] std::string wrong_host_key() const { return file("wrong_host.key"); }
  [[nodiscard]] std::string encrypted_client_key() const { return file("encrypted.key"); }

 private:
  test_pki() : dir_("seckill-tls") {
    const std::string d = dir_.path().string();
    const std::string log = d + "/openssl.log";
    const auto run = [&](const std::string& args) {
      const std::string cmd = "cd '" + d + "' && openssl " + args + " >>'" + log + "' 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        std::ifstream in(log);
        throw std::runtime_error("test_pki: 'openssl " + args + "' failed:\n" +
                                 std::string(std::istreambuf_iterator<char>(in), {}));
      }
    };
    const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const char* ca : {"ca", "other_ca"}) {
      run(std::string("req -x509 ") + ec_key + " -keyout " + ca + ".key -out " + ca +
          ".pem -days 2 -subj /CN=seckill-test-" + ca +
          " -addext basicConstraints=critical,CA:TRUE"
          " -addext keyUsage=critical,keyCertSign,cRLSign");
    }
    {
      std::ofstream(d + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                          "extendedKeyUsage=serverAuth,clientAuth\n";
      std::ofstream(d + "/wrong_host.ext")
          << "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth,clientAuth\n";
      std::ofstream(d + "/client.ext") << "extendedKeyUsage=clientAuth\n";
    }
    const auto leaf = [&](const std::string& name, const std::string& cn, const std::string& ext,
                          const std::string& days) {
      run("req " + ec_key + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + cn);
      run("x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + name +
          ".pem -days " + days + " -extfile " + ext);
    };
    leaf("server", "localhost", "server.ext", "2");
    leaf("client", "seckill-test-client", "client.ext", "2");
    leaf("expired", "localhost", "server.ext", "-1");  // notAfter a day ago
    leaf("wrong_host", "wrong.example", "wrong_host.ext", "2");
    run(std::string("pkey -in client.key -out encrypted.key -aes256 -passout pass:") +
        key_passphrase);
  }

  detail::temp_dir dir_;
};

}  // namespace seckill::test
