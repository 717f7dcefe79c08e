// extension_driver frame by frame: the test plays the extension on the other
// end of a socket pair and checks which requests the driver writes. The
// carried shop answers a snapshot with no request only while nothing has
// changed the page; an extension older than the batch op gets the steps one
// request each; a quantity the page has no field for is refused before
// anything is sent.
#include <seckill/browser/extension_driver.hpp>

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

namespace unit_extension_driver {

namespace asio = boost::asio;
namespace nm = seckill::browser::native_messaging;
namespace sb = seckill::browser;
using json = nlohmann::json;
using local_socket = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;

static_assert(sb::ordering_shop_driver<sb::extension_driver<local_socket>>);
static_assert(sb::ordering_shop_driver<sb::extension_driver<asio::ip::tcp::socket>>);

// The extension's end of the pair, in blocking calls from the test thread
// (the driver's end runs on the io thread).
class extension_end {
 public:
  explicit extension_end(local_socket s) : s_(std::move(s)) {}

  // Whether a frame arrives within `wait`.
  bool readable(std::chrono::milliseconds wait) {
    pollfd p{s_.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
  }

  // The next request (fails the test after 5 s).
  json request() {
    REQUIRE_MESSAGE(readable(5s), "no request from the driver");
    char header[nm::header_size];
    asio::read(s_, asio::buffer(header, sizeof header));
    std::string body(nm::read_length(header), '\0');
    asio::read(s_, asio::buffer(body));
    return json::parse(body);
  }

  // The next request, which must be `op`.
  json expect(const std::string& op) {
    json r = request();
    CHECK(r.value("op", "") == op);
    return r;
  }

  void send(const json& m) {
    std::string frame;
    REQUIRE(!nm::encode_frame(m.dump(), nm::to_host_limit, frame));
    asio::write(s_, asio::buffer(frame));
  }
  void ok(const json& req, json result = nullptr) {
    send({{"v", 1}, {"id", req["id"]}, {"ok", true}, {"result", std::move(result)}});
  }
  void fail(const json& req, const std::string& code, std::optional<int> step = std::nullopt) {
    json err{{"code", code}, {"message", code}};
    if (step) err["step"] = *step;
    send({{"v", 1}, {"id", req["id"]}, {"ok", false}, {"error", std::move(err)}});
  }
  // A status event carrying the shop `status`.
  void status_with_shop(const std::string& status) {
    send({{"v", 1},
          {"event",
           {{"kind", "status"},
            {"present", true},
            {"text", status},
            {"shop", {{"status", status}, {"offers", json::array()}}}}}});
  }

 private:
  local_socket s_;
};

// A driver on one end of a socket pair, its io_context on a thread of its own.
struct driver_pair {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::optional<sb::extension_driver<local_socket>> driver;
  std::optional<extension_end> ext;
  std::thread runner;

  explicit driver_pair(sb::site_profile profile = {}) {
    local_socket a(io), b(io);
    asio::local::connect_pair(a, b);
    driver.emplace(std::move(a), std::move(profile), sb::extension_driver_options{});
    ext.emplace(std::move(b));
    runner = std::thread([this] { io.run(); });
  }
  ~driver_pair() {
    asio::post(io, [this] { driver->close(); });  // its read loop ends; run() returns
    work.reset();
    runner.join();
  }
  driver_pair(const driver_pair&) = delete;
  driver_pair& operator=(const driver_pair&) = delete;

