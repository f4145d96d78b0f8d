import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { collectRun, type Run } from '../support/collect-run.js';
import { type FakeRaftLogServer, startFakeCluster } from '../support/fake-raftlog-server.js';

const BIN = fileURLToPath(new URL('../../bin/raftlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long one CLI run may take before the test kills it. */
const RUN_LIMIT_MS = 20_000;

let children: ChildProcess[] = [];
let fakes: FakeRaftLogServer[] = [];

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(fakes.map((fake) => fake.stop()));
  children = [];
  fakes = [];
});

async function cluster(count: number, leader = 'n1'): Promise<FakeRaftLogServer[]> {
  const started = await startFakeCluster(count, leader);
  fakes.push(...started);
  return started;
}

/** Runs `node bin/raftlog.js ...args` and collects its output; RAFTLOG_ENDPOINTS only as given. */
function raftlog(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.RAFTLOG_ENDPOINTS === undefined) delete childEnv.RAFTLOG_ENDPOINTS;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return collectRun(child, `raftlog ${args.join(' ')}`, RUN_LIMIT_MS);
}

const endpointsOf = (nodes: readonly FakeRaftLogServer[]) => nodes.map((node) => node.endpoint).join(',');
const lines = (text: string) => text.split('\n').filter((line) => line !== '');

