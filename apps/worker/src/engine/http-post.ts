import { Agent, errors, type Dispatcher } from 'undici';
import { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
import { parseRetryAfterMs } from './backoff.js';

export interface PostResult {
  status: number;
}

/** As much of an answer's body as is read before its connection is dropped instead: undici's `body.dump()` default. */
const DISCARDED_BODY_LIMIT = 128 * 1024;

/**
 * One keep-alive connection pool per worker: Node's global fetch costs a worker
 * about 2.5x its throughput here. Its connections are not capped: the POSTs in
 * flight are bounded by the jobs in flight (WORKER_CONCURRENCY for each queue
 * of each shard, inline attempts and workflow jobs alike), and a cap below
 * that made an attempt wait for a connection of our own, its deadline
 * running, and fail as a timeout of an endpoint it never reached.
 */
export function createHttpAgent(): Agent {
  return new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
}

/**
 * POSTs and turns the answer into the error class that says what happens next:
 * 2xx resolves; 429 is RetryAfterError; other 4xx PermanentError; 5xx, timeouts
 * and network failures TransientError.
 *
 * It dispatches on the agent with a handler of its own rather than calling
 * `undici.request`, which builds a stream for the answer's body, an async
 * resource and an abort listener that nothing here reads: half of the CPU an
 * exchange costs the worker (docs/performance.md).
 */
export async function postJson(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<PostResult> {
  const target = targetOf(url);
  const answer = await new Promise<Answer>((resolve, reject) => {
    agent.dispatch(
      { origin: target.origin, path: target.path, method: 'POST', headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
      new Exchange(timeoutMs, resolve, reject),
    );
  });
  const { status, retryAfter } = answer;
  if (status >= 200 && status < 300) return { status };
  if (status === 429) {
    throw new RetryAfterError(`HTTP 429 from ${target.host}`, parseRetryAfterMs(retryAfter) ?? 0, status);
  }
  if (status >= 400 && status < 500) throw new PermanentError(`HTTP ${status} from ${target.host}`, status);
  throw new TransientError(`HTTP ${status} from ${target.host}`, status, 'http');
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
}

interface Target {
  origin: string;
  path: string;
  host: string;
}

// URLs come from the configuration: a handful, parsed once each.
const targets = new Map<string, Target>();

function targetOf(url: string): Target {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: parsed.pathname + parsed.search, host: parsed.host };
    targets.set(url, target);
  }
  return target;
}

/**
 * One exchange, under one deadline for the whole of it. Once the status is in
 * the receiver has answered, and that answer stands: the body is read and
 * dropped only so the connection can be used again.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private status = 0;
  private retryAfter: string | undefined;
  private received = 0;
  private settled = false;
  private controller: Dispatcher.DispatchController | undefined;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly timeoutMs: number,
    private readonly resolve: (answer: Answer) => void,
    private readonly reject: (error: TransientError) => void,
  ) {
    this.deadline = setTimeout(() => this.end(this.timeout(), true), timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A deadline passed while the request waited for a connection: never send
    // it. Throwing fails it before it is written and keeps the connection for
    // the next request; controller.abort() would destroy the connection.
    if (this.settled) throw new errors.RequestAbortedError();
    this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    this.status = statusCode;
    const retryAfter = headers['retry-after'];
    this.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > DISCARDED_BODY_LIMIT) this.end(undefined, true);
  }

  onResponseEnd(): void {
    this.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.end(isTimeout(error) ? this.timeout() : new TransientError(describeNetworkError(error), undefined, 'network'));
  }

  /** Settles once: with the status when there is one, else with the failure; drops the connection when asked. */
  private end(failure?: TransientError, dropConnection = false): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    if (this.status >= 200) this.resolve({ status: this.status, retryAfter: this.retryAfter });
    else this.reject(failure ?? new TransientError('the answer ended before its status', undefined, 'network'));
    if (dropConnection) this.controller?.abort(new errors.RequestAbortedError());
  }

  private timeout(): TransientError {
    return new TransientError(`no answer within ${this.timeoutMs} ms`, undefined, 'timeout');
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError;
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  return code ? `network error ${code}` : `network error: ${(error as Error).message}`;
}
