import { randomBytes } from 'node:crypto';
import { DUPLICATE_WEBHOOK_MESSAGE, type WebhookSettings } from '../notifyer-api.js';
import { HttpError } from './http-io.js';

/** The settings a create or a PATCH carries: the same the CLI sends to Notifyer. */
export type { WebhookSettings };

export interface StoredWebhook extends WebhookSettings {
  id: number;
  created_at: number;
  /** Sent as X-Webhook-Signature on every delivery; null when created without active_signature. */
  secret: string | null;
}

/** Notifyer's secret: 128 random bytes, base64url (171 characters). */
export function newSignatureSecret(): string {
  return randomBytes(128).toString('base64url');
}

/** The emulator's webhooks, in memory: a restart starts empty, as a fresh account would. */
export class WebhookStore {
  private nextId = 1;
  private readonly rows = new Map<number, StoredWebhook>();

  create(settings: WebhookSettings, activeSignature: boolean): StoredWebhook {
    this.assertUniqueUrl(settings.webhooks);
    const row: StoredWebhook = {
      id: this.nextId++,
      created_at: Date.now(),
      ...settings,
      secret: activeSignature ? newSignatureSecret() : null,
    };
    this.rows.set(row.id, row);
    return row;
  }

  list(): StoredWebhook[] {
    return [...this.rows.values()];
  }

  get(id: number): StoredWebhook | undefined {
    return this.rows.get(id);
  }

  update(id: number, settings: WebhookSettings): StoredWebhook {
    const row = this.existing(id);
    this.assertUniqueUrl(settings.webhooks, id);
    Object.assign(row, settings);
    return row;
  }

  remove(id: number): StoredWebhook {
    const row = this.existing(id);
    this.rows.delete(id);
    return row;
  }

  /** The row, or a 404. */
  existing(id: number): StoredWebhook {
    const row = this.rows.get(id);
    if (!row) throw new HttpError(404, 'ERROR_CODE_NOT_FOUND', 'Not Found.');
    return row;
  }

  private assertUniqueUrl(url: string, exceptId?: number): void {
    for (const row of this.rows.values()) {
      if (row.webhooks === url && row.id !== exceptId) throw new HttpError(400, 'ERROR_CODE_BAD_REQUEST', DUPLICATE_WEBHOOK_MESSAGE);
    }
  }
}

/** A row as the API shows it, in the order of Notifyer's documentation; the secret never, except at creation. */
export function publicRow(row: StoredWebhook): Record<string, unknown> {
  const { id, enabled, incoming, outgoing, webhooks, created_at, waiting_duration, schedule_activity } = row;
  return { id, enabled, incoming, outgoing, webhooks, created_at, waiting_duration, schedule_activity };
}
