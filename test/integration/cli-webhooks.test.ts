import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { terminate } from '../helpers/child.js';
import { CLI, runCli, startEmulator, type RunningEmulator } from '../helpers/cli.js';
import { freePort } from '../helpers/free-port.js';

/** Runs `task` over `items`, `limit` at a time, in order: a burst of 20 node processes would crawl on a 2-core CI machine. */
async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i]!);
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return results;
}

const BASE64URL_128_BYTES = /^[A-Za-z0-9_-]{171}$/;
const mode = (path: string) => statSync(path).mode & 0o777;

describe('replyflow webhooks against the emulator (contract section 9)', () => {
  let emulator: RunningEmulator;
  let env: Record<string, string>;
  let dir: string;
  let secretFile: string;
  let id: number;
  const url = 'http://127.0.0.1:3999/webhooks/notifyer';

  const list = async () => {
    const run = await runCli(['webhooks', 'list', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as Record<string, unknown>[];
  };

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run npm run build first`);
    emulator = await startEmulator();
    dir = mkdtempSync(join(tmpdir(), 'cli-webhooks-'));
    secretFile = join(dir, 'new', 'folder', 'webhook-secret');
    env = { NOTIFYER_API_URL: emulator.url, NOTIFYER_API_TOKEN: 'dev-token' };
  });
  after(async () => {
    if (emulator) await terminate(emulator.child, 5_000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('create --signature appends the secret to a new 0600 file, prints the record without it, and says where it belongs', async () => {
    const run = await runCli(['webhooks', 'create', '--url', url, '--incoming', '--outgoing', '--signature', '--secret-file', secretFile, '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    const record = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(record).sort(), ['created_at', 'enabled', 'id', 'incoming', 'outgoing', 'schedule_activity', 'waiting_duration', 'webhooks']);
    assert.equal(record.webhooks, url);
    assert.equal(record.incoming, true);
    assert.equal(record.outgoing, true);
    id = record.id as number;
    assert.equal(mode(secretFile), 0o600);
    const lines = readFileSync(secretFile, 'utf8').split('\n');
    assert.equal(lines.length, 2, 'one line and its newline');
    assert.match(lines[0]!, BASE64URL_128_BYTES);
    assert.ok(!run.stdout.includes(lines[0]!) && !run.stderr.includes(lines[0]!), 'the secret is never printed');
    assert.ok(!emulator.lines.join('\n').includes(lines[0]!), 'nor logged by the emulator');
    assert.match(run.stderr, /WEBHOOK_SECRET_FILE/);
    assert.ok(run.stderr.includes(secretFile), run.stderr);
  });

  test('a duplicate URL is "Same webhook exist": exit 1, update or delete suggested, the secret file untouched', async () => {
    const before = { text: readFileSync(secretFile, 'utf8'), mtime: statSync(secretFile).mtimeMs };
    const run = await runCli(['webhooks', 'create', '--url', url, '--incoming', '--signature', '--secret-file', secretFile], env);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /Same webhook exist/);
    assert.match(run.stderr, /webhooks update/);
    assert.match(run.stderr, /webhooks delete/);
    assert.deepEqual({ text: readFileSync(secretFile, 'utf8'), mtime: statSync(secretFile).mtimeMs }, before);
  });

  test('a second signed webhook appends a line and never rewrites the first; WEBHOOK_SECRET_FILE is the default file', async () => {
    const first = readFileSync(secretFile, 'utf8');
    const run = await runCli(['webhooks', 'create', '--url', `${url}?second`, '--incoming', '--signature'], { ...env, WEBHOOK_SECRET_FILE: secretFile });
    assert.equal(run.code, 0, run.stderr);
    const text = readFileSync(secretFile, 'utf8');
    assert.ok(text.startsWith(first), 'the first line is kept as it was');
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, BASE64URL_128_BYTES);
    assert.notEqual(lines[1], lines[0]);
    assert.match(run.stderr, /line 2/);
  });

  test('a secret file open to other users is tightened to 0600, with a note, and takes the secret', async () => {
    const open = join(dir, 'open-secret');
    writeFileSync(open, 'placeholder');
    chmodSync(open, 0o644);
    const run = await runCli(['webhooks', 'create', '--url', `${url}?third`, '--incoming', '--signature', '--secret-file', open], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /was mode 0644, open to other users; it is 0600 now/);
    assert.equal(mode(open), 0o600);
    const lines = readFileSync(open, 'utf8').split('\n');
    assert.equal(lines[0], 'placeholder');
    assert.match(lines[1]!, BASE64URL_128_BYTES);
  });

  test('list prints the records as the API returns them, never a secret; --json is the array', async () => {
    const records = await list();
    assert.equal(records.length, 3);
    assert.ok(records.every((record) => !('signature_secret' in record)));
    assert.deepEqual(records.find((record) => record.id === id)?.webhooks, url);
    const table = await runCli(['webhooks', 'list'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^id\s+webhooks\s+enabled\s+incoming\s+outgoing\s+schedule_activity\s+waiting_duration\s+created_at/);
    assert.ok(table.stdout.includes(url));
  });

  test('update changes only the named fields (the emulator, like Notifyer, wants the full record)', async () => {
    const before = (await list()).find((record) => record.id === id)!;
    const run = await runCli(['webhooks', 'update', String(id), '--no-outgoing', '--schedule-activity', '--waiting-duration', '3600', '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { ...before, outgoing: false, schedule_activity: true, waiting_duration: 3600 });
    assert.equal(run.stderr, '', 'a preset needs no warning');
    const off = await runCli(['webhooks', 'update', String(id), '--no-schedule-activity', '--disabled', '--json'], env);
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(JSON.parse(off.stdout), { ...before, outgoing: false, enabled: false, schedule_activity: false, waiting_duration: 0 });
    assert.deepEqual((await list()).find((record) => record.id === id), JSON.parse(off.stdout));
  });

  test('the waiting duration: 0 unless schedule activity is on (exit 2), a warning for values off the dashboard presets', async () => {
    const noSchedule = await runCli(['webhooks', 'create', '--url', `${url}?w`, '--incoming', '--waiting-duration', '30'], env);
    assert.equal(noSchedule.code, 2);
    assert.match(noSchedule.stderr, /must be 0 when schedule activity is off/);
    assert.equal((await runCli(['webhooks', 'create', '--url', `${url}?w`, '--schedule-activity'], env)).code, 2);
    assert.equal((await runCli(['webhooks', 'update', String(id), '--waiting-duration', '30'], env)).code, 2);
    const odd = await runCli(['webhooks', 'create', '--url', `${url}?w`, '--incoming', '--schedule-activity', '--waiting-duration', '45', '--json'], env);
    assert.equal(odd.code, 0, odd.stderr);
    assert.match(odd.stderr, /^warning: 45 s is not one of the dashboard's waiting durations/m);
    assert.equal(JSON.parse(odd.stdout).waiting_duration, 45);
  });

  test('delete removes the webhook; an unknown id then exits 1 for update and delete', async () => {
    const run = await runCli(['webhooks', 'delete', String(id)], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`Deleted webhook ${id}`));
    assert.ok(!(await list()).some((record) => record.id === id));
    for (const args of [['delete', String(id)], ['update', String(id), '--enabled'], ['delete', '999']]) {
      const unknown = await runCli(['webhooks', ...args], env);
      assert.equal(unknown.code, 1, `webhooks ${args.join(' ')}: ${unknown.stderr}`);
      assert.match(unknown.stderr, /no webhook with id/);
    }
  });

  test('no NOTIFYER_API_TOKEN, or no API answering: one clear line, exit 1', async () => {
    const noToken = await runCli(['webhooks', 'list'], { NOTIFYER_API_URL: emulator.url });
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr.trim(), /^error: NOTIFYER_API_TOKEN is not set/);
    const offline = await runCli(['webhooks', 'list'], { NOTIFYER_API_URL: `http://127.0.0.1:${await freePort()}`, NOTIFYER_API_TOKEN: 't' });
    assert.equal(offline.code, 1);
    assert.match(offline.stderr.trim(), /^error: cannot reach Notifyer at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });
});

describe('replyflow --help and exit codes, every command', () => {
  test('--help on every command and subcommand prints usage, exits 0 and starts nothing', async () => {
    // A closed port and no token: help must neither need nor touch anything.
    const offline = { NOTIFYER_API_URL: `http://127.0.0.1:${await freePort()}`, REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
    const port = await freePort();
    const commands = [
      [], ['webhooks'], ['webhooks', 'create'], ['webhooks', 'list'], ['webhooks', 'update'], ['webhooks', 'delete'],
      ['send'], ['emulator'], ['emulator', '--port', String(port)], ['dlq'], ['dlq', 'list'], ['dlq', 'replay'],
    ];
    // An emulator that started would never exit: exit 0 proves --help started nothing.
    const runs = await mapLimit(commands, 4, (args) => runCli([...args, '--help'], offline));
    runs.forEach((run, i) => {
      assert.equal(run.code, 0, `replyflow ${commands[i]!.join(' ')} --help: ${run.stderr}`);
      assert.match(run.stdout, /^Usage: replyflow/, commands[i]!.join(' '));
    });
    assert.match(runs[1]!.stdout, /create[\s\S]*list[\s\S]*update[\s\S]*delete/);
    assert.match(runs[0]!.stdout, /webhooks[\s\S]*send[\s\S]*dlq[\s\S]*emulator/);
  });

  test('usage errors exit 2, before any request', async () => {
    const offline = { NOTIFYER_API_URL: `http://127.0.0.1:${await freePort()}`, NOTIFYER_API_TOKEN: 't' };
    const usage = [
      ['webhooks'], ['webhooks', 'bogus'], ['webhooks', 'create'], ['webhooks', 'create', '--url', 'not a url'],
      ['webhooks', 'create', '--url', 'http://a.test/', '--waiting-duration', 'soon'], ['webhooks', 'create', '--url', 'http://a.test/', '--bogus'],
      ['webhooks', 'list', 'extra'], ['webhooks', 'update'], ['webhooks', 'update', '1'], ['webhooks', 'update', '1', '--enabled', '--disabled'],
      ['webhooks', 'update', '1', '--no-schedule-activity', '--waiting-duration', '30'], ['webhooks', 'delete'],
      ['send'], ['send', 'f.json', '--mode', 'md5'], ['send', 'f.json', '--count', '0'], ['send', 'f.json', '--rate', '-1'],
      ['send', 'f.json', '--concurrency', 'many'], ['send', 'f.json', '--url', 'ftp://x'],
      ['emulator', '--port', 'http'], ['emulator', '--port', '70000'], ['emulator', '--time-scale', '-1'], ['emulator', 'extra'],
      ['bogus'],
    ];
    const runs = await mapLimit(usage, 4, (args) => runCli(args, offline));
    runs.forEach((run, i) => assert.equal(run.code, 2, `replyflow ${usage[i]!.join(' ')}: ${run.stdout}${run.stderr}`));
  });

  test('a port already taken is a failure (exit 1) with the reason', async () => {
    const emulator = await startEmulator();
    try {
      const port = new URL(emulator.url).port;
      const run = await runCli(['emulator', '--port', port], {});
      assert.equal(run.code, 1);
      assert.match(run.stderr, /cannot listen on 127\.0\.0\.1:\d+: it is in use/);
    } finally {
      await terminate(emulator.child, 5_000);
    }
  });
});
