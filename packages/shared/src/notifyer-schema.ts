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

// Fields that come in two forms are one transform that tells the forms apart,
// not a z.union: a union tries its options in turn, and an option that fails
// cost 3 µs a webhook (its issue is built, then thrown away).
const rejected = (ctx: z.RefinementCtx, message: string): never => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

const phoneNumber = z.unknown().transform((value, ctx) => {
  if (typeof value === 'number' && value > Number.MAX_SAFE_INTEGER) {
    return rejected(ctx, 'a phone number of more than 15 digits must be a string: a JSON number that large has lost digits');
  }
  if (typeof value !== 'string' && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
    return rejected(ctx, 'expected a phone number as a string or a number');
  }
  // Notifyer sends "+44 7700 900123" and 447700900123 alike; the digits are the identity.
  const digits = String(value).replace(/[+\s\-.()]/g, '');
  if (!/^\d{6,20}$/.test(digits)) {
    return rejected(ctx, 'expected 6 to 20 digits (+, spaces, dashes, dots and parentheses are ignored)');
  }
  return digits;
});

const unixSeconds = z.unknown().transform((value, ctx) => {
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  if (typeof value === 'string') {
    // Notifyer may send "" for a time that does not apply; it counts as absent.
    if (value.trim() === '') return null;
    // Leading zeros are dropped, so only the value, not the length, bounds the string.
    if (/^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  }
  return rejected(ctx, 'expected unix seconds as a non-negative integer or a string of digits');
});

const lastMessages = z.unknown().transform((value, ctx) => {
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
  return rejected(ctx, 'expected an array, or a string holding a JSON array');
});

const labels = z.unknown().transform((value, ctx) => {
  const list = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(list) || !list.every((label) => typeof label === 'string')) {
    return rejected(ctx, 'expected a comma-separated string or an array of strings');
  }
  return list.map((label) => label.trim()).filter(Boolean);
});

const optionalString = z.string().nullish();

// Unknown fields are accepted and kept (the event's `raw` is the body itself),
// but left out of the parsed copy: z.looseObject would copy each one, about
// 1.2 µs a webhook that nothing reads.
const payloadSchema = z.object({
  phone_number: phoneNumber,
  incoming_message: z.boolean().nullish(),
  user_last_message_time: unixSeconds.nullish(),
  user_timestamp: unixSeconds.nullish(),
  bot_last_message_time: unixSeconds.nullish(),
  bot_timestamp: unixSeconds.nullish(),
  last_messages: lastMessages.nullish(),
  labels: labels.nullish(),
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
  const p = parsed.data;
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
      id: eventIdOf(fields),
      ...fields,
      labels: p.labels ?? [],
      lastMessages: p.last_messages ?? [],
      referral: p.referral ?? null,
      raw: body as Record<string, unknown>,
    },
  };
}
