import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import protobuf from 'protobufjs';
import type { ClusterConfig, Entry, EntryKind, HardState } from '../raft/types.js';
import type { SnapshotFileRef } from './level-storage.js';

const root = protobuf.loadSync(fileURLToPath(new URL('../../proto/raftlog/v1/storage.proto', import.meta.url)));
const LogEntryType = root.lookupType('raftlog.v1.storage.LogEntry');
const HardStateType = root.lookupType('raftlog.v1.storage.HardState');
const ClusterConfigType = root.lookupType('raftlog.v1.storage.ClusterConfig');
const SnapshotRecordType = root.lookupType('raftlog.v1.storage.SnapshotRecord');
const CompactedPointType = root.lookupType('raftlog.v1.storage.CompactedPoint');
const DeletedBeforeType = root.lookupType('raftlog.v1.storage.DeletedBefore');
const JournalAppliedType = root.lookupType('raftlog.v1.storage.JournalApplied');
const ClusterIdentityType = root.lookupType('raftlog.v1.storage.ClusterIdentity');
const MemberIdentityType = root.lookupType('raftlog.v1.storage.MemberIdentity');

const KIND_TO_WIRE: Record<EntryKind, number> = { command: 1, noop: 2, config: 3 };
const WIRE_TO_KIND = new Map<number, EntryKind>([
  [1, 'command'],
  [2, 'noop'],
  [3, 'config'],
]);
const TO_OBJECT = { longs: Number, defaults: true } as const;

/** A stored value did not decode; the caller names the record and the file. */
export class RecordError extends Error {}

/** Prefixes the payload with its CRC-32, so that a flipped bit on disk is found on read. */
function seal(payload: Uint8Array): Uint8Array {
  const value = new Uint8Array(4 + payload.byteLength);
  new DataView(value.buffer).setUint32(0, crc32(payload));
  value.set(payload, 4);
  return value;
}

function unseal(value: Uint8Array): Uint8Array {
  if (value.byteLength < 4) throw new RecordError(`record of ${value.byteLength} bytes is too short for its checksum`);
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
  const payload = value.subarray(4);
  const computed = crc32(payload);
  if (stored !== computed) {
    throw new RecordError(
      `checksum mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`,
    );
  }
  return payload;
}

function decodeMessage(type: protobuf.Type, value: Uint8Array): Record<string, unknown> {
  const payload = unseal(value);
  try {
    return type.toObject(type.decode(payload), TO_OBJECT);
  } catch (error) {
    throw new RecordError(`undecodable ${type.name}: ${(error as Error).message}`);
  }
}

export function encodeEntry(entry: Entry): Uint8Array {
  const message = LogEntryType.create({
    index: entry.index,
    term: entry.term,
    kind: KIND_TO_WIRE[entry.kind],
    data: entry.data,
  });
  return seal(LogEntryType.encode(message).finish());
}

export function decodeEntry(value: Uint8Array): Entry {
  const object = decodeMessage(LogEntryType, value);
  const kind = WIRE_TO_KIND.get(object.kind as number);
  if (kind === undefined) throw new RecordError(`unknown entry kind ${String(object.kind)}`);
  return {
    index: object.index as number,
    term: object.term as number,
    kind,
    data: new Uint8Array(object.data as Uint8Array),
  };
}

export function encodeHardState(state: HardState): Uint8Array {
  const message = HardStateType.create({ term: state.term, votedFor: state.votedFor ?? '', commit: state.commit });
  return seal(HardStateType.encode(message).finish());
}

export function decodeHardState(value: Uint8Array): HardState {
  const object = decodeMessage(HardStateType, value);
  const votedFor = object.votedFor as string;
  return { term: object.term as number, votedFor: votedFor === '' ? null : votedFor, commit: object.commit as number };
}

export function encodeConfig(config: ClusterConfig): Uint8Array {
  return seal(ClusterConfigType.encode(ClusterConfigType.create(configFields(config))).finish());
}

export function decodeConfig(value: Uint8Array): ClusterConfig {
  const object = decodeMessage(ClusterConfigType, value);
  return configFrom(object);
}

export function encodeSnapshotRecord(ref: SnapshotFileRef): Uint8Array {
  const message = SnapshotRecordType.create({
    index: ref.meta.index,
    term: ref.meta.term,
    config: configFields(ref.meta.config),
    file: ref.file,
    bytes: ref.bytes,
    sha256: Buffer.from(ref.sha256, 'hex'),
  });
  return seal(SnapshotRecordType.encode(message).finish());
}

export function decodeSnapshotRecord(value: Uint8Array): SnapshotFileRef {
  const object = decodeMessage(SnapshotRecordType, value);
  const sha256 = object.sha256 as Uint8Array;
  if (sha256.byteLength !== 32) throw new RecordError(`snapshot checksum of ${sha256.byteLength} bytes, not 32`);
  const file = object.file as string;
  if (file === '') throw new RecordError('snapshot record names no file');
  const config = object.config as Record<string, unknown> | null;
  return {
    meta: { index: object.index as number, term: object.term as number, config: configFrom(config ?? {}) },
    file,
    bytes: object.bytes as number,
    sha256: Buffer.from(sha256).toString('hex'),
  };
}

/** Which cluster a data directory belongs to (key "i"). */
export interface ClusterIdentityRecord {
  /** 16 lowercase hex digits. */
  readonly clusterId: string;
  /** The cluster's name (--cluster) when the directory was created. */
  readonly name: string;
}

