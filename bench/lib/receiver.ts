// A minimal FORWARD_URL: counts what arrives, when, and checks what the
// contract promises (each event once, each phone's events in order), so a
// faster pipeline that broke a promise cannot pass for a faster one.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from './log.js';

export interface CountingReceiver {
  url: string;
  readonly count: number;
  /** performance.now() of the first and the latest request. */
  readonly firstAt: number;
  readonly lastAt: number;
  readonly duplicates: number;
  /** Requests whose message time is older than one already received for the same phone. */
  readonly outOfOrder: number;
  waitFor(count: number, timeoutMs: number, onProgress?: (count: number) => void): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<CountingReceiver> {
  const seen = new Set<string>();
  const lastTimeByPhone = new Map<string, number>();
  const state = { count: 0, firstAt: 0, lastAt: 0, duplicates: 0, outOfOrder: 0 };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const now = performance.now();
      if (state.count === 0) state.firstAt = now;
      state.lastAt = now;
      state.count++;
      const id = String(req.headers['webhook-id'] ?? '');
      if (seen.has(id)) state.duplicates++;
      seen.add(id);
      try {
        const { data } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { phone: string; messageTime: number } };
        const last = lastTimeByPhone.get(data.phone);
        if (last !== undefined && data.messageTime < last) state.outOfOrder++;
        else lastTimeByPhone.set(data.phone, data.messageTime);
      } catch {
        state.outOfOrder++;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/hook`,
    get count() {
      return state.count;
    },
    get firstAt() {
      return state.firstAt;
    },
    get lastAt() {
      return state.lastAt;
    },
    get duplicates() {
      return state.duplicates;
    },
    get outOfOrder() {
      return state.outOfOrder;
    },
    async waitFor(count, timeoutMs, onProgress) {
      const deadline = Date.now() + timeoutMs;
      let lastReport = Date.now();
      while (state.count < count) {
        if (Date.now() > deadline) throw new Error(`receiver: ${state.count} of ${count} requests within ${timeoutMs} ms`);
        if (onProgress && Date.now() - lastReport >= 5_000) {
          lastReport = Date.now();
          onProgress(state.count);
        }
        await sleep(5);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
