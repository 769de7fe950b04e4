/**
 * The sign-in ceiling of this machine: how many passwords per second the app's own
 * hashing (argon2id at the OWASP parameters, src/modules/users/password.ts) verifies,
 * one at a time and with 2, 4 and 8 in flight (the native verifies run on libuv's thread
 * pool). `login-browse` can never complete more iterations per second than this.
 *
 *   npm run bench:argon2 [-- --verifies 200]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { hashPassword, verifyPassword } from '../src/modules/users/password.js';
import { readTransparentHugePagesMode } from '../src/shared/transparent-huge-pages.js';

const { values } = parseArgs({ options: { verifies: { type: 'string', default: '200' } } });
const verifies = Number(values.verifies);
if (!Number.isInteger(verifies) || verifies < 1) throw new Error('--verifies must be a positive integer');

const stored = await hashPassword('bench-password');
console.log(
  `argon2 verify throughput, ${os.availableParallelism()} cores, ${verifies} verifies per row, ` +
    `transparent huge pages ${(await readTransparentHugePagesMode()) ?? 'unknown'} (with them off a verify costs about five times as much)`,
);
console.log('| in flight | verifies/s | ms per verify (wall) |');
console.log('| ---: | ---: | ---: |');
for (const inFlight of [1, 2, 4, 8]) {
  let started = 0;
  const begin = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < verifies) {
        started += 1;
        if (!(await verifyPassword(stored, 'bench-password'))) throw new Error('verify failed');
      }
    }),
  );
  const seconds = (performance.now() - begin) / 1000;
  console.log(`| ${inFlight} | ${(verifies / seconds).toFixed(1)} | ${((seconds * 1000) / verifies).toFixed(1)} |`);
}
