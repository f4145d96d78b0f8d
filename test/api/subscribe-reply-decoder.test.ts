import { describe, expect, it } from 'vitest';
import { CLIENT_PROTO_PATH, type LogEntry, loadRaftLogService, RAFTLOG_SERVICE_NAME } from '../../src/api/client-api.js';
import { loadService, type Uint64Form } from '../../src/api/load-service.js';
import { SubscribeReplyDecodeError, subscribeReplyDecoder } from '../../src/api/subscribe-reply-decoder.js';
import { SeededRandom } from '../../src/raft/random.js';

/**
 * The hand-written SubscribeReply decoder against the contract's own
 * decoder: for every reply, every form of 64-bit integers, unknown fields and
 * cut-off input, it returns what @grpc/proto-loader returns (or throws where
 * that throws).
 */
function protoLoaderCodec(form: Uint64Form): { encode: (reply: object) => Buffer; decode: (bytes: Buffer) => unknown } {
  const method = loadService(CLIENT_PROTO_PATH, RAFTLOG_SERVICE_NAME, form)['Subscribe'];
  if (method === undefined) throw new Error('no Subscribe');
  return { encode: (reply) => method.responseSerialize(reply), decode: (bytes) => method.responseDeserialize(bytes) };
}

/** A reproducible stream of numbers in [0, 1). */
function random(seed: number): () => number {
  const source = new SeededRandom(seed);
  return () => source.next();
}

const LARGEST_UINT64 = '18446744073709551615';

function replyOf(next: () => number, form: Uint64Form): object {
  const int = (n: number) => Math.floor(next() * n);
  const uint64 = (): number | string => {
    const pick = int(6);
    if (pick === 0) return 0;
    if (pick === 1) return int(128);
    if (pick === 2) return int(2 ** 31) + 2 ** 31; // past int32
    if (pick === 3) return int(2 ** 21) * 2 ** 32 + int(2 ** 32); // up to 2^53
    // Past 2^53 (sent as a decimal string): the number form rounds, and must round as proto-loader does.
    return pick === 4 ? LARGEST_UINT64 : (BigInt(int(2 ** 32)) * 2n ** 32n + BigInt(int(2 ** 32))).toString();
  };
  const bytes = () => Buffer.from(Array.from({ length: int(3) === 0 ? 0 : int(300) }, () => int(256)));
  const text = () => ['', 'n1', 'billing-consumer', 'ünïcødé ✓', 'x'.repeat(int(200))][int(5)] as string;
  const entries = Array.from({ length: int(4) === 0 ? 0 : int(40) }, () => {
    const entry: Partial<Record<keyof LogEntry, unknown>> = {};
    if (int(4) > 0) entry.index = uint64();
    if (int(4) > 0) entry.term = uint64();
    // Numbers past the enum's names too, negative and the largest int32 among them.
    if (int(4) > 0) entry.kind = int(5) === 0 ? ([-1, 2 ** 31 - 1, 9 + int(50)][int(3)] as number) : int(9);
    if (int(2) === 0) entry.record = bytes();
    if (int(2) === 0) entry.key = bytes();
    if (int(3) === 0) entry.value = bytes();
    if (int(3) === 0) entry.expected = bytes();
    if (int(3) === 0) entry.expectAbsent = int(2) === 0;
    if (int(3) === 0) entry.consumer = text();
    if (int(3) === 0) entry.position = uint64();
    if (int(3) === 0) entry.producer = { producerId: uint64(), sequence: uint64(), acknowledgedBelow: uint64() };
    if (int(3) === 0) {
      entry.changes = Array.from({ length: int(4) }, () => ({
        key: bytes(),
        foundBefore: int(2) === 0,
        before: bytes(),
        deleted: int(2) === 0,
        after: bytes(),
      }));
    }
    if (int(2) === 0) entry.proposedAtMs = uint64();
    return entry;
  });
  return { entries, firstIndex: uint64(), lastIndex: uint64(), commitIndex: uint64(), node: text(), leader: text() };
}

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** Fields no version of client.proto has defined, one of each wire type (a group included). */
const UNKNOWN_FIELDS = Buffer.from([
  ...varint((99 << 3) | 0),
  ...varint(2 ** 40),
  ...varint((100 << 3) | 1),
  ...[1, 2, 3, 4, 5, 6, 7, 8],
  ...varint((101 << 3) | 2),
  3,
  ...[9, 9, 9],
  ...varint((102 << 3) | 5),
  ...[1, 2, 3, 4],
  ...varint((103 << 3) | 3),
  ...varint((1 << 3) | 0),
  7,
  ...varint((103 << 3) | 4),
]);

