#pragma once
/// @file
/// @brief The buyer's side of a flash sale: watch a shop page, decide with a
///        strategy, buy the moment stock appears, at a human pace.
///
/// Three layers: perception (a MutationObserver on the stock status, a snapshot
/// of the SKUs on offer), decision (a Strategy picks a SKU and a quantity),
/// execution (select the SKU, set the quantity, press buy with trusted input),
/// paced by a token bucket.

#include <seckill/browser/page.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief One SKU as the page offers it.
struct sku_offer {
  std::string sku;
  std::string name;
  std::string category;
  double price = 0;
  int stock = 0;  ///< what the page says; 0 = out of stock
};

/// @brief What the page showed when the grabber looked.
struct shop_snapshot {
  std::string status;  ///< the stock-status text
  std::vector<sku_offer> offers;
};

/// @brief What a strategy decided to buy.
struct order_intent {
  std::string sku;
  int quantity = 1;
  double price = 0;
  int requested = 0;  ///< what was asked for (0: quantity); more than quantity when less was in stock
};

/// @brief A Strategy turns a snapshot into a decision (or none).
template <class S>
concept grab_strategy = requires(const S& s, const shop_snapshot& snap) {
  { s.decide(snap) } -> std::convertible_to<std::optional<order_intent>>;
};

/// @brief A Limiter paces actions; seckill::token_bucket models it.
template <class L>
concept action_limiter = requires(L& l) {
  { l.try_acquire(1.0) } -> std::convertible_to<bool>;
  { l.time_until(1.0) };
};

/// @brief One wanted entry: a SKU id or a whole category.
struct wanted_item {
  enum class kind { sku, category };
  kind what = kind::sku;
  std::string value;
  friend bool operator==(const wanted_item&, const wanted_item&) = default;
};

/// @brief A strategy file, parsed: what to buy, in priority order, and the limits.
struct strategy_config {
  std::vector<wanted_item> want;          ///< in priority order
  std::optional<double> max_price;        ///< per unit; none: no cap
  int quantity = 1;                       ///< per order
  bool partial = true;                    ///< fewer if fewer are in stock (reported); false: skip such offers
  std::chrono::milliseconds deadline{std::chrono::minutes(10)};  ///< give up after
  double actions_per_second = 3;          ///< the human pace
  double burst = 3;                       ///< actions allowed back to back
};

/// @brief The longest deadline a strategy file may give: a year. Longer ones
///        (up to `9223372036854775807s`) are refused by `parse_strategy`
///        rather than overflowing when the grabber adds them to its clock.
inline constexpr std::chrono::milliseconds max_strategy_deadline{std::chrono::hours(24 * 365)};

/// @brief The default strategy: the first wanted entry (in priority order)
///        with an in-stock offer at or under the price cap; the cheapest offer
///        within a wanted category. Skips out-of-stock offers. When an offer
///        has fewer in stock than `quantity`, it buys what there is (the
///        intent's quantity is less than its `requested`; the grabber says so)
///        or, with `partial = false`, skips the offer.
///
/// Thread-safety: immutable after construction. Cost: O(wanted x offers).
class priority_strategy {
 public:
  explicit priority_strategy(strategy_config cfg) : cfg_(std::move(cfg)) {}

  [[nodiscard]] std::optional<order_intent> decide(const shop_snapshot& snap) const {
    for (const auto& w : cfg_.want) {
      const sku_offer* best = nullptr;
      for (const auto& o : snap.offers) {
        if (o.stock <= 0 || (!cfg_.partial && o.stock < cfg_.quantity)) continue;
        if (cfg_.max_price && !(o.price <= *cfg_.max_price)) continue;  // an unknown (NaN) price too
        const bool match = w.what == wanted_item::kind::sku ? o.sku == w.value : o.category == w.value;
        if (match && (best == nullptr || cheaper(o.price, best->price))) best = &o;
      }
      if (best != nullptr) {
        return order_intent{best->sku, std::min(cfg_.quantity, best->stock), best->price, cfg_.quantity};
      }
    }
    return std::nullopt;
  }

  [[nodiscard]] const strategy_config& config() const noexcept { return cfg_; }

 private:
  // An unknown (NaN) price ranks after every known one.
  static bool cheaper(double a, double b) noexcept {
    if (std::isnan(a)) return false;
    return std::isnan(b) || a < b;
  }

  strategy_config cfg_;
};

