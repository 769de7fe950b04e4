import { describe, expect, it } from 'vitest';
import { benchUserFor, benchUsername } from '../../bench/lib/bench-users.js';
import { parseBillingArgs, spreadBenchUsers } from '../../bench/lib/billing-data.js';
import { parseLoadArgs, parseRampMs, parseServerEnv, parseThinkMs, takeOption } from '../../bench/lib/cli-options.js';
import { CookieJar } from '../../bench/lib/cookie-jar.js';
import { toCopyField, toCopyLine } from '../../bench/lib/copy-text.js';
import { describeDatabaseSettings, parseHugePagesMb } from '../../bench/lib/database-settings.js';
import { readCsrfToken } from '../../bench/lib/html-token.js';
import { describeStatus } from '../../bench/lib/http-session.js';
import { LatencyRecorder, nearestRankPercentile } from '../../bench/lib/latency-recorder.js';
import { assertLoopbackUrl, isLoopbackHost, NotLoopbackError } from '../../bench/lib/loopback-guard.js';
import { findListeningInode, parseProcStat, parseVmRssBytes } from '../../bench/lib/proc-sampler.js';
import { renderMarkdown } from '../../bench/lib/report.js';
import { computeRssGrowth, describeRssGrowth, type RssSample, windowMeansMb } from '../../bench/lib/rss-growth.js';
import type { ScenarioResult } from '../../bench/lib/run-scenario.js';
import { isReceiptAnswerAccepted, pickTwoWeekWindow } from '../../bench/lib/scenarios.js';
import { buildSignedDummyEvent, signDummyWebhook } from '../../bench/lib/webhook-signature.js';

describe('percentiles', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, index) => index + 1);
  it.each([
    [50, 50],
    [95, 95],
    [99, 99],
    [100, 100],
    [0, 1],
  ])('p%i of 1..100 is %i (nearest rank)', (p, value) => {
    expect(nearestRankPercentile(oneToHundred, p)).toBe(value);
  });

  it.each([
    [[7], 50, 7],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 51, 3],
    [[10, 20], 99, 20],
    [[], 95, 0],
  ])('p of %j at %i is %i', (values, p, expected) => {
    expect(nearestRankPercentile(values, p)).toBe(expected);
  });

  it('summarizes unsorted samples exactly, with max and mean', () => {
    const recorder = new LatencyRecorder();
    for (const value of [5, 1, 4, 2, 3]) recorder.record(value);
    expect(recorder.summarize()).toEqual({ count: 5, p50: 3, p95: 5, p99: 5, max: 5, mean: 3 });
  });

  it('stays within its capacity past it, keeping count and max exact', () => {
    const recorder = new LatencyRecorder(1000);
    for (let index = 1; index <= 100_000; index++) recorder.record(index % 1000);
    recorder.record(5000);
    const summary = recorder.summarize();
    expect(summary.count).toBe(100_001);
    expect(summary.max).toBe(5000);
    // The reservoir is a uniform sample: its median lands near the true one (~500).
    expect(summary.p50).toBeGreaterThan(400);
    expect(summary.p50).toBeLessThan(600);
  });
});

describe('cookie jar', () => {
  it('keeps the session cookie despite Secure and sends it back', () => {
    const jar = new CookieJar();
    jar.storeFrom([
      'hb.sid=s%3Aabc.def; Path=/; Expires=Wed, 01 Jan 2099 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax',
    ]);
    expect(jar.get('hb.sid')).toBe('s%3Aabc.def');
    expect(jar.header()).toBe('hb.sid=s%3Aabc.def');
  });

  it('replaces a cookie of the same name and joins several', () => {
    const jar = new CookieJar();
    jar.storeFrom('hb.sid=one; Path=/');
    jar.storeFrom(['hb.sid=two; Path=/', 'theme=dark']);
    expect(jar.header()).toBe('hb.sid=two; theme=dark');
  });

  it.each([['hb.sid=; Max-Age=0'], ['hb.sid=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT']])(
    'drops a cookie the server expires: %s',
    (line) => {
      const jar = new CookieJar();
      jar.storeFrom('hb.sid=abc');
      jar.storeFrom(line);
      expect(jar.get('hb.sid')).toBeUndefined();
      expect(jar.header()).toBeUndefined();
    },
  );

  it('ignores a malformed Set-Cookie and no header at all', () => {
    const jar = new CookieJar();
    jar.storeFrom(['novalue', '=nameless']);
    jar.storeFrom(undefined);
    expect(jar.header()).toBeUndefined();
  });
});

