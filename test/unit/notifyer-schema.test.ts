import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseAcceptedPayload, parseNotifyerPayload } from '@replyflow/shared';
import { fixtureNames, loadFixture } from '../helpers/fixtures.js';

const parse = (body: unknown) => parseNotifyerPayload(body);
const valid = (body: unknown) => {
  const result = parse(body);
  assert.ok(result.ok, `expected valid, got ${JSON.stringify(!result.ok && result.issues)}`);
  return result.event;
};
const issuesOf = (body: unknown) => {
  const result = parse(body);
  assert.ok(!result.ok, 'expected invalid');
  return result.issues;
};
const base = loadFixture('incoming-text').json;

describe('notifyer schema', () => {
  for (const name of fixtureNames) {
    test(`accepts fixture ${name}`, () => {
      const event = valid(loadFixture(name).json);
      assert.match(event.id, /^[0-9a-f]{64}$/);
      assert.match(event.phone, /^\d{6,20}$/);
    });
  }

  test('reads the current generation: phone digits, direction, time, labels, last_messages string', () => {
    const event = valid(base);
    assert.equal(event.phone, '447700900123');
    assert.equal(event.direction, 'incoming');
    assert.equal(event.messageTime, 1763630140);
    assert.equal(event.text, 'Great, when will it arrive?');
    assert.deepEqual(event.labels, ['customer', 'shipping']);
    assert.equal(event.lastMessages.length, 2);
  });

  test('reads the legacy generation from user_timestamp', () => {
    const event = valid(loadFixture('legacy-incoming').json);
    assert.equal(event.messageTime, 1746183609);
    assert.equal(event.direction, 'incoming');
    assert.deepEqual(event.labels, []);
  });

  test('outgoing messages use the bot time and bot text; arrays are taken as they are', () => {
    const event = valid(loadFixture('outgoing-agent').json);
    assert.equal(event.direction, 'outgoing');
    assert.equal(event.messageTime, 1763630405);
    assert.equal(event.text, 'It should arrive on Monday.');
    assert.deepEqual(event.labels, ['customer', 'shipping']);
    assert.equal(event.lastMessages.length, 3);
  });

  test('a numeric phone number and a referral are kept', () => {
    const event = valid(loadFixture('first-contact-referral').json);
    assert.equal(event.phone, '15550142277');
    assert.equal(event.referral?.source_type, 'ad');
  });

  test('keeps unknown fields in raw', () => {
    const event = valid({ ...base, brand_new_field: { nested: [1, 2] } });
    assert.deepEqual(event.raw.brand_new_field, { nested: [1, 2] });
  });

  test('a string message time of digits is read as that integer', () => {
    assert.equal(valid({ ...base, user_last_message_time: '0001763630140' }).messageTime, 1763630140);
    assert.equal(valid({ ...base, user_last_message_time: '00000000000000001700000001' }).messageTime, 1700000001);
    assert.equal(valid({ ...base, user_last_message_time: String(Number.MAX_SAFE_INTEGER) }).messageTime, Number.MAX_SAFE_INTEGER);
  });

  test('an empty time field counts as absent', () => {
    const outgoing = loadFixture('outgoing-agent').json;
    assert.equal(valid({ ...base, bot_last_message_time: '', bot_timestamp: '  ' }).id, valid(base).id);
    assert.equal(valid({ ...outgoing, user_last_message_time: '', user_timestamp: '' }).id, valid(outgoing).id);
    assert.equal(valid({ ...base, user_last_message_time: '', user_timestamp: 1763630140 }).messageTime, 1763630140);
  });

  test('an empty time in the current direction is reported as missing, under the current field name', () => {
    assert.deepEqual(issuesOf({ ...base, user_last_message_time: '' }).map((issue) => issue.path), ['user_last_message_time']);
    const outgoing = { ...loadFixture('outgoing-agent').json, bot_last_message_time: ' ' };
    assert.deepEqual(issuesOf(outgoing).map((issue) => issue.path), ['bot_last_message_time']);
  });

  const rejections: Array<[string, Record<string, unknown>, string]> = [
    ['a missing phone', { phone_number: undefined }, 'phone_number'],
    ['a short phone', { phone_number: '12345' }, 'phone_number'],
    ['a phone with letters', { phone_number: '+44 77OO 900123' }, 'phone_number'],
    ['a 21-digit phone', { phone_number: '123456789012345678901' }, 'phone_number'],
    ['a negative numeric phone', { phone_number: -447700900123 }, 'phone_number'],
    ['a fractional numeric phone', { phone_number: 4477009001.5 }, 'phone_number'],
    ['a negative time', { user_last_message_time: -5 }, 'user_last_message_time'],
    ['a fractional time', { user_last_message_time: 1.5 }, 'user_last_message_time'],
    ['a time string with letters', { user_last_message_time: '17636x' }, 'user_last_message_time'],
    ['a signed time string', { user_last_message_time: '+1763630140' }, 'user_last_message_time'],
    ['a decimal time string', { user_last_message_time: '1763630140.5' }, 'user_last_message_time'],
    ['a time string beyond the safe integers', { user_last_message_time: '9007199254740992' }, 'user_last_message_time'],
    ['a time string of 30 nines', { user_last_message_time: '9'.repeat(30) }, 'user_last_message_time'],
    ['last_messages that is not a JSON array', { last_messages: '{"a":1}' }, 'last_messages'],
    ['last_messages of a number', { last_messages: 5 }, 'last_messages'],
    ['labels of numbers', { labels: [1, 2] }, 'labels'],
    ['labels that are an object', { labels: { vip: true } }, 'labels'],
    ['a numeric note', { note: 7 }, 'note'],
    ['a string incoming_message', { incoming_message: 'yes' }, 'incoming_message'],
  ];
  for (const [what, patch, path] of rejections) {
    test(`rejects ${what} with the path ${path}`, () => {
      const issues = issuesOf({ ...base, ...patch });
      assert.ok(issues.some((issue) => issue.path === path), JSON.stringify(issues));
    });
  }

  test('a field that takes two forms names both when it gets neither', () => {
    const messageOf = (patch: Record<string, unknown>) => issuesOf({ ...base, ...patch })[0]?.message;
    assert.equal(messageOf({ phone_number: true }), 'expected a phone number as a string or a number');
    assert.equal(messageOf({ last_messages: { a: 1 } }), 'expected an array, or a string holding a JSON array');
    assert.equal(messageOf({ labels: 7 }), 'expected a comma-separated string or an array of strings');
  });

  test('a phone number too long for a JSON number says to send it as a string', () => {
    const [issue] = issuesOf({ ...base, phone_number: 12345678901234567 });
    assert.equal(issue?.path, 'phone_number');
    assert.match(issue!.message, /more than 15 digits must be a string/);
  });

  test('a missing message time is reported under the current field name, for either direction', () => {
    const { user_last_message_time: _u, ...incoming } = base;
    assert.equal(issuesOf(incoming)[0]?.path, 'user_last_message_time');
    const { bot_last_message_time: _b, ...outgoing } = { ...base, incoming_message: false };
    assert.equal(issuesOf(outgoing)[0]?.path, 'bot_last_message_time');
  });

  test('rejects non-objects without throwing', () => {
    for (const body of [null, 42, 'text', [base], true]) assert.equal(parse(body).ok, false);
  });
});

