import { readFile } from 'node:fs/promises';
import pg from 'pg';

/** What the database server ran with: the figures depend on it as much as on the code. */
export interface DatabaseSettings {
  version: string;
  sharedBuffers: string;
  hugePages: string;
  /** The host's huge pages that are in use or reserved, in MB (Linux only; the server is on loopback). */
  hostHugePagesMb?: { usedOrReserved: number; total: number };
}

/**
 * Reads the settings through the bench's own connection. PostgreSQL 15 cannot say whether
 * huge_pages=try got huge pages, so the host's count is reported beside it: without them, a
 * 2 GB shared_buffers is mapped 4 kB at a time by every new backend, which cost about half
 * of `browse`'s throughput on a 2-core machine (docs/performance.md).
 */
export async function readDatabaseSettings(databaseUrl: string): Promise<DatabaseSettings> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const show = async (name: string) => {
      const result = await client.query<Record<string, string>>(`SHOW ${name}`);
      return Object.values(result.rows[0] ?? {})[0] ?? '';
    };
    const settings: DatabaseSettings = {
      version: await show('server_version'),
      sharedBuffers: await show('shared_buffers'),
      hugePages: await show('huge_pages'),
    };
    const hostHugePagesMb = await readHostHugePagesMb();
    return hostHugePagesMb ? { ...settings, hostHugePagesMb } : settings;
  } finally {
    await client.end();
  }
}

async function readHostHugePagesMb(): Promise<DatabaseSettings['hostHugePagesMb']> {
  try {
    return parseHugePagesMb(await readFile('/proc/meminfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Huge pages in use or reserved (taken minus free, plus reserved but not yet taken) and in all, from /proc/meminfo. */
export function parseHugePagesMb(meminfo: string): DatabaseSettings['hostHugePagesMb'] {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? Number.NaN);
  const pageKb = field('Hugepagesize');
  const total = field('HugePages_Total');
  const used = total - field('HugePages_Free') + field('HugePages_Rsvd');
  if (![pageKb, total, used].every(Number.isFinite)) return undefined;
  return { usedOrReserved: Math.round((used * pageKb) / 1024), total: Math.round((total * pageKb) / 1024) };
}

/** One line for the report. */
export function describeDatabaseSettings(settings: DatabaseSettings): string {
  const host = settings.hostHugePagesMb
    ? `; host huge pages in use or reserved: ${settings.hostHugePagesMb.usedOrReserved} of ${settings.hostHugePagesMb.total} MB`
    : '';
  return `PostgreSQL ${settings.version}, shared_buffers ${settings.sharedBuffers}, huge_pages ${settings.hugePages}${host}.`;
}
