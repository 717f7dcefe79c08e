// Webhooks: parse_webhook's presets and its refusals (never showing a
// secret), the requests render_webhook makes (placeholders URL-encoded in
// the URL, JSON-escaped in a JSON body, the screenshot where the channel
// takes one), redact_webhook, notify_on, and the strategy file's keys.
#include <seckill/browser/strategy.hpp>
#include <seckill/browser/webhook.hpp>

#include "support/error_message.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

namespace unit_notify {

namespace sb = seckill::browser;
using seckill::test::message_of;

sb::notice sample() {
  sb::notice n;
  n.kind = sb::notice_kind::ordered;
  n.sku = "veg-box";
  n.quantity = 2;
  n.text = "Order confirmed #7: 2 x \"veg-box\" & more/蔬菜";
  n.tab = "1";
  n.at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796400000123));
  return n;
}

// The secrets the URLs below carry: none may show in a message.
const std::vector<std::string> secrets = {"s3cretpw", "tok-9f8e7d", "123456:AAE-xyzSECRET",
                                          "barkDEVICEkey42"};

void check_no_secret(const std::string& text) {
  for (const auto& s : secrets) CHECK_MESSAGE(text.find(s) == std::string::npos, text);
}

}  // namespace unit_notify

using namespace unit_notify;

