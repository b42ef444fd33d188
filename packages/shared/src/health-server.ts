import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { listen } from './listen.js';

export interface HealthServerOptions {
  port: number;
  host: string;
  registry: Registry;
  isReady: () => boolean;
  /** Refreshes gauges read from elsewhere (Redis) before a scrape is answered. */
  beforeScrape?: () => Promise<void>;
}

const json = (status: string) => JSON.stringify({ status });

/** `/metrics`, `/healthz` and `/readyz` on their own port, so scrapes never queue behind webhooks. */
export async function startHealthServer(options: HealthServerOptions): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/metrics') {
      Promise.resolve(options.beforeScrape?.())
        .catch(() => {})
        .then(() => options.registry.metrics())
        .then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(json('ok'));
    } else if (path === '/readyz') {
      const ready = options.isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(json(ready ? 'ready' : 'unavailable'));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found', message: 'no such path' }));
    }
  });
  await listen(server, options.port, options.host);
  return { server, port: (server.address() as AddressInfo).port };
}
