import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
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
