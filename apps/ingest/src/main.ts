import {
  createLogger,
  createRedis,
  ShardLayouts,
  layoutOptionsOf,
  createRegistry,
  ingestMetrics,
  loadConfig,
  loadWebhookSecrets,
  runMain,
  startHealthServer,
  stopOnSignals,
  monitorRedis,
  redisReady,
  withDeadline,
  listen,
} from '@replyflow/shared';
import { startAdminServer, type AdminServer } from './admin.js';
import { createAnswer } from './answer.js';
import { createApp } from './app.js';
import { EventStore } from './event-store.js';
import { createExpressServer } from './express-server.js';

const REDIS_WAIT_AT_START_MS = 5000;

runMain(async () => {
  const config = loadConfig('ingest');
  const logger = createLogger('ingest', config.logLevel);
  const secrets = loadWebhookSecrets(config, logger);
  if (config.signatureMode === 'none') {
    logger.warn('SIGNATURE_MODE=none: webhooks are accepted without any signature check');
  }

  const registry = createRegistry('ingest');
  const metrics = ingestMetrics(registry);
  // Not auto-pipelined: ioredis sends an auto-pipeline only once the previous
  // one is answered, so the store's batches would queue behind each other and
  // the ingest would sit idle while Redis runs one (redis-script.ts).
  const redis = createRedis(config, 'producer', { autoPipelining: false });
  const redisHealth = monitorRedis(redis, {
    logger,
    redisUp: metrics.redisUp,
    whenDown: 'webhooks are answered 503 until it returns',
    refuseEviction: config.requireSafeRedis,
  });

  // Listening before Redis answers would turn the first webhooks of every start
  // into 503s; a Redis that stays away does not keep the ingest from starting.
  await withDeadline(redisReady(redis), REDIS_WAIT_AT_START_MS).catch(() =>
    logger.warn({ waitedMs: REDIS_WAIT_AT_START_MS }, 'Redis not reachable yet: answering 503 until it is'),
  );
  const layouts = await ShardLayouts.open(redis, { ...layoutOptionsOf(config), logger });
  const store = new EventStore(redis, layouts, config.redisAckReplicas);

  const app = createApp({
    bodyLimitBytes: config.bodyLimitBytes,
    signatureMode: config.signatureMode,
    secrets,
    store,
    logger,
    // Once the server has stopped listening (the stop below), answers close their connections.
    answer: createAnswer(metrics, () => !server.listening),
    isReady: redisHealth.isUp,
  });
  const server = await listen(createExpressServer(app), config.port, config.host);
  const health = await startHealthServer({
    port: config.metricsPort,
    host: config.host,
    registry,
    isReady: redisHealth.isUp,
  });
  const { adminPassword } = config;
  // Without a password there is no dashboard at all, rather than one anyone can open.
  const admin: AdminServer | undefined = adminPassword ? await startAdminServer({ config: { ...config, adminPassword }, logger, layouts }) : undefined;
  logger.info(
    { port: config.port, metricsPort: health.port, adminPort: admin?.port ?? null, signatureMode: config.signatureMode },
    'ingest listening',
  );

  stopOnSignals(logger, config.shutdownTimeoutMs, async () => {
    // Requests already being received are answered; new connections are refused,
    // and each answer from now on closes its connection, or a keep-alive client
    // would go on sending on it: those being received through createAnswer,
    // any that comes after on an open connection here.
    server.prependListener('request', (_req, res) => res.setHeader('connection', 'close'));
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const adminClosed = admin?.close();
    await closed;
    await adminClosed;
    health.server.close();
    redisHealth.stop();
    secrets.close();
    layouts.stop();
    await store.close();
    await redis.quit().catch(() => redis.disconnect());
  });
});
