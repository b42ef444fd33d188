import { z } from 'zod';
import type { Deliveries } from './delivery.js';
import type { MessageGenerator } from './generator.js';
import { HttpError, sendJson, type Route } from './http-io.js';
import type { WebhookStore } from './webhook-store.js';

const MAX_COUNT = 100_000;
const emitSchema = z.object({ count: z.number().int().min(1).max(MAX_COUNT).default(1) });

/**
 * `POST /emit {"count": N}`: answers 202 at once, then hands N generated
 * messages to every enabled webhook, each only the directions it subscribes to.
 */
export function emitRoute(store: WebhookStore, generator: MessageGenerator, deliveries: Deliveries, log: (line: string) => void): Route {
  return {
    method: 'POST',
    path: /^\/emit$/,
    handle: async ({ res, readBody }) => {
      const parsed = emitSchema.safeParse(await readBody());
      if (!parsed.success) {
        throw new HttpError(400, 'ERROR_CODE_INPUT_ERROR', `count: expected a whole number from 1 to ${MAX_COUNT}`, { param: 'count' });
      }
      const { count } = parsed.data;
      const targets = store.list().filter((webhook) => webhook.enabled);
      sendJson(res, 202, { status: 'emitting', count, webhooks: targets.map((webhook) => webhook.id) });
      log(`emit: ${count} message${count === 1 ? '' : 's'} for ${targets.length === 0 ? 'no enabled webhook' : `webhook ${targets.map((w) => w.id).join(', ')}`}`);
      for (let i = 0; i < count; i++) {
        const message = generator.next();
        for (const webhook of targets) {
          if (message.direction === 'incoming' ? webhook.incoming : webhook.outgoing) deliveries.deliver(webhook.id, message);
        }
      }
    },
  };
}