describe('loopback guard', () => {
  it.each([
    'http://127.0.0.1:8000',
    'http://127.1.2.3/',
    'http://localhost:3000',
    'https://LOCALHOST',
    'http://[::1]:8000',
    'http://[::ffff:127.0.0.1]:80',
  ])('accepts %s', (url) => {
    expect(assertLoopbackUrl(url).href).toContain(new URL(url).host);
  });

  it.each([
    ['http://10.0.0.5:8000', '10.0.0.5 is not a loopback address'],
    ['http://example.org', 'example.org is not a loopback address'],
    ['http://128.0.0.1', 'is not a loopback address'],
    ['http://localhost.example.org', 'is not a loopback address'],
    ['http://[2001:db8::1]', 'is not a loopback address'],
    ['ftp://127.0.0.1', 'not http or https'],
    ['not a url', 'not a URL'],
  ])('refuses %s with a clear error', (url, reason) => {
    expect(() => assertLoopbackUrl(url)).toThrow(NotLoopbackError);
    expect(() => assertLoopbackUrl(url)).toThrow(reason);
  });

  it('reads hosts without brackets too', () => {
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
  });
});

describe('dummy webhook signature', () => {
  it('is the lowercase hex HMAC-SHA256 of the raw body (RFC 4231 test case 2)', () => {
    expect(signDummyWebhook('what do ya want for nothing?', 'Jefe')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });

  it('signs exactly the body it sends', () => {
    const { body, signature } = buildSignedDummyEvent(
      {
        event_id: 'evt_1',
        event_type: 'payment.succeeded',
        external_payment_id: 'pay_1',
        amount_cents: 1250,
        currency: 'THB',
      },
      'secret',
    );
    expect(JSON.parse(body)).toEqual({
      event_id: 'evt_1',
      event_type: 'payment.succeeded',
      external_payment_id: 'pay_1',
      amount_cents: 1250,
      currency: 'THB',
    });
    expect(signature).toBe(signDummyWebhook(body, 'secret'));
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(signDummyWebhook(`${body} `, 'secret')).not.toBe(signature);
  });
});

describe('pages and requests', () => {
  it('reads the csrf_token hidden field as the app renders it', () => {
    const html =
      '<form method="post"><input type="hidden" name="csrf_token" value="Zx9-_a1"><input name="username"></form>';
    expect(readCsrfToken(html)).toBe('Zx9-_a1');
    expect(readCsrfToken('<input value="v2" name="csrf_token" type="hidden">')).toBe('v2');
    expect(readCsrfToken('<p>no form</p>')).toBeUndefined();
  });

  it('says a 404 means the route is missing from the build', () => {
    expect(describeStatus('GET /formula', 404)).toBe(
      'GET /formula: 404 Not Found: the route does not exist on this build',
    );
    expect(describeStatus('GET /me', 500)).toBe('GET /me: unexpected HTTP 500');
  });

  it("says a 404 that gives the app's no_pricing_tiers reason means a database without rates", () => {
    const body = JSON.stringify({ error: 'No pricing tier has rates yet', code: 404, reason: 'no_pricing_tiers' });
    expect(describeStatus('GET /formula', 404, body)).toBe(
      'GET /formula: 404: no pricing tier has rates in this database (fill it with npm run bench:data)',
    );
    expect(describeStatus('GET /formula', 404, '<html>Not found</html>')).toContain('does not exist on this build');
  });

  it.each([
    [303, true],
    [409, true],
    [422, true],
    [400, false],
    [403, false],
    [500, false],
  ])('counts POST /me/receipt answering %i as accepted: %s', (status, isAccepted) => {
    expect(isReceiptAnswerAccepted(status)).toBe(isAccepted);
  });

  it('picks a 14-day window inside the last year', () => {
    const now = new Date('2026-11-23T12:00:00Z');
    let seed = 0;
    const random = () => (seed++ % 10) / 10;
    for (let draw = 0; draw < 20; draw++) {
      const { start, end } = pickTwoWeekWindow(now, random);
      const days = (Date.parse(end) - Date.parse(start)) / 86_400_000;
      expect(days).toBe(13);
      expect(Date.parse(start)).toBeGreaterThanOrEqual(now.getTime() - 366 * 86_400_000);
      expect(Date.parse(end)).toBeLessThanOrEqual(now.getTime());
    }
  });

  it('gives concurrent virtual users different bench users', () => {
    expect(benchUsername(7)).toBe('bench007');
    expect(benchUsername(1000)).toBe('bench1000');
    const inUse = new Set(Array.from({ length: 20 }, (_, vu) => benchUserFor(vu, 3, 20, 500)));
    expect(inUse.size).toBe(20);
    expect(benchUserFor(0, 25, 20, 500)).toBe('bench001');
  });
});

describe('command line', () => {
  it.each([
    ['0', [0, 0]],
    ['1000', [0, 1000]],
    ['200-1000', [200, 1000]],
  ])('--think-ms %s is %j', (text, range) => {
    expect(parseThinkMs(text)).toEqual(range);
  });

  it.each(['-5', '1000-200', 'abc', '1.5'])('refuses --think-ms %s', (text) => {
    expect(() => parseThinkMs(text)).toThrow('--think-ms');
  });

  it('reads --ramp-ms as whole milliseconds and refuses anything else', () => {
    expect(parseRampMs('0')).toBe(0);
    expect(parseRampMs('1000')).toBe(1000);
    for (const text of ['-1', '1.5', 'soon', '']) expect(() => parseRampMs(text)).toThrow('--ramp-ms');
    expect(parseLoadArgs(['--ramp-ms', '750']).rampMs).toBe(750);
    expect(parseLoadArgs([]).rampMs).toBe(0);
  });

  it('reads --server-env pairs and refuses one without =', () => {
    expect(parseServerEnv(['A=1', 'B=x=y'])).toEqual({ A: '1', B: 'x=y' });
    expect(() => parseServerEnv(['NOVALUE'])).toThrow('KEY=VALUE');
  });
});

describe('/proc parsing', () => {
  it('reads ppid and CPU ticks even when the command name has spaces and parentheses', () => {
    const stat = '4242 (node (worker) x) S 4200 4242 4200 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 11 0 1000 123 456';
    expect(parseProcStat(stat)).toEqual({ ppid: 4200, cpuTicks: 175 });
  });

  it('reads VmRSS in bytes', () => {
    expect(parseVmRssBytes('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t  123456 kB\n')).toBe(123_456 * 1024);
    expect(parseVmRssBytes('Name:\tzombie\n')).toBe(0);
  });

  it('finds the inode of the socket listening on a port', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55555 1 0',
      '   1: 0100007F:1F40 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 66666 1 0',
    ].join('\n');
    expect(findListeningInode(table, 8000)).toBe('55555');
    expect(findListeningInode(table, 8001)).toBeUndefined();
  });
});

