/**
 * CPU accounting from /proc, as the etcd anchor does it: on a shared 2-core
 * box throughput depends on who gets the cores, so every row says how much
 * the load generator, each node, the kernel and anything else used.
 * Linux only; ticks are USER_HZ = 100 (true on every mainstream kernel).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const TICKS_PER_SECOND = 100;

/** A process whose CPU is reported under its own name. */
export interface Tracked {
  readonly name: string;
  readonly pid: number;
}

export interface ProcStat {
  readonly comm: string;
  readonly ppid: number;
  /** utime + stime, in ticks. */
  readonly ticks: number;
  /** When the process started, in ticks since boot: tells a reused pid from the same process. */
  readonly started: number;
}

interface MachineTicks {
  readonly total: number;
  readonly busy: number;
  readonly irq: number;
  /** Last pid handed out: its growth counts processes/threads created during the window. */
  readonly lastPid: number;
}

export interface CpuSnapshot {
  readonly t: number;
  readonly machine: MachineTicks;
  readonly procs: Map<number, ProcStat>;
  readonly tracked: readonly Tracked[];
}

/** Percent of one core (100 = one full core), except machine_busy_pct (percent of all cores). */
export interface CpuUsage {
  readonly loadgen_pct: number;
  readonly node_pct: Record<string, number>;
  readonly kernel_threads_pct: number;
  readonly irq_pct: number;
  /** Processes that are neither this load generator nor the nodes (kernel threads apart): other tenants. */
  readonly other_pct: number;
  readonly other_top: string[];
  /** Busy time in no live process nor irq: mostly processes that exited during the window. */
  readonly unattributed_pct: number;
  readonly pids_created: number;
  readonly machine_busy_pct: number;
}

function procStat(pid: number | string): ProcStat | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields are counted from the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')),
      ppid: Number(f[1]),
      ticks: Number(f[11]) + Number(f[12]),
      started: Number(f[19]),
    };
  } catch {
    return null; // the process exited between readdir and read
  }
}

function allProcs(): Map<number, ProcStat> {
  const procs = new Map<number, ProcStat>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(d);
    if (st !== null) procs.set(Number(d), st);
  }
  return procs;
}

function machineTicks(): MachineTicks {
  const cpu = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const f = (i: number): number => cpu[i] ?? 0;
  // user nice system idle iowait irq softirq steal: guest time is already inside user.
  let total = 0;
  for (let i = 0; i < 8; i++) total += f(i);
  const lastPid = Number(readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/)[4]);
  return { total, busy: total - f(3) - f(4), irq: f(5) + f(6), lastPid };
}

export function cpuSnapshot(tracked: readonly Tracked[]): CpuSnapshot {
  return { t: performance.now(), machine: machineTicks(), procs: allProcs(), tracked: [...tracked] };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const secs = (b.t - a.t) / 1000;
  const pct = (ticks: number): number => Math.round((ticks / TICKS_PER_SECOND / secs) * 100);
  const d = (pid: number): number => {
    const y = b.procs.get(pid);
    const x = a.procs.get(pid);
    if (y === undefined) return 0;
    // A reused pid (a later start time) started from zero inside the window. Not the name: /proc shows a
    // kernel worker's name with the work queue it last served appended, so the name changes while the
    // process stays, and its lifetime's ticks would count as the window's.
    return y.ticks - (x !== undefined && x.started === y.started ? x.ticks : 0);
  };
  const nodePct: Record<string, number> = {};
  const ours = new Set([process.pid]);
  let mine = d(process.pid);
  for (const t of a.tracked) {
    if (b.procs.has(t.pid)) {
      nodePct[t.name] = pct(d(t.pid));
      mine += d(t.pid);
    }
    ours.add(t.pid);
  }
  let kernel = 0;
  let others = 0;
  const other: [string, number][] = [];
  for (const [pid, st] of b.procs) {
    if (ours.has(pid)) continue;
    const t = d(pid);
    if (st.ppid === 2 || pid === 2)
      kernel += t; // children of kthreadd
    else if (t > 0) {
      other.push([st.comm, t]);
      others += t;
    }
  }
  other.sort((x, y) => y[1] - x[1]);
  const irq = b.machine.irq - a.machine.irq;
  const busy = b.machine.busy - a.machine.busy;
  return {
    loadgen_pct: pct(d(process.pid)),
    node_pct: nodePct,
    kernel_threads_pct: pct(kernel),
    irq_pct: pct(irq),
    other_pct: pct(others),
    other_top: other.slice(0, 3).map(([comm, t]) => `${comm}:${pct(t)}`),
    unattributed_pct: Math.max(0, pct(busy - mine - kernel - others - irq)),
    pids_created: b.machine.lastPid - a.machine.lastPid,
    machine_busy_pct: Math.round((busy / (b.machine.total - a.machine.total)) * 100),
  };
}

/**
 * Pids of the processes listening on these TCP ports (our own user's only:
 * other users' /proc/PID/fd is unreadable). For --endpoints mode, where we
 * did not start the nodes but still want their CPU.
 */
export function pidsListeningOn(ports: readonly number[]): Map<number, number> {
  const inodeToPort = new Map<string, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      const state = f[3];
      const inode = f[9];
      if (local === undefined || state !== '0A' || inode === undefined) continue; // 0A = LISTEN
      const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (ports.includes(port)) inodeToPort.set(inode, port);
    }
  }
  const found = new Map<number, number>(); // port -> pid
  if (inodeToPort.size === 0) return found;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${d}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      const port = m === null ? undefined : inodeToPort.get(m[1] as string);
      if (port !== undefined && !found.has(port)) found.set(port, Number(d));
    }
  }
  return found;
}
