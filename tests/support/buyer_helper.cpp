// A buyer process for the multi-process integration tests (redis and etcd):
// it opens a store from a URL and runs purchases through purchase_engine,
// so that several of them race against the same real server and a test can
// kill -9 one with holds outstanding.
//
//   seckill_buyer_helper --store URL [--prefix P] [--hold-ms N] [--deadline-ms N]
//                        [--retention-ms N] [--start-at-ms T] [--hang-payment]
//                        SKU/USER/REQUEST/ORDER_ID...
//
//   --store        redis://host:port or etcd://host:port[,host:port...]
//   --prefix       the etcd_store's key prefix (etcd only; default seckill/)
//   --hold-ms      the engine's hold (default 30000); --deadline-ms its deadline (default 800)
//   --retention-ms the store's order_retention (default: the store's own)
//   --start-at-ms  once connected, wait until this system_clock time (ms since the
//                  epoch) before buying, so that processes started apart race
//   --hang-payment the payment never completes (the test kills the process)
//
// Every purchase starts at once, with the order id given. Prints "READY"
// once connected, "PAYING <sku> <order id>" when a payment starts, one
// "ANSWER <sku> <user> <request> <order id> <outcome> <replayed 0|1>" per
// purchase (outcome: succeeded, limited, sold_out, in_progress, rolled_back,
// timed_out or error, the latter with an "ERROR ..." line naming the error),
// then "DONE". Exits 0 after DONE, 2 on bad arguments (with a message naming
// the value seen), 3 when the store cannot be reached.
#include <seckill/error.hpp>
#include <seckill/etcd/endpoint.hpp>
#include <seckill/etcd/etcd_store.hpp>
#include <seckill/purchase/engine.hpp>
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/url.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "seckill_buyer_helper: %s\n", what.c_str());
  std::exit(2);
}

// One purchase from the command line: SKU/USER/REQUEST/ORDER_ID.
struct purchase_spec {
  std::string sku, user, request;
  std::int64_t order_id = 0;
};

std::int64_t parse_number(std::string_view text, std::string_view what) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0)
    usage_error(std::string(what) + ": want a number >= 0, saw '" + std::string(text) + "'");
  return v;
}

purchase_spec parse_spec(std::string_view arg) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t slash = arg.find('/', begin);
    parts.emplace_back(arg.substr(begin, slash - begin));
    if (slash == std::string_view::npos) break;
    begin = slash + 1;
  }
  if (parts.size() != 4)
    usage_error("a purchase is SKU/USER/REQUEST/ORDER_ID, saw '" + std::string(arg) + "'");
  purchase_spec s{parts[0], parts[1], parts[2], parse_number(parts[3], "order id")};
  if (s.order_id == 0) usage_error("order id must be > 0, saw '" + std::string(arg) + "'");
  return s;
}

struct helper_options {
  std::string store;
  std::string prefix = "seckill/";
  std::chrono::milliseconds hold{30'000};
  std::chrono::milliseconds deadline{800};
  std::optional<std::chrono::milliseconds> retention;
  std::optional<std::int64_t> start_at_ms;
  bool hang_payment = false;
  std::vector<purchase_spec> purchases;
};

helper_options parse_args(int argc, char** argv) {
  helper_options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--store")
      o.store = value();
    else if (arg == "--prefix")
      o.prefix = value();
    else if (arg == "--hold-ms")
      o.hold = std::chrono::milliseconds(parse_number(value(), arg));
    else if (arg == "--deadline-ms")
      o.deadline = std::chrono::milliseconds(parse_number(value(), arg));
    else if (arg == "--retention-ms")
      o.retention = std::chrono::milliseconds(parse_number(value(), arg));
    else if (arg == "--start-at-ms")
      o.start_at_ms = parse_number(value(), arg);
    else if (arg == "--hang-payment")
      o.hang_payment = true;
    else if (arg.starts_with("--"))
      usage_error("unknown option '" + std::string(arg) + "'");
    else
      o.purchases.push_back(parse_spec(arg));
  }
  if (o.store.empty()) usage_error("--store URL is required");
  if (o.purchases.empty()) usage_error("no purchase given (SKU/USER/REQUEST/ORDER_ID...)");
  return o;
}

// The engine's order ids: the one the caller set for the purchase it starts
// (admission takes it synchronously, inside async_purchase).
struct listed_ids {
  std::int64_t next_id = 0;
  std::int64_t next(std::error_code&) const noexcept { return next_id; }
};

// A payment that succeeds at once, or (hang) never, until cancelled; it
// says "PAYING" either way, so a test knows the units are held.
class helper_payment {
 public:
  helper_payment(asio::any_io_executor ex, bool hang) : ex_(std::move(ex)), hang_(hang) {}

  template <class Token>
  auto async_pay(const seckill::payment_request& r, Token&& token) {
    say("PAYING " + std::string(r.sku) + " " + std::to_string(r.order_id));
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          auto timer =
              std::make_unique<asio::steady_timer>(ex_, hang_ ? std::chrono::hours(1) : 0ms);
          auto& t = *timer;
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto ex = asio::get_associated_executor(handler, ex_);
          t.async_wait(asio::bind_cancellation_slot(
              slot, asio::bind_executor(ex, [timer = std::move(timer), h = std::move(handler)](
                                                boost::system::error_code ec) mutable {
                timer.reset();
                std::move(h)(ec ? std::error_code(seckill::errc::operation_aborted)
                                : std::error_code());
              })));
        },
        token);
  }

 private:
  asio::any_io_executor ex_;
  bool hang_;
};

