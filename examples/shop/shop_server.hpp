#pragma once
// A small local grocery shop for the browser driver: an HTTP/1.1 server
// (Boost.Beast) on 127.0.0.1 serving two pages of one shop. `/` shows the SKUs
// in a native <select>, a `.stock-status` element, a quantity field, a buy
// button and an `.order-result` line. `/grid` is a shop of another shape, in
// Chinese: one button per SKU (name, price, "剩 N 件" or 售罄), the status
// 有货 / 售罄, the quantity behind - / + buttons, 立即抢购 and a #msg line; it
// heeds trusted clicks only (event.isTrusted), as shops guarding against
// scripts do. Both pages learn about restocks over server-sent events
// (/events) and POST /order. `/static` is the select page of `/` rendered
// on the server as it is loaded, with no push and no script updating it
// (a page to reload), a `#shop-time` clock and, once set_sale_start()
// named a start, a `.countdown` (还剩 M分S秒) that `/` then shows too, with
// the clock. Every
// response has a Date header on the shop's clock (set_clock_skew() moves
// it away from this host's; set_clock_jitter() varies when in a request the
// shop reads it and delays the answer). Used by examples/shop, the grabber example, the
// browser tests and the browser bench. `/members` is the select page for
// logged-in shoppers: `/login` takes a user and password (a form POST) and
// sets an HttpOnly session cookie with a Max-Age; with that cookie the page
// shows a `.account` element and POST /members/order takes orders, without
// it the page asks to log in and the order is refused with 401. While
// set_challenge(true) is on, `/` shows a verification ("Please verify you
// are human", an "I am human" checkbox that heeds a trusted click only,
// which POSTs /challenge/solve) and orders are refused with 403; the shop
// counts every request it receives (requests()). add_account() adds a
// second (third...) shopper; throttle_user() makes POST /members/order answer
// one shopper's session with 429 or 503 and a Retry-After (or with an error
// page) for that shopper's next orders only; orders() says whose each was.
// `/api-shop` shows the stock only through a JSON endpoint its script polls
// every 200 ms (GET /api/stock: {"skus":[{"sku","price","stock"}]}): the page
// shows no stock text, only the SKUs, a quantity and a buy button that
// orders (POST /order) whatever it shows. serve_stale_stock() makes
// /api/stock answer with an old body a cache may keep (Cache-Control:
// max-age, an old Date, an Age); serve_stock_body() with any body.
//
// Thread-safety: the server runs its own thread; every public member may be
// called from any thread.

#include <seckill/url.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <nlohmann/json.hpp>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace shop {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

/// A request as the handler sees it.
struct request {
  std::string method;
  std::string target;
  std::string body;
  clock::time_point received;
  std::string cookie = {};  ///< the Cookie header ("" when none)
  std::vector<std::pair<std::string, std::string>> fields = {};  ///< every header, as received
};

/// A handler's answer; `event_stream` turns the connection into an SSE stream.
struct response {
  unsigned status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  bool event_stream = false;
  std::vector<std::pair<std::string, std::string>> headers =
      {};  ///< more fields (Set-Cookie, Location)
};

/// A minimal HTTP/1.1 server on 127.0.0.1 (port 0: the kernel picks) calling
/// `handler` on its own thread, with server-sent-event streams that
/// broadcast() writes to.
class http_server {
 public:
  using handler_type = std::function<response(const request&)>;

