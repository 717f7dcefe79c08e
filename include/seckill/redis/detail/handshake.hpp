#pragma once
/// @file
/// @brief The commands of a Redis connection's handshake and how their
///        replies are read: pure functions, no I/O (detail/connection_impl.hpp
///        sends them).
///
/// The handshake: `HELLO 3 [AUTH user password] [SETNAME name]` (RESP3; the
/// reply's `version` and `id` are kept), or, on a server without HELLO or
/// with `protocol` 2, the RESP2 prelude `[AUTH] [CLIENT SETNAME] [CLIENT ID]
/// [INFO server]`; then `SELECT db` and the setup commands, sent only once
/// the server's version has been checked against `min_server_version`.

#include <seckill/error.hpp>
#include <seckill/redis/connection_config.hpp>
#include <seckill/redis/error.hpp>
#include <seckill/redis/resp.hpp>
#include <seckill/redis/server_version.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace seckill::redis::detail {

/// `HELLO 3` with the credentials and the client name of `cfg`.
inline request hello_request(const connection_config& cfg) {
  std::vector<std::string> args{"3"};
  if (!cfg.password.empty()) {
    args.push_back("AUTH");
    args.push_back(cfg.username.empty() ? std::string("default") : cfg.username);
    args.push_back(cfg.password);
  }
  if (!cfg.client_name.empty()) {
    args.push_back("SETNAME");
    args.push_back(cfg.client_name);
  }
  request hello;
  hello.push_range("HELLO", args);
  return hello;
}

/// What a server's answer to `HELLO 3` says.
struct hello_answer {
  enum class kind : std::uint8_t {
    resp3,       ///< a map: RESP3 from now on
    fallback,    ///< no HELLO, or no protocol 3: go on in RESP2
    refused,     ///< an error reply of another kind (credentials, ACL)
    unexpected,  ///< neither a map nor an error
  };
  kind outcome = kind::unexpected;
  server_version version;      ///< from the map's `version` (0.0.0 when missing)
  std::int64_t client_id = 0;  ///< from the map's `id` (0 when missing)
};

inline hello_answer read_hello(const value& v) {
  hello_answer a;
  if (v.is_error()) {
    const bool fallback =
        v.error_code() == "NOPROTO" || v.text.find("unknown command") != std::string::npos;
    a.outcome = fallback ? hello_answer::kind::fallback : hello_answer::kind::refused;
    return a;
  }
  if (v.type != resp_type::map) return a;
  a.outcome = hello_answer::kind::resp3;
  for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    const value& key = v.elements[i];
    const value& field = v.elements[i + 1];
    if (!key.is_string()) continue;
    if (key.text == "version" && field.is_string()) {
      if (const auto parsed = parse_server_version(field.text)) a.version = *parsed;
    } else if (key.text == "id" && field.type == resp_type::integer) {
      a.client_id = field.integer;
    }
  }
  return a;
}

/// The RESP2 prelude: AUTH and CLIENT SETNAME (when configured), CLIENT ID,
/// and INFO server when a minimum version is to be checked. `SELECT` and
/// the setup commands are not part of it.
struct resp2_prelude {
  request commands;
  std::size_t client_id_at = SIZE_MAX;  ///< the index of CLIENT ID's reply
  std::size_t info_at = SIZE_MAX;       ///< the index of INFO's reply (SIZE_MAX: not sent)
};

inline resp2_prelude make_resp2_prelude(const connection_config& cfg) {
  resp2_prelude p;
  if (!cfg.password.empty()) {
    if (cfg.username.empty())
      p.commands.push("AUTH", cfg.password);
    else
      p.commands.push("AUTH", cfg.username, cfg.password);
  }
  if (!cfg.client_name.empty()) p.commands.push("CLIENT", "SETNAME", cfg.client_name);
  p.client_id_at = p.commands.size();
  p.commands.push("CLIENT", "ID");
  if (cfg.min_server_version.known()) {
    p.info_at = p.commands.size();
    p.commands.push("INFO", "server");
  }
  return p;
}

/// True for an error reply that says the credentials were refused (or are
/// missing): the user is not known for who it says it is.
inline bool is_auth_refusal(const value& v) {
  const auto code = v.error_code();
  return code == "WRONGPASS" || code == "NOAUTH" ||
         v.text.find("invalid password") != std::string::npos ||
         v.text.find("invalid username-password") != std::string::npos;
}

