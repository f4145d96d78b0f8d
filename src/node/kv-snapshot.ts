import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import protobuf from 'protobufjs';
import type { SnapshotMeta } from '../raft/types.js';
import type { ConsumerPosition } from './consumer-positions.js';
import { KvRestoreError, type KvStateCapture, KvStateMachine } from './kv-state-machine.js';
import type { ProducerSessionState, RememberedWrite, WriteOutcome } from './producer-sessions.js';

// The file format is described in proto/raftlog/v1/snapshot.proto.
const root = protobuf.loadSync(fileURLToPath(new URL('../../proto/raftlog/v1/snapshot.proto', import.meta.url)));
const FrameType = root.lookupType('raftlog.v1.snapshot.SnapshotFrame');
const TO_OBJECT = { longs: Number, defaults: true, oneofs: true } as const;

const MAGIC = 'raftlog-kv-snapshot';
export const SNAPSHOT_FORMAT_VERSION = 2;
/** Versions this build reads: 1 (before consumers and producer sessions) and 2. */
const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];
const FRAME_HEADER_BYTES = 8;
/** Pair chunks are cut at about this many payload bytes. */
const CHUNK_TARGET_BYTES = 64 * 1024;
/** Far above any chunk the writer makes; a larger length read back is damage, not data. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Generous upper bound of a pair's protobuf overhead (tags and length varints). */
const PAIR_OVERHEAD_BYTES = 16;
const DIGEST_BYTES = 32;
const TMP_SUFFIX = '.tmp';

export interface SnapshotFileInfo {
  /** The file's name within the directory it was written to. */
  readonly file: string;
  readonly bytes: number;
  /** Hex SHA-256 of the whole file. */
  readonly sha256: string;
}

/** A snapshot file failed a check; nothing of it should be used. */
export class SnapshotCorruptionError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`corrupt snapshot ${path}: ${detail}`);
    this.name = 'SnapshotCorruptionError';
  }
}

/** Index padded to 20 digits, so that names sort in index order. */
export function snapshotFileName(meta: Pick<SnapshotMeta, 'index' | 'term'>): string {
  return `snap-${String(meta.index).padStart(20, '0')}-${meta.term}.snap`;
}

/** The index and term a snapshot file name carries, or null for any other name (a ".tmp" included). */
export function parseSnapshotFileName(name: string): { index: number; term: number } | null {
  const match = /^snap-(\d{20})-(\d+)\.snap$/.exec(name);
  if (match === null) return null;
  const index = Number(match[1]);
  const term = Number(match[2]);
  return Number.isSafeInteger(index) && Number.isSafeInteger(term) ? { index, term } : null;
}

/**
 * Writes kv's state as the snapshot `meta` describes into dir, durably: the
 * state is captured synchronously when this is called (applies may go on
 * while the file is written), streamed frame by frame into <name>.tmp,
 * fsync'd, renamed to <name>, and the directory fsync'd before this
 * resolves. On failure the .tmp file is removed.
 */
