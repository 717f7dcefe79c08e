// The ACL rule lines of redis/acl.hpp, and how a refusal names the command:
// the handshake's commands by name (never an argument but a subcommand), a
// script's command from the line the server names.

#include <seckill/redis/acl.hpp>
#include <seckill/redis/detail/handshake.hpp>
#include <seckill/redis/detail/store_script.hpp>
#include <seckill/redis/resp.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace unit_acl {

using namespace seckill::redis;

std::vector<std::string> words(std::string_view rules) {
  std::vector<std::string> out;
  std::istringstream in{std::string(rules)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

TEST_SUITE("unit") {
  TEST_CASE("redis acl: the cluster rules are the store's plus the cluster client's commands") {
    const std::string expected =
        std::string(store_acl_rules) + " +cluster|shards +cluster|slots +asking";
    CHECK(words(store_cluster_acl_rules) == words(expected));
    CHECK(words(store_acl_rules).front() == "resetkeys");
    // every command the store script calls is granted
    const std::string body(store_lua);
    for (std::size_t at = 0; (at = body.find("redis.call('", at)) != std::string::npos;) {
      at += 12;
      std::string name = body.substr(at, body.find('\'', at) - at);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      CAPTURE(name);
      const auto all = words(store_acl_rules);
      CHECK(std::find(all.begin(), all.end(), "+" + name) != all.end());
    }
  }

  TEST_CASE("redis acl: a refused command is named and its arguments are not") {
    request req;
    req.push("SELECT", 3).push("SCRIPT", "LOAD", "return 1").push("AUTH", "alice", "s3cret");
    req.push("PSUBSCRIBE", "seckill:{*}:stock");
    CHECK(detail::command_name(req.payload(), 0) == "SELECT");
    CHECK(detail::command_name(req.payload(), 1) == "SCRIPT LOAD");
    CHECK(detail::command_name(req.payload(), 2) == "AUTH");
    CHECK(detail::command_name(req.payload(), 3) == "PSUBSCRIBE");
    CHECK(detail::command_name(req.payload(), 4).empty());
    CHECK(detail::command_name("garbage", 0).empty());

    const std::string body = "local a = 1\nredis.call('HINCRBY', KEYS[1], 'x', 1)\nreturn a";
    CHECK(detail::script_command_at(
              "ERR The user executing the script can't run this command or subcommand "
              "script: 0123, on @user_script:2.",
              body) == "HINCRBY");
    CHECK(detail::script_command_at("ERR ... on @user_script:3.", body).empty());
    CHECK(detail::script_command_at("ERR no line", body).empty());

    value noperm;
    noperm.type = resp_type::simple_error;
    noperm.text = "NOPERM this user has no permissions to run the 'evalsha' command";
    CHECK(detail::is_permission_refusal(noperm));
    CHECK_FALSE(detail::is_auth_refusal(noperm));
    value wrongpass;
    wrongpass.type = resp_type::simple_error;
    wrongpass.text = "WRONGPASS invalid username-password pair or user is disabled.";
    CHECK(detail::is_auth_refusal(wrongpass));
    CHECK_FALSE(detail::is_permission_refusal(wrongpass));
  }
}

}  // namespace unit_acl
