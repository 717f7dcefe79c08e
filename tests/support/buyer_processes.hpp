#pragma once
// The buyer guarantees tested across processes, shared by the redis and etcd
// integration tests: several seckill_buyer_helper processes (one purchase
// engine and one store connection each: one node each) buy at once against
// the same real server, one is killed -9 with a hold outstanding, and every
// buyer's answer is checked against what the store holds afterwards.
//
// An environment `Env` gives: `store()` and `io()` (a store of the test's own
// on the same server, with the same options as the helpers), `helper_args()`
// (--store and the store's options for the helper) and `sku(name)`.

#include <seckill/detail/child_process.hpp>
#include <seckill/detail/temp_dir.hpp>
#include <seckill/error.hpp>
#include <seckill/store/reconcile.hpp>
#include <seckill/store/store.hpp>

#include "support/coro.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace seckill::test::buyers {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// One "ANSWER" line of a helper: what that buyer was told.
struct answer {
  std::string sku, user, request;
  std::int64_t order_id = 0;
  std::string
      outcome;  ///< succeeded, limited, sold_out, in_progress, rolled_back, timed_out, error
  bool replayed = false;
};

inline std::vector<answer> parse_answers(const std::string& text) {
  std::vector<answer> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string tag;
    answer a;
    int replayed = 0;
    if (words >> tag && tag == "ANSWER" &&
        words >> a.sku >> a.user >> a.request >> a.order_id >> a.outcome >> replayed) {
      a.replayed = replayed != 0;
      out.push_back(a);
    }
  }
  return out;
}

/// One seckill_buyer_helper process, its output in a temp file; killed with
/// the test binary.
class buyer_process {
 public:
  explicit buyer_process(const std::vector<std::string>& args) {
    output_ = (dir_.path() / "output").string();
    detail::child_process::options o;
    o.argv = {SECKILL_BUYER_HELPER};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.output_path = output_;
    o.die_with_parent = true;
    process_.start(o);
  }

  [[nodiscard]] std::string output() const {
    std::ifstream in(output_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// Waits until a line starting with `prefix` is printed; false if the
  /// process ended or `timeout` passed first.
  bool wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      const std::string text = output();
      if (text.starts_with(prefix) || text.find("\n" + prefix) != std::string::npos) return true;
      if (!process_.running()) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  /// kill -9.
  void kill() noexcept { process_.kill_and_wait(); }

  /// Waits for the exit (killing it after `timeout`): its exit code, -1 if killed.
  int wait(std::chrono::milliseconds timeout) {
    if (!process_.wait_for(timeout)) {
      process_.kill_and_wait();
      return -1;
    }
    const int status = process_.wait_status();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  /// Waits for the exit and returns the answers, requiring a clean exit.
  std::vector<answer> answers(std::chrono::milliseconds timeout = 20s) {
    const int code = wait(timeout);
    const std::string text = output();
    INFO("helper output:\n" << text);
    REQUIRE(code == 0);
    return parse_answers(text);
  }

 private:
  detail::temp_dir dir_{"seckill-buyer"};
  std::string output_;
  detail::child_process process_;
};

/// Runs `a` on `io` to completion (30 s at most) and returns its result.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::optional<T> out;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    failure = e;
    out.emplace(std::move(v));
  });
  io.restart();
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!out && std::chrono::steady_clock::now() < until) io.run_one_for(10ms);
  REQUIRE_MESSAGE(out.has_value(), "a store call did not finish within 30 s");
  if (failure) std::rethrow_exception(failure);
  return std::move(*out);
}

/// The store's calls the checks need, each run to completion.
template <class Env>
class store_view {
 public:
  explicit store_view(Env& env) : env_(env) {}

