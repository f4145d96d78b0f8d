import { describe, expect, it } from 'vitest';
import { type CpuSnapshot, cpuDelta, type ProcStat } from '../../bench/cluster/cpu.js';

/** A window of one second (100 ticks) from boot tick 90,000, on 2 cores (200 ticks), half of them busy. */
function window(before: [number, ProcStat][], after: [number, ProcStat][]): [CpuSnapshot, CpuSnapshot] {
  const machine = (total: number, busy: number) => ({ total, busy, irq: 0, lastPid: 100 });
  return [
    { t: 0, machine: machine(0, 0), procs: new Map(before), tracked: [] },
    { t: 1000, machine: machine(200, 100), procs: new Map(after), tracked: [] },
  ];
}

// Pids other than this process's own, which the accounting leaves out.
const WORKER = process.pid + 1;
const SHELL = process.pid + 2;

describe('CPU accounting from /proc', () => {
  it('counts a kernel worker whose name changed during the window by its ticks in the window, not its lifetime', () => {
    const [a, b] = window(
      [[WORKER, { comm: 'kworker/1:1H-kblockd', ppid: 2, ticks: 3800, started: 50 }]],
      [[WORKER, { comm: 'kworker/1:1H-events_highpri', ppid: 2, ticks: 3810, started: 50 }]],
    );
    expect(cpuDelta(a, b).kernel_threads_pct).toBe(10);
  });

  it('counts a process that took over a pid during the window from zero', () => {
    const [a, b] = window(
      [[SHELL, { comm: 'sh', ppid: 1, ticks: 4000, started: 10 }]],
      [[SHELL, { comm: 'sh', ppid: 1, ticks: 20, started: 90_050 }]],
    );
    expect(cpuDelta(a, b).other_pct).toBe(20);
  });
});
