import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { parseNotifyerPayload } from '@replyflow/shared';
import { terminate, waitForExit } from '../helpers/child.js';
import { CLI, runCli, startEmulator, type RunningEmulator } from '../helpers/cli.js';
import { get, post } from '../helpers/http.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { startReceiver, type Behaviour, type Receiver } from '../helpers/receiver.js';
import { sleep } from '../helpers/wait.js';

const CONSOLE = { authorization: 'Bearer dev', origin: 'https://console.notifyer-systems.com', 'content-type': 'application/json' };

const json = (value: unknown) => JSON.stringify(value);
const createWebhook = (emulator: RunningEmulator, body: Record<string, unknown>) =>
  post(`${emulator.url}/webhook/dev/create`, json(body), { authorization: 'Bearer dev', 'content-type': 'application/json' });
const emit = (emulator: RunningEmulator, count: number) => post(`${emulator.url}/emit`, json({ count }), { 'content-type': 'application/json' });
const eventIdOf = (body: string) => {
  const parsed = parseNotifyerPayload(JSON.parse(body));
  assert.ok(parsed.ok, body);
  return parsed.event.id;
};

/** PATCH and DELETE as the console sends them (the test helpers have only GET and POST). */
function request(method: 'PATCH' | 'DELETE', url: string, body?: object): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: CONSOLE }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body ? json(body) : undefined);
  });
}

