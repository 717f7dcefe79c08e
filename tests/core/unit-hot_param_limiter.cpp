#include <seckill/limit/hot_param_limiter.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace unit_hot_param_limiter {

using limiter = seckill::hot_param_limiter<seckill::manual_clock>;

seckill::hot_param_options options(double rate, double burst, std::size_t capacity = 64) {
  seckill::hot_param_options o;
  o.rate_per_second = rate;
  o.burst = burst;
  o.capacity = capacity;
  return o;
}

// The message of the seckill::error that `f` throws, checking the code.
template <class F>
std::string invalid_message(F&& f) {
  try {
    f();
  } catch (const seckill::error& e) {
    CHECK(e.code() == seckill::errc::invalid_argument);
    return e.what();
  }
  FAIL("no seckill::error thrown");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The slots a value may occupy in a table of `capacity` (as the limiter picks them).
std::set<std::size_t> window_of(const std::string& value, std::size_t capacity) {
  const std::uint64_t h = seckill::detail::hot_hash(value);
  const auto home = static_cast<std::size_t>(((h >> 32) * capacity) >> 32);
  std::set<std::size_t> w;
  for (std::size_t j = 0; j < limiter::probes; ++j) w.insert((home + j) % capacity);
  return w;
}

}  // namespace unit_hot_param_limiter

using namespace unit_hot_param_limiter;

