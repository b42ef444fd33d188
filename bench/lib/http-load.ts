// Node-side webhook senders for what wrk cannot do: an exact number of events
// (to fill a queue) and a steady rate (the soak). Both keep-alive, 127.0.0.1 only.
import { Pool } from 'undici';
import { SECRET } from './payloads.js';
import { percentile } from './stats.js';

export interface SendSummary {
  sent: number;
  statuses: Record<string, number>;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
}

const headers = { 'content-type': 'application/json', 'x-webhook-signature': SECRET };

async function postOnce(pool: Pool, path: string, body: string): Promise<number> {
  try {
    const res = await pool.request({ method: 'POST', path, headers, body });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0; // no answer
  }
}

function summarize(statuses: Record<string, number>, latencies: number[], startedAt: number): SendSummary {
  return {
    sent: latencies.length,
    statuses,
    seconds: (performance.now() - startedAt) / 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/**
 * Posts bodies 0..count-1 as fast as `concurrency` connections allow. With
 * `orderKey`, a body waits until the previous one with the same key (a phone)
 * is answered, as a sender does for one conversation: otherwise one slow
 * answer lets the key's next body be accepted first.
 */
export async function postAll(
  url: string,
  count: number,
  concurrency: number,
  body: (n: number) => string,
  orderKey?: (n: number) => string,
): Promise<SendSummary> {
  const { origin, pathname } = new URL(url);
  const pool = new Pool(origin, { connections: concurrency });
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  const startedAt = performance.now();
  const answeredLast = new Map<string, Promise<unknown>>();
  let next = 0;
  const lane = async () => {
    for (let n = next++; n < count; n = next++) {
      const key = orderKey?.(n);
      if (key !== undefined) await answeredLast.get(key);
      const t0 = performance.now();
      const posted = postOnce(pool, pathname, body(n));
      if (key !== undefined) answeredLast.set(key, posted);
      const status = await posted;
      latencies.push(performance.now() - t0);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  await pool.close();
  return summarize(statuses, latencies, startedAt);
}

/**
 * Posts `rate` bodies a second for `seconds`, open loop (a slow answer does not
 * slow the sender), calling `tick` about once a second with the count so far.
 */
export async function postSteadily(
  url: string,
  rate: number,
  seconds: number,
  body: (n: number) => string,
  tick: (sent: number, elapsedS: number) => void,
): Promise<SendSummary> {
  const { origin, pathname } = new URL(url);
  const pool = new Pool(origin, { connections: 16 });
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const startedAt = performance.now();
  const total = Math.round(rate * seconds);
  let n = 0;
  let lastTick = 0;
  while (n < total) {
    const elapsed = (performance.now() - startedAt) / 1000;
    const due = Math.min(total, Math.floor(elapsed * rate));
    for (; n < due; n++) {
      const t0 = performance.now();
      const p = postOnce(pool, pathname, body(n)).then((status) => {
        latencies.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    if (elapsed - lastTick >= 1) {
      lastTick = elapsed;
      tick(n, elapsed);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await Promise.all(inFlight);
  await pool.close();
  return summarize(statuses, latencies, startedAt);
}
