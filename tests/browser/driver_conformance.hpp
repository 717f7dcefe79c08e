#pragma once
// One shop_driver conformance suite, run over every backend of the browser
// driver (as tests/store_conformance.hpp runs over every stock store): the
// CDP backend (page_driver on a tab this process drives) and the extension
// backend (extension_driver over the extension's messages, in real
// Chromium), each on the demo shop served on 127.0.0.1.
//
// A Backend is a fixture type with `shop` (shop::shop_server), `driver`
// (a shop_driver on the shop's page, not yet watching) and `end_browser()`
// (the browser goes away), constructible with no argument (the demo shop's
// profile) or with a site_profile, a function that sets the shop up before
// its page loads and the page's path under the shop's root ("grid"). Each
// case takes a fresh Backend.

#include "browser/support.hpp"
#include "shop/shop_server.hpp"

#include <seckill/browser/error.hpp>
#include <seckill/browser/shop_driver.hpp>

#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>

namespace driver_conformance {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace sb = seckill::browser;
using browser_support::get;

// The next event that `pred` accepts, within `bound`; nullopt when none came.
template <class Driver, class Pred>
std::optional<sb::shop_event> wait_event(Driver& d, Pred pred, std::chrono::milliseconds bound) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < until) {
    auto [ec, e] = get(d.async_next_event(100ms, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    if (e && pred(*e)) return e;
  }
  return std::nullopt;
}

template <class Driver>
void watch(Driver& d) {
  auto [ec] = std::tuple{get(d.async_watch(asio::use_future), 30s)};
  REQUIRE_MESSAGE(!ec, ec.message());
}

// Waits (5 s at most) for a status event that says in stock.
template <class Driver>
void wait_in_stock(Driver& d) {
  REQUIRE(wait_event(
      d,
      [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status && e.in_stock; },
      5s));
}

// Chooses `sku` and sets `quantity`; both must succeed.
template <class Driver>
void choose_and_set(Driver& d, const std::string& sku, int quantity) {
  auto [e1] = std::tuple{get(d.async_choose(sku, asio::use_future))};
  REQUIRE_MESSAGE(!e1, e1.message());
  auto [e2] = std::tuple{get(d.async_set_quantity(quantity, asio::use_future))};
  REQUIRE_MESSAGE(!e2, e2.message());
}

// Watching reports the page's status as loaded, then a restock.
template <class Backend>
void events_on_restock() {
  Backend b;
  watch(b.driver);
  auto first = wait_event(
      b.driver, [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status; }, 5s);
  REQUIRE(first);
  CHECK_FALSE(first->in_stock);
  b.shop.set_stock("veg-box", 5);
  auto restock = wait_event(
      b.driver,
      [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status && e.in_stock; },
      5s);
  REQUIRE(restock);
  CHECK_FALSE(restock->initial);
}

// A snapshot reads the status and every offer, with prices and counts.
template <class Backend>
void snapshot_of_offers() {
  Backend b;
  b.shop.set_stock("eggs-12", 7);
  watch(b.driver);
  wait_in_stock(b.driver);
  auto [ec, snap] = get(b.driver.async_snapshot(asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  REQUIRE(snap.offers.size() == 4);
  const auto eggs = std::find_if(snap.offers.begin(), snap.offers.end(),
                                 [](const sb::sku_offer& o) { return o.sku == "eggs-12"; });
  REQUIRE(eggs != snap.offers.end());
  CHECK(eggs->price == doctest::Approx(4.10));
  CHECK(eggs->stock == 7);
  CHECK(eggs->category == "dairy");
  const auto rice = std::find_if(snap.offers.begin(), snap.offers.end(),
                                 [](const sb::sku_offer& o) { return o.sku == "rice-5kg"; });
  REQUIRE(rice != snap.offers.end());
  CHECK(rice->stock == 0);
}

// The shop's answer to a press that went out: a confirmed outcome event
// (5 s at most), and exactly that one order in the shop (`sku` x
// `quantity`, `left` in stock). The outcome, for more checks.
template <class Backend>
sb::shop_event one_order_confirmed(Backend& b, const std::string& sku, int quantity, int left) {
  auto outcome = wait_event(
      b.driver, [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::outcome; }, 5s);
  REQUIRE(outcome);
  CHECK(outcome->confirmed);
  std::this_thread::sleep_for(300ms);
  browser_support::check_one_order(b.shop, sku, quantity, left);
  return *outcome;
}

// Presses buy, which must go out, and expects one_order_confirmed.
template <class Backend>
sb::shop_event press_buys_one(Backend& b, const std::string& sku, int quantity, int left) {
  auto [e] = std::tuple{get(b.driver.async_press_buy(asio::use_future))};
  REQUIRE_MESSAGE(!e, e.message());
  return one_order_confirmed(b, sku, quantity, left);
}

// Choose, quantity, press: exactly one order, recorded by the shop, and a
// confirmed outcome event.
template <class Backend>
void buys_exactly_one_order() {
  Backend b;
  b.shop.set_stock("veg-box", 5);
  watch(b.driver);
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "veg-box", 2);
  const sb::shop_event outcome = press_buys_one(b, "veg-box", 2, 3);
  CHECK(outcome.text.find("Order confirmed") != std::string::npos);
}

// A snapshot taken as a restock is seen (the extension backend answers it
// with the shop the restock's event carried, no request) reads what a
// snapshot read afterwards from the page reads.
template <class Backend>
void snapshot_at_the_restock() {
  Backend b;
  watch(b.driver);
  REQUIRE(wait_event(
      b.driver, [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status; }, 5s));
  b.shop.set_stock("eggs-12", 6);
  wait_in_stock(b.driver);
  auto [e1, seen] = get(b.driver.async_snapshot(asio::use_future));
  REQUIRE_MESSAGE(!e1, e1.message());
  auto [e2, later] = get(b.driver.async_snapshot(asio::use_future));
  REQUIRE_MESSAGE(!e2, e2.message());
  CHECK(seen.status == later.status);
  CHECK(seen.chosen == later.chosen);
  CHECK(seen.quantity == later.quantity);
  REQUIRE(seen.offers.size() == later.offers.size());
  for (std::size_t i = 0; i < seen.offers.size(); ++i) {
    CAPTURE(later.offers[i].sku);
    CHECK(seen.offers[i].sku == later.offers[i].sku);
    CHECK(seen.offers[i].name == later.offers[i].name);
    CHECK(seen.offers[i].category == later.offers[i].category);
    CHECK(seen.offers[i].price == doctest::Approx(later.offers[i].price));
    CHECK(seen.offers[i].stock == later.offers[i].stock);
    if (seen.offers[i].sku == "eggs-12") CHECK(seen.offers[i].stock == 6);
  }
}

// After a choice and a quantity, a snapshot says what the page holds: the
// chosen offer and the quantity (a grabber does not redo them then).
template <class Backend>
void snapshot_of_the_choice() {
  Backend b;
  b.shop.set_stock("eggs-12", 5);
  watch(b.driver);
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "eggs-12", 3);
  auto [ec, snap] = get(b.driver.async_snapshot(asio::use_future));
  REQUIRE_MESSAGE(!ec, ec.message());
  CHECK(snap.chosen == std::optional<std::string>("eggs-12"));
  CHECK(snap.quantity == std::optional<int>(3));
  CHECK(b.shop.orders().empty());
}

// An offer the page does not list is element_not_found; a disabled buy
// button (nothing in stock) is refused as not actionable, and nothing is ordered.
template <class Backend>
void refusals() {
  Backend b;
  watch(b.driver);
  auto [e1] = std::tuple{get(b.driver.async_choose("no-such-sku", asio::use_future))};
  CHECK(e1 == sb::errc::element_not_found);
  auto [e2] = std::tuple{get(b.driver.async_press_buy(asio::use_future))};
  CHECK(e2 == sb::errc::element_not_actionable);
  CHECK(b.shop.orders().empty());
}

// A dry run's check of the buy button: actionable in stock (its selector
// comes back), not actionable while sold out (the button is disabled); the
// check presses nothing.
template <class Backend>
void check_buy_presses_nothing() {
  Backend b;
  watch(b.driver);
  auto [e1, sel1] = get(b.driver.async_check_buy(asio::use_future), 30s);
  CHECK(e1 == sb::errc::element_not_actionable);
  b.shop.set_stock("veg-box", 5);
  wait_in_stock(b.driver);
  auto [e2, sel2] = get(b.driver.async_check_buy(asio::use_future), 30s);
  REQUIRE_MESSAGE(!e2, e2.message());
  CHECK(sel2 == b.driver.profile().buy);
  std::this_thread::sleep_for(300ms);
  CHECK(b.shop.orders().empty());
}

// The shop of another shape (/grid, grid.profile): an offer chosen by a
// trusted click on its button, the quantity reached by + and - clicks and
// read back, then exactly one order.
template <class Backend>
void grid_shop_order() {
  Backend b(browser_support::grid_profile(), {}, "grid");
  b.shop.set_stock("eggs-12", 5);
  watch(b.driver);
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "eggs-12", 3);
  auto [es, snap] = get(b.driver.async_snapshot(asio::use_future));
  REQUIRE_MESSAGE(!es, es.message());
  CHECK(snap.quantity == std::optional<int>(3));
  auto [e3] = std::tuple{get(b.driver.async_set_quantity(2, asio::use_future))};
  REQUIRE_MESSAGE(!e3, e3.message());
  press_buys_one(b, "eggs-12", 2, 3);
}

