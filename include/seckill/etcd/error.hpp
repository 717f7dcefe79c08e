#pragma once
/// @file
/// @brief `seckill::etcd::errc`: what only etcd reports, in the "seckill.etcd"
///        category. Failures every backend shares (timed out, not connected,
///        protocol error, server error, authentication) are `seckill::errc`.

#include <seckill/error.hpp>

#include <system_error>

namespace seckill::etcd {

/// @brief Why an etcd operation did not succeed, beyond the shared codes.
enum class errc {
  no_leader = 1,    ///< the etcd cluster has no leader
  compacted,        ///< the requested revision was compacted away
  lease_not_found,  ///< the lease expired or was revoked
  session_lost,     ///< the session's lease could not be kept alive
  not_leader,       ///< the caller does not hold leadership
  txn_conflict,     ///< a compare-and-swap lost against concurrent writers, every attempt
  worker_lost,      ///< a worker id claim's lease is no longer known alive: issue no id
  no_free_worker,   ///< every (datacenter, worker) pair a claim may take is taken
};

constexpr const char* error_domain_name(errc) noexcept { return "seckill.etcd"; }

constexpr const char* error_message(errc e) noexcept {
  switch (e) {
    case errc::no_leader:
      return "etcd cluster has no leader";
    case errc::compacted:
      return "revision compacted";
    case errc::lease_not_found:
      return "lease not found";
    case errc::session_lost:
      return "session lost";
    case errc::not_leader:
      return "not the leader";
    case errc::txn_conflict:
      return "transaction conflict";
    case errc::worker_lost:
      return "worker id claim lost";
    case errc::no_free_worker:
      return "no free worker id";
  }
  return nullptr;
}

constexpr condition error_condition_of(errc e) noexcept {
  switch (e) {
    case errc::no_leader:
    case errc::session_lost:
    case errc::txn_conflict:
    case errc::worker_lost:
    case errc::no_free_worker:
      return condition::unavailable;
    case errc::compacted:
    case errc::not_leader:
      return condition::conflict;
    case errc::lease_not_found:
      return condition::not_found;
  }
  return condition::server;
}

/// @brief The category of every `seckill::etcd::errc`. Thread-safe.
inline const std::error_category& etcd_category() noexcept {
  return seckill::detail::category_of<errc>();
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), etcd_category()};
}

}  // namespace seckill::etcd

template <>
struct std::is_error_code_enum<seckill::etcd::errc> : std::true_type {};
