import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isJobsPrivate,
  isPrivilegedLevel,
  isRestUserMissing,
  privateJobsSacctMessage,
  readDbdPrivateData,
  readRestAdminLevel,
  readRestCoordinatedAccounts,
  readSacctmgrAdminLevel,
  readSacctmgrCoordinatedAccounts,
  readSlurmUserId,
  restUserWarning,
} from '../../../src/modules/ingestion/slurm-access.js';

// Recorded on the lab (Slurm 22.05.8) with and without PrivateData=jobs in slurm.conf and slurmdbd.conf.
const DIR = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/private-data-jobs');
const read = (name: string) => readFileSync(path.join(DIR, name), 'utf8');
// `sacctmgr --noheader --parsable2 show user NAME withcoord format=user,adminlevel,coordinators`, as the
// sacct source runs it, recorded on the lab for a user coordinating no, one and two accounts, and at each level.
const COORDINATORS = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/coordinators');
const readCoordinators = (name: string) => readFileSync(path.join(COORDINATORS, name), 'utf8');

describe("sacctmgr show configuration: slurmdbd's PrivateData and the SlurmUser", () => {
  it.each([
    ['sacctmgr-show-configuration.txt', ['jobs'], true],
    ['sacctmgr-show-configuration-default.txt', [], false],
  ])('%s', (file, privateData, isPrivate) => {
    const text = read(file);
    expect(readDbdPrivateData(text)).toEqual(privateData);
    expect(isJobsPrivate(readDbdPrivateData(text) ?? [])).toBe(isPrivate);
    expect(readSlurmUserId(text)).toBe(64030);
  });

  it("reads slurmdbd's part, not slurm.conf's (which slurmctld applies)", () => {
    const text = read('sacctmgr-show-configuration.txt').replace(
      /(SlurmDBD configuration:[\s\S]*?)PrivateData\s*=\s*jobs/,
      '$1PrivateData            = accounts,users',
    );
    expect(readDbdPrivateData(text)).toEqual(['accounts', 'users']);
    expect(readDbdPrivateData('PrivateData = jobs\n')).toBeNull();
  });
});