// Checks the buy button until the check says `refused` (the shop's push
// takes a moment to reach the page); each refused check waits out the
// click's timeout.
template <class Driver>
void wait_check(Driver& d, bool refused) {
  std::error_code ec;
  for (int i = 0; i < 10; ++i) {
    auto [e, selector] = get(d.async_check_buy(asio::use_future), 30s);
    ec = e;
    if (static_cast<bool>(ec) == refused) break;
    std::this_thread::sleep_for(100ms);
  }
  if (refused)
    REQUIRE(ec == sb::errc::element_not_actionable);
  else
    REQUIRE_MESSAGE(!ec, ec.message());
}

// A buy button behind a banner, hidden or sliding is never pressed: the
// check and the press are refused as not actionable and nothing is
// ordered. A press that starts while the banner covers the button lands
// once the banner is gone: exactly one order.
template <class Backend>
void obstacles_are_never_pressed() {
  using obstacle = shop::shop_server::buy_obstacle;
  Backend b;
  b.shop.set_stock("veg-box", 5);
  watch(b.driver);
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "veg-box", 1);
  for (const obstacle o : {obstacle::covered, obstacle::hidden, obstacle::moving}) {
    CAPTURE(static_cast<int>(o));
    b.shop.set_buy_obstacle(obstacle::none);
    wait_check(b.driver, false);
    b.shop.set_buy_obstacle(o);
    wait_check(b.driver, true);
    auto [e] = std::tuple{get(b.driver.async_press_buy(asio::use_future), 30s)};
    CHECK(e == sb::errc::element_not_actionable);
    CHECK(b.shop.orders().empty());
  }
  b.shop.set_buy_obstacle(obstacle::covered);
  wait_check(b.driver, true);
  auto press = b.driver.async_press_buy(asio::use_future);  // (within the click's timeout)
  std::this_thread::sleep_for(300ms);
  CHECK(b.shop.orders().empty());
  b.shop.set_buy_obstacle(obstacle::none);
  auto [e] = std::tuple{get(press, 30s)};
  REQUIRE_MESSAGE(!e, e.message());
  one_order_confirmed(b, "veg-box", 1, 4);
}

