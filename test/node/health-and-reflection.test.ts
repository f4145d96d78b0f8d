/**
 * The gRPC conventions a node follows on its port, against real `raftlog
 * node` processes: the standard health service (grpc.health.v1.Health)
 * answers SERVING only while the node is a member that knows a live leader,
 * and its answer follows the cluster as quorum is lost and regained; server
 * reflection lists and describes the client API, membership and health (and
 * not the peer service) with the reflection protocol's own proto, as grpcurl
 * would. Waits are conditions polled with generous deadlines.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { healthVerdict } from '../../src/node/health.js';
import type { NodeVitals } from '../../src/node/metrics.js';
import type { RaftStatus } from '../../src/raft/types.js';
import { raftStatus } from '../support/node-status-fixtures.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;
const CALL_MS = 5_000;

let cluster: ProcessCluster | null = null;
const c = (): ProcessCluster => cluster as ProcessCluster;
const clients: grpc.Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await cluster?.destroy();
  cluster = null;
});

// ---------------------------------------------------------------- health

const HealthClient = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health');
type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

function healthClient(id: string): grpc.Client {
  const client = new HealthClient(c().address(id), grpc.credentials.createInsecure());
  clients.push(client);
  return client;
}

function check(id: string, service = ''): Promise<ServingStatus> {
  const client = healthClient(id) as unknown as {
    check(request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply: { status: ServingStatus }) => void): void;
  };
  return new Promise((resolve, reject) =>
    client.check({ service }, { deadline: Date.now() + CALL_MS }, (error, reply) => (error !== null ? reject(error) : resolve(reply.status))),
  );
}

/** A Watch stream: every status it was sent, and how it ended. */
function watch(id: string, service = ''): { statuses: ServingStatus[]; ended: () => boolean; cancel: () => void } {
  const client = healthClient(id) as unknown as { watch(request: object): grpc.ClientReadableStream<{ status: ServingStatus }> };
  const call = client.watch({ service });
  const statuses: ServingStatus[] = [];
  let ended = false;
  call.on('data', (reply: { status: ServingStatus }) => statuses.push(reply.status));
  call.on('error', () => (ended = true));
  call.on('end', () => (ended = true));
  return { statuses, ended: () => ended, cancel: () => call.cancel() };
}

/** The statuses without repeats: what changed, in order. */
const changes = (statuses: readonly ServingStatus[]): ServingStatus[] => statuses.filter((status, i) => i === 0 || statuses[i - 1] !== status);

const waitForStatus = (id: string, wanted: ServingStatus, what: string) =>
  waitFor(`${id}'s health ${wanted} (${what})`, async () => (await check(id)) === wanted, { timeoutMs: WAIT_MS, intervalMs: 100 });

