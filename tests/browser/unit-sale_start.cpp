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

  TEST_CASE("estimate_clock_offset compensates half the round trip - and keeps the best sample") {
    // Local clock 1.258 s ahead of the shop's; readings with 1 ms resolution.
    const auto shop_at = [](system_clock::time_point local_mid) { return local_mid - 1258ms; };
    const auto t0 = noon_utc();
    std::vector<sb::clock_sample> samples{
        {t0, t0 + 40ms, shop_at(t0 + 20ms), 1ms},            // 40 ms round trip
        {t0 + 100ms, t0 + 110ms, shop_at(t0 + 105ms), 1ms},  // 10 ms: the best
        {t0 + 200ms, t0 + 300ms, shop_at(t0 + 250ms), 1ms},  // 100 ms
        {t0 + 400ms, t0 + 390ms, shop_at(t0 + 395ms), 1ms},  // received before sent
    };
    const auto o = sb::estimate_clock_offset(samples);
    REQUIRE(o.has_value());
    CHECK(o->samples == 3);
    CHECK(o->round_trip == 10ms);
    CHECK(o->offset == 1258ms - 500us);  // the middle of the reading's millisecond
    CHECK(o->uncertainty == 5500us);
    CHECK(o->to_local(t0) == t0 + 1257500us);
    CHECK_FALSE(sb::estimate_clock_offset({}).has_value());
    CHECK_FALSE(sb::estimate_clock_offset(std::vector<sb::clock_sample>{samples.back()}));
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
        CHECK(std::chrono::abs(o->offset - std::chrono::nanoseconds(truth)) <= o->uncertainty);
      }
    }
  }

  TEST_CASE("describe_start logs the start on both clocks - with the offset and its uncertainty") {
    const sb::sale_time start{noon_utc(), 480min};
    sb::clock_offset o;
    o.offset = -1258ms;
    o.uncertainty = 500ms;
    o.round_trip = 3ms;
    o.resolution = 1s;
    o.samples = 5;
    const auto line = sb::describe_start(start, o, "Date header");
    CHECK(line.find("start 20:00:00.000 shop time = local 19:59:58.742, offset -1.258 s ± 0.500 "
                    "s") == 0);
    CHECK(line.find("best of 5 samples of the Date header") != std::string::npos);
    CHECK(line.find("the shop's time in whole seconds") != std::string::npos);
    CHECK(sb::describe_start(start, std::nullopt).find("the shop's clock unknown") !=
          std::string::npos);
  }

  TEST_CASE("to_clock_samples reads the scripts' values - and skips what does not read") {
    const auto dates = nlohmann::json::parse(R"([
      {"sent": 1796385600000, "received": 1796385600020, "date": "Fri, 04 Dec 2026 12:00:00 GMT"},
      {"sent": 1796385600000, "received": 1796385600020, "date": "yesterday"},
      {"sent": "soon", "received": 1796385600020, "date": "Fri, 04 Dec 2026 12:00:00 GMT"},
      7
    ])");
    const auto texts = nlohmann::json::parse(R"([
      {"at": 1796385600100, "text": "2026-12-04T20:00:00.090+08:00"},
      {"at": 1796385600100, "text": null},
      {"at": 1796385600100, "text": "12:00"}
    ])");
    const auto s = sb::detail::to_clock_samples(dates, texts);
    REQUIRE(s.size() == 2);
    CHECK(s[0].sent == noon_utc());
    CHECK(s[0].received == noon_utc() + 20ms);
    CHECK(s[0].shop == noon_utc());
    CHECK(s[0].resolution == 1s);
    CHECK(s[1].sent == noon_utc() + 100ms);
    CHECK(s[1].shop == noon_utc() + 90ms);
    CHECK(s[1].resolution == 1ms);
    CHECK(sb::detail::to_clock_samples(nullptr, nullptr).empty());
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
