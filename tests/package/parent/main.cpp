// A parent project that embeds seckill with add_subdirectory.
#include <seckill/seckill.hpp>

#include <cstdio>

int main() {
  seckill::manual_clock clock;
  const auto start = clock.now();
  clock.advance(std::chrono::milliseconds(5));
  if (clock.now() - start != std::chrono::milliseconds(5)) return 1;
  std::printf("embedded seckill %s\n", seckill::version.string);
  return 0;
}
