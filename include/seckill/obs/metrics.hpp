#pragma once
/// @file
/// @brief Metrics for operators: counters, gauges and fixed-bucket histograms,
///        grouped in label families whose children are cached handles, kept in a
///        registry that the Prometheus exposition (obs/prometheus.hpp) scrapes.
///
/// The hot path is an increment on a handle: no lock, no allocation, and no
/// contention between threads. Each counter and histogram child owns one
/// cache-line-padded cell per thread slot; a thread takes a slot the first time
/// it records anything and gives it back when it exits. A thread that owns its
/// slot adds with a relaxed load and store (no read-modify-write instruction);
/// when more threads are alive than there are slots, the extra ones share one
/// overflow cell updated with atomic read-modify-writes. A scrape sums the cells.
///
/// @code
/// seckill::obs::registry reg;
/// auto& purchases = reg.add_counter_family("shop_purchases_total", "Purchases by result",
/// {"result"}); seckill::obs::counter ok = purchases.with({"succeeded"});   // cache this handle
/// ok.inc();                                                   // ~1 ns, lock-free
/// @endcode

#include <seckill/error.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seckill::obs {

namespace detail {

/// Bytes between two independently written cells.
inline constexpr std::size_t cache_line = 64;

/// Thread slots with a cell of their own in every counter and histogram child.
/// Threads beyond this many (alive at once) share the overflow cell.
inline constexpr unsigned exclusive_slots = 32;

/// The slot used by threads that found every exclusive slot taken.
inline constexpr unsigned overflow_slot = exclusive_slots;

/// Hands out slot numbers to threads; a slot is returned when its thread exits.
class slot_allocator {
 public:
  unsigned acquire() noexcept {
    std::lock_guard lock(mutex_);
    for (unsigned i = 0; i < exclusive_slots; ++i) {
      if (!taken_[i]) {
        taken_[i] = true;
        return i;
      }
    }
    return overflow_slot;
  }
  void release(unsigned slot) noexcept {
    if (slot >= exclusive_slots) return;
    std::lock_guard lock(mutex_);
    taken_[slot] = false;
  }
  /// Slots currently owned by live threads (for tests).
  unsigned in_use() noexcept {
    std::lock_guard lock(mutex_);
    return static_cast<unsigned>(std::count(taken_, taken_ + exclusive_slots, true));
  }

 private:
  std::mutex mutex_;
  bool taken_[exclusive_slots] = {};
};

/// Process-wide and never destroyed, so threads exiting during static destruction
/// can still give their slot back.
inline slot_allocator& slots() noexcept {
  static slot_allocator* instance = new slot_allocator;
  return *instance;
}

struct thread_slot_holder {
  unsigned slot = slots().acquire();
  thread_slot_holder() = default;
  thread_slot_holder(const thread_slot_holder&) = delete;
  thread_slot_holder& operator=(const thread_slot_holder&) = delete;
  ~thread_slot_holder() { slots().release(slot); }
};

/// This thread's slot: `overflow_slot` when it shares the overflow cell.
inline unsigned this_thread_slot() noexcept {
  static thread_local thread_slot_holder holder;
  return holder.slot;
}

/// Adds to a cell: a plain load and store when this thread owns the slot, an
/// atomic read-modify-write on the shared overflow cell otherwise.
template <class T>
inline void cell_add(std::atomic<T>& cell, T v, bool exclusive) noexcept {
  if (exclusive) {
    cell.store(cell.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  } else if constexpr (std::is_integral_v<T>) {
    cell.fetch_add(v, std::memory_order_relaxed);
  } else {
    T old = cell.load(std::memory_order_relaxed);
    while (!cell.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
    }
  }
}

/// A block of `count` cache-line-aligned bytes, zeroed; freed on destruction.
class aligned_block {
 public:
  explicit aligned_block(std::size_t bytes)
      : data_(static_cast<std::byte*>(::operator new (bytes, std::align_val_t{cache_line}))) {
    std::fill(data_, data_ + bytes, std::byte{0});
  }
  aligned_block(const aligned_block&) = delete;
  aligned_block& operator=(const aligned_block&) = delete;
  ~aligned_block() { ::operator delete (data_, std::align_val_t{cache_line}); }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }

 private:
  std::byte* data_;
};

/// A counter child: one padded cell per thread slot plus the overflow cell.
struct counter_cells {
  struct alignas(cache_line) cell {
    std::atomic<double> value{0.0};
  };
  static_assert(sizeof(cell) == cache_line);
  static_assert(std::atomic<double>::is_always_lock_free);
  cell cells[exclusive_slots + 1];

