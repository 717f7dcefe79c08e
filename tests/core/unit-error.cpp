#include <seckill/browser/error.hpp>
#include <seckill/error.hpp>
#include <seckill/etcd/error.hpp>
#include <seckill/redis/error.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <ostream>
#include <set>
#include <string>

TEST_SUITE("unit") {
  TEST_CASE("errc converts to std::error_code in the seckill category") {
    std::error_code ec = seckill::errc::sold_out;
    CHECK(ec == seckill::errc::sold_out);
    CHECK(ec != seckill::errc::unknown_sku);
    CHECK(std::string(ec.category().name()) == "seckill");
    CHECK(ec.message() == "sold out");
    CHECK(bool(ec));
  }

  TEST_CASE("every errc has its own message") {
    std::set<std::string> seen;
    for (int v = 1; v <= static_cast<int>(seckill::browser::errc::element_not_actionable); ++v) {
      const auto msg = seckill::seckill_category().message(v);
      CHECK_MESSAGE(msg.find("unknown seckill error") == std::string::npos, "code ", v);
      CHECK_MESSAGE(seen.insert(msg).second, "duplicate message '", msg, "'");
    }
    CHECK(seckill::seckill_category().message(9999) == "unknown seckill error 9999");
  }

  TEST_CASE("seckill::error carries the code and says what was seen") {
    try {
      throw seckill::error(seckill::errc::invalid_argument, "worker_id 40 out of range [0, 31]");
    } catch (const std::system_error& e) {
      CHECK(e.code() == seckill::errc::invalid_argument);
      CHECK(std::string(e.what()).find("worker_id 40 out of range [0, 31]") != std::string::npos);
    }
    CHECK_NOTHROW(seckill::throw_if({}, "nothing"));
    CHECK_THROWS_AS(seckill::throw_if(seckill::errc::timed_out, "reserve"), seckill::error);
  }
}

