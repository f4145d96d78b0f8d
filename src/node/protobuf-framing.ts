/**
 * A strict check of protobuf framing, run before a request is decoded.
 *
 * protobufjs (under @grpc/proto-loader) reads leniently: it skips a field
 * numbered 0, reads deprecated groups, and fills in defaults for whatever it
 * could not read, so two garbage bytes sent to Append decoded as a valid,
 * empty record and were committed. The protobuf encoding forbids field 0 and
 * raftlog's contract uses no groups; this check refuses both, a field whose
 * wire type does not match its declared type, and any length or varint that
 * runs past its message, naming the byte offset and the field. Unknown fields
 * with sound framing pass (a newer client may send them; proto3 skips them).
 */
import protobuf from 'protobufjs';
import { END_GROUP, I32, I64, LEN, START_GROUP, VARINT } from '../api/protobuf-wire-types.js';

/** Nesting deeper than this is refused: raftlog's messages nest a few levels; deeper input only costs stack. */
const MAX_DEPTH = 32;

const SCALAR_WIRE_TYPES: Readonly<Record<string, number>> = {
  int32: VARINT,
  int64: VARINT,
  uint32: VARINT,
  uint64: VARINT,
  sint32: VARINT,
  sint64: VARINT,
  bool: VARINT,
  fixed64: I64,
  sfixed64: I64,
  double: I64,
  fixed32: I32,
  sfixed32: I32,
  float: I32,
  string: LEN,
  bytes: LEN,
};

/** Why `bytes` is not a well-framed `type` message, or null if it is. */
export function protobufFramingProblem(type: protobuf.Type, bytes: Uint8Array): string | null {
  try {
    checkMessage(type, bytes, 0, bytes.length, 0, { parent: null, name: type.name });
    return null;
  } catch (error) {
    if (error instanceof FramingError) return error.message;
    throw error;
  }
}

class FramingError extends Error {}

/**
 * Where in the message a problem lies ('MessageBatch.messages.entries'). Every
 * request on every node passes this check, so the path is a chain of links
 * spelled out only when a problem is reported, not a string per field read.
 */
interface FieldPath {
  readonly parent: FieldPath | null;
  readonly name: string;
}

function spelled(path: FieldPath): string {
  return path.parent === null ? path.name : `${spelled(path.parent)}.${path.name}`;
}

function fieldOf(parent: FieldPath, field: protobuf.Field | null, fieldNumber: number): FieldPath {
  return { parent, name: field?.name ?? `#${fieldNumber}` };
}

function checkMessage(type: protobuf.Type | null, bytes: Uint8Array, start: number, end: number, depth: number, path: FieldPath): void {
  if (depth > MAX_DEPTH) throw new FramingError(`${spelled(path)}: messages nested more than ${MAX_DEPTH} deep`);
  let at = start;
  while (at < end) {
    const tagAt = at;
    at = readVarint(bytes, at, end, path);
    const tag = varintValue;
    if (tag > 0xffffffff) throw new FramingError(`${spelled(path)}: the tag at byte ${tagAt} is larger than 32 bits`);
    const fieldNumber = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (fieldNumber === 0) throw new FramingError(`${spelled(path)}: field number 0 at byte ${tagAt} (protobuf numbers fields from 1)`);
    const field = type?.fieldsById[fieldNumber] ?? null;
    if (wireType === START_GROUP || wireType === END_GROUP) {
      throw new FramingError(
        `${spelled(fieldOf(path, field, fieldNumber))}: a group (wire type ${wireType}) at byte ${tagAt}; raftlog's messages have no groups`,
      );
    }
    if (wireType > I32)
      throw new FramingError(`${spelled(fieldOf(path, field, fieldNumber))}: wire type ${wireType} at byte ${tagAt} does not exist`);
    if (field !== null) expectWireType(field, wireType, path, tagAt);
    switch (wireType) {
      case VARINT:
        at = readVarint(bytes, at, end, path, field, fieldNumber);
        break;
      case I64:
        at = skip(at, 8, end, path, field, fieldNumber);
        break;
      case I32:
        at = skip(at, 4, end, path, field, fieldNumber);
        break;
      case LEN: {
        const afterLength = readVarint(bytes, at, end, path, field, fieldNumber);
        const bodyEnd = skip(afterLength, varintValue, end, path, field, fieldNumber);
        const nested = field?.resolvedType;
        // A map's entries are messages too, but protobufjs describes them without a Type: their framing is checked without one.
        if (field !== null && isMessageType(nested)) checkMessage(nested, bytes, afterLength, bodyEnd, depth + 1, fieldOf(path, field, fieldNumber));
        else if (field !== null && field.map) checkMessage(null, bytes, afterLength, bodyEnd, depth + 1, fieldOf(path, field, fieldNumber));
        at = bodyEnd;
        break;
      }
    }
  }
}