namespace detail {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

[[noreturn]] inline void strategy_error(std::size_t line, const std::string& what) {
  throw error(errc::invalid_argument, fmt::format("strategy line {}: {}", line, what));
}

/// A number as `std::from_chars` reads it: `nan` and `inf` included (the
/// callers range-check what they read, NaN failing every check); a number
/// beyond double's range is an error.
inline double parse_number(std::string_view v, std::size_t line, std::string_view key) {
  double d = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec == std::errc::result_out_of_range && p == v.data() + v.size()) {
    strategy_error(line, fmt::format("{} is out of range, got '{}'", key, v));
  }
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
    strategy_error(line, fmt::format("{} must be a number, got '{}'", key, v));
  }
  return d;
}

/// A duration in [1 ms, max_strategy_deadline]: checked as a double before
/// it becomes an integer, so no value overflows.
inline std::chrono::milliseconds parse_duration(std::string_view v, std::size_t line, std::string_view key) {
  std::size_t digits = 0;
  while (digits < v.size() && (std::isdigit(static_cast<unsigned char>(v[digits])) || v[digits] == '.')) ++digits;
  const std::string_view unit = trim(v.substr(digits));
  const double n = digits == 0 ? -1 : parse_number(v.substr(0, digits), line, key);
  double ms = -1;
  if (unit == "ms") ms = n;
  else if (unit == "s") ms = n * 1000;
  else if (unit == "m" || unit == "min") ms = n * 60'000;
  else if (unit == "h") ms = n * 3'600'000;
  if (!(n > 0 && ms > 0)) {
    strategy_error(line, fmt::format("{} must be a positive duration like 500ms, 30s, 10m or 1h, got '{}'", key, v));
  }
  if (!(ms <= static_cast<double>(max_strategy_deadline.count()))) {
    strategy_error(line, fmt::format("{} must be at most {} ms (365 days), got '{}'", key,
                                     max_strategy_deadline.count(), v));
  }
  if (ms < 1) strategy_error(line, fmt::format("{} must be at least 1 ms, got '{}'", key, v));
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

}  // namespace detail

/// @brief Parses a strategy file: `key = value` lines, `#` comments, blank lines.
///
/// ```
/// want      = sku:veg-box, category:fruit   # priority order
/// max_price = 20.00                          # per unit, optional
/// quantity  = 2
/// deadline  = 10m                            # ms, s, m, h
/// pace      = 3/s                            # actions per second
/// burst     = 3
/// partial   = yes                            # fewer if fewer are in stock; no: skip
/// ```
/// Ranges: quantity a whole number in [1, 1000]; max_price finite and > 0;
/// deadline in [1 ms, max_strategy_deadline]; pace in (0, 50] per second;
/// burst in [1, 100]. `nan`, `inf` and numbers beyond them are refused.
/// Throws seckill::error (errc::invalid_argument) naming the line, the key and
/// the value that was wrong.
inline strategy_config parse_strategy(std::string_view text) {
  strategy_config cfg;
  bool saw_want = false;
  std::size_t line_no = 0;
  std::vector<std::string> seen;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = detail::trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      detail::strategy_error(line_no, fmt::format("expected 'key = value', got '{}'", line));
    }
    const std::string key(detail::trim(line.substr(0, eq)));
    const std::string_view value = detail::trim(line.substr(eq + 1));
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      detail::strategy_error(line_no, fmt::format("'{}' given twice", key));
    }
    seen.push_back(key);
    if (value.empty()) detail::strategy_error(line_no, fmt::format("'{}' has no value", key));
    if (key == "want") {
      saw_want = true;
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = detail::trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        const auto colon = item.find(':');
        const std::string_view kind = colon == std::string_view::npos ? std::string_view() : item.substr(0, colon);
        const std::string_view name = colon == std::string_view::npos ? item : detail::trim(item.substr(colon + 1));
        if ((kind != "sku" && kind != "category") || name.empty()) {
          detail::strategy_error(line_no,
                                 fmt::format("want entries are sku:<id> or category:<name>, got '{}'", item));
        }
        cfg.want.push_back({kind == "sku" ? wanted_item::kind::sku : wanted_item::kind::category, std::string(name)});
      }
    } else if (key == "max_price") {
      const double p = detail::parse_number(value, line_no, key);
      if (!std::isfinite(p)) {
        detail::strategy_error(line_no, fmt::format("max_price must be a finite number, got {}", value));
      }
      if (!(p > 0)) detail::strategy_error(line_no, fmt::format("max_price must be > 0, got {}", value));
      cfg.max_price = p;
    } else if (key == "quantity") {
      const double q = detail::parse_number(value, line_no, key);
      if (!(q >= 1 && q <= 1000) || q != std::floor(q)) {  // NaN fails the first test: no cast of it
        detail::strategy_error(line_no, fmt::format("quantity must be a whole number in [1, 1000], got {}", value));
      }
      cfg.quantity = static_cast<int>(q);
    } else if (key == "deadline") {
      cfg.deadline = detail::parse_duration(value, line_no, key);
    } else if (key == "pace") {
      std::string_view v = value;
      if (v.size() > 2 && v.substr(v.size() - 2) == "/s") v = detail::trim(v.substr(0, v.size() - 2));
      const double r = detail::parse_number(v, line_no, key);
      if (!(r > 0) || r > 50) {
        detail::strategy_error(line_no, fmt::format("pace must be in (0, 50] actions per second, got {}", value));
      }
      cfg.actions_per_second = r;
    } else if (key == "partial") {
      if (value == "yes" || value == "true") cfg.partial = true;
      else if (value == "no" || value == "false") cfg.partial = false;
      else detail::strategy_error(line_no, fmt::format("partial must be yes or no, got '{}'", value));
    } else if (key == "burst") {
      const double b = detail::parse_number(value, line_no, key);
      if (!(b >= 1 && b <= 100)) {
        detail::strategy_error(line_no, fmt::format("burst must be in [1, 100], got {}", value));
      }
      cfg.burst = b;
    } else {
      detail::strategy_error(
          line_no, fmt::format("unknown key '{}' (known: want, max_price, quantity, partial, deadline, pace, burst)", key));
    }
  }
  if (!saw_want) throw error(errc::invalid_argument, "strategy: no 'want' line: nothing to buy");
  return cfg;
}

