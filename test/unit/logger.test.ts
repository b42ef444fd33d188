import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/repo-root.js';

const loggerModule = JSON.stringify(join(repoRoot, 'packages/shared/src/logger.ts'));
const childArgs = (body: string) => ['--import', 'tsx', '--input-type=module', '-e', `import { createLogger } from ${loggerModule};\n${body}`];

interface Line {
  level: number;
  time: string;
  service: string;
  msg: string;
  n?: number;
  secret?: string;
}

const linesOf = (stdout: string): Line[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line);

test('every line logged before process.exit is written, in order, as a JSON line with an ISO time', () => {
  const child = spawnSync(
    process.execPath,
    childArgs(`const log = createLogger('ingest', 'info');
      for (let n = 0; n < 5000; n++) log.info({ n }, 'line');
      process.exit(0);`),
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(child.status, 0, child.stderr);
  const lines = linesOf(child.stdout);
  assert.deepEqual(
    lines.map((line) => line.n),
    Array.from({ length: 5000 }, (_, n) => n),
  );
  for (const line of [lines[0]!, lines.at(-1)!]) {
    assert.equal(line.service, 'ingest');
    assert.equal(line.msg, 'line');
    assert.equal(line.level, 30);
    assert.equal(new Date(line.time).toISOString(), line.time);
  }
});

test('a lone line reaches stdout within a fraction of a second, while the process runs on', async () => {
  const child = spawn(
    process.execPath,
    childArgs(`const log = createLogger('worker', 'info');
      log.info('first');
      setTimeout(() => process.stderr.write('still running\\n'), 700);
      setTimeout(() => process.exit(0), 1500);`),
  );
  let stdout = '';
  let stdoutAtStderr: string | undefined;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', () => (stdoutAtStderr ??= stdout));
  await new Promise((resolve) => child.on('close', resolve));
  assert.equal(linesOf(stdoutAtStderr ?? '')[0]?.msg, 'first', 'the line was written only at exit');
});

test('secrets passed by a careless caller are redacted', () => {
  const child = spawnSync(
    process.execPath,
    childArgs(`createLogger('cli', 'info').info({ secret: 'hunter2', config: { forwardSecret: 'whsec_x' } }, 'oops');`),
    { encoding: 'utf8' },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.doesNotMatch(child.stdout, /hunter2|whsec_x/);
  assert.equal(linesOf(child.stdout)[0]?.secret, '[redacted]');
});
