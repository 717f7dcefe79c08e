// The sale start's pure parts: ISO 8601 start times, a countdown's time left,
// HTTP dates and page clock texts, the shop clock's offset estimate, the
// start's log line, and the strategy and profile keys that carry them.
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/sale_time.hpp>
#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/strategy.hpp>

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace unit_sale_start {

namespace sb = seckill::browser;
using namespace std::chrono_literals;
using std::chrono::system_clock;

/// 2026-12-04T12:00:00Z.
system_clock::time_point noon_utc() {
  return system_clock::time_point(
      std::chrono::sys_days(std::chrono::year{2026} / std::chrono::December / 4)
          .time_since_epoch() +
      12h);
}

}  // namespace unit_sale_start

using namespace unit_sale_start;

TEST_SUITE("unit") {
  TEST_CASE("parse_sale_time reads an offset - Z - and fractional seconds") {
    const auto a = sb::parse_sale_time("2026-12-04T20:00:00+08:00");
    CHECK(a.at == noon_utc());
    CHECK(a.utc_offset == 480min);
    CHECK(sb::parse_sale_time("2026-12-04T12:00:00Z").at == noon_utc());
    CHECK(sb::parse_sale_time("2026-12-04t12:00:00z").at == noon_utc());
    CHECK(sb::parse_sale_time("2026-12-04 07:30:00-0430").at == noon_utc());
    const auto f = sb::parse_sale_time("2026-12-04T12:00:00.250Z");
    CHECK(f.at == noon_utc() + 250ms);
    CHECK(sb::parse_sale_time("2026-12-04T12:00:00,5Z").at == noon_utc() + 500ms);
    CHECK(sb::parse_sale_time("2026-12-04T12:00:00.123456789Z").at ==
          noon_utc() + std::chrono::duration_cast<system_clock::duration>(123456789ns));
    CHECK(sb::parse_sale_time("2024-02-29T00:00:00Z").utc_offset == 0min);  // a leap day
  }

  TEST_CASE("parse_sale_time refuses every malformed time - and says what it expects") {
    struct bad {
      const char* text;
      const char* message;
    };
    const bad cases[] = {
        {"2026-12-04T20:00:00", "no UTC offset (add Z or +HH:MM"},
        {"2026-12-04T20:00", "no ':' after the minute (seconds are required)"},
        {"2026-12-04", "no time of day"},
        {"26-12-04T20:00:00Z", "no 4-digit year"},
        {"2026/12/04T20:00:00Z", "no '-' after the year"},
        {"2026-1-04T20:00:00Z", "no 2-digit month"},
        {"2026-13-04T20:00:00Z", "no such date"},
        {"2026-02-30T20:00:00Z", "no such date"},
        {"2025-02-29T20:00:00Z", "no such date"},
        {"2026-12-04T24:00:00Z", "no such time of day"},
        {"2026-12-04T20:60:00Z", "no such time of day"},
        {"2026-12-04T20:00:60Z", "no such time of day"},
        {"2026-12-04T20:00:00.Z", "no digits after the decimal point"},
        {"2026-12-04T20:00:00.1234567891Z", "more than 9 fraction digits"},
        {"2026-12-04T20:00:00+8", "no 2-digit offset hour"},
        {"2026-12-04T20:00:00+08:0", "no 2-digit offset minute"},
        {"2026-12-04T20:00:00+15:00", "an offset beyond +-14:00"},
        {"2026-12-04T20:00:00+08:60", "an offset beyond +-14:00"},
        {"2026-12-04T20:00:00 CST", "no UTC offset"},
        {"2026-12-04T20:00:00Z tomorrow", "text after the offset"},
        {"", "no 4-digit year"},
    };
    for (const auto& b : cases) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(sb::parse_sale_time(b.text), doctest::Contains(b.message),
                           seckill::error);
      const std::string got = std::string("got '") + b.text + "'";
      CHECK_THROWS_WITH_AS(sb::parse_sale_time(b.text), doctest::Contains(got.c_str()),
                           seckill::error);
      std::string why;
      CHECK_FALSE(sb::try_parse_sale_time(b.text, &why).has_value());
      CHECK(why.find(b.message) != std::string::npos);
    }
  }

  TEST_CASE("format_time_of_day writes a time in its offset with milliseconds") {
    CHECK(sb::format_time_of_day(noon_utc(), 480min) == "20:00:00.000");
    CHECK(sb::format_time_of_day(noon_utc() - 1258ms, 480min) == "19:59:58.742");
    CHECK(sb::format_time_of_day(noon_utc() + 13h, 0min) == "01:00:00.000");
    CHECK(sb::format_time_of_day(noon_utc(), -330min) == "06:30:00.000");
  }

  TEST_CASE("parse_time_left reads colon forms - units - and Chinese") {
    CHECK(sb::parse_time_left("01:02:03") == 3723s);
    CHECK(sb::parse_time_left("02:03") == 123s);
    CHECK(sb::parse_time_left("1:00:00:05") == 24h + 5s);
    CHECK(sb::parse_time_left("Sale starts in 00:00:09.5 !") == 9500ms);
    CHECK(sb::parse_time_left("123 s") == 123s);
    CHECK(sb::parse_time_left("123s") == 123s);
    CHECK(sb::parse_time_left("12.5 seconds") == 12500ms);
    CHECK(sb::parse_time_left("1h 2m 3s") == 3723s);
    CHECK(sb::parse_time_left("2 min 5 sec left") == 125s);
    CHECK(sb::parse_time_left("1500 ms") == 1500ms);
    CHECK(sb::parse_time_left("1 day 2 hours") == 26h);
    CHECK(sb::parse_time_left("还剩 1分23秒") == 83s);
    CHECK(sb::parse_time_left("1小时2分3秒") == 3723s);
    CHECK(sb::parse_time_left("距开抢还有 2天3时") == 51h);
    CHECK(sb::parse_time_left("5分钟") == 5min);
    CHECK(sb::parse_time_left("3秒500毫秒") == 3500ms);
    CHECK(sb::parse_time_left("00:00:00") == 0ms);
    // No time: nothing, a lone number, a word that only starts like a unit,
    // minutes or seconds beyond 59.
    CHECK_FALSE(sb::parse_time_left("").has_value());
    CHECK_FALSE(sb::parse_time_left("soon").has_value());
    CHECK_FALSE(sb::parse_time_left("42").has_value());
    CHECK_FALSE(sb::parse_time_left("5 sale").has_value());
    CHECK_FALSE(sb::parse_time_left("01:75").has_value());
    CHECK_FALSE(sb::parse_time_left("1:30:61").has_value());
    CHECK_FALSE(sb::parse_time_left("1:25:00:00").has_value());
  }

  TEST_CASE("parse_http_date reads the IMF-fixdate form - and refuses others") {
    CHECK(sb::parse_http_date("Fri, 04 Dec 2026 12:00:00 GMT") == noon_utc());
    CHECK(sb::parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").has_value());
    CHECK_FALSE(sb::parse_http_date("Friday, 04-Dec-26 12:00:00 GMT").has_value());
    CHECK_FALSE(sb::parse_http_date("Fri Dec  4 12:00:00 2026").has_value());
    CHECK_FALSE(sb::parse_http_date("Fri, 04 Dez 2026 12:00:00 GMT").has_value());
    CHECK_FALSE(sb::parse_http_date("Fri, 31 Feb 2026 12:00:00 GMT").has_value());
    CHECK_FALSE(sb::parse_http_date("Fri, 04 Dec 2026 25:00:00 GMT").has_value());
    CHECK_FALSE(sb::parse_http_date("Fri, 04 Dec 2026 12:00:00 UTC").has_value());
    CHECK_FALSE(sb::parse_http_date("").has_value());
  }

  TEST_CASE("parse_clock_text reads ISO 8601 with its resolution - and Unix milliseconds") {
    const auto a = sb::parse_clock_text(" 2026-12-04T20:00:00.123+08:00 ");
    REQUIRE(a.has_value());
    CHECK(a->first == noon_utc() + 123ms);
    CHECK(a->second == 1ms);
    const auto b = sb::parse_clock_text("2026-12-04T12:00:00Z");
    REQUIRE(b.has_value());
    CHECK(b->second == 1s);
    const auto c = sb::parse_clock_text("2026-12-04T12:00:00.5Z");
    REQUIRE(c.has_value());
    CHECK(c->second == 100ms);
    const auto d = sb::parse_clock_text("1796385600250");
    REQUIRE(d.has_value());
    CHECK(d->first == noon_utc() + 250ms);
    CHECK(d->second == 1ms);
    CHECK_FALSE(sb::parse_clock_text("20:00:00").has_value());  // no date, no offset
    CHECK_FALSE(sb::parse_clock_text("").has_value());
  }

  TEST_CASE(
      "estimate_clock_offset intersects the samples' intervals - and drops long round trips") {
    // Local clock 1.258 s ahead of the shop's; readings with 1 ms resolution.
    const auto shop_at = [](system_clock::time_point local_mid) { return local_mid - 1258ms; };
    const auto t0 = noon_utc();
    std::vector<sb::clock_sample> samples{
        {t0, t0 + 40ms, shop_at(t0 + 20ms), 1ms},            // [1237, 1278] ms; 40 > 2 x 10 + 10
        {t0 + 100ms, t0 + 110ms, shop_at(t0 + 105ms), 1ms},  // [1252, 1263] ms
        {t0 + 200ms, t0 + 300ms, shop_at(t0 + 250ms), 1ms},  // [1207, 1308] ms; 100 ms
        {t0 + 400ms, t0 + 390ms, shop_at(t0 + 395ms), 1ms},  // received before sent
    };
    const auto o = sb::estimate_clock_offset(samples);
    REQUIRE(o.has_value());
    CHECK(o->samples == 1);
    CHECK(o->dropped == 2);
    CHECK(o->consistent);
    CHECK(o->lo == 1252ms);
    CHECK(o->hi == 1263ms);
    CHECK(o->round_trip == 10ms);
    CHECK(o->offset == 1257500us);
    CHECK(o->uncertainty == 5500us);
    CHECK(o->to_local(t0) == t0 + 1257500us);
    CHECK(o->latest_local(t0) == t0 + 1263ms);
    CHECK(o->earliest_local(t0) == t0 + 1252ms);
    // A larger bound keeps the long one: it lies within the others.
    const auto all = sb::estimate_clock_offset(samples, 200ms);
    REQUIRE(all.has_value());
    CHECK(all->samples == 3);  // the long ones lie around the short one
    CHECK(all->dropped == 0);
    CHECK(all->lo == 1252ms);
    CHECK(all->hi == 1263ms);
    CHECK_FALSE(sb::estimate_clock_offset({}).has_value());
    CHECK_FALSE(sb::estimate_clock_offset(std::vector<sb::clock_sample>{samples.back()}));
  }

  TEST_CASE("estimate_clock_offset gives exact intervals for whole-second dates") {
    const auto t0 = noon_utc();  // a whole second
    // Sent 10 ms before the shop's second 12:00:01 began (local 12:00:01.300),
    // answered 20 ms later showing 12:00:01: the change is within the trip.
    const std::vector<sb::clock_sample> one{{t0 + 1290ms, t0 + 1310ms, t0 + 1s, 1s}};
    auto o = sb::estimate_clock_offset(one);
    REQUIRE(o.has_value());
    CHECK(o->lo == -710ms);  // 12:00:01.290 - 12:00:01 - 1 s
    CHECK(o->hi == 310ms);   // 12:00:01.310 - 12:00:01
    // One showing 12:00:00 sent at 12:00:01.280: the second had not changed.
    const std::vector<sb::clock_sample> two{one[0], {t0 + 1280ms, t0 + 1300ms, t0, 1s}};
    o = sb::estimate_clock_offset(two);
    REQUIRE(o.has_value());
    CHECK(o->lo == 280ms);  // 12:00:01.280 - 12:00:00 - 1 s
    CHECK(o->hi == 310ms);
    CHECK(o->uncertainty == 15ms);
    CHECK(o->resolution == 1s);
  }

  TEST_CASE("estimate_clock_offset spans samples that disagree - and says so") {
    const auto t0 = noon_utc();
    // Two servers 2 s apart: no offset satisfies both.
    const std::vector<sb::clock_sample> s{{t0, t0 + 10ms, t0, 1s},
                                          {t0 + 20ms, t0 + 30ms, t0 + 2s, 1s}};
    const auto o = sb::estimate_clock_offset(s);
    REQUIRE(o.has_value());
    CHECK_FALSE(o->consistent);
    CHECK(o->lo == -2980ms);
    CHECK(o->hi == 10ms);
    CHECK(sb::describe_start(sb::sale_time{t0, 0min}, o).find("which disagree") !=
          std::string::npos);
    // A page clock that disagrees with the Date header: both kept.
    const std::vector<sb::clock_sample> p{
        {t0, t0 + 10ms, t0, 1s}, {t0 + 5ms, t0 + 6ms, t0 - 3s, 1ms, sb::clock_source::page_clock}};
    const auto q = sb::estimate_clock_offset(p);
    REQUIRE(q.has_value());
    CHECK_FALSE(q->consistent);
    CHECK(q->lo == -1s);
    CHECK(q->hi == 3006ms);
  }

  TEST_CASE("estimate_clock_offset on whole-second dates holds the truth within its uncertainty") {
    const auto t0 = noon_utc();
    for (const auto truth : {-1700ms, -1ms, 0ms, 300ms, 999ms, 2500ms}) {
      for (const auto phase : {0ms, 1ms, 250ms, 700ms, 999ms}) {
        CAPTURE(truth.count());
        CAPTURE(phase.count());
        const auto sent = t0 + phase;
        const auto received = sent + 30ms;
        const auto served = sent + 12ms;  // anywhere within the round trip
        const auto shop_time = served - truth;
        const auto date = std::chrono::floor<std::chrono::seconds>(shop_time);
        const std::vector<sb::clock_sample> s{{sent, received, date, 1s}};
        const auto o = sb::estimate_clock_offset(s);
        REQUIRE(o.has_value());
        CHECK(o->uncertainty == 515ms);
        CHECK(o->lo <= truth);
        CHECK(o->hi >= truth);
      }
    }
  }

  TEST_CASE("plan_straddle converges on a whole-second clock to about the round trip") {
    // A simulated shop: its clock `truth` behind the local one, each answer
    // stamped somewhere in the round trip, which varies.
    for (const auto truth : {-1234567us, 0us, 2718281us, 999999us}) {
      CAPTURE(truth.count());
      system_clock::time_point now = noon_utc() + 123ms;
      int n = 0;
      const auto read = [&](system_clock::time_point sent) {
        const auto rtt = 3ms + std::chrono::milliseconds(n % 4);
        const auto stamped = sent + rtt * (n % 3) / 2;  // the start, middle or end
        ++n;
        const auto shop = std::chrono::floor<std::chrono::seconds>(stamped - truth);
        return sb::clock_sample{sent, sent + rtt, shop, 1s};
      };
      std::vector<sb::clock_sample> samples;
      for (int i = 0; i < 5; ++i) {
        samples.push_back(read(now));
        now = samples.back().received;
      }
      auto o = sb::estimate_clock_offset(samples);
      REQUIRE(o.has_value());
      CHECK(o->uncertainty > 400ms);  // five back-to-back readings know little
      int rounds = 0;
      while (o->uncertainty > o->round_trip + 1ms && rounds < 4) {
        const auto plan = sb::plan_straddle(*o, now, 5);
        REQUIRE(plan.size() == 5);
        CHECK(plan.front() >= now + 50ms);  // the lead
        CHECK(std::is_sorted(plan.begin(), plan.end()));
        CHECK(plan.back() - plan.front() <= o->hi - o->lo);
        for (const auto at : plan) samples.push_back(read(at));
        now = plan.back() + 10ms;
        const auto next = sb::estimate_clock_offset(samples);
        REQUIRE(next.has_value());
        CHECK(next->hi - next->lo < o->hi - o->lo);  // each round narrows it
        o = next;
        ++rounds;
        CHECK(o->lo <= truth);
        CHECK(o->hi >= truth);
      }
      CHECK(rounds <= 4);
      CHECK(o->uncertainty <= 8ms);  // from half a second
      CHECK(o->consistent);
    }
  }

  TEST_CASE("describe_start logs the start on both clocks - with the offset and its uncertainty") {
    const sb::sale_time start{noon_utc(), 480min};
    sb::clock_offset o;
    o.lo = -1758ms;
    o.hi = -758ms;
    o.offset = -1258ms;
    o.uncertainty = 500ms;
    o.round_trip = 3ms;
    o.resolution = 1s;
    o.samples = 5;
    o.dropped = 2;
    const auto line = sb::describe_start(start, o, "Date header");
    CHECK(line.find("start 20:00:00.000 shop time = local 19:59:58.742 (acting at 19:59:59.242, "
                    "the latest it can be), offset -1.258 s ± 0.500 s") == 0);
    CHECK(line.find("(5 samples of the Date header, 2 dropped for their round trip") !=
          std::string::npos);
    CHECK(line.find("the shop's time in whole seconds") != std::string::npos);
    CHECK(sb::describe_start(start, std::nullopt).find("the shop's clock unknown") !=
          std::string::npos);
    CHECK(sb::describe_start(start, sb::manual_clock_offset(-1250ms)) ==
          "start 20:00:00.000 shop time = local 19:59:58.750, offset -1.250 s (manual)");
  }

  TEST_CASE("to_clock_samples reads the scripts' values - and skips what does not read") {
    const auto dates = nlohmann::json::parse(R"([
      {"sent": 1796385600000, "received": 1796385600020, "date": "Fri, 04 Dec 2026 12:00:00 GMT"},
      {"sent": 1796385600000, "received": 1796385600020, "date": "yesterday"},
      {"sent": "soon", "received": 1796385600020, "date": "Fri, 04 Dec 2026 12:00:00 GMT"},
      7
    ])");
    const auto texts = nlohmann::json::parse(R"([
      {"before": 1796385600096, "after": 1796385600100, "text": "2026-12-04T20:00:00.090+08:00"},
      {"before": 1796385600096, "after": 1796385600100, "text": null},
      {"before": 1796385600096, "text": "2026-12-04T20:00:00.090+08:00"},
      {"before": 1796385600096, "after": 1796385600100, "text": "12:00"},
      {"at": 1796385600200, "text": "2026-12-04T20:00:00.190+08:00"}
    ])");
    const auto s = sb::detail::to_clock_samples(dates, texts);
    REQUIRE(s.size() == 3);
    CHECK(s[2].sent == noon_utc() + 200ms);  // one read: {at}
    CHECK(s[2].received == noon_utc() + 201ms);
    CHECK(s[0].sent == noon_utc());
    CHECK(s[0].received == noon_utc() + 21ms);  // whole local milliseconds
    CHECK(s[0].shop == noon_utc());
    CHECK(s[0].resolution == 1s);
    CHECK(s[0].source == sb::clock_source::date_header);
    CHECK(s[1].sent == noon_utc() + 96ms);
    CHECK(s[1].received == noon_utc() + 101ms);
    CHECK(s[1].shop == noon_utc() + 90ms);
    CHECK(s[1].resolution == 1ms);
    CHECK(s[1].source == sb::clock_source::page_clock);
    CHECK(sb::detail::to_clock_samples(nullptr, nullptr).empty());
  }

  TEST_CASE(
      "strategy keys clock_offset - max_clock_uncertainty - clock_uncertainty - resync_before") {
    const auto cfg = sb::parse_strategy(
        "want = sku:a\n"
        "clock_offset = -1250ms\n"
        "max_clock_uncertainty = 50ms\n"
        "clock_uncertainty = warn\n"
        "resync_before = 30s\n");
    CHECK(cfg.clock_offset == std::optional<std::chrono::milliseconds>(-1250ms));
    CHECK(cfg.max_clock_uncertainty == std::optional<std::chrono::milliseconds>(50ms));
    CHECK(cfg.warn_uncertain_clock);
    CHECK(cfg.resync_before == std::optional<std::chrono::milliseconds>(30s));
    CHECK(sb::parse_strategy("want = sku:a\nclock_offset = +2s\n").clock_offset ==
          std::optional<std::chrono::milliseconds>(2s));
    CHECK(sb::parse_strategy("want = sku:a\nclock_offset = 300\n").clock_offset ==
          std::optional<std::chrono::milliseconds>(300ms));
    CHECK_FALSE(sb::parse_strategy("want = sku:a\nresync_before = no\n").resync_before);
    const auto d = sb::parse_strategy("want = sku:a\n");
    CHECK_FALSE(d.clock_offset.has_value());
    CHECK_FALSE(d.max_clock_uncertainty.has_value());
    CHECK_FALSE(d.warn_uncertain_clock);
    CHECK(d.resync_before == std::optional<std::chrono::milliseconds>(10s));
    sb::grabber_options o;
    sb::apply_strategy(o, cfg, sb::site_profile{});
    CHECK(o.manual_offset == std::optional<std::chrono::milliseconds>(-1250ms));
    CHECK(o.max_clock_uncertainty == std::optional<std::chrono::milliseconds>(50ms));
    CHECK(o.warn_uncertain_clock);
    CHECK(o.resync_before == std::optional<std::chrono::milliseconds>(30s));
  }

  TEST_CASE("strategy keys of the shop clock refuse bad values - naming the line and the key") {
    struct bad {
      const char* text;
      const char* message;
    };
    const bad cases[] = {
        {"want = sku:a\nclock_offset = soon\n",
         "strategy line 2: clock_offset must be a whole number of ms or s like -1250ms or +2s, "
         "got 'soon'"},
        {"want = sku:a\nclock_offset = 1.5s\n", "clock_offset must be a whole number"},
        {"want = sku:a\nclock_offset = 5min\n", "clock_offset must be a whole number"},
        {"want = sku:a\nclock_offset = -\n", "clock_offset must be a whole number"},
        {"want = sku:a\nclock_offset = 86401s\n",
         "clock_offset must be in [-86400000ms, 86400000ms], got '86401s'"},
        {"want = sku:a\nclock_offset = 9999999999\n", "clock_offset must be a whole number"},
        {"want = sku:a\nmax_clock_uncertainty = 0ms\n",
         "strategy line 2: max_clock_uncertainty must be in [1ms, 10000ms], got '0ms'"},
        {"want = sku:a\nmax_clock_uncertainty = -5ms\n",
         "max_clock_uncertainty must be a whole number of ms or s like 50ms or 2s, got '-5ms'"},
        {"want = sku:a\nmax_clock_uncertainty = 11s\n", "max_clock_uncertainty must be in"},
        {"want = sku:a\nclock_uncertainty = maybe\n",
         "strategy line 2: clock_uncertainty must be refuse or warn, got 'maybe'"},
        {"want = sku:a\nresync_before = 50ms\n",
         "resync_before must be in [100ms, 3600000ms], got '50ms'"},
        {"want = sku:a\nresync_before = yes\n", "resync_before must be a whole number"},
    };
    for (const auto& b : cases) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(sb::parse_strategy(b.text), doctest::Contains(b.message),
                           seckill::error);
    }
  }

  TEST_CASE("strategy keys start - delay - delay_seed - pace_reaction") {
    const auto cfg = sb::parse_strategy(
        "want = sku:a\n"
        "start = 2026-12-04T20:00:00+08:00\n"
        "delay = 40ms..120ms\n"
        "delay_seed = 42\n"
        "pace_reaction = no\n");
    REQUIRE(cfg.start.has_value());
    CHECK(cfg.start->at == noon_utc());
    CHECK(cfg.delay == sb::delay_range{40ms, 120ms});
    CHECK(cfg.delay_seed == 42u);
    CHECK_FALSE(cfg.pace_reaction);
    const auto d = sb::parse_strategy("want = sku:a\n");
    CHECK_FALSE(d.start.has_value());
    CHECK_FALSE(d.delay.any());
    CHECK_FALSE(d.delay_seed.has_value());
    CHECK(d.pace_reaction);
    CHECK(sb::parse_strategy("want = sku:a\ndelay = 0ms..1s\n").delay ==
          sb::delay_range{0ms, 1000ms});
  }

  TEST_CASE("strategy keys of the start refuse bad values - naming the line and the key") {
    struct bad {
      const char* text;
      const char* message;
    };
    const bad cases[] = {
        {"want = sku:a\nstart = 2026-12-04T20:00:00\n",
         "strategy line 2: start expects an ISO 8601 time with its UTC offset"},
        {"want = sku:a\nstart = 2026-12-04T20:00:00\n", "no UTC offset"},
        {"want = sku:a\nstart = tomorrow\n", "got 'tomorrow'"},
        {"want = sku:a\n\nstart = 2026-12-04T20:61:00Z\n", "strategy line 3: start"},
        {"want = sku:a\ndelay = 40ms\n",
         "strategy line 2: delay must be two whole durations in ms or s like 40ms..120ms, got "
         "'40ms'"},
        {"want = sku:a\ndelay = 40..120\n", "delay must be two whole durations"},
        {"want = sku:a\ndelay = 1.5ms..2ms\n", "delay must be two whole durations"},
        {"want = sku:a\ndelay = 120ms..40ms\n",
         "delay has its lower bound above the upper, got '120ms..40ms'"},
        {"want = sku:a\ndelay = 1s..11s\n", "delay must be at most 10s, got '1s..11s'"},
        {"want = sku:a\ndelay_seed = -1\n", "delay_seed must be a whole number >= 0, got '-1'"},
        {"want = sku:a\ndelay_seed = 1x\n", "delay_seed must be a whole number >= 0, got '1x'"},
        {"want = sku:a\npace_reaction = sometimes\n",
         "strategy line 2: pace_reaction must be yes or no, got 'sometimes'"},
    };
    for (const auto& b : cases) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(sb::parse_strategy(b.text), doctest::Contains(b.message),
                           seckill::error);
    }
  }

  TEST_CASE("profile keys watch - reload_every - countdown - clock") {
    const auto p = sb::parse_profile(
        "watch = reload\n"
        "reload_every = 2s\n"
        "countdown = .countdown\n"
        "clock = #server-time\n");
    CHECK(p.watch == sb::site_profile::watch_mode::reload);
    CHECK(p.reload_every == 2000ms);
    CHECK(p.countdown == ".countdown");
    CHECK(p.clock == "#server-time");
    const sb::site_profile d;
    CHECK(d.watch == sb::site_profile::watch_mode::live);
    CHECK(d.reload_every == 500ms);
    CHECK(d.countdown.empty());
    CHECK(d.clock.empty());
    CHECK(sb::parse_profile("watch = reload\nreload_every = 750ms\n").reload_every == 750ms);
    // In a strategy file too.
    const auto cfg = sb::parse_strategy("want = sku:a\nwatch = reload\ncountdown = #left\n");
    REQUIRE(cfg.profile.has_value());
    CHECK(cfg.profile->watch == sb::site_profile::watch_mode::reload);
    CHECK(cfg.profile->countdown == "#left");
  }

  TEST_CASE("profile keys of the start refuse bad values - naming the line and the key") {
    struct bad {
      const char* text;
      const char* message;
    };
    const bad cases[] = {
        {"watch = sometimes\n", "profile line 1: watch must be live or reload, got 'sometimes'"},
        {"watch = reload\nreload_every = fast\n",
         "profile line 2: reload_every must be a whole number of ms or s like 500ms or 2s, got "
         "'fast'"},
        {"watch = reload\nreload_every = 0.5s\n", "reload_every must be a whole number"},
        {"watch = reload\nreload_every = 10ms\n",
         "reload_every must be in [50ms, 3600s], got '10ms'"},
        {"watch = reload\nreload_every = 2h\n", "reload_every must be a whole number"},
        {"watch = reload\nreload_every = 3601s\n", "reload_every must be in [50ms, 3600s]"},
        {"reload_every = 1s\n", "profile line 1: reload_every needs watch = reload"},
        {"countdown = a >>> \n", "profile line 1: countdown has an empty part around >>>"},
        {"clock = >>> b\n", "profile line 1: clock has an empty part around >>>"},
    };
    for (const auto& b : cases) {
      CAPTURE(b.text);
      CHECK_THROWS_WITH_AS(sb::parse_profile(b.text), doctest::Contains(b.message), seckill::error);
    }
  }

  TEST_CASE("apply_strategy sets the start - the pauses - the reaction - and reload-poll") {
    const auto cfg = sb::parse_strategy(
        "want = sku:a\n"
        "retries = 3\n"
        "start = 2026-12-04T12:00:00Z\n"
        "delay = 10ms..20ms\n"
        "pace_reaction = no\n"
        "watch = reload\n"
        "reload_every = 2s\n");
    sb::grabber_options o;
    sb::apply_strategy(o, cfg, *cfg.profile, 99);
    CHECK(o.retries == 3);
    REQUIRE(o.start.has_value());
    CHECK(o.start->at == noon_utc());
    CHECK(o.delay == sb::delay_range{10ms, 20ms});
    CHECK(o.delay_seed == 99u);  // no delay_seed: the input seed
    CHECK_FALSE(o.pace_reaction);
    CHECK(o.reload_every == std::optional<std::chrono::milliseconds>(2s));
    sb::grabber_options d;
    const auto plain = sb::parse_strategy("want = sku:a\ndelay_seed = 5\n");
    sb::apply_strategy(d, plain, sb::site_profile{}, 99);
    CHECK_FALSE(d.start.has_value());
    CHECK(d.delay_seed == 5u);
    CHECK(d.pace_reaction);
    CHECK_FALSE(d.reload_every.has_value());  // live
  }
}
