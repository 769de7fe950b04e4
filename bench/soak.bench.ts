import { parseLoadArgs, takeOption } from './lib/cli-options.js';
import { driveFromCli } from './lib/drive.js';
import { renderMarkdown, writeResults } from './lib/report.js';
import { computeRssGrowth, describeRssGrowth, windowMeansMb } from './lib/rss-growth.js';

// The soak: 10 minutes at 50 virtual users, RSS growth under 10%.
const GROWTH_LIMIT_PERCENT = 10;

function secondsOption(name: string, text: string, isZeroAllowed: boolean): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !isZeroAllowed))
    throw new Error(
      `--${name} must be a ${isZeroAllowed ? 'non-negative' : 'positive'} number of seconds, got "${text}"`,
    );
  return value;
}

/**
 * npm run bench:soak [-- --duration 600 --vus 50 --think-ms 0-1000 --window-sec 120 --warmup-sec 60 ...]
 * login-browse for 10 minutes, the server's RSS sampled every 10 s; reports the growth of the
 * mean RSS of the last `--window-sec` over the mean of the first `--window-sec` after the warm-up
 * (the first minute, or tenth of a shorter run). Single samples would mostly measure where in
 * V8's collection cycle each fell.
 */
async function main() {
  const window = takeOption(process.argv.slice(2), 'window-sec');
  const warmup = takeOption(window.rest, 'warmup-sec');
  const options = parseLoadArgs(warmup.rest, {
    scenario: 'login-browse',
    vus: '50',
    duration: '600',
    thinkMs: '0-1000',
    sampleMs: '10000',
  });
  const windowSec = secondsOption('window-sec', window.value ?? '120', false);
  const warmupSec =
    warmup.value === undefined
      ? Math.min(60, options.durationSec / 10)
      : secondsOption('warmup-sec', warmup.value, true);
  const result = await driveFromCli(options);
  const timeline = result.server?.rssTimelineMb ?? [];
  const growth = computeRssGrowth(timeline, { warmupSec, windowSec });
  const soak = [
    '',
    describeRssGrowth(growth, GROWTH_LIMIT_PERCENT),
    '',
    `Mean RSS of each ${windowSec} s from ${Math.round(warmupSec)} s on, MB: ${windowMeansMb(timeline, { warmupSec, windowSec }).join(', ')}.`,
    '',
    '| at s | total RSS MB |',
    '| ---: | ---: |',
    ...timeline.map((sample) => `| ${sample.atSec} | ${sample.totalMb} |`),
  ].join('\n');
  const markdown = `${renderMarkdown(result)}${soak}\n`;
  const files = await writeResults(
    `soak-${result.scenario}-${options.vus}vu`,
    { ...result, rssGrowthPercent: growth.percent, rssGrowth: growth },
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