// A single-page shop's route change (history.pushState) draws the status
// and the buy button anew, as new elements: a restock is still seen, and
// the new button buys exactly one order.
template <class Backend>
void route_change_draws_anew() {
  Backend b;
  watch(b.driver);
  REQUIRE(wait_event(
      b.driver, [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status; }, 5s));
  b.shop.change_route();
  b.shop.set_stock("veg-box", 5);  // pushed after the route: drawn on the new elements
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "veg-box", 2);
  press_buys_one(b, "veg-box", 2, 3);
}

// Clock samples: the shop's Date headers and its page clock (the profile's
// `clock`), each between the local times around it. The demo shop's clock
// is this machine's, so each shop time lies within those times, give or
// take its unit and a second of slack.
template <class Backend>
void clock_samples_of_the_shop() {
  sb::site_profile p;
  p.clock = "#shop-time";
  Backend b(p, {}, "static");
  watch(b.driver);
  auto [ec, samples] = get(b.driver.async_clock_samples(3, asio::use_future), 30s);
  REQUIRE_MESSAGE(!ec, ec.message());
  int dates = 0;
  int clocks = 0;
  for (const sb::clock_sample& s : samples) {
    ++(s.source == sb::clock_source::date_header ? dates : clocks);
    CHECK(s.sent <= s.received);
    CHECK(s.shop + s.resolution + 1s >= s.sent);
    CHECK(s.shop <= s.received + 1s);
  }
  CHECK(dates >= 1);
  CHECK(clocks >= 1);
}

