// page: navigation, wait_for, on_mutation, click, select_option and fill in a real
// headless Chromium, against pages this test serves on 127.0.0.1.
#include "browser/support.hpp"
#include "shop/shop_server.hpp"
#include "support/net.hpp"

#include <seckill/browser/page.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace integration_page {

using namespace std::chrono_literals;
using browser_support::get;
using seckill::errc;
using json = nlohmann::json;
namespace asio = boost::asio;

const std::map<std::string, std::string>& pages() {
  static const std::map<std::string, std::string> p{
      {"/late", R"PG(<!doctype html><body><p>wait</p><script>
        window.insertLate = () => { const b = document.createElement('button'); b.id = 'late';
                                    b.textContent = 'late'; document.body.appendChild(b); };
        </script></body>)PG"},
      {"/reload", R"PG(<!doctype html><body><script>
        const n = Number(sessionStorage.getItem('n') || '0') + 1; sessionStorage.setItem('n', String(n));
        if (n === 1) setTimeout(() => location.reload(), 200);
        else setTimeout(() => { const d = document.createElement('div'); d.id = 'after-reload';
                                d.textContent = 'second document'; document.body.appendChild(d); }, 200);
        </script></body>)PG"},
      {"/hidden",
       R"PG(<!doctype html><body><div id="h" style="display:none">hidden</div></body>)PG"},
      {"/mutate",
       R"PG(<!doctype html><body><div class="stock-status">Out of stock</div><span id="other">x</span>
        <script>
        window.pageSeen = 0;
        new MutationObserver((records) => { window.pageSeen += records.length; })
          .observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
        window.setStatus = (t) => { document.querySelector('.stock-status').textContent = t; };
        </script></body>)PG"},
      {"/click", R"PG(<!doctype html><body style="margin:0">
        <button id="b" style="position:absolute;left:100px;top:100px;width:120px;height:40px">Go</button>
        <button id="dis" disabled style="position:absolute;left:100px;top:200px;width:120px;height:40px">Off</button>
        <button id="cov" style="position:absolute;left:100px;top:300px;width:120px;height:40px">Covered</button>
        <div id="overlay" style="position:absolute;left:80px;top:280px;width:200px;height:100px;background:rgba(0,0,0,.2)"></div>
        <script>
        window.log = [];
        for (const t of ['mousemove', 'mousedown', 'mouseup', 'click'])
          document.getElementById('b').addEventListener(t, (e) => log.push(t + ':' + e.isTrusted));
        window.clicks = {dis: 0, cov: 0, overlay: 0, downs: 0};
        document.getElementById('dis').addEventListener('click', () => clicks.dis++);
        document.getElementById('cov').addEventListener('click', () => clicks.cov++);
        document.getElementById('overlay').addEventListener('click', () => clicks.overlay++);
        document.addEventListener('mousedown', () => clicks.downs++);
        </script></body>)PG"},
      {"/deep", R"PG(<!doctype html><body style="margin:0">
        <div id="host" style="position:absolute;left:10px;top:10px"></div>
        <iframe id="fr" src="/deep-inner" style="position:absolute;left:60px;top:150px;width:400px;height:220px;border:3px solid #000;padding:7px"></iframe>
        <script>
        const root = document.getElementById('host').attachShadow({mode: 'open'});
        root.innerHTML = '<span class="st">none</span> <button id="sb" style="width:100px;height:30px">in shadow</button>';
        window.shadowClicks = [];
        root.getElementById('sb').addEventListener('click', (e) => shadowClicks.push(e.isTrusted));
        window.setShadow = (t) => { root.querySelector('.st').textContent = t; };
        </script></body>)PG"},
      {"/deep-inner", R"PG(<!doctype html><body style="margin:0"><span class="st">none</span>
        <button id="ib" style="position:absolute;left:30px;top:50px;width:100px;height:30px">in frame</button>
        <input id="iq" style="position:absolute;left:30px;top:120px">
        <script>window.clicks = [];
        document.getElementById('ib').addEventListener('click', (e) => clicks.push(e.isTrusted));
        document.addEventListener('mousedown', (e) => clicks.push('down:' + e.clientX + ',' + e.clientY));
        window.setStatus = (t) => { document.querySelector('.st').textContent = t; };</script></body>)PG"},
      {"/track", R"PG(<!doctype html><body style="margin:0">
        <button id="t" style="position:absolute;left:300px;top:200px;width:120px;height:40px">T</button>
        <script>window.moves = []; window.presses = []; let down = 0;
        document.addEventListener('pointermove', (e) => {
          for (const c of (e.getCoalescedEvents ? e.getCoalescedEvents() : [e])) moves.push([c.clientX, c.clientY]);
        });
        document.getElementById('t').addEventListener('mousedown', (e) => { down = e.timeStamp; });
        document.getElementById('t').addEventListener('mouseup', (e) => presses.push(e.timeStamp - down));
        </script></body>)PG"},
      {"/moving", R"PG(<!doctype html><head><style>
        @keyframes slide { from { left: 40px } to { left: 440px } }
        #mv { position: absolute; top: 100px; width: 120px; height: 40px;
              animation: slide 730ms linear infinite }
        </style></head><body style="margin:0">
        <button id="mv">Moving</button><button id="still" style="position:absolute;left:40px;top:300px">Still</button>
        <script>window.hits = {mv: 0, still: 0, downs: 0};
        document.getElementById('mv').addEventListener('click', () => hits.mv++);
        document.getElementById('still').addEventListener('click', () => hits.still++);
        document.addEventListener('mousedown', () => hits.downs++);
        </script></body>)PG"},
      {"/select", R"PG(<!doctype html><body>
        <select id="s"><option value="a">A</option><option value="b">Bee</option><option value="c" disabled>C</option><option value="d">Dee</option></select>
        <input id="q" type="number" value="1">
        <script>window.changes = []; window.untrusted = 0; window.qlog = [];
        document.getElementById('s').addEventListener('change', (e) => {
          changes.push(e.target.value); if (!e.isTrusted) untrusted++; });
        document.getElementById('s').addEventListener('input', (e) => { if (!e.isTrusted) untrusted++; });
        for (const t of ['input', 'change'])
          document.getElementById('q').addEventListener(t, (e) => {
            qlog.push(t + ':' + e.target.value); if (!e.isTrusted) untrusted++; });
        </script>
        </body>)PG"},
  };
  return p;
}

