#pragma once
/// @file
/// @brief `detail::spawned_completion`: turns the completion of a
///        `co_spawn`ed coroutine, `(std::exception_ptr, T)`, into the
///        operation's own signature, keeping everything associated with the
///        caller's handler (executor, allocator, cancellation slot).
///
/// Exception policy: seckill's coroutines report every failure they expect
/// as an error code, so an exception that escapes one (`std::bad_alloc`, a
/// bug) is rethrown from the handler's invocation: out of the executor's
/// `run()`, as Asio does with any exception a handler throws.

#include <boost/asio/associator.hpp>

#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

namespace seckill::detail {

template <class T>
concept tuple_like = requires { std::tuple_size<std::remove_cvref_t<T>>::value; };

/// `T` a `std::pair` or `std::tuple`: the handler gets its elements as
/// arguments; any other `T` is passed as the single argument.
template <class Handler>
struct spawned_completion {
  Handler handler;

  template <class T>
  void operator()(std::exception_ptr e, T&& value) {
    if (e) std::rethrow_exception(e);
    if constexpr (tuple_like<T>) {
      std::apply([this](auto&&... args) { std::move(handler)(std::forward<decltype(args)>(args)...); },
                 std::forward<T>(value));
    } else {
      std::move(handler)(std::forward<T>(value));
    }
  }
};

}  // namespace seckill::detail

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, seckill::detail::spawned_completion<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const seckill::detail::spawned_completion<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static auto get(const seckill::detail::spawned_completion<Handler>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
