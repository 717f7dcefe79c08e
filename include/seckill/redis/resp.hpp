#pragma once
/// @file
/// @brief The Redis wire protocol (RESP2 and RESP3): a value type, an encoder
///        for commands and values, and an incremental, bounded parser.
///
/// The parser is fed bytes as they arrive (any split, down to one byte at a
/// time) and yields one complete top-level value at a time. It understands
/// every RESP3 type Redis sends: simple strings, errors, integers, bulk
/// strings, arrays, nulls (`_`, `$-1`, `*-1`), booleans, doubles (with `inf`,
/// `-inf`, `nan`), big numbers, blob errors, verbatim strings, maps, sets,
/// push messages and attributes (attached to the value they annotate).
/// Streamed strings and aggregates (`$?`, `*?`) are refused: Redis never
/// sends them.
///
/// Every limit is checked before anything is allocated for it: a bulk length
/// above `max_bulk_length`, a reply above `max_reply_bytes` or one whose
/// aggregates declare more than `max_reply_elements` values in all ends the
/// parse with `errc::message_too_large`, an aggregate nested deeper than
/// `max_depth` with `errc::nesting_too_deep`, and anything malformed with
/// `errc::protocol_error`; `parser::error_message()` says what was seen. A
/// parser that failed stays failed until `reset()`: a byte stream cannot be
/// resynchronised, so the connection that owns it is closed.

#include <seckill/error.hpp>
#include <seckill/redis/error.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace seckill::redis {

/// @brief The RESP type of a value, named after the protocol's type bytes.
enum class resp_type : std::uint8_t {
  simple_string,    ///< `+`
  simple_error,     ///< `-`
  integer,          ///< `:`
  bulk_string,      ///< `$`
  array,            ///< `*`
  null,             ///< `_`, and RESP2's `$-1` and `*-1`
  boolean,          ///< `#`
  double_number,    ///< `,`
  big_number,       ///< `(` (the digits are kept as text)
  blob_error,       ///< `!`
  verbatim_string,  ///< `=` (format in `value::format`, text without it)
  map,              ///< `%` (elements alternate key, value)
  set,              ///< `~`
  push,             ///< `>` (out-of-band data: pub/sub messages, invalidations)
  attribute,        ///< `|` (only while parsing; attached to the next value)
};

/// @brief The type's name in words ("bulk string", "map", ...), for messages.
constexpr std::string_view to_string(resp_type t) noexcept {
  switch (t) {
    case resp_type::simple_string:
      return "simple string";
    case resp_type::simple_error:
      return "simple error";
    case resp_type::integer:
      return "integer";
    case resp_type::bulk_string:
      return "bulk string";
    case resp_type::array:
      return "array";
    case resp_type::null:
      return "null";
    case resp_type::boolean:
      return "boolean";
    case resp_type::double_number:
      return "double";
    case resp_type::big_number:
      return "big number";
    case resp_type::blob_error:
      return "blob error";
    case resp_type::verbatim_string:
      return "verbatim string";
    case resp_type::map:
      return "map";
    case resp_type::set:
      return "set";
    case resp_type::push:
      return "push";
    case resp_type::attribute:
      return "attribute";
  }
  return "unknown";
}

/// @brief One RESP value, a tree for aggregates.
///
/// Scalars use `text` (strings, errors, big numbers, verbatim text),
/// `integer` (also booleans: 0 or 1) or `number` (doubles). Aggregates use
/// `elements`; a map's elements alternate key and value. `attributes` holds
/// the key/value pairs of a RESP3 attribute that preceded the value.
/// Thread-safety: a plain value. Cost: strings longer than the SSO buffer
/// and aggregates allocate.
struct value {
  resp_type type = resp_type::null;
  std::string text;
  std::int64_t integer = 0;
  double number = 0;
  std::array<char, 3> format{};  ///< a verbatim string's format, e.g. "txt"
  std::vector<value> elements;
  std::vector<value> attributes;