/// True for an error reply that says the user's ACL lacks a right: `NOPERM`
/// (a command, key or channel), or a script's `redis.call` refused by the
/// ACL (Redis 7 answers `ERR The user executing the script can't run this
/// command or subcommand` / `can't access at least one of the keys`).
/// `seckill::errc::permission_denied`.
inline bool is_permission_refusal(const value& v) {
  return v.error_code() == "NOPERM" ||
         v.text.find("The user executing the script can't") != std::string::npos;
}

/// For a script's command refused by the ACL (`... script: <sha>, on
/// @user_script:<line>.`), the command the script calls on that line of
/// `body` (`"HINCRBY"`); empty when the text or the line does not say.
inline std::string script_command_at(std::string_view refusal, std::string_view body) {
  constexpr std::string_view tag = "@user_script:";
  const std::size_t at = refusal.find(tag);
  if (at == std::string_view::npos) return {};
  std::size_t line = 0;
  for (std::size_t i = at + tag.size();
       i < refusal.size() && refusal[i] >= '0' && refusal[i] <= '9'; ++i)
    line = line * 10 + static_cast<std::size_t>(refusal[i] - '0');
  if (line == 0) return {};
  std::size_t begin = 0;
  for (std::size_t n = 1; n < line; ++n) {
    begin = body.find('\n', begin);
    if (begin == std::string_view::npos) return {};
    ++begin;
  }
  const std::string_view text = body.substr(begin, body.find('\n', begin) - begin);
  constexpr std::string_view call = "call('";
  const std::size_t c = text.find(call);
  if (c == std::string_view::npos) return {};
  const std::size_t name = c + call.size();
  const std::size_t end = text.find('\'', name);
  if (end == std::string_view::npos) return {};
  return std::string(text.substr(name, end - name));
}

/// The name of command `index` of an encoded request (`payload()`: arrays
/// of bulk strings), with its subcommand for the commands that have them
/// (`SCRIPT LOAD`, `CLIENT SETNAME`): what a refusal names. Never an
/// argument beyond those. Empty when the payload has no such command.
inline std::string command_name(std::string_view payload, std::size_t index) {
  std::size_t at = 0;
  auto read_number = [&](char lead) -> long long {
    if (at >= payload.size() || payload[at] != lead) return -1;
    const std::size_t end = payload.find("\r\n", at);
    if (end == std::string_view::npos) return -1;
    long long n = 0;
    for (std::size_t i = at + 1; i < end; ++i) {
      if (payload[i] < '0' || payload[i] > '9') return -1;
      n = n * 10 + (payload[i] - '0');
    }
    at = end + 2;
    return n;
  };
  for (std::size_t i = 0;; ++i) {
    const long long args = read_number('*');
    if (args < 0) return {};
    std::string name;
    for (long long a = 0; a < args; ++a) {
      const long long len = read_number('$');
      if (len < 0 || at + static_cast<std::size_t>(len) + 2 > payload.size()) return {};
      if (i == index && a < 2) {
        const std::string_view arg = payload.substr(at, static_cast<std::size_t>(len));
        if (a == 0) {
          name = std::string(arg);
        } else if (name == "SCRIPT" || name == "CLIENT" || name == "CLUSTER" || name == "CONFIG" ||
                   name == "ACL") {
          name += " " + std::string(arg);
        }
      }
      at += static_cast<std::size_t>(len) + 2;
    }
    if (i == index) return name;
  }
}

/// `redis::errc::unsupported_server` with `message` set when `seen` is known and older
/// than `needed`; success otherwise (nothing needed, or a server that does
/// not tell its version: it cannot be checked).
inline std::error_code check_server_version(const server_version& seen,
                                            const server_version& needed, std::string_view endpoint,
                                            std::string& message) {
  if (!needed.known() || !seen.known() || seen >= needed) return {};
  message = "the server at " + std::string(endpoint) + " is Redis " + to_string(seen) +
            "; at least " + to_string(needed) +
            " is needed (connection_config::min_server_version); refused before the setup commands";
  return make_error_code(errc::unsupported_server);
}

}  // namespace seckill::redis::detail
