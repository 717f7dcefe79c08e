// libFuzzer target: seckill_server's decoding of what a client sends (a
// purchase body, an admin stock body, an order id) and of its own command
// line (flags, the listen address, http URLs). Nothing may crash; what is
// accepted must be within the documented ranges, and a refusal must say why.
#include "seckill_server/api.hpp"
#include "seckill_server/options.hpp"
#include "seckill_server/payment.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  seckill_server::purchase_input p;
  const auto why = seckill_server::decode_purchase(input, p);
  if (why.empty()) {
    if (!seckill_server::valid_name(p.sku) || !seckill_server::valid_name(p.user)) std::abort();
    if (!p.request_id.empty() && !seckill_server::valid_name(p.request_id)) std::abort();
    if (p.quantity < 1 || p.quantity > seckill_server::max_purchase_quantity) std::abort();
  }

  seckill_server::stock_input s;
  if (seckill_server::decode_stock(input, s).empty()) {
    if (s.stock < 0 || s.stock > seckill::max_units) std::abort();
    if (s.per_user && (*s.per_user < 0 || *s.per_user > seckill::max_units)) std::abort();
  }

  if (const auto id = seckill_server::parse_order_id(input); id && *id <= 0) std::abort();
  (void)seckill_server::route_of(input);

  seckill_server::listen_address listen;
  if (seckill_server::parse_listen(input, listen).empty() && listen.host.empty()) std::abort();
  seckill_server::http_url url;
  if (seckill_server::parse_http_url(input, url).empty() && (url.host.empty() || url.port.empty()))
    std::abort();

  // The input as a command line: split at NUL bytes.
  std::vector<std::string> args{"seckill_server"};
  std::string current;
  for (const char c : input) {
    if (c == '\0') {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  args.push_back(current);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const auto parsed = seckill_server::parse_options(static_cast<int>(argv.size()), argv.data());
  if (const auto* e = std::get_if<seckill_server::usage_error>(&parsed); e && e->message.empty())
    std::abort();
  if (const auto* o = std::get_if<seckill_server::options>(&parsed)) {
    if (o->threads < 1 || o->threads > 64 || o->hold <= o->deadline) std::abort();
  }
  return 0;
}
