import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../packages/shared/src/config.js';
import { QUEUE_STATES, createRegistry, workerMetrics } from '../../packages/shared/src/metrics.js';
import { repoRoot } from '../helpers/repo-root.js';

// deploy/k8s, checked three ways: every resource of every kustomization there
// (each Kustomization as it is, each Component on top of the base), rendered
// from the files a fresh clone has, against the Kubernetes and KEDA schemas
// (kubernetes-models; the PodMonitor against an excerpt of its CRD), the
// contract's operational rules, and, where kubectl is installed, the renderer
// below against `kubectl kustomize`.

type Obj = Record<string, any>;
interface Resource extends Obj {
  apiVersion: string;
  kind: string;
  metadata: Obj & { name: string; namespace?: string };
}

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const idOf = (r: Resource) => `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;

// ---------------------------------------------------------------------------
// A small kustomize: the features deploy/k8s uses, the way kustomize 5 does
// them, and an error for anything else. Order as in kustomize: resources,
// then components (which see everything accumulated so far), patches,
// namespace, images. No generators: no Secret is made from files here.

const filesRead = new Set<string>();

function readDocs(file: string): Resource[] {
  filesRead.add(file);
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Resource | null;
    return value ? [value] : [];
  });
}

const kustomizationFields = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'images', 'patches']);
const kustomizationApi = { Kustomization: 'kustomize.config.k8s.io/v1beta1', Component: 'kustomize.config.k8s.io/v1alpha1' };
const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass']);

function accumulate(dir: string, kind: 'Kustomization' | 'Component', inherited: Resource[]): Resource[] {
  const file = join(dir, 'kustomization.yaml');
  const [k] = readDocs(file);
  assert.ok(k, `${file} is empty`);
  assert.equal(k.kind, kind, `${file}: kind`);
  assert.equal(k.apiVersion, kustomizationApi[kind], `${file}: apiVersion`);
  for (const key of Object.keys(k)) assert.ok(kustomizationFields.has(key), `${file}: \`${key}\` is not supported by this test's renderer`);

  let resources = [...inherited];
  for (const entry of (k.resources ?? []) as string[]) {
    const path = resolve(dir, entry);
    resources.push(...(statSync(path).isDirectory() ? accumulate(path, 'Kustomization', []) : readDocs(path)));
  }
  for (const entry of (k.components ?? []) as string[]) resources = accumulate(resolve(dir, entry), 'Component', resources);
  for (const patch of (k.patches ?? []) as Obj[]) {
    assert.deepEqual(Object.keys(patch), ['path'], `${file}: only \`patches: - path:\` (strategic merge) is supported`);
    for (const doc of readDocs(resolve(dir, patch.path))) resources = applyStrategicMerge(resources, doc);
  }
  if (k.namespace) {
    for (const r of resources) {
      assert.ok(!clusterScoped.has(r.kind), `${idOf(r)} is cluster-scoped: this renderer does not handle it`);
      r.metadata.namespace = k.namespace;
    }
  }
  for (const image of (k.images ?? []) as Obj[]) setImage(resources, image);
  return resources;
}

function render(dir: string): Resource[] {
  const resources = accumulate(dir, 'Kustomization', []);
  const ids = resources.map(idOf);
  assert.equal(new Set(ids).size, ids.length, `duplicate resources in ${dir}: ${ids.join(', ')}`);
  return resources;
}

// Lists in a strategic-merge patch merge by the key the Kubernetes API gives
// them, or are replaced; only the lists named here may appear in a patch. A
// patch of any kind may delete its resource whole (`$patch: delete`).
const listMergeKeys: Record<string, Record<string, string | null>> = {
  Deployment: { containers: 'name', initContainers: 'name', env: 'name', ports: 'containerPort', volumes: 'name', volumeMounts: 'mountPath', command: null, args: null, envFrom: null },
  ConfigMap: {},
};

