import { readTransparentHugePagesMode } from '../../src/shared/transparent-huge-pages.js';
import { type AppServer, startAppServer } from './app-server.js';
import type { LoadCliOptions } from './cli-options.js';
import { readDatabaseSettings } from './database-settings.js';
import { runScenario, type ScenarioResult } from './run-scenario.js';
import { findScenario } from './scenarios.js';

/**
 * Runs the scenario of parsed CLI options against --base-url, or against the app
 * started here in production mode on DATABASE_URL (stopped afterwards either way).
 */
export async function driveFromCli(options: LoadCliOptions): Promise<ScenarioResult> {
  const scenario = findScenario(options.scenario);
  let server: AppServer | undefined;
  let baseUrl = options.baseUrl;
  let serverPid = options.serverPid;
  if (!baseUrl) {
    if (!options.databaseUrl) {
      throw new Error('set DATABASE_URL (a database filled by npm run bench:data) or pass --base-url of a running app');
    }
    console.log(
      `starting the app (${scenario.serverEnv?.APP_ENV ?? 'production'}, WEB_CONCURRENCY=${options.webConcurrency}, ${
        options.isFromSource ? 'src/server.ts through tsx' : 'compiled: dist/src/server.js'
      })...`,
    );
    server = await startAppServer({
      databaseUrl: options.databaseUrl,
      webConcurrency: options.webConcurrency,
      webhookSecret: options.webhookSecret,
      extraEnv: { ...scenario.serverEnv, ...options.serverEnv },
      isFromSource: options.isFromSource,
    });
    baseUrl = new URL(server.baseUrl);
    serverPid = server.pid;
  } else if (!serverPid) {
    console.warn(
      `no server process found listening on ${baseUrl.host}; CPU and RSS are not reported (pass --server-pid)`,
    );
  }
  const stopOnSignal = () => {
    void server?.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  try {
    const result = {
      ...(await runScenario({ ...options, scenario, baseUrl, serverPid })),
      hostTransparentHugePages: await readTransparentHugePagesMode(),
    };
    if (!options.databaseUrl) return result;
    return { ...result, database: await readDatabaseSettings(options.databaseUrl) };
  } finally {
    process.off('SIGINT', stopOnSignal);
    await server?.stop();
  }
}
