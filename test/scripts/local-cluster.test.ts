/**
 * The local-cluster scripts as a user runs them: each command is a real
 * `node --import tsx scripts/cluster.ts ...` process, the nodes are real
 * detached processes, in a temp dir on free ports.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NodeRecord } from '../../scripts/local-cluster/cluster-state.js';
import { isNodeProcess } from '../../scripts/local-cluster/node-process.js';
import type { ClusterStatusJson, NodeStatusJson } from '../../scripts/local-cluster/status-output.js';
import { RaftLogClient } from '../../src/client/index.js';
import { collectRun, type Run } from '../support/collect-run.js';
import { freeBasePort, listenOn } from '../support/free-ports.js';
import { readClusterState } from '../support/local-cluster-state.js';
import { waitFor } from '../support/wait-for.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'cluster.ts');
/** A start waits for the nodes and an election, each with a 60 s deadline, on a busy machine. */
const RUN_LIMIT_MS = 150_000;
/** Elections and catching up on a loaded 2-core machine. */
const CONVERGE_MS = 30_000;
const NODES = 3;

let dir: string;
let basePort: number;
/** Every node process a command reported, so cleanup finds even those the state file no longer lists. */
let seen: Map<number, NodeRecord>;
let blockers: Server[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftlog-local-cluster-'));
  // Room for the nodes add-node starts after them.
  basePort = await freeBasePort(NODES + 2);
  seen = new Map();
  blockers = [];
});

