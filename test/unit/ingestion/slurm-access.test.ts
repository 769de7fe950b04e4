import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  isJobsPrivate,
  isPrivilegedLevel,
  readDbdPrivateData,
  readRestAdminLevel,
  readSacctmgrAdminLevel,
  readSacctmgrCoordinatedAccounts,
  readSlurmUserId,
} from '../../../src/modules/ingestion/slurm-access.js';

// Recorded on the lab (Slurm 22.05.8) with and without PrivateData=jobs in slurm.conf and slurmdbd.conf.
const DIR = path.resolve(import.meta.dirname, '../../fixtures/slurm/22.05/private-data-jobs');
const read = (name: string) => readFileSync(path.join(DIR, name), 'utf8');

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

  it('the accounts a user coordinates (show user NAME withcoord format=user,adminlevel,coordinators)', () => {
    expect(readSacctmgrCoordinatedAccounts('alice|None|physics,chem\n', 'alice')).toEqual(['physics', 'chem']);
    expect(readSacctmgrAdminLevel('alice|None|physics,chem\n', 'alice')).toBe('None');
    expect(readSacctmgrCoordinatedAccounts('billing|Operator|\n', 'billing')).toEqual([]);
    // The lab's capture, without the column.
    expect(readSacctmgrCoordinatedAccounts(read('sacctmgr-show-user-alice.txt'), 'alice')).toEqual([]);
    expect(readSacctmgrCoordinatedAccounts('alice|None|physics\n', 'nobody')).toEqual([]);
  });

  it.each(['v0.0.36', 'v0.0.37', 'v0.0.38'])('slurmrestd %s /slurmdb/.../user/{name}', (version) => {
    const alice = JSON.parse(read(`rest-db${version}-user-alice.json`));
    const billing = JSON.parse(read(`rest-db${version}-user-billing.json`));
    expect(readRestAdminLevel(alice, 'alice')).toBe('None');
    expect(readRestAdminLevel(billing, 'billing')).toBe('Operator');
    expect(readRestAdminLevel(alice, 'billing')).toBeNull();
  });

  it.each([
    [['Operator'], 'Operator'],
    [['None'], 'None'],
    [42, null],
  ])('a level given as %j (later versions list them) reads as %s', (level, expected) => {
    expect(readRestAdminLevel({ users: [{ name: 'svc', administrator_level: level }] }, 'svc')).toBe(expected);
  });
});
