#include <seckill/error.hpp>
#include <seckill/pool/object_pool.hpp>
#include <seckill/pool/wire_record.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <system_error>
#include <vector>

// Defined in unit-object_pool.cpp, which counts the binary's heap allocations.
namespace core_alloc_probe {
std::size_t allocations() noexcept;
}  // namespace core_alloc_probe

namespace unit_wire_record {

// A purchase request as it travels: fixed-width fields, no padding.
struct purchase_wire {
  std::uint64_t order_id;
  std::uint32_t sku;
  std::uint32_t quantity;
  std::int64_t price_cents;
  char user[40];
};
static_assert(sizeof(purchase_wire) == 64);

using record = seckill::wire_record<purchase_wire>;

purchase_wire sample() {
  purchase_wire p{};
  p.order_id = 0x0102030405060708ull;
  p.sku = 77;
  p.quantity = 2;
  p.price_cents = -1999;
  std::memcpy(p.user, "alice", 6);
  return p;
}

bool same(const purchase_wire& a, const purchase_wire& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

constexpr bool compile_time_round_trip() {
  struct pair {
    std::uint32_t a;
    std::uint32_t b;
  };
  const auto bytes = seckill::wire_record<pair>::to_bytes(pair{1, 0xAABBCCDDu});
  const pair back = seckill::wire_record<pair>::from_bytes(bytes);
  return back.a == 1 && back.b == 0xAABBCCDDu;
}
static_assert(compile_time_round_trip());

}  // namespace unit_wire_record

using namespace unit_wire_record;

TEST_SUITE("unit") {
  TEST_CASE("wire_record: write then read round-trips the record byte for byte") {
    CHECK(record::size == 64);
    std::array<std::byte, 64> buf{};
    std::error_code ec;
    CHECK(record::write(sample(), buf, ec) == 64);
    CHECK_FALSE(ec);
    // The bytes are the object's representation, in host order.
    std::uint64_t order_id = 0;
    std::memcpy(&order_id, buf.data(), 8);
    CHECK(order_id == 0x0102030405060708ull);
    const purchase_wire back = record::read(buf);
    CHECK(same(back, sample()));
    CHECK(std::string(back.user) == "alice");
    CHECK(record::from_bytes(record::to_bytes(sample())).price_cents == -1999);
  }

  TEST_CASE("wire_record: reads from any offset of a larger buffer aligned or not") {
    std::vector<std::byte> frame(3 + 64 + 10, std::byte{0xEE});
    record::write(sample(), std::span(frame).subspan(3));  // deliberately misaligned
    std::error_code ec;
    const purchase_wire back = record::read(std::span<const std::byte>(frame).subspan(3), ec);
    CHECK_FALSE(ec);
    CHECK(same(back, sample()));
    CHECK(frame[2] == std::byte{0xEE});       // nothing written before
    CHECK(frame[3 + 64] == std::byte{0xEE});  // nor after
  }

  TEST_CASE("wire_record: short spans are refused with the sizes seen and nothing touched") {
    std::array<std::byte, 63> short_buf{};
    std::error_code ec;
    purchase_wire out = sample();
    record::read_into(short_buf, out, ec);
    CHECK(ec == seckill::errc::protocol_error);
    CHECK(same(out, sample()));  // left untouched
    CHECK(record::read(short_buf, ec).order_id == 0);
    CHECK(ec == seckill::errc::protocol_error);
    CHECK(record::read(std::span<const std::byte>{}, ec).sku == 0);
    CHECK(ec == seckill::errc::protocol_error);
    try {
      (void)record::read(short_buf);
      FAIL("no exception");
    } catch (const seckill::error& e) {
      CHECK(std::string(e.what()) ==
            "wire record of 64 bytes: input span holds only 63: protocol error");
    }
    std::array<std::byte, 10> small_out{};
    CHECK(record::write(sample(), small_out, ec) == 0);
    CHECK(ec == seckill::errc::invalid_argument);
    CHECK(small_out == std::array<std::byte, 10>{});
    try {
      record::write(sample(), small_out);
      FAIL("no exception");
    } catch (const seckill::error& e) {
      CHECK(std::string(e.what()) ==
            "wire record of 64 bytes: output span holds only 10: invalid argument");
    }
  }

  TEST_CASE("wire_record: reading into a pooled object allocates nothing") {
    seckill::object_pool<purchase_wire, seckill::no_reset> pool(4);
    std::array<std::byte, 64> buf{};
    record::write(sample(), buf);
    { auto warm = pool.acquire(); }
    const auto before = core_alloc_probe::allocations();
    int ok = 0;
    for (int i = 0; i < 10'000; ++i) {
      std::error_code ec;
      auto req = pool.acquire(ec);
      record::read_into(buf, *req, ec);
      if (!ec && req->order_id == 0x0102030405060708ull) ++ok;
      record::write(*req, buf, ec);
      const purchase_wire copy = record::read(buf, ec);
      std::array<std::byte, 10> too_small{};
      record::read_into(too_small, *req, ec);  // the failure path as well
      if (copy.quantity != 2) --ok;
    }
    const auto after = core_alloc_probe::allocations();
    CHECK(after - before == 0);
    CHECK(ok == 10'000);
  }
}
