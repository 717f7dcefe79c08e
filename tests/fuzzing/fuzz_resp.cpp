// libFuzzer target for the RESP parser (seckill/redis/resp.hpp).
//
// The input is a reply stream as a server would send it. The parser reads
// it whole, then again split at a point chosen by the first byte (the same
// values must come out), with small limits so that every bound is reached.
// Each complete value is encoded again and must parse back to itself.
#include <seckill/redis/resp.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using seckill::redis::parser;
using seckill::redis::parser_limits;
using seckill::redis::value;

struct outcome {
  std::vector<value> values;
  std::error_code ec;
};

outcome parse_stream(std::string_view data, std::size_t split, const parser_limits& limits) {
  outcome out;
  parser p(limits);
  const std::string_view parts[2] = {data.substr(0, split), data.substr(split)};
  for (std::string_view part : parts) {
    while (!part.empty()) {
      const std::size_t used = p.consume(part, out.ec);
      if (out.ec) {
        if (p.error_message().empty()) std::abort();  // every failure says why
        return out;
      }
      if (used > part.size()) std::abort();
      part.remove_prefix(used);
      if (p.done())
        out.values.push_back(p.take());
      else if (used == 0)
        std::abort();  // no progress without a value or an error
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  parser_limits limits;
  limits.max_depth = 8;
  limits.max_bulk_length = 4096;
  limits.max_aggregate_size = 1024;
  limits.max_reply_bytes = 1 << 16;
  limits.max_line_length = 512;
  limits.max_reply_elements = 2048;

  const outcome whole = parse_stream(data, data.size(), limits);
  const std::size_t split = size == 0 ? 0 : bytes[0] % (size + 1);
  const outcome parts = parse_stream(data, split, limits);
  if (whole.ec != parts.ec || whole.values != parts.values) std::abort();

  for (const value& v : whole.values) {
    std::string encoded;
    seckill::redis::encode(v, encoded);
    std::error_code ec;
    parser_limits roomy;  // a re-encoding may be longer (a verbatim's prefix, RESP3 nulls)
    const value back = seckill::redis::parse_one(encoded, ec, roomy);
    if (ec || !(back == v)) std::abort();
  }
  return 0;
}