shop::response serve(const shop::request& r) {
  auto it = pages().find(r.target);
  if (it == pages().end()) return {404, "text/plain", "not found", false};
  return {200, "text/html; charset=utf-8", it->second, false};
}

struct fixture : browser_support::browser_fixture {
  shop::http_server server{serve};
  void go(const std::string& path) {
    auto [ec, r] = get(page.async_navigate(server.url(path), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << " " << r.dump());
  }
  json eval(const std::string& expr) {
    auto [ec, v] = get(page.async_evaluate(expr, asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << " " << v.dump());
    return v;
  }
};

// Records mutation reports from the strand; waits for them from the test thread.
struct recorder {
  std::mutex mutex;
  std::vector<seckill::browser::mutation_record> records;
  void operator()(const seckill::browser::mutation_record& r) {
    std::lock_guard lock(mutex);
    records.push_back(r);
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return records.size();
  }
  bool wait_size(std::size_t n, std::chrono::milliseconds bound = 30s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (size() < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    return size() >= n;
  }
  std::vector<seckill::browser::mutation_record> copy() {
    std::lock_guard lock(mutex);
    return records;
  }
};

// The /click page's log ("type:isTrusted" per event) as the order of event
// types (repeats folded) and whether every event was trusted.
inline std::pair<std::vector<std::string>, bool> mouse_event_order(const json& log) {
  std::vector<std::string> order;
  bool all_trusted = true;
  for (const auto& e : log) {
    const auto s = e.get<std::string>();
    all_trusted = all_trusted && s.substr(s.find(':') + 1) == "true";
    const auto type = s.substr(0, s.find(':'));
    if (order.empty() || order.back() != type) order.push_back(type);
  }
  return {order, all_trusted};
}

}  // namespace integration_page

using namespace integration_page;

TEST_SUITE("integration") {
  TEST_CASE("navigate waits for the load and reports net errors") {
    fixture f;
    f.go("/late");
    CHECK(f.eval("document.readyState") == "complete");
    CHECK(f.eval("location.pathname") == "/late");

    const auto dead = seckill::test::free_loopback_port();
    auto [ec, r] = get(
        f.page.async_navigate("http://127.0.0.1:" + std::to_string(dead) + "/", asio::use_future));
    CHECK(ec == seckill::browser::errc::navigation_failed);
    CHECK(r.value("errorText", "").find("ERR_CONNECTION_REFUSED") != std::string::npos);

    auto [ec2, r2] = get(f.page.async_navigate("not a url at all", asio::use_future));
    CHECK(ec2);

    // A 404 is a page, not a net error.
    auto [ec3, r3] = get(f.page.async_navigate(f.server.url("/missing"), asio::use_future));
    CHECK(!ec3);
    f.go("/late");  // and the page still works afterwards
  }

  TEST_CASE("wait_for finds an element inserted late - and one that appears after a reload") {
    fixture f;
    f.go("/late");
    // The button exists only once the test inserts it: the wait is still
    // pending 300 ms in, and ends with the insertion.
    auto waiting = f.page.async_wait_for("#late", 10s, asio::use_future);
    CHECK(waiting.wait_for(300ms) == std::future_status::timeout);
    f.eval("insertLate(), 'inserted'");
    auto [ec, box] = get(std::move(waiting));
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(box.width > 0);
    CHECK(box.height > 0);

    f.go("/reload");
    auto [ec2, box2] = get(f.page.async_wait_for("#after-reload", 10s, asio::use_future));
    CHECK_MESSAGE(!ec2, ec2.message());
    CHECK(f.eval("sessionStorage.getItem('n')") == "2");  // found in the second document
  }

  TEST_CASE("a call whose document goes away while it runs is run again in the next one") {
    // The document reloads 200 ms after its load; the call's promise settles
    // only after 600 ms, so the reload always lands while it is pending.
    fixture f;
    f.go("/reload");
    const std::string slow =
        "() => new Promise(r => setTimeout(() => r(sessionStorage.getItem('n')), 600))";
    auto [ec, v] = get(f.page.async_call_function_isolated(slow, json::array(), asio::use_future));
    CHECK_MESSAGE(!ec, ec.message() << " " << v.dump());
    CHECK(v == "2");
  }

  TEST_CASE("wait_for times out on time and tells missing from not actionable") {
    fixture f;
    f.go("/hidden");
    for (auto timeout : {300ms, 700ms}) {
      const auto t0 = std::chrono::steady_clock::now();
      auto [ec, box] = get(f.page.async_wait_for("#never", timeout, asio::use_future));
      const auto took = std::chrono::steady_clock::now() - t0;
      CHECK(ec == seckill::browser::errc::element_not_found);
      CHECK(took >= timeout);
      CHECK(took < timeout + 1000ms);  // generous: the machine may be loaded
    }
    auto [ec2, b2] = get(f.page.async_wait_for("#h", 1500ms, asio::use_future));
    CHECK(ec2 == seckill::browser::errc::element_not_actionable);
    auto [ec3, b3] = get(f.page.async_wait_for("##bad[", 300ms, asio::use_future));
    CHECK(ec3 == seckill::browser::errc::javascript_exception);
  }

  TEST_CASE(
      "on_mutation reports once per change - survives a reload and stays invisible to the page") {
    fixture f;
    f.go("/mutate");
    recorder rec;
    auto [ec, sub] =
        get(f.page.async_on_mutation(".stock-status", std::ref(rec), asio::use_future));
    REQUIRE(!ec);
    REQUIRE(rec.wait_size(1));
    f.eval("setStatus('In stock')");
    f.eval("setStatus('In stock')");                                         // same text: no change
    f.eval("document.getElementById('other').setAttribute('data-x', '1')");  // another element
    f.eval("setStatus('Out of stock')");
    REQUIRE(rec.wait_size(3));
    std::this_thread::sleep_for(200ms);
    auto r = rec.copy();
    REQUIRE(r.size() == 3);
    CHECK(r[0].initial);
    CHECK(r[0].text == "Out of stock");
    CHECK_FALSE(r[1].initial);
    CHECK(r[1].text == "In stock");
    CHECK(r[2].text == "Out of stock");

    // The page saw only its own mutations (3 changes + 1 attribute), and no trace of seckill.
    CHECK(f.eval("pageSeen") == 4);
    CHECK(f.eval("Object.getOwnPropertyNames(window).filter(k => /seckill/i.test(k)).length") == 0);
    CHECK(f.eval("typeof window.__seckill_world_report") == "undefined");

    auto [ec2, rl] = get(f.page.async_reload(asio::use_future));
    REQUIRE(!ec2);
    REQUIRE(rec.wait_size(4));
    f.eval("setStatus('In stock')");
    REQUIRE(rec.wait_size(5));
    std::this_thread::sleep_for(200ms);
    r = rec.copy();
    REQUIRE(r.size() == 5);
    CHECK(r[3].initial);
    CHECK(r[3].text == "Out of stock");
    CHECK(r[4].text == "In stock");
    CHECK(f.eval("pageSeen") == 1);

    // After reset no more reports.
    sub.reset();
    std::this_thread::sleep_for(100ms);
    f.eval("setStatus('Gone')");
    std::this_thread::sleep_for(200ms);
    CHECK(rec.size() == 5);
  }

  TEST_CASE("on_markup reports a change of any match - an attribute - a text or their number") {
    fixture f;
    f.go("/select");
    recorder rec;
    auto [ec, sub] = get(f.page.async_on_markup("#s option", std::ref(rec), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message());
    REQUIRE(rec.wait_size(1));
    CHECK(rec.copy()[0].initial);
    CHECK(rec.copy()[0].text.rfind("4:", 0) == 0);  // four options
    f.eval("document.querySelectorAll('#s option')[3].dataset.stock = '5'; true");
    REQUIRE(rec.wait_size(2));
    f.eval("document.querySelectorAll('#s option')[1].textContent = 'Bees'; true");
    REQUIRE(rec.wait_size(3));
    f.eval("document.getElementById('s').add(new Option('E', 'e')); true");
    REQUIRE(rec.wait_size(4));
    f.eval("document.getElementById('q').value = '9'; document.body.dataset.x = 'y'; true");
    std::this_thread::sleep_for(300ms);
    const auto r = rec.copy();
    CHECK(r.size() == 4);  // a change elsewhere is no change of the matches
    CHECK(r[3].text.rfind("5:", 0) == 0);
    CHECK(r[1].text != r[0].text);
    CHECK(r[2].text != r[1].text);
    CHECK_FALSE(r[3].initial);
  }

  TEST_CASE("on_mutation rejects a bad selector") {
    fixture f;
    f.go("/mutate");
    recorder rec;
    auto [ec, sub] = get(f.page.async_on_mutation("..nope", std::ref(rec), asio::use_future));
    CHECK(ec == seckill::browser::errc::javascript_exception);
    CHECK_FALSE(sub.active());
  }

  TEST_CASE(
      "click sends trusted mouse events in order and never clicks a covered or disabled button") {
    fixture f;
    f.go("/click");
    auto ec = get(f.page.async_click("#b", asio::use_future));
    REQUIRE(!ec);
    const json log = f.eval("log");
    const auto [order, all_trusted] = mouse_event_order(log);
    CHECK(all_trusted);
    const std::vector<std::string> expected{"mousemove", "mousedown", "mouseup", "click"};
    CHECK_MESSAGE(order == expected, log.dump());

    seckill::browser::click_options quick;
    quick.timeout = 1500ms;  // long enough to see the element at least once on a loaded machine
    CHECK(get(f.page.async_click("#dis", quick, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_click("#cov", quick, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_click("#absent", quick, asio::use_future)) ==
          seckill::browser::errc::element_not_found);
    CHECK(f.eval("clicks") == json{{"dis", 0}, {"cov", 0}, {"overlay", 0}, {"downs", 1}});
  }

  TEST_CASE("a moving button is never clicked - not even by checks that share their frames") {
    fixture f;
    f.go("/moving");
    const seckill::browser::click_options quick{1, 0ms, 1200ms};
    // A look and a click at once, then a click right after the look: each
    // check samples the button, and the next may reuse a sample a frame old
    // only where the button still is.
    auto look = f.page.async_wait_for("#mv", 1200ms, asio::use_future);
    CHECK(get(f.page.async_click("#mv", quick, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(std::get<0>(get(look)) == seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_click("#mv", quick, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    // A still button beside it: a look, then a click that needs no frame of its own.
    auto [el, box] = get(f.page.async_wait_for("#still", 5s, asio::use_future));
    REQUIRE_MESSAGE(!el, el.message());
    CHECK(!get(f.page.async_click("#still", quick, asio::use_future)));
    CHECK(f.eval("hits") == json{{"mv", 0}, {"still", 1}, {"downs", 1}});
  }

  TEST_CASE("a click without a pause sends its release with the press - and keeps every check") {
    fixture f;
    f.go("/click");
    seckill::browser::click_options instant{1, 0ms, 1500ms};
    REQUIRE(!get(f.page.async_click("#b", instant, asio::use_future)));
    const json log = f.eval("log");
    const auto [order, all_trusted] = mouse_event_order(log);
    CHECK(all_trusted);
    const std::vector<std::string> expected{"mousemove", "mousedown", "mouseup", "click"};
    CHECK_MESSAGE(order == expected, log.dump());
    CHECK(get(f.page.async_click("#dis", instant, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_click("#cov", instant, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(f.eval("clicks") == json{{"dis", 0}, {"cov", 0}, {"overlay", 0}, {"downs", 1}});
    // The button is up again: a second click is a whole new press.
    REQUIRE(!get(f.page.async_click("#b", instant, asio::use_future)));
    CHECK(f.eval("log.filter(e => e === 'click:true').length") == 2);
  }

  TEST_CASE("select_option picks a native option by value or label with trusted keys") {
    fixture f;
    f.go("/select");
    CHECK(!get(f.page.async_select_option("#s", "b", 2s, asio::use_future)));
    CHECK(f.eval("document.getElementById('s').value") == "b");
    CHECK(!get(f.page.async_select_option("#s", "A", 2s, asio::use_future)));  // by label
    CHECK(f.eval("changes") == json::array({"b", "a"}));
    // Past the disabled option (arrow keys skip it), and back.
    CHECK(!get(f.page.async_select_option("#s", "d", 2s, asio::use_future)));
    CHECK(!get(f.page.async_select_option("#s", "Bee", 2s, asio::use_future)));
    CHECK(!get(f.page.async_select_option("#s", "b", 2s, asio::use_future)));  // chosen already
    // Each arrow key is a change, as a person's are: a, b, (c skipped), d.
    CHECK(f.eval("changes") == json::array({"b", "a", "b", "d", "b"}));
    CHECK(f.eval("untrusted") == 0);
    CHECK(get(f.page.async_select_option("#s", "zzz", 2s, asio::use_future)) ==
          seckill::browser::errc::element_not_found);  // no such option
    CHECK(get(f.page.async_select_option("#s", "c", 2s, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_select_option("#nope", "a", 300ms, asio::use_future)) ==
          seckill::browser::errc::element_not_found);
    CHECK(get(f.page.async_select_option("#q", "a", 300ms, asio::use_future)) ==
          seckill::errc::invalid_argument);  // not a select
    CHECK(f.eval("changes") == json::array({"b", "a", "b", "d", "b"}));
  }

  TEST_CASE("selectors reach into open shadow roots and same-origin frames with >>>") {
    fixture f;
    f.go("/deep");
    // A click inside the shadow root, and one inside the frame: the frame's
    // border and padding are added to the box, so the press lands on the button.
    CHECK(!get(f.page.async_click("#host >>> #sb", asio::use_future)));
    CHECK(f.eval("shadowClicks") == json::array({true}));
    CHECK(!get(f.page.async_click("#fr >>> #ib", asio::use_future)));
    const json inner = f.eval("document.getElementById('fr').contentWindow.clicks");
    REQUIRE(inner.size() == 2);
    CHECK(inner[1] == true);  // mousedown inside the button (30..130, 50..80), then the click
    CHECK(!get(f.page.async_fill("#fr >>> #iq", "7", 2s, asio::use_future)));
    CHECK(f.eval("document.getElementById('fr').contentDocument.getElementById('iq').value") ==
          "7");
    CHECK(get(f.page.async_click("#nohost >>> #sb", seckill::browser::click_options{1, 1ms, 300ms},
                                 asio::use_future)) == seckill::browser::errc::element_not_found);

    // Observers see changes inside the shadow root and inside the frame.
    recorder shadow, framed;
    auto [es, s1] =
        get(f.page.async_on_mutation("#host >>> .st", std::ref(shadow), asio::use_future));
    REQUIRE_MESSAGE(!es, es.message());
    auto [ef, s2] =
        get(f.page.async_on_mutation("#fr >>> .st", std::ref(framed), asio::use_future));
    REQUIRE_MESSAGE(!ef, ef.message());
    REQUIRE(shadow.wait_size(1));
    REQUIRE(framed.wait_size(1));
    CHECK(shadow.copy()[0].text == "none");
    CHECK(framed.copy()[0].text == "none");
    f.eval("setShadow('有货'); true");
    f.eval("document.getElementById('fr').contentWindow.setStatus('In stock'); true");
    REQUIRE(shadow.wait_size(2));
    REQUIRE(framed.wait_size(2));
    CHECK(shadow.copy()[1].text == "有货");
    CHECK(framed.copy()[1].text == "In stock");
    recorder bad;
    auto [eb, sb] = get(f.page.async_on_mutation("#fr >>> ", std::ref(bad), asio::use_future));
    CHECK(eb == seckill::browser::errc::javascript_exception);  // an empty part
    CHECK_FALSE(sb.active());
  }

  TEST_CASE("click jitter is drawn from the page's seed - the path strays and the press lands") {
    fixture f;
    auto open = [&](std::uint64_t seed) {
      seckill::browser::page_options po;
      po.input_seed = seed;
      auto [ec, p] =
          get(seckill::browser::page::async_open(f.browser.connection(), po, asio::use_future));
      REQUIRE_MESSAGE(!ec, ec.message());
      auto [en, r] = get(p.async_navigate(f.server.url("/track"), asio::use_future));
      REQUIRE_MESSAGE(!en, en.message());
      return p;
    };
    // Three clicks; the moves of the first (from the corner to the button's
    // centre at (360, 220): four moves, none at the same place) and every
    // press's duration, as the page saw them.
    auto run = [&](seckill::browser::page& p, seckill::browser::click_options o) {
      for (int i = 0; i < 3; ++i) CHECK(!get(p.async_click("#t", o, asio::use_future)));
      auto [e1, moves] = get(p.async_evaluate("moves.slice(0, 4)", asio::use_future));
      auto [e2, presses] = get(p.async_evaluate("presses", asio::use_future));
      REQUIRE_FALSE(e1);
      REQUIRE_FALSE(e2);
      return std::make_pair(moves, presses);
    };
    const seckill::browser::click_options jittery{4, 20ms, 5s, 60ms, 30.0};
    auto a = open(7), b = open(7), c = open(8), plain = open(7);
    const auto [moves_a, presses_a] = run(a, jittery);
    const auto [moves_b, presses_b] = run(b, jittery);
    const auto [moves_c, presses_c] = run(c, jittery);
    const auto [moves_p, presses_p] = run(plain, seckill::browser::click_options{4, 20ms, 5s});
    REQUIRE(moves_a.size() == 4);
    CHECK(moves_a == moves_b);  // the same seed: the same path
    CHECK(moves_a != moves_c);  // another seed: another path
    // Without jitter the moves are on the straight line; with it they stray,
    // but the last one is on the centre.
    auto strays = [](const json& moves) {
      int n = 0;
      for (std::size_t i = 0; i < moves.size(); ++i) {
        const double k = static_cast<double>(i + 1) / 4;
        const double dx = moves[i][0].get<double>() - 360 * k,
                     dy = moves[i][1].get<double>() - 220 * k;
        if (i == 3) {
          CHECK(std::abs(dx) < 0.5);
          CHECK(std::abs(dy) < 0.5);
        }
        if (std::abs(dx) > 0.5 || std::abs(dy) > 0.5) ++n;
      }
      return n;
    };
    REQUIRE(moves_p.size() == 4);
    CHECK(strays(moves_p) == 0);
    CHECK(strays(moves_a) > 0);
    CHECK(strays(moves_c) > 0);
    for (const auto& presses : {presses_a, presses_c, presses_p}) {
      REQUIRE(presses.size() == 3);  // every press landed on the button
      for (const auto& d : presses) {
        CHECK(d.get<double>() >= 19.0);
        CHECK(d.get<double>() < 80.0 + 2000.0);  // bounded; generous: the machine may be loaded
      }
    }
  }

  TEST_CASE("fill types with trusted keys - and a page that refuses the text is an error") {
    fixture f;
    f.go("/select");
    CHECK(!get(f.page.async_fill("#q", "12", 2s, asio::use_future)));
    CHECK(f.eval("document.getElementById('q').value") == "12");
    CHECK(!get(f.page.async_fill("#q", "3", 2s, asio::use_future)));  // the old text replaced
    CHECK(f.eval("document.getElementById('q').value") == "3");
    const json log = f.eval("qlog");
    CHECK(log.back() == "change:3");
    CHECK(std::find(log.begin(), log.end(), json("change:12")) != log.end());
    CHECK(f.eval("untrusted") == 0);
    // The text it already holds: no key, so no event.
    CHECK(!get(f.page.async_fill("#q", "3", 2s, asio::use_future)));
    CHECK(f.eval("qlog") == log);
    // A number input takes no letters: the value read back differs.
    CHECK(get(f.page.async_fill("#q", "abc", 2s, asio::use_future)) ==
          seckill::browser::errc::element_not_actionable);
    CHECK(get(f.page.async_fill("#s", "x", 300ms, asio::use_future)) ==
          seckill::errc::invalid_argument);  // a select is no text input
  }

  TEST_CASE(
      "selectors and values are data - quotes and backslashes and script tags and U+2028 are "
      "matched literally") {
    fixture f;
    f.go("/select");
    // Everything that once could end a string literal or a script, or that
    // JSON leaves raw (U+2028): it must arrive as data, never as code.
    const std::string odd =
        "a'b\"c\\d</script><script>window.__pwned=1</script>\u2028e\u2029`${window.__pwned=1}`"
        "');window.__pwned=1;('\")//";
    const std::string make = R"js((v) => {
      const b = document.createElement('button');
      b.setAttribute('data-k', v);
      b.textContent = v;
      const s = document.createElement('select');
      s.setAttribute('data-k', v);
      s.add(new Option('first', 'first'));
      s.add(new Option('odd', v));
      const i = document.createElement('input');
      i.setAttribute('data-k', v);
      document.body.append(b, s, i);
      return v;
    })js";
    auto [ec, echoed] = get(f.page.async_call_function(make, json::array({odd}), asio::use_future));
    REQUIRE_MESSAGE(!ec, ec.message() << " " << echoed.dump());
    CHECK(echoed == odd);  // the value round-trips unchanged

    // A CSS string holding `odd`: only \ and " need escaping there.
    std::string css;
    for (char c : odd) {
      if (c == '\\' || c == '"') css.push_back('\\');
      css.push_back(c);
    }
    const std::string attr = "[data-k=\"" + css + "\"]";

    auto [ew, box] = get(f.page.async_wait_for("button" + attr, 5s, asio::use_future));
    CHECK_MESSAGE(!ew, ew.message());
    CHECK(box.width > 0);

    recorder rec;
    auto [em, sub] =
        get(f.page.async_on_mutation("button" + attr, std::ref(rec), asio::use_future));
    REQUIRE_MESSAGE(!em, em.message());
    REQUIRE(rec.wait_size(1));
    CHECK(rec.copy()[0].present);
    CHECK(rec.copy()[0].text == odd);

    CHECK(!get(f.page.async_select_option("select" + attr, odd, 2s, asio::use_future)));
    CHECK(!get(f.page.async_fill("input" + attr, odd, 2s, asio::use_future)));
    CHECK(!get(f.page.async_click("button" + attr, asio::use_future)));
    const std::string read = "(sel) => document.querySelector(sel).value";
    auto [es, selected] =
        get(f.page.async_call_function(read, json::array({"select" + attr}), asio::use_future));
    CHECK_FALSE(es);
    CHECK(selected == odd);
    auto [ef, filled] = get(
        f.page.async_call_function_isolated(read, json::array({"input" + attr}), asio::use_future));
    CHECK_FALSE(ef);
    CHECK(filled == odd);

    // No value was ever run as code, in either world.
    CHECK(f.eval("typeof window.__pwned") == "undefined");
    auto [ei, isolated] =
        get(f.page.async_evaluate_isolated("typeof window.__pwned", asio::use_future));
    CHECK_FALSE(ei);
    CHECK(isolated == "undefined");

    // Arguments must be an array.
    auto [ea, va] =
        get(f.page.async_call_function(read, json{{"not", "an array"}}, asio::use_future));
    CHECK(ea == errc::invalid_argument);
  }
}
