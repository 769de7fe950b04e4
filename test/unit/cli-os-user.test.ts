import { describe, expect, it } from 'vitest';
import { cliActorDetailsOf, cliAuditContext, osUserOf } from '../../src/cli/cli-audit-context.js';

describe('who ran a CLI, for its audit entries', () => {
  it('is the OS user name', () => {
    expect(
      osUserOf(
        () => ({ username: 'ops' }),
        () => 1000,
      ),
    ).toBe('ops');
  });

  it('is the uid when the uid has no name (a container run with --user 1234), and says unknown without one', () => {
    const noName = () => {
      throw Object.assign(new Error('ENOENT: no such file or directory, uv_os_get_passwd'), { code: 'ENOENT' });
    };
    expect(osUserOf(noName, () => 1234)).toBe('uid:1234');
    expect(osUserOf(noName, () => undefined)).toBe('unknown');
  });

  it('keeps the actor cli and puts the OS user in the details', () => {
    expect(cliAuditContext('user.cli', { osUser: 'ops', sudoUser: undefined, effectiveUid: 1000 })).toEqual({
      actor: 'cli',
      ip: null,
      userAgent: 'user.cli',
      actorDetails: { osUser: 'ops' },
    });
  });

  // Under sudo the OS user is root, which says nothing of who typed the command: sudo's SUDO_USER does.
  it.each([
    ['plain: a login shell of ops', { osUser: 'ops', sudoUser: undefined, effectiveUid: 1000 }, { osUser: 'ops' }],
    ['root logged in as root, no sudo', { osUser: 'root', sudoUser: undefined, effectiveUid: 0 }, { osUser: 'root' }],
    [
      'sudo: root, invoked by alice',
      { osUser: 'root', sudoUser: 'alice', effectiveUid: 0 },
      { osUser: 'root', sudoUser: 'alice' },
    ],
    [
      'sudo, root without a passwd name',
      { osUser: 'uid:0', sudoUser: 'alice', effectiveUid: 0 },
      { osUser: 'uid:0', sudoUser: 'alice' },
    ],
    [
      'SUDO_USER left in the environment of a user who is not root (sudo -u, su without -)',
      { osUser: 'postgres', sudoUser: 'alice', effectiveUid: 999 },
      { osUser: 'postgres' },
    ],
    ['SUDO_USER empty', { osUser: 'root', sudoUser: '', effectiveUid: 0 }, { osUser: 'root' }],
    ['SUDO_USER blank', { osUser: 'root', sudoUser: '  ', effectiveUid: 0 }, { osUser: 'root' }],
    [
      'no effective uid (Windows)',
      { osUser: 'unknown', sudoUser: 'alice', effectiveUid: undefined },
      { osUser: 'unknown' },
    ],
  ])('%s', (_case, invoker, expected) => {
    expect(cliActorDetailsOf(invoker)).toEqual(expected);
  });

  it('carries the invoking user into the context under sudo', () => {
    expect(cliAuditContext('user.cli', { osUser: 'root', sudoUser: 'alice', effectiveUid: 0 }).actorDetails).toEqual({
      osUser: 'root',
      sudoUser: 'alice',
    });
  });
});
