import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { protobufFramingProblem } from '../../src/node/protobuf-framing.js';

const root = protobuf.loadSync(
  ['client.proto', 'raft.proto', 'cluster.proto'].map((file) => fileURLToPath(new URL(`../../proto/raftlog/v1/${file}`, import.meta.url))),
);
const loadedClientApi = loadSync(fileURLToPath(new URL('../../proto/raftlog/v1/client.proto', import.meta.url)));
const putRequest = root.lookupType('raftlog.v1.PutRequest');
const appendRecordRequest = root.lookupType('raftlog.v1.AppendRecordRequest');
const messageBatch = root.lookupType('raftlog.v1.MessageBatch');

const term = fc.integer({ min: 0, max: 2 ** 48 });
const bytes = fc.uint8Array({ maxLength: 64 });
const wireEntry = fc.record({ index: term, term, kind: fc.integer({ min: 0, max: 3 }), data: bytes });
const raftMessage = fc.oneof(
  fc.record({ term, heartbeat: fc.record({ leaderCommit: term, readContext: term }) }),
  fc.record({ term, voteRequest: fc.record({ preVote: fc.boolean(), lastLogIndex: term, lastLogTerm: term, leadershipTransfer: fc.boolean() }) }),
  fc.record({
    term,
    appendRequest: fc.record({ prevLogIndex: term, prevLogTerm: term, entries: fc.array(wireEntry, { maxLength: 5 }), leaderCommit: term }),
  }),
  fc.record({ term, readIndexRequest: fc.record({ requestIds: fc.array(fc.string(), { maxLength: 3 }) }) }),
);
const batch = fc.record({ from: fc.string(), to: fc.string(), cluster: fc.string(), messages: fc.array(raftMessage, { maxLength: 4 }) });
const put = fc.record({ key: bytes, value: bytes });

function encode(type: protobuf.Type, value: object): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

describe('strict protobuf framing of requests', () => {
  it('every message protobufjs encodes from a valid value passes (no false alarms)', () => {
    fc.assert(
      fc.property(batch, (value) => protobufFramingProblem(messageBatch, encode(messageBatch, value)) === null),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(put, (value) => protobufFramingProblem(putRequest, encode(putRequest, value)) === null),
      { numRuns: 300 },
    );
  });

  it('the two bytes 00 01 (field 0) sent as an Append are refused, naming field number 0', () => {
    // The bytes a probe sent to Append: the service's decoder (proto-loader's protobufjs) skipped field 0 and
    // decoded an empty record, which was committed.
    const append = loadedClientApi['raftlog.v1.RaftLog'] as unknown as Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>;
    expect(append.Append?.requestDeserialize(Buffer.of(0x00, 0x01))).toEqual({});
    expect(protobufFramingProblem(appendRecordRequest, Uint8Array.of(0x00, 0x01))).toMatch(/field number 0 at byte 0/);
  });

  it('a group wire type, a nonexistent wire type, and a declared field with the wrong wire type are refused', () => {
    // Field 1 (key) as a start-group, as wire type 7, and as a varint instead of a length-delimited string.
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x0b, 0x0c))).toMatch(/group/);
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x0f))).toMatch(/wire type 7/);
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x08, 0x01))).toMatch(/PutRequest\.key: wire type 0 at byte 0, .* declared bytes/);
  });

  it('a hostile nested entry deep inside a valid batch is found and named by its path', () => {
    const good = encode(messageBatch, {
      from: 'n1',
      to: 'n2',
      cluster: 'c',
      messages: [{ term: 3, appendRequest: { entries: [{ index: 1, term: 3, data: [1, 2] }] } }],
    });
    expect(protobufFramingProblem(messageBatch, good)).toBeNull();
    // Replace the entry's data field tag (field 4, LEN = 0x22) with field 0: the damage sits three messages deep.
    const entryDataTag = good.lastIndexOf(0x22);
    const bad = Uint8Array.from(good);
    bad[entryDataTag] = 0x02;
    expect(protobufFramingProblem(messageBatch, bad)).toMatch(/MessageBatch\.messages\.appendRequest\.entries: field number 0/);
  });

  it('every truncation of a valid batch is either refused or still decodes: the check never throws and never passes what the decoder cannot read', () => {
    fc.assert(
      fc.property(batch, fc.nat(), (value, cut) => {
        const encoded = encode(messageBatch, value);
        const truncated = encoded.subarray(0, encoded.length === 0 ? 0 : cut % encoded.length);
        const problem = protobufFramingProblem(messageBatch, truncated);
        if (problem === null) messageBatch.decode(truncated);
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes: the check answers (a reason or null), and whatever it passes the decoder reads, or refuses only for text that is not UTF-8', () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (random) => {
        for (const type of [messageBatch, putRequest, appendRecordRequest]) {
          const problem = protobufFramingProblem(type, random);
          if (problem !== null) {
            refused += 1;
            continue;
          }
          // The check is about framing; a string field's bytes are the decoder's to judge (a throw there is
          // answered INVALID_ARGUMENT, as the next describe shows), and no other throw may come from framed bytes.
          try {
            type.decode(random);
          } catch (error) {
            if ((error as { code?: string }).code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw error;
          }
        }
        return true;
      }),
      { numRuns: 2000 },
    );
    // Random bytes are almost never a well-framed message: the check must refuse most of them.
    expect(refused).toBeGreaterThan(3000);
  });

  it('a length or varint that runs past the end are refused with the byte offset', () => {
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x0a, 0x05, 0x61))).toMatch(/5 bytes at byte 2 run past the end/);
    // Field 15 is unknown to PutRequest: its framing is still checked.
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x78, 0xff, 0xff))).toMatch(/PutRequest\.#15: a varint at byte 1 runs past the end/);
    expect(protobufFramingProblem(putRequest, Uint8Array.of(0x78, ...new Array<number>(10).fill(0xff), 0x01))).toMatch(/longer than 10 bytes/);
  });
});

describe("the node's request decoders under random input", () => {
  it('for every method of the client, Cluster and peer services, any bytes decode to a message or a malformed marker with a reason: never a throw (which gRPC turns into INTERNAL)', async () => {
    const { raftLogServiceDefinition } = await import('../../src/node/client-proto.js');
    const { clusterServiceDefinition } = await import('../../src/node/cluster-proto.js');
    const { raftPeerServerDefinition } = await import('../../src/node/raft-proto.js');
    const { malformedReason } = await import('../../src/node/malformed-requests.js');
    const methods = [raftLogServiceDefinition, clusterServiceDefinition, raftPeerServerDefinition].flatMap((service) => Object.values(service));
    let malformed = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.nat(methods.length - 1), (bytes, which) => {
        const method = methods[which] as (typeof methods)[number];
        const decoded = method.requestDeserialize(Buffer.from(bytes)) as unknown;
        const reason = malformedReason(decoded);
        if (reason !== null) {
          malformed += 1;
          expect(reason).not.toBe('');
        } else {
          expect(typeof decoded).toBe('object');
        }
      }),
      { numRuns: 3000 },
    );
    expect(malformed).toBeGreaterThan(1000);
  });
});
