import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startRedisCluster } from '../helpers/redis-cluster.js';

describe('redis cluster harness', () => {
  test('3 masters split 300 keys of different hash slots between them', { timeout: 30_000 }, async (t) => {
    const cluster = await startRedisCluster();
    t.after(() => cluster.cleanup());

    assert.equal(cluster.nodes.length, 3);
    assert.deepEqual(cluster.nodes.map((n) => n.role), ['master', 'master', 'master']);
    assert.equal(cluster.seeds, cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','));

    const client = cluster.client();
    for (let i = 0; i < 300; i++) await client.set(`harness:key:${i}`, String(i));

    const counts = await cluster.keysPerNode('harness:key:*');
    assert.equal(counts.size, 3);
    assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 300);
    for (const [port, count] of counts) assert.ok(count > 0, `master ${port} holds no key`);
    assert.equal((await cluster.mastersHoldingKeys('harness:key:*')).length, 3);
  });

  test('a replica takes over a master killed with kill -9 and keeps its replicated key', { timeout: 45_000 }, async (t) => {
    const cluster = await startRedisCluster({ replicasPerMaster: 1 });
    t.after(() => cluster.cleanup());

    assert.equal(cluster.nodes.filter((n) => n.role === 'master').length, 3);
    assert.equal(cluster.nodes.filter((n) => n.role === 'replica').length, 3);

    const client = cluster.client();
    const key = 'harness:failover';
    // SET and WAIT go in one pipeline, so both reach the master of the key's slot.
    const results = await client.pipeline().set(key, 'survives').call('WAIT', 1, 0).exec();
    assert.deepEqual(results, [[null, 'OK'], [null, 1]]);

    const master = await cluster.masterOfKey(key);
    const slot = await cluster.slotOf(key);
    const replica = cluster.nodes.find((n) => n.masterId === master.id);
    assert.ok(replica, 'the master of the key has a replica');

    await cluster.killNode(master.port);
    const promoted = await cluster.waitForFailover(master.port);

    assert.equal(promoted.port, replica.port);
    assert.equal(promoted.role, 'master');
    assert.equal((await cluster.masterOfSlot(slot)).port, promoted.port);
    assert.equal(await client.get(key), 'survives');
    for (const node of cluster.aliveNodes()) {
      assert.equal((await cluster.clusterInfo(node.port)).cluster_state, 'ok', `port ${node.port}`);
    }
    // The same client still writes to every slot range.
    for (let i = 0; i < 100; i++) await client.set(`harness:after:${i}`, String(i));
    assert.equal((await cluster.mastersHoldingKeys('harness:after:*')).length, 3);
  });
});
