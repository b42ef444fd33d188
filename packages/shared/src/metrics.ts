import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Role } from './config.js';

export const INGEST_OUTCOMES = [
  'queued',
  'duplicate',
  'payload_too_large',
  'unsupported_media_type',
  'invalid_signature',
  'invalid_json',
  'invalid_payload',
  'unavailable',
  'method_not_allowed',
  'internal_error',
] as const;
export type IngestOutcome = (typeof INGEST_OUTCOMES)[number];

export const JOB_OUTCOMES = ['completed', 'retried', 'dead_lettered'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const jobBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const lagBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export function createRegistry(role: Role): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: role });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function redisUpGauge(registry: Registry): Gauge {
  return new Gauge({
    name: 'replyflow_redis_up',
    help: '1 when the last Redis command succeeded, else 0',
    registers: [registry],
  });
}

export function ingestMetrics(registry: Registry) {
  const requests = new Counter({
    name: 'replyflow_ingest_requests_total',
    help: 'Requests to the webhook path, by answer',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of INGEST_OUTCOMES) requests.inc({ outcome }, 0);
  const duration = new Histogram({
    name: 'replyflow_ingest_request_duration_seconds',
    help: 'Time to answer a webhook request',
    buckets: latencyBuckets,
    registers: [registry],
  });
  return { requests, duration, redisUp: redisUpGauge(registry) };
}

export function workerMetrics(
  registry: Registry,
  workflows: readonly string[],
  queues: readonly string[],
  limits: readonly string[] = ['forward', 'send'],
) {
  const jobs = new Counter({
    name: 'replyflow_jobs_total',
    help: 'Workflow attempts, by outcome',
    labelNames: ['workflow', 'outcome'],
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'replyflow_job_duration_seconds',
    help: 'Duration of one workflow attempt',
    labelNames: ['workflow'],
    buckets: jobBuckets,
    registers: [registry],
  });
  const eventLag = new Histogram({
    name: 'replyflow_event_lag_seconds',
    help: 'From acceptance by the ingest to completion of the workflow',
    labelNames: ['workflow'],
    buckets: lagBuckets,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'replyflow_rate_limited_total',
    help: 'Waits for a shared rate limit',
    labelNames: ['limit'],
    registers: [registry],
  });
  const queueJobs = new Gauge({
    name: 'replyflow_queue_jobs',
    help: 'Jobs in each queue, by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
  });
  const oldestWaiting = new Gauge({
    name: 'replyflow_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting in each queue',
    labelNames: ['queue'],
    registers: [registry],
  });
  for (const workflow of workflows) {
    for (const outcome of JOB_OUTCOMES) jobs.inc({ workflow, outcome }, 0);
    jobDuration.zero({ workflow });
    eventLag.zero({ workflow });
  }
  for (const limit of new Set(['forward', 'send', ...limits])) rateLimited.inc({ limit }, 0);
  for (const queue of queues) {
    for (const state of QUEUE_STATES) queueJobs.set({ queue, state }, 0);
    oldestWaiting.set({ queue }, 0);
  }
  return { jobs, jobDuration, eventLag, rateLimited, queueJobs, oldestWaiting, redisUp: redisUpGauge(registry) };
}
