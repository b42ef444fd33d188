import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PHONE_MEMORY_SECONDS } from '@replyflow/shared';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { runToExit } from '../helpers/processes.js';
import type { RecordedRequest } from '../helpers/receiver.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const RULES = `
rules:
  - name: welcome
    when: { firstContact: true, text: { equals: "remember me?" } }
    reply:
      - text: "Nice to meet you."
  - name: returning
    when: { text: { equals: "remember me?" } }
    reply:
      - text: "Welcome back."
  - name: unsubscribe
    when: { text: { matches: "^(stop|unsubscribe)$", ignoreCase: true } }
    reply:
      - text: "You are unsubscribed."
  - name: shipping
    when: { labels: { any: [shipping] } }
    reply:
      - text: "Thanks, let me check your order."
      - text: "It ships within 2 days."
        delayMs: 1500
      - text: "Anything else?"
        delayMs: 500
  - name: agent-note
    when: { direction: outgoing, text: { contains: "order" } }
    reply:
      - text: "Your order is noted."
  - name: split
    when: { text: { contains: "part" } }
    debounceMs: 1500
    reply:
      - text: "Got all your parts."
`;

const dir = mkdtempSync(join(tmpdir(), 'replyflow-rules-'));
const rulesFile = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const API_KEY = 'notifyer-api-key';
let nextTime = 1_810_000_000;
const fresh = (name: string, patch: Record<string, unknown> = {}) => ({ ...withMessageTime(loadFixture(name).json, nextTime++), ...patch });
const textsTo = (requests: RecordedRequest[], phone: string) => requests.filter((r) => r.json.to === phone).map((r) => r.json.text.body);


describe('auto-replies (contract section 8)', () => {
  let p: Pipeline;
  before(async () => {
    p = await startPipeline({ worker: false });
    // The send endpoint is the pipeline's receiver.
    await p.startWorker({ FORWARD_URL: '', REPLY_RULES: rulesFile('rules.yaml', RULES), NOTIFYER_API_KEY: API_KEY, NOTIFYER_SEND_URL: p.receiver.url });
  });
  after(() => p.stop());

  test('sends the first matching rule\'s messages in order, spaced by their delays, in Notifyer\'s format', async () => {
    const phone = '447700900201';
    await p.send(fresh('incoming-text', { phone_number: phone }));
    await p.receiver.waitFor(3, 10_000);
    const sent = p.receiver.requests.filter((r) => r.json.to === phone);
    assert.deepEqual(sent.map((r) => r.json.text.body), ['Thanks, let me check your order.', 'It ships within 2 days.', 'Anything else?']);
    assert.ok(sent[1]!.at - sent[0]!.at >= 1_450, `first delay ${sent[1]!.at - sent[0]!.at} ms`);
    assert.ok(sent[2]!.at - sent[1]!.at >= 450, `second delay ${sent[2]!.at - sent[1]!.at} ms`);
    assert.deepEqual(sent[0]!.json, {
      to: phone,
      type: 'text',
      recipient_type: 'individual',
      messaging_product: 'whatsapp',
      text: { body: 'Thanks, let me check your order.', preview_url: false },
    });
    assert.equal(sent[0]!.headers.authorization, API_KEY);
  });

  test('a duplicate webhook during the delays sends nothing twice', async () => {
    const phone = '447700900202';
    const body = fresh('incoming-text', { phone_number: phone });
    await p.send(body);
    await sleep(300);
    assert.equal((await p.send(body)).status, 200);
    await sleep(2_800);
    assert.deepEqual(textsTo(p.receiver.requests, phone), ['Thanks, let me check your order.', 'It ships within 2 days.', 'Anything else?']);
  });

  test('first match wins; outgoing messages and messages matching nothing get no reply', async () => {
    const stopPhone = '919800011199';
    await p.send(fresh('legacy-incoming', { phone_number: stopPhone, labels: 'shipping' }));
    await p.send(fresh('outgoing-agent', { phone_number: '447700900203' }));
    await p.send(fresh('incoming-image', { phone_number: '447700900204' }));
    await sleep(1_500);
    assert.deepEqual(textsTo(p.receiver.requests, stopPhone), ['You are unsubscribed.']);
    assert.deepEqual(textsTo(p.receiver.requests, '447700900203'), []);
    assert.deepEqual(textsTo(p.receiver.requests, '447700900204'), []);
  });

  test('an outgoing rule answers a person, never its own reply coming back as an outgoing webhook', async () => {
    const phone = '447700900208';
    const outgoing = (text: string, byHuman: boolean | undefined) =>
      fresh('outgoing-agent', { phone_number: phone, last_message_of_bot: text, was_message_by_human: byHuman, send_by: byHuman ? 'agent@shop.example.test' : '' });
    await p.send(outgoing('About your order #12: it left today.', true));
    await waitUntil(() => (textsTo(p.receiver.requests, phone).length > 0 ? true : undefined), 10_000, () => 'no reply to the agent');
    // Notifyer echoes the reply; older payloads say nothing of who wrote it.
    await p.send(outgoing('Your order is noted.', false));
    await p.send(outgoing('Your order is noted.', undefined));
    // A person may send the same words, and is answered.
    await p.send(outgoing('Your order is noted.', true));
    await waitUntil(() => (textsTo(p.receiver.requests, phone).length > 1 ? true : undefined), 10_000, () => 'no reply to the agent');
    await sleep(1_500);
    assert.deepEqual(textsTo(p.receiver.requests, phone), ['Your order is noted.', 'Your order is noted.']);
  });

  test('debounce: several matching messages in the window get one reply, after the last', async () => {
    const phone = '447700900205';
    let lastSentAt = 0;
    for (const text of ['part one', 'part two', 'part three']) {
      await p.send(fresh('incoming-text', { phone_number: phone, labels: '', last_message_of_user: text }));
      lastSentAt = Date.now();
      await sleep(400);
    }
    await sleep(2_500);
    const replies = p.receiver.requests.filter((r) => r.json.to === phone);
    assert.deepEqual(replies.map((r) => r.json.text.body), ['Got all your parts.']);
    assert.ok(replies[0]!.at - lastSentAt >= 1_400, `replied ${replies[0]!.at - lastSentAt} ms after the last message`);
  });

  test('debounce: the reply is sent however late its job runs, and without its marker', async () => {
    const phone = '447700900206';
    await p.send(fresh('incoming-text', { phone_number: phone, labels: '', last_message_of_user: 'one part' }));
    const redis = p.redis.client();
    const marker = `replyflow:debounce-latest:auto-reply:{split:${phone}}`;
    const ttl = await waitUntil(async () => ((await redis.ttl(marker)) > 0 ? redis.ttl(marker) : undefined), 5_000, () => 'no debounce marker');
    // Remembered as long as the event (DEDUPE_TTL_SECONDS), not just the window.
    assert.ok(ttl > 7 * 24 * 3600 - 60, `marker kept ${ttl} s`);
    await redis.del(marker);
    await sleep(2_500);
    assert.deepEqual(textsTo(p.receiver.requests, phone), ['Got all your parts.']);
  });

  test('firstContact: a phone is remembered for a year after its last incoming message, not its first', async () => {
    const phone = '447700900207';
    const ask = async (replies: number) => {
      await p.send(fresh('incoming-text', { phone_number: phone, last_message_of_user: 'remember me?' }));
      await waitUntil(() => (textsTo(p.receiver.requests, phone).length === replies ? true : undefined), 10_000, () => `no reply ${replies}`);
    };
    await ask(1);
    const redis = p.redis.client();
    const [memory] = await redis.keys(`*:phone:${phone}`);
    assert.ok(memory, 'no first-contact record');
    // As if the first message were almost a year old: the next one must renew the memory.
    await redis.expire(memory, 2);
    await ask(2);
    const ttl = await redis.ttl(memory);
    assert.ok(ttl > PHONE_MEMORY_SECONDS - 60, `remembered ${ttl} s more after the second message`);
    await sleep(2_500);
    await ask(3);
    assert.deepEqual(textsTo(p.receiver.requests, phone), ['Nice to meet you.', 'Welcome back.', 'Welcome back.']);
  });
});

describe('auto-replies across a worker crash', () => {
  test('kill -9 during a delay: the next worker sends the rest, each message once', async () => {
    const p = await startPipeline({ worker: false });
    try {
      const env = { FORWARD_URL: '', REPLY_RULES: rulesFile('rules.yaml', RULES), NOTIFYER_SEND_URL: p.receiver.url };
      const first = await p.startWorker(env);
      const phone = '447700900301';
      await p.send(fresh('incoming-text', { phone_number: phone }));
      await p.receiver.waitFor(1, 10_000);
      await sleep(300);
      await first.kill();
      await p.startWorker(env);
      await p.receiver.waitFor(3, 15_000);
      await sleep(1_000);
      assert.deepEqual(textsTo(p.receiver.requests, phone), ['Thanks, let me check your order.', 'It ships within 2 days.', 'Anything else?']);
    } finally {
      await p.stop();
    }
  });
});

describe('auto-reply send failures', () => {
  test('a failed send is retried; messages already sent are not sent again', async () => {
    let failures = 2;
    const p = await startPipeline({
      worker: false,
      receiver: (req) => (req.json.text.body === 'It ships within 2 days.' && failures-- > 0 ? { status: 502 } : { status: 200 }),
    });
    try {
      await p.startWorker({ FORWARD_URL: '', REPLY_RULES: rulesFile('rules.yaml', RULES), NOTIFYER_SEND_URL: p.receiver.url });
      const phone = '447700900401';
      await p.send(fresh('incoming-text', { phone_number: phone }));
      await p.receiver.waitFor(5, 15_000);
      await sleep(800);
      assert.deepEqual(textsTo(p.receiver.requests, phone), [
        'Thanks, let me check your order.',
        'It ships within 2 days.',
        'It ships within 2 days.',
        'It ships within 2 days.',
        'Anything else?',
      ]);
    } finally {
      await p.stop();
    }
  });
});

describe('debounce: a later event outside the window', () => {
  const DEBOUNCE_RULES = `
