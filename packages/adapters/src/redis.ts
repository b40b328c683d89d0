export {
  createRedisQuotaAdapter,
  type RedisQuotaAdapter,
  type RedisQuotaAdapterOptions,
} from "./redis/redis-quota-adapter.js";
