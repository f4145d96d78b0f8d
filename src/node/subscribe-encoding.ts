/**
 * Subscribe replies as bytes, each entry encoded once however many streams
 * send it. Every stream that is caught up sends the same newly committed
 * entries, and protobuf encoding through the reflection codec costs far more
 * than copying bytes, so an entry's encoding is kept beside the decoded entry
 * that readers share (a WeakMap: it lives as long as that object does). A
 * reply is its entries' bytes followed by the few fields that differ per
 * reply: protobuf reads a repeated field's elements wherever they stand in
 * the message, so the concatenation decodes as the whole reply would.
 */
import type { LogEntryReply, SubscribeReply } from './client-proto.js';
import { raftLogServiceDefinition } from './client-proto.js';

const encodeReply = (raftLogServiceDefinition['Subscribe'] as { responseSerialize: (value: unknown) => Buffer }).responseSerialize;
/** An entry encoded as field 1 (`entries`) of a SubscribeReply: tag, length and the LogEntry's bytes. */
const encodedEntries = new WeakMap<LogEntryReply, Buffer>();

export function encodeSubscribeReply(reply: SubscribeReply): Buffer {
  const parts: Buffer[] = [];
  for (const entry of reply.entries) parts.push(encodedEntry(entry));
  parts.push(encodeReply({ ...reply, entries: [] }));
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

function encodedEntry(entry: LogEntryReply): Buffer {
  let bytes = encodedEntries.get(entry);
  if (bytes === undefined) {
    // A reply with nothing but this entry: the codec writes only the fields an object has.
    bytes = encodeReply({ entries: [entry] });
    encodedEntries.set(entry, bytes);
  }
  return bytes;
}
