import protobuf from 'protobufjs';

const root = protobuf.loadSync(new URL('../../proto/raftlog/v1/command.proto', import.meta.url).pathname);
const CommandType = root.lookupType('raftlog.v1.command.Command');

export type KvCommand =
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: Uint8Array }
  | { readonly op: 'cas'; readonly key: Uint8Array; readonly expected: Uint8Array | null; readonly value: Uint8Array }
  | { readonly op: 'append'; readonly record: Uint8Array };

export function encodeCommand(command: KvCommand): Uint8Array {
  let message: Record<string, unknown>;
  switch (command.op) {
    case 'put':
      message = { put: { key: command.key, value: command.value } };
      break;
    case 'delete':
      message = { delete: { key: command.key } };
      break;
    case 'cas':
      message = {
        compareAndSwap: {
          key: command.key,
          expected: command.expected ?? new Uint8Array(0),
          expectAbsent: command.expected === null,
          value: command.value,
        },
      };
      break;
    case 'append':
      message = { append: { record: command.record } };
      break;
  }
  return CommandType.encode(CommandType.create(message)).finish();
}

/** Decodes a command, or returns null for bytes that are not one (applied as a no-op by every replica alike). */
export function decodeCommand(data: Uint8Array): KvCommand | null {
  let object: Record<string, unknown>;
  try {
    object = CommandType.toObject(CommandType.decode(data), { oneofs: true });
  } catch {
    return null;
  }
  const bytes = (value: unknown): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(0));
  switch (object.op) {
    case 'put': {
      const put = object.put as Record<string, unknown>;
      return { op: 'put', key: bytes(put.key), value: bytes(put.value) };
    }
    case 'delete':
      return { op: 'delete', key: bytes((object.delete as Record<string, unknown>).key) };
    case 'compareAndSwap': {
      const cas = object.compareAndSwap as Record<string, unknown>;
      return {
        op: 'cas',
        key: bytes(cas.key),
        expected: cas.expectAbsent === true ? null : bytes(cas.expected),
        value: bytes(cas.value),
      };
    }
    case 'append':
      return { op: 'append', record: bytes((object.append as Record<string, unknown>).record) };
    default:
      return null;
  }
}
