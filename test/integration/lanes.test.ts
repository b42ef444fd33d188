import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { doneKey, jobKey, laneKey, seqKey, type Logger } from '@replyflow/shared';
import { Lanes, type LaneSeat } from '../../apps/worker/src/engine/lanes.js';
import { useRedisServer } from '../helpers/redis-server.js';

const PREFIX = 'test';
const LANE = laneKey(PREFIX, 'forward', '447700900123');

const seat = (eventId: string, seq: number): LaneSeat => ({
  lane: LANE,
  member: `forward.${eventId}`,
  seq,
  jobKey: jobKey(PREFIX, 'forward', `forward.${eventId}`),
  doneKey: doneKey(PREFIX, eventId),
  field: 'forward',
  stepsKey: `${PREFIX}:steps:forward.${eventId}`,
});

describe('joining a lane', () => {
  const redis = useRedisServer();
  const lanes = () => new Lanes(redis.client, PREFIX, { warn: () => {} } as unknown as Logger);

  test('an empty lane is joined at the head, by the entry sequence number', async () => {
    await redis.client.del(LANE);
    assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'head', stored: {} });
    assert.deepEqual(await redis.client.zrange(LANE, 0, -1, 'WITHSCORES'), ['forward.e5', '5']);
  });

  test('an entry older than a waiting head goes ahead of it, by its number', async () => {
    await redis.client.del(LANE);
    await redis.client.zadd(LANE, 10, 'forward.replayed');
    await redis.client.set(seqKey(PREFIX), 40);
    assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'head', stored: {} });
    assert.deepEqual(await redis.client.zrange(LANE, 0, -1, 'WITHSCORES'), ['forward.e5', '5', 'forward.replayed', '10']);
  });

  for (const [holder, lock] of [
    ['its workflow job', `${jobKey(PREFIX, 'forward', 'forward.replayed')}:lock`],
    ["its event's job (a run inline)", `${jobKey(PREFIX, 'events', 'replayed')}:lock`],
  ] as const) {
    test(`an entry older than a running head (${holder} holds a lock) goes behind it with the next number`, async () => {
      await redis.client.del(LANE);
      await redis.client.zadd(LANE, 10, 'forward.replayed');
      await redis.client.set(seqKey(PREFIX), 40);
      await redis.client.set(lock, 'token', 'PX', 30_000);
      try {
        assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'behind' });
        assert.deepEqual(await redis.client.zrange(LANE, 0, -1, 'WITHSCORES'), ['forward.replayed', '10', 'forward.e5', '41']);
        assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'behind' }, 'a redone join keeps that place');
        assert.deepEqual(await redis.client.zrange(LANE, 0, -1), ['forward.replayed', 'forward.e5']);
      } finally {
        await redis.client.del(lock);
      }
    });
  }

  test('behind the head, entries keep their acceptance order', async () => {
    await redis.client.del(LANE);
    await redis.client.zadd(LANE, 3, 'forward.head', 10, 'forward.e10');
    await redis.client.set(seqKey(PREFIX), 40);
    assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'behind' });
    assert.deepEqual(await redis.client.zrange(LANE, 0, -1), ['forward.head', 'forward.e5', 'forward.e10']);
    assert.equal(await redis.client.get(seqKey(PREFIX)), '40', 'no number taken');
  });

  test('a redone join keeps the place it had, and a finished workflow does not join', async () => {
    await redis.client.del(LANE);
    await redis.client.zadd(LANE, 3, 'forward.head', 5, 'forward.e5');
    assert.deepEqual(await lanes().join(seat('e5', 5)), { state: 'behind' });
    assert.deepEqual(await redis.client.zrange(LANE, 0, -1), ['forward.head', 'forward.e5']);
    await redis.client.hset(doneKey(PREFIX, 'e7'), 'forward', '1');
    assert.deepEqual(await lanes().join(seat('e7', 7)), { state: 'finished' });
    assert.equal(await redis.client.zscore(LANE, 'forward.e7'), null);
  });
});

describe('joining a lane again (a redone dispatch)', () => {
  const redis = useRedisServer();
  const lanes = () => new Lanes(redis.client, PREFIX, { warn: () => {} } as unknown as Logger);

  test('an entry already at the head gets the steps stored so far, or queued when its job exists', async () => {
    await redis.client.del(LANE);
    const entry = seat('e8', 8);
    assert.deepEqual(await lanes().join(entry), { state: 'head', stored: {} });
    await redis.client.hset(entry.stepsKey, 'run:post', '{"status":200}');
    assert.deepEqual(await lanes().join(entry), { state: 'head', stored: { 'run:post': '{"status":200}' } });
    await redis.client.hset(entry.jobKey, 'name', 'forward');
    assert.deepEqual(await lanes().join(entry), { state: 'queued' });
    await redis.client.del(entry.stepsKey, entry.jobKey);
  });
});

