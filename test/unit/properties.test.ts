import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseNotifyerPayload, verifySignature } from '@replyflow/shared';
import { loadFixture } from '../helpers/fixtures.js';

const base = loadFixture('incoming-text').json;
const idOf = (body: unknown) => {
  const result = parseNotifyerPayload(body);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  return result.event.id;
};
const keys = Object.keys(base);
const reordered = (object: Record<string, unknown>, order: string[]) => Object.fromEntries(order.map((key) => [key, object[key]]));

describe('properties (fast-check)', () => {
  test('the event id ignores key order, whitespace and fields outside its formula', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(keys, { minLength: keys.length }),
        fc.integer({ min: 0, max: 8 }),
        fc.string(),
        fc.array(fc.string()),
        (order, indent, note, labels) => {
          const variant = JSON.parse(JSON.stringify(reordered({ ...base, note, labels }, order), null, indent));
          assert.equal(idOf(variant), idOf(base));
        },
      ),
    );
  });

  test('the event id changes with each field of its formula', () => {
    const fields: Array<[string, fc.Arbitrary<unknown>]> = [
      ['phone_number', fc.stringMatching(/^[1-9]\d{5,19}$/)],
      ['user_last_message_time', fc.integer({ min: 0, max: 2 ** 40 })],
      ['message_type', fc.string()],
      ['last_message_of_user', fc.string()],
      ['attachment_url', fc.string()],
    ];
    for (const [field, values] of fields) {
      fc.assert(
        fc.property(values, (value) => {
          // null and "" are the same in the formula
          fc.pre(String(value ?? '') !== String(base[field] ?? ''));
          assert.notEqual(idOf({ ...base, [field]: value }), idOf(base), `${field}=${JSON.stringify(value)}`);
        }),
      );
    }
  });

  test('the schema never throws, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        parseNotifyerPayload(value);
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...Object.keys(base), '__proto__', 'constructor'), fc.jsonValue()), (patch) => {
        parseNotifyerPayload({ ...base, ...patch });
      }),
      { numRuns: 2_000 },
    );
  });

  test('signature checks never accept a wrong value of any length', () => {
    const body = Buffer.from(JSON.stringify(base));
    const secret = 'the-real-secret';
    const good = createHmac('sha256', secret).update(body).digest();
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (candidate) => {
        fc.pre(candidate !== secret);
        assert.equal(verifySignature('token', candidate, body, [secret]), false);
      }),
      { numRuns: 2_000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.constantFrom('hex', 'base64', 'base64url'), (bytes, encoding) => {
        const candidate = Buffer.from(bytes);
        fc.pre(!candidate.equals(good));
        assert.equal(verifySignature('hmac-sha256', candidate.toString(encoding as BufferEncoding), body, [secret]), false);
      }),
      { numRuns: 2_000 },
    );
  });
});
