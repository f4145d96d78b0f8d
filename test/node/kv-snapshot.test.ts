import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import protobuf from 'protobufjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCommand, type KvCommand } from '../../src/node/kv-commands.js';
import {
  parseSnapshotFileName,
  readKvSnapshot,
  readSnapshotHeader,
  SnapshotCorruptionError,
  snapshotFileName,
  writeKvSnapshot,
} from '../../src/node/kv-snapshot.js';
import { KvStateMachine } from '../../src/node/kv-state-machine.js';
import type { SnapshotMeta } from '../../src/raft/types.js';

// The test reads and forges files from the format described in snapshot.proto,
// independently of the module under test, as a reader in another language would.
const root = protobuf.loadSync(new URL('../../proto/raftlog/v1/snapshot.proto', import.meta.url).pathname);
const FrameType = root.lookupType('raftlog.v1.snapshot.SnapshotFrame');

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

interface Frame {
  readonly offset: number;
  readonly payload: Buffer;
}

function splitFrames(file: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < file.byteLength) {
    const length = file.readUInt32BE(at);
    const payload = file.subarray(at + 8, at + 8 + length);
    expect(crc32(payload)).toBe(file.readUInt32BE(at + 4));
    frames.push({ offset: at, payload });
    at += 8 + length;
  }
  expect(at).toBe(file.byteLength);
  return frames;
}

function flipBits(file: Buffer, at: number, mask: number): void {
  file.writeUInt8(file.readUInt8(at) ^ mask, at);
}

function joinFrames(payloads: readonly Uint8Array[]): Buffer {
  return Buffer.concat(
    payloads.flatMap((payload) => {
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(payload.byteLength, 0);
      prefix.writeUInt32BE(crc32(payload), 4);
      return [prefix, Buffer.from(payload)];
    }),
  );
}

function decode(payload: Uint8Array): Record<string, unknown> {
  return FrameType.toObject(FrameType.decode(payload), { longs: Number, defaults: true, oneofs: true });
}

function encode(object: Record<string, unknown>): Uint8Array {
  return FrameType.encode(FrameType.fromObject(object)).finish();
}

function applyAll(kv: KvStateMachine, commands: Iterable<KvCommand>, term = 1): void {
  for (const command of commands) {
    kv.apply({ index: kv.appliedIndex + 1, term, kind: 'command', data: encodeCommand(command) });
  }
}

function* puts(count: number, prefix = 'key'): Generator<KvCommand> {
  for (let i = 0; i < count; i++) yield { op: 'put', key: bytes(`${prefix}-${i}`), value: bytes(`value-${i}-${'x'.repeat(i % 50)}`) };
}

function sampleMachine(): KvStateMachine {
  const kv = new KvStateMachine();
  applyAll(kv, puts(3000));
  applyAll(kv, [
    { op: 'append', record: bytes('event-1') },
    { op: 'delete', key: bytes('key-7') },
    { op: 'put', key: new Uint8Array([0, 1, 255]), value: new Uint8Array([255, 0]) },
    { op: 'append', record: bytes('event-2') },
    { op: 'commit-position', consumer: 'billing', position: 3000, allowBackwards: false, proposedAtMs: 1_700_000_000_000 },
    { op: 'commit-position', consumer: 'search-index', position: 12, allowBackwards: false, proposedAtMs: 1_700_000_000_500 },
    { op: 'register-producer' },
  ]);
  const producer = kv.appliedIndex;
  applyAll(kv, [
    { op: 'append', record: bytes('once'), producer: { id: producer, sequence: 1, acknowledgedBelow: 1 } },
    { op: 'cas', key: bytes('key-1'), expected: null, value: bytes('x'), producer: { id: producer, sequence: 2, acknowledgedBelow: 1 } },
    { op: 'delete', key: bytes('key-2'), producer: { id: producer, sequence: 3, acknowledgedBelow: 2 } },
  ]);
  return kv;
}

