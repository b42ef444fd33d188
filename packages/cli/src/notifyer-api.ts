import { z } from 'zod';
import { CommandFailedError } from './errors.js';
import { httpCall, NoAnswerError, type HttpAnswer } from './http-client.js';

export const DEFAULT_NOTIFYER_API_URL = 'https://api.insightssystem.com/api:qh9OQ3OW';
/** list, update and delete are the console's own calls: Notifyer refuses them from any other Origin. */
export const CONSOLE_ORIGIN = 'https://console.notifyer-systems.com';
/** Notifyer's words for a URL that is already registered; the emulator answers the same. */
export const DUPLICATE_WEBHOOK_MESSAGE = 'Same webhook exist';

const TIMEOUT_MS = 15_000;

/** A webhook row as Notifyer returns it. Unknown fields are kept and printed. */
export const webhookRecordSchema = z.looseObject({
  id: z.union([z.number().int(), z.string().min(1)]),
  webhooks: z.string(),
  enabled: z.boolean().optional(),
  status: z.unknown().optional(),
  incoming: z.boolean(),
  outgoing: z.boolean(),
  schedule_activity: z.boolean(),
  waiting_duration: z.number(),
  created_at: z.number(),
  /** Only in the answer to create, and only once: never printed. */
  signature_secret: z.string().nullish(),
});
export type WebhookRecord = z.infer<typeof webhookRecordSchema>;

/**
 * The answer to create, read leniently: its secret is shown this once, so a
 * field replyflow does not need, in a form it does not expect, must not make
 * it throw the secret away with a webhook already created.
 */
const createdWebhookSchema = z.looseObject({
  id: webhookRecordSchema.shape.id,
  signature_secret: z.string().nullish(),
});
export type CreatedWebhook = z.infer<typeof createdWebhookSchema>;

const errorBodySchema = z.looseObject({ code: z.string().optional(), message: z.string().optional() });
/** Delete answers with nothing, null or the removed row; any of them means done. */
const deleteAnswerSchema = z.union([z.null(), z.record(z.string(), z.unknown())]);

/** A webhook's settings: what a create carries besides active_signature, and what a PATCH carries. */
export interface WebhookSettings {
  webhooks: string;
  enabled: boolean;
  incoming: boolean;
  outgoing: boolean;
  schedule_activity: boolean;
  waiting_duration: number;
}

/** The body of `POST /webhook/dev/create` (Notifyer's public documentation). */
export interface CreateWebhookRequest extends WebhookSettings {
  active_signature: boolean;
}

export interface NotifyerApiSettings {
  baseUrl: string;
  token: string;
}

const settingsSchema = z.object({
  NOTIFYER_API_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).default(DEFAULT_NOTIFYER_API_URL),
  NOTIFYER_API_TOKEN: z.string({ message: 'is not set' }),
});

/**
 * The token comes from the environment only, never a flag, so it stays out of
 * shell history and `ps`. Empty counts as unset, as in loadConfig.
 */
export function notifyerApiSettings(env: NodeJS.ProcessEnv = process.env): NotifyerApiSettings {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const parsed = settingsSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0]);
    const hint = variable === 'NOTIFYER_API_TOKEN' ? ': export your Notifyer API token (the Bearer token of your dashboard) as NOTIFYER_API_TOKEN' : '';
    throw new CommandFailedError(`${variable} ${issue.message}${hint}`);
  }
  return { baseUrl: parsed.data.NOTIFYER_API_URL.replace(/\/+$/, ''), token: parsed.data.NOTIFYER_API_TOKEN.trim() };
}

/** A call Notifyer answered with an error, or did not answer: in plain words, exit 1. */
export class NotifyerApiError extends CommandFailedError {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'NotifyerApiError';
  }
}

interface Call<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  schema: z.ZodType<T>;
  body?: unknown;
  /** The webhook a call is about, for a 404's message. */
  id?: string;
  /** The URL a create is about, for a duplicate's message. */
  url?: string;
}

/** Notifyer's webhook management API, every answer validated before it is used. */
export class NotifyerApi {
  constructor(private readonly settings: NotifyerApiSettings) {}