/** Which member of the cluster a data directory belongs to (key "m"). */
export interface MemberIdentityRecord {
  readonly memberId: string;
  /** 16 lowercase hex digits, random, drawn when the directory was created. */
  readonly incarnation: string;
}

/** Cluster ids and member incarnations: 64 bits as 16 lowercase hex digits. */
export const IDENTITY_HEX = /^[0-9a-f]{16}$/;

export function encodeClusterIdentity(identity: ClusterIdentityRecord): Uint8Array {
  checkIdentityFields(identity.clusterId, 'cluster id', identity.name, 'cluster name');
  const message = ClusterIdentityType.create({ clusterId: identity.clusterId, name: identity.name });
  return seal(ClusterIdentityType.encode(message).finish());
}

export function decodeClusterIdentity(value: Uint8Array): ClusterIdentityRecord {
  const object = decodeMessage(ClusterIdentityType, value);
  const identity = { clusterId: object.clusterId as string, name: object.name as string };
  checkIdentityFields(identity.clusterId, 'cluster id', identity.name, 'cluster name');
  return identity;
}

export function encodeMemberIdentity(identity: MemberIdentityRecord): Uint8Array {
  checkIdentityFields(identity.incarnation, 'member incarnation', identity.memberId, 'member id');
  const message = MemberIdentityType.create({ memberId: identity.memberId, incarnation: identity.incarnation });
  return seal(MemberIdentityType.encode(message).finish());
}

export function decodeMemberIdentity(value: Uint8Array): MemberIdentityRecord {
  const object = decodeMessage(MemberIdentityType, value);
  const identity = { memberId: object.memberId as string, incarnation: object.incarnation as string };
  checkIdentityFields(identity.incarnation, 'member incarnation', identity.memberId, 'member id');
  return identity;
}

function checkIdentityFields(hex: string, hexName: string, text: string, textName: string): void {
  if (!IDENTITY_HEX.test(hex)) throw new RecordError(`${hexName} ${JSON.stringify(hex)} is not 16 lowercase hex digits`);
  if (text === '') throw new RecordError(`${textName} is empty`);
}

/** The last compacted entry: the held entries start right after it. */
export interface CompactedPoint {
  readonly index: number;
  readonly term: number;
}

export function encodeCompactedPoint(point: CompactedPoint): Uint8Array {
  return seal(CompactedPointType.encode(CompactedPointType.create({ index: point.index, term: point.term })).finish());
}

export function decodeCompactedPoint(value: Uint8Array): CompactedPoint {
  const object = decodeMessage(CompactedPointType, value);
  return { index: object.index as number, term: object.term as number };
}

/** Every entry before this index is deleted; see DeletedBefore in storage.proto. */
export function encodeDeletedBefore(index: number): Uint8Array {
  return seal(DeletedBeforeType.encode(DeletedBeforeType.create({ index })).finish());
}

export function decodeDeletedBefore(value: Uint8Array): number {
  return decodeMessage(DeletedBeforeType, value).index as number;
}

/** The last journal record (journal.ts) whose write LevelDB holds: records after it are replayed at open. */
export function encodeJournalApplied(seq: number): Uint8Array {
  return seal(JournalAppliedType.encode(JournalAppliedType.create({ seq })).finish());
}

export function decodeJournalApplied(value: Uint8Array): number {
  return decodeMessage(JournalAppliedType, value).seq as number;
}

export const HARD_STATE_KEY = new Uint8Array([0x68]); // "h"
export const JOURNAL_APPLIED_KEY = new Uint8Array([0x6a]); // "j"
export const CONFIG_KEY = new Uint8Array([0x63]); // "c"
export const SNAPSHOT_KEY = new Uint8Array([0x73]); // "s"
export const COMPACTED_KEY = new Uint8Array([0x70]); // "p"
export const CLUSTER_IDENTITY_KEY = new Uint8Array([0x69]); // "i"
export const MEMBER_IDENTITY_KEY = new Uint8Array([0x6d]); // "m"
export const DELETED_BEFORE_KEY = new Uint8Array([0x64]); // "d"
const ENTRY_PREFIX = 0x65; // "e"
export const ENTRY_RANGE = { gte: new Uint8Array([ENTRY_PREFIX]), lt: new Uint8Array([ENTRY_PREFIX + 1]) };

export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = ENTRY_PREFIX;
  new DataView(key.buffer).setBigUint64(1, BigInt(index));
  return key;
}

export function indexOfEntryKey(key: Uint8Array): number {
  if (key.byteLength !== 9 || key[0] !== ENTRY_PREFIX) throw new RecordError(`malformed entry key of ${key.byteLength} bytes`);
  return Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(1));
}

/** A configuration as the storage records carry it (voters, learners, addresses). */
function configFields(config: ClusterConfig): { voters: string[]; learners: string[]; addresses: Record<string, string>; removed: string[] } {
  return {
    voters: [...config.voters],
    learners: [...(config.learners ?? [])],
    addresses: { ...(config.addresses ?? {}) },
    removed: [...(config.removed ?? [])],
  };
}

function configFrom(object: Record<string, unknown>): ClusterConfig {
  const learners = (object.learners as string[] | undefined) ?? [];
  const addresses = (object.addresses as Record<string, string> | undefined) ?? {};
  const removed = (object.removed as string[] | undefined) ?? [];
  return {
    voters: (object.voters as string[] | undefined) ?? [],
    ...(learners.length > 0 ? { learners } : {}),
    ...(Object.keys(addresses).length > 0 ? { addresses } : {}),
    ...(removed.length > 0 ? { removed } : {}),
  };
}
