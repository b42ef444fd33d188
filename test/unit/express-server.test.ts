import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import express from 'express';
import { listen } from '@replyflow/shared';
import { createExpressServer } from '../../apps/ingest/src/express-server.js';
import { get, post } from '../helpers/http.js';

test('requests and responses are born with the app prototypes, and Express serves them as ever', async () => {
  const app = express();
  app.use(express.json());
  app.post('/echo', (req, res) => {
    res.status(201).set('x-seen', req.get('x-probe') ?? '').json({ body: req.body, app: req.app === app });
  });
  app.use((_req: express.Request, res: express.Response) => {
    res.status(404).json({ error: 'not_found' });
  });
  const server = createExpressServer(app);
  const born: boolean[] = [];
  // Runs before Express: the prototypes Node gave the objects, which app.handle would otherwise replace.
  server.prependListener('request', (req, res) => {
    born.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response);
  });
  await listen(server, 0, '127.0.0.1');
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const echoed = await post(`${base}/echo`, JSON.stringify({ a: 1 }), { 'content-type': 'application/json', 'x-probe': 'yes' });
    assert.equal(echoed.status, 201);
    assert.equal(echoed.headers['x-seen'], 'yes');
    assert.deepEqual(echoed.json, { body: { a: 1 }, app: true });
    assert.equal((await get(`${base}/elsewhere`)).status, 404);
    assert.deepEqual(born, [true, true]);
    assert.ok(app.request instanceof IncomingMessage && app.response instanceof ServerResponse);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('listen rejects when the port is taken', async () => {
  const first = await listen(createExpressServer(express()), 0, '127.0.0.1');
  try {
    const { port } = first.address() as AddressInfo;
    await assert.rejects(listen(createExpressServer(express()), port, '127.0.0.1'), /EADDRINUSE/);
  } finally {
    await new Promise((resolve) => first.close(resolve));
  }
});