  create(request: CreateWebhookRequest): Promise<CreatedWebhook> {
    return this.call({ method: 'POST', path: '/webhook/dev/create', schema: createdWebhookSchema, body: request, url: request.webhooks });
  }

  list(): Promise<WebhookRecord[]> {
    return this.call({ method: 'GET', path: '/webhook/dev', schema: z.array(webhookRecordSchema) });
  }

  /** Notifyer replaces the row: `record` must be complete, not just the changed fields. */
  update(record: WebhookRecord): Promise<WebhookRecord> {
    const id = String(record.id);
    const { signature_secret: _secret, ...body } = record;
    return this.call({ method: 'PATCH', path: `/webhook/dev/${encodeURIComponent(id)}`, schema: webhookRecordSchema, body, id, url: record.webhooks });
  }

  async remove(id: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `/webhook/dev/${encodeURIComponent(id)}`, schema: deleteAnswerSchema, id });
  }

  private async call<T>(call: Call<T>): Promise<T> {
    const answer = await this.send(call);
    if (answer.status < 200 || answer.status > 299) throw describeRefusal(call, answer, this.settings.baseUrl);
    const parsed = call.schema.safeParse(answer.body.trim() === '' ? null : parseJson(answer.body));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
      throw new NotifyerApiError(`Notifyer's answer to ${call.method} ${call.path} is not what replyflow expects${where}: ${issue.message}`, answer.status);
    }
    return parsed.data;
  }

  private async send(call: Call<unknown>): Promise<HttpAnswer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.settings.token}`, accept: 'application/json' };
    // Only the console's calls carry its Origin: create is public and needs none.
    if (call.method !== 'POST') headers.origin = CONSOLE_ORIGIN;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const url = new URL(`${this.settings.baseUrl}${call.path}`);
      const body = call.body === undefined ? undefined : JSON.stringify(call.body);
      return await httpCall({ method: call.method, url, headers, body, timeoutMs: TIMEOUT_MS });
    } catch (err) {
      if (!(err instanceof NoAnswerError)) throw err;
      throw new NotifyerApiError(`cannot reach Notifyer at ${this.settings.baseUrl}: ${err.message}`, undefined);
    }
  }
}

/** Turns Notifyer's error answers into what the operator should do next. */
export function describeRefusal(call: Pick<Call<unknown>, 'method' | 'path' | 'id' | 'url'>, answer: HttpAnswer, baseUrl: string): NotifyerApiError {
  const parsed = errorBodySchema.safeParse(parseJson(answer.body));
  const said = parsed.success ? parsed.data.message : undefined;
  const status = answer.status;
  if (status === 400 && said?.toLowerCase().includes(DUPLICATE_WEBHOOK_MESSAGE.toLowerCase())) {
    return new NotifyerApiError(
      `Notifyer says "${DUPLICATE_WEBHOOK_MESSAGE}": ${call.url ?? 'this URL'} is already registered. ` +
        'Change that webhook with `replyflow webhooks update ID ...` or remove it with `replyflow webhooks delete ID` ' +
        '(`replyflow webhooks list` shows its ID)',
      status,
    );
  }
  if (status === 401) {
    return new NotifyerApiError('Notifyer rejected NOTIFYER_API_TOKEN (401 Unauthorized): check that it is your current API token', status);
  }
  if (status === 403) {
    return new NotifyerApiError(
      `Notifyer refused ${call.method} ${call.path} (403 Forbidden): these calls are only accepted from its console's origin ` +
        `(replyflow sends Origin: ${CONSOLE_ORIGIN}); if this persists, manage the webhook in the dashboard`,
      status,
    );
  }
  if (status === 404 && call.id !== undefined) {
    return new NotifyerApiError(`no webhook with id ${call.id} (404 Not Found); \`replyflow webhooks list\` shows the ids`, status);
  }
  if (status === 404) {
    return new NotifyerApiError(`Notifyer answered 404 to ${call.method} ${call.path}: check NOTIFYER_API_URL (${baseUrl})`, status);
  }
  const detail = said ?? (answer.body.trim().slice(0, 200) || 'no details');
  return new NotifyerApiError(`Notifyer answered ${status} to ${call.method} ${call.path}: ${detail}`, status);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