function applyStrategicMerge(resources: Resource[], patch: Resource): Resource[] {
  const matches = (r: Resource) => r.kind === patch.kind && r.apiVersion === patch.apiVersion && r.metadata.name === patch.metadata.name;
  const targets = resources.filter(matches);
  assert.equal(targets.length, 1, `patch ${patch.kind}/${patch.metadata.name} must match exactly one resource`);
  if ('$patch' in patch) {
    const { $patch, ...rest } = patch;
    assert.equal($patch, 'delete', `\`$patch: ${$patch}\` is not supported by this renderer`);
    assert.deepEqual(Object.keys(rest).sort(), ['apiVersion', 'kind', 'metadata'], 'a `$patch: delete` patch names its resource and nothing else');
    return resources.filter((r) => !matches(r));
  }
  const keys = listMergeKeys[patch.kind];
  assert.ok(keys, `patches of ${patch.kind} are not supported by this renderer`);
  Object.assign(targets[0]!, merge(targets[0], patch, keys));
  return resources;
}

function merge(target: unknown, patch: unknown, keys: Record<string, string | null>, field = ''): unknown {
  if (Array.isArray(patch)) {
    assert.ok(field in keys, `a patch sets the list \`${field}\`, which this renderer cannot merge`);
    const key = keys[field];
    if (!key || !Array.isArray(target)) return patch;
    const result = [...target];
    for (const item of patch as Obj[]) {
      const at = result.findIndex((existing) => existing[key] === item[key]);
      if (at === -1) result.push(item);
      else result[at] = merge(result[at], item, keys);
    }
    return result;
  }
  if (!isObj(patch)) return patch;
  const result: Obj = isObj(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    assert.ok(!key.startsWith('$'), `patch directive ${key} is not supported by this renderer`);
    if (value === null) delete result[key];
    else result[key] = merge(result[key], value, keys, key);
  }
  return result;
}

function setImage(resources: Resource[], image: Obj): void {
  for (const r of resources) {
    const pod = r.kind === 'Deployment' ? r.spec.template.spec : undefined;
    for (const container of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      const match = /^(.+?)(?::([^:/@]+))?(?:@(.+))?$/.exec(container.image as string)!;
      if (match[1] !== image.name) continue;
      const tag = image.digest ? `@${image.digest}` : image.newTag ? `:${image.newTag}` : match[3] ? `@${match[3]}` : match[2] ? `:${match[2]}` : '';
      container.image = `${image.newName ?? match[1]}${tag}`;
    }
  }
}

// ---------------------------------------------------------------------------
// What is rendered: a scratch copy of deploy/k8s as a fresh clone has it
// (what git tracks or would track; nothing git-ignored, such as a secrets.env
// an operator filled in), every Kustomization found there as it is, and each
// Component on top of the base.

const k8sDir = join(repoRoot, 'deploy/k8s');
const scratch = mkdtempSync(join(tmpdir(), 'replyflow-k8s-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', 'deploy/k8s'], { cwd: repoRoot, encoding: 'utf8' });
if (listed.status === 0) {
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(repoRoot, file))) continue; // deleted, not yet committed
    mkdirSync(dirname(join(scratch, relative('deploy/k8s', file))), { recursive: true });
    cpSync(join(repoRoot, file), join(scratch, relative('deploy/k8s', file)));
  }
} else {
  // Not a git checkout: the one git-ignored file deploy/k8s documents.
  cpSync(k8sDir, scratch, { recursive: true, filter: (source) => basename(source) !== 'secrets.env' });
}

const kustomizationDirs = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? kustomizationDirs(join(dir, entry.name)) : /^(kustomization\.ya?ml|Kustomization)$/.test(entry.name) ? [dir] : [],
  );