afterEach(async () => {
  await Promise.all(blockers.map((server) => new Promise((resolve) => server.close(resolve))));
  const state = await readClusterState(dir);
  for (const node of state?.nodes ?? []) if (node.pid !== null) seen.set(node.pid, node);
  // The same check as the scripts': only a pid that still runs this node's main.ts is killed.
  for (const [pid, node] of seen) {
    if (await isNodeProcess(pid, node)) process.kill(pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
});

describe('scripts/cluster.ts', () => {
  it('starts a cluster, survives killing the leader, catches a restarted node up, stops and resumes', { timeout: 400_000 }, async () => {
    const started = await cluster('start', '--nodes', String(NODES), '--base-port', String(basePort));
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/leader: n\d \(term \d+\)/);
    expect(started.stdout).toContain('npx raftlog put greeting hello');

    const first = await waitForStatus('a leader that all three nodes follow', (s) => {
      const up = s.nodes.filter((node) => node.state === 'up');
      return s.leader !== null && up.length === NODES && up.every((node) => node.leader === s.leader);
    });
    expect(first.nodes.map((node) => node.id)).toEqual(['n1', 'n2', 'n3']);
    const leader = first.leader as string;

    const client = new RaftLogClient({ endpoints: first.nodes.map((node) => node.address), deadlineMs: 10_000 });
    try {
      await client.put('before', 'the crash');

      const killed = await cluster('kill', 'leader');
      expect(killed.code, killed.stderr).toBe(0);
      expect(killed.stdout).toContain(`Killed ${leader}`);
      const afterKill = await waitForStatus(
        `${leader} down and a new leader`,
        (s) => s.leader !== null && s.leader !== leader && nodeIn(s, leader).state === 'down',
      );
      expect(nodeIn(afterKill, leader)).toMatchObject({ pid: null, firstLogIndex: null, snapshotIndex: null });
      expect(afterKill.nodes.filter((node) => node.state === 'up')).toHaveLength(NODES - 1);

      const written = await client.put('while', `${leader} is down`);

      const restarted = await cluster('restart', leader);
      expect(restarted.code, restarted.stderr).toBe(0);
      const caughtUp = await waitForStatus(`${leader} back with the others' applied index and digest`, (s) => {
        const up = s.nodes.filter((node) => node.state === 'up');
        const reference = up[0];
        return (
          up.length === NODES &&
          reference !== undefined &&
          (reference.appliedIndex ?? 0) >= written.index &&
          up.every((node) => node.appliedIndex === reference.appliedIndex && node.digest === reference.digest)
        );
      });
      const back = nodeIn(caughtUp, leader);
      expect(back.pid).not.toBeNull();
      expect(back.pid).not.toBe(nodeIn(first, leader).pid);
      // A handful of writes, far below the snapshot threshold: every log still starts at 1, and no node has a snapshot.
      for (const node of caughtUp.nodes) expect(node).toMatchObject({ firstLogIndex: 1, snapshotIndex: 0 });

      const again = await cluster('start');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('already running');
      const table = again.stdout.split('\n').filter((line) => /^(NODE|n\d) /.test(line));
      expect(table[0]!.split(/\s+/)).toEqual([
        'NODE',
        'ADDRESS',
        'PID',
        'ROLE',
        'TERM',
        'LEADER',
        'COMMIT',
        'APPLIED',
        'FIRST',
        'SNAPSHOT',
        'DIGEST',
      ]);
      expect(table).toHaveLength(NODES + 1);
      // A node too slow to answer on a loaded machine shows as unreachable; the others show where their logs start.
      const answered = table
        .slice(1)
        .map((row) => row.split(/\s+/))
        .filter((cells) => cells[3] !== 'unreachable');
      expect(answered.length).toBeGreaterThan(0);
      for (const cells of answered) expect(cells.slice(8, 10), cells.join(' ')).toEqual(['1', '-']);

      const stopped = await cluster('stop');
      expect(stopped.code, stopped.stderr).toBe(0);
      for (const node of caughtUp.nodes) expect(await isNodeProcess(node.pid as number, recordOf(node))).toBe(false);
      const down = await status();
      expect(down.nodes.map((node) => node.state)).toEqual(['down', 'down', 'down']);

      // Resuming: the same nodes with their data.
      const resumed = await cluster('start');
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain('Resuming the 3-node cluster');
      const read = await client.get('while');
      expect(Buffer.from(read.value ?? new Uint8Array()).toString()).toBe(`${leader} is down`);
      expect((await cluster('stop')).code).toBe(0);
    } finally {
      client.close();
    }
  });

  it('refuses a node count outside 1..7 and a busy port, leaving nothing running', async () => {
    const tooMany = await cluster('start', '--nodes', '8', '--base-port', String(basePort));
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain('1..7');

    blockers.push(await listenOn(basePort + 1));
    const busy = await cluster('start', '--base-port', String(basePort));
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`port ${basePort + 1} on 127.0.0.1 is in use`);
    expect(busy.stderr).toContain('nothing was started');
    expect(await readClusterState(dir)).toBeNull();

    const noCluster = await cluster('kill', 'leader');
    expect(noCluster.code).toBe(1);
    expect(noCluster.stderr).toContain('no local cluster');
  });

  it('refuses to resume with another node count unless --fresh', async () => {
    // One node keeps it quick: the count is what matters.
    const started = await cluster('start', '--nodes', '1', '--base-port', String(basePort));
    expect(started.code, started.stderr).toBe(0);
    expect((await cluster('stop')).code).toBe(0);

    const other = await cluster('start', '--nodes', '3');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('has 1 nodes');
    expect(other.stderr).toContain('--fresh');

    const fresh = await cluster('start', '--nodes', '2', '--fresh');
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toContain('Starting a new 2-node cluster');
    expect((await status()).nodes.map((node) => node.id)).toEqual(['n1', 'n2']);
    expect((await cluster('stop')).code).toBe(0);
  });

  it('replaces a dead node (kill, wipe, remove-node, add-node), removes a live one, and resumes the changed cluster', {
    timeout: 400_000,
  }, async () => {
    expect((await cluster('start', '--nodes', String(NODES), '--base-port', String(basePort))).code).toBe(0);
    const client = new RaftLogClient({ endpoints: [1, 2].map((k) => `127.0.0.1:${basePort + k - 1}`), deadlineMs: 20_000 });
    try {
      await client.put('before', 'the disk died');

      // The fault: n3's disk dies.
      expect((await cluster('kill', 'n3')).code).toBe(0);
      await rm(join(dir, 'data', 'n3'), { recursive: true, force: true });

      const removed = await cluster('remove-node', 'n3');
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout).toContain('Removed n3');
      const added = await cluster('add-node');
      expect(added.code, added.stderr + added.stdout).toBe(0);
      expect(added.stdout).toContain('Added n4 as a learner');
      expect(added.stdout).toContain('Promoted n4 to voter');
      expect((await client.memberList()).members.map((m) => `${m.id}:${m.role}`)).toEqual(['n1:voter', 'n2:voter', 'n4:voter']);

      const written = await client.put('after', 'n4 joined');
      const converged = await waitForStatus('n1, n2, n4 at one applied index and digest', (s) => {
        const reference = s.nodes[0];
        return (
          s.nodes.map((node) => node.id).join() === 'n1,n2,n4' &&
          reference !== undefined &&
          (reference.appliedIndex ?? 0) >= written.index &&
          s.nodes.every((node) => node.state === 'up' && node.appliedIndex === reference.appliedIndex && node.digest === reference.digest)
        );
      });
      expect(nodeIn(converged, 'n4').address).toBe(`127.0.0.1:${basePort + 3}`);

      // A live member removed: it exits by itself, its data goes, and ids are never reused.
      const n1 = nodeIn(converged, 'n1');
      const gone = await cluster('remove-node', 'n1');
      expect(gone.code, gone.stderr).toBe(0);
      expect(await isNodeProcess(n1.pid as number, recordOf(n1))).toBe(false);
      const next = await cluster('add-node', '--learner');
      expect(next.code, next.stderr).toBe(0);
      expect(next.stdout).toContain('Added n5 as a learner');
      expect((await client.memberList()).members.map((m) => `${m.id}:${m.role}`)).toEqual(['n2:voter', 'n4:voter', 'n5:learner']);

      // Stopped and resumed: the cluster as it is now, not as first started.
      expect((await cluster('stop')).code).toBe(0);
      const resumed = await cluster('start');
      expect(resumed.code, resumed.stderr + resumed.stdout).toBe(0);
      expect(resumed.stdout).toContain('Resuming the 3-node cluster');
      const reader = new RaftLogClient({ endpoints: [`127.0.0.1:${basePort + 3}`], deadlineMs: 20_000 });
      try {
        expect(Buffer.from((await reader.get('before')).value ?? new Uint8Array()).toString()).toBe('the disk died');
        expect(Buffer.from((await reader.get('after')).value ?? new Uint8Array()).toString()).toBe('n4 joined');
      } finally {
        reader.close();
      }
      expect((await cluster('stop')).code).toBe(0);
    } finally {
      client.close();
    }
  });
});

