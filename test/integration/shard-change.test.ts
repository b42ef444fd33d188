import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/redis-server.js';
import { assertShardChange, runShardChange } from '../helpers/shard-change.js';

describe('changing QUEUE_SHARDS on a live system (docs/scaling.md)', () => {
  test('1 → 3 shards in a rolling change under traffic: nothing lost or doubled, order and one-at-a-time kept per phone', async () => {
    const server = await startRedis();
    const redis = new Redis(server.url);
    try {
      const result = await runShardChange({ redisEnv: { REDIS_URL: server.url }, redis, clustered: false, from: 1, to: 3, phones: 12, eventsPerPhone: 30 });
      assertShardChange(result, 12 * 30);
    } finally {
      redis.disconnect();
      await server.cleanup();
    }
  });
});
