import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseNotifyerPayload, signHmacSha256 } from '@replyflow/shared';
import { CLI, runCli, type CliRun } from '../helpers/cli.js';
import { fixtureNames, fixturesDir } from '../helpers/fixtures.js';
import { freePort } from '../helpers/free-port.js';
import { SECRET, startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';

/** runCli, with 30 s to finish (not its default 15 s), as this file has always allowed a send. */
const replyflow = (args: string[], env: Record<string, string>): Promise<CliRun> => runCli(args, env, { timeoutMs: 30_000 });

interface SendJson {
  sent: number;
  status: Record<string, number>;
  latencyMs: { p50: number | null; p99: number | null };
}

const fixture = (name: string) => join(fixturesDir, `${name}.json`);
const allFixtures = fixtureNames.map(fixture);
const idOf = (body: string) => {
  const parsed = parseNotifyerPayload(JSON.parse(body));
  assert.ok(parsed.ok, body);
  return parsed.event.id;
};

describe('replyflow send (contract section 9)', () => {
  let p: Pipeline;
  let receiver: Receiver;
  let dir: string;
  // No WEBHOOK_SECRET_FILE of the developer's may leak in: each test names its secret.
  let env: Record<string, string>;

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build first`);
    p = await startPipeline({ worker: false });
    receiver = await startReceiver();
    dir = mkdtempSync(join(tmpdir(), 'cli-send-'));
    env = { WEBHOOK_SECRET_FILE: join(dir, 'none') };
  });
  after(async () => {
    await receiver?.close();
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the right secret: every file once, each 202, exit 0, the --json shape exactly', async () => {
    const run = await replyflow(['send', '--url', p.webhookUrl, '--secret', SECRET, '--json', ...allFixtures], env);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as SendJson;
    assert.deepEqual(Object.keys(result).sort(), ['latencyMs', 'sent', 'status']);
    assert.deepEqual(Object.keys(result.latencyMs).sort(), ['p50', 'p99']);
    assert.equal(result.sent, allFixtures.length);
    assert.deepEqual(result.status, { '202': allFixtures.length, error: 0 });
    assert.ok(typeof result.latencyMs.p50 === 'number' && typeof result.latencyMs.p99 === 'number');
    assert.ok(result.latencyMs.p50 > 0 && result.latencyMs.p50 <= result.latencyMs.p99);
  });

  test('the same files again are duplicates: 200, still exit 0; the report names statuses and percentiles', async () => {
    const run = await replyflow(['send', '--url', p.webhookUrl, '--secret', SECRET, ...allFixtures], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`Sent ${allFixtures.length} requests to ${p.webhookUrl}`));
    assert.match(run.stdout, new RegExp(`^  200 +${allFixtures.length}$`, 'm'));
    assert.match(run.stdout, /^latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+$/m);
  });

  test('a wrong secret: 401s, exit 1, and a hint about the signature', async () => {
    const run = await replyflow(['send', '--url', p.webhookUrl, '--secret', 'wrong', '--count', '3', '--json', fixture('incoming-text')], env);
    assert.equal(run.code, 1);
    assert.deepEqual((JSON.parse(run.stdout) as SendJson).status, { '401': 3, error: 0 });
    assert.match(run.stderr, /3 of 3 requests got no 2xx answer \(401: 3\).*signature/);
  });

  test('--unique --count 5: five new events, each its own id, all queued', async () => {
    const toReceiver = await replyflow(['send', '--url', receiver.url, '--secret', SECRET, '--unique', '--count', '5', '--concurrency', '1', fixture('incoming-text')], env);
    assert.equal(toReceiver.code, 0, toReceiver.stderr);
    const bodies = receiver.requests.splice(0).map((r) => r.body);
    assert.equal(bodies.length, 5);
    assert.equal(new Set(bodies.map(idOf)).size, 5);
    const times = bodies.map((body) => JSON.parse(body).user_last_message_time as number);
    assert.deepEqual(times, times.map((_, i) => times[0]! + i), 'consecutive message times');
    assert.ok(times[4]! < Date.now() / 1000);

    const toIngest = await replyflow(['send', '--url', p.webhookUrl, '--secret', SECRET, '--unique', '--count', '5', '--json', fixture('incoming-text')], env);
    assert.equal(toIngest.code, 0, toIngest.stderr);
    assert.deepEqual((JSON.parse(toIngest.stdout) as SendJson).status, { '202': 5, error: 0 });
  });

  test('--unique rewrites the field of each generation and direction', async () => {
    const run = await replyflow(['send', '--url', p.webhookUrl, '--secret', SECRET, '--unique', '--json', ...allFixtures], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((JSON.parse(run.stdout) as SendJson).status, { '202': allFixtures.length, error: 0 });
    const legacy = await replyflow(['send', '--url', receiver.url, '--secret', 's', '--unique', fixture('legacy-incoming'), fixture('outgoing-agent')], env);
    assert.equal(legacy.code, 0, legacy.stderr);
    const [a, b] = receiver.requests.splice(0).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const [legacyBody, outgoingBody] = a!.incoming_message === false ? [b!, a!] : [a!, b!];
    assert.ok(!('user_last_message_time' in legacyBody) && legacyBody.user_timestamp !== 1746183609);
    assert.notEqual(outgoingBody.bot_last_message_time, 1763630405);
    assert.equal(outgoingBody.user_last_message_time, 1763630140, 'only the outgoing time changes');
  });

  test('without --secret: the last line of WEBHOOK_SECRET_FILE signs', async () => {
    const file = join(dir, 'secrets');
    writeFileSync(file, `old-secret\n${SECRET}\n`, { mode: 0o600 });
    const good = await replyflow(['send', '--url', p.webhookUrl, '--unique', '--json', fixture('incoming-text')], { WEBHOOK_SECRET_FILE: file });
    assert.equal(good.code, 0, good.stderr);
    assert.deepEqual((JSON.parse(good.stdout) as SendJson).status, { '202': 1, error: 0 });
    writeFileSync(file, `${SECRET}\nnewer-secret-the-ingest-does-not-know`);
    const stale = await replyflow(['send', '--url', p.webhookUrl, '--unique', '--json', fixture('incoming-text')], { WEBHOOK_SECRET_FILE: file });
    assert.equal(stale.code, 1);
    assert.deepEqual((JSON.parse(stale.stdout) as SendJson).status, { '401': 1, error: 0 });
    const none = await replyflow(['send', '--url', p.webhookUrl, fixture('incoming-text')], { WEBHOOK_SECRET_FILE: join(dir, 'missing') });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no secret to sign with: pass --secret, or put one in WEBHOOK_SECRET_FILE/);
  });

  test('--mode hmac-sha256 (or SIGNATURE_MODE) signs the exact body; token mode sends the secret', async () => {
    for (const [args, extraEnv] of [[['--mode', 'hmac-sha256'], {}], [[], { SIGNATURE_MODE: 'hmac-sha256' }]] as const) {
      const run = await replyflow(['send', '--url', receiver.url, '--secret', 'k', ...args, fixture('incoming-text')], { ...env, ...extraEnv });
      assert.equal(run.code, 0, run.stderr);
      const [request] = receiver.requests.splice(0);
      assert.equal(request!.headers['x-webhook-signature'], signHmacSha256(request!.body, 'k').toString('hex'));
      assert.equal(request!.headers['content-type'], 'application/json');
    }
    await replyflow(['send', '--url', receiver.url, '--secret', 'k', fixture('incoming-text')], env);
    assert.equal(receiver.requests.splice(0)[0]!.headers['x-webhook-signature'], 'k');
  });

  test('--count cycles through the files; keep-alive reuses connections', async () => {
    const run = await replyflow(['send', '--url', receiver.url, '--secret', 'k', '--count', '7', '--concurrency', '1', fixture('incoming-text'), fixture('outgoing-agent')], env);
    assert.equal(run.code, 0, run.stderr);
    const requests = receiver.requests.splice(0);
    assert.deepEqual(requests.map((r) => r.json.incoming_message), [true, false, true, false, true, false, true]);
    assert.ok(requests.every((r) => r.headers.connection === 'keep-alive'), 'node:http keep-alive agent');
  });

  test('--rate R: never more than R requests in any second', async () => {
    const run = await replyflow(['send', '--url', receiver.url, '--secret', 'k', '--rate', '10', '--count', '25', '--concurrency', '8', '--unique', fixture('incoming-text')], env);
    assert.equal(run.code, 0, run.stderr);
    const arrivals = receiver.requests.splice(0).map((r) => r.at).sort((a, b) => a - b);
    assert.equal(arrivals.length, 25);
    // Arrivals are stamped by this test process, which a loaded machine delays now and then; the exact
    // spacing is checked in test/unit/cli-send-parts.test.ts. A burst or a fixed window would show here
    // as 11 requests within a few ms.
    for (let i = 10; i < arrivals.length; i++) assert.ok(arrivals[i]! - arrivals[i - 10]! >= 800, `11 requests within ${arrivals[i]! - arrivals[i - 10]!} ms`);
    assert.ok(arrivals.at(-1)! - arrivals[0]! >= 2_200, `25 at 10/s arrived within ${arrivals.at(-1)! - arrivals[0]!} ms`);
  });

  test('no answer counts as error, exit 1', async () => {
    const run = await replyflow(['send', '--url', `http://127.0.0.1:${await freePort()}/webhooks/notifyer`, '--secret', 'k', '--count', '2', '--json', fixture('incoming-text')], env);
    assert.equal(run.code, 1);
    assert.deepEqual(JSON.parse(run.stdout), { sent: 2, status: { error: 2 }, latencyMs: { p50: null, p99: null } });
    assert.match(run.stderr, /no answer: .*ECONNREFUSED/);
  });

  test('a missing file, or --unique on a file that is not a JSON object, exits 1 before sending', async () => {
    const missing = await replyflow(['send', '--url', receiver.url, '--secret', 'k', join(dir, 'nope.json')], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.json/);
    const notJson = join(dir, 'not.json');
    writeFileSync(notJson, 'hello');
    const unique = await replyflow(['send', '--url', receiver.url, '--secret', 'k', '--unique', notJson], env);
    assert.equal(unique.code, 1);
    assert.match(unique.stderr, /not a JSON object/);
    assert.equal(receiver.requests.length, 0);
  });
});
