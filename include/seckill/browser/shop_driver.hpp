#pragma once
/// @file
/// @brief What the grabber needs of a shop, in shop terms: the `shop_driver`
///        concept (watch the stock status and the order's outcome, read the
///        offers, choose one, set the quantity, press buy) and the events a
///        driver reports. browser/page_driver.hpp implements it over a
///        Chromium tab; a test double implements it over a scripted shop.

#include <seckill/browser/shop_clock.hpp>
#include <seckill/browser/strategy.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

namespace seckill::browser {

/// @brief What changed on the shop's page.
enum class shop_event_kind {
  status,        ///< the stock status changed (text, presence, or a new document)
  offers,        ///< the offers changed while the status did not (a count, a price)
  outcome,       ///< the shop answered an order (confirmed or rejected)
  countdown,     ///< the countdown to the start shows a new text (empty: it is gone)
  verification,  ///< a verification a person must solve shows (its description; empty: gone)
};

/// The kind's name as logs write it ("status", "offers", "outcome", "countdown",
/// "verification").
constexpr std::string_view to_string(shop_event_kind k) noexcept {
  switch (k) {
    case shop_event_kind::status:
      return "status";
    case shop_event_kind::offers:
      return "offers";
    case shop_event_kind::outcome:
      return "outcome";
    case shop_event_kind::countdown:
      return "countdown";
    case shop_event_kind::verification:
      return "verification";
  }
  return "unknown";
}

/// @brief Where a status event's stock was read.
enum class event_source {
  page,     ///< the page's status element (the DOM)
  network,  ///< a response the page received (profile stock_response)
};

/// @brief A network status event's re-check against the page (profile
///        `stock_confirm = page`).
enum class page_check : unsigned char {
  none,         ///< not checked: a second, newer response confirms it
  agrees,       ///< the page's status says in stock too
  contradicts,  ///< the page's status says otherwise
};

/// @brief One change a shop_driver reports, already read in the shop's terms
///        (the driver knows the site: which texts mean in stock, what a
///        confirmation looks like).
///
/// A status event from the network (`source == event_source::network`) is
/// one response that carried the stock: the grabber re-checks a "just in
/// stock" one before acting (a cached one is stale; the page's check, or a
/// second fresh response with another `response` number, confirms it).
///
/// A plain value. Cost: that of its text.
struct shop_event {
  shop_event_kind kind = shop_event_kind::status;
  std::string text;        ///< the status, result or countdown text as the page shows it
  bool in_stock = false;   ///< status: the page says there is stock
  bool confirmed = false;  ///< outcome: the shop confirmed the order (else it refused it)
  bool initial = false;    ///< status: the first report of a new document
  event_source source = event_source::page;  ///< status: the DOM, or a response
  bool cached = false;  ///< network: served by a cache (disk, service worker, prefetch, Age > 0)
  page_check check = page_check::none;  ///< network: what the page said when re-checked
  std::uint64_t response = 0;           ///< network: the response's number (distinct per response)
  /// outcome: the shop refused by throttling (HTTP 429 or 503 to the order,
  /// or the profile's `throttled` element or text), not for want of stock
  bool throttled = false;
  std::optional<std::chrono::milliseconds> retry_after = {};  ///< throttled: the shop's Retry-After
};

/// @brief A shop the grabber can buy from. Every operation follows Asio's
///        completion-token model; the grabber awaits them with
///        `as_tuple(use_awaitable)`:
///
/// ```text
/// get_executor()                        where the operations run
/// async_watch(token)                    void(error_code): start reporting events;
///                                       a countdown's text is reported (as a
///                                       countdown event) before it completes, and
///                                       so is a verification already showing
/// async_clock_samples(n, token)         void(error_code, vector<clock_sample>):
///                                       up to n readings of the shop's clock
/// async_reload(token)                   void(error_code): load the page again
///                                       (its new state comes as events)
/// async_next_event(max_wait, token)     void(error_code, optional<shop_event>):
///                                       the oldest unread event, waiting for one at
///                                       most max_wait (nanoseconds of the grabber's
///                                       clock); nullopt when none came
/// async_snapshot(token)                 void(error_code, shop_snapshot): status and offers
/// async_choose(sku, token)              void(error_code): pick the offer
/// async_set_quantity(n, token)          void(error_code): a shop with no quantity
///                                       field accepts 1 and refuses more
/// async_press_buy(token)                void(error_code): the order leaves; its
///                                       answer comes as an outcome event
/// ```
/// Errors the grabber tells apart: errc::browser_closed and
/// seckill::errc::operation_aborted end a run; any other failure of an
/// action counts as a failed try.
template <class D>
concept shop_driver = requires(D& d, std::string sku, int quantity, std::chrono::nanoseconds wait) {
  typename D::executor_type;
  { d.get_executor() } -> std::convertible_to<typename D::executor_type>;
  {
    d.async_watch(boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code>>>;
  {
    d.async_next_event(wait, boost::asio::as_tuple(boost::asio::use_awaitable))
    }
    -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code, std::optional<shop_event>>>>;
  {
    d.async_snapshot(boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code, shop_snapshot>>>;
  {
    d.async_choose(sku, boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code>>>;
  {
    d.async_set_quantity(quantity, boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code>>>;
  {
    d.async_press_buy(boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code>>>;
  {
    d.async_reload(boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code>>>;
  {
    d.async_clock_samples(quantity, boost::asio::as_tuple(boost::asio::use_awaitable))
    }
    -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code, std::vector<clock_sample>>>>;
};

/// @brief Which of a try's actions an error of async_order came from.
enum class order_action : unsigned char { choose, quantity, press };

/// @brief The actions of one try for async_order: choose `sku`, set
/// `quantity` (each skipped when nullopt: done ahead and still shown), then
/// press buy.
struct order_actions {
  std::optional<std::string> sku = std::nullopt;
  std::optional<int> quantity = std::nullopt;
};

/// @brief A shop_driver that runs a try's actions back to back in one
/// operation, where its transport makes each operation costly (the extension
/// backend: one request instead of three):
///
/// ```text
/// async_order(actions, token)   void(error_code, order_action): the same
///                               checks, input and errors as async_choose,
///                               async_set_quantity and async_press_buy one
///                               after the other; the first error ends it and
///                               says which action it came from
/// ```
/// The grabber uses it when nothing is to happen between the actions: not a
/// dry run, no random pause, and the pace's tokens for all of them at hand
/// (or an unpaced reaction).
template <class D>
concept ordering_shop_driver = shop_driver<D> && requires(D& d, order_actions a) {
  {
    d.async_order(a, boost::asio::as_tuple(boost::asio::use_awaitable))
    } -> std::same_as<boost::asio::awaitable<std::tuple<std::error_code, order_action>>>;
};

}  // namespace seckill::browser
