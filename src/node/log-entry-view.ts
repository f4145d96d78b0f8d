import { emptyLogEntry, type WireLogEntryKind } from '../api/client-api.js';
import type { Entry } from '../raft/types.js';
import type { LogEntryReply } from './client-proto.js';
import { decodeCommand } from './kv-commands.js';

const EMPTY = new Uint8Array(0);

/** An entry with every field empty but its place and kind, for the views to fill in. */
export function entryShell(index: number, term: number, kind: WireLogEntryKind): LogEntryReply {
  return { ...emptyLogEntry<number, Uint8Array>(0, EMPTY), index, term, kind };
}

/** A log entry as ReadLog and the COMMANDS view show it: the command as written. */
export function describeEntry(entry: Entry): LogEntryReply {
  const command = entry.kind === 'command' ? decodeCommand(entry.data) : null;
  const described = entryShell(entry.index, entry.term, 'LOG_ENTRY_KIND_NO_COMMAND');
  described.proposedAtMs = command?.proposedAtMs ?? 0;
  if (command === null) return described;
  if ('producer' in command && command.producer !== undefined) {
    const { id, sequence, acknowledgedBelow } = command.producer;
    described.producer = { producerId: id, sequence, acknowledgedBelow };
  }
  switch (command.op) {
    case 'append':
      return { ...described, kind: 'LOG_ENTRY_KIND_APPEND', record: command.record };
    case 'put':
      return { ...described, kind: 'LOG_ENTRY_KIND_PUT', key: command.key, value: command.value };
    case 'delete':
      return { ...described, kind: 'LOG_ENTRY_KIND_DELETE', key: command.key };
    case 'cas':
      return {
        ...described,
        kind: 'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
        key: command.key,
        value: command.value,
        expected: command.expected ?? EMPTY,
        expectAbsent: command.expected === null,
      };
    case 'commit-position':
      return { ...described, kind: 'LOG_ENTRY_KIND_COMMIT_POSITION', consumer: command.consumer, position: command.position };
    case 'delete-consumer':
      return { ...described, kind: 'LOG_ENTRY_KIND_DELETE_CONSUMER', consumer: command.consumer };
    case 'register-producer':
      return { ...described, kind: 'LOG_ENTRY_KIND_REGISTER_PRODUCER' };
  }
}

/** The key an entry's filter by key prefix looks at, or null for an entry without one. */
export function keyOf(entry: LogEntryReply): Uint8Array | null {
  return entry.kind === 'LOG_ENTRY_KIND_PUT' || entry.kind === 'LOG_ENTRY_KIND_DELETE' || entry.kind === 'LOG_ENTRY_KIND_COMPARE_AND_SWAP'
    ? entry.key
    : null;
}

/** About the bytes an entry takes in a reply, to cut pages well under gRPC's message limit. */
export function entryBytes(entry: LogEntryReply): number {
  let bytes = 48 + entry.record.byteLength + entry.key.byteLength + entry.value.byteLength + entry.expected.byteLength + entry.consumer.length;
  for (const change of entry.changes) bytes += 16 + change.key.byteLength + change.before.byteLength + change.after.byteLength;
  return bytes;
}