  explicit http_server(handler_type handler, unsigned short port = 0)
      : handler_(std::move(handler)),
        acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), port)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;
  ~http_server() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      for (auto& s : streams_) s->socket.close(ignored);
      streams_.clear();
      for (auto& w : sessions_)
        if (auto s = w.lock()) s->stream.socket().close(ignored);
      io_.stop();
    });
    thread_.join();
  }

  [[nodiscard]] unsigned short port() const noexcept { return port_; }

  /// The shop's clock: this host's plus the skew (the Date headers, the pages' clocks).
  [[nodiscard]] std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::now() +
           std::chrono::milliseconds(skew_ms_.load(std::memory_order_relaxed));
  }
  void set_clock_skew(std::chrono::milliseconds skew) {
    skew_ms_.store(skew.count(), std::memory_order_relaxed);
  }
  /// Each request waits a random time in [0, jitter] before it is handled
  /// (and its Date stamped), then `processing` before its answer leaves.
  void set_clock_jitter(std::chrono::microseconds jitter, std::chrono::microseconds processing) {
    jitter_us_.store(jitter.count(), std::memory_order_relaxed);
    processing_us_.store(processing.count(), std::memory_order_relaxed);
  }

  /// `t` as an HTTP Date header writes it: "Fri, 04 Dec 2026 12:00:00 GMT".
  static std::string http_date(std::chrono::system_clock::time_point t) {
    const std::time_t secs =
        std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", days[tm.tm_wday], tm.tm_mday,
                       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }

  [[nodiscard]] std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  /// Writes `data: <payload>\n\n` to every open event stream; `then` runs on the
  /// server thread right before the first byte is handed to the kernel.
  void broadcast(std::string payload, std::function<void()> then = {}) {
    asio::post(io_, [this, payload = std::move(payload), then = std::move(then)] {
      if (then) then();
      auto frame = std::make_shared<std::string>("data: " + payload + "\n\n");
      for (auto& s : streams_) s->send(frame);
    });
  }

  /// Number of open event streams (pages listening).
  [[nodiscard]] std::size_t listeners() {
    std::promise<std::size_t> p;
    auto f = p.get_future();
    asio::post(io_, [this, &p] { p.set_value(streams_.size()); });
    return f.get();
  }

 private:
  struct event_stream : std::enable_shared_from_this<event_stream> {
    explicit event_stream(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::deque<std::shared_ptr<std::string>> queue;
    bool dead = false;
    void send(std::shared_ptr<std::string> frame) {
      if (dead) return;
      queue.push_back(std::move(frame));
      if (queue.size() == 1) write();
    }
    void write() {
      asio::async_write(socket, asio::buffer(*queue.front()),
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) {
                            self->dead = true;
                            self->queue.clear();
                            return;
                          }
                          self->queue.pop_front();
                          if (!self->queue.empty()) self->write();
                        });
    }
  };

  struct session : std::enable_shared_from_this<session> {
    session(http_server& srv, tcp::socket s) : server(srv), stream(std::move(s)) {}
    http_server& server;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
    asio::steady_timer timer{stream.get_executor()};

    void read() {
      req = {};
      http::async_read(stream, buffer, req,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return;
                         self->delayed(self->server.jitter_us_.load(std::memory_order_relaxed),
                                       true, [self] { self->handle(); });
                       });
    }
    // Runs `next` after `us` microseconds (a random time up to it when `random`).
    template <class Next>
    void delayed(std::int64_t us, bool random, Next next) {
      if (us > 0 && random) us = std::uniform_int_distribution<std::int64_t>(0, us)(server.rng_);
      if (us <= 0) return next();
      timer.expires_after(std::chrono::microseconds(us));
      timer.async_wait([self = shared_from_this(), next](beast::error_code ec) {
        if (!ec) next();
      });
    }
    void handle() {
      // HEAD is answered as GET without the body.
      const bool head = req.method() == http::verb::head;
      request r{head ? std::string("GET") : std::string(req.method_string()),
                std::string(req.target()), req.body(), clock::now(),
                std::string(req[http::field::cookie])};
      for (const auto& f : req) r.fields.emplace_back(f.name_string(), f.value());
      response out;
      try {
        out = server.handler_(r);
      } catch (const std::exception& e) {
        out = response{500, "text/plain", e.what(), false};
      }
      if (head) out.body.clear();
      if (out.event_stream && !head) {
        auto s = std::make_shared<event_stream>(stream.release_socket());
        auto header = std::make_shared<std::string>(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Connection: keep-alive\r\n\r\n" +
            out.body);
        s->send(std::move(header));
        server.streams_.push_back(std::move(s));
        std::erase_if(server.streams_, [](const auto& x) { return x->dead; });
        return;
      }
      res = {};
      res.version(11);
      res.result(out.status);
      res.set(http::field::content_type, out.content_type);
      res.set(http::field::cache_control, "no-store");
      res.set(http::field::date, http_date(server.now()));
      for (const auto& [name, value] : out.headers) {
        if (beast::iequals(name, "Cache-Control"))
          res.set(http::field::cache_control, value);  // replaces no-store
        else if (beast::iequals(name, "Date"))
          res.set(http::field::date, value);
        else
          res.insert(name, value);
      }
      res.keep_alive(req.keep_alive());
      res.body() = std::move(out.body);
      res.prepare_payload();
      delayed(server.processing_us_.load(std::memory_order_relaxed), false,
              [self = shared_from_this()] { self->write(); });
    }
    void write() {
      http::async_write(stream, res,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec || !self->res.keep_alive()) {
                            beast::error_code ignored;
                            self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
                            return;
                          }
                          self->read();
                        });
    }
  };

  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      socket.set_option(tcp::no_delay(true));
      auto s = std::make_shared<session>(*this, std::move(socket));
      std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
      sessions_.push_back(s);
      s->read();
      accept();
    });
  }

  handler_type handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<std::int64_t> skew_ms_{0};
  std::atomic<std::int64_t> jitter_us_{0};
  std::atomic<std::int64_t> processing_us_{0};
  std::minstd_rand rng_{20261204};  // the jitter's (server thread only)
  std::vector<std::shared_ptr<event_stream>> streams_;
  std::vector<std::weak_ptr<session>> sessions_;
  std::thread thread_;
};

/// One article of the shop.
struct sku {
  std::string id;
  std::string name;
  std::string category;
  double price = 0;
  int stock = 0;
};

/// One POST /order the shop received.
struct order_record {
  std::string sku;
  int quantity = 0;
  bool accepted = false;
  std::string body;
  clock::time_point received;
  std::string user = {};  ///< the logged-in shopper (POST /members/order); empty: none
  unsigned status = 0;    ///< the HTTP status it was answered with
  std::chrono::system_clock::time_point shop_time;  ///< the shop's clock as it took the order
};

/// The demo shop's account (shop_server::set_account changes it).
inline constexpr const char* demo_user = "shopper";
inline constexpr const char* demo_password = "fresh-market-demo";
/// The name of the session cookie /login sets.
inline constexpr const char* session_cookie_name = "fm_session";

inline std::vector<sku> default_catalogue() {
  return {{"apples-1kg", "Apples, 1 kg", "fruit", 3.20, 0},
          {"veg-box", "Vegetable box", "vegetables", 18.50, 0},
          {"eggs-12", "Eggs, 12", "dairy", 4.10, 0},
          {"rice-5kg", "Rice, 5 kg", "staples", 12.90, 0}};
}