TEST_SUITE("unit") {
  TEST_CASE("hot_param_limiter: a tracked value is admitted exactly as a token_bucket") {
    seckill::manual_clock clock;
    limiter l{options(100, 10), clock};
    seckill::token_bucket<seckill::manual_clock> reference{100, 10, clock};
    int admitted = 0;
    int mismatches = 0;
    const std::array<double, 5> counts{1, 1, 0.5, 2.5, 1};
    for (int step = 0; step <= 10'000; ++step) {
      const double n = counts[static_cast<std::size_t>(step) % counts.size()];
      const bool a = l.try_acquire("user-1", n);
      const bool b = reference.try_acquire(n);
      if (a != b) ++mismatches;
      if (a) ++admitted;
      clock.advance(1ms);
    }
    CHECK(mismatches == 0);
    CHECK(admitted > 1000);
    const auto s = l.stats();
    CHECK(s.admitted == static_cast<std::uint64_t>(admitted));
    CHECK(s.throttled == static_cast<std::uint64_t>(10'001 - admitted));
    CHECK(s.evicted == 0);
  }

  TEST_CASE("hot_param_limiter: rate 100/s burst 10 polled every ms for 10 s admits 1010") {
    seckill::manual_clock clock;
    limiter l{options(100, 10), clock};
    int admitted = 0;
    for (int ms = 0; ms <= 10'000; ++ms) {
      if (l.try_acquire("sku-42")) ++admitted;
      clock.advance(1ms);
    }
    CHECK(admitted == 1010);
  }

  TEST_CASE("hot_param_limiter: exceptions have their own rate and burst - set and erased live") {
    seckill::manual_clock clock;
    auto o = options(10, 2);
    o.exceptions = {{"vip", 1000, 100}, {"bot", 1, 1}};
    limiter l{o, clock};
    auto drain = [&](const std::string& v) {
      int n = 0;
      while (l.try_acquire(v)) ++n;
      return n;
    };
    CHECK(drain("vip") == 100);
    CHECK(drain("bot") == 1);
    CHECK(drain("someone") == 2);
    clock.advance(100ms);
    CHECK(drain("vip") == 100);  // 1000/s for 100 ms
    CHECK(drain("bot") == 0);    // 1/s: nothing yet
    CHECK(drain("someone") == 1);
    CHECK(l.tracked("vip"));

    l.set_exception("someone", 50, 5);  // a fresh bucket at the new rate
    CHECK(drain("someone") == 5);
    l.set_exception("bot", 2, 3);
    CHECK(drain("bot") == 3);
    CHECK(l.erase_exception("vip"));
    CHECK_FALSE(l.erase_exception("vip"));
    CHECK(drain("vip") == 2);  // limited like anyone again
    clock.advance(1s);
    CHECK(drain("bot") == 2);
    CHECK(drain("someone") == 5);
  }

  TEST_CASE("hot_param_limiter: set_exception refuses bad values and a full table") {
    seckill::manual_clock clock;
    auto o = options(10, 2);
    o.max_exceptions = 2;
    limiter l{o, clock};
    auto m = invalid_message([&] { l.set_exception("x", 0, 1); });
    CHECK(contains(m, "exception 'x' rate_per_second 0"));
    m = invalid_message([&] { l.set_exception("y", 1, 0.5); });
    CHECK(contains(m, "burst 0.5"));
    m = invalid_message([&] { l.set_exception(std::string(65, 'z'), 1, 1); });
    CHECK(contains(m, "65 bytes"));
    l.set_exception("a", 1, 1);
    l.set_exception("b", 1, 1);
    l.set_exception("a", 5, 5);  // an update, not a third
    m = invalid_message([&] { l.set_exception("c", 1, 1); });
    CHECK(contains(m, "max_exceptions 2"));
    CHECK(contains(m, "'c'"));
    CHECK(l.erase_exception("b"));
    l.set_exception("c", 1, 1);  // the freed entry is reused
    CHECK(l.tracked("c"));
    CHECK_FALSE(l.tracked("b"));
  }

  TEST_CASE("hot_param_limiter: under capacity pressure the least recently used value goes") {
    seckill::manual_clock clock;
    limiter l{options(10, 3, 4), clock};  // capacity 4 = probes: every slot is a candidate
    for (const char* v : {"a", "b", "c", "d"}) {
      CHECK(l.try_acquire(v));
      clock.advance(2ms);
    }
    CHECK(l.try_acquire("a"));  // a is now the most recent; b the stalest
    clock.advance(2ms);
    CHECK(l.stats().evicted == 0);
    CHECK(l.try_acquire("e"));
    CHECK(l.stats().evicted == 1);
    CHECK_FALSE(l.tracked("b"));
    for (const char* v : {"a", "c", "d", "e"}) CHECK(l.tracked(v));
    clock.advance(2ms);
    CHECK(l.try_acquire("f"));  // c is the stalest now
    CHECK_FALSE(l.tracked("c"));
    CHECK(l.stats().evicted == 2);

    // Eviction forgets the debt: "a" drained, evicted, back with a full bucket.
    while (l.try_acquire("a")) {
    }
    for (const char* v : {"g", "h", "i", "j"}) {
      clock.advance(2ms);
      CHECK(l.try_acquire(v));
    }
    CHECK_FALSE(l.tracked("a"));
    int again = 0;
    while (l.try_acquire("a")) ++again;
    CHECK(again == 3);
  }

  TEST_CASE("hot_param_limiter: a hammering value is throttled while the others pass") {
    seckill::manual_clock clock;
    limiter l{options(10, 5, 256), clock};
    int bot_admitted = 0;
    int users_refused = 0;
    for (int ms = 0; ms < 1000; ++ms) {
      if (l.try_acquire("bot-10.0.0.7")) ++bot_admitted;
      if (ms % 100 == 0)
        for (int u = 0; u < 50; ++u)
          if (!l.try_acquire("user-" + std::to_string(u))) ++users_refused;
      clock.advance(1ms);
    }
    CHECK(bot_admitted == 5 + 9);  // the burst, then one per 100 ms: at 100, 200, ... 900 ms
    CHECK(users_refused == 0);
    CHECK(l.stats().throttled == static_cast<std::uint64_t>(1000 - bot_admitted));
  }

  TEST_CASE("hot_param_limiter: hottest lists the most drained values first") {
    seckill::manual_clock clock;
    limiter l{options(10, 10, 64), clock};
    CHECK(l.hottest(5).empty());
    while (l.try_acquire("bot")) {
    }
    clock.advance(5ms);
    for (int i = 0; i < 6; ++i) CHECK(l.try_acquire("busy-user"));
    for (int u = 0; u < 10; ++u) CHECK(l.try_acquire("user-" + std::to_string(u)));
    clock.advance(5ms);
    const auto top = l.hottest(2);
    REQUIRE(top.size() == 2);
    CHECK(top[0].value == "bot");
    CHECK(top[0].available == doctest::Approx(0.1));  // 10 ms at 10/s
    CHECK(top[0].idle == 10ms);
    CHECK(top[1].value == "busy-user");
    CHECK(top[1].available == doctest::Approx(4.05));
    CHECK(top[1].idle == 5ms);
    CHECK(l.hottest(100).size() == 12);
  }

  TEST_CASE("hot_param_limiter: bad options are refused with the value seen") {
    auto m = invalid_message([] { limiter{options(0, 1)}; });
    CHECK(contains(m, "hot_param_limiter rate_per_second 0"));
    m = invalid_message([] { limiter{options(10, 0.5)}; });
    CHECK(contains(m, "hot_param_limiter burst 0.5"));
    m = invalid_message([] { limiter{options(10, 1, 3)}; });
    CHECK(contains(m, "capacity 3"));
    m = invalid_message([] { limiter{options(10, 1, std::size_t{1} << 25)}; });
    CHECK(contains(m, "capacity 33554432"));
    auto o = options(10, 1);
    o.max_value_size = 0;
    m = invalid_message([&] { limiter{o}; });
    CHECK(contains(m, "max_value_size 0"));
    o = options(10, 1);
    o.max_exceptions = 1;
    o.exceptions = {{"a", 1, 1}, {"b", 1, 1}};
    m = invalid_message([&] { limiter{o}; });
    CHECK(contains(m, "max_exceptions 1 with 2"));
    o.max_exceptions = 4;
    o.exceptions = {{"a", 1, 1}, {"a", 2, 2}};
    m = invalid_message([&] { limiter{o}; });
    CHECK(contains(m, "'a' given twice"));
    o.exceptions = {{"bot", -1, 1}};
    m = invalid_message([&] { limiter{o}; });
    CHECK(contains(m, "exception 'bot' rate_per_second -1"));
  }

  TEST_CASE("hot_param_limiter: a value too long or a bad count is an error - not a throttle") {
    seckill::manual_clock clock;
    auto o = options(10, 2);
    o.max_value_size = 8;
    limiter l{o, clock};
    std::error_code ec;
    CHECK_FALSE(l.try_acquire("123456789", 1, ec));
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK(l.try_acquire("12345678", 1, ec));
    CHECK_FALSE(ec);
    CHECK_FALSE(l.try_acquire("12345678", 3, ec));  // above the burst
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK_FALSE(l.try_acquire("12345678", -1, ec));
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK(l.try_acquire("12345678", 1, ec));
    CHECK_FALSE(l.try_acquire("12345678", 1, ec));
    CHECK(ec == seckill::errc::rate_limited);
    const auto s = l.stats();
    CHECK(s.invalid == 3);
    CHECK(s.admitted == 2);
    CHECK(s.throttled == 1);
    // Nothing was taken by the refused calls.
    clock.advance(200ms);
    CHECK(l.try_acquire("12345678", 2));
  }

  TEST_CASE("hot_param_limiter: a refused call evicts nothing") {
    seckill::manual_clock clock;
    auto o = options(10, 2, 4);
    o.max_value_size = 8;
    limiter l{o, clock};
    for (const char* v : {"a", "b", "c", "d"}) CHECK(l.try_acquire(v));
    CHECK_FALSE(l.try_acquire("e", 3));  // above the burst
    CHECK_FALSE(l.try_acquire("e", -1));
    CHECK_FALSE(l.try_acquire("123456789"));  // too long
    CHECK(l.stats().evicted == 0);
    CHECK(l.stats().invalid == 3);
    CHECK_FALSE(l.tracked("e"));
    for (const char* v : {"a", "b", "c", "d"}) CHECK(l.tracked(v));
  }

  TEST_CASE("hot_param_limiter: 0 to 8 bytes of a value are read as one little-endian word") {
    const char bytes[8] = {'\x01', '\x82', '\x03', '\xf4', '\x05', '\x06', '\x77', '\x88'};
    for (std::size_t n = 0; n <= 8; ++n) {
      std::uint64_t expected = 0;  // the bytes as a little-endian word
      for (std::size_t i = 0; i < n; ++i)
        expected |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
      INFO("n = " << n);
      CHECK(seckill::detail::hot_load(bytes, n) == expected);
    }
  }

  TEST_CASE("hot_param_limiter: values sharing a hash prefix or a length are told apart") {
    seckill::manual_clock clock;
    limiter l{options(1, 1, 4), clock};
    CHECK(l.try_acquire("abcdefgh-1"));
    CHECK(l.try_acquire("abcdefgh-2"));
    CHECK(l.try_acquire(std::string("a\0b", 3)));
    CHECK(l.try_acquire(std::string("a\0c", 3)));
    CHECK_FALSE(l.try_acquire("abcdefgh-1"));
    CHECK_FALSE(l.try_acquire(std::string("a\0b", 3)));
    CHECK(l.try_acquire(""));
    CHECK_FALSE(l.try_acquire(""));
  }
}

TEST_SUITE("concurrent") {
  TEST_CASE("hot_param_limiter: threads inserting the same new value at once leave one bucket") {
    // Burst 1, one token per hour: each value admits exactly one call, unless
    // two threads each inserted it into a slot of its own.
    constexpr int threads = 4;
    constexpr int rounds = 3000;
    seckill::manual_clock clock;
    limiter l{options(1.0 / 3600, 1, 4), clock};  // every slot a candidate
    std::vector<std::string> values;
    for (int r = 0; r < rounds; ++r) values.push_back("new-user-" + std::to_string(r));
    std::vector<std::atomic<int>> admitted(rounds);
    std::barrier line_up(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int r = 0; r < rounds; ++r) {
          // Every call of a round sees the round's time: the values of earlier
          // rounds are older, so no value is evicted in its own round.
          line_up.arrive_and_wait();
          if (t == 0) clock.advance(2ms);
          line_up.arrive_and_wait();
          // Half the threads first insert a value of their own, so the
          // candidates' ages change under the others' scans.
          if (t % 2 == 1) (void)l.try_acquire("own-" + std::to_string(t) + "-" + std::to_string(r));
          if (l.try_acquire(values[static_cast<std::size_t>(r)]))
            admitted[static_cast<std::size_t>(r)].fetch_add(1);
        }
      });
    }
    for (auto& w : workers) w.join();
    int wrong = 0;
    for (int r = 0; r < rounds; ++r)
      if (admitted[static_cast<std::size_t>(r)].load() != 1) ++wrong;
    CHECK(wrong == 0);
    CHECK(l.stats().admitted == static_cast<std::uint64_t>(rounds) * (1 + threads / 2));
  }

  TEST_CASE("hot_param_limiter: threads never admit a hot value more than its bucket allows") {
    constexpr std::size_t capacity = 512;
    constexpr double rate = 100;
    constexpr double burst = 50;
    constexpr int threads = 4;
    constexpr int iterations = 20'000;
    seckill::manual_clock clock;
    limiter l{options(rate, burst, capacity), clock};
    const std::vector<std::string> hot{"hot-user-1", "hot-user-2", "hot-sku-9", "bot-10.1.2.3"};
    // Cold values whose candidate slots miss the hot values' ones: the hot
    // values are never evicted, so each stays one exact bucket.
    std::set<std::size_t> hot_slots;
    for (const auto& v : hot)
      for (auto i : window_of(v, capacity)) hot_slots.insert(i);
    std::vector<std::string> cold;
    for (int n = 0; cold.size() < 4000; ++n) {
      std::string v = "cold-" + std::to_string(n);
      bool clear = true;
      for (auto i : window_of(v, capacity)) clear = clear && hot_slots.count(i) == 0;
      if (clear) cold.push_back(std::move(v));
    }
    const auto start = clock.now();
    std::vector<std::array<std::uint64_t, 4>> admitted(threads);
    std::atomic<int> ready{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        auto& mine = admitted[static_cast<std::size_t>(t)];
        mine.fill(0);
        ready.fetch_add(1);
        while (ready.load() < threads) std::this_thread::yield();
        for (int i = 0; i < iterations; ++i) {
          for (std::size_t k = 0; k < hot.size(); ++k)
            if (l.try_acquire(hot[k])) ++mine[k];
          (void)l.try_acquire(cold[static_cast<std::size_t>(i * threads + t) % cold.size()]);
          if (t == 0 && i % 64 == 63) clock.advance(1ms);
        }
      });
    }
    for (auto& w : workers) w.join();
    const auto elapsed = clock.now() - start;
    const auto refill = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count() /
        static_cast<std::int64_t>(1e9 / rate));
    const auto bound = static_cast<std::uint64_t>(burst) + refill;
    for (std::size_t k = 0; k < hot.size(); ++k) {
      std::uint64_t total = 0;
      for (const auto& a : admitted) total += a[k];
      INFO(hot[k] << " admitted " << total << " bound " << bound);
      CHECK(total <= bound);
      CHECK(total + 1 >= bound);  // hammered all along: it got nearly all it was owed
      CHECK(l.tracked(hot[k]));
    }
    const auto s = l.stats();
    CHECK(s.evicted > 0);  // the cold values churned the table
    CHECK(s.admitted + s.throttled == static_cast<std::uint64_t>(threads) * iterations * 5);
  }
}