  void add(double v) noexcept {
    const unsigned s = this_thread_slot();
    cell_add(cells[s].value, v, s != overflow_slot);
  }
  [[nodiscard]] double value() const noexcept {
    double sum = 0;
    for (const auto& c : cells) sum += c.value.load(std::memory_order_relaxed);
    return sum;
  }
};

/// A gauge child: one padded value (a gauge is set, so it cannot be striped).
struct alignas(cache_line) gauge_cell {
  std::atomic<double> value{0.0};
};

/// A histogram child: per thread slot, a padded row of non-cumulative bucket
/// counts (the last is +Inf) followed by the sum of observations.
class histogram_cells {
 public:
  explicit histogram_cells(const std::vector<double>* bounds)
      : bounds_(bounds),
        buckets_(bounds->size() + 1),
        row_words_(round_up_words(buckets_ + 1)),
        block_(row_words_ * 8 * (exclusive_slots + 1)) {
    for (unsigned s = 0; s <= exclusive_slots; ++s) {
      for (std::size_t i = 0; i < buckets_; ++i) new (count_at(s, i)) std::atomic<std::uint64_t>(0);
      new (sum_at(s)) std::atomic<double>(0.0);
    }
  }

  void observe(double v) noexcept {
    const auto& b = *bounds_;
    std::size_t i = 0;
    if (std::isnan(v)) {
      i = b.size();
    } else {
      while (i < b.size() && v > b[i]) ++i;  // first bound >= v: "le" semantics
    }
    const unsigned s = this_thread_slot();
    const bool exclusive = s != overflow_slot;
    cell_add<std::uint64_t>(*count_at(s, i), 1, exclusive);
    cell_add(*sum_at(s), v, exclusive);
  }

  /// Non-cumulative counts per bucket (the last is +Inf) and the sum.
  void read(std::vector<std::uint64_t>& counts, double& sum) const {
    counts.assign(buckets_, 0);
    sum = 0;
    for (unsigned s = 0; s <= exclusive_slots; ++s) {
      for (std::size_t i = 0; i < buckets_; ++i)
        counts[i] += count_at(s, i)->load(std::memory_order_relaxed);
      sum += sum_at(s)->load(std::memory_order_relaxed);
    }
  }

  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return *bounds_; }

 private:
  static std::size_t round_up_words(std::size_t words) {
    const std::size_t per_line = cache_line / 8;
    return (words + per_line - 1) / per_line * per_line;
  }
  std::atomic<std::uint64_t>* count_at(unsigned slot, std::size_t i) const noexcept {
    return std::launder(
        reinterpret_cast<std::atomic<std::uint64_t>*>(block_.data() + (slot * row_words_ + i) * 8));
  }
  std::atomic<double>* sum_at(unsigned slot) const noexcept {
    return std::launder(
        reinterpret_cast<std::atomic<double>*>(block_.data() + (slot * row_words_ + buckets_) * 8));
  }

  const std::vector<double>* bounds_;
  std::size_t buckets_;
  std::size_t row_words_;
  aligned_block block_;
};
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<double>) == 8);