TEST_SUITE("unit") {
  TEST_CASE("parse_webhook: a plain URL posts JSON - presets pick their channel") {
    CHECK(sb::parse_webhook("https://hooks.example/x").type == sb::webhook::kind::json);
    CHECK(sb::parse_webhook("json:http://127.0.0.1:8080/x").type == sb::webhook::kind::json);
    CHECK(sb::parse_webhook("get:https://h/x?e={event}").type == sb::webhook::kind::get);
    CHECK(sb::parse_webhook("ntfy:https://ntfy.sh/topic").type == sb::webhook::kind::ntfy);
    CHECK(sb::parse_webhook("bark:https://api.day.app/barkDEVICEkey42").type ==
          sb::webhook::kind::bark);
    CHECK(sb::parse_webhook("serverchan:https://sctapi.ftqq.com/SCT1.send").type ==
          sb::webhook::kind::serverchan);
    const auto t =
        sb::parse_webhook("telegram:https://api.telegram.org/bot123456:AAE-xyzSECRET?chat_id=42");
    CHECK(t.type == sb::webhook::kind::telegram);
    CHECK(t.url == "https://api.telegram.org/bot123456:AAE-xyzSECRET?chat_id=42");
    const auto b = sb::parse_webhook("https://h/x", R"({{"msg": "{title}"}})");
    CHECK(b.type == sb::webhook::kind::body);
    CHECK(b.json_body);
    CHECK_FALSE(sb::parse_webhook("https://h/x", "{event}: {text}").json_body);
  }

  TEST_CASE(
      "parse_webhook: bad templates and URLs are refused - naming the fault - never a secret") {
    const auto refused = [](const std::string& spec, const std::string& body = {}) {
      const std::string m = message_of([&] { (void)sb::parse_webhook(spec, body); });
      check_no_secret(m);
      return m;
    };
    CHECK(refused("https://u:s3cretpw@h/x?token=tok-9f8e7d&e={evnt}")
              .find("unknown placeholder {evnt} at column") != std::string::npos);
    CHECK(refused("https://h/x?token=tok-9f8e7d&e={event").find("unbalanced '{'") !=
          std::string::npos);
    CHECK(refused("https://h/x?token=tok-9f8e7d&e=event}").find("unbalanced '}'") !=
          std::string::npos);
    CHECK(refused("https://h/x", R"({"text": "{text}"})").find("the body has an unbalanced") !=
          std::string::npos);
    CHECK(
        refused("https://h/x", "{sku} {nope}").find("the body has an unknown placeholder {nope}") !=
        std::string::npos);
    CHECK(refused("ftp://u:s3cretpw@h/x").find("scheme 'ftp'") != std::string::npos);
    CHECK(refused("h/tok-9f8e7d").find("no absolute URL") != std::string::npos);
    CHECK(refused("https:///tok-9f8e7d").find("no host") != std::string::npos);
    CHECK(refused("https://{sku}.example/x").find("placeholder or a space in its host") !=
          std::string::npos);
    CHECK(refused("https://h:99999/x").find("port") != std::string::npos);
    CHECK(refused("https://h/a b").find("space") != std::string::npos);
    CHECK(refused("pushy:https://h/x").find("unknown preset 'pushy'") != std::string::npos);
    CHECK(refused("telegram:https://api.telegram.org/bot123456:AAE-xyzSECRET").find("chat_id") !=
          std::string::npos);
    CHECK(refused("telegram:https://api.telegram.org/x?chat_id=1").find("/bot<TOKEN>") !=
          std::string::npos);
    CHECK(refused("bark:https://api.day.app/barkDEVICEkey42?x=1").find("no query") !=
          std::string::npos);
    CHECK(refused("ntfy:https://ntfy.sh/t", "{text}").find("plain URL") != std::string::npos);
    CHECK(refused("https://h/x").find("no exception") != std::string::npos);  // (a good one)
  }

  TEST_CASE("redact_webhook: only the scheme - host and port show") {
    CHECK(sb::redact_webhook("https://u:s3cretpw@hooks.example/x?token=tok-9f8e7d") ==
          "https://hooks.example/…");
    CHECK(sb::redact_webhook("https://api.telegram.org/bot123456:AAE-xyzSECRET?chat_id=1") ==
          "https://api.telegram.org/…");
    CHECK(sb::redact_webhook("http://127.0.0.1:8080") == "http://127.0.0.1:8080");
    CHECK(sb::redact_webhook("http://[::1]:81/x") == "http://[::1]:81/…");
    CHECK(sb::redact_webhook("nonsense s3cretpw") == "(not an http URL)");
  }

  TEST_CASE("render_webhook: placeholders are URL-encoded in the URL - JSON-escaped in a body") {
    const sb::notice n = sample();
    const auto get = sb::render_webhook(
        sb::parse_webhook("get:https://h/p/{sku}?e={event}&t={text}&q={quantity}"), n);
    CHECK(get.method == "GET");
    CHECK(get.url ==
          "https://h/p/veg-box?e=ordered&t=Order%20confirmed%20%237%3A%202%20x%20%22veg-box%22%20%"
          "26%20more%2F%E8%94%AC%E8%8F%9C&q=2");
    CHECK(get.body.empty());
    const auto body = sb::render_webhook(
        sb::parse_webhook("https://h/x", R"({{"e": "{event}", "t": "{text}", "at": "{time}"}})"),
        n);
    CHECK(body.method == "POST");
    CHECK(body.content_type == "application/json");
    CHECK(
        body.body ==
        R"({"e": "ordered", "t": "Order confirmed #7: 2 x \"veg-box\" & more/蔬菜", "at": "2026-12-04T16:00:00.123Z"})");
    const auto text = sb::render_webhook(sb::parse_webhook("https://h/x", "{title} {{ok}}"), n);
    CHECK(text.content_type == "text/plain; charset=utf-8");
    CHECK(text.body == "seckill: ordered 2 x veg-box (tab 1) {ok}");
  }

  TEST_CASE("render_webhook: the JSON preset has every field - multipart with a screenshot") {
    sb::notice n = sample();
    const auto w = sb::parse_webhook("https://h/hook");
    const auto plain = sb::render_webhook(w, n);
    CHECK(plain.content_type == "application/json");
    CHECK(plain.body.find(R"("event":"ordered")") != std::string::npos);
    CHECK(plain.body.find(R"("sku":"veg-box")") != std::string::npos);
    CHECK(plain.body.find(R"("quantity":2)") != std::string::npos);
    CHECK(plain.body.find(R"("text":"Order confirmed #7: 2 x \"veg-box\" & more/蔬菜")") !=
          std::string::npos);
    CHECK_FALSE(plain.attached);
    n.screenshot = "/tmp/shots/a.png";
    const std::string png("\x89PNG\r\n\x1a\n\0\0binary", 18);
    const auto with = sb::render_webhook(w, n, png);
    CHECK(with.attached);
    REQUIRE(with.content_type.rfind("multipart/form-data; boundary=", 0) == 0);
    const std::string boundary = with.content_type.substr(30);
    CHECK(with.body.find("--" + boundary +
                         "\r\nContent-Disposition: form-data; name=\"payload\"") == 0);
    CHECK(with.body.find(
              "name=\"screenshot\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" + png +
              "\r\n--" + boundary + "--\r\n") != std::string::npos);
  }

  TEST_CASE("render_webhook: ntfy - Bark - ServerChan and Telegram requests") {
    sb::notice n = sample();
    n.text = "done";
    const auto ntfy = sb::render_webhook(sb::parse_webhook("ntfy:https://ntfy.sh/t"), n);
    CHECK(ntfy.method == "POST");
    CHECK(ntfy.url ==
          "https://ntfy.sh/t?title=seckill%3A%20ordered%202%20x%20veg-box%20%28tab%201%29");
    CHECK(ntfy.body == "done");
    n.screenshot = "/x/s.png";
    const auto put = sb::render_webhook(sb::parse_webhook("ntfy:https://ntfy.sh/t"), n, "PNG");
    CHECK(put.method == "PUT");
    CHECK(put.body == "PNG");
    CHECK(put.url.find("&filename=s.png&message=done") != std::string::npos);
    const auto bark = sb::render_webhook(
        sb::parse_webhook("bark:https://api.day.app/barkDEVICEkey42/"), n, "PNG");
    CHECK(bark.method == "GET");
    CHECK(bark.url ==
          "https://api.day.app/barkDEVICEkey42/seckill%3A%20ordered%202%20x%20veg-box%20%28tab%201%"
          "29/done%0Ascreenshot%3A%20%2Fx%2Fs.png");
    CHECK_FALSE(bark.attached);
    const auto sc = sb::render_webhook(sb::parse_webhook("serverchan:https://s/SCT1.send"), n);
    CHECK(sc.content_type == "application/x-www-form-urlencoded");
    CHECK(sc.body.find("&desp=done%0Ascreenshot%3A%20%2Fx%2Fs.png") != std::string::npos);
    const auto tg = sb::parse_webhook("telegram:https://api.telegram.org/bot1:AB?chat_id=42");
    n.screenshot.clear();
    const auto msg = sb::render_webhook(tg, n);
    CHECK(msg.url == "https://api.telegram.org/bot1:AB/sendMessage");
    CHECK(msg.body == R"({"chat_id":"42","text":"seckill: ordered 2 x veg-box (tab 1)\ndone"})");
    n.screenshot = "/x/s.png";
    const auto photo = sb::render_webhook(tg, n, "PNG");
    CHECK(photo.url == "https://api.telegram.org/bot1:AB/sendPhoto");
    CHECK(photo.attached);
    CHECK(photo.body.find("name=\"photo\"; filename=\"s.png\"") != std::string::npos);
    CHECK(photo.body.find("name=\"chat_id\"\r\n\r\n42\r\n") != std::string::npos);
  }

  TEST_CASE("notify_on: the kinds listed - all by default - an unknown one refused") {
    const auto f = sb::parse_notice_filter("ordered, hand_off");
    CHECK(f.has(sb::notice_kind::ordered));
    CHECK(f.has(sb::notice_kind::hand_off));
    CHECK_FALSE(f.has(sb::notice_kind::failed));
    CHECK_FALSE(f.has(sb::notice_kind::sold_out));
    CHECK(sb::parse_notice_filter("sold-out").has(sb::notice_kind::sold_out));
    CHECK(sb::notice_filter{}.has(sb::notice_kind::failed));
    CHECK(message_of([] {
            (void)sb::parse_notice_filter("ordered, oops");
          }).find("unknown event 'oops'") != std::string::npos);
  }

  TEST_CASE("strategy file: notify - notify_body and notify_on - with the line at fault") {
    const auto cfg = sb::parse_strategy(
        "want = sku:veg-box\n"
        "notify = https://h/x\n"
        "notify_body = {{\"m\": \"{title}\"}}\n"
        "notify_on = ordered, failed\n");
    REQUIRE(cfg.notify);
    CHECK(cfg.notify->type == sb::webhook::kind::body);
    CHECK(cfg.notify_on.has(sb::notice_kind::ordered));
    CHECK_FALSE(cfg.notify_on.has(sb::notice_kind::sold_out));
    CHECK_FALSE(sb::parse_strategy("want = sku:a\n").notify);
    const std::string bad = message_of([] {
      (void)sb::parse_strategy("want = sku:a\n\nnotify = https://u:s3cretpw@h/x?e={what}\n");
    });
    CHECK(bad.find("strategy line 3: notify: the URL has an unknown placeholder {what}") !=
          std::string::npos);
    check_no_secret(bad);
    CHECK(message_of([] {
            (void)sb::parse_strategy("want = sku:a\nnotify_body = {text}\n");
          }).find("strategy line 2: notify_body needs notify") != std::string::npos);
    CHECK(message_of([] {
            (void)sb::parse_strategy("want = sku:a\nnotify_on = never\n");
          }).find("strategy line 2: notify_on: unknown event 'never'") != std::string::npos);
  }
}