const targets: Record<string, string> = {};
for (const dir of kustomizationDirs(scratch).sort()) {
  const name = relative(scratch, dir);
  const kind = (parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as Obj | null)?.kind;
  if (kind !== 'Component') {
    targets[name] = dir;
    continue;
  }
  const wrapper = join(scratch, `_base-with-${basename(dir)}`);
  mkdirSync(wrapper);
  writeFileSync(
    join(wrapper, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../base]\ncomponents: [../${name}]\n`,
  );
  targets[`base + ${name}`] = wrapper;
}
assert.ok(targets.base && targets['overlays/production'], `kustomizations found: ${Object.keys(targets).join(', ')}`);
const rendered = Object.fromEntries(Object.entries(targets).map(([name, dir]) => [name, render(dir)]));

// ---------------------------------------------------------------------------
// Schemas.

const models = [ConfigMap, Secret, Service, Deployment, PodDisruptionBudget, HorizontalPodAutoscaler, ScaledObject];

function modelOf(r: Resource) {
  const Model = models.find((m) => m.apiVersion === r.apiVersion && m.kind === r.kind);
  assert.ok(Model, `${r.apiVersion} ${r.kind}: no schema in this test; add its kubernetes-models class`);
  return new Model(r as never) as { validate(): void };
}

// The schemas let fields they do not describe through (a misspelt
// `readinesProbe` passes), as the API server's lenient decoding does, and the
// API server then drops them. For the equivalent of kubeconform's --strict,
// the schema's compiled validator runs on a proxy recording what it looks up:
// it asks every object it checks for each property the schema describes, and
// enumerates maps with free keys (labels, data), so in an object it looked
// into, a key it never asked for is one the schema does not know.
function undescribedFields(model: { validate(): void }): string[] {
  const asked = new Map<object, Set<string | symbol>>();
  const enumerated = new WeakSet<object>();
  const ask = (target: object, key: string | symbol) => {
    if (!asked.has(target)) asked.set(target, new Set());
    asked.get(target)!.add(key);
  };
  const track = (value: unknown): unknown =>
    value !== null && typeof value === 'object'
      ? new Proxy(value, {
          get: (target, key) => (ask(target, key), track(Reflect.get(target, key))),
          has: (target, key) => (ask(target, key), Reflect.has(target, key)),
          ownKeys: (target) => (enumerated.add(target), Reflect.ownKeys(target)),
        })
      : value;
  model.validate.call(track(model));
  const found: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) return value.forEach((item, index) => walk(item, `${path}[${index}]`));
    if (!isObj(value)) return;
    const keys = asked.get(value);
    for (const [key, child] of Object.entries(value)) {
      if (keys && !enumerated.has(value) && !keys.has(key)) found.push(`${path}.${key}`);
      walk(child, `${path}.${key}`);
    }
  };
  walk(model, '');
  return found;
}

// PodMonitor (monitoring.coreos.com/v1) has no kubernetes-models class among
// this project's dependencies: it is checked against this excerpt of the
// Prometheus Operator's CRD (podmonitors.monitoring.coreos.com), the fields
// deploy/k8s may use with the CRD's types and patterns, strictly: a field
// outside the excerpt fails. Copy a field from the CRD before using it.
type Shape =
  | 'string'
  | 'boolean'
  | 'stringMap'
  | RegExp
  | { enum: readonly string[] }
  | { list: Shape }
  | { fields: Record<string, Shape>; required?: readonly string[] };

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const duration = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const podMonitorSchema: Shape = {
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  fields: {
    apiVersion: { enum: ['monitoring.coreos.com/v1'] },
    kind: { enum: ['PodMonitor'] },
    metadata: { required: ['name'], fields: { name: dnsSubdomain, namespace: dnsSubdomain, labels: 'stringMap', annotations: 'stringMap' } },
    spec: {
      required: ['selector'],
      fields: {
        jobLabel: 'string',
        podTargetLabels: { list: 'string' },
        selector: {
          fields: {
            matchLabels: 'stringMap',
            matchExpressions: {
              list: {
                required: ['key', 'operator'],
                fields: { key: 'string', operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: { list: 'string' } },
              },
            },
          },
        },
        namespaceSelector: { fields: { any: 'boolean', matchNames: { list: 'string' } } },
        podMetricsEndpoints: {
          list: { fields: { port: 'string', path: 'string', interval: duration, scrapeTimeout: duration, honorLabels: 'boolean' } },
        },
      },
    },
  },
};

function shapeErrors(value: unknown, shape: Shape, path = ''): string[] {
  if (shape === 'string' || shape === 'boolean') return typeof value === shape ? [] : [`${path}: not a ${shape}`];
  if (shape === 'stringMap') {
    return isObj(value) && Object.values(value).every((v) => typeof v === 'string') ? [] : [`${path}: not a map of strings`];
  }
  if (shape instanceof RegExp) return typeof value === 'string' && shape.test(value) ? [] : [`${path}: ${JSON.stringify(value)} does not match ${shape}`];
  if ('enum' in shape) return shape.enum.includes(value as string) ? [] : [`${path}: ${JSON.stringify(value)} is not one of ${shape.enum.join(', ')}`];
  if ('list' in shape) {
    if (!Array.isArray(value)) return [`${path}: not a list`];
    return value.flatMap((item, index) => shapeErrors(item, shape.list, `${path}[${index}]`));
  }
  if (!isObj(value)) return [`${path}: not an object`];
  return [
    ...(shape.required ?? []).filter((key) => !(key in value)).map((key) => `${path}.${key}: required`),
    ...Object.entries(value).flatMap(([key, child]) =>
      key in shape.fields ? shapeErrors(child, shape.fields[key]!, `${path}.${key}`) : [`${path}.${key}: not in the schema`],
    ),
  ];
}

function assertSchemaValid(r: Resource, where: string): void {
  if (r.apiVersion === 'monitoring.coreos.com/v1' && r.kind === 'PodMonitor') {
    assert.deepEqual(shapeErrors(r, podMonitorSchema), [], `${where}: ${idOf(r)} fails its CRD's schema`);
    return;
  }
  const model = modelOf(r);
  assert.doesNotThrow(() => model.validate(), `${where}: ${idOf(r)} fails its schema`);
  assert.deepEqual(undescribedFields(model), [], `${where}: ${idOf(r)} has fields its schema does not describe`);
}