  void set_stock(const std::string& sku, std::int64_t units) {
    auto [ec] = run(env_.io(), env_.store().async_set_stock(sku, units, tuple_awaitable));
    REQUIRE_MESSAGE(!ec, "set_stock " << sku << ": " << ec.message());
  }
  void set_limit(const std::string& sku, std::int64_t per_user_limit) {
    const sku_policy p{per_user_limit};
    auto [ec] = run(env_.io(), env_.store().async_set_policy(sku, p, tuple_awaitable));
    REQUIRE_MESSAGE(!ec, "set_policy " << sku << ": " << ec.message());
  }
  stock_level stock(const std::string& sku) {
    auto [ec, level] = run(env_.io(), env_.store().async_stock(sku, tuple_awaitable));
    REQUIRE_MESSAGE(!ec, "stock " << sku << ": " << ec.message());
    return level;
  }
  /// Every recorded order of `sku`, by order id.
  std::map<std::int64_t, order_entry> orders(const std::string& sku) {
    std::map<std::int64_t, order_entry> out;
    std::int64_t after = 0;
    do {
      auto [ec, page] = run(
          env_.io(), env_.store().async_list_orders(sku, after, max_order_page, tuple_awaitable));
      REQUIRE_MESSAGE(!ec, "list_orders " << sku << ": " << ec.message());
      for (auto& o : page.orders) out.emplace(o.order_id, o);
      after = page.next;
    } while (after != 0);
    return out;
  }
  /// Whether `order_id` is a committed order of `sku` (unknown_order: it is not).
  bool committed(const std::string& sku, std::int64_t order_id) {
    auto [ec, entry] = run(env_.io(), env_.store().async_get_order(sku, order_id, tuple_awaitable));
    if (ec == errc::unknown_order) return false;
    REQUIRE_MESSAGE(!ec, "get_order " << sku << " " << order_id << ": " << ec.message());
    return true;
  }
  reconcile_report reconcile(const std::string& sku) {
    auto [ec, report] = run(env_.io(), async_reconcile(env_.store(), sku, tuple_awaitable));
    REQUIRE_MESSAGE(!ec, "reconcile " << sku << ": " << ec.message());
    return report;
  }
  std::size_t reap(const std::string& sku) {
    auto [ec, n] = run(env_.io(), env_.store().async_reap_expired(sku, 64, tuple_awaitable));
    REQUIRE_MESSAGE(!ec, "reap " << sku << ": " << ec.message());
    return n;
  }

 private:
  Env& env_;
};

/// The system_clock time, in ms since the epoch, `ahead` from now: the
/// helpers' --start-at-ms, so that processes started one after another race.
inline std::string start_at(std::chrono::milliseconds ahead) {
  const auto at = std::chrono::system_clock::now() + ahead;
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
}

/// The helpers' purchase deadline when many purchases race: long enough
/// that a node's calls queued behind each other (etcd_store runs one SKU's
/// calls of a node in turn) all get the store's answer, not the engine's
/// timeout, on a loaded machine. Within the default hold (30 s).
inline const std::string racing_deadline = "10000";

inline std::string spec(const std::string& sku, const std::string& user, const std::string& request,
                        std::int64_t order_id) {
  return sku + "/" + user + "/" + request + "/" + std::to_string(order_id);
}

/// The store after a sale: nothing left held, the units add up, the audit
/// passes (committed units == recorded orders, no user above the limit),
/// and the buyers told "succeeded" are exactly the recorded orders, each
/// with the user and request it was told about. Returns the recorded orders.
template <class Env>
std::map<std::int64_t, order_entry> check_answers_match_store(Env& env, const std::string& sku,
                                                              std::int64_t initial,
                                                              const std::vector<answer>& told) {
  store_view<Env> view(env);
  const auto report = view.reconcile(sku);
  CHECK_MESSAGE(report.ok(), sku << ": committed " << report.committed_units << ", recorded "
                                 << report.recorded_units << ", users over the limit "
                                 << report.users_over_limit.size());
  const auto level = view.stock(sku);
  CHECK(level.reserved == 0);
  CHECK(level.remaining + level.committed == initial);
  const auto recorded = view.orders(sku);
  std::int64_t units = 0;
  std::set<std::tuple<std::int64_t, std::string, std::string>> in_store, succeeded;
  for (const auto& [id, o] : recorded) {
    units += o.quantity;
    in_store.emplace(id, o.user, o.request_id);
  }
  CHECK(units == level.committed);
  for (const answer& a : told) {
    if (a.sku != sku || a.outcome != "succeeded") continue;
    succeeded.emplace(a.order_id, a.user, a.request);
  }
  CHECK(succeeded == in_store);
  return recorded;
}

