#pragma once
// seckill_server as a child process for the tests: started with its flags,
// its stdout and stderr kept in a temporary file, its port read from the
// "listening on http://HOST:PORT" line; and a keep-alive HTTP client.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>

#include <doctest/doctest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace seckill::test {

/// One running seckill_server.
class server_process {
 public:
  /// Starts it on 127.0.0.1 with a free port (--listen 127.0.0.1:0 unless `args` has --listen)
  /// and waits for its "listening on" line; throws with its output if it does not come.
  server_process(const std::string& program, std::vector<std::string> args,
                 std::chrono::seconds startup = std::chrono::seconds(20))
      : dir_("seckill-server") {
    output_ = (dir_.path() / "output").string();
    detail::child_process::options o;
    o.argv = {program};
    bool has_listen = false;
    for (const auto& a : args) has_listen = has_listen || a.starts_with("--listen");
    if (!has_listen) {
      o.argv.emplace_back("--listen");
      o.argv.emplace_back("127.0.0.1:0");
    }
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.output_path = output_;
    o.die_with_parent = true;
    process_.start(o);
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)\n");
    const auto until = std::chrono::steady_clock::now() + startup;
    while (std::chrono::steady_clock::now() < until) {
      std::smatch m;
      const auto text = output();
      if (std::regex_search(text, m, listening)) {
        port_ = static_cast<unsigned short>(std::stoi(m[1].str()));
        return;
      }
      if (!process_.running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("seckill_server did not start; its output:\n" + output());
  }

  /// Runs the program with `args` expecting it to exit with `status` within
  /// 20 s, its output containing `needle` and, when given, not `secret`.
  static void expect_exit(const std::string& program, std::vector<std::string> args, int status,
                          const std::string& needle, const std::string& secret = {}) {
    detail::temp_dir dir("seckill-server");
    const auto path = (dir.path() / "output").string();
    detail::child_process::options o;
    o.argv = {program};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.output_path = path;
    o.die_with_parent = true;
    detail::child_process p(o);
    const bool exited = p.wait_for(std::chrono::seconds(20));
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const auto out = text.str();
    CAPTURE(out);
    REQUIRE(exited);
    CHECK(WIFEXITED(p.wait_status()));
    CHECK(WEXITSTATUS(p.wait_status()) == status);
    CHECK(out.find(needle) != std::string::npos);
    if (!secret.empty()) CHECK(out.find(secret) == std::string::npos);
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }
  [[nodiscard]] std::string output() const {
    std::ifstream in(output_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void signal(int sig) noexcept { process_.signal(sig); }
  /// Waits for it to exit; its exit status, or -1 (then it was killed) after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    if (!process_.wait_for(timeout)) {
      process_.kill_and_wait();
      return -1;
    }
    const int status = process_.wait_status();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  detail::temp_dir dir_;
  std::string output_;
  detail::child_process process_;
  unsigned short port_ = 0;
};

/// An HTTP answer as the tests read it.
struct server_answer {
  unsigned status = 0;
  std::string body;
  boost::beast::http::fields headers;
  [[nodiscard]] nlohmann::json json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
};

/// One keep-alive connection to 127.0.0.1:port, blocking. Throws
/// boost::system::system_error on network errors.
class http_connection {
 public:
  explicit http_connection(unsigned short port) : port_(port), stream_(io_) {
    stream_.expires_after(std::chrono::seconds(30));
    stream_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }

  server_answer send(boost::beast::http::verb method, const std::string& target,
                     const std::string& body = {},
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == http::verb::head) parser.skip(true);
    http::read(stream_, buffer_, parser);
    server_answer a;
    a.status = parser.get().result_int();
    a.body = parser.get().body();
    a.headers = parser.get().base();
    return a;
  }
  server_answer get(const std::string& target) {
    return send(boost::beast::http::verb::get, target);
  }
  server_answer post(const std::string& target, const std::string& body) {
    return send(boost::beast::http::verb::post, target, body);
  }

 private:
  unsigned short port_;
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

/// GET /stock/{sku} on the node at `port`, which must answer 200.
inline nlohmann::json stock_of(unsigned short port, const std::string& sku) {
  http_connection c(port);
  const auto a = c.get("/stock/" + sku);
  REQUIRE_MESSAGE(a.status == 200, a.body);
  return a.json();
}

/// The value of an unlabelled sample (a gauge or a counter) in the /metrics
/// of the node at `port`; -1 when it is not exported.
inline double metric_value(unsigned short port, const std::string& name) {
  http_connection c(port);
  const auto a = c.get("/metrics");
  REQUIRE(a.status == 200);
  const std::string text = "\n" + a.body;
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace seckill::test
