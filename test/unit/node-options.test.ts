import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_OPTIONS, withNodeOptions } from '../../scripts/node-options.mjs';
import { repoRoot } from '../helpers/repo-root.js';

/** The largest the young generation grew while the child allocated short-lived objects, in MB. */
function youngGenerationMb(nodeOptions: string): number {
  const script = `
    const v8 = require('node:v8');
    let keep = [];
    for (let i = 0; i < 4e6; i++) { keep.push({ i }); if (keep.length > 2e5) keep = []; }
    console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576);`;
  const child = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return Number(child.stdout.trim());
}

test('the Docker image runs with the same NODE_OPTIONS as npm start and the benchmark', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  assert.match(runtimeStage, new RegExp(`^ENV NODE_OPTIONS="${NODE_OPTIONS}"$`, 'm'));
});

test("a user's NODE_OPTIONS come after ours, so theirs win", () => {
  assert.equal(withNodeOptions(undefined), NODE_OPTIONS);
  assert.equal(withNodeOptions(''), NODE_OPTIONS);
  assert.equal(withNodeOptions('--max-semi-space-size=8 --enable-source-maps'), `${NODE_OPTIONS} --max-semi-space-size=8 --enable-source-maps`);
});

test('Node accepts the options, and they give the young generation its 2 x 32 MB', () => {
  assert.equal(youngGenerationMb(withNodeOptions(undefined)), 64);
  assert.equal(youngGenerationMb(withNodeOptions('--max-semi-space-size=8')), 16, 'a later setting of the user overrides ours');
});
