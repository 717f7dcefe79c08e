// seckill::gcra_rule, gcra_decide (the arithmetic redis::gcra_limiter's
// script runs, line for line) and gcra_prefilter, on a manual clock.

#include <seckill/clock.hpp>
#include <seckill/limit/gcra.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <utility>

namespace unit_gcra {

using seckill::gcra_decide;
using seckill::gcra_input;
using seckill::gcra_outcome;
using seckill::gcra_prefilter;
using seckill::gcra_rule;
using seckill::manual_clock;
using namespace std::chrono_literals;

// One bucket's reference state, as the script keeps it in its key.
struct ref_bucket {
  gcra_rule rule;
  bool has_state = false;
  std::int64_t empty_at = 0;
};

// Decides `tokens` on `buckets` at `now`, all or nothing, updating them as
// the script would.
gcra_outcome take(std::span<ref_bucket*> buckets, double tokens, std::int64_t now) {
  std::array<gcra_input, 2> in{};
  std::array<std::int64_t, 2> out{};
  for (std::size_t i = 0; i < buckets.size(); ++i)
    in[i] = {buckets[i]->has_state, buckets[i]->empty_at, buckets[i]->rule.cost(tokens),
             buckets[i]->rule.span_us};
  const gcra_outcome o =
      gcra_decide(std::span(in.data(), buckets.size()), now, std::span(out.data(), buckets.size()));
  if (o.admitted) {
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      buckets[i]->has_state = true;
      buckets[i]->empty_at = out[i];
    }
  }
  return o;
}

gcra_outcome take1(ref_bucket& b, std::int64_t now, double tokens = 1) {
  std::array<ref_bucket*, 1> bs{&b};
  return take(bs, tokens, now);
}

