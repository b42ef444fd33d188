import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixtureNames, loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { post } from '../helpers/http.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRedis } from '../helpers/redis-server.js';

describe('test harness', () => {
  test('redis keeps a written key across a restart (append-only file)', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.cleanup());
    const client = redis.client();

    await client.set('harness:key', 'kept');
    await redis.restart();

    assert.equal(await client.get('harness:key'), 'kept');
  });

  test('receiver records a post and a destroy behaviour resets the connection', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const { text } = loadFixture('incoming-text');

    const res = await post(receiver.url, text, { 'content-type': 'application/json' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok');
    const [recorded] = await receiver.waitFor(1, 1_000);
    assert.equal(recorded?.method, 'POST');
    assert.equal(recorded?.url, '/hook');
    assert.equal(recorded?.body, text);
    assert.equal(recorded?.json.phone_number, '+44 7700 900123');

    receiver.setBehaviour(() => ({ status: 200, destroy: true }));
    await assert.rejects(post(receiver.url, text, { 'content-type': 'application/json' }));
    assert.equal(receiver.requests.length, 2);
  });

  test('fixtures load and get a new message time in the field of their direction', () => {
    assert.equal(fixtureNames.length, 5);
    assert.equal(withMessageTime(loadFixture('incoming-text').json, 7).user_last_message_time, 7);
    assert.equal(withMessageTime(loadFixture('outgoing-agent').json, 7).bot_last_message_time, 7);
    assert.equal(withMessageTime(loadFixture('legacy-incoming').json, 7).user_timestamp, 7);
  });
});