describe('SubscribeReply decoder', () => {
  for (const form of ['decimal-string', 'number'] as const) {
    const codec = protoLoaderCodec(form);
    const decode = subscribeReplyDecoder(form);

    it(`decodes 300 random replies as proto-loader does (${form})`, () => {
      const next = random(form === 'number' ? 11 : 12);
      for (let i = 0; i < 300; i++) {
        const bytes = codec.encode(replyOf(next, form));
        expect(decode(bytes), `reply ${i}`).toStrictEqual(codec.decode(bytes));
      }
    });

    it(`skips fields it does not know, in the reply and inside an entry (${form})`, () => {
      const next = random(13);
      for (let i = 0; i < 50; i++) {
        const reply = replyOf(next, form) as { entries: object[] };
        const onlyEntry = codec.encode({ entries: reply.entries.slice(0, 1) });
        const rest = codec.encode({ ...reply, entries: reply.entries.slice(1) });
        const bytes =
          onlyEntry.length === 0
            ? Buffer.concat([UNKNOWN_FIELDS, rest])
            : (() => {
                // Field 1's contents, with the unknown fields added after the entry's own.
                let at = 1;
                let length = 0;
                for (let shift = 0; ; shift += 7) {
                  const byte = onlyEntry[at++] as number;
                  length += (byte & 0x7f) * 2 ** shift;
                  if (byte < 0x80) break;
                }
                const entry = Buffer.concat([onlyEntry.subarray(at, at + length), UNKNOWN_FIELDS]);
                return Buffer.concat([Buffer.from([0x0a, ...varint(entry.length)]), entry, UNKNOWN_FIELDS, rest]);
              })();
        expect(decode(bytes), `reply ${i}`).toStrictEqual(codec.decode(bytes));
      }
    });

    it(`throws where proto-loader throws on a reply cut short, and agrees where the cut still parses (${form})`, () => {
      const next = random(14);
      let refused = 0;
      let cutFields = 0;
      for (let i = 0; i < 40; i++) {
        const bytes = codec.encode(replyOf(next, form));
        for (let cut = 0; cut < bytes.length; cut += 1 + Math.floor(bytes.length / 60)) {
          const part = bytes.subarray(0, cut);
          let expected: unknown;
          try {
            expected = codec.decode(part);
          } catch {
            expect(() => decode(part), `reply ${i} cut at ${cut}`).toThrow(SubscribeReplyDecodeError);
            refused++;
            continue;
          }
          let got: unknown;
          try {
            got = decode(part);
          } catch (error) {
            // Stricter than protobufjs: it reads some fields cut off at the end (a string, a varint) as the part it has.
            expect(String(error), `reply ${i} cut at ${cut}`).toMatch(/(a field of \d+ bytes|a varint) runs past the end/);
            cutFields++;
            continue;
          }
          expect(got, `reply ${i} cut at ${cut}`).toStrictEqual(expected);
        }
      }
      expect(refused).toBeGreaterThan(100);
      expect(cutFields).toBeGreaterThan(0);
    });
  }

  it('reads bytes no encoder of ours writes as proto-loader does: fields out of order, a singular field twice, unknown fields inside nested messages', () => {
    const codec = protoLoaderCodec('decimal-string');
    const decode = subscribeReplyDecoder('decimal-string');
    const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
    const len = (field: number, body: number[]) => [...tag(field, 2), ...varint(body.length), ...body];
    const text = (value: string) => [...Buffer.from(value)];
    const producer = (body: number[]) => len(11, body);
    const entry = [
      ...tag(13, 0),
      ...varint(1_700_000_000_000),
      ...tag(1, 0),
      ...varint(5),
      ...producer([...tag(9, 0), 1, ...tag(1, 0), 4]),
      ...producer([...tag(2, 0), 7]), // protobufjs keeps the last occurrence of a message field, without merging
      ...len(12, [...tag(20, 5), 1, 2, 3, 4, ...len(1, text('k')), ...tag(4, 0), 1]),
      ...tag(3, 0),
      2,
      ...tag(1, 0),
      ...varint(6), // the last of a scalar field wins
    ];
    const reply = Buffer.from([...len(6, text('n1')), ...tag(2, 0), 3, ...len(1, entry), ...tag(2, 0), 6, ...len(5, text('n2'))]);
    expect(decode(reply)).toStrictEqual(codec.decode(reply));
    expect(decode(reply).entries[0]).toMatchObject({ index: '6', kind: 'LOG_ENTRY_KIND_PUT', producer: { producerId: '0', sequence: '7' } });
  });

  it('is the Subscribe decoder of the service definitions, for both forms, and nothing else changed', () => {
    for (const form of ['decimal-string', 'number'] as const) {
      const service = loadRaftLogService(form);
      const loaded = loadService(CLIENT_PROTO_PATH, RAFTLOG_SERVICE_NAME, form);
      const reply = replyOf(random(15), form);
      const bytes = protoLoaderCodec(form).encode(reply);
      expect(service['Subscribe']?.responseDeserialize(bytes)).toStrictEqual(protoLoaderCodec(form).decode(bytes));
      expect(service['Subscribe']?.responseDeserialize).not.toBe(loaded['Subscribe']?.responseDeserialize);
      for (const name of Object.keys(loaded).filter((method) => method !== 'Subscribe')) expect(service[name], name).toBe(loaded[name]);
    }
  });

  it('refuses unknown groups nested past its limit rather than running out of stack', () => {
    // Field 9 (unknown) opening a group, inside which another opens, and so on.
    expect(() => subscribeReplyDecoder('number')(Buffer.alloc(100_000, (9 << 3) | 3))).toThrow(/groups nested more than 32 deep/);
  });

  it('names the byte where a reply stops parsing', () => {
    const decode = subscribeReplyDecoder('number');
    // Field 1 (entries) announces 10 bytes; 2 follow.
    expect(() => decode(Buffer.from([0x0a, 10, 0x08, 0x01]))).toThrow(/byte 1 of 4: a field of 10 bytes runs past the end/);
    // A varint with eleven bytes.
    expect(() => decode(Buffer.from([0x10, ...Array(10).fill(0xff), 0x01]))).toThrow(/varint longer than 10 bytes/);
    // Wire type 7 does not exist.
    expect(() => decode(Buffer.from([(9 << 3) | 7]))).toThrow(/wire type 7/);
  });
});