describe('a stored payload, read back by the worker (parseAcceptedPayload)', () => {
  const variants: Record<string, unknown>[] = [
    ...fixtureNames.map((name) => loadFixture(name).json as Record<string, unknown>),
    { ...base, phone_number: 447700900123, labels: ['vip', ' new '], last_messages: [] },
    { ...base, user_last_message_time: '', user_timestamp: '1763630140', labels: null, last_messages: '' },
    { ...base, incoming_message: false, bot_last_message_time: 1763630150, last_message_of_bot: 'Hi', referral: { source_url: 'x' } },
  ];
  for (const [i, body] of variants.entries()) {
    test(`reads what the schema reads (${i + 1} of ${variants.length})`, () => {
      const checked = valid(body);
      const read = parseAcceptedPayload(structuredClone(body), checked.id);
      assert.ok(read.ok);
      assert.deepEqual(read.event, { ...checked, raw: read.event.raw });
      assert.deepEqual(read.event.raw, body);
    });
  }

  test('keeps the id it is given: the one the event was stored under', () => {
    const read = parseAcceptedPayload(base, 'the-stored-id');
    assert.ok(read.ok);
    assert.equal(read.event.id, 'the-stored-id');
  });

  const refusals: Array<[string, unknown, string]> = [
    ['no object', null, ''],
    ['a missing phone', { ...base, phone_number: undefined }, 'phone_number'],
    ['a phone with letters', { ...base, phone_number: '+44 77OO 900123' }, 'phone_number'],
    ['a text that is a number', { ...base, last_message_of_user: 5 }, 'last_message_of_user'],
    ['labels of numbers', { ...base, labels: [1] }, 'labels'],
    ['a time string with letters', { ...base, user_last_message_time: '17636x' }, 'user_last_message_time'],
    ['no message time', { ...base, user_last_message_time: null }, 'user_last_message_time'],
    ['a string incoming_message', { ...base, incoming_message: 'no' }, 'incoming_message'],
    ['a referral that is a list', { ...base, referral: [1] }, 'referral'],
  ];
  for (const [what, body, path] of refusals) {
    test(`refuses ${what}, naming ${path || 'the body'}`, () => {
      const read = parseAcceptedPayload(body, 'id');
      assert.ok(!read.ok);
      assert.equal(read.issues[0]?.path, path);
    });
  }
});