/// The shop: catalogue, stock, orders, and the page that sells them.
class shop_server {
 public:
  explicit shop_server(std::vector<sku> catalogue = default_catalogue(), unsigned short port = 0)
      : catalogue_(std::move(catalogue)),
        server_([this](const request& r) { return handle(r); }, port) {}

  [[nodiscard]] unsigned short port() const noexcept { return server_.port(); }
  [[nodiscard]] std::string url() const { return server_.url("/"); }
  /// The button-grid page of the same shop.
  [[nodiscard]] std::string grid_url() const { return server_.url("/grid"); }
  /// The page of `/` rendered as it loads: no push, nothing updates it.
  [[nodiscard]] std::string static_url() const { return server_.url("/static"); }

  /// The page that learns of the stock only from polled JSON (GET /api/stock).
  [[nodiscard]] std::string api_url() const { return server_.url("/api-shop"); }

  /// From now on GET /api/stock answers with `body` (the stock as it was),
  /// cacheable for a minute, with a Date `age` old and an Age header: what a
  /// stale cache serves. std::nullopt: the live stock again, not cacheable.
  void serve_stale_stock(std::optional<std::string> body,
                         std::chrono::seconds age = std::chrono::seconds(30)) {
    std::lock_guard lock(mutex_);
    stale_stock_ = std::move(body);
    stale_age_ = age;
  }
  /// From now on GET /api/stock answers with `body` as `content_type` (not
  /// cacheable): for bodies that are not JSON, too large or lack a field.
  /// std::nullopt: the live stock again.
  void serve_stock_body(std::optional<std::string> body,
                        std::string content_type = "application/json") {
    std::lock_guard lock(mutex_);
    stock_body_ = std::move(body);
    stock_body_type_ = std::move(content_type);
  }
  /// GET /api/stock requests received so far.
  [[nodiscard]] int stock_polls() const {
    std::lock_guard lock(mutex_);
    return stock_polls_;
  }
  /// The header names of the last GET /api/stock, lower-case, sorted, with
  /// their values (what the page's poll sends).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> last_poll_fields() const {
    std::lock_guard lock(mutex_);
    return last_poll_fields_;
  }

  /// The shop's clock runs `skew` ahead of this host's (behind when negative):
  /// its Date headers, `#shop-time` and the countdown follow it.
  void set_clock_skew(std::chrono::milliseconds skew) { server_.set_clock_skew(skew); }
  /// Every request waits a random time in [0, jitter] before the shop
  /// handles it (and stamps its Date, renders `#shop-time`, takes an order),
  /// and its answer leaves `processing` later: where in the round trip the
  /// shop reads its clock varies, as on a loaded server.
  void set_clock_jitter(std::chrono::microseconds jitter, std::chrono::microseconds processing) {
    server_.set_clock_jitter(jitter, processing);
  }
  /// The shop's clock now.
  [[nodiscard]] std::chrono::system_clock::time_point shop_now() const { return server_.now(); }
  /// From now on the pages show a `.countdown` to `start` (on the shop's clock).
  void set_sale_start(std::chrono::system_clock::time_point start) {
    std::lock_guard lock(mutex_);
    sale_start_ = start;
  }

  /// The login form; after a good login it leads to members_url().
  [[nodiscard]] std::string login_url() const { return server_.url("/login"); }
  /// The select page for logged-in shoppers (`.account` only with a session).
  [[nodiscard]] std::string members_url() const { return server_.url("/members"); }

  /// Replaces the account /login accepts (demo_user / demo_password by default).
  void set_account(std::string user, std::string password) {
    std::lock_guard lock(mutex_);
    user_ = std::move(user);
    password_ = std::move(password);
  }

  /// Adds a shopper /login accepts besides set_account's (a second user).
  void add_account(std::string user, std::string password) {
    std::lock_guard lock(mutex_);
    more_accounts_[std::move(user)] = std::move(password);
  }

  /// How POST /members/order answers a throttled shopper.
  struct throttling {
    int times = 1;                  ///< this many of the shopper's next orders
    unsigned status = 429;          ///< 429 or 503 (the page says "Order rejected: ...")
    std::string retry_after = "2";  ///< the Retry-After header; empty: none
    bool error_page = false;        ///< an HTML "Too many requests" page instead of JSON
  };
  /// Throttles `user`'s session only: its next `t.times` orders are answered
  /// as `t` says (recorded, not accepted); the other shoppers are served.
  void throttle_user(const std::string& user, throttling t) {
    std::lock_guard lock(mutex_);
    throttled_[user] = std::move(t);
  }

  /// The session cookie values handed out so far (for tests that check no
  /// such value is ever shown).
  [[nodiscard]] std::vector<std::string> session_tokens() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [token, who] : sessions_) out.push_back(token);
    return out;
  }

  /// Logins refused for a wrong user or password.
  [[nodiscard]] int refused_logins() const {
    std::lock_guard lock(mutex_);
    return refused_logins_;
  }

  /// POST /members/order requests refused with 401 for want of a session.
  [[nodiscard]] int unauthorized_orders() const {
    std::lock_guard lock(mutex_);
    return unauthorized_orders_;
  }
  [[nodiscard]] std::size_t listeners() { return server_.listeners(); }

  /// Sets `sku`'s stock and pushes the new state to every page. The time the
  /// push leaves the server is what last_push() reports.
  void set_stock(const std::string& id, int quantity) {
    std::string state;
    {
      std::lock_guard lock(mutex_);
      for (auto& s : catalogue_)
        if (s.id == id) s.stock = quantity;
      state = state_json().dump();
    }
    server_.broadcast(std::move(state), [this] {
      std::lock_guard lock(mutex_);
      last_push_ = clock::now();
    });
  }

  /// Sets every SKU's stock to zero and pushes it.
  void sell_out() {
    change_and_push([this] {
      for (auto& s : catalogue_) s.stock = 0;
    });
  }

  [[nodiscard]] std::vector<order_record> orders() const {
    std::lock_guard lock(mutex_);
    return orders_;
  }

  /// Waits up to `timeout` until at least `n` orders arrived.
  bool wait_for_orders(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return orders_.size() >= n; });
  }

  [[nodiscard]] std::optional<clock::time_point> last_push() const {
    std::lock_guard lock(mutex_);
    return last_push_;
  }

  [[nodiscard]] int stock(const std::string& id) const {
    std::lock_guard lock(mutex_);
    for (const auto& s : catalogue_)
      if (s.id == id) return s.stock;
    return -1;
  }

  /// Shows (or takes away) the verification on every page of `/` and pushes it.
  void set_challenge(bool on) {
    change_and_push([&] { challenge_ = on; });
  }
  [[nodiscard]] bool challenge() const {
    std::lock_guard lock(mutex_);
    return challenge_;
  }

  /// What stands in the way of the buy button on the live pages (`/`,
  /// `/members`): nothing, a promotion banner laid over it, the button
  /// hidden (visibility: hidden), or the button sliding to and fro.
  enum class buy_obstacle { none, covered, hidden, moving };
  /// Sets the buy button's obstacle and pushes it (a page loaded later
  /// shows it from the start).
  void set_buy_obstacle(buy_obstacle o) {
    change_and_push([&] { obstacle_ = o; });
  }

  /// Moves every live page to another route of itself, as a single-page
  /// shop does: the page pushes `?view=<n>` onto its history and draws its
  /// stock status and buy button anew (new elements in place of the old).
  void change_route() {
    change_and_push([&] { ++view_; });
  }
  /// Every request received so far (pages, events, orders, clock readings).
  [[nodiscard]] int requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  /// Forgets the orders received so far.
  void clear_orders() {
    std::lock_guard lock(mutex_);
    orders_.clear();
  }

 private:
  // Runs `change` on the state under the lock, then pushes the new state to
  // every live page.
  template <class Change>
  void change_and_push(Change change) {
    std::string state;
    {
      std::lock_guard lock(mutex_);
      change();
      state = state_json().dump();
    }
    server_.broadcast(std::move(state));
  }

  nlohmann::json state_json() const {
    nlohmann::json skus = nlohmann::json::array();
    for (const auto& s : catalogue_) {
      skus.push_back({{"sku", s.id},
                      {"name", s.name},
                      {"category", s.category},
                      {"price", s.price},
                      {"stock", s.stock}});
    }
    return {{"skus", skus},
            {"challenge", challenge_},
            {"obstacle", obstacle_name(obstacle_)},
            {"view", view_}};
  }

  static const char* obstacle_name(buy_obstacle o) {
    switch (o) {
      case buy_obstacle::covered:
        return "covered";
      case buy_obstacle::hidden:
        return "hidden";
      case buy_obstacle::moving:
        return "moving";
      case buy_obstacle::none:
        break;
    }
    return "none";
  }

  response handle(const request& r) {
    {
      std::lock_guard lock(mutex_);
      ++requests_;
    }
    // The request target (origin-form: /path?query), parsed with Boost.URL.
    const auto target = boost::urls::parse_origin_form(r.target);
    if (!target) return {400, "text/plain", "bad request target (expected /path[?query])\n", false};
    const std::string path = target->path();  // percent-decoded
    if (r.method == "GET" && path == "/")
      return {200, "text/html; charset=utf-8", page_html(true), false};
    if (r.method == "GET" && path == "/static")
      return {200, "text/html; charset=utf-8", page_html(false), false};
    if (r.method == "GET" && path == "/grid")
      return {200, "text/html; charset=utf-8", grid_html(), false};
    if (r.method == "GET" && path == "/login")
      return {200, "text/html; charset=utf-8", login_html(""), false};
    if (r.method == "POST" && path == "/login") return login(r);
    if (r.method == "GET" && path == "/members") {
      const std::string who = session_user(r);
      const std::string header =
          !who.empty() ? "<p class=\"account\">Signed in as " + html_escape(who) + "</p>\n"
                       : std::string(
                             "<p class=\"login-needed\">Please <a "
                             "href=\"/login\">log in</a> to buy.</p>\n");
      return {200, "text/html; charset=utf-8", page_html(true, "/members/order", header), false};
    }
    if (r.method == "POST" && path == "/members/order") {
      const std::string who = session_user(r);
      if (who.empty()) {
        std::lock_guard lock(mutex_);
        ++unauthorized_orders_;
        return {401, "application/json", R"({"error":"please log in"})", false};
      }
      if (auto t = take_throttling(who)) {
        order_record rec;
        rec.body = r.body;
        rec.received = r.received;
        rec.user = who;
        rec.status = t->status;
        record(std::move(rec));
        response out = t->error_page
                           ? response{t->status, "text/html; charset=utf-8",
                                      "<!doctype html><title>Too many requests</title><h1 "
                                      "class=\"too-many\">Too many requests</h1>",
                                      false}
                           : response{t->status, "application/json",
                                      R"({"error":"too many requests, slow down"})", false};
        if (!t->retry_after.empty()) out.headers.emplace_back("Retry-After", t->retry_after);
        return out;
      }
      return order(r, who);
    }
    if (r.method == "GET" && path == "/events") {
      std::lock_guard lock(mutex_);
      return {200, "", "retry: 100\ndata: " + state_json().dump() + "\n\n", true};
    }
    if (r.method == "GET" && path == "/api-shop")
      return {200, "text/html; charset=utf-8", api_html(), false};
    if (r.method == "GET" && path == "/api/stock") return api_stock(r);
    if (r.method == "GET" && path == "/state") {
      std::lock_guard lock(mutex_);
      return {200, "application/json", state_json().dump(), false};
    }
    if (r.method == "POST" && path == "/challenge/solve") {  // the person ticked "I am human"
      set_challenge(false);
      return {200, "application/json", R"({"solved":true})", false};
    }
    if (r.method == "POST" && path == "/order" && challenge()) {
      return {403, "application/json", R"({"error":"verify you are human first"})", false};
    }
    if (r.method == "POST" && path == "/order") return order(r);
    if (r.method == "POST" &&
        path == "/restock") {  // ?sku=<id>&qty=<n>, for trying the shop by hand
      const auto q = parse_query(*target);
      const auto sku_it = q.find("sku");
      const auto qty_it = q.find("qty");
      if (sku_it == q.end() || qty_it == q.end() || stock(sku_it->second) < 0) {
        return {400, "text/plain", "restock needs ?sku=<known id>&qty=<n>\n", false};
      }
      set_stock(sku_it->second, std::atoi(qty_it->second.c_str()));
      return {200, "text/plain", "ok\n", false};
    }
    return {404, "text/plain", "no such page: " + seckill::redact_url(r.target) + "\n", false};
  }

  std::string user() const {
    std::lock_guard lock(mutex_);
    return user_;
  }

  static std::string html_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
      switch (c) {
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '&':
          out += "&amp;";
          break;
        case '"':
          out += "&quot;";
          break;
        default:
          out += c;
      }
    }
    return out;
  }

  // One throttled answer for `user`, if it is throttled (counted down).
  std::optional<throttling> take_throttling(const std::string& user) {
    std::lock_guard lock(mutex_);
    const auto it = throttled_.find(user);
    if (it == throttled_.end() || it->second.times <= 0) return std::nullopt;
    --it->second.times;
    return it->second;
  }

  /// The shopper whose session cookie the request carries; empty: none.
  std::string session_user(const request& r) const {
    const std::string name = std::string(session_cookie_name) + "=";
    std::string_view rest = r.cookie;
    while (!rest.empty()) {
      const auto end = rest.find(';');
      std::string_view pair = rest.substr(0, end);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      if (pair.substr(0, name.size()) == name) {
        const std::string value(pair.substr(name.size()));
        std::lock_guard lock(mutex_);
        if (const auto it = sessions_.find(value); it != sessions_.end()) return it->second;
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
    return {};
  }

  /// POST /login (a form: user, password): the right pair gets a session
  /// cookie (HttpOnly, a day's Max-Age) and a 303 to /members; a wrong one 401.
  response login(const request& r) {
    std::string form = r.body;  // application/x-www-form-urlencoded: '+' is a space
    for (char& c : form)
      if (c == '+') c = ' ';
    std::string given_user, given_password;
    const std::string target = "/?" + form;  // parsed views point into it
    if (const auto parsed = boost::urls::parse_origin_form(target)) {
      const auto fields = parse_query(*parsed);
      if (const auto u = fields.find("user"); u != fields.end()) given_user = u->second;
      if (const auto p = fields.find("password"); p != fields.end()) given_password = p->second;
    }
    std::string token;
    {
      std::lock_guard lock(mutex_);
      const auto more = more_accounts_.find(given_user);
      const bool known = (given_user == user_ && given_password == password_) ||
                         (more != more_accounts_.end() && more->second == given_password);
      if (given_user.empty() || !known) {
        ++refused_logins_;
      } else {
        std::random_device rd;
        for (int i = 0; i < 4; ++i) token += fmt::format("{:08x}", rd());
        sessions_.emplace(token, given_user);
      }
    }
    if (token.empty()) {
      return {401, "text/html; charset=utf-8", login_html("Wrong user or password."), false};
    }
    response out{303, "text/plain", "logged in\n", false};
    out.headers.emplace_back("Location", "/members");
    out.headers.emplace_back("Set-Cookie", std::string(session_cookie_name) + "=" + token +
                                               "; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax");
    return out;
  }

  static std::string login_html(const std::string& problem) {
    return R"(<!doctype html>
<html><head><meta charset="utf-8"><title>Fresh Market - log in</title>
<style>body { font-family: sans-serif; margin: 2em; } label { display: block; margin: .5em 0; }</style>
</head>
<body>
<h1>Fresh Market</h1>
<form method="post" action="/login">
<label>User <input id="user" name="user" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="login" type="submit">Log in</button>
</form>
<p class="login-error">)" +
           problem + R"(</p>
</body></html>
)";
  }

  /// The query's parameters, percent-decoded (the last of a repeated name wins).
  static std::map<std::string, std::string> parse_query(const boost::urls::url_view& target) {
    std::map<std::string, std::string> out;
    for (const auto& p : target.params()) {
      if (p.has_value) out[std::string(p.key)] = std::string(p.value);
    }
    return out;
  }

  response order(const request& r, const std::string& user = {}) {
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    order_record rec;
    rec.body = r.body;
    rec.received = r.received;
    rec.user = user;
    rec.status = 400;
    rec.shop_time = server_.now();
    if (body.is_discarded() || !body.is_object() || !body.contains("sku") ||
        !body["sku"].is_string() || !body.contains("quantity") ||
        !body["quantity"].is_number_integer()) {
      record(std::move(rec));
      return {400, "application/json", nlohmann::json{{"error", "bad order: " + r.body}}.dump(),
              false};
    }
    rec.sku = body["sku"].get<std::string>();
    rec.quantity = body["quantity"].get<int>();
    std::string state;
    response out;
    {
      std::lock_guard lock(mutex_);
      sku* item = nullptr;
      for (auto& s : catalogue_)
        if (s.id == rec.sku) item = &s;
      if (item == nullptr) {
        out = {404, "application/json", nlohmann::json{{"error", "unknown sku " + rec.sku}}.dump(),
               false};
      } else if (rec.quantity <= 0 || item->stock < rec.quantity) {
        out = {
            409, "application/json",
            nlohmann::json{{"error", fmt::format("sold out: {} left of {}", item->stock, rec.sku)}}
                .dump(),
            false};
      } else {
        item->stock -= rec.quantity;
        rec.accepted = true;
        const auto id = ++next_order_;
        out = {
            200, "application/json",
            nlohmann::json{{"order_id", id}, {"sku", rec.sku}, {"quantity", rec.quantity}}.dump(),
            false};
        state = state_json().dump();
      }
    }
    rec.status = out.status;
    record(std::move(rec));
    if (!state.empty()) server_.broadcast(std::move(state));
    return out;
  }

  void record(order_record rec) {
    {
      std::lock_guard lock(mutex_);
      orders_.push_back(std::move(rec));
    }
    cv_.notify_all();
  }

  // `/` (live: pushed updates) or `/static` (the state as it loads, a clock);
  // `order_path` takes its orders, `header` goes above the status (/members).
  std::string page_html(bool live, const std::string& order_path = "/order",
                        const std::string& header = "") const {
    std::string options;
    bool any = false;
    std::optional<std::chrono::system_clock::time_point> start;
    std::string obstacle;
    int view = 0;
    {
      std::lock_guard lock(mutex_);
      obstacle = obstacle_name(obstacle_);
      view = view_;
      for (const auto& s : catalogue_) {
        options += fmt::format(
            "<option value=\"{}\" data-price=\"{:.2f}\" data-category=\"{}\" data-stock=\"{}\">{} "
            "- {:.2f}</option>",
            s.id, s.price, s.category, s.stock, s.name, s.price);
        any = any || s.stock > 0;
      }
      start = sale_start_;
    }
    const auto shop_now = server_.now();
    const auto ms_of = [](std::chrono::system_clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    // The countdown counts down from what is left at render time; the clock
    // runs from the shop's time at render time.
    std::string extras;
    std::string extras_script;
    if (start) {
      extras += R"(<p>Sale starts in <span class="countdown"></span></p>)";
      extras_script += fmt::format(R"(
const left0 = {}, t0 = performance.now();
const countdown = document.querySelector('.countdown');
function tick() {{
  const left = Math.max(0, left0 - (performance.now() - t0));
  const s = Math.ceil(left / 1000);
  const text = `还剩 ${{Math.floor(s / 60)}}分${{s % 60}}秒`;
  if (countdown.textContent !== text) countdown.textContent = text;
  if (left > 0) setTimeout(tick, 50);
}}
tick();
)",
                                   std::max<std::int64_t>(0, ms_of(*start) - ms_of(shop_now)));
    }
    if (!live || start) {
      extras += R"(<p>Shop time <span id="shop-time"></span></p>)";
      extras_script += fmt::format(R"(
const shop0 = {}, c0 = performance.now();
const shopTime = document.getElementById('shop-time');
setInterval(() => {{
  shopTime.textContent = new Date(shop0 + (performance.now() - c0)).toISOString();
}}, 10);
)",
                                   ms_of(shop_now));
    }
    const std::string status =
        live ? R"(<div class="stock-status" data-state="out">Out of stock</div>)"
             : fmt::format(R"(<div class="stock-status" data-state="{}">{}</div>)",
                           any ? "in" : "out", any ? "In stock" : "Out of stock");
    // The buy button in its area, under the obstacle_name `obstacle`.
    const bool marked = obstacle == "hidden" || obstacle == "moving";
    const std::string buy =
        fmt::format(R"(<div class="buy-area"><button id="buy"{} type="button"{}>Buy now</button>)"
                    R"(<div class="promo"{}>Today only: free delivery</div></div>)",
                    marked ? " class=\"" + obstacle + "\"" : std::string(),
                    live || !any ? " disabled" : "", obstacle == "covered" ? "" : " hidden");
    return R"(<!doctype html>
