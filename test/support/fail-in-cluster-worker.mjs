// Preloaded (`node --import`) into a start whose cluster workers must fail before they listen:
// the primary checks the port itself, so a taken port no longer reaches the workers.
import cluster from 'node:cluster';

if (cluster.isWorker) {
  console.error('this worker fails on purpose before it listens');
  process.exit(1);
}
