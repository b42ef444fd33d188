import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { createRedis, DEAD_LETTER_QUEUE, EVENTS_QUEUE, type Config, type Logger, type Redis } from '@replyflow/shared';
import { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

export const ADMIN_REALM = 'replyflow';

/**
 * Which queues the dashboard lists. The ingest cannot know the workflows (user
 * workflows live in the workers' WORKFLOWS module), and a fixed list would show
 * `auto-reply` to someone without REPLY_RULES but never their own workflow. So
 * it lists what Redis holds: `events` and `dead-letter` always (the intake, and
 * where an operator looks first when something went wrong), every queue with a
 * BullMQ `meta` key found by one SCAN at start, and every queue a BullMQ worker
 * is connected to (workers name their connection after their queue), checked
 * every few seconds and whenever the dashboard asks for its queue list. A
 * periodic SCAN would walk every key, including one dedupe marker per event of
 * the last DEDUPE_TTL_SECONDS, which is a lot of Redis time for a page nobody
 * may be looking at; CLIENT LIST costs one short command. A queue stays listed
 * once seen.
 */
const REFRESH_INTERVAL_MS = 10_000;
const REFRESH_AT_MOST_EVERY_MS = 2_000;

export interface AdminOptions {
  config: Pick<Config, 'redisUrl' | 'queuePrefix' | 'adminUser' | 'host' | 'adminPort'> & { adminPassword: string };
  logger: Logger;
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

type Board = ReturnType<typeof createBullBoard>;

/** The BullMQ queues on the board, one Queue each over the dashboard's own connection. */
export class DashboardQueues {
  private readonly queues = new Map<string, Queue>();
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;
  private failing = false;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly board: Board,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  show(prefix: string, name: string): void {
    const qualified = `${prefix}:${name}`;
    if (this.closed || this.queues.has(qualified)) return;
    // skipMetasUpdate: looking at a queue must not write to Redis.
    const queue = new Queue(name, { connection: this.redis, prefix, skipMetasUpdate: true });
    queue.on('error', () => {});
    this.queues.set(qualified, queue);
    // Shard queues share names across prefixes; the board keys queues by name.
    const displayPrefix = prefix === this.prefix ? '' : `${prefix}:`;
    this.board.addQueue(new BullMQAdapter(queue, { prefix: displayPrefix, ...adapterOptions(name) }));
  }

  /** Every queue holding anything: BullMQ writes `<prefix>:<queue>:meta` with a queue's first job. */
  async showStored(): Promise<void> {
    await this.quietly(async () => {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', '*:meta', 'COUNT', 1000);
        cursor = next;
        for (const key of keys) this.showParsed(key.slice(0, -':meta'.length));
      } while (cursor !== '0');
    });
  }

  /** Queues with a worker connected: BullMQ names a worker's connection `<prefix>:<base64 queue name>[:w:<worker name>]`. */
  refreshFromWorkers(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.refreshedAt < REFRESH_AT_MOST_EVERY_MS) return Promise.resolve();
    this.refreshing = this.quietly(async () => {
      const clients = (await this.redis.client('LIST')) as string;
      for (const [, name] of clients.matchAll(/ name=(\S+)/g)) {
        const connection = name!.replace(/:w:.*$/, '').replace(/:qe$/, '');
        const split = connection.lastIndexOf(':');
        const encoded = connection.slice(split + 1);
        const queueName = Buffer.from(encoded, 'base64').toString('utf8');
        if (split > 0 && Buffer.from(queueName, 'utf8').toString('base64') === encoded) {
          this.showParsed(`${connection.slice(0, split)}:${queueName}`);
        }
      }
    }).finally(() => {
      this.refreshedAt = Date.now();
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
  }

  /** `<prefix>:<queue>`, where the prefix is ours or a hash-tagged `{<prefix>…}`; BullMQ queue names never hold ":". */
  private showParsed(qualified: string): void {
    const split = qualified.lastIndexOf(':');
    const prefix = qualified.slice(0, split);
    const name = qualified.slice(split + 1);
    if (split > 0 && name !== '' && (prefix === this.prefix || prefix.startsWith(`{${this.prefix}`))) this.show(prefix, name);
  }

  /** Redis being away is the ingest's to report; the board just shows what it knew. */
  private async quietly(work: () => Promise<void>): Promise<void> {
    try {
      await work();
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: (error as Error).message }, 'queue dashboard could not list the queues');
      this.failing = true;
    }
  }
}

function adapterOptions(name: string) {
  if (name === DEAD_LETTER_QUEUE) {
    // Nothing consumes this queue, so a retry here would do nothing; replay puts an event back on its workflow's queue.
    return { readOnlyMode: true, description: 'Events that used up their attempts or failed permanently: replay them with `replyflow dlq replay`' };
  }
  return {
    // A completed job's event was handled: running it again would forward it twice.
    allowCompletedRetries: false,
    description: name === EVENTS_QUEUE ? 'Accepted webhooks, each dispatched to the workflows it matches' : `Workflow "${name}": one job per event`,
  };
}

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
export async function startAdminServer({ config, logger }: AdminOptions): Promise<AdminServer> {
  // Standalone Redis only for now: on a cluster the queue list would need a SCAN of every master.
  const redis = createRedis({ redisUrl: config.redisUrl, redisClusterNodes: undefined }, 'worker') as Redis;
  redis.on('error', () => {});
  const serverAdapter = new ExpressAdapter().setBasePath('/');
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'replyflow' } } });
  const queues = new DashboardQueues(redis, board, config.queuePrefix, logger);
  for (const name of [EVENTS_QUEUE, DEAD_LETTER_QUEUE]) queues.show(config.queuePrefix, name);
  // In the background: neither a large keyspace nor an absent Redis may hold up the ingest's start.
  void queues.showStored().then(() => queues.refreshFromWorkers());
  const timer = setInterval(() => void queues.refreshFromWorkers(), REFRESH_INTERVAL_MS);
  timer.unref();

  const app = createAdminApp({ user: config.adminUser, password: config.adminPassword, queues, board: serverAdapter, logger });
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(config.adminPort, config.host, (error?: Error) => (error ? reject(error) : resolve(listening)));
  });
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