describe('replyflow emulator: the management API in Notifyer shapes', () => {
  let emulator: RunningEmulator;
  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build first`);
    emulator = await startEmulator();
  });
  after(() => emulator && terminate(emulator.child, 5_000));

  test('create: any Bearer token, a 128-byte base64url secret only with active_signature and only in this answer', async () => {
    assert.equal((await post(`${emulator.url}/webhook/dev/create`, json({ webhooks: 'https://a.test/1' }), { 'content-type': 'application/json' })).status, 401);
    const signed = await createWebhook(emulator, { webhooks: 'https://a.test/1', incoming: true, active_signature: true });
    assert.equal(signed.status, 200);
    assert.deepEqual(Object.keys(signed.json).sort(), ['created_at', 'enabled', 'id', 'incoming', 'outgoing', 'schedule_activity', 'signature_secret', 'waiting_duration', 'webhooks']);
    assert.match(signed.json.signature_secret, /^[A-Za-z0-9_-]{171}$/);
    assert.equal(Buffer.from(signed.json.signature_secret, 'base64url').length, 128);
    assert.ok(Math.abs(signed.json.created_at - Date.now()) < 60_000, 'created_at in ms');
    const unsigned = await createWebhook(emulator, { webhooks: 'https://a.test/2', active_signature: false });
    assert.equal(unsigned.json.signature_secret, null);
    const listed = await get(`${emulator.url}/webhook/dev`, CONSOLE);
    assert.equal(listed.status, 200);
    assert.equal(listed.json.length, 2);
    assert.ok(listed.json.every((row: object) => !('signature_secret' in row)));
  });

  test('errors: duplicate 400 "Same webhook exist", no token 401, wrong origin 403, unknown id 404, partial PATCH 400', async () => {
    const duplicate = await createWebhook(emulator, { webhooks: 'https://a.test/1' });
    assert.equal(duplicate.status, 400);
    assert.equal(duplicate.json.message, 'Same webhook exist');
    assert.equal((await get(`${emulator.url}/webhook/dev`, { origin: CONSOLE.origin })).status, 401);
    assert.equal((await get(`${emulator.url}/webhook/dev`, { authorization: 'Bearer ' })).status, 401);
    const noOrigin = await get(`${emulator.url}/webhook/dev`, { authorization: 'Bearer dev' });
    assert.equal(noOrigin.status, 403);
    assert.equal(typeof noOrigin.json.message, 'string');
    const full = { webhooks: 'https://a.test/9', enabled: true, incoming: true, outgoing: true, schedule_activity: false, waiting_duration: 0 };
    const patch = (id: string, body: object) => request('PATCH', `${emulator.url}/webhook/dev/${id}`, body);
    assert.equal((await patch('999', full)).status, 404);
    assert.equal((await patch('999', { incoming: false })).status, 404, 'an unknown id, whatever the body');
    assert.equal((await request('DELETE', `${emulator.url}/webhook/dev/999`)).status, 404);
    assert.equal((await patch('1', { incoming: false })).status, 400, 'PATCH wants the full record');
    assert.equal((await patch('1', { ...full, webhooks: 'https://a.test/2' })).status, 400, 'another row has that URL');
    assert.equal((await patch('1', { ...full, waiting_duration: 30 })).status, 400, 'waiting 0 when schedule activity is off');
    const updated = await patch('1', full);
    assert.equal(updated.status, 200);
    assert.equal(updated.json.webhooks, full.webhooks);
    assert.equal((await request('DELETE', `${emulator.url}/webhook/dev/1`)).status, 200);
  });

  test('POST /send answers 2xx and records; GET /sent lists {at, authorization, body}', async () => {
    const body = { to: '447700900123', type: 'text', text: { body: 'hi' } };
    const sent = await post(`${emulator.url}/send`, json(body), { authorization: 'api-key-1', 'content-type': 'application/json' });
    assert.ok(sent.status >= 200 && sent.status < 300);
    const listed = await get(`${emulator.url}/sent`);
    assert.equal(listed.json.length, 1);
    assert.deepEqual(Object.keys(listed.json[0]).sort(), ['at', 'authorization', 'body']);
    assert.equal(listed.json[0].authorization, 'api-key-1');
    assert.deepEqual(listed.json[0].body, body);
    assert.ok(!emulator.lines.join('\n').includes('api-key-1'), 'the log names no credential');
  });

  test('POST /emit refuses a bad count; unknown paths are 404', async () => {
    assert.equal((await emit(emulator, 0)).status, 400);
    assert.equal((await post(`${emulator.url}/emit`, 'nope', { 'content-type': 'application/json' })).status, 400);
    assert.equal((await get(`${emulator.url}/nowhere`)).status, 404);
  });

  test('SIGTERM stops it with exit 0', async () => {
    const other = await startEmulator();
    other.child.kill('SIGTERM');
    assert.deepEqual(await waitForExit(other.child, 5_000), { code: 0, signal: null });
  });

});

describe('replyflow emulator: deliveries', () => {
  const receivers: Receiver[] = [];
  const emulators: RunningEmulator[] = [];
  const receiver = async (behaviour?: Behaviour) => {
    const r = await startReceiver(behaviour);
    receivers.push(r);
    return r;
  };
  const emulatorWith = async (args: string[] = []) => {
    const e = await startEmulator(args);
    emulators.push(e);
    return e;
  };
  after(async () => {
    await Promise.all(emulators.map((e) => terminate(e.child, 5_000)));
    await Promise.all(receivers.map((r) => r.close()));
  });

  test('a non-2xx is retried after 5 s, 30 s, 2 min ... times --time-scale, the same body and signature each time', async () => {
    const emulator = await emulatorWith(['--time-scale', '0.001']);
    const endpoint = await receiver((_, count) => ({ status: count <= 3 ? 500 : 200 }));
    const created = await createWebhook(emulator, { webhooks: endpoint.url, incoming: true, outgoing: true, active_signature: true });
    assert.equal((await emit(emulator, 1)).status, 202);
    const requests = await endpoint.waitFor(4, 10_000);
    await sleep(300);
    assert.equal(endpoint.requests.length, 4, 'no attempt after the 2xx');
    assert.equal(new Set(requests.map((r) => r.body)).size, 1);
    assert.ok(requests.every((r) => r.headers['x-webhook-signature'] === created.json.signature_secret));
    const gaps = requests.slice(1).map((r, i) => r.at - requests[i]!.at);
    [5, 30, 120].forEach((delay, i) => assert.ok(gaps[i]! >= delay - 1 && gaps[i]! < delay + 3_000, `gap ${i + 1}: ${gaps[i]} ms, wanted ${delay}`));
    await emulator.waitForLine(/attempt 4: 200/, 2_000);
    assert.ok(emulator.lines.some((line) => /attempt 1: 500 in \d+ ms, retry in 5 ms$/.test(line)), emulator.lines.join('\n'));
    assert.ok(!emulator.lines.join('\n').includes(created.json.signature_secret), 'no secret in the log');
  });

  test('after the eighth retry it gives up: nine attempts in all', async () => {
    const emulator = await emulatorWith(['--time-scale', '0.0001']);
    const endpoint = await receiver(() => ({ status: 503 }));
    await createWebhook(emulator, { webhooks: endpoint.url, incoming: true, outgoing: true });
    await emit(emulator, 1);
    await emulator.waitForLine(/attempt 9: 503 .*giving up after 9 attempts/, 20_000);
    await sleep(200);
    assert.equal(endpoint.requests.length, 9);
  });

  test('each enabled webhook gets only its directions; a disabled one nothing; no secret, no signature header', async () => {
    const emulator = await emulatorWith();
    const [incoming, outgoing, disabled] = await Promise.all([receiver(), receiver(), receiver()]);
    await createWebhook(emulator, { webhooks: incoming.url, incoming: true, outgoing: false });
    await createWebhook(emulator, { webhooks: outgoing.url, incoming: false, outgoing: true, active_signature: true });
    await createWebhook(emulator, { webhooks: disabled.url, incoming: true, outgoing: true, enabled: false });
    const accepted = await emit(emulator, 10);
    assert.equal(accepted.status, 202);
    assert.deepEqual(accepted.json.webhooks, [1, 2]);
    const [inbound, outbound] = await Promise.all([incoming.waitFor(8, 10_000), outgoing.waitFor(2, 10_000)]);
    await sleep(300);
    assert.equal(incoming.requests.length, 8);
    assert.equal(outgoing.requests.length, 2);
    assert.equal(disabled.requests.length, 0);
    assert.ok(inbound.every((r) => r.json.incoming_message !== false && !('x-webhook-signature' in r.headers)));
    assert.ok(outbound.every((r) => r.json.incoming_message === false && typeof r.headers['x-webhook-signature'] === 'string'));
    assert.ok([...inbound, ...outbound].every((r) => r.headers['content-type'] === 'application/json'));
  });

  test('at most 25 deliveries at once per webhook', async () => {
    const emulator = await emulatorWith();
    let inFlight = 0;
    let peak = 0;
    const slow = await receiver(async () => {
      peak = Math.max(peak, ++inFlight);
      await sleep(150);
      inFlight--;
      return { status: 200 };
    });
    await createWebhook(emulator, { webhooks: slow.url, incoming: true, outgoing: true });
    await emit(emulator, 80);
    await slow.waitFor(80, 20_000);
    assert.equal(peak, 25);
  });
});

describe('replyflow emulator → webhooks create --signature → a real ingest reading WEBHOOK_SECRET_FILE', () => {
  let p: Pipeline;
  let emulator: RunningEmulator;
  let dir: string;
  let secretFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'emulator-ingest-'));
    secretFile = join(dir, 'webhook-secret');
    // The ingest refuses to start without a secret; the placeholder is one nobody sends.
    writeFileSync(secretFile, 'placeholder-until-notifyer-gives-one\n', { mode: 0o600 });
    p = await startPipeline({ ingestEnv: { WEBHOOK_SECRET: '', WEBHOOK_SECRET_FILE: secretFile } });
    emulator = await startEmulator();
  });
  after(async () => {
    if (emulator) await terminate(emulator.child, 5_000);
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('emitted messages arrive signed, are queued and forwarded, each a new event, also across calls', async () => {
    const created = await runCli(
      ['webhooks', 'create', '--url', p.webhookUrl, '--incoming', '--outgoing', '--signature', '--secret-file', secretFile],
      { NOTIFYER_API_URL: emulator.url, NOTIFYER_API_TOKEN: 'dev' },
    );
    assert.equal(created.code, 0, created.stderr);
    assert.equal(readFileSync(secretFile, 'utf8').trimEnd().split('\n').length, 2);
    await p.ingest.waitForLog(/webhook secrets reloaded/, 10_000);

    assert.equal((await emit(emulator, 10)).status, 202);
    await p.receiver.waitFor(10, 30_000);
    assert.equal((await emit(emulator, 10)).status, 202);
    const forwarded = await p.receiver.waitFor(20, 30_000);
    await sleep(300);

    const ids = forwarded.map((r) => r.json.id as string);
    assert.equal(new Set(ids).size, 20, 'twenty distinct events');
    assert.equal(p.receiver.requests.length, 20);
    const types = new Set(forwarded.map((r) => r.json.type));
    assert.deepEqual([...types].sort(), ['message.received', 'message.sent']);
    assert.ok(forwarded.every((r) => r.json.id === eventIdOf(JSON.stringify(r.json.data.raw))));
    const deliveries = emulator.lines.filter((line) => / attempt \d+: /.test(line));
    assert.equal(deliveries.length, 20, emulator.lines.join('\n'));
    assert.ok(deliveries.every((line) => / attempt 1: 202 in \d+ ms$/.test(line)), deliveries.join('\n'));
  });
});
