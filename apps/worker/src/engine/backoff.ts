const MAX_BACKOFF_MS = 60 * 60 * 1000;

/**
 * Full-jitter exponential backoff: a uniform delay in [0, base * 2^(attempt-1)],
 * capped at one hour. Jitter spreads a burst of failures so a recovering
 * receiver is not hit by every retry at once.
 */
export function backoffDelayMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * random());
}

/** Retry-After is either seconds or an HTTP date; anything else means "use backoff". */
export function parseRetryAfterMs(header: string | undefined, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, MAX_BACKOFF_MS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), MAX_BACKOFF_MS);
}