std::string outcome_of(const std::error_code& ec, const seckill::purchase_result& r) {
  using seckill::errc;
  if (!ec) return r.final_state == seckill::purchase_state::succeeded ? "succeeded" : "error";
  if (ec == errc::purchase_limited) return "limited";
  if (ec == errc::sold_out) return "sold_out";
  if (ec == errc::purchase_in_progress) return "in_progress";
  if (ec == errc::order_rolled_back) return "rolled_back";
  if (ec == errc::timed_out) return "timed_out";
  return "error";
}

// Runs every purchase on `store` at once; exits after the last answer.
template <class Store>
void buy_all(asio::io_context& io, Store& store, const helper_options& o) {
  seckill::unlimited limiter;
  seckill::no_breaker breaker;
  listed_ids ids;
  helper_payment payment(io.get_executor(), o.hang_payment);
  seckill::memory_orders orders;
  seckill::purchase_options po;
  po.hold = o.hold;
  po.deadline = o.deadline;
  using engine_type = seckill::purchase_engine<Store, seckill::unlimited, seckill::no_breaker,
                                               listed_ids, helper_payment>;
  std::optional<engine_type> engine;
  try {
    engine.emplace(store, limiter, breaker, ids, payment, orders, po);
  } catch (const seckill::error& e) {
    usage_error(e.what());
  }
  if (o.start_at_ms) {
    const auto at =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(*o.start_at_ms));
    const auto wait = at - std::chrono::system_clock::now();
    if (wait > decltype(wait)::zero()) {
      asio::steady_timer t(io, std::chrono::duration_cast<asio::steady_timer::duration>(wait));
      t.wait();
    }
  }
  std::size_t answered = 0;
  for (const purchase_spec& p : o.purchases) {
    seckill::purchase_request req;
    req.sku = p.sku;
    req.user = p.user;
    req.request_id = p.request;
    ids.next_id = p.order_id;
    engine->async_purchase(req, [&, spec = &p](std::error_code ec, seckill::purchase_result r) {
      const std::string outcome = outcome_of(ec, r);
      if (outcome == "error")
        say("ERROR " + spec->sku + "/" + spec->user + "/" + spec->request + " " +
            (ec ? ec.message()
                : std::string("ended in state ") + std::string(seckill::to_string(r.final_state))));
      say("ANSWER " + spec->sku + " " + spec->user + " " + spec->request + " " +
          std::to_string(r.order_id) + " " + outcome + " " + (r.replayed ? "1" : "0"));
      if (++answered == o.purchases.size()) {
        say("DONE");
        std::_Exit(0);  // nothing to flush but stdout; the store's sockets close with us
      }
    });
  }
  io.run();
}

void run_redis(const helper_options& o) {
  seckill::redis::connection_config cfg;
  std::string why;
  if (seckill::redis::parse_url(o.store, cfg, &why)) usage_error("--store: " + why);
  cfg.connect_timeout = 3s;
  cfg.request_timeout = 5s;
  seckill::redis::redis_store_options so;
  if (o.retention) so.order_retention = *o.retention;
  asio::io_context io;
  std::optional<seckill::redis::redis_store> store;
  try {
    store.emplace(io.get_executor(), cfg, so);
  } catch (const seckill::error& e) {
    usage_error(e.what());
  }
  std::optional<std::error_code> connected;
  store->async_connect([&](std::error_code ec) { connected = ec; });
  while (!connected) io.run_one();
  if (*connected) {
    say("ERROR connect " + store->connection().last_error());
    std::exit(3);
  }
  say("READY");
  buy_all(io, *store, o);
}

void run_etcd(const helper_options& o) {
  seckill::etcd::client_options co;
  std::error_code ec;
  std::string why;
  co.endpoints = seckill::etcd::parse_endpoints(o.store, ec, &why);
  if (ec) usage_error("--store: " + why);
  co.call_timeout = 5s;
  seckill::etcd::etcd_store_options so;
  so.prefix = o.prefix;
  if (o.retention) {
    so.order_retention = *o.retention;
    so.retention_buckets = 1;
  }
  asio::io_context io;
  std::optional<seckill::etcd::etcd_store<>> store;
  try {
    store.emplace(io.get_executor(), co, so);
  } catch (const seckill::error& e) {
    usage_error(e.what());
  }
  say("READY");
  buy_all(io, *store, o);
}

}  // namespace

int main(int argc, char** argv) {
  const helper_options o = parse_args(argc, argv);
  if (o.store.starts_with("redis://")) {
    run_redis(o);
  } else if (o.store.starts_with("etcd://")) {
    run_etcd(o);
  } else {
    usage_error("--store: want redis://host:port or etcd://host:port, saw '" + o.store + "'");
  }
  return 1;  // buy_all exits after its last answer
}
