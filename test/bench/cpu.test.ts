import { describe, expect, it } from 'vitest';
import { type CpuSnapshot, cpuDelta } from '../../bench/cluster/cpu.js';

/** One second between the snapshots, 2 cores (200 ticks), half of them busy. */
function snapshots(
  before: [number, { comm: string; ppid: number; ticks: number; started: number }][],
  after: typeof before,
): [CpuSnapshot, CpuSnapshot] {
  const machine = (total: number, busy: number) => ({ total, busy, irq: 0, lastPid: 100 });
  return [
    { t: 0, machine: machine(0, 0), procs: new Map(before), tracked: [] },
    { t: 1000, machine: machine(200, 100), procs: new Map(after), tracked: [] },
  ];
}

describe('CPU accounting from /proc', () => {
  it('counts a kernel worker that renamed itself during the window by its ticks in the window, not its lifetime', () => {
    const [a, b] = snapshots(
      [[46, { comm: 'kworker/1:1H-kblockd', ppid: 2, ticks: 3800, started: 50 }]],
      [[46, { comm: 'kworker/1:1H-events', ppid: 2, ticks: 3810, started: 50 }]],
    );
    expect(cpuDelta(a, b).kernel_threads_pct).toBe(10);
  });

  it('counts a pid reused by a process started inside the window from zero', () => {
    const [a, b] = snapshots(
      [[500, { comm: 'sh', ppid: 1, ticks: 4000, started: 10 }]],
      [[500, { comm: 'sh', ppid: 1, ticks: 20, started: 90_000 }]],
    );
    expect(cpuDelta(a, b).other_pct).toBe(20);
  });
});
