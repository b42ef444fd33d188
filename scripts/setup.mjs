// Installs and builds what is missing or stale. Runs before node_modules
// exists, so it uses nothing but Node itself.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));

const outputs = [
  ['packages/shared', 'dist/index.js'],
  ['packages/workflow', 'dist/index.js'],
  ['packages/cli', 'dist/main.js'],
  ['apps/ingest', 'dist/main.js'],
  ['apps/worker', 'dist/main.js'],
];

export class SetupError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

// Directory mtimes count too, so deleting or renaming a source file is noticed.
function newest(path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  let latest = stat.mtimeMs;
  if (stat.isDirectory()) {
    for (const name of readdirSync(path)) latest = Math.max(latest, newest(join(path, name)));
  }
  return latest;
}

function npm(args, cwd) {
  // Under `npm test` / `npm start`, reuse the very npm that started us.
  const cli = process.env.npm_execpath;
  const [cmd, argv] = cli && /\.[cm]?js$/.test(cli) ? [process.execPath, [cli, ...args]] : ['npm', args];
  const result = spawnSync(cmd, argv, { cwd, stdio: 'inherit', shell: cmd === 'npm' && process.platform === 'win32' });
  if (result.error) throw new SetupError(`setup: could not run npm ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new SetupError(`setup: npm ${args.join(' ')} failed (exit ${result.status ?? result.signal})`, result.status || 1);
  }
}

// tsc emits even when type-checking fails; its build info remembers the errors.
function hadErrors(buildInfo) {
  try {
    return /"errors":true|"category":1\b/.test(readFileSync(buildInfo, 'utf8'));
  } catch {
    return false;
  }
}

function staleBuilds(dir) {
  const base = newest(join(dir, 'tsconfig.base.json'));
  return outputs
    .filter(([pkg, entry]) => {
      const built = mtime(join(dir, pkg, entry));
      if (built === undefined || hadErrors(join(dir, pkg, 'dist/.tsbuildinfo'))) return true;
      // tsc -b may skip re-emitting unchanged files and only touch .tsbuildinfo.
      const done = Math.max(built, mtime(join(dir, pkg, 'dist/.tsbuildinfo')) ?? 0);
      const inputs = Math.max(base, newest(join(dir, pkg, 'src')), newest(join(dir, pkg, 'tsconfig.json')));
      return inputs > done;
    })
    .map(([pkg]) => pkg);
}

export function setup(dir = root) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 12)) {
    throw new SetupError(`setup: Node ${process.versions.node} is too old; replyflow needs Node 20.12 or newer`);
  }

  // npm writes node_modules/.package-lock.json last, so it marks a finished install.
  const installed = mtime(join(dir, 'node_modules/.package-lock.json')) ?? mtime(join(dir, 'node_modules'));
  if (installed === undefined || installed < (mtime(join(dir, 'package-lock.json')) ?? 0)) {
    console.log(`setup: ${installed === undefined ? 'node_modules missing' : 'package-lock.json changed'}, running npm ci`);
    npm(['ci'], dir);
  }

  const stale = staleBuilds(dir);
  if (stale.length > 0) {
    console.log(`setup: ${stale.join(', ')} not built or out of date, running npm run build`);
    npm(['run', 'build'], dir);
    const missing = outputs.map(([pkg, entry]) => join(pkg, entry)).filter((file) => mtime(join(dir, file)) === undefined);
    if (missing.length > 0) throw new SetupError(`setup: npm run build did not produce ${missing.join(', ')}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    setup();
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    console.error(err.message);
    process.exit(err.exitCode);
  }
}