TEST_SUITE("unit") {
  TEST_CASE("gcra_rule: integer microseconds per token and per burst") {
    const auto r = gcra_rule::of(10, 5);
    CHECK(r.valid());
    CHECK(r.per_us == 100'000);
    CHECK(r.span_us == 500'000);
    CHECK(r.cost(1) == 100'000);
    CHECK(r.cost(2.5) == 250'000);
    CHECK(r.cost(5) == 500'000);
    CHECK(r.cost(6) == -1);  // above the burst
    CHECK(r.cost(-1) == -1);
    CHECK(r.cost(0) == 0);
    CHECK(gcra_rule::of(3, 1).per_us == 333'333);  // rounded
    CHECK(gcra_rule::of(1e6, 1).per_us == 1);
    CHECK_FALSE(gcra_rule::of(0, 1).valid());
    CHECK_FALSE(gcra_rule::of(2e6, 1).valid());
    CHECK_FALSE(gcra_rule::of(10, 0.5).valid());
    CHECK_FALSE(gcra_rule::of(1e-10, 1).valid());  // more than 2^50 us per token
    CHECK_FALSE(gcra_rule::of(std::numeric_limits<double>::quiet_NaN(), 1).valid());
  }

  TEST_CASE("gcra_decide: the burst at once then one token per period") {
    ref_bucket b{gcra_rule::of(10, 5)};
    const std::int64_t t0 = 1'735'689'600'000'000;  // 2025-01-01 in us
    for (int i = 0; i < 5; ++i) CHECK(take1(b, t0).admitted);
    const auto refused = take1(b, t0);
    CHECK_FALSE(refused.admitted);
    CHECK(refused.refused_by == 0);
    CHECK(refused.retry_after == 100'000);
    CHECK_FALSE(take1(b, t0 + 99'999).admitted);
    CHECK(take1(b, t0 + 99'999).retry_after == 1);
    CHECK(take1(b, t0 + 100'000).admitted);
    CHECK_FALSE(take1(b, t0 + 100'000).admitted);
    // idle for long: full again, never more than the burst
    int admitted = 0;
    while (take1(b, t0 + 60'000'000).admitted) ++admitted;
    CHECK(admitted == 5);
  }

  TEST_CASE(
      "gcra_decide: admits exactly burst plus rate times the window when asked without pause") {
    // The bound the multi-process test checks against the script.
    std::mt19937_64 rng(7);
    for (const auto& [rate, burst] : {std::pair{50.0, 10.0}, {1000.0, 2.0}, {3.0, 7.0}}) {
      ref_bucket b{gcra_rule::of(rate, burst)};
      const std::int64_t t0 = 1'735'689'600'000'000;
      std::int64_t now = t0;
      const std::int64_t window = 2'000'000;
      std::int64_t admitted = 0;
      while (now < t0 + window) {
        if (take1(b, now).admitted) ++admitted;
        now += static_cast<std::int64_t>(rng() % 500);  // requests every < 0.5 ms
      }
      const std::int64_t last = now;  // the first instant not asked at
      INFO("rate " << rate << " burst " << burst);
      const std::int64_t per = b.rule.per_us;
      const std::int64_t most = b.rule.span_us / per + (last - t0) / per;
      CHECK(admitted <= most);
      // A request comes at most 0.5 ms after each token's return, and a burst
      // of 2 or more tokens keeps that lag as credit: at most one is lost.
      CHECK(admitted >= most - 1);
    }
  }

  TEST_CASE("gcra_decide: two buckets all or nothing and a refusal takes from neither") {
    ref_bucket sku{gcra_rule::of(100, 3)};  // 10 ms a token, 3 at once
    ref_bucket user{gcra_rule::of(10, 1)};  // 100 ms a token, 1 at once
    std::array<ref_bucket*, 2> both{&sku, &user};
    const std::int64_t t0 = 1'000'000'000;
    CHECK(take(both, 1, t0).admitted);
    const auto by_user = take(both, 1, t0);
    CHECK_FALSE(by_user.admitted);
    CHECK(by_user.refused_by == 1);
    CHECK(by_user.retry_after == 100'000);
    // the user's refusal took nothing from the SKU: 2 left there
    std::array<ref_bucket*, 1> only_sku{&sku};
    CHECK(take(only_sku, 1, t0).admitted);
    CHECK(take(only_sku, 1, t0).admitted);
    const auto by_sku = take(both, 1, t0 + 100'000 - 5'000);
    CHECK_FALSE(by_sku.admitted);  // the user is still empty: refused by the first that refuses
    CHECK(by_sku.refused_by == 1);
    // the SKU empty, the user full: the SKU refuses and the user keeps its token
    ref_bucket other{gcra_rule::of(10, 1)};
    std::array<ref_bucket*, 2> other_both{&sku, &other};
    CHECK(take(only_sku, 1, t0 + 100'000).admitted);  // spend what the SKU got back
    while (take(only_sku, 1, t0 + 100'000).admitted) {
    }
    const auto sku_refuses = take(other_both, 1, t0 + 100'000);
    CHECK_FALSE(sku_refuses.admitted);
    CHECK(sku_refuses.refused_by == 0);
    CHECK_FALSE(other.has_state);  // nothing written for the user
  }

  TEST_CASE("gcra_decide: agrees with token_bucket on a manual clock") {
    manual_clock clock;
    seckill::token_bucket<manual_clock> bucket(40, 6, clock);
    ref_bucket b{gcra_rule::of(40, 6)};
    std::mt19937_64 rng(11);
    for (int i = 0; i < 20'000; ++i) {
      clock.advance(std::chrono::microseconds(rng() % 20'000));
      const std::int64_t now =
          std::chrono::duration_cast<std::chrono::microseconds>(clock.now().time_since_epoch())
              .count();
      const double tokens = (rng() % 4 == 0) ? 2.0 : 1.0;
      INFO("step " << i);
      REQUIRE(take1(b, now, tokens).admitted == bucket.try_acquire(tokens));
    }
  }

  TEST_CASE("gcra_prefilter: refuses only while the noted instant has not passed") {
    manual_clock clock;
    gcra_prefilter<manual_clock> pre(16, clock);
    CHECK(pre.slots() == 16);
    const auto key = gcra_prefilter<manual_clock>::key_of("sku-1");
    const auto user_key = gcra_prefilter<manual_clock>::key_of("sku-1", "alice");
    CHECK(key != user_key);
    CHECK(key != 0);
    const std::int64_t now = pre.now_us();
    CHECK_FALSE(pre.refuses(key, 100, now));  // unknown
    pre.note(key, now + 500);                 // empty for 500 us more
    CHECK(pre.refuses(key, 100, now));
    CHECK(pre.ready_at(key, 100) == now + 600);
    CHECK_FALSE(pre.refuses(user_key, 100, now));
    clock.advance(std::chrono::microseconds(599));
    CHECK(pre.refuses(key, 100, pre.now_us()));
    clock.advance(std::chrono::microseconds(1));
    CHECK_FALSE(pre.refuses(key, 100, pre.now_us()));
  }

  TEST_CASE("gcra_prefilter: never refuses what the server would admit") {
    // A server (the reference) on its own clock, offset from the client's by
    // an unknown amount; each answer travels a random latency. The client
    // notes what each answer tells; whatever it refuses locally, the server
    // would have refused at that same instant.
    manual_clock local;
    gcra_prefilter<manual_clock> pre(64, local);
    ref_bucket b{gcra_rule::of(200, 4)};  // 5 ms a token
    const auto key = gcra_prefilter<manual_clock>::key_of("hot");
    const std::int64_t offset = 987'654'321;  // server = local + offset
    std::mt19937_64 rng(3);
    int local_refusals = 0;
    for (int i = 0; i < 20'000; ++i) {
      local.advance(std::chrono::microseconds(rng() % 2'000));
      const std::int64_t sent = pre.now_us();
      if (pre.refuses(key, b.rule.per_us, sent)) {
        ++local_refusals;
        // the server at this instant refuses too (checked without taking)
        ref_bucket copy = b;
        REQUIRE_FALSE(take1(copy, sent + offset).admitted);
        continue;
      }
      const std::int64_t latency = static_cast<std::int64_t>(rng() % 1'000);
      const std::int64_t server_now = sent + offset + latency / 2;
      take1(b, server_now);
      const std::int64_t empty_in = std::max(b.empty_at, server_now - b.rule.span_us) - server_now;
      if (empty_in + b.rule.per_us > 0) pre.note(key, sent + empty_in);
      local.advance(std::chrono::microseconds(latency));
    }
    CHECK(local_refusals > 1000);  // it did refuse a good share without a round trip
  }
}

}  // namespace unit_gcra