<html><head><meta charset="utf-8"><title>Fresh Market</title>
<style>
body { font-family: sans-serif; margin: 2em; }
.stock-status { font-weight: bold; margin: 1em 0; }
.stock-status[data-state="in"] { color: green; }
.stock-status[data-state="out"] { color: #a00; }
label { display: block; margin: .5em 0; }
#buy { font-size: 1.2em; padding: .4em 1.2em; }
.buy-area { position: relative; display: inline-block; }
.promo { position: absolute; inset: -6px; background: rgba(255, 240, 200, .9); }
.promo[hidden] { display: none; }
#buy.hidden { visibility: hidden; }
@keyframes slide { from { transform: translateX(0); } to { transform: translateX(240px); } }
#buy.moving { animation: slide 700ms linear infinite alternate; }
</style></head>
<body>
<h1>Fresh Market</h1>
)" + header +
           status +
           R"(
<label>Item <select id="sku">)" +
           options + R"(</select></label>
<label>Quantity <input id="quantity" type="number" min="1" value="1"></label>
)" + buy +
           R"(
<p class="order-result"></p>
<div class="human-check" hidden><p>Please verify you are human</p>
<label><input type="checkbox" id="human"> I am human</label></div>
)" + extras +
           R"(
<script>
const sel = document.getElementById('sku');
const qty = document.getElementById('quantity');
let buy = document.getElementById('buy');
let status = document.querySelector('.stock-status');
const promo = document.querySelector('.promo');
let view = )" +
           std::to_string(view) + R"(;
