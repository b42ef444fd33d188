import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { NotifyerEvent } from '@replyflow/shared';
import {
  RulesError,
  loadReplyRules,
  matchRule,
  notifyerSendBody,
  type ReplyRules,
} from '../../apps/worker/src/workflows/reply-rules.js';
import { repoRoot } from '../helpers/repo-root.js';

const dir = mkdtempSync(join(tmpdir(), 'reply-rules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeRules(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** An incoming text from Dana, shaped as parseNotifyerPayload returns it. */
function event(overrides: Partial<NotifyerEvent> = {}): NotifyerEvent {
  return {
    id: 'a'.repeat(64),
    phone: '447700900123',
    direction: 'incoming',
    messageTime: 1763630140,
    messageType: 'text',
    text: 'Great, when will it arrive?',
    attachmentUrl: null,
    labels: [],
    lastMessages: [],
    referral: null,
    raw: {},
    ...overrides,
  };
}

const contractExample = `rules:
  - name: unsubscribe
    when: { text: { matches: "^(stop|unsubscribe)$", ignoreCase: true } }
    reply:
      - text: "You are unsubscribed. Reply START to come back."
  - name: shipping
    when: { labels: { any: [shipping] } }
    debounceMs: 20000
    reply:
      - text: "Thanks, let me check your order."
      - text: "It ships within 2 days."
        delayMs: 2000
`;

/** Rules from `when` objects, one rule each, named r1, r2, ... */
function rulesOf(...whens: object[]): ReplyRules {
  const rules = whens.map((when, index) => ({ name: `r${index + 1}`, when, reply: [{ text: 'hi' }] }));
  return loadReplyRules(writeRules(`rules-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ rules })));
}

const firstContact = { firstContact: false };

describe('reply rules: loading', () => {
  test('loads the contract example', () => {
    const { rules } = loadReplyRules(writeRules('contract.yaml', contractExample));
    assert.deepEqual(
      rules.map((rule) => rule.name),
      ['unsubscribe', 'shipping'],
    );
    assert.deepEqual(rules[1]?.reply, [
      { text: 'Thanks, let me check your order.' },
      { text: 'It ships within 2 days.', delayMs: 2000 },
    ]);
    assert.equal(rules[1]?.debounceMs, 20000);
    assert.deepEqual(rules[1]?.when, { labels: { any: ['shipping'] } });
    assert.equal(rules[0]?.textPattern?.flags, 'iu');
    assert.equal(rules[0]?.textPattern?.source, '^(stop|unsubscribe)$');
  });

  test('loads the shipped example', () => {
    const { rules } = loadReplyRules(join(repoRoot, 'examples', 'reply-rules.yaml'));
    assert.deepEqual(
      rules.map((rule) => rule.name),
      ['unsubscribe', 'welcome', 'shipping'],
    );
  });

  test('loads the same rules from JSON and from .yml', () => {
    const json = JSON.stringify({
      rules: [{ name: 'stop', when: { text: { equals: 'STOP' } }, reply: [{ text: 'bye', delayMs: 0 }] }],
    });
    const fromJson = loadReplyRules(writeRules('rules.json', json));
    const fromYml = loadReplyRules(writeRules('rules.yml', json));
    assert.deepEqual(fromJson, fromYml);
    assert.deepEqual(fromJson.rules[0], {
      name: 'stop',
      when: { text: { equals: 'STOP' } },
      reply: [{ text: 'bye', delayMs: 0 }],
    });
  });

  test('a JSON file starting with a byte-order mark loads like one without (as YAML does)', () => {
    const json = JSON.stringify({ rules: [{ name: 'stop', reply: [{ text: 'bye' }] }] });
    const withBom = loadReplyRules(writeRules('bom.json', `\uFEFF${json}`));
    assert.deepEqual(withBom, loadReplyRules(writeRules('no-bom.json', json)));
  });

  test('a missing or bare `when` matches everything of its direction', () => {
    const rules = loadReplyRules(
      writeRules('bare-when.yaml', 'rules:\n  - name: any\n    when:\n    reply: [{ text: hi }]\n  - name: none\n    reply: [{ text: hi }]\n'),
    );
    assert.deepEqual(rules.rules[0]?.when, {});
    assert.deepEqual(rules.rules[1]?.when, {});
  });
});

describe('reply rules: invalid files', () => {
  const reply = '    reply: [{ text: hi }]\n';
  const cases: { name: string; file: string; content?: string; error: string }[] = [
    {
      name: 'unknown key at the top',
      file: 'top.yaml',
      content: `rules:\n  - name: a\n${reply}extra: 1\n`,
      error: 'extra: unknown key',
    },
    {
      name: 'unknown key in a rule',
      file: 'rule-key.yaml',
      content: `rules:\n  - name: a\n${reply}  - name: b\n    whenn: {}\n${reply}`,
      error: 'rule 2 "b": whenn: unknown key',
    },
    {
      name: 'unknown key inside when.text',
      file: 'text-key.yaml',
      content: `rules:\n  - name: stop\n    when: { text: { equals: STOP, ignorecase: true } }\n${reply}`,
      error: 'rule 1 "stop": when.text.ignorecase: unknown key',
    },
    {
      name: 'when.text without a test',
      file: 'text-empty.yaml',
      content: `rules:\n  - name: stop\n    when: { text: { ignoreCase: true } }\n${reply}`,
      error: 'rule 1 "stop": when.text: expected at least one of matches, contains, equals',
    },
    {
      name: 'bad regex',
      file: 'regex.yaml',
      content: `rules:\n  - name: a\n${reply}  - name: broken\n    when: { text: { matches: "(stop" } }\n${reply}`,
      error: 'rule 2 "broken": when.text.matches: not a valid regex: /(stop/u: Unterminated group',
    },
    {
      name: 'regex valid only without the u flag',
      file: 'regex-u.yaml',
      content: `rules:\n  - name: stop\n    when: { text: { matches: "^stop\\\\!$" } }\n${reply}`,
      error: 'rule 1 "stop": when.text.matches: not a valid regex: /^stop\\!$/u: Invalid escape',
    },
    {
      name: 'empty contains (would match every text)',
      file: 'contains-empty.yaml',
      content: `rules:\n  - name: a\n    when: { text: { contains: "" } }\n${reply}`,
      error: 'rule 1 "a": when.text.contains: expected a non-empty string',
    },
    {
      name: 'labels without a test',
      file: 'labels-empty.yaml',
      content: `rules:\n  - name: a\n    when: { labels: {} }\n${reply}`,
      error: 'rule 1 "a": when.labels: expected at least one of any, all, none',
    },
    {
      name: 'labels.any empty (would never match)',
      file: 'labels-any-empty.yaml',
      content: `rules:\n  - name: a\n    when: { labels: { any: [] } }\n${reply}`,
      error: 'rule 1 "a": when.labels.any: expected a non-empty list of labels',
    },
    {
      name: 'labels.none empty (would test nothing)',
      file: 'labels-none-empty.yaml',
      content: `rules:\n  - name: a\n    when: { labels: { none: [] } }\n${reply}`,
      error: 'rule 1 "a": when.labels.none: expected a non-empty list of labels',
    },
    {
      name: 'blank label (would never match)',
      file: 'labels-blank.yaml',
      content: `rules:\n  - name: a\n    when: { labels: { all: [vip, " "] } }\n${reply}`,
      error: 'rule 1 "a": when.labels.all#2: expected a non-blank label',
    },
    {
      name: 'labels.any not a list of strings',
      file: 'labels.yaml',
      content: `rules:\n  - name: a\n${reply}  - name: shipping\n    when: { labels: { any: shipping } }\n${reply}`,
      error: 'rule 2 "shipping": when.labels.any: expected an array of strings',
    },
    {
      name: 'firstContact false',
      file: 'first.yaml',
      content: `rules:\n  - name: welcome\n    when: { firstContact: false }\n${reply}`,
      error: 'rule 1 "welcome": when.firstContact: expected true (leave it out otherwise)',
    },
    {
      name: 'unknown direction',
      file: 'direction.yaml',
      content: `rules:\n  - name: a\n    when: { direction: inbound }\n${reply}`,
      error: 'rule 1 "a": when.direction: expected incoming or outgoing',
    },
    {
      name: 'negative delayMs',
      file: 'delay.yaml',
      content: `rules:\n  - name: a\n    reply:\n      - text: one\n      - text: two\n        delayMs: -5\n`,
      error: 'rule 1 "a": reply#2.delayMs: expected a non-negative integer',
    },
    {
      name: 'fractional debounceMs',
      file: 'debounce.yaml',
      content: `rules:\n  - name: a\n    debounceMs: 1.5\n${reply}`,
      error: 'rule 1 "a": debounceMs: expected a non-negative integer',
    },
    {
      name: 'empty reply',
      file: 'reply.yaml',
      content: `rules:\n  - name: a\n    reply: []\n`,
      error: 'rule 1 "a": reply: expected at least one message',
    },
    {
      name: 'empty reply text',
      file: 'reply-text.yaml',
      content: `rules:\n  - name: a\n    reply: [{ text: "" }]\n`,
      error: 'rule 1 "a": reply#1.text: expected a non-empty string',
    },
    {
      name: 'missing reply',
      file: 'no-reply.yaml',
      content: `rules:\n  - name: a\n`,
      error: 'rule 1 "a": reply: required',
    },
    {
      name: 'missing name',
      file: 'no-name.yaml',
      content: `rules:\n  - when: {}\n${reply}`,
      error: 'rule 1: name: required',
    },
    {
      name: 'duplicate names',
      file: 'duplicate.yaml',
      content: `rules:\n  - name: same\n${reply}  - name: other\n${reply}  - name: same\n${reply}`,
      error: 'rule 3 "same": name: duplicate of rule 1',
    },
    { name: 'empty rules', file: 'empty-rules.yaml', content: 'rules: []\n', error: 'rules: expected a non-empty list' },
    { name: 'no rules key', file: 'no-rules.yaml', content: 'other: 1\n', error: 'rules: required' },
    { name: 'empty file', file: 'empty.yaml', content: '', error: 'expected an object with a rules list' },
    { name: 'missing file', file: 'missing.yaml', error: 'cannot read file (ENOENT)' },
    {
      name: 'invalid YAML',
      file: 'invalid.yaml',
      content: 'rules:\n  - name: a\n   reply: [\n',
      error: 'not valid YAML: ',
    },
    { name: 'invalid JSON', file: 'invalid.json', content: '{"rules": [', error: 'not valid JSON: ' },
    { name: 'unknown extension', file: 'rules.txt', content: '', error: 'expected a .yaml, .yml or .json file' },
  ];

  for (const { name, file, content, error } of cases) {
    test(`${name}: ${error}`, () => {
      const path = content === undefined ? join(dir, file) : writeRules(file, content);
      assert.throws(
        () => loadReplyRules(path),
        (thrown: unknown) => {
          assert.ok(thrown instanceof RulesError, `expected a RulesError, got ${String(thrown)}`);
          assert.doesNotMatch(thrown.message, /\n/);
          assert.ok(
            thrown.message.startsWith(`REPLY_RULES ${path}: ${error}`),
            `message was: ${thrown.message}`,
          );
          return true;
        },
      );
    });
  }
});

describe('reply rules: matching', () => {
  const cases: { name: string; when: object; event: Partial<NotifyerEvent>; firstContact?: boolean; matches: boolean }[] = [
    { name: 'empty when matches an incoming event', when: {}, event: {}, matches: true },
    { name: 'direction defaults to incoming only', when: {}, event: { direction: 'outgoing' }, matches: false },
    { name: 'explicit outgoing matches outgoing', when: { direction: 'outgoing' }, event: { direction: 'outgoing' }, matches: true },
    { name: 'explicit outgoing skips incoming', when: { direction: 'outgoing' }, event: {}, matches: false },
    { name: 'messageType equal', when: { messageType: 'image' }, event: { messageType: 'image', text: '' }, matches: true },
    { name: 'messageType different', when: { messageType: 'image' }, event: {}, matches: false },
    { name: 'messageType against none', when: { messageType: 'text' }, event: { messageType: null }, matches: false },
    { name: 'matches, case-sensitive', when: { text: { matches: '^stop$' } }, event: { text: 'STOP' }, matches: false },
    { name: 'matches with ignoreCase', when: { text: { matches: '^stop$', ignoreCase: true } }, event: { text: 'STOP' }, matches: true },
    { name: 'matches is a search, not a full match', when: { text: { matches: 'arriv' } }, event: {}, matches: true },
    { name: 'matches a class of emoji', when: { text: { matches: '^[👍🙏]$' } }, event: { text: '👍' }, matches: true },
    { name: 'matches: dot is one emoji', when: { text: { matches: '^.$' } }, event: { text: '🙏' }, matches: true },
    { name: 'matches a Unicode property', when: { text: { matches: '^\\p{L}+$' } }, event: { text: 'olá' }, matches: true },
    { name: 'matches: \\p is no literal p', when: { text: { matches: '^\\p{L}+$' } }, event: { text: 'p{L}' }, matches: false },
    { name: 'matches with ignoreCase folds beyond ASCII', when: { text: { matches: '^ſtop$', ignoreCase: true } }, event: { text: 'STOP' }, matches: true },
    { name: 'contains', when: { text: { contains: 'when will' } }, event: {}, matches: true },
    { name: 'contains, case-sensitive', when: { text: { contains: 'WHEN' } }, event: {}, matches: false },
    { name: 'contains with ignoreCase', when: { text: { contains: 'WHEN', ignoreCase: true } }, event: {}, matches: true },
    { name: 'equals', when: { text: { equals: 'STOP' } }, event: { text: 'STOP' }, matches: true },
    { name: 'equals is whole text', when: { text: { equals: 'STOP' } }, event: { text: 'STOP now' }, matches: false },
    { name: 'equals with ignoreCase', when: { text: { equals: 'stop', ignoreCase: true } }, event: { text: 'Stop' }, matches: true },
    { name: 'all text tests must hold', when: { text: { contains: 'when', equals: 'when' } }, event: {}, matches: false },
    { name: 'no text is "" for equals', when: { text: { equals: '' } }, event: { text: null, messageType: 'image' }, matches: true },
    { name: 'no text is "" for matches', when: { text: { matches: '^$' } }, event: { text: null }, matches: true },
    { name: 'no text does not contain a word', when: { text: { contains: 'a' } }, event: { text: null }, matches: false },
    { name: 'labels.any, one present', when: { labels: { any: ['vip', ' Shipping '] } }, event: { labels: ['customer', 'shipping'] }, matches: true },
    { name: 'labels.any, case and spaces on the event', when: { labels: { any: ['shipping'] } }, event: { labels: [' SHIPPING '] }, matches: true },
    { name: 'labels.any, none present', when: { labels: { any: ['vip'] } }, event: { labels: ['customer'] }, matches: false },
    { name: 'labels.any, event without labels', when: { labels: { any: ['vip'] } }, event: { labels: [] }, matches: false },
    { name: 'labels.all, every present', when: { labels: { all: ['Customer', 'shipping'] } }, event: { labels: ['customer', ' Shipping', 'vip'] }, matches: true },
    { name: 'labels.all, one missing', when: { labels: { all: ['customer', 'vip'] } }, event: { labels: ['customer'] }, matches: false },
    { name: 'labels.none, absent', when: { labels: { none: ['agent-handling'] } }, event: { labels: ['customer'] }, matches: true },
    { name: 'labels.none, present', when: { labels: { none: [' Agent-Handling '] } }, event: { labels: ['agent-handling'] }, matches: false },
    { name: 'labels any+all+none together', when: { labels: { any: ['a', 'b'], all: ['c'], none: ['d'] } }, event: { labels: ['B', 'c'] }, matches: true },
    { name: 'firstContact via context', when: { firstContact: true }, event: {}, firstContact: true, matches: true },
    { name: 'firstContact via referral', when: { firstContact: true }, event: { referral: { source_type: 'ad' } }, matches: true },
    { name: 'firstContact, neither', when: { firstContact: true }, event: {}, matches: false },
    {
      name: 'every test must hold',
      when: { messageType: 'text', text: { contains: 'arrive' }, labels: { any: ['shipping'] } },
      event: { labels: ['customer'] },
      matches: false,
    },
  ];

  for (const { name, when, event: overrides, firstContact: first = false, matches } of cases) {
    test(`${name}: ${matches ? 'matches' : 'no match'}`, () => {
      const rule = matchRule(rulesOf(when), event(overrides), { firstContact: first });
      assert.equal(rule?.name, matches ? 'r1' : undefined);
    });
  }

  test('the first matching rule wins', () => {
    const rules = rulesOf({ labels: { any: ['vip'] } }, { text: { contains: 'arrive' } }, {});
    assert.equal(matchRule(rules, event({ labels: ['VIP'] }), firstContact)?.name, 'r1');
    assert.equal(matchRule(rules, event(), firstContact)?.name, 'r2');
    assert.equal(matchRule(rules, event({ text: 'hello' }), firstContact)?.name, 'r3');
  });

  test('no rule matches: undefined', () => {
    const rules = rulesOf({ text: { equals: 'STOP' } }, { direction: 'outgoing' });
    assert.equal(matchRule(rules, event(), firstContact), undefined);
  });

  test('the contract example: STOP unsubscribes, shipping label answers, agent replies are ignored', () => {
    const rules = loadReplyRules(writeRules('contract-match.yaml', contractExample));
    const labels = ['customer', 'shipping'];
    assert.equal(matchRule(rules, event({ text: 'Stop', labels }), firstContact)?.name, 'unsubscribe');
    assert.equal(matchRule(rules, event({ labels }), firstContact)?.name, 'shipping');
    assert.equal(matchRule(rules, event({ direction: 'outgoing', labels }), firstContact), undefined);
    assert.equal(matchRule(rules, event({ text: 'stop please' }), firstContact), undefined);
  });

  test('a regex is stateless across events', () => {
    const rules = rulesOf({ text: { matches: 'stop', ignoreCase: true } });
    for (let round = 0; round < 3; round += 1) {
      assert.equal(matchRule(rules, event({ text: 'STOP' }), firstContact)?.name, 'r1');
    }
  });
});

describe('reply rules: send body', () => {
  test('is the exact body of the contract', () => {
    assert.deepEqual(notifyerSendBody('447700900123', 'It ships within 2 days.'), {
      to: '447700900123',
      type: 'text',
      recipient_type: 'individual',
      messaging_product: 'whatsapp',
      text: { body: 'It ships within 2 days.', preview_url: false },
    });
    assert.equal(
      JSON.stringify(notifyerSendBody('1', 'hi')),
      '{"to":"1","type":"text","recipient_type":"individual","messaging_product":"whatsapp","text":{"body":"hi","preview_url":false}}',
    );
  });
});