  // A snapshot the extension answers with `status`, or none when the driver
  // writes no request (the carried shop).
  std::string snapshot(const std::string& answer) {
    auto f = driver->async_snapshot(asio::use_future);
    if (ext->readable(1s)) {
      const json r = ext->expect("call");
      CHECK(r["args"]["fn"] == "read_shop");
      ext->ok(r, {{"status", answer}, {"offers", json::array()}});
    }
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto [e, shop] = f.get();
    REQUIRE(!e);
    return shop.status;
  }
  // Waits for the next event (which the read loop has then taken in).
  sb::shop_event next_event() {
    auto f = driver->async_next_event(5s, asio::use_future);
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    auto [e, ev] = f.get();
    REQUIRE(!e);
    REQUIRE(ev);
    return *ev;
  }
};

}  // namespace unit_extension_driver

using namespace unit_extension_driver;

TEST_SUITE("unit") {
  TEST_CASE("extension driver: a change's shop answers one snapshot with no request") {
    driver_pair p;
    CHECK(p.snapshot("Sold out") == "Sold out");  // the first request starts the read loop
    p.ext->status_with_shop("In stock");
    CHECK(p.next_event().text == "In stock");
    auto f = p.driver->async_snapshot(asio::use_future);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(std::get<1>(f.get()).status == "In stock");
    CHECK_FALSE(p.ext->readable(200ms));                      // no request went out
    CHECK(p.snapshot("In stock, read") == "In stock, read");  // used once only
  }

  TEST_CASE("extension driver: an event during an action leaves no carried shop after it") {
    driver_pair p;
    CHECK(p.snapshot("Sold out") == "Sold out");
    p.ext->status_with_shop("In stock");
    p.next_event();
    auto press = p.driver->async_press_buy(asio::use_future);
    const json click = p.ext->expect("click");
    p.ext->status_with_shop("In stock, before the press landed");
    p.next_event();
    p.ext->ok(click);
    REQUIRE(press.wait_for(5s) == std::future_status::ready);
    CHECK(!press.get());
    CHECK(p.snapshot("Sold out, read") == "Sold out, read");  // a request, not the stale shop
  }

  TEST_CASE("extension driver: a result forgets the carried shop") {
    driver_pair p;
    CHECK(p.snapshot("Sold out") == "Sold out");
    p.ext->status_with_shop("In stock");
    p.ext->send(
        {{"v", 1}, {"event", {{"kind", "result"}, {"present", true}, {"text", "Ordered"}}}});
    CHECK(p.next_event().kind == sb::shop_event_kind::status);
    CHECK(p.next_event().kind == sb::shop_event_kind::outcome);
    CHECK(p.snapshot("Sold out, read") == "Sold out, read");
  }

  TEST_CASE(
      "extension driver: the try's actions go as one batch - a failing step names its action") {
    driver_pair p;
    sb::order_actions todo;
    todo.sku = "veg-box";
    todo.quantity = 2;
    auto f = p.driver->async_order(todo, asio::use_future);
    const json b = p.ext->expect("batch");
    const json& steps = b["args"]["steps"];
    REQUIRE(steps.size() == 3);
    CHECK(steps[0]["op"] == "select");
    CHECK(steps[0]["args"]["value"] == "veg-box");
    CHECK(steps[1]["op"] == "fill");
    CHECK(steps[1]["args"]["text"] == "2");
    CHECK(steps[2]["op"] == "click");
    CHECK(steps[2]["args"]["selector"] == "#buy");
    p.ext->fail(b, "element_not_actionable", 1);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto [e, at] = f.get();
    CHECK(e == sb::errc::element_not_actionable);
    CHECK(at == sb::order_action::quantity);
  }

  TEST_CASE("extension driver: an extension without batch gets the steps one request each") {
    driver_pair p;
    sb::order_actions todo;
    todo.sku = "veg-box";
    todo.quantity = 2;
    auto f = p.driver->async_order(todo, asio::use_future);
    p.ext->fail(p.ext->expect("batch"), "invalid_argument");  // "no operation batch"
    const json sel = p.ext->expect("select");
    CHECK(sel["args"]["value"] == "veg-box");
    p.ext->ok(sel);
    const json fill = p.ext->expect("fill");
    CHECK(fill["args"]["text"] == "2");
    p.ext->ok(fill);
    p.ext->ok(p.ext->expect("click"));
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    CHECK(!std::get<0>(f.get()));

    // From then on, no batch; an older extension's missing field is a quantity of 1.
    todo.sku.reset();
    todo.quantity = 1;
    auto g = p.driver->async_order(todo, asio::use_future);
    p.ext->fail(p.ext->expect("fill"), "element_not_found");
    const json click = p.ext->expect("click");
    p.ext->fail(click, "element_not_actionable");
    REQUIRE(g.wait_for(5s) == std::future_status::ready);
    auto [e, at] = g.get();
    CHECK(e == sb::errc::element_not_actionable);
    CHECK(at == sb::order_action::press);

    auto q = p.driver->async_set_quantity(1, asio::use_future);
    p.ext->fail(p.ext->expect("fill"), "element_not_found");
    REQUIRE(q.wait_for(5s) == std::future_status::ready);
    CHECK(!q.get());
  }

  TEST_CASE("extension driver: a batch timing out as a whole blames its last action") {
    sb::site_profile profile;
    driver_pair p(profile);
    sb::order_actions todo;
    todo.sku = "veg-box";
    auto f = p.driver->async_order(todo, asio::use_future);
    const json b = p.ext->expect("batch");
    CHECK(b["args"]["steps"].size() == 2);
    p.ext->fail(b, "timed_out");
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto [e, at] = f.get();
    CHECK(e == seckill::errc::timed_out);
    CHECK(at == sb::order_action::press);
    // A timeout is not a refusal of the op: the next try is a batch again.
    auto g = p.driver->async_order(todo, asio::use_future);
    p.ext->ok(p.ext->expect("batch"));
    REQUIRE(g.wait_for(5s) == std::future_status::ready);
    CHECK(!std::get<0>(g.get()));
  }

  TEST_CASE("extension driver: with no quantity field one is taken and more refused unsent") {
    sb::site_profile profile;
    profile.quantity.clear();
    driver_pair p(profile);
    sb::order_actions two;
    two.quantity = 2;
    auto f = p.driver->async_order(two, asio::use_future);
    REQUIRE(f.wait_for(5s) == std::future_status::ready);
    auto [e, at] = f.get();
    CHECK(e == sb::errc::element_not_found);
    CHECK(at == sb::order_action::quantity);
    CHECK_FALSE(p.ext->readable(200ms));
    sb::order_actions one;
    one.quantity = 1;
    auto g = p.driver->async_order(one, asio::use_future);
    const json b = p.ext->expect("batch");
    REQUIRE(b["args"]["steps"].size() == 1);
    CHECK(b["args"]["steps"][0]["op"] == "click");
    p.ext->ok(b);
    REQUIRE(g.wait_for(5s) == std::future_status::ready);
    CHECK(!std::get<0>(g.get()));
  }

  TEST_CASE(
      "extension driver: watching asks for what the profile names - answers come as "
      "page_driver's") {
    sb::site_profile profile;
    profile.success_response = "/order";
    profile.order_response = "/api/cart";
    profile.throttled = ".too-many";
    profile.throttled_text = {"slow down"};
    profile.verification = ".my-captcha";
    sb::extension_driver_options opts;
    opts.url = "http://127.0.0.1:8080/";
    asio::io_context io;
    local_socket a(io), b(io);
    asio::local::connect_pair(a, b);
    sb::extension_driver<local_socket> driver(std::move(a), profile, opts);
    extension_end ext(std::move(b));
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });

