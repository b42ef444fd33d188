import { InvalidArgumentError } from 'commander';

// Commander calls these on flag values; an InvalidArgumentError becomes
// "error: option '--x <v>' argument 'v' is invalid. <message>" and exit 2.

/** Whole seconds, 0 or more (`--waiting-duration`). */
export function parseSeconds(value: string): number {
  if (!/^\d{1,10}$/.test(value.trim())) throw new InvalidArgumentError('Expected whole seconds (0 or more).');
  return Number(value.trim());
}

/** 1 or more (`--count`, `--concurrency`). */
export function parsePositiveInt(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError('Expected a whole number, 1 or more.');
  }
  return parsed;
}

/** A number above 0, fractions allowed (`--rate 0.5`). */
export function parsePositiveNumber(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed <= 0) throw new InvalidArgumentError('Expected a number above 0.');
  return parsed;
}

/** 0 or more, fractions allowed (`--time-scale 0.001`; 0 retries at once). */
export function parseNonNegativeNumber(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('Expected a number, 0 or more.');
  return parsed;
}

/** 0 to 65535; 0 lets the system pick a free port. */
export function parsePort(value: string): number {
  const parsed = Number(value);
  if (!/^\d{1,5}$/.test(value.trim()) || parsed > 65535) throw new InvalidArgumentError('Expected a port number, 0 to 65535.');
  return parsed;
}

/** An absolute http:// or https:// URL. */
export function parseHttpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('Expected an absolute http(s) URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('Expected an http(s) URL.');
  return value;
}
