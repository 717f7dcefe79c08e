#pragma once
/// @file
/// @brief The buyer's side of a flash sale: watch a shop page, decide with a
///        strategy, buy the moment stock appears, at a human pace.
///
/// Three layers: perception (a MutationObserver on the stock status, a snapshot
/// of the SKUs on offer), decision (a Strategy picks a SKU and a quantity:
/// browser/strategy.hpp, included here), execution (select the SKU, set the
/// quantity, press buy with trusted input), paced by a token bucket.

#include <seckill/browser/error.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/detail/spawned_completion.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace seckill::browser {

/// @brief A Limiter paces actions; seckill::token_bucket models it.
template <class L>
concept action_limiter = requires(L& l) {
  { l.try_acquire(1.0) } -> std::convertible_to<bool>;
  {l.time_until(1.0)};
};

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

/// The step's name as the log writes it ("stock-changed", "gave-up", ...).
constexpr std::string_view to_string(grab_step s) noexcept {
  switch (s) {
    case grab_step::watching:
      return "watching";
    case grab_step::stock_changed:
      return "stock-changed";
    case grab_step::decided:
      return "decided";
    case grab_step::skipped:
      return "skipped";
    case grab_step::paced:
      return "paced";
    case grab_step::ordered:
      return "ordered";
    case grab_step::confirmed:
      return "confirmed";
    case grab_step::rejected:
      return "rejected";
    case grab_step::failed:
      return "failed";
    case grab_step::gave_up:
      return "gave-up";
  }
  return "unknown";
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
  std::string in_stock_text = "in stock";       ///< case-insensitive, in the status text
  std::string sku_selector = "#sku";            ///< a native <select> of SKUs
  std::string quantity_selector = "#quantity";  ///< empty: no quantity field
  std::string buy_selector = "#buy";
  std::string result_selector = ".order-result";
  std::string success_text = "confirmed";  ///< case-insensitive, in the result text
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
  int requested =
      0;  ///< what the strategy was asked for; more than quantity when less was in stock
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
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

/// (statusSel, skuSel) -> {status, offers: [{sku, name, category, price, stock}]}:
/// the stock-status text and the options of the SKU select, read in one call.
inline constexpr std::string_view snapshot_script = R"js((statusSel, skuSel) => {
  const st = document.querySelector(statusSel);
  const sel = document.querySelector(skuSel);
  const offers = sel ? Array.from(sel.options).map(o => ({
    sku: o.value,
    name: (o.textContent || '').trim(),
    category: o.dataset.category || '',
    price: Number(o.dataset.price || 'NaN'),
    stock: o.disabled ? 0 : Number(o.dataset.stock === undefined ? 1 : o.dataset.stock)
  })) : [];
  return {status: st ? (st.textContent || '').trim() : '', offers};
})js";

