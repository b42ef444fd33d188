import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { createKeyspace, shardOfPhone } from '@replyflow/shared';

describe('keyspace', () => {
  test('one Redis, one shard: plain prefix, as before', () => {
    const keyspace = createKeyspace('replyflow', 1, false);
    assert.equal(keyspace.global, 'replyflow');
    assert.deepEqual(keyspace.shards, ['replyflow']);
    assert.equal(keyspace.queueLabel('events', 0), 'events');
  });

  test('shards are hash-tagged, start with { and the prefix, and spread over the slot range', () => {
    for (const shards of [1, 3, 6, 16]) {
      const keyspace = createKeyspace('replyflow', shards, true);
      assert.equal(keyspace.global, '{replyflow}');
      keyspace.shards.forEach((prefix, shard) => {
        assert.ok(prefix.startsWith('{replyflow'), prefix);
        const slot = calculateSlot(`${prefix}:events:x`);
        assert.equal(slot, calculateSlot(`${prefix}:done:y`), 'one slot per shard');
        assert.ok(slot >= (shard * 16384) / shards && slot < ((shard + 1) * 16384) / shards, `shard ${shard}/${shards} in slot ${slot}`);
      });
    }
  });

  test('a phone always maps to the same shard, and phones spread over all shards', () => {
    const keyspace = createKeyspace('replyflow', 6, true);
    const phones = Array.from({ length: 600 }, (_, n) => `4477${String(n).padStart(8, '0')}`);
    const counts = new Array(6).fill(0);
    for (const phone of phones) {
      assert.equal(keyspace.shardOf(phone), shardOfPhone(phone, 6));
      counts[keyspace.shardOf(phone)]++;
    }
    for (const count of counts) assert.ok(count > 60, `uneven: ${counts.join(',')}`);
    assert.equal(keyspace.queueLabel('forward', 4), 'forward@4');
  });
});
