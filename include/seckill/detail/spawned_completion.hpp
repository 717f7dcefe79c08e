#pragma once
/// @file
/// @brief How seckill turns a coroutine into an asynchronous operation:
///        `detail::async_spawn` and `detail::spawned_completion`, the one
///        adapter between `co_spawn`'s completion `(std::exception_ptr, T)` and
///        the operation's own signature `void(std::error_code, Ts...)`.
///
/// Every public `async_*` operation whose body is a coroutine is written as
///
///     template <boost::asio::completion_token_for<void(std::error_code, R)>
///                   CompletionToken = boost::asio::default_completion_token_t<executor_type>>
///     auto async_thing(args, CompletionToken&& token = CompletionToken()) {
///       return detail::async_spawn<void(std::error_code, R)>(executor, body(args), token);
///     }
///
/// where `body` returns `awaitable<std::pair<std::error_code, R>>` (or
/// `awaitable<std::error_code>` for `void(std::error_code)`).
///
/// What reaches the coroutine: everything associated with the caller's
/// handler (executor, allocator, cancellation slot) stays associated with the
/// handler `co_spawn` sees, so the completion runs on the handler's executor
/// and a signal emitted on the handler's cancellation slot reaches the
/// coroutine's cancellation state (terminal cancellation by default; a body
/// that honours more calls `reset_cancellation_state` itself).
///
/// Exception policy, the same for every operation: seckill's coroutines report
/// every failure they expect as an error code. An exception that escapes one
/// anyway is handled in exactly one of two ways:
/// - a `boost::system::system_error` or `std::system_error` (what
///   `use_awaitable` throws for a failed or cancelled Asio operation) completes
///   the operation with that error code and default-constructed results;
/// - anything else (`std::bad_alloc`, a bug) is rethrown from the handler's
///   invocation: out of the executor's `run()`, as Asio does with any
///   exception a handler throws. Nothing is swallowed or renamed.

#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace seckill::detail {

template <class T>
concept tuple_like = requires {
  std::tuple_size<std::remove_cvref_t<T>>::value;
};

/// The error code an escaped exception stands for, or rethrows it (the
/// policy above).
inline std::error_code code_of_escaped(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return se.code();
  } catch (const std::system_error& se) {
    return se.code();
  }
}

/// The handler given to `co_spawn`: `T` a `std::pair` or `std::tuple` whose
/// first element is the `std::error_code`: the handler gets its elements as
/// arguments; `T` a `std::error_code` is passed as the single argument.
/// Thread-safety: as the wrapped handler. Cost: none beyond the handler's move.
template <class Handler>
struct spawned_completion {
  Handler handler;

  template <class T>
  void operator()(std::exception_ptr e, T&& value) {
    if constexpr (tuple_like<T>) {
      if (e) {
        std::remove_cvref_t<T> failed{};
        std::get<0>(failed) = code_of_escaped(e);
        complete(std::move(failed));
      } else {
        complete(std::forward<T>(value));
      }
    } else {
      if (e) {
        std::move(handler)(std::remove_cvref_t<T>(code_of_escaped(e)));
      } else {
        std::move(handler)(std::forward<T>(value));
      }
    }
  }

 private:
  template <class Tuple>
  void complete(Tuple&& t) {
    std::apply(
        [this](auto&&... args) { std::move(handler)(std::forward<decltype(args)>(args)...); },
        std::forward<Tuple>(t));
  }
};

/// Starts `body` (an `awaitable` of `std::pair<std::error_code, R>`, a
/// `std::tuple` whose first element is the code, or a `std::error_code`) on
/// `ex` when the operation is initiated, and completes `token` with
/// `Signature`. The body is not started before initiation: with `deferred`,
/// only when the deferred operation is launched.
template <class Signature, class Executor, class Awaitable, class Token>
auto async_spawn(const Executor& ex, Awaitable body, Token&& token) {
  return boost::asio::async_initiate<Token, Signature>(
      [](auto handler, const Executor& executor, Awaitable awaitable) {
        boost::asio::co_spawn(executor, std::move(awaitable),
                              spawned_completion<decltype(handler)>{std::move(handler)});
      },
      token, ex, std::move(body));
}

}  // namespace seckill::detail

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct boost::asio::associator<Associator, seckill::detail::spawned_completion<Handler>,
                               DefaultCandidate> : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const seckill::detail::spawned_completion<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static auto get(const seckill::detail::spawned_completion<Handler>& h,
                  const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
