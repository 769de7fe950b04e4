import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { METRICS_CONTENT_TYPE } from '../../src/modules/metrics/metrics.routes.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

/*
 * "Readiness and audit chain" is a stat panel showing, per instance, the last value of its range
 * (lastNotNull). An instance that cannot be scraped (crashed, stopped, AppDown) exports no hpc_ready:
 * Prometheus ends its series at the first failed scrape, so the panel kept the last value it had, 1, and
 * drew that instance a green OK while AppDown paged for it (seen against the real Prometheus with the
 * app stopped: the panel's last point 1, up 0). Two instances here: one that answers, and one whose
 * /metrics starts failing, as a stopped app's would.
 */

const PROMETHEUS = '/usr/bin/prometheus';
const hasPrometheus = existsSync(PROMETHEUS);

const dashboard = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'grafana/dashboards/hpc-billing.json'), 'utf8')) as {
  panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[];
};

async function waitFor<T>(what: string, attempt: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await attempt().catch(() => undefined);
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A /metrics that answers `hpc_ready 1` (and `extra`) until it is told to fail. */
async function startExporter(extra = ''): Promise<{ server: http.Server; host: string; fail(): void }> {
  let isFailing = false;
  const server = http.createServer((_req, res) => {
    if (isFailing) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
    res.end(`# TYPE hpc_ready gauge\nhpc_ready 1\n# TYPE audit_chain_ok gauge\naudit_chain_ok 1\n${extra}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    fail() {
      isFailing = true;
    },
  };
}

describe.skipIf(!hasPrometheus)(
  'the dashboard\'s "Readiness and audit chain" with an instance Prometheus cannot scrape',
  () => {
    let prometheus: ChildProcess;
    let prometheusUrl: string;
    let workDir: string;
    let healthy: Awaited<ReturnType<typeof startExporter>>;
    let stopped: Awaited<ReturnType<typeof startExporter>>;
    // Only the instance that stops reports ingestion, as if every instance had stopped.
    const lastSuccess = Math.floor(Date.now() / 1000) - 100;

    /** Each series' points over the last minute, as a stat panel's range query asks for them. */
    async function rangeOf(
      expression: string,
    ): Promise<{ metric: Record<string, string>; values: [number, string][] }[]> {
      const end = Date.now() / 1000;
      const query = new URLSearchParams({ query: expression, start: String(end - 60), end: String(end), step: '1' });
      const response = await fetch(`${prometheusUrl}/api/v1/query_range?${query}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data: { result: { metric: Record<string, string>; values: [number, string][] }[] };
      };
      if (body.status !== 'success') throw new Error(`query failed: ${expression}: ${body.error}`);
      return body.data.result;
    }

    /** Per instance, the last point of a range query over the last minute, as the stat panel reduces it (lastNotNull). */
    async function lastPoints(expression: string): Promise<Map<string, string>> {
      const result = await rangeOf(expression);
      return new Map(result.map((series) => [series.metric.instance as string, series.values.at(-1)?.[1] as string]));
    }

    beforeAll(async () => {
      healthy = await startExporter();
      stopped = await startExporter(
        `# TYPE slurm_ingest_last_success_timestamp_seconds gauge\nslurm_ingest_last_success_timestamp_seconds ${lastSuccess}\n`,
      );
      workDir = await mkdtemp(path.join(os.tmpdir(), 'hpc-billing-prometheus-down-'));
      const configFile = path.join(workDir, 'prometheus.yml');
      await writeFile(
        configFile,
        [
          'global:',
          '  scrape_interval: 1s',
          'scrape_configs:',
          '  - job_name: hpc-billing',
          '    static_configs:',
          `      - targets: ['${healthy.host}', '${stopped.host}']`,
          '',
        ].join('\n'),
      );
      const port = await findFreePort();
      prometheusUrl = `http://127.0.0.1:${port}`;
      prometheus = spawn(
        PROMETHEUS,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${path.join(workDir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: 'ignore' },
      );
      await waitFor('Prometheus to be ready', async () =>
        (await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined,
      );
    }, 60_000);

    afterAll(async () => {
      if (prometheus && prometheus.exitCode === null) {
        const exited = new Promise((resolve) => prometheus.once('exit', resolve));
        prometheus.kill('SIGTERM');
        await exited;
      }
      if (workDir) await rm(workDir, { recursive: true, force: true });
      for (const exporter of [healthy, stopped]) {
        if (exporter) await new Promise((resolve) => exporter.server.close(resolve));
      }
    }, 30_000);

    it('draws it NO (0) once its scrapes fail, not the 1 it had before; the instance that answers stays OK', async () => {
      const panel = dashboard.panels.find((candidate) => candidate.title === 'Readiness and audit chain');
      const ready = panel?.targets?.find((target) => target.legendFormat?.startsWith('ready')) as { expr: string };
      const expression = ready.expr.replaceAll('$instance', '.*');
      await waitFor('both instances ready', async () => {
        const points = await lastPoints(expression);
        return points.get(healthy.host) === '1' && points.get(stopped.host) === '1' ? true : undefined;
      });
      stopped.fail();
      const points = await waitFor('the failing instance drawn 0', async () => {
        const up = await lastPoints('up{job="hpc-billing"}');
        if (up.get(stopped.host) !== '0') return undefined;
        // A few failed scrapes: what the panel draws is settled.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        return lastPoints(expression);
      });
      expect(Object.fromEntries(points)).toEqual({ [healthy.host]: '1', [stopped.host]: '0' });
    }, 60_000);

    // "Ingestion freshness" took the newest success from series that end with the scrapes: with every
    // instance stopped it kept the age it had at the last scrape (a green "1.7 min" for as long as the
    // app stayed down), where no ingestion has been known to succeed since.
    it('keeps counting "Ingestion freshness" up while no instance can be scraped, from the last success it read', async () => {
      const panel = dashboard.panels.find((candidate) => candidate.title === 'Ingestion freshness');
      const [expression] = (panel?.targets ?? []).map((target) => target.expr) as [string];
      await waitFor('the ingestion gauge scraped', async () =>
        (await rangeOf(expression)).length > 0 ? true : undefined,
      );
      stopped.fail();
      await waitFor('the instance reporting ingestion down', async () =>
        (await lastPoints('up{job="hpc-billing"}')).get(stopped.host) === '0' ? true : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const [series] = await rangeOf(expression);
      const [at, value] = series?.values.at(-1) ?? [0, 'none'];
      // The panel's last point is now, not the last scrape's, and says how long ago the last success was.
      expect(Date.now() / 1000 - at).toBeLessThan(2);
      expect(Number(value)).toBeCloseTo(at - lastSuccess, 0);
    }, 60_000);
  },
);
