// The pure parts of the store with split SKUs (redis/sharded_store.hpp): the
// home shard of a buyer, the options' checks, shard names, and the decoding
// of the transfer scripts' replies.

#include <seckill/redis/sharded_store.hpp>

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

using seckill::redis::sharded_redis_store;
using seckill::redis::split_options;
using seckill::redis::split_options_problem;
using seckill::redis::value;
using seckill::redis::detail::home_shard;

namespace unit_sharded {

value reply_bulk(std::string s) {
  value v;
  v.type = seckill::redis::resp_type::bulk_string;
  v.text = std::move(s);
  return v;
}
value reply_array(std::vector<value> elements) {
  value v;
  v.type = seckill::redis::resp_type::array;
  v.elements = std::move(elements);
  return v;
}
value reply_integer(std::int64_t n) {
  value v;
  v.type = seckill::redis::resp_type::integer;
  v.integer = n;
  return v;
}

}  // namespace unit_sharded

using namespace unit_sharded;

TEST_SUITE("unit") {
  TEST_CASE("sharded store: a user's home shard is the same in every process and spreads users") {
    // Fixed values: processes built from other versions must agree on them.
    CHECK(home_shard("alice", 0, 4) == home_shard("alice", 99, 4));  // the user decides
    CHECK(home_shard("alice", 0, 4) == 3);
    CHECK(home_shard("bob", 0, 4) == 0);
    CHECK(home_shard("", 7, 4) == home_shard("", 7, 4));
    CHECK(home_shard("", 1, 1) == 0);
    std::map<int, int> users, orders;
    for (int i = 0; i < 4000; ++i) {
      ++users[home_shard("user-" + std::to_string(i), 0, 4)];
      // Snowflake-like ids: consecutive, differing in their low bits only
      ++orders[home_shard("", (std::int64_t{1} << 40) + i, 4)];
    }
    for (int s = 0; s < 4; ++s) {
      CAPTURE(s);
      CHECK(users[s] > 800);
      CHECK(orders[s] > 800);
    }
  }

  TEST_CASE("sharded store: split_options are refused with the value named") {
    CHECK(split_options_problem(split_options{}).empty());
    CHECK(split_options_problem({.default_shards = 64, .shards = {{"a", 1}, {"b", 64}}}).empty());
    CHECK(split_options_problem({.default_shards = 0, .shards = {}}) ==
          "default_shards 0 out of range [1, 64]");
    CHECK(split_options_problem({.default_shards = -3, .shards = {}}) ==
          "default_shards -3 out of range [1, 64]");
    CHECK(split_options_problem({.default_shards = 1, .shards = {{"hot", 0}}}) ==
          "shards of sku 'hot': 0 out of range [1, 64]");
    CHECK(split_options_problem({.default_shards = 1, .shards = {{"hot", 65}}}) ==
          "shards of sku 'hot': 65 out of range [1, 64]");
    CHECK(split_options_problem({.default_shards = 1, .shards = {{"", 2}}}) ==
          "shards: an empty sku");
    CHECK(split_options_problem({.default_shards = 1, .shards = {{"a{b}", 2}}}) ==
          "shards: sku 'a{b}' contains '{', '}' or '#'");
    CHECK(split_options_problem({.default_shards = 1, .shards = {{"a#2", 2}}}) ==
          "shards: sku 'a#2' contains '{', '}' or '#'");
  }

  TEST_CASE("sharded store: shard names and the shard count of each sku") {
    CHECK(sharded_redis_store::shard_sku("rice", 0, 1) == "rice");
    CHECK(sharded_redis_store::shard_sku("rice", 0, 4) == "rice#0");
    CHECK(sharded_redis_store::shard_sku("rice", 3, 4) == "rice#3");
  }

  TEST_CASE(
      "sharded store: the transfer scripts' replies decode and bad ones are protocol errors") {
    using namespace seckill::redis::detail;
    std::error_code ec;
    std::string message;
    CHECK(decode_given(reply_array({reply_integer(5), reply_integer(3)}), ec, message) == 5);
    CHECK(!ec);
    CHECK(decode_given(reply_integer(5), ec, message) == 0);
    CHECK(ec == seckill::errc::protocol_error);

    ec = {};
    const auto kept = decode_transfers(reply_array({reply_bulk("77.1"), reply_bulk("3 0"),
                                                    reply_bulk("77.2"), reply_bulk("12 5")}),
                                       ec, message);
    CHECK(!ec);
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].id == "77.1");
    CHECK(kept[0].units == 3);
    CHECK(kept[0].to == 0);
    CHECK(kept[1].units == 12);
    CHECK(kept[1].to == 5);
    for (const std::string bad : {"3", "3 ", "x 1", "3 1 2", "0 1", "-2 1", "3 -1", ""}) {
      CAPTURE(bad);
      ec = {};
      CHECK(
          decode_transfers(reply_array({reply_bulk("id"), reply_bulk(bad)}), ec, message).empty());
      CHECK(ec == seckill::errc::protocol_error);
    }
    ec = {};
    CHECK(decode_transfers(reply_array({reply_bulk("id")}), ec, message).empty());  // odd count
    CHECK(ec == seckill::errc::protocol_error);

    ec = {};
    const auto level = decode_shard_level(
        reply_array({reply_bulk("4"), reply_bulk("1"), reply_bulk("2"), reply_bulk("7"), value{}}),
        ec, message);
    CHECK(!ec);
    CHECK(level.known);
    CHECK(level.level.remaining == 4);
    CHECK(level.sent == 7);
    CHECK(level.received == 0);
    const auto unknown =
        decode_shard_level(reply_array({value{}, value{}, value{}, value{}, value{}}), ec, message);
    CHECK(!unknown.known);
    CHECK(decode_shard_level(reply_array({reply_bulk("4")}), ec, message).level.remaining == 0);
    CHECK(ec == seckill::errc::protocol_error);
  }
}
