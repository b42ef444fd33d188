import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { Agent } from 'undici';
import { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
import { createHttpAgent, postJson } from '../../apps/worker/src/engine/http-post.js';
import { freePort } from '../helpers/free-port.js';
import { startReceiver } from '../helpers/receiver.js';

const agent = createHttpAgent();
after(() => agent.close());

async function serve(listener: RequestListener): Promise<{ url: string; server: Server }> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected the POST to fail');
}

describe('postJson', () => {
  test('sends method, path with query, headers and body, and resolves a 2xx with its status', async () => {
    const receiver = await startReceiver(() => ({ status: 202, body: 'accepted' }));
    try {
      const result = await postJson(agent, `${receiver.url}?tenant=a`, { 'content-type': 'application/json', 'webhook-id': 'e1' }, '{"a":1}', 5_000);
      assert.deepEqual(result, { status: 202 });
      const [request] = receiver.requests;
      assert.equal(request?.method, 'POST');
      assert.equal(request?.url, '/hook?tenant=a');
      assert.equal(request?.headers['webhook-id'], 'e1');
      assert.deepEqual(request?.json, { a: 1 });
    } finally {
      await receiver.close();
    }
  });

  test('the answer sets what happens next: 429 waits its Retry-After, other 4xx is permanent, 5xx transient', async () => {
    const replies = [
      { status: 429, headers: { 'retry-after': '2' } },
      { status: 404 },
      { status: 503 },
    ];
    const receiver = await startReceiver((_req, count) => replies[count - 1]!);
    try {
      const tooMany = await rejection(postJson(agent, receiver.url, {}, '{}', 5_000));
      assert.ok(tooMany instanceof RetryAfterError);
      assert.equal(tooMany.retryAfterMs, 2_000);
      assert.equal(tooMany.status, 429);
      const notFound = await rejection(postJson(agent, receiver.url, {}, '{}', 5_000));
      assert.ok(notFound instanceof PermanentError);
      assert.equal(notFound.message, `HTTP 404 from ${new URL(receiver.url).host}`);
      const unavailable = await rejection(postJson(agent, receiver.url, {}, '{}', 5_000));
      assert.ok(unavailable instanceof TransientError);
      assert.equal(unavailable.kind, 'http');
      assert.equal(unavailable.status, 503);
    } finally {
      await receiver.close();
    }
  });

  test('a refused connection is a transient network error naming its code', async () => {
    const error = await rejection(postJson(agent, `http://127.0.0.1:${await freePort()}/hook`, {}, '{}', 5_000));
    assert.ok(error instanceof TransientError);
    assert.equal(error.kind, 'network');
    assert.equal(error.message, 'network error ECONNREFUSED');
  });

  test('an endpoint that never answers is cut at the deadline, a transient timeout', async () => {
    const { url, server } = await serve((req) => req.resume());
    try {
      const started = Date.now();
      const error = await rejection(postJson(agent, url, {}, '{}', 400));
      const took = Date.now() - started;
      assert.ok(error instanceof TransientError);
      assert.equal(error.kind, 'timeout');
      assert.equal(error.message, 'no answer within 400 ms');
      assert.ok(took >= 350 && took < 2_000, `cut after ${took} ms`);
    } finally {
      await close(server);
    }
  });

  test('an answer whose body trickles in ends at the deadline with its status: the receiver has answered', async () => {
    const { url, server } = await serve((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      // A byte every 100 ms never trips an inactivity timer, only the deadline.
      const drip = setInterval(() => res.write('.'), 100);
      res.on('close', () => clearInterval(drip));
    });
    try {
      const started = Date.now();
      assert.deepEqual(await postJson(agent, url, {}, '{}', 600), { status: 200 });
      const took = Date.now() - started;
      assert.ok(took >= 550 && took < 2_000, `ended after ${took} ms`);
    } finally {
      await close(server);
    }
  });

  test('a connection reset before the status is a transient network error', async () => {
    const { url, server } = await serve((req) => req.socket.resetAndDestroy());
    try {
      const error = await rejection(postJson(agent, url, {}, '{}', 5_000));
      assert.ok(error instanceof TransientError);
      assert.equal(error.kind, 'network');
      assert.match(error.message, /^network error/);
    } finally {
      await close(server);
    }
  });

  test('requests still waiting for a connection at their deadline fail then, are never sent, and cost no connection', async () => {
    const oneConnection = new Agent({ connections: 1 });
    const received: unknown[] = [];
    let connections = 0;
    const { url, server } = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { n: number };
        received.push(body.n);
        setTimeout(() => res.writeHead(200).end(), body.n === 1 ? 1_000 : 0);
      });
    });
    server.on('connection', () => connections++);
    try {
      const first = postJson(oneConnection, url, {}, '{"n":1}', 5_000);
      const started = Date.now();
      const queued = Array.from({ length: 5 }, (_, i) => rejection(postJson(oneConnection, url, {}, `{"n":${i + 2}}`, 300)));
      for (const error of await Promise.all(queued)) {
        assert.ok(error instanceof TransientError);
        assert.equal(error.kind, 'timeout');
      }
      assert.ok(Date.now() - started < 800, `failed after ${Date.now() - started} ms, not at their deadline`);
      assert.deepEqual(await first, { status: 200 });
      assert.deepEqual(await postJson(oneConnection, url, {}, '{"n":7}', 5_000), { status: 200 });
      assert.deepEqual(received, [1, 7]);
      assert.equal(connections, 1);
    } finally {
      await oneConnection.close();
      await close(server);
    }
  });

  test("the worker's pool takes as many POSTs at once as its jobs make: none waits for a connection", async () => {
    // Two queues' worth of jobs at the default WORKER_CONCURRENCY, an inline attempt and a retry each.
    const inFlight = 64;
    let connections = 0;
    const { url, server } = await serve((req, res) => {
      req.resume();
      setTimeout(() => res.writeHead(200).end(), 600);
    });
    server.on('connection', () => connections++);
    const pool = createHttpAgent();
    try {
      const results = await Promise.all(Array.from({ length: inFlight }, () => postJson(pool, url, {}, '{}', 1_000)));
      assert.equal(results.filter((result) => result.status === 200).length, inFlight);
      assert.equal(connections, inFlight);
    } finally {
      await pool.close();
      await close(server);
    }
  });

  test('a large answer body is dropped unread past 128 KiB, and the next POST still goes through', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    let served = 0;
    const { url, server } = await serve((req, res) => {
      req.resume();
      served++;
      res.writeHead(200).end(served === 1 ? big : 'ok');
    });
    try {
      assert.deepEqual(await postJson(agent, url, {}, '{}', 5_000), { status: 200 });
      assert.deepEqual(await postJson(agent, url, {}, '{}', 5_000), { status: 200 });
      assert.equal(served, 2);
    } finally {
      await close(server);
    }
  });
});