export async function writeKvSnapshot(
  dir: string,
  kv: KvStateMachine,
  meta: SnapshotMeta,
  /** Runs once the state is captured, before the file is written (a failpoint in tests). */
  beforeWrite?: () => Promise<void>,
): Promise<SnapshotFileInfo> {
  const capture = kv.capture();
  if (meta.index !== capture.appliedIndex) {
    throw new Error(`snapshot meta index ${meta.index} differs from the state machine's applied index ${capture.appliedIndex}`);
  }
  if (!Number.isSafeInteger(meta.term) || meta.term < 0) {
    throw new Error(`snapshot at index ${meta.index} has invalid term ${meta.term}`);
  }
  await beforeWrite?.();
  const name = snapshotFileName(meta);
  const path = join(dir, name);
  const tmpPath = path + TMP_SUFFIX;
  const handle = await open(tmpPath, 'w');
  let info: SnapshotFileInfo;
  try {
    try {
      info = await writeFrames(handle, capture, meta, name);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmpPath, path);
  } catch (error) {
    await rm(tmpPath, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
  return info;
}

async function writeFrames(handle: FileHandle, capture: KvStateCapture, meta: SnapshotMeta, name: string): Promise<SnapshotFileInfo> {
  const hash = createHash('sha256');
  let bytes = 0;
  let frames = 0;
  // One frame at a time: each write is awaited before the next frame is
  // encoded, so memory holds one chunk however large the state.
  const put = async (message: Record<string, unknown>): Promise<void> => {
    const frame = encodeFrame(message, name, frames);
    hash.update(frame);
    await writeFully(handle, frame);
    bytes += frame.byteLength;
    frames++;
  };

  await put({
    header: {
      magic: MAGIC,
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      index: meta.index,
      term: meta.term,
      voters: [...meta.config.voters],
      learners: [...(meta.config.learners ?? [])],
      addresses: { ...(meta.config.addresses ?? {}) },
      removed: [...(meta.config.removed ?? [])],
      digest: Buffer.from(capture.digest, 'hex'),
      pairCount: capture.pairCount,
      recordCount: capture.recordCount,
      recordChain: capture.recordChain,
      consumerCount: capture.consumers.length,
      producerCount: capture.producers.length,
    },
  });
  let chunk: { key: Uint8Array; value: Uint8Array }[] = [];
  let chunkBytes = 0;
  let pairs = 0;
  for (const [key, value] of capture.pairs()) {
    const size = key.byteLength + value.byteLength + PAIR_OVERHEAD_BYTES;
    if (chunk.length > 0 && chunkBytes + size > CHUNK_TARGET_BYTES) {
      await put({ pairs: { pairs: chunk } });
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push({ key, value });
    chunkBytes += size;
    pairs++;
  }
  if (chunk.length > 0) await put({ pairs: { pairs: chunk } });
  if (pairs !== capture.pairCount) {
    throw new Error(`snapshot ${name}: captured ${capture.pairCount} pairs but iterated ${pairs}`);
  }
  for (const part of chunked(capture.consumers, (consumer) => Buffer.byteLength(consumer.name) + 40)) {
    await put({ consumers: { consumers: part } });
  }
  for (const part of chunked(capture.producers, sessionBytes)) {
    await put({ producers: { sessions: part.map(encodeSession) } });
  }
  await put({
    trailer: { frameCount: frames, pairCount: pairs, consumerCount: capture.consumers.length, producerCount: capture.producers.length },
  });
  return { file: name, bytes, sha256: hash.digest('hex') };
}

/** Cuts items into chunks of about CHUNK_TARGET_BYTES (a chunk holds at least one item). */
function* chunked<T>(items: readonly T[], sizeOf: (item: T) => number): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (chunk.length > 0 && bytes + size > CHUNK_TARGET_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function sessionBytes(session: ProducerSessionState): number {
  return 32 + session.writes.reduce((sum, write) => sum + 48 + (write.outcome.op === 'cas' ? (write.outcome.current?.byteLength ?? 0) : 0), 0);
}

function encodeSession(session: ProducerSessionState): Record<string, unknown> {
  return {
    id: session.id,
    lastIndex: session.lastIndex,
    acknowledgedBelow: session.acknowledgedBelow,
    writes: session.writes.map((write) => {
      const { outcome } = write;
      return {
        sequence: write.sequence,
        index: write.index,
        term: write.term,
        op: outcome.op,
        existed: outcome.op === 'delete' && outcome.existed,
        succeeded: outcome.op === 'cas' && outcome.succeeded,
        found: outcome.op === 'cas' && outcome.current !== null,
        current: outcome.op === 'cas' && outcome.current !== null ? outcome.current : new Uint8Array(0),
      };
    }),
  };
}

function decodeSession(object: Record<string, unknown>, corrupt: Corrupt, where: string): ProducerSessionState {
  const number = (value: unknown, field: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      throw corrupt(`${where}: producer session ${field} ${String(value)} is out of range`);
    return value;
  };
  const id = number(object.id, 'id');
  const writes = ((object.writes as Record<string, unknown>[] | undefined) ?? []).map((write): RememberedWrite => {
    let outcome: WriteOutcome;
    switch (write.op) {
      case 'put':
      case 'append':
        outcome = { op: write.op };
        break;
      case 'delete':
        outcome = { op: 'delete', existed: write.existed === true };
        break;
      case 'cas':
        outcome = {
          op: 'cas',
          succeeded: write.succeeded === true,
          current: write.found === true ? new Uint8Array(write.current as Uint8Array) : null,
        };
        break;
      default:
        throw corrupt(`${where}: producer ${id} remembers a write of unknown kind ${JSON.stringify(write.op)}`);
    }
    return { sequence: number(write.sequence, 'sequence'), index: number(write.index, 'index'), term: number(write.term, 'term'), outcome };
  });
  return { id, lastIndex: number(object.lastIndex, 'last index'), acknowledgedBelow: number(object.acknowledgedBelow, 'acknowledged_below'), writes };
}

function encodeFrame(message: Record<string, unknown>, name: string, number: number): Buffer {
  const payload = FrameType.encode(message).finish();
  if (payload.byteLength > MAX_FRAME_BYTES) {
    throw new Error(`snapshot ${name}: frame ${number} of ${payload.byteLength} bytes exceeds the limit of ${MAX_FRAME_BYTES}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 0);
  frame.writeUInt32BE(crc32(payload), 4);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

async function writeFully(handle: FileHandle, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.byteLength) {
    const { bytesWritten } = await handle.write(data, written, data.byteLength - written);
    written += bytesWritten;
  }
}

/** Makes a rename in dir durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface DecodedHeader {
  readonly meta: SnapshotMeta;
  readonly digest: string;
  readonly pairCount: number;
  readonly recordCount: number;
  readonly recordChain: Uint8Array;
  readonly consumerCount: number;
  readonly producerCount: number;
}

function decodeConsumer(object: Record<string, unknown>, corrupt: Corrupt, where: string): ConsumerPosition {
  const numbers = ['position', 'committedAtMs', 'commitEntryIndex'] as const;
  for (const field of numbers) {
    const value = object[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw corrupt(`${where}: consumer ${field} ${String(value)} is out of range`);
  }
  return {
    name: String(object.name),
    position: object.position as number,
    committedAtMs: object.committedAtMs as number,
    commitEntryIndex: object.commitEntryIndex as number,
  };
}

/**
 * Reads a whole snapshot file as a stream, checking every frame, the order
 * and counts of frames, and at the end the restored state's digest against
 * the header's. Throws SnapshotCorruptionError naming the path and the frame
 * and offset of the first problem; errors of the file system (a missing
 * file) are thrown as they are.
 */
export async function readKvSnapshot(path: string): Promise<{ meta: SnapshotMeta; digest: string; kv: KvStateMachine }> {
  const corrupt = (detail: string) => new SnapshotCorruptionError(path, detail);
  let header: DecodedHeader | null = null;
  const builder = KvStateMachine.restoring();
  let pairs = 0;
  let consumers = 0;
  let producers = 0;
  // Frames come in sections, in this order; a frame of an earlier section after a later one is out of order.
  const sections = ['pairs', 'consumers', 'producers'] as const;
  let section = 0;
  const enter = (kind: (typeof sections)[number], where: string) => {
    const at = sections.indexOf(kind);
    if (at < section) throw corrupt(`${where} is a ${kind} frame after ${sections[section]} frames`);
    section = at;
  };
  const restoring = <T>(where: string, add: () => T): T => {
    try {
      return add();
    } catch (error) {
      if (error instanceof KvRestoreError) throw corrupt(`${where}: ${error.message}`);
      throw error;
    }
  };
  let trailerEnd: number | null = null;

  for await (const item of readFrames(createReadStream(path, { highWaterMark: CHUNK_TARGET_BYTES }), path)) {
    if (item.kind === 'leftover') {
      if (trailerEnd !== null) throw corrupt(`${item.bytes} stray bytes after the trailer, at offset ${item.offset}`);
      throw corrupt(
        item.bytes < FRAME_HEADER_BYTES
          ? `truncated: file ends inside the length and checksum of frame ${item.number} at offset ${item.offset} (${item.bytes} of ${FRAME_HEADER_BYTES} bytes)`
          : `truncated: file ends inside frame ${item.number} at offset ${item.offset} (${item.bytes} of ${item.needed} bytes)`,
      );
    }
    const where = `frame ${item.number} at offset ${item.offset}`;
    if (trailerEnd !== null) throw corrupt(`${where} follows the trailer`);
    const frame = decodeFrame(item.payload, corrupt, where);
    if (header === null) {
      if (frame.frame !== 'header') throw corrupt(`${where} is ${describeKind(frame.frame)}; the first frame must be the header`);
      header = decodeHeader(frame.header as Record<string, unknown>, corrupt, where);
      continue;
    }
    switch (frame.frame) {
      case 'pairs': {
        enter('pairs', where);
        const list = (frame.pairs as { pairs: { key: Uint8Array; value: Uint8Array }[] }).pairs;
        if (pairs + list.length > header.pairCount) {
          throw corrupt(`${where} brings the pairs to ${pairs + list.length}, more than the header's ${header.pairCount}`);
        }
        for (const pair of list) restoring(where, () => builder.add(pair.key, pair.value));
        pairs += list.length;
        break;
      }
      case 'consumers': {
        enter('consumers', where);
        const list = (frame.consumers as { consumers?: Record<string, unknown>[] }).consumers ?? [];
        if (consumers + list.length > header.consumerCount) {
          throw corrupt(`${where} brings the consumers to ${consumers + list.length}, more than the header's ${header.consumerCount}`);
        }
        for (const consumer of list) restoring(where, () => builder.addConsumer(decodeConsumer(consumer, corrupt, where)));
        consumers += list.length;
        break;
      }
      case 'producers': {
        enter('producers', where);
        const list = (frame.producers as { sessions?: Record<string, unknown>[] }).sessions ?? [];
        if (producers + list.length > header.producerCount) {
          throw corrupt(`${where} brings the producer sessions to ${producers + list.length}, more than the header's ${header.producerCount}`);
        }
        for (const session of list) restoring(where, () => builder.addProducer(decodeSession(session, corrupt, where)));
        producers += list.length;
        break;
      }
      case 'trailer': {
        const trailer = frame.trailer as { frameCount: number; pairCount: number; consumerCount: number; producerCount: number };
        if (trailer.frameCount !== item.number) {
          throw corrupt(`${where}: trailer counts ${trailer.frameCount} frames before it, but ${item.number} were read`);
        }
        if (trailer.pairCount !== pairs || pairs !== header.pairCount) {
          throw corrupt(`${where}: trailer counts ${trailer.pairCount} pairs and the header ${header.pairCount}, but ${pairs} were read`);
        }
        if (trailer.consumerCount !== consumers || consumers !== header.consumerCount) {
          throw corrupt(
            `${where}: trailer counts ${trailer.consumerCount} consumers and the header ${header.consumerCount}, but ${consumers} were read`,
          );
        }
        if (trailer.producerCount !== producers || producers !== header.producerCount) {
          throw corrupt(
            `${where}: trailer counts ${trailer.producerCount} producer sessions and the header ${header.producerCount}, but ${producers} were read`,
          );
        }
        trailerEnd = item.offset + FRAME_HEADER_BYTES + item.payload.byteLength;
        break;
      }
      case 'header':
        throw corrupt(`${where} is a second header`);
      default:
        throw corrupt(`${where} holds no known frame kind`);
    }
  }
  if (header === null) throw corrupt('truncated: the file is empty');
  if (trailerEnd === null) {
    throw corrupt(
      `truncated: no trailer after ${pairs} of ${header.pairCount} pairs, ${consumers} of ${header.consumerCount} consumers, ${producers} of ${header.producerCount} producer sessions`,
    );
  }

  let kv: KvStateMachine;
  try {
    kv = builder.finish({ appliedIndex: header.meta.index, recordCount: header.recordCount, recordChain: header.recordChain });
  } catch (error) {
    if (error instanceof KvRestoreError) throw corrupt(`header: ${error.message}`);
    throw error;
  }
  const restored = kv.digest();
  if (restored !== header.digest) {
    throw corrupt(`the restored state's digest ${restored} differs from the header's ${header.digest}`);
  }
  return { meta: header.meta, digest: header.digest, kv };
}

/**
 * Reads and checks only the first frame: the snapshot's meta and digest
 * without reading the state. It does not prove the rest of the file sound;
 * readKvSnapshot does.
 */
export async function readSnapshotHeader(path: string): Promise<{ meta: SnapshotMeta; digest: string }> {
  const corrupt = (detail: string) => new SnapshotCorruptionError(path, detail);
  const where = 'frame 0 at offset 0';
  const handle = await open(path, 'r');
  try {
    const prefix = await readExactly(handle, 0, FRAME_HEADER_BYTES);
    if (prefix.byteLength < FRAME_HEADER_BYTES) {
      throw corrupt(
        prefix.byteLength === 0
          ? 'truncated: the file is empty'
          : `truncated: file ends inside the length and checksum of ${where} (${prefix.byteLength} of ${FRAME_HEADER_BYTES} bytes)`,
      );
    }
    const length = prefix.readUInt32BE(0);
    if (length > MAX_FRAME_BYTES) throw corrupt(`${where} declares ${length} bytes, more than the limit of ${MAX_FRAME_BYTES}`);
    const payload = await readExactly(handle, FRAME_HEADER_BYTES, length);
    if (payload.byteLength < length) {
      throw corrupt(`truncated: file ends inside ${where} (${FRAME_HEADER_BYTES + payload.byteLength} of ${FRAME_HEADER_BYTES + length} bytes)`);
    }
    checkCrc(prefix.readUInt32BE(4), payload, corrupt, where);
    const frame = decodeFrame(payload, corrupt, where);
    if (frame.frame !== 'header') throw corrupt(`${where} is ${describeKind(frame.frame)}; the first frame must be the header`);
    const header = decodeHeader(frame.header as Record<string, unknown>, corrupt, where);
    return { meta: header.meta, digest: header.digest };
  } finally {
    await handle.close();
  }
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

type Corrupt = (detail: string) => SnapshotCorruptionError;

function checkCrc(stored: number, payload: Uint8Array, corrupt: Corrupt, where: string): void {
  const computed = crc32(payload);
  if (stored !== computed) {
    throw corrupt(`${where}: checksum mismatch (stored 0x${hex32(stored)}, computed 0x${hex32(computed)})`);
  }
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function decodeFrame(payload: Uint8Array, corrupt: Corrupt, where: string): Record<string, unknown> {
  try {
    return FrameType.toObject(FrameType.decode(payload), TO_OBJECT);
  } catch (error) {
    throw corrupt(`${where}: undecodable frame: ${(error as Error).message}`);
  }
}

function describeKind(kind: unknown): string {
  return typeof kind === 'string' ? `a ${kind} frame` : 'a frame of no known kind';
}

function decodeHeader(object: Record<string, unknown>, corrupt: Corrupt, where: string): DecodedHeader {
  if (object.magic !== MAGIC) throw corrupt(`${where}: not a raftlog snapshot (magic ${JSON.stringify(object.magic)})`);
  if (typeof object.formatVersion !== 'number' || !READABLE_FORMAT_VERSIONS.includes(object.formatVersion)) {
    throw corrupt(
      `${where}: format version ${String(object.formatVersion)} is not supported (this build reads versions ${READABLE_FORMAT_VERSIONS.join(' and ')})`,
    );
  }
  const digest = object.digest as Uint8Array;
  if (digest.byteLength !== DIGEST_BYTES) throw corrupt(`${where}: digest of ${digest.byteLength} bytes, expected ${DIGEST_BYTES}`);
  const chain = object.recordChain as Uint8Array;
  if (chain.byteLength !== DIGEST_BYTES) throw corrupt(`${where}: record chain of ${chain.byteLength} bytes, expected ${DIGEST_BYTES}`);
  const numbers = ['index', 'term', 'pairCount', 'recordCount', 'consumerCount', 'producerCount'] as const;
  for (const field of numbers) {
    const value = object[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw corrupt(`${where}: ${field} ${String(value)} is out of range`);
  }
  return {
    meta: {
      index: object.index as number,
      term: object.term as number,
      config: {
        voters: object.voters as string[],
        ...((object.learners as string[] | undefined)?.length ? { learners: object.learners as string[] } : {}),
        ...(Object.keys((object.addresses as Record<string, string> | undefined) ?? {}).length > 0
          ? { addresses: object.addresses as Record<string, string> }
          : {}),
        ...((object.removed as string[] | undefined)?.length ? { removed: object.removed as string[] } : {}),
      },
    },
    digest: Buffer.from(digest).toString('hex'),
    pairCount: object.pairCount as number,
    recordCount: object.recordCount as number,
    recordChain: chain,
    consumerCount: object.consumerCount as number,
    producerCount: object.producerCount as number,
  };
}

type FrameItem =
  | { readonly kind: 'frame'; readonly number: number; readonly offset: number; readonly payload: Buffer }
  /** Bytes at the end of the file that do not make a whole frame. */
  | { readonly kind: 'leftover'; readonly number: number; readonly offset: number; readonly bytes: number; readonly needed: number };

/**
 * Splits a byte stream into CRC-checked frames. Bytes are gathered in a list
 * and joined only once a whole frame is there, so each byte is copied about
 * once and memory holds about one frame plus one read.
 */
async function* readFrames(chunks: AsyncIterable<Buffer>, path: string): AsyncGenerator<FrameItem> {
  const corrupt = (detail: string) => new SnapshotCorruptionError(path, detail);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0;
  let number = 0;
  let needed = FRAME_HEADER_BYTES;

  for await (const chunk of chunks) {
    pending.push(chunk);
    pendingBytes += chunk.byteLength;
    if (pendingBytes < needed) continue;
    const buffer = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    let at = 0;
    for (;;) {
      needed = FRAME_HEADER_BYTES;
      if (buffer.byteLength - at < needed) break;
      const length = buffer.readUInt32BE(at);
      const where = `frame ${number} at offset ${offset}`;
      if (length > MAX_FRAME_BYTES) throw corrupt(`${where} declares ${length} bytes, more than the limit of ${MAX_FRAME_BYTES}`);
      needed = FRAME_HEADER_BYTES + length;
      if (buffer.byteLength - at < needed) break;
      const payload = buffer.subarray(at + FRAME_HEADER_BYTES, at + needed);
      checkCrc(buffer.readUInt32BE(at + 4), payload, corrupt, where);
      yield { kind: 'frame', number, offset, payload };
      at += needed;
      offset += needed;
      number++;
    }
    pending = at < buffer.byteLength ? [buffer.subarray(at)] : [];
    pendingBytes = buffer.byteLength - at;
  }
  if (pendingBytes > 0) yield { kind: 'leftover', number, offset, bytes: pendingBytes, needed };
}
