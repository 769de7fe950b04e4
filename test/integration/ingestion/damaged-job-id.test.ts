/**
 * A damaged sacct line is reported by its JobID; where the JobID is itself the damaged field, the run
 * names the line instead ("a record (line N)") and counts each such line, as it does any record without
 * a job id. An empty JobID used to be named as a job ("job  (line 3)") and every line of it counted as
 * one skip, so a run that left out three records said it had skipped one.
 */
import { chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSacctSource } from '../../../src/modules/ingestion/sacct.source.js';
import { ingestWindow, labFileSource } from '../../support/ingest-window.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const WINDOW = { start: new Date('2026-11-23T15:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
const NOW = new Date('2026-11-23T16:00:00Z');

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'damaged-job-id-'));
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const HEADER = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
const row = (jobId: string, user: string) =>
  `${jobId}|${jobId.trim() || '0'}|lab|${user}|COMPLETED|60|2026-11-23T15:20:00|2026-11-23T15:21:00|cpu=1,mem=1G,node=1`;

describe('a line whose JobID is the damaged field', () => {
  it('is reported by its line number, and each such line is counted', async () => {
    const file = path.join(dir, 'damaged.psv');
    // Lines 3 and 5: no JobID at all (two different jobs' rows); line 6: a JobID of spaces.
    writeFileSync(
      file,
      [HEADER, row('41', 'ann'), row('', 'bob'), row('42', 'ann'), row('', 'cat'), row('  ', 'dan'), ''].join('\n'),
    );
    utimesSync(file, NOW, NOW);
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => logged.push(line) });
    const result = await ingestWindow(db, labFileSource(file), WINDOW, { logger, now: () => NOW });
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    expect(result.run).toMatchObject({ outcome: 'partial', seen: 2, inserted: 2, skipped: 3 });
    expect(result.run.sourceNotes.skipped).toBe('3 job(s) skipped, first: a record (line 3): not a Slurm job id: ""');
    const skips = logged.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'skipped a malformed record');
    expect(skips.map(({ line, jobId }) => ({ line, jobId }))).toEqual([
      { line: 3, jobId: null },
      { line: 5, jobId: null },
      { line: 6, jobId: null },
    ]);
  });
});

/**
 * A window longer than a day is read by one sacct per day (docs/ingestion.md), and each sacct's output is
 * numbered from its own header: "line 2" alone did not say which day's output to look in.
 */
describe('a damaged line in one of the sacct outputs a long window is read in', () => {
  it('names the line with the window of the sacct output it is in', async () => {
    const header = 'JobID|JobIDRaw|Cluster|User|State|ElapsedRaw|Start|End|AllocTRES';
    const script = path.join(dir, 'sacct-damaged');
    // A stand-in sacct printing, for every window, its header and a line without a JobID.
    writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' '${header}' '${row('', 'bob')}'\n`);
    chmodSync(script, 0o755);
    const window = { start: new Date('2026-11-21T16:00:00Z'), end: new Date('2026-11-23T16:00:00Z') };
    const logged: string[] = [];
    const result = await ingestWindow(
      db,
      [
        createSacctSource({
          sacctPath: script,
          timeZone: 'UTC',
          cluster: undefined,
          defaultCluster: 'lab',
          inheritedEnvironment: process.env,
          timeoutMs: 5000,
          runAs: null,
        }),
      ],
      window,
      {
        logger: pino({ level: 'warn' }, { write: (line: string) => logged.push(line) }),
        now: () => window.end,
        force: true,
      },
    );
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    expect(result.run).toMatchObject({ outcome: 'partial', seen: 0, skipped: 2 });
    expect(result.run.sourceNotes.skipped).toBe(
      "2 job(s) skipped, first: a record (line 2 of sacct's output for 2026-11-21T16:00:00Z .. 2026-11-22T16:00:00Z): " +
        'not a Slurm job id: ""',
    );
    const skips = logged.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'skipped a malformed record');
    expect(skips.map(({ line, output }) => ({ line, output }))).toEqual([
      { line: 2, output: "sacct's output for 2026-11-21T16:00:00Z .. 2026-11-22T16:00:00Z" },
      { line: 2, output: "sacct's output for 2026-11-22T16:00:00Z .. 2026-11-23T16:00:00Z" },
    ]);
  });
});
