#pragma once
// seckill_load's request mix: which user buys which SKU with which request
// id, and which requests resend an earlier one (to exercise idempotency).

#include <fmt/format.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

namespace seckill_load {

/// One POST /purchase the run will send.
struct planned_request {
  std::uint64_t key = 0;  ///< the (user, request_id) it carries: the index of its first sending
  bool replay = false;    ///< true: it resends key's request
  std::uint64_t user = 0;
  std::uint64_t sku = 0;
  std::string body;  ///< the JSON body
};

/// @brief The purchases of a run. Each new request gets the next request id
///        ("<run_id>-<key>") and the next user (user-0, user-1, ... then
///        around again), and a SKU drawn from the key and the seed; a share
///        of the requests (`repeat_share`) instead resends a uniformly drawn
///        earlier (user, request_id), body and all.
///
/// A key's user and SKU are functions of the key and the seed, so a replay
/// needs no memory of what was sent.
///
/// Thread-safety: none (one owner). Cost: a random draw or two and one
/// formatted body per request; no other allocation.
class workload {
 public:
  struct settings {
    std::uint64_t users = 1'000'000;
    std::uint64_t skus = 1;
    std::int64_t quantity = 1;
    double repeat_share = 0;
    std::string run_id = "run";
    std::uint64_t seed = 1;
  };

  explicit workload(settings s) : s_(std::move(s)), rng_(s_.seed ^ 0x5eC4111ULL) {
    if (s_.users == 0 || s_.skus == 0 || s_.quantity < 1 || !(s_.repeat_share >= 0) ||
        !(s_.repeat_share < 1))
      throw std::invalid_argument(fmt::format(
          "workload: users {} and skus {} must be > 0, quantity {} >= 1, repeat share {} in [0, 1)",
          s_.users, s_.skus, s_.quantity, s_.repeat_share));
  }

  planned_request next() {
    planned_request r;
    if (keys_ > 0 && s_.repeat_share > 0 && uniform() < s_.repeat_share) {
      r.replay = true;
      r.key = static_cast<std::uint64_t>(uniform() * static_cast<double>(keys_));
      if (r.key >= keys_) r.key = keys_ - 1;
      ++replays_;
    } else {
      r.key = keys_++;
    }
    r.user = user_of(r.key);
    r.sku = sku_of(r.key);
    r.body = fmt::format(R"({{"sku":"{}","quantity":{},"user":"{}","request_id":"{}"}})",
                         sku_name(r.sku), s_.quantity, user_name(r.user), request_id(r.key));
    return r;
  }

  /// How many distinct (user, request_id) pairs have been handed out.
  [[nodiscard]] std::uint64_t keys() const noexcept { return keys_; }
  [[nodiscard]] std::uint64_t replays() const noexcept { return replays_; }
  [[nodiscard]] const settings& config() const noexcept { return s_; }

  [[nodiscard]] std::uint64_t user_of(std::uint64_t key) const noexcept { return key % s_.users; }
  [[nodiscard]] std::uint64_t sku_of(std::uint64_t key) const noexcept {
    return s_.skus == 1 ? 0 : mix(key ^ (s_.seed * 0x9E3779B97F4A7C15ULL)) % s_.skus;
  }
  [[nodiscard]] std::string request_id(std::uint64_t key) const {
    return fmt::format("{}-{}", s_.run_id, key);
  }
  static std::string user_name(std::uint64_t i) { return fmt::format("user-{}", i); }
  static std::string sku_name(std::uint64_t i) { return fmt::format("sku-{}", i); }

 private:
  // splitmix64's finaliser: a well-spread function of the key.
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() noexcept { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

  settings s_;
  std::mt19937_64 rng_;
  std::uint64_t keys_ = 0;
  std::uint64_t replays_ = 0;
};

}  // namespace seckill_load
