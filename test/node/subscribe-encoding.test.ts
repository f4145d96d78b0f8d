import { describe, expect, it } from 'vitest';
import { raftLogServiceDefinition, type SubscribeReply } from '../../src/node/client-proto.js';
import { entryShell } from '../../src/node/log-entry-view.js';
import { encodeSubscribeReply } from '../../src/node/subscribe-encoding.js';

const method = raftLogServiceDefinition['Subscribe'] as {
  responseSerialize: (value: unknown) => Buffer;
  responseDeserialize: (bytes: Buffer) => unknown;
};

function appendEntry(index: number, record: string) {
  const entry = entryShell(index, 3, 'LOG_ENTRY_KIND_APPEND');
  entry.record = new TextEncoder().encode(record);
  entry.proposedAtMs = 1_764_000_000_000 + index;
  return entry;
}

describe('Subscribe replies encoded once per entry', () => {
  const entries = [appendEntry(41, 'first'), appendEntry(42, ''), appendEntry(43, 'third record')];
  const reply: SubscribeReply = { entries, firstIndex: 40, lastIndex: 43, commitIndex: 45, node: 'n2', leader: 'n1' };

  it('a reply built from shared entry bytes decodes exactly as the reply encoded whole', () => {
    const whole = method.responseDeserialize(method.responseSerialize(reply));
    expect(method.responseDeserialize(encodeSubscribeReply(reply))).toEqual(whole);
    // A heartbeat (no entries) and a filtered page (some entries) too.
    const heartbeat = { ...reply, entries: [], firstIndex: 44, lastIndex: 43 };
    expect(method.responseDeserialize(encodeSubscribeReply(heartbeat))).toEqual(method.responseDeserialize(method.responseSerialize(heartbeat)));
    const filtered = { ...reply, entries: [entries[2] as (typeof entries)[number]] };
    expect(method.responseDeserialize(encodeSubscribeReply(filtered))).toEqual(method.responseDeserialize(method.responseSerialize(filtered)));
  });

  it('every reply that carries an entry carries the same bytes for it, and the serializer passes bytes through', () => {
    const first = encodeSubscribeReply(reply);
    const second = encodeSubscribeReply({ ...reply, node: 'n3', leader: '' });
    // The entries' bytes lead each reply, and are equal; only the per-reply fields after them differ.
    const entryBytes = first.byteLength - method.responseSerialize({ ...reply, entries: [] }).byteLength;
    expect(second.subarray(0, entryBytes).equals(first.subarray(0, entryBytes))).toBe(true);
    // The serializer passes bytes through untouched (how the stream writes them).
    expect(method.responseSerialize(first)).toBe(first);
  });
});