/// (a) The per-user limit across processes: 4 processes at once, each buying
/// once for each of 20 users (its own request ids) on a SKU with limit 1 and
/// ample stock, and on one with limit 2 and stock below the demand.
template <class Env>
void per_user_limit_across_processes(Env& env) {
  constexpr int processes = 4, users = 20;
  constexpr std::int64_t limit_two = 2;
  const std::string one = env.sku("limit-one"), two = env.sku("limit-two");
  const std::int64_t stock_one = 2 * users;                  // every user can buy their one
  const std::int64_t stock_two = limit_two * users * 3 / 4;  // sells out before the limits do
  store_view<Env> view(env);
  view.set_limit(one, 1);
  view.set_limit(two, limit_two);
  view.set_stock(one, stock_one);
  view.set_stock(two, stock_two);

  const std::string at = start_at(1500ms);
  std::vector<std::unique_ptr<buyer_process>> ps;
  for (int p = 0; p < processes; ++p) {
    auto args = env.helper_args();
    args.insert(args.end(), {"--start-at-ms", at, "--deadline-ms", racing_deadline});
    for (int u = 0; u < users; ++u) {
      const std::string user = "user" + std::to_string(u);
      const std::string request = "p" + std::to_string(p) + "-r" + std::to_string(u);
      const std::int64_t order = (p + 1) * 1000 + u;
      args.push_back(spec(one, user, request, order));
      args.push_back(spec(two, user, request, order));
    }
    ps.push_back(std::make_unique<buyer_process>(args));
  }
  std::vector<answer> told;
  for (auto& p : ps) {
    const auto answers = p->answers();
    CHECK(answers.size() == static_cast<std::size_t>(2 * users));  // every purchase was answered
    told.insert(told.end(), answers.begin(), answers.end());
  }
  for (const answer& a : told) {
    INFO(a.sku << " " << a.user << " " << a.request << " " << a.order_id << " " << a.outcome);
    CHECK(!a.replayed);  // every request id is its own
    const bool allowed = a.outcome == "succeeded" || a.outcome == "limited" ||
                         (a.sku == two && a.outcome == "sold_out");
    CHECK(allowed);
  }
  const auto sold_one = check_answers_match_store(env, one, stock_one, told);
  const auto sold_two = check_answers_match_store(env, two, stock_two, told);
  // limit 1, stock for everyone: each user bought exactly once, whichever process won
  std::map<std::string, std::int64_t> per_user;
  for (const auto& [id, o] : sold_one) per_user[o.user] += o.quantity;
  CHECK(per_user.size() == static_cast<std::size_t>(users));
  for (const auto& bought : per_user)
    CHECK_MESSAGE(bought.second == 1, bought.first << " bought " << bought.second);
  // limit 2, fewer units than the users may take: sold out, nobody above 2
  per_user.clear();
  for (const auto& [id, o] : sold_two) per_user[o.user] += o.quantity;
  for (const auto& bought : per_user)
    CHECK_MESSAGE(bought.second <= limit_two, bought.first << " bought " << bought.second);
  CHECK(view.stock(two).committed == stock_two);
}

/// (b) Idempotency across processes: the same (user, request id) from 3
/// processes at once, with different order ids, for 10 users, on a SKU with
/// no per-user limit (only the request binding stops a second purchase).
template <class Env>
void same_request_across_processes(Env& env) {
  constexpr int processes = 3, users = 10;
  const std::string sku = env.sku("same-request");
  const std::int64_t initial = 2 * users;
  store_view<Env> view(env);
  view.set_limit(sku, 0);
  view.set_stock(sku, initial);

  const std::string at = start_at(1500ms);
  std::vector<std::unique_ptr<buyer_process>> ps;
  for (int p = 0; p < processes; ++p) {
    auto args = env.helper_args();
    args.insert(args.end(), {"--start-at-ms", at, "--deadline-ms", racing_deadline});
    for (int u = 0; u < users; ++u)
      args.push_back(
          spec(sku, "user" + std::to_string(u), "request" + std::to_string(u), (p + 1) * 1000 + u));
    ps.push_back(std::make_unique<buyer_process>(args));
  }
  std::map<std::string, std::vector<answer>> by_user;
  for (auto& p : ps) {
    const auto answers = p->answers();
    CHECK(answers.size() == static_cast<std::size_t>(users));
    for (const answer& a : answers) by_user[a.user].push_back(a);
  }
  std::vector<answer> told;
  for (const auto& [user, answers] : by_user)
    told.insert(told.end(), answers.begin(), answers.end());
  const auto recorded = check_answers_match_store(env, sku, initial, told);
  CHECK(recorded.size() == static_cast<std::size_t>(users));  // one order per request
  std::map<std::string, order_entry> order_of;
  for (const auto& kv : recorded) {
    const order_entry& o = kv.second;
    CHECK_MESSAGE(order_of.count(o.user) == 0, o.user << " has two orders");
    order_of[o.user] = o;
  }
  CHECK(view.stock(sku).committed == users);
  for (const auto& entry : by_user) {
    const std::string& user = entry.first;
    const std::vector<answer>& answers = entry.second;
    REQUIRE(answers.size() == static_cast<std::size_t>(processes));
    REQUIRE(order_of.count(user) == 1);
    const order_entry& o = order_of[user];
    int first = 0;
    for (const answer& a : answers) {
      INFO(user << ": told " << a.outcome << " order " << a.order_id << " replayed " << a.replayed
                << "; the store holds order " << o.order_id);
      CHECK(a.order_id == o.order_id);  // every answer names the one order, none another
      CHECK(a.request == o.request_id);
      const bool fresh = a.outcome == "succeeded" && !a.replayed;
      const bool retry = (a.outcome == "succeeded" || a.outcome == "in_progress") && a.replayed;
      CHECK((fresh || retry));
      first += fresh ? 1 : 0;
    }
    CHECK(first == 1);  // one process bought, the others were told about its order
    // the orders the other processes proposed took nothing
    for (int p = 0; p < processes; ++p) {
      const std::int64_t proposed = (p + 1) * 1000 + std::stoi(user.substr(4));
      if (proposed != o.order_id) CHECK_FALSE(view.committed(sku, proposed));
    }
  }
}

