// seckill_load's histogram: percentiles against the exact ones on known
// distributions (within the stated precision), merging, and its bounds.
#include "seckill_load/histogram.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace unit_histogram {

using seckill_load::histogram;

// The value of rank ceil(q * n) among the sorted values (HdrHistogram's definition).
std::uint64_t exact(std::vector<std::uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::max<std::size_t>(rank, 1);
  return v[rank - 1];
}

// Each percentile is never below the exact value and at most the precision above it.
void check_percentiles(const histogram& h, const std::vector<std::uint64_t>& values) {
  for (const double q : {0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    CAPTURE(q);
    const auto want = exact(values, q);
    const auto got = h.value_at(q);
    CHECK(got >= want);
    CHECK(static_cast<double>(got - want) <=
          static_cast<double>(want) * h.relative_precision() + 1e-9);
  }
}

}  // namespace unit_histogram

using namespace unit_histogram;

TEST_SUITE("unit") {
  TEST_CASE("histogram: values below 2^(P+1) are exact") {
    histogram h;
    std::vector<std::uint64_t> values;
    for (std::uint64_t v = 1; v <= 1000; ++v) {
      h.record(v);
      values.push_back(v);
    }
    CHECK(h.count() == 1000u);
    CHECK(h.value_at(0.5) == 500u);
    CHECK(h.value_at(0.9) == 900u);
    CHECK(h.value_at(0.99) == 990u);
    CHECK(h.value_at(0.999) == 999u);
    CHECK(h.percentile(99.9) == 999u);
    CHECK(h.value_at(1.0) == 1000u);
    CHECK(h.min() == 1u);
    CHECK(h.max() == 1000u);
    CHECK(h.mean() == doctest::Approx(500.5));
    check_percentiles(h, values);
  }

  TEST_CASE("histogram: uniform and long-tailed distributions are within 1/2^P of exact") {
    for (const int bits : {3, 7, 10, 14}) {
      CAPTURE(bits);
      std::mt19937_64 rng(bits);
      histogram uniform(3'600'000'000ULL, bits);
      histogram lognormal(3'600'000'000ULL, bits);
      std::vector<std::uint64_t> u, l;
      std::uniform_int_distribution<std::uint64_t> flat(0, 10'000'000);
      std::lognormal_distribution<double> tail(7.0, 1.5);  // median ~1 ms in us, long tail
      for (int i = 0; i < 100'000; ++i) {
        u.push_back(flat(rng));
        uniform.record(u.back());
        l.push_back(static_cast<std::uint64_t>(std::min(tail(rng), 3.0e9)));
        lognormal.record(l.back());
      }
      check_percentiles(uniform, u);
      check_percentiles(lognormal, l);
      CHECK(uniform.max() == *std::max_element(u.begin(), u.end()));
      CHECK(lognormal.min() == *std::min_element(l.begin(), l.end()));
    }
  }

  TEST_CASE("histogram: every value lies in its bucket and a bucket is at most 1/2^P wide") {
    const histogram h(1ULL << 40, 10);
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200'000; ++i) {
      const std::uint64_t v = rng() >> (24 + rng() % 40);
      const auto idx = h.index_of(v);
      REQUIRE(idx < h.buckets());
      const auto lo = h.lowest_equivalent(idx);
      const auto hi = h.highest_equivalent(idx);
      REQUIRE(lo <= v);
      REQUIRE(v <= hi);
      REQUIRE(static_cast<double>(hi - lo) <= static_cast<double>(lo) * h.relative_precision());
    }
    // adjacent buckets tile the values without gaps
    for (std::size_t i = 0; i + 1 < h.buckets(); ++i)
      REQUIRE(h.highest_equivalent(i) + 1 == h.lowest_equivalent(i + 1));
  }

  TEST_CASE("histogram: merging halves equals recording everything in one") {
    histogram all, a, b;
    std::mt19937_64 rng(11);
    std::exponential_distribution<double> gaps(1.0 / 2000.0);
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 50'000; ++i) {
      const auto v = static_cast<std::uint64_t>(gaps(rng));
      values.push_back(v);
      all.record(v);
      (i % 3 == 0 ? a : b).record(v);
    }
    histogram merged;
    merged.merge(a);
    merged.merge(b);
    CHECK(merged.count() == all.count());
    CHECK(merged.min() == all.min());
    CHECK(merged.max() == all.max());
    CHECK(merged.mean() == doctest::Approx(all.mean()));
    for (const double q : {0.1, 0.5, 0.9, 0.99, 0.999, 1.0})
      CHECK(merged.value_at(q) == all.value_at(q));
    check_percentiles(merged, values);
    // merging an empty one changes nothing
    merged.merge(histogram{});
    CHECK(merged.value_at(0.99) == all.value_at(0.99));
  }

  TEST_CASE("histogram: merging another layout is refused with both layouts named") {
    histogram h;
    const histogram coarse(3'600'000'000ULL, 5);
    const histogram shorter(1'000'000, 10);
    try {
      h.merge(coarse);
      FAIL("merged a histogram of another precision");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()) ==
            "cannot merge a histogram of highest 3600000000 and 5 precision bits into one of "
            "highest 3600000000 and 10 precision bits");
    }
    CHECK_THROWS_AS(h.merge(shorter), std::invalid_argument);
    CHECK(h.count() == 0u);
  }

  TEST_CASE("histogram: bounds - empty - zero - above the highest value - bad layouts") {
    histogram h(1'000'000, 10);
    CHECK(h.value_at(0.5) == 0u);
    CHECK(h.min() == 0u);
    CHECK(h.max() == 0u);
    CHECK(h.mean() == 0.0);
    h.record(0);
    CHECK(h.value_at(1.0) == 0u);
    h.record(5'000'000, 3);  // above the highest: counted, as the highest
    CHECK(h.count() == 4u);
    CHECK(h.saturated() == 3u);
    CHECK(h.max() == 1'000'000u);
    CHECK(h.value_at(1.0) == 1'000'000u);
    CHECK(h.value_at(-1) == 0u);  // clamped to [0, 1]
    CHECK(h.value_at(7) == 1'000'000u);
    h.record(42, 0);  // zero occurrences: nothing
    CHECK(h.count() == 4u);
    h.reset();
    CHECK(h.count() == 0u);
    CHECK(h.saturated() == 0u);
    CHECK(h.value_at(0.5) == 0u);

    // fixed memory: microseconds up to an hour at 0.1% in 23221 buckets (181 KiB)
    const histogram standard;
    CHECK(standard.buckets() == 23'221u);
    CHECK(standard.relative_precision() == doctest::Approx(1.0 / 1024));

    CHECK_THROWS_WITH_AS(histogram(1000, 0), "histogram precision_bits 0 out of range [1, 16]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(histogram(1000, 17), "histogram precision_bits 17 out of range [1, 16]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(histogram(1), "histogram highest value 1 out of range [2, 2^63)",
                         std::invalid_argument);
  }
}
