#pragma once
/// @file
/// @brief `memory_store`: the embedded, in-process `stock_store`, sharded by SKU.

#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seckill {

/// @brief Tuning of a `memory_store`.
struct memory_store_options {
  /// Order records each SKU's table is sized for before it first grows. The
  /// table doubles when it is three quarters full, so a store that has seen
  /// its peak allocates nothing more.
  std::size_t orders_per_sku = 1024;
};

namespace detail {

/// An open-addressing table of order records keyed by order id, plus a
/// min-heap of hold expiries: one SKU's bookkeeping. Not thread-safe; the
/// owning shard's mutex guards it.
template <class TimePoint>
class sku_book {
 public:
  enum class order_state : std::uint8_t { empty, held, committed, rolled_back, refused };

  struct order {
    std::int64_t id = 0;
    std::int64_t quantity = 0;
    std::int64_t remaining_answer = 0;  // `remaining` of the first reserve answer
    TimePoint expires{};
    order_state state = order_state::empty;
  };

  explicit sku_book(std::size_t capacity) {
    std::size_t cap = 16;
    while (cap < capacity * 4 / 3 + 1) cap *= 2;
    slots_.resize(cap);
    expiries_.reserve(capacity);
  }

  std::int64_t remaining = 0;
  std::int64_t reserved = 0;
  std::int64_t committed = 0;

  order* find(std::int64_t id) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash(id) & mask;; i = (i + 1) & mask) {
      order& o = slots_[i];
      if (o.state == order_state::empty) return nullptr;
      if (o.id == id) return &o;
    }
  }

  /// Inserts a record for `id`, which must not be present.
  order& insert(std::int64_t id) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    ++size_;
    return place(id);
  }

  void push_expiry(TimePoint at, std::int64_t id) {
    expiries_.push_back({at, id});
    std::push_heap(expiries_.begin(), expiries_.end(), later);
  }

  /// Gives back up to `limit` holds expired at `now`; returns how many.
  std::size_t reap(TimePoint now, std::size_t limit) {
    std::size_t reaped = 0;
    while (reaped < limit && !expiries_.empty() && expiries_.front().at <= now) {
      const auto id = expiries_.front().id;
      std::pop_heap(expiries_.begin(), expiries_.end(), later);
      expiries_.pop_back();
      order* o = find(id);
      // Entries of settled orders are stale: skip them.
      if (o == nullptr || o->state != order_state::held || o->expires > now) continue;
      give_back(*o);
      ++reaped;
    }
    return reaped;
  }

  void give_back(order& o) noexcept {
    o.state = order_state::rolled_back;
    reserved -= o.quantity;
    remaining += o.quantity;
  }

 private:
  struct expiry {
    TimePoint at;
    std::int64_t id;
  };
  static bool later(const expiry& a, const expiry& b) noexcept { return a.at > b.at; }

  static std::size_t hash(std::int64_t id) noexcept {
    auto x = static_cast<std::uint64_t>(id);  // splitmix64 finaliser
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<std::size_t>(x ^ (x >> 31));
  }

  order& place(std::int64_t id) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = hash(id) & mask;
    while (slots_[i].state != order_state::empty) i = (i + 1) & mask;
    slots_[i] = order{};
    slots_[i].id = id;
    return slots_[i];
  }

  void grow() {
    std::vector<order> old(slots_.size() * 2);
    old.swap(slots_);
    for (const order& o : old)
      if (o.state != order_state::empty) place(o.id) = o;
  }

  std::vector<order> slots_;  // power-of-two size; records are never erased
  std::size_t size_ = 0;
  std::vector<expiry> expiries_;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

inline bool is_valid_sku(std::string_view sku) noexcept { return !sku.empty(); }

}  // namespace detail

