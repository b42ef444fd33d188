// The baselines run as plain compiled JavaScript, like replyflow's dist/, so no
// contender pays for a TypeScript loader. They import only packages, so a
// transpiled file runs from anywhere inside the repository.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { SECRET } from './payloads.js';
import { benchDir, startNode, tmpDir, type NodeProcess } from './procs.js';

export type Baseline = 'bare-express' | 'naive-pipeline' | 'raw-worker';

const compiled = new Map<Baseline, string>();

export function baselineScript(name: Baseline): string {
  const cached = compiled.get(name);
  if (cached) return cached;
  const source = readFileSync(join(benchDir, 'baselines', `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: `${name}.ts`,
  });
  const dir = join(tmpDir, 'baselines');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, outputText);
  compiled.set(name, file);
  return file;
}

/** Bare Express on 127.0.0.1:`port`: contender a on `app.listen`'s server, a′ on the server replyflow's ingest makes. */
export function startBareExpress(port: number, nodeArgs: string[] = [], server: 'app.listen' | 'app-prototypes' = 'app.listen'): Promise<NodeProcess> {
  const env = { PORT: String(port), HOST: '127.0.0.1', ...(server === 'app-prototypes' ? { BARE_SERVER: server } : {}) };
  return startNode(server === 'app.listen' ? 'bare-express' : 'bare-express-app-prototypes', baselineScript('bare-express'), env, { ready: /listening/, nodeArgs });
}

/** The naive pipeline (contender b) on 127.0.0.1:`port`, storing in `redisUrl`, checking the bench's secret. */
export function startNaivePipeline(port: number, redisUrl: string, nodeArgs: string[] = []): Promise<NodeProcess> {
  return startNode(
    'naive-pipeline',
    baselineScript('naive-pipeline'),
    { PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, WEBHOOK_SECRET: SECRET },
    { ready: /listening/, nodeArgs },
  );
}
