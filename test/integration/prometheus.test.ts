import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { hasExited, spawnTracked, terminate } from '../helpers/child.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { freePort } from '../helpers/free-port.js';
import { get } from '../helpers/http.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { repoRoot } from '../helpers/repo-root.js';
import { waitUntil } from '../helpers/wait.js';

const RULES = 'deploy/prometheus/alerts.yml';
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml';
const CONFIG = 'deploy/prometheus/prometheus.yml';
const MISSING = 'is not installed: run `apt-get install prometheus` (the Debian package has prometheus and promtool; CI installs it)';

function promtool(...args: string[]): void {
  const result = spawnSync('promtool', args, { cwd: repoRoot, encoding: 'utf8' });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') assert.fail(`promtool ${MISSING}`);
  if (result.error) throw result.error;
  assert.equal(result.status, 0, `promtool ${args.join(' ')}:\n${result.stdout}${result.stderr}`);
}

/** Alert names declared in a rule file; a line scan is enough for this file's block style. */
async function declaredAlerts(): Promise<string[]> {
  const text = await readFile(join(repoRoot, RULES), 'utf8');
  return [...text.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]!);
}

describe('prometheus configuration', () => {
  test('promtool accepts the scrape config and the rule file it references', () => {
    promtool('check', 'config', CONFIG);
  });

  test('promtool accepts the alert rules', () => {
    promtool('check', 'rules', RULES);
  });

  test('promtool rule unit tests pass', () => {
    promtool('test', 'rules', RULE_TESTS);
  });

  test('the unit tests make every alert fire at least once', async () => {
    const tests = await readFile(join(repoRoot, RULE_TESTS), 'utf8');
    const alerts = await declaredAlerts();
    assert.ok(alerts.length >= 7, `only ${alerts.length} alerts in ${RULES}`);
    for (const alert of alerts) {
      const fires = new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`);
      assert.match(tests, fires, `${RULE_TESTS} has no case where ${alert} fires`);
    }
  });
});

interface PromRule {
  type: string;
  name: string;
  query: string;
  health: string;
  lastError?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

class PrometheusServer {
  readonly lines: string[] = [];

  constructor(
    readonly url: string,
    readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
    }
  }

  /** The `data` of an API answer; throws on anything but status success. */
  async api(path: string): Promise<any> {
    const res = await get(`${this.url}${path}`, {}, 2_000);
    if (res.status !== 200 || res.json?.status !== 'success') throw new Error(`GET ${path}: ${res.status} ${res.body}`);
    return res.json.data;
  }

  async query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const data = await this.api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    return data.result;
  }

  describe(): string {
    return `prometheus output:\n${this.lines.slice(-20).join('\n')}`;
  }
}

/** A throwaway Prometheus scraping the pipeline's metrics ports every second, with the real rule file. */
async function startPrometheus(p: Pipeline, dir: string): Promise<PrometheusServer> {
  const target = (url: string) => new URL(url).host;
  const config = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${JSON.stringify(join(repoRoot, RULES))}
scrape_configs:
  - job_name: ingest
    static_configs:
      - targets: [${JSON.stringify(target(p.ingestMetricsUrl))}]
  - job_name: worker
    static_configs:
      - targets: [${JSON.stringify(target(p.workerMetricsUrl))}]
`;
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  const port = await freePort();
  let child: ChildProcess;
  try {
    // No alertmanager and no remote write are configured, so nothing leaves this machine.
    child = await spawnTracked(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') assert.fail(`prometheus ${MISSING}`);
    throw err;
  }
  const server = new PrometheusServer(`http://127.0.0.1:${port}`, child);
  await waitUntil(
    async () => {
      if (hasExited(child)) throw new Error(`prometheus exited early\n${server.describe()}`);
      const res = await get(`${server.url}/-/ready`, {}, 1_000).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    10_000,
    () => `prometheus not ready on ${server.url}\n${server.describe()}`,
    100,
  );
  return server;
}

describe('a real prometheus scraping the real processes', () => {
  test('scrapes ingest and worker, counts webhooks and loads every alert rule', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replyflow-prometheus-'));
    let pipeline: Pipeline | undefined;
    let prometheus: PrometheusServer | undefined;
    try {
      const p = (pipeline = await startPipeline());
      const prom = (prometheus = await startPrometheus(p, dir));

      const up = await waitUntil(
        async () => {
          const result = await prom.query('up');
          const byJob = Object.fromEntries(result.map((s) => [s.metric.job, s.value[1]]));
          return byJob.ingest === '1' && byJob.worker === '1' ? byJob : undefined;
        },
        15_000,
        () => `both targets up\n${prom.describe()}`,
        250,
      );
      assert.deepEqual(up, { ingest: '1', worker: '1' });

      // Sent once a scrape has seen the counters at rest, so the rate can only come from these.
      const { json } = loadFixture('incoming-text');
      const base = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 5; i++) {
        const res = await p.send(withMessageTime(json, base + i));
        assert.equal(res.status, 202, res.body);
      }

      const rate = await waitUntil(
        async () => {
          const [sample] = await prom.query('sum(rate(replyflow_ingest_requests_total[30s]))');
          const value = Number(sample?.value[1]);
          return value > 0 ? value : undefined;
        },
        15_000,
        () => `a positive webhook rate\n${prom.describe()}`,
        250,
      );
      assert.ok(rate > 0);

      // Each rule has been evaluated at least once against real series, without an error.
      const declared = await declaredAlerts();
      const rules = await waitUntil(
        async () => {
          const data = await prom.api('/api/v1/rules?type=alert');
          const found: PromRule[] = data.groups.flatMap((g: { rules: PromRule[] }) => g.rules);
          return found.length === declared.length && found.every((r) => r.health !== 'unknown') ? found : undefined;
        },
        10_000,
        () => `${declared.length} alert rules evaluated\n${prom.describe()}`,
        250,
      );
      assert.deepEqual(rules.map((r) => r.name).sort(), [...declared].sort());
      for (const rule of rules) {
        assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
        assert.ok(rule.annotations?.summary, `${rule.name} has no summary`);
        assert.ok(rule.annotations?.runbook, `${rule.name} has no runbook`);
        assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, `${rule.name} severity`);
      }

      // Every series a rule selects exists in what the processes export, so no rule is silently empty.
      const selectors = new Set(rules.flatMap((r) => r.query.match(/\b(?:replyflow_\w+|up)(?:\{[^}]*\})?/g) ?? []));
      for (const selector of selectors) {
        const found = await prom.query(`count(${selector})`);
        assert.ok(found.length > 0, `no series for ${selector}`);
      }

      // A healthy pipeline raises none of them.
      const firing = await prom.query('ALERTS{alertstate="firing"}');
      assert.deepEqual(firing, []);
    } finally {
      if (prometheus) await terminate(prometheus.child, 5_000);
      await pipeline?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
