#pragma once
/// @file
/// @brief The records `etcd_store` keeps in etcd (a SKU's stock, an order, with
///        the buyer it was reserved for)
///        as JSON, its key encoding, and `keyed_lock`, the FIFO async lock per
///        SKU that queues one store's own operations on a SKU.

#include <seckill/etcd/client.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace seckill::etcd::detail {

inline std::string encode_sku(std::string_view sku) {
  std::string out;
  out.reserve(sku.size());
  for (char c : sku) {
    if (c == '/' || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string padded(std::int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020" PRId64, v);
  return buf;
}

using ::seckill::order_state;

/// The state's name, as the order records store it ("rolled_back").
constexpr std::string_view to_string(order_state s) noexcept {
  switch (s) {
    case order_state::held:
      return "held";
    case order_state::committed:
      return "committed";
    case order_state::rolled_back:
      return "rolled_back";
    case order_state::refused:
      return "refused";
  }
  return "unknown";
}

struct stock_record {
  stock_level level;
  std::int64_t mod_revision = 0;  // 0: absent
};

struct order_record {
  std::int64_t qty = 0;
  order_state state = order_state::held;
  std::int64_t expires_ms = 0;
  std::int64_t remaining = 0;  // the answer given to the reserve
  bool limited = false;        // refused by the per-user limit (else sold out)
  std::string user;            // empty: none
  std::string request_id;      // empty: none
  std::int64_t mod_revision = 0;
};

inline std::string encode_stock(const stock_level& l) {
  json j = {{"remaining", l.remaining}, {"reserved", l.reserved}, {"committed", l.committed}};
  return j.dump();
}

inline bool decode_stock(const std::string& text, stock_level& l, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  auto num = [&](const char* name, std::int64_t& out) {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<std::int64_t>();
    return true;
  };
  if (j.is_discarded() || !j.is_object() || !num("remaining", l.remaining) ||
      !num("reserved", l.reserved) || !num("committed", l.committed)) {
    message = "etcd_store: a stock record does not parse: '" + text.substr(0, 80) + "'";
    return false;
  }
  return true;
}

inline std::string encode_order(const order_record& o) {
  json j = {{"qty", o.qty},
            {"state", std::string(to_string(o.state))},
            {"expires", o.expires_ms},
            {"remaining", o.remaining}};
  if (o.limited) j["refused"] = "limited";
  if (!o.user.empty()) j["user"] = o.user;
  if (!o.request_id.empty()) j["request"] = o.request_id;
  return j.dump();
}

inline bool decode_order(const std::string& text, order_record& o, std::string& message) {
  const json j = json::parse(text, nullptr, false);
  bool ok = !j.is_discarded() && j.is_object();
  auto num = [&](const char* name, std::int64_t& out) {
    const auto it = ok ? j.find(name) : j.end();
    if (!ok || it == j.end() || !it->is_number_integer()) return ok = false;
    out = it->get<std::int64_t>();
    return true;
  };
  num("qty", o.qty);
  num("expires", o.expires_ms);
  num("remaining", o.remaining);
  if (ok) {
    const auto s = j.find("state");
    ok = s != j.end() && s->is_string();
    if (ok) {
      const auto& name = s->get_ref<const std::string&>();
      if (name == "held")
        o.state = order_state::held;
      else if (name == "committed")
        o.state = order_state::committed;
      else if (name == "rolled_back")
        o.state = order_state::rolled_back;
      else if (name == "refused")
        o.state = order_state::refused;
      else
        ok = false;
    }
  }
  auto key = [&](const char* name, std::string& out) {
    const auto it = ok ? j.find(name) : j.end();
    if (it == j.end()) return;
    ok = it->is_string() && valid_buyer_key(it->get_ref<const std::string&>());
    if (ok) out = it->get<std::string>();
  };
  key("user", o.user);
  key("request", o.request_id);
  if (ok) {
    const auto r = j.find("refused");
    o.limited = r != j.end() && r->is_string() && r->get_ref<const std::string&>() == "limited";
  }
  if (!ok) message = "etcd_store: an order record does not parse: '" + text.substr(0, 80) + "'";
  return ok;
}

/// A FIFO async lock per key: this store's own operations on one SKU run one
/// after the other instead of failing each other's compares.
class keyed_lock {
 public:
  struct waiter {
    explicit waiter(const boost::asio::any_io_executor& ex) : timer(ex) {
      timer.expires_at(std::chrono::steady_clock::time_point::max());
    }
    boost::asio::steady_timer timer;
    bool granted = false;
  };

  boost::asio::awaitable<bool> acquire(boost::asio::any_io_executor ex, std::string key) {
    auto& e = entries_[key];
    if (!e.held) {
      e.held = true;
      co_return true;
    }
    auto w = std::make_shared<waiter>(ex);
    e.waiters.push_back(w);
    co_await w->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (w->granted) co_return true;
    auto& again = entries_[key];
    for (auto it = again.waiters.begin(); it != again.waiters.end(); ++it) {
      if (*it == w) {
        again.waiters.erase(it);
        break;
      }
    }
    co_return false;
  }

  void release(const std::string& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) return;
    auto& e = it->second;
    if (e.waiters.empty()) {
      entries_.erase(it);
      return;
    }
    auto w = e.waiters.front();
    e.waiters.pop_front();
    w->granted = true;
    w->timer.cancel();
  }

 private:
  struct entry {
    bool held = false;
    std::deque<std::shared_ptr<waiter>> waiters;
  };
  std::map<std::string, entry> entries_;
};

}  // namespace seckill::etcd::detail
