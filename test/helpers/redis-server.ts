import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { hasExited, kill, spawnTracked, terminate } from './child.js';
import { freePort } from './free-port.js';
import { sleep, waitUntil } from './wait.js';

export interface RedisOptions {
  appendonly?: boolean;
  maxmemory?: string;
  maxmemoryPolicy?: string;
  /** The port of a master on 127.0.0.1 to replicate. */
  replicaOf?: number;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const BIND_RETRY_MS = 5_000;

class PortBusyError extends Error {}

export class RedisServer {
  readonly url: string;
  private child: ChildProcess | undefined;
  private readonly clients = new Set<Redis>();

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts redis-server and resolves once it answers PING (after any AOF has loaded). */
  async start(): Promise<void> {
    const deadline = Date.now() + BIND_RETRY_MS;
    for (;;) {
      try {
        this.child = await boot(this.port, this.args);
        return;
      } catch (err) {
        // After a stop or kill the old socket can linger for a moment; the port is ours, so wait for it.
        if (!(err instanceof PortBusyError) || Date.now() >= deadline) throw err;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.child) await terminate(this.child, STOP_GRACE_MS);
  }

  async kill(): Promise<void> {
    if (this.child) await kill(this.child);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Freezes the server without closing its sockets, like a Redis stuck on a slow disk. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** A new client for assertions; it reconnects across restarts and is closed by cleanup(). */
  client(): Redis {
    const client = new Redis(this.url);
    this.clients.add(client);
    return client;
  }

  async cleanup(): Promise<void> {
    // disconnect, not quit: quit would wait forever on a paused or stopped server.
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'replyflow-redis-'));
  const appendonly = opts.appendonly ?? true;
  const args = [
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', appendonly ? 'yes' : 'no',
    ...(appendonly ? ['--appendfsync', 'always'] : []),
    '--maxmemory-policy', opts.maxmemoryPolicy ?? 'noeviction',
    ...(opts.maxmemory ? ['--maxmemory', opts.maxmemory] : []),
    ...(opts.replicaOf ? ['--replicaof', '127.0.0.1', String(opts.replicaOf)] : []),
  ];
  const server = new RedisServer(await freePort(), dir, args);
  try {
    await server.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

async function boot(port: number, args: string[]): Promise<ChildProcess> {
  let child: ChildProcess;
  try {
    child = await spawnTracked('redis-server', ['--port', String(port), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server)');
    }
    throw err;
  }
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  try {
    await waitUntil(
      async () => {
        if (hasExited(child)) {
          const message = `redis-server on port ${port} exited early:\n${output}`;
          throw /address already in use/i.test(output) ? new PortBusyError(message) : new Error(message);
        }
        return (await answersPing(port)) || undefined;
      },
      READY_TIMEOUT_MS,
      () => `redis-server on port ${port} never answered PING:\n${output}`,
    );
  } catch (err) {
    await kill(child);
    throw err;
  }
  // Only the startup output matters for error messages; drop it from here on.
  child.stdout?.removeAllListeners('data').resume();
  child.stderr?.removeAllListeners('data').resume();
  return child;
}

async function answersPing(port: number): Promise<boolean> {
  const probe = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 1_000,
    // Whatever holds the port may accept and never answer; a loading Redis answers PING with LOADING.
    commandTimeout: 1_000,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  probe.on('error', () => {}); // refused connections are expected while the server boots
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** A private redis-server for the enclosing describe block: started before its tests, removed after them. */
export function useRedisServer(opts: RedisOptions = {}): { readonly server: RedisServer; readonly client: Redis } {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  before(async () => {
    server = await startRedis(opts);
    client = server.client();
  });
  after(() => server?.cleanup());
  return {
    get server() {
      return server!;
    },
    get client() {
      return client!;
    },
  };
}
