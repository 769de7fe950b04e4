// Preloaded (`node --import`) into a start whose HTTP server must listen only when the test says
// so: after the start-up's check that the port is free and after the database is ready. There it
// says so on stderr and waits for the file LISTEN_WHEN_TOLD_BY to exist, polling on a timer, so
// the app goes on running meanwhile (unlike wait-before-listen.mjs, which blocks): signals sent
// then are handled as they arrive, each in its own turn. The check that the port is free (a plain
// net server) is left alone.
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const flag = process.env.LISTEN_WHEN_TOLD_BY;
const GIVE_UP_MS = 120_000;
let hasWaited = false;
http.Server.prototype.listen = function listen(...args) {
  if (!flag || hasWaited) return net.Server.prototype.listen.apply(this, args);
  hasWaited = true;
  console.error('about to listen: waiting for the test to say when');
  const deadline = Date.now() + GIVE_UP_MS;
  const poll = setInterval(() => {
    if (!existsSync(flag) && Date.now() < deadline) return;
    clearInterval(poll);
    net.Server.prototype.listen.apply(this, args);
  }, 20);
  return this;
};
