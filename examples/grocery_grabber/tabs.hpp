#pragma once
// grocery_grabber's tabs: what each tab runs (its shop page, strategy and
// site profile, read from the files the command line names), the log every
// tab writes to (each line stamped and prefixed with its tab, printed and
// appended to the --log file), and one tab's run: its grabber, then a
// screenshot of how it ended, named with the time, the tab and the SKU.

#include "grocery_grabber/options.hpp"

#include <seckill/browser/grabber.hpp>
#include <seckill/browser/notifier.hpp>
#include <seckill/browser/page.hpp>
#include <seckill/browser/page_driver.hpp>
#include <seckill/browser/screenshot.hpp>
#include <seckill/browser/site_profile.hpp>
#include <seckill/browser/strategy.hpp>
#include <seckill/error.hpp>
#include <seckill/limit/token_bucket.hpp>
#include <seckill/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace grocery_grabber {

namespace sb = seckill::browser;

/// What one tab runs.
struct tab_plan {
  int number = 1;                ///< 1, 2, ...: the log's "[tab N]"
  std::string url;               ///< the shop page to open
  sb::strategy_config strategy;  ///< what to buy, the pace, the deadline
  sb::site_profile profile;      ///< how the page shows it
  std::string account;           ///< --account's name; empty: no accounts
};

/// Who a tab's log lines are from: "tab 2", or with accounts "alice tab 2".
inline std::string who(const tab_plan& plan) {
  return plan.account.empty() ? fmt::format("tab {}", plan.number)
                              : fmt::format("{} tab {}", plan.account, plan.number);
}

/// Reads `t.strategy_file` and the profile it names (relative to it), or
/// `site_profile` when given, into `out` (out.url is t.shop); returns what
/// went wrong, naming the file, or an empty string.
inline std::string load_tab_plan(const tab_options& t, const std::string& site_profile,
                                 tab_plan& out) {
  auto read = [](const std::filesystem::path& file, std::string& text) {
    std::ifstream in(file);
    if (!in) return false;
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
    return true;
  };
  std::string text;
  if (!read(t.strategy_file, text))
    return fmt::format("cannot read strategy file '{}'", t.strategy_file);
  try {
    out.strategy = sb::parse_strategy(text);
  } catch (const seckill::error& e) {
    return fmt::format("{}: {}", t.strategy_file, e.what());
  }
  // The page's profile: --site-profile, else the file the strategy names
  // (relative to the strategy), else the strategy's own keys, else the defaults.
  out.profile = out.strategy.profile.value_or(sb::site_profile{});
  std::filesystem::path profile_file;
  if (!site_profile.empty())
    profile_file = site_profile;
  else if (!out.strategy.profile_file.empty())
    profile_file = std::filesystem::path(t.strategy_file).parent_path() / out.strategy.profile_file;
  if (!profile_file.empty()) {
    if (!read(profile_file, text))
      return fmt::format("cannot read profile file '{}'", profile_file.string());
    try {
      out.profile = sb::parse_profile(text);
    } catch (const seckill::error& e) {
      return fmt::format("{}: {}", profile_file.string(), e.what());
    }
  }
  out.url = t.shop;
  return {};
}

/// `at` in UTC to the millisecond: "2026-12-04T14:05:12.345Z", or with
/// `compact`, "20261204T140512.345Z" (fit for a file name).
inline std::string utc_stamp(std::chrono::system_clock::time_point at, bool compact = false) {
  const auto s = std::chrono::floor<std::chrono::seconds>(at);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at - s).count();
  return compact ? fmt::format("{:%Y%m%dT%H%M%S}.{:03}Z", s, ms)
                 : fmt::format("{:%FT%T}.{:03}Z", s, ms);
}

/// The log of a run: every line stamped with the UTC time and prefixed with
/// its tab ("2026-12-04T14:05:12.345Z [tab 2] grabber: ordered: ..."),
/// written to the console and appended to the log file when there is one.
/// Thread-safety: line() may be called from any thread (one mutex).
/// Cost: a formatted line and a flush of each output per line.
class tab_log {
 public:
  /// Logs to `console` (nullptr: nowhere) and, after open(), to a file too.
  explicit tab_log(std::FILE* console = stdout) : console_(console) {}

  /// Appends every line from now on to `file` as well; false when it cannot
  /// be opened (errno says why).
  bool open(const std::filesystem::path& file) {
    std::lock_guard lock(mutex_);
    file_.open(file, std::ios::app);
    return static_cast<bool>(file_);
  }

  /// Writes `text` as one line of tab `tab` (0: the program's own, no prefix).
  void line(int tab, std::string_view text) {
    line(tab > 0 ? fmt::format("tab {}", tab) : std::string(), text);
  }