describe('grpc.health.v1.Health on a 3-node cluster of real processes', () => {
  it('SERVING with a leader; NOT_SERVING once quorum is lost; SERVING again once it is back; Watch sees each change', async () => {
    cluster = await ProcessCluster.start(3);
    const leader = await c().waitForLeader(c().ids, WAIT_MS);
    for (const id of c().ids) await waitForStatus(id, 'SERVING', 'a leader is known');
    for (const service of ['raftlog.v1.RaftLog', 'raftlog.v1.Cluster']) expect(await check(leader, service)).toBe('SERVING');
    // The peer service is no service a client may ask about.
    const unknown = await check(leader, 'raftlog.v1.RaftPeer').catch((error: grpc.ServiceError) => error);
    expect((unknown as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);

    // The fault: both followers die. The leader cannot hear a quorum and steps down (CheckQuorum).
    const survivor = leader;
    const watched = watch(survivor);
    await waitFor("the Watch stream's first status", () => watched.statuses.length > 0, { timeoutMs: WAIT_MS });
    expect(watched.statuses[0]).toBe('SERVING');
    const [down1, down2] = c().ids.filter((id) => id !== survivor) as [string, string];
    await c().kill(down1);
    await c().kill(down2);
    await waitForStatus(survivor, 'NOT_SERVING', 'quorum lost');
    for (const service of ['raftlog.v1.RaftLog', 'raftlog.v1.Cluster']) expect(await check(survivor, service)).toBe('NOT_SERVING');
    await waitFor('NOT_SERVING on the Watch stream', () => watched.statuses.includes('NOT_SERVING'), { timeoutMs: WAIT_MS });

    // One follower is back: two of three elect a leader, and health follows.
    c().startNode(down1);
    await c().waitForLeader([survivor, down1], WAIT_MS);
    await waitForStatus(survivor, 'SERVING', 'quorum back');
    await waitForStatus(down1, 'SERVING', 'restarted, following a leader');
    await waitFor('SERVING again on the Watch stream', () => changes(watched.statuses).join() === 'SERVING,NOT_SERVING,SERVING', {
      timeoutMs: WAIT_MS,
    });
    expect(watched.ended()).toBe(false);
    watched.cancel();
  });

  it('a node stopping gracefully reports NOT_SERVING to its watchers and ends their streams', async () => {
    cluster = await ProcessCluster.start(3);
    await c().waitForLeader(c().ids, WAIT_MS);
    const follower = (await c().status(c().ids[0] as string)).leader === c().ids[0] ? (c().ids[1] as string) : (c().ids[0] as string);
    await waitForStatus(follower, 'SERVING', 'following');
    const watched = watch(follower);
    await waitFor("the Watch stream's first status", () => watched.statuses.includes('SERVING'), { timeoutMs: WAIT_MS });

    await c().stop(follower);
    // The last status may still be on its way when the process has exited.
    await waitFor("NOT_SERVING as the Watch stream's last status", () => watched.statuses.at(-1) === 'NOT_SERVING', { timeoutMs: WAIT_MS });
    await waitFor('the Watch stream to end', () => watched.ended(), { timeoutMs: WAIT_MS });
    // Stopped: no answer at all, which a health checker counts as not serving.
    const gone = await check(follower).catch((error: grpc.ServiceError) => error);
    expect((gone as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('healthVerdict: when a node says SERVING', () => {
  const STALE_MS = 400;
  const vitals = (status: Partial<RaftStatus>, rest: Partial<NodeVitals> = {}): NodeVitals => ({
    status: raftStatus(status),
    appliedIndex: 10,
    removed: false,
    stopped: false,
    leaderSilenceMs: 20,
    ...rest,
  });

  it.each<[string, NodeVitals | null, 'SERVING' | 'NOT_SERVING', RegExp]>([
    ['a follower that heard from its leader recently', vitals({}), 'SERVING', /following n1 in term 4/],
    ['the leader', vitals({ id: 'n1', role: 'leader' }, { leaderSilenceMs: 0 }), 'SERVING', /leader in term 4/],
    ['a learner following its leader', vitals({ voters: ['n1', 'n3'], learners: ['n2'] }), 'SERVING', /following n1/],
    ['a node still loading its log', null, 'NOT_SERVING', /starting/],
    [
      'a candidate (no leader known)',
      vitals({ role: 'candidate', leader: null }, { leaderSilenceMs: null }),
      'NOT_SERVING',
      /no leader known in term 4 \(candidate\)/,
    ],
    // A partitioned learner never campaigns, so the core keeps its leader for good: only the silence tells.
    [
      'a follower whose leader has been silent past the longest election timeout',
      vitals({}, { leaderSilenceMs: 401 }),
      'NOT_SERVING',
      /leader n1 of term 4 silent for 401 ms \(limit 400 ms\)/,
    ],
    ['a follower that knows a leader it never heard from', vitals({}, { leaderSilenceMs: null }), 'NOT_SERVING', /never heard from/],
    ['a joining node not in the configuration yet', vitals({ member: false }), 'NOT_SERVING', /not a member/],
    ['a removed node', vitals({ member: false }, { removed: true }), 'NOT_SERVING', /removed from the cluster/],
    ['a stopping leader', vitals({ id: 'n1', role: 'leader' }, { stopped: true }), 'NOT_SERVING', /stopping/],
  ])('%s: %s', (_what, state, expected, reason) => {
    const verdict = healthVerdict(state, STALE_MS);
    expect(verdict.status).toBe(expected);
    expect(verdict.reason).toMatch(reason);
  });
});

// ---------------------------------------------------------------- reflection

const REFLECTION_PROTOS = join(dirname(dirname(createRequire(import.meta.url).resolve('@grpc/reflection'))), 'proto');

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** A reflection client of protocol `version` (v1 or v1alpha), made from the proto the reflection package ships. */
function reflectionClient(id: string, version: 'v1' | 'v1alpha'): (request: object) => Promise<ReflectionResponse> {
  const definition = protoLoader.loadSync(join(REFLECTION_PROTOS, `grpc/reflection/${version}/reflection.proto`), {
    keepCase: false,
    defaults: true,
    oneofs: true,
  });
  const Client = grpc.makeGenericClientConstructor(
    definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition,
    'ServerReflection',
  );
  const client = new Client(c().address(id), grpc.credentials.createInsecure());
  clients.push(client);
  return (request) =>
    new Promise((resolve, reject) => {
      const call = (client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse> }).serverReflectionInfo();
      call.on('data', (response: ReflectionResponse) => {
        resolve(response);
        call.end();
      });
      call.on('error', reject);
      call.write({ host: '', ...request });
    });
}

const descriptors = protobuf.loadSync(createRequire(import.meta.url).resolve('protobufjs/google/protobuf/descriptor.proto'));
const FileDescriptorProto = descriptors.lookupType('google.protobuf.FileDescriptorProto');

interface FileDescriptor {
  name: string;
  package?: string;
  service?: { name: string; method: { name: string; inputType: string; outputType: string; serverStreaming?: boolean }[] }[];
  messageType?: { name: string }[];
}

describe('server reflection on a node of real processes', () => {
  it('lists the client API, membership and health, not the peer service, in protocol v1 and v1alpha', async () => {
    cluster = await ProcessCluster.start(1);
    await c().waitForLeader(c().ids, WAIT_MS);
    for (const version of ['v1', 'v1alpha'] as const) {
      const reflect = reflectionClient('n1', version);
      // Reflection is set up once the node serves: until then the call is UNIMPLEMENTED.
      const listed = await waitFor(`reflection ${version} to list services`, () => reflect({ listServices: '*' }), {
        timeoutMs: WAIT_MS,
        intervalMs: 100,
      });
      expect(listed.listServicesResponse?.service.map((s) => s.name).sort()).toEqual([
        'grpc.health.v1.Health',
        'raftlog.v1.Cluster',
        'raftlog.v1.RaftLog',
      ]);
    }
  });

  it('describes raftlog.v1.RaftLog without the .proto files: its methods with their message types, and the files they need', async () => {
    cluster = await ProcessCluster.start(1);
    await c().waitForLeader(c().ids, WAIT_MS);
    const reflect = reflectionClient('n1', 'v1');
    const response = await waitFor('reflection to describe raftlog.v1.RaftLog', () => reflect({ fileContainingSymbol: 'raftlog.v1.RaftLog' }), {
      timeoutMs: WAIT_MS,
      intervalMs: 100,
    });
    expect(response.errorResponse).toBeUndefined();
    const files = (response.fileDescriptorResponse?.fileDescriptorProto ?? []).map(
      (bytes) => FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes), { defaults: false }) as FileDescriptor,
    );
    const service = files.flatMap((file) => file.service ?? []).find((s) => s.name === 'RaftLog');
    expect(service).toBeDefined();
    const methods = new Map(service?.method.map((m) => [m.name, m]));
    for (const name of ['Put', 'Get', 'Delete', 'CompareAndSwap', 'Append', 'Status', 'ReadLog', 'Subscribe', 'CommitPosition'])
      expect(methods.has(name)).toBe(true);
    expect(methods.get('Put')?.inputType).toBe('.raftlog.v1.PutRequest');
    expect(methods.get('Subscribe')?.serverStreaming).toBe(true);
    // The message types the methods name are in the files sent along.
    const messages = new Set(files.flatMap((file) => (file.messageType ?? []).map((m) => `.${file.package}.${m.name}`)));
    for (const method of service?.method ?? []) {
      expect(messages).toContain(method.inputType);
      expect(messages).toContain(method.outputType);
    }

    const health = await reflect({ fileContainingSymbol: 'grpc.health.v1.Health' });
    const healthFiles = (health.fileDescriptorResponse?.fileDescriptorProto ?? []).map(
      (bytes) => FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes)) as FileDescriptor,
    );
    expect(
      healthFiles
        .flatMap((file) => file.service ?? [])
        .find((s) => s.name === 'Health')
        ?.method.map((m) => m.name),
    ).toEqual(expect.arrayContaining(['Check', 'Watch']));

    const peer = await reflect({ fileContainingSymbol: 'raftlog.v1.RaftPeer' });
    expect(peer.errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
  });
});
