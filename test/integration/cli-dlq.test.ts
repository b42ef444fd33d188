import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { maskPhone } from '@replyflow/shared';
import { CLI, runCli } from '../helpers/cli.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { freePort } from '../helpers/free-port.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { sleep, waitUntil } from '../helpers/wait.js';

interface ListedEntry {
  id: string;
  phone: string;
  workflow: string;
  attempts: number;
  lastError: string | null;
  history: { at: string; status: number | null; error: string }[];
}

let nextTime = 1_850_000_000;
const freshEvent = () => withMessageTime(loadFixture('incoming-text').json, nextTime++);

describe('replyflow dlq (contract section 9)', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  let id1: string;
  let id2: string;

  const list = async (): Promise<ListedEntry[]> => {
    const run = await runCli(['dlq', 'list', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ListedEntry[];
  };
  const deliveriesOf = (id: string) => p.receiver.requests.filter((req) => req.json?.id === id).length;

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build first`);
    p = await startPipeline({ receiver: () => ({ status: 400 }) });
    env = { REDIS_URL: p.redis.url };
    id1 = (await p.send(freshEvent())).json.id;
    id2 = (await p.send(freshEvent())).json.id;
    await waitUntil(async () => ((await list()).length === 2 ? true : undefined), 15_000, () => 'two dead-lettered events', 200);
  });
  after(() => p?.stop());

  test('list --json shows each dead-lettered event with its one 400 attempt and the phone unmasked', async () => {
    const entries = await list();
    assert.deepEqual(entries.map((e) => e.id).sort(), [id1, id2].sort());
    for (const entry of entries) {
      assert.equal(entry.workflow, 'forward');
      assert.equal(entry.attempts, 1);
      assert.match(entry.phone, /^\d{6,}$/);
      assert.equal(entry.history.length, 1);
      assert.equal(entry.history[0]!.status, 400);
      assert.ok(!Number.isNaN(Date.parse(entry.history[0]!.at)));
      assert.equal(entry.lastError, entry.history[0]!.error);
      assert.deepEqual(Object.keys(entry).sort(), ['attempts', 'history', 'id', 'lastError', 'phone', 'workflow']);
    }
  });

  test('the table masks phones', async () => {
    const [entry] = await list();
    const run = await runCli(['dlq', 'list'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /ID\s+PHONE\s+WORKFLOW\s+ATTEMPTS\s+LAST ERROR/);
    assert.ok(run.stdout.includes(id1) && run.stdout.includes(id2), run.stdout);
    assert.ok(run.stdout.includes(maskPhone(entry!.phone)), run.stdout);
    assert.ok(!run.stdout.includes(entry!.phone), `full phone on screen:\n${run.stdout}`);
  });

  test('replay ID delivers that event again and takes it off the dead-letter queue', async () => {
    p.receiver.setBehaviour(() => ({ status: 200 }));
    const run = await runCli(['dlq', 'replay', id1], env);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes(id1), run.stdout);
    await waitUntil(() => (deliveriesOf(id1) === 2 ? true : undefined), 10_000, () => `${id1} was not delivered again`);
    assert.deepEqual((await list()).map((e) => e.id), [id2]);
  });

  test('an unknown id exits 1 and replays nothing, not even the known ids beside it', async () => {
    const run = await runCli(['dlq', 'replay', id2, 'deadbeef'], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /deadbeef/);
    await sleep(500);
    assert.equal(deliveriesOf(id2), 1);
    assert.deepEqual((await list()).map((e) => e.id), [id2]);
  });

  test('an entry whose worker has yet to leave its lane is refused, exit 1, nothing replayed', async () => {
    // The moment between a dead letter's write and its lane's leave, held open.
    const [entry] = await list();
    const redis = p.redis.client();
    const lane = `replyflow:lane:forward:${entry!.phone}`;
    await redis.zadd(lane, 1, `forward.${entry!.id}`);
    try {
      const run = await runCli(['dlq', 'replay', entry!.id], env);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /still being dead-lettered/);
      assert.equal((await list()).length, 1);
    } finally {
      await redis.zrem(lane, `forward.${entry!.id}`);
    }
  });

  test('replay --all delivers the rest and empties the queue', async () => {
    const run = await runCli(['dlq', 'replay', '--all', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { replayed: [id2] });
    await waitUntil(() => (deliveriesOf(id2) === 2 ? true : undefined), 10_000, () => `${id2} was not delivered again`);
    assert.deepEqual(await list(), []);
    const table = await runCli(['dlq', 'list'], env);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /no dead-lettered events/i);
    await sleep(300);
    assert.equal(deliveriesOf(id1), 2, 'a replayed event is delivered once more, not twice');
  });

  test('usage errors exit 2', async () => {
    for (const args of [['dlq', 'replay'], ['dlq', 'replay', '--all', id1], ['dlq', 'list', '--bogus'], ['dlq', 'bogus'], ['dlq']]) {
      const run = await runCli(args, env);
      assert.equal(run.code, 2, `replyflow ${args.join(' ')}: ${run.stdout}${run.stderr}`);
    }
  });

  test('--help on every level exits 0 and starts nothing', async () => {
    // A closed port: help must not even try to connect.
    const offline = { REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
    for (const args of [['--help'], ['dlq', '--help'], ['dlq', 'list', '--help'], ['dlq', 'replay', '--help']]) {
      const run = await runCli(args, offline);
      assert.equal(run.code, 0, `replyflow ${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stdout, /Usage: replyflow/);
    }
    assert.match((await runCli(['dlq', '--help'], offline)).stdout, /replay/);
  });

  test('an unreachable Redis is one clear line and exit 1, within seconds', async () => {
    const run = await runCli(['dlq', 'list'], { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, { timeoutMs: 10_000 });
    assert.equal(run.code, 1);
    assert.ok(run.ms < 6_000, `took ${run.ms} ms`);
    assert.equal(run.stdout, '');
    assert.match(run.stderr.trim(), /^error: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/?: .+$/);
  });
});
