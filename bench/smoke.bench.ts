import os from 'node:os';
import { type AppServer, startAppServer } from './lib/app-server.js';
import { generateBenchData } from './lib/bench-data.js';
import { renderMarkdown } from './lib/report.js';
import { probeRoutes, runScenario } from './lib/run-scenario.js';
import { SCENARIOS } from './lib/scenarios.js';
import { createScratchDatabase } from './lib/scratch-database.js';

const USERS = 20;
const JOBS = 2000;
const VUS = 2;
const DURATION_SEC = 2;
const WEBHOOK_SECRET = 'bench-smoke-webhook-secret';

type Outcome = { scenario: string; verdict: 'ok' | 'FAILED' | 'skipped'; detail: string };

const USAGE = `Usage: npm run bench:smoke

Runs every load scenario briefly (${VUS} virtual users for ${DURATION_SEC} s each) against the app in production
mode, on a fresh scratch database with ${USERS} users and ${JOBS} jobs: on DATABASE_URL's server when it is
set (a database of its own, dropped afterwards), else on an embedded PostgreSQL. It checks that
every scenario runs without failures and asserts no timings.

Exits 0 when every scenario whose routes exist ran clean, 1 when one failed, 64 for an argument
(it takes none but --help).`;

/** --help (or -h) prints the usage; anything else stops before a database is touched. */
function readArguments(args = process.argv.slice(2)) {
  if (args.length === 0) return;
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
    console.log(USAGE);
    process.exit(0);
  }
  console.error(`bench:smoke takes no arguments but --help (got '${args.join(' ')}')\n\n${USAGE}`);
  process.exit(64);
}

/**
 * npm run bench:smoke: a fresh database (DATABASE_URL's server or an embedded one) with a
 * small data set, the app in production mode, every scenario at 2 virtual users for 2 s.
 * Exits 1 if a scenario whose routes exist had any failure. Asserts no timings.
 */
async function main() {
  readArguments();
  const started = Date.now();
  const database = await createScratchDatabase(process.env.DATABASE_URL);
  let server: AppServer | undefined;
  let scenarioServer: AppServer | undefined;
  const outcomes: Outcome[] = [];
  try {
    const data = await generateBenchData({ databaseUrl: database.url, users: USERS, jobs: JOBS });
    console.log(`seeded ${data.users} users and ${data.jobs} jobs (${data.jobsPerSecond} rows/s)`);
    server = await startAppServer({
      databaseUrl: database.url,
      webConcurrency: Math.min(2, os.availableParallelism()),
      webhookSecret: WEBHOOK_SECRET,
    });
    for (const scenario of SCENARIOS) {
      await scenarioServer?.stop();
      // A scenario with settings of its own gets a server of its own.
      scenarioServer = scenario.serverEnv
        ? await startAppServer({
            databaseUrl: database.url,
            webConcurrency: 1,
            webhookSecret: WEBHOOK_SECRET,
            extraEnv: scenario.serverEnv,
          })
        : undefined;
      const target = scenarioServer ?? server;
      const baseUrl = new URL(target.baseUrl);
      const probe = await probeRoutes(baseUrl, scenario.probes);
      if (probe.error) {
        outcomes.push({ scenario: scenario.name, verdict: 'FAILED', detail: `probe: ${probe.error}` });
        continue;
      }
      if (probe.missing.length > 0) {
        outcomes.push({
          scenario: scenario.name,
          verdict: 'skipped',
          detail: `skipped: route not on this build (${probe.missing.join(', ')} answered 404)`,
        });
        continue;
      }
      const result = await runScenario({
        baseUrl,
        scenario,
        vus: VUS,
        durationSec: DURATION_SEC,
        thinkMs: [0, 0],
        users: USERS,
        // Half the iterations create a receipt, so a 2 s run surely exercises it.
        receiptShare: 0.5,
        maxIterationsPerVu: 100_000,
        webhookSecret: WEBHOOK_SECRET,
        currency: 'THB',
        serverPid: target.pid,
        sampleIntervalMs: 1000,
      });
      const isClean = result.failures === 0 && result.completeIterations > 0;
      if (!isClean) console.log(renderMarkdown(result));
      const requests = result.routes.reduce((sum, route) => sum + route.requests, 0);
      outcomes.push({
        scenario: scenario.name,
        verdict: isClean ? 'ok' : 'FAILED',
        detail: `${requests} requests, ${result.completeIterations} iterations, ${result.failures} failures${result.setupError ? `: ${result.setupError}` : ''}`,
      });
    }
  } finally {
    await scenarioServer?.stop();
    await server?.stop();
    await database.drop();
  }
  console.log('\n| scenario | result | detail |\n| --- | --- | --- |');
  for (const outcome of outcomes) console.log(`| ${outcome.scenario} | ${outcome.verdict} | ${outcome.detail} |`);
  const failed = outcomes.filter((outcome) => outcome.verdict === 'FAILED');
  console.log(
    `\nbench:smoke ${failed.length === 0 ? 'passed' : `FAILED (${failed.map((outcome) => outcome.scenario).join(', ')})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  process.exitCode = failed.length === 0 ? 0 : 1;
}

main().catch((error) => {
  console.error(`bench:smoke failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
