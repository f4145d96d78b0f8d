/**
 * Interop: a plain gRPC client in another language (Python, with message
 * classes protoc generates from proto/raftlog/v1/client.proto at run time)
 * against a 3-node cluster of real processes. See raftlog_client.py.
 *
 * Needs /usr/bin/python3 with grpc and protobuf, and protoc (Debian:
 * python3-grpcio python3-protobuf protobuf-compiler; .ci/run installs them).
 * Without them the test is skipped with a warning, unless
 * RAFTLOG_REQUIRE_INTEROP=1 (as in CI), which makes it fail instead.
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../support/process-cluster.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./raftlog_client.py', import.meta.url));
const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
const APT_PACKAGES = 'python3-grpcio python3-protobuf protobuf-compiler';
const REQUIRED = process.env.RAFTLOG_REQUIRE_INTEROP === '1';

/** Why the Python client cannot run here, or null when it can. */
function missingTools(): string | null {
  const python = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
  if (python.error !== undefined) return `${PYTHON} cannot be run (${python.error.message})`;
  if (python.status !== 0) return `${PYTHON} cannot import grpc and google.protobuf (${python.stderr.trim().split('\n').pop() ?? ''})`;
  const protoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
  if (protoc.error !== undefined || protoc.status !== 0) return 'protoc is not on the PATH';
  return null;
}

const missing = missingTools();
if (missing !== null) {
  console.warn(
    `python-client interop test ${REQUIRED ? 'FAILS (RAFTLOG_REQUIRE_INTEROP=1)' : 'SKIPPED'}: ${missing}. ` +
      `Install the Debian packages: apt-get install -y ${APT_PACKAGES}`,
  );
}

interface PythonSummary {
  leader: string;
  puts: { node: string; key: string; value: string; index: number; term: number; leader: string }[];
  reads: { node: string; key: string; found: boolean; value: string; readIndex: number; leader: string }[];
  cas: { step: string; succeeded: boolean; found: boolean; current: string; index: number; leader: string }[];
  emptyKeyPut: { code: string; details: string };
  statuses: { node: string; role: string; term: number; leader: string; appliedIndex: number; members: string[]; digest: string }[];
  grpcVersion: string;
}

function runPython(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [SCRIPT, ...args], { timeout: 120_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

let cluster: ProcessCluster | null = null;

afterEach(async () => {
  await cluster?.destroy();
  cluster = null;
});

describe('a Python gRPC client (generated from client.proto) against real nodes', () => {
  it.skipIf(missing !== null && !REQUIRED)(
    'puts through every node, reads linearizably, compares-and-swaps, gets INVALID_ARGUMENT for an empty key, and sees one state on every node',
    async () => {
      if (missing !== null) throw new Error(`RAFTLOG_REQUIRE_INTEROP=1 but ${missing}: apt-get install -y ${APT_PACKAGES}`);
      cluster = await ProcessCluster.start(3);
      const c = cluster;
      const leader = await c.waitForLeader();

      const nodes = c.ids.flatMap((id) => ['--node', `${id}=${c.address(id)}`]);
      const run = await runPython(['--proto-root', PROTO_ROOT, ...nodes]);
      expect(run.code, `python exited ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(0);
      const summary = JSON.parse(run.stdout) as PythonSummary;
      console.log(`python client (grpcio ${summary.grpcVersion}): ${run.stdout.length} bytes of JSON, leader ${summary.leader}`);

      expect(summary.leader).toBe(leader);
      // A Put through each node, the followers' forwarded: each reply names the leader, at its own log index.
      expect(summary.puts.map((p) => p.node)).toEqual(c.ids);
      for (const put of summary.puts) expect(put.leader, `Put via ${put.node}`).toBe(leader);
      const indexes = summary.puts.map((p) => p.index);
      expect(new Set(indexes).size).toBe(indexes.length);
      expect([...indexes].sort((x, y) => x - y)).toEqual(indexes);

      // Every key, read linearizably from every node, has the value written.
      expect(summary.reads).toHaveLength(summary.puts.length * c.ids.length);
      for (const read of summary.reads) {
        const put = summary.puts.find((p) => p.key === read.key);
        expect(read, `Get ${read.key} on ${read.node}`).toMatchObject({ found: true, value: put?.value, leader });
        expect(read.readIndex).toBeGreaterThanOrEqual(put?.index ?? Infinity);
      }

      expect(summary.cas).toEqual([
        expect.objectContaining({ step: 'absent', succeeded: true, found: true, current: 'v1', leader }),
        expect.objectContaining({ step: 'wrong-expected', succeeded: false, found: true, current: 'v1', leader }),
        expect.objectContaining({ step: 'right-expected', succeeded: true, found: true, current: 'v2', leader }),
      ]);

      expect(summary.emptyKeyPut.code).toBe('INVALID_ARGUMENT');
      expect(summary.emptyKeyPut.details).toMatch(/key must not be empty/);

      // Status of every node: one leader, everyone following it, one applied index and digest.
      expect(summary.statuses.map((s) => s.node)).toEqual(c.ids);
      expect(summary.statuses.filter((s) => s.role === 'leader').map((s) => s.node)).toEqual([leader]);
      const [first] = summary.statuses;
      for (const s of summary.statuses) {
        expect(s).toMatchObject({ leader, appliedIndex: first?.appliedIndex, digest: first?.digest });
        expect([...s.members].sort()).toEqual(c.ids);
      }
    },
  );
});
