import { parseLoadArgs } from './lib/cli-options.js';
import { driveFromCli } from './lib/drive.js';
import { renderMarkdown, writeResults } from './lib/report.js';
import { computeRssGrowthPercent } from './lib/rss-growth.js';

// The soak: 10 minutes at 50 virtual users, RSS growth under 10%.
const GROWTH_LIMIT_PERCENT = 10;

/**
 * npm run bench:soak [-- --duration 600 --vus 50 --think-ms 0-1000 ...]
 * login-browse for 10 minutes, the server's RSS sampled every 10 s; reports the growth
 * from the end of the first minute (or tenth of the run) to the end.
 */
async function main() {
  const options = parseLoadArgs(process.argv.slice(2), {
    scenario: 'login-browse',
    vus: '50',
    duration: '600',
    thinkMs: '0-1000',
    sampleMs: '10000',
  });
  const result = await driveFromCli(options);
  const timeline = result.server?.rssTimelineMb ?? [];
  const warmupSec = Math.min(60, options.durationSec / 10);
  const growth = computeRssGrowthPercent(timeline, warmupSec);
  const soak = [
    '',
    `Soak: RSS growth ${growth}% from ${warmupSec} s to the end (target < ${GROWTH_LIMIT_PERCENT}%).`,
    '',
    '| at s | total RSS MB |',
    '| ---: | ---: |',
    ...timeline.map((sample) => `| ${sample.atSec} | ${sample.totalMb} |`),
  ].join('\n');
  const markdown = `${renderMarkdown(result)}${soak}\n`;
  const files = await writeResults(
    `soak-${result.scenario}-${options.vus}vu`,
    { ...result, rssGrowthPercent: growth },
    markdown,
  );
  console.log(`\n${markdown}\nwritten: ${files.join(', ')}`);
  if (timeline.length === 0)
    console.warn('no server process was sampled, so there is no RSS figure (pass --server-pid)');
  process.exitCode = result.failures > 0 ? 1 : 0;
}

main().catch((error) => {
  console.error(`bench:soak failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
