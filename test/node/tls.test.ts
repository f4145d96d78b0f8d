/**
 * TLS with real `raftlog node` processes (issue 13), tried as a hostile
 * tester would: a cluster started with --tls-cert, --tls-key and --tls-ca
 * serves a client whose certificate its CA signed, and refuses everyone else:
 * plaintext clients and peers, certificates of another CA, a client
 * certificate on the peer service, and a member's certificate used to speak
 * for another member. Each refused attempt carries a forged heartbeat with a
 * term far ahead of the cluster's; the cluster keeps its leader and term.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateFiles } from '../../scripts/local-cluster/certificates.js';
import { RaftLogClient, type RaftLogClientOptions, RaftLogUnavailableError } from '../../src/client/index.js';
import { deriveClusterId } from '../../src/node/cluster-identity.js';
import { PeerClients } from '../../src/node/peer-clients.js';
import { deliverMethod } from '../../src/node/raft-proto.js';
import { snapshotOfferMethod } from '../../src/node/snapshot-transfer.js';
import { toWire, type WireMessageBatch } from '../../src/node/wire-codec.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { collectRun, type Run } from '../support/collect-run.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { TestCertificates } from '../support/test-certificates.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 60_000;
const CALL_MS = 10_000;
const BIN = fileURLToPath(new URL('../../bin/raftlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MEMBERS = ['n1', 'n2', 'n3'];
/** The cluster name the nodes run with (NODE_DEFAULTS.cluster), and the id they derive from it. */
const CLUSTER = 'raftlog';
const CLUSTER_ID = deriveClusterId(CLUSTER, MEMBERS);
const WARN = 40;

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

async function logLines(file: string): Promise<LogLine[]> {
  const content = await readFile(file, 'utf8').catch(() => '');
  return content.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** A heartbeat as a leader of a term far ahead would send it: what an outsider forges to depose the leader. */
function forgedHeartbeat(from: string, to: string, term: number): WireMessageBatch {
  return {
    from,
    to,
    cluster: CLUSTER,
    clusterId: CLUSTER_ID,
    memberIncarnation: '0123456789abcdef',
    messages: [toWire({ from, to, term, type: 'Heartbeat', leaderCommit: 0, readContext: null })],
  };
}

/** One Deliver call to the peer service at `address`, over `credentials`: the error it failed with, or null. */
function deliver(address: string, credentials: grpc.ChannelCredentials, batch: WireMessageBatch): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, credentials);
  return new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(
      deliverMethod.path,
      deliverMethod.requestSerialize,
      deliverMethod.responseDeserialize,
      batch,
      { deadline: Date.now() + CALL_MS },
      (error) => resolve(error),
    );
  }).finally(() => client.close());
}

function offerSnapshot(
  address: string,
  credentials: grpc.ChannelCredentials,
  from: string,
  to: string,
  term: number,
): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, credentials);
  const offer = {
    from,
    to,
    cluster: CLUSTER,
    clusterId: CLUSTER_ID,
    memberIncarnation: '0123456789abcdef',
    term,
    index: 1_000,
    snapshotTerm: term,
    voters: [from],
    totalBytes: 10,
    sha256: Buffer.alloc(32),
  };
  return new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(
      snapshotOfferMethod.path,
      snapshotOfferMethod.requestSerialize,
      snapshotOfferMethod.responseDeserialize,
      offer,
      { deadline: Date.now() + CALL_MS },
      (error) => resolve(error),
    );
  }).finally(() => client.close());
}

