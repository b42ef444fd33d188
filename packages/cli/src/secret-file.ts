import { accessSync, appendFileSync, chmodSync, constants, mkdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CommandFailedError } from './errors.js';

const PRIVATE = 0o600;

export interface PreparedSecretFile {
  /** Absolute, so the operator sees exactly which file the ingest must read. */
  path: string;
  /** The mode the file had when it was open to other users and tightened to 0600. */
  tightenedFrom?: number;
}

/**
 * Runs before Notifyer is asked to create a webhook: the secret is shown only
 * once, so a file that cannot take it must stop the create, not lose the secret.
 * Creates the parent folder (0700); tightens a file others can read to 0600,
 * the mode a file of secrets has, and changes nothing else in it.
 */
export function prepareSecretFile(path: string): PreparedSecretFile {
  const absolute = resolve(path);
  try {
    mkdirSync(dirname(absolute), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new CommandFailedError(`cannot create the folder of the secret file ${absolute}: ${(err as Error).message}; nothing was created`);
  }
  const stats = statOrUndefined(absolute);
  assertWritable(stats ? absolute : dirname(absolute), absolute);
  if (!stats) return { path: absolute };
  if (!stats.isFile()) throw new CommandFailedError(`the secret file ${absolute} is not a regular file; nothing was created`);
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) === 0) return { path: absolute };
  try {
    chmodSync(absolute, PRIVATE);
  } catch (err) {
    throw new CommandFailedError(`the secret file ${absolute} is open to other users (mode ${octal(mode)}) and cannot be made 0600: ${(err as Error).message}; nothing was created`);
  }
  return { path: absolute, tightenedFrom: mode };
}

/**
 * Appends `secret` as a line of its own (after a newline when the last line
 * has none), never rewriting what is there: earlier lines are secrets the
 * ingest still accepts. Returns the secret's line number.
 */
export function appendSecret(path: string, secret: string): number {
  if (secret.trim() === '' || /[\r\n]/.test(secret)) throw new CommandFailedError('Notifyer returned a signature secret that is empty or spans lines; nothing was written');
  const existing = readOrEmpty(path);
  const separator = existing.length > 0 && !existing.endsWith('\n') ? '\n' : '';
  appendFileSync(path, `${separator}${secret}\n`, { mode: PRIVATE });
  chmodSync(path, PRIVATE);
  return `${existing}${separator}`.split('\n').length;
}

/** The newest secret: the last non-empty line, or undefined when the file is missing or empty. */
export function lastSecret(path: string): string | undefined {
  const lines = readOrEmpty(path)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1);
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new CommandFailedError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CommandFailedError(`cannot read the secret file ${path}: ${(err as Error).message}; nothing was created`);
  }
}

function assertWritable(target: string, file: string): void {
  try {
    accessSync(target, constants.W_OK);
  } catch {
    throw new CommandFailedError(`cannot write the secret file ${file}; nothing was created`);
  }
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