inline bool is_metric_name(std::string_view n) noexcept {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

inline bool is_label_name(std::string_view n) noexcept {
  if (n.empty() || n.starts_with("__")) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

inline bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace detail

/// @brief The kind of a metric family, as the exposition's `# TYPE` line names it.
enum class metric_type { counter, gauge, histogram };

/// @brief A handle to one counter child: a value that only goes up.
///
/// Thread-safety: `inc()` from any number of threads at once, lock-free and
/// without contention (per-thread cells). Cost: a thread-local read and a
/// relaxed load and store; no allocation. Copyable; valid as long as its registry.
class counter {
 public:
  counter() = default;
  /// Adds 1.
  void inc() const noexcept { cells_->add(1.0); }
  /// Adds `v`; a negative or NaN `v` is ignored (a counter never goes down).
  void inc(double v) const noexcept {
    if (v > 0) cells_->add(v);
  }
  /// The sum over every thread's cell (what a scrape reports).
  [[nodiscard]] double value() const noexcept { return cells_->value(); }
  [[nodiscard]] explicit operator bool() const noexcept { return cells_ != nullptr; }

 private:
  template <class>
  friend class family;
  explicit counter(detail::counter_cells* c) noexcept : cells_(c) {}
  detail::counter_cells* cells_ = nullptr;
};

/// @brief A handle to one gauge child: a value that is set, or moved up and down.
///
/// Thread-safety: every member from any threads. Cost: `set()` is one relaxed
/// store; `inc()`/`dec()` a compare-and-swap loop on one cache line (a gauge
/// holds one value, so writers of the same gauge do contend). No allocation.
class gauge {
 public:
  gauge() = default;
  void set(double v) const noexcept { cell_->value.store(v, std::memory_order_relaxed); }
  void inc(double v = 1.0) const noexcept { detail::cell_add(cell_->value, v, false); }
  void dec(double v = 1.0) const noexcept { detail::cell_add(cell_->value, -v, false); }
  [[nodiscard]] double value() const noexcept {
    return cell_->value.load(std::memory_order_relaxed);
  }
  [[nodiscard]] explicit operator bool() const noexcept { return cell_ != nullptr; }

 private:
  template <class>
  friend class family;
  explicit gauge(detail::gauge_cell* c) noexcept : cell_(c) {}
  detail::gauge_cell* cell_ = nullptr;
};

/// @brief A handle to one histogram child: counts observations into fixed buckets.
///
/// Thread-safety: `observe()` from any number of threads at once, lock-free and
/// without contention (per-thread rows of cells). Cost: a linear scan of the
/// bucket bounds, then two relaxed load/store pairs; no allocation.
class histogram {
 public:
  histogram() = default;
  /// Counts `v` in the first bucket whose upper bound is >= v (NaN: +Inf) and adds it to the sum.
  void observe(double v) const noexcept { cells_->observe(v); }
  /// The bucket upper bounds, without the implicit +Inf.
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return cells_->bounds(); }
  /// Cumulative counts per bucket, the last one being +Inf (= the count).
  [[nodiscard]] std::vector<std::uint64_t> cumulative_counts() const {
    std::vector<std::uint64_t> c;
    double sum = 0;
    cells_->read(c, sum);
    for (std::size_t i = 1; i < c.size(); ++i) c[i] += c[i - 1];
    return c;
  }
  [[nodiscard]] double sum() const {
    std::vector<std::uint64_t> c;
    double sum = 0;
    cells_->read(c, sum);
    return sum;
  }
  [[nodiscard]] std::uint64_t count() const { return cumulative_counts().back(); }
  [[nodiscard]] explicit operator bool() const noexcept { return cells_ != nullptr; }

 private:
  template <class>
  friend class family;
  explicit histogram(detail::histogram_cells* c) noexcept : cells_(c) {}
  detail::histogram_cells* cells_ = nullptr;
};

/// @brief What a scrape sees of one child: its label values and its value(s).
struct child_snapshot {
  std::vector<std::string> label_values;
  double value = 0;                       ///< counter and gauge
  std::vector<std::uint64_t> cumulative;  ///< histogram: per bucket, the last is +Inf
  double sum = 0;                         ///< histogram
};

/// @brief What a scrape sees of one family; children sorted by label values.
struct family_snapshot {
  std::string name;
  std::string help;
  metric_type type = metric_type::counter;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  ///< histogram upper bounds, without +Inf
  std::vector<child_snapshot> children;
};

/// @brief Buckets for latencies in seconds: 1 ms to 10 s.
inline std::vector<double> default_latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

/// @brief `count` bounds starting at `start`, each `factor` times the previous.
inline std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0) || !(factor > 1) || count == 0) {
    throw error(errc::invalid_argument,
                "exponential_buckets needs start > 0, factor > 1 and count > 0; saw start " +
                    std::to_string(start) + ", factor " + std::to_string(factor) + ", count " +
                    std::to_string(count));
  }
  std::vector<double> b;
  for (double v = start; b.size() < count; v *= factor) b.push_back(v);
  return b;
}

/// @brief `count` bounds starting at `start`, `width` apart.
inline std::vector<double> linear_buckets(double start, double width, std::size_t count) {
  if (!(width > 0) || count == 0 || !std::isfinite(start)) {
    throw error(errc::invalid_argument,
                "linear_buckets needs a finite start, width > 0 and count > 0; saw start " +
                    std::to_string(start) + ", width " + std::to_string(width) + ", count " +
                    std::to_string(count));
  }
  std::vector<double> b;
  for (std::size_t i = 0; i < count; ++i) b.push_back(start + width * static_cast<double>(i));
  return b;
}