const result = document.querySelector('.order-result');
const check = document.querySelector('.human-check');
const human = document.getElementById('human');
function render(state) {
  let any = false;
  for (const s of state.skus) {
    const opt = Array.from(sel.options).find(o => o.value === s.sku);
    if (!opt) continue;
    if (opt.dataset.stock !== String(s.stock)) opt.dataset.stock = String(s.stock);
    if (s.stock > 0) any = true;
  }
  const text = any ? 'In stock' : 'Out of stock';
  if (status.textContent !== text) {
    status.textContent = text;
    status.dataset.state = any ? 'in' : 'out';
  }
  if (check.hidden !== !state.challenge) {
    check.hidden = !state.challenge;
    human.checked = false;
  }
  buy.disabled = !any;  // (pressed behind the verification, an order is refused: 403)
  const obstacle = state.obstacle || 'none';
  if (promo.hidden !== (obstacle !== 'covered')) promo.hidden = obstacle !== 'covered';
  buy.classList.toggle('hidden', obstacle === 'hidden');
  buy.classList.toggle('moving', obstacle === 'moving');
}
// A route of this page (a single-page shop): the URL moves on and the status
// and the button are drawn anew, as new elements.
function route(state) {
  if (state.view === undefined || state.view === view) return;
  view = state.view;
  history.pushState({view}, '', location.pathname + '?view=' + view);
  const s2 = status.cloneNode(true);
  status.replaceWith(s2);
  status = s2;
  const b2 = buy.cloneNode(true);
  buy.replaceWith(b2);
  buy = b2;
  buy.addEventListener('click', order);
}
// Only a person's click solves it (a script's click() is not trusted).
human.addEventListener('click', (e) => {
  if (!e.isTrusted) { e.preventDefault(); return; }
  fetch('/challenge/solve', {method: 'POST'});
});
if ()" + std::string(live ? "true" : "false") +
           R"() new EventSource('/events').onmessage = (e) => {
  const state = JSON.parse(e.data);
  route(state);
  render(state);
};
)" + extras_script +
           R"(