rules:
  - name: chapters
    when: { text: { contains: "chapter" } }
    debounceMs: 500
    reply:
      - text: "first"
      - text: "second"
        delayMs: 2000
  - name: query
    when: { text: { contains: "query" } }
    debounceMs: 300
    reply:
      - text: "got it"
`;
  const RETRY_PHONE = '447700900503';
  let failSendsUntil = 0;
  let p: Pipeline;
  before(async () => {
    p = await startPipeline({
      worker: false,
      receiver: (req) => ({ status: req.json.to === RETRY_PHONE && Date.now() < failSendsUntil ? 503 : 200 }),
    });
    await p.startWorker({ FORWARD_URL: '', REPLY_RULES: rulesFile('debounce.yaml', DEBOUNCE_RULES), NOTIFYER_SEND_URL: p.receiver.url, BACKOFF_BASE_MS: '200' });
  });
  after(() => p.stop());
  const message = (phone: string, text: string) => fresh('incoming-text', { phone_number: phone, labels: '', last_message_of_user: text });
  // Sends to RETRY_PHONE fail until failSendsUntil: those after it are the accepted ones.
  const acceptedTo = (phone: string) => p.receiver.requests.filter((r) => r.json.to === phone && (phone !== RETRY_PHONE || r.at >= failSendsUntil));
  const waitForAccepted = (phone: string, count: number) =>
    waitUntil(
      () => (acceptedTo(phone).length >= count ? acceptedTo(phone) : undefined),
      20_000,
      () => `accepted: ${acceptedTo(phone).map((r) => r.json.text.body).join(', ')}`,
    );

  test('does not cancel the rest of a reply already under way', async () => {
    const phone = '447700900502';
    await p.send(message(phone, 'chapter one'));
    // Its window is over and "first" sent; it sleeps until "second".
    await sleep(1_200);
    await p.send(message(phone, 'chapter two'));
    await waitForAccepted(phone, 4);
    await sleep(500);
    // The phone's lane runs the second event's reply after the first one's.
    assert.deepEqual(textsTo(p.receiver.requests, phone), ['first', 'second', 'first', 'second']);
  });

  test('does not cancel a reply being retried', async () => {
    failSendsUntil = Date.now() + 2_500;
    await p.send(message(RETRY_PHONE, 'query one'));
    // Its window is over; its send fails and is retried.
    await sleep(1_000);
    await p.send(message(RETRY_PHONE, 'query two'));
    await waitForAccepted(RETRY_PHONE, 2);
    await sleep(1_000);
    assert.deepEqual(acceptedTo(RETRY_PHONE).map((r) => r.json.text.body), ['got it', 'got it']);
  });
});

describe('rules file errors', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown key', 'rules:\n  - name: a\n    when: { text: { contain: "x" } }\n    reply: [{ text: "hi" }]\n', /rule 1 "a".*when\.text.*contain/],
    ['bad regex', 'rules:\n  - name: b\n    when: { text: { matches: "(" } }\n    reply: [{ text: "hi" }]\n', /rule 1 "b".*when\.text\.matches/],
    ['negative delay', 'rules:\n  - name: c\n    reply: [{ text: "hi", delayMs: -1 }]\n', /rule 1 "c".*delayMs/],
  ];
  for (const [what, text, pattern] of cases) {
    test(`${what}: the worker exits 1 naming the rule and the field`, async () => {
      const result = await runToExit('worker', { REPLY_RULES: rulesFile(`${what}.yaml`, text), NOTIFYER_SEND_URL: 'http://127.0.0.1:9/send' }, 10_000);
      assert.equal(result.code, 1);
      assert.match(result.stderr, pattern);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    });
  }

  test('REPLY_RULES without NOTIFYER_SEND_URL is a configuration error', async () => {
    const result = await runToExit('worker', { REPLY_RULES: rulesFile('ok.yaml', RULES) }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /NOTIFYER_SEND_URL/);
  });
});

