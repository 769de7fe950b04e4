import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { sacctEnvironment } from '../../src/modules/ingestion/sacct.source.js';

/**
 * APP_TZ in another case than the zone's name (`europe/berlin`): Intl reads it as Europe/Berlin, so the
 * app's days were Berlin's, but sacct runs with `TZ=APP_TZ` and the C library looks the zone up by file
 * name (/usr/share/zoneinfo/europe/berlin, not there), finds none and runs in UTC without a word: sacct
 * printed its times in UTC, which the app read as Berlin's, and every stored time was an hour or two early.
 * The app now uses the zone's own spelling.
 */
describe('APP_TZ spelt in another case', () => {
  it.each([
    ['europe/berlin', 'Europe/Berlin'],
    ['EUROPE/BERLIN', 'Europe/Berlin'],
    ['america/new_york', 'America/New_York'],
    ['australia/sydney', 'Australia/Sydney'],
    ['utc', 'UTC'],
  ])('%s is read as %s', (typed, zone) => {
    expect(loadConfig({ APP_TZ: typed }).timeZone).toBe(zone);
  });

  it.each([['Europe/Berlin'], ['UTC'], ['Etc/UTC'], ['CET'], ['US/Eastern'], ['Asia/Calcutta']])(
    '%s, as tzdata spells it, is kept as written',
    (zone) => {
      expect(loadConfig({ APP_TZ: zone }).timeZone).toBe(zone);
    },
  );

  it('sacct is run in the zone the app reads times in', () => {
    // `date` reads TZ as sacct does (the C library's tzset): 10:00 UTC on 1 July is 12:00 in Berlin.
    const env = sacctEnvironment({ PATH: process.env.PATH }, loadConfig({ APP_TZ: 'europe/berlin' }).timeZone);
    const shown = execFileSync('date', ['-u', '-d', '@1782900000', '+%H:%M'], { env }).toString().trim();
    expect(shown).toBe('10:00');
    const local = execFileSync('date', ['-d', '@1782900000', '+%H:%M'], { env }).toString().trim();
    expect(local).toBe('12:00');
  });
});

/** Whether `zone` is the exact name of a file under `zoneDir`, each part spelt as it is listed (as the C library opens it). */
function hasZoneFile(zoneDir: string, zone: string): boolean {
  const parts = zone.split('/');
  return parts.every((part, index) => readdirSync(path.join(zoneDir, ...parts.slice(0, index))).includes(part));
}

const intlZone = (zone: string) => new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;

/**
 * An alias in another case than its file's (`us/eastern`: tzdata has US/Eastern, a link to
 * America/New_York) was used as typed, since Intl renames it (America/New_York) and only a zone whose
 * Intl name differed in case alone was respelt: sacct, run with TZ=us/eastern, found no zone file and
 * ran in UTC. APP_TZ is now spelt as a zone file that Intl reads as the same zone.
 */