  [[nodiscard]] bool is_null() const noexcept { return type == resp_type::null; }
  [[nodiscard]] bool is_error() const noexcept {
    return type == resp_type::simple_error || type == resp_type::blob_error;
  }
  [[nodiscard]] bool is_string() const noexcept {
    return type == resp_type::simple_string || type == resp_type::bulk_string ||
           type == resp_type::verbatim_string;
  }
  [[nodiscard]] bool is_aggregate() const noexcept {
    return type == resp_type::array || type == resp_type::map || type == resp_type::set ||
           type == resp_type::push || type == resp_type::attribute;
  }
  /// The error's code word ("NOSCRIPT", "WRONGPASS", "ERR"), empty for a non-error.
  [[nodiscard]] std::string_view error_code() const noexcept {
    if (!is_error()) return {};
    const std::string_view t = text;
    return t.substr(0, t.find(' '));
  }

  friend bool operator==(const value& a, const value& b) {
    if (a.type != b.type || a.text != b.text || a.integer != b.integer || a.format != b.format ||
        a.elements != b.elements || a.attributes != b.attributes)
      return false;
    if (std::isnan(a.number) && std::isnan(b.number)) return true;
    return a.number == b.number;
  }
};

/// @brief Makes values for tests and callers that build replies by hand.
namespace make {
inline value simple(std::string s) {
  value v;
  v.type = resp_type::simple_string;
  v.text = std::move(s);
  return v;
}
inline value error(std::string s) {
  value v;
  v.type = resp_type::simple_error;
  v.text = std::move(s);
  return v;
}
inline value bulk(std::string s) {
  value v;
  v.type = resp_type::bulk_string;
  v.text = std::move(s);
  return v;
}
inline value integer(std::int64_t i) {
  value v;
  v.type = resp_type::integer;
  v.integer = i;
  return v;
}
inline value null() { return {}; }
inline value boolean(bool b) {
  value v;
  v.type = resp_type::boolean;
  v.integer = b ? 1 : 0;
  return v;
}
inline value number(double d) {
  value v;
  v.type = resp_type::double_number;
  v.number = d;
  return v;
}
inline value aggregate(resp_type t, std::vector<value> e) {
  value v;
  v.type = t;
  v.elements = std::move(e);
  return v;
}
inline value array(std::vector<value> e) { return aggregate(resp_type::array, std::move(e)); }
}  // namespace make

/// @brief The parser's bounds. The defaults suit a client of a trusted server.
///
/// Bytes on the wire and memory in the client differ most for small values:
/// every value costs `sizeof(value)` (112 bytes with libstdc++ on 64 bits)
/// however few bytes it took on the wire, so 48 MB of three-byte nulls
/// (`_\r\n`) would become 1.8 GB of values. `max_reply_elements` bounds
/// that: the default keeps one reply's values under about 235 MB, as
/// `max_reply_bytes` keeps its bytes under 256 MB.
struct parser_limits {
  std::size_t max_depth = 32;               ///< aggregates nested deeper fail: nesting_too_deep
  std::size_t max_bulk_length = 64u << 20;  ///< one string's bytes: message_too_large above
  std::size_t max_aggregate_size = 1u
                                   << 24;  ///< elements in one aggregate: message_too_large above
  std::size_t max_reply_bytes = 256u
                                << 20;  ///< bytes of one top-level reply: message_too_large above
  std::size_t max_line_length = 64u << 10;  ///< a `+`, `-`, `:`... line: message_too_large above
  /// Values inside one top-level reply's aggregates, at every depth (a
  /// map's keys and values, an attribute's too), counted as each aggregate's
  /// header declares them, before any is allocated: message_too_large above.
  std::size_t max_reply_elements = 1u << 21;
};

// ---------------------------------------------------------------- encoding

/// @brief One argument made of pieces (strings and integers) written one
///        after the other, straight into the request: `req.push("GET",
///        joined("user:", id, ":name"))` sends `user:42:name` without
///        building that string first.
///
/// Holds string views (the characters must outlive the `push`) and
/// integers by value. Thread-safety: a plain value. Cost: none beyond the
/// request's own bytes.
template <class... Parts>
class joined {
 public:
  explicit joined(const Parts&... parts) : parts_(stored(parts)...) {}

  /// The bytes the argument is made of.
  [[nodiscard]] std::size_t size() const noexcept {
    return std::apply([](const auto&... p) { return (piece_size(p) + ... + std::size_t{0}); },
                      parts_);
  }
  /// Appends the bytes to `out` (a `std::string`, or a request's buffer).
  template <class Out>
  void append_to(Out& out) const {
    std::apply([&](const auto&... p) { (append_piece(out, p), ...); }, parts_);
  }
  /// The argument as a string.
  [[nodiscard]] std::string str() const {
    std::string out;
    out.reserve(size());
    append_to(out);
    return out;
  }