const metaAt = (kv: KvStateMachine, term = 3): SnapshotMeta => ({ index: kv.appliedIndex, term, config: { voters: ['n1', 'n2', 'n3'] } });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftlog-snapshot-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes the sample snapshot and returns its path and bytes. */
async function sampleFile(): Promise<{ path: string; file: Buffer; kv: KvStateMachine }> {
  const kv = sampleMachine();
  const info = await writeKvSnapshot(dir, kv, metaAt(kv));
  const path = join(dir, info.file);
  return { path, file: await readFile(path), kv };
}

async function expectCorrupt(path: string, pattern: RegExp): Promise<SnapshotCorruptionError> {
  const error = await readKvSnapshot(path).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SnapshotCorruptionError);
  const corruption = error as SnapshotCorruptionError;
  expect(corruption.path).toBe(path);
  expect(corruption.message).toContain(path);
  expect(corruption.detail).toMatch(pattern);
  return corruption;
}

describe('snapshot file names', () => {
  it('pad the index so that names sort in index order, and parse back', () => {
    const name = snapshotFileName({ index: 42, term: 7 });
    expect(name).toBe('snap-00000000000000000042-7.snap');
    expect(parseSnapshotFileName(name)).toEqual({ index: 42, term: 7 });
    expect(snapshotFileName({ index: 9, term: 1 }) < snapshotFileName({ index: 10, term: 1 })).toBe(true);
    expect(parseSnapshotFileName(`${name}.tmp`)).toBeNull();
    expect(parseSnapshotFileName('snap-42-7.snap')).toBeNull();
  });
});

