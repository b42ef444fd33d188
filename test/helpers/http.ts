import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function post(
  url: string,
  body: string | Buffer,
  headers: OutgoingHttpHeaders = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<HttpResponse> {
  return send('POST', url, headers, body, timeoutMs);
}

export function get(url: string, headers: OutgoingHttpHeaders = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HttpResponse> {
  return send('GET', url, headers, undefined, timeoutMs);
}

export function put(url: string, headers: OutgoingHttpHeaders = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HttpResponse> {
  return send('PUT', url, headers, undefined, timeoutMs);
}

function send(
  method: string,
  url: string,
  headers: OutgoingHttpHeaders,
  body: string | Buffer | undefined,
  timeoutMs: number,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    // agent: false and connection: close, so no test shares a socket with another or keeps one open.
    const req = request(url, { method, agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: parseJson(text) });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      // A server may answer (413) and close before the whole body is written: the write then fails
      // with EPIPE or ECONNRESET, but the answer stands. A truncated answer still fails through res.
      if (!answered) reject(err);
    });
    req.end(body);
  });
}

/** The parsed JSON, or undefined when text is not JSON. */
export function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
