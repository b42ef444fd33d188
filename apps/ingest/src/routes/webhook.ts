import { isUtf8 } from 'node:buffer';
import {
  maskPhone,
  parseNotifyerPayload,
  verifySignature,
  type Logger,
  type SecretSource,
  type SignatureMode,
} from '@replyflow/shared';
import type { Request, Response } from 'express';
import type { EventStore } from '../event-store.js';
import { HttpError } from '../http-error.js';
import type { Answer } from '../answer.js';

export interface WebhookDeps {
  signatureMode: SignatureMode;
  secrets: SecretSource;
  store: EventStore;
  logger: Logger;
  answer: Answer;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const semicolon = header.indexOf(';');
  const mediaType = (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase();
  return mediaType === 'application/json';
}

/** The body's text and the value it holds. */
function parseJson(body: Buffer): { text: string; value: unknown } {
  if (!isUtf8(body)) throw new HttpError(400, 'invalid_json', 'the body is not valid UTF-8');
  const text = body.toString('utf8');
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

/**
 * Keeps the caller's trace when Notifyer (or a proxy) sent one, so the forward
 * continues it. Otherwise the trace id comes from the event id: free (no
 * random bytes on the hot path), and the same for every delivery of one event.
 */
function traceIdOf(req: Request, eventId: string): string {
  const match = TRACEPARENT.exec(req.get('traceparent') ?? '');
  return match?.[1] ?? eventId.slice(0, 32);
}

/** What a webhook that passed every check gives the store and the log. */
interface CheckedWebhook {
  id: string;
  phone: string;
  direction: string;
  /** The body's text: it parsed as JSON and passed the schema. */
  payloadJson: string;
}

/** The contract's checks before the store, in its order: size (body parser), media type, signature, JSON, schema. */
function checkWebhook(req: Request, deps: WebhookDeps): CheckedWebhook {
  const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (!isJsonContentType(req.get('content-type'))) {
    throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json');
  }
  if (!verifySignature(deps.signatureMode, req.get('x-webhook-signature'), body, deps.secrets.current())) {
    throw new HttpError(401, 'invalid_signature', 'X-Webhook-Signature is missing or wrong');
  }
  const json = parseJson(body);
  const parsed = parseNotifyerPayload(json.value);
  if (!parsed.ok) {
    throw new HttpError(422, 'invalid_payload', 'the payload does not match the Notifyer webhook schema', {}, {
      issues: parsed.issues,
    });
  }
  const { id, phone, direction } = parsed.event;
  return { id, phone, direction, payloadJson: json.text };
}

/**
 * Checks, stores once, answers. While Redis stores the event, the handler
 * holds only what the store and the log need, not the parsed payload.
 */
export function webhookHandler(deps: WebhookDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const { id, phone, direction, payloadJson } = checkWebhook(req, deps);
    let outcome;
    try {
      outcome = await deps.store.store(id, phone, { receivedAt: Date.now(), traceId: traceIdOf(req, id), incoming: direction === 'incoming', payloadJson });
    } catch (error) {
      deps.logger.warn({ eventId: id, err: (error as Error).message }, 'could not store event, answering 503');
      throw new HttpError(503, 'unavailable', 'the event store is unavailable, retry later', { 'retry-after': '5' });
    }
    if (outcome === 'queued') {
      deps.logger.info({ eventId: id, phone: maskPhone(phone), direction }, 'event queued');
    } else {
      deps.logger.debug({ eventId: id }, 'duplicate event');
    }
    deps.answer(res, outcome === 'queued' ? 202 : 200, { status: outcome, id }, outcome);
  };
}
