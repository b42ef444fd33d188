import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger, layoutRecordKey, parseLayoutRecord, phoneMemoryKey, shardOwnerKey, ShardLayouts } from '@replyflow/shared';
import type { Redis } from 'ioredis';
import { rememberedInOlderShards } from '../../apps/worker/src/engine/layout-drain.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { waitUntil } from '../helpers/wait.js';

const logger = createLogger('worker', 'silent');
const options = (wantedShards: number) => ({ prefix: 'replyflow', clustered: false, wantedShards, dedupeTtlSeconds: 3600, logger });

describe('shard layouts kept in Redis (packages/shared/src/layouts.ts)', () => {
  const redisServer = useRedisServer();

  test('a process with another QUEUE_SHARDS switches every process; a second change waits until the first has drained', async () => {
    const redis = redisServer.client;
    const first = await ShardLayouts.open(redis, options(2), 50);
    assert.equal(first.current.shardCount, 2);
    for (const shard of first.current.shards) assert.equal(await redis.get(shardOwnerKey(shard)), '2');
    const phone = '447700900123';
    const oldShard = first.current.shardPrefixOf(phone);
    await redis.set(phoneMemoryKey(oldShard, phone), 'an earlier event');

    const second = await ShardLayouts.open(redis, options(3), 50);
    assert.equal(second.current.shardCount, 3);
    // Every shard of both counts now belongs to 3: an ingest still on 2 is refused everywhere.
    for (const shard of [...first.current.shards, ...second.current.shards]) assert.equal(await redis.get(shardOwnerKey(shard)), '3');
    await waitFor(() => first.current.shardCount === 3);
    assert.equal(first.draining()?.shards, 2);

    const remembered = rememberedInOlderShards(redis, second);
    assert.equal(await remembered(phone), true, 'a phone known in its old shard is no first contact');
    assert.equal(await remembered('447700900999'), false);

    const third = await ShardLayouts.open(redis, options(4), 50);
    assert.equal(third.current.shardCount, 3, 'the change to 4 waits while 2 drains');
    await first.markDrained(2);
    await waitFor(() => third.current.shardCount === 4);
    const record = parseLayoutRecord((await redis.get(layoutRecordKey('replyflow')))!);
    assert.deepEqual(record.retired.map((r) => [r.shards, r.drained]), [[2, true], [3, false]]);
    for (const layouts of [first, second, third]) layouts.stop();
  });
});

const waitFor = (condition: () => boolean) => waitUntil(() => condition() || undefined, 2000, () => 'the layout did not change');
