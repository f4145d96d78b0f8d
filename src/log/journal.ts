/**
 * The log's journal: a write made durable by one synchronous append and
 * fdatasync on the caller's thread, for the writes that nothing else waits
 * to send (a follower's appends). LevelDB's own fsync'd write completes on a
 * libuv thread, and waking the event loop for that completion is, at one
 * write at a time, a large part of a follower's answer time; the journal's
 * fdatasync costs the same disk time without the hop. Writes that others
 * wait on (a leader's: its appends must leave meanwhile) use appendAsync,
 * the fdatasync on a libuv thread: still cheaper than LevelDB's fsync'd
 * write, whose log file grows. The same write then goes to LevelDB without
 * fsync, in the background (level-storage.ts).
 *
 * Files: `journal/<first sequence number>.journal` in the data directory,
 * each a run of records `[u32 length][u32 CRC-32 of the payload][payload]`,
 * the payload `[u64 sequence][u8 flags][hard state?][u32 count][entries]`,
 * the hard state and each entry as the log stores them in LevelDB (sealed by
 * their own checksums), each preceded by its u32 length. A new file starts
 * once the current one holds SEGMENT_BYTES; the log deletes files whose
 * records a fsync'd LevelDB write holds.
 *
 * A file is made SEGMENT_BYTES long (zeros, sparse) when it starts, and that
 * size made durable once: an append then changes no file size, so its
 * fdatasync writes the data alone, without a metadata commit of the file
 * system's own journal (on this VM's ext4, 85-100 us against 125-180 us for
 * a file that grows; etcd preallocates its WAL files for the same reason).
 * Zeros from a record's start to the end of the file are that unused space.
 *
 * A crash can leave the last record of the last file cut short (only that
 * record's append was under way, and it was never acknowledged): reading
 * stops there. Anything else that does not check out is corruption, reported
 * with the file and the byte offset, never skipped.
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Entry, HardState } from '../raft/types.js';
import { decodeEntry, decodeHardState, encodeEntry, encodeHardState, RecordError } from './codec.js';
import { LogCorruptionError } from './errors.js';

/** The journal's folder inside the data directory. */
export const JOURNAL_DIR_NAME = 'journal';
/** A file holds at least this much before the next record starts a new one. */
export const SEGMENT_BYTES = 4 * 1024 * 1024;

const FILE_NAME = /^(\d{16})\.journal$/;
const HEADER_BYTES = 8;
const HAS_HARD_STATE = 1;
/** The shortest payload a record has: sequence, flags and entry count. */
const MIN_PAYLOAD_BYTES = 8 + 1 + 4;

/** One journaled write: as LevelLogStorage.save takes it (entries replace the log from entries[0].index onward). */
export interface JournalRecord {
  /** 1, 2, 3, ... over the directory's life: which records LevelDB holds is a number (see level-storage.ts). */
  readonly seq: number;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
}

/** What the journal's folder held at open. */
export interface JournalContents {
  readonly records: readonly JournalRecord[];
  /** The cut-short last record a crash left, if any: where it starts. */
  readonly torn: { readonly file: string; readonly offset: number } | null;
}

interface Segment {
  readonly firstSeq: number;
  readonly file: string;
}

export class Journal {
  private fd: number | null = null;
  private segmentBytes = 0;
  /** Files written, oldest first; the last is the one being appended to (when fd is open). */
  private readonly segments: Segment[];

  private constructor(
    readonly dir: string,
    segments: Segment[],
    private nextSeq: number,
  ) {
    this.segments = segments;
  }

  /** Reads every record in `<dataDir>/journal` (creating the folder); `open` then continues after `lastSeq`. */
  static async read(dataDir: string): Promise<{ contents: JournalContents; segments: readonly Segment[] }> {
    const dir = join(dataDir, JOURNAL_DIR_NAME);
    // A folder just made must outlive a crash as surely as the files written into it.
    if ((await mkdir(dir, { recursive: true })) !== undefined) syncDir(dataDir);
    const segments = listSegments(dir);
    const records: JournalRecord[] = [];
    let torn: JournalContents['torn'] = null;
    segments.forEach((segment, i) => {
      torn = readSegment(dataDir, join(dir, segment.file), i === segments.length - 1, records);
    });
    return { contents: { records, torn }, segments };
  }

