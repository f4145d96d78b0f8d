/**
 * `npm start -- --tls` as a user runs it: a local cluster whose nodes take
 * only certificates of its throwaway CA, which the other scripts and the CLI
 * (with the exports `start` prints) use. Real script and node processes, in
 * a temp dir on free ports.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterState } from '../../scripts/local-cluster/cluster-state.js';
import { isNodeProcess } from '../../scripts/local-cluster/node-process.js';
import type { ClusterStatusJson } from '../../scripts/local-cluster/status-output.js';
import { RaftLogClient, RaftLogUnavailableError } from '../../src/client/index.js';
import { ClusterPoller } from '../../src/dashboard/cluster-poller.js';
import { collectRun, type Run } from '../support/collect-run.js';
import { freeBasePort } from '../support/free-ports.js';
import { readClusterState } from '../support/local-cluster-state.js';
import { rejection } from '../support/rejection.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'cluster.ts');
const BIN = join(ROOT, 'bin', 'raftlog.js');
/** A start waits for the nodes and an election, each with a 60 s deadline, on a busy machine. */
const RUN_LIMIT_MS = 150_000;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftlog-tls-local-'));
});

afterEach(async () => {
  const state = await readClusterState(dir);
  for (const node of state?.nodes ?? []) {
    if (node.pid !== null && (await isNodeProcess(node.pid, node))) process.kill(node.pid, 'SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
});

describe('npm start -- --tls', () => {
  it('starts nodes that take only certificates of its CA; status and the CLI use the client certificate', { timeout: 400_000 }, async () => {
    const basePort = await freeBasePort(3);
    const started = await cluster('start', '--tls', '--base-port', String(basePort));
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/mutual TLS: a throwaway CA and certificates in /);
    const state = (await readClusterState(dir)) as ClusterState;
    expect(state.tls).toBeDefined();
    const tls = state.tls as NonNullable<ClusterState['tls']>;
    expect((await stat(tls.caKey)).mode & 0o077).toBe(0);
    expect(state.nodes.every((node) => node.args.includes('--tls-ca'))).toBe(true);

    const status = await cluster('status', '--json');
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as ClusterStatusJson;
    expect(report.leader).not.toBeNull();
    expect(report.nodes.every((node) => node.state === 'up')).toBe(true);

    // What `start` tells the user to export for the CLI.
    const exports = /export (RAFTLOG_TLS_CA=\S+ RAFTLOG_TLS_CERT=\S+ RAFTLOG_TLS_KEY=\S+)/.exec(started.stdout)?.[1];
    expect(exports).toBeDefined();
    const env = {
      RAFTLOG_ENDPOINTS: state.nodes.map((node) => node.address).join(','),
      ...Object.fromEntries((exports as string).split(' ').map((pair) => pair.split('=') as [string, string])),
    };
    expect(await raftlog(['put', 'greeting', 'hello'], env)).toMatchObject({ code: 0 });
    expect(await raftlog(['get', 'greeting'], env)).toMatchObject({ code: 0, stdout: expect.stringContaining('"hello"') });

    const plaintext = new RaftLogClient({ endpoints: state.nodes.map((node) => node.address), deadlineMs: 2_000 });
    try {
      expect(await rejection(plaintext.get('greeting'))).toBeInstanceOf(RaftLogUnavailableError);
    } finally {
      plaintext.close();
    }

    // The dashboard reaches the nodes with the same client certificate (npm run dashboard passes it from the state).
    const poller = new ClusterPoller({
      endpoints: state.nodes.map((node) => `${node.id}=${node.address}`),
      tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey },
    });
    try {
      const sample = await poller.poll();
      expect(sample.nodes.map((node) => node.up)).toEqual(state.nodes.map(() => true));
      expect(sample.leader).not.toBeNull();
    } finally {
      poller.close();
    }

    const stopped = await cluster('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
  });
});

function cluster(command: string, ...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, command, ...args, '--dir', dir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collectRun(child, `cluster ${command} ${args.join(' ')}`, RUN_LIMIT_MS);
}

/** `node bin/raftlog.js ...args` with `env` and no other RAFTLOG_* settings. */
function raftlog(args: readonly string[], env: Record<string, string>): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RAFTLOG_')));
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return collectRun(child, `raftlog ${args.join(' ')}`, RUN_LIMIT_MS);
}
