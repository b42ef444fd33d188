import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { INGEST_OUTCOMES } from '@replyflow/shared';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { get } from '../helpers/http.js';
import { metricValue, startPipeline } from '../helpers/pipeline.js';
import type { Behaviour } from '../helpers/receiver.js';
import { repoRoot } from '../helpers/repo-root.js';
import { waitUntil } from '../helpers/wait.js';

const DASHBOARD = join(repoRoot, 'deploy', 'grafana', 'dashboards', 'replyflow.json');
const ALERTS = join(repoRoot, 'deploy', 'prometheus', 'alerts.yml');
const DATASOURCE = join(repoRoot, 'deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yml');
const DASHBOARD_PROVIDER = join(repoRoot, 'deploy', 'grafana', 'provisioning', 'dashboards', 'replyflow.yml');

// PromQL's aggregations, functions and keywords: identifiers that are not metric names.
const PROMQL_WORDS = new Set(
  `sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio
  by without on ignoring group_left group_right bool and or unless offset atan2 le inf nan
  abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year
  days_in_month delta deriv exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
  histogram_stddev histogram_stdvar histogram_sum holt_winters double_exponential_smoothing hour idelta
  increase irate label_join label_replace ln log2 log10 minute month predict_linear rate resets round
  scalar sgn sort sort_desc sort_by_label sort_by_label_desc sqrt time timestamp vector year
  avg_over_time min_over_time max_over_time sum_over_time count_over_time quantile_over_time
  stddev_over_time stdvar_over_time last_over_time present_over_time mad_over_time
  acos acosh asin asinh atan atanh cos cosh sin sinh tan tanh deg rad pi`.split(/\s+/),
);

// Series Prometheus makes itself for every target; no process exports them.
const PROMETHEUS_GENERATED = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added']);

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** The metric names a PromQL expression reads. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/#.*$/gm, '')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1 ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w:$.])([a-zA-Z_:][\w:]*)(?=\s*[{[)]|\s|$)/g)) {
    if (!PROMQL_WORDS.has(match[1]!.toLowerCase())) names.add(match[1]!);
  }
  return [...names];
}

/** Every `metric{...}` selector in an expression, with its label matchers. */
function selectors(expr: string): Selector[] {
  return [...expr.matchAll(/(?<![\w:$.])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)].map((match) => ({
    metric: match[1]!,
    matchers: [...match[2]!.matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => ({
      label: m[1]!,
      op: m[2]!,
      value: m[3]!,
    })),
  }));
}

/** The PromQL of every panel target (and template query) of a Grafana dashboard. */
function dashboardExpressions(dashboard: any): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') exprs.push(value);
        else walk(value);
      }
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (variable.type === 'query' && typeof query === 'string') exprs.push(query.replace(/^\w+\((.*)\)$/s, '$1'));
  }
  return exprs;
}

function alertRules(): { exprs: string[]; recorded: Set<string> } {
  const rules = (parseYaml(readFileSync(ALERTS, 'utf8')).groups ?? []).flatMap((group: any) => group.rules ?? []);
  return {
    exprs: rules.map((rule: any) => String(rule.expr)),
    recorded: new Set(rules.filter((rule: any) => rule.record).map((rule: any) => String(rule.record))),
  };
}

type Sample = { name: string; labels: Record<string, string> };

function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s/.exec(line);
      const labels = Object.fromEntries([...(match?.[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name: match?.[1] ?? '', labels };
    });
}

/** Problems with the expressions against scraped samples: unknown metrics, label values never seen. */
function problems(source: string, exprs: string[], scraped: Sample[], recorded: Set<string>): string[] {
  const found: string[] = [];
  const byName = new Map<string, Sample[]>();
  for (const sample of scraped) byName.set(sample.name, [...(byName.get(sample.name) ?? []), sample]);
  for (const expr of exprs) {
    for (const name of metricNames(expr)) {
      if (PROMETHEUS_GENERATED.has(name) || recorded.has(name)) continue;
      if (!byName.has(name)) found.push(`${source}: ${name} is not exported (in ${expr.trim()})`);
    }
    for (const { metric, matchers } of selectors(expr)) {
      const series = byName.get(metric);
      if (!series) continue;
      // job and instance are target labels Prometheus adds; Grafana variables are not values.
      const checked = matchers.filter((m) => !['job', 'instance'].includes(m.label) && !m.value.includes('$'));
      const matches = (sample: Sample) =>
        checked.every(({ label, op, value }) => {
          const actual = sample.labels[label] ?? '';
          if (op === '=') return actual === value;
          if (op === '=~') return new RegExp(`^(?:${value})$`).test(actual);
          return true; // a negative matcher cannot make a query silently empty on its own
        });
      if (!series.some(matches)) found.push(`${source}: no ${metric} series matches {${checked.map((m) => `${m.label}${m.op}"${m.value}"`).join(', ')}}`);
    }
  }
  return found;
}