describe('deploy/k8s: schemas', () => {
  for (const [name, resources] of Object.entries(rendered)) {
    test(`every resource of ${name} is valid against the Kubernetes, KEDA and Prometheus Operator schemas`, () => {
      assert.ok(resources.length > 0);
      for (const r of resources) assertSchemaValid(r, name);
    });
  }

  test('the schema check catches a type error and a misspelt field', () => {
    const deployment = structuredClone(rendered.base!.find((r) => r.metadata.name === 'replyflow-worker')!);
    assert.throws(() => modelOf({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } }).validate(), /replicas/);
    const container = deployment.spec.template.spec.containers[0];
    container.readinesProbe = container.readinessProbe;
    delete container.readinessProbe;
    assert.deepEqual(undescribedFields(modelOf(deployment)), ['.spec.template.spec.containers[0].readinesProbe']);
    const scaledObject = structuredClone(rendered.base!.find((r) => r.kind === 'ScaledObject')!);
    scaledObject.spec.maxReplicas = scaledObject.spec.maxReplicaCount;
    assert.deepEqual(undescribedFields(modelOf(scaledObject)), ['.spec.maxReplicas']);
    const podMonitor = structuredClone(rendered.base!.find((r) => r.kind === 'PodMonitor')!);
    assert.deepEqual(shapeErrors(podMonitor, podMonitorSchema), []);
    podMonitor.spec.podMetricsEndpoints[0].interval = '15 seconds';
    podMonitor.spec.podMetricEndpoints = podMonitor.spec.podMetricsEndpoints;
    assert.deepEqual(shapeErrors(podMonitor, podMonitorSchema), [
      '.spec.podMetricsEndpoints[0].interval: "15 seconds" does not match ' + String(duration),
      '.spec.podMetricEndpoints: not in the schema',
    ]);
  });

  test('every YAML file under deploy/k8s is part of a rendered kustomization', () => {
    const all = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? all(join(dir, entry.name)) : /\.ya?ml$/.test(entry.name) ? [join(dir, entry.name)] : [],
      );
    const unread = all(k8sDir).filter((file) => !filesRead.has(join(scratch, relative(k8sDir, file))));
    assert.deepEqual(unread, [], 'files no kustomization renders, so nothing validates');
  });
});

