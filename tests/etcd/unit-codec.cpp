#include <seckill/etcd/client.hpp>
#include <seckill/etcd/codec.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <string>

namespace unit_codec {
using namespace seckill::etcd;
using nlohmann::json;
}  // namespace unit_codec

TEST_SUITE("unit") {
  using namespace unit_codec;
  TEST_CASE("base64 round-trips every length and rejects bad input") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n < 40; ++n) {
      const auto s = all.substr(n, n);
      std::string back;
      REQUIRE(detail::base64_decode(detail::base64_encode(s), back));
      CHECK(back == s);
    }
    CHECK(detail::base64_encode("foo") == "Zm9v");
    CHECK(detail::base64_encode("fo") == "Zm8=");
    CHECK(detail::base64_encode("f") == "Zg==");
    std::string out;
    CHECK_FALSE(detail::base64_decode("Zm9", out));
    CHECK_FALSE(detail::base64_decode("Zm9*", out));
    CHECK_FALSE(detail::base64_decode("Z===", out));
    CHECK_FALSE(detail::base64_decode("Zg==Zg==", out));
    CHECK_FALSE(detail::base64_decode("Zg=a", out));
    // unused bits must be zero, so that each byte string has one encoding
    CHECK_FALSE(detail::base64_decode("baa=", out));
    CHECK(detail::base64_decode("Zg==", out));
    CHECK_FALSE(detail::base64_decode("Zh==", out));
    CHECK_FALSE(detail::base64_decode("Zm9=", out));
    CHECK(detail::base64_decode("Zm8=", out));
  }

  TEST_CASE("prefix_end increments the last byte below 0xff") {
    CHECK(prefix_end("abc") == "abd");
    CHECK(prefix_end(std::string("a\xff", 2)) == "b");
    CHECK(prefix_end("") == std::string(1, '\0'));
    CHECK(prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  }

  TEST_CASE("a range response decodes keys values and int64 strings") {
    const auto doc = json::parse(R"({"header":{"cluster_id":"15118495548433857066","member_id":"1",
      "revision":"9","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"9",
      "version":"3","value":"YmFy","lease":"7587869"}],"count":"1","more":true})");
    range_result r;
    REQUIRE_FALSE(detail::parse_range(doc, r));
    CHECK(r.header.cluster_id == 15118495548433857066ull);
    CHECK(r.header.revision == 9);
    REQUIRE(r.kvs.size() == 1);
    CHECK(r.kvs[0].key == "foo");
    CHECK(r.kvs[0].value == "bar");
    CHECK(r.kvs[0].create_revision == 2);
    CHECK(r.kvs[0].mod_revision == 9);
    CHECK(r.kvs[0].version == 3);
    CHECK(r.kvs[0].lease == 7587869);
    CHECK(r.count == 1);
    CHECK(r.more);
  }

  TEST_CASE("malformed responses are protocol errors naming the field") {
    range_result r;
    CHECK(detail::parse_range(json::parse(R"({"kvs":[{"key":"!!!"}]})"), r) ==
          seckill::errc::protocol_error);
    CHECK(r.error_message.find("'key'") != std::string::npos);
    r = {};
    CHECK(detail::parse_range(json::parse(R"({"count":"12x"})"), r) ==
          seckill::errc::protocol_error);
    CHECK(r.error_message.find("12x") != std::string::npos);
    r = {};
    CHECK(detail::parse_range(json::parse(R"({"kvs":{}})"), r) == seckill::errc::protocol_error);
    r = {};
    CHECK(detail::parse_range(json::parse(R"({"header":{"revision":"99999999999999999999"}})"),
                              r) == seckill::errc::protocol_error);
    r = {};
    CHECK(detail::parse_range(json::parse(R"([1,2])"), r) == seckill::errc::protocol_error);
    txn_result t;
    CHECK(detail::parse_txn(json::parse(R"({"succeeded":true,"responses":[{"response_foo":{}}]})"),
                            t) == seckill::errc::protocol_error);
    t = {};
    CHECK(detail::parse_txn(json::parse(R"({"succeeded":"yes"})"), t) ==
          seckill::errc::protocol_error);
    watch_message m;
    std::string msg;
    CHECK(detail::parse_watch_message(
              json::parse(R"({"result":{"events":[{"type":"BOGUS","kv":{}}]}})"), m, msg) ==
          seckill::errc::protocol_error);
    CHECK(msg.find("BOGUS") != std::string::npos);
    CHECK(detail::parse_watch_message(json::parse(R"({"result":{"events":[{"type":"PUT"}]}})"), m,
                                      msg) == seckill::errc::protocol_error);
    CHECK(detail::parse_watch_message(json::parse(R"({"nothing":1})"), m, msg) ==
          seckill::errc::protocol_error);
  }

  TEST_CASE("gateway errors map to seckill codes and keep the server's message") {
    range_result r;
    CHECK(detail::parse_range(
              json::parse(R"({"error":"etcdserver: mvcc: required revision has been compacted",
      "message":"etcdserver: mvcc: required revision has been compacted","code":11})"),
              r) == seckill::etcd::errc::compacted);
    CHECK(r.error_message == "etcdserver: mvcc: required revision has been compacted");
    lease_revoke_result l;
    CHECK(detail::parse_lease_revoke(
              json::parse(R"({"error":"etcdserver: requested lease not found","code":5,
      "message":"etcdserver: requested lease not found"})"),
              l) == seckill::etcd::errc::lease_not_found);
    std::string msg;
    watch_message m;
    CHECK(detail::parse_watch_message(json::parse(R"({"error":{"grpc_code":14,"http_code":503,
      "message":"etcdserver: no leader","http_status":"Service Unavailable"}})"),
                                      m, msg) == seckill::etcd::errc::no_leader);
    CHECK(msg == "etcdserver: no leader");
    put_result p;
    CHECK(detail::parse_put(json::parse(R"({"error":"bad","code":3,"message":"invalid key"})"),
                            p) == seckill::errc::invalid_argument);
    CHECK(detail::parse_put(json::parse(R"({"error":"x","code":16,"message":"auth"})"), p) ==
          seckill::errc::auth_failed);
    CHECK(detail::parse_put(json::parse(R"({"error":"x","code":13,"message":"internal"})"), p) ==
          seckill::errc::server_error);
    lease_keepalive_result k;
    CHECK(detail::parse_lease_keepalive(json::parse(R"({"result":{"ID":"123"}})"), k) ==
          seckill::etcd::errc::lease_not_found);
    CHECK(detail::parse_lease_keepalive(json::parse(R"({"result":{"ID":"123","TTL":"4"}})"), k) ==
          std::error_code{});
    CHECK(k.ttl == 4);
  }

  TEST_CASE("requests encode keys in base64 int64 as strings and prefixes as range_end") {
    range_request rr{"svc/", {}};
    rr.options.prefix = true;
    rr.options.revision = 12;
    rr.options.limit = 3;
    const auto j = detail::to_json(rr);
    CHECK(j["key"] == "c3ZjLw==");
    CHECK(j["range_end"] == detail::base64_encode("svc0"));
    CHECK(j["revision"] == "12");
    CHECK(j["limit"] == "3");
    txn_request t;
    t.compares.push_back(compare::mod_revision("k", compare::result::equal, 5));
    t.compares.push_back(compare::value_of("k", compare::result::not_equal, "v"));
    t.success.push_back(put_request{"k", "v", {.lease = 42}});
    t.failure.push_back(delete_request{"k", {}});
    const auto tj = detail::to_json(t);
    CHECK(tj["compare"][0]["target"] == "MOD");
    CHECK(tj["compare"][0]["mod_revision"] == "5");
    CHECK(tj["compare"][1]["result"] == "NOT_EQUAL");
    CHECK(tj["compare"][1]["value"] == "dg==");
    CHECK(tj["success"][0]["request_put"]["lease"] == "42");
    CHECK(tj["failure"][0].contains("request_delete_range"));
  }

  TEST_CASE("endpoint lists parse and bad entries are named") {
    const auto eps = parse_endpoints("etcd://127.0.0.1:2379,localhost:2380");
    REQUIRE(eps.size() == 2);
    CHECK(eps[0] == endpoint{"127.0.0.1", 2379});
    CHECK(eps[1] == endpoint{"localhost", 2380});
    std::error_code ec;
    std::string message;
    parse_endpoints("127.0.0.1:99999", ec, &message);
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK(message.find("99999") != std::string::npos);
    parse_endpoints("127.0.0.1", ec, &message);
    CHECK(ec == seckill::errc::invalid_argument);
    parse_endpoints("a:1,,b:2", ec, &message);
    CHECK(ec == seckill::errc::invalid_argument);
    parse_endpoints("", ec, &message);
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK_THROWS_AS(parse_endpoints(":80"), seckill::error);
  }
}
