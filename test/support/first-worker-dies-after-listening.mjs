// Preloaded (`node --import`) into a start with WEB_CONCURRENCY=2: the first worker is killed (as
// the OOM killer would) once it has listened, while the second is still starting (its listen is
// held back a few seconds). The worker started in the first one's place (id 3) is left alone.
import cluster from 'node:cluster';
import net from 'node:net';

const SECOND_WORKER_LISTEN_DELAY_MS = 4_000;

if (cluster.isWorker && cluster.worker.id === 1) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function listenThenDie(...args) {
    this.once('listening', () => {
      console.error(`the first worker listened and is killed on purpose (pid ${process.pid})`);
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
    });
    return listen.apply(this, args);
  };
}
if (cluster.isWorker && cluster.worker.id === 2) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function delayedListen(...args) {
    setTimeout(() => listen.apply(this, args), SECOND_WORKER_LISTEN_DELAY_MS);
    return this;
  };
}