// ---------------------------------------------------------------------------
// The renderer against the real kustomize, where kubectl is installed.

describe('deploy/k8s: renderer', () => {
  for (const [name, dir] of Object.entries(targets)) {
    test(`renders ${name} as \`kubectl kustomize\` does`, (t) => {
      const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return t.skip('kubectl is not installed');
      assert.equal(result.status, 0, result.stderr);
      const byId = (resources: Resource[]) => Object.fromEntries(resources.map((r) => [idOf(r), r]));
      const theirs = parseAllDocuments(result.stdout).map((doc) => doc.toJS() as Resource);
      assert.deepEqual(byId(rendered[name]!), byId(theirs));
    });
  }
});

// ---------------------------------------------------------------------------
// The contract's rules (section 10) and what keeps a scale-down from cutting a job.

const deployments = (resources: Resource[]) => resources.filter((r) => r.kind === 'Deployment');
const podSpec = (deployment: Resource) => deployment.spec.template.spec as Obj;
const isWorker = (deployment: Resource) => podSpec(deployment).containers.some((c: Obj) => c.command?.join(' ') === 'node apps/worker/dist/main.js');
const ingestOf = (resources: Resource[]) => deployments(resources).find((d) => !isWorker(d))!;
const workerOf = (resources: Resource[]) => deployments(resources).find(isWorker)!;

