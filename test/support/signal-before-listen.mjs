// Preloaded (`node --import`) into a start that must be stopped at the moment its HTTP server is
// about to listen: after the database is prepared, before the start-up is over. The process sends
// itself SIGNAL_BEFORE_LISTEN (SIGTERM by default) synchronously, so the signal lands exactly there,
// with no timing to guess. The check that the port is free (a plain net server) is left alone.
import http from 'node:http';
import net from 'node:net';

const signal = process.env.SIGNAL_BEFORE_LISTEN || 'SIGTERM';
let isSent = false;
http.Server.prototype.listen = function listen(...args) {
  if (!isSent) {
    isSent = true;
    console.error(`sending ${signal} to itself before the HTTP server listens`);
    process.kill(process.pid, signal);
  }
  return net.Server.prototype.listen.apply(this, args);
};