  /** A journal whose next record gets `nextSeq`, the files listed still on disk (they are deleted by release). */
  static open(dataDir: string, segments: readonly Segment[], nextSeq: number): Journal {
    return new Journal(join(dataDir, JOURNAL_DIR_NAME), [...segments], nextSeq);
  }

  /** Files on disk, the one being appended to included. */
  get files(): number {
    return this.segments.length;
  }

  /**
   * Appends one record and, when `sync`, fdatasyncs it before returning.
   * Returns the record's sequence number and encoding.
   */
  append(hardState: HardState | null, entries: readonly Entry[], sync: boolean): { seq: number; encoded: EncodedRecord } {
    const { seq, encoded, fd } = this.write(hardState, entries);
    if (sync) fdatasyncSync(fd);
    return { seq, encoded };
  }

  /**
   * As append, but the fdatasync runs on a libuv thread: the caller's thread
   * goes on (a leader's appends travel meanwhile). The caller starts no other
   * append before this one settles.
   */
  async appendAsync(hardState: HardState | null, entries: readonly Entry[], sync: boolean): Promise<{ seq: number; encoded: EncodedRecord }> {
    const { seq, encoded, fd } = this.write(hardState, entries);
    if (sync) await new Promise<void>((resolve, reject) => fdatasync(fd, (error) => (error === null ? resolve() : reject(error))));
    return { seq, encoded };
  }

  /** Encodes the next record and writes it to the file (not yet durable). */
  private write(hardState: HardState | null, entries: readonly Entry[]): { seq: number; encoded: EncodedRecord; fd: number } {
    const seq = this.nextSeq;
    const encoded = encodeRecord(seq, hardState, entries);
    if (this.fd === null || this.segmentBytes >= SEGMENT_BYTES) this.startSegment(seq);
    const fd = this.fd as number;
    writeSync(fd, encoded.bytes);
    this.segmentBytes += encoded.bytes.byteLength;
    this.nextSeq = seq + 1;
    return { seq, encoded, fd };
  }