describe('dashboard and alert queries', () => {
  test('the metric-name extractor reads PromQL', () => {
    const cases: [string, string[]][] = [
      ['sum by (outcome) (rate(replyflow_ingest_requests_total[$__rate_interval]))', ['replyflow_ingest_requests_total']],
      ['histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{x="y"}[5m])))', ['a_seconds_bucket']],
      ['absent(up{job="ingest"} == 1)', ['up']],
      ['sum(rate(a_total{o="b"}[5m])) / sum(rate(a_total[5m])) > 0.05 or b_total offset 5m', ['a_total', 'b_total']],
      ['max by (queue, state) (replyflow_queue_jobs)', ['replyflow_queue_jobs']],
      ['process_resident_memory_bytes', ['process_resident_memory_bytes']],
      ['max(x:recorded:rate5m) without (instance)', ['x:recorded:rate5m']],
    ];
    for (const [expr, names] of cases) assert.deepEqual(metricNames(expr).sort(), names, expr);
  });

  test('the dashboard is provisioned against the prometheus datasource by uid', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    assert.equal(dashboard.uid, 'replyflow');
    assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
    const panels: any[] = dashboard.panels.filter((panel: any) => panel.type !== 'row');
    assert.equal(new Set(dashboard.panels.map((panel: any) => panel.id)).size, dashboard.panels.length, 'panel ids repeat');
    for (const panel of panels) {
      assert.equal(panel.datasource?.uid, 'prometheus', `panel "${panel.title}" datasource`);
      assert.ok(panel.targets?.length > 0, `panel "${panel.title}" has no query`);
      for (const target of panel.targets) assert.equal(target.datasource?.uid, 'prometheus', `panel "${panel.title}" target datasource`);
    }

    const datasources = parseYaml(readFileSync(DATASOURCE, 'utf8')).datasources;
    const prometheus = datasources.find((ds: any) => ds.uid === 'prometheus');
    assert.ok(prometheus, 'no datasource with uid prometheus');
    assert.equal(prometheus.type, 'prometheus');
    assert.equal(prometheus.url, 'http://prometheus:9090');
    assert.equal(prometheus.isDefault, true);
    const provider = parseYaml(readFileSync(DASHBOARD_PROVIDER, 'utf8')).providers[0];
    assert.equal(provider.type, 'file');
    assert.equal(provider.options.path, '/var/lib/grafana/dashboards');
  });

  test('the dashboard covers traffic, delivery, queues, Redis and every replica', () => {
    const used = new Set(dashboardExpressions(JSON.parse(readFileSync(DASHBOARD, 'utf8'))).flatMap(metricNames));
    for (const name of [
      'replyflow_ingest_requests_total',
      'replyflow_ingest_request_duration_seconds_bucket',
      'replyflow_jobs_total',
      'replyflow_event_lag_seconds_bucket',
      'replyflow_queue_jobs',
      'replyflow_queue_oldest_waiting_seconds',
      'replyflow_rate_limited_total',
      'replyflow_redis_up',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      assert.ok(used.has(name), `no dashboard panel queries ${name}`);
    }
  });

  test('every metric the dashboard and the alert rules query is exported, after traffic of every outcome', async () => {
    const dashboardExprs = dashboardExpressions(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
    const alerts = alertRules();
    assert.ok(alerts.exprs.length > 0, 'alerts.yml has no rules');

    const event = (time: number) => withMessageTime(loadFixture('incoming-text').json, time);
    const DEAD_LETTER_TIME = 900;
    const RETRY_TIME = 901;
    const failedOnce = new Set<string>();
    const receiver: Behaviour = (req) => {
      const time = req.json?.data?.messageTime;
      if (time === DEAD_LETTER_TIME) return { status: 400, body: 'rejected' };
      if (time === RETRY_TIME && !failedOnce.has(req.json.id)) {
        failedOnce.add(req.json.id);
        return { status: 500, body: 'try again' };
      }
      return { status: 200, body: 'ok' };
    };
    const p = await startPipeline({
      receiver,
      ingestEnv: { BODY_LIMIT: '4kb' },
      // A limit below the burst below makes forwards wait for slots.
      workerEnv: { FORWARD_RATE_LIMIT: '4' },
    });
    try {
      const expectStatus = async (label: string, pending: Promise<{ status: number; body: string }>, status: number) => {
        const res = await pending;
        assert.equal(res.status, status, `${label}: ${res.body}`);
      };
      const times = [1, 2, 3, 4, 5, 6, DEAD_LETTER_TIME, RETRY_TIME];
      for (const time of times) await expectStatus(`event ${time}`, p.send(event(time)), 202);
      await expectStatus('duplicate', p.send(event(1)), 200);
      await expectStatus('payload_too_large', p.send('x'.repeat(8 * 1024)), 413);
      await expectStatus('unsupported_media_type', p.send(event(7), { 'content-type': 'text/plain' }), 415);
      await expectStatus('invalid_signature', p.send(event(8), { 'x-webhook-signature': 'wrong' }), 401);
      await expectStatus('invalid_json', p.send('{"not json'), 400);
      await expectStatus('invalid_payload', p.send({ hello: 'world' }), 422);
      await expectStatus('method_not_allowed', get(p.webhookUrl), 405);

      // One delivery per event, and one more for the retried one.
      await p.receiver.waitFor(times.length + 1, 30_000);
      const workerText = () => get(p.workerMetricsUrl).then((res) => res.body);
      await waitUntil(
        async () => {
          const text = await workerText();
          const done =
            (metricValue(text, 'replyflow_jobs_total', { outcome: 'completed' }) ?? 0) >= times.length - 1 &&
            (metricValue(text, 'replyflow_jobs_total', { outcome: 'retried' }) ?? 0) >= 1 &&
            (metricValue(text, 'replyflow_jobs_total', { outcome: 'dead_lettered' }) ?? 0) >= 1 &&
            (metricValue(text, 'replyflow_queue_jobs', { queue: 'dead-letter', state: 'waiting' }) ?? 0) >= 1;
          return done || undefined;
        },
        15_000,
        () => 'the worker never counted the completed, retried and dead-lettered attempts',
      );

      // Redis stopped: the ingest refuses with 503 unavailable until it is back.
      await p.redis.stop();
      await expectStatus('unavailable', p.send(event(10)), 503);
      await p.redis.restart();
      for (const url of [p.webhookUrl.replace('/webhooks/notifyer', '/readyz'), p.workerMetricsUrl.replace('/metrics', '/readyz')]) {
        await waitUntil(async () => (await get(url)).status === 200 || undefined, 15_000, () => `${url} never became ready again`);
      }

      const ingestText = (await get(p.ingestMetricsUrl)).body;
      const workerTextNow = await workerText();
      // Every outcome the traffic above caused: all but internal_error, which only a bug in the ingest causes.
      for (const outcome of INGEST_OUTCOMES.filter((outcome) => outcome !== 'internal_error')) {
        assert.ok((metricValue(ingestText, 'replyflow_ingest_requests_total', { outcome }) ?? 0) >= 1, `no ${outcome} counted`);
      }
      assert.ok((metricValue(workerTextNow, 'replyflow_rate_limited_total', { limit: 'forward' }) ?? 0) >= 1, 'the forward rate limit never waited');
      assert.equal(metricValue(ingestText, 'replyflow_redis_up'), 1);

      const scraped = samples(`${ingestText}\n${workerTextNow}`);
      const found = [
        ...problems('replyflow.json', dashboardExprs, scraped, new Set()),
        ...problems('alerts.yml', alerts.exprs, scraped, alerts.recorded),
      ];
      assert.deepEqual(found, []);
    } finally {
      await p.stop();
    }
  });
});