/// The snapshot script's value as a shop_snapshot. Never throws: an offer that
/// is not an object is skipped; a price that is not a number is NaN (above
/// every cap); a stock that is not a number counts as none, and one beyond
/// int's range as int's maximum.
inline shop_snapshot to_snapshot(const nlohmann::json& v) {
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
        if (n >= static_cast<double>(std::numeric_limits<int>::max()))
          off.stock = std::numeric_limits<int>::max();
        else if (n > 0)
          off.stock = static_cast<int>(n);
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
  using executor_type = typename Driver::executor_type;

  grabber(Driver& driver, Strategy strategy, Limiter& limiter, grabber_options opts = {})
      : driver_(driver),
        strategy_(std::move(strategy)),
        limiter_(limiter),
        opts_(std::move(opts)) {}

  /// The driver's executor, where the run lives.
  [[nodiscard]] executor_type get_executor() const { return driver_.get_executor(); }

  /// Runs until a confirmed order (error_code{}), the deadline (errc::timed_out)
  /// or a failure of the page (errc::browser_closed, ...): completes with
  /// (error_code, grab_result). Cancelled, it completes with
  /// errc::operation_aborted and what was done so far.
  template <boost::asio::completion_token_for<void(std::error_code, grab_result)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_run(std::chrono::milliseconds deadline, CompletionToken&& token = CompletionToken()) {
    return seckill::detail::async_spawn<void(std::error_code, grab_result)>(
        get_executor(), run(this, deadline), token);
  }

  [[nodiscard]] const Strategy& strategy() const noexcept { return strategy_; }

 private:
  using clock = std::chrono::steady_clock;
  using R = std::pair<std::error_code, grab_result>;
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

  static boost::asio::awaitable<bool> cancel_requested() {
    const boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    co_return cs.cancelled() != boost::asio::cancellation_type::none;
  }

  // Takes one token, waiting for it at most until `until`; false on timeout
  // or cancellation.
  boost::asio::awaitable<bool> pace(grab_result& res, clock::time_point until) {
    bool waited = false;
    while (!limiter_.try_acquire(1.0)) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(limiter_.time_until(1.0)) +
          std::chrono::milliseconds(1);
      if (clock::now() + wait > until) co_return false;
      if (!waited)
        report(res, grab_step::paced, fmt::format("waiting {} ms for the pace", wait.count()));
      waited = true;
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer t(ex, wait);
      co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      const bool stop = co_await cancel_requested();
      if (stop) co_return false;
    }
    co_return true;
  }

  static boost::asio::awaitable<R> run(grabber* self, std::chrono::milliseconds deadline_in) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    grab_result res;
    const auto deadline = clock::now() + deadline_in;
    auto st = std::make_shared<state>();
    Driver& d = self->driver_;
    const auto& o = self->opts_;

    std::weak_ptr<state> weak = st;
    std::function<void(const mutation_record&)> on_status = [weak](const mutation_record& r) {
      if (auto s = weak.lock()) {
        s->status.push_back(r);
        s->notify();
      }
    };
    std::function<void(const mutation_record&)> on_outcome = [weak](const mutation_record& r) {
      if (auto s = weak.lock()) {
        if (!r.initial) s->outcome = r;
        s->notify();
      }
    };
    auto [ec1, status_sub] = co_await d.async_on_mutation(o.status_selector, std::move(on_status),
                                                          as_tuple(use_awaitable));
    if (ec1) co_return R{ec1, std::move(res)};
    auto [ec2, result_sub] = co_await d.async_on_mutation(o.result_selector, std::move(on_outcome),
                                                          as_tuple(use_awaitable));
    if (ec2) co_return R{ec2, std::move(res)};
    self->report(res, grab_step::watching,
                 fmt::format("'{}' until '{}' shows", o.status_selector, o.in_stock_text));

    std::uint64_t generation = 0, attempted = 0;
    bool in_stock = false, awaiting = false;
    clock::time_point confirm_until{};
    for (;;) {
      const bool stop = co_await cancel_requested();
      if (stop) co_return R{make_error_code(seckill::errc::operation_aborted), std::move(res)};
      while (!st->status.empty()) {
        const mutation_record r = std::move(st->status.front());
        st->status.pop_front();
        ++generation;
        in_stock = r.present && detail::contains_nocase(r.text, o.in_stock_text);
        self->report(
            res, grab_step::stock_changed,
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
        self->report(res, grab_step::gave_up,
                     fmt::format("deadline of {} ms passed", deadline_in.count()));
        co_return R{make_error_code(seckill::errc::timed_out), std::move(res)};
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
        std::string snapshot_function(detail::snapshot_script);
        nlohmann::json selectors = nlohmann::json::array({o.status_selector, o.sku_selector});
        auto [es, snap_json] = co_await d.async_call_function_isolated(
            std::move(snapshot_function), std::move(selectors), as_tuple(use_awaitable));
        if (es == errc::browser_closed || es == seckill::errc::operation_aborted)
          co_return R{es, std::move(res)};
        if (!es && !snap_json.is_object()) es = make_error_code(seckill::errc::protocol_error);
        if (es) {
          self->report(res, grab_step::failed, fmt::format("reading the offers: {}", es.message()));
          continue;
        }
        const shop_snapshot snap = detail::to_snapshot(snap_json);
        const std::optional<order_intent> intent = self->strategy_.decide(snap);
        if (!intent) {
          self->report(
              res, grab_step::skipped,
              fmt::format("{} offers, none wanted in stock within the limits", snap.offers.size()));
          continue;
        }
        self->report(res, grab_step::decided, detail::describe_intent(*intent));
        // One token per action: select, fill (when there is a quantity field), click.
        const bool fill = !o.quantity_selector.empty();
        // A false pace: the deadline (or a cancellation) ends the run at the loop's top.
        const bool paced_select = co_await self->pace(res, deadline);
        if (!paced_select) continue;
        if (fill) {
          const bool paced_fill = co_await self->pace(res, deadline);
          if (!paced_fill) continue;
        }
        // Select and fill go out together (the page runs them in that order).
        using boost::asio::deferred;
        using boost::asio::experimental::make_parallel_group;
        using boost::asio::experimental::wait_for_all;
        std::error_code e_sel, e_qty;
        if (fill) {
          auto select =
              d.async_select_option(o.sku_selector, intent->sku, o.action_timeout, deferred);
          auto quantity = d.async_fill(o.quantity_selector, std::to_string(intent->quantity),
                                       o.action_timeout, deferred);
          auto both = make_parallel_group(std::move(select), std::move(quantity));
          const wait_for_all all;
          auto [order, es_, eq_] = co_await both.async_wait(all, use_awaitable);
          e_sel = es_;
          e_qty = eq_;
        } else {
          std::tie(e_sel) = co_await d.async_select_option(
              o.sku_selector, intent->sku, o.action_timeout, as_tuple(use_awaitable));
        }
        if (e_sel) {
          if (e_sel == errc::browser_closed) co_return R{e_sel, std::move(res)};
          self->report(res, grab_step::failed,
                       fmt::format("selecting {}: {}", intent->sku, e_sel.message()));
          continue;
        }
        if (e_qty == errc::browser_closed) co_return R{e_qty, std::move(res)};
        if (e_qty && !(e_qty == errc::element_not_found && intent->quantity == 1)) {
          self->report(res, grab_step::failed,
                       fmt::format("setting quantity {}: {}", intent->quantity, e_qty.message()));
          continue;
        }
        const bool paced_click = co_await self->pace(res, deadline);
        if (!paced_click) continue;
        if (!look->done) {
          const auto ex = co_await boost::asio::this_coro::executor;
          boost::asio::steady_timer t(ex, look_timeout);
          look->wake = &t;
          co_await t.async_wait(as_tuple(use_awaitable));
          look->wake = nullptr;
        }
        auto [e_click] = co_await d.async_click(o.buy_selector, o.click, as_tuple(use_awaitable));
        if (e_click) {
          if (e_click == errc::browser_closed) co_return R{e_click, std::move(res)};
          self->report(res, grab_step::failed,
                       fmt::format("pressing '{}': {}", o.buy_selector, e_click.message()));
          continue;
        }
        ++res.attempts;
        res.sku = intent->sku;
        res.quantity = intent->quantity;
        res.requested = std::max(intent->requested, intent->quantity);
        awaiting = true;
        confirm_until = clock::now() + o.confirm_timeout;
        self->report(
            res, grab_step::ordered,
            fmt::format("pressed '{}' for {} x {}", o.buy_selector, intent->quantity, intent->sku));
        continue;
      }
      if (clock::now() >= deadline) continue;
      const auto ex = co_await boost::asio::this_coro::executor;
      boost::asio::steady_timer wake(ex, awaiting ? std::min(deadline, confirm_until) : deadline);
      st->wake = &wake;
      if (st->status.empty() && !st->outcome) {
        co_await wake.async_wait(as_tuple(use_awaitable));
      }
      st->wake = nullptr;
    }
  }

  Driver& driver_;
  Strategy strategy_;
  Limiter& limiter_;
  grabber_options opts_;
};

}  // namespace seckill::browser
