import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Deliveries } from './delivery.js';
import { emitRoute } from './emitter.js';
import { MessageGenerator } from './generator.js';
import { HttpError, readJsonBody, sendJson, type Route } from './http-io.js';
import { managementRoutes } from './management-api.js';
import { outboxRoutes } from './outbox.js';
import { WebhookStore } from './webhook-store.js';

export interface EmulatorOptions {
  /** Multiplies the retry schedule (1: Notifyer's real delays). */
  timeScale: number;
  log: (line: string) => void;
}

export interface Emulator {
  server: Server;
  close(): Promise<void>;
}

/** A local Notifyer: the management API, the send endpoint, and /emit to make it call webhooks. */
export function createEmulator(options: EmulatorOptions): Emulator {
  const store = new WebhookStore();
  const deliveries = new Deliveries(store, options.timeScale, options.log);
  const routes: Route[] = [
    ...managementRoutes(store, options.log),
    ...outboxRoutes(options.log),
    emitRoute(store, new MessageGenerator(), deliveries, options.log),
  ];
  const server = createServer((req, res) => void dispatch(routes, req, res, options.log));
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        deliveries.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function dispatch(routes: readonly Route[], req: IncomingMessage, res: ServerResponse, log: (line: string) => void): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://emulator').pathname;
  try {
    const route = routes.find((candidate) => candidate.method === req.method && candidate.path.test(path));
    // Notifyer (Xano) answers an unknown path or method alike.
    if (!route) throw new HttpError(404, 'ERROR_CODE_NOT_FOUND', 'Unable to locate request.');
    const params = route.path.exec(path)!.slice(1);
    await route.handle({ req, res, params, readBody: () => readJsonBody(req) });
  } catch (err) {
    if (res.headersSent) return;
    if (err instanceof HttpError) return sendJson(res, err.status, { code: err.code, message: err.message, payload: err.payload });
    log(`error: ${req.method} ${path}: ${(err as Error).message}`);
    sendJson(res, 500, { code: 'ERROR_FATAL', message: 'Internal error.', payload: '' });
  }
}