function quantity(value: string | number): number {
  const match = /^([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?$/.exec(String(value));
  assert.ok(match, `quantity ${value}`);
  const unit = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** The environment a container gets from its envFrom sources and env, in Kubernetes' order: later wins. */
function environmentOf(container: Obj, resources: Resource[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const found = resources.find((r) => r.kind === kind && r.metadata.name === ref.name);
    const data = found?.data ?? {};
    for (const [key, value] of Object.entries(data as Record<string, string>)) {
      env[key] = kind === 'Secret' ? Buffer.from(value, 'base64').toString() : value;
    }
  }
  for (const variable of container.env ?? []) if (variable.value !== undefined) env[variable.name] = variable.value;
  return env;
}

const preStopSleepSeconds = (container: Obj) => {
  const command = container.lifecycle?.preStop?.exec?.command as string[] | undefined;
  return command?.[0] === 'sleep' ? Number(command[1]) : 0;
};

describe('deploy/k8s: policy', () => {
  for (const [name, resources] of Object.entries(rendered)) {
    test(`${name}: every container requests and limits cpu and memory, limits at least the requests`, () => {
      for (const d of deployments(resources)) {
        for (const c of podSpec(d).containers) {
          for (const resource of ['cpu', 'memory']) {
            const request = c.resources?.requests?.[resource];
            const limit = c.resources?.limits?.[resource];
            assert.ok(request && limit, `${idOf(d)} ${c.name}: ${resource} request and limit`);
            assert.ok(quantity(limit) >= quantity(request), `${idOf(d)} ${c.name}: ${resource} limit below request`);
          }
        }
      }
    });

    test(`${name}: probes on /healthz and /readyz of the metrics port, which Prometheus scrapes`, () => {
      for (const d of deployments(resources)) {
        const annotations = d.spec.template.metadata.annotations ?? {};
        for (const c of podSpec(d).containers) {
          const metrics = c.ports.find((p: Obj) => p.name === 'metrics');
          assert.equal(metrics?.containerPort, isWorker(d) ? 9465 : 9464, `${idOf(d)}: metrics port`);
          assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${idOf(d)}: liveness`);
          assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', `${idOf(d)}: readiness`);
          for (const probe of [c.livenessProbe, c.readinessProbe]) assert.ok([metrics.name, metrics.containerPort].includes(probe.httpGet.port));
          assert.equal(annotations['prometheus.io/scrape'], 'true');
          assert.equal(annotations['prometheus.io/port'], String(metrics.containerPort));
          assert.equal(annotations['prometheus.io/path'], '/metrics');
        }
      }
    });

    test(`${name}: pods run as the image's non-root user, read-only, without privileges`, () => {
      for (const d of deployments(resources)) {
        const pod = podSpec(d);
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${idOf(d)}: runAsNonRoot`);
        assert.equal(pod.securityContext?.runAsUser, 1000, `${idOf(d)}: uid 1000 is the image's node user`);
        for (const c of pod.containers) {
          const sc = c.securityContext ?? {};
          assert.equal(sc.runAsNonRoot ?? pod.securityContext.runAsNonRoot, true);
          assert.equal(sc.readOnlyRootFilesystem, true, `${idOf(d)} ${c.name}: readOnlyRootFilesystem`);
          assert.equal(sc.allowPrivilegeEscalation, false, `${idOf(d)} ${c.name}: allowPrivilegeEscalation`);
          assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${idOf(d)} ${c.name}: capabilities`);
          assert.equal((sc.seccompProfile ?? pod.securityContext.seccompProfile)?.type, 'RuntimeDefault');
        }
      }
    });

    test(`${name}: the grace period outlasts SHUTDOWN_TIMEOUT_MS (and the preStop sleep), and a forward attempt fits the drain`, () => {
      for (const d of deployments(resources)) {
        for (const c of podSpec(d).containers) {
          const env = environmentOf(c, resources);
          assert.ok(env.SHUTDOWN_TIMEOUT_MS, `${idOf(d)}: SHUTDOWN_TIMEOUT_MS comes from replyflow-config`);
          // The processes' own parser: every value in the manifests must be one they start with.
          const config = loadConfig(isWorker(d) ? 'worker' : 'ingest', env);
          const graceMs = podSpec(d).terminationGracePeriodSeconds * 1000;
          assert.ok(
            graceMs > config.shutdownTimeoutMs + preStopSleepSeconds(c) * 1000,
            `${idOf(d)}: terminationGracePeriodSeconds ${graceMs / 1000} s <= SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs} ms + preStop`,
          );
          assert.ok(config.forwardTimeoutMs < config.shutdownTimeoutMs, 'FORWARD_TIMEOUT_MS below SHUTDOWN_TIMEOUT_MS');
          assert.ok(!('PORT' in env) && !('METRICS_PORT' in env), 'ports stay at each process’s default');
        }
      }
    });

    test(`${name}: pods read replyflow-config, then the operator's Secret replyflow-secrets, through envFrom; no Secret is shipped`, () => {
      for (const d of deployments(resources)) {
        for (const c of podSpec(d).containers) {
          const sources = (c.envFrom as Obj[]).map((s) => (s.configMapRef ? `ConfigMap ${s.configMapRef.name}` : `Secret ${s.secretRef.name}`));
          assert.deepEqual(sources, ['ConfigMap replyflow-config', 'Secret replyflow-secrets']);
        }
      }
      // Applying a kustomization never creates or overwrites secrets, example values least of all.
      assert.deepEqual(resources.filter((r) => r.kind === 'Secret').map(idOf), []);
    });

    test(`${name}: the ingest is served on port 80 and kept available through disruptions`, () => {
      const ingest = ingestOf(resources);
      assert.ok(ingest.spec.replicas >= 2, 'at least two ingest replicas');
      const labels = ingest.spec.template.metadata.labels;
      const selects = (selector: Obj) => Object.entries(selector).every(([k, v]) => labels[k] === v);
      assert.ok(selects(ingest.spec.selector.matchLabels));
      const service = resources.find((r) => r.kind === 'Service')!;
      assert.equal(service.spec.type, 'ClusterIP');
      assert.ok(selects(service.spec.selector), 'the Service selects the ingest pods');
      const ports = podSpec(ingest).containers[0].ports as Obj[];
      const targetOf = (port: Obj) => ports.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort)?.containerPort;
      const http = service.spec.ports.find((p: Obj) => p.port === 80);
      assert.equal(targetOf(http), 3000, 'Service port 80 reaches the ingest on 3000');
      assert.ok(service.spec.ports.some((p: Obj) => targetOf(p) === 9464), 'the Service exposes the metrics port');
      const pdb = resources.find((r) => r.kind === 'PodDisruptionBudget')!;
      assert.equal(pdb.spec.minAvailable, 1);
      assert.ok(selects(pdb.spec.selector.matchLabels), 'the PodDisruptionBudget covers the ingest pods');
    });

    test(`${name}: exactly one autoscaler, and it scales the worker`, () => {
      const autoscalers = resources.filter((r) => r.kind === 'ScaledObject' || r.kind === 'HorizontalPodAutoscaler');
      assert.equal(autoscalers.length, 1, `one autoscaler, not: ${autoscalers.map(idOf).join(', ') || 'none'} (two fight over one Deployment)`);
      for (const a of autoscalers) {
        const ref = a.spec.scaleTargetRef;
        assert.equal(ref.apiVersion, 'apps/v1');
        assert.equal(ref.kind, 'Deployment');
        assert.equal(ref.name, workerOf(resources).metadata.name);
      }
      assert.equal(workerOf(resources).spec.replicas, undefined, 'the worker leaves its replica count to the autoscaler');
    });

    test(`${name}: a PodMonitor has the Prometheus Operator scrape the ingest and the worker, as jobs ingest and worker`, () => {
      const [podMonitor, ...others] = resources.filter((r) => r.kind === 'PodMonitor');
      assert.ok(podMonitor && others.length === 0, 'one PodMonitor');
      const spec = podMonitor.spec as Obj;
      assert.equal(spec.namespaceSelector, undefined, 'the pods are in the PodMonitor’s namespace');
      const selects = (labels: Record<string, string>) =>
        Object.entries((spec.selector.matchLabels ?? {}) as Record<string, string>).every(([k, v]) => labels[k] === v) &&
        ((spec.selector.matchExpressions ?? []) as Obj[]).every(({ key, operator, values }) =>
          operator === 'In' ? values.includes(labels[key]) : operator === 'NotIn' ? !values.includes(labels[key]) : operator === 'Exists' ? key in labels : !(key in labels),
        );
      for (const d of deployments(resources)) {
        const labels = d.spec.template.metadata.labels as Record<string, string>;
        assert.ok(selects(labels), `${idOf(d)}: its pods are not selected`);
        // deploy/prometheus/alerts.yml finds the processes as up{job="ingest"} and up{job="worker"}.
        assert.equal(labels[spec.jobLabel], isWorker(d) ? 'worker' : 'ingest', `${idOf(d)}: job label`);
        const metrics = podSpec(d).containers[0].ports.find((p: Obj) => p.name === 'metrics');
        const endpoint = (spec.podMetricsEndpoints as Obj[]).find((e) => e.port === metrics?.name);
        assert.ok(endpoint, `${idOf(d)}: no endpoint on its metrics port`);
        assert.equal(endpoint.path ?? '/metrics', '/metrics');
      }
      // The ScaledObject (if any) queries the Prometheus that reads this PodMonitor.
      for (const scaledObject of resources.filter((r) => r.kind === 'ScaledObject')) {
        for (const trigger of scaledObject.spec.triggers as Obj[]) {
          assert.match(trigger.metadata.serverAddress, /^http:\/\/prometheus-operated\.[a-z0-9-]+\.svc(\.cluster\.local)?:9090$/, trigger.name);
        }
      }
    });
  }

  test('the base ships the worker scaled by KEDA on queue depth', () => {
    const autoscalers = rendered.base!.filter((r) => r.kind === 'ScaledObject' || r.kind === 'HorizontalPodAutoscaler');
    assert.deepEqual(autoscalers.map(idOf), ['ScaledObject//replyflow-worker']);
  });

  test('the production overlay scales the worker with KEDA on the queue, in namespace replyflow, from a registry image', () => {
    const resources = rendered['overlays/production']!;
    assert.deepEqual(
      resources.filter((r) => r.kind === 'ScaledObject' || r.kind === 'HorizontalPodAutoscaler').map((r) => r.kind),
      ['ScaledObject'],
    );
    for (const r of resources) assert.equal(r.metadata.namespace, 'replyflow', idOf(r));
    for (const d of deployments(resources)) assert.match(podSpec(d).containers[0].image, /^registry\.example\.com\/replyflow:/);
    assert.ok(ingestOf(resources).spec.replicas > ingestOf(rendered.base!).spec.replicas);
  });

  test('the ScaledObject scales 1 to 20 workers on replyflow metrics that exist, leaving out the dead-letter queue', async () => {
    const registry = createRegistry('worker');
    workerMetrics(registry, ['forward'], ['events', 'forward', 'dead-letter']);
    const labelsOf = new Map<string, Set<string>>();
    for (const metric of await registry.getMetricsAsJSON()) {
      labelsOf.set(metric.name, new Set(metric.values.flatMap((value) => Object.keys(value.labels))));
    }

    const scaledObject = rendered.base!.find((r) => r.kind === 'ScaledObject')!;
    assert.equal(scaledObject.spec.minReplicaCount, 1);
    assert.equal(scaledObject.spec.maxReplicaCount, 20);
    assert.ok(scaledObject.spec.cooldownPeriod > 0);
    assert.ok(scaledObject.spec.triggers.length > 0);
    for (const trigger of scaledObject.spec.triggers as Obj[]) {
      assert.equal(trigger.type, 'prometheus');
      const query = trigger.metadata.query as string;
      assert.ok(Number(trigger.metadata.threshold) > 0, `${trigger.name}: threshold`);
      const names = query.match(/\breplyflow_[a-z_]+/g) ?? [];
      assert.ok(names.length > 0, `${query}: reads no replyflow metric`);
      for (const name of names) assert.ok(labelsOf.has(name), `${name} is not a metric of packages/shared/src/metrics.ts`);
      for (const [, name, selector] of query.matchAll(/\b([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
        assert.match(name!, /^replyflow_/, `${query}: selects a metric that is not replyflow's`);
        const matchers = [...selector!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map(([, label, op, value]) => ({ label, op, value }));
        for (const { label, value } of matchers) {
          assert.ok(labelsOf.get(name!)!.has(label!), `${name} has no label ${label}`);
          if (label === 'state') assert.ok((QUEUE_STATES as readonly string[]).includes(value!), `state ${value}`);
        }
        assert.ok(
          matchers.some((m) => m.label === 'queue' && m.op === '!=' && m.value === 'dead-letter'),
          `${query}: the dead-letter queue is never drained, so it must not drive scaling`,
        );
      }
      for (const [, labels] of query.matchAll(/\bby\s*\(([^)]*)\)/g)) {
        for (const label of labels!.split(',').map((l) => l.trim())) {
          assert.ok(names.every((name) => labelsOf.get(name)!.has(label)), `by (${label}): not a label of ${names.join(', ')}`);
        }
      }
    }
  });
});