/// @brief What the grabber did, step by step.
enum class grab_step {
  watching,       ///< subscribed to the stock status
  stock_changed,  ///< the status text changed
  decided,        ///< the strategy picked an offer
  skipped,        ///< in stock, but nothing the strategy wants
  paced,          ///< waited for the token bucket
  ordered,        ///< pressed buy
  confirmed,      ///< the shop confirmed the order
  rejected,       ///< the shop refused the order
  failed,         ///< an action failed (element missing, not actionable, ...)
  gave_up,        ///< the deadline passed
};

inline const char* to_string(grab_step s) noexcept {
  switch (s) {
    case grab_step::watching: return "watching";
    case grab_step::stock_changed: return "stock-changed";
    case grab_step::decided: return "decided";
    case grab_step::skipped: return "skipped";
    case grab_step::paced: return "paced";
    case grab_step::ordered: return "ordered";
    case grab_step::confirmed: return "confirmed";
    case grab_step::rejected: return "rejected";
    case grab_step::failed: return "failed";
    case grab_step::gave_up: return "gave-up";
  }
  return "?";
}

/// @brief One reported step.
struct grab_event {
  grab_step step;
  std::string detail;
  std::chrono::steady_clock::time_point at;
};

/// @brief How the grabber finds its way around the shop page.
struct grabber_options {
  std::string status_selector = ".stock-status";
  std::string in_stock_text = "in stock";     ///< case-insensitive, in the status text
  std::string sku_selector = "#sku";          ///< a native <select> of SKUs
  std::string quantity_selector = "#quantity";  ///< empty: no quantity field
  std::string buy_selector = "#buy";
  std::string result_selector = ".order-result";
  std::string success_text = "confirmed";     ///< case-insensitive, in the result text
  std::chrono::milliseconds action_timeout{std::chrono::seconds(3)};
  std::chrono::milliseconds confirm_timeout{std::chrono::seconds(5)};
  click_options click{2, std::chrono::milliseconds(15), std::chrono::seconds(3)};
  std::function<void(const grab_event&)> on_event;  ///< every step (on the page's strand)
  std::function<void(std::string_view)> log;        ///< one human-readable line per step
};

/// @brief How a grab ended.
struct grab_result {
  bool ordered = false;
  std::string sku;
  int quantity = 0;
  int requested = 0;         ///< what the strategy was asked for; more than quantity when less was in stock
  std::string confirmation;  ///< the shop's result text
  int attempts = 0;          ///< buy presses
  std::vector<grab_event> events;
};