  /// Writes `text` as one line of `from` ("tab 2", "alice tab 1"; empty: no prefix).
  void line(const std::string& from, std::string_view text) {
    const std::string stamp = utc_stamp(std::chrono::system_clock::now());
    const std::string out = !from.empty() ? fmt::format("{} [{}] {}\n", stamp, from, text)
                                          : fmt::format("{} {}\n", stamp, text);
    std::lock_guard lock(mutex_);
    if (console_ != nullptr) {
      std::fwrite(out.data(), 1, out.size(), console_);
      std::fflush(console_);
    }
    if (file_.is_open()) {
      file_ << out;
      file_.flush();
    }
  }

 private:
  std::mutex mutex_;
  std::FILE* console_;
  std::ofstream file_;
};

/// The name of a tab's screenshot: the UTC time, the tab, the SKU it ordered
/// or last tried (any character but a letter, a digit, '.', '_' or '-'
/// becomes '_'; "no-sku" when it tried none) and how it ended:
/// "20261204T140512.345Z-tab2-veg-box-ordered.png", "...-no-order.png".
inline std::string screenshot_name(std::chrono::system_clock::time_point at, int tab,
                                   std::string_view sku, bool ordered) {
  std::string safe;
  for (const char c : sku.substr(0, 64)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    safe += plain ? c : '_';
  }
  if (safe.empty() || safe.front() == '.') safe.insert(0, safe.empty() ? "no-sku" : "_");
  return fmt::format("{}-tab{}-{}-{}.png", utc_stamp(at, true), tab, safe,
                     ordered ? "ordered" : "no-order");
}

/// How a tab ended: the grabber's error and result, and its screenshot.
struct tab_outcome {
  std::error_code ec;
  sb::grab_result result;
  std::filesystem::path screenshot;  ///< empty when none could be saved (the log says why)
};

/// The line that sums a tab up: "tab 1: bought 2 x veg-box: Order confirmed
/// ..." or "tab 2: no order: the deadline passed".
inline std::string summary(const tab_plan& plan, const tab_outcome& o) {
  const auto& r = o.result;
  if (r.would_order) {
    return fmt::format("tab {}: dry run: would have bought {} x {} (nothing ordered)", plan.number,
                       r.quantity, r.sku);
  }
  if (plan.strategy.mode == sb::grab_mode::monitor && !o.ec)
    return fmt::format("tab {}: monitor: watched until the deadline (nothing ordered)",
                       plan.number);
  if (r.ordered) {
    const std::string fewer =
        r.requested > r.quantity ? fmt::format(" ({} asked)", r.requested) : std::string();
    return fmt::format("tab {}: bought {} x {}{}: {}", plan.number, r.quantity, r.sku, fewer,
                       r.confirmation);
  }
  const std::string why = o.ec == seckill::errc::timed_out ? "the deadline passed"
                          : o.ec                           ? o.ec.message()
                                                           : "the run ended";
  return fmt::format("tab {}: no order: {}", plan.number, why);
}

/// One row of the accounts' summary table: the account, the tab, how it
/// ended, its orders, its buy presses and the shop's throttling refusals.
struct summary_row {
  std::string account;
  int tab = 1;
  std::string outcome;
  int orders = 0;
  int tries = 0;
  int throttled = 0;
};

/// A tab's row: "bought 2 x veg-box", "stopped-refused", "deadline",
/// "would buy 1 x veg-box", "watched", or "no order: <why>".
inline summary_row summary_row_of(const tab_plan& plan, const tab_outcome& o) {
  const auto& r = o.result;
  summary_row row{plan.account, plan.number, {}, r.ordered ? 1 : 0, r.attempts, r.throttled};
  if (r.ordered)
    row.outcome = fmt::format("bought {} x {}", r.quantity, r.sku);
  else if (r.would_order)
    row.outcome = fmt::format("would buy {} x {}", r.quantity, r.sku);
  else if (plan.strategy.mode == sb::grab_mode::monitor && !o.ec)
    row.outcome = "watched";
  else if (o.ec == sb::errc::stopped_refused)
    row.outcome = "stopped-refused";
  else if (o.ec == seckill::errc::timed_out)
    row.outcome = "deadline";
  else
    row.outcome = "no order: " + (o.ec ? o.ec.message() : std::string("the run ended"));
  return row;
}

/// The summary table, one string per line, columns aligned:
/// account, tab, outcome, orders, tries, throttled.
inline std::vector<std::string> summary_table(const std::vector<summary_row>& rows) {
  std::size_t wa = 7, wo = 7;  // "account", "outcome"
  for (const auto& r : rows) {
    wa = std::max(wa, r.account.size());
    wo = std::max(wo, r.outcome.size());
  }
  std::vector<std::string> out;
  out.push_back(fmt::format("{:<{}}  {:>3}  {:<{}}  {:>6}  {:>5}  {:>9}", "account", wa, "tab",
                            "outcome", wo, "orders", "tries", "throttled"));
  for (const auto& r : rows) {
    out.push_back(fmt::format("{:<{}}  {:>3}  {:<{}}  {:>6}  {:>5}  {:>9}", r.account, wa, r.tab,
                              r.outcome, wo, r.orders, r.tries, r.throttled));
  }
  return out;
}

