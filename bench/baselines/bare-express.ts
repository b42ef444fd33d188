// Contender (a), the ceiling: Express 5 parsing the JSON body and answering 202,
// nothing else. Run as its own process: PORT, HOST.
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.use(express.json({ limit: '1mb' }));
app.post('/webhooks/notifyer', (_req, res) => {
  res.status(202).json({ status: 'queued' });
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, process.env.HOST ?? '127.0.0.1', () => console.log(`bare express listening on ${port}`));
process.on('SIGTERM', () => process.exit(0));