/// @brief The in-process `stock_store`: SKUs in 64 shards, each behind its own
///        mutex, so purchases of different SKUs rarely contend.
///
/// Meets the whole contract of store/store.hpp. Holds expire by `Clock`, so
/// tests drive expiry with `seckill::manual_clock`. Operations do their work
/// when they start and complete through the handler's associated executor
/// (the store's executor by default), never inside the initiating call.
///
/// Thread-safety: every operation may be started from any thread at once.
/// Cost: one shard lock, one hash lookup of the SKU and one of the order id
/// per operation; after warm-up (each SKU's order table at its peak size)
/// an operation allocates nothing but what the completion token does (with
/// Asio's default handler allocator, recycled per thread). Each order stays
/// recorded (about 40 bytes) for the store's lifetime, which is what makes a
/// replayed reserve, commit or rollback answer as the first one did.
template <class Clock = std::chrono::steady_clock>
class memory_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock_type = Clock;

  explicit memory_store(executor_type ex, memory_store_options options = {}, Clock clock = {})
      : ex_(std::move(ex)), options_(options), clock_(std::move(clock)),
        shards_(std::make_unique<std::array<shard, shard_count>>()) {}

  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  executor_type get_executor() const noexcept { return ex_; }
  const Clock& clock() const noexcept { return clock_; }

  template <class Token>
  auto async_set_stock(std::string_view sku, std::int64_t quantity, Token&& token) {
    return start<void(std::error_code)>(std::forward<Token>(token), [this, sku, quantity]() {
      if (!detail::is_valid_sku(sku) || quantity < 0) return std::error_code(errc::invalid_argument);
      auto& sh = shard_of(sku);
      std::lock_guard lock(sh.mutex);
      auto it = sh.books.find(sku);
      if (it == sh.books.end())
        it = sh.books.emplace(std::string(sku), std::make_unique<book>(options_.orders_per_sku)).first;
      it->second->remaining = quantity;
      return std::error_code{};
    });
  }

  template <class Token>
  auto async_stock(std::string_view sku, Token&& token) {
    return start<void(std::error_code, stock_level)>(std::forward<Token>(token), [this, sku]() {
      stock_level level;
      if (!detail::is_valid_sku(sku)) return std::pair{std::error_code(errc::invalid_argument), level};
      auto& sh = shard_of(sku);
      std::lock_guard lock(sh.mutex);
      const auto it = sh.books.find(sku);
      if (it == sh.books.end()) return std::pair{std::error_code(errc::unknown_sku), level};
      level = {it->second->remaining, it->second->reserved, it->second->committed};
      return std::pair{std::error_code{}, level};
    });
  }

  template <class Token>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, Token&& token) {
    return start<void(std::error_code, reserve_result)>(
        std::forward<Token>(token), [this, sku, quantity, order_id, hold]() {
          return reserve(sku, quantity, order_id, hold);
        });
  }

  template <class Token>
  auto async_commit(std::string_view sku, std::int64_t order_id, Token&& token) {
    return start<void(std::error_code, settle_result)>(
        std::forward<Token>(token), [this, sku, order_id]() { return settle(sku, order_id, true); });
  }

  template <class Token>
  auto async_rollback(std::string_view sku, std::int64_t order_id, Token&& token) {
    return start<void(std::error_code, settle_result)>(
        std::forward<Token>(token), [this, sku, order_id]() { return settle(sku, order_id, false); });
  }

  template <class Token>
  auto async_reap_expired(std::string_view sku, std::size_t limit, Token&& token) {
    return start<void(std::error_code, std::size_t)>(std::forward<Token>(token), [this, sku, limit]() {
      if (!detail::is_valid_sku(sku)) return std::pair{std::error_code(errc::invalid_argument), std::size_t{0}};
      auto& sh = shard_of(sku);
      std::lock_guard lock(sh.mutex);
      const auto it = sh.books.find(sku);
      if (it == sh.books.end()) return std::pair{std::error_code{}, std::size_t{0}};
      return std::pair{std::error_code{}, it->second->reap(clock_.now(), limit)};
    });
  }

 private:
  using time_point = typename Clock::time_point;
  using book = detail::sku_book<time_point>;
  using order_state = typename book::order_state;
  static constexpr std::size_t shard_count = 64;

  struct alignas(64) shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<book>, detail::string_hash, std::equal_to<>> books;
  };

  shard& shard_of(std::string_view sku) noexcept {
    return (*shards_)[detail::string_hash{}(sku) % shard_count];
  }

  std::pair<std::error_code, reserve_result> reserve(std::string_view sku, std::int64_t quantity,
                                                     std::int64_t order_id, std::chrono::milliseconds hold) {
    reserve_result r;
    if (!detail::is_valid_sku(sku) || quantity <= 0 || hold <= std::chrono::milliseconds::zero())
      return {errc::invalid_argument, r};
    auto& sh = shard_of(sku);
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    if (it == sh.books.end()) {
      r.status = reserve_status::unknown_sku;
      return {{}, r};
    }
    book& b = *it->second;
    if (auto* o = b.find(order_id)) {  // idempotent: the first answer
      r.status = o->state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
      r.remaining = o->remaining_answer;
      r.replayed = true;
      return {{}, r};
    }
    auto& o = b.insert(order_id);
    o.quantity = quantity;
    if (b.remaining < quantity) {
      o.state = order_state::refused;
      r.status = reserve_status::sold_out;
    } else {
      b.remaining -= quantity;
      b.reserved += quantity;
      o.state = order_state::held;
      o.expires = clock_.now() + std::chrono::duration_cast<typename Clock::duration>(hold);
      b.push_expiry(o.expires, order_id);
      r.status = reserve_status::reserved;
    }
    o.remaining_answer = b.remaining;
    r.remaining = b.remaining;
    return {{}, r};
  }

  std::pair<std::error_code, settle_result> settle(std::string_view sku, std::int64_t order_id, bool commit) {
    settle_result r;
    if (!detail::is_valid_sku(sku)) return {errc::invalid_argument, r};
    auto& sh = shard_of(sku);
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    if (it == sh.books.end()) return {errc::unknown_order, r};
    book& b = *it->second;
    auto* o = b.find(order_id);
    if (o == nullptr || o->state == order_state::refused) return {errc::unknown_order, r};
    if (commit && o->state == order_state::held && o->expires <= clock_.now()) {
      b.give_back(*o);  // the hold passed: the units go back, as the reaper would do
      return {errc::order_rolled_back, r};
    }
    switch (o->state) {
      case order_state::held:
        if (commit) {
          o->state = order_state::committed;
          b.reserved -= o->quantity;
          b.committed += o->quantity;
        } else {
          b.give_back(*o);
        }
        return {{}, r};
      case order_state::committed:
        if (!commit) return {errc::order_committed, r};
        r.status = settle_status::already;
        return {{}, r};
      case order_state::rolled_back:
        if (commit) return {errc::order_rolled_back, r};
        r.status = settle_status::already;
        return {{}, r};
      default: return {errc::unknown_order, r};
    }
  }

  // Does the work now, completes through the handler's executor later.
  template <class Signature, class Token, class Work>
  auto start(Token&& token, Work work) {
    return boost::asio::async_initiate<Token, Signature>(
        [this](auto handler, Work w) {
          // post(ex_, h) runs h through its associated executor (ex_ by default).
          if constexpr (std::is_same_v<Signature, void(std::error_code)>) {
            boost::asio::post(ex_, boost::asio::append(std::move(handler), w()));
          } else {
            auto [ec, value] = w();
            boost::asio::post(ex_, boost::asio::append(std::move(handler), ec, value));
          }
        },
        token, std::move(work));
  }

  executor_type ex_;
  memory_store_options options_;
  Clock clock_;
  std::unique_ptr<std::array<shard, shard_count>> shards_;
};

static_assert(stock_store<memory_store<>>);

}  // namespace seckill