namespace detail {
template <class M>
struct metric_traits;
template <>
struct metric_traits<counter> {
  static constexpr metric_type type = metric_type::counter;
  using cells = counter_cells;
};
template <>
struct metric_traits<gauge> {
  static constexpr metric_type type = metric_type::gauge;
  using cells = gauge_cell;
};
template <>
struct metric_traits<histogram> {
  static constexpr metric_type type = metric_type::histogram;
  using cells = histogram_cells;
};

/// The type-erased face of a family that the registry scrapes.
class family_base {
 public:
  virtual ~family_base() = default;
  [[nodiscard]] virtual family_snapshot snapshot() const = 0;
  [[nodiscard]] virtual metric_type type() const noexcept = 0;
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
};
}  // namespace detail

/// @brief A metric family: one name, one help text, fixed label names, and one
///        child per combination of label values.
///
/// `with()` finds or creates a child and returns its handle: call it once and
/// keep the handle (children live as long as the registry; handles never dangle
/// while it does). Thread-safety: every member from any threads; `with()` takes a
/// mutex and may allocate, the handles' increments take neither.
template <class Metric>
class family final : public detail::family_base {
 public:
  using cells_type = typename detail::metric_traits<Metric>::cells;

  family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  /// The child for these label values (one per label name, in order); created on first use.
  /// Throws seckill::error(invalid_argument) on a wrong number of values or invalid UTF-8.
  Metric with(const std::vector<std::string>& values) {
    if (values.size() != label_names_.size()) {
      throw error(errc::invalid_argument,
                  "metric '" + name_ + "' has " + std::to_string(label_names_.size()) +
                      " label(s), saw " + std::to_string(values.size()) + " value(s)");
    }
    for (const auto& v : values) {
      if (!detail::is_valid_utf8(v))
        throw error(errc::invalid_argument,
                    "metric '" + name_ + "': label value is not valid UTF-8: '" + v + "'");
    }
    std::lock_guard lock(mutex_);
    auto it = children_.find(values);
    if (it == children_.end()) {
      it = children_.emplace(values, make_cells()).first;
    }
    return Metric(it->second.get());
  }
  Metric with(std::initializer_list<std::string_view> values) {
    return with(std::vector<std::string>(values.begin(), values.end()));
  }
  /// The child without labels (for a family declared with none).
  Metric get() { return with(std::vector<std::string>{}); }

  [[nodiscard]] const std::string& name() const noexcept override { return name_; }
  [[nodiscard]] const std::string& help() const noexcept { return help_; }
  [[nodiscard]] const std::vector<std::string>& label_names() const noexcept {
    return label_names_;
  }
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  [[nodiscard]] metric_type type() const noexcept override {
    return detail::metric_traits<Metric>::type;
  }

  [[nodiscard]] family_snapshot snapshot() const override {
    family_snapshot s{name_, help_, type(), label_names_, bounds_, {}};
    std::lock_guard lock(mutex_);
    s.children.reserve(children_.size());
    for (const auto& [values, cells] : children_) {
      child_snapshot c;
      c.label_values = values;
      if constexpr (std::is_same_v<Metric, counter>) {
        c.value = cells->value();
      } else if constexpr (std::is_same_v<Metric, gauge>) {
        c.value = cells->value.load(std::memory_order_relaxed);
      } else {
        cells->read(c.cumulative, c.sum);
        for (std::size_t i = 1; i < c.cumulative.size(); ++i)
          c.cumulative[i] += c.cumulative[i - 1];
      }
      s.children.push_back(std::move(c));
    }
    return s;
  }

 private:
  std::unique_ptr<cells_type> make_cells() {
    if constexpr (std::is_same_v<Metric, histogram>) {
      return std::make_unique<cells_type>(&bounds_);
    } else {
      return std::make_unique<cells_type>();
    }
  }

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<cells_type>> children_;
};