TEST_SUITE("unit") {
  TEST_CASE("every code maps to a condition and refused covers the final answers") {
    using seckill::condition;
    using seckill::errc;
    CHECK(std::error_code(errc::operation_aborted) == condition::aborted);
    CHECK(std::error_code(errc::sold_out) == condition::rejected);
    CHECK(std::error_code(errc::sold_out) == condition::refused);
    CHECK(std::error_code(errc::unknown_order) == condition::not_found);
    CHECK(std::error_code(errc::unknown_order) == condition::refused);
    CHECK(std::error_code(errc::order_committed) == condition::conflict);
    CHECK(std::error_code(errc::invalid_argument) == condition::refused);
    CHECK(std::error_code(errc::timed_out) == condition::timed_out);
    CHECK(std::error_code(errc::timed_out) != condition::refused);
    CHECK(std::error_code(errc::store_unavailable) == condition::unavailable);
    CHECK(std::error_code(errc::store_unavailable) != condition::refused);
    CHECK(std::error_code(errc::protocol_error) == condition::protocol);
    // a limit is a refusal the same request gets again; "in progress" may change on a retry
    CHECK(std::error_code(errc::purchase_limited) == condition::rejected);
    CHECK(std::error_code(errc::purchase_limited) == condition::refused);
    CHECK(std::error_code(errc::purchase_in_progress) == condition::unavailable);
    CHECK(std::error_code(errc::purchase_in_progress) != condition::refused);
    CHECK(std::error_code(errc::purchase_limited).message() ==
          "the per-user limit for this SKU is reached");
    CHECK(std::error_code(errc::server_error) == condition::server);
    CHECK(std::error_code(errc::read_only) == condition::unavailable);
    CHECK(std::error_code(errc::read_only) != condition::refused);
    CHECK(std::error_code(errc::read_only).message() ==
          "this node takes no new purchases: its health grade is read-only");
    // an early click may succeed later; a late one never will
    CHECK(std::error_code(errc::sale_not_started) == condition::unavailable);
    CHECK(std::error_code(errc::sale_not_started) != condition::refused);
    CHECK(std::error_code(errc::sale_ended) == condition::rejected);
    CHECK(std::error_code(errc::sale_ended) == condition::refused);
    CHECK(std::error_code(errc::fenced_out) == condition::conflict);
    CHECK(std::error_code(errc::fenced_out) == condition::refused);
    CHECK(std::error_code(errc::fenced_out).message() == "fenced out: a newer leader has acted");
    // a right an operator must grant: the server's word, not a refusal of the request
    CHECK(std::error_code(errc::permission_denied) == condition::server);
    CHECK(std::error_code(errc::permission_denied) != condition::refused);
    CHECK(std::error_code(errc::permission_denied) != errc::auth_failed);
    CHECK(std::error_code(errc::permission_denied).message() ==
          "permission denied by the server's access control");
    CHECK(std::error_code() != condition::refused);
    for (int v = 1; v <= static_cast<int>(errc::permission_denied); ++v) {
      const std::error_code ec(v, seckill::seckill_category());
      CHECK_MESSAGE(ec.default_error_condition().category() == seckill::condition_category(),
                    "code ", v);
    }
  }

  TEST_CASE("the OS's codes meet the same conditions") {
    using seckill::condition;
    CHECK(std::make_error_code(std::errc::operation_canceled) == condition::aborted);
    CHECK(std::make_error_code(std::errc::timed_out) == condition::timed_out);
    CHECK(std::make_error_code(std::errc::connection_refused) == condition::unavailable);
    CHECK(std::make_error_code(std::errc::connection_reset) == condition::unavailable);
    CHECK(std::make_error_code(std::errc::connection_reset) != condition::aborted);
    CHECK(std::error_code(ECANCELED, std::system_category()) == condition::aborted);
    CHECK(std::make_error_code(std::errc::no_such_file_or_directory) != condition::not_found);
  }

  TEST_CASE("conditions have their own messages") {
    std::set<std::string> seen;
    for (int v = 1; v <= static_cast<int>(seckill::condition::refused); ++v) {
      const auto msg = seckill::condition_category().message(v);
      CHECK_MESSAGE(msg.find("unknown") == std::string::npos, "condition ", v);
      CHECK_MESSAGE(seen.insert(msg).second, "duplicate message '", msg, "'");
    }
  }
}

TEST_SUITE("unit") {
  TEST_CASE("each domain has its own category and its codes meet the shared conditions") {
    using seckill::condition;
    const std::error_code redis = seckill::redis::errc::nesting_too_deep;
    const std::error_code etcd = seckill::etcd::errc::no_leader;
    const std::error_code browser = seckill::browser::errc::element_not_found;
    CHECK(std::string(redis.category().name()) == "seckill.redis");
    CHECK(std::string(etcd.category().name()) == "seckill.etcd");
    CHECK(std::string(browser.category().name()) == "seckill.browser");
    CHECK(redis.message() == "nesting too deep");
    CHECK(etcd.message() == "etcd cluster has no leader");
    CHECK(browser.message() == "element not found");
    CHECK(redis == condition::protocol);
    CHECK(std::error_code(seckill::redis::errc::unsupported_server) == condition::server);
    CHECK(etcd == condition::unavailable);
    CHECK(std::error_code(seckill::etcd::errc::txn_conflict) == condition::unavailable);
    CHECK(std::error_code(seckill::etcd::errc::txn_conflict) !=
          condition::refused);  // retrying may succeed
    CHECK(std::error_code(seckill::etcd::errc::not_leader) == condition::conflict);
    CHECK(browser == condition::not_found);
    CHECK(browser == condition::refused);
    CHECK(std::error_code(seckill::browser::errc::browser_closed) == condition::unavailable);
    // A code of one domain never equals a code of another with the same value.
    CHECK(redis != std::error_code(1, seckill::etcd::etcd_category()));
    CHECK(redis != std::error_code(1, seckill::seckill_category()));
    CHECK(std::error_code(99, seckill::redis::redis_category()).message() ==
          "unknown seckill.redis error 99");
  }
}