describe('writing and reading a key-value snapshot', () => {
  it('a snapshot read back restores the same state, meta and digest', async () => {
    const kv = sampleMachine();
    const meta = metaAt(kv);
    const info = await writeKvSnapshot(dir, kv, meta);

    expect(info.file).toBe(snapshotFileName(meta));
    expect(await readdir(dir)).toEqual([info.file]);
    const file = await readFile(join(dir, info.file));
    expect(info.bytes).toBe(file.byteLength);
    expect(info.sha256).toBe(createHash('sha256').update(file).digest('hex'));

    const read = await readKvSnapshot(join(dir, info.file));
    expect(read.meta).toEqual(meta);
    expect(read.digest).toBe(kv.digest());
    expect(read.kv.digest()).toBe(kv.digest());
    expect(read.kv.appliedIndex).toBe(kv.appliedIndex);
    expect(read.kv.size).toBe(kv.size);
    expect(read.kv.get(bytes('key-7'))).toBeNull();
    expect(str(read.kv.get(bytes('key-8')))).toBe(str(kv.get(bytes('key-8'))));
    expect(read.kv.get(new Uint8Array([0, 1, 255]))).toEqual(new Uint8Array([255, 0]));
  });

  it('the configuration read back keeps its learners, addresses and removed ids', async () => {
    const kv = sampleMachine();
    const config = { voters: ['n1', 'n2', 'n4'], learners: ['n5'], addresses: { n1: 'h1:7001', n5: 'h5:7005' }, removed: ['n3', 'n6'] };
    const info = await writeKvSnapshot(dir, kv, { index: kv.appliedIndex, term: 3, config });
    expect((await readKvSnapshot(join(dir, info.file))).meta.config).toEqual(config);
  });

  it('a restored machine and the original stay equal through the same further applies', async () => {
    const kv = sampleMachine();
    const info = await writeKvSnapshot(dir, kv, metaAt(kv));
    const { kv: restored } = await readKvSnapshot(join(dir, info.file));
    const more: KvCommand[] = [
      { op: 'append', record: bytes('event-3') },
      { op: 'put', key: bytes('key-1'), value: bytes('changed') },
      { op: 'delete', key: bytes('key-2') },
    ];
    applyAll(kv, more, 4);
    applyAll(restored, more, 4);
    expect(restored.digest()).toBe(kv.digest());
  });

  it('the header alone gives the meta and digest', async () => {
    const { path, kv } = await sampleFile();
    expect(await readSnapshotHeader(path)).toEqual({ meta: metaAt(kv), digest: kv.digest() });
  });

  it('an empty state machine makes a snapshot of a header and a trailer', async () => {
    const kv = new KvStateMachine();
    const info = await writeKvSnapshot(dir, kv, { index: 0, term: 0, config: { voters: ['n1'] } });
    const frames = splitFrames(await readFile(join(dir, info.file)));
    expect(frames.map((f) => decode(f.payload).frame)).toEqual(['header', 'trailer']);
    const read = await readKvSnapshot(join(dir, info.file));
    expect(read.kv.digest()).toBe(kv.digest());
    expect(read.meta).toEqual({ index: 0, term: 0, config: { voters: ['n1'] } });
  });

  it('the state is the one at the call: applies that go on while the file is written are not in it', async () => {
    const kv = sampleMachine();
    const meta = metaAt(kv);
    const digestAtCall = kv.digest();
    const writing = writeKvSnapshot(dir, kv, meta);
    applyAll(kv, [
      { op: 'put', key: bytes('key-1'), value: bytes('after the call') },
      { op: 'delete', key: bytes('key-3') },
      { op: 'append', record: bytes('late') },
    ]);
    const info = await writing;
    const read = await readKvSnapshot(join(dir, info.file));
    expect(read.digest).toBe(digestAtCall);
    expect(read.kv.digest()).toBe(digestAtCall);
    expect(str(read.kv.get(bytes('key-1')))).toBe('value-1-x');
    expect(read.kv.get(bytes('key-3'))).not.toBeNull();
  });

  it('refuses meta whose index is not the applied index, naming both, and writes nothing', async () => {
    const kv = sampleMachine();
    await expect(writeKvSnapshot(dir, kv, { ...metaAt(kv), index: kv.appliedIndex - 1 })).rejects.toThrow(
      `snapshot meta index ${kv.appliedIndex - 1} differs from the state machine's applied index ${kv.appliedIndex}`,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a write that fails leaves no temporary file behind', async () => {
    const kv = sampleMachine();
    const meta = metaAt(kv);
    // A directory where the snapshot should go makes the final rename fail.
    await mkdir(join(dir, snapshotFileName(meta)));
    await expect(writeKvSnapshot(dir, kv, meta)).rejects.toThrow();
    expect(await readdir(dir)).toEqual([snapshotFileName(meta)]);
  });

  it('a large state streams in bounded frames and restores to an equal digest', async () => {
    const kv = new KvStateMachine();
    applyAll(kv, puts(50_000));
    applyAll(kv, [{ op: 'append', record: bytes('one record') }]);
    const big = new Uint8Array(1024 * 1024).fill(7);
    applyAll(kv, [{ op: 'put', key: bytes('big'), value: big }]);

    const info = await writeKvSnapshot(dir, kv, metaAt(kv));
    const file = await readFile(join(dir, info.file));
    const frames = splitFrames(file);
    expect(frames.length).toBeGreaterThan(20);
    // Every frame is about 64 KiB at most, except the one holding the 1 MiB value.
    const oversized = frames.filter((f) => f.payload.byteLength > 66 * 1024);
    expect(oversized).toHaveLength(1);
    expect(oversized[0]?.payload.byteLength).toBeLessThan(big.byteLength + 66 * 1024);

    const read = await readKvSnapshot(join(dir, info.file));
    expect(read.kv.size).toBe(50_001);
    expect(read.kv.digest()).toBe(kv.digest());
    // Buffer.compare, not toEqual: a deep comparison of a 1 MiB array takes seconds.
    expect(Buffer.compare(read.kv.get(bytes('big')) ?? new Uint8Array(0), big)).toBe(0);
    expect(str(read.kv.get(bytes('key-49999')))).toBe(str(kv.get(bytes('key-49999'))));
  });

  it('the format is readable as documented in snapshot.proto, digest included', async () => {
    const { file, kv } = await sampleFile();
    const frames = splitFrames(file).map((f) => decode(f.payload));
    const header = frames[0]?.header as Record<string, unknown>;
    expect(header).toMatchObject({
      magic: 'raftlog-kv-snapshot',
      formatVersion: 2,
      index: kv.appliedIndex,
      term: 3,
      recordCount: 3,
      consumerCount: 2,
      producerCount: 1,
    });
    expect(frames.at(-1)?.trailer).toEqual({ frameCount: frames.length - 1, pairCount: kv.size, consumerCount: 2, producerCount: 1 });

    // Recompute the digest from the frames, following the proto's description.
    const u64 = (n: number) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(n));
      return b;
    };
    const sha = (...parts: Uint8Array[]) => BigInt(`0x${createHash('sha256').update(Buffer.concat(parts)).digest('hex')}`);
    const part = (value: string | number | boolean | Uint8Array): Buffer => {
      const encoded =
        typeof value === 'string'
          ? Buffer.from(value)
          : typeof value === 'number'
            ? u64(value)
            : typeof value === 'boolean'
              ? Buffer.of(value ? 1 : 0)
              : Buffer.from(value);
      return Buffer.concat([u64(encoded.byteLength), encoded]);
    };
    const t = (...parts: (string | number | boolean | Uint8Array)[]) => sha(...parts.map(part));
    const hex = (sum: bigint) => (sum % (1n << 256n)).toString(16).padStart(64, '0');
    let pairSum = 0n;
    let consumerSum = 0n;
    let producerSum = 0n;
    const consumers: Record<string, unknown>[] = [];
    const sessions: Record<string, unknown>[] = [];
    for (const frame of frames.slice(1, -1)) {
      for (const pair of (frame.pairs as { pairs?: { key: Uint8Array; value: Uint8Array }[] } | undefined)?.pairs ?? []) {
        pairSum += sha(u64(pair.key.byteLength), pair.key, pair.value);
      }
      consumers.push(...((frame.consumers as { consumers?: Record<string, unknown>[] } | undefined)?.consumers ?? []));
      sessions.push(...((frame.producers as { sessions?: Record<string, unknown>[] } | undefined)?.sessions ?? []));
    }
    for (const c of consumers)
      consumerSum += t('consumer', c.name as string, c.position as number, c.committedAtMs as number, c.commitEntryIndex as number);
    for (const session of sessions) {
      const id = session.id as number;
      producerSum += t('producer', id, session.lastIndex as number, session.acknowledgedBelow as number);
      for (const w of session.writes as Record<string, unknown>[]) {
        const details =
          w.op === 'delete' ? [w.existed as boolean] : w.op === 'cas' ? [w.succeeded as boolean, w.found as boolean, w.current as Uint8Array] : [];
        producerSum += t('producer-write', id, w.sequence as number, w.index as number, w.term as number, w.op as string, ...details);
      }
    }
    expect(consumers.map((c) => [c.name, c.position])).toEqual([
      ['billing', 3000],
      ['search-index', 12],
    ]);
    // Write 1 was acknowledged by write 3's stamp and forgotten; 2 and 3 are remembered.
    expect((sessions[0]!.writes as { sequence: number }[]).map((w) => w.sequence)).toEqual([2, 3]);
    const digest = createHash('sha256')
      .update('raftlog-kv-v1')
      .update(u64(header.index as number))
      .update(hex(pairSum))
      .update(u64(header.recordCount as number))
      .update(header.recordChain as Uint8Array)
      .update('consumers')
      .update(u64(consumers.length))
      .update(hex(consumerSum))
      .update('producers')
      .update(u64(sessions.length))
      .update(hex(producerSum))
      .digest('hex');
    expect(digest).toBe(kv.digest());
    expect(Buffer.from(header.digest as Uint8Array).toString('hex')).toBe(digest);
  });

  it('a version 1 file (before consumers and producer sessions) is still read, as a state with none', async () => {
    const kv = new KvStateMachine();
    applyAll(kv, puts(50));
    const info = await writeKvSnapshot(dir, kv, metaAt(kv));
    const path = join(dir, info.file);
    const frames = splitFrames(await readFile(path));
    const header = decode((frames[0] as Frame).payload).header as Record<string, unknown>;
    const trailer = decode((frames.at(-1) as Frame).payload).trailer as Record<string, unknown>;
    // Version 1 had no such fields; protobuf leaves them out when they are zero.
    await writeFile(
      path,
      joinFrames([
        encode({ header: { ...header, formatVersion: 1, consumerCount: 0, producerCount: 0 } }),
        ...frames.slice(1, -1).map((f) => f.payload),
        encode({ trailer: { frameCount: trailer.frameCount, pairCount: trailer.pairCount } }),
      ]),
    );
    const read = await readKvSnapshot(path);
    expect(read.digest).toBe(kv.digest());
    expect(read.kv.consumers()).toEqual([]);
    expect(read.kv.producerCount).toBe(0);
  });
});

