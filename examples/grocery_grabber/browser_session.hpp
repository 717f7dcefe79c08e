#pragma once
// How grocery_grabber gets its browser: launched (its sandbox as --sandbox
// says, a temporary profile or --profile DIR, headless unless --login or
// --visible) or,
// with --connect, a browser the user runs; and the --login wait.

#include "grocery_grabber/options.hpp"

#include <seckill/browser/chromium.hpp>
#include <seckill/browser/error.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/url.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

namespace grocery_grabber {

/// How long --login waits for the logged-in sign before it gives up.
inline constexpr std::chrono::minutes login_timeout{10};

/// The browser the command line asks for: connected with --connect (its
/// sandbox and profile are its owner's), else launched. `say` gets one line
/// about the sandbox (on or off, and why). Throws seckill::error.
inline seckill::browser::chromium open_browser(const options& args, boost::asio::any_io_executor ex,
                                               const std::function<void(std::string_view)>& say) {
  namespace sb = seckill::browser;
  if (!args.connect.empty()) {
    auto browser = sb::chromium::connect(std::move(ex), args.connect);
    say("connected to the browser at " + seckill::redact_url(args.connect) +
        " (sandbox: the browser's own); working in a tab of its own, which is closed at the end");
    return browser;
  }
  sb::chromium_options copts;
  if (!args.chromium.empty()) copts.executable = args.chromium;
  copts.sandbox = args.sandbox;
  copts.user_data_dir = args.profile_dir;
  copts.headless = !args.login && !args.visible;
  copts.log = say;
  return sb::chromium::launch(std::move(ex), copts);
}

/// --login: waits until `logged_in` (the profile's logged-in sign) shows on
/// `page`, at most `timeout`, while the user logs in by hand. Returns 0 when
/// it showed, 1 when the window or tab was closed or the time ran out
/// (having said which through `say`).
inline int wait_for_login(seckill::browser::page& page, const std::string& logged_in,
                          std::chrono::milliseconds timeout,
                          const std::function<void(std::string_view)>& say) {
  namespace sb = seckill::browser;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto [ec, box] =
        page.async_wait_for(logged_in, std::chrono::seconds(1), boost::asio::use_future).get();
    if (!ec) {
      say("logged in: '" + logged_in + "' shows; closing the browser so the profile keeps it");
      return 0;
    }
    if (ec != sb::errc::element_not_found && ec != sb::errc::element_not_actionable) {
      say("the browser window (or the shop's tab) was closed before '" + logged_in +
          "' showed: " + ec.message());
      return 1;
    }
  }
  say("no login within " + std::to_string(timeout.count() / 1000) + " s ('" + logged_in +
      "' never showed)");
  return 1;
}

}  // namespace grocery_grabber
