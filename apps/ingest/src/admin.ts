import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { ExpressAdapter } from '@bull-board/express';
import { createRedis, listen, type Config, type Logger, type ShardLayouts } from '@replyflow/shared';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { DashboardQueues } from './dashboard-queues.js';
import { createExpressServer } from './express-server.js';

export const ADMIN_REALM = 'replyflow';

const REFRESH_INTERVAL_MS = 10_000;

export interface AdminOptions {
  config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'queueShards' | 'queuePrefix' | 'adminUser' | 'host' | 'adminPort'> & { adminPassword: string };
  logger: Logger;
  layouts: ShardLayouts;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

/**
 * HTTP basic auth on every path. The user never holds a colon (RFC 7617), so
 * "user:password" names one pair; it is compared as a whole, after hashing
 * both sides, so the time taken tells neither the length nor which half was wrong.
 */
export function basicAuth(user: string, password: string, realm = ADMIN_REALM): RequestHandler {
  const expected = sha256(Buffer.from(`${user}:${password}`, 'utf8'));
  return (req, res, next) => {
    const match = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const given = sha256(match ? Buffer.from(match[1]!, 'base64') : Buffer.alloc(0));
    if (match && timingSafeEqual(given, expected)) return next();
    res.set('www-authenticate', `Basic realm="${realm}"`);
    res.status(401).json({ error: 'unauthorized', message: 'the queue dashboard needs ADMIN_USER and ADMIN_PASSWORD' });
  };
}

const sha256 = (bytes: Buffer): Buffer => createHash('sha256').update(bytes).digest();

/** The dashboard app, without listening: basic auth in front of bull-board on every path. */
export function createAdminApp(options: { user: string; password: string; queues: DashboardQueues; board: ExpressAdapter; logger: Logger }) {
  const app = express();
  app.disable('x-powered-by');
  app.use(basicAuth(options.user, options.password));
  // A queue whose worker just started shows up as soon as someone looks, not only on the next timer tick.
  app.get('/api/queues', async (_req, _res, next) => {
    await options.queues.refreshFromWorkers();
    next();
  });
  const dashboard = options.board.getRouter() as express.Express;
  dashboard.disable('x-powered-by');
  app.use(dashboard);
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    options.logger.error({ err: error, path: req.path }, 'queue dashboard error');
    res.status(500).json({ error: 'internal', message: 'the queue dashboard failed' });
  });
  return app;
}

/**
 * bull-board on its own port. It uses its own Redis connection: the ingest's
 * fails fast so webhooks get a quick 503, while a page can wait for Redis.
 */
export async function startAdminServer({ config, logger, layouts }: AdminOptions): Promise<AdminServer> {
  const redis = createRedis(config, 'worker');
  redis.on('error', () => {});
  const serverAdapter = new ExpressAdapter().setBasePath('/');
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'replyflow' } } });
  const queues = new DashboardQueues(redis, board, config.queuePrefix, () => layouts.current, logger);
  queues.showAlwaysListed();
  layouts.onChange(() => queues.showAlwaysListed());
  // In the background: neither a large keyspace nor an absent Redis may hold up the ingest's start.
  // Once ready: before that a Cluster client knows no nodes to SCAN.
  redis.once('ready', () => void queues.showStored().then(() => queues.refreshFromWorkers()));
  const timer = setInterval(() => void queues.refreshFromWorkers(), REFRESH_INTERVAL_MS);
  timer.unref();

  const app = createAdminApp({ user: config.adminUser, password: config.adminPassword, queues, board: serverAdapter, logger });
  const server = await listen(createExpressServer(app), config.adminPort, config.host);
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      clearInterval(timer);
      // Dashboard requests are only reads and button clicks: no need to wait for them as for webhooks.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
