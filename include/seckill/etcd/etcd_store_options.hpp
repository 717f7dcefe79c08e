#pragma once
/// @file
/// @brief `etcd_store_options`: the settings of an `etcd_store` (its key
///        prefix, transaction attempts, reaper batch and how long settled
///        orders stay recorded). A plain value; the standard library only.

#include <chrono>
#include <cstddef>
#include <seckill/etcd/error.hpp>
#include <string>

namespace seckill::etcd {

/// @brief Settings of an `etcd_store`.
struct etcd_store_options {
  std::string prefix = "seckill/";
  /// Transaction attempts per operation before `errc::txn_conflict` (other
  /// nodes writing the same SKU make a compare fail; this node's own calls
  /// on one SKU queue up and never conflict with each other).
  unsigned max_attempts = 64;
  std::size_t reap_batch = 32;  ///< holds given back per transaction by the reaper
  /// How long a settled order (committed, rolled back, expired) or a refused
  /// one stays recorded: within it a repeated reserve, commit or rollback
  /// answers as the first one did; after it etcd deletes the record (through
  /// a lease, see the file comment) and the order id is forgotten. Held
  /// orders are never forgotten. Measured by etcd's clock, not the store's
  /// `Clock`. Zero keeps every record forever (no lease; the keyspace grows
  /// with every order). Otherwise in [1 s, 36500 days]: anything else is
  /// `errc::invalid_argument` from the constructor.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
  /// Leases per retention period: records settled or refused within one
  /// `order_retention / retention_buckets` window share a lease, and live at
  /// most that window longer than the retention. In [1, 100].
  unsigned retention_buckets = 8;
};

}  // namespace seckill::etcd