function isMessageType(value: protobuf.Type | protobuf.Enum | null | undefined): value is protobuf.Type {
  return value != null && 'fieldsById' in value;
}

function expectWireType(field: protobuf.Field, wireType: number, parent: FieldPath, at: number): void {
  let expected: number;
  if (field.map || isMessageType(field.resolvedType)) expected = LEN;
  else if (field.resolvedType != null)
    expected = VARINT; // an enum
  else expected = SCALAR_WIRE_TYPES[field.type] ?? LEN;
  // A repeated scalar may come packed (one LEN) or one value per tag; parsers must take both.
  if (wireType === expected || (field.repeated && wireType === LEN && expected !== LEN)) return;
  throw new FramingError(
    `${spelled(fieldOf(parent, field, field.id))}: wire type ${wireType} at byte ${at}, but the field is declared ${field.type} (wire type ${expected})`,
  );
}

/** The value of the varint readVarint read last: returned beside the position, it would cost an array per varint. */
let varintValue = 0;

/** Reads the varint at `at` into varintValue; returns the position after it. A problem names the field being read, if any, else `path`. */
function readVarint(bytes: Uint8Array, at: number, end: number, path: FieldPath, field?: protobuf.Field | null, fieldNumber?: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i += 1) {
    if (at + i >= end) {
      throw new FramingError(`${spelledAt(path, field, fieldNumber)}: a varint at byte ${at} runs past the end of its message (byte ${end})`);
    }
    const byte = bytes[at + i] as number;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) {
      varintValue = value;
      return at + i + 1;
    }
  }
  throw new FramingError(`${spelledAt(path, field, fieldNumber)}: a varint at byte ${at} is longer than 10 bytes`);
}

function skip(at: number, length: number, end: number, path: FieldPath, field: protobuf.Field | null, fieldNumber: number): number {
  if (length > end - at) {
    throw new FramingError(
      `${spelledAt(path, field, fieldNumber)}: ${length} bytes at byte ${at} run past the end of their message (${end - at} bytes left)`,
    );
  }
  return at + length;
}

function spelledAt(path: FieldPath, field: protobuf.Field | null | undefined, fieldNumber: number | undefined): string {
  return fieldNumber === undefined ? spelled(path) : spelled(fieldOf(path, field ?? null, fieldNumber));
}

const roots = new Map<string, protobuf.Root>();

/**
 * The request message type of a gRPC method path ('/raftlog.v1.RaftLog/Put')
 * declared in `protoPath`, read with protobufjs once per file.
 */
export function requestTypeOf(protoPath: string, methodPath: string): protobuf.Type {
  let root = roots.get(protoPath);
  if (root === undefined) {
    root = protobuf.loadSync(protoPath);
    root.resolveAll();
    roots.set(protoPath, root);
  }
  const match = /^\/([\w.]+)\/(\w+)$/.exec(methodPath);
  const method = match === null ? undefined : root.lookupService(match[1] as string).methods[match[2] as string];
  if (method?.resolvedRequestType == null) throw new Error(`${protoPath} declares no method ${methodPath}`);
  return method.resolvedRequestType;
}
