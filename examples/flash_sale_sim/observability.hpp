#pragma once
// --metrics-port: the sale's metrics (seckill::obs::purchase_metrics, fed by the
// engine's purchase_hooks) served with /health on 127.0.0.1 from a thread of
// their own while the sale runs, and for --linger after the report so that
// Prometheus scrapes the final state. Without --metrics-port the metrics are
// still counted (a counter and a histogram per purchase) but not served.

#include "options.hpp"

#include <seckill/obs/prometheus.hpp>
#include <seckill/obs/purchase_hooks.hpp>
#include <seckill/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace flash_sale_sim {

class observability {
 public:
  /// Starts the server when --metrics-port is given; throws seckill::error when it cannot listen.
  /// /health names the store by its URL with the password redacted.
  explicit observability(const options& o)
      : metrics_(registry_), store_name_(seckill::redact_url(o.store)) {
    if (!o.metrics_port) return;
    server_.emplace(
        io_.get_executor(), registry_,
        seckill::obs::metrics_server::options{.port = *o.metrics_port}, [this] {
          const bool ok = store_ok_.load();
          return seckill::obs::health_report{
              {{store_name_, ok, ok ? "" : "the last stock read from the store failed"}}};
        });
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  observability(const observability&) = delete;
  observability& operator=(const observability&) = delete;
  ~observability() {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }

  /// The sale's observability: the one main() made current with `scope`, else a
  /// process-wide one that counts but does not serve.
  static observability& current() {
    if (current_slot() != nullptr) return *current_slot();
    static observability unserved{options{}};
    return unserved;
  }
  /// Makes an observability current for its lifetime.
  class scope {
   public:
    explicit scope(observability& o) : previous_(std::exchange(current_slot(), &o)) {}
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    ~scope() { current_slot() = previous_; }

   private:
    observability* previous_;
  };

  [[nodiscard]] bool serving() const noexcept { return server_.has_value(); }
  [[nodiscard]] unsigned short port() const noexcept { return server_ ? server_->port() : 0; }
  seckill::obs::purchase_metrics& metrics() noexcept { return metrics_; }

  /// Records a stock read: the SKU's gauge, or a store error.
  void stock_read(const std::string& sku, std::error_code ec, std::int64_t remaining) {
    store_ok_ = !ec;
    if (ec)
      metrics_.store_error("stock");
    else
      metrics_.set_stock(sku, remaining);
  }

  /// Keeps serving for `d`, or until SIGINT or SIGTERM.
  void linger(std::chrono::milliseconds d) {
    if (!server_ || d <= std::chrono::milliseconds::zero()) return;
    boost::asio::io_context waiter;
    boost::asio::signal_set signals(waiter, SIGINT, SIGTERM);
    boost::asio::steady_timer timer(waiter, d);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) timer.cancel();
    });
    timer.async_wait([&](const boost::system::error_code&) { signals.cancel(); });
    waiter.run();
  }

  /// While the sale runs (until `done()`), samples the breaker's state and every
  /// SKU's stock into the metrics every 100 ms; only when serving.
  template <class Store, class Breaker, class Done>
  boost::asio::awaitable<void> sample(Store& store, const Breaker& breaker,
                                      const std::vector<std::string>& skus, Done done) {
    if (!server_) co_return;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (!done()) {
      metrics_.set_breaker_state(breaker.state());
      for (const auto& sku : skus) {
        auto [ec, level] =
            co_await store.async_stock(sku, boost::asio::as_tuple(boost::asio::use_awaitable));
        stock_read(sku, ec, level.remaining);
      }
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    metrics_.set_breaker_state(breaker.state());
  }

 private:
  static observability*& current_slot() noexcept {
    static observability* slot = nullptr;
    return slot;
  }

  seckill::obs::registry registry_;
  seckill::obs::purchase_metrics metrics_;
  std::string store_name_;
  std::atomic<bool> store_ok_{true};
  boost::asio::io_context io_;
  std::optional<seckill::obs::metrics_server> server_;
  std::thread thread_;
};

}  // namespace flash_sale_sim
