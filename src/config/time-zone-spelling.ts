import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

/** Where the C library looks zones up when TZDIR is unset (glibc's, and musl's first place). */
export const DEFAULT_ZONE_DIR = '/usr/share/zoneinfo';

// Copies of the whole tree in other forms (POSIX time, leap seconds), not names APP_TZ can take.
const NOT_ZONE_NAMES = new Set(['posix', 'right']);

/** The zone Intl reads `zone` as (its canonical name), or undefined when Intl knows no such zone. */
function intlZoneOf(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

function isDirectory(where: string): boolean {
  try {
    return statSync(where).isDirectory();
  } catch {
    return false;
  }
}

function entriesOf(directory: string): string[] {
  try {
    return readdirSync(directory).sort();
  } catch {
    return [];
  }
}

/** Whether `file` is a compiled zone (TZif, the format the C library reads), following links. */
function isZoneFile(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === 'TZif';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The names under `zoneDir` that spell `zone` in any case, each part as its file or directory is
 * named (`us/eastern` is US/Eastern): the C library finds a zone by its exact file name.
 */
function spellingsInAnyCase(zoneDir: string, zone: string): string[] {
  let found = [''];
  for (const part of zone.split('/')) {
    const wanted = part.toLowerCase();
    found = found.flatMap((prefix) =>
      entriesOf(path.join(zoneDir, prefix))
        .filter((entry) => entry.toLowerCase() === wanted)
        .map((entry) => (prefix ? `${prefix}/${entry}` : entry)),
    );
    if (found.length === 0) return [];
  }
  return found;
}

/** Every zone file's name under `zoneDir`, in a fixed order, for the rare zone found by no faster way. */
function* zoneFileNames(zoneDir: string, prefix = ''): Generator<string> {
  for (const entry of entriesOf(path.join(zoneDir, prefix))) {
    if (!prefix && NOT_ZONE_NAMES.has(entry)) continue;
    const name = prefix ? `${prefix}/${entry}` : entry;
    const where = path.join(zoneDir, name);
    if (isDirectory(where)) yield* zoneFileNames(zoneDir, name);
    else yield name;
  }
}

/**
 * APP_TZ as the zone's file under `zoneDir` (TZDIR, else /usr/share/zoneinfo) names it, read by Intl as
 * the same zone: sacct runs with `TZ=APP_TZ`, and the C library finds a zone by its exact file name. A
 * name in another case (`us/eastern`, `etc/utc`) or a link the host's tzdata does not install (Debian
 * since 2023 keeps `US/Eastern` and the other old names in tzdata-legacy) found no file, and sacct ran
 * in UTC without a word while the app read its times as the zone's: every stored time was hours off.
 * Tried in turn: `zone` as written (`CET`, `US/Eastern` are kept where their file is), its spelling in
 * the files' case, Intl's name for it (America/New_York), then any zone file Intl reads as the same
 * zone (Asia/Kolkata for asia/calcutta). Without a zone directory, or with none of these (a zone newer
 * than the host's tzdata), Intl's spelling where it differs only in case, else `zone` as written.
 * `zone` must be one Intl accepts.
 */
export function zoneFileSpelling(zone: string, zoneDir: string = DEFAULT_ZONE_DIR): string {
  const named = intlZoneOf(zone);
  if (named === undefined) throw new RangeError(`not a time zone: ${zone}`);
  const inCaseOnly = named !== zone && named.toLowerCase() === zone.toLowerCase() ? named : zone;
  if (!isDirectory(zoneDir)) return inCaseOnly;
  const isSameZoneFile = (name: string) =>
    intlZoneOf(name) === named && isZoneFile(path.join(zoneDir, ...name.split('/')));
  // As written first; the files' own spellings are what a case-insensitive file system would not tell apart.
  const spellings = spellingsInAnyCase(zoneDir, zone).sort((a, b) => Number(b === zone) - Number(a === zone));
  const quick = [...spellings, named];
  const found = quick.find(isSameZoneFile);
  if (found) return found;
  for (const name of zoneFileNames(zoneDir)) if (isSameZoneFile(name)) return name;
  return inCaseOnly;
}