/// @brief Owns metric families by name; what an exposition scrapes.
///
/// Registering a name twice with the same type, help, labels (and buckets)
/// returns the first family; any difference throws seckill::error
/// (invalid_argument) saying what differed. Thread-safety: every member from
/// any threads (one mutex; not on the increment path). Families live as long
/// as the registry.
class registry {
 public:
  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  family<counter>& add_counter_family(std::string name, std::string help,
                                      std::vector<std::string> label_names = {}) {
    return add<counter>(std::move(name), std::move(help), std::move(label_names), {});
  }
  family<gauge>& add_gauge_family(std::string name, std::string help,
                                  std::vector<std::string> label_names = {}) {
    return add<gauge>(std::move(name), std::move(help), std::move(label_names), {});
  }
  /// `bounds`: strictly increasing finite upper bounds; +Inf is implicit (a trailing +Inf is
  /// dropped).
  family<histogram>& add_histogram_family(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds = default_latency_buckets()) {
    if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity())
      bounds.pop_back();
    if (bounds.empty())
      throw error(errc::invalid_argument,
                  "histogram '" + name + "' needs at least one finite bucket bound");
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
        throw error(errc::invalid_argument,
                    "histogram '" + name +
                        "': bucket bounds must be finite and strictly increasing; saw " +
                        std::to_string(bounds[i]) + " at index " + std::to_string(i));
      }
    }
    for (const auto& l : label_names) {
      if (l == "le")
        throw error(errc::invalid_argument,
                    "histogram '" + name + "' cannot have a label named 'le'");
    }
    return add<histogram>(std::move(name), std::move(help), std::move(label_names),
                          std::move(bounds));
  }

  /// An unlabelled counter (its family's only child).
  counter add_counter(std::string name, std::string help) {
    return add_counter_family(std::move(name), std::move(help)).get();
  }
  gauge add_gauge(std::string name, std::string help) {
    return add_gauge_family(std::move(name), std::move(help)).get();
  }
  histogram add_histogram(std::string name, std::string help,
                          std::vector<double> bounds = default_latency_buckets()) {
    return add_histogram_family(std::move(name), std::move(help), {}, std::move(bounds)).get();
  }

  /// Every family, sorted by name, with every child's current value.
  [[nodiscard]] std::vector<family_snapshot> collect() const {
    std::vector<const detail::family_base*> fams;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [name, f] : families_) fams.push_back(f.get());
    }
    std::vector<family_snapshot> out;
    out.reserve(fams.size());
    for (const auto* f : fams) out.push_back(f->snapshot());
    return out;
  }

 private:
  template <class Metric>
  family<Metric>& add(std::string name, std::string help, std::vector<std::string> label_names,
                      std::vector<double> bounds) {
    if (!detail::is_metric_name(name))
      throw error(errc::invalid_argument,
                  "invalid metric name '" + name + "': must match [a-zA-Z_:][a-zA-Z0-9_:]*");
    if (!detail::is_valid_utf8(help))
      throw error(errc::invalid_argument, "metric '" + name + "': help text is not valid UTF-8");
    for (std::size_t i = 0; i < label_names.size(); ++i) {
      if (!detail::is_label_name(label_names[i]))
        throw error(errc::invalid_argument,
                    "metric '" + name + "': invalid label name '" + label_names[i] +
                        "': must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __");
      for (std::size_t j = 0; j < i; ++j) {
        if (label_names[j] == label_names[i])
          throw error(errc::invalid_argument,
                      "metric '" + name + "': label '" + label_names[i] + "' appears twice");
      }
    }
    std::lock_guard lock(mutex_);
    if (auto it = families_.find(name); it != families_.end()) {
      auto* existing = dynamic_cast<family<Metric>*>(it->second.get());
      if (existing == nullptr)
        throw error(errc::invalid_argument,
                    "metric '" + name + "' is already registered with another type");
      if (existing->help() != help || existing->label_names() != label_names ||
          existing->bounds() != bounds)
        throw error(
            errc::invalid_argument,
            "metric '" + name + "' is already registered with other help, labels or buckets");
      return *existing;
    }
    // The exposition's histogram series would clash with these names.
    for (const auto& [other, f] : families_) {
      if (clashes(name, Metric{}, other, f->type()))
        throw error(errc::invalid_argument,
                    "metric '" + name + "' clashes with the series of '" + other + "'");
    }
    auto f = std::make_unique<family<Metric>>(std::move(name), std::move(help),
                                              std::move(label_names), std::move(bounds));
    auto& ref = *f;
    families_.emplace(ref.name(), std::move(f));
    return ref;
  }

  template <class Metric>
  static bool clashes(const std::string& name, Metric, const std::string& other,
                      metric_type other_type) {
    const auto derived = [](const std::string& base, const std::string& n) {
      return n == base + "_bucket" || n == base + "_sum" || n == base + "_count";
    };
    if (other_type == metric_type::histogram && derived(other, name)) return true;
    if (std::is_same_v<Metric, histogram> && derived(name, other)) return true;
    return false;
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<detail::family_base>, std::less<>> families_;
};

}  // namespace seckill::obs
