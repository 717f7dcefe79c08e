#pragma once
/// @file
/// @brief The Redis ACL rights `redis_store` and `stock_feed` need, as the
///        rule text of `ACL SETUSER` (Redis 6.2 or later): give a shop's user
///        exactly these, and nothing else.
///
/// ```
/// ACL SETUSER shop on >secret <store_acl_rules>
/// ```
/// A command the user lacks fails with `seckill::errc::permission_denied`,
/// and `last_error()` names the command the server refused (never the
/// password). The standard library only.

#include <string_view>

namespace seckill::redis {

/// @brief The rights of a `redis_store` (or `pooled_redis_store`) and its
///        `stock_feed`, on Redis 7: one line of `ACL SETUSER` rules. It
///        starts from no rights (`resetkeys resetchannels -@all`), so
///        applying it to an existing user replaces that user's rights
///        (password and on/off are left as they are). `HELLO` and `AUTH`
///        need no right: every user may run them. Add `+select` when
///        `connection_config::database` is not 0.
inline constexpr std::string_view store_acl_rules =
    "resetkeys resetchannels -@all "
    // the connection's health check, every health_check_interval while idle
    "+ping "
    // every store operation but four is one EVALSHA of store_lua, loaded
    // with SCRIPT LOAD on each (re)connect and again after NOSCRIPT
    "+evalsha +script|load "
    // stock and get_policy (HMGET), set_policy (HSET), get_order (HMGET),
    // sent as plain commands
    "+hmget +hset "
    // the commands the script calls: Redis checks each redis.call against
    // the user's ACL (a missing one fails the script with "can't run this
    // command")
    "+time +hget +hincrby +hdel +get +set +persist +pexpire "
    "+zadd +zrem +zrangebyscore +zrangebylex +xadd +publish "
    // and, for a SKU split over shards (sharded_store.hpp), its transfers
    "+hsetnx +hgetall "
    // redis_store_options::replicas_to_wait (WAIT after each write)
    "+wait "
    // stock_feed's subscriber: PSUBSCRIBE of its pattern
    "+psubscribe "
    // every key the store writes or reads: seckill:{<sku>}:...
    "~seckill:* "
    // the stock channels: the script PUBLISHes on seckill:{<sku>}:stock, and
    // stock_feed PSUBSCRIBEs seckill:{*}:stock (a pattern is matched
    // literally against the allowed ones, so it is named as it is sent)
    "&seckill:{*}:stock";

/// @brief `store_acl_rules` plus what `cluster_client` sends of its own
///        (`redis_cluster_store` on Redis Cluster): the slot map read at
///        connect and after a MOVED (`CLUSTER SHARDS`, or `CLUSTER SLOTS`
///        before Redis 7) and `ASKING` before a request sent to a slot being
///        migrated. `READONLY` is not needed: reads go to masters.
inline constexpr std::string_view store_cluster_acl_rules =
    "resetkeys resetchannels -@all "
    "+ping +evalsha +script|load +hmget +hset "
    "+time +hget +hincrby +hdel +get +set +persist +pexpire "
    "+zadd +zrem +zrangebyscore +zrangebylex +xadd +publish +hsetnx +hgetall "
    "+wait +psubscribe ~seckill:* &seckill:{*}:stock "
    // the cluster client's own commands
    "+cluster|shards +cluster|slots +asking";

}  // namespace seckill::redis
