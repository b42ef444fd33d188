import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpCall {
  method: string;
  url: URL;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** The whole exchange, connect to last byte; past it the request is destroyed. */
  timeoutMs: number;
  agent?: HttpAgent;
}

/** No answer at all (refused, reset, timed out): what `send` counts as `error`. */
export class NoAnswerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NoAnswerError';
  }
}

/**
 * A pool of kept-alive sockets. Global fetch opens and tears down more than
 * this does under load, and measuring latency through it would measure undici.
 */
export function keepAliveAgent(url: URL, maxSockets: number): HttpAgent {
  const options = { keepAlive: true, maxSockets };
  return url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
}

/** One request over node:http or node:https, the body read as UTF-8 text. */
export function httpCall(call: HttpCall): Promise<HttpAnswer> {
  const request = call.url.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers: OutgoingHttpHeaders = { ...call.headers };
  if (call.body !== undefined) headers['content-length'] = Buffer.byteLength(call.body);
  return new Promise((resolve, reject) => {
    const req = request(call.url, { method: call.method, headers, agent: call.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(new NoAnswerError(err.message, { cause: err }));
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${call.timeoutMs} ms`)), call.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason = err.code && !err.message.includes(err.code) ? `${err.code} ${err.message}` : err.message;
      reject(new NoAnswerError(reason, { cause: err }));
    });
    req.end(call.body);
  });
}
