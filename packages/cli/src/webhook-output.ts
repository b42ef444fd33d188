import type { CreatedWebhook, WebhookRecord } from './notifyer-api.js';
import { printJson, printLine, printTable } from './output.js';

/** The fields in Notifyer's order; whatever else a record carries follows them. */
const KNOWN_FIELDS = ['id', 'webhooks', 'enabled', 'status', 'incoming', 'outgoing', 'schedule_activity', 'waiting_duration', 'created_at'];

/** A record as Notifyer returned it, less the signature secret, which is never shown. */
export function publicRecord(record: WebhookRecord | CreatedWebhook): Record<string, unknown> {
  const { signature_secret: _secret, ...rest } = record;
  return rest;
}

export function printRecords(records: readonly WebhookRecord[], json: boolean): void {
  const rows = records.map(publicRecord);
  if (json) return printJson(rows);
  if (rows.length === 0) return printLine('No webhooks.');
  printTable(rows, fieldsOf(rows).map((field) => ({ header: field, value: (row) => show(row[field]) })));
}

export function printRecord(record: WebhookRecord | CreatedWebhook, json: boolean): void {
  const row = publicRecord(record);
  if (json) return printJson(row);
  const fields = fieldsOf([row]);
  const width = Math.max(...fields.map((field) => field.length));
  for (const field of fields) printLine(`${`${field}:`.padEnd(width + 1)} ${show(row[field])}`);
}

function fieldsOf(rows: readonly Record<string, unknown>[]): string[] {
  const present = new Set(rows.flatMap((row) => Object.keys(row)));
  const known = KNOWN_FIELDS.filter((field) => present.has(field));
  return [...known, ...[...present].filter((field) => !KNOWN_FIELDS.includes(field))];
}

function show(value: unknown): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
