import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, type Config } from '@replyflow/shared';
import { defineWorkflow, type WorkflowDefinition } from '@replyflow/workflow';
import type { Agent } from 'undici';
import { loadWorkflows } from '../../apps/worker/src/engine/load-workflows.js';
import { repoRoot } from '../helpers/repo-root.js';

// Outside the repository, like a module an operator keeps elsewhere.
const dir = mkdtempSync(join(tmpdir(), 'load-workflows-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let modules = 0;
function writeModule(source: string): string {
  const path = join(dir, `workflows-${(modules += 1)}.mjs`);
  writeFileSync(path, source);
  return path;
}

const load = (path: string) => loadWorkflows({ workflows: path } as Config, undefined as unknown as Agent);

async function loadError(path: string): Promise<string> {
  const error = await load(path).then(
    () => assert.fail('the module loaded'),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  assert.equal(error.variable, 'WORKFLOWS');
  assert.doesNotMatch(error.message, /\n/);
  return error.message;
}

describe('WORKFLOWS: every exported workflow is checked as defineWorkflow checks it', () => {
  const run = 'run: async () => {}';
  const cases: { name: string; source: string; error: string }[] = [
    { name: 'the events queue', source: `export const reserved = { name: 'events', ${run} };`, error: 'export "reserved": workflow name "events" is taken by replyflow\'s own queue' },
    { name: 'the dead-letter queue', source: `export default { name: 'dead-letter', ${run} };`, error: 'export default: workflow name "dead-letter" is taken by replyflow\'s own queue' },
    { name: 'a built-in workflow, even when not configured', source: `export default { name: 'forward', ${run} };`, error: 'export default: workflow name "forward" is taken by a built-in workflow' },
    { name: 'a name that is no queue name', source: `export default [{ name: 'Events Alert!', ${run} }];`, error: 'export default, item 1: workflow name "Events Alert!": use lowercase letters' },
    { name: 'no run', source: `export default { name: 'a' };`, error: 'export default: workflow "a": run must be a function' },
    { name: 'match not a function', source: `export default { name: 'a', match: 'yes', ${run} };`, error: 'export default: workflow "a": match must be a function' },
    { name: 'key not a function', source: `export default { name: 'a', key: 'phone', ${run} };`, error: 'export default: workflow "a": key must be a function' },
    { name: 'retries 0', source: `export default { name: 'a', retries: 0, ${run} };`, error: 'export default: workflow "a": retries must be a positive integer' },
    { name: 'negative rate limit', source: `export default { name: 'a', rateLimit: { name: 'x', perSecond: -5 }, ${run} };`, error: 'export default: workflow "a": rateLimit.perSecond must be a number above 0' },
    { name: 'rate limit without a name', source: `export default { name: 'a', rateLimit: { perSecond: 5 }, ${run} };`, error: 'export default: workflow "a": rateLimit.name must be a non-empty string' },
    { name: 'an undefined list item', source: `const a = { name: 'a', ${run} }; let b; export default [a, b];`, error: 'export default, item 2: not a workflow (make it with defineWorkflow)' },
    { name: 'a named export that is no workflow', source: `export const LABEL = 'vip'; export default { name: 'a', ${run} };`, error: 'export "LABEL": not a workflow (make it with defineWorkflow)' },
  ];

  for (const { name, source, error } of cases) {
    test(`${name}: ${error}`, async () => {
      const path = writeModule(source);
      const message = await loadError(path);
      assert.ok(message.startsWith(`WORKFLOWS: ${path}, ${error}`), `message was: ${message}`);
    });
  }

  test('defineWorkflow rejects the same callbacks and rate limits', () => {
    const run = async () => {};
    const bad: [Partial<WorkflowDefinition>, RegExp][] = [
      [{ match: 'yes' as never }, /match must be a function/],
      [{ debounce: 5 as never }, /debounce must be a function/],
      [{ rateLimit: { name: 'x', perSecond: -5 } }, /rateLimit.perSecond must be a number above 0/],
      [{ rateLimit: { name: 'x', perSecond: Number.NaN } }, /rateLimit.perSecond/],
    ];
    for (const [fields, error] of bad) assert.throws(() => defineWorkflow({ name: 'a', run, ...fields }), error);
  });
});

describe('WORKFLOWS: which exports load', () => {
  test('the default export and every named export load', async () => {
    const path = writeModule(`
      export const vip = { name: 'vip', run: async () => {} };
      export const audit = [{ name: 'audit', run: async () => {} }];
      export default { name: 'main-one', run: async () => {} };`);
    assert.deepEqual((await load(path)).map((w) => w.name).sort(), ['audit', 'main-one', 'vip']);
  });

  test('one workflow exported twice loads once', async () => {
    const path = writeModule(`export const vip = { name: 'vip', run: async () => {} }; export default vip;`);
    assert.deepEqual((await load(path)).map((w) => w.name), ['vip']);
  });

  test('two workflows of one name are an error', async () => {
    const path = writeModule(`export const vip = { name: 'vip', run: async () => {} }; export default { name: 'vip', run: async () => {} };`);
    assert.match(await loadError(path), /two workflows are named "vip"/);
  });
});

describe('WORKFLOWS: a module that cannot load says where to look', () => {
  test('a syntax error points at node --check', async () => {
    const path = writeModule(`export default {\n  name: 'a',\n  run: async (event, step) => { await step.run('x', async () => 1 },\n};\n`);
    const message = await loadError(path);
    assert.ok(message.startsWith(`WORKFLOWS: cannot load ${path}: SyntaxError: `), message);
    assert.ok(message.includes(`node --check ${path}`), message);
  });

  test('an error thrown while loading names its file and line', async () => {
    const path = writeModule(`const url = undefined;\nif (!url) throw new Error('VIP_URL is not set');\nexport default {};\n`);
    assert.match(await loadError(path), new RegExp(`Error: VIP_URL is not set \\(at ${path}:2:\\d+\\)$`));
  });

  test('a module outside the app folder that imports @replyflow/workflow is told where to live', async () => {
    const path = writeModule(`import { defineWorkflow } from '@replyflow/workflow';\nexport default defineWorkflow({ name: 'a', run: async () => {} });\n`);
    const message = await loadError(path);
    assert.match(message, /Cannot find package '@replyflow\/workflow'/);
    assert.ok(message.includes(`must be inside ${repoRoot}`), message);
  });
});
