/**
 * A private Redis Cluster for integration tests, built from Debian's `redis-server` and `redis-cli`
 * (7.x): `masters * (1 + replicasPerMaster)` servers on free 127.0.0.1 ports, each with its own
 * directory under one temp root, joined with `redis-cli --cluster create`.
 *
 * Server settings, and why (they make failover fast and, above all, deterministic):
 * - `cluster-node-timeout 2000`: a killed master is flagged FAIL about 2 s after its last pong, and
 *   its replica wins the election 0.5 to 1 s later (plus 1 s per rank when a master has several).
 * - `cluster-replica-validity-factor 0`: a replica always stands for election, however long since it
 *   last heard from its master. With the default (10), a replica on a starved CI machine can judge
 *   its data too old and never fail over, leaving the cluster down for good.
 * - `cluster-allow-replica-migration no`: replicas stay with the master `--cluster create` gave them,
 *   so the topology a test inspects is the one it created.
 * - `cluster-require-full-coverage yes` (the default, stated): `cluster_state:ok` means every one of
 *   the 16384 slots is served, which is what the waits below rely on.
 * - `cluster-port` is a free port of its own: the default bus port is port + 10000, which for an
 *   ephemeral port is often above 65535 or taken.
 * - `repl-diskless-sync-delay 0`: Redis 7 syncs new replicas diskless after waiting 5 s for more
 *   replicas to join; 0 starts the initial sync at once.
 * - `save ""`, `appendonly yes` with `appendfsync always` (unless `appendonly: false`), and
 *   `maxmemory-policy noeviction`: as for the standalone harness (redis-server.ts).
 *
 * Every process is spawned with spawnTracked, so it is killed when the test process exits.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import { hasExited, kill, spawnTracked, waitForExit } from './child.js';
import { freePort } from './free-port.js';
import { sleep, waitUntil } from './wait.js';

export interface RedisClusterOptions {
  /** Masters, at least 3 (what `redis-cli --cluster create` requires). Default 3. */
  masters?: number;
  /** Replicas of every master. Default 0. */
  replicasPerMaster?: number;
  /** Append-only file with `appendfsync always`. Default true. */
  appendonly?: boolean;
}

export type ClusterRole = 'master' | 'replica';

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** The cluster bus port (`cluster-port`). */
  readonly busPort: number;
  readonly dir: string;
  pid: number;
  /** The node's cluster id (40 hex characters). */
  id: string;
  /** As the node itself last reported it (CLUSTER NODES); updated by refresh() and the waits. */
  role: ClusterRole;
  /** For a replica, the id of its master; undefined for a master. */
  masterId: string | undefined;
  /** False once killNode() has killed it (or the process died on its own). */
  alive: boolean;
}

/** One line of CLUSTER NODES. */
export interface ClusterNodesEntry {
  id: string;
  host: string;
  port: number;
  flags: string[];
  role: ClusterRole;
  masterId: string | undefined;
  /** Served slot ranges, inclusive. */
  slots: Array<[number, number]>;
}

const HOST = '127.0.0.1';
const SLOTS = 16384;
const NODE_TIMEOUT_MS = 2_000;
const BOOT_TIMEOUT_MS = 10_000;
const BOOT_ATTEMPTS = 5;
const CREATE_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 20_000;
const FAILOVER_TIMEOUT_MS = 20_000;
const LOG_LINES = 60;

class PortBusyError extends Error {}

interface Managed {
  node: ClusterNode;
  child: ChildProcess;
  log: string[];
  args: string[];
}

export class RedisCluster {
  private readonly clients = new Set<Cluster>();
  private cleaned = false;

  constructor(
    readonly root: string,
    readonly masters: number,
    readonly replicasPerMaster: number,
    private readonly managed: Managed[],
  ) {}

  /** `host:port,host:port,...` of every node (dead ones too), for REDIS_CLUSTER_NODES. */
  get seeds(): string {
    return this.managed.map(({ node }) => `${node.host}:${node.port}`).join(',');
  }

  get nodes(): ClusterNode[] {
    return this.managed.map((m) => m.node);
  }

