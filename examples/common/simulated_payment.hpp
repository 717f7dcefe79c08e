#pragma once
// simulated_payment: a payment provider for examples and tests. Each payment
// takes a time drawn in [0.5, 1.5] x the mean latency, fails with one
// probability or never answers with another (the purchase deadline then
// cancels it); every draw comes from the order id and the seed, so a run is
// reproducible whatever the threads do. A mean latency of 0 answers at once.
//
// Thread-safety: async_pay from any thread. Cost: one timer per payment
// (none when instant), no lock.

#include <seckill/error.hpp>
#include <seckill/purchase/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <system_error>
#include <utility>

namespace seckill_examples {

struct payment_simulation {
  std::chrono::microseconds latency{20'000};  ///< mean; 0: instant
  double failure = 0.05;                      ///< share of payments that fail
  double hang = 0.01;                         ///< share that never answer
  std::uint64_t seed = 42;
};

class simulated_payment {
 public:
  simulated_payment(boost::asio::any_io_executor ex, payment_simulation p)
      : ex_(std::move(ex)), p_(p) {}

  template <class Token>
  auto async_pay(const seckill::payment_request& r, Token&& token) {
    namespace asio = boost::asio;
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, std::int64_t order_id) {
          std::uint64_t x = mix(p_.seed ^ static_cast<std::uint64_t>(order_id));
          const double u1 = unit(x), u2 = unit(x = mix(x)), u3 = unit(mix(x));
          auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(p_.latency *
                                                                                      (0.5 + u1));
          std::error_code outcome;
          const bool hangs = u2 < p_.hang;
          if (hangs)
            wait = std::chrono::hours(1);  // the deadline will cancel it
          else if (u3 < p_.failure)
            outcome = seckill::errc::payment_failed;
          auto ex = asio::get_associated_executor(handler, ex_);
          if (!hangs && wait == std::chrono::steady_clock::duration::zero()) {
            asio::post(ex, asio::append(std::move(handler), outcome));
            return;
          }
          auto timer = std::make_unique<asio::steady_timer>(ex, wait);  // on the caller's thread
          auto& t = *timer;
          auto slot = asio::get_associated_cancellation_slot(handler);
          t.async_wait(asio::bind_cancellation_slot(
              slot, asio::bind_executor(ex, [timer = std::move(timer), h = std::move(handler),
                                             outcome](boost::system::error_code ec) mutable {
                timer.reset();
                std::move(h)(ec ? std::error_code(seckill::errc::operation_aborted) : outcome);
              })));
        },
        token, r.order_id);
  }

 private:
  static std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  static double unit(std::uint64_t x) { return static_cast<double>(x >> 11) * 0x1.0p-53; }

  boost::asio::any_io_executor ex_;
  payment_simulation p_;
};

}  // namespace seckill_examples