namespace detail {

/// The `decided` step's words: "2 x veg-box at 18.50", and when less is in
/// stock than was asked, "(fewer than the 3 asked: 2 in stock)".
inline std::string describe_intent(const order_intent& i) {
  std::string s = fmt::format("{} x {} at {:.2f}", i.quantity, i.sku, i.price);
  if (i.requested > i.quantity) {
    s += fmt::format(" (fewer than the {} asked: {} in stock)", i.requested, i.quantity);
  }
  return s;
}

inline bool contains_nocase(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return true;
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

inline std::string snapshot_script(std::string_view status_selector, std::string_view sku_selector) {
  return "((statusSel, skuSel) => { const st = document.querySelector(statusSel);"
         "const sel = document.querySelector(skuSel);"
         "const offers = sel ? Array.from(sel.options).map(o => ({sku: o.value, name: (o.textContent || '').trim(),"
         "  category: o.dataset.category || '', price: Number(o.dataset.price || 'NaN'),"
         "  stock: o.disabled ? 0 : Number(o.dataset.stock === undefined ? 1 : o.dataset.stock)})) : [];"
         "return {status: st ? (st.textContent || '').trim() : '', offers}; })(" +
         js_string(status_selector) + ", " + js_string(sku_selector) + ")";
}

/// The snapshot script's value as a shop_snapshot. Never throws: an offer that
/// is not an object is skipped; a price that is not a number is NaN (above
/// every cap); a stock that is not a number counts as none, and one beyond
/// int's range as int's maximum.
inline shop_snapshot to_snapshot(const json& v) {
  shop_snapshot s;
  if (!v.is_object()) return s;
  s.status = string_member(v, "status");
  if (auto it = v.find("offers"); it != v.end() && it->is_array()) {
    for (const auto& o : *it) {
      if (!o.is_object()) continue;
      sku_offer off;
      off.sku = string_member(o, "sku");
      off.name = string_member(o, "name");
      off.category = string_member(o, "category");
      const auto price = o.find("price");
      off.price = price != o.end() && price->is_number() ? price->get<double>()
                                                         : std::numeric_limits<double>::quiet_NaN();
      const auto stock = o.find("stock");
      if (stock != o.end() && stock->is_number()) {
        const double n = stock->get<double>();  // NaN fails both tests: none
        if (n >= static_cast<double>(std::numeric_limits<int>::max())) off.stock = std::numeric_limits<int>::max();
        else if (n > 0) off.stock = static_cast<int>(n);
      }
      s.offers.push_back(std::move(off));
    }
  }
  return s;
}

}  // namespace detail

/// @brief Buys the moment stock appears: watches the page's stock status,
///        asks the Strategy what to buy, selects it, presses buy, and waits for
///        the shop's answer.
///
/// At most one order per stock change: a status that flaps in/out/in while an
/// order is in flight does not cause a second one, and a refused order is
/// retried only on the next change. Stops after a confirmed order or at the
/// deadline. Every action (select, fill, click) takes a token from the
/// Limiter, so the page sees a human pace. Each step is reported to
/// options.on_event and options.log and kept in the result.
///
/// Driver is seckill::browser::page or anything with its operations;
/// Strategy models grab_strategy; Limiter models action_limiter (by
/// reference: one bucket can pace several grabbers).
///
/// Thread-safety: one run at a time per grabber; the run lives on the driver's
/// strand. Cost per attempt: the snapshot evaluate with a look at the buy
/// button, then select and fill together, then the click (about six round
/// trips and the press); idle while nothing changes (no polling).
template <class Driver = page, grab_strategy Strategy = priority_strategy,
          action_limiter Limiter = token_bucket<>>
class grabber {
 public:
  grabber(Driver& driver, Strategy strategy, Limiter& limiter, grabber_options opts = {})
      : driver_(driver), strategy_(std::move(strategy)), limiter_(limiter), opts_(std::move(opts)) {}

  /// Runs until a confirmed order (error_code{}), the deadline (errc::timed_out)
  /// or a failure of the page (errc::browser_closed, ...): completes with
  /// (error_code, grab_result).
  template <class CompletionToken>
  auto async_run(std::chrono::milliseconds deadline, CompletionToken&& token) {
    return detail::spawn_op<void(std::error_code, grab_result), grab_result>(
        driver_.get_executor(), run(this, deadline), std::forward<CompletionToken>(token));
  }

  [[nodiscard]] const Strategy& strategy() const noexcept { return strategy_; }

