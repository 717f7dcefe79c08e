// The shared table of strategy cases (tests/browser/strategy_cases.json):
// every case through the C++ parsers and priority_strategy. The extension's
// JavaScript runs the same table (extension/test/strategy_cases.test.mjs),
// so a strategy file is read, refused and decided alike in both.
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/sale_time.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/stock_response.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/detail/splitmix64.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

namespace unit_strategy_cases {

namespace br = seckill::browser;
using nlohmann::json;

json load_cases() {
  std::ifstream in(std::string(SECKILL_SOURCE_DIR) + "/tests/browser/strategy_cases.json");
  REQUIRE(in.good());
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

json field_json(const br::offer_field& f) {
  return {{"child", f.child}, {"attribute", f.attribute}, {"given", f.given}};
}

json path_json(const br::json_path& p) {
  json steps = json::array();
  for (const auto& s : p.steps) {
    const char* kind = s.k == br::json_step::kind::member  ? "member"
                       : s.k == br::json_step::kind::index ? "index"
                                                           : "each";
    steps.push_back({{"kind", kind}, {"name", s.name}, {"index", s.index}});
  }
  return {{"steps", steps}, {"text", p.text}};
}

// A profile as the JavaScript writes it (extension/lib/profile.js): the
// struct's field names.
json profile_json(const br::site_profile& p) {
  using sp = br::site_profile;
  return {
      {"status", p.status},
      {"in_stock", p.in_stock},
      {"out_of_stock", p.out_of_stock},
      {"offers", p.offers == sp::offer_layout::select ? "select" : "list"},
      {"offer_selector", p.offer_selector},
      {"sku", field_json(p.sku)},
      {"name", field_json(p.name)},
      {"price", field_json(p.price)},
      {"stock", field_json(p.stock)},
      {"category", field_json(p.category)},
      {"unavailable", p.unavailable},
      {"choose_target", p.choose_target},
      {"quantity", p.quantity},
      {"quantity_plus", p.quantity_plus},
      {"quantity_minus", p.quantity_minus},
      {"quantity_value", p.quantity_value},
      {"buy", p.buy},
      {"result", p.result},
      {"success", p.success},
      {"success_url", p.success_url},
      {"success_response", p.success_response},
      {"logged_in", p.logged_in},
      {"watch", p.watch == sp::watch_mode::live ? "live" : "reload"},
      {"reload_every_ms", p.reload_every.count()},
      {"countdown", p.countdown},
      {"clock", p.clock},
      {"verification", p.verification},
      {"verification_text", p.verification_text},
      {"verification_off", p.verification_off},
      {"stock_response", p.stock_response},
      {"stock_json", path_json(p.stock_json)},
      {"stock_json_given", p.stock_json_given},
      {"stock_text", p.stock_text},
      {"stock_offers", path_json(p.stock_offers)},
      {"stock_offers_given", p.stock_offers_given},
      {"offer_sku_path", path_json(p.offer_sku_path)},
      {"offer_stock_path", path_json(p.offer_stock_path)},
      {"offer_price_path", path_json(p.offer_price_path)},
      {"stock_confirm", p.stock_confirm == sp::stock_check::response ? "response" : "page"},
  };
}

// A strategy as the JavaScript writes it (extension/lib/strategy.js).
json strategy_json(const br::strategy_config& c) {
  json want = json::array();
  for (const auto& w : c.want)
    want.push_back({{"kind", br::to_string(w.what)}, {"value", w.value}});
  json notify_on = json::array();
  for (const auto k : {br::notice_kind::ordered, br::notice_kind::failed, br::notice_kind::sold_out,
                       br::notice_kind::hand_off, br::notice_kind::stock}) {
    if (c.notify_on.has(k)) notify_on.push_back(br::to_string(k));
  }
  json start = nullptr;
  if (c.start) {
    start = {
        {"at_ms",
         std::chrono::floor<std::chrono::milliseconds>(c.start->at.time_since_epoch()).count()},
        {"utc_offset_min", c.start->utc_offset.count()}};
  }
  json notify = nullptr;
  if (c.notify) notify = {{"url", c.notify->url}};
  return {
      {"want", want},
      {"max_price", c.max_price ? json(*c.max_price) : json(nullptr)},
      {"quantity", c.quantity},
      {"partial", c.partial},
      {"deadline_ms", c.deadline.count()},
      {"actions_per_second", c.actions_per_second},
      {"burst", c.burst},
      {"retries", c.retries},
      {"start", start},
      {"delay", {{"min_ms", c.delay.min.count()}, {"max_ms", c.delay.max.count()}}},
      {"delay_seed", c.delay_seed ? json(std::to_string(*c.delay_seed)) : json(nullptr)},
      {"pace_reaction", c.pace_reaction},
      {"profile_file", c.profile_file},
      {"notify", notify},
      {"notify_on", notify_on},
      {"mode", br::to_string(c.mode)},
      {"resync_before_ms", c.resync_before ? json(c.resync_before->count()) : json(nullptr)},
      {"prepare_before_ms", c.prepare_before ? json(c.prepare_before->count()) : json(nullptr)},
  };
}

br::shop_snapshot snapshot_of(const json& page) {
  br::shop_snapshot s;
  s.status = page.value("status", "");
  for (const auto& o : page.value("offers", json::array())) {
    const json& price = o.at("price");
    s.offers.push_back(
        {o.at("sku").get<std::string>(), o.value("name", ""), o.value("category", ""),
         price.is_null() ? std::nan("") : price.get<double>(), o.at("stock").get<int>()});
  }
  return s;
}

// Every key `expected` gives equals the same key of `actual`.
void check_subset(const std::string& what, const json& actual, const json& expected) {
  for (const auto& [key, value] : expected.items()) {
    INFO(what << "." << key);
    REQUIRE(actual.contains(key));
    CHECK(actual.at(key) == value);
  }
}

// What the run does with the page as it stands (extension/lib/strategy.js
// plan): nothing before the start or out of stock, no choice in monitor mode
// (grab_mode), no press in dry-run.
std::string action_of(const br::strategy_config& cfg, const br::site_profile& profile,
                      const br::shop_snapshot& snap, std::optional<br::sale_time> now,
                      std::optional<br::order_intent>& decision) {
  if (cfg.start && now && now->at < cfg.start->at) return "wait";
  if (!br::detail::says_in_stock(profile, snap.status)) return "wait";
  if (cfg.mode == br::grab_mode::monitor) return "watch";
  decision = br::priority_strategy(cfg).decide(snap);
  if (!decision) return "none";
  return cfg.mode == br::grab_mode::dry_run ? "would-press" : "press";
}

void run_case(const json& c) {
  const json& expect = c.at("expect");
  std::string error;
  std::optional<br::strategy_config> cfg;
  std::optional<br::site_profile> profile;
  try {
    if (c.contains("strategy")) cfg = br::parse_strategy(c.at("strategy").get<std::string>());
    if (c.contains("profile")) profile = br::parse_profile(c.at("profile").get<std::string>());
  } catch (const seckill::error& e) {
    CHECK(e.code() == seckill::errc::invalid_argument);
    // what() ends with ": <the code's message>"; the JavaScript gives the message proper.
    error = e.what();
    const std::string suffix = ": " + e.code().message();
    REQUIRE(error.size() > suffix.size());
    CHECK(error.substr(error.size() - suffix.size()) == suffix);
    error.resize(error.size() - suffix.size());
  }
  if (c.contains("countdown")) {
    const auto left = br::parse_time_left(c.at("countdown").get<std::string>());
    CHECK((left ? json(left->count()) : json(nullptr)) == expect.at("time_left_ms"));
  }
  if (expect.contains("error")) {
    CHECK(error == expect.at("error").get<std::string>());
    return;
  }
  REQUIRE_MESSAGE(error.empty(), error);
  if (expect.contains("config")) {
    REQUIRE(cfg);
    check_subset("config", strategy_json(*cfg), expect.at("config"));
  }
  const br::site_profile used = cfg && cfg->profile ? *cfg->profile
                                : profile           ? *profile
                                                    : br::site_profile{};
  if (expect.contains("profile")) check_subset("profile", profile_json(used), expect.at("profile"));
  if (expect.contains("pauses")) {
    REQUIRE(cfg);
    std::uint64_t rng = cfg->delay_seed.value_or(c.value("input_seed", std::uint64_t{1}));
    const auto span = static_cast<std::uint64_t>((cfg->delay.max - cfg->delay.min).count()) + 1;
    json drawn = json::array();
    for (std::size_t i = 0; i < expect.at("pauses").size(); ++i) {
      drawn.push_back(cfg->delay.min.count() +
                      static_cast<std::int64_t>(seckill::detail::splitmix64_next(rng) % span));
    }
    CHECK(drawn == expect.at("pauses"));
  }
  if (c.contains("page")) {
    REQUIRE(cfg);
    const auto snap = snapshot_of(c.at("page"));
    std::optional<br::sale_time> now;
    if (c.contains("now")) now = br::parse_sale_time(c.at("now").get<std::string>());
    std::optional<br::order_intent> decision;
    const std::string action = action_of(*cfg, used, snap, now, decision);
    if (expect.contains("in_stock")) {
      CHECK(br::detail::says_in_stock(used, snap.status) == expect.at("in_stock").get<bool>());
    }
    if (expect.contains("action")) CHECK(action == expect.at("action").get<std::string>());
    if (expect.contains("decision")) {
      json got = nullptr;
      if (decision) {
        got = {{"sku", decision->sku},
               {"quantity", decision->quantity},
               {"price", std::isnan(decision->price) ? json(nullptr) : json(decision->price)},
               {"requested", decision->requested}};
      }
      CHECK(got == expect.at("decision"));
    }
  }
}

}  // namespace unit_strategy_cases

TEST_SUITE("unit") {
  TEST_CASE("strategy_cases.json - the shared table of strategy cases through the C++ parsers") {
    const auto table = unit_strategy_cases::load_cases();
    REQUIRE(table.at("cases").size() >= 40);
    for (const auto& c : table.at("cases")) {
      INFO("case: " << c.at("name").get<std::string>());
      unit_strategy_cases::run_case(c);
    }
  }
}
