import type { BenchConfig } from './config.js';
import type { BenchRedis } from './redis.js';
import type { Template } from './payloads.js';

/** What every section gets: the settings, the one private Redis, the payload templates. */
export interface BenchContext {
  config: BenchConfig;
  redis: BenchRedis;
  templates: Template[];
}

/** Reads one counter of a Prometheus text page, summing over the label sets that match. */
export async function scrapeCounter(metricsUrl: string, name: string, labelMatch = ''): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(labelMatch)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
