/**
 * A node's data directory is never silently replaced or skipped, tried as a
 * hostile tester would with a real `raftlog node` process: a damaged snapshot
 * file, a deleted LevelDB CURRENT file, a port already in use. Each start
 * must fail with a message naming the file or the cause, and change nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { GetReply, StatusReply, WriteReply } from '../../src/node/client-proto.js';
import { collectRun, type Run } from '../support/collect-run.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const NODE_MAIN = new URL('../../src/node/main.ts', import.meta.url).pathname;
const START_LIMIT_MS = 60_000;

let cluster: ProcessCluster | null = null;
const dirs: string[] = [];
const servers: Server[] = [];

afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Runs `raftlog node` until it exits on its own (or the limit kills it and fails the test). */
function runNode(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return collectRun(child, `raftlog node ${args.join(' ')}`, START_LIMIT_MS);
}

/** A one-node cluster that wrote past a few snapshots, then stopped: its data dir, node arguments and last state. */
async function stoppedNodeWithSnapshots(): Promise<{ dataDir: string; args: string[]; before: StatusReply }> {
  cluster = await ProcessCluster.start(1, ['--snapshot-entries', '20', '--retain-entries', '5']);
  const c = cluster;
  await c.waitForLeader();
  for (let i = 0; i < 60; i++) {
    await c.call<WriteReply>('n1', 'put', { key: Buffer.from(`k${i % 7}`), value: Buffer.from(`v${i}`) }, 10_000);
  }
  // 61 entries (a leader's no-op, then 60 writes): the snapshot at 60 is the last one the node takes.
  await waitFor('the snapshot at 60 recorded', async () => ((await c.status('n1')).snapshotIndex >= 60 ? true : undefined), {
    timeoutMs: 30_000,
  });
  const before = await c.status('n1');
  await c.stop('n1');
  const dataDir = join(c.dir, 'n1');
  const address = c.address('n1');
  return { dataDir, args: ['--id', 'n1', '--listen', address, '--peers', `n1=${address}`, '--data', dataDir], before };
}

/** Every file below `dir` with its size. */
async function sizes(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (entry.name === 'LOG' || entry.name === 'LOG.old' || entry.name === 'LOCK') continue; // LevelDB's own diary and lock
    out.set(path, (await stat(path)).size);
  }
  return out;
}

describe("a node's data directory", () => {
  it('a damaged snapshot file stops the node at start, naming the file; repaired, the node comes back with its state', {
    timeout: 120_000,
  }, async () => {
    const { dataDir, args, before } = await stoppedNodeWithSnapshots();
    const c = cluster as ProcessCluster;
    const snapshotDir = join(dataDir, 'snapshots');
    const recorded = `snap-${String(before.snapshotIndex).padStart(20, '0')}-`;
    const file = (await readdir(snapshotDir)).find((name) => name.startsWith(recorded) && name.endsWith('.snap'));
    expect(file, `a file for snapshot ${before.snapshotIndex} in ${snapshotDir}`).toBeDefined();
    const path = join(snapshotDir, file as string);
    // Fault: one byte in the middle of the file flips, as a failing disk would.
    const bytes = await readFile(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0xff;
    await writeFile(path, bytes);

    const run = await runNode(args);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(path);
    expect(run.stderr).toMatch(/corrupt snapshot/);
    // The refused start left the damaged file where it was, for an operator to look at.
    expect((await readFile(path)).equals(bytes)).toBe(true);

    // Repaired, the node starts from that snapshot and the entries after it: the same state as before.
    bytes[at] = (bytes[at] as number) ^ 0xff;
    await writeFile(path, bytes);
    c.startNode('n1');
    const after = await waitFor(
      'n1 back at its applied index',
      async () => {
        const status = await c.status('n1').catch(() => null);
        return status !== null && status.appliedIndex >= before.appliedIndex ? status : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(after.digest).not.toBe('');
    await c.waitForLeader(['n1']);
    const read = await c.call<GetReply>('n1', 'get', { key: Buffer.from('k3'), consistency: 'READ_CONSISTENCY_LINEARIZABLE' }, 10_000);
    expect(Buffer.from(read.value ?? []).toString()).toBe('v59');
  });

  it('a data dir whose LevelDB CURRENT file was deleted is refused, naming the file, and its tables are left whole', {
    timeout: 120_000,
  }, async () => {
    const { dataDir, args } = await stoppedNodeWithSnapshots();
    await unlink(join(dataDir, 'CURRENT'));
    const before = await sizes(dataDir);

    const run = await runNode(args);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(join(dataDir, 'CURRENT'));
    expect(await sizes(dataDir)).toEqual(before);
  });

  it('a node whose port is taken fails to start with the address named, and creates no data dir', { timeout: 120_000 }, async () => {
    const server = createServer();
    servers.push(server);
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const parent = await mkdtemp(join(tmpdir(), 'raftlog-port-'));
    dirs.push(parent);
    const dataDir = join(parent, 'n1');

    const run = await runNode(['--id', 'n1', '--listen', `127.0.0.1:${port}`, '--peers', `n1=127.0.0.1:${port}`, '--data', dataDir]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