// A verification a person must solve: an event with its description when
// the shop shows one (the demo shop's "verify you are human", one of the
// common texts), and one with an empty text when it is gone.
template <class Backend>
void verification_shows_and_goes() {
  Backend b;
  watch(b.driver);
  b.shop.set_challenge(true);
  auto shown = wait_event(
      b.driver,
      [](const sb::shop_event& e) {
        return e.kind == sb::shop_event_kind::verification && !e.text.empty();
      },
      5s);
  REQUIRE(shown);
  CHECK(shown->text.find("verify you are human") != std::string::npos);
  b.shop.set_challenge(false);
  CHECK(wait_event(
      b.driver,
      [](const sb::shop_event& e) {
        return e.kind == sb::shop_event_kind::verification && e.text.empty();
      },
      5s));
}

// With success_response, the order's own response answers it too: an
// outcome saying its status and URL.
template <class Backend>
void success_response_answers() {
  sb::site_profile p;
  p.success_response = "/order";
  Backend b(p);
  b.shop.set_stock("veg-box", 5);
  watch(b.driver);
  wait_in_stock(b.driver);
  choose_and_set(b.driver, "veg-box", 1);
  auto [e] = std::tuple{get(b.driver.async_press_buy(asio::use_future))};
  REQUIRE_MESSAGE(!e, e.message());
  auto answer = wait_event(
      b.driver,
      [](const sb::shop_event& ev) {
        return ev.kind == sb::shop_event_kind::outcome && ev.text.rfind("HTTP ", 0) == 0;
      },
      5s);
  REQUIRE(answer);
  CHECK(answer->confirmed);
  CHECK(answer->text.find("HTTP 200 ") == 0);
  CHECK(answer->text.find("/order") != std::string::npos);
}

// A reload is a new document: its status comes again, as initial.
template <class Backend>
void reload_reports_the_new_document() {
  Backend b;
  watch(b.driver);
  REQUIRE(wait_event(
      b.driver, [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status; }, 5s));
  auto [ec] = std::tuple{get(b.driver.async_reload(asio::use_future), 40s)};
  REQUIRE_MESSAGE(!ec, ec.message());
  CHECK(wait_event(
      b.driver,
      [](const sb::shop_event& e) { return e.kind == sb::shop_event_kind::status && e.initial; },
      5s));
}