/** Runs the script with this test's --dir and collects its output. */
function cluster(command: string, ...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, command, ...args, '--dir', dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collectRun(child, `cluster ${command} ${args.join(' ')}`, RUN_LIMIT_MS);
}

async function status(): Promise<ClusterStatusJson> {
  const run = await cluster('status', '--json');
  if (run.code !== 0) throw new Error(`status --json failed (${run.code}): ${run.stderr}`);
  const parsed = JSON.parse(run.stdout) as ClusterStatusJson;
  for (const node of parsed.nodes) if (node.pid !== null) seen.set(node.pid, recordOf(node));
  return parsed;
}

function waitForStatus(what: string, holds: (status: ClusterStatusJson) => boolean): Promise<ClusterStatusJson> {
  return waitFor(
    what,
    async () => {
      const now = await status();
      // Thrown, so that a timeout reports the last status.
      if (!holds(now)) throw new Error(`last status: ${JSON.stringify(now)}`);
      return now;
    },
    { timeoutMs: CONVERGE_MS, intervalMs: 250 },
  );
}

function nodeIn(status: ClusterStatusJson, id: string): NodeStatusJson {
  const node = status.nodes.find((candidate) => candidate.id === id);
  if (node === undefined) throw new Error(`no ${id} in ${JSON.stringify(status)}`);
  return node;
}

/** Enough of a node record for isNodeProcess, which matches on the id and the data directory. */
function recordOf(node: NodeStatusJson): NodeRecord {
  return { id: node.id, address: node.address, dataDir: node.dataDir, logFile: node.logFile, args: [], pid: node.pid };
}
