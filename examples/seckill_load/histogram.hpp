#pragma once
// seckill_load's latency histogram: log-linear buckets in the manner of
// HdrHistogram, so every recorded value is kept to a stated relative
// precision in a fixed amount of memory, and two histograms with the same
// layout merge by adding their counts.

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace seckill_load {

/// @brief Counts of non-negative integer values (seckill_load records
///        microseconds) in log-linear buckets: values below 2^(P+1) are
///        kept exactly, above that each power-of-two range is split into
///        2^P equal buckets, so a value is known to within 1/2^P of itself
///        (P = `precision_bits`, 10 by default: 0.1%). Values above
///        `highest` are counted in the top bucket and reported as
///        `saturated()`.
///
/// Percentiles are HdrHistogram's: the highest value equivalent to the
/// bucket that holds the requested rank (never below the true value, at
/// most 1/2^P above it), capped at the largest value recorded.
///
/// Thread-safety: none (one owner; merge copies from others). Cost: the
/// buckets are allocated once in the constructor (181 KiB for
/// microseconds up to an hour at P = 10); record() is a bit scan, a shift
/// and an increment; a percentile is a scan of the buckets.
class histogram {
 public:
  static constexpr int min_precision_bits = 1;
  static constexpr int max_precision_bits = 16;

  explicit histogram(std::uint64_t highest = 3'600'000'000ULL, int precision_bits = 10)
      : highest_(highest), bits_(precision_bits) {
    if (precision_bits < min_precision_bits || precision_bits > max_precision_bits)
      throw std::invalid_argument(fmt::format("histogram precision_bits {} out of range [{}, {}]",
                                              precision_bits, min_precision_bits,
                                              max_precision_bits));
    if (highest < 2 || highest > (std::numeric_limits<std::uint64_t>::max() >> 1))
      throw std::invalid_argument(
          fmt::format("histogram highest value {} out of range [2, 2^63)", highest));
    counts_.assign(index_of(highest) + 1, 0);
  }

  /// Adds `n` occurrences of `value` (a value above highest() counts as highest()).
  void record(std::uint64_t value, std::uint64_t n = 1) noexcept {
    if (n == 0) return;
    if (value > highest_) {
      saturated_ += n;
      value = highest_;
    }
    counts_[index_of(value)] += n;
    total_ += n;
    sum_ += static_cast<double>(value) * static_cast<double>(n);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  /// Adds every count of `other`; throws std::invalid_argument when the
  /// layouts (highest value, precision) differ.
  void merge(const histogram& other) {
    if (other.highest_ != highest_ || other.bits_ != bits_)
      throw std::invalid_argument(fmt::format(
          "cannot merge a histogram of highest {} and {} precision bits into one of highest {} "
          "and {} precision bits",
          other.highest_, other.bits_, highest_, bits_));
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    saturated_ += other.saturated_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  void reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = saturated_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<std::uint64_t>::max();
    max_ = 0;
  }

  /// The value at quantile `q` in [0, 1] (0 when empty): the smallest
  /// bucket whose cumulative count reaches ceil(q * count), as its highest
  /// equivalent value, capped at max().
  [[nodiscard]] std::uint64_t value_at(double q) const noexcept {
    if (total_ == 0) return 0;
    q = std::clamp(std::isnan(q) ? 1.0 : q, 0.0, 1.0);
    // ceil(q x count), forgiving the last bits of floating-point noise:
    // 99.9 / 100 x 1000 is rank 999, not 1000
    const double exact_rank = q * static_cast<double>(total_);
    const auto rank =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(exact_rank * (1 - 1e-12))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_equivalent(i), max_);
    }
    return max_;
  }
  /// value_at(p / 100).
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept { return value_at(p / 100.0); }

  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t saturated() const noexcept { return saturated_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept {
    return total_ ? sum_ / static_cast<double>(total_) : 0.0;
  }
  [[nodiscard]] std::uint64_t highest() const noexcept { return highest_; }
  [[nodiscard]] int precision_bits() const noexcept { return bits_; }
  /// The number of buckets (the memory is buckets() x 8 bytes).
  [[nodiscard]] std::size_t buckets() const noexcept { return counts_.size(); }

  /// The largest relative error of a recorded value: 1 / 2^precision_bits.
  [[nodiscard]] double relative_precision() const noexcept {
    return 1.0 / static_cast<double>(std::uint64_t{1} << bits_);
  }

  /// The bucket `value` falls in.
  [[nodiscard]] std::size_t index_of(std::uint64_t value) const noexcept {
    const int width = std::bit_width(value);
    const int shift = std::max(0, width - bits_ - 1);
    return (static_cast<std::size_t>(shift) << bits_) + static_cast<std::size_t>(value >> shift);
  }
  /// The smallest value in bucket `index`.
  [[nodiscard]] std::uint64_t lowest_equivalent(std::size_t index) const noexcept {
    const std::size_t sub = std::size_t{1} << bits_;
    if (index < 2 * sub) return index;
    const std::size_t shift = (index >> bits_) - 1;
    return static_cast<std::uint64_t>(index - (shift << bits_)) << shift;
  }
  /// The largest value in bucket `index`.
  [[nodiscard]] std::uint64_t highest_equivalent(std::size_t index) const noexcept {
    const std::size_t sub = std::size_t{1} << bits_;
    if (index < 2 * sub) return index;
    const std::size_t shift = (index >> bits_) - 1;
    return lowest_equivalent(index) + (std::uint64_t{1} << shift) - 1;
  }

 private:
  std::uint64_t highest_;
  int bits_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t saturated_ = 0;
  double sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace seckill_load
