import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ProducerStamp } from './producer-sessions.js';

const root = protobuf.loadSync(fileURLToPath(new URL('../../proto/raftlog/v1/command.proto', import.meta.url)));
const CommandType = root.lookupType('raftlog.v1.command.Command');

/** A write to the key-value state or the record log; a producer's stamp makes it exactly-once. */
export type KvWrite =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: Uint8Array }
  | { readonly op: 'cas'; readonly key: Uint8Array; readonly expected: Uint8Array | null; readonly value: Uint8Array }
  | { readonly op: 'append'; readonly record: Uint8Array };

export type KvCommandBody =
  | (KvWrite & { readonly producer?: ProducerStamp })
  | { readonly op: 'commit-position'; readonly consumer: string; readonly position: number; readonly allowBackwards: boolean }
  | { readonly op: 'delete-consumer'; readonly consumer: string }
  | { readonly op: 'register-producer' };

/** A command as the log carries it: what to do, and when the leader proposed it (ms since the epoch; 0 if not recorded). */
export type KvCommand = KvCommandBody & { readonly proposedAtMs?: number };

export function encodeCommand(command: KvCommand): Uint8Array {
  const message: Record<string, unknown> = {};
  switch (command.op) {
    case 'put':
      message.put = { key: command.key, value: command.value };
      break;
    case 'delete':
      message.delete = { key: command.key };
      break;
    case 'cas':
      message.compareAndSwap = {
        key: command.key,
        expected: command.expected ?? new Uint8Array(0),
        expectAbsent: command.expected === null,
        value: command.value,
      };
      break;
    case 'append':
      message.append = { record: command.record };
      break;
    case 'commit-position':
      message.commitPosition = { consumer: command.consumer, position: command.position, allowBackwards: command.allowBackwards };
      break;
    case 'delete-consumer':
      message.deleteConsumer = { consumer: command.consumer };
      break;
    case 'register-producer':
      message.registerProducer = {};
      break;
  }
  if ('producer' in command && command.producer !== undefined) message.producer = command.producer;
  if (command.proposedAtMs !== undefined && command.proposedAtMs > 0) message.proposedAtMs = command.proposedAtMs;
  return CommandType.encode(CommandType.create(message)).finish();
}

const TO_OBJECT = { oneofs: true, longs: Number } as const;

/** Decodes a command, or returns null for bytes that are not one (applied as a no-op by every replica alike). */
export function decodeCommand(data: Uint8Array): KvCommand | null {
  let object: Record<string, unknown>;
  try {
    object = CommandType.toObject(CommandType.decode(data), TO_OBJECT);
  } catch {
    return null;
  }
  const bytes = (value: unknown): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(0));
  const count = (value: unknown): number => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0);
  const extras = (): { proposedAtMs?: number; producer?: ProducerStamp } => {
    const out: { proposedAtMs?: number; producer?: ProducerStamp } = {};
    if (object.proposedAtMs !== undefined) out.proposedAtMs = count(object.proposedAtMs);
    const producer = object.producer as Record<string, unknown> | undefined;
    if (producer !== undefined && producer !== null) {
      out.producer = { id: count(producer.id), sequence: count(producer.sequence), acknowledgedBelow: count(producer.acknowledgedBelow) };
    }
    return out;
  };
  const when = (): { proposedAtMs?: number } => (object.proposedAtMs === undefined ? {} : { proposedAtMs: count(object.proposedAtMs) });
  switch (object.op) {
    case 'put': {
      const put = object.put as Record<string, unknown>;
      return { op: 'put', key: bytes(put.key), value: bytes(put.value), ...extras() };
    }
    case 'delete':
      return { op: 'delete', key: bytes((object.delete as Record<string, unknown>).key), ...extras() };
    case 'compareAndSwap': {
      const cas = object.compareAndSwap as Record<string, unknown>;
      return {
        op: 'cas',
        key: bytes(cas.key),
        expected: cas.expectAbsent === true ? null : bytes(cas.expected),
        value: bytes(cas.value),
        ...extras(),
      };
    }
    case 'append':
      return { op: 'append', record: bytes((object.append as Record<string, unknown>).record), ...extras() };
    case 'commitPosition': {
      const commit = object.commitPosition as Record<string, unknown>;
      return {
        op: 'commit-position',
        consumer: typeof commit.consumer === 'string' ? commit.consumer : '',
        position: count(commit.position),
        allowBackwards: commit.allowBackwards === true,
        ...when(),
      };
    }
    case 'deleteConsumer': {
      const consumer = (object.deleteConsumer as Record<string, unknown>).consumer;
      return { op: 'delete-consumer', consumer: typeof consumer === 'string' ? consumer : '', ...when() };
    }
    case 'registerProducer':
      return { op: 'register-producer', ...when() };
    default:
      return null;
  }
}
