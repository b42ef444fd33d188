import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '@replyflow/shared';

describe('config', () => {
  test('defaults follow the contract', () => {
    const config = loadConfig('ingest', {});
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.port, 3000);
    assert.equal(config.metricsPort, 9464);
    assert.equal(loadConfig('worker', {}).metricsPort, 9465);
    assert.equal(config.bodyLimitBytes, 1024 * 1024);
    assert.equal(config.dedupeTtlSeconds, 604800);
    assert.equal(config.workerConcurrency, 32);
    assert.equal(config.maxAttempts, 8);
    assert.equal(config.backoffBaseMs, 1000);
    assert.equal(config.shutdownTimeoutMs, 30000);
    assert.equal(config.sendRateLimit, 20);
    assert.equal(config.signatureMode, 'token');
    assert.equal(config.queuePrefix, 'replyflow');
    assert.equal(config.webhookSecretFile, '.replyflow/webhook-secret');
    assert.ok(Object.isFrozen(config));
  });

  test('parses lists, sizes, flags and numbers', () => {
    const config = loadConfig('worker', {
      WEBHOOK_SECRET: ' a , b,,c ',
      BODY_LIMIT: '512kb',
      REQUIRE_SAFE_REDIS: 'true',
      WORKER_CONCURRENCY: '4',
      METRICS_PORT: '0',
    });
    assert.deepEqual(config.webhookSecrets, ['a', 'b', 'c']);
    assert.equal(config.bodyLimitBytes, 512 * 1024);
    assert.equal(config.requireSafeRedis, true);
    assert.equal(config.workerConcurrency, 4);
    assert.equal(config.metricsPort, 0);
  });

  test('BODY_LIMIT takes a number of bytes, or a number and one of the units b, kb, mb, gb, tb, pb', () => {
    const sizes: Array<[string, number]> = [
      ['1mb', 1024 * 1024],
      ['512kb', 512 * 1024],
      ['100000', 100000],
      ['1MB', 1024 * 1024],
      ['2 mb', 2 * 1024 * 1024],
      ['1.5mb', 1.5 * 1024 * 1024],
      ['64b', 64],
      [' 1gb ', 1024 ** 3],
    ];
    for (const [value, expected] of sizes) assert.equal(loadConfig('ingest', { BODY_LIMIT: value }).bodyLimitBytes, expected, value);
  });

  test('empty values count as unset', () => {
    assert.equal(loadConfig('ingest', { PORT: '', FORWARD_URL: '  ' }).port, 3000);
  });

  const bad: Array<[string, string]> = [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://localhost'],
    ['SIGNATURE_MODE', 'md5'],
    ['BODY_LIMIT', 'huge'],
    ['BODY_LIMIT', '2M'],
    ['BODY_LIMIT', '10MiB'],
    ['BODY_LIMIT', '1m'],
    ['BODY_LIMIT', '1e3'],
    ['BODY_LIMIT', '1.5'],
    ['BODY_LIMIT', '-1mb'],
    ['BODY_LIMIT', '0'],
    ['WORKER_CONCURRENCY', '0'],
    ['FORWARD_URL', 'ftp://x'],
    ['FORWARD_SECRET', 'plain'],
    ['REQUIRE_SAFE_REDIS', 'maybe'],
    ['MAX_ATTEMPTS', '-1'],
    ['LOG_LEVEL', 'loud'],
  ];
  for (const [variable, value] of bad) {
    test(`${variable}=${value} is a ConfigError naming ${variable}`, () => {
      assert.throws(
        () => loadConfig('worker', { [variable]: value }),
        (error: unknown) => error instanceof ConfigError && error.variable === variable && error.message.startsWith(variable),
      );
    });
  }

  test('REPLY_RULES without NOTIFYER_SEND_URL is an error for the worker', () => {
    assert.throws(() => loadConfig('worker', { REPLY_RULES: 'rules.yaml' }), /NOTIFYER_SEND_URL/);
  });
});
