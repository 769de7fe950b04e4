import { afterEach, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { listen } from '../../src/http/lifecycle.js';
import { portInUseMessage, type TakenPort, takePort } from '../support/taken-port.js';

const taken: TakenPort[] = [];
afterEach(async () => {
  await Promise.all(taken.splice(0).map((port) => port.release()));
});

const answer = () => undefined;

// A second `npm start` given its own DATA_DIR but not its own PORT said only "listen EADDRINUSE:
// address already in use 127.0.0.1:8000", Node's words, naming no setting to change.
describe('a server that cannot listen', () => {
  it('on a port another process holds says so and names PORT', async () => {
    const port = await findFreePort();
    taken.push(await takePort(port));

    const failure = await listen(answer, port, '127.0.0.1').then(
      () => undefined,
      (error: NodeJS.ErrnoException) => error,
    );
    expect(failure?.message).toBe(portInUseMessage(port));
    expect(failure?.code).toBe('EADDRINUSE');
  });

  it('on an address this machine does not have says so and names HOST', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of a real machine.
    const failure = await listen(answer, await findFreePort(), '192.0.2.7').then(
      () => undefined,
      (error: NodeJS.ErrnoException) => error,
    );
    expect(failure?.message).toBe(
      'HOST 192.0.2.7 is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or to 0.0.0.0 for every interface',
    );
    expect(failure?.code).toBe('EADDRNOTAVAIL');
  });

  // A HOST name that resolves to nothing (a typo, a name only another machine's /etc/hosts has) failed
  // with Node's "getaddrinfo ENOTFOUND name", naming no setting, which the start then took for the
  // database's failure: "the database cannot be reached (DATABASE_URL): getaddrinfo ENOTFOUND name".
  it('on a host name that does not resolve says so and names HOST', async () => {
    // .invalid never resolves (RFC 2606).
    const failure = await listen(answer, await findFreePort(), 'no-such-host.invalid').then(
      () => undefined,
      (error: NodeJS.ErrnoException) => error,
    );
    expect(failure?.message).toBe(
      'HOST no-such-host.invalid does not resolve to an address (ENOTFOUND): set HOST to an address of this machine, a name that resolves to one, or 0.0.0.0 for every interface',
    );
    expect(failure?.code).toBe('ENOTFOUND');
  });
});
