#pragma once
/// @file
/// @brief `memory_store`: the embedded, in-process `stock_store`, sharded by SKU.

#include <seckill/detail/cache_line.hpp>
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
  /// How long a settled order (committed, rolled back, expired) or a refused
  /// one stays recorded: within it a repeated reserve, commit or rollback
  /// answers as the first one did; after it the order id is forgotten and
  /// its record's memory reused (24 h, as `redis_store` keeps them). Zero
  /// keeps every record for the store's lifetime. Held orders are never
  /// forgotten. Negative, or beyond a quarter of what the clock's duration
  /// holds (some 73 years in nanoseconds): `errc::invalid_argument` from the
  /// constructor.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
};

namespace detail {

/// An open-addressing table of order records keyed by order id, a min-heap
/// of hold expiries and a queue of settled records to forget: one SKU's
/// bookkeeping. Not thread-safe; the owning shard's mutex guards it.
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

  using duration = typename TimePoint::duration;

  /// `retention` zero: records are never forgotten.
  sku_book(std::size_t capacity, duration retention) : retention_(retention) {
    std::size_t cap = 16;
    while (cap < capacity * 4 / 3 + 1) cap *= 2;
    slots_.resize(cap);
    expiries_.reserve(capacity);
    if (retention_ > duration::zero()) retired_.resize(cap);
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
      give_back(*o, now);
      ++reaped;
    }
    return reaped;
  }

  void give_back(order& o, TimePoint now) {
    o.state = order_state::rolled_back;
    reserved -= o.quantity;
    remaining += o.quantity;
    retire(o, now);
  }

  void commit(order& o, TimePoint now) {
    o.state = order_state::committed;
    reserved -= o.quantity;
    committed += o.quantity;
    retire(o, now);
  }

  /// `o` was refused or settled at `now`: it is forgotten `retention` later.
  void retire(const order& o, TimePoint now) {
    if (retention_ <= duration::zero()) return;
    if (retired_count_ == retired_.size()) grow_retired();
    retired_[(retired_head_ + retired_count_) & (retired_.size() - 1)] = {now + retention_, o.id};
    ++retired_count_;
  }

  /// Forgets the records whose retention has passed at `now`, and drops the
  /// expiry entries of orders settled before their hold ended. Amortised
  /// O(1) per order over its life; called by every operation on the book.
  void forget_expired(TimePoint now) noexcept {
    while (retired_count_ > 0 && retired_[retired_head_].at <= now) {
      if (order* o = find(retired_[retired_head_].id);
          o != nullptr && o->state != order_state::held)
        erase(*o);
      retired_head_ = (retired_head_ + 1) & (retired_.size() - 1);
      --retired_count_;
    }
    while (!expiries_.empty() && expiries_.front().at <= now) {
      const order* o = find(expiries_.front().id);
      if (o != nullptr && o->state == order_state::held && o->expires == expiries_.front().at)
        break;
      std::pop_heap(expiries_.begin(), expiries_.end(), later);  // stale: settled, or forgotten
      expiries_.pop_back();
    }
  }

  /// Records held now (live, settled or refused, not yet forgotten).
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct expiry {
    TimePoint at;
    std::int64_t id;
  };
  static bool later(const expiry& a, const expiry& b) noexcept { return a.at > b.at; }

  // Linear probing's deletion without tombstones: later records of the same
  // probe run move back into the hole when their home slot allows it.
  void erase(order& o) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t hole = static_cast<std::size_t>(&o - slots_.data());
    slots_[hole].state = order_state::empty;
    --size_;
    for (std::size_t j = (hole + 1) & mask; slots_[j].state != order_state::empty;
         j = (j + 1) & mask) {
      const std::size_t home = hash(slots_[j].id) & mask;
      // stays when its home lies cyclically in (hole, j]
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      slots_[j].state = order_state::empty;
      hole = j;
    }
  }

  void grow_retired() {
    std::vector<expiry> bigger(retired_.size() * 2);
    for (std::size_t i = 0; i < retired_count_; ++i)
      bigger[i] = retired_[(retired_head_ + i) & (retired_.size() - 1)];
    retired_.swap(bigger);
    retired_head_ = 0;
  }

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

  std::vector<order> slots_;  // power-of-two size
  std::size_t size_ = 0;
  std::vector<expiry> expiries_;
  // A ring (power-of-two size) of (forget at, order id), in settling order;
  // the retention is one constant, so its front is always the first due.
  std::vector<expiry> retired_;
  std::size_t retired_head_ = 0;
  std::size_t retired_count_ = 0;
  duration retention_;
};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
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
/// recorded (about 40 bytes, plus 16 in the forgetting queue) while it is
/// held and for `memory_store_options::order_retention` after it settles,
/// which is what makes a replayed reserve, commit or rollback answer as the
/// first one did. Memory grows to what the busiest retention period needs,
/// then its slots are reused (the tables do not shrink).
template <class Clock = std::chrono::steady_clock>
class memory_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock_type = Clock;

  explicit memory_store(executor_type ex, memory_store_options options = {}, Clock clock = {})
      : ex_(std::move(ex)),
        options_(checked(options)),
        clock_(std::move(clock)),
        shards_(std::make_unique<std::array<shard, shard_count>>()) {}

  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  executor_type get_executor() const noexcept { return ex_; }
  const Clock& clock() const noexcept { return clock_; }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_stock(std::string_view sku, std::int64_t quantity,
                       CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code)>(
        std::forward<CompletionToken>(token), [this, sku, quantity]() {
          if (!detail::is_valid_sku(sku) || quantity < 0 || quantity > max_units)
            return std::error_code(errc::invalid_argument);
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          auto it = sh.books.find(sku);
          if (it != sh.books.end() &&
              quantity > max_units - it->second->reserved - it->second->committed)
            return std::error_code(errc::invalid_argument);  // the SKU's units would pass max_units
          if (it == sh.books.end())
            it = sh.books
                     .emplace(std::string(sku),
                              std::make_unique<book>(options_.orders_per_sku, retention()))
                     .first;
          it->second->remaining = quantity;
          return std::error_code{};
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, stock_level)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_stock(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, stock_level)>(
        std::forward<CompletionToken>(token), [this, sku]() {
          stock_level level;
          if (!detail::is_valid_sku(sku))
            return std::pair{std::error_code(errc::invalid_argument), level};
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          const auto it = sh.books.find(sku);
          if (it == sh.books.end()) return std::pair{std::error_code(errc::unknown_sku), level};
          level = {it->second->remaining, it->second->reserved, it->second->committed};
          return std::pair{std::error_code{}, level};
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, reserve_result)>(
        std::forward<CompletionToken>(token),
        [this, sku, quantity, order_id, hold]() { return reserve(sku, quantity, order_id, hold); });
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_commit(std::string_view sku, std::int64_t order_id,
                    CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, settle_result)>(
        std::forward<CompletionToken>(token),
        [this, sku, order_id]() { return settle(sku, order_id, true); });
  }

  template <boost::asio::completion_token_for<void(std::error_code, settle_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_rollback(std::string_view sku, std::int64_t order_id,
                      CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, settle_result)>(
        std::forward<CompletionToken>(token),
        [this, sku, order_id]() { return settle(sku, order_id, false); });
  }

  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit,
                          CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, std::size_t)>(
        std::forward<CompletionToken>(token), [this, sku, limit]() {
          if (!detail::is_valid_sku(sku))
            return std::pair{std::error_code(errc::invalid_argument), std::size_t{0}};
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          const auto it = sh.books.find(sku);
          if (it == sh.books.end()) return std::pair{std::error_code{}, std::size_t{0}};
          const auto now = clock_.now();
          it->second->forget_expired(now);
          return std::pair{std::error_code{}, it->second->reap(now, limit)};
        });
  }

  /// The order records kept for `sku` now (held, and settled or refused ones
  /// within their retention): what the store's memory for it follows.
  [[nodiscard]] std::size_t recorded_orders(std::string_view sku) const {
    auto& sh = (*shards_)[detail::string_hash{}(sku) % shard_count];
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    return it == sh.books.end() ? 0 : it->second->size();
  }

 private:
  using time_point = typename Clock::time_point;
  using book = detail::sku_book<time_point>;
  using order_state = typename book::order_state;
  static constexpr std::size_t shard_count = 64;

  struct alignas(detail::cache_line_size) shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<book>, detail::string_hash, std::equal_to<>>
        books;
  };

  shard& shard_of(std::string_view sku) noexcept {
    return (*shards_)[detail::string_hash{}(sku) % shard_count];
  }

  static memory_store_options checked(memory_store_options o) {
    // a quarter of what the clock's duration holds leaves room for now + retention
    constexpr auto longest =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration::max()) / 4;
    if (o.order_retention < std::chrono::milliseconds::zero() || o.order_retention > longest) {
      throw error(errc::invalid_argument, "memory_store_options: order_retention " +
                                              std::to_string(o.order_retention.count()) +
                                              " ms out of [0, " + std::to_string(longest.count()) +
                                              "] (0 keeps every order)");
    }
    return o;
  }

  typename Clock::duration retention() const {
    return std::chrono::duration_cast<typename Clock::duration>(options_.order_retention);
  }

  std::pair<std::error_code, reserve_result> reserve(std::string_view sku, std::int64_t quantity,
                                                     std::int64_t order_id,
                                                     std::chrono::milliseconds hold) {
    reserve_result r;
    if (!detail::is_valid_sku(sku) || quantity <= 0 || quantity > max_units ||
        hold <= std::chrono::milliseconds::zero() || hold > max_hold)
      return {errc::invalid_argument, r};
    auto& sh = shard_of(sku);
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    if (it == sh.books.end()) {
      r.status = reserve_status::unknown_sku;
      return {{}, r};
    }
    book& b = *it->second;
    const auto now = clock_.now();
    b.forget_expired(now);
    if (auto* o = b.find(order_id)) {  // idempotent: the first answer
      r.status =
          o->state == order_state::refused ? reserve_status::sold_out : reserve_status::reserved;
      r.remaining = o->remaining_answer;
      r.replayed = true;
      return {{}, r};
    }
    auto& o = b.insert(order_id);
    o.quantity = quantity;
    if (b.remaining < quantity) {
      o.state = order_state::refused;
      b.retire(o, now);
      r.status = reserve_status::sold_out;
    } else {
      b.remaining -= quantity;
      b.reserved += quantity;
      o.state = order_state::held;
      o.expires = now + std::chrono::duration_cast<typename Clock::duration>(hold);
      b.push_expiry(o.expires, order_id);
      r.status = reserve_status::reserved;
    }
    o.remaining_answer = b.remaining;
    r.remaining = b.remaining;
    return {{}, r};
  }

  std::pair<std::error_code, settle_result> settle(std::string_view sku, std::int64_t order_id,
                                                   bool commit) {
    settle_result r;
    if (!detail::is_valid_sku(sku)) return {errc::invalid_argument, r};
    auto& sh = shard_of(sku);
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    if (it == sh.books.end()) return {errc::unknown_order, r};
    book& b = *it->second;
    const auto now = clock_.now();
    b.forget_expired(now);
    auto* o = b.find(order_id);
    if (o == nullptr || o->state == order_state::refused) return {errc::unknown_order, r};
    if (commit && o->state == order_state::held && o->expires <= now) {
      b.give_back(*o, now);  // the hold passed: the units go back, as the reaper would do
      return {errc::order_rolled_back, r};
    }
    switch (o->state) {
      case order_state::held:
        if (commit) {
          b.commit(*o, now);
        } else {
          b.give_back(*o, now);
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
      default:
        return {errc::unknown_order, r};
    }
  }

  // Does the work now, completes through the handler's executor later.
  template <class Signature, class CompletionToken, class Work>
  auto start(CompletionToken&& token, Work work) {
    return boost::asio::async_initiate<CompletionToken, Signature>(
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
