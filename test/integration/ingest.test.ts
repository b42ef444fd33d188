import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { signatureHeader } from '@replyflow/shared';
import { after, before, describe, test } from 'node:test';
import { get, post } from '../helpers/http.js';
import { fixtureNames, loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, SECRET, startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { runToExit } from '../helpers/processes.js';

const text = loadFixture('incoming-text');

describe('ingest status table (contract section 2)', () => {
  let p: Pipeline;
  before(async () => {
    p = await startPipeline({ worker: false, ingestEnv: { BODY_LIMIT: '64kb' } });
  });
  after(() => p.stop());

  test('202 queued for every fixture, then 200 duplicate with the same id', async () => {
    for (const name of fixtureNames) {
      const { text: body } = loadFixture(name);
      const first = await p.send(body);
      assert.equal(first.status, 202, `${name}: ${first.body}`);
      assert.equal(first.json.status, 'queued');
      assert.match(first.json.id, /^[0-9a-f]{64}$/);
      const again = await p.send(body);
      assert.equal(again.status, 200, name);
      assert.deepEqual(again.json, { status: 'duplicate', id: first.json.id });
    }
  });

  test('a redelivery with other labels, notes and key order is a duplicate', async () => {
    const changed = Object.fromEntries(Object.entries({ ...text.json, labels: 'vip', note: 'x' }).reverse());
    assert.equal((await p.send(changed)).status, 200);
  });

  test('413 for a body over BODY_LIMIT, before any other check', async () => {
    const big = Buffer.alloc(70 * 1024, 'a');
    const res = await post(p.webhookUrl, big, { 'content-type': 'text/plain' });
    assert.equal(res.status, 413);
    assert.equal(res.json.error, 'payload_too_large');
  });

  test('413 for a chunked body (no Content-Length) that grows over BODY_LIMIT', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(p.webhookUrl, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(20 * 1024, 'a'));
      req.end();
    });
    assert.equal(answer.status, 413);
    assert.equal(JSON.parse(answer.body).error, 'payload_too_large');
  });

  test('a gzip-compressed webhook is inflated, then checked and stored like any other', async () => {
    const body = JSON.stringify(withMessageTime(text.json, 1_700_000_777));
    const res = await p.send(gzipSync(body), { 'content-encoding': 'gzip' });
    assert.equal(res.status, 202, res.body);
    assert.equal((await p.send(body)).status, 200, 'the same event, sent plain, is a duplicate');
    const bomb = gzipSync(Buffer.alloc(200 * 1024, ' '));
    assert.equal((await p.send(bomb, { 'content-encoding': 'gzip' })).status, 413, 'the limit holds for the inflated size');
  });

  test('400 invalid_json for a body that does not inflate as its Content-Encoding says', async () => {
    const res = await p.send(text.text, { 'content-encoding': 'gzip' });
    assert.equal(res.status, 400, res.body);
    assert.equal(res.json.error, 'invalid_json');
    assert.match(res.json.message, /Content-Encoding/);
  });

  test('a client that goes away mid-body costs nothing: the next webhook is served', async () => {
    await new Promise<void>((resolve) => {
      const req = request(p.webhookUrl, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': '5000' } });
      req.on('error', () => resolve());
      req.write('{"phone_number":', () => setTimeout(() => req.destroy(), 50));
      req.on('close', () => resolve());
    });
    assert.equal((await p.send(withMessageTime(text.json, 1_700_000_778))).status, 202);
  });

  test('a body that arrives in pieces, split inside a UTF-8 character, is read whole', async () => {
    const body = Buffer.from(JSON.stringify({ ...withMessageTime(text.json, 1_700_000_780), last_message_of_user: 'olá 👋 até já' }));
    const splitAt = body.indexOf(Buffer.from('👋')) + 2;
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = {
        'content-type': 'application/json',
        'content-length': String(body.length),
        'x-webhook-signature': signatureHeader('token', body, SECRET),
      };
      const req = request(p.webhookUrl, { method: 'POST', agent: false, headers }, (res) => {
        let received = '';
        res.on('data', (chunk: Buffer) => (received += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: received }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, splitAt), () => setTimeout(() => req.end(body.subarray(splitAt)), 50));
    });
    assert.equal(answer.status, 202, answer.body);
    const again = await p.send(body);
    assert.equal(again.status, 200, 'the same bytes sent at once are the same event');
    assert.equal(again.json.id, JSON.parse(answer.body).id);
  });

  test('415 for a non-JSON content type, before the signature', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      const res = await post(p.webhookUrl, text.text, headers);
      assert.equal(res.status, 415, String(type));
      assert.equal(res.json.error, 'unsupported_media_type');
    }
    const withCharset = await p.send(text.text, { 'content-type': 'application/json; charset=utf-8' });
    assert.ok([200, 202].includes(withCharset.status));
  });

  test('401 for a missing or wrong signature, before the body is parsed', async () => {
    for (const headers of [{ 'x-webhook-signature': 'wrong' }, { 'x-webhook-signature': '' }]) {
      const res = await p.send('{not json', headers);
      assert.equal(res.status, 401);
      assert.equal(res.json.error, 'invalid_signature');
      assert.equal(typeof res.json.message, 'string');
    }
    const unsigned = await post(p.webhookUrl, text.text, { 'content-type': 'application/json' });
    assert.equal(unsigned.status, 401);
  });

  test('400 for invalid JSON and invalid UTF-8', async () => {
    assert.equal((await p.send('{"phone_number": ')).json.error, 'invalid_json');
    const invalidUtf8 = Buffer.concat([Buffer.from('{"phone_number":"447700900123","note":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const res = await p.send(invalidUtf8);
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_json');
    const empty = await p.send('');
    assert.equal(empty.status, 400, 'an empty body (Content-Length: 0) is not JSON');
    assert.equal(empty.json.error, 'invalid_json');
  });

  test('422 with issues for a payload that fails the schema', async () => {
    const { user_last_message_time: _drop, ...noTime } = text.json;
    const res = await p.send({ ...noTime, phone_number: '12' });
    assert.equal(res.status, 422);
    assert.equal(res.json.error, 'invalid_payload');
    const paths = res.json.issues.map((issue: { path: string }) => issue.path);
    assert.ok(paths.includes('phone_number'), JSON.stringify(res.json.issues));
    const missingTime = await p.send(noTime);
    assert.deepEqual(missingTime.json.issues.map((issue: { path: string }) => issue.path), ['user_last_message_time']);
  });

  test('404 elsewhere, 405 with Allow: POST on the webhook path', async () => {
    const missing = await get(p.webhookUrl.replace('/webhooks/notifyer', '/nope'));
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error, 'not_found');
    const wrongMethod = await get(p.webhookUrl);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'POST');
    assert.equal(wrongMethod.json.error, 'method_not_allowed');
  });

  test('healthz and readyz on PORT and METRICS_PORT', async () => {
    for (const base of [p.webhookUrl.replace('/webhooks/notifyer', ''), p.ingestMetricsUrl.replace('/metrics', '')]) {
      assert.deepEqual((await get(`${base}/healthz`)).json, { status: 'ok' });
      assert.equal((await get(`${base}/readyz`)).status, 200);
    }
  });

  test('every answer is counted under its outcome', async () => {
    const metrics = (await get(p.ingestMetricsUrl)).body;
    for (const [outcome, atLeast] of [
      ['queued', fixtureNames.length],
      ['duplicate', fixtureNames.length + 1],
      ['payload_too_large', 1],
      ['unsupported_media_type', 3],
      ['invalid_signature', 3],
      ['invalid_json', 2],
      ['invalid_payload', 2],
      ['method_not_allowed', 1],
    ] as const) {
      const value = metricValue(metrics, 'replyflow_ingest_requests_total', { outcome });
      assert.ok(value !== undefined && value >= atLeast, `${outcome}: ${value}`);
    }
    assert.equal(metricValue(metrics, 'replyflow_ingest_requests_total', { outcome: 'unavailable' }), 0);
    assert.equal(metricValue(metrics, 'replyflow_redis_up'), 1);
    assert.ok((metricValue(metrics, 'replyflow_ingest_request_duration_seconds_count') ?? 0) > 10);
  });

  test('logs carry event ids but never the secret or a whole payload', async () => {
    await p.ingest.waitForLog(function logWithEventId(log) { return typeof log.eventId === 'string'; }, 2_000);
    const output = p.ingest.output();
    assert.ok(!output.includes(SECRET));
    assert.ok(!output.includes('Great, when will it arrive?'));
    assert.ok(!output.includes('447700900123'));
  });
});

