// Unique, valid Notifyer payloads made from the fixtures: each request gets its
// own message time (so its own event id) and one of `phones` phone numbers.
// The same templates feed wrk's Lua script and the Node clients.
import { fixtureNames, loadFixture, withMessageTime } from '../../test/helpers/fixtures.js';

export const SECRET = 'bench-webhook-secret';

const TIME_SENTINEL = 987654321098;
const PHONE_SENTINEL = '__BENCH_PHONE__';

export type Slot = 'time' | 'phone';
/** A fixture's JSON text cut at the places where the time and the phone go. */
export interface Template {
  fixture: string;
  parts: (string | Slot)[];
}

export function loadTemplates(): Template[] {
  return fixtureNames.map((fixture) => {
    const json = withMessageTime(loadFixture(fixture).json, TIME_SENTINEL);
    json.phone_number = PHONE_SENTINEL;
    const text = JSON.stringify(json);
    const parts: (string | Slot)[] = [];
    for (const [i, piece] of text.split(String(TIME_SENTINEL)).entries()) {
      if (i > 0) parts.push('time');
      for (const [j, sub] of piece.split(PHONE_SENTINEL).entries()) {
        if (j > 0) parts.push('phone');
        parts.push(sub);
      }
    }
    if (parts.filter((p) => p === 'time').length !== 1 || parts.filter((p) => p === 'phone').length !== 1) {
      throw new Error(`fixture ${fixture}: expected one message time and one phone in ${text}`);
    }
    return { fixture, parts };
  });
}

export const phoneOf = (n: number, phones: number): string => `44770${String(n % phones).padStart(7, '0')}`;

/** Hands out disjoint ranges of message times, so no two runs ever post the same event. */
let nextBase = 1_700_000_000;
export function timeBase(count: number): number {
  const base = nextBase;
  nextBase += Math.max(count, 10_000_000);
  return base;
}

/**
 * The template of the n-th body. Shifted by one every `phones` bodies, so each
 * phone gets every kind of message rather than always the same one.
 */
export const templateIndex = (n: number, phones: number, templates: number): number => (n + Math.floor(n / phones)) % templates;

/**
 * The n-th body of a run: phone n mod phones, time base + n. A phone's bodies
 * are `phones` apart; where order is checked, the sender also waits for a
 * phone's previous answer (postAll's orderKey), so acceptance order is
 * message-time order even when one answer is slow.
 */
export function bodyAt(templates: readonly Template[], n: number, base: number, phones: number): string {
  const template = templates[templateIndex(n, phones, templates.length)] as Template;
  let body = '';
  for (const part of template.parts) body += part === 'time' ? String(base + n) : part === 'phone' ? phoneOf(n, phones) : part;
  return body;
}
