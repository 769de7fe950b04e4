// Preloaded (`node --import`) into a start whose HTTP server must find its port taken: after the
// start-up's check that the port is free and after the database is ready, the moment before the
// server listens. There it says so on stderr and waits (blocking: nothing else of the app may run)
// until the file WAIT_BEFORE_LISTEN_FOR exists, which the test creates once it holds the port. A
// second start at the same moment, on the same PORT, takes it there. The check that the port is
// free (a plain net server) is left alone.
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const flag = process.env.WAIT_BEFORE_LISTEN_FOR;
const GIVE_UP_MS = 120_000;
let hasWaited = false;
http.Server.prototype.listen = function listen(...args) {
  if (flag && !hasWaited) {
    hasWaited = true;
    console.error('about to listen: waiting for the test to take the port');
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + GIVE_UP_MS;
    while (!existsSync(flag) && Date.now() < deadline) Atomics.wait(sleeper, 0, 0, 20);
  }
  return net.Server.prototype.listen.apply(this, args);
};
