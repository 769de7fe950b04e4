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
});
