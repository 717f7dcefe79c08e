#pragma once
/// @file
/// @brief The Prometheus text exposition format 0.0.4 for a
///        `seckill::obs::registry`: what a `/metrics` answer holds. The
///        standard library only; obs/metrics_server.hpp serves it over HTTP.
///
/// @code
/// seckill::obs::registry reg;
/// std::string body = seckill::obs::to_text(reg);   // Content-Type:
/// seckill::obs::text_content_type
/// @endcode

#include <seckill/obs/metrics.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace seckill::obs {

/// @brief The Content-Type of the text exposition format 0.0.4.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace detail {

/// A sample value as Prometheus parses it: +Inf, -Inf, NaN, or the shortest
/// decimal that reads back to the same double.
inline void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    // The shortest digits that read back to `v`: in fixed notation for
    // exponents in [-4, 16) ("100000", "0.0001"), scientific otherwise
    // ("1e+16", "1e-05").
    std::array<char, 400> buf{};  // fixed notation of a double below 1e16 or above 1e-5 fits
    auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
    const std::string_view sci(buf.data(), static_cast<std::size_t>(r.ptr - buf.data()));
    int exponent = 0;
    const auto e = sci.find('e');
    std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                    exponent);
    if (exponent >= -4 && exponent < 16)
      r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
    out.append(buf.data(), r.ptr);
  }
}

inline void append_value(std::string& out, std::uint64_t v) {
  std::array<char, 24> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

/// HELP text: backslash and line feed are escaped.
inline void append_help_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

/// Label values: backslash, double quote and line feed are escaped.
inline void append_label_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

/// `{a="x",b="y"}` (nothing when there is no label), with `le` appended when given.
inline void append_labels(std::string& out, const std::vector<std::string>& names,
                          const std::vector<std::string>& values, const char* le = nullptr,
                          double le_value = 0) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_label_escaped(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += le;
    out += "=\"";
    append_value(out, le_value);
    out += '"';
  }
  out += '}';
}

}  // namespace detail

/// @brief Appends the text exposition (format 0.0.4) of `families` to `out`:
///        `# HELP` and `# TYPE` per family, one line per sample; histograms as
///        cumulative `_bucket{le=...}` lines ending with `le="+Inf"`, then
///        `_sum` and `_count`. A family without children prints only its
///        HELP and TYPE lines. Cost: proportional to the number of samples.
inline void write_text(const std::vector<family_snapshot>& families, std::string& out) {
  for (const auto& f : families) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    detail::append_help_escaped(out, f.help);
    out += "\n# TYPE ";
    out += f.name;
    out += f.type == metric_type::counter ? " counter\n"
           : f.type == metric_type::gauge ? " gauge\n"
                                          : " histogram\n";
    for (const auto& c : f.children) {
      if (f.type != metric_type::histogram) {
        out += f.name;
        detail::append_labels(out, f.label_names, c.label_values);
        out += ' ';
        detail::append_value(out, c.value);
        out += '\n';
        continue;
      }
      for (std::size_t i = 0; i < c.cumulative.size(); ++i) {
        out += f.name;
        out += "_bucket";
        const double le =
            i < f.bounds.size() ? f.bounds[i] : std::numeric_limits<double>::infinity();
        detail::append_labels(out, f.label_names, c.label_values, "le", le);
        out += ' ';
        detail::append_value(out, c.cumulative[i]);
        out += '\n';
      }
      out += f.name;
      out += "_sum";
      detail::append_labels(out, f.label_names, c.label_values);
      out += ' ';
      detail::append_value(out, c.sum);
      out += '\n';
      out += f.name;
      out += "_count";
      detail::append_labels(out, f.label_names, c.label_values);
      out += ' ';
      detail::append_value(out, c.cumulative.empty() ? std::uint64_t{0} : c.cumulative.back());
      out += '\n';
    }
  }
}

/// @brief The text exposition of everything in `reg` (a scrape).
inline std::string to_text(const registry& reg) {
  std::string out;
  write_text(reg.collect(), out);
  return out;
}

}  // namespace seckill::obs
