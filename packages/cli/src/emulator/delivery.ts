import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { maskPhone } from '@replyflow/shared';
import { httpCall, NoAnswerError } from '../http-client.js';
import type { GeneratedMessage } from './generator.js';
import { Limiter } from './limiter.js';
import type { WebhookStore } from './webhook-store.js';

/** Notifyer's schedule: a delivery without a 2xx is tried again after each of these, then dropped. */
export const RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000, 120_000, 600_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000];
export const MAX_CONCURRENT_PER_WEBHOOK = 25;
export const DELIVERY_TIMEOUT_MS = 10_000;

type Outcome = { ok: boolean; status: number; ms: number } | { ok: false; status: undefined; ms: number; error: string };

/**
 * Delivers generated messages as Notifyer does: per webhook at most 25 at a
 * time, 10 s each, retried on the schedule above (scaled by --time-scale).
 * A retry waits without holding one of the 25 slots.
 */
export class Deliveries {
  private readonly limiters = new Map<number, Limiter>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  private closed = false;

  constructor(
    private readonly store: WebhookStore,
    private readonly timeScale: number,
    private readonly log: (line: string) => void,
  ) {}

  deliver(webhookId: number, message: GeneratedMessage): void {
    void this.attempt(webhookId, message, 1);
  }

  /** Cancels pending retries and drops kept-alive sockets; in-flight requests are cut. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async attempt(webhookId: number, message: GeneratedMessage, attempt: number): Promise<void> {
    const limiter = this.limiterOf(webhookId);
    const outcome = await limiter.run(async () => {
      // Read at send time: a webhook deleted or turned off meanwhile gets nothing more, as on Notifyer.
      const webhook = this.store.get(webhookId);
      if (this.closed || !webhook?.enabled) return undefined;
      return this.post(webhook.webhooks, webhook.secret, message);
    });
    if (outcome === undefined) return;
    const retryDelay = outcome.ok ? undefined : RETRY_DELAYS_MS[attempt - 1];
    this.log(deliveryLine(webhookId, message, attempt, outcome, retryDelay === undefined ? undefined : retryDelay * this.timeScale));
    if (retryDelay === undefined || this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(webhookId, message, attempt + 1);
    }, retryDelay * this.timeScale);
    this.timers.add(timer);
  }

  private async post(url: string, secret: string | null, message: GeneratedMessage): Promise<Outcome> {
    const target = new URL(url);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'replyflow-notifyer-emulator' };
    // Notifyer's signature is the secret itself (SIGNATURE_MODE=token on the ingest).
    if (secret) headers['x-webhook-signature'] = secret;
    const started = performance.now();
    const agent = target.protocol === 'https:' ? this.agents.https : this.agents.http;
    try {
      const answer = await httpCall({ method: 'POST', url: target, headers, body: JSON.stringify(message.payload), timeoutMs: DELIVERY_TIMEOUT_MS, agent });
      return { ok: answer.status >= 200 && answer.status < 300, status: answer.status, ms: performance.now() - started };
    } catch (err) {
      if (!(err instanceof NoAnswerError)) throw err;
      return { ok: false, status: undefined, ms: performance.now() - started, error: err.message };
    }
  }

  private limiterOf(webhookId: number): Limiter {
    let limiter = this.limiters.get(webhookId);
    if (!limiter) {
      limiter = new Limiter(MAX_CONCURRENT_PER_WEBHOOK);
      this.limiters.set(webhookId, limiter);
    }
    return limiter;
  }
}

/** One stdout line per attempt: which webhook, what, the answer; a masked phone and no secret. */
export function deliveryLine(webhookId: number, message: GeneratedMessage, attempt: number, outcome: Outcome, retryInMs: number | undefined): string {
  const answer = outcome.status === undefined ? `no answer (${outcome.error})` : String(outcome.status);
  const next = outcome.ok ? '' : retryInMs === undefined ? `, giving up after ${attempt} attempts` : `, retry in ${formatMs(retryInMs)}`;
  const what = `${message.direction} ${message.kind} ${maskPhone(message.phoneDigits)}`;
  return `${new Date().toISOString()} webhook ${webhookId} ${what} attempt ${attempt}: ${answer} in ${Math.round(outcome.ms)} ms${next}`;
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}