    auto watched = driver.async_watch(asio::use_future);
    const json attach = ext.expect("attach");
    CHECK(attach["args"]["url"] == opts.url);
    ext.ok(attach, {{"tab", 7}});
    const json w = ext.expect("watch");
    const json& cfg = w["args"]["profile"];
    CHECK(w["args"]["tab"] == 7);
    CHECK(cfg["responses"] == true);
    CHECK(cfg["throttled"] == ".too-many");
    CHECK(cfg["verification"]["own"] == ".my-captcha");
    CHECK(cfg["verification"]["common"] == std::string(sb::default_verification));
    CHECK(cfg["verification"]["texts"].size() == sb::default_verification_text().size());
    ext.ok(w, {{"logged_in", nullptr}, {"url", opts.url}});
    REQUIRE(watched.wait_for(5s) == std::future_status::ready);
    CHECK(!std::get<0>(std::tuple{watched.get()}));

    const auto event = [&](json body) {
      body["tab"] = 7;
      ext.send({{"v", 1}, {"event", std::move(body)}});
    };
    const auto next = [&] {
      auto f = driver.async_next_event(5s, asio::use_future);
      REQUIRE(f.wait_for(10s) == std::future_status::ready);
      auto [e, ev] = f.get();
      REQUIRE(!e);
      REQUIRE(ev);
      return *ev;
    };
    event({{"kind", "response"}, {"url", "http://127.0.0.1:8080/order"}, {"status", 200}});
    sb::shop_event e1 = next();
    CHECK(e1.kind == sb::shop_event_kind::outcome);
    CHECK(e1.confirmed);
    CHECK(e1.text == "HTTP 200 http://127.0.0.1:8080/order");
    // Another tab's, another URL's, and the cart's answers that are no refusal: nothing.
    ext.send({{"v", 1},
              {"event",
               {{"tab", 8}, {"kind", "response"}, {"url", "http://x/order"}, {"status", 200}}}});
    event({{"kind", "response"}, {"url", "http://127.0.0.1:8080/img.png"}, {"status", 429}});
    event({{"kind", "response"}, {"url", "http://127.0.0.1:8080/api/cart"}, {"status", 200}});
    event({{"kind", "response"},
           {"url", "http://127.0.0.1:8080/api/cart"},
           {"status", 429},
           {"retry_after", "2"}});
    sb::shop_event e2 = next();
    CHECK(e2.kind == sb::shop_event_kind::outcome);
    CHECK(e2.throttled);
    CHECK_FALSE(e2.confirmed);
    CHECK(e2.retry_after == std::optional<std::chrono::milliseconds>(2000ms));
    event({{"kind", "throttled"}, {"present", true}, {"text", "Too many requests"}});
    event({{"kind", "throttled"}, {"present", true}, {"text", "Too many requests"}});
    event({{"kind", "result"}, {"present", true}, {"text", "Order rejected: slow down"}});
    sb::shop_event e3 = next();
    CHECK(e3.throttled);
    CHECK(e3.text == "the page shows 'Too many requests'");
    sb::shop_event e4 = next();  // the second sight of the same element: no event
    CHECK(e4.kind == sb::shop_event_kind::outcome);
    CHECK(e4.throttled);
    CHECK_FALSE(e4.confirmed);
    CHECK(e4.text == "Order rejected: slow down");
    event({{"kind", "verification"}, {"which", 0}, {"present", true}, {"text", "a slider"}});
    event({{"kind", "verification"}, {"which", 1}, {"present", true}, {"text", "my captcha"}});
    event({{"kind", "verification"}, {"which", 0}, {"present", false}, {"text", ""}});
    event({{"kind", "verification"}, {"which", 1}, {"present", false}, {"text", ""}});
    sb::shop_event v1 = next();
    CHECK(v1.kind == sb::shop_event_kind::verification);
    CHECK(v1.text == "a slider");
    sb::shop_event v2 = next();  // shown until neither shows
    CHECK(v2.kind == sb::shop_event_kind::verification);
    CHECK(v2.text.empty());

    asio::post(io, [&] { driver.close(); });
    work.reset();
    runner.join();
  }

  TEST_CASE("extension driver: a TCP stream gets TCP_NODELAY") {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    asio::ip::tcp::socket server = acceptor.accept();
    const int fd = client.native_handle();
    int before = -1;
    socklen_t len = sizeof before;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &before, &len) == 0);
    CHECK(before == 0);
    sb::extension_driver<asio::ip::tcp::socket> driver(std::move(client));
    int after = 0;
    len = sizeof after;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &after, &len) == 0);
    CHECK(after != 0);
    driver.close();
  }
}
