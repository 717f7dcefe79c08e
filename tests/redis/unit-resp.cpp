#include <seckill/redis/resp.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

using seckill::errc;
using seckill::redis::encode;
using seckill::redis::parse_one;
using seckill::redis::parser;
using seckill::redis::parser_limits;
using seckill::redis::request;
using seckill::redis::resp_type;
using seckill::redis::value;
namespace make = seckill::redis::make;

namespace unit_resp {

// Parses `bytes` fed in chunks of `chunk` bytes; returns every complete value.
std::vector<value> parse_all(std::string_view bytes, std::size_t chunk, std::error_code& ec,
                             parser_limits limits = {}) {
  parser p(limits);
  std::vector<value> out;
  for (std::size_t i = 0; i < bytes.size();) {
    std::string_view piece = bytes.substr(i, chunk);
    while (!piece.empty()) {
      const std::size_t used = p.consume(piece, ec);
      if (ec) return out;
      piece.remove_prefix(used);
      i += used;
      if (p.done()) out.push_back(p.take());
    }
  }
  return out;
}

value parse(std::string_view bytes) {
  std::error_code ec;
  auto v = parse_one(bytes, ec);
  REQUIRE_MESSAGE(!ec, ec.message(), " for ", bytes);
  return v;
}

std::error_code failure(std::string_view bytes, parser_limits limits = {}) {
  std::error_code ec;
  parser p(limits);
  p.consume(bytes, ec);
  if (ec) CHECK(!p.error_message().empty());
  return ec;
}

}  // namespace unit_resp

using namespace unit_resp;

