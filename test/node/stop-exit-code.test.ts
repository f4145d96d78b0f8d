/**
 * The exit code of a `raftlog node` process that is told to stop, with real
 * processes. A leader stopped with SIGTERM, then SIGINT while it hands over,
 * runs one stop and exits 0. A leader whose log writes fail (a failpoint)
 * fail-stops during that handover, at its first write (the new term it
 * learns from its successor): it exits 1, however the signals and the
 * fail-stop interleave, and the others go on under the successor.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failpointEnvironment, setFailpoint } from '../support/failpoint-control.js';
import { ProcessCluster } from '../support/process-cluster.js';

const WAIT_MS = 60_000;

let cluster: ProcessCluster | null = null;

afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
});

/** SIGTERM, then at once SIGINT (an impatient operator); the exit code once the process is gone. */
async function terminateTwice(c: ProcessCluster, id: string): Promise<number | null> {
  const child = c.processes.get(id) as ChildProcess;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  child.kill('SIGINT');
  // waitForExit SIGKILLs a process that hangs; its exit code is then null, which fails the assertions below.
  await c.waitForExit(id, WAIT_MS);
  return exited;
}

async function logOf(c: ProcessCluster, id: string): Promise<string> {
  return readFile(join(c.dir, `${id}.log`), 'utf8');
}

describe('a leader told to stop', () => {
  it('hands over once and exits 0 when SIGINT follows SIGTERM', { timeout: 4 * WAIT_MS }, async () => {
    const c = (cluster = await ProcessCluster.start(3));
    const leader = await c.waitForLeader();
    await c.call(leader, 'put', { key: Buffer.from('k'), value: Buffer.from('v') }, 10_000);

    const code = await terminateTwice(c, leader);

    const log = await logOf(c, leader);
    expect(code, log.slice(-3000)).toBe(0);
    expect(log).toContain('"msg":"already stopping"');
    expect(log.split('\n').filter((line) => line.includes('"event":"stopped"'))).toHaveLength(1);
    await c.waitForLeader(
      c.ids.filter((id) => id !== leader),
      WAIT_MS,
    );
  });

  it('exits 1 when its log write fails during the handover (fail-stop), though the signals asked for a clean stop', {
    timeout: 4 * WAIT_MS,
  }, async () => {
    const c = (cluster = await ProcessCluster.start(3, [], { envOf: () => failpointEnvironment() }));
    const leader = await c.waitForLeader();
    // Every node applied the leader's first entry: the leader has nothing left to write.
    await c.waitForConvergence(1);
    // An idle leader writes nothing (heartbeats are not persisted) until it learns its successor's term.
    await setFailpoint(c, leader, 'log-write', 'error(EIO: input/output error)');

    const code = await terminateTwice(c, leader);

    const log = await logOf(c, leader);
    expect(code, log.slice(-3000)).toBe(1);
    expect(log).toContain('"event":"leadership-transfer"');
    expect(log).toMatch(/"event":"fatal".*EIO: input\/output error/);
    await c.waitForLeader(
      c.ids.filter((id) => id !== leader),
      WAIT_MS,
    );
  });
});
