import { readFileSync } from 'node:fs';
import { CommandFailedError } from '../errors.js';

export interface PayloadFile {
  path: string;
  /** Posted as they are, unless --unique rewrites the message time. */
  bytes: Buffer;
  /** The parsed object, when the file holds one. */
  json: Record<string, unknown> | undefined;
}

const FIVE_YEARS_S = 5 * 365 * 86_400;

/** Reads every file up front, so a typo fails before the first request. */
export function loadPayloadFiles(paths: readonly string[], needJson: boolean): PayloadFile[] {
  return paths.map((path) => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new CommandFailedError(`cannot read ${path}: ${(err as Error).message}`);
    }
    const json = parseObject(bytes);
    if (needJson && !json) throw new CommandFailedError(`${path} is not a JSON object, so --unique cannot change its message time`);
    return { path, bytes, json };
  });
}

/**
 * The field the ingest reads the message time from (contract section 4): per
 * direction, and the older generation's name when the payload is of that
 * generation, so the rewritten payload stays the shape it was.
 */
export function messageTimeField(payload: Record<string, unknown>): string {
  const [current, legacy] =
    payload.incoming_message === false ? ['bot_last_message_time', 'bot_timestamp'] : ['user_last_message_time', 'user_timestamp'];
  const hasValue = (field: string) => payload[field] !== undefined && payload[field] !== null;
  return !hasValue(current) && hasValue(legacy) ? legacy : current;
}

export function withMessageTime(payload: Record<string, unknown>, seconds: number): Buffer {
  return Buffer.from(JSON.stringify({ ...payload, [messageTimeField(payload)]: seconds }));
}

/**
 * The first of `count` consecutive message times. They lie in the past five
 * years from a random start, so each run's events are new within the run and,
 * almost surely (about 2 × count in 150 million), against earlier runs too,
 * while still reading as plausible times.
 */
export function uniqueTimeBase(count: number, nowMs = Date.now(), random: () => number = Math.random): number {
  return Math.floor(nowMs / 1000) - count - Math.floor(random() * FIVE_YEARS_S);
}

function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
