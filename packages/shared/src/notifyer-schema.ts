import { z } from 'zod';
import { eventIdOf } from './event-id.js';

export type Direction = 'incoming' | 'outgoing';

/** A Notifyer message webhook, normalized. `raw` is the payload exactly as parsed from the request. */
export interface NotifyerEvent {
  id: string;
  phone: string;
  direction: Direction;
  messageTime: number;
  messageType: string | null;
  text: string | null;
  attachmentUrl: string | null;
  labels: string[];
  lastMessages: unknown[];
  referral: Record<string, unknown> | null;
  raw: Record<string, unknown>;
}

export interface SchemaIssue {
  path: string;
  message: string;
}

export type ParseResult = { ok: true; event: NotifyerEvent } | { ok: false; issues: SchemaIssue[] };

/** Why a field could not be read. */
class Rejection {
  constructor(readonly message: string) {}
}

// Each field that needs more than a type check is read by a plain function,
// so that the schema below and parseAcceptedPayload read it the same way.
function readPhone(value: unknown): string | Rejection {
  if (typeof value === 'number' && value > Number.MAX_SAFE_INTEGER) {
    return new Rejection('a phone number of more than 15 digits must be a string: a JSON number that large has lost digits');
  }
  if (typeof value !== 'string' && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
    return new Rejection('expected a phone number as a string or a number');
  }
  // Notifyer sends "+44 7700 900123" and 447700900123 alike; the digits are the identity.
  const digits = String(value).replace(/[+\s\-.()]/g, '');
  if (!/^\d{6,20}$/.test(digits)) {
    return new Rejection('expected 6 to 20 digits (+, spaces, dashes, dots and parentheses are ignored)');
  }
  return digits;
}

function readUnixSeconds(value: unknown): number | null | Rejection {
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  if (typeof value === 'string') {
    // Notifyer may send "" for a time that does not apply; it counts as absent.
    if (value.trim() === '') return null;
    // Leading zeros are dropped, so only the value, not the length, bounds the string.
    if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  }
  return new Rejection('expected unix seconds as a non-negative integer or a string of digits');
}

function readLastMessages(value: unknown): unknown[] | Rejection {
  if (Array.isArray(value)) return value as unknown[];
  if (typeof value === 'string') {
    if (value.trim() === '') return [];
    try {
      const parsed: unknown = JSON.parse(value);
      if (Array.isArray(parsed)) return parsed as unknown[];
    } catch {
      // reported below
    }
  }
  return new Rejection('expected an array, or a string holding a JSON array');
}

function readLabels(value: unknown): string[] | Rejection {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list) || !list.every((label) => typeof label === 'string')) {
    return new Rejection('expected a comma-separated string or an array of strings');
  }
  return list.map((label) => label.trim()).filter(Boolean);
}

// Fields that come in two forms are one transform that tells the forms apart,
// not a z.union: a union tries its options in turn, and an option that fails
// cost 3 µs a webhook (its issue is built, then thrown away).
const field = <T>(read: (value: unknown) => T | Rejection) =>
  z.unknown().transform((value, ctx): T => {
    const result = read(value);
    if (!(result instanceof Rejection)) return result;
    ctx.addIssue({ code: 'custom', message: result.message });
    return z.NEVER;
  });

const unixSeconds = field(readUnixSeconds);
const optionalString = z.string().nullish();

// Unknown fields are accepted and kept (the event's `raw` is the body itself),
// but left out of the parsed copy: z.looseObject would copy each one, about
// 1.2 µs a webhook that nothing reads.
const payloadSchema = z.object({
  phone_number: field(readPhone),
  incoming_message: z.boolean().nullish(),
  user_last_message_time: unixSeconds.nullish(),
  user_timestamp: unixSeconds.nullish(),
  bot_last_message_time: unixSeconds.nullish(),
  bot_timestamp: unixSeconds.nullish(),
  last_messages: field(readLastMessages).nullish(),
  labels: field(readLabels).nullish(),
  recipient_name: optionalString,
  user_id: optionalString,
  last_message_of_user: optionalString,
  last_message_of_bot: optionalString,
  message_type: optionalString,
  attachment_url: optionalString,
  note: optionalString,
  note_automation: optionalString,
  conversation_paragraph: optionalString,
  send_by: optionalString,
  was_message_by_human: z.boolean().nullish(),
  referral: z.record(z.string(), z.unknown()).nullish(),
});

