import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger, SecretSource, SignatureMode } from '@replyflow/shared';
import type { Answer } from './answer.js';
import type { EventStore } from './event-store.js';
import { HttpError, toHttpError } from './http-error.js';
import { webhookHandler } from './routes/webhook.js';

export const WEBHOOK_PATH = '/webhooks/notifyer';

export interface AppDeps {
  bodyLimitBytes: number;
  signatureMode: SignatureMode;
  secrets: SecretSource;
  store: EventStore;
  logger: Logger;
  answer: Answer;
  isReady: () => boolean;
}

/** Builds the Express app without listening, so tests and main.ts can mount it alike. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Every body is read (up to the limit) whatever its type: the size check comes
  // first in the contract's order, and the signature is computed on raw bytes.
  const rawBody = express.raw({ type: () => true, limit: deps.bodyLimitBytes });
  const handleWebhook = webhookHandler(deps);
  // Marks a webhook request for the answer's metrics (answer.ts).
  const timeWebhook = (res: Response) => {
    res.locals.webhookStart = performance.now();
  };
  // One handler that times, reads and handles, rather than three route
  // handlers: each step through Express's router costs the hot path
  // allocations. First in the stack, so no other route is matched before it.
  app.post(WEBHOOK_PATH, (req: Request, res: Response, next: NextFunction) => {
    timeWebhook(res);
    rawBody(req, res, (error?: unknown) => {
      if (error) return next(error);
      handleWebhook(req, res).catch(next);
    });
  });
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable' });
  });

  app.all(WEBHOOK_PATH, (_req, res) => {
    timeWebhook(res);
    res.set('allow', 'POST');
    throw new HttpError(405, 'method_not_allowed', `use POST on ${WEBHOOK_PATH}`);
  });
  app.use(() => {
    throw new HttpError(404, 'not_found', 'no such path');
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const httpError = toHttpError(error);
    if (httpError.status >= 500 && httpError.code !== 'unavailable') {
      deps.logger.error({ err: error, path: req.path }, 'unexpected error');
    }
    res.set(httpError.headers);
    // 413 leaves the unread part of the body on the socket; closing it keeps that body from being read as a request.
    if (httpError.status === 413) res.set('connection', 'close');
    deps.answer(res, httpError.status, httpError.body(), httpError.code === 'not_found' ? undefined : httpError.code);
  });
  return app;
}
