import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { request } from 'node:http';
import { SECRET, startPipeline } from '../helpers/pipeline.js';
import { sleep } from '../helpers/wait.js';

describe('graceful stop (contract section 7)', () => {
  test('SIGTERM lets in-flight forwards finish, then the worker exits 0', async () => {
    const p = await startPipeline({ receiver: () => ({ status: 200, delayMs: 1_500 }) });
    try {
      for (let i = 0; i < 3; i++) await p.send(withMessageTime(loadFixture('incoming-text').json, 500 + i));
      await p.receiver.waitFor(3, 10_000);
      p.worker!.signal('SIGTERM');
      const exit = await p.worker!.waitForExit(10_000);
      assert.equal(exit.code, 0);
      assert.ok(p.worker!.logs().filter((log) => log.msg === 'workflow completed').length === 3, p.worker!.output());
      // Nothing was left for another worker to redo.
      const again = await p.startWorker();
      await sleep(1_000);
      assert.equal(p.receiver.requests.length, 3);
      await again.stop();
    } finally {
      await p.stop();
    }
  });

  test('SIGTERM on the ingest answers the request it is receiving, refuses new ones, exits 0', async () => {
    const p = await startPipeline({ worker: false });
    try {
      const body = Buffer.from(loadFixture('incoming-text').text);
      const answer = new Promise<{ status: number; body: string; connection?: string }>((resolve, reject) => {
        const req = request(p.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-webhook-signature': SECRET, 'content-length': body.length },
        }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
        });
        req.on('error', reject);
        // Half the body now, the rest after the signal: the request is in progress when it arrives.
        req.write(body.subarray(0, 100));
        setTimeout(() => {
          p.ingest.signal('SIGTERM');
          setTimeout(() => req.end(body.subarray(100)), 300);
        }, 200);
      });
      const res = await answer;
      assert.equal(res.status, 202, res.body);
      // A keep-alive client is told to go: it would otherwise keep sending on this connection.
      assert.equal(res.connection, 'close');
      const exit = await p.ingest.waitForExit(10_000);
      assert.equal(exit.code, 0);
    } finally {
      await p.stop();
    }
  });

  test('work still in flight at SHUTDOWN_TIMEOUT_MS is left to other workers: exit 0 then', async () => {
    const p = await startPipeline({ receiver: () => ({ status: 200, delayMs: 20_000 }), workerEnv: { SHUTDOWN_TIMEOUT_MS: '1500' } });
    try {
      await p.send(loadFixture('incoming-text').text);
      await p.receiver.waitFor(1, 10_000);
      const signalledAt = Date.now();
      p.worker!.signal('SIGTERM');
      const exit = await p.worker!.waitForExit(5_000);
      assert.equal(exit.code, 0);
      assert.ok(Date.now() - signalledAt < 4_000, `exited ${Date.now() - signalledAt} ms after the signal`);
      assert.ok(p.worker!.logs().some((log) => /shutdown timed out/.test(String(log.msg))));
    } finally {
      await p.stop();
    }
  });

  test('a second signal forces the exit', async () => {
    const p = await startPipeline({ receiver: () => ({ status: 200, delayMs: 20_000 }) });
    try {
      await p.send(loadFixture('incoming-text').text);
      await p.receiver.waitFor(1, 10_000);
      p.worker!.signal('SIGTERM');
      await sleep(300);
      p.worker!.signal('SIGTERM');
      const exit = await p.worker!.waitForExit(3_000);
      assert.notEqual(exit.code, 0);
    } finally {
      await p.stop();
    }
  });
});
