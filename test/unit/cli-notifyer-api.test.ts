import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CONSOLE_ORIGIN,
  DEFAULT_NOTIFYER_API_URL,
  describeRefusal,
  NotifyerApi,
  NotifyerApiError,
  notifyerApiSettings,
} from '../../packages/cli/src/notifyer-api.js';
import { merge } from '../../packages/cli/src/commands/webhooks.js';
import { publicRecord } from '../../packages/cli/src/webhook-output.js';

const record = {
  id: 7,
  webhooks: 'https://example.test/hook',
  enabled: true,
  incoming: true,
  outgoing: false,
  schedule_activity: false,
  waiting_duration: 0,
  created_at: 1_764_000_000_000,
};

const answer = (status: number, body: unknown) => ({ status, headers: {}, body: typeof body === 'string' ? body : JSON.stringify(body) });
const call = { method: 'DELETE' as const, path: '/webhook/dev/7', id: '7' };

describe('Notifyer API errors in plain words', () => {
  test('400 "Same webhook exist" names the URL and suggests update or delete', () => {
    const err = describeRefusal({ method: 'POST', path: '/webhook/dev/create', url: 'https://a.test/h' }, answer(400, { code: 'ERROR_CODE_BAD_REQUEST', message: 'Same webhook exist' }), 'x');
    assert.ok(err instanceof NotifyerApiError);
    assert.match(err.message, /Same webhook exist/);
    assert.match(err.message, /https:\/\/a\.test\/h/);
    assert.match(err.message, /webhooks update/);
    assert.match(err.message, /webhooks delete/);
  });

  test('401 is the token, 403 the origin, 404 the id', () => {
    assert.match(describeRefusal(call, answer(401, { message: 'Invalid token.' }), 'x').message, /NOTIFYER_API_TOKEN.*401/);
    assert.match(describeRefusal(call, answer(403, {}), 'x').message, /403.*console-?'?s? origin|origin/i);
    assert.match(describeRefusal(call, answer(403, {}), 'x').message, new RegExp(CONSOLE_ORIGIN.replace(/[.]/g, '\\.')));
    assert.match(describeRefusal(call, answer(404, {}), 'x').message, /no webhook with id 7/);
  });

  test('a 404 on a call without an id points at NOTIFYER_API_URL; other statuses pass the message on', () => {
    assert.match(describeRefusal({ method: 'GET', path: '/webhook/dev' }, answer(404, ''), 'https://b.test').message, /NOTIFYER_API_URL \(https:\/\/b\.test\)/);
    assert.match(describeRefusal(call, answer(500, { message: 'boom' }), 'x').message, /500.*boom/);
    assert.match(describeRefusal(call, answer(502, '<html>bad gateway</html>'), 'x').message, /502.*bad gateway/);
  });
});

describe('notifyerApiSettings', () => {
  test('the default base URL, and the token from the environment', () => {
    assert.deepEqual(notifyerApiSettings({ NOTIFYER_API_TOKEN: 't' }), { baseUrl: DEFAULT_NOTIFYER_API_URL, token: 't' });
    assert.equal(notifyerApiSettings({ NOTIFYER_API_TOKEN: 't', NOTIFYER_API_URL: 'http://127.0.0.1:4010/' }).baseUrl, 'http://127.0.0.1:4010');
  });

  test('a missing or empty token, or a bad URL, is a failure naming the variable', () => {
    assert.throws(() => notifyerApiSettings({}), /NOTIFYER_API_TOKEN is not set/);
    assert.throws(() => notifyerApiSettings({ NOTIFYER_API_TOKEN: '  ' }), /NOTIFYER_API_TOKEN is not set/);
    assert.throws(() => notifyerApiSettings({ NOTIFYER_API_TOKEN: 't', NOTIFYER_API_URL: 'ftp://x' }), /NOTIFYER_API_URL/);
  });
});

describe('NotifyerApi against a scripted server', () => {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];
  let reply: (method: string) => { status: number; body: string } = () => ({ status: 200, body: '[]' });
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const { status, body: text } = reply(req.method ?? '');
      res.writeHead(status, { 'content-type': 'application/json' }).end(text);
    });
  });
  let api: NotifyerApi;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    api = new NotifyerApi({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api:abc`, token: 'tok' });
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('create carries the Bearer token and no Origin; list, update and delete carry the console Origin', async () => {
    seen.length = 0;
    reply = (method) => ({ status: 200, body: method === 'GET' ? JSON.stringify([record]) : method === 'DELETE' ? 'null' : JSON.stringify({ ...record, signature_secret: null }) });
    await api.create({ webhooks: record.webhooks, enabled: true, incoming: true, outgoing: false, schedule_activity: false, waiting_duration: 0, active_signature: false });
    await api.list();
    await api.update({ ...record, signature_secret: 'must-not-be-sent' });
    await api.remove('7');
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url}`), ['POST /api:abc/webhook/dev/create', 'GET /api:abc/webhook/dev', 'PATCH /api:abc/webhook/dev/7', 'DELETE /api:abc/webhook/dev/7']);
    for (const r of seen) assert.equal(r.headers.authorization, 'Bearer tok');
    assert.deepEqual(seen.map((r) => r.headers.origin), [undefined, CONSOLE_ORIGIN, CONSOLE_ORIGIN, CONSOLE_ORIGIN]);
    assert.deepEqual(JSON.parse(seen[2]!.body), record, 'PATCH sends the full record, without its secret');
  });

  test('an answer that is not a webhook record is refused, naming the field', async () => {
    reply = () => ({ status: 200, body: JSON.stringify([{ ...record, incoming: 'yes' }]) });
    await assert.rejects(api.list(), (err: Error) => err instanceof NotifyerApiError && /not what replyflow expects at 0\.incoming/.test(err.message));
    reply = () => ({ status: 200, body: '<html>' });
    await assert.rejects(api.list(), NotifyerApiError);
  });

  test('unknown fields are kept, the secret is never part of what is printed', async () => {
    reply = () => ({ status: 200, body: JSON.stringify({ ...record, signature_secret: 's3cret', extra: 1 }) });
    const created = await api.create({ webhooks: 'x', enabled: true, incoming: true, outgoing: true, schedule_activity: false, waiting_duration: 0, active_signature: true });
    assert.equal(created.signature_secret, 's3cret');
    assert.equal((created as Record<string, unknown>).extra, 1);
    assert.ok(!('signature_secret' in publicRecord(created)));
  });

  test("create's answer keeps its secret even when fields it does not need come in other forms", async () => {
    reply = () => ({ status: 200, body: JSON.stringify({ ...record, waiting_duration: null, created_at: '2026-11-26T10:00:00Z', incoming: 'yes', signature_secret: 's3cret' }) });
    const created = await api.create({ webhooks: 'x', enabled: true, incoming: true, outgoing: true, schedule_activity: false, waiting_duration: 0, active_signature: true });
    assert.equal(created.signature_secret, 's3cret');
    assert.equal(created.id, record.id);
    reply = () => ({ status: 200, body: JSON.stringify({ webhooks: 'x' }) });
    await assert.rejects(api.create({ webhooks: 'x', enabled: true, incoming: true, outgoing: true, schedule_activity: false, waiting_duration: 0, active_signature: false }), /at id/);
  });

  test('an unreachable API is a failure saying so', async () => {
    const offline = new NotifyerApi({ baseUrl: 'http://127.0.0.1:1', token: 't' });
    await assert.rejects(offline.list(), /cannot reach Notifyer at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('update merges the named fields into the full record', () => {
  test('changes win, the rest stays, the secret goes', () => {
    assert.deepEqual(merge({ ...record, signature_secret: 'x' }, { incoming: false }), { ...record, incoming: false });
  });

  test('a row reporting on/off as `status` keeps that field', () => {
    const { enabled: _enabled, ...withStatus } = record;
    assert.deepEqual(merge({ ...withStatus, status: true }, { enabled: false }), { ...withStatus, status: false });
  });
});
