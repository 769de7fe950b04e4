/**
 * PrivateData=jobs in slurmdbd.conf: sacct run by a user who is not an operator prints that user's jobs
 * alone, exit 0 and no error (recorded on the lab, test/fixtures/slurm/22.05/private-data-jobs), so a run
 * billed a fraction of the cluster and moved its window past the rest. The sacct source now asks
 * sacctmgr first, and such a user fails the attempt as a setting to fix, naming the command that fixes it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SourceConfigError } from '../../../src/modules/ingestion/job-source.js';
import { createSacctSource, type SacctSourceOptions } from '../../../src/modules/ingestion/sacct.source.js';
import type { SourceItem } from '../../../src/modules/ingestion/slurm-job.model.js';
import { createSlurmRestSource } from '../../../src/modules/ingestion/slurm-rest.source.js';
import { ingestionService, ingestWindow } from '../../support/ingest-window.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

const FAKE_SACCT = path.resolve(import.meta.dirname, '../../fixtures/slurm/fake-sacct.mjs');
const WINDOW = { start: new Date('2026-12-05T19:00:00Z'), end: new Date('2026-12-05T19:05:00Z') };
const ALICE = { uid: 1001, name: 'alice' };
const MESSAGE =
  'sacct runs as alice, who may read only their own jobs: slurmdbd.conf sets PrivateData=jobs and ' +
  "alice's administrator level is None, so sacct --allusers prints alice's jobs alone (exit 0, no error) and every " +
  "other user's would go unread and unbilled. Nothing was read. As root: sacctmgr modify user alice set adminlevel=Operator " +
  '(or run the app as root or such a user)';

let dir: string;
let db: TestDatabase;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'private-data-jobs-'));
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE slurm_jobs, ingestion_runs RESTART IDENTITY');
});

let links = 0;
/** The fake sacct under a name that picks its behaviour, a new link (and argument log) each time. */
function fake(mode: string): string {
  links += 1;
  const sub = path.join(dir, String(links));
  const link = path.join(sub, `sacct-${mode}`);
  mkdirSync(sub);
  symlinkSync(FAKE_SACCT, link);
  return link;
}
const argsOf = (link: string): string[][] =>
  existsSync(`${link}.args`)
    ? readFileSync(`${link}.args`, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line))
    : [];

const options = (overrides: Partial<SacctSourceOptions>): SacctSourceOptions => ({
  sacctPath: fake('private-data-jobs'),
  timeZone: 'UTC',
  cluster: undefined,
  defaultCluster: 'lab',
  inheritedEnvironment: process.env,
  timeoutMs: 5000,
  ...overrides,
});

async function collect(iterable: AsyncIterable<SourceItem>): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const CONFIGURATION = ['show', 'configuration'];
const USER = (name: string) => [
  '--noheader',
  '--parsable2',
  'show',
  'user',
  name,
  'withcoord',
  'format=user,adminlevel,coordinators',
];
/** Sets the level (and the accounts coordinated) the fake sacctmgr at `link` gives from now on. */
const setUser = (link: string, levelAndAccounts: string) => writeFileSync(`${link}.user`, levelAndAccounts);

