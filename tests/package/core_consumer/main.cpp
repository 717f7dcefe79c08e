// A consumer of seckill::core: admission, ids, pools and the purchase state
// machine with nothing but the standard library.
#include <seckill/clock.hpp>
#include <seckill/error.hpp>
#include <seckill/id/snowflake.hpp>
#include <seckill/limit/circuit_breaker.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/pool/object_pool.hpp>
#include <seckill/purchase/state_machine.hpp>
#include <seckill/version.hpp>

#include <chrono>
#include <cstdio>

namespace {
struct request {
  int sku = 0;
  void reset() { sku = 0; }
};
}  // namespace

int main() {
  seckill::manual_clock clock;
  seckill::token_bucket<seckill::manual_clock> bucket(10, 1, clock);
  if (!bucket.try_acquire() || bucket.try_acquire()) return 1;
  clock.advance(std::chrono::milliseconds(100));
  if (!bucket.try_acquire()) return 2;

  seckill::snowflake<> ids(1, 2);
  const auto a = ids.next();
  const auto b = ids.next();
  if (b <= a || seckill::snowflake<>::decompose(a).worker != 2) return 3;

  seckill::object_pool<request> pool(2);
  auto r = pool.acquire();
  r->sku = 7;

  using seckill::purchase_event;
  using seckill::purchase_state;
  if (seckill::next_state(purchase_state::idle, purchase_event::reserve_ok) !=
      purchase_state::prepared)
    return 4;

  const std::error_code ec = seckill::errc::sold_out;
  if (ec.message() != "sold out") return 5;
  std::printf("seckill %s: core alone\n", seckill::version.string);
  return 0;
}
