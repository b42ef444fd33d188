import { Agent, errors, request } from 'undici';
import { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
import { parseRetryAfterMs } from './backoff.js';

export interface PostResult {
  status: number;
}

/**
 * One keep-alive connection pool per worker: Node's global fetch costs a worker
 * about 2.5x its throughput here.
 */
export function createHttpAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
}

/**
 * POSTs and turns the answer into the error class that says what happens next:
 * 2xx resolves; 429 is RetryAfterError; other 4xx PermanentError; 5xx, timeouts
 * and network failures TransientError.
 */
export async function postJson(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<PostResult> {
  let status: number;
  let retryAfter: string | undefined;
  // One deadline for the whole exchange. AbortSignal.timeout would do the same,
  // but its timer outlives the request (10 s by default, thousands alive at
  // once) and it cost the worker more than the rest of this function.
  const controller = new AbortController();
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    const response = await request(url, {
      method: 'POST',
      headers,
      body,
      dispatcher: agent,
      signal: controller.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = response.statusCode;
    const header = response.headers['retry-after'];
    retryAfter = Array.isArray(header) ? header[0] : header;
    await response.body.dump();
  } catch (error) {
    const timeout = timedOut || isTimeout(error);
    throw new TransientError(timeout ? `no answer within ${timeoutMs} ms` : describeNetworkError(error), undefined, timeout ? 'timeout' : 'network');
  } finally {
    clearTimeout(deadline);
  }
  if (status >= 200 && status < 300) return { status };
  if (status === 429) {
    throw new RetryAfterError(`HTTP 429 from ${new URL(url).host}`, parseRetryAfterMs(retryAfter) ?? 0, status);
  }
  if (status >= 400 && status < 500) throw new PermanentError(`HTTP ${status} from ${new URL(url).host}`, status);
  throw new TransientError(`HTTP ${status} from ${new URL(url).host}`, status, 'http');
}

function isTimeout(error: unknown): boolean {
  return error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError;
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  return code ? `network error ${code}` : `network error: ${(error as Error).message}`;
}
