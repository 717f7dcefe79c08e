#pragma once
/// @file
/// @brief `maybe_tls_stream<NextLayer>`: a connection's stream, plain or TLS
///        as its configuration says, chosen per connection. The plain path
///        costs one branch per read or write: no virtual call, no allocation,
///        no type-erased handler. Built without the `seckill::tls` component
///        (no `SECKILL_HAS_TLS`), it is the plain stream and nothing else.

#include <seckill/tls.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <optional>
#include <utility>

#if SECKILL_HAS_TLS
#include <seckill/detail/tls_context.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#endif

namespace seckill::detail {

/// True when this program was built with TLS (the `seckill::tls` component).
inline constexpr bool tls_available =
#if SECKILL_HAS_TLS
    true;
#else
    false;
#endif

/// A stream over `NextLayer` (a TCP socket, Beast's `tcp_stream`) that
/// speaks TLS once `start_tls` was called on it, plainly otherwise. Models
/// Asio's AsyncReadStream and AsyncWriteStream; `next_layer()` is the TCP
/// stream (connect, timeouts, close). Not thread-safe: one strand, as its
/// next layer.
template <class NextLayer>
class maybe_tls_stream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  template <class... Args>
  explicit maybe_tls_stream(Args&&... args) : next_(std::forward<Args>(args)...) {}
  maybe_tls_stream(const maybe_tls_stream&) = delete;
  maybe_tls_stream& operator=(const maybe_tls_stream&) = delete;

  [[nodiscard]] NextLayer& next_layer() noexcept { return next_; }
  [[nodiscard]] const NextLayer& next_layer() const noexcept { return next_; }
  [[nodiscard]] executor_type get_executor() noexcept { return next_.get_executor(); }

#if SECKILL_HAS_TLS
  using tls_type = boost::asio::ssl::stream<NextLayer&>;
  /// From now on (until `use_plain`), reads and writes go through a new TLS
  /// session over the next layer (connected, not yet handshaken).
  tls_type& start_tls(boost::asio::ssl::context& ctx) {
    tls_.emplace(next_, ctx);
    return *tls_;
  }
  [[nodiscard]] bool is_tls() const noexcept { return tls_.has_value(); }
  [[nodiscard]] tls_type* tls() noexcept { return tls_ ? &*tls_ : nullptr; }
  /// Drops the TLS session (before the next layer is connected again).
  void use_plain() noexcept { tls_.reset(); }
#else
  [[nodiscard]] static constexpr bool is_tls() noexcept { return false; }
  void use_plain() noexcept {}
#endif

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        initiate_read{this}, token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        initiate_write{this}, token, buffers);
  }

 private:
  struct initiate_read {
    maybe_tls_stream* self;
    template <class Handler, class Buffers>
    void operator()(Handler&& handler, const Buffers& buffers) const {
#if SECKILL_HAS_TLS
      if (self->tls_) {
        self->tls_->async_read_some(buffers, std::forward<Handler>(handler));
        return;
      }
#endif
      self->next_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  };
  struct initiate_write {
    maybe_tls_stream* self;
    template <class Handler, class Buffers>
    void operator()(Handler&& handler, const Buffers& buffers) const {
#if SECKILL_HAS_TLS
      if (self->tls_) {
        self->tls_->async_write_some(buffers, std::forward<Handler>(handler));
        return;
      }
#endif
      self->next_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  };

  NextLayer next_;
#if SECKILL_HAS_TLS
  std::optional<tls_type> tls_;
#endif
};

}  // namespace seckill::detail