describe('database settings line', () => {
  const meminfo = [
    'MemTotal:       24684544 kB',
    'HugePages_Total:    1100',
    'HugePages_Free:     1064',
    'HugePages_Rsvd:     1025',
    'HugePages_Surp:        0',
    'Hugepagesize:       2048 kB',
  ].join('\n');

  it('counts huge pages taken or reserved, in MB', () => {
    // (1100 - 1064 + 1025) pages of 2 MB.
    expect(parseHugePagesMb(meminfo)).toEqual({ usedOrReserved: 2122, total: 2200 });
    expect(parseHugePagesMb('MemTotal: 1 kB\n')).toBeUndefined();
  });

  it('says what PostgreSQL ran with', () => {
    const settings = { version: '15.20', sharedBuffers: '2GB', hugePages: 'try' };
    expect(describeDatabaseSettings(settings)).toBe('PostgreSQL 15.20, shared_buffers 2GB, huge_pages try.');
    expect(describeDatabaseSettings({ ...settings, hostHugePagesMb: { usedOrReserved: 0, total: 0 } })).toBe(
      'PostgreSQL 15.20, shared_buffers 2GB, huge_pages try; host huge pages in use or reserved: 0 of 0 MB.',
    );
  });

  it("ends the report with the host's transparent huge pages mode, which sets what a sign-in costs", () => {
    const result: ScenarioResult = {
      scenario: 'me',
      description: 'GET /me in a loop',
      startedAt: '2026-12-01T00:00:00.000Z',
      options: {
        baseUrl: 'http://127.0.0.1:1',
        vus: 1,
        durationSec: 1,
        thinkMs: [0, 0],
        rampMs: 0,
        users: 1,
        receiptShare: 0,
      },
      elapsedSec: 1,
      iterations: 0,
      completeIterations: 0,
      iterationsPerSec: 0,
      failures: 0,
      routes: [],
      setupRoutes: [],
    };
    expect(renderMarkdown({ ...result, hostTransparentHugePages: 'never' })).toMatch(
      /\nHost: transparent huge pages never\.\n$/,
    );
    expect(renderMarkdown(result)).toMatch(/\nHost: transparent huge pages unknown\.\n$/);
  });
});