 private:
  using clock = std::chrono::steady_clock;
  using R = detail::result<grab_result>;
  static constexpr std::chrono::milliseconds look_timeout{100};  // the buy button's early check

  struct state {
    struct look {  // the buy button's first look, running while the grabber goes on
      bool done = false;
      boost::asio::steady_timer* wake = nullptr;
    };
    std::deque<mutation_record> status;
    std::optional<mutation_record> outcome;
    boost::asio::steady_timer* wake = nullptr;
    void notify() {
      if (wake) wake->cancel();
    }
  };

  void report(grab_result& res, grab_step step, std::string detail) {
    grab_event ev{step, std::move(detail), clock::now()};
    if (opts_.log) opts_.log(fmt::format("grabber: {}: {}", to_string(step), ev.detail));
    if (opts_.on_event) opts_.on_event(ev);
    res.events.push_back(std::move(ev));
  }

  // Takes one token, waiting for it at most until `until`; false on timeout.
  boost::asio::awaitable<bool> pace(grab_result& res, clock::time_point until) {
    bool waited = false;
    while (!limiter_.try_acquire(1.0)) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(limiter_.time_until(1.0)) +
                        std::chrono::milliseconds(1);
      if (clock::now() + wait > until) co_return false;
      if (!waited) report(res, grab_step::paced, fmt::format("waiting {} ms for the pace", wait.count()));
      waited = true;
      boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, wait);
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    co_return true;
  }

  static boost::asio::awaitable<R> run(grabber* self, std::chrono::milliseconds deadline_in) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    grab_result res;
    const auto deadline = clock::now() + deadline_in;
    auto st = std::make_shared<state>();
    Driver& d = self->driver_;
    const auto& o = self->opts_;

    std::weak_ptr<state> weak = st;
    auto [ec1, status_sub] = co_await d.async_on_mutation(
        o.status_selector,
        [weak](const mutation_record& r) {
          if (auto s = weak.lock()) {
            s->status.push_back(r);
            s->notify();
          }
        },
        as_tuple(use_awaitable));
    if (ec1) co_return R{ec1, std::move(res)};
    auto [ec2, result_sub] = co_await d.async_on_mutation(
        o.result_selector,
        [weak](const mutation_record& r) {
          if (auto s = weak.lock()) {
            if (!r.initial) s->outcome = r;
            s->notify();
          }
        },
        as_tuple(use_awaitable));
    if (ec2) co_return R{ec2, std::move(res)};
    self->report(res, grab_step::watching, fmt::format("'{}' until '{}' shows", o.status_selector, o.in_stock_text));