describe('APP_TZ spelt as a zone file', () => {
  let zoneDir: string;
  let withoutLegacy: string;
  // A compiled zone starts with TZif; the app looks for no more than that.
  const writeZone = (root: string, name: string) => {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), 'TZif2\0\0\0');
  };
  beforeAll(() => {
    // tzdata as Debian's tzdata with tzdata-legacy installs it: the old names are links.
    zoneDir = mkdtempSync(path.join(os.tmpdir(), 'zoneinfo-'));
    for (const zone of ['America/New_York', 'Europe/Berlin', 'Europe/Brussels', 'Asia/Kolkata', 'Etc/UTC']) {
      writeZone(zoneDir, zone);
    }
    mkdirSync(path.join(zoneDir, 'US'));
    symlinkSync('../America/New_York', path.join(zoneDir, 'US/Eastern'));
    symlinkSync('Kolkata', path.join(zoneDir, 'Asia/Calcutta'));
    symlinkSync('Etc/UTC', path.join(zoneDir, 'UTC'));
    writeZone(zoneDir, 'CET');
    writeZone(zoneDir, 'zone.tab');
    // Debian's tzdata alone (since 2023): no US/, no Asia/Calcutta.
    withoutLegacy = mkdtempSync(path.join(os.tmpdir(), 'zoneinfo-'));
    for (const zone of ['America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Etc/UTC', 'UTC']) {
      writeZone(withoutLegacy, zone);
    }
  });
  afterAll(() => {
    rmSync(zoneDir, { recursive: true, force: true });
    rmSync(withoutLegacy, { recursive: true, force: true });
  });

  it.each([
    ['us/eastern', 'US/Eastern'],
    ['US/EASTERN', 'US/Eastern'],
    ['US/Eastern', 'US/Eastern'],
    ['utc', 'UTC'],
    ['etc/utc', 'Etc/UTC'],
    ['europe/berlin', 'Europe/Berlin'],
    ['asia/calcutta', 'Asia/Calcutta'],
    ['CET', 'CET'],
  ])('with tzdata-legacy, %s is read as %s', (typed, zone) => {
    const timeZone = loadConfig({ APP_TZ: typed, TZDIR: zoneDir }).timeZone;
    expect(timeZone).toBe(zone);
    expect(hasZoneFile(zoneDir, timeZone)).toBe(true);
    expect(intlZone(timeZone)).toBe(intlZone(typed));
  });

  it.each([
    ['us/eastern', 'America/New_York'],
    ['US/Eastern', 'America/New_York'],
    ['etc/utc', 'Etc/UTC'],
    ['europe/berlin', 'Europe/Berlin'],
    // Intl's own name, Asia/Calcutta, is no file here: the file Intl reads as the same zone.
    ['Asia/Calcutta', 'Asia/Kolkata'],
  ])('without tzdata-legacy, %s is read as %s', (typed, zone) => {
    const timeZone = loadConfig({ APP_TZ: typed, TZDIR: withoutLegacy }).timeZone;
    expect(timeZone).toBe(zone);
    expect(hasZoneFile(withoutLegacy, timeZone)).toBe(true);
    expect(intlZone(timeZone)).toBe(intlZone(typed));
  });

  it('without a zone directory, a zone differing from its name in case alone is still respelt', () => {
    const missing = path.join(zoneDir, 'no-such-directory');
    expect(loadConfig({ APP_TZ: 'europe/berlin', TZDIR: missing }).timeZone).toBe('Europe/Berlin');
    expect(loadConfig({ APP_TZ: 'US/Eastern', TZDIR: missing }).timeZone).toBe('US/Eastern');
  });

  it.each([['us/eastern'], ['US/EASTERN'], ['utc'], ['etc/utc'], ['europe/berlin'], ['america/santiago']])(
    'on this host, %s is a zone file that Intl reads as the same zone',
    (typed) => {
      const timeZone = loadConfig({ APP_TZ: typed }).timeZone;
      expect(hasZoneFile('/usr/share/zoneinfo', timeZone)).toBe(true);
      expect(intlZone(timeZone)).toBe(intlZone(typed));
    },
  );

  it.each([['Mars/Olympus'], ['us/easter'], ['zone.tab'], ['posix/Europe/Berlin'], ['../UTC']])(
    '%s, no zone, is a start-up error that names it',
    (typed) => {
      expect(() => loadConfig({ APP_TZ: typed, TZDIR: zoneDir })).toThrow(ConfigError);
      expect(() => loadConfig({ APP_TZ: typed, TZDIR: zoneDir })).toThrow(
        `APP_TZ: not an IANA time zone such as Asia/Bangkok (got ${JSON.stringify(typed)})`,
      );
    },
  );

  it('sacct is run in the zone the app reads times in for an alias in another case', () => {
    // 12:00 UTC on 1 July is 08:00 in New York (EDT); in UTC, where sacct ran before, 12:00.
    const env = sacctEnvironment({ PATH: process.env.PATH }, loadConfig({ APP_TZ: 'us/eastern' }).timeZone);
    const local = execFileSync('date', ['-d', '@1782907200', '+%H:%M %Z'], { env }).toString().trim();
    expect(local).toBe('08:00 EDT');
  });
});