  /** Environment for a process under test: `REDIS_CLUSTER_NODES`. */
  env(): { REDIS_CLUSTER_NODES: string } {
    return { REDIS_CLUSTER_NODES: this.seeds };
  }

  node(port: number): ClusterNode {
    const found = this.managed.find((m) => m.node.port === port);
    if (!found) throw new Error(`no cluster node on port ${port}`);
    return found.node;
  }

  aliveNodes(): ClusterNode[] {
    return this.nodes.filter((n) => n.alive);
  }

  /** Live masters, by the roles last read (call refresh() first after a topology change). */
  liveMasters(): ClusterNode[] {
    return this.aliveNodes().filter((n) => n.role === 'master');
  }

  /** A new ioredis Cluster client seeded with every live node; closed by cleanup(). */
  client(options: ClusterOptions = {}): Cluster {
    const seeds = this.aliveNodes().map((n) => ({ host: n.host, port: n.port }));
    const client = new Cluster(seeds, options);
    this.clients.add(client);
    return client;
  }

  /** One command sent to one node over a short-lived connection. */
  async command(port: number, command: string, ...args: Array<string | number>): Promise<unknown> {
    return withConnection(port, (redis) => redis.call(command, ...args));
  }

  /** CLUSTER INFO of one node, as a map of its fields. */
  async clusterInfo(port: number): Promise<Record<string, string>> {
    return parseFields(String(await this.command(port, 'CLUSTER', 'INFO')));
  }

  /** CLUSTER NODES as one node sees it. */
  async clusterNodes(port: number): Promise<ClusterNodesEntry[]> {
    return parseClusterNodes(String(await this.command(port, 'CLUSTER', 'NODES')));
  }

  /** Re-reads every live node's role and master from its own CLUSTER NODES line. */
  async refresh(): Promise<ClusterNode[]> {
    this.markDead();
    await Promise.all(
      this.aliveNodes().map(async (node) => {
        const self = (await this.clusterNodes(node.port)).find((e) => e.flags.includes('myself'));
        if (!self) throw new Error(`CLUSTER NODES on port ${node.port} has no myself line`);
        node.id = self.id;
        node.role = self.role;
        node.masterId = self.masterId;
      }),
    );
    return this.nodes;
  }

  async slotOf(key: string): Promise<number> {
    return Number(await this.command(this.anyAlive().port, 'CLUSTER', 'KEYSLOT', key));
  }

  /** The master serving a slot, as a live node sees it (a master's view when one is alive). */
  async masterOfSlot(slot: number): Promise<ClusterNode> {
    const viewer = this.liveMasters()[0] ?? this.anyAlive();
    const owner = (await this.clusterNodes(viewer.port)).find(
      (e) => e.role === 'master' && e.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    if (!owner) throw new Error(`no master serves slot ${slot} (as seen from port ${viewer.port})`);
    return this.node(owner.port);
  }

  async masterOfKey(key: string): Promise<ClusterNode> {
    return this.masterOfSlot(await this.slotOf(key));
  }

  /** Keys matching `pattern` on every live master (SCAN on each): port → count, zeros included. */
  async keysPerNode(pattern = '*'): Promise<Map<number, number>> {
    await this.refresh();
    const counts = new Map<number, number>();
    for (const node of this.liveMasters()) {
      counts.set(
        node.port,
        await withConnection(node.port, async (redis) => {
          let count = 0;
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            cursor = next;
            count += keys.length;
          } while (cursor !== '0');
          return count;
        }),
      );
    }
    return counts;
  }

  /** Ports of the live masters holding at least one key matching `pattern`. */
  async mastersHoldingKeys(pattern = '*'): Promise<number[]> {
    return [...(await this.keysPerNode(pattern))].filter(([, count]) => count > 0).map(([port]) => port);
  }

  /** kill -9 of one node; resolves once the process is gone. */
  async killNode(port: number): Promise<void> {
    const managed = this.managed.find((m) => m.node.port === port);
    if (!managed) throw new Error(`no cluster node on port ${port}`);
    await kill(managed.child);
    managed.node.alive = false;
  }

