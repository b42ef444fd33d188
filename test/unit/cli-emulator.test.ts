import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseNotifyerPayload } from '@replyflow/shared';
import { deliveryLine, RETRY_DELAYS_MS } from '../../packages/cli/src/emulator/delivery.js';
import { MessageGenerator } from '../../packages/cli/src/emulator/generator.js';
import { Limiter } from '../../packages/cli/src/emulator/limiter.js';
import { newSignatureSecret } from '../../packages/cli/src/emulator/webhook-store.js';

describe('the emulator message generator', () => {
  const messages = Array.from({ length: 1000 }, ((generator) => () => generator.next())(new MessageGenerator()));

  test('every message passes the ingest schema, with the direction it claims', () => {
    for (const message of messages) {
      const parsed = parseNotifyerPayload(message.payload);
      assert.ok(parsed.ok, JSON.stringify(parsed));
      assert.equal(parsed.event.direction, message.direction);
      assert.equal(parsed.event.phone, message.phoneDigits);
    }
  });

  test('every message is a new event', () => {
    const ids = new Set(messages.map((m) => (parseNotifyerPayload(m.payload) as { event: { id: string } }).event.id));
    assert.equal(ids.size, messages.length);
  });

  test('two emulators do not repeat each other', () => {
    const other = new MessageGenerator();
    const ids = new Set(messages.map((m) => (parseNotifyerPayload(m.payload) as { event: { id: string } }).event.id));
    for (let i = 0; i < 200; i++) assert.ok(!ids.has((parseNotifyerPayload(other.next().payload) as { event: { id: string } }).event.id));
  });

  test('both generations, media, first-contact referrals and outgoing agent messages, with varied phones and texts', () => {
    const kinds = new Set(messages.map((m) => m.kind));
    assert.deepEqual([...kinds].sort(), ['first-contact-referral', 'incoming-media', 'incoming-text', 'legacy-incoming', 'outgoing-agent']);
    const payloads = messages.map((m) => m.payload);
    assert.ok(payloads.some((p) => 'user_timestamp' in p && !('user_last_message_time' in p)), 'legacy generation');
    assert.ok(payloads.some((p) => typeof p.attachment_url === 'string' && p.message_type !== 'text'), 'media');
    assert.ok(payloads.some((p) => typeof p.referral === 'object' && typeof p.phone_number === 'number'), 'referral');
    assert.ok(payloads.some((p) => p.incoming_message === false && p.was_message_by_human === true && Array.isArray(p.labels)), 'outgoing');
    assert.ok(new Set(messages.map((m) => m.phoneDigits)).size > 20);
    assert.ok(new Set(payloads.map((p) => p.last_message_of_user)).size > 5);
  });
});

describe('the emulator delivery pieces', () => {
  test("Notifyer's retry schedule: 5 s, 30 s, 2 min, 10 min, 30 min, 2 h, 6 h, 12 h (about 75 s at 0.001)", () => {
    assert.deepEqual(RETRY_DELAYS_MS.map((ms) => ms / 1000), [5, 30, 120, 600, 1800, 7200, 21600, 43200]);
    assert.ok(Math.abs(RETRY_DELAYS_MS.reduce((a, b) => a + b, 0) * 0.001 - 75_000) < 1_000);
  });

  test('a delivery log line masks the phone and says what happens next', () => {
    const message = new MessageGenerator().next();
    const line = deliveryLine(3, message, 2, { ok: false, status: 500, ms: 12.3 }, 30);
    assert.match(line, /webhook 3 incoming incoming-text \d\d\*+\d{3} attempt 2: 500 in 12 ms, retry in 30 ms$/);
    assert.ok(!line.includes(message.phoneDigits));
    assert.match(deliveryLine(3, message, 9, { ok: false, status: undefined, ms: 1, error: 'ECONNREFUSED' }, undefined), /no answer \(ECONNREFUSED\).*giving up after 9 attempts$/);
  });

  test('a secret is 128 random bytes in base64url', () => {
    const secret = newSignatureSecret();
    assert.match(secret, /^[A-Za-z0-9_-]{171}$/);
    assert.equal(Buffer.from(secret, 'base64url').length, 128);
    assert.notEqual(secret, newSignatureSecret());
  });

  test('the limiter never runs more than its maximum at once', async () => {
    const limiter = new Limiter(3);
    let running = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 10 }, () => limiter.run(async () => {
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    })));
    assert.equal(peak, 3);
  });
});
