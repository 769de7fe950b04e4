import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from './app-server.js';
import { describeDatabaseSettings } from './database-settings.js';
import type { ScenarioResult } from './run-scenario.js';

export const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results');

const ms = (value: number) => value.toFixed(value < 10 ? 2 : 1);

function formatStatuses(statuses: Record<string, number>): string {
  return Object.entries(statuses)
    .map(([status, count]) => `${status}×${count}`)
    .join(' ');
}

/** The markdown report of one run: per-route table, iterations, server CPU and RSS, failures. */
export function renderMarkdown(result: ScenarioResult): string {
  const { options } = result;
  const think = options.thinkMs[1] > 0 ? `${options.thinkMs[0]}-${options.thinkMs[1]} ms` : 'none';
  const lines = [
    `### ${result.scenario}: ${options.vus} VUs, ${options.durationSec} s, think ${think}${
      options.rampMs > 0 ? `, ramp-up ${options.rampMs} ms` : ''
    }`,
    '',
    `${result.description}. Started ${result.startedAt} against ${options.baseUrl}.`,
    '',
    '| route | requests | failures | RPS | p50 ms | p95 ms | p99 ms | max ms | statuses |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...result.routes.map(
      (route) =>
        `| ${route.route} | ${route.requests} | ${route.failures} | ${route.rps.toFixed(1)} | ${ms(route.p50)} | ${ms(route.p95)} | ${ms(route.p99)} | ${ms(route.max)} | ${formatStatuses(route.statuses)} |`,
    ),
    '',
    `Iterations: ${result.completeIterations} complete of ${result.iterations} in ${result.elapsedSec.toFixed(1)} s = ${result.iterationsPerSec.toFixed(1)}/s. Failures: ${result.failures}.`,
  ];
  if (result.server) {
    const { server } = result;
    lines.push(
      '',
      `Server (pids ${server.pids.join(', ')}): CPU ${server.cpuPercent}% during the load (100% = one core); RSS ${server.rssStartTotalMb} MB idle -> ${server.rssEndTotalMb} MB at the end.`,
      '',
      '| pid | role | RSS idle MB | RSS max MB | RSS end MB |',
      '| ---: | --- | ---: | ---: | ---: |',
      ...server.processes.map(
        (process) =>
          `| ${process.pid} | ${process.role} | ${process.rssStartMb} | ${process.rssMaxMb} | ${process.rssEndMb} |`,
      ),
    );
  }
  if (result.database) lines.push('', `Database: ${describeDatabaseSettings(result.database)}`);
  lines.push('', `Host: transparent huge pages ${result.hostTransparentHugePages ?? 'unknown'}.`);
  const samples = [...result.setupRoutes, ...result.routes].flatMap((route) => Object.entries(route.failureSamples));
  if (result.setupError) samples.unshift([`setup: ${result.setupError}`, 1]);
  if (samples.length > 0) {
    lines.push('', 'Failures seen:', ...samples.map(([message, count]) => `- ${message} (×${count})`));
  }
  return `${lines.join('\n')}\n`;
}

/** Writes `<time>-<name>.json` and `.md` under bench/results/ and returns their paths. */
export async function writeResults(name: string, json: unknown, markdown: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = path.join(RESULTS_DIR, `${stamp}-${name}`);
  await writeFile(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  return [`${base}.json`, `${base}.md`];
}