describe('signature modes', () => {
  test('hmac-sha256 with rotation accepts either secret in any encoding', async () => {
    const p = await startPipeline({ worker: false, ingestEnv: { SIGNATURE_MODE: 'hmac-sha256', WEBHOOK_SECRET: 'old,new' } });
    try {
      const sign = (key: string, body: string) => createHmac('sha256', key).update(body).digest();
      const bodies = [0, 1, 2].map((i) => JSON.stringify({ ...text.json, user_last_message_time: 1700000000 + i }));
      assert.equal((await p.send(bodies[0]!, { 'x-webhook-signature': sign('old', bodies[0]!).toString('hex') })).status, 202);
      assert.equal((await p.send(bodies[1]!, { 'x-webhook-signature': `sha256=${sign('new', bodies[1]!).toString('base64')}` })).status, 202);
      assert.equal((await p.send(bodies[2]!, { 'x-webhook-signature': sign('other', bodies[2]!).toString('hex') })).status, 401);
      assert.equal((await p.send(bodies[2]!, { 'x-webhook-signature': 'new' })).status, 401);
    } finally {
      await p.stop();
    }
  });

  test('hmac-sha256 of a gzip-compressed webhook is checked on the inflated body', async () => {
    const p = await startPipeline({ worker: false, ingestEnv: { SIGNATURE_MODE: 'hmac-sha256', WEBHOOK_SECRET: 'key' } });
    try {
      const sign = (body: string | Buffer) => createHmac('sha256', 'key').update(body).digest('hex');
      const body = JSON.stringify(withMessageTime(text.json, 1_700_000_779));
      const res = await p.send(gzipSync(body), { 'content-encoding': 'gzip', 'x-webhook-signature': sign(body) });
      assert.equal(res.status, 202, res.body);
      const notGzip = await p.send(body, { 'content-encoding': 'gzip', 'x-webhook-signature': sign(body) });
      assert.equal(notGzip.status, 400, notGzip.body);
      assert.equal(notGzip.json.error, 'invalid_json');
    } finally {
      await p.stop();
    }
  });

  test('none accepts unsigned webhooks and warns at start', async () => {
    const p = await startPipeline({ worker: false, ingestEnv: { SIGNATURE_MODE: 'none', WEBHOOK_SECRET: '' } });
    try {
      assert.equal((await post(p.webhookUrl, text.text, { 'content-type': 'application/json' })).status, 202);
      assert.ok(p.ingest.logs().some((log) => log.level === 40 && /SIGNATURE_MODE=none/.test(String(log.msg))));
    } finally {
      await p.stop();
    }
  });
});

describe('configuration errors', () => {
  test('a bad value exits 1 with one line naming the variable', async () => {
    const result = await runToExit('ingest', { PORT: 'eighty', WEBHOOK_SECRET: 'x' }, 10_000);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /PORT/);
    assert.equal(result.stdout, '');
  });

  test('the ingest without any webhook secret exits 1 naming WEBHOOK_SECRET', async () => {
    const result = await runToExit('ingest', { WEBHOOK_SECRET_FILE: '/nonexistent/secret' }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /WEBHOOK_SECRET/);
  });

  test('an unreadable WEBHOOK_SECRET_FILE exits 1 with one line naming it, the path and the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ingest-secret-'));
    try {
      const result = await runToExit('ingest', { WEBHOOK_SECRET_FILE: dir }, 10_000);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /WEBHOOK_SECRET_FILE: cannot read .*ingest-secret-.*: EISDIR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the worker rejects a malformed FORWARD_SECRET', async () => {
    const result = await runToExit('worker', { FORWARD_SECRET: 'not-a-whsec' }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /FORWARD_SECRET/);
  });
});
