import { describe, test } from 'node:test';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { assertShardChange, runShardChange } from '../helpers/shard-change.js';

describe('changing QUEUE_SHARDS on a live Redis Cluster (docs/scaling.md)', () => {
  test('3 masters, 6 → 4 shards in a rolling change under traffic: nothing lost or doubled, order kept per phone', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    try {
      const redis = cluster.client();
      const result = await runShardChange({ redisEnv: cluster.env(), redis, clustered: true, from: 6, to: 4, phones: 12, eventsPerPhone: 30 });
      assertShardChange(result, 12 * 30);
    } finally {
      await cluster.cleanup();
    }
  });
});