describe('a damaged snapshot is reported with its path and where, never restored', () => {
  it('a file cut inside a frame is truncated', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    const cutFrame = frames[2] as Frame;
    await writeFile(path, file.subarray(0, cutFrame.offset + 20));
    await expectCorrupt(path, new RegExp(`truncated: file ends inside frame 2 at offset ${cutFrame.offset}`));
  });

  it('a file cut inside a frame length is truncated', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    await writeFile(path, file.subarray(0, (frames[1] as Frame).offset + 3));
    await expectCorrupt(path, /truncated: file ends inside the length and checksum of frame 1/);
  });

  it('a file cut between frames, before the trailer, is truncated', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    await writeFile(path, file.subarray(0, (frames.at(-1) as Frame).offset));
    await expectCorrupt(path, /truncated: no trailer/);
  });

  it('an empty file is truncated, for the full read and the header read', async () => {
    const path = join(dir, snapshotFileName({ index: 1, term: 1 }));
    await writeFile(path, Buffer.alloc(0));
    await expectCorrupt(path, /truncated: the file is empty/);
    await expect(readSnapshotHeader(path)).rejects.toThrow(SnapshotCorruptionError);
  });

  it('a flipped byte fails the checksum of its frame, named with its offset', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    const target = frames[2] as Frame;
    const damaged = Buffer.from(file);
    flipBits(damaged, target.offset + 8 + 100, 0x01);
    await writeFile(path, damaged);
    await expectCorrupt(path, new RegExp(`frame 2 at offset ${target.offset}: checksum mismatch`));
  });

  it('a flipped byte in the header fails the header read too', async () => {
    const { path, file } = await sampleFile();
    const damaged = Buffer.from(file);
    flipBits(damaged, 12, 0x40);
    await writeFile(path, damaged);
    await expect(readSnapshotHeader(path)).rejects.toThrow(/frame 0 at offset 0: checksum mismatch/);
    await expectCorrupt(path, /frame 0 at offset 0: checksum mismatch/);
  });

  it('a damaged length that no frame could have is reported, not allocated', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    const damaged = Buffer.from(file);
    damaged.writeUInt32BE(0xfffffff0, (frames[1] as Frame).offset);
    await writeFile(path, damaged);
    await expectCorrupt(path, new RegExp(`frame 1 at offset ${(frames[1] as Frame).offset} declares 4294967280 bytes`));
  });

  it('the header only checks the header: a damaged pair frame shows in the full read', async () => {
    const { path, file, kv } = await sampleFile();
    const frames = splitFrames(file);
    const damaged = Buffer.from(file);
    flipBits(damaged, (frames[1] as Frame).offset + 30, 0xff);
    await writeFile(path, damaged);
    expect((await readSnapshotHeader(path)).digest).toBe(kv.digest());
    await expectCorrupt(path, /frame 1 at offset \d+: checksum mismatch/);
  });

  it('an unknown format version is refused by both reads', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    const header = decode((frames[0] as Frame).payload);
    const forged = encode({ header: { ...(header.header as object), formatVersion: 3 } });
    await writeFile(path, joinFrames([forged, ...frames.slice(1).map((f) => f.payload)]));
    await expectCorrupt(path, /format version 3 is not supported \(this build reads versions 1 and 2\)/);
    await expect(readSnapshotHeader(path)).rejects.toThrow(/format version 3 is not supported/);
  });

  it('a file that is not a snapshot is refused', async () => {
    const path = join(dir, 'not-a-snapshot');
    await writeFile(path, joinFrames([encode({ header: { magic: 'something else', formatVersion: 1 } })]));
    await expectCorrupt(path, /not a raftlog snapshot/);
  });

  it('a missing pair frame, its checksum intact, breaks the counts', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file);
    expect(frames.length).toBeGreaterThan(3);
    await writeFile(path, joinFrames(frames.filter((_, i) => i !== 1).map((f) => f.payload)));
    await expectCorrupt(path, /trailer counts \d+ frames before it/);
  });

  it('bytes after the trailer are refused', async () => {
    const { path, file } = await sampleFile();
    await writeFile(path, Buffer.concat([file, Buffer.from([1, 2, 3])]));
    await expectCorrupt(path, new RegExp(`3 stray bytes after the trailer, at offset ${file.byteLength}`));
    const frames = splitFrames(file);
    await writeFile(path, Buffer.concat([file, joinFrames([(frames[1] as Frame).payload])]));
    await expectCorrupt(path, new RegExp(`frame ${frames.length} at offset ${file.byteLength} follows the trailer`));
  });

  it('a key stored twice is refused with its frame', async () => {
    const { path, file } = await sampleFile();
    const frames = splitFrames(file).map((f) => decode(f.payload));
    const pairs = (frames[1]!.pairs as { pairs: { key: Uint8Array; value: Uint8Array }[] }).pairs;
    const first = pairs[0] as { key: Uint8Array; value: Uint8Array };
    // Replace the second pair with a copy of the first, so every count still agrees.
    pairs[1] = { key: first.key, value: first.value };
    await writeFile(path, joinFrames(frames.map(encode)));
    await expectCorrupt(path, /frame 1 at offset \d+: key [0-9a-f]+ \(hex\) appears twice/);
  });

  it('a state that does not match the header digest is refused', async () => {
    const { path, file, kv } = await sampleFile();
    const frames = splitFrames(file).map((f) => decode(f.payload));
    const pairs = (frames[1]!.pairs as { pairs: { key: Uint8Array; value: Uint8Array }[] }).pairs;
    const first = pairs[0] as { key: Uint8Array; value: Uint8Array };
    pairs[0] = { key: first.key, value: bytes('a value written by no one') };
    await writeFile(path, joinFrames(frames.map(encode)));
    await expectCorrupt(path, new RegExp(`the restored state's digest [0-9a-f]{64} differs from the header's ${kv.digest()}`));
  });

  it('consumers and producer sessions are checked like pairs: order of sections, counts, duplicates, digest', async () => {
    const { path, file, kv } = await sampleFile();
    const decoded = splitFrames(file).map((f) => decode(f.payload));
    const at = (kind: string) => decoded.findIndex((frame) => frame[kind] !== undefined && frame[kind] !== null);
    const consumersAt = at('consumers');
    const producersAt = at('producers');
    expect(consumersAt).toBeGreaterThan(1);
    expect(producersAt).toBe(consumersAt + 1);

    // The consumers frame moved before the pairs.
    const reordered = [...decoded];
    const [consumers] = reordered.splice(consumersAt, 1);
    reordered.splice(1, 0, consumers as Record<string, unknown>);
    await writeFile(path, joinFrames(reordered.map(encode)));
    await expectCorrupt(path, /frame \d+ at offset \d+ is a pairs frame after consumers frames/);

    // A consumer named twice.
    const twice = decoded.map((frame) => structuredClone(frame));
    const list = (twice[consumersAt]!.consumers as { consumers: Record<string, unknown>[] }).consumers;
    list[1] = { ...list[1], name: list[0]?.name };
    await writeFile(path, joinFrames(twice.map(encode)));
    await expectCorrupt(path, new RegExp(`frame ${consumersAt} at offset \\d+: consumer "billing" appears twice`));

    // A position changed: every count agrees, the digest does not.
    const moved = decoded.map((frame) => structuredClone(frame));
    const first = (moved[consumersAt]!.consumers as { consumers: Record<string, unknown>[] }).consumers[0] as Record<string, unknown>;
    first.position = (first.position as number) + 1;
    await writeFile(path, joinFrames(moved.map(encode)));
    await expectCorrupt(path, new RegExp(`the restored state's digest [0-9a-f]{64} differs from the header's ${kv.digest()}`));

    // The producers frame dropped: the counts disagree.
    await writeFile(path, joinFrames(decoded.filter((_, i) => i !== producersAt).map(encode)));
    await expectCorrupt(path, /trailer counts \d+ frames before it/);
  });

  it('a missing file is an ordinary file-system error, not corruption', async () => {
    const path = join(dir, 'absent.snap');
    const error = await readKvSnapshot(path).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(SnapshotCorruptionError);
    expect((error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});
