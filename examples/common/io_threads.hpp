#pragma once
// io_threads: runs an io_context on N threads for its lifetime and stops and
// joins them when it ends (or at stop()), so that no handler outlives what
// was declared before it. Thread-safety: stop() from the owning thread.
// Cost: N threads and a work guard.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>
#include <vector>

namespace seckill_examples {

class io_threads {
 public:
  io_threads(boost::asio::io_context& io, int n) : io_(io), guard_(io.get_executor()) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([&io] { io.run(); });
  }
  io_threads(const io_threads&) = delete;
  io_threads& operator=(const io_threads&) = delete;
  ~io_threads() { stop(); }

  /// Lets the threads finish (the io_context stops) and joins them. Idempotent.
  void stop() {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  boost::asio::io_context& io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

}  // namespace seckill_examples