TEST_SUITE("unit") {
  TEST_CASE("request encodes commands as arrays of bulk strings") {
    request r;
    r.push("SET", "key", 42).push("GET", std::string("key"));
    CHECK(r.size() == 2);
    CHECK(r.payload() ==
          "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\n42\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    request s;
    const std::vector<std::string> args{"a", "", "c\r\n"};
    s.push_range("MGET", args);
    CHECK(s.payload() == "*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$0\r\n\r\n$3\r\nc\r\n\r\n");
    r.append(s);
    CHECK(r.size() == 3);
    r.clear();
    CHECK(r.empty());
    CHECK(r.payload().empty());
    request n;
    n.push("X", -7, std::int64_t{-9223372036854775807LL - 1}, 1.5);
    CHECK(n.payload() ==
          "*4\r\n$1\r\nX\r\n$2\r\n-7\r\n$20\r\n-9223372036854775808\r\n$3\r\n1.5\r\n");
  }

  TEST_CASE("joined writes one argument from strings and integers as the string would") {
    const std::string_view sku = "tea";
    const seckill::redis::joined key("seckill:{", sku, "}:order:", std::int64_t{-42}, "/", 7);
    CHECK(key.str() == "seckill:{tea}:order:-42/7");
    CHECK(key.size() == key.str().size());
    request by_pieces, by_string;
    by_pieces.push("HGET", key, seckill::redis::joined("", ""), 1);
    by_string.push("HGET", key.str(), "", 1);
    CHECK(by_pieces.payload() == by_string.payload());
    CHECK(by_pieces.payload() ==
          "*4\r\n$4\r\nHGET\r\n$25\r\nseckill:{tea}:order:-42/7\r\n$0\r\n\r\n"
          "$1\r\n1\r\n");
    // reserve() allocates once; what follows fits without moving the bytes
    request r;
    r.reserve(256);
    const char* const before = r.payload().data();
    r.push("SET", key, std::string(150, 'x'));
    CHECK(r.payload().data() == before);
  }

  TEST_CASE("request keeps its first inline_bytes in itself and grows past them intact") {
    request small;
    small.push("GET", "key");
    CHECK(!small.allocated());
    request big;
    std::string expected;
    for (int i = 0; !big.allocated(); ++i) {
      request one;
      one.push("SET", "k" + std::to_string(i), i);
      expected += one.payload();
      big.push("SET", "k" + std::to_string(i), i);
    }
    CHECK(big.payload().size() > request::inline_bytes);
    CHECK(big.payload() == expected);
    // copies and moves keep the bytes and the count; a moved-from request is empty
    for (request* r : {&small, &big}) {
      const std::string bytes(r->payload());
      const std::size_t commands = r->size();
      request copy(*r);
      CHECK(copy.payload() == bytes);
      request moved(std::move(copy));
      CHECK(moved.payload() == bytes);
      CHECK(moved.size() == commands);
      CHECK(copy.payload().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
      request assigned;
      assigned.push("PING");
      assigned = moved;
      CHECK(assigned.payload() == bytes);
      assigned = std::move(moved);
      CHECK(assigned.payload() == bytes);
      assigned.append(*r);
      CHECK(assigned.payload() == bytes + bytes);
      CHECK(assigned.size() == 2 * commands);
    }
    big.release();
    CHECK(big.empty());
    CHECK(!big.allocated());
    big.push("PING");
    CHECK(big.payload() == "*1\r\n$4\r\nPING\r\n");
  }

  TEST_CASE("RESP2 scalars") {
    CHECK(parse("+OK\r\n") == make::simple("OK"));
    CHECK(parse("-ERR wrong\r\n") == make::error("ERR wrong"));
    CHECK(parse("-ERR wrong\r\n").error_code() == "ERR");
    CHECK(parse("-NOSCRIPT No matching script\r\n").error_code() == "NOSCRIPT");
    CHECK(parse(":-12\r\n") == make::integer(-12));
    CHECK(parse(":9223372036854775807\r\n").integer == std::numeric_limits<std::int64_t>::max());
    CHECK(parse("$5\r\nhello\r\n") == make::bulk("hello"));
    CHECK(parse("$0\r\n\r\n") == make::bulk(""));
    CHECK(parse("$4\r\na\r\nb\r\n") == make::bulk("a\r\nb"));
    CHECK(parse("$-1\r\n").is_null());
    CHECK(parse("*-1\r\n").is_null());
    CHECK(parse("*0\r\n") == make::array({}));
  }

  TEST_CASE("RESP3 scalars null boolean double big number blob error and verbatim") {
    CHECK(parse("_\r\n").is_null());
    CHECK(parse("#t\r\n") == make::boolean(true));
    CHECK(parse("#f\r\n") == make::boolean(false));
    CHECK(parse(",1.25\r\n") == make::number(1.25));
    CHECK(parse(",-3\r\n").number == -3.0);
    CHECK(parse(",1e10\r\n").number == 1e10);
    CHECK(parse(",inf\r\n").number == std::numeric_limits<double>::infinity());
    CHECK(parse(",-inf\r\n").number == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(parse(",nan\r\n").number));
    const value big = parse("(3492890328409238509324850943850943825024385\r\n");
    CHECK(big.type == resp_type::big_number);
    CHECK(big.text == "3492890328409238509324850943850943825024385");
    CHECK(parse("(-12\r\n").text == "-12");
    const value blob = parse("!21\r\nSYNTAX invalid syntax\r\n");
    CHECK(blob.type == resp_type::blob_error);
    CHECK(blob.is_error());
    CHECK(blob.error_code() == "SYNTAX");
    const value verbatim = parse("=15\r\ntxt:Some string\r\n");
    CHECK(verbatim.type == resp_type::verbatim_string);
    CHECK(verbatim.text == "Some string");
    CHECK(std::string(verbatim.format.data(), 3) == "txt");
    CHECK(verbatim.is_string());
  }

  TEST_CASE("nested aggregates of arrays maps sets and pushes") {
    const value v = parse("*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n%1\r\n+k\r\n~2\r\n#t\r\n,0.5\r\n");
    REQUIRE(v.type == resp_type::array);
    REQUIRE(v.elements.size() == 3);
    CHECK(v.elements[0] == make::integer(1));
    CHECK(v.elements[1] == make::array({make::simple("a"), make::null()}));
    const value& m = v.elements[2];
    REQUIRE(m.type == resp_type::map);
    REQUIRE(m.elements.size() == 2);
    CHECK(m.elements[0] == make::simple("k"));
    CHECK(m.elements[1] ==
          make::aggregate(resp_type::set, {make::boolean(true), make::number(0.5)}));
    const value push = parse(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    CHECK(push.type == resp_type::push);
    CHECK(push.elements.size() == 3);
    CHECK(parse("%0\r\n") == make::aggregate(resp_type::map, {}));
  }

  TEST_CASE("attributes attach to the value that follows them") {
    const value v = parse("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2\r\n:3\r\n");
    CHECK(v.type == resp_type::array);
    CHECK(v.elements == std::vector<value>{make::integer(2), make::integer(3)});
    REQUIRE(v.attributes.size() == 2);
    CHECK(v.attributes[0] == make::simple("key-popularity"));
    CHECK(v.attributes[1].type == resp_type::map);
    // inside an aggregate: the attribute is not an element of its own
    const value w = parse("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n");
    REQUIRE(w.elements.size() == 2);
    CHECK(w.elements[0].integer == 1);
    CHECK(w.elements[0].attributes == std::vector<value>{make::simple("ttl"), make::integer(3600)});
    CHECK(w.elements[1] == make::integer(2));
  }

  TEST_CASE("every split of the input parses to the same values") {
    const std::string stream =
        "+OK\r\n$11\r\nhello world\r\n*2\r\n:1\r\n%1\r\n+a\r\n=8\r\ntxt:b\r\nc\r\n"
        "|1\r\n+x\r\n+y\r\n>2\r\n+p\r\n_\r\n!3\r\nERR\r\n,2.5\r\n(99\r\n";
    std::error_code ec;
    const auto whole = parse_all(stream, stream.size(), ec);
    REQUIRE(!ec);
    REQUIRE(whole.size() == 7);
    CHECK(whole[2].elements[1].elements[1].text == "b\r\nc");
    CHECK(whole[3].type == resp_type::push);
    CHECK(whole[3].attributes.size() == 2);
    for (std::size_t chunk = 1; chunk < 16; ++chunk) {
      CAPTURE(chunk);
      const auto parts = parse_all(stream, chunk, ec);
      REQUIRE(!ec);
      CHECK(parts == whole);
    }
  }

  TEST_CASE("consume stops after each top-level value") {
    parser p;
    std::error_code ec;
    const std::string_view two = ":1\r\n:2\r\n";
    const std::size_t used = p.consume(two, ec);
    CHECK(used == 4);
    REQUIRE(p.done());
    CHECK(p.take() == make::integer(1));
    CHECK(!p.done());
    CHECK(p.consume(two.substr(used), ec) == 4);
    CHECK(p.take() == make::integer(2));
    CHECK(!p.in_progress());
    p.consume("*2\r\n:1", ec);
    CHECK(p.in_progress());
  }

  TEST_CASE("encode then parse gives the same value") {
    value v = make::array(
        {make::simple("s"), make::error("ERR e"), make::integer(-5),
         make::bulk(std::string("bin\0\r\n", 6)), make::null(), make::boolean(true),
         make::number(-0.125), make::number(std::numeric_limits<double>::infinity()),
         make::aggregate(resp_type::map, {make::bulk("k"), make::integer(1)}),
         make::aggregate(resp_type::set, {}), make::aggregate(resp_type::push, {make::null()})});
    value verb;
    verb.type = resp_type::verbatim_string;
    verb.format = {'m', 'k', 'd'};
    verb.text = "# title";
    v.elements.push_back(verb);
    value big;
    big.type = resp_type::big_number;
    big.text = "-123456789012345678901234567890";
    v.elements.push_back(big);
    value blob;
    blob.type = resp_type::blob_error;
    blob.text = "ERR with\r\nnewline";
    v.elements.push_back(blob);
    value annotated = make::integer(7);
    annotated.attributes = {make::simple("a"), make::integer(1)};
    v.elements.push_back(annotated);
    std::string bytes;
    encode(v, bytes);
    CHECK(parse(bytes) == v);
  }

  TEST_CASE("malformed input fails with protocol_error") {
    for (const char* bad : {"?\r\n",         "HTTP/1.1 400 Bad Request\r\n",
                            "hello",         "+OK\n",
                            "\r\n",          ":12a\r\n",
                            ":\r\n",         ":99999999999999999999\r\n",
                            "$abc\r\n",      "$-2\r\n",
                            "*-5\r\n",       "$3\r\nabcd\r\n",
                            "$3\r\nabc\n\n", "#x\r\n",
                            "#\r\n",         ",1.2.3\r\n",
                            ",\r\n",         "_x\r\n",
                            "(12x\r\n",      "(\r\n",
                            "=3\r\ntxt\r\n", "=5\r\ntxtab\r\n",
                            "$?\r\n",        "*?\r\n",
                            "%-1\r\n",       "~-1\r\n"}) {
      CAPTURE(bad);
      CHECK(failure(bad) == seckill::errc::protocol_error);
    }
  }

  TEST_CASE("limits on bulk length aggregate size line length reply size and depth") {
    parser_limits limits;
    limits.max_bulk_length = 8;
    limits.max_aggregate_size = 4;
    limits.max_line_length = 16;
    limits.max_reply_bytes = 64;
    limits.max_depth = 3;
    CHECK(failure("$9\r\n", limits) == seckill::errc::message_too_large);
    CHECK(failure("$8\r\n12345678\r\n", limits) == std::error_code{});
    CHECK(failure("*5\r\n", limits) == seckill::errc::message_too_large);
    CHECK(failure("%3\r\n", limits) == seckill::errc::message_too_large);  // 3 pairs = 6 elements
    CHECK(failure("$9223372036854775807\r\n", limits) == seckill::errc::message_too_large);
    CHECK(failure("+0123456789abcdefgh\r\n", limits) == seckill::errc::message_too_large);
    CHECK(failure("+0123456789abcdefgh", limits) == seckill::errc::message_too_large);  // no LF yet
    const std::string four =
        "*4\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n";
    CHECK(failure(four, limits) == std::error_code{});  // 60 bytes
    parser_limits small = limits;
    small.max_reply_bytes = 59;
    CHECK(failure(four, small) == seckill::errc::message_too_large);
    CHECK(failure("*1\r\n*1\r\n*1\r\n:1\r\n", limits) == std::error_code{});
    CHECK(failure("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits) ==
          seckill::redis::errc::nesting_too_deep);
    CHECK(failure("|1\r\n*1\r\n*1\r\n*1\r\n", limits) == seckill::redis::errc::nesting_too_deep);
    parser p(limits);
    std::error_code ec;
    p.consume("*1\r\n*1\r\n*1\r\n*1\r\n", ec);
    CHECK(p.error_message().find("max_depth 3") != std::string::npos);
  }

  TEST_CASE("a reply of many tiny values is refused at its header by max_reply_elements") {
    // 48 MB of three-byte nulls fits max_reply_bytes but would cost
    // 16 million values of sizeof(value) bytes each: refused by its header,
    // before one element is parsed or allocated.
    constexpr std::size_t n = 16'000'000;
    const std::string header = "*" + std::to_string(n) + "\r\n";
    std::string bytes = header;
    bytes.reserve(header.size() + 3 * n);
    for (std::size_t i = 0; i < n; ++i) bytes += "_\r\n";
    CHECK(bytes.size() < parser_limits{}.max_reply_bytes);
    CHECK(n <= parser_limits{}.max_aggregate_size);
    parser p;
    std::error_code ec;
    CHECK(p.consume(bytes, ec) == header.size());
    CHECK(ec == seckill::errc::message_too_large);
    CHECK(!p.done());
    CHECK(!p.in_progress());  // nothing was started for it
    CHECK(p.error_message().find("max_reply_elements " +
                                 std::to_string(parser_limits{}.max_reply_elements)) !=
          std::string::npos);
    CHECK(p.error_message().find(std::to_string(n)) != std::string::npos);
    // the same with RESP2's null bulk strings
    CHECK(failure("*" + std::to_string(n) + "\r\n$-1\r\n") == seckill::errc::message_too_large);

    // nested aggregates count together, a map's keys and values and an
    // attribute's too; the count starts again with the next reply
    parser_limits limits;
    limits.max_reply_elements = 4;
    CHECK(failure("*2\r\n*1\r\n:1\r\n*1\r\n:1\r\n", limits) == std::error_code{});  // 2 + 1 + 1
    CHECK(failure("*2\r\n*1\r\n:1\r\n*2\r\n", limits) ==
          seckill::errc::message_too_large);  // 2 + 1 + 2
    CHECK(failure("*5\r\n", limits) == seckill::errc::message_too_large);
    CHECK(failure("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n", limits) == std::error_code{});     // 2 pairs: 4
    CHECK(failure("%1\r\n+a\r\n*3\r\n", limits) == seckill::errc::message_too_large);  // 2 + 3
    CHECK(failure("|1\r\n+a\r\n+b\r\n*3\r\n", limits) ==
          seckill::errc::message_too_large);  // 2 + 3
    std::error_code e2;
    const auto replies =
        parse_all("*4\r\n_\r\n_\r\n_\r\n_\r\n*4\r\n_\r\n_\r\n_\r\n_\r\n", 1, e2, limits);
    CHECK(!e2);
    CHECK(replies.size() == 2);
    // the same error however reads split the reply
    const std::string over = "*2\r\n*2\r\n_\r\n_\r\n*1\r\n_\r\n";  // 2 + 2 + 1
    for (std::size_t chunk = 1; chunk <= over.size(); ++chunk) {
      CAPTURE(chunk);
      std::error_code e3;
      parse_all(over, chunk, e3, limits);
      CHECK(e3 == seckill::errc::message_too_large);
    }
  }

  TEST_CASE("a bad or oversized reply fails with the same error however reads split it") {
    parser_limits limits;
    limits.max_bulk_length = 32;
    limits.max_line_length = 16;
    limits.max_reply_bytes = 40;
    const std::string cases[] = {
        "?" + std::string(30, 'x') + "\r\n",  // unknown type byte on an over-long line
        "+0123456789abcde\r\n",               // exactly max_line_length: fits
        "+0123456789abcdef\r\n",              // one byte over
        "*2\r\n$20\r\n01234567890123456789\r\n+0123456789\r\n",  // reply too large
        "*2\r\n$30\r\n012345678901234567890123456789xx",         // too large, before the bad CRLF
        "*1\r\n$10\r\n0123456789xx",                             // bad CRLF within the limit
        "+OK\r\n+0123456789abcdef\n",  // LF without CR at the longest line
    };
    for (const std::string& bytes : cases) {
      CAPTURE(bytes);
      std::error_code whole_ec;
      const auto whole = parse_all(bytes, bytes.size(), whole_ec, limits);
      for (std::size_t chunk = 1; chunk < bytes.size(); ++chunk) {
        CAPTURE(chunk);
        std::error_code ec;
        const auto parts = parse_all(bytes, chunk, ec, limits);
        CHECK(ec == whole_ec);
        CHECK(parts == whole);
      }
    }
    std::error_code ec;
    parse_all(cases[0], 4, ec, limits);
    CHECK(ec == seckill::errc::protocol_error);
    parse_all(cases[1], 3, ec, limits);
    CHECK(!ec);
    parse_all(cases[2], 3, ec, limits);
    CHECK(ec == seckill::errc::message_too_large);
    parse_all(cases[4], 5, ec, limits);
    CHECK(ec == seckill::errc::message_too_large);
    parse_all(cases[5], 5, ec, limits);
    CHECK(ec == seckill::errc::protocol_error);
  }

  TEST_CASE("a failed parser stays failed until reset") {
    parser p;
    std::error_code ec;
    p.consume("!oops\r\n", ec);
    CHECK(ec == seckill::errc::protocol_error);
    CHECK(p.error_message().find("!oops") != std::string::npos);
    CHECK(p.consume("+OK\r\n", ec) == 0);
    CHECK(ec == seckill::errc::protocol_error);
    p.reset();
    CHECK(p.error_message().empty());
    p.consume("+OK\r\n", ec);
    CHECK(!ec);
    CHECK(p.take() == make::simple("OK"));
  }

  TEST_CASE("parse_one refuses trailing or missing bytes") {
    std::error_code ec;
    parse_one("+OK\r\n+OK\r\n", ec);
    CHECK(ec == seckill::errc::protocol_error);
    parse_one("$5\r\nhel", ec);
    CHECK(ec == seckill::errc::protocol_error);
    parse_one("", ec);
    CHECK(ec == seckill::errc::protocol_error);
  }

  TEST_CASE("every reply captured from a real redis-server parses") {
    const std::filesystem::path dir =
        std::filesystem::path(SECKILL_SOURCE_DIR) / "tests/fuzzing/corpus/resp";
    std::map<std::string, std::vector<value>> replies;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      std::error_code ec;
      const auto name = entry.path().filename().string();
      CAPTURE(name);
      replies[name] = parse_all(bytes.str(), bytes.str().size(), ec);
      CHECK(!ec);
      CHECK(!replies[name].empty());
    }
    REQUIRE(replies.size() >= 60);
    CHECK(replies["resp3-hello"].at(0).type == resp_type::map);
    CHECK(replies["resp2-hgetall"].at(0).type == resp_type::array);
    CHECK(replies["resp3-hgetall"].at(0).type == resp_type::map);
    CHECK(replies["resp3-smembers"].at(0).type == resp_type::set);
    CHECK(replies["resp3-eval-double"].at(0) == make::number(3.25));
    CHECK(replies["resp3-eval-bignum"].at(0).type == resp_type::big_number);
    CHECK(replies["resp3-eval-verbatim"].at(0).type == resp_type::verbatim_string);
    CHECK(replies["resp3-push-invalidate"].at(0).type == resp_type::push);
    CHECK(replies["resp2-get-missing"].at(0).is_null());
    CHECK(replies["resp3-get-binary"].at(0).text == std::string("a\r\nb\0c", 6));
    CHECK(replies["resp2-noscript"].at(0).error_code() == "NOSCRIPT");
    CHECK(replies["resp3-eval-table"].at(0).elements.at(4).is_error());
  }
}