async function order() {
  const body = JSON.stringify({sku: sel.value, quantity: Number(qty.value)});
  const r = await fetch(')" +
           order_path +
           R"(', {method: 'POST', headers: {'Content-Type': 'application/json'}, body});
  const j = await r.json();
  result.textContent = r.ok ? `Order confirmed #${j.order_id}: ${j.quantity} x ${j.sku}`
                            : `Order rejected: ${j.error}`;
}
buy.addEventListener('click', order);
</script>
</body></html>
)";
  }

  // GET /api/stock: the live stock, or what a test hook set.
  response api_stock(const request& r) {
    std::lock_guard lock(mutex_);
    ++stock_polls_;
    last_poll_fields_.clear();
    for (const auto& [name, value] : r.fields) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      last_poll_fields_.emplace_back(std::move(lower), value);
    }
    std::sort(last_poll_fields_.begin(), last_poll_fields_.end());
    if (stale_stock_) {
      response out{200, "application/json", *stale_stock_, false};
      out.headers = {{"Cache-Control", "max-age=60"},
                     {"Date", http_server::http_date(server_.now() - stale_age_)},
                     {"Age", std::to_string(stale_age_.count())}};
      return out;
    }
    if (stock_body_) return {200, stock_body_type_, *stock_body_, false};
    nlohmann::json skus = nlohmann::json::array();
    for (const auto& s : catalogue_)
      skus.push_back({{"sku", s.id}, {"price", s.price}, {"stock", s.stock}});
    return {200, "application/json", nlohmann::json{{"skus", skus}}.dump(), false};
  }

  // `/api-shop`: the SKUs and a buy button; the stock only in /api/stock,
  // which the script polls (the page shows none of it).
  std::string api_html() const {
    std::string options;
    {
      std::lock_guard lock(mutex_);
      for (const auto& s : catalogue_) {
        options += fmt::format("<option value=\"{}\">{}</option>", s.id, s.name);
      }
    }
    return R"(<!doctype html>
<html><head><meta charset="utf-8"><title>Fresh Market API</title></head>
<body>
<h1>Fresh Market</h1>
<label>Item <select id="sku">)" +
           options + R"(</select></label>
