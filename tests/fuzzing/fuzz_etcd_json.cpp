// libFuzzer target: every parser of etcd's gateway JSON (seckill/etcd/codec.hpp)
// and of the registry's records must accept or refuse any bytes without
// crashing, and what it accepts must encode back to the same values.
#include <seckill/etcd/codec.hpp>
#include <seckill/etcd/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace seckill::etcd;
  const std::string text(reinterpret_cast<const char*>(data), size);

  // base64: whatever decodes must encode back to the same text
  std::string decoded;
  if (detail::base64_decode(text, decoded) && detail::base64_encode(decoded) != text) std::abort();

  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_discarded()) {
    range_result r;
    (void)detail::parse_range(doc, r);
    put_result p;
    (void)detail::parse_put(doc, p);
    delete_result d;
    (void)detail::parse_delete(doc, d);
    txn_result t;
    (void)detail::parse_txn(doc, t);
    lease_grant_result g;
    (void)detail::parse_lease_grant(doc, g);
    lease_keepalive_result k;
    (void)detail::parse_lease_keepalive(doc, k);
    lease_ttl_result l;
    (void)detail::parse_lease_ttl(doc, l);
    lease_revoke_result v;
    (void)detail::parse_lease_revoke(doc, v);
    watch_message m;
    std::string message;
    (void)detail::parse_watch_message(doc, m, message);
    // a decoded key-value re-encodes to a request the parser reads back the same
    if (!detail::parse_range(doc, r)) {
      for (const auto& kv : r.kvs) {
        const auto j = detail::to_json(put_request{kv.key, kv.value, {}});
        std::string key, value;
        if (!detail::base64_decode(j["key"].get<std::string>(), key) || key != kv.key) std::abort();
        if (!detail::base64_decode(j["value"].get<std::string>(), value) || value != kv.value)
          std::abort();
      }
    }
  }
  service_instance inst;
  std::string why;
  (void)detail::decode_instance(text, inst, why);
  return 0;
}
