/**
 * `raftlog member list|add|promote|remove` as a person or a script runs it
 * (node bin/raftlog.js), against fake nodes serving raftlog.v1.Cluster:
 * tables and --json, and exit codes (2 for a change that makes no sense,
 * 7 for one refused for now, 4 for one whose outcome is unknown).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

/** Runs `node bin/raftlog.js --endpoints <the nodes> ...args` and collects its output. */
function raftlog(nodes: readonly FakeRaftLogServer[], args: readonly string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RAFTLOG_ENDPOINTS;
  const all = ['--endpoints', nodes.map((node) => node.endpoint).join(','), ...args];
  const child = spawn(process.execPath, [BIN, ...all], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return collectRun(child, `raftlog ${all.join(' ')}`, RUN_LIMIT_MS);
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');
const cells = (line: string | undefined) => (line ?? '').trim().split(/\s+/);

describe('raftlog member, human output', () => {
  it('walks a new node from learner to voter, then removes one: a line and the members table per change', async () => {
    const nodes = await cluster(3, 'n2');
    for (let i = 0; i < 30; i++) nodes[0]!.cluster.commit('LOG_ENTRY_KIND_PUT');

    const added = await raftlog(nodes, ['member', 'add', 'n4', '127.0.0.1:7004', '--learner']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const [ok, header, ...rows] = lines(added.stdout);
    expect(ok).toBe('OK  added n4 (127.0.0.1:7004) as a learner; committed at index 31 (leader n2)');
    expect(cells(header)).toEqual(['ID', 'ADDRESS', 'ROLE', 'MATCH']);
    expect(rows.map(cells)).toEqual([
      ['n1', nodes[0]!.endpoint, 'voter', '31'],
      ['n2', nodes[1]!.endpoint, 'voter', '31'],
      ['n3', nodes[2]!.endpoint, 'voter', '31'],
      // Nothing replicated to it yet.
      ['n4', '127.0.0.1:7004', 'learner', '-'],
    ]);

    // Behind: refused for now, exit code 7, and the message says how far.
    const early = await raftlog(nodes, ['member', 'promote', 'n4']);
    expect(early.code).toBe(7);
    expect(early.stdout).toBe('');
    expect(lines(early.stderr)).toHaveLength(1);
    expect(early.stderr).toMatch(
      /^error: memberPromote refused by 127\.0\.0\.1:\d+: learner n4 is 31 entries behind the leader .*\(FAILED_PRECONDITION\)\n$/,
    );

    nodes[0]!.cluster.matchIndexes.set('n4', 30);
    const promoted = await raftlog(nodes, ['member', 'promote', 'n4']);
    expect(promoted.code).toBe(0);
    expect(lines(promoted.stdout)[0]).toBe('OK  promoted n4 to voter; committed at index 32 (leader n2)');
    expect(
      lines(promoted.stdout)
        .slice(2)
        .map((row) => cells(row).slice(0, 3)),
    ).toContainEqual(['n4', '127.0.0.1:7004', 'voter']);

    const removed = await raftlog(nodes, ['member', 'remove', 'n3']);
    expect(removed.code).toBe(0);
    expect(lines(removed.stdout)[0]).toBe('OK  removed n3; committed at index 33 (leader n2)');

    const list = await raftlog(nodes, ['member', 'list']);
    expect(list.code).toBe(0);
    const listed = lines(list.stdout);
    expect(listed.slice(0, -1).map(cells)).toEqual([
      ['ID', 'ADDRESS', 'ROLE', 'MATCH'],
      ['n1', nodes[0]!.endpoint, 'voter', '33'],
      ['n2', nodes[1]!.endpoint, 'voter', '33'],
      ['n4', '127.0.0.1:7004', 'voter', '30'],
    ]);
    expect(listed.at(-1)).toBe('configuration of index 33 (committed); leader n2, commit index 33');

    // status shows the roles too, as the leader sees them.
    const status = await raftlog(nodes.slice(0, 2), ['status']);
    expect(lines(status.stdout).at(-1)).toBe('members (per leader n2): voters n1, n2, n4');
  });
});

describe('raftlog member, --json output', () => {
  it('prints one JSON object per command, with the configuration and the index it committed at', async () => {
    const nodes = await cluster(2);

    const added = await raftlog(nodes, ['--json', 'member', 'add', 'n3', '127.0.0.1:7003', '--learner']);
    expect(added.code).toBe(0);
    expect(lines(added.stdout)).toHaveLength(1);
    expect(JSON.parse(added.stdout)).toEqual({
      command: 'member add',
      id: 'n3',
      address: '127.0.0.1:7003',
      learner: true,
      index: 1,
      leader: 'n1',
      endpoint: nodes[0]!.endpoint,
      members: [
        { id: 'n1', address: nodes[0]!.endpoint, role: 'voter', matchIndex: 1 },
        { id: 'n2', address: nodes[1]!.endpoint, role: 'voter', matchIndex: 1 },
        { id: 'n3', address: '127.0.0.1:7003', role: 'learner', matchIndex: 0 },
      ],
    });

    const list = await raftlog(nodes, ['member', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toMatchObject({
      command: 'member list',
      configIndex: 1,
      committed: true,
      leader: 'n1',
      commitIndex: 1,
      members: [{ id: 'n1' }, { id: 'n2' }, { id: 'n3', role: 'learner' }],
    });

    nodes[0]!.cluster.promotionLag = 0;
    const refused = await raftlog(nodes, ['--json', 'member', 'promote', 'n3']);
    expect(refused.code).toBe(7);
    expect(JSON.parse(refused.stderr)).toEqual({
      error: {
        kind: 'refused',
        code: 'FAILED_PRECONDITION',
        endpoint: nodes[0]!.endpoint,
        operation: 'memberPromote',
        message: expect.stringContaining('learner n3 is 1 entries behind') as unknown,
      },
    });

    const status = await raftlog(nodes, ['--json', 'status']);
    const parsed = JSON.parse(status.stdout) as { nodes: { node: string; memberStatus: { id: string; role: string }[] }[] };
    expect(parsed.nodes.map((node) => [node.node, node.memberStatus.map(({ id, role }) => `${id}:${role}`)])).toEqual([
      ['n1', ['n1:voter', 'n2:voter', 'n3:learner']],
      ['n2', ['n1:voter', 'n2:voter', 'n3:learner']],
    ]);
  });
});

describe('raftlog member, errors and exit codes', () => {
  it('exits 2 for adding a voter directly, a change that makes no sense, or a bad address; nothing changes', async () => {
    const nodes = await cluster(1);
    const runs = await Promise.all([
      raftlog(nodes, ['member', 'add', 'n2', '127.0.0.1:7002']),
      raftlog(nodes, ['member', 'remove', 'n9']),
      raftlog(nodes, ['member', 'add', 'n2', 'nowhere', '--learner']),
      raftlog(nodes, ['member', 'promote']),
    ]);
    expect(runs.map((run) => [run.code, run.stdout])).toEqual([
      [2, ''],
      [2, ''],
      [2, ''],
      [2, ''],
    ]);
    expect(runs[0]!.stderr).toMatch(/adding n2 as a voter directly is not supported: add it as a learner, then promote it/);
    expect(runs[1]!.stderr).toMatch(/n9 is not a member of this cluster/);
    expect(runs[2]!.stderr).toBe('error: memberAdd: endpoint "nowhere" is not host:port (rejected before sending)\n');
    expect(runs[3]!.stderr).toMatch(/^error: missing required argument 'id'/);
    expect(nodes[0]!.cluster.members).toEqual(['n1']);
    expect(nodes[0]!.cluster.learners).toEqual([]);
  });

  it('exits 4 when a change was sent and no answer came in time, without trying it on another node', async () => {
    const nodes = await cluster(2);
    nodes[0]!.script('MemberRemove', { kind: 'hang' });
    const run = await raftlog(nodes, ['--timeout', '3000', 'member', 'remove', 'n2']);
    expect(run.code).toBe(4);
    // The client's deadline and the server's (gRPC passes it on) end at the same moment: on a loaded machine either
    // side may notice first, and both mean the same here (one CI run saw the server's).
    expect(run.stderr).toMatch(
      /^error: memberRemove on 127\.0\.0\.1:\d+: (no reply before the deadline|the node answered DEADLINE_EXCEEDED: Deadline exceeded); the write may or may not have been committed/,
    );
    expect(nodes.map((node) => node.calls.MemberRemove)).toEqual([1, 0]);
  });

  it('exits 3 when no node can take the change (no leader anywhere)', async () => {
    const nodes = await cluster(2);
    for (const node of nodes) node.alwaysUnavailable();
    const run = await raftlog(nodes, ['--timeout', '1000', 'member', 'list']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^error: memberList: no node could take the request/);
  });

  it('lists the subcommands in `member --help`', async () => {
    const run = await raftlog([], ['member', '--help']);
    expect(run.code).toBe(0);
    for (const command of ['list', 'add', 'promote', 'remove']) expect(run.stdout).toMatch(new RegExp(`\\n  ${command}\\b`));
  });
});
