import { parseLoadArgs } from './lib/cli-options.js';
import { driveFromCli } from './lib/drive.js';
import { renderMarkdown, writeResults } from './lib/report.js';

/**
 * npm run bench -- --scenario login-browse --vus 20 --duration 60 [--think-ms 0-1000]
 *   [--base-url http://127.0.0.1:8000 | DATABASE_URL=...] [--users 500] [--server-pid PID]
 * Prints the markdown table and writes JSON + markdown under bench/results/.
 * Exits 1 when any request failed.
 */
async function main() {
  const options = parseLoadArgs(process.argv.slice(2));
  const result = await driveFromCli(options);
  const markdown = renderMarkdown(result);
  const files = await writeResults(`${result.scenario}-${options.vus}vu`, result, markdown);
  console.log(`\n${markdown}\nwritten: ${files.join(', ')}`);
  process.exitCode = result.failures > 0 ? 1 : 0;
}

main().catch((error) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