  /**
   * Starts a killed node again on its port and folder: it rejoins from its
   * nodes.conf, as a replica of whichever node took over its slots.
   */
  async restartNode(port: number, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<void> {
    const managed = this.managed.find((m) => m.node.port === port);
    if (!managed) throw new Error(`no cluster node on port ${port}`);
    if (managed.node.alive) throw new Error(`node ${port} is still running`);
    const { child, log } = await boot(port, managed.args);
    Object.assign(managed, { child, log });
    managed.node.pid = child.pid!;
    managed.node.alive = true;
    await this.waitForOk(timeoutMs);
  }

  /**
   * Waits until a replica of the killed master at `deadPort` has been promoted: every survivor sees
   * the dead node flagged `fail`, the same former replica as master of slots, and reports
   * `cluster_state:ok` with all 16384 slots ok. Resolves with the promoted node (roles refreshed).
   */
  async waitForFailover(deadPort: number, timeoutMs = FAILOVER_TIMEOUT_MS): Promise<ClusterNode> {
    this.markDead();
    const dead = this.node(deadPort);
    if (dead.alive) throw new Error(`node ${deadPort} is still running; killNode() it first`);
    const candidates = this.aliveNodes().filter((n) => n.masterId === dead.id);
    if (candidates.length === 0) throw new Error(`node ${deadPort} had no live replica to promote`);
    const candidateIds = new Set(candidates.map((n) => n.id));
    let last = 'nothing read yet';

    const promotedId = await waitUntil(
      async () => {
        try {
          let agreed: string | undefined;
          for (const node of this.aliveNodes()) {
            const view = await this.clusterNodes(node.port);
            const deadEntry = view.find((e) => e.id === dead.id);
            if (deadEntry && !deadEntry.flags.includes('fail')) {
              last = `port ${node.port} sees ${deadPort} as ${deadEntry.flags.join(',')}`;
              return undefined;
            }
            const promoted = view.filter((e) => candidateIds.has(e.id) && e.role === 'master' && e.slots.length > 0);
            if (promoted.length !== 1 || (agreed !== undefined && promoted[0]!.id !== agreed)) {
              last = `port ${node.port} sees no single promoted replica of ${deadPort}`;
              return undefined;
            }
            agreed = promoted[0]!.id;
            const info = await this.clusterInfo(node.port);
            if (!clusterOk(info)) {
              last = `port ${node.port}: ${summarize(info)}`;
              return undefined;
            }
          }
          return agreed;
        } catch (err) {
          last = (err as Error).message;
          return undefined;
        }
      },
      timeoutMs,
      () => `no failover of ${deadPort}: ${last}\n${this.logs()}`,
      100,
    );
    await this.refresh();
    return this.nodes.find((n) => n.id === promotedId)!;
  }

  /** Waits until every live node reports `cluster_state:ok` with all slots ok and agrees on the topology. */
  async waitForOk(timeoutMs = CONVERGE_TIMEOUT_MS): Promise<void> {
    this.markDead();
    let last = 'nothing read yet';
    await waitUntil(
      async () => {
        try {
          const problem = await this.convergenceProblem();
          last = problem ?? '';
          return problem === undefined ? true : undefined;
        } catch (err) {
          last = (err as Error).message;
          return undefined;
        }
      },
      timeoutMs,
      () => `cluster not ok: ${last}\n${this.logs()}`,
      100,
    );
    await this.refresh();
  }

  /** The last lines each server logged, for failure messages. */
  logs(): string {
    return this.managed
      .map(({ node, log }) => `--- redis-server ${node.port} (${node.alive ? node.role : 'dead'}) ---\n${log.join('\n')}`)
      .join('\n');
  }

  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    // disconnect, not quit: quit would wait on a dead or failing-over node.
    for (const client of this.clients) client.disconnect();
    this.clients.clear();
    await Promise.all(this.managed.map(({ child }) => kill(child)));
    for (const { node } of this.managed) node.alive = false;
    await rm(this.root, { recursive: true, force: true });
  }

  private anyAlive(): ClusterNode {
    const node = this.aliveNodes()[0];
    if (!node) throw new Error('no live cluster node');
    return node;
  }

  private markDead(): void {
    for (const { node, child } of this.managed) if (hasExited(child)) node.alive = false;
  }

