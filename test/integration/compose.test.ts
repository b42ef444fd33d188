import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const root = fileURLToPath(new URL('../..', import.meta.url));

function compose(args: string[], env: Record<string, string | undefined>) {
  const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    assert.fail('docker-compose is not installed: run `apt-get install docker-compose` (CI installs it)');
  }
  if (result.error) throw result.error;
  return result;
}

// `docker-compose config` prints block YAML (Debian's 1.29 has no --format json), so
// read it by indentation: a mapping's keys are its least-indented lines, each owning
// the more-indented lines below it. Enough for this file; not a YAML parser.
type Block = { inline: string; body: string[] };

const indent = (line: string) => line.length - line.trimStart().length;

function entries(lines: string[]): Map<string, Block> {
  const content = lines.filter((line) => line.trim() !== '');
  const depth = Math.min(...content.map(indent));
  const map = new Map<string, Block>();
  let current: Block | undefined;
  for (const line of content) {
    const match = indent(line) === depth ? /^\s*([^\s:][^:]*):(?:\s+(.*))?$/.exec(line) : null;
    if (match) map.set(match[1]!, (current = { inline: match[2] ?? '', body: [] }));
    else current?.body.push(line);
  }
  return map;
}

function at(lines: string[], ...path: string[]): Block | undefined {
  let block: Block | undefined = { inline: '', body: lines };
  for (const key of path) {
    if (!block?.body.length) return undefined;
    block = entries(block.body).get(key);
  }
  return block;
}

const unquote = (s: string) => s.replace(/^(["'])(.*)\1$/, '$2');

test('docker-compose.yml is valid', () => {
  const result = compose(['config', '-q'], { WEBHOOK_SECRET: 'test-secret' });
  assert.equal(result.status, 0, result.stderr);
});

test('docker-compose.yml is valid without WEBHOOK_SECRET, so `docker compose up redis` works', () => {
  const result = compose(['config', '-q'], { WEBHOOK_SECRET: undefined });
  assert.equal(result.status, 0, result.stderr);
});

test('docker-compose.yml keeps Redis safe and lets workers scale', () => {
  const result = compose(['config'], { WEBHOOK_SECRET: 'test-secret' });
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split('\n');

  const command = at(lines, 'services', 'redis', 'command');
  assert.ok(command, 'redis has no command');
  const argv = command.inline
    ? command.inline.split(/\s+/).map(unquote)
    : command.body.map((line) => unquote(line.trim().replace(/^- /, '')));
  const joined = argv.join(' ');
  assert.match(joined, /--appendonly yes\b/, `redis command: ${joined}`);
  assert.match(joined, /--maxmemory-policy noeviction\b/, `redis command: ${joined}`);
  assert.ok(at(lines, 'services', 'redis', 'healthcheck', 'test'), 'redis has no healthcheck test');

  for (const name of ['ingest', 'worker']) {
    const condition = at(lines, 'services', name, 'depends_on', 'redis', 'condition');
    assert.equal(condition?.inline, 'service_healthy', `${name} must wait for a healthy redis`);
  }

  const worker = at(lines, 'services', 'worker');
  assert.ok(worker, 'no worker service');
  const keys = entries(worker.body);
  assert.ok(!keys.has('container_name'), 'worker has a container_name: --scale worker=N would clash');
  assert.ok(!keys.has('ports'), 'worker publishes ports: --scale worker=N would clash');
});