/// Whether a tab did what it was run for: bought; in a dry run, reached the
/// press; monitoring, watched until its deadline. The exit status is 0 only
/// when every tab did.
inline bool succeeded(const tab_plan& plan, const tab_outcome& o) {
  switch (plan.strategy.mode) {
    case sb::grab_mode::buy:
      return o.result.ordered;
    case sb::grab_mode::dry_run:
      return !o.ec && o.result.would_order;
    case sb::grab_mode::monitor:
      return !o.ec;
  }
  return false;
}

/// Runs one tab: a grabber over `page` (already showing the shop) driven by
/// the plan's profile and strategy, paced by `pace`, logging to `log` as
/// tab plan.number; then saves a screenshot of the page in `screenshot_dir`
/// (screenshot_name), whether an order was confirmed or not. A screenshot
/// that cannot be taken or written is logged, never fatal. With `notify`,
/// the run's notices go there, named with the tab and the shop: a sell-out
/// or a hand-off at once, ordered or failed with the screenshot once it is
/// saved. `seen`: a person can see the page (a visible window); when not, a
/// hand-off says nobody can reach the verification. `plan`, `pace`, `log`
/// and `notify` must outlive the run. Runs on the page's executor.
inline boost::asio::awaitable<tab_outcome> run_tab(sb::page page, const tab_plan& plan,
                                                   seckill::token_bucket<>& pace, tab_log& log,
                                                   std::filesystem::path screenshot_dir,
                                                   sb::notifier* notify = nullptr,
                                                   bool seen = false) {
  using boost::asio::as_tuple;
  using boost::asio::use_awaitable;
  sb::grabber_options opts;
  // Retries, the start (its offset to the shop's clock is logged), the
  // pauses, the reaction's pace, reload-poll.
  sb::apply_strategy(opts, plan.strategy, plan.profile, sb::page_options{}.input_seed);
  opts.log = [&log, n = who(plan)](std::string_view line) { log.line(n, line); };
  if (plan.strategy.start) {
    log.line(who(plan), fmt::format("the sale starts at {} shop time: watching until then",
                                    sb::format_time_of_day(plan.strategy.start->at,
                                                           plan.strategy.start->utc_offset)));
  }
  opts.on_event = [&log, n = who(plan), seen](const sb::grab_event& e) {
    if (e.step != sb::grab_step::hand_off) return;
    log.line(n, seen ? "solve the verification in the browser window: the grab goes on when it "
                       "is gone"
                     : "the browser is headless: nobody can reach this verification; run with "
                       "--visible (on a display) to solve it in the window");
  };
  std::optional<sb::notice> last;  // ordered or failed: sent with the screenshot
  if (notify != nullptr) {
    opts.notify = [notify, &last,
                   tab = plan.account.empty() ? std::to_string(plan.number) : who(plan),
                   shop = seckill::redact_url(plan.url)](sb::notice n) {
      n.tab = tab;
      n.shop = shop;
      if (n.kind == sb::notice_kind::ordered || n.kind == sb::notice_kind::failed)
        last = std::move(n);
      else
        notify->notify(std::move(n));
    };
  }
  sb::page_driver_options driver_opts;
  driver_opts.log = [&log, n = who(plan)](std::string_view line) { log.line(n, line); };
  sb::grabber grab(sb::page_driver(page, plan.profile, std::move(driver_opts)),
                   sb::priority_strategy(plan.strategy), pace, std::move(opts));
  tab_outcome out;
  std::tie(out.ec, out.result) =
      co_await grab.async_run(plan.strategy.deadline, as_tuple(use_awaitable));
  const auto file = screenshot_dir / ((plan.account.empty() ? std::string() : plan.account + "-") +
                                      screenshot_name(std::chrono::system_clock::now(), plan.number,
                                                      out.result.sku, out.result.ordered));
  auto [shot] = co_await sb::async_save_screenshot(page, file, as_tuple(use_awaitable));
  if (shot) {
    log.line(who(plan), fmt::format("screenshot failed: {} ({})", shot.message(), file.string()));
  } else {
    out.screenshot = file;
    log.line(who(plan), fmt::format("screenshot: {}", file.string()));
  }
  if (notify != nullptr && last) {
    last->screenshot = out.screenshot.string();
    notify->notify(std::move(*last));
  }
  co_return out;
}

}  // namespace grocery_grabber
