import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface ProcStat {
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

/** Reads /proc/<pid>/stat text; the command name may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) ... utime(14) stime(15), numbered from 1 in proc(5).
  const field = (number: number) => Number(fields[number - 3]);
  return { ppid: field(4), cpuTicks: field(14) + field(15) };
}

/** VmRSS of a /proc/<pid>/status text, in bytes (0 when absent, as for a zombie). */
export function parseVmRssBytes(text: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

/** The inode of the socket listening on `port` in a /proc/net/tcp(6) text. */
export function findListeningInode(procNetTcp: string, port: number): string | undefined {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of procNetTcp.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    // local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is column 10.
    if (columns[1]?.endsWith(`:${portHex}`) && columns[3] === '0A') return columns[9];
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function listPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** The process listening on a TCP port (the cluster primary when the app forks workers). */
export function findPidByPort(port: number): number | undefined {
  const inode =
    findListeningInode(readText('/proc/net/tcp') ?? '', port) ??
    findListeningInode(readText('/proc/net/tcp6') ?? '', port);
  if (!inode) return undefined;
  const target = `socket:[${inode}]`;
  const owners: number[] = [];
  for (const pid of listPids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) {
          owners.push(pid);
          break;
        }
      } catch {
        // The fd closed while we looked.
      }
    }
  }
  // Workers of a cluster share the primary's socket; the lowest pid is the primary.
  return owners.sort((a, b) => a - b)[0];
}

/** `pid` and all its descendants (the cluster workers). */
export function findProcessTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const candidate of listPids()) {
    const text = readText(`/proc/${candidate}/stat`);
    if (!text) continue;
    const { ppid } = parseProcStat(text);
    children.set(ppid, [...(children.get(ppid) ?? []), candidate]);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && tree.length < 1000) {
    const next = queue.shift() as number;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

function readClockTicksPerSecond(): number {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout?.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
}

/** primary: the process started; worker: a node child; helper: anything else (tsx's esbuild). */
export type ProcessRole = 'primary' | 'worker' | 'helper';

function roleOf(pid: number, rootPid: number): ProcessRole {
  if (pid === rootPid) return 'primary';
  const command = readText(`/proc/${pid}/cmdline`)?.split('\0')[0] ?? '';
  return command.endsWith('node') || command === process.execPath ? 'worker' : 'helper';
}

export interface ProcessSample {
  atMs: number;
  pid: number;
  rssBytes: number;
  cpuTicks: number;
}

export interface ServerUsage {
  pids: number[];
  /** CPU used by all server processes over the window; 100 = one core busy. */
  cpuPercent: number;
  /** Per process: RSS at the start (idle before the load), the peak, and at the end. */
  processes: { pid: number; role: ProcessRole; rssStartMb: number; rssMaxMb: number; rssEndMb: number }[];
  rssStartTotalMb: number;
  rssEndTotalMb: number;
  /** Total RSS every sample, for soak growth. */
  rssTimelineMb: { atSec: number; totalMb: number }[];
}

/** Samples CPU time and RSS of a server's process tree from /proc every `intervalMs`. */
export class ServerSampler {
  private readonly samples: ProcessSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly ticksPerSecond = readClockTicksPerSecond();
  private startedAt = 0;
  private pids: number[] = [];
  private loadStartMs = 0;

  constructor(
    private readonly rootPid: number,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.pids = findProcessTree(this.rootPid);
    this.startedAt = Date.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** CPU is counted from here: setup (sign-ins) before it does not inflate the figure. */
  markLoadStart(): void {
    this.sample();
    this.loadStartMs = Date.now() - this.startedAt;
  }

  stop(): ServerUsage {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return this.summarize();
  }

  private sample() {
    const atMs = Date.now() - this.startedAt;
    for (const pid of this.pids) {
      const stat = readText(`/proc/${pid}/stat`);
      const status = readText(`/proc/${pid}/status`);
      if (!stat || !status) continue;
      this.samples.push({ atMs, pid, rssBytes: parseVmRssBytes(status), cpuTicks: parseProcStat(stat).cpuTicks });
    }
  }

  private summarize(): ServerUsage {
    const megabytes = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;
    const processes = this.pids.flatMap((pid) => {
      const own = this.samples.filter((sample) => sample.pid === pid);
      const first = own[0];
      const last = own.at(-1);
      const loadFirst = own.find((sample) => sample.atMs >= this.loadStartMs) ?? first;
      if (!first || !last || !loadFirst) return [];
      return [
        {
          pid,
          role: roleOf(pid, this.rootPid),
          rssStartMb: megabytes(first.rssBytes),
          rssMaxMb: megabytes(Math.max(...own.map((sample) => sample.rssBytes))),
          rssEndMb: megabytes(last.rssBytes),
          cpuTicks: last.cpuTicks - loadFirst.cpuTicks,
          spanMs: last.atMs - loadFirst.atMs,
        },
      ];
    });
    const spanMs = Math.max(1, ...processes.map((entry) => entry.spanMs));
    const ticks = processes.reduce((sum, entry) => sum + entry.cpuTicks, 0);
    const byTime = new Map<number, number>();
    for (const sample of this.samples) byTime.set(sample.atMs, (byTime.get(sample.atMs) ?? 0) + sample.rssBytes);
    return {
      pids: this.pids,
      cpuPercent: Math.round((ticks / this.ticksPerSecond / (spanMs / 1000)) * 1000) / 10,
      processes: processes.map(({ cpuTicks: _ticks, spanMs: _span, ...rest }) => rest),
      rssStartTotalMb: Math.round(processes.reduce((sum, entry) => sum + entry.rssStartMb, 0) * 10) / 10,
      rssEndTotalMb: Math.round(processes.reduce((sum, entry) => sum + entry.rssEndMb, 0) * 10) / 10,
      rssTimelineMb: [...byTime].map(([atMs, bytes]) => ({
        atSec: Math.round(atMs / 100) / 10,
        totalMb: megabytes(bytes),
      })),
    };
  }
}
