#include <seckill/redis/redis_store.hpp>