// A countdown element (profile `countdown`) is reported as watching starts,
// and each new text of it again.
template <class Backend>
void countdown_events() {
  sb::site_profile p;
  p.countdown = ".countdown";
  Backend b(p, [](shop::shop_server& shop) {
    shop.set_sale_start(shop.shop_now() + std::chrono::minutes(5));
  });
  watch(b.driver);
  const auto countdown = [](const sb::shop_event& e) {
    return e.kind == sb::shop_event_kind::countdown && !e.text.empty();
  };
  auto first = wait_event(b.driver, countdown, 5s);
  REQUIRE(first);
  // It shows seconds: a new text within 5 s (the first may come twice: as
  // watching starts and as the observer starts).
  auto next = wait_event(
      b.driver, [&](const sb::shop_event& e) { return countdown(e) && e.text != first->text; }, 5s);
  CHECK(next);
}

// The browser goes away: the next operations fail with browser_closed.
template <class Backend>
void browser_goes_away() {
  Backend b;
  watch(b.driver);
  b.end_browser();
  std::error_code ec;
  for (int i = 0; i < 50; ++i) {  // the end reaches the driver within a moment
    auto [e, snap] = get(b.driver.async_snapshot(asio::use_future), 30s);
    ec = e;
    if (ec == sb::errc::browser_closed) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(ec == sb::errc::browser_closed);
}

}  // namespace driver_conformance

// The suite's cases for one backend, named "<name>: ...".
#define SECKILL_DRIVER_CONFORMANCE(name, Backend)                                    \
  TEST_CASE(name ": watching reports the status and a restock") {                    \
    driver_conformance::events_on_restock<Backend>();                                \
  }                                                                                  \
  TEST_CASE(name ": a snapshot reads every offer") {                                 \
    driver_conformance::snapshot_of_offers<Backend>();                               \
  }                                                                                  \
  TEST_CASE(name ": choose - quantity - press buys exactly one order") {             \
    driver_conformance::buys_exactly_one_order<Backend>();                           \
  }                                                                                  \
  TEST_CASE(name ": a snapshot as a restock is seen reads what the page shows") {    \
    driver_conformance::snapshot_at_the_restock<Backend>();                          \
  }                                                                                  \
  TEST_CASE(name ": a snapshot says the chosen offer and the quantity") {            \
    driver_conformance::snapshot_of_the_choice<Backend>();                           \
  }                                                                                  \
  TEST_CASE(name ": unknown offers and a disabled button are refused") {             \
    driver_conformance::refusals<Backend>();                                         \
  }                                                                                  \
  TEST_CASE(name ": checking the buy button presses nothing") {                      \
    driver_conformance::check_buy_presses_nothing<Backend>();                        \
  }                                                                                  \
  TEST_CASE(name ": the grid shop - a clicked offer and + - clicks buy one order") { \
    driver_conformance::grid_shop_order<Backend>();                                  \
  }                                                                                  \
  TEST_CASE(name ": a covered - hidden or moving buy button is never pressed") {     \
    driver_conformance::obstacles_are_never_pressed<Backend>();                      \
  }                                                                                  \
  TEST_CASE(name ": a single-page route change - the new elements still work") {     \
    driver_conformance::route_change_draws_anew<Backend>();                          \
  }                                                                                  \
  TEST_CASE(name ": clock samples read the Date header and the page clock") {        \
    driver_conformance::clock_samples_of_the_shop<Backend>();                        \
  }                                                                                  \
  TEST_CASE(name ": a verification is reported as it shows and as it goes") {        \
    driver_conformance::verification_shows_and_goes<Backend>();                      \
  }                                                                                  \
  TEST_CASE(name ": the order's own response answers it with success_response") {    \
    driver_conformance::success_response_answers<Backend>();                         \
  }                                                                                  \
  TEST_CASE(name ": a reload reports the new document") {                            \
    driver_conformance::reload_reports_the_new_document<Backend>();                  \
  }                                                                                  \
  TEST_CASE(name ": a countdown element is reported and each new text of it") {      \
    driver_conformance::countdown_events<Backend>();                                 \
  }                                                                                  \
  TEST_CASE(name ": the browser going away is browser_closed") {                     \
    driver_conformance::browser_goes_away<Backend>();                                \
  }