    std::uint64_t generation = 0, attempted = 0;
    bool in_stock = false, awaiting = false;
    clock::time_point confirm_until{};
    for (;;) {
      while (!st->status.empty()) {
        const mutation_record r = std::move(st->status.front());
        st->status.pop_front();
        ++generation;
        in_stock = r.present && detail::contains_nocase(r.text, o.in_stock_text);
        self->report(res, grab_step::stock_changed,
                     fmt::format("#{} '{}'{}", generation, r.text, r.initial ? " (page loaded)" : ""));
      }
      if (st->outcome) {
        const mutation_record r = std::move(*st->outcome);
        st->outcome.reset();
        if (awaiting && !r.text.empty()) {
          awaiting = false;
          res.confirmation = r.text;
          if (detail::contains_nocase(r.text, o.success_text)) {
            res.ordered = true;
            self->report(res, grab_step::confirmed, r.text);
            co_return R{{}, std::move(res)};
          }
          self->report(res, grab_step::rejected, r.text);
        }
      }
      const auto now = clock::now();
      if (awaiting && now >= confirm_until) {
        awaiting = false;
        self->report(res, grab_step::failed, "no answer from the shop after pressing buy");
      }
      if (now >= deadline) {
        self->report(res, grab_step::gave_up, fmt::format("deadline of {} ms passed", deadline_in.count()));
        co_return R{make_error_code(errc::timed_out), std::move(res)};
      }
      if (in_stock && !awaiting && attempted != generation) {
        attempted = generation;
        // A first look at the buy button goes out with the snapshot, and the
        // click below waits for it: its wait for an animation frame (is the
        // button stable?) overlaps the snapshot, the decision, select and fill,
        // and the click finds the button already seen stable where it still
        // is. A short look, not a wait: the click waits (and reports) if need be.
        auto look = std::make_shared<typename state::look>();
        d.async_wait_for(o.buy_selector, std::min(o.action_timeout, look_timeout),
                         [look](std::error_code, const element_box&) {
                           look->done = true;
                           if (look->wake) look->wake->cancel();
                         });
        auto [es, snap_json] = co_await d.async_evaluate_isolated(
            detail::snapshot_script(o.status_selector, o.sku_selector), as_tuple(use_awaitable));
        if (es == errc::browser_closed || es == errc::operation_aborted) co_return R{es, std::move(res)};
        if (es) {
          self->report(res, grab_step::failed, fmt::format("reading the offers: {}", es.message()));
          continue;
        }
        const shop_snapshot snap = detail::to_snapshot(snap_json);
        const std::optional<order_intent> intent = self->strategy_.decide(snap);
        if (!intent) {
          self->report(res, grab_step::skipped,
                       fmt::format("{} offers, none wanted in stock within the limits", snap.offers.size()));
          continue;
        }
        self->report(res, grab_step::decided, detail::describe_intent(*intent));
        // One token per action: select, fill (when there is a quantity field), click.
        const bool fill = !o.quantity_selector.empty();
        if (!co_await self->pace(res, deadline)) continue;  // the deadline check ends the run
        if (fill && !co_await self->pace(res, deadline)) continue;
        // Select and fill go out together (the page runs them in that order).
        using boost::asio::deferred;
        using boost::asio::experimental::make_parallel_group;
        using boost::asio::experimental::wait_for_all;
        std::error_code e_sel, e_qty;
        if (fill) {
          auto [order, es_, eq_] =
              co_await make_parallel_group(
                  d.async_select_option(o.sku_selector, intent->sku, o.action_timeout, deferred),
                  d.async_fill(o.quantity_selector, std::to_string(intent->quantity), o.action_timeout, deferred))
                  .async_wait(wait_for_all(), use_awaitable);
          e_sel = es_;
          e_qty = eq_;
        } else {
          std::tie(e_sel) = co_await d.async_select_option(o.sku_selector, intent->sku, o.action_timeout,
                                                            as_tuple(use_awaitable));
        }
        if (e_sel) {
          if (e_sel == errc::browser_closed) co_return R{e_sel, std::move(res)};
          self->report(res, grab_step::failed, fmt::format("selecting {}: {}", intent->sku, e_sel.message()));
          continue;
        }
        if (e_qty == errc::browser_closed) co_return R{e_qty, std::move(res)};
        if (e_qty && !(e_qty == errc::element_not_found && intent->quantity == 1)) {
          self->report(res, grab_step::failed, fmt::format("setting quantity {}: {}", intent->quantity, e_qty.message()));
          continue;
        }
        if (!co_await self->pace(res, deadline)) continue;
        if (!look->done) {
          boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, look_timeout);
          look->wake = &t;
          co_await t.async_wait(as_tuple(use_awaitable));
          look->wake = nullptr;
        }
        auto [e_click] = co_await d.async_click(o.buy_selector, o.click, as_tuple(use_awaitable));
        if (e_click) {
          if (e_click == errc::browser_closed) co_return R{e_click, std::move(res)};
          self->report(res, grab_step::failed, fmt::format("pressing '{}': {}", o.buy_selector, e_click.message()));
          continue;
        }
        ++res.attempts;
        res.sku = intent->sku;
        res.quantity = intent->quantity;
        res.requested = std::max(intent->requested, intent->quantity);
        awaiting = true;
        confirm_until = clock::now() + o.confirm_timeout;
        self->report(res, grab_step::ordered, fmt::format("pressed '{}' for {} x {}", o.buy_selector,
                                                          intent->quantity, intent->sku));
        continue;
      }
      if (clock::now() >= deadline) continue;
      boost::asio::steady_timer wake(co_await boost::asio::this_coro::executor,
                                     awaiting ? std::min(deadline, confirm_until) : deadline);
      st->wake = &wake;
      if (st->status.empty() && !st->outcome) {
        co_await wake.async_wait(as_tuple(use_awaitable));
      }
      st->wake = nullptr;
      const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
      if (cs.cancelled() != boost::asio::cancellation_type::none) {
        co_return R{make_error_code(errc::operation_aborted), std::move(res)};
      }
    }
  }

  Driver& driver_;
  Strategy strategy_;
  Limiter& limiter_;
  grabber_options opts_;
};

}  // namespace seckill::browser