describe('soak RSS growth (window means)', () => {
  /** A sample every `everySec` from 0 to `durationSec`, RSS = mb(atSec). */
  const timelineOf = (durationSec: number, everySec: number, mb: (atSec: number) => number): RssSample[] =>
    Array.from({ length: Math.floor(durationSec / everySec) + 1 }, (_, index) => ({
      atSec: index * everySec,
      totalMb: mb(index * everySec),
    }));
  // V8's cycle: RSS climbs 120 MB over 40 s, then a major collection drops it back.
  const sawtooth = (atSec: number) => 540 + (atSec % 40) * 3;
  // A start-up ramp in the first minute that the warm-up must leave out.
  const startUp = (atSec: number, mb: number) => (atSec < 60 ? 200 + atSec * 5 : mb);

  it.each([
    {
      name: 'flat with a GC sawtooth',
      timeline: timelineOf(600, 10, (at) => startUp(at, sawtooth(at))),
      percent: 0,
      tolerance: 0.5,
    },
    {
      name: 'a steady leak of 0.2 MB/s under the sawtooth',
      timeline: timelineOf(600, 10, (at) => startUp(at, sawtooth(at) + 0.2 * at)),
      // window means: 60-170 s: 585 + 0.2 * 115 = 608 MB; 490-600 s: 585 + 0.2 * 545 = 694 MB
      percent: 14.1,
      tolerance: 0.1,
    },
    {
      name: 'a leak of 1% a minute, no sawtooth',
      timeline: timelineOf(600, 10, (at) => 500 * (1 + at / 6000)),
      // 509.6 MB -> 545.4 MB
      percent: 7.0,
      tolerance: 0.1,
    },
  ])('$name -> about $percent%', ({ timeline, percent, tolerance }) => {
    const growth = computeRssGrowth(timeline, { warmupSec: 60, windowSec: 120 });
    expect(growth.isShortened).toBe(false);
    expect(growth.first).toMatchObject({ fromSec: 60, toSec: 180, samples: 12 });
    expect(growth.last).toMatchObject({ fromSec: 480, toSec: 600, samples: 12 });
    expect(Math.abs((growth.percent as number) - percent)).toBeLessThanOrEqual(tolerance);
  });

  it('is not fooled by where in the GC cycle the first and last samples fall', () => {
    // The single-sample rule compared 540 MB (a trough at 60 s) with 657 MB (a peak at 600 s): +21.7%.
    const timeline = timelineOf(600, 10, (at) => startUp(at, at === 600 ? 657 : sawtooth(at)));
    expect(computeRssGrowth(timeline, { warmupSec: 60, windowSec: 120 }).percent).toBeLessThan(3);
  });

  it('compares the halves of a run shorter than two windows, and says so', () => {
    const timeline = timelineOf(200, 10, (at) => 500 + at);
    const growth = computeRssGrowth(timeline, { warmupSec: 20, windowSec: 120 });
    expect(growth.isShortened).toBe(true);
    expect(growth.first).toMatchObject({ fromSec: 20, toSec: 110, samples: 9, meanMb: 560 });
    expect(growth.last).toMatchObject({ fromSec: 110, toSec: 200, samples: 9, meanMb: 660 });
    expect(growth.percent).toBe(17.9);
    expect(growth.note).toMatch(/shorter than two 120 s windows: compared its halves \(90 s each\)/);
    expect(describeRssGrowth(growth, 10)).toContain('Note: the run after the warm-up (180 s)');
  });

  it.each([
    { name: 'no samples', timeline: [], note: 'no RSS samples' },
    {
      name: 'one sample after the warm-up',
      timeline: [
        { atSec: 0, totalMb: 100 },
        { atSec: 70, totalMb: 200 },
      ],
      note: /fewer than two/,
    },
    { name: 'every sample inside the warm-up', timeline: timelineOf(50, 10, () => 300), note: /fewer than two/ },
  ])('gives no figure with $name', ({ timeline, note }) => {
    const growth = computeRssGrowth(timeline, { warmupSec: 60, windowSec: 120 });
    expect(growth.percent).toBeNull();
    expect(growth.note).toMatch(note);
    expect(describeRssGrowth(growth, 10)).toMatch(/^Soak: no RSS growth figure/);
  });

  it('rejects a window that is not a positive length', () => {
    expect(() => computeRssGrowth([], { warmupSec: 0, windowSec: 0 })).toThrow(/positive/);
    expect(() => windowMeansMb([], { warmupSec: 0, windowSec: -1 })).toThrow(/positive/);
  });

  it.each([
    {
      // A level with one low first window: the growth figure says +12.5%, the windows say no trend.
      name: 'a swing about a level',
      timeline: timelineOf(600, 10, (at) => (at < 180 ? 480 : at >= 300 && at < 420 ? 520 : 540)),
      means: [480, 540, 520, 540, 540],
    },
    {
      name: 'a climb',
      timeline: timelineOf(600, 10, (at) => 400 + Math.floor((at - 60) / 120) * 20),
      means: [400, 420, 440, 460, 480],
    },
    { name: 'nothing after the warm-up', timeline: timelineOf(50, 10, () => 300), means: [] },
  ])('lists the mean of every window after the warm-up: $name', ({ timeline, means }) => {
    expect(windowMeansMb(timeline, { warmupSec: 60, windowSec: 120 })).toEqual(means);
  });

  it('states what it compares in the report line', () => {
    const timeline = timelineOf(600, 10, (at) => (at < 360 ? 600 : 630));
    expect(describeRssGrowth(computeRssGrowth(timeline, { warmupSec: 60, windowSec: 120 }), 10)).toBe(
      'Soak: mean RSS 60-180 s, 12 samples: 600 MB -> mean of the last 120 s (480-600 s, 12 samples): 630 MB = +5% (target < 10%).',
    );
  });

  it('takes a script option out of the arguments before the strict parser sees them', () => {
    expect(takeOption(['--vus', '5', '--window-sec', '60', '--duration=30'], 'window-sec')).toEqual({
      value: '60',
      rest: ['--vus', '5', '--duration=30'],
    });
    expect(takeOption(['--window-sec=90'], 'window-sec')).toEqual({ value: '90', rest: [] });
    expect(takeOption(['--vus', '5'], 'window-sec')).toEqual({ value: undefined, rest: ['--vus', '5'] });
    expect(() => takeOption(['--window-sec'], 'window-sec')).toThrow(/needs a value/);
  });
});

