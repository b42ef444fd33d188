import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { CONSOLE_ORIGIN } from '../notifyer-api.js';
import { HttpError, sendJson, type Route } from './http-io.js';
import { publicRow, type StoredWebhook, type WebhookSettings, type WebhookStore } from './webhook-store.js';

const settingsShape = {
  webhooks: z.url({ protocol: /^https?$/ }),
  enabled: z.boolean(),
  incoming: z.boolean(),
  outgoing: z.boolean(),
  schedule_activity: z.boolean(),
  waiting_duration: z.number().int().min(0),
};

/** Create as documented: every field but the URL may be left out. */
const createSchema = z.object({
  ...settingsShape,
  enabled: settingsShape.enabled.default(true),
  incoming: settingsShape.incoming.default(false),
  outgoing: settingsShape.outgoing.default(false),
  schedule_activity: settingsShape.schedule_activity.default(false),
  waiting_duration: settingsShape.waiting_duration.default(0),
  active_signature: z.boolean().default(false),
});

/** PATCH replaces the row, so every setting must be there; extra fields (id, created_at) are ignored. */
const updateSchema = z.looseObject(settingsShape);

/** Notifyer's webhook management API, at the same paths under the emulator's root. */
export function managementRoutes(store: WebhookStore, log: (line: string) => void): Route[] {
  return [
    {
      method: 'POST',
      path: /^\/webhook\/dev\/create$/,
      handle: async ({ req, res, readBody }) => {
        requireBearer(req);
        const { active_signature, ...settings } = parseSettings(createSchema, await readBody());
        const row = store.create(settings, active_signature);
        log(`webhook ${row.id} created: ${describe(row)}`);
        sendJson(res, 200, { ...publicRow(row), signature_secret: row.secret });
      },
    },
    {
      method: 'GET',
      path: /^\/webhook\/dev\/?$/,
      handle: ({ req, res }) => {
        requireConsole(req);
        sendJson(res, 200, store.list().map(publicRow));
      },
    },
    {
      method: 'PATCH',
      path: /^\/webhook\/dev\/([^/]+)$/,
      handle: async ({ req, res, params, readBody }) => {
        requireConsole(req);
        const id = rowId(params[0]!);
        const body = await readBody();
        // An unknown id is 404 whatever the body holds, as for DELETE.
        store.existing(id);
        const row = store.update(id, pickSettings(parseSettings(updateSchema, body)));
        log(`webhook ${row.id} updated: ${describe(row)}`);
        sendJson(res, 200, publicRow(row));
      },
    },
    {
      method: 'DELETE',
      path: /^\/webhook\/dev\/([^/]+)$/,
      handle: ({ req, res, params }) => {
        requireConsole(req);
        const row = store.remove(rowId(params[0]!));
        log(`webhook ${row.id} deleted`);
        sendJson(res, 200, null);
      },
    },
  ];
}

/** Any non-empty Bearer token is accepted: the emulator has one account. */
function requireBearer(req: IncomingMessage): void {
  if (!/^Bearer\s+\S+/i.test(req.headers.authorization ?? '')) {
    throw new HttpError(401, 'ERROR_CODE_UNAUTHORIZED', 'Invalid token.');
  }
}

/** list, update and delete are the console's calls: Notifyer wants its Origin on them. */
function requireConsole(req: IncomingMessage): void {
  requireBearer(req);
  if (req.headers.origin !== CONSOLE_ORIGIN) {
    throw new HttpError(403, 'ERROR_CODE_ACCESS_DENIED', 'Access denied: this endpoint is only available to the Notifyer console.');
  }
}

function parseSettings<T extends WebhookSettings>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const param = issue.path.join('.');
    throw new HttpError(400, 'ERROR_CODE_INPUT_ERROR', `Invalid value for param: ${param || 'body'} (${issue.message})`, { param });
  }
  if (!parsed.data.schedule_activity && parsed.data.waiting_duration !== 0) {
    throw new HttpError(400, 'ERROR_CODE_INPUT_ERROR', 'waiting_duration must be 0 when schedule_activity is false', { param: 'waiting_duration' });
  }
  return parsed.data;
}

function pickSettings(body: WebhookSettings): WebhookSettings {
  const { webhooks, enabled, incoming, outgoing, schedule_activity, waiting_duration } = body;
  return { webhooks, enabled, incoming, outgoing, schedule_activity, waiting_duration };
}

function rowId(param: string): number {
  if (!/^\d+$/.test(param)) throw new HttpError(404, 'ERROR_CODE_NOT_FOUND', 'Not Found.');
  return Number(param);
}

/** For the log: where it points and what it gets, never its secret. */
export function describe(row: StoredWebhook): string {
  const url = new URL(row.webhooks);
  const directions = [row.incoming && 'incoming', row.outgoing && 'outgoing'].filter(Boolean).join('+') || 'no messages';
  const flags = [row.enabled ? 'enabled' : 'disabled', directions, row.secret ? 'signed' : 'unsigned'];
  return `${url.origin}${url.pathname} (${flags.join(', ')})`;
}
