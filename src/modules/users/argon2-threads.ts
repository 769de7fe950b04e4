import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** What @node-rs/argon2's hashSync takes; kept structural so this file does not import its types. */
export interface Argon2Options {
  algorithm: number;
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export interface Argon2ThreadsSettings {
  /** Threads hashing at once; a verify beyond them waits its turn in this process's queue. */
  threads: number;
  /**
   * The threads' nice value (0-19). Above 0, the kernel runs page requests and PostgreSQL
   * before a hash whenever both want a core, so a burst of sign-ins (or a password spray)
   * slows sign-ins down instead of every signed-in page.
   */
  niceness: number;
}

export interface Argon2Threads {
  hash(password: string, options: Argon2Options): Promise<string>;
  verify(storedHash: string, password: string): Promise<boolean>;
  /** Ends the threads and fails the hashes still running or waiting; a call afterwards starts new ones. */
  close(): Promise<void>;
}

/** The thread, not the password or hash, failed: a sign-in must not count it as a wrong password. */
export class Argon2ThreadFailure extends Error {
  override name = 'Argon2ThreadFailure';
}

type Job = { op: 'hash'; args: [string, Argon2Options] } | { op: 'verify'; args: [string, string] };
type Reply = { id: number; result?: string | boolean; error?: string };
interface Pending {
  id: number;
  job: Job;
  resolve(result: string | boolean): void;
  reject(error: Error): void;
}

// CommonJS evaluated in the thread: a file of its own would need a loader under tsx and vitest.
// os.setPriority(0, n) is setpriority(PRIO_PROCESS, 0, n), which on Linux sets the calling
// thread's nice value only, not the process's.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
try { require('node:os').setPriority(0, workerData.niceness); } catch {}
const argon2 = require(workerData.argon2Path);
parentPort.on('message', ({ id, op, args }) => {
  try {
    const result = op === 'verify' ? argon2.verifySync(args[0], args[1]) : argon2.hashSync(args[0], args[1]);
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

/**
 * argon2 on threads of their own at a lower CPU priority, instead of libuv's pool at the
 * pages' priority. Each thread takes one job at a time; the rest queue here in order.
 */
export function createArgon2Threads(settings: Argon2ThreadsSettings): Argon2Threads {
  const argon2Path = createRequire(import.meta.url).resolve('@node-rs/argon2');
  const threadCount = Math.max(1, Math.trunc(settings.threads));
  const idle: Worker[] = [];
  const busy = new Map<Worker, Pending>();
  const queue: Pending[] = [];
  let nextId = 1;

  function startThread(): Worker {
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      // Not the process's flags: --input-type=module would make the source above ESM, and a
      // loader such as tsx's would start in every thread for nothing.
      execArgv: [],
      workerData: { argon2Path, niceness: settings.niceness },
      // A hash needs 19 MiB outside the heap; the thread's own heap stays small.
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    worker.on('message', (reply: Reply) => {
      const pending = busy.get(worker);
      busy.delete(worker);
      worker.unref();
      if (pending?.id === reply.id) {
        if (reply.error !== undefined) pending.reject(new Error(reply.error));
        else pending.resolve(reply.result as string | boolean);
      }
      idle.push(worker);
      dispatch();
    });
    worker.on('error', (error) =>
      failThread(worker, new Argon2ThreadFailure(`argon2 thread failed: ${error.message}`)),
    );
    worker.on('exit', (code) => failThread(worker, new Argon2ThreadFailure(`argon2 thread exited with ${code}`)));
    // An idle thread must not keep the process alive (a CLI that hashed one password exits);
    // one with a job must, or a script awaiting only the hash would end before it. After the
    // listeners: adding a 'message' listener refs the thread's port again.
    worker.unref();
    return worker;
  }

  // A thread that dies takes only its own job with it; the queue goes on with a new one.
  function failThread(worker: Worker, error: Error) {
    const wasKnown = busy.has(worker) || idle.includes(worker);
    if (!wasKnown) return;
    const pending = busy.get(worker);
    busy.delete(worker);
    const index = idle.indexOf(worker);
    if (index >= 0) idle.splice(index, 1);
    pending?.reject(error);
    dispatch();
  }

  function dispatch() {
    while (queue.length > 0) {
      let worker = idle.pop();
      if (!worker && idle.length + busy.size < threadCount) worker = startThread();
      if (!worker) return;
      const pending = queue.shift() as Pending;
      busy.set(worker, pending);
      worker.ref();
      worker.postMessage({ id: pending.id, op: pending.job.op, args: pending.job.args });
    }
  }

  function run(job: Job): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      queue.push({ id: nextId++, job, resolve, reject });
      dispatch();
    });
  }

  return {
    hash: async (password, options) => (await run({ op: 'hash', args: [password, options] })) as string,
    verify: async (storedHash, password) => (await run({ op: 'verify', args: [storedHash, password] })) as boolean,
    async close() {
      const workers = [...idle, ...busy.keys()];
      for (const pending of [...busy.values(), ...queue.splice(0)])
        pending.reject(new Argon2ThreadFailure('argon2 threads closed'));
      idle.length = 0;
      busy.clear();
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