<label>Quantity <input id="quantity" type="number" min="1" value="1"></label>
<button id="buy" type="button">Buy now</button>
<p class="order-result"></p>
<script>
const sel = document.getElementById('sku');
const qty = document.getElementById('quantity');
const result = document.querySelector('.order-result');
let stock = {};
async function poll() {
  try {
    const r = await fetch('/api/stock');
    const j = await r.json();
    for (const s of j.skus || []) stock[s.sku] = s.stock;
  } catch (e) {}
  setTimeout(poll, 200);
}
poll();
document.getElementById('buy').addEventListener('click', async () => {
  const body = JSON.stringify({sku: sel.value, quantity: Number(qty.value)});
  const r = await fetch('/order', {method: 'POST', headers: {'Content-Type': 'application/json'}, body});
  const j = await r.json();
  result.textContent = r.ok ? `Order confirmed #${j.order_id}: ${j.quantity} x ${j.sku}`
                            : `Order rejected: ${j.error}`;
});
</script>
</body></html>
)";
  }

  std::string grid_html() const {
    std::string buttons;
    {
      std::lock_guard lock(mutex_);
      for (const auto& s : catalogue_) {
        const bool none = s.stock <= 0;
        buttons += fmt::format(
            "<button type=\"button\" class=\"sku{}\" data-sku=\"{}\" data-category=\"{}\"{}>"
            "<span class=\"name\">{}</span><span class=\"price\">¥{:.2f}</span>"
            "<span class=\"left\">{}</span></button>",
            none ? " sold-out" : "", s.id, s.category, none ? " disabled" : "", s.name, s.price,
            none ? std::string("售罄") : fmt::format("剩 {} 件", s.stock));
      }
    }
    return R"(<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>鲜果铺</title>
<style>
body { font-family: sans-serif; margin: 2em; }
.sku-grid { display: grid; grid-template-columns: repeat(2, 12em); gap: .5em; margin: 1em 0; }
.sku { padding: .6em; text-align: left; }
.sku span { display: block; }
.sku.selected { outline: 3px solid #e60; }
.qty button { width: 2.2em; }
#submit { font-size: 1.2em; padding: .4em 1.2em; margin: 1em 0; }
</style></head>
<body>
<h1>鲜果铺</h1>
<p>库存：<span id="stock-flag">售罄</span></p>
<div class="sku-grid">)" +
           buttons + R"(</div>
<div class="qty">数量 <button type="button" class="minus">-</button> <span class="count">1</span> <button type="button" class="plus">+</button></div>
<button id="submit" type="button" disabled>立即抢购</button>
<p id="msg"></p>
<script>
const grid = document.querySelector('.sku-grid');
const flag = document.getElementById('stock-flag');
const count = document.querySelector('.qty .count');
const submit = document.getElementById('submit');
const msg = document.getElementById('msg');
let chosen = null;
function render(state) {
  let any = false;
  for (const s of state.skus) {
    const b = Array.from(grid.querySelectorAll('.sku')).find(x => x.dataset.sku === s.sku);
    if (!b) continue;
    const left = b.querySelector('.left');
    const t = s.stock > 0 ? `剩 ${s.stock} 件` : '售罄';
    if (left.textContent !== t) left.textContent = t;
    b.disabled = s.stock <= 0;
    b.classList.toggle('sold-out', s.stock <= 0);
    if (s.stock > 0) any = true;
  }
  const text = any ? '有货' : '售罄';
  if (flag.textContent !== text) flag.textContent = text;
  submit.disabled = !any;
}
new EventSource('/events').onmessage = (e) => render(JSON.parse(e.data));
// Only a person's clicks count here (a script's click() is not trusted).
grid.addEventListener('click', (e) => {
  const b = e.target.closest('.sku');
  if (!e.isTrusted || !b || b.disabled) return;
  for (const x of grid.querySelectorAll('.sku.selected')) x.classList.remove('selected');
  b.classList.add('selected');
  chosen = b.dataset.sku;
});
document.querySelector('.qty').addEventListener('click', (e) => {
  if (!e.isTrusted) return;
  const n = Number(count.textContent);
  if (e.target.classList.contains('plus')) count.textContent = String(Math.min(n + 1, 99));
  if (e.target.classList.contains('minus')) count.textContent = String(Math.max(n - 1, 1));
});
submit.addEventListener('click', async (e) => {
  if (!e.isTrusted) return;
  if (!chosen) { msg.textContent = '下单失败：请先选择商品'; return; }
  const body = JSON.stringify({sku: chosen, quantity: Number(count.textContent)});
  const r = await fetch('/order', {method: 'POST', headers: {'Content-Type': 'application/json'}, body});
  const j = await r.json();
  msg.textContent = r.ok ? `下单成功 #${j.order_id}：${j.quantity} x ${j.sku}` : `下单失败：${j.error}`;
});
</script>
</body></html>
)";
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<sku> catalogue_;
  std::vector<order_record> orders_;
  std::optional<clock::time_point> last_push_;
  std::uint64_t next_order_ = 0;
  std::optional<std::chrono::system_clock::time_point> sale_start_;
  std::string user_ = demo_user;
  std::string password_ = demo_password;
  std::map<std::string, std::string> sessions_;       // session token -> its shopper
  std::map<std::string, std::string> more_accounts_;  // add_account's: user -> password
  std::map<std::string, throttling> throttled_;       // throttle_user's, per shopper
  int refused_logins_ = 0;
  int unauthorized_orders_ = 0;
  bool challenge_ = false;
  buy_obstacle obstacle_ = buy_obstacle::none;
  int view_ = 0;  // change_route's count
  int requests_ = 0;
  std::optional<std::string> stale_stock_, stock_body_;
  std::chrono::seconds stale_age_{30};
  std::string stock_body_type_ = "application/json";
  int stock_polls_ = 0;
  std::vector<std::pair<std::string, std::string>> last_poll_fields_;
  http_server server_;  // last: stopped first, while the state above is alive
};

}  // namespace shop
