import { httpCall, keepAliveAgent, NoAnswerError } from '../http-client.js';
import { uniqueTimeBase, withMessageTime, type PayloadFile } from './payloads.js';
import { RateGate } from './rate-gate.js';
import { SendStats, type SendOutcome } from './stats.js';

const REQUEST_TIMEOUT_MS = 30_000;

export interface SendPlan {
  url: URL;
  payloads: readonly PayloadFile[];
  /** Total requests, cycling through the payloads. */
  count: number;
  concurrency: number;
  /** Requests started in any second, at most; undefined: no limit. */
  rate: number | undefined;
  unique: boolean;
  /** The X-Webhook-Signature value for a body; undefined sends none. */
  sign: ((body: Buffer) => string) | undefined;
  onProgress?: (stats: SendStats) => void;
}

/** Posts `count` payloads through `concurrency` lanes over kept-alive sockets. */
export async function sendAll(plan: SendPlan): Promise<SendStats> {
  const agent = keepAliveAgent(plan.url, plan.concurrency);
  const gate = plan.rate === undefined ? undefined : new RateGate(plan.rate);
  const timeBase = plan.unique ? uniqueTimeBase(plan.count) : 0;
  const stats = new SendStats();
  let next = 0;
  const lane = async () => {
    for (let index = next++; index < plan.count; index = next++) {
      const file = plan.payloads[index % plan.payloads.length]!;
      const body = plan.unique ? withMessageTime(file.json!, timeBase + index) : file.bytes;
      await gate?.wait();
      stats.add(await postOne(plan, body, agent));
      plan.onProgress?.(stats);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.count) }, lane));
  } finally {
    agent.destroy();
  }
  return stats;
}

async function postOne(plan: SendPlan, body: Buffer, agent: ReturnType<typeof keepAliveAgent>): Promise<SendOutcome> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (plan.sign) headers['x-webhook-signature'] = plan.sign(body);
  const started = performance.now();
  try {
    const answer = await httpCall({ method: 'POST', url: plan.url, headers, body, timeoutMs: REQUEST_TIMEOUT_MS, agent });
    return { status: answer.status, latencyMs: performance.now() - started };
  } catch (err) {
    if (err instanceof NoAnswerError) return { status: 'error', reason: err.message };
    throw err;
  }
}