/** The fields an event is made of, read. */
type EventFields = Pick<
  z.output<typeof payloadSchema>,
  | 'phone_number'
  | 'incoming_message'
  | 'user_last_message_time'
  | 'user_timestamp'
  | 'bot_last_message_time'
  | 'bot_timestamp'
  | 'last_messages'
  | 'labels'
  | 'last_message_of_user'
  | 'last_message_of_bot'
  | 'message_type'
  | 'attachment_url'
  | 'referral'
>;

/** Validates a parsed JSON body. Never throws: bad input becomes `issues`. */
export function parseNotifyerPayload(body: unknown): ParseResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, issues: [{ path: '', message: 'expected a JSON object' }] };
  }
  const parsed = payloadSchema.safeParse(body);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message })),
    };
  }
  return eventOf(parsed.data, body as Record<string, unknown>);
}

/**
 * The event from its fields, read. `id`: the event id when it is known
 * already (a stored event's job), else derived from the fields.
 */
function eventOf(p: EventFields, body: Record<string, unknown>, id?: string): ParseResult {
  const direction: Direction = p.incoming_message === false ? 'outgoing' : 'incoming';
  // Older payloads carry user_timestamp/bot_timestamp instead of the *_last_message_time fields.
  const messageTime =
    direction === 'incoming' ? (p.user_last_message_time ?? p.user_timestamp) : (p.bot_last_message_time ?? p.bot_timestamp);
  if (messageTime === undefined || messageTime === null) {
    const field = direction === 'incoming' ? 'user_last_message_time' : 'bot_last_message_time';
    return { ok: false, issues: [{ path: field, message: `required for ${direction} messages (unix seconds)` }] };
  }
  const text = (direction === 'incoming' ? p.last_message_of_user : p.last_message_of_bot) ?? null;
  const fields = {
    phone: p.phone_number,
    direction,
    messageTime,
    messageType: p.message_type ?? null,
    text,
    attachmentUrl: p.attachment_url ?? null,
  };
  return {
    ok: true,
    event: {
      id: id ?? eventIdOf(fields),
      ...fields,
      labels: p.labels ?? [],
      lastMessages: p.last_messages ?? [],
      referral: p.referral ?? null,
      raw: body,
    },
  };
}

const readBoolean = (value: unknown) => (typeof value === 'boolean' ? value : new Rejection('expected a boolean'));
const readString = (value: unknown) => (typeof value === 'string' ? value : new Rejection('expected a string'));
const readObject = (value: unknown) =>
  typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : new Rejection('expected an object');

/** How parseAcceptedPayload reads each of the fields an event is made of, when present: as the schema does. */
const ACCEPTED_READERS: readonly [keyof EventFields, (value: unknown) => unknown][] = [
  ['incoming_message', readBoolean],
  ['user_last_message_time', readUnixSeconds],
  ['user_timestamp', readUnixSeconds],
  ['bot_last_message_time', readUnixSeconds],
  ['bot_timestamp', readUnixSeconds],
  ['last_messages', readLastMessages],
  ['labels', readLabels],
  ['last_message_of_user', readString],
  ['last_message_of_bot', readString],
  ['message_type', readString],
  ['attachment_url', readString],
  ['referral', readObject],
];

/**
 * The event of a payload the ingest accepted, as a worker reads it back from
 * its job, under the event id it was stored with: the same reading as
 * parseNotifyerPayload's, of the fields an event is made of only, and without
 * zod. zod's walk of the whole schema, for a payload checked already, and the
 * id's hash cost the worker about 15 µs an event (its CPU profile). A payload
 * that does not read (a job written by other means) is still refused.
 */
export function parseAcceptedPayload(body: unknown, id: string): ParseResult {
  if (typeof body !== 'object' || body === null) return { ok: false, issues: [{ path: '', message: 'expected a JSON object' }] };
  const payload = body as Record<string, unknown>;
  const phone = readPhone(payload.phone_number);
  if (phone instanceof Rejection) return { ok: false, issues: [{ path: 'phone_number', message: phone.message }] };
  const fields: Record<string, unknown> = { phone_number: phone };
  for (const [name, read] of ACCEPTED_READERS) {
    const value = payload[name];
    const result = value === undefined || value === null ? value : read(value);
    if (result instanceof Rejection) return { ok: false, issues: [{ path: name, message: result.message }] };
    fields[name] = result;
  }
  return eventOf(fields as unknown as EventFields, payload, id);
}
