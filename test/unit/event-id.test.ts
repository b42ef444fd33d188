import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseNotifyerPayload } from '@replyflow/shared';
import { loadFixture } from '../helpers/fixtures.js';

const idOf = (body: unknown) => {
  const result = parseNotifyerPayload(body);
  assert.ok(result.ok);
  return result.event.id;
};
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const base = loadFixture('incoming-text').json;

describe('event id', () => {
  test('is the SHA-256 of the contract formula, for each direction and generation', () => {
    assert.equal(idOf(base), sha256('notifyer|447700900123|incoming|1763630140|text|Great, when will it arrive?|'));
    assert.equal(
      idOf(loadFixture('outgoing-agent').json),
      sha256('notifyer|447700900123|outgoing|1763630405|text|It should arrive on Monday.|'),
    );
    assert.equal(idOf(loadFixture('legacy-incoming').json), sha256('notifyer|919800011122|incoming|1746183609|text|STOP|'));
    assert.equal(
      idOf(loadFixture('incoming-image').json),
      sha256('notifyer|447700900123|incoming|1763630301|image||https://media.example.test/u/7f3a9c.jpg'),
    );
  });

  test('ignores key order, whitespace, labels, notes and phone formatting', () => {
    const reordered = Object.fromEntries(Object.entries(base).reverse());
    const reformatted = JSON.parse(JSON.stringify(base, null, 4));
    const relabelled = { ...base, labels: 'vip', note: 'changed', phone_number: '+44 (7700) 900-123' };
    for (const body of [reordered, reformatted, relabelled]) assert.equal(idOf(body), idOf(base));
  });

  test('changes with each field of the formula', () => {
    const variants = [
      { phone_number: '447700900124' },
      { incoming_message: false, bot_last_message_time: 1763630140, last_message_of_bot: 'Great, when will it arrive?' },
      { user_last_message_time: 1763630141 },
      { message_type: 'image' },
      { last_message_of_user: 'Great, when will it arrive' },
      { attachment_url: 'https://media.example.test/x.jpg' },
    ];
    const ids = new Set(variants.map((patch) => idOf({ ...base, ...patch })));
    assert.equal(ids.size, variants.length);
    assert.ok(!ids.has(idOf(base)));
  });

  test('a numeric phone and its string form give one id', () => {
    const body = loadFixture('first-contact-referral').json;
    assert.equal(idOf(body), idOf({ ...body, phone_number: '+1 555 014 2277' }));
  });
});
