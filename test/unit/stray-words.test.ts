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
    expect(describeArgsError(error, 'user:passwd', ['ops'], 'source')).toMatch(
      /^Unexpected argument 'ops'.*\n.*npm run user:passwd -- --username NAME$/,
    );
    expect(describeArgsError(error, 'user:passwd', ['ops'], 'checkout')).toMatch(
      /npm run user:passwd:prod -- --username NAME$/,
    );
  });

  it('leaves the message as it is in the image (no npm), after a "--" the tool got, and for other mistakes', () => {
    const stray = errorOf(['ops']);
    const plain = (stray as Error).message;
    expect(describeArgsError(stray, 'user:passwd', ['ops'], 'image')).toBe(plain);
    expect(describeArgsError(stray, 'user:passwd', ['--', 'ops'], 'source')).toBe(plain);
    const unknown = errorOf(['--usrname', 'ops']);
    expect(describeArgsError(unknown, 'user:passwd', ['--usrname', 'ops'], 'source')).toBe((unknown as Error).message);
  });
});