  /** undefined when the live nodes form a healthy, converged cluster; else what is still wrong. */
  private async convergenceProblem(): Promise<string | undefined> {
    const alive = this.aliveNodes();
    const views = new Map<number, ClusterNodesEntry[]>();
    for (const node of alive) {
      const info = await this.clusterInfo(node.port);
      if (!clusterOk(info)) return `port ${node.port}: ${summarize(info)}`;
      views.set(node.port, await this.clusterNodes(node.port));
    }
    // Every live node must see the same live masters and the same replica → master links,
    // as each node reports for itself; otherwise a failover vote could still go astray.
    const selfViews = new Map<string, ClusterNodesEntry>();
    for (const [port, view] of views) {
      const self = view.find((e) => e.flags.includes('myself'));
      if (!self) return `port ${port}: no myself line`;
      selfViews.set(self.id, self);
    }
    for (const [port, view] of views) {
      for (const [id, self] of selfViews) {
        const seen = view.find((e) => e.id === id);
        if (!seen) return `port ${port} does not know node ${self.port} yet`;
        if (seen.role !== self.role || seen.masterId !== self.masterId) {
          return `port ${port} sees ${self.port} as ${seen.role}, it says ${self.role}`;
        }
        if (seen.flags.some((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr')) {
          return `port ${port} flags ${self.port} ${seen.flags.join(',')}`;
        }
      }
    }
    const masters = [...selfViews.values()].filter((e) => e.role === 'master' && e.slots.length > 0);
    if (masters.length !== this.masters) return `${masters.length} live masters serve slots, expected ${this.masters}`;
    for (const node of alive) {
      const self = [...selfViews.values()].find((e) => e.port === node.port)!;
      if (self.role !== 'replica') continue;
      const replication = parseFields(String(await this.command(node.port, 'INFO', 'replication')));
      if (replication.master_link_status !== 'up') {
        return `replica ${node.port}: master_link_status:${replication.master_link_status}`;
      }
    }
    return undefined;
  }
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicasPerMaster = opts.replicasPerMaster ?? 0;
  const appendonly = opts.appendonly ?? true;
  if (!Number.isInteger(masters) || masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  if (!Number.isInteger(replicasPerMaster) || replicasPerMaster < 0) throw new Error('replicasPerMaster must be >= 0');

  const root = await mkdtemp(join(tmpdir(), 'replyflow-redis-cluster-'));
  const managed: Managed[] = [];
  const cluster = new RedisCluster(root, masters, replicasPerMaster, managed);
  try {
    const usedPorts = new Set<number>();
    const count = masters * (1 + replicasPerMaster);
    const started = await Promise.allSettled(
      Array.from({ length: count }, () => bootNode(root, usedPorts, appendonly)),
    );
    for (const result of started) if (result.status === 'fulfilled') managed.push(result.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    await createCluster(managed.map((m) => m.node), replicasPerMaster);
    await cluster.waitForOk();
    return cluster;
  } catch (err) {
    await cluster.cleanup();
    throw err;
  }
}

async function createCluster(nodes: ClusterNode[], replicasPerMaster: number): Promise<void> {
  const args = [
    '--cluster', 'create',
    ...nodes.map((n) => `${n.host}:${n.port}`),
    '--cluster-replicas', String(replicasPerMaster),
    '--cluster-yes',
  ];
  let child: ChildProcess;
  try {
    child = await spawnTracked('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('redis-cli not found on PATH; install it (Debian/Ubuntu: apt-get install redis-tools)');
    }
    throw err;
  }
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let status;
  try {
    status = await waitForExit(child, CREATE_TIMEOUT_MS);
  } catch {
    await kill(child);
    throw new Error(`redis-cli --cluster create did not finish within ${CREATE_TIMEOUT_MS} ms:\n${output}`);
  }
  if (status.code !== 0 || !/\[OK\] All 16384 slots covered/.test(output)) {
    throw new Error(`redis-cli --cluster create failed (${status.code ?? status.signal}):\n${output}`);
  }
}

/** Starts one server on fresh free ports, retrying with new ports when one was taken meanwhile. */
async function bootNode(root: string, usedPorts: Set<number>, appendonly: boolean): Promise<Managed> {
  for (let attempt = 1; ; attempt++) {
    const port = await uniqueFreePort(usedPorts);
    const busPort = await uniqueFreePort(usedPorts);
    const dir = join(root, String(port));
    await mkdir(dir, { recursive: true });
    const args = [
      '--port', String(port),
      '--bind', HOST,
      '--dir', dir,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-port', String(busPort),
      '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
      '--cluster-replica-validity-factor', '0',
      '--cluster-allow-replica-migration', 'no',
      '--cluster-require-full-coverage', 'yes',
      '--repl-diskless-sync-delay', '0',
      '--save', '',
      '--appendonly', appendonly ? 'yes' : 'no',
      ...(appendonly ? ['--appendfsync', 'always'] : []),
      '--maxmemory-policy', 'noeviction',
    ];
    try {
      const { child, log } = await boot(port, args);
      const node: ClusterNode = {
        host: HOST,
        port,
        busPort,
        dir,
        pid: child.pid!,
        id: '',
        role: 'master',
        masterId: undefined,
        alive: true,
      };
      return { node, child, log, args };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (!(err instanceof PortBusyError) || attempt >= BOOT_ATTEMPTS) throw err;
    }
  }
}

async function uniqueFreePort(used: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (!used.has(port)) {
      used.add(port);
      return port;
    }
  }
}

async function boot(port: number, args: string[]): Promise<{ child: ChildProcess; log: string[] }> {
  let child: ChildProcess;
  try {
    child = await spawnTracked('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server)');
    }
    throw err;
  }
  // Keep the last lines the server logs (failover, elections) for failure messages.
  const log: string[] = [];
  let partial = '';
  const onData = (chunk: Buffer): void => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    log.push(...lines);
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  try {
    await waitUntil(
      async () => {
        if (hasExited(child)) {
          const message = `redis-server on port ${port} exited early:\n${log.join('\n')}${partial}`;
          throw /address already in use/i.test(log.join('\n') + partial) ? new PortBusyError(message) : new Error(message);
        }
        return (await answersPing(port)) || undefined;
      },
      BOOT_TIMEOUT_MS,
      () => `redis-server on port ${port} never answered PING:\n${log.join('\n')}`,
    );
  } catch (err) {
    await kill(child);
    throw err;
  }
  return { child, log };
}

async function answersPing(port: number): Promise<boolean> {
  try {
    return (await withConnection(port, (redis) => redis.ping())) === 'PONG';
  } catch {
    return false;
  }
}

async function withConnection<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {}); // refused connections are expected for booting or killed nodes
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

function clusterOk(info: Record<string, string>): boolean {
  return (
    info.cluster_state === 'ok' &&
    info.cluster_slots_assigned === String(SLOTS) &&
    info.cluster_slots_ok === String(SLOTS)
  );
}

function summarize(info: Record<string, string>): string {
  return ['cluster_state', 'cluster_slots_assigned', 'cluster_slots_ok', 'cluster_slots_pfail', 'cluster_slots_fail', 'cluster_known_nodes']
    .map((k) => `${k}:${info[k]}`)
    .join(' ');
}

function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return fields;
}

export function parseClusterNodes(text: string): ClusterNodesEntry[] {
  const entries: ClusterNodesEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length < 8) continue;
    const [id, address, flagText, master] = parts as [string, string, string, string];
    // ip:port@cport[,hostname]
    const hostPort = address.split('@')[0]!;
    const colon = hostPort.lastIndexOf(':');
    const flags = flagText.split(',');
    const slots: Array<[number, number]> = [];
    for (const range of parts.slice(8)) {
      if (range.startsWith('[')) continue; // importing / migrating markers
      const [from, to] = range.split('-');
      slots.push([Number(from), Number(to ?? from)]);
    }
    entries.push({
      id,
      host: hostPort.slice(0, colon),
      port: Number(hostPort.slice(colon + 1)),
      flags,
      role: flags.includes('slave') ? 'replica' : 'master',
      masterId: master === '-' ? undefined : master,
      slots,
    });
  }
  return entries;
}
