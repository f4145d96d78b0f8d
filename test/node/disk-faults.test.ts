import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failpointEnvironment, setFailpoint } from '../support/failpoint-control.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const put = (cluster: ProcessCluster, id: string, key: string) => cluster.call(id, 'put', { key: Buffer.from(key), value: Buffer.from('v') }, 5_000);

describe('disk faults, injected through failpoints', () => {
  let cluster: ProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
  });

  it('a leader whose disk stalls falls silent and the others elect a leader; writes go on through it; the old one follows and catches up once its disk is back', {
    timeout: 240_000,
  }, async () => {
    cluster = await ProcessCluster.start(3, [], { logLevel: 'info', envOf: () => failpointEnvironment() });
    const c = cluster;
    const leader = await c.waitForLeader();
    await put(c, leader, 'before');

    await setFailpoint(c, leader, 'log-write', 'pause');
    // The next write reaches the stalled disk; nobody answers it until the disk is back or leadership moves.
    const stalledAt = Date.now();
    void put(c, leader, 'stalled').catch(() => undefined);
    const others = c.ids.filter((id) => id !== leader);
    const successor = await waitFor(
      'another node to lead',
      async () => {
        const statuses = await Promise.all(others.map((id) => c.status(id).catch(() => null)));
        return statuses.find((s) => s?.role === 'leader')?.node;
      },
      // A bound on stepping down, not a speed figure: a stalled leader that kept its office would never let this pass.
      20_000,
    );
    process.stdout.write(`disk stall on the leader ${leader}: ${successor} leads ${Date.now() - stalledAt} ms later\n`);
    await waitFor('a write through the new leader', () => put(c, successor, 'after').then(() => true), 60_000);

    // Its messages wait behind the stalled write (none may leave before what it relies on is durable), so
    // it falls silent and the others elect a leader; it learns the new term from them and follows.
    await waitFor('the stalled leader to step down', async () => ((await c.status(leader)).role === 'follower' ? true : undefined), 60_000);

    await setFailpoint(c, leader, 'log-write', 'off');
    const successorStatus = await c.status(successor);
    await c.waitForConvergence(successorStatus.commitIndex, c.ids, 60_000);
  });

  /** A follower's disk fails at `failpoint`: it must stop with exit code 1 and a fatal line matching `failed`, and the others go on. */
  async function followerFailStops(failpoint: 'log-write' | 'journal-append', error: string, failed: RegExp): Promise<void> {
    cluster = await ProcessCluster.start(3, [], { logLevel: 'info', envOf: () => failpointEnvironment() });
    const c = cluster;
    const leader = await c.waitForLeader();
    const follower = c.ids.find((id) => id !== leader) as string;
    const child = c.processes.get(follower);

    await setFailpoint(c, follower, failpoint, `error(${error})`);
    await put(c, leader, 'k');

    expect(await c.waitForExit(follower, 60_000)).toBe(true);
    expect(child?.exitCode).toBe(1);
    const fatal = (await readFile(join(c.dir, `${follower}.log`), 'utf8')).split('\n').find((line) => line.includes('"event":"fatal"'));
    expect(fatal).toContain(`failpoint ${failpoint}: ${error}`);
    expect(fatal).toMatch(failed);
    await put(c, leader, 'still-writable');
  }

  it('a disk that fails a write stops the node (fail-stop) with a line naming the write; the others go on', { timeout: 240_000 }, () =>
    followerFailStops('log-write', 'EIO: input/output error', /cannot continue: save of \d+ outputs? \(entries/),
  );

  it('a follower whose journal append fails stops (fail-stop) with a line naming it; the others go on', { timeout: 240_000 }, () =>
    followerFailStops('journal-append', 'ENOSPC: no space left on device', /cannot continue: carrying out output failed/),
  );
});
