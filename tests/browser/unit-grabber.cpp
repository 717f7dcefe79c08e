// The grabber's decision and execution loop against a scripted shop on a
// manual clock: a test double of shop_driver that runs the shop's timeline
// (restocks, sell-outs, answers to orders) when the grabber waits, so time
// passes only as the grabber waits or acts, and nothing sleeps.
#include <seckill/browser/grabber.hpp>
#include <seckill/clock.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace unit_grabber {

namespace asio = boost::asio;
namespace sb = seckill::browser;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;
using clock_type = seckill::manual_clock;
using time_point = clock_type::time_point;

/// A shop whose page changes on a timeline: its stock, the status text the
/// page would show ("In stock" while anything is), the orders it receives and
/// how it answers them.
struct fake_shop {
  explicit fake_shop(asio::io_context& c) : io(c) {}

  asio::io_context& io;
  clock_type clock;
  const time_point start = clock.now();
  sb::shop_snapshot shelf{"Out of stock",
                          {{"apples-1kg", "Apples", "fruit", 3.20, 0},
                           {"veg-box", "Vegetable box", "vegetables", 18.50, 0},
                           {"eggs-12", "Eggs", "dairy", 4.10, 0}}};
  std::optional<ms> answer_after = 20ms;  ///< nullopt: the shop never answers
  ms action_cost = 1ms;                   ///< each action takes this long
  int refuse = 0;                         ///< refuse this many orders whatever the stock
  int throttle = 0;                       ///< refuse this many orders by throttling (a 429)
  std::optional<ms> retry_after;          ///< the throttling answers' Retry-After
  bool plain_first = false;  ///< the page's plain refusal of a throttled order comes first
  bool live = true;          ///< false: the page shows stock changes only when it is reloaded
  std::optional<std::string> countdown;  ///< the countdown element's text, if the page has one
  std::chrono::nanoseconds local_minus_shop{0};  ///< how far the shop's clock is behind
  std::chrono::nanoseconds clock_resolution{std::chrono::milliseconds(1)};
  ms sample_round_trip = 4ms;  ///< each clock sample's round trip
  int reloads = 0;
  std::vector<ms> reload_times;
  std::uint64_t responses = 0;  ///< network status events so far (their numbers)

  struct change {
    time_point at;
    std::function<void(fake_shop&)> apply;
  };
  std::vector<change> timeline;  // by time; equal times in insertion order
  std::deque<sb::shop_event> pending;
  std::map<std::string, std::deque<std::error_code>> failures;  // per action: the next results
  bool watching = false;
  std::string chosen;
  int quantity = 1;
  bool shows_choice = false;  ///< the snapshot says what the page has chosen and its quantity

  /// The page loaded again: nothing chosen, the quantity back to 1.
  void load_again() {
    chosen.clear();
    quantity = 1;
    const bool any = shelf.status == "In stock";
    emit({sb::shop_event_kind::status, shelf.status, any, false, true});
  }

  struct order {
    std::string sku;
    int quantity;
    ms at;
  };
  std::vector<order> presses;
  std::vector<std::string> actions;  // "snapshot", "choose veg-box", "quantity 2", "press"

  [[nodiscard]] ms elapsed() const { return std::chrono::duration_cast<ms>(clock.now() - start); }
  /// The local wall clock: the manual clock read as Unix time.
  [[nodiscard]] std::chrono::system_clock::time_point wall() const {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            clock.now().time_since_epoch()));
  }

  void at(ms t, std::function<void(fake_shop&)> f) {
    const time_point when = start + t;
    auto it = std::upper_bound(timeline.begin(), timeline.end(), when,
                               [](time_point a, const change& c) { return a < c.at; });
    timeline.insert(it, change{when, std::move(f)});
  }

  /// Sets a SKU's stock as the shop would push it: a status event when the
  /// status text changes, an offers event when only the offers do.
  void set_stock(const std::string& sku, int n) {
    for (auto& o : shelf.offers)
      if (o.sku == sku) o.stock = n;
    const bool any = std::any_of(shelf.offers.begin(), shelf.offers.end(),
                                 [](const sb::sku_offer& o) { return o.stock > 0; });
    const std::string status = any ? "In stock" : "Out of stock";
    if (!live) {  // a static page: the change shows at the next load
      shelf.status = status;
      return;
    }
    if (status != shelf.status) {
      shelf.status = status;
      emit({sb::shop_event_kind::status, status, any, false, false});
    } else {
      emit({sb::shop_event_kind::offers, sku, any, false, false});
    }
  }
  void restock(ms t, std::string sku, int n) {
    at(t, [sku = std::move(sku), n](fake_shop& s) { s.set_stock(sku, n); });
  }
  void sell_out(ms t) {
    at(t, [](fake_shop& s) {
      for (auto& o : s.shelf.offers) s.set_stock(o.sku, 0);
    });
  }

  void emit(sb::shop_event e) {
    if (watching) pending.push_back(std::move(e));
  }

  // The shop's answer to an order, at the time it arrives.
  void answer(const std::string& sku, int qty) {
    sb::sku_offer* item = nullptr;
    for (auto& o : shelf.offers)
      if (o.sku == sku) item = &o;
    if (throttle > 0) {
      --throttle;
      if (plain_first)
        emit({sb::shop_event_kind::outcome, "Order rejected: too many requests", false, false});
      sb::shop_event e{sb::shop_event_kind::outcome, "HTTP 429 /order", false, false};
      e.throttled = true;
      e.retry_after = retry_after;
      emit(std::move(e));
    } else if (refuse > 0) {
      --refuse;
      emit({sb::shop_event_kind::outcome, "Order rejected: busy", false, false, false});
    } else if (item == nullptr || item->stock < qty) {
      emit({sb::shop_event_kind::outcome, "Order rejected: sold out", false, false, false});
    } else {
      emit({sb::shop_event_kind::outcome, "Order confirmed: " + std::to_string(qty) + " x " + sku,
            false, true, false});
      set_stock(sku, item->stock - qty);
    }
  }

  // An action: its scripted failure, or done after action_cost.
  std::error_code act(const std::string& what, const std::string& name) {
    actions.push_back(what);
    clock.advance(action_cost);
    auto it = failures.find(name);
    if (it != failures.end() && !it->second.empty()) {
      const auto e = it->second.front();
      it->second.pop_front();
      return e;
    }
    return {};
  }

  // Buy pressed: the order leaves, and its answer comes after answer_after.
  std::error_code press() {
    auto e = act("press", "press");
    if (!e) {
      presses.push_back({chosen, quantity, elapsed()});
      if (answer_after) {
        at(elapsed() + *answer_after,
           [sku = chosen, q = quantity](fake_shop& shop) { shop.answer(sku, q); });
      }
    }
    return e;
  }

  // The driver's wait: the next event, running the timeline up to `max_wait`
  // from now (the clock jumps to each change).
  std::optional<sb::shop_event> next_event(std::chrono::nanoseconds max_wait) {
    const time_point until = clock.now() + max_wait;
    while (pending.empty() && !timeline.empty() && timeline.front().at <= until) {
      change c = std::move(timeline.front());
      timeline.erase(timeline.begin());
      if (c.at > clock.now()) clock.set(c.at);
      c.apply(*this);
    }
    if (!pending.empty()) {
      sb::shop_event e = std::move(pending.front());
      pending.pop_front();
      return e;
    }
    if (until > clock.now()) clock.set(until);
    return std::nullopt;
  }
};

/// The test double: a shop_driver over a fake_shop. Every operation
/// completes through the io_context, like a real driver's.
class fake_driver {
 public:
  using executor_type = asio::io_context::executor_type;

  explicit fake_driver(std::shared_ptr<fake_shop> s) : s_(std::move(s)) {}
  [[nodiscard]] executor_type get_executor() const { return s_->io.get_executor(); }

