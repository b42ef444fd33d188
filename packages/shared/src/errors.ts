/** A bad configuration value: the process prints one line naming `variable` and exits 1. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Retrying cannot help (a 4xx other than 429): the event goes straight to the dead-letter queue. */
export class PermanentError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PermanentError';
  }
}

/** The other side asked us to wait (a 429 with `Retry-After`): retry no sooner than `retryAfterMs`. */
export class RetryAfterError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RetryAfterError';
  }
}

/** A failure worth retrying with backoff (5xx, timeout, network error). */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly kind: string = 'transient',
  ) {
    super(message);
    this.name = 'TransientError';
  }
}
