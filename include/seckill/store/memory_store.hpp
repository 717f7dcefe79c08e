#pragma once
/// @file
/// @brief `memory_store`: the embedded, in-process `stock_store`, sharded by SKU.

#include <seckill/detail/cache_line.hpp>
#include <seckill/detail/hybrid_mutex.hpp>
#include <seckill/error.hpp>
#include <seckill/store/store.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
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
  /// Order records each SKU's table is sized for before it first grows, and
  /// committed orders its list of sales holds before it first grows (about
  /// 80 bytes each). The table doubles when it is three quarters full, so a
  /// store that has seen its peak allocates nothing more for it; the list
  /// keeps every committed order and doubles when full.
  std::size_t orders_per_sku = 1024;
  /// How long a settled order (committed, rolled back, expired) or a refused
  /// one keeps its record: within it a repeated reserve, commit or rollback
  /// answers as the first one did; after it a rolled-back or refused order
  /// id, and its request binding, are forgotten and the record's memory
  /// reused (24 h, as `redis_store` keeps those). A committed order is never
  /// forgotten: its sale, and the binding of the request that bought it,
  /// stay, so a late retry still answers "committed". Zero keeps every
  /// record for the store's lifetime. Held orders are never forgotten. Negative, or beyond a
  /// quarter of what the clock's duration holds (some 73 years in nanoseconds):
  /// `errc::invalid_argument` from the constructor.
  std::chrono::milliseconds order_retention = std::chrono::hours(24);
};

