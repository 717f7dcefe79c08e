#include <seckill/redis/cluster_client.hpp>
#include <seckill/redis/cluster_slots.hpp>
#include <seckill/redis/cluster_url.hpp>

#include <doctest/doctest.h>

#include <string>
#include <system_error>

using seckill::redis::cluster_config;
using seckill::redis::crc16;
using seckill::redis::key_slot;
using seckill::redis::parse_cluster_shards;
using seckill::redis::parse_cluster_slots;
using seckill::redis::parse_redirection;
using seckill::redis::redirection;
using seckill::redis::request;
using seckill::redis::route_of;
namespace make = seckill::redis::make;

namespace unit_cluster {

seckill::redis::value array(std::vector<seckill::redis::value> elements,
                            seckill::redis::resp_type type = seckill::redis::resp_type::array) {
  seckill::redis::value v;
  v.type = type;
  v.elements = std::move(elements);
  return v;
}

}  // namespace unit_cluster

using namespace unit_cluster;

TEST_SUITE("unit") {
  TEST_CASE("cluster slots: crc16 and key_slot match Redis Cluster") {
    CHECK(crc16("123456789") == 0x31C3);
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("bar") == 5061);
    // a hash tag: only what is between the first { and the next }
    CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
    CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
    CHECK(key_slot("seckill:{tea}:stock") == key_slot("seckill:{tea}:order:42"));
    // an empty tag hashes the whole key; the first } after the first { closes it
    CHECK(key_slot("foo{}{bar}") == static_cast<std::uint16_t>(crc16("foo{}{bar}") % 16384));
    CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));
    CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
    CHECK(key_slot("") == 0);
  }

  TEST_CASE("cluster slots: a request goes to the slot of its keys") {
    std::error_code ec;
    request eval;
    eval.push("EVALSHA", "0123", 2, "seckill:{tea}:stock", "seckill:{tea}:holds", "arg");
    auto route = route_of(eval, ec);
    CHECK(!ec);
    REQUIRE(route.slot);
    CHECK(*route.slot == key_slot("tea"));
    CHECK(route.keyed_commands == 1);

    request keyless;
    keyless.push("SCRIPT", "LOAD", "return 1").push("PING").push("WAIT", 1, 100);
    route = route_of(keyless, ec);
    CHECK(!ec);
    CHECK(!route.slot);
    CHECK(route.keyed_commands == 0);

    request no_keys;
    no_keys.push("EVAL", "return 1", 0);
    CHECK(!route_of(no_keys, ec).slot);

    request mixed;  // SCRIPT LOAD, then the script, then WAIT: the script's slot
    mixed.push("SCRIPT", "LOAD", "x")
        .push("hmget", "seckill:{tea}:stock", "remaining")
        .push("WAIT", 1, 5);
    route = route_of(mixed, ec);
    CHECK(!ec);
    REQUIRE(route.slot);
    CHECK(*route.slot == key_slot("tea"));

    // which commands name a key: only their answers decide a resend
    CHECK(!route.keyed(0));
    CHECK(route.keyed(1));
    CHECK(!route.keyed(2));
    CHECK(!route.keyed_beyond_mask);

    request scan;  // a node's own keyspace: no key, any master
    scan.push("SCAN", 0, "MATCH", "seckill:*").push("KEYS", "x*");
    route = route_of(scan, ec);
    CHECK(!ec);
    CHECK(!route.slot);

    request streams;
    streams.push("XREAD", "COUNT", 10, "STREAMS", "seckill:{tea}:orders", "0");
    route = route_of(streams, ec);
    REQUIRE(route.slot);
    CHECK(*route.slot == key_slot("tea"));

    request spanning;
    spanning.push("GET", "foo").push("GET", "bar");
    route_of(spanning, ec);
    CHECK(ec == seckill::redis::errc::cross_slot);
    CHECK(ec == seckill::condition::invalid_input);

    request same;
    same.push("GET", "{bar}1").push("SET", "bar{bar}", "x");
    route = route_of(same, ec);
    CHECK(!ec);
    CHECK(route.keyed_commands == 2);
  }

  TEST_CASE("cluster slots: MOVED and ASK are read and anything else is not") {
    auto moved = parse_redirection(make::error("MOVED 3999 127.0.0.1:6381"));
    REQUIRE(moved);
    CHECK(moved->type == redirection::kind::moved);
    CHECK(moved->slot == 3999);
    CHECK(moved->host == "127.0.0.1");
    CHECK(moved->port == "6381");
    auto ask = parse_redirection(make::error("ASK 16383 ::1:7000"));
    REQUIRE(ask);
    CHECK(ask->type == redirection::kind::ask);
    CHECK(ask->host == "::1");
    CHECK(ask->port == "7000");
    auto unknown_host = parse_redirection(make::error("MOVED 1 :7001"));
    REQUIRE(unknown_host);
    CHECK(unknown_host->host.empty());
    CHECK(!parse_redirection(make::error("MOVED 16384 127.0.0.1:1")));  // no such slot
    CHECK(!parse_redirection(make::error("MOVED x 127.0.0.1:1")));
    CHECK(!parse_redirection(make::error("MOVED 12 127.0.0.1")));
    CHECK(!parse_redirection(make::error("ERR MOVED 12 h:1")));
    CHECK(!parse_redirection(make::bulk("MOVED 12 h:1")));
    CHECK(seckill::redis::retry_later(
        make::error("TRYAGAIN Multiple keys request during rehashing")));
    CHECK(seckill::redis::retry_later(make::error("CLUSTERDOWN The cluster is down")));
    CHECK(!seckill::redis::retry_later(make::error("ERR unknown command")));
  }

  TEST_CASE("cluster slots: the map is read from CLUSTER SHARDS and CLUSTER SLOTS") {
    using seckill::redis::resp_type;
    auto node = [](const char* role, const char* health, std::int64_t port) {
      return array({make::bulk("id"), make::bulk(std::string(role) + "-id"), make::bulk("port"),
                    make::integer(port), make::bulk("ip"), make::bulk("127.0.0.1"),
                    make::bulk("role"), make::bulk(role), make::bulk("health"), make::bulk(health)},
                   resp_type::map);
    };
    auto shard = [&](std::int64_t a, std::int64_t b, std::vector<seckill::redis::value> nodes) {
      return array({make::bulk("slots"), array({make::integer(a), make::integer(b)}),
                    make::bulk("nodes"), array(std::move(nodes))},
                   resp_type::map);
    };
    std::error_code ec;
    std::string why;
    auto map = parse_cluster_shards(
        array({shard(0, 8191, {node("replica", "online", 7003), node("master", "online", 7000)}),
               shard(8192, 16383, {node("master", "online", 7001)}),
               array({make::bulk("slots"), array({}), make::bulk("nodes"), array({})},
                     resp_type::map)}),  // a shard with no slot: left out
        "127.0.0.1", ec, &why);
    REQUIRE_MESSAGE(!ec, why);
    REQUIRE(map.shards.size() == 2);
    CHECK(map.shards[0].port == "7000");
    CHECK(map.shards[0].id == "master-id");
    CHECK(map.uncovered() == 0);

    // a shard whose master failed is left out: its slots are uncovered
    map = parse_cluster_shards(array({shard(0, 8191, {node("master", "fail", 7000)}),
                                      shard(8192, 16383, {node("master", "online", 7001)})}),
                               "127.0.0.1", ec);
    CHECK(!ec);
    CHECK(map.uncovered() == 8192);

    parse_cluster_shards(make::bulk("no"), "h", ec, &why);
    CHECK(ec == seckill::errc::protocol_error);
    CHECK(why.find("CLUSTER SHARDS") != std::string::npos);
    parse_cluster_shards(array({shard(0, 20000, {node("master", "online", 1)})}), "h", ec);
    CHECK(ec == seckill::errc::protocol_error);

    auto slots = parse_cluster_slots(
        array({array({make::integer(0), make::integer(5460),
                      array({make::bulk("127.0.0.1"), make::integer(7000), make::bulk("a")}),
                      array({make::bulk("127.0.0.1"), make::integer(7003), make::bulk("d")})}),
               array({make::integer(5461), make::integer(16383),
                      array({make::bulk(""), make::integer(7001), make::bulk("b")})}),
               array({make::integer(100), make::integer(100),  // a second range of 7000
                      array({make::bulk("127.0.0.1"), make::integer(7000), make::bulk("a")})})}),
        "10.0.0.9", ec, &why);
    REQUIRE_MESSAGE(!ec, why);
    REQUIRE(slots.shards.size() == 2);
    CHECK(slots.shards[0].ranges.size() == 2);
    CHECK(slots.shards[1].host == "10.0.0.9");  // no address of its own: the node asked
    parse_cluster_slots(array({array({make::integer(0)})}), "h", ec);
    CHECK(ec == seckill::errc::protocol_error);
  }

  TEST_CASE("cluster client: a bad configuration is refused with the field named") {
    cluster_config cfg;
    std::string message;
    CHECK(!validate(cfg, &message));
    cfg.max_redirects = 0;
    CHECK(validate(cfg, &message) == seckill::errc::invalid_argument);
    CHECK(message.find("max_redirects") != std::string::npos);
    cfg.max_redirects = 4;
    cfg.retry_initial_delay = std::chrono::milliseconds(0);
    CHECK(validate(cfg, &message) == seckill::errc::invalid_argument);
    CHECK(message.find("retry_initial_delay") != std::string::npos);
    cfg.retry_initial_delay = std::chrono::milliseconds(5);
    cfg.seeds.push_back({"", "7000"});
    CHECK(validate(cfg, &message) == seckill::errc::invalid_argument);
    CHECK(message.find("seed") != std::string::npos);
    cfg.seeds.clear();
    cfg.node.connect_timeout = std::chrono::milliseconds(0);
    CHECK(validate(cfg, &message) == seckill::errc::invalid_argument);
    CHECK(message.find("connect_timeout") != std::string::npos);
    boost::asio::io_context io;
    CHECK_THROWS_AS(seckill::redis::cluster_client(io.get_executor(), cfg), seckill::error);
  }

  TEST_CASE("cluster url: seeds credentials and mistakes") {
    cluster_config cfg;
    std::string why;
    REQUIRE(!seckill::redis::parse_cluster_url(
        "redis+cluster://alice:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002,cache", cfg, &why));
    REQUIRE(cfg.seeds.size() == 4);
    CHECK(cfg.seeds[0].host == "10.0.0.1");
    CHECK(cfg.seeds[0].port == "7000");
    CHECK(cfg.seeds[2].host == "::1");
    CHECK(cfg.seeds[3].port == "6379");
    CHECK(cfg.node.username == "alice");
    CHECK(cfg.node.password == "p@ss");
    CHECK(seckill::redis::is_cluster_url("REDIS+CLUSTER://h:1"));
    CHECK(!seckill::redis::is_cluster_url("redis://h:1"));

    const cluster_config before = cfg;
    for (const char* bad : {"redis://h:1", "redis+cluster://", "redis+cluster://h:1,,h:2",
                            "redis+cluster://h:1/2", "redis+cluster://:secret@h:99999"}) {
      CAPTURE(bad);
      why.clear();
      CHECK(seckill::redis::parse_cluster_url(bad, cfg, &why) == seckill::errc::invalid_argument);
      CHECK(!why.empty());
      CHECK(why.find("secret") == std::string::npos);
      CHECK(cfg.seeds.size() == before.seeds.size());  // left as it was
    }
  }
}
