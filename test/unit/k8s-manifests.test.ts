import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
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

// deploy/k8s, checked three ways: every resource of the base, of each
// component and of the rendered production overlay against the Kubernetes and
// KEDA schemas (kubernetes-models), the contract's operational rules, and,
// where kubectl is installed, the renderer below against `kubectl kustomize`.

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
// then components (which see everything accumulated so far), generators,
// patches, namespace, images; name hashes and references last.

const filesRead = new Set<string>();

function readDocs(file: string): Resource[] {
  filesRead.add(file);
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Resource | null;
    return value ? [value] : [];
  });
}

const kustomizationFields = new Set(['apiVersion', 'kind', 'resources', 'components', 'namespace', 'images', 'patches', 'secretGenerator']);
const kustomizationApi = { Kustomization: 'kustomize.config.k8s.io/v1beta1', Component: 'kustomize.config.k8s.io/v1alpha1' };
const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass']);

function accumulate(dir: string, kind: 'Kustomization' | 'Component', inherited: Resource[], generated: Set<Resource>): Resource[] {
  const file = join(dir, 'kustomization.yaml');
  const [k] = readDocs(file);
  assert.ok(k, `${file} is empty`);
  assert.equal(k.kind, kind, `${file}: kind`);
  assert.equal(k.apiVersion, kustomizationApi[kind], `${file}: apiVersion`);
  for (const key of Object.keys(k)) assert.ok(kustomizationFields.has(key), `${file}: \`${key}\` is not supported by this test's renderer`);

  let resources = [...inherited];
  for (const entry of (k.resources ?? []) as string[]) {
    const path = resolve(dir, entry);
    resources.push(...(statSync(path).isDirectory() ? accumulate(path, 'Kustomization', [], generated) : readDocs(path)));
  }
  for (const entry of (k.components ?? []) as string[]) resources = accumulate(resolve(dir, entry), 'Component', resources, generated);
  for (const options of (k.secretGenerator ?? []) as Obj[]) {
    const secret = generateSecret(dir, options);
    generated.add(secret);
    resources.push(secret);
  }
  for (const patch of (k.patches ?? []) as Obj[]) {
    assert.deepEqual(Object.keys(patch), ['path'], `${file}: only \`patches: - path:\` (strategic merge) is supported`);
    for (const doc of readDocs(resolve(dir, patch.path))) applyStrategicMerge(resources, doc);
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
  const generated = new Set<Resource>();
  const resources = accumulate(dir, 'Kustomization', [], generated);
  const renamed = new Map<string, string>();
  for (const secret of generated) {
    const name = `${secret.metadata.name}-${kustomizeHash(secret)}`;
    renamed.set(secret.metadata.name, name);
    secret.metadata.name = name;
  }
  for (const r of resources) if (r.kind === 'Deployment') renameSecretReferences(r.spec.template.spec, renamed);
  const ids = resources.map(idOf);
  assert.equal(new Set(ids).size, ids.length, `duplicate resources in ${dir}: ${ids.join(', ')}`);
  return resources;
}

function generateSecret(dir: string, options: Obj): Resource {
  assert.deepEqual(Object.keys(options).sort(), ['envs', 'name'], 'only `secretGenerator: - name, envs` is supported');
  const data: Record<string, string> = {};
  for (const envFile of options.envs as string[]) {
    for (const line of readFileSync(resolve(dir, envFile), 'utf8').split('\n')) {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      const at = trimmed.indexOf('=');
      assert.ok(at > 0, `${envFile}: "${trimmed}" is not KEY=value`);
      data[trimmed.slice(0, at)] = Buffer.from(trimmed.slice(at + 1)).toString('base64');
    }
  }
  const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: options.name }, type: 'Opaque', data: sorted };
}

// kustomize's api/hasher: SHA-256 of the JSON of {data, kind, name, type}
// (keys sorted, as Go's encoding/json writes maps), its first ten hex digits
// with 0, 1, 3, a, e swapped for letters so no word can form. The name is
// hashed as "": kustomize 5 looks up `metadata/name` as one field, finds none,
// and this keeps the result identical to `kubectl kustomize`.
function kustomizeHash(secret: Resource): string {
  const json = JSON.stringify({ data: secret.data ?? {}, kind: 'Secret', name: '', type: secret.type ?? '' });
  const swap: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return createHash('sha256').update(json).digest('hex').slice(0, 10).replace(/[013ae]/g, (c) => swap[c]!);
}

function renameSecretReferences(node: unknown, renamed: Map<string, string>): void {
  if (Array.isArray(node)) return node.forEach((item) => renameSecretReferences(item, renamed));
  if (!isObj(node)) return;
  for (const ref of [node.secretRef, node.secretKeyRef]) if (isObj(ref) && renamed.has(ref.name)) ref.name = renamed.get(ref.name);
  if (isObj(node.secret) && renamed.has(node.secret.secretName)) node.secret.secretName = renamed.get(node.secret.secretName);
  for (const value of Object.values(node)) renameSecretReferences(value, renamed);
}

