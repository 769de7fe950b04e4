import { describe, expect, it } from 'vitest';
import { cliAuditContext, osUserOf } from '../../src/cli/cli-audit-context.js';

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
    expect(cliAuditContext('user.cli', 'ops')).toEqual({
      actor: 'cli',
      ip: null,
      userAgent: 'user.cli',
      actorDetails: { osUser: 'ops' },
    });
  });
});