describe('raftlog CLI, human output', () => {
  it('puts, gets, deletes, compares-and-swaps and appends, with one line each and exit code 0', async () => {
    const nodes = await cluster(3, 'n2');
    const env = { RAFTLOG_ENDPOINTS: endpointsOf(nodes) };

    expect(await raftlog(['put', 'greeting', 'hello world'], env)).toEqual({
      code: 0,
      stdout: 'OK  index 1 term 1 (leader n2)\n',
      stderr: '',
    });
    expect(await raftlog(['get', 'greeting'], env)).toEqual({
      code: 0,
      stdout: 'get greeting → "hello world" (read at index 1)\n',
      stderr: '',
    });
    expect((await raftlog(['get', 'greeting', '--local'], env)).stdout).toBe(
      `get greeting → "hello world" (local read at index 1 on ${nodes[0]!.endpoint})\n`,
    );
    expect(await raftlog(['cas', 'greeting', 'hello world', 'bye'], env)).toMatchObject({
      code: 0,
      stdout: 'OK  swapped greeting; index 2 term 1 (leader n2)\n',
    });
    expect(await raftlog(['cas', 'fresh', '--absent', 'x'], env)).toMatchObject({ code: 0 });
    expect(await raftlog(['del', 'greeting'], env)).toMatchObject({
      code: 0,
      stdout: 'OK  deleted greeting; index 4 term 1 (leader n2)\n',
    });
    // `append` is exactly-once, which these fakes do not serve (test/cli/tail-consumers-cli.test.ts covers it): the record goes in directly.
    nodes[0]!.cluster.commit('LOG_ENTRY_KIND_APPEND', { record: new TextEncoder().encode('an event') });

    // The log of those five commands, as committed: a table, then where the node stands.
    expect(await raftlog(['log', '--from', '4'], env)).toEqual({
      code: 0,
      stdout: [
        'INDEX  TERM  KIND    DATA',
        '    4     1  delete  key "greeting"',
        '    5     1  append  "an event"',
        `n1 has committed up to index 5`,
        '',
      ].join('\n'),
      stderr: '',
    });
    const page = await raftlog(['--json', 'log', '--limit', '2'], env);
    expect(JSON.parse(page.stdout)).toMatchObject({
      command: 'log',
      commitIndex: 5,
      entries: [
        { index: 1, term: 1, kind: 'put', key: { value: 'greeting', encoding: 'utf8' } },
        { index: 2, term: 1, kind: 'cas', key: { value: 'greeting', encoding: 'utf8' } },
      ],
    });
    expect(await raftlog(['log', '--from', '0'], env)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/fromIndex must be a positive integer, got 0/),
    });
  });

  it('exits 1 with a clear line when the key is not found or the swap fails', async () => {
    const nodes = await cluster(1);
    const args = ['--endpoints', endpointsOf(nodes)];
    expect(await raftlog([...args, 'get', 'missing'])).toEqual({
      code: 1,
      stdout: 'get missing → not found (read at index 0)\n',
      stderr: '',
    });
    await raftlog([...args, 'put', 'k', 'v1']);
    expect(await raftlog([...args, 'cas', 'k', 'other', 'v2'])).toEqual({
      code: 1,
      stdout: 'cas failed: k holds "v1" (at index 2 term 1)\n',
      stderr: '',
    });
    expect((await raftlog([...args, 'cas', 'k', '--absent', 'v2'])).stdout).toBe('cas failed: k already holds "v1" (at index 3 term 1)\n');
  });

  it('shows every endpoint in the status table, unreachable ones as such', async () => {
    const nodes = await cluster(3, 'n1');
    await nodes[2]!.stop();
    await raftlog(['--endpoints', nodes[0]!.endpoint, 'put', 'k', 'v']);
    const run = await raftlog(['--endpoints', endpointsOf(nodes), 'status']);
    expect(run.code).toBe(0);
    const [header, first, second, third, members, ...rest] = lines(run.stdout);
    expect(rest).toEqual([]);
    expect(members).toBe('members (per leader n1): voters n1, n2, n3');
    expect(header!.split(/\s+/)).toEqual(['ENDPOINT', 'NODE', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'FIRST', 'LAST', 'SNAPSHOT', 'DIGEST']);
    const digest = nodes[0]!.cluster.digest().slice(0, 12);
    // No snapshot yet: "-".
    expect(first!.split(/\s+/)).toEqual([nodes[0]!.endpoint, 'n1', 'leader', '1', 'n1', '1', '1', '1', '1', '-', digest]);
    expect(second!.split(/\s+/)).toEqual([nodes[1]!.endpoint, 'n2', 'follower', '1', 'n1', '1', '1', '1', '1', '-', digest]);
    expect(third).toMatch(new RegExp(`^${nodes[2]!.endpoint}\\s+-\\s+unreachable\\s+(-\\s+){7}could not connect`));
  });

  it('shows where each log starts and the latest snapshot once the log is compacted, indexes right-aligned', async () => {
    const nodes = await cluster(1);
    for (let i = 1; i <= 12; i++) nodes[0]!.cluster.commit('LOG_ENTRY_KIND_APPEND', { record: new TextEncoder().encode(`event ${i}`) });
    // A snapshot at 10 that keeps 5..10 as a window for trailing readers.
    nodes[0]!.cluster.compact(5, 10);
    const run = await raftlog(['--endpoints', endpointsOf(nodes), 'status']);
    expect(run.code).toBe(0);
    const [header, row, members, ...rest] = lines(run.stdout);
    expect(rest).toEqual([]);
    expect(members).toBe('members (per leader n1): voter n1');
    const digest = nodes[0]!.cluster.digest().slice(0, 12);
    expect(row!.split(/\s+/)).toEqual([nodes[0]!.endpoint, 'n1', 'leader', '1', 'n1', '12', '12', '5', '12', '10', digest]);
    // Each number ends where its column title ends.
    for (const [title, value] of [
      ['FIRST', ' 5'],
      ['LAST', '12'],
      ['SNAPSHOT', '10'],
    ] as const) {
      const end = header!.indexOf(title) + title.length;
      expect(row!.slice(end - value.length, end), title).toBe(value);
    }
  });
});

