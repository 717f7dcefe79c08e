#pragma once
/// @file
/// @brief A tab's screenshot saved to a file: page::async_screenshot's PNG
///        written so that no reader ever sees half of it.

#include <seckill/browser/page.hpp>
#include <seckill/detail/spawned_completion.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace seckill::browser {

/// Writes `bytes` to `file`, replacing any file there: first to
/// `<file>.part` beside it, then renamed over it, so the file is either
/// absent or whole. Creates no directory. Returns {} or what failed (an
/// errno value: no such directory, no permission, disk full).
/// Thread-safety: as the file system's. Cost: one write of `bytes`, a rename.
inline std::error_code write_file_atomically(const std::filesystem::path& file,
                                             std::string_view bytes) {
  std::filesystem::path part = file;
  part += ".part";
  std::error_code ec;
  {
    errno = 0;
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    if (!out) return std::error_code(errno != 0 ? errno : EIO, std::generic_category());
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) ec = std::error_code(errno != 0 ? errno : EIO, std::generic_category());
  }
  if (!ec) std::filesystem::rename(part, file, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(part, ignored);
  }
  return ec;
}

namespace detail {

inline boost::asio::awaitable<std::error_code> save_screenshot(page p, std::filesystem::path file) {
  auto [ec, png] = co_await p.async_screenshot(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec) co_return ec;
  co_return write_file_atomically(file, png);
}

}  // namespace detail

/// Captures what `p` shows (page::async_screenshot, a PNG) and writes it to
/// `file` with write_file_atomically: completes with (error_code): the
/// page's error, or the file's (an errno value). Honours per-operation
/// cancellation while the capture is in flight. The file is written on the
/// page's strand: a PNG of a few hundred kB, a millisecond or so of disk
/// time. Thread-safety: as page's operations.
template <boost::asio::completion_token_for<void(std::error_code)> CompletionToken =
              boost::asio::default_completion_token_t<page::executor_type>>
auto async_save_screenshot(page p, std::filesystem::path file,
                           CompletionToken&& token = CompletionToken()) {
  const page::executor_type ex = p.get_executor();
  return seckill::detail::async_spawn<void(std::error_code)>(
      ex, detail::save_screenshot(std::move(p), std::move(file)), token);
}

}  // namespace seckill::browser