// Lists in a strategic-merge patch merge by the key the Kubernetes API gives
// them, or are replaced; only the lists named here may appear in a patch.
const listMergeKeys: Record<string, Record<string, string | null>> = {
  Deployment: { containers: 'name', initContainers: 'name', env: 'name', ports: 'containerPort', volumes: 'name', volumeMounts: 'mountPath', command: null, args: null, envFrom: null },
  ConfigMap: {},
};

function applyStrategicMerge(resources: Resource[], patch: Resource): void {
  const keys = listMergeKeys[patch.kind];
  assert.ok(keys, `patches of ${patch.kind} are not supported by this renderer`);
  const targets = resources.filter((r) => r.kind === patch.kind && r.apiVersion === patch.apiVersion && r.metadata.name === patch.metadata.name);
  assert.equal(targets.length, 1, `patch ${patch.kind}/${patch.metadata.name} must match exactly one resource`);
  Object.assign(targets[0]!, merge(targets[0], patch, keys));
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
// What is rendered: a scratch copy of deploy/k8s, with the production
// overlay's secrets.env made from its example (as an operator would), and one
// kustomization per component so each is rendered on top of the base.

const k8sDir = join(repoRoot, 'deploy/k8s');
const scratch = mkdtempSync(join(tmpdir(), 'replyflow-k8s-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
cpSync(k8sDir, scratch, { recursive: true, filter: (source) => basename(source) !== 'secrets.env' });
const production = join(scratch, 'overlays/production');
writeFileSync(join(production, 'secrets.env'), readFileSync(join(production, 'secrets.env.example')));
for (const component of ['keda', 'hpa']) {
  mkdirSync(join(scratch, `_base-with-${component}`));
  writeFileSync(
    join(scratch, `_base-with-${component}/kustomization.yaml`),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../base]\ncomponents: [../components/${component}]\n`,
  );
}

const targets: Record<string, string> = {
  base: join(scratch, 'base'),
  'base + components/keda': join(scratch, '_base-with-keda'),
  'base + components/hpa': join(scratch, '_base-with-hpa'),
  'overlays/production': production,
};
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

function assertSchemaValid(r: Resource, where: string): void {
  const model = modelOf(r);
  assert.doesNotThrow(() => model.validate(), `${where}: ${idOf(r)} fails its schema`);
  assert.deepEqual(undescribedFields(model), [], `${where}: ${idOf(r)} has fields its schema does not describe`);
}

describe('deploy/k8s: schemas', () => {
  for (const [name, resources] of Object.entries(rendered)) {
    test(`every resource of ${name} is valid against the Kubernetes and KEDA schemas`, () => {
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
    const scaledObject = structuredClone(rendered['base + components/keda']!.find((r) => r.kind === 'ScaledObject')!);
    scaledObject.spec.maxReplicas = scaledObject.spec.maxReplicaCount;
    assert.deepEqual(undescribedFields(modelOf(scaledObject)), ['.spec.maxReplicas']);
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

    test(`${name}: pods read replyflow-config, then replyflow-secrets, through envFrom`, () => {
      for (const d of deployments(resources)) {
        for (const c of podSpec(d).containers) {
          const sources = (c.envFrom as Obj[]).map((s) => (s.configMapRef ? `ConfigMap ${s.configMapRef.name}` : `Secret ${s.secretRef.name}`));
          assert.equal(sources.length, 2);
          assert.equal(sources[0], 'ConfigMap replyflow-config');
          assert.match(sources[1]!, /^Secret replyflow-secrets(-[a-z0-9]{10})?$/);
        }
      }
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

    test(`${name}: at most one autoscaler per Deployment, and it scales the worker`, () => {
      const autoscalers = resources.filter((r) => r.kind === 'ScaledObject' || r.kind === 'HorizontalPodAutoscaler');
      assert.ok(autoscalers.length <= 1, `autoscalers fight over one Deployment: ${autoscalers.map(idOf).join(', ')}`);
      for (const a of autoscalers) {
        const ref = a.spec.scaleTargetRef;
        assert.equal(ref.apiVersion, 'apps/v1');
        assert.equal(ref.kind, 'Deployment');
        assert.equal(ref.name, workerOf(resources).metadata.name);
      }
      assert.equal(workerOf(resources).spec.replicas, undefined, 'the worker leaves its replica count to the autoscaler');
    });
  }

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

    const scaledObject = rendered['base + components/keda']!.find((r) => r.kind === 'ScaledObject')!;
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
