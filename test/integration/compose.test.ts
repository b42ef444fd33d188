import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
    // A sequence's items ("- ...") sit at their key's indentation in compose's output: not keys.
    const match = indent(line) === depth ? /^\s*([^\s:-][^:]*):(?:\s+(.*))?$/.exec(line) : null;
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

/** The items of a block sequence, each as its lines joined by newlines ("- " removed). */
function items(block: Block | undefined): string[] {
  if (!block) return [];
  if (block.inline.startsWith('[')) return block.inline.slice(1, -1).split(',').map((s) => unquote(s.trim()));
  const content = block.body.filter((line) => line.trim() !== '');
  if (content.length === 0) return [];
  const depth = Math.min(...content.map(indent));
  const list: string[][] = [];
  for (const line of content) {
    if (indent(line) === depth && line.trimStart().startsWith('- ')) list.push([unquote(line.trim().slice(2))]);
    else list.at(-1)?.push(line.trim());
  }
  return list.map((lines) => lines.join('\n'));
}

function composeConfig(args: string[] = []): string[] {
  const result = compose([...args, 'config'], { WEBHOOK_SECRET: 'test-secret' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split('\n');
}

/** Asserts a bind mount of the repository file or folder `source` (which must exist) at `target`. */
function assertMount(service: string, volumes: string[], source: string, target: string, readOnly = true) {
  const mount = volumes.find((v) => v.startsWith(`${root.replace(/\/$/, '')}/${source}:${target}`));
  assert.ok(mount, `${service} does not mount ./${source} at ${target}: ${volumes.join(', ')}`);
  if (readOnly) assert.match(mount, /:ro$/, `${service} should mount ./${source} read-only`);
  // A missing source would make Docker create an empty directory in its place.
  assert.ok(existsSync(join(root, source)), `./${source} does not exist`);
}

test('docker-compose.yml runs prometheus with the scrape config and alert rules mounted', () => {
  const lines = composeConfig();
  const prometheus = at(lines, 'services', 'prometheus');
  assert.ok(prometheus, 'no prometheus service');
  assert.match(at(lines, 'services', 'prometheus', 'image')?.inline ?? '', /^prom\/prometheus(:|$)/);
  const volumes = items(at(lines, 'services', 'prometheus', 'volumes'));
  assertMount('prometheus', volumes, 'deploy/prometheus/prometheus.yml', '/etc/prometheus/prometheus.yml');
  assertMount('prometheus', volumes, 'deploy/prometheus/alerts.yml', '/etc/prometheus/alerts.yml');
  const ports = items(at(lines, 'services', 'prometheus', 'ports'));
  assert.ok(ports.some((p) => /^127\.0\.0\.1:9090:9090\b/.test(p)), `prometheus ports: ${ports.join(', ')}`);
  for (const name of ['ingest', 'worker']) {
    assert.equal(at(lines, 'services', 'prometheus', 'depends_on', name, 'condition')?.inline, 'service_started');
  }
});

test('docker-compose.yml runs grafana with the datasource and dashboard provisioned, on 127.0.0.1:3002', () => {
  const lines = composeConfig();
  assert.ok(at(lines, 'services', 'grafana'), 'no grafana service');
  assert.match(at(lines, 'services', 'grafana', 'image')?.inline ?? '', /^grafana\/grafana(:|$)/);
  const volumes = items(at(lines, 'services', 'grafana', 'volumes'));
  assertMount('grafana', volumes, 'deploy/grafana/provisioning', '/etc/grafana/provisioning');
  assertMount('grafana', volumes, 'deploy/grafana/dashboards', '/var/lib/grafana/dashboards');
  assert.ok(existsSync(join(root, 'deploy/grafana/provisioning/datasources/prometheus.yml')));
  assert.ok(existsSync(join(root, 'deploy/grafana/provisioning/dashboards/replyflow.yml')));
  const ports = items(at(lines, 'services', 'grafana', 'ports'));
  assert.ok(ports.some((p) => /^127\.0\.0\.1:3002:3000\b/.test(p)), `grafana ports: ${ports.join(', ')}`);
  const env = at(lines, 'services', 'grafana', 'environment');
  assert.ok(env && entries(env.body).has('GF_SECURITY_ADMIN_PASSWORD'), 'grafana has no admin password setting');
});

test('docker-compose.yml publishes the ingest admin UI on 127.0.0.1 only and passes its credentials', () => {
  const lines = composeConfig();
  const ports = items(at(lines, 'services', 'ingest', 'ports'));
  assert.ok(ports.some((p) => /^127\.0\.0\.1:3001:3001\b/.test(p)), `ingest ports: ${ports.join(', ')}`);
  assert.ok(!ports.some((p) => /^(0\.0\.0\.0:)?3001:|published: 3001/.test(p)), 'the admin UI must not be public');
  const env = entries(at(lines, 'services', 'ingest', 'environment')?.body ?? []);
  for (const name of ['ADMIN_PORT', 'ADMIN_USER', 'ADMIN_PASSWORD']) assert.ok(env.has(name), `ingest has no ${name}`);
});

test('caddy runs only under the https profile, in front of the ingest', () => {
  const withProfile = compose(['--profile', 'https', 'config', '-q'], { WEBHOOK_SECRET: 'test-secret' });
  assert.equal(withProfile.status, 0, withProfile.stderr);

  const lines = composeConfig();
  const services = entries(at(lines, 'services')!.body);
  assert.ok(services.has('caddy'), 'no caddy service');
  assert.deepEqual(items(at(lines, 'services', 'caddy', 'profiles')), ['https']);
  for (const name of services.keys()) {
    if (name !== 'caddy') assert.equal(at(lines, 'services', name, 'profiles'), undefined, `${name} must not need a profile`);
  }
  const volumes = items(at(lines, 'services', 'caddy', 'volumes'));
  assertMount('caddy', volumes, 'deploy/caddy/Caddyfile', '/etc/caddy/Caddyfile');
  const ports = items(at(lines, 'services', 'caddy', 'ports')).join(' ');
  assert.match(ports, /published: 443\b|:443:443/, `caddy ports: ${ports}`);
  assert.match(ports, /published: 80\b|:80:80/, `caddy ports: ${ports}`);
  const caddyfile = readFileSync(join(root, 'deploy/caddy/Caddyfile'), 'utf8');
  assert.match(caddyfile, /\{\$PUBLIC_HOST(:[^}]*)?\}\s*\{/, 'the Caddyfile site address should be {$PUBLIC_HOST}');
  assert.match(caddyfile, /reverse_proxy\s+ingest:3000\b/);
});
