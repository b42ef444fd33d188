import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { startRedis } from '../helpers/redis-server.js';
import { waitUntil } from '../helpers/wait.js';

const event = (time: number) => withMessageTime(loadFixture('incoming-text').json, time);

describe('REDIS_ACK_REPLICAS=1', () => {
  test('no 2xx, duplicate or not, until a replica holds the event', async () => {
    const p = await startPipeline({ worker: false, ingestEnv: { REDIS_ACK_REPLICAS: '1' } });
    const replica = await startRedis({ appendonly: false, replicaOf: p.redis.port });
    try {
      const replicaClient = replica.client();
      await waitUntil(async () => (await replicaClient.info('replication')).includes('master_link_status:up') || undefined, 10_000, () => 'the replica never synced');
      // A retry, as Notifyer would make it, if the first WAIT runs out on a busy machine.
      const first = await waitUntil(async () => {
        const res = await p.send(event(1));
        return res.status === 503 ? undefined : res;
      }, 10_000, () => 'the replica never acknowledged');
      assert.ok([200, 202].includes(first.status), first.body);

      replica.pause();
      const unreplicated = await p.send(event(2));
      assert.equal(unreplicated.status, 503, unreplicated.body);
      // The retry finds the event stored on the master, but no replica holds it yet:
      // a 200 now would let a failover lose an event the sender thinks delivered.
      const retried = await p.send(event(2));
      assert.equal(retried.status, 503, retried.body);

      replica.resume();
      const settled = await waitUntil(async () => {
        const res = await p.send(event(2));
        return res.status === 503 ? undefined : res;
      }, 10_000, () => 'still 503 after the replica came back');
      assert.equal(settled.status, 200, settled.body);
      assert.equal(settled.json.status, 'duplicate');
      const keys = await replicaClient.keys(`*:events:${settled.json.id}`);
      assert.equal(keys.length, 1, 'the replica holds the event\'s job');
    } finally {
      replica.resume();
      await replica.cleanup();
      await p.stop();
    }
  });
});
