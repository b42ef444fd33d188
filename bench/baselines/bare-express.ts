// Contender (a), the ceiling: Express 5 parsing the JSON body and answering 202,
// nothing else. Run as its own process: PORT, HOST. With
// BARE_SERVER=app-prototypes, the same app on the HTTP server replyflow's
// ingest makes (requests born with the app's prototypes): contender (a′),
// which shows what that server is worth to Express alone.
import express from 'express';
import { createExpressServer } from '@replyflow/ingest/dist/express-server.js';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '1mb' }));
app.post('/webhooks/notifyer', (_req, res) => {
  res.status(202).json({ status: 'queued' });
});

const port = Number(process.env.PORT ?? 3000);
const server = process.env.BARE_SERVER === 'app-prototypes' ? createExpressServer(app) : undefined;
const listening = () => console.log(`bare express listening on ${port}`);
if (server) server.listen(port, process.env.HOST ?? '127.0.0.1', listening);
else app.listen(port, process.env.HOST ?? '127.0.0.1', listening);
process.on('SIGTERM', () => process.exit(0));