describe('the sacct source under PrivateData=jobs', () => {
  it('refuses to read as a user who may read only their own jobs, and runs no sacct', async () => {
    const sacctmgr = fake('sacctmgr-private-data-jobs');
    const sacctPath = fake('private-data-jobs');
    const source = createSacctSource(options({ sacctPath, sacctmgrPath: sacctmgr, runAs: ALICE }));
    const read = collect(source.read(WINDOW));
    await expect(read).rejects.toThrow(SourceConfigError);
    await expect(read).rejects.toThrow(MESSAGE);
    expect(argsOf(sacctPath)).toEqual([]);
    // Asked again on the next read: the fix needs no restart. The refusal reads slurmdbd's
    // configuration again too, in case PrivateData was taken out since.
    await expect(collect(source.read(WINDOW))).rejects.toThrow(MESSAGE);
    expect(argsOf(sacctmgr)).toEqual([CONFIGURATION, USER('alice'), USER('alice'), CONFIGURATION]);
    // Made an operator while the app runs: the next read reads.
    setUser(sacctmgr, 'Operator|');
    expect((await collect(source.read(WINDOW))).filter((item) => item.kind === 'job')).toHaveLength(1);
  });

  it('refuses a coordinator, who reads only the jobs of the accounts it coordinates, naming them', async () => {
    const sacctmgr = fake('sacctmgr-private-data-jobs');
    // As the lab's sacctmgr printed a coordinator of two accounts (22.05/coordinators), name and all.
    setUser(
      sacctmgr,
      readFileSync(path.resolve(FAKE_SACCT, '../22.05/coordinators/sacctmgr-show-user-two-accounts.txt'), 'utf8')
        .trim()
        .replace(/^carol\|/, ''),
    );
    const sacctPath = fake('private-data-jobs');
    const source = createSacctSource(options({ sacctPath, sacctmgrPath: sacctmgr, runAs: ALICE }));
    const read = collect(source.read(WINDOW));
    await expect(read).rejects.toThrow(SourceConfigError);
    await expect(read).rejects.toThrow(
      "sacct runs as alice, who may read only some users' jobs: slurmdbd.conf sets PrivateData=jobs and " +
        "alice's administrator level is None; alice coordinates the accounts chemistry, physics, and a coordinator " +
        'reads only the jobs of those accounts (and their sub-accounts) and its own, so sacct --allusers prints those ' +
        "alone (exit 0, no error) and every other user's would go unread and unbilled. Nothing was read. " +
        'As root: sacctmgr modify user alice set adminlevel=Operator (or run the app as root or such a user)',
    );
    expect(argsOf(sacctPath)).toEqual([]);
  });

  it("asks for the user's level on every read, once a read, and refuses once it is lowered", async () => {
    const sacctmgr = fake('sacctmgr-private-data-jobs-operator');
    const source = createSacctSource(options({ sacctmgrPath: sacctmgr, runAs: { uid: 1003, name: 'billing' } }));
    expect((await collect(source.read(WINDOW))).filter((item) => item.kind === 'job')).toHaveLength(1);
    await collect(source.read(WINDOW));
    await collect(source.read(WINDOW));
    expect(argsOf(sacctmgr)).toEqual([CONFIGURATION, USER('billing'), USER('billing'), USER('billing')]);
    // An admin lowers the level while the app runs (sacctmgr modify user billing set adminlevel=None).
    setUser(sacctmgr, 'None|');
    await expect(collect(source.read(WINDOW))).rejects.toThrow(
      "sacct runs as billing, who may read only their own jobs: slurmdbd.conf sets PrivateData=jobs and billing's " +
        'administrator level is None',
    );
  });

  it('reads where slurmdbd keeps no jobs private, asking only for the configuration, once a read', async () => {
    const sacctmgr = fake('sacctmgr-ok');
    const source = createSacctSource(options({ sacctmgrPath: sacctmgr, runAs: ALICE }));
    await collect(source.read(WINDOW));
    await collect(source.read(WINDOW));
    expect(argsOf(sacctmgr)).toEqual([CONFIGURATION, CONFIGURATION]);
  });

  it('reads as root or as the SlurmUser (which may read every job) without asking', async () => {
    const sacctmgr = fake('sacctmgr-private-data-jobs');
    await collect(createSacctSource(options({ sacctmgrPath: sacctmgr, runAs: { uid: 0, name: 'root' } })).read(WINDOW));
    expect(argsOf(sacctmgr)).toEqual([]);
    // The lab's SlurmUserId is slurm(64030).
    await collect(
      createSacctSource(options({ sacctmgrPath: sacctmgr, runAs: { uid: 64030, name: 'slurm' } })).read(WINDOW),
    );
    expect(argsOf(sacctmgr)).toEqual([CONFIGURATION]);
  });

  it('still reads when sacctmgr cannot say (failing, or missing)', async () => {
    for (const sacctmgrPath of [fake('sacctmgr-fail'), path.join(dir, 'no-sacctmgr')]) {
      const items = await collect(createSacctSource(options({ sacctmgrPath, runAs: ALICE })).read(WINDOW));
      expect(items.filter((item) => item.kind === 'job')).toHaveLength(1);
    }
  });

  it('fails the run with the fix in its error and stores nothing', async () => {
    const source = createSacctSource(options({ sacctmgrPath: fake('sacctmgr-private-data-jobs'), runAs: ALICE }));
    const result = await ingestWindow(db, source, WINDOW, { now: () => WINDOW.end });
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    expect(result.run).toMatchObject({ outcome: 'failed', error: `sacct: ${MESSAGE}` });
    expect(result.run.sourceNotes.sacct).toBe(`configuration error: ${MESSAGE}`);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM slurm_jobs')).rows[0].n).toBe(0);
  });
});

/**
 * slurmrestd cannot say whether slurmdbd keeps jobs private, and under PrivateData=jobs it answers a user
 * who is no operator with that user's jobs alone (22.05/private-data-jobs/rest-dbv0.0.38-jobs-as-alice.json,
 * HTTP 200, no error). It says the user's administrator level: a user who is neither operator nor
 * administrator gets a warning in the run's notes, and in the log the first time.
 */
