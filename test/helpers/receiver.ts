import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseJson } from './http.js';
import { waitUntil } from './wait.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer only after this long; a large value simulates a hung endpoint. */
  delayMs?: number;
  /** Reset the connection instead of answering. */
  destroy?: boolean;
}

/** Decides the answer to a request; count is its 1-based position among all requests received. */
export type Behaviour = (req: RecordedRequest, count: number) => Reply | Promise<Reply>;

export interface Receiver {
  url: string;
  requests: RecordedRequest[];
  waitFor(count: number, timeoutMs: number): Promise<RecordedRequest[]>;
  setBehaviour(behaviour: Behaviour): void;
  close(): Promise<void>;
}

const answerOk: Behaviour = () => ({ status: 200, body: 'ok' });

/** An HTTP endpoint standing in for FORWARD_URL or NOTIFYER_SEND_URL, recording what it is sent. */
export async function startReceiver(behaviour: Behaviour = answerOk): Promise<Receiver> {
  const requests: RecordedRequest[] = [];
  let current = behaviour;

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // When the request arrived, before reading its body adds its own event-loop hops.
    const at = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      json: parseJson(body),
      at,
    };
    requests.push(recorded);
    const reply = await current(recorded, requests.length);
    if (reply.delayMs) {
      // unref: a hung answer must not keep the test process alive after close().
      await new Promise((resolve) => setTimeout(resolve, reply.delayMs).unref());
    }
    if (res.destroyed) return;
    if (reply.destroy) {
      req.socket.resetAndDestroy();
      return;
    }
    res.writeHead(reply.status, reply.headers).end(reply.body ?? '');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/hook`;

  return {
    url,
    requests,
    waitFor: (count, timeoutMs) =>
      waitUntil(
        () => (requests.length >= count ? requests.slice() : undefined),
        timeoutMs,
        () => `expected ${count} request(s) at ${url}, ${requests.length} arrived`,
      ),
    setBehaviour: (next) => {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
