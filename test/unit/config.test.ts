import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterSeed, ConfigError, loadConfig } from '@replyflow/shared';

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

  test('REDIS_CLUSTER_NODES takes host:port seeds: names, IPv4 and bracketed IPv6 addresses', () => {
    assert.deepEqual(loadConfig('worker', { REDIS_CLUSTER_NODES: ' redis-1:6379 , 10.0.0.2:7000,[::1]:7001 ' }).redisClusterNodes, [
      'redis-1:6379',
      '10.0.0.2:7000',
      '[::1]:7001',
    ]);
    assert.throws(
      () => loadConfig('worker', { REDIS_CLUSTER_NODES: 'redis-1' }),
      /REDIS_CLUSTER_NODES: expected comma-separated host:port entries, such as redis-1:6379,redis-2:6379/,
    );
  });

  test('REDIS_URL takes redis:// and rediss:// URLs with a host, port, user, password and db', () => {
    for (const url of ['redis://redis', 'redis://127.0.0.1:6380/2', 'rediss://user:secret@redis.example.com:6380/0', 'redis://[::1]:6379']) {
      assert.equal(loadConfig('worker', { REDIS_URL: url }).redisUrl, url);
    }
  });

  test('the ingest listens on the defaults, and port 0 never clashes', () => {
    const config = loadConfig('ingest', { ADMIN_PASSWORD: 'pw' });
    assert.deepEqual([config.port, config.metricsPort, config.adminPort], [3000, 9464, 3001]);
    assert.equal(loadConfig('ingest', { PORT: '0', METRICS_PORT: '0', ADMIN_PORT: '0', ADMIN_PASSWORD: 'pw' }).port, 0);
    assert.equal(loadConfig('ingest', { ADMIN_PORT: '3000' }).adminPort, 3000, 'no dashboard without ADMIN_PASSWORD');
    assert.equal(loadConfig('worker', { METRICS_PORT: '3000' }).metricsPort, 3000, 'the worker has no PORT');
  });

  const clashes: Array<[NodeJS.ProcessEnv, string]> = [
    [{ METRICS_PORT: '3000' }, 'METRICS_PORT: 3000 is also PORT; give each listener its own port'],
    [{ PORT: '9464' }, 'METRICS_PORT: 9464 is also PORT; give each listener its own port'],
    [{ ADMIN_PORT: '3000', ADMIN_PASSWORD: 'pw' }, 'ADMIN_PORT: 3000 is also PORT; give each listener its own port'],
    [{ ADMIN_PORT: '9464', ADMIN_PASSWORD: 'pw' }, 'ADMIN_PORT: 9464 is also METRICS_PORT; give each listener its own port'],
  ];
  for (const [env, message] of clashes) {
    test(`the ingest refuses ${JSON.stringify(env)}: ${message}`, () => {
      assert.throws(() => loadConfig('ingest', env), (error: unknown) => error instanceof ConfigError && error.message === message);
    });
  }

  test('empty values count as unset', () => {
    assert.equal(loadConfig('ingest', { PORT: '', FORWARD_URL: '  ' }).port, 3000);
  });

  const bad: Array<[string, string]> = [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://localhost'],
    ['REDIS_URL', 'redis://'],
    ['REDIS_URL', 'redis:///0'],
    ['REDIS_CLUSTER_NODES', 'nohost.invalid:notaport'],
    ['REDIS_CLUSTER_NODES', 'redis://nohost.invalid:7000'],
    ['REDIS_CLUSTER_NODES', 'redis-1:6379,host'],
    ['REDIS_CLUSTER_NODES', ':7000'],
    ['REDIS_CLUSTER_NODES', 'redis-1:0'],
    ['REDIS_CLUSTER_NODES', 'redis-1:65536'],
    ['REDIS_CLUSTER_NODES', '::1:7000'],
    ['REDIS_CLUSTER_NODES', '[nohost]:7000'],
    ['REDIS_CLUSTER_NODES', '10.0.0.300:7000'],
    ['REDIS_CLUSTER_NODES', ','],
    ['REDIS_CLUSTER_NODES', ' , '],
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

describe('REDIS_CLUSTER_NODES entries as ioredis takes them', () => {
  test('a hostname, an IPv4 address, an IPv6 address in brackets', () => {
    assert.deepEqual(clusterSeed('redis-1:7000'), { host: 'redis-1', port: 7000 });
    assert.deepEqual(clusterSeed('10.0.0.2:6379'), { host: '10.0.0.2', port: 6379 });
    assert.deepEqual(clusterSeed('[::1]:7001'), { host: '::1', port: 7001 });
  });
});
