import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadWebhookSecrets, type Logger } from '@replyflow/shared';

const dir = mkdtempSync(join(tmpdir(), 'webhook-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A logger that keeps its warnings. */
function capturingLogger(): { logger: Logger; warnings: Array<{ fields: Record<string, unknown>; msg: string }> } {
  const warnings: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  const logger = {
    info: () => {},
    warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }),
  } as unknown as Logger;
  return { logger, warnings };
}

const fileConfig = (webhookSecretFile: string) => ({ webhookSecrets: [], webhookSecretFile, signatureMode: 'token' as const });

describe('webhook secrets from WEBHOOK_SECRET_FILE', () => {
  test('a file that can no longer be read keeps the previous secrets and logs a warning, without its content', async () => {
    const file = join(dir, 'replaced-by-a-directory');
    writeFileSync(file, 'old-secret\n');
    const { logger, warnings } = capturingLogger();
    const secrets = loadWebhookSecrets(fileConfig(file), logger);
    try {
      assert.deepEqual(secrets.current(), ['old-secret']);
      // The watcher's first stat, taken on the thread pool, is what later polls compare with.
      await sleep(700);
      rmSync(file);
      mkdirSync(file);
      // The file is polled every 500 ms; a poll between the two steps above sees it gone first.
      const sawDirectory = () => warnings.some((entry) => entry.fields.code === 'EISDIR');
      for (let waited = 0; !sawDirectory() && waited < 10_000; waited += 100) await sleep(100);
      assert.deepEqual(secrets.current(), ['old-secret']);
      const warning = warnings.find((entry) => entry.fields.code === 'EISDIR');
      assert.ok(warning, JSON.stringify(warnings));
      assert.equal(warning.fields.file, file);
      assert.ok(!JSON.stringify(warnings).includes('old-secret'));
    } finally {
      secrets.close();
    }
  });

  test('a file that cannot be read at start is a ConfigError naming WEBHOOK_SECRET_FILE, the path and the reason', () => {
    const file = join(dir, 'a-directory');
    mkdirSync(file);
    assert.throws(
      () => loadWebhookSecrets(fileConfig(file), capturingLogger().logger),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.variable === 'WEBHOOK_SECRET_FILE' &&
        error.message === `WEBHOOK_SECRET_FILE: cannot read ${file}: EISDIR`,
    );
  });
});