describe('COPY text format', () => {
  it.each([
    [null, '\\N'],
    [true, 't'],
    [false, 'f'],
    [12.5, '12.5'],
    ['a\tb\nc\\d\re', 'a\\tb\\nc\\\\d\\re'],
    [new Date('2026-01-02T03:04:05.000Z'), '2026-01-02T03:04:05.000Z'],
  ])('writes %j as %s', (value, text) => {
    expect(toCopyField(value)).toBe(text);
  });

  it('joins a row with tabs and ends it with a newline', () => {
    expect(toCopyLine(['a', null, 3])).toBe('a\t\\N\t3\n');
  });
});

describe('bench:billing options', () => {
  it("defaults to the 1,000,000-job database hb_bench on DATABASE_URL's server", () => {
    const options = parseBillingArgs([], { DATABASE_URL: 'postgresql://u@db:5432/app' });
    expect(options).toEqual({
      serverUrl: 'postgresql://u@db:5432/app',
      database: 'hb_bench',
      users: 500,
      jobs: 890_000,
      days: 90,
      csvJobs: 100_000,
      receiptJobs: 10_000,
      seed: 8,
    });
    expect(options.jobs + options.csvJobs + options.receiptJobs).toBe(1_000_000);
  });

  it('takes smaller sizes and another database', () => {
    const options = parseBillingArgs(
      ['--users', '20', '--jobs', '20000', '--csv-jobs', '5000', '--receipt-jobs=1000', '--database', 'scratch'],
      { BENCH_DATABASE: 'ignored' },
    );
    expect(options).toMatchObject({ database: 'scratch', users: 20, jobs: 20_000, csvJobs: 5000, receiptJobs: 1000 });
    expect(parseBillingArgs([], { BENCH_DATABASE: 'other' }).database).toBe('other');
  });

  it.each([
    ['--jobs', '0'],
    ['--users', '1.5'],
    ['--csv-jobs', 'many'],
  ])('refuses %s %s', (flag, value) => {
    expect(() => parseBillingArgs([flag, value], {})).toThrow(/must be a whole number/);
  });

  it('spreads the signed-in users over all the generated ones', () => {
    expect(spreadBenchUsers(20, 500)).toEqual(Array.from({ length: 20 }, (_, index) => benchUsername(1 + index * 25)));
    expect(spreadBenchUsers(20, 3)).toEqual(['bench001', 'bench002', 'bench003']);
  });
});
