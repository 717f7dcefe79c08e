#include <seckill/obs/metrics.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

using seckill::obs::registry;

namespace unit_metrics {

const seckill::obs::family_snapshot* find(const std::vector<seckill::obs::family_snapshot>& all,
                                          const std::string& name) {
  for (const auto& f : all)
    if (f.name == name) return &f;
  return nullptr;
}

template <class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const seckill::error& e) {
    CHECK(e.code() == seckill::errc::invalid_argument);
    return e.what();
  }
  return "<nothing thrown>";
}

}  // namespace unit_metrics

TEST_SUITE("unit") {
  TEST_CASE("counter adds / ignores negative and NaN increments") {
    registry reg;
    auto c = reg.add_counter("requests_total", "Requests");
    CHECK(c.value() == 0);
    c.inc();
    c.inc(2.5);
    c.inc(-4);
    c.inc(std::numeric_limits<double>::quiet_NaN());
    CHECK(c.value() == doctest::Approx(3.5));
  }

  TEST_CASE("gauge sets / increments and decrements") {
    registry reg;
    auto g = reg.add_gauge("stock_units", "Stock");
    g.set(10);
    g.inc();
    g.dec(3);
    CHECK(g.value() == 8);
    g.set(-1.5);
    CHECK(g.value() == -1.5);
  }

  TEST_CASE("histogram counts into le buckets with +Inf / sum and count") {
    registry reg;
    auto h = reg.add_histogram("latency_seconds", "Latency", {0.1, 0.5, 1});
    for (double v : {0.05, 0.1, 0.2, 0.5, 0.7, 1.0, 3.0}) h.observe(v);
    h.observe(std::numeric_limits<double>::quiet_NaN());
    const auto c = h.cumulative_counts();
    REQUIRE(c.size() == 4);
    CHECK(c[0] == 2);  // 0.05, 0.1 (le is inclusive)
    CHECK(c[1] == 4);  // + 0.2, 0.5
    CHECK(c[2] == 6);  // + 0.7, 1.0
    CHECK(c[3] == 8);  // + 3.0 and NaN in +Inf
    CHECK(h.count() == 8);
    CHECK(std::isnan(h.sum()));
    auto h2 = reg.add_histogram("other_seconds", "Other", {1, 2});
    h2.observe(1.5);
    h2.observe(0.25);
    CHECK(h2.sum() == 1.75);
    CHECK(h2.count() == 2);
  }

  TEST_CASE("label family returns the same child for the same values") {
    registry reg;
    auto& fam = reg.add_counter_family("purchases_total", "Purchases", {"result", "sku"});
    auto a = fam.with({"ok", "s1"});
    auto b = fam.with({"ok", "s1"});
    auto other = fam.with({"ok", "s2"});
    a.inc();
    b.inc();
    CHECK(a.value() == 2);
    CHECK(other.value() == 0);
    const auto snap = reg.collect();
    const auto* f = unit_metrics::find(snap, "purchases_total");
    REQUIRE(f != nullptr);
    CHECK(f->children.size() == 2);
    CHECK(f->children[0].label_values == std::vector<std::string>{"ok", "s1"});
    CHECK(f->children[0].value == 2);
  }

  TEST_CASE("registering the same family twice returns it - conflicts throw") {
    registry reg;
    auto& a = reg.add_counter_family("x_total", "X", {"l"});
    auto& b = reg.add_counter_family("x_total", "X", {"l"});
    CHECK(&a == &b);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_gauge_family("x_total", "X", {"l"});
          }).find("another type") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter_family("x_total", "Y", {"l"});
          }).find("other help") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter_family("x_total", "X", {"m"});
          }).find("other help, labels") != std::string::npos);
    reg.add_histogram_family("lat", "L", {}, {1});
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter("lat_count", "c");
          }).find("clashes") != std::string::npos);
    reg.add_gauge("g_sum", "g");
    CHECK(unit_metrics::thrown_message([&] { reg.add_histogram("g", "h", {1}); }).find("clashes") !=
          std::string::npos);
  }

  TEST_CASE("invalid names / labels / buckets and label values are rejected with the value seen") {
    registry reg;
    CHECK(unit_metrics::thrown_message([&] { reg.add_counter("1abc", "h"); }).find("'1abc'") !=
          std::string::npos);
    CHECK(unit_metrics::thrown_message([&] { reg.add_counter("a-b", "h"); }).find("'a-b'") !=
          std::string::npos);
    CHECK(unit_metrics::thrown_message([&] { reg.add_counter(std::string(), "h"); }).find("''") !=
          std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter_family("a", "h", {"__x"});
          }).find("'__x'") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter_family("a", "h", {"a:b"});
          }).find("'a:b'") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter_family("a", "h", {"l", "l"});
          }).find("twice") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_histogram_family("h", "h", {"le"}, {1});
          }).find("'le'") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_histogram("h", "h", {1, 1});
          }).find("strictly increasing") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_histogram("h", "h", {2, 1});
          }).find("at index 1") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_histogram("h", "h", {1, std::numeric_limits<double>::quiet_NaN()});
          }).find("finite") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_histogram("h", "h", {});
          }).find("at least one") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            reg.add_counter("a", "bad \xff help");
          }).find("UTF-8") != std::string::npos);
    auto& fam = reg.add_counter_family("ok_total", "h", {"a", "b"});
    CHECK(unit_metrics::thrown_message([&] { fam.with({"only-one"}); }).find("2 label(s), saw 1") !=
          std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            fam.with({"x", "\xc3"});
          }).find("UTF-8") != std::string::npos);
    CHECK(unit_metrics::thrown_message([&] {
            fam.with({"x", "\xed\xa0\x80"});
          }).find("UTF-8") != std::string::npos);  // a surrogate
    CHECK(unit_metrics::thrown_message([&] {
            fam.with({"x", "\xc0\xaf"});
          }).find("UTF-8") != std::string::npos);                // overlong
    CHECK_NOTHROW(fam.with({"x", "\xe7\xa7\x92\xe6\x9d\x80"}));  // 秒杀
  }

  TEST_CASE("a trailing +Inf bound is accepted and dropped") {
    registry reg;
    auto h = reg.add_histogram("h", "h", {1, std::numeric_limits<double>::infinity()});
    CHECK(h.bounds() == std::vector<double>{1});
  }

  TEST_CASE("bucket helpers and their rejections") {
    CHECK(seckill::obs::exponential_buckets(1, 2, 4) == std::vector<double>{1, 2, 4, 8});
    CHECK(seckill::obs::linear_buckets(0.5, 0.5, 3) == std::vector<double>{0.5, 1, 1.5});
    CHECK_THROWS_AS(seckill::obs::exponential_buckets(0, 2, 3), seckill::error);
    CHECK_THROWS_AS(seckill::obs::exponential_buckets(1, 1, 3), seckill::error);
    CHECK_THROWS_AS(seckill::obs::linear_buckets(0, 0, 3), seckill::error);
    CHECK_THROWS_AS(seckill::obs::linear_buckets(0, 1, 0), seckill::error);
  }

  TEST_CASE("cells are cache-line padded") {
    static_assert(sizeof(seckill::obs::detail::counter_cells) ==
                  64 * (seckill::obs::detail::exclusive_slots + 1));
    static_assert(sizeof(seckill::obs::detail::gauge_cell) == 64);
    static_assert(sizeof(seckill::obs::counter) == sizeof(void*));
    CHECK(alignof(seckill::obs::detail::counter_cells) == 64);
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("counter and histogram lose no increment across threads") {
    registry reg;
    auto& fam = reg.add_counter_family("hits_total", "Hits", {"t"});
    auto c = fam.with({"all"});
    auto h = reg.add_histogram("obs_seconds", "Obs", {0.5, 1.5});
    auto g = reg.add_gauge("level", "Level");
    constexpr int threads = 4;
    constexpr int per_thread = 100000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i) {
          c.inc();
          h.observe(i % 2 == 0 ? 0.25 : 1.0);
          g.inc();
        }
      });
    }
    // A scrape racing with the writers reads monotone, bounded values.
    double last = 0;
    for (int i = 0; i < 50; ++i) {
      const double v = c.value();
      CHECK(v >= last);
      CHECK(v <= threads * per_thread);
      last = v;
    }
    for (auto& t : pool) t.join();
    CHECK(c.value() == threads * per_thread);
    CHECK(h.count() == static_cast<std::uint64_t>(threads * per_thread));
    CHECK(h.cumulative_counts()[0] == static_cast<std::uint64_t>(threads * per_thread / 2));
    CHECK(h.sum() == doctest::Approx(threads * per_thread / 2 * 1.25));
    CHECK(g.value() == threads * per_thread);
  }

  TEST_CASE("more threads than exclusive slots share the overflow cell without losing counts") {
    registry reg;
    auto c = reg.add_counter("many_total", "Many");
    auto h = reg.add_histogram("many_seconds", "Many", {1});
    constexpr int threads = static_cast<int>(seckill::obs::detail::exclusive_slots) + 8;
    constexpr int per_thread = 2000;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        c.inc();  // takes a slot (or the overflow cell) before anyone exits
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        for (int i = 1; i < per_thread; ++i) {
          c.inc();
          h.observe(2);
        }
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    CHECK(seckill::obs::detail::slots().in_use() >= seckill::obs::detail::exclusive_slots);
    go.store(true);
    for (auto& t : pool) t.join();
    CHECK(c.value() == threads * per_thread);
    CHECK(h.count() == static_cast<std::uint64_t>(threads * (per_thread - 1)));
  }

  TEST_CASE("exiting threads give their slot back and their counts stay") {
    registry reg;
    auto c = reg.add_counter("exits_total", "Exits");
    const unsigned before = seckill::obs::detail::slots().in_use();
    for (int round = 0; round < 100; ++round) {
      std::thread([&] { c.inc(); }).join();
    }
    CHECK(seckill::obs::detail::slots().in_use() == before);
    CHECK(c.value() == 100);
  }

  TEST_CASE("children created while others increment") {
    registry reg;
    auto& fam = reg.add_counter_family("sku_total", "Per SKU", {"sku"});
    std::vector<std::thread> pool;
    for (int t = 0; t < 2; ++t) {
      pool.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) fam.with({"sku-" + std::to_string(i % 50)}).inc();
        (void)t;
      });
    }
    for (int i = 0; i < 20; ++i) (void)reg.collect();
    for (auto& t : pool) t.join();
    const auto snap = reg.collect();
    REQUIRE(snap.size() == 1);
    CHECK(snap[0].children.size() == 50);
    double total = 0;
    for (const auto& ch : snap[0].children) total += ch.value;
    CHECK(total == 400);
  }
}