  template <class Token>
  auto async_watch(Token&& token) {
    return later<void(std::error_code)>(token, [s = s_] {
      const auto e = s->act("watch", "watch");
      if (!e) {
        s->watching = true;
        if (s->countdown)
          s->emit({sb::shop_event_kind::countdown, *s->countdown, false, false, false});
        const bool any = s->shelf.status == "In stock";
        s->emit({sb::shop_event_kind::status, s->shelf.status, any, false, true});
      }
      return std::make_tuple(e);
    });
  }
  template <class Token>
  auto async_next_event(std::chrono::nanoseconds max_wait, Token&& token) {
    return later<void(std::error_code, std::optional<sb::shop_event>)>(token, [s = s_, max_wait] {
      return std::make_tuple(std::error_code{}, s->next_event(max_wait));
    });
  }
  template <class Token>
  auto async_snapshot(Token&& token) {
    return later<void(std::error_code, sb::shop_snapshot)>(token, [s = s_] {
      const auto e = s->act("snapshot", "snapshot");
      sb::shop_snapshot snap = e ? sb::shop_snapshot{} : s->shelf;
      if (!e && s->shows_choice) {
        if (!s->chosen.empty()) snap.chosen = s->chosen;
        snap.quantity = s->quantity;
      }
      return std::make_tuple(e, std::move(snap));
    });
  }
  template <class Token>
  auto async_choose(std::string sku, Token&& token) {
    return later<void(std::error_code)>(token, [s = s_, sku = std::move(sku)] {
      auto e = s->act("choose " + sku, "choose");
      if (!e) s->chosen = sku;
      return std::make_tuple(e);
    });
  }
  template <class Token>
  auto async_set_quantity(int n, Token&& token) {
    return later<void(std::error_code)>(token, [s = s_, n] {
      auto e = s->act("quantity " + std::to_string(n), "quantity");
      if (!e) s->quantity = n;
      return std::make_tuple(e);
    });
  }
  template <class Token>
  auto async_reload(Token&& token) {
    return later<void(std::error_code)>(token, [s = s_] {
      auto e = s->act("reload", "reload");
      if (!e) {
        ++s->reloads;
        s->reload_times.push_back(s->elapsed());
        const bool any = s->shelf.status == "In stock";
        s->emit({sb::shop_event_kind::status, s->shelf.status, any, false, true});
      }
      return std::make_tuple(e);
    });
  }
  template <class Token>
  auto async_clock_samples(int n, Token&& token) {
    return later<void(std::error_code, std::vector<sb::clock_sample>)>(token, [s = s_, n] {
      auto e = s->act("clock", "clock");
      std::vector<sb::clock_sample> out;
      for (int i = 0; !e && i < n; ++i) {
        // Later samples have longer round trips: the first is the best.
        const auto rtt = s->sample_round_trip * (i + 1);
        sb::clock_sample c;
        c.sent = s->wall();
        s->clock.advance(rtt / 2);
        const auto shop_now = s->wall() - s->local_minus_shop;
        c.shop = std::chrono::system_clock::time_point(
            std::chrono::floor<std::chrono::system_clock::duration>(
                shop_now.time_since_epoch() - shop_now.time_since_epoch() % s->clock_resolution));
        s->clock.advance(rtt - rtt / 2);
        c.received = s->wall();
        c.resolution = s->clock_resolution;
        out.push_back(c);
      }
      return std::make_tuple(e, std::move(out));
    });
  }
  template <class Token>
  auto async_check_buy(Token&& token) {
    return later<void(std::error_code, std::string)>(token, [s = s_] {
      auto e = s->act("check buy", "check");
      return std::make_tuple(e, std::string("#buy"));
    });
  }
  template <class Token>
  auto async_look_at_buy(Token&& token) {
    return later<void(std::error_code, sb::element_box)>(token, [s = s_] {
      auto e = s->act("look at buy", "look");
      return std::make_tuple(e, sb::element_box{120, 340, 80, 32});
    });
  }
  template <class Token>
  auto async_press_buy(Token&& token) {
    return later<void(std::error_code)>(token, [s = s_] { return std::make_tuple(s->press()); });
  }

 protected:
  // Runs `produce` when the operation starts and completes with its values
  // through the io_context.
  template <class Signature, class Token, class Produce>
  auto later(Token& token, Produce produce) {
    return asio::async_initiate<Token, Signature>(
        [io = &s_->io](auto handler, Produce p) {
          std::apply(
              [&](auto&&... values) {
                asio::post(*io, asio::append(std::move(handler), std::move(values)...));
              },
              p());
        },
        token, std::move(produce));
  }

  std::shared_ptr<fake_shop> s_;
};

static_assert(sb::shop_driver<fake_driver>);

/// A fake_driver that also runs a try's actions in one operation
/// (ordering_shop_driver): "order", then each action as fake_driver does it.
class ordering_fake_driver : public fake_driver {
 public:
  using fake_driver::fake_driver;
  template <class Token>
  auto async_order(sb::order_actions a, Token&& token) {
    return later<void(std::error_code, sb::order_action)>(token, [s = s_, a = std::move(a)] {
      s->actions.push_back("order");
      if (a.sku) {
        if (auto e = s->act("choose " + *a.sku, "choose"))
          return std::make_tuple(e, sb::order_action::choose);
        s->chosen = *a.sku;
      }
      if (a.quantity) {
        if (auto e = s->act("quantity " + std::to_string(*a.quantity), "quantity"))
          return std::make_tuple(e, sb::order_action::quantity);
        s->quantity = *a.quantity;
      }
      return std::make_tuple(s->press(), sb::order_action::press);
    });
  }
};

static_assert(sb::ordering_shop_driver<ordering_fake_driver>);
static_assert(!sb::ordering_shop_driver<fake_driver>);

template <class Driver = fake_driver>
using test_grabber =
    sb::grabber<Driver, sb::priority_strategy, seckill::token_bucket<clock_type>, clock_type>;

/// A shop, a pace and a run: set the shop up, then run() the grabber to its end.
struct harness {
  asio::io_context io;
  std::shared_ptr<fake_shop> shop = std::make_shared<fake_shop>(io);
  double rate = 50, burst = 10;
  sb::basic_grabber_options<clock_type> options;
  std::vector<std::string> log;

  harness() {
    options.log = [this](std::string_view l) { log.emplace_back(l); };
    options.wall_clock = [s = shop] { return s->wall(); };
  }

