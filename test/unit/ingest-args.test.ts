import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { isCalendarDate, parseIngestArgs } from '../../src/cli/ingest.args.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

describe('npm run ingest arguments', () => {
  it.each([
    [['--from', '2026-01-01', '--to', '2026-01-31'], { from: '2026-01-01', to: '2026-01-31', force: false }],
    [['--from', '2024-02-29', '--to', '2024-02-29', '--force'], { from: '2024-02-29', to: '2024-02-29', force: true }],
  ])('accepts %j', (argv, args) => {
    expect(parseIngestArgs(argv)).toEqual({ kind: 'run', args });
  });

  it.each([
    [['--from', '2026-13-01', '--to', '2026-13-02'], '--from: 2026-13-01 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '2026-02-30', '--to', '2026-03-01'], '--from: 2026-02-30 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '2025-01-01', '--to', '2025-02-29'], '--to: 2025-02-29 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '2026-1-1', '--to', '2026-01-02'], '--from: 2026-1-1 is not a calendar date (YYYY-MM-DD)'],
    [['--from', '', '--to', '2026-01-02'], '--from: "" is not a calendar date (YYYY-MM-DD)'],
    [['--from', '1800-01-01', '--to', '2026-11-01'], '--from: 1800-01-01 is outside 1900-01-01 to 2999-12-31'],
    [['--from', '2026-01-01', '--to', '3026-01-01'], '--to: 3026-01-01 is outside 1900-01-01 to 2999-12-31'],
    [['--from', '2026-01-01'], '--to: is required (YYYY-MM-DD)'],
    [['--from', '2026-02-01', '--to', '2026-01-31'], '--from 2026-02-01 is after --to 2026-01-31'],
    [['--from', '2026-01-01', '--to', '2026-01-02', '--force=yes'], /'--force' does not take an argument/],
    [['--form', '2026-01-01', '--to', '2026-01-02'], "Unknown option '--form' (did you mean --from?)"],
    [['--from', '2026-01-01', '--to', '2026-01-02', 'again'], /Unexpected argument 'again'/],
    [['--to', '2026-01-02', '--from'], /'--from <value>' argument missing/],
    [
      ['--from', '2026-01-01', '--to', '2026-03-31', '--from', '2026-02-01'],
      '--from: given 2 times (2026-01-01, 2026-02-01); give it once',
    ],
    [
      ['--from', '2026-01-01', '--to', '2026-03-31', '--to=2026-01-31'],
      '--to: given 2 times (2026-03-31, 2026-01-31); give it once',
    ],
  ])('refuses %j as a usage error naming the option', (argv, message) => {
    const parsed = parseIngestArgs(argv);
    expect(parsed.kind).toBe('usage-error');
    if (parsed.kind !== 'usage-error') return;
    if (typeof message === 'string') expect(parsed.message.split('\n')).toContain(message);
    else expect(parsed.message).toMatch(message);
  });
  it('says a stray word from npm is what it passes on without "--" after the script, with the command', () => {
    // `npm run ingest --from 2026-01-01 --to 2026-01-02`, without `--`: npm keeps the options and passes a date.
    vi.stubEnv('npm_lifecycle_event', 'ingest');
    try {
      expect(parseIngestArgs(['2026-01-01'])).toEqual({
        kind: 'usage-error',
        message: `Unexpected argument '2026-01-01'. This command does not take positional arguments\nWas it run without "--" after the script's name? npm keeps the options before "--" for itself and passes on only the words after them: npm run ingest -- --from 2025-01-01 --to 2025-03-31`,
      });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('reports both dates when both are wrong', () => {
    expect(parseIngestArgs(['--from', '2026-00-10', '--to', '2026-04-31'])).toEqual({
      kind: 'usage-error',
      message:
        '--from: 2026-00-10 is not a calendar date (YYYY-MM-DD)\n--to: 2026-04-31 is not a calendar date (YYYY-MM-DD)',
    });
  });

  it.each([
    [[], { kind: 'incremental', force: false }],
    [['--force'], { kind: 'incremental', force: true }],
  ])('takes %j, without --from and --to, as one incremental run (cron)', (argv, parsed) => {
    expect(parseIngestArgs(argv)).toEqual(parsed);
  });

  it('refuses --to without --from, as a backfill needs both', () => {
    expect(parseIngestArgs(['--to', '2026-01-31'])).toEqual({
      kind: 'usage-error',
      message: '--from: is required (YYYY-MM-DD)',
    });
  });

  it('asks for the usage with --help', () => {
    expect(parseIngestArgs(['--help'])).toEqual({ kind: 'help' });
  });

  it.each([
    ['2026-12-31', true],
    ['2000-02-29', true],
    ['1900-02-29', false],
    ['2026-04-31', false],
    ['2026-12-32', false],
    ['20261231', false],
    ['2026-12-31T00:00:00', false],
  ])('isCalendarDate(%s) is %s', (text, expected) => {
    expect(isCalendarDate(text)).toBe(expected);
  });

  it('are shown in the README in both forms, each one the tool accepts, the cron one pointing to its section', () => {
    // The README showed only the backfill, so who set up cron from it did not learn that
    // `npm run ingest` with no dates is the one incremental run cron should make.
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    const shown = [...readme.matchAll(/`npm run ingest((?: -- [^`]*)?)`([^\n]*)/g)].map((match) => ({
      argv: (match[1] as string).replace(/^ -- /, '').split(' ').filter(Boolean),
      rest: match[2] as string,
    }));
    expect(shown.map(({ argv }) => parseIngestArgs(argv).kind)).not.toContain('usage-error');
    expect(shown.map(({ argv }) => parseIngestArgs(argv).kind)).toContain('run');
    const forCron = shown.filter(
      ({ argv, rest }) => parseIngestArgs(argv).kind === 'incremental' && rest.includes('"From cron"'),
    );
    expect(forCron).toHaveLength(1);
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/ingestion.md'), 'utf8');
    expect(guide).toMatch(/^## From cron$/m);
  });
});