describe('slurmrestd read as a user who is no operator', () => {
  const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05');
  const requests: string[] = [];
  /** A level an admin gave a user since the capture (`sacctmgr modify user ... set adminlevel=`), by name. */
  const levels = new Map<string, string>();
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const asked = req.url ?? '';
      requests.push(asked.split('?')[0] ?? '');
      const user = /^\/slurmdb\/v0\.0\.38\/user\/(\w+)$/.exec(asked)?.[1];
      const file = asked.startsWith('/slurmdb/v0.0.38/jobs?')
        ? 'private-data-jobs/rest-dbv0.0.38-jobs-as-alice.json'
        : user === 'alice' || user === 'billing'
          ? `private-data-jobs/rest-dbv0.0.38-user-${user}.json`
          : user === 'carol'
            ? 'coordinators/rest-dbv0.0.38-user-carol.json'
            : null;
      let body = file ? readFileSync(path.join(FIXTURES, file), 'utf8') : '{}';
      const level = user === undefined ? undefined : levels.get(user);
      if (level !== undefined) body = body.replace(/"administrator_level": "\w+"/, `"administrator_level": "${level}"`);
      res.writeHead(file ? 200 : 404, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const restService = (user: string, logged: string[], checksUserLevel = true) =>
    ingestionService(
      db,
      [
        createSlurmRestSource({
          url,
          user,
          token: 'token',
          tokenFile: undefined,
          apiVersion: 'v0.0.38',
          caFile: undefined,
          timeZone: 'UTC',
          defaultCluster: 'lab',
          timeoutMs: 2000,
          maxAttempts: 1,
          retryBaseMs: 10,
          checksUserLevel,
        }),
      ],
      {
        logger: pino({ level: 'warn' }, { write: (line: string) => logged.push(line) }),
        now: () => WINDOW.end,
      },
    );
  const run = async (service: ReturnType<typeof restService>) => {
    const result = await service.runOnce({ trigger: 'manual', window: WINDOW, force: true });
    if (result.status !== 'finished') throw new Error(`expected a finished run, got ${result.status}`);
    return result.run;
  };
  const WARNING =
    "SLURMRESTD_USER alice has administrator level None in Slurm's accounting: where slurmdbd.conf sets " +
    "PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), slurmrestd answers alice's own " +
    "jobs alone, with no error, and every other user's go unread and unbilled. As root: " +
    'sacctmgr modify user alice set adminlevel=Operator';

  it("warns in every run's notes, and in the log once", async () => {
    const logged: string[] = [];
    const service = restService('alice', logged);
    const first = await run(service);
    expect(first).toMatchObject({ outcome: 'success', seen: 1 });
    expect(first.sourceNotes.access).toBe(WARNING);
    const second = await run(service);
    expect(second.sourceNotes.access).toBe(WARNING);
    const warnings = logged.map((line) => JSON.parse(line)).filter((entry) => entry.warning !== undefined);
    expect(warnings.map(({ msg, warning }) => ({ msg, warning }))).toEqual([
      { msg: "ingestion may read only some users' jobs", warning: WARNING },
    ]);
  });

  it("names the accounts a coordinator coordinates, from slurmrestd's recorded answer, in the words of sacct's warning", async () => {
    // carol (level None) coordinates physics, and astro under it: the warning said "carol's own jobs
    // alone", though a coordinator's answer holds those accounts' jobs too.
    const first = await run(restService('carol', []));
    expect(first.sourceNotes.access).toBe(
      "SLURMRESTD_USER carol has administrator level None in Slurm's accounting; carol coordinates the accounts " +
        'astro, physics, and a coordinator reads only the jobs of those accounts (and their sub-accounts) and its own: ' +
        'where slurmdbd.conf sets PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), ' +
        "slurmrestd answers those alone, with no error, and every other user's go unread and unbilled. As root: " +
        'sacctmgr modify user carol set adminlevel=Operator',
    );
  });

  it('says nothing of an operator, asks again on every run (one request a run), and warns once the level is lowered', async () => {
    const logged: string[] = [];
    const service = restService('billing', logged);
    requests.length = 0;
    expect((await run(service)).sourceNotes.access).toBeUndefined();
    expect((await run(service)).sourceNotes.access).toBeUndefined();
    expect(requests.filter((asked) => asked.includes('/user/'))).toEqual([
      '/slurmdb/v0.0.38/user/billing',
      '/slurmdb/v0.0.38/user/billing',
    ]);
    // Lowered while the app runs (sacctmgr modify user billing set adminlevel=None): the next run says so.
    levels.set('billing', 'None');
    try {
      expect((await run(service)).sourceNotes.access).toBe(WARNING.replaceAll('alice', 'billing'));
    } finally {
      levels.delete('billing');
    }
    expect(logged.map((line) => JSON.parse(line)).filter((entry) => entry.warning !== undefined)).toHaveLength(1);
    // Raised again: the warning goes from the next run's notes.
    expect((await run(service)).sourceNotes.access).toBeUndefined();
  });

  it('asks nothing when not set to (sources built by hand in tests)', async () => {
    requests.length = 0;
    expect((await run(restService('alice', [], false))).sourceNotes.access).toBeUndefined();
    expect(requests.filter((asked) => asked.includes('/user/'))).toEqual([]);
  });
});