 private:
  template <class T>
  static auto stored(const T& part) {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
      return static_cast<std::int64_t>(part);
    else
      return std::string_view(part);
  }
  static std::size_t piece_size(std::string_view s) noexcept { return s.size(); }
  static std::size_t piece_size(std::int64_t n) noexcept {
    char buf[24];
    return static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, n).ptr - buf);
  }
  template <class Out>
  static void append_piece(Out& out, std::string_view s) {
    out.append(s.data(), s.size());
  }
  template <class Out>
  static void append_piece(Out& out, std::int64_t n) {
    char buf[24];
    out.append(buf, static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, n).ptr - buf));
  }

  std::tuple<decltype(stored(std::declval<const Parts&>()))...> parts_;
};

namespace detail {

template <class T>
inline constexpr bool is_joined = false;
template <class... Parts>
inline constexpr bool is_joined<joined<Parts...>> = true;

/// Bytes of which the first `Inline` live in the object itself: a request
/// of a usual size costs no allocation, and moving one copies at most
/// `Inline` bytes.
template <std::size_t Inline>
class small_bytes {
 public:
  small_bytes() noexcept = default;
  small_bytes(const small_bytes& other) { append(other.data(), other.size()); }
  small_bytes(small_bytes&& other) noexcept { take(other); }
  small_bytes& operator=(const small_bytes& other) {
    if (this != &other) {
      clear();
      append(other.data(), other.size());
    }
    return *this;
  }
  small_bytes& operator=(small_bytes&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  ~small_bytes() { delete[] heap_; }

  [[nodiscard]] const char* data() const noexcept { return heap_ != nullptr ? heap_ : inline_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept {
    return heap_ != nullptr ? capacity_ : Inline;
  }
  [[nodiscard]] bool on_heap() const noexcept { return heap_ != nullptr; }

  void clear() noexcept { size_ = 0; }
  /// Clears and gives back the heap storage, if any.
  void release() noexcept {
    delete[] heap_;
    heap_ = nullptr;
    capacity_ = 0;
    size_ = 0;
  }
  void reserve(std::size_t n) {
    if (n > capacity()) grow_to(n);
  }
  void push_back(char c) {
    make_room(1);
    buffer()[size_++] = c;
  }
  void append(const char* p, std::size_t n) {
    if (n == 0) return;
    make_room(n);
    std::memcpy(buffer() + size_, p, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }

 private:
  char* buffer() noexcept { return heap_ != nullptr ? heap_ : inline_; }
  void make_room(std::size_t n) {
    if (size_ + n > capacity()) grow_to(std::max(size_ + n, 2 * capacity()));
  }
  void grow_to(std::size_t n) {
    char* const bigger = new char[n];
    std::memcpy(bigger, data(), size_);
    delete[] heap_;
    heap_ = bigger;
    capacity_ = n;
  }
  void take(small_bytes& other) noexcept {
    if (other.heap_ != nullptr) {
      heap_ = std::exchange(other.heap_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
    } else {
      std::memcpy(inline_, other.inline_, other.size_);
    }
    size_ = std::exchange(other.size_, 0);
  }

  char* heap_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;  // of heap_
  char inline_[Inline];
};

template <class Out>
void append_decimal(Out& out, std::int64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

template <class Out>
void append_bulk(Out& out, std::string_view s) {
  out.push_back('$');
  append_decimal(out, static_cast<std::int64_t>(s.size()));
  out.append("\r\n", 2);
  out.append(s.data(), s.size());
  out.append("\r\n", 2);
}

template <class Out, class T>
void append_argument(Out& out, const T& arg) {
  if constexpr (is_joined<T>) {
    out.push_back('$');
    append_decimal(out, static_cast<std::int64_t>(arg.size()));
    out.append("\r\n", 2);
    arg.append_to(out);
    out.append("\r\n", 2);
  } else if constexpr (std::is_same_v<T, bool>) {
    append_bulk(out, arg ? "1" : "0");
  } else if constexpr (std::is_integral_v<T>) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, arg);
    append_bulk(out, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  } else if constexpr (std::is_floating_point_v<T>) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, arg);
    append_bulk(out, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  } else {
    append_bulk(out, std::string_view(arg));
  }
}

}  // namespace detail

/// @brief One or more commands, encoded as RESP arrays of bulk strings,
///        sent together and answered with one reply per command.
///
/// Arguments are strings (anything convertible to `std::string_view`),
/// integers, floating-point numbers or `joined` pieces. Thread-safety: a
/// plain value. Cost: the first `inline_bytes` of encoded commands are kept
/// in the object itself (a store's reserve, about 400 bytes, allocates
/// nothing); beyond that one buffer on the heap, grown by doubling
/// (`reserve` sizes it at once). Moving copies the inline bytes.
class request {
 public:
  /// Encoded bytes kept without an allocation.
  static constexpr std::size_t inline_bytes = 768;

  /// Appends the command `args...` (the first argument is the command name).
  template <class... Args>
  request& push(const Args&... args) {
    static_assert(sizeof...(Args) > 0, "a command has a name");
    payload_.push_back('*');
    detail::append_decimal(payload_, static_cast<std::int64_t>(sizeof...(Args)));
    payload_.append("\r\n", 2);
    (detail::append_argument(payload_, args), ...);
    ++commands_;
    return *this;
  }

  /// Appends the command `name` followed by every element of `args`.
  template <class Range>
  request& push_range(std::string_view name, const Range& args) {
    std::size_t n = 1;
    for (const auto& a : args) {
      (void)a;
      ++n;
    }
    payload_.push_back('*');
    detail::append_decimal(payload_, static_cast<std::int64_t>(n));
    payload_.append("\r\n", 2);
    detail::append_bulk(payload_, name);
    for (const auto& a : args) detail::append_argument(payload_, a);
    ++commands_;
    return *this;
  }

  /// Appends every command of `other`.
  request& append(const request& other) {
    payload_.append(other.payload_.data(), other.payload_.size());
    commands_ += other.commands_;
    return *this;
  }

  /// Makes room for `bytes` of encoded commands (one allocation above
  /// `inline_bytes`, none below).
  void reserve(std::size_t bytes) { payload_.reserve(bytes); }

  [[nodiscard]] std::size_t size() const noexcept { return commands_; }
  [[nodiscard]] bool empty() const noexcept { return commands_ == 0; }
  [[nodiscard]] std::string_view payload() const noexcept {
    return {payload_.data(), payload_.size()};
  }
  /// True when the bytes outgrew `inline_bytes` and live on the heap.
  [[nodiscard]] bool allocated() const noexcept { return payload_.on_heap(); }
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
  }
  /// Clears and gives back the heap buffer, if any.
  void release() noexcept {
    payload_.release();
    commands_ = 0;
  }

 private:
  detail::small_bytes<inline_bytes> payload_;
  std::size_t commands_ = 0;
};

namespace detail {
inline void encode_aggregate_header(std::string& out, char c, std::size_t n) {
  out.push_back(c);
  append_decimal(out, static_cast<std::int64_t>(n));
  out.append("\r\n");
}
}  // namespace detail

/// @brief Appends `v` to `out` in RESP3 (RESP2 types where they exist). The
///        parser reads back an equal value; used by tests, fuzzers and fakes.
///        Simple strings and errors must not contain CR or LF.
inline void encode(const value& v, std::string& out) {
  if (!v.attributes.empty()) detail::encode_aggregate_header(out, '|', v.attributes.size() / 2);
  for (const auto& a : v.attributes) encode(a, out);
  switch (v.type) {
    case resp_type::simple_string:
      out += '+';
      out += v.text;
      out += "\r\n";
      break;
    case resp_type::simple_error:
      out += '-';
      out += v.text;
      out += "\r\n";
      break;
    case resp_type::integer:
      out += ':';
      detail::append_decimal(out, v.integer);
      out += "\r\n";
      break;
    case resp_type::bulk_string:
      detail::append_bulk(out, v.text);
      break;
    case resp_type::null:
      out += "_\r\n";
      break;
    case resp_type::boolean:
      out += v.integer ? "#t\r\n" : "#f\r\n";
      break;
    case resp_type::double_number: {
      out += ',';
      if (std::isnan(v.number))
        out += "nan";
      else if (std::isinf(v.number))
        out += v.number > 0 ? "inf" : "-inf";
      else {
        char buf[64];
        const auto r = std::to_chars(buf, buf + sizeof buf, v.number);
        out.append(buf, r.ptr);
      }
      out += "\r\n";
      break;
    }
    case resp_type::big_number:
      out += '(';
      out += v.text;
      out += "\r\n";
      break;
    case resp_type::blob_error:
      out += '!';
      detail::append_decimal(out, static_cast<std::int64_t>(v.text.size()));
      out += "\r\n";
      out += v.text;
      out += "\r\n";
      break;
    case resp_type::verbatim_string:
      out += '=';
      detail::append_decimal(out, static_cast<std::int64_t>(v.text.size() + 4));
      out += "\r\n";
      out.append(v.format.data(), 3);
      out += ':';
      out += v.text;
      out += "\r\n";
      break;
    case resp_type::map:
    case resp_type::attribute:
      detail::encode_aggregate_header(out, v.type == resp_type::map ? '%' : '|',
                                      v.elements.size() / 2);
      for (const auto& e : v.elements) encode(e, out);
      break;
    case resp_type::array:
    case resp_type::set:
    case resp_type::push:
      detail::encode_aggregate_header(out,
                                      v.type == resp_type::array ? '*'
                                      : v.type == resp_type::set ? '~'
                                                                 : '>',
                                      v.elements.size());
      for (const auto& e : v.elements) encode(e, out);
      break;
  }
}

// ---------------------------------------------------------------- parsing

/// @brief An incremental RESP2/RESP3 parser with bounds (see the file comment).
///
/// Usage: call `consume(bytes, ec)` with whatever arrived; it returns how many
/// bytes it used and stops right after a complete top-level value, so
/// `done()` is true and `take()` moves it out. Call again with the rest.
/// Thread-safety: none; one owner. Cost: no copy of a line or bulk that
/// arrived whole besides the value's own storage; a line split across reads
/// is buffered.
class parser {
 public:
  explicit parser(parser_limits limits = {}) : limits_(limits) {}