  template <class Driver = fake_driver>
  std::pair<std::error_code, sb::basic_grab_result<clock_type>> run(const std::string& strategy,
                                                                    ms deadline = 10s) {
    seckill::token_bucket<clock_type> pace(rate, burst, shop->clock);
    test_grabber<Driver> g(Driver(shop), sb::priority_strategy(sb::parse_strategy(strategy)), pace,
                           options, shop->clock);
    std::optional<std::pair<std::error_code, sb::basic_grab_result<clock_type>>> out;
    g.async_run(deadline, [&](std::error_code ec, sb::basic_grab_result<clock_type> r) {
      out.emplace(ec, std::move(r));
    });
    io.run();
    io.restart();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  [[nodiscard]] int count(sb::grab_step step, const sb::basic_grab_result<clock_type>& r) const {
    return static_cast<int>(std::count_if(r.events.begin(), r.events.end(),
                                          [&](const auto& e) { return e.step == step; }));
  }
  [[nodiscard]] bool logged(const std::string& needle) const {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
};

}  // namespace unit_grabber

using namespace unit_grabber;

TEST_SUITE("unit") {
  TEST_CASE("grabber loop: a restock gives one order of the wanted SKU - then it stops") {
    harness h;
    h.shop->restock(100ms, "apples-1kg", 10);  // in stock, not wanted
    h.shop->restock(300ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\nquantity = 2\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.sku == "veg-box");
    CHECK(res.quantity == 2);
    CHECK(res.attempts == 1);
    CHECK(res.confirmation == "Order confirmed: 2 x veg-box");
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].sku == "veg-box");
    CHECK(h.shop->presses[0].quantity == 2);
    // The apples restock was looked at and skipped; the veg-box one bought at once:
    // snapshot, choose, quantity, press (1 ms each) after the change at 300 ms.
    CHECK(h.shop->presses[0].at == 304ms);
    const std::vector<std::string> expected{"watch",          "snapshot",   "snapshot",
                                            "choose veg-box", "quantity 2", "press"};
    CHECK(h.shop->actions == expected);
    CHECK(h.count(sb::grab_step::skipped, res) == 1);
    CHECK(h.count(sb::grab_step::decided, res) == 1);
    CHECK(h.shop->elapsed() == 324ms);  // the answer, 20 ms after the press
    CHECK(h.shop->timeline.empty());
    CHECK(h.logged("grabber: confirmed: Order confirmed: 2 x veg-box"));
    // Events carry the grabber's clock.
    CHECK(res.events.back().at == h.shop->clock.now());
  }

  TEST_CASE("grabber loop: a status that flaps before the grabber looks gives one decision") {
    harness h;
    h.shop->at(200ms, [](fake_shop& s) {
      for (int i = 0; i < 3; ++i) {
        s.set_stock("eggs-12", 4);
        s.set_stock("eggs-12", 0);
      }
      s.set_stock("eggs-12", 4);
    });
    auto [ec, res] = h.run("want = category:dairy\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(h.shop->presses.size() == 1);
    CHECK(h.count(sb::grab_step::stock_changed, res) == 8);  // the load and seven flips
    CHECK(h.count(sb::grab_step::decided, res) == 1);
  }

  TEST_CASE("grabber loop: flaps while an order is in flight cause no second order") {
    harness h;
    h.shop->answer_after = 500ms;
    h.shop->restock(100ms, "eggs-12", 4);
    for (int i = 0; i < 3; ++i) {
      h.shop->at(150ms + ms(50 * i), [](fake_shop& s) { s.set_stock("eggs-12", 0); });
      h.shop->at(175ms + ms(50 * i), [](fake_shop& s) { s.set_stock("eggs-12", 4); });
    }
    auto [ec, res] = h.run("want = sku:eggs-12\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.attempts == 1);
    CHECK(h.shop->presses.size() == 1);
    CHECK(h.shop->elapsed() == 604ms);
  }

  TEST_CASE("grabber loop: a sold-out refusal waits for the next restock - which is bought") {
    harness h;
    h.options.retries = 0;
    h.shop->restock(100ms, "veg-box", 1);
    // Someone else buys it before our order arrives; then a restock.
    h.shop->at(110ms, [](fake_shop& s) { s.set_stock("veg-box", 0); });
    h.shop->restock(2s, "veg-box", 3);
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.attempts == 2);
    REQUIRE(h.shop->presses.size() == 2);
    CHECK(h.shop->presses[1].at == 2004ms);
    CHECK(h.count(sb::grab_step::rejected, res) == 1);
    CHECK(h.logged("grabber: rejected: Order rejected: sold out"));
  }

  TEST_CASE(
      "grabber loop: fewer in stock than asked buys what there is - or with partial no skips") {
    {
      harness h;
      h.shop->restock(100ms, "veg-box", 2);
      auto [ec, res] = h.run("want = sku:veg-box\nquantity = 3\n");
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      CHECK(res.quantity == 2);
      CHECK(res.requested == 3);
      CHECK(h.logged("decided: 2 x veg-box at 18.50 (fewer than the 3 asked: 2 in stock)"));
      REQUIRE(h.shop->presses.size() == 1);
      CHECK(h.shop->presses[0].quantity == 2);
    }
    {
      harness h;
      h.shop->restock(100ms, "veg-box", 2);
      h.shop->restock(1s, "veg-box", 3);  // an offers change: the status stays "In stock"
      auto [ec, res] = h.run("want = sku:veg-box\nquantity = 3\npartial = no\n");
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      CHECK(res.quantity == 3);
      CHECK(h.count(sb::grab_step::skipped, res) == 1);
      REQUIRE(h.shop->presses.size() == 1);
      CHECK(h.shop->presses[0].at == 1004ms);
    }
  }

  TEST_CASE("grabber loop: an offer above the price cap is never bought") {
    harness h;
    h.shop->restock(100ms, "veg-box", 5);  // 18.50
    h.shop->at(400ms, [](fake_shop& s) {
      s.shelf.offers[1].price = 9.90;
      s.set_stock("veg-box", 6);
    });
    auto [ec, res] = h.run("want = sku:veg-box\nmax_price = 10\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(h.count(sb::grab_step::skipped, res) == 1);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at == 404ms);

    harness never;
    never.shop->restock(100ms, "veg-box", 5);
    auto [ec2, res2] = never.run("want = sku:veg-box\nmax_price = 10\n", 2s);
    CHECK(ec2 == seckill::errc::timed_out);
    CHECK_FALSE(res2.ordered);
    CHECK(never.shop->presses.empty());
  }

  TEST_CASE(
      "grabber loop: retries within one stock window are counted - and a new window resets them") {
    {
      harness h;
      h.options.retries = 2;
      h.shop->refuse = 2;
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n");
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      CHECK(res.attempts == 3);
      CHECK(h.count(sb::grab_step::rejected, res) == 2);
      REQUIRE(h.shop->presses.size() == 3);
      CHECK(h.shop->presses[1].at == 128ms);  // at once after the refusal at 124 ms
    }
    {
      harness h;
      h.options.retries = 1;
      h.shop->refuse = 3;
      h.shop->restock(100ms, "veg-box", 5);
      h.shop->sell_out(1s);
      h.shop->restock(2s, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n");
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      // Two tries in the first window, then the wait for a new one, whose
      // first try is refused and whose retry is confirmed.
      REQUIRE(h.shop->presses.size() == 4);
      CHECK(h.shop->presses[1].at < 1s);
      CHECK(h.shop->presses[2].at == 2004ms);
      CHECK(h.shop->presses[3].at == 2028ms);
    }
    {
      harness h;
      h.options.retries = 0;
      h.shop->refuse = 1;
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n", 3s);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(h.shop->presses.size() == 1);
    }
  }

  TEST_CASE("grabber loop: a failed action is a failed try - and browser_closed ends the run") {
    {
      harness h;
      h.options.retries = 1;
      h.shop->failures["choose"].push_back(make_error_code(sb::errc::element_not_found));
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n");
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      CHECK(h.count(sb::grab_step::failed, res) == 1);
      CHECK(h.logged("grabber: failed: choosing veg-box:"));
      CHECK(h.shop->presses.size() == 1);
    }
    {
      harness h;
      h.shop->failures["press"].push_back(make_error_code(sb::errc::browser_closed));
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n");
      CHECK(ec == sb::errc::browser_closed);
      CHECK_FALSE(res.ordered);
      CHECK(h.shop->presses.empty());
      CHECK(h.shop->elapsed() == 104ms);
    }
    {
      harness h;
      h.shop->failures["watch"].push_back(make_error_code(sb::errc::javascript_exception));
      auto [ec, res] = h.run("want = sku:veg-box\n");
      CHECK(ec == sb::errc::javascript_exception);
      CHECK(res.events.empty());
    }
  }

  TEST_CASE("grabber loop: the deadline ends the run on time - and an unanswered order times out") {
    {
      harness h;
      auto [ec, res] = h.run("want = sku:veg-box\n", 1500ms);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(h.shop->elapsed() == 1500ms);
      CHECK(h.logged("grabber: gave-up: deadline of 1500 ms passed"));
      CHECK(res.events.back().at == h.shop->start + 1500ms);
    }
    {
      harness h;
      h.shop->answer_after.reset();
      h.options.confirm_timeout = 2s;
      h.options.retries = 1;
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n", 10s);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(h.count(sb::grab_step::failed, res) == 2);
      CHECK(h.logged("no answer from the shop after pressing buy"));
      REQUIRE(h.shop->presses.size() == 2);
      CHECK(h.shop->presses[1].at == 2108ms);  // the first timed out at 2104 ms
      CHECK(h.shop->elapsed() == 10000ms);
    }
    {
      // The deadline falls while the order waits for its answer.
      harness h;
      h.shop->answer_after = 5s;
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n", 1s);
      CHECK(ec == seckill::errc::timed_out);
      CHECK(h.shop->presses.size() == 1);
      CHECK(h.shop->elapsed() == 1000ms);
    }
  }

  TEST_CASE("grabber loop: every action takes a token - so a slow pace spaces them") {
    harness h;
    h.rate = 2;  // one action every 500 ms
    h.burst = 1;
    h.shop->restock(100ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    // The choice takes the full bucket's token at 101 ms; the quantity waits
    // for the next one (601 ms), the press for the one after (1101 ms).
    CHECK(h.shop->presses[0].at == 1102ms);
    CHECK(h.count(sb::grab_step::paced, res) == 2);
    CHECK(h.logged("grabber: paced: waiting 499 ms for the pace"));
  }

  TEST_CASE("grabber loop: a sell-out during the pace drops the try before the press") {
    harness h;
    h.rate = 1;
    h.burst = 1;
    h.options.retries = 0;
    h.shop->restock(100ms, "veg-box", 5);
    h.shop->sell_out(600ms);  // while quantity waits for its token
    h.shop->restock(5s, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n", 20s);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at > 5s);
    CHECK(h.count(sb::grab_step::decided, res) == 2);
  }

  TEST_CASE("sale start: nothing is pressed before the start - then it is pressed at the start") {
    harness h;
    h.shop->restock(100ms, "veg-box", 5);  // in stock long before the start
    h.options.start = sb::sale_time{h.shop->wall() + 2s, std::chrono::minutes(480)};
    h.options.prepare_before.reset();  // (readiness ahead: the "readiness" cases)
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    // The start at the latest the estimate allows (never before the shop's
    // start, at most the interval's width after it); then snapshot, choice,
    // quantity and press, 1 ms each.
    REQUIRE(res.clock.has_value());
    CHECK(h.shop->presses[0].at >= 2004ms);
    CHECK(h.shop->presses[0].at <= 2004ms + 2 * res.clock->uncertainty);
    const std::vector<std::string> expected{"watch",          "clock",      "snapshot",
                                            "choose veg-box", "quantity 1", "press"};
    CHECK(h.shop->actions == expected);
    REQUIRE(res.clock.has_value());
    CHECK(res.clock->samples == 4);
    CHECK(res.clock->dropped == 1);       // 20 ms: above twice the best plus 10 ms
    CHECK(res.clock->round_trip == 4ms);  // the best sample's
    CHECK(h.count(sb::grab_step::started, res) == 1);
    CHECK(h.logged("grabber: started: in stock at the start"));
    CHECK(h.logged("shop time = local "));
  }

  TEST_CASE("sale start: a start that has passed acts at once") {
    harness h;
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() - 1h, std::chrono::minutes(0)};
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at == 104ms);
    CHECK(h.logged("already passed"));
  }

  TEST_CASE("sale start: the shop clock's offset is applied to the start") {
    harness h;
    h.shop->local_minus_shop = 3s;  // the shop's clock is 3 s behind the local one
    h.shop->restock(100ms, "veg-box", 5);
    // The shop's clock reads now + 1 s at local now + 4 s.
    h.options.start = sb::sale_time{h.shop->wall() + 1s, std::chrono::minutes(0)};
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE(res.clock.has_value());
    CHECK(res.clock->offset == 3s - 500us);  // within its uncertainty of the truth
    CHECK(res.clock->uncertainty == 2500us);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at >= 4004ms);
    CHECK(h.shop->presses[0].at <= 4004ms + 2 * res.clock->uncertainty);
    CHECK(h.logged("offset +2.999 s ± 0.002 s"));
  }

  TEST_CASE("sale start: a Date header's whole seconds give an uncertainty that holds the truth") {
    harness h;
    h.shop->local_minus_shop = 1700ms;
    h.shop->clock_resolution = 1s;
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() + 10s, std::chrono::minutes(0)};
    auto [ec, res] = h.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec);
    REQUIRE(res.clock.has_value());
    CHECK(res.clock->uncertainty <= 502ms);  // four readings' intersection
    CHECK(res.clock->lo <= 1700ms);
    CHECK(res.clock->hi >= 1700ms);
    CHECK(h.logged("the shop's time in whole seconds"));
  }

  TEST_CASE("sale start: a countdown sets the start - and a new text of it moves the start") {
    harness h;
    h.shop->countdown = "还剩 0分2秒";
    h.shop->set_stock("veg-box", 5);  // in stock from the beginning
    h.shop->at(1000ms, [](fake_shop& s) {
      s.emit({sb::shop_event_kind::countdown, "00:00:05", false, false, false});
    });
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    // Watching at 1 ms: start at 2001 ms; at 1000 ms: 5 s left, start at 6000 ms.
    CHECK(h.shop->presses[0].at == 6004ms);
    CHECK(h.logged("countdown '还剩 0分2秒': start in 2.000 s"));
    CHECK(h.logged("countdown '00:00:05': start in 5.000 s"));
    CHECK_FALSE(res.clock.has_value());  // a countdown is relative: no clock to read
  }

  TEST_CASE("reload-poll: every reload takes a token - and a restock shows at a reload") {
    harness h;
    h.shop->live = false;  // the page shows the stock only as it loads
    h.rate = 2;
    h.burst = 1;
    h.options.reload_every = 100ms;  // faster than the pace allows
    h.shop->restock(3000ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n", 20s);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at > 3000ms);
    CHECK(res.reloads == h.shop->reloads);
    const auto before = std::count_if(h.shop->reload_times.begin(), h.shop->reload_times.end(),
                                      [](ms t) { return t < 3000ms; });
    // A bucket of 1 with 2 tokens a second gives at most 1 + 2 x 3 in 3 s,
    // against 30 at reload_every alone; it is used to the full.
    CHECK(before <= 7);
    CHECK(before >= 6);
    // Every token: the reloads and the three actions, within what the bucket gave.
    const double seconds = std::chrono::duration<double>(h.shop->presses[0].at).count();
    CHECK(static_cast<double>(h.shop->reloads + 3) <= 1 + 2 * seconds + 1e-9);
    for (std::size_t i = 1; i < h.shop->reload_times.size(); ++i) {
      CHECK(h.shop->reload_times[i] - h.shop->reload_times[i - 1] >= 100ms);
    }
  }

  TEST_CASE("reload-poll: a failed reload is reported - and tried again at the next turn") {
    harness h;
    h.shop->live = false;
    h.options.reload_every = 200ms;
    h.shop->failures["reload"] = {make_error_code(sb::errc::navigation_failed)};
    h.shop->restock(50ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(h.count(sb::grab_step::reload_failed, res) == 1);
    CHECK(h.shop->reloads == 1);  // the second reload showed the stock
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at > 400ms);
    CHECK(h.logged("grabber: reload-failed: "));
  }

  TEST_CASE("reload-poll: no reload before the start - the first at the start") {
    harness h;
    h.shop->live = false;
    h.options.reload_every = 100ms;
    h.options.start = sb::sale_time{h.shop->wall() + 1s, std::chrono::minutes(0)};
    h.shop->restock(500ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE_FALSE(h.shop->reload_times.empty());
    CHECK(h.shop->reload_times.front() >= 1000ms);  // never before the start
    REQUIRE(res.clock.has_value());
    CHECK(h.shop->reload_times.front() <= 1001ms + 2 * res.clock->uncertainty);
    CHECK(h.shop->reloads == 1);
    CHECK(res.ordered);
  }

  TEST_CASE("pace_reaction = no: the try after a flip is not paced - its retry is") {
    for (const bool exempt : {true, false}) {
      CAPTURE(exempt);
      harness h;
      h.rate = 1;
      h.burst = 1;
      h.options.pace_reaction = !exempt;
      h.options.delay = {40ms, 120ms};
      h.shop->refuse = 1;  // the first order is refused: a retry
      h.shop->restock(500ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n", 20s);
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      REQUIRE(h.shop->presses.size() == 2);
      if (exempt) {
        // Snapshot, choice, quantity, press: 1 ms each, no token, no pause.
        CHECK(h.shop->presses[0].at == 504ms);
        CHECK(h.logged("(the reaction: not paced)"));
        // The retry: a pause before each action, and a token each (one in
        // the bucket, then one a second).
        CHECK(h.count(sb::grab_step::paused, res) == 3);
        CHECK(h.count(sb::grab_step::paced, res) == 2);
        CHECK(h.shop->presses[1].at - h.shop->presses[0].at > 2s);
      } else {
        CHECK(h.shop->presses[0].at > 2500ms);
        CHECK(h.count(sb::grab_step::paused, res) == 6);
      }
    }
  }

  TEST_CASE("delays: a seeded pause before each action within the bounds - the same for a seed") {
    const auto pauses = [](std::uint64_t seed) {
      harness h;
      h.options.delay = {40ms, 120ms};
      h.options.delay_seed = seed;
      h.options.retries = 3;
      h.shop->refuse = 3;
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run("want = sku:veg-box\n", 20s);
      CHECK_FALSE(ec);
      CHECK(res.ordered);
      CHECK(res.attempts == 4);
      std::vector<long> out;
      for (const auto& e : res.events) {
        if (e.step == sb::grab_step::paused) out.push_back(std::stol(e.detail));
      }
      return out;
    };
    const auto a = pauses(7);
    REQUIRE(a.size() == 12);  // 4 tries x (choose, quantity, press)
    for (const long p : a) {
      CHECK(p >= 40);
      CHECK(p <= 120);
    }
    CHECK(pauses(7) == a);
    CHECK(pauses(8) != a);
    CHECK(std::set<long>(a.begin(), a.end()).size() > 3);  // they vary
  }

  TEST_CASE("delays: the pauses are waited - the press comes after them") {
    harness h;
    h.options.delay = {50ms, 50ms};
    h.shop->restock(100ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE(h.shop->presses.size() == 1);
    // Snapshot at 101, then 50 ms + 1 ms for each of the three actions.
    CHECK(h.shop->presses[0].at == 254ms);
  }
}

TEST_SUITE("unit") {
  TEST_CASE("notices: a confirmed order gives exactly one ordered notice - with the SKU") {
    harness h;
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    h.shop->refuse = 1;  // a refused try first: no notice for it
    h.shop->restock(100ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\nquantity = 2\n");
    CHECK_FALSE(ec);
    CHECK(res.attempts == 2);
    REQUIRE(told.size() == 1);
    CHECK(told[0].kind == sb::notice_kind::ordered);
    CHECK(told[0].sku == "veg-box");
    CHECK(told[0].quantity == 2);
    CHECK(told[0].text == "Order confirmed: 2 x veg-box");
    CHECK(told[0].at == h.shop->wall());
  }

  TEST_CASE("notices: a window that closes with no order is sold-out - told once - then failed") {
    harness h;
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    h.shop->restock(100ms, "apples-1kg", 3);  // not wanted
    h.shop->sell_out(200ms);
    h.shop->restock(300ms, "apples-1kg", 3);
    h.shop->sell_out(400ms);
    auto [ec, res] = h.run("want = sku:veg-box\n", 1s);
    CHECK(ec == seckill::errc::timed_out);
    CHECK(h.count(sb::grab_step::sold_out, res) == 2);
    REQUIRE(told.size() == 2);
    CHECK(told[0].kind == sb::notice_kind::sold_out);
    CHECK(told[1].kind == sb::notice_kind::failed);
    CHECK(told[1].text == "gave up: the deadline of 1000 ms passed");
  }

  TEST_CASE(
      "notices: a window that closes while the order is in flight - sold-out only if refused") {
    for (const bool confirmed : {true, false}) {
      CAPTURE(confirmed);
      harness h;
      std::vector<sb::notice> told;
      h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
      h.shop->answer_after = 50ms;
      h.shop->restock(100ms, "veg-box", 1);
      // The page says out of stock before the shop's answer (the order took the
      // last unit, or someone else did).
      h.shop->at(110ms, [confirmed](fake_shop& s) {
        if (!confirmed) s.shelf.offers[1].stock = 0;
        s.shelf.status = "Out of stock";
        s.emit({sb::shop_event_kind::status, "Out of stock", false, false, false});
      });
      auto [ec, res] = h.run("want = sku:veg-box\n", 1s);
      CHECK(res.ordered == confirmed);
      CHECK(h.count(sb::grab_step::sold_out, res) == (confirmed ? 0 : 1));
      REQUIRE(told.size() == (confirmed ? 1u : 2u));
      CHECK(told[0].kind == (confirmed ? sb::notice_kind::ordered : sb::notice_kind::sold_out));
      if (!confirmed) CHECK(told[1].kind == sb::notice_kind::failed);
    }
  }
}

TEST_SUITE("unit") {
  TEST_CASE(
      "hand-off: nothing is done while a verification shows - then the grab resumes and buys") {
    harness h;
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    h.shop->at(100ms, [](fake_shop& s) {
      s.emit(
          {sb::shop_event_kind::verification, "iframe from captcha.example", false, false, false});
    });
    h.shop->restock(200ms, "veg-box", 5);  // in stock behind the verification
    h.shop->at(250ms, [](fake_shop& s) {   // a new description of the same: no second hand-off
      s.emit({sb::shop_event_kind::verification, "the text \"验证码\"", false, false, false});
    });
    h.shop->at(900ms, [](fake_shop& s) {
      s.emit({sb::shop_event_kind::verification, "", false, false, false});
    });
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    // Not one action between the verification and its end: the page read again, then bought.
    CHECK(h.shop->presses[0].at == 904ms);
    const std::vector<std::string> expected{"watch", "snapshot", "choose veg-box", "quantity 1",
                                            "press"};
    CHECK(h.shop->actions == expected);
    CHECK(h.count(sb::grab_step::hand_off, res) == 1);
    CHECK(h.count(sb::grab_step::resumed, res) == 1);
    CHECK(
        h.logged("grabber: hand-off: the shop shows a verification (iframe from captcha.example)"));
    REQUIRE(told.size() == 2);
    CHECK(told[0].kind == sb::notice_kind::hand_off);
    CHECK(told[0].text == "the shop shows a verification: iframe from captcha.example");
    CHECK(told[1].kind == sb::notice_kind::ordered);
  }

  TEST_CASE("hand-off: the deadline still applies - and no reload goes out while it shows") {
    harness h;
    h.shop->live = false;
    h.options.reload_every = 100ms;
    h.shop->at(250ms, [](fake_shop& s) {
      s.emit({sb::shop_event_kind::verification, "div.captcha", false, false, false});
    });
    h.shop->restock(300ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\n", 2s);
    CHECK(ec == seckill::errc::timed_out);
    CHECK_FALSE(res.ordered);
    CHECK(h.shop->presses.empty());
    CHECK(h.shop->reloads == 2);  // at 100 and 200 ms, none after the verification showed
    CHECK(h.count(sb::grab_step::gave_up, res) == 1);
  }

  TEST_CASE("hand-off: a verification that shows during the pace drops the try") {
    harness h;
    h.rate = 1;
    h.burst = 1;
    h.shop->restock(100ms, "veg-box", 5);
    h.shop->at(300ms, [](fake_shop& s) {
      s.emit({sb::shop_event_kind::verification, "div.captcha", false, false, false});
    });
    h.shop->at(5000ms, [](fake_shop& s) {
      s.emit({sb::shop_event_kind::verification, "", false, false, false});
    });
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at > 5000ms);  // not before the verification was gone
  }
}

namespace unit_grabber {

/// Stock from the network on the fake shop: `shelve` changes the stock the
/// page would show without an event; `respond` is a polled response the
/// page received, read as a network status event (numbered in order).
void shelve(fake_shop& shop, ms t, const std::string& sku, int n) {
  shop.at(t, [sku, n](fake_shop& s) {
    for (auto& o : s.shelf.offers)
      if (o.sku == sku) o.stock = n;
  });
}
void respond(fake_shop& shop, ms t, bool in_stock, bool cached = false,
             sb::page_check check = sb::page_check::none) {
  shop.at(t, [in_stock, cached, check](fake_shop& s) {
    sb::shop_event e;
    e.kind = sb::shop_event_kind::status;
    e.text = in_stock ? "in stock (veg-box 3)" : "not in stock (veg-box 0)";
    e.in_stock = in_stock;
    e.source = sb::event_source::network;
    e.cached = cached;
    e.check = check;
    e.response = ++s.responses;
    s.emit(std::move(e));
  });
}
void poll(fake_shop& shop, ms from, ms to, ms every, bool in_stock, bool cached = false) {
  for (ms t = from; t < to; t += every) respond(shop, t, in_stock, cached);
}

}  // namespace unit_grabber

TEST_SUITE("unit") {
  TEST_CASE("network stock: a restock is acted on once a newer response confirms it") {
    harness h;
    poll(*h.shop, 0ms, 100ms, 20ms, false);
    shelve(*h.shop, 100ms, "veg-box", 3);
    respond(*h.shop, 100ms, true);
    respond(*h.shop, 300ms, true);
    auto [ec, res] = h.run("want = sku:veg-box\n", 2s);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at >= 300ms);
    CHECK(h.shop->presses[0].at < 310ms);
    CHECK(
        h.logged("grabber: unconfirmed: 'in stock (veg-box 3)' (response 6): waiting for a newer "
                 "response to confirm it"));
    CHECK(h.logged("(response 7, confirmed by a newer one)"));
    CHECK(h.count(sb::grab_step::unconfirmed, res) == 1);
  }

  TEST_CASE("network stock: cached responses are stale - never acted on - nor do they confirm") {
    harness h;
    // The shop sold out; a cache keeps serving the old "in stock" body.
    poll(*h.shop, 100ms, 900ms, 50ms, true, true);
    auto [ec, res] = h.run("want = sku:veg-box\n", 1s);
    CHECK(ec == seckill::errc::timed_out);
    CHECK(h.shop->presses.empty());
    CHECK(std::count(h.shop->actions.begin(), h.shop->actions.end(), "snapshot") == 0);
    CHECK(h.logged("'in stock (veg-box 3)' came from a cache: stale, not acted on"));
    CHECK(h.count(sb::grab_step::unconfirmed, res) == 1);  // said once, not per poll

    harness h2;  // a fresh response after cached ones still needs a newer fresh one
    shelve(*h2.shop, 100ms, "veg-box", 3);
    respond(*h2.shop, 100ms, true, true);
    respond(*h2.shop, 200ms, true);
    respond(*h2.shop, 300ms, true, true);
    respond(*h2.shop, 500ms, true);
    auto [ec2, res2] = h2.run("want = sku:veg-box\n", 2s);
    CHECK(res2.ordered);
    REQUIRE(h2.shop->presses.size() == 1);
    CHECK(h2.shop->presses[0].at >= 500ms);
  }

  TEST_CASE(
      "network stock: a restock the page contradicts is not acted on - one it agrees with is") {
    harness h;
    shelve(*h.shop, 100ms, "veg-box", 3);
    respond(*h.shop, 100ms, true, false, sb::page_check::contradicts);
    respond(*h.shop, 200ms, true, false, sb::page_check::contradicts);
    respond(*h.shop, 600ms, true, false, sb::page_check::agrees);
    auto [ec, res] = h.run("want = sku:veg-box\n", 2s);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at >= 600ms);
    CHECK(h.shop->presses[0].at < 610ms);  // the page's agreement is enough: no second response
    CHECK(h.logged("(response 1): the page says otherwise, not acted on"));
    CHECK(h.logged("(response 3, the page agrees)"));
  }

  TEST_CASE("network stock: the first response after a new page is re-checked anew") {
    harness h;
    shelve(*h.shop, 100ms, "veg-box", 3);
    respond(*h.shop, 100ms, true);
    h.shop->at(200ms, [](fake_shop& s) {  // a reload: the new document's status
      s.emit({sb::shop_event_kind::status, "a new page", false, false, true});
    });
    respond(*h.shop, 300ms, true);  // newer than response 1, but the first of this page
    respond(*h.shop, 500ms, true);
    auto [ec, res] = h.run("want = sku:veg-box\n", 2s);
    CHECK(res.ordered);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at >= 500ms);
    CHECK(h.count(sb::grab_step::unconfirmed, res) == 2);
  }

  TEST_CASE("network stock: a sold-out response closes the window at once - polls do not stall") {
    harness h;
    h.rate = 5;  // a slow pace: polls keep coming while the grabber waits for tokens
    h.burst = 1;
    shelve(*h.shop, 100ms, "veg-box", 3);
    poll(*h.shop, 100ms, 2000ms, 50ms, true);  // the same body, every 50 ms
    auto [ec, res] = h.run("want = sku:veg-box\n", 3s);
    CHECK(res.ordered);  // the repeated polls did not drop the paced try
    CHECK(h.shop->presses.size() == 1);

    harness h2;
    shelve(*h2.shop, 100ms, "veg-box", 3);
    respond(*h2.shop, 100ms, true);
    respond(*h2.shop, 150ms, false);  // sold out before a confirmation
    respond(*h2.shop, 200ms, true);   // pending again: response 2 was not in stock
    auto [ec2, res2] = h2.run("want = sku:veg-box\n", 1s);
    CHECK(h2.shop->presses.empty());
    CHECK(h2.count(sb::grab_step::unconfirmed, res2) == 2);
  }

  TEST_CASE("dry run: choose - quantity - the buy button checked - and never a press") {
    harness h;
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    h.shop->restock(100ms, "veg-box", 5);
    const std::string strategy = "want = sku:veg-box\nquantity = 2\nmode = dry-run\n";
    sb::apply_strategy(h.options, sb::parse_strategy(strategy), sb::site_profile{});
    CHECK(h.options.mode == sb::grab_mode::dry_run);
    auto [ec, res] = h.run(strategy);
    CHECK_FALSE(ec);
    CHECK(h.shop->presses.empty());
    CHECK_FALSE(res.ordered);
    CHECK(res.would_order);
    CHECK(res.sku == "veg-box");
    CHECK(res.quantity == 2);
    CHECK(res.attempts == 0);
    CHECK(h.count(sb::grab_step::would_press, res) == 1);
    CHECK(h.logged("grabber: would-press: dry run: would press #buy for 2 x veg-box at 18.50"));
    const std::vector<std::string> want{"watch", "snapshot", "choose veg-box", "quantity 2",
                                        "check buy"};
    CHECK(h.shop->actions == want);
    CHECK(told.empty());  // no order, no failure
  }

  TEST_CASE("dry run: a buy button that is not actionable is a failed try - still no press") {
    harness h;
    h.options.mode = sb::grab_mode::dry_run;
    h.shop->failures["check"] = {make_error_code(sb::errc::element_not_actionable),
                                 make_error_code(sb::errc::element_not_actionable)};
    h.shop->restock(100ms, "veg-box", 5);
    auto [ec, res] = h.run("want = sku:veg-box\nretries = 1\n", 2s);
    CHECK(ec == seckill::errc::timed_out);
    CHECK(h.shop->presses.empty());
    CHECK_FALSE(res.would_order);
    CHECK(h.count(sb::grab_step::failed, res) == 2);
    CHECK(h.logged("checking the buy button"));
  }

  TEST_CASE("monitor: no action at all - each stock flip told - the deadline ends it cleanly") {
    harness h;
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    h.shop->restock(100ms, "veg-box", 5);
    h.shop->restock(200ms, "eggs-12", 5);  // offers only: no flip
    h.shop->sell_out(300ms);
    h.shop->restock(400ms, "veg-box", 1);
    const std::string strategy = "want = sku:veg-box\nmode = monitor\n";
    sb::apply_strategy(h.options, sb::parse_strategy(strategy), sb::site_profile{});
    auto [ec, res] = h.run(strategy, 1s);
    CHECK_FALSE(ec);
    CHECK(h.shop->presses.empty());
    const std::vector<std::string> only_watch{"watch"};
    CHECK(h.shop->actions == only_watch);  // not even a snapshot or a choice
    CHECK(h.count(sb::grab_step::decided, res) == 0);
    CHECK(h.count(sb::grab_step::sold_out, res) == 0);
    CHECK(h.count(sb::grab_step::watched, res) == 1);
    REQUIRE(told.size() == 3);
    CHECK(told[0].kind == sb::notice_kind::stock);
    CHECK(told[0].text == "in stock: 'In stock'");
    CHECK(told[1].text == "out of stock: 'Out of stock'");
    CHECK(told[2].text == "in stock: 'In stock'");
    CHECK(h.logged("grabber: watched: monitor"));
  }

  TEST_CASE("strategy file: mode - buy by default - a bad value refused with its line") {
    CHECK(sb::parse_strategy("want = sku:a\n").mode == sb::grab_mode::buy);
    CHECK(sb::parse_strategy("want = sku:a\nmode = monitor\n").mode == sb::grab_mode::monitor);
    CHECK(sb::parse_strategy("want = sku:a\nmode = dry_run\n").mode == sb::grab_mode::dry_run);
    std::string what;
    try {
      (void)sb::parse_strategy("want = sku:a\nmode = maybe\n");
    } catch (const std::exception& e) {
      what = e.what();
    }
    CHECK(what.find("line 2") != std::string::npos);
    CHECK(what.find("mode must be buy, dry-run or monitor, got 'maybe'") != std::string::npos);
    CHECK(sb::parse_notice_filter("stock").has(sb::notice_kind::stock));
    CHECK(sb::notice_filter{}.has(sb::notice_kind::stock));
  }

  TEST_CASE(
      "sale start: a manual clock offset replaces the estimate - the shop's clock is not read") {
    harness h;
    h.shop->local_minus_shop = 3s;  // what the estimate would find
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() + 1s, std::chrono::minutes(0)};
    h.options.manual_offset = 1500ms;  // the user's figure wins
    h.options.max_clock_uncertainty = 1ms;
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK_FALSE(ec);
    REQUIRE(res.clock.has_value());
    CHECK(res.clock->manual);
    CHECK(res.clock->offset == 1500ms);
    CHECK(res.clock->uncertainty == 0ms);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at == 2504ms);  // start + 1.5 s, then 4 actions of 1 ms
    CHECK(std::find(h.shop->actions.begin(), h.shop->actions.end(), "clock") ==
          h.shop->actions.end());
    CHECK(h.logged("offset +1.500 s (manual)"));
  }

  TEST_CASE("sale start: the grabber acts at the latest moment the estimate allows") {
    harness h;
    h.shop->local_minus_shop = 1700ms;
    h.shop->clock_resolution = 1s;
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() + 5s, std::chrono::minutes(0)};
    h.options.resync_before.reset();
    auto [ec, res] = h.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec);
    REQUIRE(res.clock.has_value());
    REQUIRE(h.shop->presses.size() == 1);
    // The shop's start is at local +6.7 s; the grabber never acts before it.
    CHECK(h.shop->presses[0].at >= 6700ms);
    CHECK(h.shop->presses[0].at <= 6700ms + 2 * res.clock->uncertainty + 3ms);
    CHECK(res.clock->lo <= 1700ms);
    CHECK(res.clock->hi >= 1700ms);
  }

  TEST_CASE("sale start: max_clock_uncertainty refuses a vague estimate - or warns") {
    harness h;
    h.shop->clock_resolution = 1s;  // a Date header, no straddle: about half a second
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() + 2s, std::chrono::minutes(0)};
    h.options.max_clock_uncertainty = 50ms;
    auto [ec, res] = h.run("want = sku:veg-box\n");
    CHECK(ec == sb::errc::clock_uncertain);
    CHECK(h.shop->presses.empty());
    CHECK(h.logged("grabber: failed: the shop's clock is known to ± 0.4"));
    CHECK(h.logged("max_clock_uncertainty is 0.050 s: not acting"));

    harness w;
    w.shop->clock_resolution = 1s;
    w.shop->restock(100ms, "veg-box", 5);
    w.options.start = sb::sale_time{w.shop->wall() + 2s, std::chrono::minutes(0)};
    w.options.max_clock_uncertainty = 50ms;
    w.options.warn_uncertain_clock = true;
    auto [ec2, res2] = w.run("want = sku:veg-box\n");
    CHECK_FALSE(ec2);
    CHECK(res2.ordered);
    CHECK(w.logged("grabber: scheduled: warning: the shop's clock is known to ± 0.4"));
  }

  TEST_CASE("sale start: the shop's clock is read again before the start - both estimates logged") {
    harness h;
    h.shop->local_minus_shop = 3s;
    h.shop->restock(100ms, "veg-box", 5);
    h.options.start = sb::sale_time{h.shop->wall() + 30s, std::chrono::minutes(0)};
    h.options.resync_before = 10s;
    h.shop->at(20s - 1ms, [](fake_shop& s) { s.local_minus_shop = 3200ms; });  // a drift
    auto [ec, res] = h.run("want = sku:veg-box\n", 60s);
    CHECK_FALSE(ec);
    CHECK(std::count(h.shop->actions.begin(), h.shop->actions.end(), "clock") == 2);
    CHECK(h.logged("grabber: scheduled: re-sync: start "));
    CHECK(h.logged("; before: offset +2.999 s ± 0.002 s"));
    REQUIRE(res.clock.has_value());
    CHECK(res.clock->lo <= 3200ms);
    CHECK(res.clock->hi >= 3200ms);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].at >= 33200ms);  // the new estimate moved the start
    CHECK(h.shop->presses[0].at <= 33206ms);
  }
}

