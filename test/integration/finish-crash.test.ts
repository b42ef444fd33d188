import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { jobKey, workflowJobId } from '@replyflow/shared';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { repoRoot } from '../helpers/repo-root.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const KILL_AFTER_FINISH = `--import ${join(repoRoot, 'test/fixtures/kill-after-finish.mjs')}`;
const dir = mkdtempSync(join(tmpdir(), 'replyflow-finish-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Kills the first worker right after a workflow job's finishing script, starts
 * another, and waits until that one has dealt with the job left active.
 */
async function crashAfterFinish(p: Pipeline, workflow: string, body: object, env: Record<string, string>): Promise<void> {
  const first = await p.startWorker({ ...env, NODE_OPTIONS: KILL_AFTER_FINISH });
  const { json } = await p.send(body);
  await first.waitForLog(/killed after finishing/, 20_000);
  await first.waitForExit(5_000);
  const redis = p.redis.client();
  const job = jobKey('replyflow', workflow, workflowJobId(workflow, json.id));
  assert.equal(await redis.exists(job), 1, 'the job was left active');
  await p.startWorker(env);
  await waitUntil(async () => (await redis.exists(job)) === 0 || undefined, 20_000, () => 'the job left active was never completed');
  await sleep(300);
}

describe('a worker killed after finishing a workflow job, before BullMQ completes it', () => {
  test('forward: the recorded outcome stands, no second delivery', async () => {
    let requests = 0;
    // A 500 first, so the event goes on in a workflow job rather than inline.
    const p = await startPipeline({ worker: false, receiver: () => ({ status: ++requests === 1 ? 500 : 200 }) });
    try {
      await crashAfterFinish(p, 'forward', withMessageTime(loadFixture('incoming-text').json, 1_830_100_000), { JOB_LOCK_MS: '1500' });
      assert.equal(p.receiver.requests.length, 2, 'the failed attempt and the one that succeeded, nothing more');
    } finally {
      await p.stop();
    }
  });

  test('auto-reply: each message sent once', async () => {
    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, 'rules:\n  - name: hello\n    reply:\n      - text: one\n      - text: two\n        delayMs: 500\n');
    const p = await startPipeline({ worker: false });
    try {
      const env = { FORWARD_URL: '', REPLY_RULES: rules, NOTIFYER_SEND_URL: p.receiver.url, JOB_LOCK_MS: '1500' };
      await crashAfterFinish(p, 'auto-reply', withMessageTime(loadFixture('incoming-text').json, 1_830_100_001), env);
      assert.deepEqual(p.receiver.requests.map((r) => r.json.text.body), ['one', 'two']);
    } finally {
      await p.stop();
    }
  });
});