  /// Parses from `data`; returns the bytes used. Sets `ec` (and keeps
  /// failing) on malformed or oversized input.
  std::size_t consume(std::string_view data, std::error_code& ec) {
    ec.clear();
    if (failed_) {
      ec = failure_;
      return 0;
    }
    std::size_t used = 0;
    while (used < data.size() && !done_) {
      std::size_t n = 0;
      if (bulk_pending_)
        n = consume_bulk(data.substr(used), ec);
      else
        n = consume_line(data.substr(used), ec);
      used += n;
      if (ec) return used;
    }
    return used;
  }

  /// True when a complete top-level value is ready for `take()`.
  [[nodiscard]] bool done() const noexcept { return done_; }

  /// Moves the complete value out and readies the parser for the next one.
  value take() {
    value v = std::move(root_);
    root_ = value{};
    done_ = false;
    reply_bytes_ = 0;
    reply_elements_ = 0;
    return v;
  }

  /// Forgets everything, including a failure: for a new connection.
  void reset() {
    root_ = value{};
    stack_.clear();
    line_.clear();
    attr_slot_ = nullptr;
    bulk_ = nullptr;
    bulk_pending_ = false;
    done_ = false;
    failed_ = false;
    failure_.clear();
    message_.clear();
    reply_bytes_ = 0;
    reply_elements_ = 0;
  }