TEST_SUITE("unit") {
  TEST_CASE(
      "throttling: a 429 backs off for the shop's Retry-After - then the order goes through") {
    harness h;
    h.shop->throttle = 1;
    h.shop->retry_after = 2s;
    h.shop->restock(100ms, "veg-box", 5);
    const std::string strategy = "want = sku:veg-box\nbackoff = 100ms..1s\nmax_refusals = 3\n";
    h.options.throttle = sb::parse_strategy(strategy).throttle;  // (what apply_strategy sets)
    auto [ec, res] = h.run(strategy);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.throttled == 1);
    CHECK_FALSE(res.stopped);
    REQUIRE(h.shop->presses.size() == 2);
    CHECK(h.shop->presses[0].at == 104ms);
    // The refusal came 20 ms after the press: nothing before 2 s after it.
    CHECK(h.shop->presses[1].at >= 124ms + 2s);
    CHECK(h.shop->presses[1].at <= 124ms + 2s + 10ms);
    CHECK(h.count(sb::grab_step::throttled, res) == 1);
    CHECK(h.count(sb::grab_step::backing_off, res) == 1);
    CHECK(h.count(sb::grab_step::rejected, res) == 0);
    CHECK(h.logged("grabber: throttled: HTTP 429 /order"));
    CHECK(
        h.logged("grabber: backing-off: no action for 2000 ms, the shop's Retry-After 2000 ms "
                 "(refusal 1 of 3)"));
  }

  TEST_CASE("throttling: no Retry-After - the doubling back-off - max_refusals stop the run") {
    harness h;
    h.shop->throttle = 100;
    h.shop->restock(100ms, "veg-box", 5);
    std::vector<sb::notice> told;
    h.options.notify = [&](sb::notice n) { told.push_back(std::move(n)); };
    const std::string strategy = "want = sku:veg-box\nbackoff = 400ms..10s\nmax_refusals = 3\n";
    h.options.throttle = sb::parse_strategy(strategy).throttle;
    auto [ec, res] = h.run(strategy);
    CHECK(ec == sb::errc::stopped_refused);
    CHECK(ec == seckill::condition::rejected);
    CHECK_FALSE(res.ordered);
    CHECK(res.stopped);
    CHECK(res.throttled == 3);
    REQUIRE(h.shop->presses.size() == 3);
    // backoff_delay: the first pause in [200, 400] ms, the second in [400, 800] ms.
    const ms gap1 = h.shop->presses[1].at - (h.shop->presses[0].at + 20ms);
    const ms gap2 = h.shop->presses[2].at - (h.shop->presses[1].at + 20ms);
    CHECK(gap1 >= 200ms);
    CHECK(gap1 <= 410ms);
    CHECK(gap2 >= 400ms);
    CHECK(gap2 <= 810ms);
    CHECK(h.count(sb::grab_step::stopped, res) == 1);
    CHECK(h.logged("grabber: stopped-refused: 3 refusals in a row"));
    CHECK(h.shop->elapsed() < 10s);  // it stopped, it did not wait for the deadline
    REQUIRE(told.size() == 1);
    CHECK(told[0].kind == sb::notice_kind::stopped);
    CHECK(told[0].text.find("refused 3 times in a row") != std::string::npos);
  }

  TEST_CASE(
      "throttling: the page's plain refusal first - the 429 of the same press still backs off") {
    harness h;
    h.shop->throttle = 1;
    h.shop->plain_first = true;
    h.shop->retry_after = 1500ms;
    h.shop->restock(100ms, "veg-box", 5);
    const std::string strategy = "want = sku:veg-box\nretries = 0\nbackoff = 100ms..1s\n";
    h.options.throttle = sb::parse_strategy(strategy).throttle;
    h.options.retries = 0;
    auto [ec, res] = h.run(strategy);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.throttled == 1);
    REQUIRE(h.shop->presses.size() == 2);
    CHECK(h.shop->presses[1].at >= 124ms + 1500ms);
  }

  TEST_CASE("accounts: one account's back-off and stop never pause another - each its own budget") {
    // Two accounts, two shops' timelines (each its own clock), one executor.
    asio::io_context io;
    auto a = std::make_shared<fake_shop>(io);
    auto b = std::make_shared<fake_shop>(io);
    a->throttle = 100;
    a->retry_after = 3s;
    a->restock(100ms, "veg-box", 5);
    b->restock(100ms, "veg-box", 5);
    b->restock(400ms, "eggs-12", 5);
    const auto cfg = sb::parse_strategy(
        "want = sku:veg-box\nquantity = 1\npace = 60/min\nburst = 3\nmax_refusals = 2\n");
    CHECK(cfg.actions_per_second == doctest::Approx(1.0));
    seckill::token_bucket<clock_type> pace_a(cfg.actions_per_second, cfg.burst, a->clock);
    seckill::token_bucket<clock_type> pace_b(cfg.actions_per_second, cfg.burst, b->clock);
    sb::basic_grabber_options<clock_type> oa, ob;
    sb::apply_strategy(oa, cfg, sb::site_profile{});
    sb::apply_strategy(ob, cfg, sb::site_profile{});
    test_grabber<> ga(fake_driver(a), sb::priority_strategy(cfg), pace_a, oa, a->clock);
    test_grabber<> gb(fake_driver(b), sb::priority_strategy(cfg), pace_b, ob, b->clock);
    std::optional<std::error_code> ea, eb;
    sb::basic_grab_result<clock_type> ra, rb;
    ga.async_run(10s, [&](std::error_code ec, auto r) {
      ea = ec;
      ra = std::move(r);
    });
    gb.async_run(10s, [&](std::error_code ec, auto r) {
      eb = ec;
      rb = std::move(r);
    });
    io.run();
    REQUIRE(ea.has_value());
    REQUIRE(eb.has_value());
    CHECK(*ea == sb::errc::stopped_refused);
    CHECK(ra.stopped);
    CHECK(ra.throttled == 2);
    REQUIRE(a->presses.size() == 2);
    CHECK(a->presses[1].at >= a->presses[0].at + 20ms + 3s);
    // B bought on schedule: as at once as alone (snapshot, choose, quantity, press).
    CHECK_FALSE(*eb);
    CHECK(rb.ordered);
    CHECK(rb.throttled == 0);
    REQUIRE(b->presses.size() == 1);
    CHECK(b->presses[0].at == 104ms);
  }

  TEST_CASE("strategy file: backoff - max_refusals - pace per minute - bad values refused") {
    const auto cfg =
        sb::parse_strategy("want = sku:a\nbackoff = 500ms..30s\nmax_refusals = 4\npace = 30/min\n");
    CHECK(cfg.throttle.initial == 500ms);
    CHECK(cfg.throttle.max == 30s);
    CHECK(cfg.throttle.max_refusals == 4);
    CHECK(cfg.actions_per_second == doctest::Approx(0.5));
    const auto defaults = sb::parse_strategy("want = sku:a\n");
    CHECK(defaults.throttle.max_refusals == 5);
    CHECK(defaults.throttle.initial == 1s);
    sb::basic_grabber_options<clock_type> o;
    sb::apply_strategy(o, cfg, sb::site_profile{});
    CHECK(o.throttle.max_refusals == 4);
    const auto refused = [](const std::string& text) {
      try {
        (void)sb::parse_strategy(text);
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
      return std::string("accepted");
    };
    CHECK(refused("want = sku:a\nmax_refusals = 0\n")
              .find("line 2: max_refusals must be a whole number in [1, 100], got 0") !=
          std::string::npos);
    CHECK(refused("want = sku:a\nmax_refusals = 2.5\n").find("max_refusals must be") !=
          std::string::npos);
    CHECK(refused("want = sku:a\nbackoff = 5s\n")
              .find("line 2: backoff must be two durations like 1s..60s") != std::string::npos);
    CHECK(refused("want = sku:a\nbackoff = 5s..1s\n")
              .find("backoff has its first back-off above the longest, got '5s..1s'") !=
          std::string::npos);
    CHECK(refused("want = sku:a\nbackoff = 1s..2d\n").find("backoff must be a positive duration") !=
          std::string::npos);
    CHECK(refused("want = sku:a\nbackoff = 1s..48h\n").find("backoff must be at most 24h") !=
          std::string::npos);
    CHECK(refused("want = sku:a\npace = 0/min\n").find("pace must be in (0, 50]") !=
          std::string::npos);
    CHECK(refused("want = sku:a\npace = 6000/min\n").find("pace must be in (0, 50]") !=
          std::string::npos);
    CHECK(sb::parse_notice_filter("stopped").has(sb::notice_kind::stopped));
    CHECK_FALSE(sb::parse_notice_filter("stopped").has(sb::notice_kind::failed));
    CHECK(sb::notice_filter{}.has(sb::notice_kind::stopped));
    CHECK(sb::to_string(sb::grab_step::stopped) == "stopped-refused");
    CHECK(sb::to_string(sb::grab_step::backing_off) == "backing-off");
  }

  TEST_CASE("site profile: order_response - throttled - throttled_text - bad values refused") {
    const auto p = sb::parse_profile(
        "order_response = /members/order\nthrottled = .too-many\nthrottled_text = too many "
        "requests | 请求过于频繁\n");
    CHECK(p.order_response == "/members/order");
    CHECK(p.throttled == ".too-many");
    REQUIRE(p.throttled_text.size() == 2);
    CHECK(p.throttled_text[1] == "请求过于频繁");
    CHECK(sb::site_profile{}.order_response.empty());
    const auto refused = [](const std::string& text) {
      try {
        (void)sb::parse_profile(text);
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
      return std::string("accepted");
    };
    CHECK(refused("buy = #buy\norder_response = /order now\n")
              .find("line 2: order_response must be a part of the order's URL (no spaces)") !=
          std::string::npos);
    CHECK(refused("throttled = .host >>> \n").find("throttled has an empty part around >>>") !=
          std::string::npos);
    CHECK(refused("throttled_text = busy | | slow\n")
              .find("throttled_text is texts separated by |, got an empty one") !=
          std::string::npos);
  }
}

namespace unit_grabber {

// A start 10 s ahead on the grabber's clock: the shop's clock set by hand
// (no readings), veg-box in stock long before it.
void ahead_of_a_start(harness& h) {
  h.shop->restock(100ms, "veg-box", 5);
  h.options.start = sb::sale_time{h.shop->wall() + 10s, std::chrono::minutes(0)};
  h.options.manual_offset = 0ms;
}

// The shop's actions before the grabber's `started` step, and from it on.
struct start_mark {
  harness& h;
  std::optional<std::size_t> at;
  explicit start_mark(harness& hh) : h(hh) {
    h.options.on_event = [this](const sb::basic_grab_event<clock_type>& e) {
      if (e.step == sb::grab_step::started) at = h.shop->actions.size();
    };
  }
  start_mark(const start_mark&) = delete;
  start_mark& operator=(const start_mark&) = delete;
  [[nodiscard]] std::vector<std::string> before() const {
    REQUIRE(at.has_value());
    return {h.shop->actions.begin(), h.shop->actions.begin() + static_cast<std::ptrdiff_t>(*at)};
  }
  [[nodiscard]] std::vector<std::string> after() const {
    REQUIRE(at.has_value());
    return {h.shop->actions.begin() + static_cast<std::ptrdiff_t>(*at), h.shop->actions.end()};
  }
};

}  // namespace unit_grabber

TEST_SUITE("unit") {
  TEST_CASE(
      "readiness: chosen and set before the start - at the start only the snapshot and press") {
    harness h;
    ahead_of_a_start(h);
    h.shop->shows_choice = true;
    h.options.prepare_before = 5s;
    start_mark mark(h);
    auto [ec, res] = h.run("want = sku:veg-box\nquantity = 2\n", 30s);
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(h.count(sb::grab_step::ready, res) == 1);
    CHECK(h.count(sb::grab_step::not_ready, res) == 0);
    CHECK(
        h.logged("grabber: ready: 5.000 s before the start: 2 x veg-box chosen ahead; the buy "
                 "button actionable at (120, 340), 80 x 32"));
    CHECK(mark.before() == std::vector<std::string>{"watch", "snapshot", "choose veg-box",
                                                    "quantity 2", "look at buy"});
    CHECK(mark.after() == std::vector<std::string>{"snapshot", "press"});
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].sku == "veg-box");
    CHECK(h.shop->presses[0].quantity == 2);
    CHECK(h.shop->presses[0].at == 10002ms);  // the start, then 2 actions of 1 ms
    CHECK(h.logged("grabber: ordered: pressed buy for 2 x veg-box (chosen and set ahead)"));

    // The same run without readiness: all four actions after the start.
    harness late;
    ahead_of_a_start(late);
    late.shop->shows_choice = true;
    late.options.prepare_before.reset();
    auto [ec2, res2] = late.run("want = sku:veg-box\nquantity = 2\n", 30s);
    CHECK_FALSE(ec2);
    CHECK(late.count(sb::grab_step::ready, res2) == 0);
    REQUIRE(late.shop->presses.size() == 1);
    CHECK(late.shop->presses[0].at == 10004ms);
  }

  TEST_CASE("readiness: a page loaded again after it - everything is done again at the start") {
    harness h;
    ahead_of_a_start(h);
    h.shop->shows_choice = true;
    h.shop->at(7s, [](fake_shop& s) { s.load_again(); });
    start_mark mark(h);
    auto [ec, res] = h.run("want = sku:veg-box\nquantity = 2\n", 30s);
    CHECK_FALSE(ec);
    CHECK(h.count(sb::grab_step::ready, res) == 1);
    CHECK(mark.after() ==
          std::vector<std::string>{"snapshot", "choose veg-box", "quantity 2", "press"});
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].sku == "veg-box");
    CHECK(h.shop->presses[0].quantity == 2);
  }

  TEST_CASE("readiness: a quantity the page reset alone is set again - the choice kept") {
    harness h;
    ahead_of_a_start(h);
    h.shop->shows_choice = true;
    h.shop->at(7s, [](fake_shop& s) { s.quantity = 1; });  // a script, no new document
    start_mark mark(h);
    auto [ec, res] = h.run("want = sku:veg-box\nquantity = 2\n", 30s);
    CHECK_FALSE(ec);
    CHECK(mark.after() == std::vector<std::string>{"snapshot", "quantity 2", "press"});
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].quantity == 2);
    CHECK(h.logged("grabber: ordered: pressed buy for 2 x veg-box (chosen ahead)"));
  }

  TEST_CASE("readiness: a page that does not show its choice gets it made again at the start") {
    harness h;
    ahead_of_a_start(h);  // shows_choice false: the snapshot says nothing of it
    start_mark mark(h);
    auto [ec, res] = h.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec);
    CHECK(h.count(sb::grab_step::ready, res) == 1);
    CHECK(mark.after() ==
          std::vector<std::string>{"snapshot", "choose veg-box", "quantity 1", "press"});
  }

  TEST_CASE("readiness: what cannot be made ready is said before the start - the run goes on") {
    harness h;
    ahead_of_a_start(h);
    h.shop->failures["look"].push_back(make_error_code(sb::errc::element_not_found));
    auto [ec, res] = h.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec);
    CHECK(res.ordered);  // the button was there at the start
    CHECK(h.count(sb::grab_step::not_ready, res) == 1);
    CHECK(
        h.logged("grabber: not-ready: 1 x veg-box chosen ahead, but the buy button is not on "
                 "the page"));

    harness none;
    ahead_of_a_start(none);
    auto [ec2, res2] = none.run("want = sku:plums\n", 12s);
    CHECK(ec2 == seckill::errc::timed_out);
    CHECK(none.logged("grabber: not-ready: 3 offers on the page, none wanted within the limits"));
    CHECK(std::count(none.shop->actions.begin(), none.shop->actions.end(), "choose plums") == 0);

    harness disabled;
    ahead_of_a_start(disabled);
    disabled.shop->failures["look"].push_back(make_error_code(sb::errc::element_not_actionable));
    auto [ec3, res3] = disabled.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec3);
    CHECK(disabled.count(sb::grab_step::ready, res3) == 1);
    CHECK(disabled.logged("the buy button is there, not actionable yet"));

    harness failing;
    ahead_of_a_start(failing);
    failing.shop->failures["choose"].push_back(make_error_code(sb::errc::element_not_actionable));
    auto [ec4, res4] = failing.run("want = sku:veg-box\n", 30s);
    CHECK_FALSE(ec4);
    CHECK(res4.ordered);
    CHECK(failing.logged("grabber: not-ready: choosing veg-box ahead: "));
    CHECK(failing.logged("(left for the start)"));
  }

  TEST_CASE("readiness: monitor mode and a start already passed make nothing ready") {
    harness m;
    ahead_of_a_start(m);
    m.options.mode = sb::grab_mode::monitor;
    auto [ec, res] = m.run("want = sku:veg-box\n", 12s);
    CHECK_FALSE(ec);
    CHECK(m.count(sb::grab_step::ready, res) == 0);
    CHECK(std::count(m.shop->actions.begin(), m.shop->actions.end(), "choose veg-box") == 0);

    harness passed;
    passed.shop->restock(100ms, "veg-box", 5);
    passed.options.start = sb::sale_time{passed.shop->wall() - 1s, std::chrono::minutes(0)};
    passed.options.manual_offset = 0ms;
    auto [ec2, res2] = passed.run("want = sku:veg-box\n", 12s);
    CHECK_FALSE(ec2);
    CHECK(res2.ordered);
    CHECK(passed.count(sb::grab_step::ready, res2) == 0);
  }

  TEST_CASE("grabber loop: a driver that orders at once gets the actions in one operation") {
    harness h;  // 10 tokens at hand: nothing paces the three actions apart
    h.shop->restock(300ms, "veg-box", 5);
    auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
    CHECK_FALSE(ec);
    CHECK(res.ordered);
    CHECK(res.attempts == 1);
    const std::vector<std::string> expected{"watch",          "snapshot",   "order",
                                            "choose veg-box", "quantity 2", "press"};
    CHECK(h.shop->actions == expected);
    REQUIRE(h.shop->presses.size() == 1);
    CHECK(h.shop->presses[0].sku == "veg-box");
    CHECK(h.shop->presses[0].quantity == 2);
    CHECK(h.count(sb::grab_step::ordered, res) == 1);
    CHECK(h.count(sb::grab_step::paced, res) == 0);
  }

  TEST_CASE("grabber loop: a pause - a dry run or too few tokens keep the actions apart") {
    const std::vector<std::string> apart{"watch", "snapshot", "choose veg-box", "quantity 2",
                                         "press"};
    {
      harness h;
      h.options.delay = sb::delay_range{1ms, 5ms};
      h.shop->restock(300ms, "veg-box", 5);
      auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
      CHECK(res.ordered);
      CHECK(h.shop->actions == apart);
      CHECK(h.count(sb::grab_step::paused, res) == 3);
    }
    {
      harness h;
      h.burst = 2;  // two tokens at most: the press waits for a third
      h.shop->restock(300ms, "veg-box", 5);
      auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
      CHECK(res.ordered);
      CHECK(h.shop->actions == apart);
      CHECK(h.count(sb::grab_step::paced, res) == 1);
    }
    {
      harness h;  // the same two tokens, but an unpaced reaction needs none
      h.burst = 2;
      h.options.pace_reaction = false;
      h.shop->restock(300ms, "veg-box", 5);
      auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
      CHECK(res.ordered);
      CHECK(std::count(h.shop->actions.begin(), h.shop->actions.end(), "order") == 1);
    }
    {
      harness h;
      h.options.mode = sb::grab_mode::dry_run;
      h.shop->restock(300ms, "veg-box", 5);
      auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
      CHECK(h.shop->presses.empty());
      CHECK(std::count(h.shop->actions.begin(), h.shop->actions.end(), "order") == 0);
      CHECK(h.count(sb::grab_step::would_press, res) == 1);
    }
  }

  TEST_CASE("grabber loop: an operation of all the actions says which one failed") {
    struct fails {
      const char* action;
      const char* said;
    };
    for (const fails f : {fails{"choose", "grabber: failed: choosing veg-box: "},
                          fails{"quantity", "grabber: failed: setting quantity 2: "},
                          fails{"press", "grabber: failed: pressing buy: "}}) {
      CAPTURE(f.action);
      harness h;
      h.options.retries = 1;
      h.shop->failures[f.action].push_back(make_error_code(sb::errc::element_not_actionable));
      h.shop->restock(100ms, "veg-box", 5);
      auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
      CHECK_FALSE(ec);
      CHECK(h.count(sb::grab_step::failed, res) == 1);
      CHECK(h.logged(f.said));
      CHECK(res.ordered);  // the retry
      CHECK(h.shop->presses.size() == 1);
    }
    harness h;  // browser_closed ends the run, with nothing pressed
    h.shop->failures["quantity"].push_back(make_error_code(sb::errc::browser_closed));
    h.shop->restock(100ms, "veg-box", 5);
    auto [ec, res] = h.run<ordering_fake_driver>("want = sku:veg-box\nquantity = 2\n");
    CHECK(ec == sb::errc::browser_closed);
    CHECK(h.shop->presses.empty());
  }
}
