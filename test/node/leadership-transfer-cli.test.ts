/**
 * `raftlog transfer-leader [--to ID]` as a person or a script runs it (node
 * bin/raftlog.js) against real `raftlog node` processes: the line it prints
 * and its --json, and exit code 7 for a target the cluster refuses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { collectRun, type Run } from '../support/collect-run.js';
import { ProcessCluster } from '../support/process-cluster.js';

const BIN = fileURLToPath(new URL('../../bin/raftlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN_LIMIT_MS = 30_000;

let cluster: ProcessCluster | null = null;
let children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
  await cluster?.destroy();
  cluster = null;
});

function raftlog(c: ProcessCluster, args: readonly string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RAFTLOG_ENDPOINTS;
  const all = ['--endpoints', c.ids.map((id) => c.address(id)).join(','), '--timeout', '20000', ...args];
  const child = spawn(process.execPath, [BIN, ...all], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return collectRun(child, `raftlog ${all.join(' ')}`, RUN_LIMIT_MS);
}

describe('raftlog transfer-leader', () => {
  it('moves leadership to --to, says so, and then finds nothing to do for the same target', async () => {
    const c = (cluster = await ProcessCluster.start(3));
    const leader = await c.waitForLeader();
    const target = c.ids.find((id) => id !== leader) as string;

    const moved = await raftlog(c, ['transfer-leader', '--to', target]);
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(new RegExp(`^OK  ${target} leads term \\d+ \\(was ${leader}\\)\\n$`));
    expect(await c.waitForLeader()).toBe(target);

    const again = await raftlog(c, ['--json', 'transfer-leader', '--to', target]);
    expect(again.code).toBe(0);
    const json = JSON.parse(again.stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ command: 'transfer-leader', leader: target, previousLeader: target });
    expect(typeof json.term).toBe('number');
  });

  it('hands over to a voter of its own choosing without --to', async () => {
    const c = (cluster = await ProcessCluster.start(3));
    const leader = await c.waitForLeader();

    const moved = await raftlog(c, ['--json', 'transfer-leader']);

    expect(moved.code).toBe(0);
    const json = JSON.parse(moved.stdout) as { leader: string; previousLeader: string };
    expect(json.previousLeader).toBe(leader);
    expect(json.leader).not.toBe(leader);
  });

  it('exits 7 with the reason when the target is not a member, and leadership stays', async () => {
    const c = (cluster = await ProcessCluster.start(3));
    const leader = await c.waitForLeader();

    const refused = await raftlog(c, ['transfer-leader', '--to', 'n7']);

    expect(refused.code).toBe(7);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('n7 is not a member of the cluster (voters n1, n2, n3)');
    expect(await c.waitForLeader()).toBe(leader);
  });
});