describe('a cluster with mutual TLS', () => {
  let certificates: TestCertificates;
  let cluster: ProcessCluster;
  let operator: CertificateFiles;
  const clients: RaftLogClient[] = [];

  beforeAll(async () => {
    certificates = await TestCertificates.create();
    const nodes = new Map<string, CertificateFiles>();
    for (const id of MEMBERS) nodes.set(id, await certificates.node(id));
    operator = await certificates.client('operator');
    cluster = await ProcessCluster.start(3, [], {
      argsOf: (id) => certificates.nodeArgs(nodes.get(id) as CertificateFiles),
      channelCredentials: certificates.credentials(operator),
    });
    await cluster.waitForLeader(MEMBERS, WAIT_MS);
  }, 2 * WAIT_MS);

  afterAll(async () => {
    for (const client of clients) client.close();
    await cluster?.destroy();
    await certificates?.destroy();
  });

  const client = (options: Partial<RaftLogClientOptions>) => {
    const made = new RaftLogClient({ endpoints: MEMBERS.map((id) => cluster.address(id)), deadlineMs: CALL_MS, ...options });
    clients.push(made);
    return made;
  };
  const trusted = () => client({ tls: { ca: certificates.ca.cert, cert: operator.cert, key: operator.key } });

  /** Every node's term and leader, once they agree on one leader. */
  const agreement = async () => {
    const leader = await cluster.waitForLeader(MEMBERS, WAIT_MS);
    const statuses = await Promise.all(MEMBERS.map((id) => cluster.status(id)));
    return { leader, terms: statuses.map((status) => status.term) };
  };

  it(
    'serves a client whose certificate the CA signed, and says so when it starts',
    async () => {
      const written = await trusted().put('greeting', 'hello over TLS');
      expect(written.index).toBeGreaterThan(0);
      const read = await trusted().get('greeting');
      expect(read.found).toBe(true);
      expect(Buffer.from(read.value ?? []).toString()).toBe('hello over TLS');
      for (const id of MEMBERS) {
        const started = (await logLines(join(cluster.dir, `${id}.log`))).find((line) => line.event === 'started');
        expect(started).toMatchObject({ tls: 'mutual' });
        expect(started?.msg).toMatch(/^node started; mutual TLS: clients and peers need a certificate signed by /);
      }
    },
    WAIT_MS,
  );

  it(
    'refuses a plaintext client, a client without a certificate, and one whose certificate another CA signed; nothing they sent is written',
    async () => {
      const stranger = await certificates.client('stranger', certificates.otherCa);
      const attempts = [
        client({ deadlineMs: 2_000 }),
        client({ deadlineMs: 2_000, tls: { ca: certificates.ca.cert } }),
        client({ deadlineMs: 2_000, tls: { ca: certificates.ca.cert, cert: stranger.cert, key: stranger.key } }),
      ];
      for (const [i, attempt] of attempts.entries()) {
        expect(await rejection(attempt.put(`refused-${i}`, 'must not be written'))).toBeInstanceOf(RaftLogUnavailableError);
      }
      for (const i of attempts.keys()) expect(await trusted().get(`refused-${i}`)).toMatchObject({ found: false });
    },
    WAIT_MS,
  );

  it(
    'refuses a hand-made peer that has no node certificate of the cluster: plaintext, a client certificate, a node certificate of another CA',
    async () => {
      const before = await agreement();
      const follower = MEMBERS.find((id) => id !== before.leader) as string;
      const heartbeat = forgedHeartbeat(before.leader, follower, Math.max(...before.terms) + 1_000);

      const plaintext = await deliver(cluster.address(follower), grpc.credentials.createInsecure(), heartbeat);
      expect(plaintext?.code).toBe(grpc.status.UNAVAILABLE);

      const asClient = await deliver(cluster.address(follower), certificates.credentials(operator), heartbeat);
      expect(asClient?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(asClient?.details).toMatch(
        new RegExp(`^node ${follower} takes Raft messages only from cluster members: the certificate presented \\(CN operator\\) names no member`),
      );

      const impostor = await certificates.node(before.leader, certificates.otherCa);
      const otherCa = grpc.credentials.createSsl(await readFile(certificates.ca.cert), await readFile(impostor.key), await readFile(impostor.cert));
      expect((await deliver(cluster.address(follower), otherCa, heartbeat))?.code).toBe(grpc.status.UNAVAILABLE);

      expect(await agreement()).toEqual(before);
    },
    2 * WAIT_MS,
  );

  it(
    "refuses a member's certificate speaking for another member with PERMISSION_DENIED, logged once; the cluster is unaffected",
    async () => {
      const before = await agreement();
      const target = MEMBERS.find((id) => id !== before.leader) as string;
      const holder = MEMBERS.find((id) => id !== before.leader && id !== target) as string;
      const credentials = certificates.credentials(await certificates.node(holder));
      const term = Math.max(...before.terms) + 1_000;

      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = await deliver(cluster.address(target), credentials, forgedHeartbeat(before.leader, target, term));
        expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);
        expect(refused?.details).toBe(
          `node ${target} refuses a message that claims to come from ${before.leader} on a connection whose certificate names ${holder}`,
        );
      }
      const snapshot = await offerSnapshot(cluster.address(target), credentials, before.leader, target, term);
      expect(snapshot?.code).toBe(grpc.status.PERMISSION_DENIED);

      const warnings = await waitFor(
        `${target}'s warning about the certificate of ${holder}`,
        async () => {
          const lines = (await logLines(join(cluster.dir, `${target}.log`))).filter(
            (line) => line.event === 'peer-refused' && line.reason === 'from-another-member',
          );
          return lines.length >= 4 ? lines : undefined;
        },
        WAIT_MS,
      );
      expect(warnings.filter((line) => line.level === WARN)).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: WARN, code: 'PERMISSION_DENIED', member: holder, claimed: before.leader });

      expect(await agreement()).toEqual(before);
      expect((await trusted().put('after-the-forgery', 'still writable')).index).toBeGreaterThan(0);
    },
    2 * WAIT_MS,
  );

  it(
    "refuses a member's certificate speaking for another on the stream nodes use; the sender sees PERMISSION_DENIED",
    async () => {
      const before = await agreement();
      const target = MEMBERS.find((id) => id !== before.leader) as string;
      const holder = MEMBERS.find((id) => id !== before.leader && id !== target) as string;
      const { logger, lines } = capturingLogger();
      const impostor = new PeerClients({
        self: before.leader,
        cluster: CLUSTER,
        identity: { clusterId: CLUSTER_ID, incarnation: '0123456789abcdef' },
        peers: new Map([[target, cluster.address(target)]]),
        logger,
        channelCredentials: certificates.credentials(await certificates.node(holder)),
      });
      try {
        const term = Math.max(...before.terms) + 1_000;
        const refusal = await waitFor(
          `${target} refusing the stream of ${holder}'s certificate`,
          () => {
            impostor.send([{ from: before.leader, to: target, term, type: 'Heartbeat', leaderCommit: 0, readContext: null }]);
            return lines.find((line) => line.msg === 'peer refused messages');
          },
          { timeoutMs: WAIT_MS, intervalMs: 200 },
        );
        expect(refusal).toMatchObject({ event: 'peer-refused', peer: target, code: 'PERMISSION_DENIED' });
        expect(impostor.stats()[0]).toMatchObject({ state: 'refused' });
      } finally {
        await impostor.close();
      }
      expect(await agreement()).toEqual(before);
    },
    2 * WAIT_MS,
  );

  it(
    "lets a node certificate that names its sender through to the cluster's own checks, whose refusal does not name the cluster",
    async () => {
      const before = await agreement();
      const outsider = certificates.credentials(await certificates.node('n9'));
      const batch = { ...forgedHeartbeat('n9', before.leader, before.terms[0] as number), cluster: 'guessed-name', clusterId: '' };
      const refused = await deliver(cluster.address(before.leader), outsider, batch);
      expect(refused?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(refused?.details).toContain('"guessed-name"');
      expect(refused?.details).not.toContain(`"${CLUSTER}"`);
      expect(refused?.details).not.toContain(CLUSTER_ID);
    },
    WAIT_MS,
  );

  it(
    'the CLI takes --tls-ca, --tls-cert and --tls-key, and without them cannot reach the cluster',
    async () => {
      const endpoints = MEMBERS.map((id) => cluster.address(id)).join(',');
      const tls = ['--tls-ca', certificates.ca.cert, '--tls-cert', operator.cert, '--tls-key', operator.key];
      expect(await raftlog(['--endpoints', endpoints, ...tls, 'put', 'cli-key', 'cli value'])).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^OK {2}index \d+ term \d+/),
      });
      expect(await raftlog(['--endpoints', endpoints, ...tls, 'get', 'cli-key'])).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('"cli value"'),
      });
      expect(await raftlog(['--endpoints', endpoints, '--timeout', '2000', 'get', 'cli-key'])).toMatchObject({ code: 3 });
      expect(await raftlog(['--endpoints', endpoints, '--tls-cert', operator.cert, 'get', 'cli-key'])).toMatchObject({
        code: 2,
        stderr: expect.stringContaining('--tls-cert and --tls-key go together'),
      });
    },
    2 * WAIT_MS,
  );
});

describe('a node without TLS flags', () => {
  let cluster: ProcessCluster | undefined;
  afterAll(async () => {
    await cluster?.destroy();
  });

  it(
    'says in its startup line that any process reaching its port can send it Raft messages',
    async () => {
      cluster = await ProcessCluster.start(1);
      const started = await waitFor(
        'the startup line of n1',
        async () => (await logLines(join((cluster as ProcessCluster).dir, 'n1.log'))).find((line) => line.event === 'started'),
        WAIT_MS,
      );
      expect(started).toMatchObject({ tls: 'off' });
      expect(started.msg).toBe(
        `node started; TLS off: any process that reaches ${cluster.address('n1')} can send this node Raft messages and call its client API, in plaintext (see --tls-cert, --tls-key, --tls-ca)`,
      );
    },
    WAIT_MS,
  );
});

/** `node bin/raftlog.js ...args`, without RAFTLOG_* settings from this environment. */
function raftlog(args: readonly string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RAFTLOG_')));
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return collectRun(child, `raftlog ${args.join(' ')}`, WAIT_MS);
}
