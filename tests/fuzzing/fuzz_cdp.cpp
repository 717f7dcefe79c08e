// libFuzzer target for the DevTools client's frame parsing and routing
// (seckill/browser/cdp.hpp) and the decoders the page and the grabber apply to
// what it routes (seckill/browser/page.hpp, grabber.hpp).
//
// The input is a run of WebSocket text frames separated by NUL bytes (JSON
// holds no raw NUL). Each frame is classified by cdp::parse_message, routed
// the way cdp::connection routes it (a reply completes its pending call and
// is forgotten; an event goes to its (sessionId, method) handlers), and the
// routed values are fed to the page's and the grabber's decoders. Nothing may
// throw or crash, and:
// - classification is deterministic and every failure says why;
// - a reply completes a pending call exactly once, with {} and an object,
//   errc::cdp_error and {code, message}, or errc::protocol_error and
//   {"message": why}; a well-formed reply or event written back reads the same;
// - the grabber's strategy never orders more than is in stock or asked for,
//   nor above its price cap.
#include <seckill/browser/cdp.hpp>
#include <seckill/browser/grabber.hpp>
#include <seckill/browser/page.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace {

namespace cdp = seckill::browser::cdp;
namespace sb = seckill::browser;
using seckill::errc;
using json = nlohmann::json;

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const cdp::message& a, const cdp::message& b) {
  return a.what == b.what && a.id == b.id && a.ec == b.ec && a.value == b.value &&
         a.method == b.method && a.session_id == b.session_id && a.error == b.error;
}

void check_message(const cdp::message& m) {
  switch (m.what) {
    case cdp::message::kind::invalid:
      check(m.ec == errc::protocol_error && !m.error.empty() && m.id == 0 && m.method.empty());
      break;
    case cdp::message::kind::reply:
      check(m.id != 0 && m.method.empty());
      if (!m.ec) {
        check(m.error.empty() && m.value.is_object());
      } else if (m.ec == seckill::browser::errc::cdp_error) {
        check(m.error.empty() && m.value.is_object() && m.value.contains("code") &&
              m.value["code"].is_number_integer() && m.value.contains("message") &&
              m.value["message"].is_string());
      } else {
        check(m.ec == errc::protocol_error && !m.error.empty() &&
              m.value == json{{"message", m.error}});
      }
      break;
    case cdp::message::kind::event:
      check(!m.ec && m.error.empty() && m.id == 0 && !m.method.empty() && m.value.is_object());
      break;
  }
}

// A well-formed reply or event, written as Chrome would, reads back the same.
void check_round_trip(const cdp::message& m) {
  json frame;
  if (m.what == cdp::message::kind::reply && m.error.empty()) {
    frame = {{"id", m.id}, {m.ec ? "error" : "result", m.value}};
  } else if (m.what == cdp::message::kind::event) {
    frame = {{"method", m.method}, {"params", m.value}};
  } else {
    return;
  }
  if (!m.session_id.empty()) frame["sessionId"] = m.session_id;
  const cdp::message again = cdp::parse_message(frame.dump());
  check(same(m, again));
}

// What the grabber does with a snapshot: the strategy's choice is in stock,
// within the cap and no more than asked or available.
void check_strategy(const json& value) {
  const sb::shop_snapshot snap = sb::detail::to_snapshot(value);
  sb::strategy_config cfg;
  cfg.want = {{sb::wanted_item::kind::sku, "veg-box"}, {sb::wanted_item::kind::category, "fruit"}};
  cfg.max_price = 20;
  cfg.quantity = 3;
  const sb::priority_strategy strategy(cfg);
  if (const auto intent = strategy.decide(snap)) {
    check(intent->quantity >= 1 && intent->quantity <= cfg.quantity);
    check(intent->price <= *cfg.max_price);
    bool found = false;
    for (const auto& o : snap.offers) {
      if (o.sku == intent->sku && o.price == intent->price && o.stock >= intent->quantity)
        found = true;
    }
    check(found);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::map<std::uint64_t, int> pending{{1, 0}, {2, 0}, {3, 0}, {7, 0}};  // the calls still waiting
  while (true) {
    const auto nul = rest.find('\0');
    const std::string_view frame = rest.substr(0, nul);

    const cdp::message m = cdp::parse_message(frame);
    check_message(m);
    check(same(m, cdp::parse_message(frame)));
    check_round_trip(m);

    if (m.what == cdp::message::kind::reply) {
      // cdp::connection::finish: complete the pending call, then forget it (a
      // repeated id finds nothing); what it completes with must decode cleanly.
      if (auto it = pending.find(m.id); it != pending.end()) {
        pending.erase(it);
        auto [ec, value] = sb::detail::evaluation_result(m.ec ? json() : m.value);
        if (!m.ec) {
          check(!ec || ec == seckill::browser::errc::javascript_exception ||
                ec == errc::protocol_error);
          if (ec == seckill::browser::errc::javascript_exception) check(value.is_object());
          if (ec == errc::protocol_error) check(value.contains("message"));
          if (!ec) check_strategy(value);
        }
      }
    } else if (m.what == cdp::message::kind::event) {
      if (auto report = sb::detail::binding_report(m.value, "__seckill_world_report"))
        check(report->first != 0);
      check(sb::detail::created_context(m.value, "__seckill_world", "F00D") >= 0);
      (void)sb::detail::int_member(m.value, "executionContextId", -1);
      (void)sb::detail::string_member(m.value, "loaderId");
      check_strategy(m.value);
    }
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }
  return 0;
}