/// (c) A retry after the first node was killed -9 with the units held: in
/// progress while the hold lasts (nothing taken twice), the first order
/// given back once the hold passed and was reaped (the retry then answers
/// rolled_back for it, taking nothing, while the store keeps the request's
/// binding), and a fresh purchase once the binding is forgotten (the
/// store's retention, 1 s here). One committed order for the request at
/// the end, and the stock exact.
template <class Env>
void retry_after_kill(Env& env) {
  const std::string sku = env.sku("after-kill");
  const std::string user = "buyer", request = "pay-once";
  constexpr std::int64_t initial = 5, first_order = 101;
  constexpr auto hold = 4000ms;
  store_view<Env> view(env);
  view.set_limit(sku, 1);
  view.set_stock(sku, initial);
  auto args = env.helper_args();
  args.insert(args.end(), {"--hold-ms", std::to_string(hold.count()), "--deadline-ms",
                           std::to_string(hold.count() - 500)});

  auto a_args = args;
  a_args.insert(a_args.end(), {"--hang-payment", spec(sku, user, request, first_order)});
  // The hold starts between these two instants: the retry must answer before
  // the earliest end, and the reap comes after the latest.
  const auto launched = std::chrono::steady_clock::now();
  buyer_process a(a_args);
  INFO("first buyer:\n" << a.output());
  REQUIRE(a.wait_for_line("PAYING", 10s));  // reserved, and the payment never completes
  const auto earliest_end = launched + hold;
  const auto hold_ends = std::chrono::steady_clock::now() + hold;
  a.kill();
  auto level = view.stock(sku);
  CHECK(level.reserved == 1);
  CHECK(level.remaining == initial - 1);

  // While the hold lasts: in progress, naming the first order; nothing taken.
  auto b_args = args;
  b_args.push_back(spec(sku, user, request, 202));
  buyer_process b(b_args);
  const auto during = b.answers();
  REQUIRE(during.size() == 1);
  REQUIRE_MESSAGE(std::chrono::steady_clock::now() < earliest_end,
                  "the retry answered after the first hold passed: the machine is too slow for "
                  "this test's hold");
  CHECK(during[0].outcome == "in_progress");
  CHECK(during[0].order_id == first_order);
  CHECK(during[0].replayed);
  level = view.stock(sku);
  CHECK(level.reserved == 1);
  CHECK(level.committed == 0);
  CHECK_FALSE(view.committed(sku, 202));

  // The hold passes; the reaper gives the units (and the user's allowance) back.
  std::this_thread::sleep_until(hold_ends + 200ms);
  CHECK(view.reap(sku) == 1);
  level = view.stock(sku);
  CHECK(level.remaining == initial);
  CHECK(level.reserved == 0);

  // Retries: "rolled back" for the first order while the store keeps the
  // binding, then a fresh purchase that succeeds with the retry's own order.
  std::optional<answer> bought;
  std::int64_t next_order = 300;
  const auto give_up = std::chrono::steady_clock::now() + 8s;
  while (!bought && std::chrono::steady_clock::now() < give_up) {
    auto v = args;
    v.push_back(spec(sku, user, request, ++next_order));
    buyer_process retry(v);
    const auto told = retry.answers();
    REQUIRE(told.size() == 1);
    const answer& r = told[0];
    INFO("retry with order " << next_order << ": " << r.outcome << " order " << r.order_id
                             << " replayed " << r.replayed);
    if (r.outcome == "succeeded" && !r.replayed) {
      CHECK(r.order_id == next_order);
      bought = r;
    } else {
      CHECK(r.outcome == "rolled_back");
      CHECK(r.order_id == first_order);
      CHECK(r.replayed);
      CHECK(view.stock(sku).committed == 0);
      std::this_thread::sleep_for(300ms);
    }
  }
  REQUIRE_MESSAGE(bought.has_value(), "no fresh purchase within 8 s of the reap");
  const auto recorded = check_answers_match_store(env, sku, initial, {*bought});
  REQUIRE(recorded.size() == 1);
  CHECK(recorded.begin()->second.user == user);
  CHECK(recorded.begin()->second.request_id == request);
  level = view.stock(sku);
  CHECK(level.committed == 1);
  CHECK(level.remaining == initial - 1);
  CHECK_FALSE(view.committed(sku, first_order));
  CHECK_FALSE(view.committed(sku, 202));
}

}  // namespace seckill::test::buyers