  /// Why the parse failed, with the value seen; empty when it has not.
  [[nodiscard]] const std::string& error_message() const noexcept { return message_; }
  [[nodiscard]] const parser_limits& limits() const noexcept { return limits_; }
  /// True while part of a value has been read.
  [[nodiscard]] bool in_progress() const noexcept {
    return !done_ && (!stack_.empty() || bulk_pending_ || !line_.empty() || attr_slot_ != nullptr);
  }

 private:
  struct frame {
    value* aggregate;       // the aggregate being filled
    std::size_t remaining;  // elements still due
  };

  static std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 40)) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) {
        out += c;
      } else {
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
      }
    }
    if (s.size() > 40) out += "...";
    return out;
  }

  void fail(std::error_code& ec, std::error_code e, std::string message) {
    failed_ = true;
    failure_ = e;
    ec = failure_;
    message_ = std::move(message);
  }

  // Reads up to and including the next LF; processes the line when complete.
  std::size_t consume_line(std::string_view data, std::error_code& ec) {
    // The checks run in the same order whether a line arrives whole or in
    // pieces, so a reply fails with the same error however reads split it:
    // type byte, then length, then the reply's size, then the CRLF.
    const std::size_t lf = data.find('\n');
    if (line_.empty() && !valid_type_byte(data[0])) {
      fail(ec, seckill::errc::protocol_error,
           "unknown RESP type byte in '" + printable(data.substr(0, lf)) + "'");
      return lf == std::string_view::npos ? data.size() : lf + 1;
    }
    if (lf == std::string_view::npos) {
      // a piece that already holds max_line_length + 2 bytes without its LF
      // can only end in a line that is too long
      if (line_.size() + data.size() > limits_.max_line_length + 1) {
        fail(ec, seckill::errc::message_too_large,
             "line longer than max_line_length " + std::to_string(limits_.max_line_length) +
                 " starting '" + printable(line_.empty() ? data : std::string_view(line_)) + "'");
        return data.size();
      }
      line_.append(data);
      return data.size();
    }
    std::string_view line;
    if (line_.empty()) {
      line = data.substr(0, lf + 1);
    } else {
      line_.append(data.substr(0, lf + 1));
      line = line_;
    }
    if (line.size() > limits_.max_line_length + 2) {
      fail(ec, seckill::errc::message_too_large,
           "line longer than max_line_length " + std::to_string(limits_.max_line_length) +
               " starting '" + printable(line) + "'");
      return lf + 1;
    }
    if (!count_reply_bytes(line.size(), ec)) return lf + 1;
    if (line.size() < 3 || line[line.size() - 2] != '\r') {
      fail(ec, seckill::errc::protocol_error, "line not ended by CRLF: '" + printable(line) + "'");
      return lf + 1;
    }
    process_line(line.substr(0, line.size() - 2), ec);
    line_.clear();
    return lf + 1;
  }

  // Counts `n` more bytes of the current top-level reply: a whole line, or
  // a whole bulk payload as soon as its length is known, so that the limit
  // is reached at the same place however the reply was split into reads.
  bool count_reply_bytes(std::size_t n, std::error_code& ec) {
    reply_bytes_ += n;
    if (reply_bytes_ <= limits_.max_reply_bytes) return true;
    fail(ec, seckill::errc::message_too_large,
         "reply larger than max_reply_bytes " + std::to_string(limits_.max_reply_bytes));
    return false;
  }

  static bool valid_type_byte(char c) noexcept {
    switch (c) {
      case '+':
      case '-':
      case ':':
      case '$':
      case '*':
      case '_':
      case '#':
      case ',':
      case '(':
      case '!':
      case '=':
      case '%':
      case '~':
      case '>':
      case '|':
        return true;
      default:
        return false;
    }
  }

  value& begin_slot() {
    value* slot = nullptr;
    if (attr_slot_ != nullptr) {
      slot = attr_slot_;
      attr_slot_ = nullptr;
      std::vector<value> attrs = std::move(slot->elements);
      std::vector<value> older = std::move(slot->attributes);
      *slot = value{};
      // attributes of an attribute are flattened in front of it
      older.insert(older.end(), std::make_move_iterator(attrs.begin()),
                   std::make_move_iterator(attrs.end()));
      slot->attributes = std::move(older);
    } else if (stack_.empty()) {
      slot = &root_;
    } else {
      slot = &stack_.back().aggregate->elements.emplace_back();
    }
    return *slot;
  }

  // A value is complete: count it in its parent, closing every aggregate it completes.
  void complete(value* v) {
    for (;;) {
      if (v->type == resp_type::attribute) {
        attr_slot_ = v;  // the value it annotates comes next, in the same slot
        return;
      }
      if (stack_.empty()) {
        done_ = true;
        return;
      }
      frame& top = stack_.back();
      if (--top.remaining > 0) return;
      v = top.aggregate;
      stack_.pop_back();
    }
  }

  bool parse_length(std::string_view digits, std::int64_t& out, std::string_view line,
                    std::error_code& ec) {
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    if (digits.empty() || r.ec != std::errc{} || r.ptr != digits.data() + digits.size()) {
      fail(ec, seckill::errc::protocol_error, "bad length in '" + printable(line) + "'");
      return false;
    }
    return true;
  }

  void process_line(std::string_view line, std::error_code& ec) {
    const char type = line[0];
    const std::string_view body = line.substr(1);
    switch (type) {
      case '+':
      case '-':
      case '(': {
        if (type == '(' && !valid_big_number(body)) {
          fail(ec, seckill::errc::protocol_error, "bad big number '" + printable(line) + "'");
          return;
        }
        value& v = begin_slot();
        v.type = type == '+'   ? resp_type::simple_string
                 : type == '-' ? resp_type::simple_error
                               : resp_type::big_number;
        v.text.assign(body);
        complete(&v);
        return;
      }
      case ':': {
        std::int64_t n = 0;
        const auto r = std::from_chars(body.data(), body.data() + body.size(), n);
        if (body.empty() || r.ec != std::errc{} || r.ptr != body.data() + body.size()) {
          fail(ec, seckill::errc::protocol_error, "bad integer '" + printable(line) + "'");
          return;
        }
        value& v = begin_slot();
        v.type = resp_type::integer;
        v.integer = n;
        complete(&v);
        return;
      }
      case '_': {
        if (!body.empty()) {
          fail(ec, seckill::errc::protocol_error, "bad null '" + printable(line) + "'");
          return;
        }
        complete(&begin_slot());
        return;
      }
      case '#': {
        if (body != "t" && body != "f") {
          fail(ec, seckill::errc::protocol_error, "bad boolean '" + printable(line) + "'");
          return;
        }
        value& v = begin_slot();
        v.type = resp_type::boolean;
        v.integer = body == "t" ? 1 : 0;
        complete(&v);
        return;
      }
      case ',': {
        double d = 0;
        if (body == "inf" || body == "+inf")
          d = std::numeric_limits<double>::infinity();
        else if (body == "-inf")
          d = -std::numeric_limits<double>::infinity();
        else if (body == "nan" || body == "-nan")
          d = std::numeric_limits<double>::quiet_NaN();
        else {
          const auto r = std::from_chars(body.data(), body.data() + body.size(), d);
          if (body.empty() || r.ec != std::errc{} || r.ptr != body.data() + body.size() ||
              std::isnan(d) || std::isinf(d)) {
            fail(ec, seckill::errc::protocol_error, "bad double '" + printable(line) + "'");
            return;
          }
        }
        value& v = begin_slot();
        v.type = resp_type::double_number;
        v.number = d;
        complete(&v);
        return;
      }
      case '$':
      case '!':
      case '=': {
        if (body == "?") {
          fail(ec, seckill::errc::protocol_error,
               "streamed strings are not supported: '" + printable(line) + "'");
          return;
        }
        std::int64_t n = 0;
        if (!parse_length(body, n, line, ec)) return;
        if (n == -1 && type == '$') {
          complete(&begin_slot());  // RESP2 null bulk string
          return;
        }
        if (n < 0) {
          fail(ec, seckill::errc::protocol_error, "negative length in '" + printable(line) + "'");
          return;
        }
        if (static_cast<std::uint64_t>(n) > limits_.max_bulk_length) {
          fail(ec, seckill::errc::message_too_large,
               "bulk length " + std::to_string(n) + " above max_bulk_length " +
                   std::to_string(limits_.max_bulk_length));
          return;
        }
        if (!count_reply_bytes(static_cast<std::size_t>(n) + 2, ec)) return;
        if (type == '=' && n < 4) {
          fail(ec, seckill::errc::protocol_error,
               "verbatim string shorter than its format: '" + printable(line) + "'");
          return;
        }
        value& v = begin_slot();
        v.type = type == '$'   ? resp_type::bulk_string
                 : type == '!' ? resp_type::blob_error
                               : resp_type::verbatim_string;
        v.text.reserve(static_cast<std::size_t>(n) < 4096 ? static_cast<std::size_t>(n) : 4096);
        bulk_ = &v;
        bulk_remaining_ = static_cast<std::size_t>(n) + 2;
        bulk_pending_ = true;
        return;
      }
      case '*':
      case '%':
      case '~':
      case '>':
      case '|': {
        if (body == "?") {
          fail(ec, seckill::errc::protocol_error,
               "streamed aggregates are not supported: '" + printable(line) + "'");
          return;
        }
        std::int64_t n = 0;
        if (!parse_length(body, n, line, ec)) return;
        if (n == -1 && type == '*') {
          complete(&begin_slot());  // RESP2 null array
          return;
        }
        if (n < 0) {
          fail(ec, seckill::errc::protocol_error, "negative count in '" + printable(line) + "'");
          return;
        }
        const bool pairs = type == '%' || type == '|';
        if (static_cast<std::uint64_t>(n) > limits_.max_aggregate_size / (pairs ? 2 : 1)) {
          fail(ec, seckill::errc::message_too_large,
               "aggregate of " + std::to_string(n) + (pairs ? " pairs" : " elements") +
                   " above max_aggregate_size " + std::to_string(limits_.max_aggregate_size));
          return;
        }
        const std::size_t count = static_cast<std::size_t>(n) * (pairs ? 2 : 1);
        // the values this header declares are counted before any exists: a
        // reply of many tiny values costs sizeof(value) each, not its bytes
        if (count > limits_.max_reply_elements - reply_elements_) {
          fail(ec, seckill::errc::message_too_large,
               "aggregate of " + std::to_string(count) + " values brings the reply to " +
                   std::to_string(reply_elements_ + count) + " values, above max_reply_elements " +
                   std::to_string(limits_.max_reply_elements));
          return;
        }
        if (stack_.size() >= limits_.max_depth) {
          fail(ec, errc::nesting_too_deep,
               "aggregate nested deeper than max_depth " + std::to_string(limits_.max_depth));
          return;
        }
        value& v = begin_slot();
        v.type = type == '*'   ? resp_type::array
                 : type == '%' ? resp_type::map
                 : type == '~' ? resp_type::set
                 : type == '>' ? resp_type::push
                               : resp_type::attribute;
        reply_elements_ += count;
        if (count == 0) {
          complete(&v);
          return;
        }
        v.elements.reserve(count < 256 ? count : 256);
        stack_.push_back({&v, count});
        return;
      }
      default:
        fail(ec, seckill::errc::protocol_error,
             "unknown RESP type byte in '" + printable(line) + "'");
        return;
    }
  }

  static bool valid_big_number(std::string_view s) noexcept {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    if (s.empty()) return false;
    for (char c : s)
      if (c < '0' || c > '9') return false;
    return true;
  }

  std::size_t consume_bulk(std::string_view data, std::error_code& ec) {
    // bulk_remaining_ counts the payload still missing plus its CRLF
    std::size_t used = 0;
    if (bulk_remaining_ > 2) {
      const std::size_t take = std::min(data.size(), bulk_remaining_ - 2);
      bulk_->text.append(data.substr(0, take));
      bulk_remaining_ -= take;
      used = take;
    }
    while (used < data.size() && bulk_remaining_ > 0) {
      const char expected = bulk_remaining_ == 2 ? '\r' : '\n';
      if (data[used] != expected) {
        fail(ec, seckill::errc::protocol_error,
             "bulk string of " + std::to_string(bulk_->text.size()) +
                 " bytes not followed by CRLF: saw '" + printable(data.substr(used, 8)) + "'");
        return used + 1;
      }
      ++used;
      --bulk_remaining_;
    }
    if (bulk_remaining_ == 0) {
      bulk_pending_ = false;
      value* v = bulk_;
      bulk_ = nullptr;
      if (v->type == resp_type::verbatim_string) {
        if (v->text[3] != ':') {
          fail(ec, seckill::errc::protocol_error,
               "verbatim string without 'fmt:' prefix: '" + printable(v->text) + "'");
          return used;
        }
        v->format = {v->text[0], v->text[1], v->text[2]};
        v->text.erase(0, 4);
      }
      complete(v);
    }
    return used;
  }

  parser_limits limits_;
  value root_;
  std::vector<frame> stack_;
  std::string line_;
  value* attr_slot_ = nullptr;
  value* bulk_ = nullptr;
  std::size_t bulk_remaining_ = 0;
  std::size_t reply_bytes_ = 0;
  std::size_t reply_elements_ = 0;  // values the current reply's aggregates declared
  bool bulk_pending_ = false;
  bool done_ = false;
  bool failed_ = false;
  std::error_code failure_;
  std::string message_;
};

/// @brief Parses exactly one complete value from `bytes` (tests, tools);
///        `errc::protocol_error` when incomplete or followed by more bytes.
inline value parse_one(std::string_view bytes, std::error_code& ec, parser_limits limits = {}) {
  parser p(limits);
  const std::size_t used = p.consume(bytes, ec);
  if (ec) return {};
  if (!p.done() || used != bytes.size()) {
    ec = make_error_code(seckill::errc::protocol_error);
    return {};
  }
  return p.take();
}

}  // namespace seckill::redis
