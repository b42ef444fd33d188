import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { sleep } from '../helpers/wait.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('logs', () => {
  test('a run with every secret set logs none of them, no full payload and no phone number', async () => {
    const secrets = {
      WEBHOOK_SECRET: 'webhook-secret-value-1234',
      FORWARD_SECRET: 'whsec_c2VjcmV0LWZvcndhcmQta2V5LXZhbHVl',
      NOTIFYER_API_KEY: 'notifyer-api-key-value-5678',
    };
    const rules = join(mkdtempSync(join(tmpdir(), 'replyflow-logs-')), 'rules.yaml');
    writeFileSync(rules, 'rules:\n  - name: all\n    reply: [{ text: "hello there" }]\n');
    const p = await startPipeline({
      worker: false,
      ingestEnv: { WEBHOOK_SECRET: secrets.WEBHOOK_SECRET, LOG_LEVEL: 'debug' },
      receiver: (_req, count) => (count % 3 === 0 ? { status: 500 } : { status: 200 }),
    });
    try {
      const worker = await p.startWorker({ ...secrets, REPLY_RULES: rules, NOTIFYER_SEND_URL: p.receiver.url, LOG_LEVEL: 'debug' });
      for (let i = 0; i < 6; i++) {
        const body = JSON.stringify(withMessageTime(loadFixture('incoming-text').json, 1_860_000_000 + i));
        await p.send(body, { 'x-webhook-signature': secrets.WEBHOOK_SECRET });
        await p.send(body, { 'x-webhook-signature': 'wrong' });
      }
      await p.receiver.waitFor(12, 15_000);
      await sleep(500);
      const output = `${p.ingest.output()}\n${worker.output()}`;
      for (const [name, value] of Object.entries(secrets)) assert.ok(!output.includes(value), `${name} in the logs`);
      assert.ok(!output.includes(secrets.FORWARD_SECRET.slice(6)), 'FORWARD_SECRET in the logs');
      for (const fragment of ['Great, when will it arrive?', 'Dana Whitfield', 'Ordered the blue model', '447700900123', '7700 900123']) {
        assert.ok(!output.includes(fragment), `"${fragment}" in the logs`);
      }
      assert.ok(output.includes('"eventId"'), 'events are logged by id');
    } finally {
      await p.stop();
    }
  });
});