  /** Deletes the files every record of which is at or before `seq` (LevelDB holds them durably). */
  release(seq: number): void {
    while (this.segments.length > 1) {
      const following = this.segments[1] as Segment;
      if (following.firstSeq - 1 > seq) break;
      const done = this.segments.shift() as Segment;
      unlinkSync(join(this.dir, done.file));
    }
    const last = this.segments[this.segments.length - 1];
    // The file being appended to goes only once everything in it, and what is still to come, is held: at open, after replay.
    if (last !== undefined && this.fd === null && seq >= this.nextSeq - 1) {
      this.segments.pop();
      unlinkSync(join(this.dir, last.file));
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private startSegment(firstSeq: number): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const file = `${String(firstSeq).padStart(16, '0')}.journal`;
    const fd = openSync(join(this.dir, file), 'wx');
    ftruncateSync(fd, SEGMENT_BYTES);
    fsyncSync(fd);
    // The file's name must outlive a crash as surely as what is written to it.
    syncDir(this.dir);
    this.fd = fd;
    this.segmentBytes = 0;
    this.segments.push({ firstSeq, file });
  }
}

/** A record's bytes, and its hard state and entries as LevelDB stores them (encoded once for both). */
export interface EncodedRecord {
  readonly bytes: Uint8Array;
  readonly hardState: Uint8Array | null;
  readonly entries: readonly Uint8Array[];
}

function encodeRecord(seq: number, hardState: HardState | null, entries: readonly Entry[]): EncodedRecord {
  const hardStateBytes = hardState === null ? null : encodeHardState(hardState);
  const entryBytes = entries.map(encodeEntry);
  let payloadLength = 8 + 1 + 4 + (hardStateBytes === null ? 0 : 4 + hardStateBytes.byteLength);
  for (const bytes of entryBytes) payloadLength += 4 + bytes.byteLength;
  const out = new Uint8Array(HEADER_BYTES + payloadLength);
  const view = new DataView(out.buffer);
  let at = HEADER_BYTES;
  view.setUint32(at, Math.floor(seq / 2 ** 32));
  view.setUint32(at + 4, seq >>> 0);
  at += 8;
  out[at++] = hardStateBytes === null ? 0 : HAS_HARD_STATE;
  if (hardStateBytes !== null) {
    view.setUint32(at, hardStateBytes.byteLength);
    out.set(hardStateBytes, at + 4);
    at += 4 + hardStateBytes.byteLength;
  }
  view.setUint32(at, entryBytes.length);
  at += 4;
  for (const bytes of entryBytes) {
    view.setUint32(at, bytes.byteLength);
    out.set(bytes, at + 4);
    at += 4 + bytes.byteLength;
  }
  view.setUint32(0, payloadLength);
  view.setUint32(4, crc32(out.subarray(HEADER_BYTES)));
  return { bytes: out, hardState: hardStateBytes, entries: entryBytes };
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function listSegments(dir: string): Segment[] {
  const segments: Segment[] = [];
  for (const file of readdirSync(dir)) {
    const match = FILE_NAME.exec(file);
    if (match === null) throw new LogCorruptionError(dir, `journal file ${file}`, 'not a journal file name (<16 digits>.journal)');
    segments.push({ firstSeq: Number(match[1]), file });
  }
  return segments.sort((a, b) => a.firstSeq - b.firstSeq);
}

/**
 * Reads one file's records into `into`, checking that sequence numbers run on
 * from the previous record. Returns where a cut-short last record starts, if
 * this is the last file and it ends in one.
 */
function readSegment(dataDir: string, path: string, last: boolean, into: JournalRecord[]): JournalContents['torn'] {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.byteLength) {
    // The file's unused space (see the top of this file): no record starts here.
    if (isZeros(bytes.subarray(at))) break;
    const fail = (detail: string) => new LogCorruptionError(dataDir, `journal file ${path} at byte ${at}`, detail);
    const length = at + HEADER_BYTES <= bytes.byteLength ? view.getUint32(at) : -1;
    const end = at + HEADER_BYTES + length;
    const whole = length >= 0 && end <= bytes.byteLength;
    const sound = whole && length >= MIN_PAYLOAD_BYTES && view.getUint32(at + 4) === crc32(bytes.subarray(at + HEADER_BYTES, end));
    if (!sound) {
      // A crash during the last append leaves that record short, or its tail unwritten (zeros): it was never acknowledged.
      // (A record none of whose bytes reached the disk is the unused space above.)
      if (last && (!whole || isZeros(bytes.subarray(end)))) return { file: path, offset: at };
      throw fail(whole ? 'checksum mismatch' : `record of ${length} bytes runs past the end of the file (${bytes.byteLength} bytes)`);
    }
    let record: JournalRecord;
    try {
      record = decodePayload(bytes.subarray(at + HEADER_BYTES, end));
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error));
    }
    const previous = into[into.length - 1];
    if (previous !== undefined && record.seq !== previous.seq + 1) {
      throw fail(`record ${record.seq} follows record ${previous.seq}: records are missing`);
    }
    into.push(record);
    at = end;
  }
  return null;
}

function decodePayload(payload: Uint8Array): JournalRecord {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let at = 0;
  const need = (bytes: number) => {
    if (at + bytes > payload.byteLength) throw new RecordError(`payload of ${payload.byteLength} bytes ends inside a field at byte ${at}`);
  };
  const slice = (): Uint8Array => {
    need(4);
    const length = view.getUint32(at);
    need(4 + length);
    const out = payload.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    return out;
  };
  need(9);
  const seq = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
  const flags = payload[8] as number;
  at = 9;
  const hardState = (flags & HAS_HARD_STATE) !== 0 ? decodeHardState(slice()) : null;
  need(4);
  const count = view.getUint32(at);
  at += 4;
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(decodeEntry(slice()));
  if (at !== payload.byteLength) throw new RecordError(`${payload.byteLength - at} bytes left after the record's last entry`);
  for (let i = 1; i < entries.length; i++) {
    if ((entries[i] as Entry).index !== (entries[i - 1] as Entry).index + 1)
      throw new RecordError(`entries not contiguous at index ${(entries[i] as Entry).index}`);
  }
  return { seq, hardState, entries };
}

function isZeros(bytes: Uint8Array): boolean {
  // Word at a time where aligned: this runs over megabytes of unused space at every open.
  let at = 0;
  while (at < bytes.byteLength && (bytes.byteOffset + at) % 4 !== 0) if (bytes[at++] !== 0) return false;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + at, Math.floor((bytes.byteLength - at) / 4));
  for (const word of words) if (word !== 0) return false;
  for (at += words.length * 4; at < bytes.byteLength; at++) if (bytes[at] !== 0) return false;
  return true;
}
