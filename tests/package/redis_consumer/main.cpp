// A consumer of seckill::redis: a store over Asio, built from a redis:// URL
// (Boost.URL), constructed without a server.
#include <seckill/redis/redis_store.hpp>
#include <seckill/redis/url.hpp>
#include <seckill/store/memory_store.hpp>
#include <seckill/url.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>

int main() {
  seckill::redis::connection_config cfg;
  if (seckill::redis::parse_url("redis://shop:s3cret@127.0.0.1:6390/2", cfg)) return 1;
  if (cfg.port != "6390" || cfg.database != 2 || cfg.password != "s3cret") return 2;
  if (seckill::redact_url("redis://shop:s3cret@127.0.0.1:6390/2") !=
      "redis://shop:***@127.0.0.1:6390/2")
    return 3;

  boost::asio::io_context io;
  seckill::redis::redis_store store(io.get_executor(), cfg);
  seckill::memory_store<> memory(io.get_executor());
  io.run();
  std::printf("seckill::redis: store for %s:%s\n", cfg.host.c_str(), cfg.port.c_str());
  return 0;
}
