import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { describeArgsError } from '../../src/cli/stray-words.js';

/** parseArgs's own error for these words, as the tools get it. */
function errorOf(args: string[]): unknown {
  try {
    parseArgs({ args, options: { username: { type: 'string' } } });
  } catch (error) {
    return error;
  }
  throw new Error('parseArgs took the words');
}

describe('a command-line mistake, with the fix for a missing "--"', () => {
  it('names the npm script with "--" for a stray word, as the copy runs it', () => {
    const error = errorOf(['ops']);
    expect(describeArgsError(error, 'user:passwd', ['ops'], { runs: 'source', isNpmScript: true })).toMatch(
      /^Unexpected argument 'ops'.*\n.*npm run user:passwd -- --username NAME$/,
    );
    expect(describeArgsError(error, 'user:passwd', ['ops'], { runs: 'checkout', isNpmScript: true })).toMatch(
      /npm run user:passwd:prod -- --username NAME$/,
    );
  });

  it('leaves the message as it is without npm (node dist/src/cli/…, the image), after a "--" the tool got, and for other mistakes', () => {
    const stray = errorOf(['ops']);
    const plain = (stray as Error).message;
    expect(describeArgsError(stray, 'user:passwd', ['ops'], { runs: 'checkout', isNpmScript: false })).toBe(plain);
    expect(describeArgsError(stray, 'user:passwd', ['ops'], { runs: 'image', isNpmScript: true })).toBe(plain);
    expect(describeArgsError(stray, 'user:passwd', ['--', 'ops'], { runs: 'source', isNpmScript: true })).toBe(plain);
    const unknown = errorOf(['--usrname', 'ops']);
    expect(describeArgsError(unknown, 'user:passwd', ['--usrname', 'ops'], { runs: 'source', isNpmScript: true })).toBe(
      (unknown as Error).message,
    );
  });

  it('names the option a typo was meant to be, when one is that close', () => {
    const userOptions = ['username', 'role', 'password-stdin', 'help'];
    const meant = (typed: string, knownOptions = userOptions) =>
      describeArgsError(errorOf([typed, 'x']), 'user:create', [typed, 'x'], { knownOptions });
    expect(meant('--usrname')).toBe("Unknown option '--usrname' (did you mean --username?)");
    expect(meant('--user')).toBe("Unknown option '--user' (did you mean --username?)");
    expect(meant('--pasword-stdin')).toBe("Unknown option '--pasword-stdin' (did you mean --password-stdin?)");
    expect(meant('--rol=admin')).toBe("Unknown option '--rol' (did you mean --role?)");
    expect(meant('--form', ['from', 'to', 'force', 'help'])).toBe("Unknown option '--form' (did you mean --from?)");
    // Nothing close: the message alone (the usage under it lists the options).
    expect(meant('--colour')).toBe("Unknown option '--colour'");
    expect(meant('-u')).toBe("Unknown option '-u'");
  });
});