describe('raftlog CLI, --json output', () => {
  it('prints one JSON object per result', async () => {
    const nodes = await cluster(2, 'n1');
    const args = ['--json', '--endpoints', endpointsOf(nodes)];
    const put = await raftlog([...args, 'put', 'k', 'v']);
    expect(put.code).toBe(0);
    expect(lines(put.stdout)).toHaveLength(1);
    expect(JSON.parse(put.stdout)).toEqual({
      command: 'put',
      key: 'k',
      index: 1,
      term: 1,
      leader: 'n1',
      endpoint: nodes[0]!.endpoint,
    });

    const get = await raftlog(['get', 'k', ...args]);
    expect(JSON.parse(get.stdout)).toMatchObject({ command: 'get', found: true, value: 'v', encoding: 'utf8', readIndex: 1 });

    const missing = await raftlog([...args, 'get', 'nope']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ found: false, value: null });

    // Everything in the snapshot at 1: the log holds nothing, and would start at 2.
    nodes[0]!.cluster.compact(2, 1);
    const status = await raftlog([...args, 'status']);
    const parsed = JSON.parse(status.stdout) as { command: string; nodes: { node: string; reachable: boolean }[] };
    expect(parsed.command).toBe('status');
    expect(parsed.nodes.map((node) => [node.node, node.reachable])).toEqual([
      ['n1', true],
      ['n2', true],
    ]);
    expect(parsed.nodes[0]).toEqual({
      endpoint: nodes[0]!.endpoint,
      reachable: true,
      node: 'n1',
      role: 'leader',
      term: 1,
      leader: 'n1',
      commitIndex: 1,
      appliedIndex: 1,
      lastLogIndex: 1,
      firstLogIndex: 2,
      snapshotIndex: 1,
      members: ['n1', 'n2'],
      memberStatus: [
        { id: 'n1', address: nodes[0]!.endpoint, role: 'voter', matchIndex: 1 },
        { id: 'n2', address: nodes[1]!.endpoint, role: 'voter', matchIndex: 1 },
      ],
      digest: nodes[0]!.cluster.digest(),
    });
  });

  it('reports errors as one JSON object on stderr', async () => {
    const nodes = await cluster(1);
    nodes[0]!.alwaysUnavailable();
    const run = await raftlog(['--json', '--timeout', '1000', '--endpoints', endpointsOf(nodes), 'put', 'k', 'v']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toHaveLength(1);
    expect(JSON.parse(run.stderr)).toMatchObject({
      error: { kind: 'unavailable', code: 'UNAVAILABLE', endpoint: nodes[0]!.endpoint, operation: 'put' },
    });
    const usage = await raftlog(['--json', 'frobnicate']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({ error: { kind: 'usage', message: "unknown command 'frobnicate'" } });
  });
});

describe('raftlog CLI, errors and exit codes', () => {
  it('exits 2 with one line on stderr for a bad command, argument or option', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /^error: unknown command 'frobnicate'/],
      [['put', 'k'], /^error: missing required argument 'value'/],
      [['get', 'k', 'extra'], /^error: too many arguments for 'get'/],
      [['--timeout', 'soon', 'get', 'k'], /^error: --timeout must be a positive whole number of milliseconds, got "soon"/],
      [['--endpoints', 'localhost', 'get', 'k'], /^error: --endpoints: endpoint "localhost" is not host:port/],
      [['cas', 'k', 'v'], /^error: cas: give <key> <expected> <new>, or <key> --absent <new>/],
      [['cas', 'k', '--absent', 'a', 'b'], /^error: cas: with --absent, give only <key> and <new>/],
      [['get', ''], /^error: get: the key is empty/],
      [['put', 'k'.repeat(4097), 'v'], /^error: put: the key is 4097 bytes, over the limit of 4096 bytes/],
    ];
    const runs = await Promise.all(cases.map(([args]) => raftlog(['--endpoints', '127.0.0.1:1', ...args])));
    runs.forEach((run, i) => {
      const [args, message] = cases[i]!;
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(lines(run.stderr)).toHaveLength(1);
      expect(run.stderr).toMatch(message);
    });
  });

  it('exits 3 when no node can take the request', async () => {
    const nodes = await cluster(2);
    for (const node of nodes) node.alwaysUnavailable();
    const run = await raftlog(['--timeout', '1000', '--endpoints', endpointsOf(nodes), 'put', 'k', 'v']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(/^error: put: no node could take the request \(\d+ attempts in \d+ ms; /);
    expect(run.stderr).toContain('no leader is known');
  });

  it('exits 3 from status when no endpoint answers', async () => {
    const run = await raftlog(['--endpoints', '127.0.0.1:1', 'status']);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/unreachable/);
    expect(run.stderr).toBe('error: status: the endpoint did not answer\n');
  });

  it('exits 4 when a write timed out after it was sent, and does not retry it', async () => {
    const nodes = await cluster(2);
    nodes[0]!.script('CompareAndSwap', { kind: 'hang' });
    const run = await raftlog(['--timeout', '1000', '--endpoints', endpointsOf(nodes), 'cas', 'k', '--absent', 'v']);
    expect(run.code).toBe(4);
    expect(run.stdout).toBe('');
    // Either side may notice the deadline first on a loaded machine (see member-cli.test.ts); the verdict is the same.
    expect(lines(run.stderr)).toHaveLength(1);
    expect(run.stderr).toMatch(
      /^error: compareAndSwap on 127\.0\.0\.1:\d+: (no reply before the deadline|the node answered DEADLINE_EXCEEDED: Deadline exceeded); the write may or may not have been committed \(DEADLINE_EXCEEDED\)\n$/,
    );
    expect(nodes.map((node) => node.calls.CompareAndSwap)).toEqual([1, 0]);
  });

  it('exits 5 for any other error', async () => {
    const nodes = await cluster(1);
    nodes[0]!.script('Get', { kind: 'fail', code: grpc.status.PERMISSION_DENIED, details: 'not allowed' });
    const run = await raftlog(['--endpoints', endpointsOf(nodes), 'get', 'k']);
    expect(run.code).toBe(5);
    expect(run.stderr).toBe(`error: get on ${nodes[0]!.endpoint} failed: the node answered PERMISSION_DENIED: not allowed\n`);
  });

  it('exits 6 from log when --from was compacted, naming the first index held and the --from that works', async () => {
    const nodes = await cluster(1);
    const args = ['--endpoints', endpointsOf(nodes)];
    for (let i = 1; i <= 5; i++) nodes[0]!.cluster.commit('LOG_ENTRY_KIND_APPEND', { record: new TextEncoder().encode(`event ${i}`) });
    nodes[0]!.cluster.compact(4);

    const run = await raftlog([...args, 'log', '--from', '2']);
    expect(run.code).toBe(6);
    expect(run.stdout).toBe('');
    expect(lines(run.stderr)).toEqual([
      `error: readLog on ${nodes[0]!.endpoint}: node n1: cannot read from index 2: entries before 4 were compacted into a snapshot; ` +
        'the log starts at 4 (OUT_OF_RANGE); to read what is left, use --from 4',
    ]);
    // The default --from is 1: compacted too.
    expect((await raftlog([...args, 'log'])).code).toBe(6);

    const json = await raftlog([...args, '--json', 'log', '--from', '2']);
    expect(json.code).toBe(6);
    expect(JSON.parse(json.stderr)).toEqual({
      error: {
        kind: 'compacted',
        code: 'OUT_OF_RANGE',
        endpoint: nodes[0]!.endpoint,
        operation: 'readLog',
        fromIndex: 2,
        firstIndex: 4,
        message: expect.stringContaining('the log starts at 4'),
      },
    });

    expect(await raftlog([...args, 'log', '--from', '4'])).toEqual({
      code: 0,
      stdout: [
        'INDEX  TERM  KIND    DATA',
        '    4     1  append  "event 4"',
        '    5     1  append  "event 5"',
        'n1 has committed up to index 5',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('prints help and exits 0 with --help', async () => {
    const run = await raftlog(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['put', 'get', 'del', 'cas', 'append', 'log', 'tail', 'consumers', 'status', 'member'])
      expect(run.stdout).toMatch(new RegExp(`\\n  ${command} `));
    expect(run.stdout).toContain('Exit codes:');
    expect(run.stdout).toMatch(/\n  6  log, tail: the entries from the start asked for were compacted away/);
    expect(run.stdout).toMatch(
      /\n  7  refused for now, nothing changed: a membership change .*\n.*a consumer commit that would move it backwards[\s\S]*transfer-leader to a learner/,
    );
  });
});