describe('the administrator level', () => {
  it.each([
    ['sacctmgr-show-user-alice.txt', 'alice', 'None', false],
    ['sacctmgr-show-user-billing.txt', 'billing', 'Operator', true],
  ])('sacctmgr %s', (file, user, level, isPrivileged) => {
    expect(readSacctmgrAdminLevel(read(file), user)).toBe(level);
    expect(isPrivilegedLevel(level)).toBe(isPrivileged);
    expect(readSacctmgrAdminLevel(read(file), 'nobody')).toBeNull();
  });

  // Recorded: the accounts comma-separated, in name order (chemistry was made coordinated after physics),
  // an account made under a coordinated one since listed too (astro, under physics), the field empty for none.
  it.each([
    ['sacctmgr-show-user-none.txt', 'carol', 'None', []],
    ['sacctmgr-show-user-one-account.txt', 'carol', 'None', ['physics']],
    ['sacctmgr-show-user-two-accounts.txt', 'carol', 'None', ['chemistry', 'physics']],
    ['sacctmgr-show-user-sub-account.txt', 'carol', 'None', ['astro', 'chemistry', 'physics']],
    ['sacctmgr-show-user-operator.txt', 'carol', 'Operator', ['chemistry', 'physics']],
    ['sacctmgr-show-user-administrator.txt', 'carol', 'Administrator', ['chemistry', 'physics']],
    ['sacctmgr-show-user-billing.txt', 'billing', 'Operator', []],
  ])('the level and the accounts coordinated, recorded: %s', (file, user, level, accounts) => {
    const text = readCoordinators(file);
    expect(readSacctmgrAdminLevel(text, user)).toBe(level);
    expect(readSacctmgrCoordinatedAccounts(text, user)).toEqual(accounts);
    expect(readSacctmgrAdminLevel(text, 'nobody')).toBeNull();
    expect(readSacctmgrCoordinatedAccounts(text, 'nobody')).toEqual([]);
  });

  it('the accounts coordinated, from a capture without the column (format=user,adminlevel)', () => {
    expect(readSacctmgrCoordinatedAccounts(read('sacctmgr-show-user-alice.txt'), 'alice')).toEqual([]);
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])('slurmrestd %s /slurmdb/.../user/{name}', (version) => {
    const alice = JSON.parse(read(`rest-db${version}-user-alice.json`));
    const billing = JSON.parse(read(`rest-db${version}-user-billing.json`));
    expect(readRestAdminLevel(alice, 'alice')).toBe('None');
    expect(readRestAdminLevel(billing, 'billing')).toBe('Operator');
    expect(readRestAdminLevel(alice, 'billing')).toBeNull();
  });

  it("slurmrestd v0.0.38 /slurmdb/.../user/{name} of a coordinator (level None, its accounts in 'coordinators')", () => {
    const carol = JSON.parse(readCoordinators('rest-dbv0.0.38-user-carol.json'));
    expect(readRestAdminLevel(carol, 'carol')).toBe('None');
    expect(carol.users[0].coordinators).toEqual([
      { name: 'physics', direct: 1 },
      { name: 'astro', direct: 0 },
    ]);
  });

  it("the accounts a coordinator coordinates, from slurmrestd v0.0.38's 'coordinators' (inherited ones too, in name order as sacctmgr lists them)", () => {
    const carol = JSON.parse(readCoordinators('rest-dbv0.0.38-user-carol.json'));
    expect(readRestCoordinatedAccounts(carol, 'carol')).toEqual(['astro', 'physics']);
    expect(readRestCoordinatedAccounts(carol, 'alice')).toEqual([]);
    expect(readRestCoordinatedAccounts({ users: [{ name: 'carol', coordinators: 'physics' }] }, 'carol')).toEqual([]);
    expect(readRestCoordinatedAccounts(null, 'carol')).toEqual([]);
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])(
    'slurmrestd %s: a user who coordinates nothing (coordinators: [])',
    (version) => {
      const alice = JSON.parse(read(`rest-db${version}-user-alice.json`));
      expect(readRestCoordinatedAccounts(alice, 'alice')).toEqual([]);
    },
  );

  it("slurmrestd's warning names a coordinator's accounts in the words of sacct's", () => {
    const carol = JSON.parse(readCoordinators('rest-dbv0.0.38-user-carol.json'));
    const accounts = readRestCoordinatedAccounts(carol, 'carol');
    const warning = restUserWarning('carol', readRestAdminLevel(carol, 'carol') as string, accounts);
    const words =
      'carol coordinates the accounts astro, physics, and a coordinator reads only the jobs of those accounts ' +
      '(and their sub-accounts) and its own';
    expect(privateJobsSacctMessage('carol', 'None', accounts)).toContain(`; ${words}, so sacct --allusers`);
    expect(warning).toBe(
      `SLURMRESTD_USER carol has administrator level None in Slurm's accounting; ${words}: where slurmdbd.conf sets ` +
        'PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), slurmrestd answers those alone, ' +
        "with no error, and every other user's go unread and unbilled. As root: sacctmgr modify user carol set adminlevel=Operator",
    );
    // One who coordinates nothing is warned as before: its own jobs alone.
    expect(restUserWarning('alice', 'None', [])).toContain("slurmrestd answers alice's own jobs alone, with no error");
  });

  it("a user Slurm's accounting does not know (22.05: HTTP 500, error 9003, users: []) is told to be added, not modified", () => {
    // Recorded on the lab for a name scontrol token was given but sacctmgr does not know. `sacctmgr modify
    // user ... set adminlevel=Operator` only says "Nothing modified" for it, and `add user` needs an account.
    const unknown = JSON.parse(read('rest-dbv0.0.38-user-not-in-accounting-http500.json'));
    const billing = JSON.parse(read('rest-dbv0.0.38-user-billing.json'));
    expect(isRestUserMissing(unknown, 'billing-not-in-accounting')).toBe(true);
    expect(isRestUserMissing(billing, 'billing')).toBe(false);
    expect(isRestUserMissing(null, 'billing')).toBe(false);
    expect(restUserWarning('svc', null)).toBe(
      "SLURMRESTD_USER svc is not a user of Slurm's accounting (sacctmgr show user svc lists no one): where " +
        'slurmdbd.conf sets PrivateData=jobs (sacctmgr show configuration says; slurmrestd cannot tell), slurmrestd ' +
        "answers svc's own jobs alone (none), with no error, and every other user's go unread and unbilled. " +
        'As root: sacctmgr add user svc account=root adminlevel=Operator',
    );
    expect(privateJobsSacctMessage('svc', null)).toContain(
      'As root: sacctmgr add user svc account=root adminlevel=Operator (or run the app as root or such a user)',
    );
    expect(privateJobsSacctMessage('alice', 'None')).toContain(
      'As root: sacctmgr modify user alice set adminlevel=Operator',
    );
  });

  it.each([
    [['Operator'], 'Operator'],
    [['None'], 'None'],
    [42, null],
  ])('a level given as %j (later versions list them) reads as %s', (level, expected) => {
    expect(readRestAdminLevel({ users: [{ name: 'svc', administrator_level: level }] }, 'svc')).toBe(expected);
  });
});