namespace detail {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

/// An open-addressing table of order records keyed by order id, a min-heap
/// of hold expiries and a queue of settled records to forget: one SKU's
/// bookkeeping. Not thread-safe; the owning shard's lock guards it.
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
    bool limited = false;     // refused by the per-user limit (else sold out)
    std::uint32_t buyer = 0;  // index + 1 into buyers_; 0: reserved with no user
  };

  /// Who reserved a live order record: its user (for the allowance) and its
  /// request id (for the binding and the order entry).
  struct buyer_record {
    std::string user;
    std::string request_id;
  };

  using duration = typename TimePoint::duration;

  /// `retention` zero: records are never forgotten.
  sku_book(std::size_t capacity, duration retention) : retention_(retention) {
    std::size_t cap = 16;
    while (cap < capacity * 4 / 3 + 1) cap *= 2;
    slots_.resize(cap);
    expiries_.reserve(capacity);
    sales_.reserve(capacity);
    if (retention_ > duration::zero()) retired_.resize(cap);
  }

  std::int64_t remaining = 0;
  std::int64_t reserved = 0;
  std::int64_t committed = 0;
  bool stocked = false;  // set_stock ran: a policy alone does not make the SKU known
  sku_policy policy{};

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
    if (o.buyer != 0) release_units(buyers_[o.buyer - 1].user, o.quantity);
    retire(o, now);
  }

  void commit(order& o, TimePoint now) {
    o.state = order_state::committed;
    reserved -= o.quantity;
    committed += o.quantity;
    order_entry& e = sales_.emplace_back();
    e.order_id = o.id;
    e.quantity = o.quantity;
    if (o.buyer != 0) {
      e.user = buyers_[o.buyer - 1].user;
      e.request_id = buyers_[o.buyer - 1].request_id;
    }
    if (sorted_ + 1 == sales_.size() && (sorted_ == 0 || sales_[sorted_ - 1].order_id < o.id))
      ++sorted_;
    retire(o, now);
  }

  /// The units `user` holds or bought of this SKU.
  [[nodiscard]] std::int64_t units_of(std::string_view user) const {
    const auto it = user_units_.find(user);
    return it == user_units_.end() ? 0 : it->second;
  }

  /// The order `user` bound `request_id` to, or 0.
  [[nodiscard]] std::int64_t bound_order(std::string_view user, std::string_view request) const {
    const auto it = bindings_.find(std::pair{user, request});
    return it == bindings_.end() ? 0 : it->second;
  }

  /// `o`, just reserved by `user` (with `request`, possibly empty): counts its
  /// units against the user and binds the request to it.
  void attach_buyer(order& o, std::string_view user, std::string_view request) {
    std::uint32_t index;
    if (!free_buyers_.empty()) {
      index = free_buyers_.back();
      free_buyers_.pop_back();
    } else {
      buyers_.emplace_back();
      index = static_cast<std::uint32_t>(buyers_.size());
    }
    buyer_record& b = buyers_[index - 1];
    b.user.assign(user);
    b.request_id.assign(request);
    o.buyer = index;
    if (auto it = user_units_.find(user); it != user_units_.end()) {
      it->second += o.quantity;
    } else {
      user_units_.emplace(std::string(user), o.quantity);
    }
    if (!request.empty()) bindings_.emplace(binding_key{b.user, b.request_id}, o.id);
  }

  /// The committed orders with ids above `after`, at most `limit`, in id order.
  order_page list(std::int64_t after, std::size_t limit) {
    sort_sales();
    order_page page;
    auto it =
        std::upper_bound(sales_.begin(), sales_.end(), after,
                         [](std::int64_t id, const order_entry& e) { return id < e.order_id; });
    for (; it != sales_.end() && page.orders.size() < limit; ++it) page.orders.push_back(*it);
    if (it != sales_.end()) page.next = page.orders.back().order_id;
    return page;
  }

  /// The committed order `id`, or nullptr.
  const order_entry* sale(std::int64_t id) {
    sort_sales();
    const auto it =
        std::lower_bound(sales_.begin(), sales_.end(), id,
                         [](const order_entry& e, std::int64_t v) { return e.order_id < v; });
    return it != sales_.end() && it->order_id == id ? &*it : nullptr;
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
  void forget_expired(TimePoint now) {
    while (retired_count_ > 0 && retired_[retired_head_].at <= now) {
      if (order* o = find(retired_[retired_head_].id);
          o != nullptr && o->state != order_state::held) {
        forgot_sales_ = forgot_sales_ || o->state == order_state::committed;
        drop_buyer(*o);
        erase(*o);
      }
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

  /// The committed order `id` whose record was forgotten (its sale is kept
  /// for good), or nullptr. Free until a committed record is first forgotten.
  const order_entry* forgotten_sale(std::int64_t id) { return forgot_sales_ ? sale(id) : nullptr; }

 private:
  struct expiry {
    TimePoint at;
    std::int64_t id;
  };
  static bool later(const expiry& a, const expiry& b) noexcept { return a.at > b.at; }

  // (user, request id), looked up by views without building a key.
  struct binding_key {
    std::string user;
    std::string request_id;
  };
  using binding_view = std::pair<std::string_view, std::string_view>;
  struct binding_hash {
    using is_transparent = void;
    std::size_t operator()(binding_view k) const noexcept {
      const std::size_t h = std::hash<std::string_view>{}(k.first);
      return h ^ (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ULL + (h << 6) +
                  (h >> 2));
    }
    std::size_t operator()(const binding_key& k) const noexcept {
      return (*this)(binding_view{k.user, k.request_id});
    }
  };
  struct binding_equal {
    using is_transparent = void;
    static binding_view view(const binding_key& k) noexcept { return {k.user, k.request_id}; }
    static binding_view view(binding_view k) noexcept { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return view(a) == view(b);
    }
  };

  void release_units(const std::string& user, std::int64_t quantity) {
    const auto it = user_units_.find(user);
    if (it == user_units_.end()) return;
    it->second -= quantity;
    if (it->second <= 0) user_units_.erase(it);
  }

  // The record of `o` is forgotten: so are its buyer slot and, unless the
  // order was committed (a sale is kept for good, and so is what bought it),
  // its binding.
  void drop_buyer(order& o) {
    if (o.buyer == 0) return;
    buyer_record& b = buyers_[o.buyer - 1];
    if (!b.request_id.empty() && o.state != order_state::committed) {
      const auto it = bindings_.find(binding_view{b.user, b.request_id});
      if (it != bindings_.end() && it->second == o.id) bindings_.erase(it);
    }
    free_buyers_.push_back(o.buyer);
    o.buyer = 0;
  }

  // Commits arrive in about increasing id order: the unsorted tail is sorted
  // and merged in when the orders are read.
  void sort_sales() {
    if (sorted_ == sales_.size()) return;
    const auto by_id = [](const order_entry& a, const order_entry& b) {
      return a.order_id < b.order_id;
    };
    const auto mid = sales_.begin() + static_cast<std::ptrdiff_t>(sorted_);
    std::sort(mid, sales_.end(), by_id);
    std::inplace_merge(sales_.begin(), mid, sales_.end(), by_id);
    sorted_ = sales_.size();
  }

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
  std::vector<buyer_record> buyers_;        // slots of live records reserved by a user
  std::vector<std::uint32_t> free_buyers_;  // reusable slots (index + 1)
  std::unordered_map<std::string, std::int64_t, string_hash, std::equal_to<>> user_units_;
  std::unordered_map<binding_key, std::int64_t, binding_hash, binding_equal> bindings_;
  std::vector<order_entry> sales_;  // committed orders: kept for the store's lifetime
  std::size_t sorted_ = 0;          // sales_[0, sorted_) is in increasing id order
  bool forgot_sales_ = false;       // a committed order's record was forgotten
};

inline bool is_valid_sku(std::string_view sku) noexcept { return !sku.empty(); }

}  // namespace detail

/// @brief The in-process `stock_store`: SKUs in 64 shards, each behind its own
///        lock, so purchases of different SKUs rarely contend.
///
/// Meets the whole contract of store/store.hpp. Holds expire by `Clock`, so
/// tests drive expiry with `seckill::manual_clock`. Operations do their work
/// when they start and complete through the handler's associated executor
/// (the store's executor by default), never inside the initiating call; a
/// handler whose executor is an `any_io_executor` (a coroutine's) is posted
/// straight to it, so a caller with an io_context per thread is completed on
/// its own thread without passing through the store's.
///
/// Thread-safety: every operation may be started from any thread at once.
/// A shard's lock (`detail::hybrid_mutex`) spins briefly before it sleeps:
/// threads buying one hot SKU at once take it in turn without a futex call
/// each time. Cost: one shard lock, one hash lookup of the SKU and one of the order id
/// per operation; after warm-up (each SKU's order table at its peak size)
/// an operation allocates nothing but what the completion token does (with
/// Asio's default handler allocator, recycled per thread). Each order stays
/// recorded (about 40 bytes, plus 16 in the forgetting queue) while it is
/// held and for `memory_store_options::order_retention` after it settles,
/// which is what makes a replayed reserve, commit or rollback answer as the
/// first one did. Memory grows to what the busiest retention period needs,
/// then its slots are reused (the tables do not shrink).
///
/// Buyers: a reserve without a user costs what it always did. With a user it
/// adds a lookup of the user's units (a node per user with units held or
/// bought, kept while they have any), a buyer slot per live order record
/// (reused), and with a request id a binding to the order, forgotten with
/// the order's record after `order_retention`. Every committed order is
/// kept for the store's lifetime (about 80 bytes, plus the user's and the
/// request id's text beyond 15 characters), appended in commit order and
/// sorted by id when read (`async_get_order`, `async_list_orders`).
///
/// The sale window is judged by `SaleClock`, whose `time_since_epoch()` must
/// count from the Unix epoch: the system clock when `Clock` is steady, else
/// `Clock` itself (a `manual_clock` then drives holds and the window alike).
/// A reserve reads it only when the SKU's policy has a window bound.
template <class Clock = std::chrono::steady_clock,
          class SaleClock = std::conditional_t<Clock::is_steady, std::chrono::system_clock, Clock>>
class memory_store {
 public:
  using executor_type = boost::asio::any_io_executor;
  using clock_type = Clock;
  using sale_clock_type = SaleClock;

  /// With `SaleClock` the same type as `Clock`, the window is judged by a
  /// copy of `clock`.
  explicit memory_store(executor_type ex, memory_store_options options = {}, Clock clock = {})
      : memory_store(ex, options, clock, default_sale_clock(clock)) {}

  memory_store(executor_type ex, memory_store_options options, Clock clock, SaleClock sale_clock)
      : ex_(std::move(ex)),
        options_(checked(options)),
        clock_(std::move(clock)),
        sale_clock_(std::move(sale_clock)),
        shards_(std::make_unique<std::array<shard, shard_count>>()) {}

  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  executor_type get_executor() const noexcept { return ex_; }
  const Clock& clock() const noexcept { return clock_; }
  const SaleClock& sale_clock() const noexcept { return sale_clock_; }

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
          if (it == sh.books.end()) it = add_book(sh, sku);
          it->second->remaining = quantity;
          it->second->stocked = true;
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
          if (it == sh.books.end() || !it->second->stocked)
            return std::pair{std::error_code(errc::unknown_sku), level};
          level = {it->second->remaining, it->second->reserved, it->second->committed};
          return std::pair{std::error_code{}, level};
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, std::int64_t quantity, std::int64_t order_id,
                     std::chrono::milliseconds hold, CompletionToken&& token = CompletionToken()) {
    return async_reserve(sku,
                         reserve_request{.order_id = order_id, .quantity = quantity, .hold = hold},
                         std::forward<CompletionToken>(token));
  }

  /// The reserve of a named buyer (store/store.hpp, "Buyers"). Without a
  /// user it costs what the four-argument form always did; with one, a
  /// lookup of the user's units and, with a request id, of its binding.
  template <boost::asio::completion_token_for<void(std::error_code, reserve_result)>
                CompletionToken = boost::asio::default_completion_token_t<executor_type>>
  auto async_reserve(std::string_view sku, const reserve_request& request,
                     CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, reserve_result)>(
        std::forward<CompletionToken>(token),
        [this, sku, request]() { return reserve(sku, request); });
  }

  template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_set_policy(std::string_view sku, sku_policy policy,
                        CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code)>(
        std::forward<CompletionToken>(token), [this, sku, policy]() {
          if (!detail::is_valid_sku(sku) || !sku_policy_problem(policy).empty())
            return std::error_code(errc::invalid_argument);
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          auto it = sh.books.find(sku);
          if (it == sh.books.end()) it = add_book(sh, sku);
          it->second->policy = policy;
          return std::error_code{};
        });
  }

  template <boost::asio::completion_token_for<void(std::error_code, sku_policy)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_policy(std::string_view sku, CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, sku_policy)>(std::forward<CompletionToken>(token), [this,
                                                                                           sku]() {
      if (!detail::is_valid_sku(sku))
        return std::pair{std::error_code(errc::invalid_argument), sku_policy{}};
      auto& sh = shard_of(sku);
      std::lock_guard lock(sh.mutex);
      const auto it = sh.books.find(sku);
      return std::pair{std::error_code{}, it == sh.books.end() ? sku_policy{} : it->second->policy};
    });
  }

  /// Cost: a binary search of the SKU's committed orders (and a sort of
  /// those committed out of id order since the last read).
  template <boost::asio::completion_token_for<void(std::error_code, order_entry)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_get_order(std::string_view sku, std::int64_t order_id,
                       CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, order_entry)>(
        std::forward<CompletionToken>(token), [this, sku, order_id]() {
          if (!detail::is_valid_sku(sku) || order_id <= 0)
            return std::pair{std::error_code(errc::invalid_argument), order_entry{}};
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          const auto it = sh.books.find(sku);
          const order_entry* e = it == sh.books.end() ? nullptr : it->second->sale(order_id);
          if (e == nullptr) return std::pair{std::error_code(errc::unknown_order), order_entry{}};
          return std::pair{std::error_code{}, *e};
        });
  }

  /// Cost: as `async_get_order`, plus a copy of the page. A SKU never set
  /// has no orders: an empty page.
  template <boost::asio::completion_token_for<void(std::error_code, order_page)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_list_orders(std::string_view sku, std::int64_t after, std::size_t limit,
                         CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, order_page)>(
        std::forward<CompletionToken>(token), [this, sku, after, limit]() {
          if (!detail::is_valid_sku(sku) || !order_page_problem(after, limit).empty())
            return std::pair{std::error_code(errc::invalid_argument), order_page{}};
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          const auto it = sh.books.find(sku);
          if (it == sh.books.end()) return std::pair{std::error_code{}, order_page{}};
          return std::pair{std::error_code{}, it->second->list(after, limit)};
        });
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

  /// The reap carrying a fencing token (`fence` >= 1): `errc::fenced_out`,
  /// taking nothing, when a reap of `sku` carried a higher fence before; the
  /// check, the record of the fence and the reap hold the SKU's lock.
  template <boost::asio::completion_token_for<void(std::error_code, std::size_t)> CompletionToken =
                boost::asio::default_completion_token_t<executor_type>>
  auto async_reap_expired(std::string_view sku, std::size_t limit, std::int64_t fence,
                          CompletionToken&& token = CompletionToken()) {
    return start<void(std::error_code, std::size_t)>(
        std::forward<CompletionToken>(token), [this, sku, limit, fence]() {
          if (!detail::is_valid_sku(sku) || fence <= 0 || fence > max_units)
            return std::pair{std::error_code(errc::invalid_argument), std::size_t{0}};
          auto& sh = shard_of(sku);
          std::lock_guard lock(sh.mutex);
          auto seen = sh.fences.find(sku);
          if (seen == sh.fences.end()) seen = sh.fences.emplace(std::string(sku), fence).first;
          if (seen->second > fence)
            return std::pair{std::error_code(errc::fenced_out), std::size_t{0}};
          seen->second = fence;
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
    mutable detail::hybrid_mutex mutex;  // short critical sections: spins, then sleeps
    std::unordered_map<std::string, std::unique_ptr<book>, detail::string_hash, std::equal_to<>>
        books;
    /// The highest fence a reap of each SKU carried.
    std::unordered_map<std::string, std::int64_t, detail::string_hash, std::equal_to<>> fences;
  };

  auto add_book(shard& sh, std::string_view sku) {
    return sh.books
        .emplace(std::string(sku), std::make_unique<book>(options_.orders_per_sku, retention()))
        .first;
  }

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

  // Where order `o` stands now; a hold that passed is given back first, as
  // a commit would do.
  static seckill::order_state state_now(book& b, typename book::order& o, time_point now) {
    switch (o.state) {
      case order_state::held:
        if (o.expires > now) return seckill::order_state::held;
        b.give_back(o, now);
        return seckill::order_state::rolled_back;
      case order_state::committed:
        return seckill::order_state::committed;
      case order_state::rolled_back:
        return seckill::order_state::rolled_back;
      default:
        return seckill::order_state::refused;
    }
  }

  std::pair<std::error_code, reserve_result> reserve(std::string_view sku,
                                                     const reserve_request& req) {
    reserve_result r;
    if (!detail::is_valid_sku(sku) || check_reserve_request(req))
      return {errc::invalid_argument, r};
    auto& sh = shard_of(sku);
    std::lock_guard lock(sh.mutex);
    const auto it = sh.books.find(sku);
    if (it == sh.books.end() || !it->second->stocked) {
      r.status = reserve_status::unknown_sku;
      return {{}, r};
    }
    book& b = *it->second;
    const auto now = clock_.now();
    b.forget_expired(now);
    if (auto* o = b.find(req.order_id)) {  // idempotent: the first answer
      r.replayed = true;
      r.remaining = o->remaining_answer;
      if (o->state == order_state::refused) {
        r.status = o->limited ? reserve_status::limited : reserve_status::sold_out;
        return {{}, r};
      }
      r.status = reserve_status::reserved;
      r.order_id = o->id;
      r.state = state_now(b, *o, now);
      return {{}, r};
    }
    if (b.forgotten_sale(req.order_id) != nullptr) {  // sold, its record forgotten
      r.replayed = true;
      r.status = reserve_status::reserved;
      r.order_id = req.order_id;
      r.state = seckill::order_state::committed;
      r.remaining = b.remaining;
      return {{}, r};
    }
    const bool named = !req.user.empty();
    if (named && !req.request_id.empty()) {
      // A binding lives as long as its order's record, or for good once the
      // order was committed.
      if (const std::int64_t bound = b.bound_order(req.user, req.request_id); bound != 0) {
        r.status = reserve_status::reserved;
        r.replayed = true;
        r.order_id = bound;
        if (auto* o = b.find(bound); o != nullptr) {
          r.state = state_now(b, *o, now);  // first: a hold that passed goes back to stock
          r.remaining = o->remaining_answer;
        } else {
          r.state = seckill::order_state::committed;
          r.remaining = b.remaining;
        }
        return {{}, r};
      }
    }
    // The window, after the replays and before the stock: a refusal records
    // nothing. No window, no clock read.
    if (b.policy.sale_start > sale_time{} || b.policy.sale_end < max_sale_time) {
      const sale_time at{std::chrono::duration_cast<std::chrono::milliseconds>(
          sale_clock_.now().time_since_epoch())};
      if (at < b.policy.sale_start || at >= b.policy.sale_end) {
        r.status = at < b.policy.sale_start ? reserve_status::not_started : reserve_status::ended;
        r.remaining = b.remaining;
        return {{}, r};
      }
    }
    const std::int64_t limit = b.policy.per_user_limit;
    const bool over =
        named && limit > 0 && req.quantity > limit - b.units_of(req.user);  // no overflow
    auto& o = b.insert(req.order_id);
    o.quantity = req.quantity;
    if (b.remaining < req.quantity || over) {
      o.state = order_state::refused;
      o.limited = b.remaining >= req.quantity;  // sold out wins when both hold
      b.retire(o, now);
      r.status = o.limited ? reserve_status::limited : reserve_status::sold_out;
    } else {
      b.remaining -= req.quantity;
      b.reserved += req.quantity;
      o.state = order_state::held;
      o.expires = now + std::chrono::duration_cast<typename Clock::duration>(req.hold);
      b.push_expiry(o.expires, req.order_id);
      if (named) b.attach_buyer(o, req.user, req.request_id);
      r.status = reserve_status::reserved;
      r.order_id = req.order_id;
      r.state = seckill::order_state::held;
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
    if (o == nullptr && b.forgotten_sale(order_id) != nullptr) {  // sold, record forgotten
      if (!commit) return {errc::order_committed, r};
      r.status = settle_status::already;
      return {{}, r};
    }
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
          // A handler whose executor is an any_io_executor (a coroutine's,
          // say) is posted straight to it: one hop, so a caller on an
          // io_context of its own is never completed through another
          // thread's. Any other goes through ex_ to its own executor, as
          // post(ex_, h) does (use_future's, say, then runs on ex_'s thread).
          auto to = [&] {
            if constexpr (std::is_same_v<
                              boost::asio::associated_executor_t<decltype(handler), executor_type>,
                              executor_type>)
              return boost::asio::get_associated_executor(handler, ex_);
            else
              return ex_;
          }();
          if constexpr (std::is_same_v<Signature, void(std::error_code)>) {
            boost::asio::post(to, boost::asio::append(std::move(handler), w()));
          } else {
            auto [ec, value] = w();
            boost::asio::post(to, boost::asio::append(std::move(handler), ec, value));
          }
        },
        token, std::move(work));
  }

  static SaleClock default_sale_clock(const Clock& clock) {
    if constexpr (std::is_same_v<SaleClock, Clock>) {
      return clock;
    } else {
      return SaleClock{};
    }
  }

  executor_type ex_;
  memory_store_options options_;
  Clock clock_;
  SaleClock sale_clock_;
  std::unique_ptr<std::array<shard, shard_count>> shards_;
};

static_assert(stock_store<memory_store<>>);
static_assert(fenced_stock_store<memory_store<>>);

}  // namespace seckill
