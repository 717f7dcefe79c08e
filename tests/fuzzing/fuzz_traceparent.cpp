// libFuzzer target: parse_traceparent on arbitrary bytes. A value it accepts
// must satisfy the W3C rules checked independently here, and format back to
// text that parses to the same context.
#include <seckill/obs/trace.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  seckill::obs::traceparent_fault fault{};
  const auto ctx = seckill::obs::parse_traceparent(input, fault);
  if (ctx.has_value() != (fault == seckill::obs::traceparent_fault::none)) std::abort();
  if (!ctx) return 0;
  // Accepted: 55 characters at least, lowercase hex fields, dashes, no ff, non-zero ids.
  if (input.size() < 55 || (input.substr(0, 2) == "00" && input.size() != 55)) std::abort();
  for (std::size_t i = 0; i < 55; ++i) {
    const bool dash = i == 2 || i == 35 || i == 52;
    if (dash ? input[i] != '-' : !lower_hex(input[i])) std::abort();
  }
  if (input.size() > 55 && input[55] != '-') std::abort();
  if (input.substr(0, 2) == "ff" || !ctx->valid()) std::abort();
  const auto text = seckill::obs::format_traceparent(*ctx);
  const auto again = seckill::obs::parse_traceparent(text);
  if (!again || again->trace != ctx->trace || again->span != ctx->span ||
      again->flags != ctx->flags)
    std::abort();
  if (input.substr(0, 2) == "00" && text != input) std::abort();
  return 0;
}
