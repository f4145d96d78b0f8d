/**
 * The peer service behind mutual TLS (tls-peer-identity.ts), in one process:
 * a gRPC server with the node's TLS credentials, the identity interceptor and
 * the peer service as a node serves it. A member whose request bytes do not
 * decode is told INVALID_ARGUMENT and what is wrong (its mistake, not a
 * forgery), as without TLS; nothing reaches Raft. A client certificate is
 * still refused PERMISSION_DENIED whatever it sends, and so is a member
 * speaking for another. Certificates come from openssl (TestCertificates says
 * so loudly when it is missing).
 */

import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPeerService } from '../../src/node/peer-service.js';
import { deliverMethod, raftPeerServerDefinition } from '../../src/node/raft-proto.js';
import { loadNodeTls, nodeServerCredentials, nodeServerInterceptors } from '../../src/node/tls-config.js';
import { toWire, type WireMessageBatch } from '../../src/node/wire-codec.js';
import type { Message } from '../../src/raft/types.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { TestCertificates } from '../support/test-certificates.js';

const CALL_MS = 10_000;
/** A field numbered 0: no protobuf message starts so. */
const GARBAGE = Buffer.from([0x00, 0x01]);

describe('the peer service under mutual TLS', () => {
  let certificates: TestCertificates;
  let server: grpc.Server;
  let address: string;
  const delivered: Message[] = [];

  beforeAll(async () => {
    certificates = await TestCertificates.create();
    const files = await certificates.node('n1');
    const tls = await loadNodeTls({ ...files, ca: certificates.ca.cert }, 'n1');
    const { logger } = capturingLogger();
    server = new grpc.Server({ interceptors: nodeServerInterceptors(tls, 'n1', logger) });
    server.addService(
      raftPeerServerDefinition,
      createPeerService({ self: 'n1', cluster: 'raftlog', logger, onMessages: (_from, messages) => delivered.push(...messages) }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', nodeServerCredentials(tls), (error, bound) => (error === null ? resolve(bound) : reject(error))),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server?.forceShutdown();
    await certificates?.destroy();
  });

  /** One Deliver call with `body` as the request (raw bytes, or a batch to encode), over a connection presenting `files`. */
  async function deliver(files: { cert: string; key: string }, body: Buffer | WireMessageBatch): Promise<grpc.ServiceError | null> {
    const credentials = grpc.credentials.createSsl(await readFile(certificates.ca.cert), await readFile(files.key), await readFile(files.cert));
    const client = new grpc.Client(address, credentials);
    const serialize = (request: Buffer | WireMessageBatch): Buffer =>
      Buffer.isBuffer(request) ? request : deliverMethod.requestSerialize(request as Parameters<typeof deliverMethod.requestSerialize>[0]);
    return new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(deliverMethod.path, serialize, deliverMethod.responseDeserialize, body, { deadline: Date.now() + CALL_MS }, (error) =>
        resolve(error),
      );
    }).finally(() => client.close());
  }

  it('answers a member whose request does not decode INVALID_ARGUMENT, saying why; nothing reaches Raft', async () => {
    const member = await certificates.node('n2');

    const refused = await deliver(member, GARBAGE);

    expect(refused?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(refused?.details).toMatch(/^node n1 cannot read a batch from .*: /);
    expect(delivered).toEqual([]);
  });

  it('still refuses a client certificate with PERMISSION_DENIED, whatever the bytes', async () => {
    const operator = await certificates.client('operator');

    const refused = await deliver(operator, GARBAGE);

    expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(delivered).toEqual([]);
  });

  it('still refuses a member speaking for another with PERMISSION_DENIED', async () => {
    const member = await certificates.node('n2');
    const forged: WireMessageBatch = {
      from: 'n3',
      to: 'n1',
      cluster: 'raftlog',
      clusterId: '',
      memberIncarnation: '',
      messages: [toWire({ from: 'n3', to: 'n1', term: 1_000, type: 'Heartbeat', leaderCommit: 0, readContext: null })],
    };

    const refused = await deliver(member, forged);

    expect(refused?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused?.details).toBe('node n1 refuses a message that claims to come from n3 on a connection whose certificate names n2');
    expect(delivered).toEqual([]);
  });
});
